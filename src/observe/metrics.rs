//! The server's Prometheus metrics: their names, labels and the one place each is recorded.
//!
//! Recording goes through the `metrics` facade; without an installed recorder (no
//! `[metrics] listen`) every call is a no-op. Names follow Prometheus conventions: a
//! `cloudpg_` prefix, base units (`_seconds`, `_bytes`), `_total` on counters.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const STATEMENTS: &str = "cloudpg_statements_total";
pub const STATEMENT_DURATION: &str = "cloudpg_statement_duration_seconds";
pub const API_CALLS: &str = "cloudpg_api_calls_total";
pub const API_CALL_DURATION: &str = "cloudpg_api_call_duration_seconds";
pub const API_ATTEMPTS: &str = "cloudpg_api_attempts_total";
pub const API_THROTTLES: &str = "cloudpg_api_throttles_total";
pub const CACHE_HITS: &str = "cloudpg_cache_hits_total";
pub const CACHE_MISSES: &str = "cloudpg_cache_misses_total";
pub const CACHE_ENTRIES: &str = "cloudpg_cache_entries";
pub const CACHE_BYTES: &str = "cloudpg_cache_bytes";
pub const CONNECTIONS_OPEN: &str = "cloudpg_connections_open";
pub const CONNECTIONS: &str = "cloudpg_connections_total";
pub const MUTATIONS_IN_FLIGHT: &str = "cloudpg_mutations_in_flight";
pub const API_RATE_LIMIT: &str = "cloudpg_api_rate_limit";

/// Seconds: from a cached answer (well under 1 ms) to a wide scan or an awaited mutation.
const BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Whether this module's recorder is installed: the hottest calls skip building their labels
/// (an allocation per statement) when nothing would record them.
static RECORDING: AtomicBool = AtomicBool::new(false);

/// The process-wide recorder, installed on first use (one per process, however many servers
/// a test starts); `None` if another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            RECORDING.store(true, Ordering::Relaxed);
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(STATEMENTS, "Statements run, by kind and outcome (ok or the SQLSTATE class).");
    metrics::describe_histogram!(STATEMENT_DURATION, metrics::Unit::Seconds, "Statement run time, by kind.");
    metrics::describe_counter!(
        API_CALLS,
        "Cloud Control calls, by operation, type, account, region and outcome (ok or the AWS error code)."
    );
    metrics::describe_histogram!(
        API_CALL_DURATION,
        metrics::Unit::Seconds,
        "Cloud Control call time with its retries, by operation."
    );
    metrics::describe_counter!(
        API_ATTEMPTS,
        "HTTP attempts of Cloud Control calls (retries included), by operation."
    );
    metrics::describe_counter!(API_THROTTLES, "Cloud Control attempts answered with throttling, by operation.");
    metrics::describe_counter!(
        CACHE_HITS,
        "Cache lookups answered from the cache, by kind (page, get, or scan: a whole list sent as a scan kept it)."
    );
    metrics::describe_counter!(CACHE_MISSES, "Cache lookups that called Cloud Control, by kind (page or get).");
    metrics::describe_gauge!(CACHE_ENTRIES, "Entries in the cache.");
    metrics::describe_gauge!(CACHE_BYTES, metrics::Unit::Bytes, "Approximate size of the cached JSON.");
    metrics::describe_gauge!(CONNECTIONS_OPEN, "Client connections open now.");
    metrics::describe_counter!(CONNECTIONS, "Client connections accepted.");
    metrics::describe_gauge!(MUTATIONS_IN_FLIGHT, "Mutations submitted and not yet finished.");
    metrics::describe_gauge!(
        API_RATE_LIMIT,
        "The adaptive limit on Cloud Control calls per second, by account and region; 0 while unlimited (no throttling)."
    );
}

/// One statement ended: `outcome` is `ok` or its SQLSTATE.
pub fn statement(kind: &'static str, outcome: Option<&str>, took: Duration) {
    if !RECORDING.load(Ordering::Relaxed) {
        return;
    }
    match outcome {
        None => counter!(STATEMENTS, "kind" => kind, "outcome" => "ok").increment(1),
        Some(code) => counter!(STATEMENTS, "kind" => kind, "outcome" => sqlstate_class(code)).increment(1),
    }
    histogram!(STATEMENT_DURATION, "kind" => kind).record(took.as_secs_f64());
}

/// `42P01` → `error_42`: the class keeps the label set small.
fn sqlstate_class(code: &str) -> String {
    format!("error_{}", code.get(..2).unwrap_or("XX"))
}

/// One Cloud Control call ended (after its retries): `error` is AWS's code when it failed.
pub fn api_call(operation: &'static str, type_name: &str, place: &crate::cloudcontrol::Place, error: Option<&str>, took: Duration) {
    counter!(
        API_CALLS,
        "operation" => operation,
        "type" => type_name.to_string(),
        "account" => place.account.clone(),
        "region" => place.region.clone(),
        "outcome" => error.unwrap_or("ok").to_string()
    )
    .increment(1);
    histogram!(API_CALL_DURATION, "operation" => operation).record(took.as_secs_f64());
}

/// One HTTP attempt of a call; `throttled` when AWS answered with throttling.
pub fn api_attempt(operation: &str, throttled: bool) {
    counter!(API_ATTEMPTS, "operation" => operation.to_string()).increment(1);
    if throttled {
        counter!(API_THROTTLES, "operation" => operation.to_string()).increment(1);
    }
}

/// An (account, region)'s adaptive call rate limit; `None` (unlimited) is 0.
pub fn api_rate_limit(place: &crate::cloudcontrol::Place, limit: Option<f64>) {
    gauge!(API_RATE_LIMIT, "account" => place.account.clone(), "region" => place.region.clone()).set(limit.unwrap_or(0.0));
}

pub fn cache_lookup(kind: &'static str, hit: bool) {
    if hit {
        counter!(CACHE_HITS, "kind" => kind).increment(1);
    } else {
        counter!(CACHE_MISSES, "kind" => kind).increment(1);
    }
}

pub fn cache_size(entries: u64, bytes: u64) {
    gauge!(CACHE_ENTRIES).set(entries as f64);
    gauge!(CACHE_BYTES).set(bytes as f64);
}

/// Counts an open connection until dropped.
pub struct ConnectionGauge(());

impl ConnectionGauge {
    pub fn open() -> ConnectionGauge {
        counter!(CONNECTIONS).increment(1);
        gauge!(CONNECTIONS_OPEN).increment(1.0);
        ConnectionGauge(())
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        gauge!(CONNECTIONS_OPEN).decrement(1.0);
    }
}

/// Counts a mutation in flight until dropped.
pub struct MutationGauge(());

impl MutationGauge {
    pub fn start() -> MutationGauge {
        gauge!(MUTATIONS_IN_FLIGHT).increment(1.0);
        MutationGauge(())
    }
}

impl Drop for MutationGauge {
    fn drop(&mut self) {
        gauge!(MUTATIONS_IN_FLIGHT).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_sqlstate_classes() {
        assert_eq!(sqlstate_class("42P01"), "error_42");
        assert_eq!(sqlstate_class("5"), "error_XX");
    }
}
