#!/usr/bin/env bash
# Checks the catalog's assumptions against real AWS accounts: which types exist in which
# regions, which lists need parent values, which types answer as global. Read-only (the first
# ListResources page of each sampled type, nothing else), opt-in, and never run by CI: it needs
# real credentials and makes real calls.
#
#   scripts/live-check.sh [--config cloudpg.toml] [--sample 40] [--type 'AWS::S3::*'] [--dry-run]
#
# Every configured account is checked in each of its regions (`regions = ["*"]`: all of them).
# Findings, each with the call it rests on, go to facts.json in the schema directory
# (`[schemas] directory`, or --directory), which the server applies at startup; see them in
# `SELECT * FROM cloudpg.schema_overrides`. The calls need cloudformation:ListResources and the
# list permissions of the sampled types (`cloudpg catalog iam-policy --read-only`).
set -euo pipefail
if [[ -n "${CI:-}" ]]; then
  echo "live-check makes real AWS calls and does not run in CI" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin cloudpg
exec "${CARGO_TARGET_DIR:-target}/release/cloudpg" catalog live-check "$@"
