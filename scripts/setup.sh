#!/usr/bin/env bash
# Idempotent project setup for a fresh machine (system packages come from
# scripts/install-system-deps.sh):
#
#   * creates the virtualenv $ROOT/.venv with Python 3.11 (or 3.12),
#   * installs the exact versions of requirements.lock, every file checked against
#     its SHA-256 (`pip install --require-hashes`), then Cabinet itself, editable,
#     with no further resolution (`--no-deps --no-build-isolation`) -- only when
#     requirements.lock or pyproject.toml changed since the last successful install
#     (stamp: .venv/.installed-<sha256 of both>); `make lock` refreshes the lock,
#   * `npm ci` (exactly package-lock.json) when package.json
#     exists and node_modules is stale (stamp: node_modules/.installed-<sha256 of
#     package-lock.json>).
#
# Re-running it with nothing changed takes well under a second.
# Environment: PYTHON=/path/to/python3.x to choose the interpreter;
# CABINET_SETUP_FORCE=1 to reinstall regardless of stamps.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
VENV="$ROOT/.venv"
FORCE=${CABINET_SETUP_FORCE:-0}

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

sha256_of() { sha256sum -- "$1" | cut -d' ' -f1; }

py_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }

supported() { [[ "$1" == 3.11 || "$1" == 3.12 ]]; }

pick_python() {
    local cand v
    if [[ -n "${PYTHON:-}" ]]; then
        v=$(py_version "$PYTHON") || die "PYTHON=$PYTHON is not a working Python interpreter"
        supported "$v" || die "PYTHON=$PYTHON is Python $v; Cabinet needs 3.11 or 3.12"
        printf '%s\n' "$PYTHON"
        return
    fi
    for cand in python3.11 python3 python3.12; do
        command -v "$cand" >/dev/null 2>&1 || continue
        v=$(py_version "$cand") || continue
        if supported "$v"; then
            printf '%s\n' "$cand"
            return
        fi
    done
    die "no Python 3.11/3.12 found (tried python3.11, python3, python3.12); install python3.11 (Debian 12: apt-get install python3 python3-venv) or set PYTHON=/path/to/python3.11"
}

command -v sha256sum >/dev/null 2>&1 || die "sha256sum (coreutils) is missing"
[[ -f "$ROOT/pyproject.toml" ]] || die "no pyproject.toml in $ROOT"

# ------------------------------------------------------------------ virtualenv
if [[ -x "$VENV/bin/python" ]] && venv_v=$(py_version "$VENV/bin/python"); then
    supported "$venv_v" \
        || die "$VENV uses Python $venv_v; Cabinet needs 3.11 or 3.12. Remove it (rm -rf '$VENV') and re-run."
else
    python=$(pick_python)
    if [[ -e "$VENV" ]]; then
        log "$VENV exists but its interpreter is missing or broken; recreating it"
        venv_args=(--clear)
    else
        venv_args=()
    fi
    log "creating $VENV with $python ($(py_version "$python"))"
    "$python" -m venv "${venv_args[@]}" "$VENV" \
        || die "'$python -m venv' failed (Debian: apt-get install python3-venv)"
    FORCE=1
fi

# ------------------------------------------------------------------ python deps
[[ -f "$ROOT/requirements.lock" ]] || die "no requirements.lock in $ROOT (make lock creates it)"
py_hash=$(cat "$ROOT/requirements.lock" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)
py_stamp="$VENV/.installed-$py_hash"
pip_log="$VENV/.pip-install.log"
if [[ "$FORCE" == 1 || ! -f "$py_stamp" ]]; then
    log "installing Python dependencies from requirements.lock (log: $pip_log)"
    : >"$pip_log"
    rm -f -- "$VENV"/.installed-*   # a failed install must not leave an old stamp behind
    run_pip() {
        (cd "$ROOT" && "$VENV/bin/python" -m pip --disable-pip-version-check "$@") >>"$pip_log" 2>&1 && return 0
        printf 'setup: last lines of %s:\n' "$pip_log" >&2
        tail -n 40 -- "$pip_log" | sed 's/^/    /' >&2
        return 1
    }
    run_pip install --quiet --require-hashes -r requirements.lock \
        || die "pip install --require-hashes -r requirements.lock failed"
    run_pip install --quiet --no-deps --no-build-isolation -e . || die "pip install -e . failed"
    run_pip check || die "pip check: the installed packages do not fit together"
    : >"$py_stamp"
else
    log "Python dependencies up to date"
fi

# ------------------------------------------------------------------ node deps
if [[ -f "$ROOT/package.json" ]]; then
    command -v npm >/dev/null 2>&1 \
        || die "package.json exists but npm is missing; run scripts/install-system-deps.sh"
    lock="$ROOT/package-lock.json"
    node_stamp_ok=no
    if [[ "$FORCE" != 1 && -f "$lock" && -d "$ROOT/node_modules" \
          && -f "$ROOT/node_modules/.installed-$(sha256_of "$lock")" ]]; then
        node_stamp_ok=yes
    fi
    if [[ $node_stamp_ok == yes ]]; then
        log "node modules up to date"
    else
        [[ -f "$lock" ]] || die "package.json without package-lock.json: run 'npm install' once and commit the lock"
        log "installing node modules (npm ci: exactly package-lock.json, integrity-checked)"
        (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci failed"
        mkdir -p "$ROOT/node_modules"
        rm -f -- "$ROOT"/node_modules/.installed-*
        : >"$ROOT/node_modules/.installed-$(sha256_of "$lock")"
    fi
fi

log "ready ($VENV)"
