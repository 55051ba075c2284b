//! Who is connected and what each connection is doing, for `pg_stat_activity`: a registry
//! every session joins when it starts and leaves when it ends, updated as statements start
//! and finish. A running statement shows as its fingerprint (literals replaced), never its
//! text, with the Cloud Control calls it has made so far.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::cloudcontrol::budget::CallBudget;

#[derive(Debug, Default)]
pub struct Activity {
    sessions: Mutex<BTreeMap<u64, Arc<SessionActivity>>>,
    next: AtomicU64,
}

/// One connection's row.
#[derive(Debug)]
pub struct SessionActivity {
    pub user: String,
    pub database: String,
    pub backend_start: SystemTime,
    now: Mutex<Now>,
}

#[derive(Debug, Clone)]
struct Now {
    pid: i32,
    client: Option<std::net::SocketAddr>,
    application_name: String,
    state: &'static str,
    query: String,
    query_start: Option<SystemTime>,
    state_change: SystemTime,
    xact_start: Option<SystemTime>,
    budget: Option<Arc<CallBudget>>,
}

/// A snapshot of one connection.
#[derive(Debug, Clone)]
pub struct ActivityRow {
    pub pid: i32,
    pub user: String,
    pub database: String,
    pub application_name: String,
    pub client: Option<std::net::SocketAddr>,
    pub backend_start: SystemTime,
    pub xact_start: Option<SystemTime>,
    pub query_start: Option<SystemTime>,
    pub state_change: SystemTime,
    pub state: &'static str,
    pub query: String,
    pub api_calls: u64,
}

/// A session's place in the registry; leaving it (drop) removes the row.
#[derive(Debug)]
pub struct ActivityGuard {
    registry: Arc<Activity>,
    id: u64,
    pub entry: Arc<SessionActivity>,
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        self.registry.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}

impl Activity {
    pub fn join(self: &Arc<Self>, user: &str, database: &str) -> ActivityGuard {
        let now = SystemTime::now();
        let entry = Arc::new(SessionActivity {
            user: user.to_string(),
            database: database.to_string(),
            backend_start: now,
            now: Mutex::new(Now {
                pid: 0,
                client: None,
                application_name: String::new(),
                state: "idle",
                query: String::new(),
                query_start: None,
                state_change: now,
                xact_start: None,
                budget: None,
            }),
        });
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).insert(id, entry.clone());
        ActivityGuard {
            registry: self.clone(),
            id,
            entry,
        }
    }

    pub fn snapshot(&self) -> Vec<ActivityRow> {
        let sessions: Vec<Arc<SessionActivity>> = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        sessions
            .iter()
            .map(|s| {
                let now = s.lock().clone();
                ActivityRow {
                    pid: now.pid,
                    user: s.user.clone(),
                    database: s.database.clone(),
                    application_name: now.application_name,
                    client: now.client,
                    backend_start: s.backend_start,
                    xact_start: now.xact_start,
                    query_start: now.query_start,
                    state_change: now.state_change,
                    state: now.state,
                    query: now.query,
                    api_calls: now.budget.map_or(0, |b| b.used()),
                }
            })
            .collect()
    }
}

impl SessionActivity {
    fn lock(&self) -> std::sync::MutexGuard<'_, Now> {
        self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection's backend PID and client address, once startup has them.
    pub fn connected(&self, pid: i32, client: Option<std::net::SocketAddr>) {
        let mut now = self.lock();
        now.pid = pid;
        now.client = client;
    }

    /// A statement starts: `query` is its fingerprint text.
    pub fn started(&self, query: &str, application_name: &str, in_block: bool, budget: Arc<CallBudget>) {
        let mut now = self.lock();
        let at = SystemTime::now();
        now.state = "active";
        // In place: the buffers of the last statement fit the next one most of the time.
        now.query.clear();
        now.query.push_str(query);
        now.query_start = Some(at);
        now.state_change = at;
        if now.application_name != application_name {
            now.application_name.clear();
            now.application_name.push_str(application_name);
        }
        now.budget = Some(budget);
        if !in_block || now.xact_start.is_none() {
            now.xact_start = Some(at);
        }
    }

    /// The statement ended (its rows sent); `state` is `idle`, `idle in transaction` or
    /// `idle in transaction (aborted)`.
    pub fn finished(&self, state: &'static str) {
        let mut now = self.lock();
        now.state = state;
        now.state_change = SystemTime::now();
        if state == "idle" {
            now.xact_start = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_join_work_and_leave() {
        let registry = Arc::new(Activity::default());
        let a = registry.join("alice", "awscc");
        a.entry.connected(42, None);
        let budget = Arc::new(CallBudget::new(10));
        a.entry.started("SELECT * FROM t WHERE x = ?", "psql", false, budget.clone());
        let _ = budget.take(
            "GetResource",
            "AWS::EC2::VPC",
            &crate::cloudcontrol::Place::new("default", "us-east-1"),
        );
        let rows = registry.snapshot();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].pid, rows[0].state, rows[0].api_calls), (42, "active", 1));
        assert_eq!(rows[0].application_name, "psql");
        a.entry.finished("idle");
        assert_eq!(registry.snapshot()[0].state, "idle");
        drop(a);
        assert!(registry.snapshot().is_empty());
    }
}
