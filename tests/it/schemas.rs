//! Fresh schemas: `cloudpg schemas refresh` reads the emulator's CloudFormation registry (one
//! type's schema changed, one private type) into a directory the server then reads; every
//! locked table and column name stays where it was, and overrides that do not parse or would
//! rename a locked column are refused at startup, naming the file and the type.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cloudpg::catalog::lock::NameLock;
use cloudpg_emulator::{Emulator, EmulatorConfig};
use serde_json::{json, Value};

use crate::common::{column, rows, Process};

const LOG_GROUP: &str = "AWS::Logs::LogGroup";
const PRIVATE: &str = "AAA::Logs::LogGroup";

fn shipped_schema(type_name: &str) -> Value {
    resource_schemas::Registry::shipped()
        .unwrap()
        .get(type_name)
        .unwrap()
        .provider_schema()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cloudpg-schemas-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// AWS has added two properties to log groups (one whose natural name is an existing column's)
/// and the account has registered a private type whose table name sorts before ours.
fn changed_registry() -> EmulatorConfig {
    let mut log_group = shipped_schema(LOG_GROUP);
    log_group["properties"]["KMSKeyId"] = json!({"type": "integer", "description": "A newer key id."});
    log_group["properties"]["RetentionTier"] = json!({"type": "string"});
    let mut private = shipped_schema(LOG_GROUP);
    private["typeName"] = json!(PRIVATE);
    EmulatorConfig {
        described_schemas: [(LOG_GROUP.to_string(), log_group), (PRIVATE.to_string(), private)]
            .into_iter()
            .collect(),
        ..EmulatorConfig::default()
    }
}

/// Runs `cloudpg schemas refresh` against the emulator; (success, stdout, stderr).
async fn refresh(emu: &Emulator, dir: &Path, types: &[&str]) -> (bool, String, String) {
    let mut args = vec![
        "schemas".to_string(),
        "refresh".into(),
        "--directory".into(),
        dir.display().to_string(),
    ];
    for t in types {
        args.extend(["--type".to_string(), t.to_string()]);
    }
    let url = emu.endpoint_url();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cloudpg"))
            .args(&args)
            .env("AWS_ACCESS_KEY_ID", "AKIATESTTESTTESTTEST")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("CLOUDPG_AWS__ENDPOINT_URL", url)
            .output()
            .expect("cloudpg runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

async fn connect(process: &Process) -> tokio_postgres::Client {
    let conn = format!("host=127.0.0.1 port={} user=postgres dbname=awscc", process.addr.port());
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// (schema.table, column) of every resource column the server lists.
async fn listed_columns(c: &tokio_postgres::Client) -> BTreeSet<(String, String)> {
    let listed = rows(
        c,
        "SELECT table_schema || '.' || table_name, column_name FROM information_schema.columns \
         WHERE table_catalog = 'awscc' AND table_schema NOT IN ('cloudpg', 'cloudcontrol', 'pg_catalog', 'information_schema', 'public')",
    )
    .await
    .unwrap();
    column(&listed, 0)
        .into_iter()
        .zip(column(&listed, 1))
        .map(|(t, c)| (t.unwrap(), c.unwrap()))
        .collect()
}

async fn columns_of(c: &tokio_postgres::Client, table: &str) -> Vec<(String, String)> {
    let (schema, name) = table.split_once('.').unwrap();
    let listed = rows(
        c,
        &format!(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = '{schema}' \
             AND table_name = '{name}' ORDER BY ordinal_position"
        ),
    )
    .await
    .unwrap();
    column(&listed, 0)
        .into_iter()
        .zip(column(&listed, 1))
        .map(|(n, t)| (n.unwrap(), t.unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_adds_what_aws_changed_and_keeps_every_locked_name() {
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), changed_registry()).await.unwrap();
    let dir = temp_dir("refresh");
    let (ok, out, err) = refresh(&emu, &dir, &["AWS::Logs::*", "AAA::*"]).await;
    assert!(ok, "refresh failed: {out}\n{err}");
    assert!(out.contains("(1 private)"), "{out}");
    assert!(out.contains(&format!("  {LOG_GROUP}\n")), "{out}");
    assert!(out.contains(&format!("  {PRIVATE} (new type)\n")), "{out}");
    assert!(out.contains("Written to") && out.contains(": 2."), "{out}");
    let log_types = resource_schemas::Registry::shipped()
        .unwrap()
        .types()
        .filter(|t| t.type_name.starts_with("AWS::Logs::") && t.handlers.is_some() && t.exists_in("us-east-1"))
        .count();
    assert!(
        out.contains(&format!("Unchanged from the shipped schemas: {}.", log_types - 1)),
        "{out}"
    );
    let calls = emu.counters().calls;
    assert!(calls.get("cloudformation:ListTypes").is_some_and(|n| *n >= 2), "{calls:?}");
    assert_eq!(
        calls.get("cloudformation:DescribeType").copied(),
        Some(log_types as u64 + 1),
        "only the chosen types are described"
    );
    let lock_path = dir.join("names.lock.json");
    let lock = NameLock::read(&lock_path).unwrap();
    assert_eq!(lock.get(PRIVATE).unwrap().table, "logs.log_groups_aaa");
    assert_eq!(
        lock.get(LOG_GROUP).unwrap().columns().get("KMSKeyId").map(String::as_str),
        Some("kms_key_id_2")
    );

    // Refreshing again changes no name.
    let before = std::fs::read_to_string(&lock_path).unwrap();
    let (ok, out, err) = refresh(&emu, &dir, &["AWS::Logs::LogGroup", "AAA::*"]).await;
    assert!(ok, "{out}\n{err}");
    assert_eq!(std::fs::read_to_string(&lock_path).unwrap(), before);

    let config = format!("[schemas]\ndirectory = {:?}\n", dir.display().to_string());
    let log = dir.join("server.log");
    let (url, log_path) = (emu.endpoint_url(), log.clone());
    let server = tokio::task::spawn_blocking(move || Process::serve_against(&url, &config, &log_path))
        .await
        .unwrap();
    let c = connect(&server).await;
    let log_groups = columns_of(&c, "logs.log_groups").await;
    let type_of = |name: &str| log_groups.iter().find(|(n, _)| n == name).map(|(_, t)| t.as_str());
    assert_eq!(type_of("kms_key_id"), Some("text"), "{log_groups:?}");
    assert_eq!(type_of("kms_key_id_2"), Some("bigint"), "{log_groups:?}");
    assert_eq!(type_of("retention_tier"), Some("text"), "{log_groups:?}");
    let private = columns_of(&c, "logs.log_groups_aaa").await;
    assert!(private.iter().any(|(n, _)| n == "log_group_name"), "{private:?}");

    // Every name the shipped lock holds is where it was.
    let listed = listed_columns(&c).await;
    let mut checked = 0;
    for locked in NameLock::shipped().types.values() {
        for name in locked.columns().values() {
            assert!(
                listed.contains(&(locked.table.clone(), name.clone())),
                "{}.{name} is gone",
                locked.table
            );
            checked += 1;
        }
    }
    assert!(checked > 15_000, "{checked} locked columns checked");

    let overrides = rows(
        &c,
        "SELECT type_name, status, reason, source FROM cloudpg.schema_overrides ORDER BY 1",
    )
    .await
    .unwrap();
    assert_eq!(column(&overrides, 0), vec![Some(PRIVATE.into()), Some(LOG_GROUP.into())]);
    assert!(column(&overrides, 1).iter().all(|s| s.as_deref() == Some("in use")));
    assert!(column(&overrides, 3)
        .iter()
        .all(|s| s.as_deref().is_some_and(|s| s.starts_with("DescribeType in us-east-1"))));
    // The new columns read like any other.
    let read = rows(
        &c,
        "SELECT log_group_name, kms_key_id_2, retention_tier FROM awscc.logs.log_groups WHERE region = 'us-east-1'",
    )
    .await
    .unwrap();
    assert!(!read.is_empty());
    drop(server);
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn overrides_that_do_not_parse_or_rename_locked_columns_are_refused_at_startup() {
    let dir = temp_dir("refused");
    let types = dir.join("types");
    std::fs::create_dir_all(&types).unwrap();
    std::fs::write(types.join("AWS-Logs-LogGroup.json"), "{\"schema\": {\"typeName\": ").unwrap();
    // `RoleArn` renamed `ROLEArn`: its natural column name is the locked `role_arn`.
    let mut destination = shipped_schema("AWS::Logs::Destination");
    let props = destination["properties"].as_object_mut().unwrap();
    let role = props.remove("RoleArn").unwrap();
    props.insert("ROLEArn".into(), role);
    for list in ["required", "readOnlyProperties", "createOnlyProperties"] {
        if let Some(Value::Array(items)) = destination.get_mut(list) {
            for item in items.iter_mut() {
                match item.as_str() {
                    Some("/properties/RoleArn") => *item = json!("/properties/ROLEArn"),
                    Some("RoleArn") => *item = json!("ROLEArn"),
                    _ => {}
                }
            }
        }
    }
    std::fs::write(types.join("AWS-Logs-Destination.json"), json!({"schema": destination}).to_string()).unwrap();
    let config = format!("[schemas]\ndirectory = {:?}\n", dir.display().to_string());
    let log = dir.join("server.log");
    let log_path = log.clone();
    let server = tokio::task::spawn_blocking(move || Process::serve_with_log(&config, &log_path, "info"))
        .await
        .unwrap();
    let c = connect(&server).await;
    let refused = rows(
        &c,
        "SELECT type_name, file, status, reason FROM cloudpg.schema_overrides ORDER BY 1",
    )
    .await
    .unwrap();
    assert_eq!(
        column(&refused, 0),
        vec![Some("AWS::Logs::Destination".into()), Some(LOG_GROUP.into())]
    );
    assert!(
        column(&refused, 2).iter().all(|s| s.as_deref() == Some("refused")),
        "{:?}",
        column(&refused, 3)
    );
    let reasons = column(&refused, 3);
    let destination_reason = reasons[0].clone().unwrap();
    assert!(
        destination_reason.contains("would rename column role_arn (property RoleArn is gone; ROLEArn would be read as role_arn_2)"),
        "{destination_reason}"
    );
    assert!(reasons[1].as_deref().unwrap().contains("not a schema override file"), "{reasons:?}");
    let log_text = std::fs::read_to_string(&log).unwrap();
    for name in ["AWS-Logs-LogGroup.json", "AWS-Logs-Destination.json"] {
        assert!(
            log_text.lines().any(|l| l.contains("schema override refused") && l.contains(name)),
            "{name} not named in the log:\n{log_text}"
        );
    }
    assert!(log_text.contains("AWS::Logs::Destination"), "{log_text}");
    // The shipped schemas stay in use.
    let destinations = columns_of(&c, "logs.destinations").await;
    assert!(destinations.iter().any(|(n, _)| n == "role_arn"), "{destinations:?}");
    assert!(!destinations.iter().any(|(n, _)| n == "role_arn_2"), "{destinations:?}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_can_refresh_at_startup() {
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), changed_registry()).await.unwrap();
    let dir = temp_dir("on-start");
    let config = format!("[schemas]\ndirectory = {:?}\nrefresh_on_start = true\n", dir.display().to_string());
    let (url, log_path) = (emu.endpoint_url(), dir.join("server.log"));
    let server = tokio::task::spawn_blocking(move || Process::serve_against(&url, &config, &log_path))
        .await
        .unwrap();
    let c = connect(&server).await;
    let log_groups = columns_of(&c, "logs.log_groups").await;
    assert!(log_groups.iter().any(|(n, _)| n == "kms_key_id_2"), "{log_groups:?}");
    assert!(!columns_of(&c, "logs.log_groups_aaa").await.is_empty());
    assert!(dir.join("types").join("AWS-Logs-LogGroup.json").exists());
    drop(server);
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn live_check_finds_where_aws_disagrees_and_the_server_applies_it() {
    let emu = Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        EmulatorConfig {
            withdrawn_types: vec!["AWS::EC2::VPC eu-west-1".into()],
            ..EmulatorConfig::default()
        },
    )
    .await
    .unwrap();
    let dir = temp_dir("live-check");
    let config = dir.join("cloudpg.toml");
    std::fs::write(&config, "regions = [\"us-east-1\", \"eu-west-1\"]\n").unwrap();
    let args: Vec<String> = [
        "catalog",
        "live-check",
        "--config",
        &config.display().to_string(),
        "--type",
        "AWS::EC2::VPC",
        "--type",
        "AWS::EC2::Subnet",
        "--directory",
        &dir.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let url = emu.endpoint_url();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cloudpg"))
            .args(&args)
            .env("AWS_ACCESS_KEY_ID", "AKIATESTTESTTESTTEST")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("CLOUDPG_AWS__ENDPOINT_URL", url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Checked 2 types in 2 places"), "{stdout}");
    assert!(
        stdout.contains(
            "AWS::EC2::VPC in eu-west-1 of account default: the catalog assumes it exists in the region, AWS shows it does not exist"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("AWS::EC2::Subnet in"), "no finding where AWS agrees: {stdout}");
    let facts: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("facts.json")).unwrap()).unwrap();
    let findings = facts["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{facts}");
    assert!(findings[0]["source"].as_str().unwrap().contains("TypeNotFoundException"), "{facts}");
    assert_eq!(emu.counters().calls.get("CreateResource"), None, "read-only");

    let server_config = format!(
        "regions = [\"us-east-1\", \"eu-west-1\"]\n[schemas]\ndirectory = {:?}\n",
        dir.display().to_string()
    );
    let (url, log_path) = (emu.endpoint_url(), dir.join("server.log"));
    let server = tokio::task::spawn_blocking(move || Process::serve_against(&url, &server_config, &log_path))
        .await
        .unwrap();
    let c = connect(&server).await;
    // Without the finding, eu-west-1 would answer TypeNotFoundException.
    rows(&c, "SELECT count(*) FROM awscc.ec2.vpcs").await.unwrap();
    let applied = rows(&c, "SELECT type_name, status, reason FROM cloudpg.schema_overrides")
        .await
        .unwrap();
    assert_eq!(applied[0].get(0), Some("AWS::EC2::VPC"));
    assert_eq!(applied[0].get(1), Some("in use"));
    assert!(applied[0].get(2).unwrap().contains("does not exist in the region"));
    drop(server);
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn catalog_commands_show_the_schema_directory() {
    let dir = temp_dir("catalog-cli");
    let mut schema = shipped_schema(LOG_GROUP);
    schema["properties"]["RetentionTier"] = json!({"type": "string"});
    std::fs::create_dir_all(dir.join("types")).unwrap();
    std::fs::write(
        dir.join("types").join("AWS-Logs-LogGroup.json"),
        json!({"schema": schema}).to_string(),
    )
    .unwrap();
    let config = dir.join("cloudpg.toml");
    std::fs::write(&config, format!("[schemas]\ndirectory = {:?}\n", dir.display().to_string())).unwrap();
    let describe = |with_config: bool| {
        let mut args = vec!["catalog".to_string(), "describe".into(), "logs.log_groups".into()];
        if with_config {
            args.extend(["--config".to_string(), config.display().to_string()]);
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cloudpg"))
            .args(&args)
            .env("XDG_DATA_HOME", dir.join("no-data-home"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(describe(true).contains("retention_tier"));
    assert!(
        !describe(false).contains("retention_tier"),
        "without the config, the shipped schema"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
