//! Several AWS accounts in one server: a server process with `[[accounts]]` (named profiles
//! from an AWS config file, and roles assumed through the emulator's STS) against an emulator
//! in the test, which keeps each account's resources apart by access key.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_cloudcontrol::Client as CcClient;
use cloudpg_emulator::{Emulator, EmulatorConfig};
use tokio_postgres::NoTls;

use crate::common::{column, db_error, rows, Process};

const PROD: &str = "AKIAPROD111111111111";
const DEV: &str = "AKIADEV0222222222222";
const AUDIT_ID: &str = "333333333333";
const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "us-west-2"];

/// Profiles `prod` and `dev` in a shared credentials file, and the variables that point the
/// SDK at it (and nowhere else).
pub(crate) struct Profiles {
    dir: std::path::PathBuf,
}

impl Profiles {
    pub(crate) fn write() -> Profiles {
        let dir = std::env::temp_dir().join(format!("cloudpg-accounts-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("credentials"),
            format!("[prod]\naws_access_key_id = {PROD}\naws_secret_access_key = s\n\n[dev]\naws_access_key_id = {DEV}\naws_secret_access_key = s\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("config"),
            "[profile prod]\nregion = us-east-1\n\n[profile dev]\nregion = eu-west-1\n",
        )
        .unwrap();
        Profiles { dir }
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "AWS_SHARED_CREDENTIALS_FILE".into(),
                self.dir.join("credentials").display().to_string(),
            ),
            ("AWS_CONFIG_FILE".into(), self.dir.join("config").display().to_string()),
        ]
    }
}

impl Drop for Profiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) async fn start_server(emu: &Emulator, profiles: &Profiles, config: &str) -> (Process, std::path::PathBuf) {
    let log = profiles.dir.join("server.log");
    let (url, config, log_path, env) = (emu.endpoint_url(), config.to_string(), log.clone(), profiles.env());
    let process = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Process::serve_against_with_env(&url, &config, &log_path, &env)
    })
    .await
    .unwrap();
    (process, log)
}

