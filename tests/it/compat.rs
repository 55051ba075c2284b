//! What clients learn about the server at startup and from its settings and catalogs:
//! PostgreSQL 16's parameter statuses, `set_config` reported like `SET`, PostgreSQL's errors
//! for unknown and unsupported objects, binary results for every type, and the `[catalog]`
//! configuration that decides which tables clients see.

use cloudpg::config::Config;
use cloudpg_emulator::EmulatorConfig;

use crate::common::{db_error, rows, Stack};
use crate::raw::Raw;

#[tokio::test]
async fn startup_reports_what_postgres_16_reports() {
    let stack = Stack::start().await;
    let raw = Raw::connect(stack.addr).await;
    let names: Vec<&str> = raw.startup_parameters.iter().map(|(k, _)| k.as_str()).collect();
    for expected in [
        "application_name",
        "client_encoding",
        "DateStyle",
        "default_transaction_read_only",
        "in_hot_standby",
        "integer_datetimes",
        "IntervalStyle",
        "is_superuser",
        "server_encoding",
        "server_version",
        "session_authorization",
        "standard_conforming_strings",
        "TimeZone",
    ] {
        assert!(names.contains(&expected), "no {expected} in {names:?}");
    }
    let value = |name: &str| {
        raw.startup_parameters
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(value("server_encoding"), "UTF8");
    assert_eq!(value("client_encoding"), "UTF8");
    assert_eq!(value("DateStyle"), "ISO, MDY");
    assert_eq!(value("integer_datetimes"), "on");
    assert_eq!(value("standard_conforming_strings"), "on");
    assert_eq!(value("session_authorization"), "postgres");

    // version(), server_version and server_version_num tell one story.
    let c = stack.client().await;
    let r = rows(
        &c,
        "SELECT version(), current_setting('server_version'), current_setting('server_version_num')",
    )
    .await
    .unwrap();
    let version = value("server_version");
    assert_eq!(r[0].get(1), Some(version.as_str()));
    assert!(
        r[0].get(0).unwrap().starts_with(&format!("PostgreSQL {version} ")),
        "{:?}",
        r[0].get(0)
    );
    let (major, minor) = version.split_once('.').unwrap();
    let num = format!("{}{:04}", major, minor.parse::<u32>().unwrap());
    assert_eq!(r[0].get(2), Some(num.as_str()));
    assert_eq!(major, "16");
    stack.stop().await;
}

#[tokio::test]
async fn set_config_is_reported_and_read_back_like_set() {
    let stack = Stack::start().await;
    let mut raw = Raw::connect(stack.addr).await;
    let a = raw.simple("SELECT set_config('application_name', 'grafana', false)").await;
    assert_eq!(a.values, vec![Some("grafana".to_string())], "{a:?}");
    assert!(
        a.parameters.contains(&("application_name".into(), "grafana".into())),
        "set_config reports a reported parameter as SET does: {a:?}"
    );
    let a = raw.simple("SET application_name = 'metabase'").await;
    assert!(a.parameters.contains(&("application_name".into(), "metabase".into())), "{a:?}");
    let a = raw
        .simple("SELECT current_setting('application_name') || '/' || (SELECT setting FROM pg_catalog.pg_settings WHERE name = 'application_name')")
        .await;
    assert_eq!(a.values, vec![Some("metabase/metabase".to_string())], "{a:?}");

    // Local to the transaction: back to the old value at its end.
    raw.simple("BEGIN").await;
    let a = raw.simple("SELECT set_config('search_path', 'ec2, public', true)").await;
    assert!(a.errors.is_empty(), "{a:?}");
    let a = raw
        .simple("SELECT count(*) FROM pg_catalog.pg_class c WHERE relname = 'vpcs' AND pg_table_is_visible(c.oid)")
        .await;
    assert_eq!(a.values, vec![Some("1".to_string())], "ec2 is on the path: {a:?}");
    raw.simple("COMMIT").await;
    let a = raw.simple("SHOW search_path").await;
    assert_eq!(a.values, vec![Some("\"$user\", public".to_string())], "{a:?}");

    let a = raw.simple("SELECT set_config('no_such_setting', 'x', false)").await;
    assert_eq!(a.error_code(), Some("42704"), "{a:?}");
    stack.stop().await;
}

#[tokio::test]
async fn unknown_and_unsupported_objects_get_postgres_errors() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let cases = [
        // PostgreSQL has these; cloudpg does not.
        ("SELECT pg_ls_dir('.')", "0A000", "function pg_ls_dir() is not supported by cloudpg"),
        (
            "SELECT * FROM pg_catalog.pg_stat_replication",
            "0A000",
            "relation \"pg_catalog.pg_stat_replication\" is not supported",
        ),
        (
            "SELECT * FROM pg_locks",
            "0A000",
            "relation \"pg_catalog.pg_locks\" is not supported",
        ),
        // Nobody has these.
        ("SELECT no_such_function(1)", "42883", "function no_such_function() does not exist"),
        (
            "SELECT * FROM pg_catalog.pg_no_such",
            "42P01",
            "relation \"pg_catalog.pg_no_such\" does not exist",
        ),
        (
            "SELECT 'no_such_table'::regclass",
            "42P01",
            "relation \"no_such_table\" does not exist",
        ),
    ];
    for (sql, code, message) in cases {
        let (got_code, got_message, _) = db_error(c.simple_query(sql).await.unwrap_err());
        assert_eq!(
            (got_code.as_str(), got_message.contains(message)),
            (code, true),
            "{sql}: {got_message}"
        );
    }
    let (code, message, hint) = db_error(c.simple_query("SET search_pth = 'ec2'").await.unwrap_err());
    assert_eq!(code, "42704");
    assert!(message.contains("\"search_pth\""), "{message}");
    assert!(hint.contains("search_path"), "{hint}");
    // 'pg_class'::regclass finds pg_catalog first, whatever the search_path says.
    c.simple_query("SET search_path = ec2").await.unwrap();
    let r = rows(&c, "SELECT 'pg_class'::regclass::oid::text, 'vpcs'::regclass::text")
        .await
        .unwrap();
    assert_eq!((r[0].get(0), r[0].get(1)), (Some("1259"), Some("vpcs")));
    stack.stop().await;
}

