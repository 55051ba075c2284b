"""The JSON surface against a real PostgreSQL: the same statements on `cloudpg serve
--emulator` and on a PostgreSQL server this module starts on loopback (Debian's `postgresql`,
installed by scripts/install-test-deps.sh), compared as the text each prints, with the result
types and, for errors, the SQLSTATE. Then the inventory queries users write, over the same
rows copied from cloudpg into PostgreSQL tables of the same names, through psycopg and psql."""

import shutil
import subprocess
import tempfile

import local_postgres
import psycopg
import psycopg.types.json
import pytest
from psycopg.types.string import TextLoader

# Documents every expression runs on: objects, arrays, scalars, nesting, NULL-ish values,
# numbers written as 1.0 and 1.50, tags as AWS sends them.
DOCUMENTS = [
    '{"a": 1}',
    '{"b": 2, "a": [1, 2, 3]}',
    "[1, 2, 3]",
    "[]",
    "{}",
    '"a"',
    "1.0",
    "null",
    '{"a": [{"b": "x"}, {"b": null}], "c": {"d": 1.50}}',
    '[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "x"}]',
    '{"a": {"a": {"a": 1}}, "aa": true, "b": false}',
    '[1, "a", true, null, {"a": 1}, [2]]',
]

# Expressions over a document `d`; each runs on every document (wrong types included: what
# PostgreSQL refuses must be refused with the same SQLSTATE).
EXPRESSIONS = [
    "d",
    "d::text",
    "jsonb_typeof(d)",
    "d -> 'a'",
    "d ->> 'a'",
    "d -> 0",
    "d ->> 1",
    "d #> '{a,0}'",
    "d #>> '{a,0,b}'",
    "d @> '{\"a\": 1}'",
    "d @> '[3, 1]'",
    "d @> '1'",
    "'{\"a\": 1, \"b\": 2, \"c\": {\"d\": 1}}'::jsonb @> d",
    "d <@ '[1, 2, 3, \"a\", true, null]'",
    "d ? 'a'",
    "d ?| array['a', 'zz']",
    "d ?& array['a', 'b']",
    "d || '{\"z\": null}'",
    "d || '[9]'",
    "d - 'a'",
    "d - 0",
    "d #- '{a,0}'",
    "jsonb_array_length(d)",
    "jsonb_strip_nulls(d)",
    "jsonb_pretty(d)",
    "jsonb_set(d, '{a}', '\"x\"')",
    "jsonb_set(d, '{0}', '\"x\"', false)",
    "jsonb_extract_path(d, 'a')",
    "jsonb_extract_path_text(d, 'a', '0')",
    "d = '{\"a\": 1.0}'::jsonb",
    "d = '[1, 2, 3]'::jsonb",
    "(SELECT count(*) FROM jsonb_array_elements(d))",
    "(SELECT string_agg(e, ',') FROM jsonb_array_elements_text(d) AS t(e))",
    "(SELECT string_agg(key || '=' || value, ',') FROM jsonb_each_text(d))",
    "(SELECT string_agg(k, ',') FROM jsonb_object_keys(d) AS k)",
    "jsonb_path_query_array(d, '$.**')",
    "jsonb_path_query_array(d, '$.a[*] ? (@ > 1)')",
    "jsonb_path_query_array(d, '$[*] ? (@.Key == \"env\").Value')",
    "jsonb_path_query_first(d, '$.a')",
    "jsonb_path_exists(d, '$.a ? (@ == 1)')",
    "d @? '$[*] ? (@ == \"a\")'",
    "jsonb_path_query_array(d, '$.type()')",
    "jsonb_path_query_array(d, '$.size()')",
    "to_jsonb(d)",
    "jsonb_build_array(d, 1, 'x')",
    "jsonb_build_object('k', d)",
]

