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
        assert_eq!(scan(&stack).await, truth, "{throttle} of calls throttled");
        let counters = stack.emulator.counters();
        let throttled = counters.faults.values().sum::<u64>();
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