#[tokio::test]
async fn binary_results_for_every_type() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    // tokio-postgres asks for binary results of every column.
    let row = c
        .query_one(
            "SELECT true AS b, 7::int2 AS i2, 42::int4 AS i4, 9000000000::int8 AS i8, 1.5::float4 AS f4, 2.25::float8 AS f8, \
             'text'::text AS t, 'name'::name AS n, 'x'::varchar AS v, '{\"a\": [1, 2]}'::json AS j, \
             ARRAY['a', 'b'] AS ta, ARRAY[1, 2]::int8[] AS ia, NULL::text AS missing",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>("b"));
    assert_eq!(row.get::<_, i16>("i2"), 7);
    assert_eq!(row.get::<_, i32>("i4"), 42);
    assert_eq!(row.get::<_, i64>("i8"), 9_000_000_000);
    assert_eq!(row.get::<_, f32>("f4"), 1.5);
    assert_eq!(row.get::<_, f64>("f8"), 2.25);
    assert_eq!(row.get::<_, String>("t"), "text");
    assert_eq!(row.get::<_, String>("n"), "name");
    assert_eq!(row.get::<_, String>("v"), "x");
    assert_eq!(row.get::<_, serde_json::Value>("j"), serde_json::json!({"a": [1, 2]}));
    assert_eq!(row.get::<_, Vec<String>>("ta"), vec!["a", "b"]);
    assert_eq!(row.get::<_, Vec<i64>>("ia"), vec![1, 2]);
    assert_eq!(row.get::<_, Option<String>>("missing"), None);

    // A resource table's columns (text, bool, int8, json) and a catalog's (oid, name, char,
    // int2, bool, oid[]) in binary.
    let rows = c
        .query(
            "SELECT id, preserve_client_ip, tags, security_group_ids FROM awscc.ec2.instance_connect_endpoints WHERE region = $1",
            &[&"us-east-1"],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 5);
    for r in &rows {
        assert!(r.get::<_, String>("id").starts_with("ice-"));
        let _: Option<bool> = r.get("preserve_client_ip");
        let _: Option<serde_json::Value> = r.get("tags");
        let groups: Option<serde_json::Value> = r.get("security_group_ids");
        assert!(groups.is_none_or(|g| g.is_array()));
    }
    let r = c
        .query_one(
            "SELECT oid, relname, relkind, relnatts, relhasindex, relnamespace FROM pg_catalog.pg_class WHERE relname = 'vpcs'",
            &[],
        )
        .await
        .unwrap();
    assert!(r.get::<_, u32>("oid") > 0);
    assert_eq!(r.get::<_, String>("relname"), "vpcs");
    assert_eq!(r.get::<_, i8>("relkind"), b'r' as i8);
    assert!(r.get::<_, i16>("relnatts") > 2);
    assert!(r.get::<_, bool>("relhasindex"));
    assert!(r.get::<_, u32>("relnamespace") > 0);
    let r = c
        .query_one(
            "SELECT ipv4_netmask_length FROM awscc.ec2.vpcs WHERE region = 'us-east-1' LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let _: Option<i64> = r.get(0);
    stack.stop().await;
}

