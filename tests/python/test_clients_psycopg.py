"""psycopg 3 against `cloudpg serve --emulator`: prepared statements, binary results, named
server-side cursors, transaction blocks, COPY, settings, and the seed SELECT with a bound
parameter."""

from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import sql

SEED = "SELECT region, id, subnet_id, preserve_client_ip, tags FROM awscc.ec2.instance_connect_endpoints WHERE region = %s ORDER BY id"


def test_seed_select_with_a_bound_parameter_prepared(server_dsn):
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        first = conn.execute(SEED, ("us-east-1",), prepare=True).fetchall()
        second = conn.execute(SEED, ("us-east-1",), prepare=True).fetchall()
        assert first == second and len(first) == 5
        region, ident, subnet, preserve, tags = first[0]
        assert region == "us-east-1" and ident.startswith("ice-") and subnet.startswith("subnet-")
        assert preserve in (True, False, None)
        # jsonb columns arrive as Python objects.
        assert any(isinstance(row[4], list) for row in first)
        literal = conn.execute("""SELECT '{"b": 1, "a": [1, 2.50]}'::jsonb, pg_typeof('{}'::jsonb)::text""").fetchone()
        assert literal == ({"a": [1, 2.5], "b": 1}, "jsonb")


def test_binary_cursor_decodes_every_type(server_dsn):
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        cur = conn.cursor(binary=True)
        cur.execute(
            "SELECT vpc_id, enable_dns_hostnames, ipv4_netmask_length, tags, 1.5::float8 AS f, "
            "CAST(NULL AS text) AS nothing, 'x'::varchar AS v FROM awscc.ec2.vpcs WHERE region = %s ORDER BY vpc_id",
            ("us-east-1",),
        )
        rows = cur.fetchall()
        assert len(rows) == 5
        assert [d.type_code for d in cur.description][:4] == [25, 16, 20, 3802]
        assert all(isinstance(r[0], str) for r in rows)
        assert any(r[1] is True for r in rows)
        assert rows[0][4] == 1.5 and rows[0][5] is None
        assert any(isinstance(r[3], list) for r in rows)
        # jsonb in binary: the version byte, then the text.
        cur.execute("""SELECT '{"b": 1}'::jsonb, '[1]'::json, CAST(NULL AS jsonb)""")
        assert cur.fetchone() == ({"b": 1}, [1], None)
        cur.execute("SELECT indkey, indexrelid FROM pg_catalog.pg_index WHERE indisprimary LIMIT 1")
        keys, oid = cur.fetchone()
        assert isinstance(keys, list) and isinstance(oid, int)


def test_named_cursor_fetches_in_batches(server_dsn):
    with psycopg.connect(server_dsn) as conn:
        with conn.transaction():
            with conn.cursor("srv1") as cur:
                cur.itersize = 10
                cur.execute("SELECT n FROM generate_series(1, 1000) AS t(n)")
                assert [r[0] for r in cur] == list(range(1, 1001))
        # WITH HOLD outlives the transaction that declared it.
        with conn.cursor("held", withhold=True) as cur:
            cur.execute("SELECT n FROM generate_series(1, 25) AS t(n)")
            conn.commit()
            assert cur.fetchmany(10) == [(n,) for n in range(1, 11)]
            cur.scroll(5)
            assert cur.fetchone() == (16,)
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
                cur.scroll(-1)


def test_transaction_blocks_and_savepoints(server_dsn):
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute("SET application_name = 'outer'")
        with conn.transaction():
            conn.execute("SET application_name = 'in-block'")
            with pytest.raises(psycopg.errors.DivisionByZero):
                with conn.transaction():
                    conn.execute("SELECT 1 / 0")
            # The savepoint rolled back; the block goes on.
            assert conn.execute("SHOW application_name").fetchone() == ("in-block",)
        assert conn.info.parameter_status("application_name") == "in-block"
        with pytest.raises(psycopg.errors.UndefinedTable):
            with conn.transaction():
                conn.execute("SET application_name = 'rolled-back'")
                conn.execute("SELECT * FROM awscc.ec2.nope")
        # The failed block rolled back, and its SET with it.
        assert conn.execute("SHOW application_name").fetchone() == ("in-block",)
        assert conn.info.parameter_status("application_name") == "in-block"
    with psycopg.connect(server_dsn) as conn:
        conn.execute("SELECT 1")
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM awscc.ec2.nope")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
        assert conn.execute("SELECT 2").fetchone() == (2,)


