"""asyncpg against `cloudpg serve --emulator`: binary protocol throughout, its type
introspection, cursors, pools."""

import asyncio
import json
from datetime import datetime, timezone

import asyncpg


def dsn_of(server_dsn):
    parts = dict(p.split("=", 1) for p in server_dsn.split())
    return f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"


def run(coro):
    return asyncio.run(coro)


def test_seed_select_json_and_bool(server_dsn):
    async def go():
        conn = await asyncpg.connect(dsn_of(server_dsn))
        try:
            rows = await conn.fetch(
                "SELECT id, preserve_client_ip, tags FROM awscc.ec2.instance_connect_endpoints WHERE region = $1 ORDER BY id",
                "us-east-1",
            )
            assert len(rows) == 5
            assert all(r["id"].startswith("ice-") for r in rows)
            assert {type(r["preserve_client_ip"]) for r in rows} <= {bool, type(None)}
            # jsonb arrives in binary (its version byte, then the text) as a str by default...
            tagged = [r["tags"] for r in rows if r["tags"] is not None]
            assert tagged and all(isinstance(t, str) and isinstance(json.loads(t), list) for t in tagged)
            # ...and parsed once a codec is set, by name, which makes asyncpg introspect the type.
            await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
            row = await conn.fetchrow(
                "SELECT tags, '{\"b\": 1, \"a\": [1, 2]}'::jsonb AS literal FROM awscc.ec2.instance_connect_endpoints "
                "WHERE region = $1 AND tags IS NOT NULL LIMIT 1",
                "us-east-1",
            )
            assert isinstance(row["tags"], list) and "Key" in row["tags"][0]
            assert row["literal"] == {"a": [1, 2], "b": 1}
            # An array type outside asyncpg's builtins sends it to pg_type.
            keys = await conn.fetchval("SELECT indkey FROM pg_catalog.pg_index WHERE indisprimary LIMIT 1")
            assert isinstance(keys, list)
            assert await conn.fetchval("SELECT $1::bigint + 1", 41) == 42
        finally:
            await conn.close()

    run(go())


def test_cursor_and_pool_reset(server_dsn):
    async def go():
        pool = await asyncpg.create_pool(dsn_of(server_dsn), min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                async with conn.transaction():
                    seen = [r[0] async for r in conn.cursor("SELECT n FROM generate_series(1, 500) AS t(n)", prefetch=50)]
                    assert seen == list(range(1, 501))
                await conn.execute("SET application_name = 'pooled'")
            # Release ran asyncpg's reset (pg_advisory_unlock_all, CLOSE ALL, UNLISTEN *, RESET ALL).
            async with pool.acquire() as conn:
                assert await conn.fetchval("SHOW application_name") == ""
        finally:
            await pool.close()

    run(go())


def test_timestamptz_is_an_aware_datetime_and_a_parameter(server_dsn):
    async def go():
        conn = await asyncpg.connect(dsn_of(server_dsn))
        try:
            await conn.execute("SET TimeZone = 'Asia/Tokyo'")
            starts = [
                r["start_date"]
                for r in await conn.fetch(
                    "SELECT start_date FROM awscc.scheduler.schedules WHERE region = $1 AND start_date IS NOT NULL",
                    "us-east-1",
                )
            ]
            # Binary timestamptz is an instant: asyncpg gives it in UTC whatever the session zone.
            assert starts and all(d.tzinfo == timezone.utc for d in starts)
            cutoff = datetime(2025, 6, 1, tzinfo=timezone.utc)
            later = await conn.fetchval(
                "SELECT count(*) FROM awscc.scheduler.schedules WHERE region = $1 AND start_date > $2",
                "us-east-1",
                cutoff,
            )
            assert later == sum(1 for d in starts if d > cutoff)
            assert await conn.fetchval("SELECT $1::timestamptz", cutoff) == cutoff
            assert (await conn.fetchval("SELECT now()")).tzinfo == timezone.utc
        finally:
            await conn.close()

    run(go())

