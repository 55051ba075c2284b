//! What a statement means and how it runs: the shared [`Engine`] (catalog, API, base DataFusion
//! state, memory pool) and the per-connection [`Session`].
//!
//! The pipeline, the same for both protocols: `parse` (bounded, parsed once, rewritten once) →
//! `statement` (classified once into a [`Command`]; prepared into a [`Prepared`] that knows its
//! parameters and columns) → `session` (the one dispatch). Commands live beside it: `dml`
//! (INSERT/UPDATE/DELETE as Cloud Control requests, never DataFusion), `settings`
//! (SET/SHOW/RESET), `transaction` (BEGIN…COMMIT, savepoints), `meta` (StackQL's SHOW and
//! DESCRIBE), `names` (PostgreSQL's result column names), `memory` (per-statement limits);
//! queries are planned and run by DataFusion.

pub mod activity;
pub mod ast;
pub mod compat;
pub mod constant;
pub mod copy;
pub mod cursor;
pub mod datetime;
pub mod dml;
pub mod memory;
pub mod meta;
pub mod names;
pub mod parse;
pub mod recent;
pub mod rewrite;
pub mod session;
pub mod settings;
pub mod shared_plans;
pub mod stackql_columns;
pub mod statement;
pub mod transaction;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{CatalogProvider, MemorySchemaProvider};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::MemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{SessionConfig, SessionContext};

pub use session::{Idle, Parsed, Session};
pub use statement::{Command, Prepared};
pub use transaction::Status;

use crate::auth::Role;
use crate::catalog::model::CATALOG;
use crate::catalog::provider::{Backend, ResourceCatalog};
use crate::error::{Error, Result};

/// What a statement produced, and what the client must be told besides.
pub struct Output {
    pub result: Outcome,
    /// Warnings and notices, sent before the statement's completion.
    pub notices: Vec<Notice>,
    /// Reported parameters that changed (ParameterStatus).
    pub reported: Vec<(String, String)>,
    /// Prepared statements the connection must drop: `Some(None)` for all of them
    /// (`DEALLOCATE ALL`, `DISCARD ALL`), `Some(Some(name))` for one.
    pub forget: Option<Option<String>>,
}

/// The result of a statement.
pub enum Outcome {
    /// Rows, then a command tag: `tag` followed by the row count when `counted`
    /// (`SELECT 3`, `INSERT 0 1` for RETURNING), or `tag` alone (`SHOW`).
    Rows {
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
        tag: &'static str,
        counted: bool,
    },
    /// A command tag, complete (`INSERT 0 3`, `BEGIN`).
    Command(String),
    /// `COPY … TO STDOUT`: the rows, written in a COPY format.
    Copy {
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
        options: copy::CopyOptions,
    },
}

/// A WARNING or NOTICE for the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub severity: &'static str,
    pub code: &'static str,
    pub message: String,
}

impl Notice {
    pub fn warning(code: &'static str, message: impl Into<String>) -> Notice {
        Notice {
            severity: "WARNING",
            code,
            message: message.into(),
        }
    }

    pub fn info(message: impl Into<String>) -> Notice {
        Notice {
            severity: "NOTICE",
            code: "00000",
            message: message.into(),
        }
    }
}

/// NOTICEs a statement has for the client while it still runs (a mutation's tokens the
/// moment Cloud Control accepts it), sent by the wire layer as they come.
#[derive(Debug, Default)]
pub struct LiveNotices {
    queue: std::sync::Mutex<Vec<Notice>>,
    ready: tokio::sync::Notify,
}

impl LiveNotices {
    pub fn push(&self, notice: Notice) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).push(notice);
        self.ready.notify_one();
    }

    /// The notices not sent yet, oldest first.
    pub fn take(&self) -> Vec<Notice> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Completes when a notice has been pushed since the last wait.
    pub async fn ready(&self) {
        self.ready.notified().await
    }
}