def test_copy_in_text_csv_and_binary(server_dsn, tmp_path):
    query = "SELECT vpc_id, enable_dns_hostnames, tags FROM awscc.ec2.vpcs WHERE region = 'us-east-1' ORDER BY vpc_id"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        expected = conn.execute(query).fetchall()
        cur = conn.cursor()
        with cur.copy(sql.SQL("COPY ({}) TO STDOUT").format(sql.SQL(query))) as copy:
            copy.set_types(["text", "bool", "jsonb"])
            assert list(copy.rows()) == expected
        with cur.copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT binary)").format(sql.SQL(query))) as copy:
            copy.set_types(["text", "bool", "jsonb"])
            assert list(copy.rows()) == expected
        data = b""
        with cur.copy(sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER)").format(sql.SQL(query))) as copy:
            for chunk in copy:
                data += bytes(chunk)
        lines = data.decode().splitlines()
        assert lines[0] == "vpc_id,enable_dns_hostnames,tags"
        assert len(lines) == 1 + len(expected)
        assert cur.rowcount == len(expected)
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            with cur.copy("COPY awscc.ec2.vpcs FROM STDIN") as copy:
                copy.write(b"")


def test_settings_clients_send(server_dsn):
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute("SET extra_float_digits = 3")
        conn.execute("SET search_path = ec2, public")
        assert conn.execute("SELECT current_setting('extra_float_digits'), current_schema()").fetchone() == ("3", "ec2")
        assert conn.execute("SELECT setting FROM pg_catalog.pg_settings WHERE name = 'search_path'").fetchone() == ("ec2, public",)
        # set_config changes the session, and tells the client about reported parameters.
        assert conn.execute("SELECT set_config('application_name', 'via-set-config', false)").fetchone() == ("via-set-config",)
        assert conn.info.parameter_status("application_name") == "via-set-config"
        assert conn.execute("SHOW application_name").fetchone() == ("via-set-config",)
        # Unqualified names follow search_path.
        assert conn.execute("SELECT count(*) FROM pg_catalog.pg_class c WHERE pg_table_is_visible(c.oid) AND relname = 'vpcs'").fetchone() == (1,)
        with pytest.raises(psycopg.errors.UndefinedObject) as e:
            conn.execute("SET serch_path = public")
        assert "search_path" in (e.value.diag.message_hint or "")
        with pytest.raises(psycopg.errors.UndefinedObject):
            conn.execute("SELECT current_setting('no_such_setting')")
        assert conn.execute("SELECT current_setting('no_such_setting', true)").fetchone() == (None,)


def test_type_introspection(server_dsn):
    from psycopg.types import TypeInfo

    with psycopg.connect(server_dsn, autocommit=True) as conn:
        info = TypeInfo.fetch(conn, "json")
        assert info is not None and info.oid == 114
        assert TypeInfo.fetch(conn, "hstore") is None
        assert TypeInfo.fetch(conn, "bool").oid == 16


def test_timestamptz_columns_are_aware_datetimes_in_text_and_binary(server_dsn):
    query = (
        "SELECT start_date FROM awscc.scheduler.schedules "
        "WHERE region = %s AND start_date IS NOT NULL ORDER BY identifier"
    )
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'America/New_York'")
        text = [r[0] for r in conn.execute(query, ("us-east-1",)).fetchall()]
        binary = [r[0] for r in conn.cursor(binary=True).execute(query, ("us-east-1",)).fetchall()]
        assert text and text == binary
        assert all(str(d.tzinfo) == "America/New_York" for d in text)
        assert {d.utcoffset() for d in text} <= {timedelta(hours=-5), timedelta(hours=-4)}
        # An aware datetime as a parameter compares as the instant it is, both formats.
        cutoff = datetime(2025, 6, 1, tzinfo=timezone.utc)
        expected = sum(1 for d in text if d > cutoff)
        later = "SELECT count(*) FROM awscc.scheduler.schedules WHERE region = %s AND start_date > %s"
        for binary_format in (False, True):
            cur = conn.cursor(binary=binary_format)
            assert cur.execute(later, ("us-east-1", cutoff)).fetchone()[0] == expected
        assert conn.execute("SELECT %s::timestamptz", (cutoff,)).fetchone()[0] == cutoff

