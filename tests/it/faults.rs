//! Cloud Control failing under the server: throttling at 30% and 60% of calls still gives
//! exact rows (retries bounded by a budget of time, not a quota shared by all calls), and
//! throttling that outlasts the budget is 53400 naming type, region and the throttling.
//! Backoffs are set to milliseconds so the retries do not sleep in real time.

use std::time::Duration;

use cloudpg::config::Config;
use cloudpg_emulator::{EmulatorConfig, FaultRule};

use crate::common::{db_error, rows, Stack};

const RESOURCES: usize = 2000;
const COUNT: &str =
    "SELECT count(*), count(retention_in_days), sum(length(log_group_name)) FROM awscc.logs.log_groups WHERE region = 'us-east-1'";

fn quick_retries() -> Config {
    let mut config = Config::default();
    config.api.initial_backoff = Duration::from_millis(1);
    config.api.max_backoff = Duration::from_millis(20);
    config.api.retry_budget = Duration::from_secs(60);
    config.cache.ttl = Duration::ZERO;
    config
}

fn log_groups(throttle: f64) -> EmulatorConfig {
    let mut emulator = EmulatorConfig::default();
    emulator
        .resources_per_type_overrides
        .insert("AWS::Logs::LogGroup".into(), RESOURCES);
    emulator.faults.global = FaultRule {
        throttle: Some(throttle),
        ..FaultRule::default()
    };
    emulator
}

