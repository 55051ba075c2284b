"""psycopg 3 against `cloudpg serve --emulator` with a user made by `cloudpg user hash`, SCRAM
and TLS (`mode = "require"`) verified against a test CA (sslmode=verify-full)."""

import os
import subprocess

import psycopg
import pytest

from conftest import _binary, _run

PASSWORD = "carol-pass-3"


def _openssl(directory, *args):
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


@pytest.fixture
def tls_server(tmp_path):
    _openssl(tmp_path, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=cloudpg psycopg test CA")
    _openssl(tmp_path, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost")
    (tmp_path / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl(tmp_path, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")
    verifier = subprocess.run([_binary(), "user", "hash"], input=PASSWORD + "\n", text=True,
                              capture_output=True, check=True).stdout.strip()
    assert verifier.startswith("SCRAM-SHA-256$4096:"), verifier
    config = tmp_path / "cloudpg.toml"
    config.write_text(
        f'[auth]\nmax_failure_delay = "200ms"\n'
        f'[[auth.users]]\nname = "carol"\npassword = "{verifier}"\nrole = "writer"\n'
        f'[tls]\nmode = "require"\ncert = "{tmp_path / "server.crt"}"\nkey = "{tmp_path / "server.key"}"\n'
    )
    for addr in _run(["serve", "--emulator", "--listen", "127.0.0.1:0", "--config", str(config)]):
        port = addr.rsplit(":", 1)[1]
        yield f"host=localhost port={port} user=carol dbname=awscc", str(tmp_path / "ca.pem")


def test_scram_over_verified_tls(tls_server):
    dsn, ca = tls_server
    with psycopg.connect(dsn, password=PASSWORD, sslmode="verify-full", sslrootcert=ca, autocommit=True) as conn:
        assert conn.execute("SELECT 'secure'").fetchone() == ("secure",)
        assert conn.pgconn.ssl_in_use


def test_wrong_password_and_plaintext_are_refused(tls_server):
    dsn, ca = tls_server
    with pytest.raises(psycopg.OperationalError) as wrong:
        psycopg.connect(dsn, password="nope", sslmode="verify-full", sslrootcert=ca)
    assert "password authentication failed for user \"carol\"" in str(wrong.value)
    with pytest.raises(psycopg.OperationalError) as plain:
        psycopg.connect(dsn, password=PASSWORD, sslmode="disable")
    assert "accepts TLS connections only" in str(plain.value)


def test_user_hash_refuses_an_empty_password():
    done = subprocess.run([_binary(), "user", "hash"], input="\n", text=True, capture_output=True)
    assert done.returncode != 0
    assert "empty" in done.stderr