#[tokio::test]
async fn the_catalog_config_decides_what_clients_see() {
    let mut config = Config::default();
    config.catalog.services = vec!["ec2".into(), "events".into(), "logs".into()];
    config.catalog.exclude_tables = vec!["ec2.vpc_*".into()];
    let stack = Stack::start_with(EmulatorConfig::default(), config).await;
    let c = stack.client().await;
    let schemas = rows(
        &c,
        "SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname IN ('ec2', 'events', 'logs', 's3') ORDER BY 1",
    )
    .await
    .unwrap();
    let schemas: Vec<&str> = schemas.iter().filter_map(|r| r.get(0)).collect();
    assert_eq!(schemas, vec!["ec2", "events", "logs"]);
    let (code, _, _) = db_error(
        c.simple_query("SELECT * FROM awscc.s3.buckets WHERE region = 'us-east-1'")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "42P01", "a service left out is not there");
    let (code, _, _) = db_error(
        c.simple_query("SELECT * FROM awscc.ec2.vpc_endpoints WHERE region = 'us-east-1'")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "42P01", "an excluded table is not there");
    let tables = rows(
        &c,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'ec2' AND table_name LIKE 'vpc%' ORDER BY 1",
    )
    .await
    .unwrap();
    let tables: Vec<&str> = tables.iter().filter_map(|r| r.get(0)).collect();
    assert!(tables.contains(&"vpcs"), "{tables:?}");
    assert!(
        !tables.iter().any(|t| t.starts_with("vpc_") || t.ends_with("_list_only")),
        "neither excluded tables nor _list_only ones are listed: {tables:?}"
    );

    // _list_only tables stay queryable by name, and out of pg_class by default.
    let listed = rows(&c, "SELECT count(*) FROM pg_catalog.pg_class WHERE relname LIKE '%\\_list\\_only'")
        .await
        .unwrap();
    assert_eq!(listed[0].get(0), Some("0"));
    let r = rows(&c, "SELECT name FROM awscc.events.connections_list_only WHERE region = 'us-east-1'")
        .await
        .unwrap();
    assert!(!r.is_empty());
    stack.stop().await;

    let mut config = Config::default();
    config.catalog.services = vec!["events".into()];
    config.catalog.list_only_in_listings = true;
    let stack = Stack::start_with(EmulatorConfig::default(), config).await;
    let c = stack.client().await;
    let listed = rows(
        &c,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'events' AND table_name = 'connections_list_only'",
    )
    .await
    .unwrap();
    assert_eq!(listed[0].get(0), Some("1"), "listed when configured");
    stack.stop().await;
}

