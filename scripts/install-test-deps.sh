#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: the PostgreSQL client (psql),
# a JDK with pgjdbc (tests/jdbc.rs runs a Java source file), Python test packages, and the
# Rust components fmt/clippy. Safe to run again: it skips what
# is already there.
set -euo pipefail

need_apt=()
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
# `java File.java` needs the compiler module, so a JDK, not only a JRE.
command -v javac >/dev/null 2>&1 || need_apt+=(default-jdk-headless)
[ -f /usr/share/java/postgresql.jar ] || need_apt+=(libpostgresql-jdbc-java)
if ((${#need_apt[@]})); then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Versions pinned so a new release cannot change what the tests see.
PY_PACKAGES=(boto3==1.43.11 botocore==1.43.11 pytest==8.4.2)
missing=0
for spec in "${PY_PACKAGES[@]}"; do
    name="${spec%%==*}"; version="${spec##*==}"
    have="$(python3 -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')"
    [ "$have" = "$version" ] || missing=1
done
if [ "$missing" = 1 ]; then
    python3 -m pip install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"
fi

rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
