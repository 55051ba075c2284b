//! The PostgreSQL wire protocol: everything that knows pgwire.
//!
//! - `connection`: the message loop of one socket and its limits (with `guard`, the message
//!   size bound);
//! - `startup`: the startup exchange and authentication, which create the connection's
//!   [`Session`] with its user's role;
//! - `simple` and `extended`: the two query protocols, both running statements through
//!   `run` (cancel, `statement_timeout`, a vanished client) and streaming rows as they come;
//! - `encode`: Arrow schemas and batches as PostgreSQL row descriptions and rows;
//! - `rows`: encoded batches as DataRow messages.

mod connection;
mod encode;
mod extended;
mod guard;
mod rows;
mod run;
mod simple;
pub(crate) mod startup;

use std::sync::Arc;

use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::{ConnectionManager, PgWireServerHandlers};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::response::TransactionStatus;
use tokio::sync::{Mutex, MutexGuard};
use tokio::time::Instant;

pub use connection::{serve, ConnectionLimits, IdleEnd};

use crate::auth::{Role, Throttle, Users};
use crate::config::Config;
use crate::error::Error;
use crate::sql::{Engine, Idle, Session, Status};
use crate::tls::Tls;

/// A client-visible error: SQLSTATE, message, hint. Our faults are logged as errors, the
/// client's mistakes at debug.
pub fn to_pg_error(e: &Error) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e)))
}

fn error_info(e: &Error) -> ErrorInfo {
    // The message goes to the client only: it may quote the statement's values.
    if e.is_user_error() {
        tracing::debug!(error = %e.log_summary(), sqlstate = e.sqlstate(), "statement failed");
    } else {
        tracing::error!(error = %e.log_summary(), sqlstate = e.sqlstate(), "statement failed");
    }
    let mut info = ErrorInfo::new("ERROR".to_string(), e.sqlstate().to_string(), e.to_string());
    info.hint = e.hint();
    info
}

/// The handlers of one connection, sharing its session.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

/// Who may connect and how; shared by every connection.
pub struct Access {
    pub users: Users,
    pub throttle: Throttle,
    pub tls: Tls,
    /// `[mutations] writers` (deprecated): when set, only these users may write.
    writers: Vec<String>,
}

impl Access {
    pub fn new(config: &Config) -> crate::Result<Access> {
        Ok(Access {
            users: Users::new(config.auth.method, config.auth.users.clone()),
            throttle: Throttle::new(config.auth.max_failure_delay),
            tls: Tls::new(&config.tls)?,
            writers: config.mutations.writers.clone(),
        })
    }

    /// A user's role, narrowed by the deprecated `[mutations] writers` list when it is set.
    fn effective_role(&self, user: &str, role: Role) -> Role {
        if !self.writers.is_empty() && !self.writers.iter().any(|w| w == user) {
            Role::Reader
        } else {
            role
        }
    }
}

struct Shared {
    engine: Arc<Engine>,
    access: Arc<Access>,
    /// Created by the startup exchange.
    session: Mutex<Option<Session>>,
    /// The server's registry of connections, so a CancelRequest (sent on another socket)
    /// reaches the statement running here.
    cancels: Arc<ConnectionManager>,
    /// Names of the prepared statements of this connection, for DEALLOCATE ALL and its bound.
    statements: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Named portals opened since the last transaction ended, for their bound.
    portals: std::sync::atomic::AtomicUsize,
}

/// The most prepared statements one connection may keep, and named portals one transaction
/// may open: a client cannot grow a connection's memory without bound.
pub const MAX_PREPARED_STATEMENTS: usize = 10_000;
pub const MAX_PORTALS: usize = 10_000;

impl Connection {
    pub fn new(engine: Arc<Engine>, cancels: Arc<ConnectionManager>, access: Arc<Access>) -> Connection {
        Connection {
            shared: Arc::new(Shared {
                engine,
                access,
                session: Mutex::new(None),
                cancels,
                statements: std::sync::Mutex::new(std::collections::HashSet::new()),
                portals: std::sync::atomic::AtomicUsize::new(0),
            }),
        }
    }

    /// The connection's session; an error before startup created it.
    async fn session(&self) -> Result<MutexGuard<'_, Option<Session>>, PgWireError> {
        let guard = self.shared.session.lock().await;
        if guard.is_none() {
            return Err(to_pg_error(&Error::ProtocolViolation(
                "no session: the startup exchange did not finish".into(),
            )));
        }
        Ok(guard)
    }

    /// When an idle connection is closed, and why; `None` when it may wait forever.
    pub async fn idle_deadline(&self, _status: TransactionStatus) -> Option<(Instant, IdleEnd)> {
        let guard = self.shared.session.lock().await;
        let (timeout, which) = guard.as_ref()?.idle_timeout()?;
        let why = match which {
            Idle::Session => IdleEnd::Session,
            Idle::InTransaction => IdleEnd::InTransaction,
        };
        Some((Instant::now() + timeout, why))
    }

    /// A message failed outside a statement (a Bind with the wrong parameters, say): an open
    /// transaction block fails, as in PostgreSQL.
    pub async fn statement_failed(&self) {
        if let Some(s) = self.shared.session.lock().await.as_mut() {
            s.fail();
        }
    }

    /// Records a named statement; 54000 beyond [`MAX_PREPARED_STATEMENTS`].
    fn remember_statement(&self, name: &str) -> Result<(), PgWireError> {
        let mut names = self.shared.statements.lock().unwrap_or_else(|p| p.into_inner());
        if !names.contains(name) && names.len() >= MAX_PREPARED_STATEMENTS {
            return Err(limit_error(format!(
                "this connection already keeps {MAX_PREPARED_STATEMENTS} prepared statements, the most it may"
            )));
        }
        names.insert(name.to_string());
        Ok(())
    }

    /// Counts a named portal; 54000 beyond [`MAX_PORTALS`] in one transaction.
    fn open_portal(&self) -> Result<(), PgWireError> {
        let open = self.shared.portals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if open >= MAX_PORTALS {
            self.shared.portals.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            return Err(limit_error(format!(
                "this transaction already has {MAX_PORTALS} open portals, the most it may"
            )));
        }
        Ok(())
    }

    fn portals_closed(&self) {
        self.shared.portals.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    fn forget_statements(&self, name: Option<&str>) -> Vec<String> {
        let mut names = self.shared.statements.lock().unwrap_or_else(|p| p.into_inner());
        match name {
            Some(n) => {
                if names.remove(n) {
                    vec![n.to_string()]
                } else {
                    Vec::new()
                }
            }
            None => names.drain().collect(),
        }
    }
}

fn limit_error(message: String) -> PgWireError {
    let mut info = ErrorInfo::new("ERROR".into(), "54000".into(), message);
    info.hint = Some("close what is no longer needed (Close, DEALLOCATE), or end the transaction".into());
    PgWireError::UserError(Box::new(info))
}

/// The status byte of ReadyForQuery for a session state.
fn transaction_status(s: Status) -> TransactionStatus {
    match s {
        Status::Idle => TransactionStatus::Idle,
        Status::InBlock => TransactionStatus::Transaction,
        Status::Failed => TransactionStatus::Error,
    }
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::new(simple::Simple(self.clone()))
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::new(extended::Extended::new(self.clone()))
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        Arc::new(startup::Startup::new(self.clone()))
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(DefaultCancelHandler::new(self.shared.cancels.clone()))
    }
}
