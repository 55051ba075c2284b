#!/usr/bin/env bash
# The whole test suite: installs what it needs, checks formatting and lints, runs the Rust
# tests (unit and integration, through real clients) and the Python client tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh

echo "== cargo fmt"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build"
cargo build --workspace --locked
echo "== cargo test"
cargo test --workspace --locked
echo "== python client tests"
CLOUDPG_BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/cloudpg"
export CLOUDPG_BIN
python3 -m pytest -q tests/python
