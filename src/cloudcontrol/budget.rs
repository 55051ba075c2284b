//! How many Cloud Control calls one statement may make (`cloudpg.max_api_calls`).
//!
//! A statement that names its calls up front (regions × identifiers × parent values, rows of
//! an INSERT) is refused before the first call with [`CallBudget::check_planned`]; one whose
//! calls depend on what lists return (list pages, reads of listed resources) takes a call at a
//! time with [`CallBudget::take`], and fails before the first call past the limit. Answers
//! from the cache cost nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::usage::Usage;
use super::Place;
use crate::error::{Error, Result};

#[derive(Debug)]
pub struct CallBudget {
    limit: u64,
    used: AtomicU64,
    /// The user the calls are made for, whose per-minute budget they also spend and whose
    /// usage they count; `None` for the server's own work.
    user: Option<(String, Arc<Usage>)>,
}

impl CallBudget {
    pub fn new(limit: u64) -> CallBudget {
        CallBudget {
            limit,
            used: AtomicU64::new(0),
            user: None,
        }
    }

    /// A statement's budget, its calls made for `user`.
    pub fn for_user(limit: u64, user: &str, usage: Arc<Usage>) -> CallBudget {
        CallBudget {
            user: Some((user.to_string(), usage)),
            ..CallBudget::new(limit)
        }
    }

    /// No limit, for work that is not a client's statement.
    pub fn unlimited() -> CallBudget {
        CallBudget::new(u64::MAX)
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Refuses a plan of `calls` calls (described by `what`) that would go past the limit.
    pub fn check_planned(&self, calls: u64, what: &str) -> Result<()> {
        if self.used().saturating_add(calls) > self.limit {
            return Err(Error::TooManyCalls {
                message: format!(
                    "this statement needs {calls} Cloud Control calls ({what}), more than cloudpg.max_api_calls = {}",
                    self.limit
                ),
            });
        }
        Ok(())
    }

    /// Takes one call (`operation` of `type_name` at `place`), or refuses it when the
    /// statement's limit is reached or the user's budget per minute is spent.
    pub fn take(&self, operation: &str, type_name: &str, place: &Place) -> Result<()> {
        let before = self.used.fetch_add(1, Ordering::Relaxed);
        if before >= self.limit {
            self.used.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::TooManyCalls {
                message: format!(
                    "this statement made {} Cloud Control calls, the limit of cloudpg.max_api_calls, and needed another ({operation} of {type_name} in {place})",
                    self.limit
                ),
            });
        }
        if let Some((user, usage)) = &self.user {
            usage.take(user, place, type_name).inspect_err(|_| {
                self.used.fetch_sub(1, Ordering::Relaxed);
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_and_counted_calls_stop_at_the_limit() {
        let b = CallBudget::new(3);
        assert!(b.check_planned(3, "3 GetResource").is_ok());
        let e = b.check_planned(4, "2 regions x 2 identifiers").unwrap_err();
        assert_eq!(e.sqlstate(), "54000");
        assert!(e.to_string().contains("needs 4") && e.to_string().contains("= 3"), "{e}");
        let place = Place::new("default", "us-east-1");
        for _ in 0..3 {
            b.take("GetResource", "AWS::EC2::VPC", &place).unwrap();
        }
        let e = b.take("ListResources", "AWS::EC2::VPC", &place).unwrap_err();
        assert_eq!(e.sqlstate(), "54000");
        assert_eq!(b.used(), 3);
        assert!(b.check_planned(1, "one more").is_err());
    }
}