#[tokio::test]
async fn a_bi_sync_over_every_region_meets_the_call_cap() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    c.simple_query("SET cloudpg.max_api_calls = 2").await.unwrap();
    // Metabase's per-table sync: no region, so every configured region is listed.
    let (code, message, hint) = db_error(
        c.simple_query("SELECT \"ec2\".\"vpcs\".\"cidr_block\" AS \"cidr_block\" FROM \"ec2\".\"vpcs\" LIMIT 10000")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "54000", "{message}");
    assert!(
        message.contains("made 2 Cloud Control calls") && message.contains("cloudpg.max_api_calls"),
        "{message}"
    );
    assert!(hint.contains("region"), "{hint}");
    let listed = stack.emulator.counters().calls("ListResources");
    assert!(listed <= 2, "stopped at the cap, not after: {listed} calls");
    stack.stop().await;
}

#[tokio::test]
async fn pg_typeof_uuid_and_hash_functions_as_postgres_has_them() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let r = rows(
        &c,
        "SELECT pg_typeof(tags), pg_typeof(preserve_client_ip), pg_typeof(id), pg_typeof(1.5::float8), pg_typeof(NULL) \
         FROM awscc.ec2.instance_connect_endpoints WHERE region = 'us-east-1' LIMIT 1",
    )
    .await
    .unwrap();
    let names: Vec<Option<&str>> = (0..5).map(|i| r[0].get(i)).collect();
    assert_eq!(
        names,
        vec![
            Some("jsonb"),
            Some("boolean"),
            Some("text"),
            Some("double precision"),
            Some("unknown")
        ]
    );
    let r = rows(
        &c,
        "SELECT gen_random_uuid()::text, gen_random_uuid() <> gen_random_uuid(), md5('abc'), encode(sha256('abc'::bytea), 'hex'), \
         encode('abc'::bytea, 'base64'), encode(decode('616263', 'hex'), 'hex')",
    )
    .await
    .unwrap();
    let uuid = r[0].get(0).unwrap();
    assert!(uuid.len() == 36 && uuid.as_bytes()[14] == b'4', "a version 4 UUID: {uuid}");
    assert_eq!(r[0].get(1), Some("t"));
    assert_eq!(r[0].get(2), Some("900150983cd24fb0d6963f7d28e17f72"));
    assert_eq!(
        r[0].get(3),
        Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!((r[0].get(4), r[0].get(5)), (Some("YWJj"), Some("616263")));
    stack.stop().await;
}

#[tokio::test]
async fn network_casts_operators_and_functions() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    // The inventory question: which subnets lie inside 10.0.0.0/8.
    let inside = rows(
        &c,
        "SELECT subnet_id, cidr_block FROM awscc.ec2.subnets WHERE region = 'us-east-1' AND cidr_block::cidr << '10.0.0.0/8'",
    )
    .await
    .unwrap();
    let all = rows(
        &c,
        "SELECT cidr_block FROM awscc.ec2.subnets WHERE region = 'us-east-1' AND cidr_block IS NOT NULL",
    )
    .await
    .unwrap();
    assert!(!inside.is_empty());
    let expected = all.iter().filter(|r| r.get(0).is_some_and(|b| b.starts_with("10."))).count();
    assert_eq!(inside.len(), expected);
    let r = rows(
        &c,
        "SELECT '10.0.0.0/8'::cidr >>= '10.0.0.0/8'::cidr, '10.0.0.0/8'::cidr >> '10.0.0.0/8'::cidr, \
         '10.0.0.0/8'::cidr && '10.200.0.0/16'::cidr, '192.168.1.5/24'::inet <<= '192.168.1.0/24'::cidr, \
         host('192.168.1.5/24'::inet), masklen('192.168.1.5/24'::inet)::text, network('192.168.1.5/24'::inet), \
         family('2001:db8::1'::inet)::text, '10/8'::cidr::text, '2001:DB8::/32'::cidr",
    )
    .await
    .unwrap();
    let got: Vec<Option<&str>> = (0..10).map(|i| r[0].get(i)).collect();
    assert_eq!(
        got,
        vec![
            Some("t"),
            Some("f"),
            Some("t"),
            Some("t"),
            Some("192.168.1.5"),
            Some("24"),
            Some("192.168.1.0/24"),
            Some("6"),
            Some("10.0.0.0/8"),
            Some("2001:db8::/32")
        ]
    );
    for (sql, hint) in [
        ("SELECT '10.0.0.1/16'::cidr", "10.0.0.0/16"),
        ("SELECT 'not-an-address'::inet", "10.0.0.0/16"),
        ("SELECT '10.0.0.0/40'::cidr", "from 0 to 32"),
    ] {
        let (code, message, got_hint) = db_error(c.simple_query(sql).await.unwrap_err());
        assert_eq!(code, "22P02", "{sql}: {message}");
        assert!(got_hint.contains(hint), "{sql}: {got_hint}");
    }
    stack.stop().await;
}

