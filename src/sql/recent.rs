//! The simple protocol's recently run queries, by their text: a client that sends the same
//! `SELECT` again (a pool's `SELECT 1` health check, a dashboard panel's refresh) skips
//! parsing, planning and optimizing, as a prepared statement does.
//!
//! Only what every execution would plan alike is kept (one statement, a query without `$n`
//! whose optimized plan is reusable, see `session::reusable`); an entry planned under other
//! time settings is planned again. The number of entries and the length of a kept text are
//! bounded, so a client sending ever new statements costs a fixed amount of memory.

use std::sync::Arc;

use indexmap::IndexMap;

use super::statement::Prepared;

/// How many texts a session keeps; the oldest goes first.
const MAX_ENTRIES: usize = 32;
/// Longer texts are not kept: generated statements are rarely sent twice.
const MAX_TEXT: usize = 4096;

#[derive(Default)]
pub struct RecentQueries {
    entries: IndexMap<String, Arc<Prepared>>,
}

impl RecentQueries {
    /// The statement last prepared from exactly this text, if it was kept and still fits the
    /// session's time settings (`time_key`).
    pub fn get(&self, sql: &str, time_key: &str) -> Option<Arc<Prepared>> {
        let prepared = self.entries.get(sql)?;
        let plan = prepared.plan.as_ref()?;
        (plan.time == time_key).then(|| prepared.clone())
    }

    /// Keeps a statement prepared from `sql` when its plan can serve every execution.
    pub fn remember(&mut self, sql: &str, prepared: &Arc<Prepared>) {
        let reusable = prepared.plan.as_ref().is_some_and(|p| p.optimized.is_some());
        if !reusable || sql.len() > MAX_TEXT {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES && !self.entries.contains_key(sql) {
            self.entries.shift_remove_index(0);
        }
        self.entries.insert(sql.to_string(), prepared.clone());
    }

    /// `DISCARD ALL` / `DISCARD PLANS`: nothing planned before is reused.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::statement::Command;
    use datafusion::logical_expr::LogicalPlanBuilder;

    fn prepared(reusable: bool, time: &str) -> Arc<Prepared> {
        let plan = LogicalPlanBuilder::empty(false).build().unwrap();
        Arc::new(Prepared::planned(Command::Listen { tag: "SELECT" }, plan, reusable, time))
    }

    #[test]
    fn keeps_only_reusable_plans_under_the_same_time_settings() {
        let mut recent = RecentQueries::default();
        recent.remember("SELECT 1", &prepared(true, "UTC|ISO, MDY"));
        recent.remember("SELECT now()", &prepared(false, "UTC|ISO, MDY"));
        assert!(recent.get("SELECT 1", "UTC|ISO, MDY").is_some());
        assert!(recent.get("SELECT 1", "Europe/Paris|ISO, MDY").is_none());
        assert!(recent.get("SELECT now()", "UTC|ISO, MDY").is_none());
        assert!(recent.get("select 1", "UTC|ISO, MDY").is_none());
        recent.clear();
        assert!(recent.get("SELECT 1", "UTC|ISO, MDY").is_none());
    }

    #[test]
    fn holds_a_bounded_number_of_short_texts_oldest_out_first() {
        let mut recent = RecentQueries::default();
        for i in 0..MAX_ENTRIES + 5 {
            recent.remember(&format!("SELECT {i}"), &prepared(true, "t"));
        }
        assert_eq!(recent.entries.len(), MAX_ENTRIES);
        assert!(recent.get("SELECT 0", "t").is_none());
        assert!(recent.get(&format!("SELECT {}", MAX_ENTRIES + 4), "t").is_some());
        let long = format!("SELECT '{}'", "x".repeat(MAX_TEXT));
        recent.remember(&long, &prepared(true, "t"));
        assert!(recent.get(&long, "t").is_none());
    }
}