# Whole statements: set-returning functions in FROM (lateral, WITH ORDINALITY, column
# aliases), aggregates, NULLs, empty arrays, and errors.
DOCS = "(VALUES (1, '[1, 2]'::jsonb), (2, '[]'::jsonb), (3, NULL::jsonb), (4, '[{\"a\": 1}, \"x\"]'::jsonb)) AS d(id, j)"
STATEMENTS = [
    f"SELECT d.id, e.value, e.ordinality FROM {DOCS}, jsonb_array_elements(d.j) WITH ORDINALITY e ORDER BY 1, 3",
    f"SELECT d.id, e.v, e.n FROM {DOCS} LEFT JOIN LATERAL jsonb_array_elements(d.j) WITH ORDINALITY AS e(v, n) ON true ORDER BY 1, 3",
    f"SELECT d.id, e FROM {DOCS} CROSS JOIN LATERAL jsonb_array_elements_text(d.j) AS e ORDER BY 1, 2",
    f"SELECT d.id, jsonb_array_length(d.j) FROM {DOCS} ORDER BY 1",
    f"SELECT jsonb_agg(d.j ORDER BY d.id), jsonb_agg(d.id) FILTER (WHERE d.j IS NULL) FROM {DOCS}",
    f"SELECT jsonb_object_agg(d.id, d.j ORDER BY d.id) FROM {DOCS}",
    "SELECT json_object_agg(k, v ORDER BY n), pg_typeof(json_object_agg(k, v))::text FROM (VALUES (1, 'a', 'x'), (2, 'b', NULL), (3, 'a', 'y')) t(n, k, v)",
    "SELECT json_object_agg(k, v) FROM (VALUES ('a', 1)) t(k, v) WHERE false",
    f"SELECT json_agg(d.id ORDER BY d.id DESC) FROM {DOCS}",
    "SELECT jsonb_agg(x) FROM (VALUES (1)) t(x) WHERE false",
    "SELECT * FROM jsonb_each('{\"b\": [1], \"a\": {\"c\": null}}') ORDER BY key",
    "SELECT * FROM jsonb_each_text('{\"b\": [1], \"a\": \"s\", \"n\": null}') AS t(k, v) ORDER BY k",
    "SELECT * FROM jsonb_array_elements('[3, 1, 2]') WITH ORDINALITY",
    "SELECT * FROM jsonb_path_query('{\"a\": [1, 2, 3, 4]}', '$.a[*] ? (@ >= $min)', '{\"min\": 3}')",
    "SELECT jsonb_path_query('{\"a\": [{\"b\": 1}, {\"b\": 2}]}', 'lax $.**.b')",
    "SELECT jsonb_path_query('[1, \"a\", null]', '$[*] ? (@ != 1)')",
    "SELECT jsonb_path_query('[1, \"a\", null]', '$[*] ? ((@ > 0) is unknown)')",
    "SELECT * FROM generate_series(4, 6) WITH ORDINALITY AS g(x, n)",
    "SELECT '{\"b\": 1, \"a\": [1, 2.50e1]}'::jsonb, '{\"b\": 1,  \"a\": 2}'::json",
    "SELECT '[1, 2, 3]'::jsonb @> '[3, 1]', '1.0'::jsonb = '1'::jsonb, '{\"a\": [1, 2]}'::jsonb = '{\"a\": [2, 1]}'::jsonb",
    "SELECT pg_typeof('{}'::jsonb), pg_typeof('{}'::json), pg_typeof('{}'::jsonb -> 'a')",
    "SELECT '{\"a\": 1'::jsonb",
    "SELECT '{\"a\": 1}'::jsonb @? '$.a ? (@ >'",
    "SELECT '[1]'::jsonb - 'a', '{\"a\": 1}'::jsonb - 0",
    "SELECT jsonb_array_elements('{\"a\": 1}')",
    "SELECT jsonb_object_keys('[1]')",
    "SELECT '\"abc\"'::jsonb - 'a'",
]

# Integer literals are bigint in cloudpg (int4 in PostgreSQL) and pg_typeof returns text
# rather than regtype: compared by family, so the JSON types themselves are compared exactly.
TYPE_FAMILIES = {21: "integer", 23: "integer", 20: "integer", 2206: "text", 25: "text"}

TEXT_TYPES = ["json", "jsonb", "bool", "int2", "int4", "int8", "numeric", "float4", "float8", "text", "varchar", "name", "timestamptz", "timestamp", "date"]


@pytest.fixture(scope="module")
def postgres_dsn():
    """A PostgreSQL on loopback, stopped and removed when the module ends."""
    if local_postgres.bindir() is None:
        pytest.fail("PostgreSQL's server is not installed: run scripts/install-test-deps.sh (it installs Debian's postgresql)")
    root = tempfile.mkdtemp(prefix="cloudpg-postgres-")
    proc, dsn = local_postgres.start(root, "awscc")
    try:
        yield dsn
    finally:
        local_postgres.stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def _text_connection(dsn):
    """A connection that returns every value as the text the server printed."""
    conn = psycopg.connect(dsn, autocommit=True)
    for name in TEXT_TYPES:
        conn.adapters.register_loader(name, TextLoader)
    return conn


def _run(conn, sql):
    try:
        cur = conn.execute(sql)
        types = [TYPE_FAMILIES.get(d.type_code, d.type_code) for d in cur.description]
        return ("rows", types, cur.fetchall())
    except psycopg.Error as e:
        return ("error", e.sqlstate)


