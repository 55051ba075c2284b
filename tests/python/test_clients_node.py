"""node-postgres: runs tests/node/client.test.mjs (node's own test runner) against
`cloudpg serve --emulator`. scripts/install-test-deps.sh installs the pinned `pg` there."""

import os
import pathlib
import subprocess

import pytest

NODE_DIR = pathlib.Path(__file__).resolve().parents[1] / "node"


def test_node_postgres(server_dsn):
    if not (NODE_DIR / "node_modules" / "pg").is_dir():
        pytest.fail("node-postgres is not installed in tests/node: run scripts/install-test-deps.sh")
    parts = dict(p.split("=", 1) for p in server_dsn.split())
    env = {**os.environ, "PGHOST": parts["host"], "PGPORT": parts["port"]}
    proc = subprocess.run(
        ["node", "--test", "client.test.mjs"],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "# fail 0" in proc.stdout and "# pass 4" in proc.stdout, proc.stdout