#[tokio::test]
async fn tag_map_reads_tags_of_either_shape() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    // ec2 keeps tags as a list of {Key, Value}; ssm parameters as a map.
    for (table, key_column) in [("awscc.ec2.vpcs", "vpc_id"), ("awscc.ssm.parameters", "name")] {
        let all = rows(
            &c,
            &format!("SELECT {key_column}, tags::text, tag_map ->> 'env' FROM {table} WHERE region = 'us-east-1'"),
        )
        .await
        .unwrap();
        assert!(all.iter().any(|r| r.get(2).is_some()), "{table}: some rows have an env tag");
        for r in &all {
            if let Some(env) = r.get(2) {
                assert!(r.get(1).unwrap().contains(&format!("\"{env}\"")), "{table}: {:?}", r.get(1));
            }
        }
        let env = all.iter().find_map(|r| r.get(2)).unwrap().to_string();
        let filtered = rows(
            &c,
            &format!("SELECT count(*) FROM {table} WHERE region = 'us-east-1' AND tag_map ->> 'env' = '{env}'"),
        )
        .await
        .unwrap();
        let expected = all.iter().filter(|r| r.get(2) == Some(env.as_str())).count();
        assert_eq!(filtered[0].get(0), Some(expected.to_string().as_str()), "{table}");
    }
    let (code, _, hint) = db_error(
        c.simple_query(
            "INSERT INTO awscc.ssm.parameters (name, type, value, tag_map, region) VALUES ('p', 'String', 'v', '{}', 'us-east-1')",
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(code, "428C9");
    assert!(hint.contains("tags"), "{hint}");
    stack.stop().await;
}

#[tokio::test]
async fn floats_print_as_postgres_prints_them_in_text_and_stay_exact_in_binary() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let sql = "SELECT 300::float8, 1e20::float8, 1e-7::float8, 'Infinity'::float8, 0.1::float4, 1234567::float4";
    let text = rows(&c, sql).await.unwrap();
    let got: Vec<Option<&str>> = (0..6).map(|i| text[0].get(i)).collect();
    assert_eq!(
        got,
        vec![
            Some("300"),
            Some("1e+20"),
            Some("1e-07"),
            Some("Infinity"),
            Some("0.1"),
            Some("1.234567e+06")
        ]
    );
    let binary = c.query_one(sql, &[]).await.unwrap();
    assert_eq!((binary.get::<_, f64>(0), binary.get::<_, f64>(1)), (300.0, 1e20));
    assert!(binary.get::<_, f64>(3).is_infinite());
    assert_eq!(binary.get::<_, f32>(5), 1_234_567.0);
    stack.stop().await;
}