def _compare(cloudpg, postgres, statements):
    mismatches = []
    for sql in statements:
        ours, theirs = _run(cloudpg, sql), _run(postgres, sql)
        if ours != theirs:
            mismatches.append(f"{sql}\n    cloudpg:    {ours}\n    PostgreSQL: {theirs}")
    return mismatches


def test_json_functions_and_operators_match_postgresql(server_dsn_module, postgres_dsn):
    cases = []
    for doc in DOCUMENTS:
        literal = "'" + doc.replace("'", "''") + "'::jsonb"
        for expression in EXPRESSIONS:
            cases.append("SELECT " + _substitute(expression, literal))
    cases.extend(STATEMENTS)
    assert len(cases) >= 300, len(cases)
    with _text_connection(server_dsn_module) as ours, _text_connection(postgres_dsn) as theirs:
        mismatches = _compare(ours, theirs, cases)
    assert not mismatches, f"{len(mismatches)} of {len(cases)} differ:\n" + "\n".join(mismatches)


ZONES = ["UTC", "America/New_York", "asia/kolkata", "Australia/Lord_Howe", "Asia/Kathmandu", "-8", "5.5", "UTC+3", "<+04>-4", "Etc/GMT-14"]
STYLES = ["ISO, MDY", "SQL, DMY", "SQL, MDY", "Postgres, MDY", "Postgres, DMY", "German"]
TIME_EXPRESSIONS = [
    "'2025-01-02 03:04:05.25+00'::timestamptz",
    "'2025-07-02 23:59:59.000001+00'::timestamptz",
    "'2025-01-02 03:04:05'::timestamptz",
    "'2025-03-30 01:30:00+00'::timestamptz",
    "'2025-10-05 15:45:00Z'::timestamptz",
    "'2025-01-02 03:04:05.123456'::timestamp",
    "'2025-01-02'::date",
    "'2025-02-28'::date + 1",
    "date_trunc('day', '2025-01-02 03:04:05+00'::timestamptz)",
    "date_trunc('month', '2025-07-01 01:00:00+00'::timestamptz)",
    "'2025-01-02 03:04:05+00'::timestamptz < '2025-01-02 04:00:00+01'::timestamptz",
    "'2025-01-02 03:04:05+00'::timestamptz = '2025-01-02 04:04:05+01'::timestamptz",
    "CAST(NULL AS timestamptz)",
    "'2025-01-02 10:00'::timestamptz",
    "timestamptz '2025-03-09 02:30'",
    "'2025-11-02 01:30'::timestamptz",
    "'2025-03-30 02:30'::timestamptz",
    "'2025-01-02 10:00 America/New_York'::timestamptz",
    "'2025-01-02T10:00:00.5-0800'::timestamptz",
    "'epoch'::timestamptz",
    "'2025-01-02 10:00+05:30'::timestamp",
    "'2025-01-02 03:04:05.25+00'::timestamptz::text",
    "('2025-07-02 10:00+00'::timestamptz)::varchar || '!'",
    "'2025-01-02 03:04:05'::timestamp::text",
    "'2025-01-02 03:04:05+00'::timestamptz::timestamp",
    "date_part('hour', '2025-01-02 03:04:05+00'::timestamptz)::float8",
    "'soon'::timestamptz",
    "'2025-13-01'::timestamptz",
]


def test_timestamps_print_as_postgresql_prints_them_in_every_zone_and_style(server_dsn_module, postgres_dsn):
    cases, mismatches = 0, []
    with _text_connection(server_dsn_module) as ours, _text_connection(postgres_dsn) as theirs:
        # A statement PostgreSQL prepared keeps the zone its literals were read in; each
        # statement here is parsed afresh, under the zone just set.
        ours.prepare_threshold = theirs.prepare_threshold = None
        for zone in ZONES:
            for style in STYLES:
                settings = [f"SET TimeZone = '{zone}'", f"SET DateStyle = '{style}'"]
                statements = ["SHOW TimeZone", "SHOW DateStyle"] + ["SELECT " + e for e in TIME_EXPRESSIONS]
                for sql in settings:
                    ours.execute(sql)
                    theirs.execute(sql)
                cases += len(statements)
                mismatches += [f"[{zone} / {style}] {m}" for m in _compare(ours, theirs, statements)]
        for bad in ["SET TimeZone = 'Mars/Olympus'", "SET TimeZone = 'PST'", "SET DateStyle = 'ISO, SQL'", "SET DateStyle = 'Swatch'"]:
            cases += 1
            mismatches += _compare(ours, theirs, [bad])
    assert cases >= 300, cases
    assert not mismatches, f"{len(mismatches)} of {cases} differ:\n" + "\n".join(mismatches)


