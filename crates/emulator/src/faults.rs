//! Failure and latency injection, and the call counters tests read.
//!
//! A [`FaultRule`] applies globally, to one operation (`"ListResources"`), to one type
//! (`"AWS::S3::Bucket"`) or to both (`"GetResource AWS::S3::Bucket"`); the most specific rule
//! present wins field by field.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::{Deserialize, Serialize};

/// One set of dials. Probabilities are between 0 and 1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultRule {
    /// Fixed latency of a call: a read answers this long after it arrived (with the state
    /// as it arrived); a mutation takes effect after it.
    pub latency_ms: Option<u64>,
    /// Up to this much more latency, uniformly at random.
    pub jitter_ms: Option<u64>,
    /// Latency after the call took effect, before its answer: a caller that gives up (or
    /// dies) meanwhile never learns that it did.
    pub reply_latency_ms: Option<u64>,
    /// Probability that a call answers ThrottlingException (HTTP 400, retried by SDKs).
    pub throttle: Option<f64>,
    /// Probability that a call answers a 5xx ServiceInternalErrorException.
    pub server_error: Option<f64>,
    /// Probability that a mutation ends FAILED instead of SUCCESS.
    pub fail_async: Option<f64>,
    /// Probability that a call answers AccessDeniedException (not retried), as a region the
    /// credentials may not use does.
    pub access_denied: Option<f64>,
}

impl FaultRule {
    fn overlay(&self, over: &FaultRule) -> FaultRule {
        FaultRule {
            latency_ms: over.latency_ms.or(self.latency_ms),
            jitter_ms: over.jitter_ms.or(self.jitter_ms),
            reply_latency_ms: over.reply_latency_ms.or(self.reply_latency_ms),
            throttle: over.throttle.or(self.throttle),
            server_error: over.server_error.or(self.server_error),
            fail_async: over.fail_async.or(self.fail_async),
            access_denied: over.access_denied.or(self.access_denied),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    pub global: FaultRule,
    /// Calls per second each region answers; calls beyond it are throttled (a token bucket
    /// holding a second's worth), as AWS's per-account limits throttle by rate.
    pub max_rate: Option<f64>,
    /// Keyed by account id, region, operation, type, "Operation Type", or "Operation Type
    /// region"; later keys of that list win.
    pub rules: HashMap<String, FaultRule>,
}

/// The dials in force for one call, after overlaying the rules.
#[derive(Debug, Clone, Default)]
pub struct Effective(pub FaultRule);

impl FaultConfig {
    pub fn effective(&self, operation: &str, type_name: Option<&str>, caller: &crate::ops::Caller) -> Effective {
        let region = caller.region.as_str();
        let mut rule = self.global.clone();
        if let Some(r) = self.rules.get(&caller.account) {
            rule = rule.overlay(r);
        }
        if let Some(r) = self.rules.get(region) {
            rule = rule.overlay(r);
        }
        if let Some(r) = type_name.and_then(|t| self.rules.get(t)) {
            rule = rule.overlay(r);
        }
        if let Some(r) = self.rules.get(operation) {
            rule = rule.overlay(r);
        }
        if let Some(r) = type_name.and_then(|t| self.rules.get(&format!("{operation} {t}"))) {
            rule = rule.overlay(r);
        }
        if let Some(r) = type_name.and_then(|t| self.rules.get(&format!("{operation} {t} {region}"))) {
            rule = rule.overlay(r);
        }
        Effective(rule)
    }
}

impl Effective {
    pub fn latency(&self, rng: &mut impl Rng) -> Duration {
        let fixed = self.0.latency_ms.unwrap_or(0);
        let jitter = self.0.jitter_ms.unwrap_or(0);
        let extra = if jitter > 0 { rng.random_range(0..=jitter) } else { 0 };
        Duration::from_millis(fixed + extra)
    }

    pub fn reply_latency(&self) -> Duration {
        Duration::from_millis(self.0.reply_latency_ms.unwrap_or(0))
    }

    fn roll(p: Option<f64>, rng: &mut impl Rng) -> bool {
        p.is_some_and(|p| p > 0.0 && rng.random::<f64>() < p)
    }

    pub fn throttles(&self, rng: &mut impl Rng) -> bool {
        Self::roll(self.0.throttle, rng)
    }

    pub fn server_errors(&self, rng: &mut impl Rng) -> bool {
        Self::roll(self.0.server_error, rng)
    }

    pub fn denies_access(&self, rng: &mut impl Rng) -> bool {
        Self::roll(self.0.access_denied, rng)
    }

    pub fn fails_async(&self, rng: &mut impl Rng) -> bool {
        Self::roll(self.0.fail_async, rng)
    }
}

/// Calls [`Counters::call_log`] keeps.
pub const CALL_LOG_LENGTH: usize = 10_000;

/// One call as the emulator received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallStamp {
    /// Seconds since the epoch.
    pub at: f64,
    pub account: String,
    pub region: String,
    pub operation: String,
}

/// Calls received, and what they led to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Calls per operation, including those answered with an injected fault.
    pub calls: BTreeMap<String, u64>,
    /// Calls per "Operation Type".
    pub calls_by_type: BTreeMap<String, u64>,
    /// Calls per "AccountId Operation" (STS operations included).
    pub calls_by_account: BTreeMap<String, u64>,
    /// The SDK app names (`app/NAME` in the user agent) calls carried.
    pub app_names: std::collections::BTreeSet<String>,
    /// When the most recent Cloud Control calls came (at most [`CALL_LOG_LENGTH`]), oldest
    /// first, so tests can measure a caller's rate.
    pub call_log: std::collections::VecDeque<CallStamp>,
    /// Injected faults per operation.
    pub faults: BTreeMap<String, u64>,
    /// Mutations that reached SUCCESS, per "Operation Type" (e.g. "CREATE AWS::S3::Bucket").
    pub succeeded: BTreeMap<String, u64>,
}