#[tokio::test]
async fn json_containment_paths_and_functions() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    // VPCs tagged env=staging, by containment, agree with tag_map.
    let by_containment = rows(
        &c,
        "SELECT vpc_id FROM awscc.ec2.vpcs WHERE region = 'us-east-1' AND tags @> '[{\"Key\": \"env\", \"Value\": \"staging\"}]' ORDER BY 1",
    )
    .await
    .unwrap();
    let by_map = rows(
        &c,
        "SELECT vpc_id FROM awscc.ec2.vpcs WHERE region = 'us-east-1' AND tag_map ->> 'env' = 'staging' ORDER BY 1",
    )
    .await
    .unwrap();
    let ids = |r: &[tokio_postgres::SimpleQueryRow]| r.iter().map(|r| r.get(0).map(str::to_string)).collect::<Vec<_>>();
    assert_eq!(ids(&by_containment), ids(&by_map));
    let r = rows(
        &c,
        "SELECT '[1,2,3]'::jsonb @> '[3,1]', '{\"a\": 1}' <@ '{\"a\": 1, \"b\": 2}'::jsonb, '[1,2]'::jsonb @> '[[1]]', \
         '{\"a\": [{\"b\": \"x\"}]}'::jsonb #>> '{a,0,b}', '{\"a\": [1, 2]}'::jsonb #> '{a,-1}', \
         jsonb_typeof('{\"a\": 1}'), json_array_length('[1, 2, 3]')::text, jsonb_extract_path_text('{\"a\": {\"b\": 7}}', 'a', 'b'), \
         jsonb_build_array(1, 'a', true, NULL), to_jsonb('x'::text), jsonb_strip_nulls('{\"a\": null, \"b\": 1}')",
    )
    .await
    .unwrap();
    let got: Vec<Option<&str>> = (0..11).map(|i| r[0].get(i)).collect();
    assert_eq!(
        got,
        vec![
            Some("t"),
            Some("t"),
            Some("f"),
            Some("x"),
            Some("2"),
            Some("object"),
            Some("3"),
            Some("7"),
            Some("[1, \"a\", true, null]"),
            Some("\"x\""),
            Some("{\"b\": 1}")
        ]
    );
    let (code, message, _) = db_error(c.simple_query("SELECT jsonb_array_length('{}')").await.unwrap_err());
    assert_eq!(code, "22023", "{message}");
    let (code, message, _) = db_error(c.simple_query("SELECT 'not json' @> '1'::jsonb").await.unwrap_err());
    assert_eq!(code, "22P02", "{message}");
    for bad in ["SELECT 'not json'::jsonb", "SELECT '{\"a\":'::json"] {
        let (code, message, _) = db_error(c.simple_query(bad).await.unwrap_err());
        assert_eq!(code, "22P02", "{bad}: {message}");
        assert!(message.contains("type json"), "{message}");
    }
    let typed = rows(&c, "SELECT pg_typeof('[1]'::jsonb), ('{\"a\": 1}'::jsonb -> 'a')::text")
        .await
        .unwrap();
    assert_eq!((typed[0].get(0), typed[0].get(1)), (Some("jsonb"), Some("1")));
    let texts = rows(
        &c,
        "SELECT (tags -> 0 -> 'Key')::text, (tags -> 0)::text, tags -> 0 ->> 'Key' FROM awscc.ec2.vpcs \
         WHERE region = 'us-east-1' AND tags IS NOT NULL LIMIT 1",
    )
    .await
    .unwrap();
    let key = texts[0].get(2).unwrap();
    assert_eq!(
        texts[0].get(0),
        Some(format!("\"{key}\"").as_str()),
        "a json string cast to text keeps its quotes"
    );
    assert!(texts[0].get(1).unwrap().starts_with('{'), "{:?}", texts[0].get(1));
    stack.stop().await;
}

