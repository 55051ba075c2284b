//! Who makes which Cloud Control calls: each user's budget of calls per minute
//! (`[[auth.users]] max_calls_per_minute`, refused with 53400 naming it once spent), and the
//! calls of the last hour by user, account, region and type, for `cloudpg.api_usage`.
//!
//! Calls are counted when made on a user's behalf: reads that miss the cache and the
//! mutations the user starts. Answers from the cache cost nothing; the polling of a started
//! mutation is the server's own.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::Place;
use crate::error::{Error, Result};

/// Minutes of counts kept for `cloudpg.api_usage`.
const KEPT_MINUTES: u64 = 60;

/// One row of `cloudpg.api_usage`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UsageKey {
    pub user: String,
    pub account: String,
    pub region: String,
    pub type_name: String,
}

/// A user's calls-per-minute budget: a bucket of `per_minute` calls refilled over a minute.
#[derive(Debug)]
struct Bucket {
    per_minute: u32,
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn take(&mut self, now: Instant) -> bool {
        let rate = f64::from(self.per_minute) / 60.0;
        self.tokens = (self.tokens + now.saturating_duration_since(self.refilled).as_secs_f64() * rate).min(f64::from(self.per_minute));
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until the next call fits.
    fn wait(&self) -> Duration {
        let rate = f64::from(self.per_minute) / 60.0;
        Duration::from_secs_f64(((1.0 - self.tokens) / rate).max(0.0))
    }
}

/// Budgets and counts, shared by every session.
#[derive(Debug, Default)]
pub struct Usage {
    /// Per minute since the epoch: the calls of that minute.
    minutes: Mutex<VecDeque<(u64, HashMap<UsageKey, u64>)>>,
    budgets: Mutex<HashMap<String, Bucket>>,
}

impl Usage {
    /// Budgets of users that have one.
    pub fn new(budgets: impl IntoIterator<Item = (String, u32)>) -> Usage {
        let now = Instant::now();
        let budgets = budgets
            .into_iter()
            .map(|(user, per_minute)| {
                let bucket = Bucket {
                    per_minute,
                    tokens: f64::from(per_minute),
                    refilled: now,
                };
                (user, bucket)
            })
            .collect();
        Usage {
            minutes: Mutex::default(),
            budgets: Mutex::new(budgets),
        }
    }

    /// Takes one call of `user`'s budget (53400 when it is spent), and counts it.
    pub fn take(&self, user: &str, place: &Place, type_name: &str) -> Result<()> {
        if let Some(bucket) = self.budgets.lock().unwrap_or_else(|p| p.into_inner()).get_mut(user) {
            if !bucket.take(Instant::now()) {
                return Err(Error::BudgetSpent {
                    message: format!(
                        "user \"{user}\" has spent its budget of {} Cloud Control calls per minute ([[auth.users]] max_calls_per_minute)",
                        bucket.per_minute
                    ),
                    hint: Some(format!(
                        "the next call fits in {:.0} s; answers from the cache cost nothing, so a lower cloudpg.cache_ttl is not the fix",
                        bucket.wait().as_secs_f64().ceil()
                    )),
                });
            }
        }
        self.count(user, place, type_name);
        Ok(())
    }

    fn count(&self, user: &str, place: &Place, type_name: &str) {
        let minute = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 60;
        let mut minutes = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        if minutes.back().is_none_or(|(m, _)| *m != minute) {
            minutes.push_back((minute, HashMap::new()));
        }
        while minutes.front().is_some_and(|(m, _)| *m + KEPT_MINUTES <= minute) {
            minutes.pop_front();
        }
        if let Some((_, counts)) = minutes.back_mut() {
            let key = UsageKey {
                user: user.to_string(),
                account: place.account.clone(),
                region: place.region.clone(),
                type_name: type_name.to_string(),
            };
            *counts.entry(key).or_default() += 1;
        }
    }

    /// Calls of the last hour, summed by user, account, region and type, in that order.
    pub fn last_hour(&self) -> Vec<(UsageKey, u64)> {
        let minute = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 60;
        let minutes = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        let mut sums: HashMap<UsageKey, u64> = HashMap::new();
        for (_, counts) in minutes.iter().filter(|(m, _)| m + KEPT_MINUTES > minute) {
            for (k, n) in counts {
                *sums.entry(k.clone()).or_default() += n;
            }
        }
        let mut out: Vec<(UsageKey, u64)> = sums.into_iter().collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_over_its_budget_is_refused_naming_it_and_others_go_on() {
        let usage = Usage::new([("alice".to_string(), 3)]);
        let place = Place::new("prod", "us-east-1");
        for _ in 0..3 {
            usage.take("alice", &place, "AWS::EC2::VPC").unwrap();
        }
        let e = usage.take("alice", &place, "AWS::EC2::VPC").unwrap_err();
        assert_eq!(e.sqlstate(), "53400");
        assert!(
            e.to_string().contains("\"alice\"") && e.to_string().contains("3 Cloud Control calls per minute"),
            "{e}"
        );
        for _ in 0..10 {
            usage.take("bob", &place, "AWS::S3::Bucket").unwrap();
        }
        let rows = usage.last_hour();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].0.user.as_str(), rows[0].1), ("alice", 3));
        assert_eq!((rows[1].0.type_name.as_str(), rows[1].1), ("AWS::S3::Bucket", 10));
    }
}
