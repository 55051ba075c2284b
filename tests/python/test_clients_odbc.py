"""psqlODBC (the PostgreSQL Unicode driver of unixODBC) through pyodbc: catalog calls and a
parameterized query against `cloudpg serve --emulator`."""

import pyodbc
import pytest


def connect(server_dsn):
    parts = dict(p.split("=", 1) for p in server_dsn.split())
    if "PostgreSQL Unicode" not in pyodbc.drivers():
        pytest.fail("the psqlODBC driver is not registered: scripts/install-test-deps.sh installs odbc-postgresql")
    return pyodbc.connect(
        f"DRIVER={{PostgreSQL Unicode}};SERVER={parts['host']};PORT={parts['port']};DATABASE={parts['dbname']};UID={parts['user']};PWD=;"
    )


def test_catalog_calls_and_a_parameterized_query(server_dsn):
    conn = connect(server_dsn)
    try:
        cur = conn.cursor()
        tables = [r.table_name for r in cur.tables(schema="ec2", tableType="TABLE")]
        assert "vpcs" in tables and "instance_connect_endpoints" in tables
        columns = {r.column_name: r for r in cur.columns(table="vpcs", schema="ec2")}
        assert columns["enable_dns_hostnames"].type_name == "bool"
        assert columns["ipv4_netmask_length"].type_name == "int8"
        assert columns["cidr_block"].type_name == "text"
        keys = sorted((r.key_seq, r.column_name) for r in cur.primaryKeys(table="vpcs", schema="ec2"))
        assert keys == [(1, "region"), (2, "identifier")]
        cur.execute("SELECT id, subnet_id FROM awscc.ec2.instance_connect_endpoints WHERE region = ? ORDER BY id", "us-east-1")
        rows = cur.fetchall()
        assert len(rows) == 5 and rows[0].id.startswith("ice-")
        conn.commit()
    finally:
        conn.close()
