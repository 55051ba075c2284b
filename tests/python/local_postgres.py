"""Throwaway processes for the Python tests and the benchmark: a PostgreSQL server on loopback
(Debian's `postgresql`, installed by scripts/install-test-deps.sh) in a directory of its own,
and stopping a process for good."""

import glob
import os
import shutil
import socket
import subprocess
import time

import psycopg


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc, timeout=30):
    """Terminates a process, killing it if it does not end within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bindir():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "postgres")):
            return d
    return None


def start(root, database="postgres", settings=()):
    """A PostgreSQL whose data lives under `root`, with `database` created; returns the
    process and a libpq connection string; `settings` are more `name=value` server settings.
    PostgreSQL refuses to run as root, so as root the
    Debian package's `postgres` user runs it."""
    bins = bindir()
    if bins is None:
        raise RuntimeError("PostgreSQL's server is not installed: run scripts/install-test-deps.sh (it installs Debian's postgresql)")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(root, "postgres")
    data, port = os.path.join(root, "data"), free_port()
    subprocess.run(
        [*as_user, os.path.join(bins, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
        check=True,
        capture_output=True,
    )
    with open(os.path.join(root, "server.log"), "w") as log:
        proc = subprocess.Popen(
            [*as_user, os.path.join(bins, "postgres"), "-D", data, "-p", str(port), "-k", root, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", *[a for kv in settings for a in ("-c", kv)]],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"host=127.0.0.1 port={port} user=postgres"
    deadline = time.monotonic() + 60
    while True:
        try:
            with psycopg.connect(f"{base} dbname=postgres", autocommit=True) as conn:
                if database != "postgres":
                    conn.execute(f'CREATE DATABASE "{database}"')
            return proc, f"{base} dbname={database}"
        except psycopg.OperationalError:
            if time.monotonic() > deadline or proc.poll() is not None:
                stop(proc)
                raise
            time.sleep(0.2)
