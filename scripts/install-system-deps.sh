#!/usr/bin/env bash
# Install the Debian 12 (bookworm) system packages Cabinet needs for its test
# suite: Chromium + chromedriver (browser tests and screenshots), Khmer and
# DejaVu fonts (for those screenshots), PostgreSQL server binaries (tests run
# their own throwaway server, see tests/pg_server.py), iproute2, openssl, and
# Node.js/npm when `node` is not already on PATH.
#
# Idempotent: packages already installed are left alone, `apt-get update` runs
# only when something has to be installed, and when nothing is missing the
# script needs no root at all. Runs as root; otherwise uses sudo (non-interactive
# when there is no terminal) or prints the command to run and exits 1.
#
# The postgresql package creates and starts a system cluster (port 5432); the
# tests do not use it, so any running cluster is stopped at the end.
set -euo pipefail

log() { printf 'install-system-deps: %s\n' "$*"; }
die() { printf 'install-system-deps: error: %s\n' "$*" >&2; exit 1; }

command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
    || die "this script supports Debian/Ubuntu (dpkg + apt-get) only"

if [[ -r /etc/os-release ]]; then
    # shellcheck disable=SC1091
    . /etc/os-release
    if [[ "${ID:-}" != debian || "${VERSION_ID:-}" != 12 ]]; then
        log "warning: written for Debian 12, this is ${PRETTY_NAME:-unknown}; continuing"
    fi
fi

# Required packages. Khmer fonts are handled separately (see below).
# libpango-1.0-0 and libpangoft2-1.0-0: WeasyPrint renders the minutes PDF with them (Khmer shaping).
packages=(chromium chromium-driver postgresql iproute2 fonts-dejavu-core openssl libpango-1.0-0 libpangoft2-1.0-0)
if ! command -v node >/dev/null 2>&1; then
    packages+=(nodejs npm)
elif ! command -v npm >/dev/null 2>&1; then
    log "warning: node is installed ($(command -v node)) but npm is not; install npm from the same source as node"
fi
# Khmer fonts: the first candidate that exists in the apt archive is used.
khmer_font_candidates=(fonts-khmeros fonts-khmeros-core)

is_installed() {
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [[ "$status" == "install ok installed" ]]
}

has_candidate() {
    local candidate
    candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')
    [[ -n "$candidate" && "$candidate" != "(none)" ]]
}

missing=()
for p in "${packages[@]}"; do
    is_installed "$p" || missing+=("$p")
done
khmer_installed=no
for p in "${khmer_font_candidates[@]}"; do
    if is_installed "$p"; then khmer_installed=yes; break; fi
done

# The browser tests were written against this Chromium major version (VP8 L1T3, the fake-device flags);
# Debian ships security updates as new majors, so another one is reported, not refused.
CHROMIUM_TESTED_MAJOR=156

report_versions() {
    local p line
    log "versions:"
    for p in "${packages[@]}" "${khmer_font_candidates[@]}"; do
        line=$(dpkg-query -W -f='${Package} ${Version}' "$p" 2>/dev/null) && is_installed "$p" \
            && printf '    %s\n' "$line"
    done
    if command -v chromium >/dev/null 2>&1; then
        line=$(chromium --version 2>/dev/null || true)
        printf '    %s\n' "${line:-chromium: no version}"
        local major
        major=$(grep -oE '[0-9]+' <<<"$line" | head -n1 || true)
        if [[ -n "$major" && "$major" != "$CHROMIUM_TESTED_MAJOR" ]]; then
            log "warning: Chromium $major here; the browser tests were last checked with $CHROMIUM_TESTED_MAJOR"
        fi
    fi
    command -v node >/dev/null 2>&1 && printf '    node %s, npm %s\n' "$(node --version)" "$(npm --version 2>/dev/null)"
    return 0
}

running_clusters() {
    # "15 main" for each online cluster; nothing if postgresql-common is absent.
    command -v pg_lsclusters >/dev/null 2>&1 || return 0
    { pg_lsclusters -h 2>/dev/null || true; } | awk '$4 ~ /^online/ {print $1, $2}'
}

clusters=$(running_clusters)

if [[ ${#missing[@]} -eq 0 && $khmer_installed == yes && -z "$clusters" ]]; then
    log "all system packages present, no PostgreSQL cluster running: nothing to do"
    report_versions
    exit 0
fi

# From here on we need root.
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        if [[ -t 0 ]]; then SUDO=(sudo); else SUDO=(sudo -n); fi
    else
        todo=("${missing[@]}")
        [[ $khmer_installed == yes ]] || todo+=("${khmer_font_candidates[0]}")
        {
            echo "install-system-deps: not running as root and sudo is not available."
            if [[ ${#todo[@]} -gt 0 ]]; then
                echo "As root, run:"
                echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${todo[*]}"
            fi
            if [[ -n "$clusters" ]]; then
                echo "and stop the system PostgreSQL cluster(s) the tests do not use:"
                while read -r ver name; do echo "  pg_ctlcluster $ver $name stop"; done <<<"$clusters"
            fi
            echo "or re-run this script as root: bash scripts/install-system-deps.sh"
        } >&2
        exit 1
    fi
fi

as_root() { "${SUDO[@]}" "$@"; }

apt_get() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@"
}

if [[ ${#missing[@]} -gt 0 || $khmer_installed == no ]]; then
    log "apt-get update"
    apt_get update -qq || die "apt-get update failed"

    if [[ $khmer_installed == no ]]; then
        khmer_pkg=""
        for p in "${khmer_font_candidates[@]}"; do
            if has_candidate "$p"; then khmer_pkg=$p; break; fi
        done
        if [[ -n "$khmer_pkg" ]]; then
            missing+=("$khmer_pkg")
        else
            log "warning: none of ${khmer_font_candidates[*]} is available from apt; Khmer text in browser screenshots will render as boxes"
        fi
    fi

    if [[ ${#missing[@]} -gt 0 ]]; then
        log "installing: ${missing[*]}"
        apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
            || die "apt-get install ${missing[*]} failed"
        for p in "${missing[@]}"; do
            is_installed "$p" || die "package $p is still not installed after apt-get install"
        done
    fi
    # Installing postgresql may just have created and started a cluster.
    clusters=$(running_clusters)
fi

if [[ -n "$clusters" ]]; then
    mapfile -t cluster_list <<<"$clusters"
    for cluster in "${cluster_list[@]}"; do
        read -r ver name <<<"$cluster"
        log "stopping system PostgreSQL cluster $ver/$name (tests run their own server)"
        as_root pg_ctlcluster "$ver" "$name" stop </dev/null \
            || as_root pg_ctlcluster --force "$ver" "$name" stop </dev/null \
            || log "warning: could not stop cluster $ver/$name"
    done
    if [[ -n "$(running_clusters)" ]] && command -v service >/dev/null 2>&1; then
        as_root service postgresql stop >/dev/null 2>&1 || true
    fi
    [[ -z "$(running_clusters)" ]] || log "warning: a system PostgreSQL cluster is still running: $(running_clusters | tr '\n' ' ')"
fi

report_versions
log "done"
