#!/usr/bin/env bash
# Install what the tests need besides the Python venv (which `pip install -e '.[test]'` fills,
# Swift included: PyPI `swift` installs in ~3 s against ~18 s and 70 packages for Debian's):
#   * Debian: memcached (Swift's tempauth tokens) and redis-server;
#   * Debian: the S3 field stores of tests/support/targets.FIELD_TARGETS: Swift 2.30
#     (`swift swift-proxy swift-object swift-container swift-account`, run from /usr/bin
#     beside PyPI's 2.38; measured here: apt ~40-115 s on a shared machine, against ~86 s
#     for PyPI `swift==2.30.*` in a separate venv, which also pulls an eventlet 2.30 never
#     ran with) and Ceph RGW 16 (`ceph-mon ceph-osd radosgw`, ~40 s);
#   * Debian: chromium and a font, for the browser tests of the upload page and the ops view;
#   * npm: tus-js-client, the qiniu Node SDK, @tus/server (a third-party tus server for the CLI
#     tests) and playwright-core (drives Debian's chromium; it downloads no browser) into
#     tests/js/node_modules (npm ci).
# Idempotent and non-interactive; a re-run with everything in place takes about a second.
# Daemons are never started by the install (policy-rc.d), the tests start their own on free ports.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APT_PKGS=(memcached redis-server
          swift swift-proxy swift-object swift-container swift-account
          ceph-mon ceph-osd radosgw
          chromium fonts-dejavu-core)

now() { date +%s.%N; }
T_ALL=$(now)
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
log() { echo "install-test-deps: $*"; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { log "need root or sudo for apt-get"; exit 1; }
    SUDO=(sudo)
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

apt_install() {
    local policy=/usr/sbin/policy-rc.d created=0 t
    # Keep package scripts from starting services on default ports during the install.
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 755 "$policy"
        created=1
        trap '"${SUDO[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    t=$(now)
    local apt=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -y
               -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
    "${apt[@]}" update >/dev/null || "${apt[@]}" update >/dev/null
    log "apt-get update: $(took "$t")"
    t=$(now)
    local out
    out=$(mktemp)
    if ! "${apt[@]}" install --no-install-recommends "$@" >"$out" 2>&1; then
        cat "$out" >&2
        rm -f "$out"
        return 1
    fi
    rm -f "$out"
    log "apt-get install $*: $(took "$t")"
    if [ "$created" = 1 ]; then
        "${SUDO[@]}" rm -f "$policy"
        trap - EXIT
    fi
    # Where systemd runs, keep the packaged services from starting at boot (tests use their own).
    if [ -d /run/systemd/system ]; then
        local svc
        for svc in "$@"; do
            "${SUDO[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
        done
    fi
}

# --- Debian packages ----------------------------------------------------------------------
T=$(now)
need=()
for p in "${APT_PKGS[@]}"; do installed "$p" || need+=("$p"); done
command -v npm >/dev/null || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
    apt_install "${need[@]}"
else
    log "apt: ${APT_PKGS[*]} already installed"
fi
log "apt step: $(took "$T")"

# --- npm packages for the Node-driven client tests -----------------------------------------
T=$(now)
JS="$ROOT/tests/js"
STAMP="$JS/node_modules/.ugw-installed"
want="$(sha256sum "$JS/package-lock.json" | cut -d' ' -f1) node-$(node --version)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    log "npm: tests/js/node_modules up to date"
else
    (cd "$JS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" >"$STAMP"
    log "npm ci (tests/js): $(took "$T")"
fi

# --- Python side (installed by pip from pyproject; only checked here) ----------------------
PY="${PYTHON:-$ROOT/.venv/bin/python}"
if [ -x "$PY" ]; then
    missing=$("$PY" - <<'EOF'
import importlib.util
mods = {"swift": "swift", "moto": "moto[server]", "redis": "redis", "boto3": "boto3"}
print(" ".join(pkg for mod, pkg in mods.items() if importlib.util.find_spec(mod) is None))
EOF
)
    [ -z "$missing" ] || log "warning: $PY lacks PyPI packages: $missing (pip install -e '.[test]')"
fi

log "done in $(took "$T_ALL")"
