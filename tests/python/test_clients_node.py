"""node: runs the tests in tests/node (node's own test runner) against `cloudpg serve
--emulator`: node-postgres as a client, and StackQL's names for every table and column.
scripts/install-test-deps.sh installs the pinned `pg` and `pluralize` there."""

import os
import pathlib
import subprocess

import pytest

NODE_DIR = pathlib.Path(__file__).resolve().parents[1] / "node"


def run_node_test(server_dsn, script, timeout):
    """Runs one node test file against the server; returns its TAP output."""
    for package in ("pg", "pluralize"):
        if not (NODE_DIR / "node_modules" / package).is_dir():
            pytest.fail(f"{package} is not installed in tests/node: run scripts/install-test-deps.sh")
    parts = dict(p.split("=", 1) for p in server_dsn.split())
    env = {**os.environ, "PGHOST": parts["host"], "PGPORT": parts["port"]}
    proc = subprocess.run(
        ["node", "--test", script],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_node_postgres(server_dsn):
    out = run_node_test(server_dsn, "client.test.mjs", 120)
    assert "# fail 0" in out and "# pass 4" in out, out


def test_every_stackql_spelling_resolves(server_dsn):
    """StackQL's table and column names for every type, derived with npm pluralize and its
    generator's snake-case rules in tests/node/stackql_names.test.mjs."""
    out = run_node_test(server_dsn, "stackql_names.test.mjs", 600)
    assert "# fail 0" in out and "# pass 1" in out, out
