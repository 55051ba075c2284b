"""psycopg 3 against `cloudpg serve --emulator`: its transaction() blocks (savepoints when
nested), the failed-transaction state, and mutations refused inside a transaction block."""

import psycopg
import pytest
from psycopg import errors

DELETE = "DELETE FROM awscc.logs.log_groups WHERE identifier = %s AND region = 'us-east-1'"
TS = psycopg.pq.TransactionStatus


def test_transaction_blocks_nest_with_savepoints(server_dsn):
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        with conn.transaction():
            assert conn.info.transaction_status == TS.INTRANS
            assert conn.execute("SELECT 1").fetchone() == (1,)
            with pytest.raises(errors.UndefinedTable):
                with conn.transaction():  # SAVEPOINT; the error rolls back to it
                    conn.execute("SELECT * FROM awscc.ec2.nope")
            # The outer block goes on after ROLLBACK TO SAVEPOINT.
            assert conn.info.transaction_status == TS.INTRANS
            assert conn.execute("SELECT 'still here'").fetchone() == ("still here",)
        assert conn.info.transaction_status == TS.IDLE


def test_a_mutation_inside_a_transaction_is_refused_and_fails_the_block(server_dsn):
    with psycopg.connect(server_dsn) as conn:  # autocommit off: psycopg sends BEGIN
        conn.execute("SELECT 1")
        assert conn.info.transaction_status == TS.INTRANS
        with pytest.raises(errors.ActiveSqlTransaction) as refused:
            conn.execute(DELETE, ("x",))
        assert "cannot run inside a transaction block" in str(refused.value)
        assert conn.info.transaction_status == TS.INERROR
        with pytest.raises(errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
        assert conn.info.transaction_status == TS.IDLE


def test_autocommit_runs_mutations_and_the_setting_allows_them_in_a_block(server_dsn):
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        name = conn.execute(
            "SELECT log_group_name FROM awscc.logs.log_groups WHERE region = 'us-east-1' LIMIT 1"
        ).fetchone()[0]
        assert conn.execute(DELETE, (name,)).rowcount == 1
        warnings = []
        conn.add_notice_handler(lambda d: warnings.append(d.message_primary))
        conn.execute("SET cloudpg.autocommit_mutations = on")
        with conn.transaction():
            assert conn.execute(DELETE, (name,)).rowcount == 0  # already gone
        assert any("cannot roll it back" in w for w in warnings), warnings


def test_server_side_parameters_and_column_names(server_dsn):
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        cur = conn.execute("SELECT 1, 'a', 'a', count(*) FROM (VALUES (1)) t(x) WHERE x = %s", (1,))
        assert [c.name for c in cur.description] == ["?column?", "?column?", "?column?", "count"]
        assert cur.fetchone() == (1, "a", "a", 1)
        conn.execute("SET statement_timeout = '150ms'")
        assert conn.execute("SHOW statement_timeout").fetchone() == ("150ms",)