impl Counters {
    pub fn calls(&self, operation: &str) -> u64 {
        self.calls.get(operation).copied().unwrap_or(0)
    }

    pub fn calls_for(&self, operation: &str, type_name: &str) -> u64 {
        self.calls_by_type.get(&format!("{operation} {type_name}")).copied().unwrap_or(0)
    }

    pub fn succeeded(&self, operation: &str, type_name: &str) -> u64 {
        self.succeeded.get(&format!("{operation} {type_name}")).copied().unwrap_or(0)
    }

    /// Calls of one operation made with an account's credentials.
    pub fn calls_in(&self, account_id: &str, operation: &str) -> u64 {
        self.calls_by_account
            .get(&format!("{account_id} {operation}"))
            .copied()
            .unwrap_or(0)
    }

    /// Calls of any operation made with an account's credentials.
    pub fn calls_by(&self, account_id: &str) -> u64 {
        let prefix = format!("{account_id} ");
        self.calls_by_account
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v)
            .sum()
    }

    /// Every call, of every operation.
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }
}

/// Tokio's timer fires on the first millisecond tick after a deadline, and the runtime parks
/// in whole milliseconds: an injected 50 ms ended 1.5-2 ms late. The benches hold the
/// server to sums of injected latencies (five pages of 50 ms: 250 ms), so that error was
/// charged to the server. The timer sleeps all but the last [`TIMER_SLACK`]; a blocking-pool
/// thread sleeps the rest, which the OS ends within tens of microseconds.
const TIMER_SLACK: Duration = Duration::from_millis(3);

/// Sleeps until a little before `deadline` (see [`TIMER_SLACK`]).
pub(crate) async fn sleep_until_coarsely(deadline: Instant) {
    let early = deadline.checked_sub(TIMER_SLACK).filter(|early| *early > Instant::now());
    if let Some(early) = early {
        tokio::time::sleep_until(early.into()).await;
    }
}

/// Sleeps, blocking the thread, until `deadline`.
pub(crate) fn sleep_rest(deadline: Instant) {
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
}

/// Sleeps until `deadline`, to within a fraction of a millisecond.
pub(crate) async fn sleep_until_precisely(deadline: Instant) {
    sleep_until_coarsely(deadline).await;
    if deadline > Instant::now() {
        // A JoinError here only means the runtime is shutting down: the answer goes nowhere.
        let _ = tokio::task::spawn_blocking(move || sleep_rest(deadline)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_rule_wins_per_field() {
        let mut cfg = FaultConfig {
            global: FaultRule {
                latency_ms: Some(5),
                throttle: Some(0.1),
                ..Default::default()
            },
            ..Default::default()
        };
        cfg.rules.insert(
            "ListResources".into(),
            FaultRule {
                throttle: Some(0.5),
                ..Default::default()
            },
        );
        cfg.rules.insert(
            "ListResources AWS::S3::Bucket".into(),
            FaultRule {
                latency_ms: Some(20),
                ..Default::default()
            },
        );
        let caller = crate::ops::Caller::new("123456789012", "us-east-1");
        let e = cfg.effective("ListResources", Some("AWS::S3::Bucket"), &caller).0;
        assert_eq!(e.latency_ms, Some(20));
        assert_eq!(e.throttle, Some(0.5));
        let e = cfg.effective("GetResource", Some("AWS::S3::Bucket"), &caller).0;
        assert_eq!(e.throttle, Some(0.1));
        assert_eq!(e.latency_ms, Some(5));
    }

    /// An injected latency is never cut short, whatever part of it is left to the timer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_latency_is_slept_in_full() {
        for millis in [0, 1, 2, 3, 4, 7, 20] {
            let deadline = Instant::now() + Duration::from_millis(millis);
            sleep_until_precisely(deadline).await;
            assert!(Instant::now() >= deadline, "{millis} ms ended early");
            let deadline = Instant::now() + Duration::from_millis(millis);
            sleep_until_coarsely(deadline).await;
            sleep_rest(deadline);
            assert!(Instant::now() >= deadline, "{millis} ms in two steps ended early");
        }
    }
}
