"""Starts `cloudpg emulator` or `cloudpg serve --emulator` on a free port for the Python tests."""

import os
import subprocess

import local_postgres
import pytest


def _binary():
    path = os.environ.get("CLOUDPG_TEST_BIN")
    if not path or not os.path.exists(path):
        pytest.fail("CLOUDPG_TEST_BIN must name the built cloudpg binary (scripts/test.sh sets it)")
    return path


def _run(args):
    """Runs the binary until the test ends; yields the address it prints."""
    proc = subprocess.Popen([_binary(), *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on "), f"unexpected first line: {line!r}"
        yield line.split(" ", 2)[2]
    finally:
        local_postgres.stop(proc, timeout=10)


@pytest.fixture
def emulator_url():
    yield from _run(["emulator", "--listen", "127.0.0.1:0", "--mutation-delay-ms", "20"])


@pytest.fixture
def server_dsn():
    """`cloudpg serve --emulator`, as a libpq connection string."""
    for addr in _run(["serve", "--emulator", "--listen", "127.0.0.1:0"]):
        host, port = addr.rsplit(":", 1)
        yield f"host={host} port={port} user=postgres dbname=awscc"


@pytest.fixture(scope="module")
def server_dsn_module():
    """One `cloudpg serve --emulator` for every test of a module."""
    for addr in _run(["serve", "--emulator", "--listen", "127.0.0.1:0"]):
        host, port = addr.rsplit(":", 1)
        yield f"host={host} port={port} user=postgres dbname=awscc"
