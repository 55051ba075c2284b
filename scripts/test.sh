#!/usr/bin/env bash
# The whole test suite: installs what it needs (scripts/install-test-deps.sh), checks formatting
# and lints, runs the Rust tests (unit and integration, through real clients) and the Python
# client tests in the clone's virtual environment (.venv/).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
PYTHON="${CLOUDPG_TEST_VENV:-$PWD/.venv}/bin/python"

echo "== cargo fmt"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build"
cargo build --workspace --locked
echo "== cargo test"
cargo test --workspace --locked
echo "== python client tests"
CLOUDPG_TEST_BIN="$(cargo metadata --format-version 1 --no-deps | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/cloudpg"
export CLOUDPG_TEST_BIN
"$PYTHON" -m pytest -q tests/python