async fn connect(process: &Process) -> tokio_postgres::Client {
    let conn = format!("host=127.0.0.1 port={} user=postgres dbname=awscc", process.addr.port());
    let (client, connection) = tokio_postgres::connect(&conn, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

async fn sdk(emu: &Emulator, key: &str, region: &str) -> CcClient {
    let cfg = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(emu.endpoint_url())
        .region(aws_config::Region::new(region.to_string()))
        .credentials_provider(aws_credential_types::Credentials::new(key, "s", None, None, "test"))
        .load()
        .await;
    CcClient::new(&cfg)
}

/// How many resources of a type the account holds in a region, as the emulator says.
async fn count_in(emu: &Emulator, key: &str, region: &str, type_name: &str) -> usize {
    let c = sdk(emu, key, region).await;
    let mut n = 0;
    let mut token = None;
    loop {
        let page = c.list_resources().type_name(type_name).set_next_token(token).send().await.unwrap();
        n += page.resource_descriptions().len();
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return n;
        }
    }
}

pub(crate) async fn create(emu: &Emulator, key: &str, region: &str, type_name: &str, desired: &str) {
    let c = sdk(emu, key, region).await;
    let out = c
        .create_resource()
        .type_name(type_name)
        .desired_state(desired)
        .send()
        .await
        .unwrap();
    let token = out.progress_event().and_then(|e| e.request_token()).unwrap().to_string();
    for _ in 0..200 {
        let status = c.get_resource_request_status().request_token(&token).send().await.unwrap();
        let done = status
            .progress_event()
            .and_then(|e| e.operation_status())
            .map(|s| s.as_str().to_string());
        if done.as_deref() == Some("SUCCESS") {
            return;
        }
        assert_ne!(done.as_deref(), Some("FAILED"), "{status:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("creating {type_name} never finished");
}

pub(crate) fn two_accounts(regions: &str) -> String {
    format!(
        "regions = {regions}\n[cache]\nttl = \"0s\"\n[mutations]\nallow = true\njournal = \"off\"\n\
         [[accounts]]\nname = \"prod\"\nprofile = \"prod\"\n\n[[accounts]]\nname = \"dev\"\nprofile = \"dev\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_accounts_in_three_regions_are_read_apart_and_concurrently() {
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorConfig::default())
        .await
        .unwrap();
    // One more VPC in prod's us-east-1, so the accounts' counts differ.
    create(&emu, PROD, "us-east-1", "AWS::EC2::VPC", r#"{"CidrBlock":"10.9.0.0/16"}"#).await;
    let profiles = Profiles::write();
    let (process, log) = start_server(&emu, &profiles, &two_accounts(r#"["us-east-1", "eu-west-1", "us-west-2"]"#)).await;
    let c = connect(&process).await;

    let grouped = rows(
        &c,
        "SELECT account, region, count(*) FROM awscc.ec2.vpcs_list_only GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .await
    .unwrap();
    let got: BTreeMap<(String, String), usize> = grouped
        .iter()
        .map(|r| {
            let text = |i: usize| r.get(i).unwrap().to_string();
            ((text(0), text(1)), text(2).parse().unwrap())
        })
        .collect();
    let mut expected = BTreeMap::new();
    for (account, key) in [("dev", DEV), ("prod", PROD)] {
        for region in REGIONS {
            expected.insert(
                (account.to_string(), region.to_string()),
                count_in(&emu, key, region, "AWS::EC2::VPC").await,
            );
        }
    }
    assert_eq!(got, expected, "six groups, each the account's own count");
    assert_ne!(got[&("prod".into(), "us-east-1".into())], got[&("dev".into(), "us-east-1".into())]);

    // WHERE account = 'prod' calls with prod's credentials only.
    emu.reset_counters();
    let n = rows(&c, "SELECT count(*) FROM awscc.ec2.vpcs_list_only WHERE account = 'prod'")
        .await
        .unwrap();
    assert_eq!(
        column(&n, 0)[0].as_deref().map(|v| v.parse::<usize>().unwrap()),
        Some(expected.iter().filter(|((a, _), _)| a == "prod").map(|(_, v)| v).sum())
    );
    let counters = emu.counters();
    assert_eq!(counters.calls_in("111111111111", "ListResources"), 3, "{counters:?}");
    assert_eq!(counters.calls_by("222222222222"), 0, "{counters:?}");
    assert!(
        counters.app_names.iter().any(|a| a.starts_with("cloudpg-")),
        "calls carry cloudpg's app name: {:?}",
        counters.app_names
    );

    // The ids come from STS, and an unknown account is named with the ones there are.
    let ids = rows(&c, "SELECT name, account_id, credentials FROM cloudpg.accounts ORDER BY name")
        .await
        .unwrap();
    assert_eq!(column(&ids, 1), vec![Some("222222222222".into()), Some("111111111111".into())]);
    assert_eq!(column(&ids, 2)[1].as_deref(), Some("profile prod"));
    let (code, _, hint) = db_error(
        c.simple_query("SELECT * FROM awscc.ec2.vpcs WHERE account = 'staging'")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "22023");
    assert!(hint.contains("prod, dev"), "{hint}");

    // A mutation names its account; with two and none named, 42P10 lists them.
    let (code, message, hint) = db_error(
        c.simple_query("INSERT INTO awscc.logs.log_groups (log_group_name, region) VALUES ('where', 'us-east-1')")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "42P10", "{message}");
    assert!(hint.contains("prod, dev"), "{hint}");
    c.simple_query("INSERT INTO awscc.logs.log_groups (log_group_name, region, account) VALUES ('only-dev', 'us-east-1', 'dev')")
        .await
        .unwrap();
    let dev_groups = rows(
        &c,
        "SELECT account FROM awscc.logs.log_groups_list_only WHERE log_group_name = 'only-dev'",
    )
    .await
    .unwrap();
    assert_eq!(column(&dev_groups, 0), vec![Some("dev".into())]);
    let requests = rows(&c, "SELECT account, region FROM cloudpg.requests").await.unwrap();
    assert_eq!(column(&requests, 0), vec![Some("dev".into())]);
    c.simple_query("DELETE FROM awscc.logs.log_groups WHERE identifier = 'only-dev' AND account = 'dev' AND region = 'us-east-1'")
        .await
        .unwrap();
    assert_eq!(
        count_in(&emu, DEV, "us-east-1", "AWS::Logs::LogGroup").await,
        count_in(&emu, PROD, "us-east-1", "AWS::Logs::LogGroup").await
    );
    drop(process);
    let _ = std::fs::read_to_string(log);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn roles_are_assumed_and_one_that_cannot_be_fails_only_its_account() {
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorConfig::default())
        .await
        .unwrap();
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Condition": {"StringEquals": {"sts:ExternalId": "cloudpg"}}}]});
    let role = serde_json::json!({"RoleName": "Inventory", "AssumeRolePolicyDocument": trust}).to_string();
    create(&emu, &format!("AKIAAUDIT000{AUDIT_ID}"), "us-east-1", "AWS::IAM::Role", &role).await;
    let profiles = Profiles::write();
    let config = format!(
        "regions = [\"us-east-1\"]\n[cache]\nttl = \"0s\"\n\
         [[accounts]]\nname = \"prod\"\nprofile = \"prod\"\n\n\
         [[accounts]]\nname = \"audit\"\nrole_arn = \"arn:aws:iam::{AUDIT_ID}:role/Inventory\"\nexternal_id = \"cloudpg\"\nsource_account = \"prod\"\n\n\
         [[accounts]]\nname = \"locked\"\nrole_arn = \"arn:aws:iam::444444444444:role/Inventory\"\nsource_profile = \"prod\"\n"
    );
    let (process, log) = start_server(&emu, &profiles, &config).await;
    let c = connect(&process).await;

    let audit = rows(&c, "SELECT count(*) FROM awscc.ec2.vpcs_list_only WHERE account = 'audit'")
        .await
        .unwrap();
    let in_audit = count_in(&emu, &format!("AKIAAUDIT000{AUDIT_ID}"), "us-east-1", "AWS::EC2::VPC").await;
    assert_eq!(column(&audit, 0), vec![Some(in_audit.to_string())]);
    assert!(
        emu.counters().calls_in(AUDIT_ID, "ListResources") >= 1,
        "the list ran with the role's credentials"
    );
    let ids = rows(
        &c,
        "SELECT account_id, error FROM cloudpg.accounts WHERE name IN ('audit', 'locked') ORDER BY name",
    )
    .await
    .unwrap();
    assert_eq!(column(&ids, 0), vec![Some(AUDIT_ID.into()), None]);
    assert!(
        column(&ids, 1)[1].as_deref().unwrap_or("").contains("AccessDenied"),
        "{:?}",
        column(&ids, 1)
    );

    // The role that cannot be assumed fails the statement, naming its account.
    let (code, message, _) = db_error(c.simple_query("SELECT count(*) FROM awscc.ec2.vpcs_list_only").await.unwrap_err());
    assert_eq!(code, "42501", "{message}");
    assert!(
        message.contains("account locked") && message.contains("STS AssumeRole: AccessDenied"),
        "{message}"
    );
    assert!(message.len() < 600, "one readable line, not a dump: {message}");

    // With on_error = 'warn': the other accounts' rows and one WARNING for it.
    let (w, mut notices) =
        crate::common::client_with_notices(&format!("host=127.0.0.1 port={} user=postgres dbname=awscc", process.addr.port())).await;
    w.simple_query("SET cloudpg.on_error = 'warn'").await.unwrap();
    let by_account = rows(&w, "SELECT account, count(*) FROM awscc.ec2.vpcs_list_only GROUP BY 1 ORDER BY 1")
        .await
        .unwrap();
    assert_eq!(column(&by_account, 0), vec![Some("audit".into()), Some("prod".into())]);
    let mut warnings = Vec::new();
    while let Ok(n) = notices.try_recv() {
        warnings.push(n);
    }
    let about_locked: Vec<_> = warnings.iter().filter(|n| n.message().contains("account locked")).collect();
    assert_eq!(about_locked.len(), 1, "{warnings:?}");
    assert_eq!(about_locked[0].severity(), "WARNING");
    drop(process);
    let _ = std::fs::read_to_string(log);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_region_reads_a_global_type_once_per_account_and_skips_regions_not_enabled() {
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorConfig::default())
        .await
        .unwrap();
    let profiles = Profiles::write();
    let mut config = two_accounts(r#"["*"]"#);
    config = config.replace("ttl = \"0s\"", "ttl = \"5m\"");
    let (process, _log) = start_server(&emu, &profiles, &config).await;
    let (c, mut notices) =
        crate::common::client_with_notices(&format!("host=127.0.0.1 port={} user=postgres dbname=awscc", process.addr.port())).await;

    let roles = rows(&c, "SELECT account, region, count(*) FROM awscc.iam.roles GROUP BY 1, 2 ORDER BY 1")
        .await
        .unwrap();
    assert_eq!(column(&roles, 0), vec![Some("dev".into()), Some("prod".into())]);
    assert_eq!(
        column(&roles, 1),
        vec![Some("us-east-1".into()), Some("us-east-1".into())],
        "a global type's home region"
    );
    let counters = emu.counters();
    assert_eq!(counters.calls_in("111111111111", "ListResources"), 1, "{counters:?}");
    assert_eq!(counters.calls_in("222222222222", "ListResources"), 1, "{counters:?}");

    // A regional type in every region: regions the accounts have not enabled are skipped with
    // one NOTICE each, and not asked again while the cache remembers.
    let vpcs = rows(&c, "SELECT count(*) FROM awscc.ec2.vpcs_list_only").await.unwrap();
    assert!(column(&vpcs, 0)[0].as_deref().unwrap().parse::<u64>().unwrap() > 0);
    let mut skipped = Vec::new();
    while let Ok(n) = notices.try_recv() {
        skipped.push(n.message().to_string());
    }
    assert!(
        skipped
            .iter()
            .any(|m| m.contains("af-south-1 of account prod") && m.contains("not enabled")),
        "{skipped:?}"
    );
    let before = emu.counters().calls("ListResources");
    rows(&c, "SELECT /*+ NOCACHE */ count(*) FROM awscc.ec2.vpcs_list_only")
        .await
        .unwrap();
    let again = emu.counters().calls("ListResources") - before;
    let enabled = 2 * resource_regions_enabled("AWS::EC2::VPC");
    assert_eq!(again as usize, enabled, "only enabled regions are called again");
    emu.shutdown().await;
}

/// Regions of the aws partition where a type exists and no opt-in is needed.
fn resource_regions_enabled(type_name: &str) -> usize {
    let registry = resource_schemas::Registry::shared().unwrap();
    registry
        .get(type_name)
        .unwrap()
        .regions
        .iter()
        .filter(|r| {
            resource_schemas::geography::Partition::of(r) == resource_schemas::geography::Partition::Aws
                && !resource_schemas::geography::is_opt_in(r)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_emulator_serves_profile_accounts_and_users_see_only_their_accounts() {
    let profiles = Profiles::write();
    let config = "regions = [\"us-east-1\"]\n[cache]\nttl = \"0s\"\n[mutations]\nallow = true\njournal = \"off\"\n\
                  [auth]\nmethod = \"trust\"\n\
                  [[auth.users]]\nname = \"devonly\"\npassword_env = \"DEVONLY_PASSWORD\"\nrole = \"writer\"\naccounts = [\"dev\"]\n\n\
                  [[auth.users]]\nname = \"admin\"\npassword_env = \"DEVONLY_PASSWORD\"\n\n\
                  [[accounts]]\nname = \"prod\"\nprofile = \"prod\"\n\n[[accounts]]\nname = \"dev\"\nprofile = \"dev\"\n"
        .to_string();
    let env = profiles.env();
    let process = tokio::task::spawn_blocking(move || {
        let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.push(("DEVONLY_PASSWORD", "unused-with-trust"));
        Process::serve_with_env(&config, &env)
    })
    .await
    .unwrap();
    let as_user = |user: &str| format!("host=127.0.0.1 port={} user={user} dbname=awscc", process.addr.port());
    let (c, connection) = tokio_postgres::connect(&as_user("admin"), NoTls).await.unwrap();
    tokio::spawn(connection);
    let ids = rows(&c, "SELECT name, account_id FROM cloudpg.accounts ORDER BY name")
        .await
        .unwrap();
    assert_eq!(column(&ids, 1), vec![Some("222222222222".into()), Some("111111111111".into())]);
    let both = rows(&c, "SELECT DISTINCT account FROM awscc.ec2.vpcs_list_only ORDER BY 1")
        .await
        .unwrap();
    assert_eq!(column(&both, 0), vec![Some("dev".into()), Some("prod".into())]);

    let (d, connection) = tokio_postgres::connect(&as_user("devonly"), NoTls).await.unwrap();
    tokio::spawn(connection);
    let mine = rows(&d, "SELECT DISTINCT account FROM awscc.ec2.vpcs_list_only").await.unwrap();
    assert_eq!(column(&mine, 0), vec![Some("dev".into())]);
    // The same text prepared by both users: each reads its own accounts.
    let accounts = "SELECT DISTINCT account FROM awscc.ec2.vpcs_list_only ORDER BY 1";
    for client in [&c, &d] {
        let statement = client.prepare(accounts).await.unwrap();
        let read: Vec<String> = client.query(&statement, &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
        let expected = if std::ptr::eq(client, &d) {
            vec!["dev"]
        } else {
            vec!["dev", "prod"]
        };
        assert_eq!(read, expected);
    }
    let (code, message, _) = db_error(
        d.simple_query("SELECT * FROM awscc.ec2.vpcs_list_only WHERE account = 'prod'")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "42501", "{message}");
    assert!(message.contains("'prod'") && message.contains("dev"), "{message}");
    // With one account it may use, a mutation needs no account named.
    d.simple_query("INSERT INTO awscc.logs.log_groups (log_group_name) VALUES ('devonly-group')")
        .await
        .unwrap();
    let made = rows(
        &c,
        "SELECT account FROM awscc.logs.log_groups_list_only WHERE log_group_name = 'devonly-group'",
    )
    .await
    .unwrap();
    assert_eq!(column(&made, 0), vec![Some("dev".into())]);
}

#[test]
fn account_configs_that_cannot_work_stop_the_server_naming_the_account() {
    let cases = [
        (
            "[[accounts]]\nname = \"prod\"\nprofile = \"p\"\nrole_arn = \"arn:aws:iam::111111111111:role/R\"\n",
            "\"prod\"",
            "not both",
        ),
        ("[[accounts]]\nname = \"dev\"\nregions = [\"us-east-7\"]\n", "\"dev\"", "us-east-7"),
        ("[[accounts]]\nname = \"ops\"\n\n[[accounts]]\nname = \"ops\"\n", "\"ops\"", "twice"),
        (
            "[[auth.users]]\nname = \"u\"\npassword_env = \"HOME\"\naccounts = [\"qa\"]\n\n[[accounts]]\nname = \"ops\"\n",
            "\"qa\"",
            "not one of the configured accounts",
        ),
    ];
    for (config, account, why) in cases {
        let dir = std::env::temp_dir().join(format!("cloudpg-bad-account-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cloudpg.toml");
        std::fs::write(&path, config).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cloudpg"))
            .args(["serve", "--emulator", "--listen", "127.0.0.1:0", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).ok();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{config} started");
        assert!(stderr.contains(account) && stderr.contains(why), "{config}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_account_throttled_does_not_slow_or_fail_another() {
    let mut emulator_config = EmulatorConfig::default();
    emulator_config.faults.rules.insert(
        "111111111111".into(),
        cloudpg_emulator::FaultRule {
            throttle: Some(1.0),
            ..Default::default()
        },
    );
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), emulator_config).await.unwrap();
    let profiles = Profiles::write();
    let config = two_accounts(r#"["us-east-1"]"#).replace(
        "[mutations]",
        "[api]\nmax_attempts = 4\ninitial_backoff = \"10ms\"\nmax_backoff = \"50ms\"\n[mutations]",
    );
    let (process, _log) = start_server(&emu, &profiles, &config).await;
    let (c, mut notices) =
        crate::common::client_with_notices(&format!("host=127.0.0.1 port={} user=postgres dbname=awscc", process.addr.port())).await;
    let (code, message, _) = db_error(c.simple_query("SELECT count(*) FROM awscc.ec2.vpcs_list_only").await.unwrap_err());
    assert_eq!(code, "53400", "{message}");
    assert!(message.contains("account prod"), "{message}");
    c.simple_query("SET cloudpg.on_error = 'warn'").await.unwrap();
    let by_account = rows(&c, "SELECT account, count(*) FROM awscc.ec2.vpcs_list_only GROUP BY 1")
        .await
        .unwrap();
    assert_eq!(column(&by_account, 0), vec![Some("dev".into())]);
    let warnings: Vec<String> = std::iter::from_fn(|| notices.try_recv().ok())
        .map(|n| n.message().to_string())
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("account prod") && w.contains("Throttling")),
        "{warnings:?}"
    );
    // dev's calls went through at their first attempt, with no limit learnt from prod's throttling.
    let dev_calls = rows(&c, "SELECT attempts, rate_limit FROM cloudpg.api_calls WHERE account = 'dev'")
        .await
        .unwrap();
    assert!(!dev_calls.is_empty());
    assert!(
        column(&dev_calls, 0).iter().all(|a| a.as_deref() == Some("1")),
        "{:?}",
        column(&dev_calls, 0)
    );
    assert!(column(&dev_calls, 1).iter().all(Option::is_none), "{:?}", column(&dev_calls, 1));
    emu.shutdown().await;
}
