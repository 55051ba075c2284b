//! The most recent Cloud Control calls, for `cloudpg.api_calls`: when, what, where, how long,
//! how many HTTP attempts (the SDK retries inside one call) and how it ended.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How many calls the log keeps.
pub const RECENT_CALLS: usize = 1_000;

tokio::task_local! {
    /// Attempts of the call running in this task, counted by the SDK interceptor.
    static ATTEMPTS: Cell<Attempts>;
}

#[derive(Debug, Clone)]
pub struct CallRecord {
    pub at: SystemTime,
    pub operation: &'static str,
    pub type_name: String,
    /// The configured account's name.
    pub account: String,
    pub region: String,
    pub duration: Duration,
    pub attempts: u32,
    /// `ok`, or AWS's error code.
    pub outcome: String,
    /// The region's adaptive rate limit when the call ended (calls per second; `None`: none).
    pub rate_limit: Option<f64>,
}

#[derive(Debug, Default)]
pub struct CallLog {
    recent: Mutex<VecDeque<CallRecord>>,
}

impl CallLog {
    pub fn push(&self, record: CallRecord) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT_CALLS {
            recent.pop_front();
        }
        recent.push_back(record);
    }

    /// Oldest first.
    pub fn snapshot(&self) -> Vec<CallRecord> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }
}

/// The HTTP attempts of one call, and how many of them were throttled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempts {
    pub total: u32,
    pub throttled: u32,
}

/// Runs `call` counting the attempts the SDK makes for it; returns its output and the count.
pub async fn counting_attempts<T>(call: impl std::future::Future<Output = T>) -> (T, Attempts) {
    ATTEMPTS
        .scope(Cell::new(Attempts::default()), async {
            let out = call.await;
            (out, ATTEMPTS.with(Cell::get))
        })
        .await
}

/// One HTTP attempt of the call running in this task (no-op outside [`counting_attempts`]).
pub fn count_attempt(throttled: bool) {
    let _ = ATTEMPTS.try_with(|a| {
        let mut n = a.get();
        n.total += 1;
        n.throttled += u32::from(throttled);
        a.set(n);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_most_recent_calls_and_counts_attempts() {
        let log = CallLog::default();
        for i in 0..RECENT_CALLS + 5 {
            log.push(CallRecord {
                at: SystemTime::now(),
                operation: "GetResource",
                type_name: format!("T{i}"),
                account: "default".into(),
                region: "us-east-1".into(),
                duration: Duration::ZERO,
                attempts: 1,
                outcome: "ok".into(),
                rate_limit: None,
            });
        }
        let calls = log.snapshot();
        assert_eq!(calls.len(), RECENT_CALLS);
        assert_eq!(calls[0].type_name, "T5");
        let ((), attempts) = counting_attempts(async {
            count_attempt(true);
            count_attempt(false);
        })
        .await;
        assert_eq!(attempts, Attempts { total: 2, throttled: 1 });
        count_attempt(false);
    }
}