/// (count, non-null retention, a checksum of the names) of the 2,000 log groups.
async fn scan(stack: &Stack) -> Vec<Option<String>> {
    let c = stack.client().await;
    let got = rows(&c, COUNT).await.unwrap_or_else(|e| panic!("scan failed: {e:?}"));
    (0..3).map(|i| got[0].get(i).map(str::to_string)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_scans_return_exact_rows() {
    let stack = Stack::start_with(log_groups(0.0), quick_retries()).await;
    let truth = scan(&stack).await;
    assert_eq!(truth[0].as_deref(), Some("2000"));
    for throttle in [0.3, 0.6] {
        let mut faults = stack.emulator.config();
        faults.faults.global.throttle = Some(throttle);
        stack.emulator.set_config(faults);
        stack.emulator.reset_counters();
        let started = std::time::Instant::now();
        let got = scan(&stack).await;
        let took = started.elapsed();
        assert_eq!(got, truth, "{throttle} of calls throttled");
        let counters = stack.emulator.counters();
        let throttled = counters.faults.values().sum::<u64>();
        // For the closing notes' table of fault scenarios.
        eprintln!(
            "fault scenario: {:.0}% throttled: rows {}/{} in {:.1} s, {} attempts, {throttled} throttled",
            throttle * 100.0,
            got[0].as_deref().unwrap_or("?"),
            truth[0].as_deref().unwrap_or("?"),
            took.as_secs_f64(),
            counters.calls.values().sum::<u64>(),
        );
        assert!(
            throttled as f64 > 0.2 * counters.calls.values().sum::<u64>() as f64,
            "the faults were injected: {counters:?}"
        );
        // The retries show in the recent calls: some calls took more than one attempt.
        let c = stack.client().await;
        let retried = rows(&c, "SELECT count(*) FROM cloudpg.api_calls WHERE attempts > 1").await.unwrap();
        assert!(retried[0].get(0).and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n > 0));
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_call_rate_adapts_to_a_rate_limit() {
    // The API answers 100 calls a second per region and throttles the rest, as AWS does.
    let mut emulator = log_groups(0.0);
    emulator.resources_per_type_overrides.insert("AWS::Logs::LogGroup".into(), 500);
    let stack = Stack::start_with(emulator, quick_retries()).await;
    let truth = scan(&stack).await;
    let mut limited = stack.emulator.config();
    limited.faults.max_rate = Some(100.0);
    stack.emulator.set_config(limited);
    stack.emulator.reset_counters();
    assert_eq!(scan(&stack).await, truth, "exact rows at the API's rate limit");
    assert!(stack.emulator.counters().faults.values().sum::<u64>() > 0, "the API throttled");
    // Once the limit is in force, calls need few attempts (without it, 16 calls in flight
    // against this API take about seven each, measured: 3,352 of 3,877 attempts throttled).
    let c = stack.client().await;
    let limited = rows(
        &c,
        "SELECT count(*), sum(attempts)::double precision / count(*), min(rate_limit), max(rate_limit) \
         FROM cloudpg.api_calls WHERE rate_limit IS NOT NULL",
    )
    .await
    .unwrap();
    let value = |i: usize| -> f64 { limited[0].get(i).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN) };
    let (calls, attempts_per_call, low, high) = (value(0), value(1), value(2), value(3));
    eprintln!(
        "fault scenario: API limit 100 calls/s: {calls} calls under the limit, {attempts_per_call:.2} attempts each, limit {low:.0}-{high:.0}/s"
    );
    assert!(calls > 100.0, "{calls} calls under the limit");
    assert!(attempts_per_call < 3.0, "{attempts_per_call} attempts per call under the limit");
    assert!(
        low >= 50.0 && high <= 2_000.0,
        "limit between {low} and {high} calls/s for an API limit of 100"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_beyond_the_budget_is_53400_naming_it() {
    let mut config = quick_retries();
    config.api.retry_budget = Duration::from_millis(500);
    let stack = Stack::start_with(log_groups(1.0), config).await;
    let c = stack.client().await;
    let started = std::time::Instant::now();
    for sql in [COUNT, "SELECT * FROM awscc.logs.log_groups WHERE region = 'us-east-1'"] {
        let (code, message, _) = db_error(c.simple_query(sql).await.unwrap_err());
        assert_eq!(code, "53400", "{message}");
        assert!(
            message.contains("AWS::Logs::LogGroup") && message.contains("us-east-1") && message.contains("Throttling"),
            "{message}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(30), "the budget bounds the retries");
    stack.stop().await;
}

/// An emulator that denies every call its fault rule `key` matches.
fn access_denied_on(key: &str) -> EmulatorConfig {
    let mut emulator = EmulatorConfig::default();
    emulator.faults.rules.insert(
        key.into(),
        FaultRule {
            access_denied: Some(1.0),
            ..FaultRule::default()
        },
    );
    emulator
}

/// A client that keeps the server's NOTICEs and WARNINGs.
async fn client_with_notices(
    stack: &Stack,
) -> (
    tokio_postgres::Client,
    tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::error::DbError>,
) {
    crate::common::client_with_notices(&stack.conn_string()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_region_fails_the_statement_or_warns_when_asked() {
    let stack = Stack::start_with(access_denied_on("ListResources AWS::Logs::LogGroup eu-west-1"), quick_retries()).await;
    let (c, mut notices) = client_with_notices(&stack).await;
    let sql = "SELECT count(*) FROM awscc.logs.log_groups_list_only WHERE region IN ('us-east-1', 'eu-west-1')";
    let (code, message, _) = db_error(c.simple_query(sql).await.unwrap_err());
    assert_eq!(code, "42501", "{message}");
    assert!(message.contains("eu-west-1") && message.contains("AccessDenied"), "{message}");

    c.simple_query("SET cloudpg.progress = off; SET cloudpg.on_error = 'warn'")
        .await
        .unwrap();
    let got = rows(&c, sql).await.unwrap();
    assert_eq!(got[0].get(0), Some("5"), "the other region's rows");
    let warning = tokio::time::timeout(Duration::from_secs(5), notices.recv())
        .await
        .expect("a WARNING arrives")
        .expect("the connection is open");
    assert_eq!((warning.severity(), warning.code().code()), ("WARNING", "01000"));
    assert!(
        warning.message().contains("awscc.logs.log_groups_list_only")
            && warning.message().contains("eu-west-1")
            && warning.message().contains("AccessDenied"),
        "{}",
        warning.message()
    );
    // Errors that are not the region's stay errors: the call cap still stops the statement.
    c.simple_query("SET cloudpg.max_api_calls = 1").await.unwrap();
    let (code, _, _) = db_error(c.simple_query(sql).await.unwrap_err());
    assert_eq!(code, "54000");
    let (code, _, hint) = db_error(c.simple_query("SET cloudpg.on_error = 'maybe'").await.unwrap_err());
    assert_eq!(code, "22023");
    assert!(hint.contains("error, warn"), "{hint}");
    stack.stop().await;
}

/// One AWS error keeps its SQLSTATE on every path a statement can take to the failing call:
/// a plain scan, an aggregate, a join, a subquery, a UNION, a CTE, the extended protocol, a
/// cursor, and the read of an UPDATE.
#[tokio::test(flavor = "multi_thread")]
async fn an_aws_error_keeps_its_sqlstate_on_every_path() {
    let stack = Stack::start_with(access_denied_on("ListResources AWS::EC2::VPC"), quick_retries()).await;
    let c = stack.client().await;
    let vpcs = "awscc.ec2.vpcs WHERE region = 'us-east-1'";
    let paths = [
        format!("SELECT * FROM {vpcs}"),
        format!("SELECT count(*), max(cidr_block) FROM {vpcs}"),
        "SELECT s.subnet_id FROM awscc.ec2.subnets s JOIN awscc.ec2.vpcs v ON v.vpc_id = s.vpc_id WHERE s.region = 'us-east-1' AND v.region = 'us-east-1'".to_string(),
        format!("SELECT subnet_id FROM awscc.ec2.subnets WHERE region = 'us-east-1' AND vpc_id IN (SELECT vpc_id FROM {vpcs})"),
        format!("SELECT vpc_id FROM {vpcs} UNION SELECT 'x' ORDER BY 1"),
        format!("WITH v AS (SELECT vpc_id FROM {vpcs}) SELECT count(*) FROM v"),
        "UPDATE awscc.ec2.vpcs SET enable_dns_support = true WHERE region = 'us-east-1' AND cidr_block || '' = '10.0.0.0/16'".to_string(),
    ];
    c.simple_query("SET cloudpg.allow_bulk_mutations = on").await.unwrap();
    for sql in &paths {
        let (code, message, _) = db_error(c.simple_query(sql).await.unwrap_err());
        assert_eq!(code, "42501", "{sql}: {message}");
        assert!(
            message.contains("AccessDenied") && message.contains("AWS::EC2::VPC"),
            "{sql}: {message}"
        );
        // The extended protocol: Parse, Bind, Execute.
        let (code, _, _) = db_error(c.query(sql.as_str(), &[]).await.unwrap_err());
        assert_eq!(code, "42501", "extended: {sql}");
    }
    c.simple_query(&format!("BEGIN; DECLARE cur CURSOR FOR SELECT * FROM {vpcs}"))
        .await
        .unwrap();
    let (code, _, _) = db_error(c.simple_query("FETCH 10 FROM cur").await.unwrap_err());
    assert_eq!(code, "42501", "a cursor's FETCH");
    c.simple_query("ROLLBACK").await.unwrap();
    drop(c);
    stack.stop().await;
}
