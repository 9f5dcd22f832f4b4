#!/usr/bin/env bash
# Idempotent project setup for a fresh machine (system packages come from
# scripts/install-system-deps.sh):
#
#   * creates the virtualenv $ROOT/.venv with Python 3.11 (or 3.12),
#   * `pip install -e ".[test]"` -- only when pyproject.toml changed since the
#     last successful install (stamp: .venv/.installed-<sha256 of pyproject.toml>),
#   * `npm ci` (`npm install` without a package-lock.json) when package.json
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
py_hash=$(sha256_of "$ROOT/pyproject.toml")
py_stamp="$VENV/.installed-$py_hash"
pip_log="$VENV/.pip-install.log"
if [[ "$FORCE" == 1 || ! -f "$py_stamp" ]]; then
    log "installing Python dependencies (pip install -e \".[test]\"; log: $pip_log)"
    : >"$pip_log"
    rm -f -- "$VENV"/.installed-*   # a failed install must not leave an old stamp behind
    run_pip() {
        (cd "$ROOT" && "$VENV/bin/python" -m pip --disable-pip-version-check "$@") >>"$pip_log" 2>&1 && return 0
        printf 'setup: last lines of %s:\n' "$pip_log" >&2
        tail -n 40 -- "$pip_log" | sed 's/^/    /' >&2
        return 1
    }
    run_pip install --quiet --upgrade pip || die "upgrading pip in $VENV failed"
    run_pip install --quiet -e ".[test]" || die "pip install -e \".[test]\" failed"
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
        npm_flags=(--no-audit --no-fund --loglevel=error)
        if [[ -f "$lock" ]]; then
            log "installing node modules (npm ci)"
            (cd "$ROOT" && npm ci "${npm_flags[@]}" >/dev/null) || die "npm ci failed"
        else
            log "installing node modules (npm install; no package-lock.json yet)"
            (cd "$ROOT" && npm install "${npm_flags[@]}" >/dev/null) || die "npm install failed"
        fi
        mkdir -p "$ROOT/node_modules"
        rm -f -- "$ROOT"/node_modules/.installed-*
        if [[ -f "$lock" ]]; then
            : >"$ROOT/node_modules/.installed-$(sha256_of "$lock")"
        fi
    fi
fi

log "ready ($VENV)"