impl Output {
    pub fn rows(schema: SchemaRef, stream: SendableRecordBatchStream, tag: &'static str, counted: bool) -> Output {
        Output::from(Outcome::Rows {
            schema,
            stream,
            tag,
            counted,
        })
    }

    pub fn command(tag: impl Into<String>) -> Output {
        Output::from(Outcome::Command(tag.into()))
    }
}

impl From<Outcome> for Output {
    fn from(result: Outcome) -> Output {
        Output {
            result,
            notices: Vec::new(),
            reported: Vec::new(),
            forget: None,
        }
    }
}

/// Shared by every connection.
pub struct Engine {
    pub backend: Arc<Backend>,
    base: SessionContext,
    /// The query engine's memory, shared by all statements (`limits.memory_pool`).
    memory: Arc<dyn MemoryPool>,
    /// What catalog functions look up.
    pub(crate) lookup: Arc<compat::Lookup>,
    /// The connections and what they run (`pg_stat_activity`).
    pub(crate) activity: Arc<activity::Activity>,
    /// Queries planned by one session, for the others that prepare the same text.
    pub(crate) plans: shared_plans::SharedPlans,
}

impl Engine {
    pub fn new(backend: Arc<Backend>) -> Result<Engine> {
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG, "public")
            .with_information_schema(false)
            .with_create_default_catalog_and_schema(false);
        // Nothing spills to disk: a statement over its memory limit fails with 53200 instead of
        // filling the disk (see `memory`).
        let runtime = RuntimeEnvBuilder::new()
            .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
            .build_arc()
            .map_err(Error::from)?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let catalog = Arc::new(ResourceCatalog::new(backend.clone()));
        catalog
            .register_schema("public", Arc::new(MemorySchemaProvider::new()))
            .map_err(Error::from)?;
        let system = register_system_tables(&catalog, &backend)?;
        ctx.register_catalog(CATALOG, catalog);
        datafusion_pg_catalog::pg_catalog::setup_pg_catalog(
            &ctx,
            CATALOG,
            datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider,
        )
        .map_err(|e| Error::from(*e))?;
        let mut state = ctx.state();
        datafusion_functions_json::register_all(&mut state).map_err(Error::from)?;
        let ctx = SessionContext::new_with_state(state);
        rewrite::register_functions(&ctx);
        let relations =
            compat::relations::LazyRelations::new(backend.catalog.clone(), system, backend.config.catalog.list_only_in_listings);
        let activity = Arc::new(activity::Activity::default());
        let lookup = compat::install(&ctx, CATALOG, relations, activity.clone())?;
        let memory = memory::server_pool(backend.config.limits.memory_pool);
        Ok(Engine {
            backend,
            base: ctx,
            memory,
            lookup,
            activity,
            plans: shared_plans::SharedPlans::default(),
        })
    }

    /// A new session for an authenticated user; `startup` holds the parameters the client
    /// sent when it connected.
    pub fn session(self: &Arc<Self>, user: &str, database: &str, startup: &BTreeMap<String, String>, role: Role) -> Session {
        Session::new(self.clone(), user, database, startup, role)
    }
}

