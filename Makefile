# `make run`: set everything up and serve on the embedded defaults (SQLite and folders under ./data,
# demo data loaded when the database is empty). `make test`: the whole test suite. `make lock`: refresh
# requirements.lock (exact versions and hashes) after changing pyproject.toml's dependencies.
.PHONY: run test setup system-deps lock

run: setup
	.venv/bin/cabinet serve --demo-if-empty

test: system-deps setup
	.venv/bin/python -m pytest

setup:
	bash scripts/setup.sh

system-deps:
	bash scripts/install-system-deps.sh

lock:
	bash scripts/lock.sh
