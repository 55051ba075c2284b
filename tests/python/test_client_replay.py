"""Replays the SQL that Grafana, Metabase and DBeaver send (captured in tests/clients)
against `cloudpg serve --emulator`, the way each sent it: simple queries as one Query message,
extended ones through Parse/Bind/Execute with the captured parameter types, formats and
values, binary results where the client asked for them.

The capture ran against a test database: schema `aws` with tables `ec2_instances`,
`s3_buckets` and a view `running_instances`, at OIDs 16386 (schema), 16387 and 16402. Those
names and OIDs are replaced by ours (`ec2.instances`, `ec2.vpcs`, `ec2.subnets`). The user
queries in the capture (Grafana panels, Metabase questions, DBeaver's data tab) read columns
the test table had; they are replayed with the same shape over columns ours has, listed in
USER_QUERIES.
"""

import json
import os
import re
import struct

import psycopg
import pytest
from psycopg import pq

CLIENTS_DIR = os.path.join(os.path.dirname(__file__), "..", "clients")
CLIENTS = ["grafana", "metabase", "metabase-pgjdbc-42.5.5", "dbeaver", "dbeaver-pgjdbc-42.5.5"]

NAMES = [
    (r"\bs3_buckets\b", "vpcs"),
    (r"\brunning_instances\b", "subnets"),
    (r"\bec2_instances\b", "instances"),
    (r"\baws\b", "ec2"),
]

# The captured database's columns that ec2.instances lacks, by the ones it has.
COLUMNS = [
    (r"\bcpu_count\b", "instance_type"),
    (r"\bmemory_gib\b", "key_name"),
]

# User queries over a timestamp column (Grafana's time macros): ec2.instances has none yet,
# so the same queries run over a timestamp expression.
USER_QUERIES = {
    ("grafana", 12): "SELECT floor(extract(epoch from now())/300)*300 AS \"time\", count(*) AS \"instances\" "
    "FROM ec2.instances WHERE now() BETWEEN '2024-01-01T00:00:00Z' AND '2100-01-01T06:00:00Z' GROUP BY 1 ORDER BY 1",
    ("grafana", 13): "SELECT now() AS \"time\", region AS metric, instance_type FROM ec2.instances "
    "WHERE now() >= '2024-01-01T00:00:00Z' AND now() <= '2100-01-01T06:00:00Z' ORDER BY 1",
    ("grafana", 14): "SELECT extract(epoch from now()) as \"time\", instance_type FROM ec2.instances "
    "WHERE extract(epoch from now()) >= 1704067200 AND extract(epoch from now()) <= 4102444800",
}

CAPTURED_OIDS = {16386: ("namespace", "ec2"), 16387: ("table", "ec2.instances"), 16402: ("table", "ec2.vpcs")}


def entries(client):
    with open(os.path.join(CLIENTS_DIR, f"{client}.meta.jsonl")) as f:
        return [json.loads(line) for line in f]


def substitute(text):
    for pattern, new in NAMES + COLUMNS:
        text = re.sub(pattern, new, text)
    return text


def user_query(client, idx):
    base = client.split("-pgjdbc")[0]
    return USER_QUERIES.get((base, idx))


def drop_missing_columns(sql):
    """Metabase's table scan lists every column of the test table; drop the ones ours lacks."""
    return re.sub(r',\s*"ec2"\."instances"\."(launched_at|public_ips|is_spot)" AS "\1"', "", sql)


@pytest.fixture(scope="module")
def oids(server_dsn_module):
    with psycopg.connect(server_dsn_module, autocommit=True) as conn:
        out = {}
        for captured, (kind, name) in CAPTURED_OIDS.items():
            if kind == "namespace":
                row = conn.execute("SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %s", (name,)).fetchone()
            else:
                row = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
            assert row and row[0], f"no OID for {name}"
            out[captured] = row[0]
        return out


def encode_param(value, oid, fmt, oids):
    """A captured parameter as bytes to send, with captured OIDs mapped to ours."""
    if value is None:
        return None
    if isinstance(value, str) and value.startswith("hex:"):
        raw = bytes.fromhex(value[4:])
        if fmt == 1 and oid in (20, 23, 26) and len(raw) in (4, 8):
            n = int.from_bytes(raw, "big", signed=True)
            n = oids.get(n, n)
            return n.to_bytes(len(raw), "big", signed=True)
        return raw
    text = substitute(str(value))
    if text.isdigit() and int(text) in oids:
        text = str(oids[int(text)])
    return text.encode()


def prepare_sql(client, entry, oids):
    sql = user_query(client, entry["idx"]) or drop_missing_columns(substitute(entry["exact_sql"]))
    for captured, ours in oids.items():
        sql = re.sub(rf"\b{captured}\b", str(ours), sql)
    return sql


def run_entry(conn, client, entry, oids):
    sql = prepare_sql(client, entry, oids)
    pgconn = conn.pgconn
    if "extended" in (entry.get("protocol") or []):
        values = entry.get("sample_params") or []
        # asyncpg declares no types (it asks the server with Describe) yet binds binary values.
        param_oids = ((entry.get("param_oids") or []) + [0] * len(values))[: len(values)]
        formats = ((entry.get("param_formats") or [[]])[0] or [0] * len(values))[: len(values)]
        params = [encode_param(v, o, f, oids) for v, o, f in zip(values, param_oids, formats)]
        result_formats = (entry.get("result_formats") or [[]])[0]
        binary = 1 if result_formats and all(f == 1 for f in result_formats) else 0
        res = pgconn.exec_params(sql.encode(), params, param_oids if any(param_oids) else None, formats or None, binary)
    else:
        res = pgconn.exec_(sql.encode())
    if res.status in (pq.ExecStatus.FATAL_ERROR, pq.ExecStatus.BAD_RESPONSE, pq.ExecStatus.NONFATAL_ERROR):
        message = (res.error_message or b"").decode(errors="replace").strip()
        sqlstate = res.error_field(pq.DiagnosticField.SQLSTATE)
        return f"{client}#{entry['idx']}: {sqlstate.decode() if sqlstate else '?'} {message}"
    return None


@pytest.mark.parametrize("client", CLIENTS)
def test_every_captured_statement_runs(server_dsn_module, oids, client):
    failures = []
    with psycopg.connect(server_dsn_module, autocommit=True) as conn:
        for entry in entries(client):
            failure = run_entry(conn, client, entry, oids)
            if failure:
                failures.append(failure)
                # A failed statement inside a block leaves it aborted; start clean.
                conn.pgconn.exec_(b"ROLLBACK")
    assert not failures, "\n".join(failures)
