//! INSERT, UPDATE and DELETE through the wire (tokio-postgres, simple and extended protocol)
//! against the emulator; its counters prove which mutations were asked for and which succeeded.

use std::time::Duration;

use crate::common::{column, db_error, rows, Stack};
use cloudpg::config::Config;
use cloudpg_emulator::{EmulatorConfig, FaultRule};
use tokio_postgres::{Client, SimpleQueryMessage};

/// The row count of the last command of a simple query.
async fn affected(c: &Client, sql: &str) -> Result<u64, tokio_postgres::Error> {
    let messages = c.simple_query(sql).await?;
    messages
        .iter()
        .rev()
        .find_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .ok_or_else(|| panic!("no CommandComplete for {sql}"))
}

async fn first(c: &Client, sql: &str) -> String {
    rows(c, sql).await.unwrap()[0].get(0).unwrap().to_string()
}

fn fill(sql: &str, values: &[(&str, &str)]) -> String {
    let mut out = sql.to_string();
    for (placeholder, value) in values {
        out = out.replace(placeholder, value);
    }
    assert!(!out.contains("{{"), "unfilled placeholder in {out}");
    out
}

fn mutation_calls(stack: &Stack) -> u64 {
    let c = stack.emulator.counters();
    ["CreateResource", "UpdateResource", "DeleteResource"]
        .iter()
        .map(|op| c.calls.get(*op).copied().unwrap_or(0))
        .sum()
}

fn succeeded(stack: &Stack, key: &str) -> u64 {
    stack.emulator.counters().succeeded.get(key).copied().unwrap_or(0)
}

const SEED_000_REQUIRED: &str = "/*+ create */\nINSERT INTO awscc.ec2.instance_connect_endpoints (\n SubnetId,\n region\n)\nSELECT \n'{{ SubnetId }}',\n'{{ region }}';";
const SEED_000_ALL: &str = "/*+ create */\nINSERT INTO awscc.ec2.instance_connect_endpoints (\n SubnetId,\n ClientToken,\n PreserveClientIp,\n Tags,\n SecurityGroupIds,\n region\n)\nSELECT \n '{{ SubnetId }}',\n '{{ ClientToken }}',\n '{{ PreserveClientIp }}',\n '{{ Tags }}',\n '{{ SecurityGroupIds }}',\n '{{ region }}';";
const SEED_000_DELETE: &str =
    "/*+ delete */\nDELETE FROM awscc.ec2.instance_connect_endpoints\nWHERE data__Identifier = '<Id>'\nAND region = 'us-east-1';";
const SEED_001_REQUIRED: &str = "/*+ create */\nINSERT INTO aws.connect.instances (\n IdentityManagementType,\n Attributes,\n region\n)\nSELECT \n'{{ IdentityManagementType }}',\n '{{ Attributes }}',\n'{{ region }}';";
const SEED_001_ALL: &str = "/*+ create */\nINSERT INTO aws.connect.instances (\n IdentityManagementType,\n InstanceAlias,\n DirectoryId,\n Attributes,\n Tags,\n region\n)\nSELECT \n '{{ IdentityManagementType }}',\n '{{ InstanceAlias }}',\n '{{ DirectoryId }}',\n '{{ Attributes }}',\n '{{ Tags }}',\n '{{ region }}';";
const SEED_001_DELETE: &str =
    "/*+ delete */\nDELETE FROM aws.connect.instances\nWHERE data__Identifier = '<Arn>'\nAND region = 'us-east-1';";
const SEED_002_INSERT: &str = "/*+ create */\nINSERT INTO awscc.events.connections (\n Name,\n Description,\n AuthorizationType,\n AuthParameters,\n InvocationConnectivityParameters,\n KmsKeyIdentifier,\n region\n)\nSELECT \n'{{ Name }}',\n '{{ Description }}',\n '{{ AuthorizationType }}',\n '{{ AuthParameters }}',\n '{{ InvocationConnectivityParameters }}',\n '{{ KmsKeyIdentifier }}',\n'{{ region }}';";
const SEED_002_UPDATE: &str = "/*+ update */\nUPDATE awscc.events.connections\nSET data__PatchDocument = string('{{ {\n    \"Description\": description,\n    \"AuthorizationType\": authorization_type,\n    \"KmsKeyIdentifier\": kms_key_identifier\n} | generate_patch_document }}')\nWHERE region = '{{ region }}'\nAND data__Identifier = '<Name>';";
const SEED_002_DELETE: &str =
    "/*+ delete */\nDELETE FROM awscc.events.connections\nWHERE data__Identifier = '<Name>'\nAND region = 'us-east-1';";

const PATCH_PLACEHOLDER: &str = "{{ {\n    \"Description\": description,\n    \"AuthorizationType\": authorization_type,\n    \"KmsKeyIdentifier\": kms_key_identifier\n} | generate_patch_document }}";

