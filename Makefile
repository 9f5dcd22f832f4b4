# `make run`: set everything up and serve on the embedded defaults (SQLite and folders under ./data,
# demo data loaded when the database is empty). `make test`: the whole test suite.
.PHONY: run test setup system-deps

run: setup
	.venv/bin/cabinet serve --demo-if-empty

test: system-deps setup
	.venv/bin/python -m pytest

setup:
	bash scripts/setup.sh

system-deps:
	bash scripts/install-system-deps.sh
