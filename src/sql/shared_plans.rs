//! Queries one connection planned, reused by another that prepares the same text: a pool, a
//! dashboard or pgbench opens many connections that each Parse the same few statements, and
//! planning one (parse, resolve, plan) costs several times running it from the cache.
//!
//! Only what every session would plan alike is shared. An entry is a query (not a mutation or
//! a command) found by its exact text, the number of parameter types the client declared, the
//! user and the time settings it was planned under (`Settings::time_key`), and it calls none
//! of the functions bound to the session that planned it (`current_user`, `current_setting`,
//! …, see `compat::session`). Everything else its executions read of their session (regions,
//! accounts, call budget, memory) is read when they run, through `QuerySettings`, so one plan
//! serves them all; the catalog does not change while the server runs.
//!
//! The number of entries and the length of a kept text are bounded, so clients sending ever
//! new statements cost a fixed amount of memory.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan};

use super::compat::session::is_session_bound;
use super::statement::{Command, Prepared};

/// How many statements the server keeps.
const MAX_ENTRIES: u64 = 512;
/// Longer texts are not kept: generated statements are rarely sent twice.
const MAX_TEXT: usize = 4096;

/// What a kept statement was planned for; equal inputs plan alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlanInputs<'a> {
    pub text: &'a str,
    /// How many parameter types the client declared at Parse.
    pub declared: usize,
    pub user: &'a str,
    /// The session's `Settings::time_key`.
    pub time: &'a str,
}

struct Entry {
    text: String,
    declared: usize,
    user: String,
    time: String,
    prepared: Arc<Prepared>,
}

impl Entry {
    fn is_for(&self, inputs: &PlanInputs<'_>) -> bool {
        self.text == inputs.text && self.declared == inputs.declared && self.user == inputs.user && self.time == inputs.time
    }
}

/// The server's shared prepared queries.
pub struct SharedPlans {
    /// By a hash of the inputs with a per-server random key; an entry also holds the inputs,
    /// so a collision is a miss, never another statement's plan.
    entries: moka::sync::Cache<u64, Arc<Entry>>,
    hasher: RandomState,
}

impl Default for SharedPlans {
    fn default() -> SharedPlans {
        SharedPlans {
            entries: moka::sync::Cache::new(MAX_ENTRIES),
            hasher: RandomState::new(),
        }
    }
}

impl SharedPlans {
    /// The statement a session prepared from these inputs, if it was kept.
    pub fn get(&self, inputs: &PlanInputs<'_>) -> Option<Arc<Prepared>> {
        let entry = self.entries.get(&self.hasher.hash_one(inputs))?;
        entry.is_for(inputs).then(|| entry.prepared.clone())
    }

    /// Keeps a statement prepared from `inputs` when every session would plan it alike.
    pub fn offer(&self, inputs: &PlanInputs<'_>, prepared: &Prepared) {
        let planned_for = prepared.plan.as_ref().map(|p| p.time.as_str());
        if inputs.text.len() > MAX_TEXT || planned_for != Some(inputs.time) || !shareable(prepared) {
            return;
        }
        let entry = Entry {
            text: inputs.text.to_string(),
            declared: inputs.declared,
            user: inputs.user.to_string(),
            time: inputs.time.to_string(),
            prepared: Arc::new(prepared.clone()),
        };
        self.entries.insert(self.hasher.hash_one(inputs), Arc::new(entry));
    }
}

/// A planned query that calls no function bound to the session that planned it.
fn shareable(prepared: &Prepared) -> bool {
    match (&prepared.command, &prepared.plan) {
        (Command::Query(_), Some(plan)) => !calls_session_functions(&plan.logical),
        _ => false,
    }
}

fn calls_session_functions(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            found |= e.exists(|e| Ok(matches!(e, Expr::ScalarFunction(f) if is_session_bound(f.name()))))?;
            Ok(if found {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        })
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{create_udf, ColumnarValue, LogicalPlanBuilder, Volatility};

    const UTC: &str = "UTC|ISO, MDY";

    /// A query planned as `SELECT <function>()`.
    fn query(function: &str, time: &str) -> Prepared {
        let f = create_udf(
            function,
            vec![],
            DataType::Utf8,
            Volatility::Stable,
            Arc::new(|_: &[ColumnarValue]| unreachable!()),
        );
        let plan = LogicalPlanBuilder::empty(true)
            .project(vec![f.call(vec![])])
            .unwrap()
            .build()
            .unwrap();
        let statement = crate::sql::parse::parse_checked("SELECT 1").unwrap().remove(0);
        Prepared::planned(Command::classify(statement), plan, false, time)
    }

    fn inputs<'a>(text: &'a str, user: &'a str, time: &'a str) -> PlanInputs<'a> {
        PlanInputs {
            text,
            declared: 0,
            user,
            time,
        }
    }

    #[test]
    fn a_kept_query_serves_only_the_same_text_declaration_user_and_time_settings() {
        let plans = SharedPlans::default();
        let kept = inputs("SELECT pi()", "alice", UTC);
        plans.offer(&kept, &query("pi", UTC));
        assert!(plans.get(&kept).is_some());
        assert!(plans.get(&inputs("select pi()", "alice", UTC)).is_none());
        assert!(plans.get(&inputs("SELECT pi()", "bob", UTC)).is_none());
        assert!(plans.get(&inputs("SELECT pi()", "alice", "Europe/Paris|ISO, MDY")).is_none());
        assert!(plans.get(&PlanInputs { declared: 1, ..kept }).is_none());
    }

    #[test]
    fn queries_calling_session_functions_and_other_commands_are_not_kept() {
        let plans = SharedPlans::default();
        for function in ["current_user", "current_setting", "to_regclass"] {
            let text = format!("SELECT {function}()");
            plans.offer(&inputs(&text, "alice", UTC), &query(function, UTC));
            assert!(plans.get(&inputs(&text, "alice", UTC)).is_none(), "{function}");
        }
        let mut command = query("pi", UTC);
        command.command = Command::Listen { tag: "LISTEN" };
        plans.offer(&inputs("LISTEN x", "alice", UTC), &command);
        assert!(plans.get(&inputs("LISTEN x", "alice", UTC)).is_none());
    }

    #[test]
    fn a_query_planned_under_other_time_settings_or_a_long_text_is_not_kept() {
        let plans = SharedPlans::default();
        plans.offer(&inputs("SELECT pi()", "alice", UTC), &query("pi", "Europe/Paris|ISO, MDY"));
        assert!(plans.get(&inputs("SELECT pi()", "alice", UTC)).is_none());
        let long = format!("SELECT pi() -- {}", "x".repeat(MAX_TEXT));
        plans.offer(&inputs(&long, "alice", UTC), &query("pi", UTC));
        assert!(plans.get(&inputs(&long, "alice", UTC)).is_none());
    }

    #[test]
    fn the_number_of_entries_is_bounded() {
        let plans = SharedPlans::default();
        let texts: Vec<String> = (0..MAX_ENTRIES * 2).map(|i| format!("SELECT pi() + {i}")).collect();
        for text in &texts {
            plans.offer(&inputs(text, "alice", UTC), &query("pi", UTC));
        }
        plans.entries.run_pending_tasks();
        assert!(plans.entries.entry_count() <= MAX_ENTRIES, "{}", plans.entries.entry_count());
    }
}
