//! SELECT through the wire with tokio-postgres (simple and extended protocol) against the
//! embedded emulator; the emulator's call counters prove what the scans asked Cloud Control.

use std::time::Duration;

use crate::common::{column, db_error, rows, Stack};
use cloudpg::config::Config;
use cloudpg_emulator::{EmulatorConfig, FaultRule};
use tokio_postgres::types::Type;

/// An identifier of `table` in us-east-1, read through the server.
async fn some_identifier(c: &tokio_postgres::Client, table: &str) -> String {
    let r = rows(c, &format!("SELECT identifier FROM {table} WHERE region = 'us-east-1'"))
        .await
        .unwrap();
    r[0].get(0).unwrap().to_string()
}

#[tokio::test]
async fn seed_selects_run_verbatim() {
    let stack = Stack::start().await;
    let c = stack.client().await;

    // 000: by identifier; verbatim with the placeholder it finds nothing.
    let seed_000 = "SELECT\nregion,\nid,\nsubnet_id,\nclient_token,\npreserve_client_ip,\ntags,\nsecurity_group_ids\nFROM awscc.ec2.instance_connect_endpoints\nWHERE region = 'us-east-1' AND data__Identifier = '<Id>';";
    assert!(rows(&c, seed_000).await.unwrap().is_empty());
    let id = some_identifier(&c, "awscc.ec2.instance_connect_endpoints").await;
    let found = rows(&c, &seed_000.replace("<Id>", &id)).await.unwrap();
    assert_eq!(column(&found, 1), vec![Some(id.clone())]);
    assert_eq!(found[0].get(0), Some("us-east-1"));

    // 001: a whole region with all columns, then by identifier.
    let seed_001_list = "SELECT\nregion,\nid,\narn,\nidentity_management_type,\ninstance_alias,\ncreated_time,\nservice_role,\ninstance_status,\ndirectory_id,\nattributes,\ntags\nFROM aws.connect.instances\nWHERE region = 'us-east-1';";
    let all = rows(&c, seed_001_list).await.unwrap();
    assert!(all.len() >= 3, "{}", all.len());
    let arn = all[0].get(2).unwrap().to_string();
    assert!(all[0].get(9).unwrap().starts_with('{'), "attributes is a JSON object");
    let seed_001_get = "SELECT\nregion,\nid,\narn,\nidentity_management_type,\ninstance_alias,\ncreated_time,\nservice_role,\ninstance_status,\ndirectory_id,\nattributes,\ntags\nFROM aws.connect.instances\nWHERE region = 'us-east-1' AND data__Identifier = '<Arn>';";
    assert!(rows(&c, seed_001_get).await.unwrap().is_empty());
    assert_eq!(rows(&c, &seed_001_get.replace("<Arn>", &arn)).await.unwrap().len(), 1);

    // 002: nested objects by identifier, and the _list_only table.
    let seed_002_get = "SELECT\nregion,\nname,\narn,\narn_for_policy,\nsecret_arn,\ndescription,\nauthorization_type,\nauth_parameters,\ninvocation_connectivity_parameters,\nkms_key_identifier\nFROM awscc.events.connections\nWHERE region = 'us-east-1' AND data__Identifier = '<Name>';";
    assert!(rows(&c, seed_002_get).await.unwrap().is_empty());
    let seed_002_list = "SELECT\nregion,\nname\nFROM awscc.events.connections_list_only\nWHERE region = 'us-east-1';";
    let names = rows(&c, seed_002_list).await.unwrap();
    assert!(names.len() >= 3);
    let name = names[0].get(1).unwrap().to_string();
    let one = rows(&c, &seed_002_get.replace("<Name>", &name)).await.unwrap();
    assert_eq!(one[0].get(1), Some(name.as_str()));

    // 003: a list of identifiers.
    let seed_003 = "SELECT\nregion,\nconnection_arn\nFROM aws.codeconnections.connections\nWHERE region = 'us-east-1'";
    let arns = rows(&c, seed_003).await.unwrap();
    assert!(arns.len() >= 3 && arns.iter().all(|r| r.get(1).unwrap().starts_with("arn:aws:")));
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn extended_protocol_returns_typed_columns() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let typed = c
        .query(
            "SELECT id, preserve_client_ip, tags, region FROM awscc.ec2.instance_connect_endpoints WHERE region = $1",
            &[&"us-east-1"],
        )
        .await
        .unwrap();
    assert!(typed.len() >= 3);
    let types: Vec<&Type> = typed[0].columns().iter().map(|c| c.type_()).collect();
    assert_eq!(types, vec![&Type::TEXT, &Type::BOOL, &Type::JSONB, &Type::TEXT]);
    let region: String = typed[0].get(3);
    assert_eq!(region, "us-east-1");
    let days = c
        .query(
            "SELECT retention_in_days FROM awscc.logs.log_groups WHERE region = 'us-east-1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(days[0].columns()[0].type_(), &Type::INT8);
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn sql_features_work_on_resource_tables() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    // A join across two resource tables: the demo data's subnets sit in VPCs that exist.
    let joined = rows(
        &c,
        "SELECT s.subnet_id, v.vpc_id FROM awscc.ec2.subnets s JOIN awscc.ec2.vpcs v ON s.vpc_id = v.vpc_id \
         WHERE s.region = 'us-east-1' AND v.region = 'us-east-1' ORDER BY s.subnet_id",
    )
    .await
    .unwrap();
    assert!(!joined.is_empty());
    let sorted = column(&joined, 0);
    let mut expected = sorted.clone();
    expected.sort();
    assert_eq!(sorted, expected, "ORDER BY");

    // Both regions' rows, grouped.
    let grouped = rows(
        &c,
        "SELECT region, count(*) FROM awscc.s3.buckets WHERE region IN ('us-east-1','eu-west-1') GROUP BY region ORDER BY region",
    )
    .await
    .unwrap();
    assert_eq!(column(&grouped, 0), vec![Some("eu-west-1".into()), Some("us-east-1".into())]);
    assert!(grouped.iter().all(|r| r.get(1).unwrap().parse::<i64>().unwrap() >= 3));

    // CTE and window function.
    let ranked = rows(
        &c,
        "WITH b AS (SELECT region, bucket_name FROM awscc.s3.buckets WHERE region IN ('us-east-1','eu-west-1')) \
         SELECT region, bucket_name, row_number() OVER (PARTITION BY region ORDER BY bucket_name) AS n FROM b ORDER BY region, n",
    )
    .await
    .unwrap();
    assert_eq!(ranked[0].get(2), Some("1"));
    assert!(ranked.iter().any(|r| r.get(0) == Some("us-east-1") && r.get(2) == Some("1")));

    // JSON operators on a json column.
    let tagged = c
        .query(
            "SELECT tags -> 0 AS first_tag, tags -> 0 ->> 'Key' AS first_key, json_get_str(tags, 0, 'Value') AS first_value \
             FROM awscc.ec2.instance_connect_endpoints WHERE region = 'us-east-1' AND tags IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
    assert!(!tagged.is_empty());
    assert_eq!(tagged[0].columns()[0].type_(), &Type::JSONB);
    let first: serde_json::Value = tagged[0].get(0);
    let key: String = tagged[0].get(1);
    assert_eq!(first["Key"], serde_json::Value::String(key));
    let value: Option<String> = tagged[0].get(2);
    assert_eq!(first["Value"].as_str(), value.as_deref());
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn scans_make_the_fewest_calls() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let id = some_identifier(&c, "awscc.logs.log_groups").await;
    let counters = stack.emulator.counters();
    assert_eq!(counters.calls("GetResource"), 0, "identifier columns come from the list");

    stack.emulator.reset_counters();
    let got = rows(
        &c,
        &format!("SELECT * FROM awscc.logs.log_groups WHERE identifier = '{id}' AND region = 'us-east-1'"),
    )
    .await
    .unwrap();
    assert_eq!(got.len(), 1);
    let counters = stack.emulator.counters();
    assert_eq!(
        (counters.calls("GetResource"), counters.calls("ListResources")),
        (1, 0),
        "{counters:?}"
    );

    // Within the TTL the same query makes no call at all.
    stack.emulator.reset_counters();
    rows(
        &c,
        &format!("SELECT * FROM awscc.logs.log_groups WHERE identifier = '{id}' AND region = 'us-east-1'"),
    )
    .await
    .unwrap();
    assert_eq!(stack.emulator.counters().total_calls(), 0);

    // A hint or the session setting bypasses the cache.
    rows(
        &c,
        &format!("SELECT /*+ NOCACHE */ * FROM awscc.logs.log_groups WHERE identifier = '{id}' AND region = 'us-east-1'"),
    )
    .await
    .unwrap();
    assert_eq!(stack.emulator.counters().calls("GetResource"), 1);
    c.simple_query("SET cloudpg.cache_ttl = 0").await.unwrap();
    rows(
        &c,
        &format!("SELECT * FROM awscc.logs.log_groups WHERE identifier = '{id}' AND region = 'us-east-1'"),
    )
    .await
    .unwrap();
    assert_eq!(stack.emulator.counters().calls("GetResource"), 2);

    // _list_only tables never read resources one by one.
    stack.emulator.reset_counters();
    rows(&c, "SELECT * FROM awscc.ec2.vpcs_list_only WHERE region = 'us-east-1'")
        .await
        .unwrap();
    let counters = stack.emulator.counters();
    assert_eq!(counters.calls("GetResource"), 0);
    assert_eq!(counters.calls("ListResources"), 1);

    // A full scan lists, then hydrates every listed resource.
    stack.emulator.reset_counters();
    let vpcs = rows(&c, "SELECT * FROM awscc.ec2.vpcs WHERE region = 'us-east-1'").await.unwrap();
    let counters = stack.emulator.counters();
    assert_eq!(counters.calls("ListResources"), 1);
    assert_eq!(counters.calls("GetResource"), vpcs.len() as u64);
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn concurrent_identical_cold_queries_share_one_set_of_calls() {
    let stack = Stack::start().await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(stack.client().await);
    }
    stack.emulator.reset_counters();
    let queries = clients
        .iter()
        .map(|c| rows(c, "SELECT * FROM awscc.sqs.queues WHERE region = 'us-east-1'"));
    let results = futures::future::join_all(queries).await;
    let counts: Vec<usize> = results.into_iter().map(|r| r.unwrap().len()).collect();
    assert!(counts.iter().all(|n| *n == counts[0] && *n >= 3), "{counts:?}");
    let counters = stack.emulator.counters();
    assert_eq!(counters.calls("ListResources"), 1, "{counters:?}");
    assert_eq!(counters.calls("GetResource"), counts[0] as u64, "{counters:?}");
    drop(clients);
    stack.stop().await;
}

#[tokio::test]
async fn limit_stops_paging_early() {
    let mut emu = EmulatorConfig::default();
    emu.resources_per_type_overrides.insert("AWS::S3::Bucket".into(), 10_000);
    let page = emu.page_size as u64;
    let stack = Stack::start_with(emu, Config::default()).await;
    let c = stack.client().await;
    let five = rows(&c, "SELECT bucket_name FROM awscc.s3.buckets WHERE region = 'us-east-1' LIMIT 5")
        .await
        .unwrap();
    assert_eq!(five.len(), 5);
    let counters = stack.emulator.counters();
    assert_eq!(
        (counters.calls("ListResources"), counters.calls("GetResource")),
        (1, 0),
        "{counters:?}"
    );

    stack.emulator.reset_counters();
    // Bypass the cache: the first query already cached the first page.
    let five = rows(
        &c,
        "SELECT /*+ NOCACHE */ * FROM awscc.s3.buckets WHERE region = 'us-east-1' LIMIT 5",
    )
    .await
    .unwrap();
    assert_eq!(five.len(), 5);
    let counters = stack.emulator.counters();
    assert_eq!(counters.calls("ListResources"), 1, "{counters:?}");
    assert!(counters.calls("GetResource") <= page, "at most one page hydrated: {counters:?}");
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn explain_shows_the_cloud_control_calls() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let plan = rows(
        &c,
        "EXPLAIN SELECT * FROM awscc.logs.log_groups WHERE region = 'us-east-1' AND identifier = 'x'",
    )
    .await
    .unwrap();
    let text: String = plan.iter().filter_map(|r| r.get(1)).collect::<Vec<_>>().join("\n");
    assert!(text.contains("ResourceScanExec: table=awscc.logs.log_groups"), "{text}");
    assert!(
        text.contains("identifiers=[x]") && text.contains("GetResource(AWS::Logs::LogGroup) x 1 per region"),
        "{text}"
    );
    let plan = rows(
        &c,
        "EXPLAIN SELECT * FROM awscc.eks.nodegroups WHERE region = 'us-east-1' AND cluster_name = 'c1'",
    )
    .await
    .unwrap();
    let text: String = plan.iter().filter_map(|r| r.get(1)).collect::<Vec<_>>().join("\n");
    assert!(
        text.contains(r#"ResourceModel={"ClusterName":"c1"}"#) && text.contains("hydrate"),
        "{text}"
    );
    assert_eq!(
        stack.emulator.counters().total_calls() - stack.emulator.counters().calls("ListResources"),
        0
    );
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn parent_filters_list_children() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let clusters = rows(&c, "SELECT name FROM awscc.eks.clusters WHERE region = 'us-east-1'")
        .await
        .unwrap();
    let cluster = clusters[0].get(0).unwrap().to_string();
    let groups = rows(
        &c,
        &format!("SELECT cluster_name, nodegroup_name FROM awscc.eks.nodegroups WHERE region = 'us-east-1' AND cluster_name = '{cluster}'"),
    )
    .await
    .unwrap();
    assert!(!groups.is_empty());
    assert!(groups.iter().all(|r| r.get(0) == Some(cluster.as_str())));
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn meta_commands_answer_as_result_sets() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let services = rows(&c, "SHOW SERVICES").await.unwrap();
    assert!(services.iter().any(|r| r.get(0) == Some("ec2")));
    let resources = rows(&c, "SHOW RESOURCES IN awscc.ec2").await.unwrap();
    let ice = resources.iter().find(|r| r.get(0) == Some("instance_connect_endpoints")).unwrap();
    assert_eq!(ice.get(2), Some("AWS::EC2::InstanceConnectEndpoint"));
    assert_eq!(ice.get(3), Some("SELECT,INSERT,UPDATE,DELETE"));
    let described = rows(&c, "DESCRIBE awscc.ec2.instance_connect_endpoints").await.unwrap();
    let subnet = described.iter().find(|r| r.get(0) == Some("subnet_id")).unwrap();
    assert_eq!((subnet.get(1), subnet.get(2)), (Some("text"), Some("required")));
    let version = rows(&c, "SELECT version()").await.unwrap();
    assert!(version[0].get(0).unwrap().starts_with("PostgreSQL 16"));
    let (code, message, hint) = db_error(c.simple_query("DESCRIBE awscc.ec2.instance_connect_endpoint").await.unwrap_err());
    assert_eq!(code, "42P01");
    assert!(
        message.contains("instance_connect_endpoint") && hint.contains("awscc.ec2.instance_connect_endpoints"),
        "{message} {hint}"
    );
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn session_default_regions() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    c.simple_query("SET cloudpg.regions = 'eu-west-1'").await.unwrap();
    let r = rows(&c, "SELECT DISTINCT region FROM awscc.s3.buckets_list_only").await.unwrap();
    assert_eq!(column(&r, 0), vec![Some("eu-west-1".to_string())]);
    let shown = rows(&c, "SHOW cloudpg.regions").await.unwrap();
    assert_eq!(shown[0].get(0), Some("eu-west-1"));
    let (code, message, hint) = db_error(c.simple_query("SET cloudpg.regions = 'mars-1'").await.unwrap_err());
    assert_eq!(code, "22023");
    assert!(message.contains("mars-1") && hint.contains("us-east-1"), "{message} {hint}");
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn errors_have_sqlstates_and_name_the_problem() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let err = |sql: &'static str| {
        let c = &c;
        async move { db_error(c.simple_query(sql).await.unwrap_err()) }
    };
    let (code, message, hint) = err("SELECT * FROM awscc.ec2.instance_connect_endpoint").await;
    assert_eq!(code, "42P01");
    assert!(message.contains("awscc.ec2.instance_connect_endpoint") && hint.contains("\"awscc.ec2.instance_connect_endpoints\""));
    let (code, message, _) = err("SELECT nope FROM awscc.ec2.instance_connect_endpoints").await;
    assert_eq!(code, "42703");
    assert!(message.contains("nope"), "{message}");
    // Amplify Studio components live under an app's environment that no listable type names.
    let (code, message, hint) = err("SELECT * FROM awscc.amplifyuibuilder.components WHERE region = 'us-east-1'").await;
    assert_eq!(code, "42P10");
    assert!(
        message.contains("app_id, environment_name") && message.contains("no resource type supplies") && hint.contains("app_id = '...'"),
        "{message} {hint}"
    );
    let (code, message, hint) = err("SELECT * FROM awscc.ec2.vpcs WHERE region = 'mars-1'").await;
    assert_eq!(code, "22023");
    assert!(message.contains("mars-1") && hint.contains("us-east-1"), "{message} {hint}");
    let (code, message, _) = err("SELEC 1").await;
    assert_eq!(code, "42601");
    assert!(message.contains("SELEC"), "{message}");
    let (code, _, _) = err("INSERT INTO awscc.logs.log_groups_list_only (log_group_name) VALUES ('x')").await;
    assert_eq!(code, "42809");
    // A type without a list handler needs identifiers.
    let no_list = cloudpg::catalog::Catalog::build(resource_schemas::Registry::shared().unwrap())
        .tables()
        .find(|t| t.kind == cloudpg::catalog::TableKind::Full && !t.can_list() && t.resource.exists_in("us-east-1"))
        .map(|t| t.qualified_name())
        .unwrap();
    let (code, message, hint) = db_error(c.simple_query(&format!("SELECT * FROM {no_list}")).await.unwrap_err());
    assert_eq!(code, "42P10");
    assert!(
        message.contains("no list handler") && hint.contains("identifier"),
        "{message} {hint}"
    );
    // The connection survives every error.
    assert_eq!(rows(&c, "SELECT 1").await.unwrap().len(), 1);
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn aws_errors_carry_code_region_and_type() {
    let mut emu = EmulatorConfig::default();
    emu.faults.rules.insert(
        "ListResources AWS::SQS::Queue".into(),
        FaultRule {
            throttle: Some(1.0),
            ..Default::default()
        },
    );
    emu.faults.rules.insert(
        "GetResource AWS::KMS::Key".into(),
        FaultRule {
            server_error: Some(1.0),
            ..Default::default()
        },
    );
    let mut config = Config::default();
    config.api.initial_backoff = Duration::from_millis(1);
    config.api.max_backoff = Duration::from_millis(20);
    config.api.max_attempts = 10;
    let stack = Stack::start_with(emu, config).await;
    let c = stack.client().await;
    let (code, message, hint) = db_error(
        c.simple_query("SELECT * FROM awscc.sqs.queues WHERE region = 'us-east-1'")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "53400");
    assert!(
        message.contains("ListResources")
            && message.contains("us-east-1")
            && message.contains("AWS::SQS::Queue")
            && message.contains("ThrottlingException: Rate exceeded"),
        "{message}"
    );
    assert!(hint.contains("retry"), "{hint}");
    assert_eq!(
        stack.emulator.counters().calls("ListResources"),
        10,
        "retried up to api.max_attempts"
    );
    let (code, message, _) = db_error(
        c.simple_query("SELECT * FROM awscc.kms.keys WHERE region = 'us-east-1' AND identifier = 'k'")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "58000");
    assert!(
        message.contains("ServiceInternalErrorException") && message.contains("AWS::KMS::Key"),
        "{message}"
    );
    drop(c);
    stack.stop().await;
}

/// Unquoted names fold to lower case, as in PostgreSQL, in every part of a table's name;
/// quoted ones are taken as written.
#[tokio::test]
async fn unquoted_table_names_fold_to_lower_case() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let got = rows(&c, "SELECT count(*) FROM AWSCC.EC2.VPCS WHERE region = 'us-east-1'")
        .await
        .unwrap();
    assert_eq!(got[0].get(0), Some("5"));
    let got = rows(&c, "SELECT count(*) FROM Aws.Ec2.Vpcs WHERE region = 'us-east-1'")
        .await
        .unwrap();
    assert_eq!(got[0].get(0), Some("5"));
    let (code, message, _) = db_error(c.simple_query("SELECT * FROM awscc.ec2.\"VPCS\"").await.unwrap_err());
    assert_eq!(code, "42P01");
    assert!(message.contains("relation \"awscc.ec2.VPCS\" does not exist"), "{message}");
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn integer_overflow_is_22003_not_a_wrong_answer() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    for (sql, message) in [
        ("SELECT 9223372036854775807::bigint + 1", "bigint out of range"),
        ("SELECT 2147483647::int4 + 1::int4", "integer out of range"),
        ("SELECT 10000000000 * 10000000000", "bigint out of range"),
        ("SELECT -9223372036854775807 - 2", "bigint out of range"),
    ] {
        let (code, got, _) = db_error(c.simple_query(sql).await.unwrap_err());
        assert_eq!((code.as_str(), got.as_str()), ("22003", message), "{sql}");
    }
    // The extended protocol, and a column: the same error, not a wrapped value.
    let e = c
        .query("SELECT $1::bigint * $2::bigint", &[&10_000_000_000i64, &10_000_000_000i64])
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|s| s.code()), Some("22003"));
    let e = c
        .simple_query("SELECT max(retention_in_days * 9223372036854775807) FROM awscc.logs.log_groups WHERE region = 'us-east-1'")
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|s| s.code()), Some("22003"), "{e:?}");
    // What does not overflow is arithmetic as before, under the names PostgreSQL gives.
    let ok = c.query("SELECT 2 + 3, 7 - 10 * 2 AS x, $1::bigint + 1", &[&41i64]).await.unwrap();
    assert_eq!(ok[0].columns()[0].name(), "?column?");
    assert_eq!(
        (ok[0].get::<_, i64>(0), ok[0].get::<_, i64>(1), ok[0].get::<_, i64>(2)),
        (5, -13, 42)
    );
    stack.stop().await;
}
