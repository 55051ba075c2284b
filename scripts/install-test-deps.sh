#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine, and checks it on every run:
#   - Debian packages: psql (postgresql-client), the PostgreSQL server the differential tests
#     compare with (postgresql), openssl (test certificates), a JDK with
#     pgjdbc (tests run Java source files), python3 with venv support, psqlODBC with unixODBC,
#     Node.js with npm;
#   - Rust components: rustfmt and clippy;
#   - the pinned Python packages of tests/python/requirements.txt, in a virtual environment
#     inside the clone (.venv/), so a CI run on a fresh clone installs them for real instead of
#     trusting what the machine already has;
#   - node-postgres and pluralize (StackQL's plurals), pinned by tests/node/package-lock.json,
#     into tests/node/node_modules.
# Every step says what it does; a failing step names itself, the command and how to fix it.
# Safe to run again: a step whose result is already there is skipped.
#
# CLOUDPG_TEST_VENV and CLOUDPG_TEST_REQUIREMENTS override the environment's folder and the pins (the
# script's own test uses them); nobody else needs to set them.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VENV="${CLOUDPG_TEST_VENV:-$ROOT/.venv}"
REQUIREMENTS="${CLOUDPG_TEST_REQUIREMENTS:-$ROOT/tests/python/requirements.txt}"

STEP="start"
FIX=""
step() {
    STEP="$1"
    FIX="$2"
    echo "== install-test-deps: $STEP"
}
on_error() {
    local status=$? command=$BASH_COMMAND
    echo "install-test-deps: step '$STEP' failed: \`$command\` exited with status $status" >&2
    [ -z "$FIX" ] || echo "install-test-deps: how to fix: $FIX" >&2
    exit "$status"
}
trap on_error ERR

# --- Debian packages -------------------------------------------------------------------------
step "Debian packages (psql, PostgreSQL server, openssl, JDK, pgjdbc, python3-venv, psqlODBC, Node.js)" \
    "run as root or with sudo, on Debian or Ubuntu with apt; or install the packages listed above by hand"
need_apt=()
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
# The differential tests compare cloudpg with a real PostgreSQL server they start themselves.
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || need_apt+=(postgresql)
# The TLS tests make their certificates with openssl.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# `java File.java` needs the compiler module, so a JDK, not only a JRE.
command -v javac >/dev/null 2>&1 || need_apt+=(default-jdk-headless)
[ -f /usr/share/java/postgresql.jar ] || need_apt+=(libpostgresql-jdbc-java)
if ! command -v python3 >/dev/null 2>&1; then
    need_apt+=(python3 python3-venv)
elif ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    # Debian splits venv's pip bootstrap into its own package.
    need_apt+=(python3-venv)
fi
# pyodbc loads unixODBC's libodbc; the driver package registers "PostgreSQL Unicode".
command -v odbcinst >/dev/null 2>&1 || need_apt+=(unixodbc)
odbcinst -q -d -n "PostgreSQL Unicode" >/dev/null 2>&1 || need_apt+=(odbc-postgresql)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if ((${#need_apt[@]})); then
    echo "installing: ${need_apt[*]}"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "not root and no sudo: cannot install ${need_apt[*]}" >&2; false; }
        SUDO="sudo"
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
else
    echo "present"
fi

# --- Rust components -------------------------------------------------------------------------
step "Rust components (rustfmt, clippy)" "install the Rust toolchain with rustup (https://rustup.rs), then rerun"
for component in rustfmt clippy; do
    tool="${component/rustfmt/fmt}"
    if cargo "$tool" --version >/dev/null 2>&1; then
        echo "$component present"
    else
        rustup component add "$component"
    fi
done

# --- Python packages, in the clone's virtual environment ------------------------------------
step "Python virtual environment at $VENV" \
    "check that python3 -m venv works (Debian: apt-get install python3-venv), or delete $VENV and rerun"
if "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "present ($("$VENV/bin/python" --version))"
else
    python3 -m venv --clear "$VENV"
    echo "created with $("$VENV/bin/python" --version)"
fi

step "Python test packages from ${REQUIREMENTS#"$ROOT"/} into $VENV" \
    "check the versions pinned in ${REQUIREMENTS#"$ROOT"/} (pip's message above names the package) and that PyPI is reachable"
[ -f "$REQUIREMENTS" ] || { echo "no such file: $REQUIREMENTS" >&2; false; }
# The stamp records what was installed: the pins and the interpreter. Same stamp, nothing to do.
stamp_file="$VENV/.cloudpg-requirements.sha256"
stamp="$( { cat "$REQUIREMENTS"; "$VENV/bin/python" --version; } | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
    echo "already installed"
else
    rm -f "$stamp_file"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --progress-bar off -r "$REQUIREMENTS"
    echo "$stamp" >"$stamp_file"
fi

# --- node-postgres, in the clone --------------------------------------------------------------
step "node-postgres and pluralize from tests/node/package-lock.json into tests/node/node_modules" \
    "check that the npm registry is reachable; delete tests/node/node_modules and rerun"
node_stamp_file="$ROOT/tests/node/node_modules/.cloudpg-lock.sha256"
node_stamp="$( { cat "$ROOT/tests/node/package-lock.json"; node --version; } | sha256sum | cut -d' ' -f1)"
if [ -f "$node_stamp_file" ] && [ "$(cat "$node_stamp_file")" = "$node_stamp" ]; then
    echo "already installed"
else
    (cd "$ROOT/tests/node" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$node_stamp" >"$node_stamp_file"
fi

step "done" ""