#[tokio::test]
async fn json_set_functions_return_rows() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    // Every tag of every VPC, one row each.
    let tags = rows(
        &c,
        "SELECT vpc_id, jsonb_array_elements(tags) ->> 'Key' AS k FROM awscc.ec2.vpcs WHERE region = 'us-east-1' ORDER BY 1, 2",
    )
    .await
    .unwrap();
    let lengths = rows(
        &c,
        "SELECT sum(jsonb_array_length(tags))::text FROM awscc.ec2.vpcs WHERE region = 'us-east-1' AND tags IS NOT NULL",
    )
    .await
    .unwrap();
    assert_eq!(Some(tags.len().to_string().as_str()), lengths[0].get(0));
    let keys = rows(
        &c,
        "SELECT jsonb_object_keys(tag_map) AS k, count(*) FROM awscc.ec2.vpcs WHERE region = 'us-east-1' GROUP BY 1 ORDER BY 1",
    )
    .await
    .unwrap();
    assert!(keys.iter().any(|r| r.get(0) == Some("env")));
    let texts = rows(&c, "SELECT jsonb_array_elements_text('[1, \"a\", null]')").await.unwrap();
    let texts: Vec<Option<&str>> = texts.iter().map(|r| r.get(0)).collect();
    assert_eq!(texts, vec![Some("1"), Some("a"), None]);
    let (code, _, _) = db_error(c.simple_query("SELECT jsonb_object_keys('[1]')").await.unwrap_err());
    assert_eq!(code, "22023");
    stack.stop().await;
}

/// JSON functions take JSON: a text column is refused as PostgreSQL refuses it, naming the
/// signature; literals, `->` results and parameters are JSON.
#[tokio::test]
async fn json_functions_refuse_text_columns_and_bad_paths() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let (code, message, _) = db_error(
        c.simple_query("SELECT jsonb_array_length(region) FROM awscc.ec2.vpcs")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "42883", "{message}");
    assert!(message.contains("jsonb_array_length(text)"), "{message}");
    let ok = rows(
        &c,
        "SELECT jsonb_typeof(tags -> 0), jsonb_array_length('[1, 2]'), jsonb_array_length(region::jsonb) IS NULL \
         FROM (SELECT tags, '[1]' AS region FROM awscc.ec2.vpcs WHERE tags IS NOT NULL LIMIT 1) v",
    )
    .await
    .unwrap();
    assert_eq!((ok[0].get(0), ok[0].get(1), ok[0].get(2)), (Some("object"), Some("2"), Some("f")));
    let typed = c
        .query("SELECT jsonb_array_length($1::jsonb)::text", &[&"[1, 2, 3]"])
        .await
        .unwrap();
    assert_eq!(typed[0].get::<_, String>(0), "3");
    let (code, message, _) = db_error(c.simple_query("SELECT jsonb_path_query('{}', '$.a ? (@ >)')").await.unwrap_err());
    assert_eq!(code, "42601", "PostgreSQL's code for a malformed path: {message}");
    assert!(message.contains("position 11"), "{message}");
    let (code, message, _) = db_error(c.simple_query("SELECT '{\"a\": 1'::jsonb").await.unwrap_err());
    assert_eq!(code, "22P02", "{message}");
    assert!(message.contains("jsonb") || message.contains("json"), "{message}");
    stack.stop().await;
}

