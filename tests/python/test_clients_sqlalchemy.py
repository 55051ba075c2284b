"""SQLAlchemy 2 (psycopg 3 dialect) inspection and pandas against `cloudpg serve --emulator`."""

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


def engine_of(server_dsn):
    parts = dict(p.split("=", 1) for p in server_dsn.split())
    return sa.create_engine(f"postgresql+psycopg://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}")


def test_inspect_schemas_tables_columns_and_keys(server_dsn):
    engine = engine_of(server_dsn)
    try:
        insp = sa.inspect(engine)
        schemas = insp.get_schema_names()
        assert "ec2" in schemas and "s3" in schemas
        assert "vpcs" in insp.get_table_names(schema="ec2")
        columns = {c["name"]: c for c in insp.get_columns("vpcs", schema="ec2")}
        assert isinstance(columns["cidr_block"]["type"], sa.Text)
        assert isinstance(columns["enable_dns_hostnames"]["type"], sa.Boolean)
        assert isinstance(columns["ipv4_netmask_length"]["type"], sa.BigInteger)
        assert isinstance(columns["tags"]["type"], postgresql.JSON)
        assert columns["region"]["nullable"] is False
        assert columns["tags"]["comment"]
        pk = insp.get_pk_constraint("vpcs", schema="ec2")
        assert pk["constrained_columns"] == ["region", "identifier"] and pk["name"] == "vpcs_pkey"
        assert insp.get_foreign_keys("vpcs", schema="ec2") == []
        assert insp.get_indexes("vpcs", schema="ec2") == []
        assert "AWS::EC2::VPC" in insp.get_table_comment("vpcs", schema="ec2")["text"]
        assert insp.get_view_names(schema="ec2") == []
    finally:
        engine.dispose()


def test_pandas_read_sql_with_a_parameter(server_dsn):
    engine = engine_of(server_dsn)
    try:
        frame = pd.read_sql(
            sa.text("SELECT id, subnet_id, preserve_client_ip FROM awscc.ec2.instance_connect_endpoints WHERE region = :r ORDER BY id"),
            engine,
            params={"r": "us-east-1"},
        )
        assert list(frame.columns) == ["id", "subnet_id", "preserve_client_ip"]
        assert len(frame) == 5 and frame["id"].str.startswith("ice-").all()
        table = pd.read_sql_table("vpcs", engine, schema="ec2", columns=["vpc_id", "region"])
        assert set(table["region"]) <= {"us-east-1", "us-west-2", "eu-west-1"} and len(table) > 0
    finally:
        engine.dispose()