def _substitute(expression, literal):
    """The expression with its document `d` (a whole word) replaced by the literal."""
    out, word = [], ""
    quoted = False
    for ch in expression + " ":
        if ch == "'":
            quoted = not quoted
        if not quoted and (ch.isalnum() or ch == "_"):
            word += ch
            continue
        out.append(literal if word == "d" else word)
        word = ""
        out.append(ch)
    return "".join(out).rstrip()


INVENTORY = [
    # Every tag of every VPC.
    "SELECT v.vpc_id, t.value ->> 'Key' AS key, t.value ->> 'Value' AS value "
    "FROM awscc.ec2.vpcs v, jsonb_array_elements(v.tags) t WHERE v.region = 'us-east-1' ORDER BY 1, 2",
    # VPCs without an env tag.
    "SELECT vpc_id FROM awscc.ec2.vpcs WHERE region = 'us-east-1' AND NOT coalesce(tags @> '[{\"Key\": \"env\"}]', false) ORDER BY 1",
    # Security-group rules open to the world.
    "SELECT g.group_id, r ->> 'IpProtocol' AS protocol, r ->> 'FromPort' AS from_port FROM awscc.ec2.security_groups g, "
    "jsonb_array_elements(g.security_group_ingress) r WHERE g.region = 'us-east-1' AND r ->> 'CidrIp' = '0.0.0.0/0' ORDER BY 1, 2",
    # Subnets inside 10.0.0.0/8.
    "SELECT subnet_id, cidr_block FROM awscc.ec2.subnets WHERE region = 'us-east-1' AND cidr_block::cidr << '10.0.0.0/8'::cidr ORDER BY 1",
    # Resources by team.
    "SELECT tag_map ->> 'team' AS team, count(*) FROM awscc.ec2.subnets WHERE region = 'us-east-1' GROUP BY 1 ORDER BY 1 NULLS FIRST",
]

COPIED = {
    "vpcs": ["vpc_id", "region", "cidr_block", "tags", "tag_map"],
    "security_groups": ["group_id", "region", "security_group_ingress", "tags", "tag_map"],
    "subnets": ["subnet_id", "region", "cidr_block", "vpc_id", "tags", "tag_map"],
}
JSON_COLUMNS = {"tags", "tag_map", "security_group_ingress"}


def _copy_rows(cloudpg, postgres):
    """Copies the emulator's rows into PostgreSQL tables named as cloudpg's are."""
    postgres.execute("CREATE SCHEMA IF NOT EXISTS ec2")
    for table, columns in COPIED.items():
        types = ", ".join(f"{c} {'jsonb' if c in JSON_COLUMNS else 'text'}" for c in columns)
        postgres.execute(f"DROP TABLE IF EXISTS ec2.{table}")
        postgres.execute(f"CREATE TABLE ec2.{table} ({types})")
        rows = cloudpg.execute(f"SELECT {', '.join(columns)} FROM awscc.ec2.{table} WHERE region = 'us-east-1'").fetchall()
        assert rows, table
        placeholders = ", ".join(["%s"] * len(columns))
        with postgres.cursor() as cur:
            cur.executemany(f"INSERT INTO ec2.{table} VALUES ({placeholders})", rows)


def _psql(dsn, sql):
    out = subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_inventory_queries_match_postgresql_over_the_same_rows(server_dsn_module, postgres_dsn):
    with psycopg.connect(server_dsn_module, autocommit=True) as conn:
        # A rule open to the world, so the query finds one.
        conn.execute(
            "INSERT INTO awscc.ec2.security_groups (region, group_description, security_group_ingress) VALUES "
            "('us-east-1', 'open ssh', '[{\"IpProtocol\": \"tcp\", \"FromPort\": 22, \"ToPort\": 22, \"CidrIp\": \"0.0.0.0/0\"}]')"
        )
    with _text_connection(server_dsn_module) as ours, _text_connection(postgres_dsn) as theirs:
        raw = psycopg.connect(server_dsn_module, autocommit=True)
        with raw, psycopg.connect(postgres_dsn, autocommit=True) as target:
            target.adapters.register_dumper(dict, psycopg.types.json.JsonbDumper)
            target.adapters.register_dumper(list, psycopg.types.json.JsonbDumper)
            _copy_rows(raw, target)
        for sql in INVENTORY:
            ours_result, theirs_result = _run(ours, sql), _run(theirs, sql)
            assert ours_result == theirs_result, f"{sql}\n cloudpg: {ours_result}\n PostgreSQL: {theirs_result}"
            assert ours_result[0] == "rows" and ours_result[2], f"{sql} found nothing to compare"
            assert _psql(server_dsn_module, sql) == _psql(postgres_dsn, sql), sql
