"""Starts `cloudpg emulator` on a free port for the Python client tests."""

import os
import subprocess

import pytest


def _binary():
    path = os.environ.get("CLOUDPG_BIN")
    if not path or not os.path.exists(path):
        pytest.fail("CLOUDPG_BIN must name the built cloudpg binary (scripts/test.sh sets it)")
    return path


@pytest.fixture
def emulator_url():
    proc = subprocess.Popen(
        [_binary(), "emulator", "--listen", "127.0.0.1:0", "--mutation-delay-ms", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on "), f"unexpected first line: {line!r}"
        yield line.split(" ", 2)[2]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