/// PostgreSQL makes every function call in FROM lateral: it may read the relations before it.
#[tokio::test]
async fn set_functions_in_from_read_the_relations_before_them() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let in_select = rows(
        &c,
        "SELECT vpc_id, jsonb_array_elements(tags) ->> 'Key' AS k FROM awscc.ec2.vpcs WHERE region = 'us-east-1' ORDER BY 1, 2",
    )
    .await
    .unwrap();
    assert!(!in_select.is_empty());
    let pairs = |rs: &[tokio_postgres::SimpleQueryRow]| -> Vec<(String, String)> {
        rs.iter()
            .map(|r| (r.get(0).unwrap_or_default().to_string(), r.get(1).unwrap_or_default().to_string()))
            .collect()
    };
    // Comma, CROSS JOIN LATERAL and JOIN LATERAL … ON true are the same join.
    for from in [
        "awscc.ec2.vpcs v, jsonb_array_elements(v.tags) t",
        "awscc.ec2.vpcs v CROSS JOIN LATERAL jsonb_array_elements(v.tags) AS t",
        "awscc.ec2.vpcs v JOIN LATERAL jsonb_array_elements(v.tags) t ON true",
    ] {
        let sql = format!("SELECT v.vpc_id, t.value ->> 'Key' AS k FROM {from} WHERE v.region = 'us-east-1' ORDER BY 1, 2");
        let got = rows(&c, &sql).await.unwrap();
        assert_eq!(pairs(&got), pairs(&in_select), "{from}");
    }
    // WITH ORDINALITY numbers each VPC's tags from 1; a LEFT JOIN keeps VPCs without tags.
    let numbered = rows(
        &c,
        "SELECT v.vpc_id, t.n::text, t.tag ->> 'Key' FROM awscc.ec2.vpcs v \
         LEFT JOIN LATERAL jsonb_array_elements(v.tags) WITH ORDINALITY AS t(tag, n) ON true \
         WHERE v.region = 'us-east-1' ORDER BY 1, 2",
    )
    .await
    .unwrap();
    let untagged = rows(
        &c,
        "SELECT count(*)::text FROM awscc.ec2.vpcs WHERE region = 'us-east-1' AND coalesce(jsonb_array_length(tags), 0) = 0",
    )
    .await
    .unwrap();
    let without: Vec<_> = numbered.iter().filter(|r| r.get(1).is_none()).collect();
    assert_eq!(Some(without.len().to_string().as_str()), untagged[0].get(0));
    let mut previous: Option<(String, i64)> = None;
    for r in numbered.iter().filter(|r| r.get(1).is_some()) {
        let (vpc, n) = (r.get(0).unwrap().to_string(), r.get(1).unwrap().parse::<i64>().unwrap());
        match &previous {
            Some((p, m)) if *p == vpc => assert_eq!(n, m + 1, "{vpc}"),
            _ => assert_eq!(n, 1, "{vpc}"),
        }
        previous = Some((vpc, n));
    }
    // jsonb_each and jsonb_each_text, with column aliases.
    let each = rows(
        &c,
        "SELECT e.key, e.value, x.v FROM jsonb_each('{\"a\": 1, \"b\": \"x\"}') e \
         JOIN jsonb_each_text('{\"a\": 1, \"b\": \"x\"}') AS x(k, v) ON x.k = e.key ORDER BY 1",
    )
    .await
    .unwrap();
    let each: Vec<Vec<Option<&str>>> = each.iter().map(|r| (0..3).map(|i| r.get(i)).collect()).collect();
    assert_eq!(
        each,
        vec![vec![Some("a"), Some("1"), Some("1")], vec![Some("b"), Some("\"x\""), Some("x")]]
    );
    // Inner joins drop rows whose array is empty or NULL, as PostgreSQL does.
    let inner = rows(
        &c,
        "SELECT k.x, e.value FROM (VALUES ('[1,2]'), ('[]'), (NULL)) k(x), jsonb_array_elements(k.x::jsonb) e",
    )
    .await
    .unwrap();
    assert_eq!(inner.len(), 2);
    let (code, _, _) = db_error(
        c.simple_query("SELECT * FROM (VALUES ('{}')) k(x), jsonb_array_elements(k.x::jsonb) e")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "22023");
    stack.stop().await;
}

/// cloudpg's views have no rewrite rules, and PostgreSQL's system views are not relations
/// here: pg_rewrite has its columns and no rows, read directly or joined as psql's `\d+` does.
#[tokio::test]
async fn pg_rewrite_has_its_columns_and_no_rows() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let rows = c
        .query("SELECT rulename, ev_class, ev_type, is_instead FROM pg_catalog.pg_rewrite", &[])
        .await
        .unwrap();
    assert!(rows.is_empty(), "{} rules", rows.len());
    let rows = c
        .query(
            "SELECT r.rulename FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class \
             WHERE c.relname = 'pg_tables'",
            &[],
        )
        .await
        .unwrap();
    assert!(rows.is_empty());
}