#[tokio::test]
async fn seed_mutations_run_verbatim_and_take_effect() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let subnet = first(&c, "SELECT subnet_id FROM awscc.ec2.subnets WHERE region = 'us-east-1'").await;
    let sg = first(&c, "SELECT group_id FROM awscc.ec2.security_groups WHERE region = 'us-east-1'").await;

    // 000: both INSERTs, then the DELETE of each.
    let before = column(
        &rows(&c, "SELECT id FROM awscc.ec2.instance_connect_endpoints WHERE region = 'us-east-1'")
            .await
            .unwrap(),
        0,
    );
    let sql = fill(SEED_000_REQUIRED, &[("{{ SubnetId }}", &subnet), ("{{ region }}", "us-east-1")]);
    assert_eq!(affected(&c, &sql).await.unwrap(), 1);
    let sql = fill(
        SEED_000_ALL,
        &[
            ("{{ SubnetId }}", &subnet),
            ("{{ ClientToken }}", "seed-000-all"),
            ("{{ PreserveClientIp }}", "true"),
            ("{{ Tags }}", r#"[{"Key":"team","Value":"platform"}]"#),
            ("{{ SecurityGroupIds }}", &format!(r#"["{sg}"]"#)),
            ("{{ region }}", "us-east-1"),
        ],
    );
    assert_eq!(affected(&c, &sql).await.unwrap(), 1);
    let all = rows(
        &c,
        "SELECT id, preserve_client_ip, tags->0->>'Key', security_group_ids->>0 FROM awscc.ec2.instance_connect_endpoints WHERE region = 'us-east-1'",
    )
    .await
    .unwrap();
    assert_eq!(all.len(), before.len() + 2);
    let created: Vec<_> = all.iter().filter(|r| !before.contains(&r.get(0).map(str::to_string))).collect();
    assert_eq!(created.len(), 2);
    let full = created
        .iter()
        .find(|r| r.get(2) == Some("team"))
        .expect("the all-properties endpoint is listed");
    assert_eq!(full.get(1), Some("t"));
    assert_eq!(full.get(3), Some(sg.as_str()));
    let id = full.get(0).unwrap().to_string();
    assert_eq!(affected(&c, &SEED_000_DELETE.replace("<Id>", &id)).await.unwrap(), 1);
    let left = rows(&c, "SELECT id FROM awscc.ec2.instance_connect_endpoints WHERE region = 'us-east-1'")
        .await
        .unwrap();
    assert_eq!(left.len(), before.len() + 1);
    assert!(!column(&left, 0).contains(&Some(id)));

    // 001: both INSERTs; then the DELETE by ARN.
    let sql = fill(
        SEED_001_REQUIRED,
        &[
            ("{{ IdentityManagementType }}", "CONNECT_MANAGED"),
            ("{{ Attributes }}", r#"{"InboundCalls": true, "OutboundCalls": false}"#),
            ("{{ region }}", "us-east-1"),
        ],
    );
    assert_eq!(affected(&c, &sql).await.unwrap(), 1);
    let sql = fill(
        SEED_001_ALL,
        &[
            ("{{ IdentityManagementType }}", "EXISTING_DIRECTORY"),
            ("{{ InstanceAlias }}", "seed-contact-center"),
            ("{{ DirectoryId }}", "d-0123456789"),
            ("{{ Attributes }}", r#"{"InboundCalls": true, "OutboundCalls": true}"#),
            ("{{ Tags }}", r#"[{"Key":"env","Value":"test"}]"#),
            ("{{ region }}", "us-east-1"),
        ],
    );
    assert_eq!(affected(&c, &sql).await.unwrap(), 1);
    let arn = first(
        &c,
        "SELECT arn FROM aws.connect.instances WHERE region = 'us-east-1' AND instance_alias = 'seed-contact-center'",
    )
    .await;
    assert!(arn.starts_with("arn:aws:connect:us-east-1:"), "{arn}");
    assert_eq!(affected(&c, &SEED_001_DELETE.replace("<Arn>", &arn)).await.unwrap(), 1);
    assert!(rows(
        &c,
        "SELECT arn FROM aws.connect.instances WHERE region = 'us-east-1' AND instance_alias = 'seed-contact-center'"
    )
    .await
    .unwrap()
    .is_empty());

    // 002: INSERT, UPDATE with a patch document, DELETE.
    let sql = fill(
        SEED_002_INSERT,
        &[
            ("{{ Name }}", "seed-connection"),
            ("{{ Description }}", "first"),
            ("{{ AuthorizationType }}", "API_KEY"),
            (
                "{{ AuthParameters }}",
                r#"{"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": "secret"}}"#,
            ),
            (
                "{{ InvocationConnectivityParameters }}",
                r#"{"ResourceParameters": {"ResourceConfigurationArn": "arn:aws:vpc-lattice:us-east-1:123456789012:resourceconfiguration/rcfg-0123456789abcdef0"}}"#,
            ),
            ("{{ KmsKeyIdentifier }}", "alias/events"),
            ("{{ region }}", "us-east-1"),
        ],
    );
    assert_eq!(affected(&c, &sql).await.unwrap(), 1);
    let read = "SELECT description, authorization_type FROM awscc.events.connections WHERE region = 'us-east-1' AND identifier = 'seed-connection'";
    assert_eq!(rows(&c, read).await.unwrap()[0].get(0), Some("first"));
    let patch = r#"[{"op": "replace", "path": "/Description", "value": "second"}, {"op": "replace", "path": "/AuthorizationType", "value": "BASIC"}, {"op": "replace", "path": "/AuthParameters", "value": {"BasicAuthParameters": {"Username": "u", "Password": "p"}}}]"#;
    let sql = fill(
        &SEED_002_UPDATE.replace("<Name>", "seed-connection"),
        &[(PATCH_PLACEHOLDER, patch), ("{{ region }}", "us-east-1")],
    );
    assert_eq!(affected(&c, &sql).await.unwrap(), 1);
    let after = rows(&c, read).await.unwrap();
    assert_eq!((after[0].get(0), after[0].get(1)), (Some("second"), Some("BASIC")));
    assert_eq!(
        affected(&c, &SEED_002_DELETE.replace("<Name>", "seed-connection")).await.unwrap(),
        1
    );
    assert!(rows(&c, read).await.unwrap().is_empty());
    // Deleting it again affects no row, as in PostgreSQL.
    assert_eq!(
        affected(&c, &SEED_002_DELETE.replace("<Name>", "seed-connection")).await.unwrap(),
        0
    );
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn column_updates_build_the_patch_and_take_effect() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let name = first(&c, "SELECT name FROM awscc.events.connections WHERE region = 'us-east-1'").await;
    let read = format!(
        "SELECT description, kms_key_identifier FROM awscc.events.connections WHERE region = 'us-east-1' AND identifier = '{name}'"
    );
    rows(&c, &read).await.unwrap();
    let sql = format!(
        "UPDATE awscc.events.connections SET description = 'changed', KmsKeyIdentifier = 'alias/k' WHERE identifier = '{name}' AND region = 'us-east-1'"
    );
    assert_eq!(affected(&c, &sql).await.unwrap(), 1);
    // The cached read above was invalidated by the update.
    let r = rows(&c, &read).await.unwrap();
    assert_eq!((r[0].get(0), r[0].get(1)), (Some("changed"), Some("alias/k")));
    // NULL removes the property; a value computed from the current one reads it first.
    let sql = format!(
        "UPDATE awscc.events.connections SET kms_key_identifier = NULL, description = description || '!' WHERE identifier = '{name}'"
    );
    assert_eq!(affected(&c, &sql).await.unwrap(), 1);
    let r = rows(&c, &read).await.unwrap();
    assert_eq!((r[0].get(0), r[0].get(1)), (Some("changed!"), None));

    // Read-only and create-only columns are refused before any call.
    let calls = mutation_calls(&stack);
    let err = c
        .simple_query(&format!(
            "UPDATE awscc.events.connections SET arn = 'x' WHERE identifier = '{name}'"
        ))
        .await
        .unwrap_err();
    let (code, message, _) = db_error(err);
    assert_eq!(code, "428C9");
    assert!(message.contains("\"arn\"") && message.contains("read-only"), "{message}");
    let err = c
        .simple_query(&format!(
            "UPDATE awscc.events.connections SET name = 'other' WHERE identifier = '{name}'"
        ))
        .await
        .unwrap_err();
    let (code, message, hint) = db_error(err);
    assert_eq!(code, "55000");
    assert!(
        message.contains("\"name\"") && message.contains("create-only") && hint.contains("delete"),
        "{message} {hint}"
    );
    assert_eq!(mutation_calls(&stack), calls);
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn returning_requests_and_insert_select() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let created = rows(
        &c,
        "INSERT INTO awscc.logs.log_groups (log_group_name, retention_in_days, region) VALUES ('ret-a', 7, 'us-east-1'), ('ret-b', '14', 'us-east-1') \
         RETURNING RequestToken, identifier, OperationStatus, retention_in_days, arn, Operation AS op",
    )
    .await
    .unwrap();
    assert_eq!(created.len(), 2);
    assert_eq!(column(&created, 1), vec![Some("ret-a".to_string()), Some("ret-b".to_string())]);
    assert_eq!(column(&created, 2), vec![Some("SUCCESS".to_string()); 2]);
    assert_eq!(column(&created, 3), vec![Some("7".to_string()), Some("14".to_string())]);
    assert!(created[0].get(4).unwrap().starts_with("arn:aws:logs:us-east-1:"));
    assert_eq!(created[0].get(5), Some("CREATE"));
    let token = created[0].get(0).unwrap().to_string();

    // This server's requests, and Cloud Control's.
    let mine = rows(
        &c,
        &format!("SELECT operation, operation_status, type_name, identifier, user_name, client_token FROM cloudpg.requests WHERE request_token = '{token}'"),
    )
    .await
    .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (mine[0].get(0), mine[0].get(1), mine[0].get(2), mine[0].get(3), mine[0].get(4)),
        (
            Some("CREATE"),
            Some("SUCCESS"),
            Some("AWS::Logs::LogGroup"),
            Some("ret-a"),
            Some("postgres")
        )
    );
    assert!(!mine[0].get(5).unwrap().is_empty());
    let theirs = rows(
        &c,
        &format!("SELECT operation_status, identifier FROM awscc.cloudcontrol.resource_requests WHERE region = 'us-east-1' AND operation = 'CREATE' AND request_token = '{token}'"),
    )
    .await
    .unwrap();
    assert_eq!((theirs[0].get(0), theirs[0].get(1)), (Some("SUCCESS"), Some("ret-a")));

    // INSERT … SELECT reading another table: one endpoint per subnet.
    let subnets = rows(&c, "SELECT subnet_id FROM awscc.ec2.subnets WHERE region = 'us-east-1'")
        .await
        .unwrap()
        .len() as u64;
    let n = affected(
        &c,
        "INSERT INTO awscc.ec2.instance_connect_endpoints (subnet_id, region) SELECT subnet_id, region FROM awscc.ec2.subnets WHERE region = 'us-east-1'",
    )
    .await
    .unwrap();
    assert_eq!(n, subnets);
    assert_eq!(succeeded(&stack, "CREATE AWS::EC2::InstanceConnectEndpoint"), subnets);

    // RETURNING * is the table's columns; DELETE RETURNING names what went.
    let gone = rows(&c, "DELETE FROM awscc.logs.log_groups WHERE identifier IN ('ret-a', 'ret-b') AND region = 'us-east-1' RETURNING identifier, operation_status")
        .await
        .unwrap();
    assert_eq!(column(&gone, 0), vec![Some("ret-a".to_string()), Some("ret-b".to_string())]);
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn extended_protocol_binds_parameters_and_counts_rows() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let n = c
        .execute(
            "INSERT INTO awscc.logs.log_groups (log_group_name, retention_in_days, region) VALUES ($1, $2, $3)",
            &[&"ext-a", &30i64, &"us-east-1"],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let stmt = c
        .prepare("UPDATE awscc.logs.log_groups SET retention_in_days = $1 WHERE identifier = $2 AND region = 'us-east-1' RETURNING retention_in_days, request_token")
        .await
        .unwrap();
    assert_eq!(stmt.columns().len(), 2);
    assert_eq!(stmt.columns()[0].type_(), &tokio_postgres::types::Type::INT8);
    let r = c.query(&stmt, &[&60i64, &"ext-a"]).await.unwrap();
    assert_eq!(r[0].get::<_, i64>(0), 60);
    let n = c
        .execute(
            "DELETE FROM awscc.logs.log_groups WHERE identifier = $1 AND region = $2",
            &[&"ext-a", &"us-east-1"],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        c.execute(
            "DELETE FROM awscc.logs.log_groups WHERE identifier = $1 AND region = $2",
            &[&"ext-a", &"us-east-1"]
        )
        .await
        .unwrap(),
        0
    );
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn bulk_mutations_need_the_session_setting() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    affected(
        &c,
        "INSERT INTO awscc.logs.log_groups (log_group_name, retention_in_days, region) VALUES ('bulk-1', 3, 'us-east-1'), ('bulk-2', 3, 'us-east-1'), ('bulk-3', 3, 'us-east-1')",
    )
    .await
    .unwrap();
    let calls = mutation_calls(&stack);
    let bulk_update = "UPDATE awscc.logs.log_groups SET retention_in_days = 5 WHERE region = 'us-east-1' AND log_group_name LIKE 'bulk-%'";
    let (code, message, hint) = db_error(c.simple_query(bulk_update).await.unwrap_err());
    assert_eq!(code, "42P10");
    assert!(
        message.contains("would touch 3 resources") && message.contains("bulk-1"),
        "{message}"
    );
    assert!(hint.contains("SET cloudpg.allow_bulk_mutations = on"), "{hint}");
    assert_eq!(mutation_calls(&stack), calls, "refused before any mutation");
    c.simple_query("SET cloudpg.allow_bulk_mutations = on").await.unwrap();
    assert_eq!(rows(&c, "SHOW cloudpg.allow_bulk_mutations").await.unwrap()[0].get(0), Some("on"));
    assert_eq!(affected(&c, bulk_update).await.unwrap(), 3);
    let r = rows(
        &c,
        "SELECT DISTINCT retention_in_days FROM awscc.logs.log_groups WHERE region = 'us-east-1' AND log_group_name LIKE 'bulk-%'",
    )
    .await
    .unwrap();
    assert_eq!(column(&r, 0), vec![Some("5".to_string())]);
    assert_eq!(
        affected(
            &c,
            "DELETE FROM awscc.logs.log_groups WHERE region = 'us-east-1' AND log_group_name LIKE 'bulk-%'"
        )
        .await
        .unwrap(),
        3
    );
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn read_only_servers_and_users_refuse_mutations_before_any_call() {
    let mut config = Config::default();
    config.mutations.allow = Some(false);
    let stack = Stack::start_with(EmulatorConfig::default(), config).await;
    let c = stack.client().await;
    let (code, message, _) = db_error(
        c.simple_query("INSERT INTO awscc.logs.log_groups (log_group_name, region) VALUES ('x', 'us-east-1')")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "42501");
    assert!(message.contains("read-only") && message.contains("allow = true"), "{message}");
    assert_eq!(mutation_calls(&stack), 0);
    drop(c);
    stack.stop().await;

    let mut config = Config::default();
    config.mutations.writers = vec!["alice".into()];
    let stack = Stack::start_with(EmulatorConfig::default(), config).await;
    let c = stack.client().await;
    let (code, message, _) = db_error(
        c.simple_query("DELETE FROM awscc.logs.log_groups WHERE identifier = 'x' AND region = 'us-east-1'")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "42501");
    assert!(message.contains("\"postgres\"") && message.contains("role is reader"), "{message}");
    assert_eq!(mutation_calls(&stack), 0);
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn bad_input_is_refused_before_any_call() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let err = |sql: &'static str| {
        let c = &c;
        async move { db_error(c.simple_query(sql).await.unwrap_err()) }
    };
    let (code, message, _) =
        err("INSERT INTO awscc.ec2.instance_connect_endpoints (preserve_client_ip, region) VALUES (true, 'us-east-1')").await;
    assert_eq!(code, "23502");
    assert!(message.contains("SubnetId (subnet_id)"), "{message}");
    let (code, message, _) = err("INSERT INTO aws.connect.instances (instance_alias, region) SELECT 'a', 'us-east-1'").await;
    assert_eq!(code, "23502");
    assert!(
        message.contains("IdentityManagementType") && message.contains("Attributes"),
        "{message}"
    );
    let (code, message, _) =
        err("INSERT INTO awscc.logs.log_groups (log_group_name, retention_in_days, region) VALUES ('x', 'abc', 'us-east-1')").await;
    assert_eq!(code, "22P02");
    assert!(
        message.contains("\"retention_in_days\"") && message.contains("integer"),
        "{message}"
    );
    let (code, message, _) =
        err("INSERT INTO awscc.logs.log_groups (log_group_name, retention_in_days, region) VALUES ('x', true, 'us-east-1')").await;
    assert_eq!(code, "42804");
    assert!(
        message.contains("\"retention_in_days\"") && message.contains("integer"),
        "{message}"
    );
    let (code, message, _) = err(
        "INSERT INTO awscc.ec2.instance_connect_endpoints (subnet_id, security_group_ids, region) VALUES ('subnet-1', 'sg-1', 'us-east-1')",
    )
    .await;
    assert_eq!(code, "22P02");
    assert!(
        message.contains("\"security_group_ids\"") && message.contains("line 1 column"),
        "{message}"
    );
    let (code, message, hint) = err("INSERT INTO awscc.logs.log_groups (log_group_nam, region) VALUES ('x', 'us-east-1')").await;
    assert_eq!(code, "42703");
    assert!(
        message.contains("log_group_nam") && hint.contains("log_group_name"),
        "{message} {hint}"
    );
    let (code, _, _) = err("INSERT INTO awscc.logs.log_groups (arn, region) VALUES ('x', 'us-east-1')").await;
    assert_eq!(code, "428C9");
    let (code, message, _) = err("INSERT INTO awscc.logs.log_groups (log_group_name, region) VALUES ('x', 'mars-1')").await;
    assert_eq!(code, "22023");
    assert!(message.contains("mars-1"), "{message}");
    let (code, message, _) = err("INSERT INTO awscc.logs.log_groups (log_group_name, region) VALUES ('x', 'us-east-1', 3)").await;
    assert_eq!(code, "42601");
    assert!(message.contains("more expressions"), "{message}");
    let (code, message, _) = err("UPDATE awscc.logs.log_groups SET PatchDocument = '[{\"op\": \"replace\", \"path\": \"/RetentionInDays\"' WHERE identifier = 'x' AND region = 'us-east-1'").await;
    assert_eq!(code, "22P02");
    assert!(message.contains("PatchDocument") && message.contains("column"), "{message}");
    let (code, message, _) = err("UPDATE awscc.logs.log_groups SET PatchDocument = '[{\"op\": \"frob\", \"path\": \"/A\"}]' WHERE identifier = 'x' AND region = 'us-east-1'").await;
    assert_eq!(code, "22P02");
    assert!(message.contains("operation 1") && message.contains("frob"), "{message}");
    let (code, message, hint) = err("DELETE FROM awscc.logs.log_groups_list_only WHERE identifier = 'x'").await;
    assert_eq!(code, "42809");
    assert!(
        message.contains("_list_only") && hint.contains("awscc.logs.log_groups"),
        "{message} {hint}"
    );
    // EXPLAIN shows the requests and sends none.
    let plan = rows(
        &c,
        "EXPLAIN UPDATE awscc.logs.log_groups SET retention_in_days = '7' WHERE identifier IN ('a', 'b') AND region = 'us-east-1'",
    )
    .await
    .unwrap();
    let text: Vec<String> = column(&plan, 0).into_iter().flatten().collect();
    assert_eq!(text[0], "2 request(s) to Cloud Control for AWS::Logs::LogGroup");
    assert_eq!(
        text[1],
        r#"  UpdateResource in us-east-1: Identifier=a PatchDocument=[{"op":"add","path":"/RetentionInDays","value":7}]"#
    );
    let (code, _, _) = err("DELETE FROM pg_catalog.pg_class").await;
    assert_eq!(code, "42809");
    let (code, _, _) = err("UPDATE cloudpg.requests SET operation = 'x'").await;
    assert_eq!(code, "42809");
    let (code, _, _) = err("DELETE FROM awscc.logs.log_grups WHERE identifier = 'x'").await;
    assert_eq!(code, "42P01");
    let (code, message, _) = err("SET cloudpg.allow_bulk_mutations = perhaps").await;
    assert_eq!(code, "22023");
    assert!(message.contains("Boolean"), "{message}");
    assert_eq!(mutation_calls(&stack), 0);
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn cloud_control_failures_map_to_sqlstates() {
    let mut emulator = EmulatorConfig::default();
    emulator.faults.rules.insert(
        "CreateResource AWS::SQS::Queue".into(),
        FaultRule {
            fail_async: Some(1.0),
            ..FaultRule::default()
        },
    );
    let stack = Stack::start_with(emulator, Config::default()).await;
    let c = stack.client().await;

    // FAILED asynchronously: AWS's ErrorCode and StatusMessage, with the request token.
    let (code, message, hint) = db_error(
        c.simple_query("INSERT INTO awscc.sqs.queues (queue_name, region) VALUES ('doomed', 'us-east-1')")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "22023", "{message}");
    assert!(
        message.contains("GeneralServiceException") && message.contains("RequestToken"),
        "{message}"
    );
    assert!(hint.contains("cloudpg.requests"), "{hint}");
    let failed = rows(
        &c,
        "SELECT operation_status, error_code FROM cloudpg.requests WHERE type_name = 'AWS::SQS::Queue'",
    )
    .await
    .unwrap();
    assert_eq!(
        (failed[0].get(0), failed[0].get(1)),
        (Some("FAILED"), Some("GeneralServiceException"))
    );

    // AlreadyExists: a log group name that is taken.
    affected(
        &c,
        "INSERT INTO awscc.logs.log_groups (log_group_name, region) VALUES ('taken', 'us-east-1')",
    )
    .await
    .unwrap();
    let (code, message, _) = db_error(
        c.simple_query("INSERT INTO awscc.logs.log_groups (log_group_name, region) VALUES ('taken', 'us-east-1')")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "23505");
    assert!(message.contains("AlreadyExists") && message.contains("taken"), "{message}");

    // NotUpdatable: a patch of a create-only property.
    let (code, message, _) = db_error(
        c.simple_query("UPDATE awscc.logs.log_groups SET PatchDocument = string('[{\"op\": \"replace\", \"path\": \"/LogGroupName\", \"value\": \"new\"}]') WHERE identifier = 'taken' AND region = 'us-east-1'")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "55000");
    assert!(message.contains("NotUpdatable"), "{message}");

    // Several rows, one failing: the others still happen and the error says so.
    let (code, message, _) = db_error(
        c.simple_query("INSERT INTO awscc.logs.log_groups (log_group_name, region) VALUES ('fresh-1', 'us-east-1'), ('taken', 'us-east-1'), ('fresh-2', 'us-east-1')")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "23505");
    assert!(message.contains("1 of 3 rows failed, 2 created"), "{message}");
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn concurrent_operations_nowait_and_timeouts() {
    let mut emulator = EmulatorConfig {
        mutation_delay_ms: 1500,
        ..EmulatorConfig::default()
    };
    // Throttled polls are asked again; they never fail the statement or lose the request.
    emulator.faults.rules.insert(
        "GetResourceRequestStatus".into(),
        FaultRule {
            throttle: Some(0.5),
            ..FaultRule::default()
        },
    );
    let mut config = Config::default();
    config.mutations.await_timeout = Duration::from_millis(300);
    config.mutations.poll_initial = Duration::from_millis(50);
    config.mutations.poll_max = Duration::from_millis(200);
    let stack = Stack::start_with(emulator, config).await;
    let c = stack.client().await;

    // NOWAIT returns once accepted.
    let accepted = rows(
        &c,
        "/*+ NOWAIT */ INSERT INTO awscc.logs.log_groups (log_group_name, region) VALUES ('slow', 'us-east-1') RETURNING OperationStatus, RequestToken",
    )
    .await
    .unwrap();
    assert_eq!(accepted[0].get(0), Some("IN_PROGRESS"));
    let nowait_token = accepted[0].get(1).unwrap().to_string();

    // A second mutation of the busy resource: ConcurrentOperation (NOWAIT as a session setting).
    c.simple_query("SET cloudpg.nowait = on").await.unwrap();
    assert_eq!(rows(&c, "SHOW cloudpg.nowait").await.unwrap()[0].get(0), Some("on"));
    let (code, message, _) = db_error(
        c.simple_query("DELETE FROM awscc.logs.log_groups WHERE identifier = 'slow' AND region = 'us-east-1'")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "55P03", "{message}");
    assert!(message.contains("ConcurrentOperation"), "{message}");
    c.simple_query("SET cloudpg.nowait = off").await.unwrap();

    // Waiting longer than mutations.await_timeout: 57014, and the request stays tracked.
    let (code, message, hint) = db_error(
        c.simple_query("INSERT INTO awscc.logs.log_groups (log_group_name, region) VALUES ('slower', 'us-east-1')")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "57014");
    assert!(message.contains("RequestToken") && message.contains("IN_PROGRESS"), "{message}");
    assert!(hint.contains("cloudpg.requests"), "{hint}");
    let listed = rows(
        &c,
        "SELECT operation_status, request_token FROM cloudpg.requests WHERE identifier = 'slower'",
    )
    .await
    .unwrap();
    assert_eq!(listed[0].get(0), Some("IN_PROGRESS"));
    assert!(!listed[0].get(1).unwrap().is_empty());

    // The server keeps polling both to the end.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let statuses = rows(
            &c,
            "SELECT DISTINCT operation_status FROM cloudpg.requests WHERE operation = 'CREATE'",
        )
        .await
        .unwrap();
        if column(&statuses, 0) == vec![Some("SUCCESS".to_string())] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "requests never finished: {:?}",
            column(&statuses, 0)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token_status = rows(
        &c,
        &format!("SELECT operation_status FROM cloudpg.requests WHERE request_token = '{nowait_token}'"),
    )
    .await
    .unwrap();
    assert_eq!(token_status[0].get(0), Some("SUCCESS"));
    assert_eq!(succeeded(&stack, "CREATE AWS::Logs::LogGroup"), 2);
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn a_repeated_client_token_returns_the_original_request() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let sql = "INSERT INTO awscc.logs.log_groups (log_group_name, ClientToken, region) VALUES ('idem', 'token-1', 'us-east-1') RETURNING request_token";
    let first_token = first(&c, sql).await;
    let second_token = first(&c, sql).await;
    assert_eq!(first_token, second_token, "Cloud Control answered with the original request");
    assert_eq!(succeeded(&stack, "CREATE AWS::Logs::LogGroup"), 1);
    // The same token for different parameters is a conflict.
    let (code, message, _) = db_error(
        c.simple_query("INSERT INTO awscc.logs.log_groups (log_group_name, ClientToken, region) VALUES ('other', 'token-1', 'us-east-1')")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "55P03", "{message}");
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn lost_poll_answers_never_create_twice() {
    let mut emulator = EmulatorConfig::default();
    emulator.faults.rules.insert(
        "GetResourceRequestStatus".into(),
        FaultRule {
            server_error: Some(0.3),
            ..FaultRule::default()
        },
    );
    emulator.faults.rules.insert(
        "CreateResource".into(),
        FaultRule {
            throttle: Some(0.2),
            ..FaultRule::default()
        },
    );
    let mut config = Config::default();
    config.mutations.poll_initial = Duration::from_millis(20);
    config.mutations.poll_max = Duration::from_millis(100);
    config.api.initial_backoff = Duration::from_millis(5);
    let stack = Stack::start_with(emulator, config).await;
    let c = stack.client().await;
    let before = rows(
        &c,
        "SELECT log_group_name FROM awscc.logs.log_groups_list_only WHERE region = 'us-east-1'",
    )
    .await
    .unwrap()
    .len();
    let values: Vec<String> = (0..50).map(|i| format!("('lossy-{i:02}', 'us-east-1')")).collect();
    let sql = format!(
        "INSERT INTO awscc.logs.log_groups (log_group_name, region) VALUES {}",
        values.join(", ")
    );
    assert_eq!(affected(&c, &sql).await.unwrap(), 50);
    let counters = stack.emulator.counters();
    assert!(
        counters.faults.get("GetResourceRequestStatus").copied().unwrap_or(0) > 0,
        "faults were injected"
    );
    assert_eq!(counters.succeeded.get("CREATE AWS::Logs::LogGroup"), Some(&50));
    let after = rows(
        &c,
        "/*+ NOCACHE */ SELECT log_group_name FROM awscc.logs.log_groups_list_only WHERE region = 'us-east-1'",
    )
    .await
    .unwrap();
    assert_eq!(after.len(), before + 50);
    let statuses = rows(
        &c,
        "SELECT operation_status, count(*) FROM cloudpg.requests GROUP BY operation_status",
    )
    .await
    .unwrap();
    assert_eq!((statuses[0].get(0), statuses[0].get(1)), (Some("SUCCESS"), Some("50")));
    drop(c);
    stack.stop().await;
}

#[tokio::test]
async fn a_cancelled_statement_stops_waiting_but_the_request_goes_on() {
    let emulator = EmulatorConfig {
        mutation_delay_ms: 1500,
        ..EmulatorConfig::default()
    };
    let stack = Stack::start_with(emulator, Config::default()).await;
    let c = stack.client().await;
    let cancel = c.cancel_token();
    let started = tokio::time::Instant::now();
    let (result, _) = tokio::join!(
        c.simple_query("INSERT INTO awscc.logs.log_groups (log_group_name, region) VALUES ('cancelled', 'us-east-1')"),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            cancel.cancel_query(tokio_postgres::NoTls).await.unwrap();
        }
    );
    let (code, _, _) = db_error(result.unwrap_err());
    assert_eq!(code, "57014");
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "the wait ended on cancel, not on completion"
    );
    // The connection is usable and the request is still tracked to its end.
    let listed = rows(&c, "SELECT operation_status FROM cloudpg.requests WHERE identifier = 'cancelled'")
        .await
        .unwrap();
    assert_eq!(listed[0].get(0), Some("IN_PROGRESS"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rows(&c, "SELECT operation_status FROM cloudpg.requests WHERE identifier = 'cancelled'")
        .await
        .unwrap()[0]
        .get(0)
        != Some("SUCCESS")
    {
        assert!(tokio::time::Instant::now() < deadline, "the request never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(succeeded(&stack, "CREATE AWS::Logs::LogGroup"), 1);
    drop(c);
    stack.stop().await;
}

/// Account-level singletons (one per account and region): SELECT shows the one resource, and
/// a create while it exists is AWS's AlreadyExists (23505), whatever the type.
#[tokio::test]
async fn singletons_show_one_resource_and_refuse_a_second() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    for table in [
        "awscc.applicationsignals.discoveries",
        "awscc.ec2.snapshot_block_public_accesses",
        "awscc.macie.sessions",
        "awscc.xray.transaction_search_configs",
    ] {
        let got = rows(&c, &format!("SELECT identifier FROM {table} WHERE region = 'eu-west-1'"))
            .await
            .unwrap();
        assert_eq!(column(&got, 0), vec![Some("123456789012".to_string())], "{table}");
    }
    let (code, message, _) = db_error(
        c.simple_query("INSERT INTO awscc.applicationsignals.discoveries (region) VALUES ('eu-west-1')")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "23505");
    assert!(message.contains("AlreadyExists") && message.contains("123456789012"), "{message}");
    drop(c);
    stack.stop().await;
}

/// Deletes a resource behind the server's back, as another tool would: straight to Cloud
/// Control (the emulator), so the server's cache still holds it.
async fn delete_out_of_band(stack: &Stack, type_name: &str, identifier: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = serde_json::json!({"TypeName": type_name, "Identifier": identifier}).to_string();
    let addr = stack.emulator.addr();
    let request = format!(
        "POST / HTTP/1.1\r\nhost: {addr}\r\nx-amz-target: CloudApiService.DeleteResource\r\n\
         content-type: application/x-amz-json-1.0\r\n\
         authorization: AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/cloudcontrolapi/aws4_request, SignedHeaders=host, Signature=00\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// An UPDATE reads its targets past the cache: a resource deleted since a SELECT cached it is
/// not a target (UPDATE 0), rather than an UpdateResource that fails.
#[tokio::test]
async fn mutations_read_their_targets_uncached() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let name = first(
        &c,
        "SELECT log_group_name FROM awscc.logs.log_groups_list_only WHERE region = 'us-east-1' ORDER BY 1 LIMIT 1",
    )
    .await;
    // `|| ''` keeps the name from becoming an identifier: the targets are found by reading.
    let filter = format!("region = 'us-east-1' AND log_group_name || '' = '{name}'");
    // Every column, so the cache holds the full read an UPDATE would use.
    let select = format!("SELECT * FROM awscc.logs.log_groups WHERE {filter}");
    assert_eq!(rows(&c, &select).await.unwrap().len(), 1);
    delete_out_of_band(&stack, "AWS::Logs::LogGroup", &name).await;
    // The deletion finishes in the background: wait until Cloud Control no longer has it.
    let fresh = select.replace("SELECT", "SELECT /*+ NOCACHE */");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !rows(&c, &fresh).await.unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the log group was never deleted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rows(&c, &select).await.unwrap().len(), 1, "the SELECT still reads the cache");
    c.simple_query("SET cloudpg.allow_bulk_mutations = on").await.unwrap();
    let updated = affected(
        &c,
        &format!("UPDATE awscc.logs.log_groups SET retention_in_days = 7 WHERE {filter}"),
    )
    .await
    .unwrap();
    assert_eq!(updated, 0, "the deleted log group is no target");
    assert_eq!(stack.emulator.counters().calls("UpdateResource"), 0);
    drop(c);
    stack.stop().await;
}

/// A read in flight when a mutation invalidates the cache cannot put back what it read before
/// the mutation: the next read sees the change.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_in_flight_cannot_undo_an_invalidation() {
    let mut emulator = EmulatorConfig::default();
    emulator.faults.rules.insert(
        "ListResources AWS::SQS::Queue".into(),
        FaultRule {
            reply_latency_ms: Some(1_500),
            ..FaultRule::default()
        },
    );
    let stack = Stack::start_with(emulator, Config::default()).await;
    let (reader, writer) = (stack.client().await, stack.client().await);
    let select = "SELECT queue_url FROM awscc.sqs.queues_list_only WHERE region = 'us-east-1'";
    // The read lists before the INSERT and answers after it (the answer is held back).
    let read = tokio::spawn(async move {
        let got = rows(&reader, select).await.unwrap().len();
        (reader, got)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    writer
        .simple_query("INSERT INTO awscc.sqs.queues (queue_name, region) VALUES ('raced', 'us-east-1')")
        .await
        .unwrap();
    let (reader, before) = read.await.unwrap();
    let names = rows(&reader, select).await.unwrap();
    assert_eq!(names.len(), before + 1, "the next read is not the one from before the INSERT");
    drop((reader, writer));
    stack.stop().await;
}
