//! The real psql client: the seed pages' SELECTs from a script, and psql's own catalog
//! commands (`\dn`, `\dt`, `\d`, `\d+`, `\l`, `\df`), which run its pg_catalog queries;
//! expanded output and `\copy … to` a file.

use std::net::SocketAddr;
use std::process::Command;

use crate::common::Stack;

/// psql against a server address; run off the async runtime because it blocks.
struct Psql(SocketAddr);

impl Psql {
    /// (success, stdout, stderr)
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new("psql")
            .args([
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                &self.0.port().to_string(),
                "-U",
                "postgres",
                "awscc",
            ])
            .args(args)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .expect("psql is installed (scripts/install-test-deps.sh)");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

async fn psql(stack: &Stack, args: &[&str]) -> (bool, String, String) {
    let (p, args) = (Psql(stack.addr), args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    tokio::task::spawn_blocking(move || p.run(&args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .expect("psql task")
}

const SEED_SCRIPT: &str = "SELECT\nregion,\nname\nFROM awscc.events.connections_list_only\nWHERE region = 'us-east-1';\n\
SELECT\nregion,\nconnection_arn\nFROM aws.codeconnections.connections\nWHERE region = 'us-east-1'\n;\n\
SELECT\nregion,\nid,\narn,\nidentity_management_type,\ninstance_alias,\ncreated_time,\nservice_role,\ninstance_status,\ndirectory_id,\nattributes,\ntags\nFROM aws.connect.instances\nWHERE region = 'us-east-1';\n\
SELECT\nregion,\nid,\nsubnet_id,\nclient_token,\npreserve_client_ip,\ntags,\nsecurity_group_ids\nFROM awscc.ec2.instance_connect_endpoints\nWHERE region = 'us-east-1' AND data__Identifier = '<Id>';\n";

#[tokio::test(flavor = "multi_thread")]
async fn seed_selects_from_a_psql_script() {
    let stack = Stack::start().await;
    let script = std::env::temp_dir().join(format!("cloudpg-seeds-{}.sql", std::process::id()));
    std::fs::write(&script, SEED_SCRIPT).unwrap();
    let (ok, out, err) = psql(&stack, &["-f", &script.to_string_lossy()]).await;
    let _ = std::fs::remove_file(&script);
    assert!(ok, "{err}");
    assert!(out.contains("connection-0000"), "{out}");
    assert!(out.contains("arn:aws:codeconnections:us-east-1:123456789012:"), "{out}");
    assert!(out.contains("(0 rows)"), "the <Id> placeholder finds nothing: {out}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_catalog_commands() {
    let stack = Stack::start().await;
    let schemas = psql(&stack, &["-c", "\\dn"]).await;
    assert!(schemas.0 && schemas.1.contains(" ec2 "), "{schemas:?}");
    let tables = psql(&stack, &["-c", "\\dt ec2.*"]).await;
    assert!(tables.0 && tables.1.contains("instance_connect_endpoints"), "{tables:?}");
    let table = psql(&stack, &["-c", "\\d ec2.vpcs"]).await;
    assert!(
        table.0 && table.1.contains("Table \"ec2.vpcs\"") && table.1.contains("| boolean"),
        "{table:?}"
    );
    let error = psql(&stack, &["-c", "SELECT * FROM awscc.ec2.vpc"]).await;
    assert!(
        !error.0 && error.2.contains("relation \"awscc.ec2.vpc\" does not exist"),
        "{error:?}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_describes_a_table_with_its_types_comments_and_primary_key() {
    let stack = Stack::start().await;
    let (ok, out, err) = psql(&stack, &["-c", "\\d+ awscc.ec2.instance_connect_endpoints"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("Table \"ec2.instance_connect_endpoints\""), "{out}");
    let line = |column: &str| {
        out.lines()
            .find(|l| l.split('|').next().map(str::trim) == Some(column))
            .unwrap_or_else(|| panic!("no line for {column}: {out}"))
            .to_string()
    };
    let cells = |column: &str| line(column).split('|').map(|c| c.trim().to_string()).collect::<Vec<_>>();
    assert_eq!(cells("security_group_ids")[1], "jsonb", "{out}");
    assert_eq!(cells("preserve_client_ip")[1], "boolean", "{out}");
    assert_eq!(cells("region")[3], "not null", "{out}");
    assert!(
        line("subnet_id").contains("The ID of the subnet"),
        "the schema's description is the column comment: {out}"
    );
    assert!(
        out.contains("\"instance_connect_endpoints_pkey\" PRIMARY KEY, btree (region, identifier)"),
        "{out}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_lists_databases_and_functions_and_expands_records() {
    let stack = Stack::start().await;
    let (ok, out, err) = psql(&stack, &["-c", "\\l"]).await;
    assert!(ok && out.contains("List of databases") && out.contains(" awscc "), "{out}{err}");
    let (ok, out, err) = psql(&stack, &["-c", "\\df pg_catalog.pg_get_*def"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("pg_get_constraintdef") && out.contains("| text ") && out.contains("oid, boolean"),
        "{out}"
    );
    let (ok, out, err) = psql(
        &stack,
        &[
            "-c",
            "\\x",
            "-c",
            "SELECT id, region FROM awscc.ec2.instance_connect_endpoints WHERE region = 'us-east-1' ORDER BY id LIMIT 2",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("Expanded display is on."), "{out}");
    assert!(out.contains("-[ RECORD 2 ]"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("region | us-east-1")), "{out}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_copies_a_query_to_a_file() {
    let stack = Stack::start().await;
    let file = std::env::temp_dir().join(format!("cloudpg-copy-{}.csv", std::process::id()));
    let command = format!(
        "\\copy (SELECT id, subnet_id FROM awscc.ec2.instance_connect_endpoints WHERE region = 'us-east-1' ORDER BY id) to '{}' with (format csv, header)",
        file.display()
    );
    let (ok, out, err) = psql(&stack, &["-c", &command]).await;
    let written = std::fs::read_to_string(&file).unwrap_or_default();
    let _ = std::fs::remove_file(&file);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "COPY 5");
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines.len(), 6, "{written}");
    assert_eq!(lines[0], "id,subnet_id");
    assert!(
        lines[1..].iter().all(|l| l.starts_with("ice-") && l.contains(",subnet-")),
        "{written}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn seed_mutations_report_postgres_command_tags() {
    let stack = Stack::start().await;
    let script = "\\set ON_ERROR_STOP 1\n\
/*+ create */\nINSERT INTO awscc.events.connections (\n Name,\n Description,\n AuthorizationType,\n AuthParameters,\n InvocationConnectivityParameters,\n KmsKeyIdentifier,\n region\n)\nSELECT \n'psql-connection',\n 'made by psql',\n 'API_KEY',\n '{\"ApiKeyAuthParameters\": {\"ApiKeyName\": \"k\", \"ApiKeyValue\": \"v\"}}',\n '{\"ResourceParameters\": {\"ResourceConfigurationArn\": \"arn:aws:vpc-lattice:us-east-1:123456789012:resourceconfiguration/rcfg-0123456789abcdef0\"}}',\n 'alias/events',\n'us-east-1';\n\
/*+ update */\nUPDATE awscc.events.connections\nSET data__PatchDocument = string('[{\"op\": \"replace\", \"path\": \"/Description\", \"value\": \"patched\"}]')\nWHERE region = 'us-east-1'\nAND data__Identifier = 'psql-connection';\n\
SELECT description FROM awscc.events.connections WHERE region = 'us-east-1' AND identifier = 'psql-connection';\n\
/*+ delete */\nDELETE FROM awscc.events.connections\nWHERE data__Identifier = 'psql-connection'\nAND region = 'us-east-1';\n";
    let dir = std::env::temp_dir().join(format!("cloudpg-psql-dml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("dml.sql");
    std::fs::write(&file, script).unwrap();
    let (ok, stdout, stderr) = psql(&stack, &["-f", file.to_str().unwrap()]).await;
    std::fs::remove_dir_all(&dir).ok();
    assert!(ok, "{stdout}\n{stderr}");
    let tags: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("INSERT") || l.starts_with("UPDATE") || l.starts_with("DELETE"))
        .collect();
    assert_eq!(tags, vec!["INSERT 0 1", "UPDATE 1", "DELETE 1"], "{stdout}");
    assert!(stdout.contains("patched"), "{stdout}");
    stack.stop().await;
}

/// StackQL's spellings of tables and columns, as its pages print them, run unchanged; the
/// catalog lists each table once, under our name.
const STACKQL_SCRIPT: &str = "SELECT region, api_id FROM awscc.appsync.graphql_apis WHERE region = 'us-east-1' LIMIT 1;\n\
SELECT count(*) AS ec2fleets FROM awscc.ec2.ec2fleets WHERE region = 'us-east-1';\n\
SELECT count(*) AS mfa FROM awscc.iam.virtualmfa_devices_list_only WHERE region = 'us-east-1';\n\
SELECT count(*) AS s3s FROM awscc.datasync.location_s3s WHERE region = 'us-east-1';\n\
SELECT count(*) AS lustres FROM awscc.datasync.locationf_sx_lustres WHERE region = 'us-east-1';\n\
SELECT count(*) AS v2s FROM awscc.apigateway.domain_name_v2s WHERE region = 'us-east-1';\n\
SELECT v_pn_gateway_id FROM awscc.ec2.vpn_gateways WHERE region = 'us-east-1' AND v_pn_gateway_id IS NOT NULL LIMIT 1;\n\
SELECT g.max_ac_u FROM awscc.rds.db_shard_groups g WHERE region = 'us-east-1' ORDER BY g.max_ac_u LIMIT 1;\n\
SELECT saml_provider_uu_id FROM awscc.iam.saml_providers WHERE region = 'us-east-1' LIMIT 1;\n\
INSERT INTO awscc.ec2.eip_associations (e_ip, allocation_id, region) SELECT 'eipalloc-1', 'eipalloc-1', 'us-east-1' RETURNING e_ip, allocation_id;\n\
SELECT table_name FROM information_schema.tables WHERE table_schema = 'appsync' AND table_name LIKE 'graph%apis';\n";

#[tokio::test(flavor = "multi_thread")]
async fn stackql_spellings_run_verbatim() {
    let stack = Stack::start().await;
    let script = std::env::temp_dir().join(format!("cloudpg-stackql-{}.sql", std::process::id()));
    std::fs::write(&script, STACKQL_SCRIPT).unwrap();
    let (ok, out, err) = psql(&stack, &["-f", &script.to_string_lossy()]).await;
    let _ = std::fs::remove_file(&script);
    assert!(ok, "{err}\n{out}");
    for header in ["api_id", "v_pn_gateway_id", "max_ac_u", "saml_provider_uu_id", "e_ip"] {
        let named = |l: &str| l.split('|').any(|c| c.trim() == header);
        assert!(out.lines().any(named), "no {header} column in {out}");
    }
    assert!(out.contains("us-east-1 | a-"), "{out}");
    assert!(out.contains("vg-") && out.contains("eipalloc-1 | eipalloc-1"), "{out}");
    assert!(!out.contains("\n        0\n"), "every StackQL table lists rows: {out}");
    assert!(out.contains(" graph_ql_apis\n(1 row)"), "the catalog shows our name only: {out}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn child_types_list_under_every_parent() {
    let stack = Stack::start().await;
    let sql = "SELECT cluster_name, id FROM awscc.eks.nodegroups_list_only WHERE region = 'us-east-1' ORDER BY 1";
    let (ok, out, err) = psql(&stack, &["-At", "-c", sql]).await;
    assert!(ok, "{err}");
    let rows: Vec<(&str, &str)> = out.lines().filter_map(|l| l.split_once('|')).collect();
    let clusters = stack.emulator.counters().calls_for("ListResources", "AWS::EKS::Cluster");
    let lists = stack.emulator.counters().calls_for("ListResources", "AWS::EKS::Nodegroup");
    assert_eq!(clusters, 1, "one list of the clusters");
    let distinct: std::collections::BTreeSet<&str> = rows.iter().map(|(c, _)| *c).collect();
    assert!(distinct.len() >= 2 && distinct.iter().all(|c| c.starts_with("cluster-")), "{out}");
    assert_eq!(lists, 5, "one nodegroup list per cluster (the emulator seeds 5): {out}");
    assert!(rows.iter().all(|(_, id)| id.starts_with("n-")), "{out}");

    // The full table fans out the same way, and a cap below the fan-out stops it first.
    let (ok, out, err) = psql(
        &stack,
        &[
            "-At",
            "-c",
            "SELECT count(*) FROM awscc.amplify.branches WHERE region = 'us-east-1'",
        ],
    )
    .await;
    assert!(ok && out.trim().parse::<u32>().is_ok_and(|n| n > 0), "{out}{err}");
    let before = stack.emulator.counters().calls_for("ListResources", "AWS::AppConfig::Deployment");
    let capped = "SET cloudpg.max_api_calls = 6; SELECT * FROM awscc.appconfig.deployments_list_only WHERE region = 'us-east-1'";
    let (ok, _, err) = psql(&stack, &["-c", capped]).await;
    assert!(
        !ok && err.contains("ListResources of AWS::AppConfig::Deployment under each of"),
        "{err}"
    );
    assert!(err.contains("cloudpg.max_api_calls"), "{err}");
    let after = stack.emulator.counters().calls_for("ListResources", "AWS::AppConfig::Deployment");
    assert_eq!(before, after, "no child list went out");
    stack.stop().await;
}