/// `cloudpg.requests` and `awscc.cloudcontrol.resource_requests`, returned as catalogs
/// describe them.
fn register_system_tables(catalog: &ResourceCatalog, backend: &Arc<Backend>) -> Result<Vec<compat::relations::SystemTable>> {
    use crate::catalog::requests::{server_requests, ApiRequestsTable, API_REQUESTS, API_SCHEMA, SERVER_REQUESTS, SERVER_SCHEMA};
    use datafusion::catalog::{SchemaProvider, TableProvider};
    let server_table = Arc::new(server_requests(backend.requests.clone()));
    let api_table = Arc::new(ApiRequestsTable { backend: backend.clone() });
    let any_type_table = Arc::new(crate::catalog::any_type::AnyTypeTable { backend: backend.clone() });
    let calls_table = Arc::new(crate::catalog::system::api_calls(backend.calls.clone()));
    let cache_table = Arc::new(crate::catalog::system::cache(backend.api.clone()));
    let accounts_table = Arc::new(crate::catalog::system::accounts(backend.accounts.clone(), backend.api.clone()));
    let usage_table = Arc::new(crate::catalog::system::api_usage(backend.usage.clone()));
    let overrides_table = Arc::new(crate::catalog::system::schema_overrides());
    let settings_table = Arc::new(compat::pg_catalog::PgSettings { only_cloudpg: true });
    let system = vec![
        compat::relations::SystemTable {
            schema: SERVER_SCHEMA,
            name: SERVER_REQUESTS,
            arrow: server_table.schema(),
            comment: format!(
                "Mutations this server started, with their latest status; {}",
                backend.requests.journal_description()
            ),
        },
        compat::relations::SystemTable {
            schema: SERVER_SCHEMA,
            name: crate::catalog::system::API_CALLS,
            arrow: calls_table.schema(),
            comment: "The most recent Cloud Control calls: when, what, where, how long, attempts, outcome".into(),
        },
        compat::relations::SystemTable {
            schema: SERVER_SCHEMA,
            name: crate::catalog::system::CACHE,
            arrow: cache_table.schema(),
            comment: "The cache: entries, bytes, hits and misses since start, TTL and bound".into(),
        },
        compat::relations::SystemTable {
            schema: SERVER_SCHEMA,
            name: crate::catalog::system::ACCOUNTS,
            arrow: accounts_table.schema(),
            comment: "The AWS accounts this server reads: name, 12-digit id (STS GetCallerIdentity), credentials, regions".into(),
        },
        compat::relations::SystemTable {
            schema: SERVER_SCHEMA,
            name: crate::catalog::system::API_USAGE,
            arrow: usage_table.schema(),
            comment: "Cloud Control calls of the last hour made for users, by user, account, region and type".into(),
        },
        compat::relations::SystemTable {
            schema: SERVER_SCHEMA,
            name: crate::catalog::system::SCHEMA_OVERRIDES,
            arrow: overrides_table.schema(),
            comment: "Schemas read from the account over the shipped ones (cloudpg schemas refresh): in use or refused, and why".into(),
        },
        compat::relations::SystemTable {
            schema: SERVER_SCHEMA,
            name: "settings",
            arrow: settings_table.schema(),
            comment: "cloudpg's own parameters as this session has them (SET changes them)".into(),
        },
        compat::relations::SystemTable {
            schema: API_SCHEMA,
            name: API_REQUESTS,
            arrow: api_table.schema(),
            comment: "Cloud Control's resource requests (ListResourceRequests), by region".into(),
        },
        compat::relations::SystemTable {
            schema: API_SCHEMA,
            name: crate::catalog::any_type::ANY_TYPE_TABLE,
            arrow: any_type_table.schema(),
            comment: "Any resource type by name (WHERE type_name = '…'), schema or not: properties as JSON".into(),
        },
    ];
    let server = MemorySchemaProvider::new();
    let server_tables: [(&str, Arc<dyn TableProvider>); 7] = [
        (SERVER_REQUESTS, server_table),
        (crate::catalog::system::API_CALLS, calls_table),
        (crate::catalog::system::CACHE, cache_table),
        (crate::catalog::system::ACCOUNTS, accounts_table),
        (crate::catalog::system::API_USAGE, usage_table),
        (crate::catalog::system::SCHEMA_OVERRIDES, overrides_table),
        ("settings", settings_table),
    ];
    for (name, table) in server_tables {
        server.register_table(name.to_string(), table).map_err(Error::from)?;
    }
    catalog.register_schema(SERVER_SCHEMA, Arc::new(server)).map_err(Error::from)?;
    let api = MemorySchemaProvider::new();
    api.register_table(API_REQUESTS.to_string(), api_table).map_err(Error::from)?;
    api.register_table(crate::catalog::any_type::ANY_TYPE_TABLE.to_string(), any_type_table)
        .map_err(Error::from)?;
    catalog.register_schema(API_SCHEMA, Arc::new(api)).map_err(Error::from)?;
    Ok(system)
}
