#!/usr/bin/env bash
# `make lock`: refresh requirements.lock, the exact versions (with their SHA-256 hashes) of every Python
# package Cabinet installs: the runtime and test dependencies of pyproject.toml, the build backend
# (pyproject's [build-system] requires) and pip itself. scripts/setup.sh installs from it with
# `pip install --require-hashes`, so every install (make run, make test, .ci/run) gets the same bytes.
#
# The resolver is uv (pinned below), installed into its own throwaway venv (.venv-lock/); the lock is
# universal (Linux, any CPU, Python 3.11 and 3.12). tests/test_lock.py fails when pyproject.toml and the
# lock disagree. Pass extra uv options in UV_ARGS, e.g. UV_ARGS="--upgrade-package aiohttp" make lock.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
UV_VERSION=0.13.9
TOOLS="$ROOT/.venv-lock"

if [[ ! -x "$TOOLS/bin/uv" ]] || [[ "$("$TOOLS/bin/uv" --version | cut -d' ' -f2)" != "$UV_VERSION" ]]; then
    python3 -m venv "$TOOLS"
    "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi

extra_in=$(mktemp --suffix=.in)
trap 'rm -f -- "$extra_in"' EXIT
{
    echo "# pyproject.toml [build-system] requires, and the installer itself"
    python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))'
    echo "pip"
} >"$extra_in"

cd "$ROOT"
# shellcheck disable=SC2086
"$TOOLS/bin/uv" pip compile pyproject.toml "$extra_in" --extra test --universal --python-version 3.11 \
    --generate-hashes --custom-compile-command "make lock" -o requirements.lock ${UV_ARGS:-} \
    2> >(grep -v "^Resolved" >&2)
# The temporary input's name is not part of the lock.
sed -i "s|    # via -r $extra_in|    # via [build-system] requires / the installer|" requirements.lock
echo "lock: requirements.lock: $(grep -c '==' requirements.lock) packages"
