//! What a statement means and how it runs: the shared [`Engine`] (catalog, API, base DataFusion
//! state) and the per-connection [`Session`] (its own DataFusion context and settings).
//!
//! Statements are classified here: meta commands (`SHOW SERVICES`, `SHOW RESOURCES IN`,
//! `DESCRIBE`), session commands (SET/SHOW/BEGIN/COMMIT), DML on resource tables (`dml`, which
//! never reaches DataFusion), and queries, which DataFusion plans and runs.

pub mod dml;
pub mod meta;
pub mod rewrite;

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{CatalogProvider, MemorySchemaProvider};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use tracing::Instrument;

use crate::catalog::model::CATALOG;
use crate::catalog::provider::{Backend, QuerySettings, ResourceCatalog};
use crate::config::DefaultRegions;
use crate::error::{Error, Result};

/// What a statement produced.
pub enum Output {
    Rows {
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
    },
    Command {
        tag: &'static str,
        rows: Option<usize>,
    },
    /// The rows of `INSERT/UPDATE/DELETE … RETURNING`, completed with the statement's tag.
    Returning {
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
        tag: &'static str,
    },
    TransactionStart,
    TransactionEnd(&'static str),
}

/// Shared by every connection.
pub struct Engine {
    pub backend: Arc<Backend>,
    base: SessionContext,
}

impl Engine {
    pub fn new(backend: Arc<Backend>) -> Result<Engine> {
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG, "public")
            .with_information_schema(true)
            .with_create_default_catalog_and_schema(false);
        let ctx = SessionContext::new_with_config(config);
        let catalog = Arc::new(ResourceCatalog::new(backend.clone()));
        catalog
            .register_schema("public", Arc::new(MemorySchemaProvider::new()))
            .map_err(Error::from)?;
        register_request_tables(&catalog, &backend)?;
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
        Ok(Engine { backend, base: ctx })
    }

    pub fn session(self: &Arc<Self>, user: &str, database: &str) -> Session {
        Session {
            engine: self.clone(),
            ctx: SessionContext::new_with_state(self.base.state()),
            settings: QuerySettings {
                regions: self.backend.config.regions.clone(),
                bypass_cache: false,
            },
            variables: HashMap::new(),
            dml: dml::DmlSettings::default(),
            user: user.to_string(),
            database: database.to_string(),
        }
    }
}

/// `cloudpg.requests` and `awscc.cloudcontrol.resource_requests`.
fn register_request_tables(catalog: &ResourceCatalog, backend: &Arc<Backend>) -> Result<()> {
    use crate::catalog::requests::{ApiRequestsTable, ServerRequestsTable, API_REQUESTS, API_SCHEMA, SERVER_REQUESTS, SERVER_SCHEMA};
    use datafusion::catalog::SchemaProvider;
    let server = MemorySchemaProvider::new();
    server
        .register_table(
            SERVER_REQUESTS.to_string(),
            Arc::new(ServerRequestsTable {
                log: backend.requests.clone(),
            }),
        )
        .map_err(Error::from)?;
    catalog.register_schema(SERVER_SCHEMA, Arc::new(server)).map_err(Error::from)?;
    let api = MemorySchemaProvider::new();
    api.register_table(API_REQUESTS.to_string(), Arc::new(ApiRequestsTable { backend: backend.clone() }))
        .map_err(Error::from)?;
    catalog.register_schema(API_SCHEMA, Arc::new(api)).map_err(Error::from)?;
    Ok(())
}

/// One connection's state.
pub struct Session {
    engine: Arc<Engine>,
    ctx: SessionContext,
    settings: QuerySettings,
    variables: HashMap<String, String>,
    dml: dml::DmlSettings,
    pub user: String,
    pub database: String,
}

/// What the `/*+ … */` hints of a statement ask for.
#[derive(Debug, Clone, Copy, Default)]
struct Hints {
    nocache: bool,
    nowait: bool,
}

impl Hints {
    fn of(sql: &str) -> Hints {
        Hints {
            nocache: rewrite::has_hint(sql, "NOCACHE"),
            nowait: rewrite::has_hint(sql, "NOWAIT"),
        }
    }
}

/// A statement parsed and classified, ready to run or describe.
#[derive(Clone, Debug)]
pub enum Prepared {
    /// A query, planned: its result schema and parameter types are known.
    Query { plan: Box<LogicalPlan>, bypass_cache: bool },
    /// INSERT, UPDATE or DELETE on a resource table; `$n` are bound into the statement.
    Dml {
        stmt: Box<Statement>,
        nowait: bool,
        /// Parameter types in `$n` order.
        params: Vec<datafusion::arrow::datatypes::DataType>,
        /// The RETURNING columns, if any.
        returning: Option<SchemaRef>,
    },
    /// Any other SQL statement, run when executed.
    Statement { stmt: Box<Statement>, bypass_cache: bool },
    /// A StackQL meta command (not SQL).
    Meta { sql: String },
}

impl Session {
    /// Runs every statement of a simple query; stops at the first error, as PostgreSQL does.
    pub async fn execute_all(&mut self, sql: &str) -> Vec<Result<Output>> {
        let span = tracing::info_span!("query", user = %self.user, sql = %truncate(sql, 200));
        async {
            if let Some(answer) = meta::answer(sql, &self.engine.backend.catalog).transpose() {
                return vec![answer];
            }
            let hints = Hints::of(sql);
            let statements = match parse(sql) {
                Ok(s) => s,
                Err(e) => return vec![Err(e)],
            };
            if statements.is_empty() {
                return vec![Ok(Output::Command { tag: "EMPTY", rows: None })];
            }
            let mut out = Vec::with_capacity(statements.len());
            for stmt in statements {
                let r = self.execute_statement(stmt, hints).await;
                let failed = r.is_err();
                out.push(r);
                if failed {
                    break;
                }
            }
            out
        }
        .instrument(span)
        .await
    }

    /// Parses and, for queries, plans a statement without running it (for Parse/Describe).
    /// `None` for SQL holding no statement (only comments), which PostgreSQL treats as empty.
    pub async fn prepare(&mut self, sql: &str) -> Result<Option<Prepared>> {
        if meta::is_meta(sql) {
            return Ok(Some(Prepared::Meta { sql: sql.to_string() }));
        }
        let hints = Hints::of(sql);
        let bypass_cache = hints.nocache;
        let mut statements = parse(sql)?;
        if statements.len() > 1 {
            return Err(Error::Syntax("cannot insert multiple commands into a prepared statement".into()));
        }
        let Some(mut stmt) = statements.pop() else { return Ok(None) };
        if dml::Verb::of(&stmt).is_some() {
            rewrite::rewrite(&mut stmt);
            let table = dml::target_table(&stmt, &self.engine.backend.catalog)?;
            let params = dml::parameter_types(&stmt, &table);
            let returning = dml::returning_items(&stmt)
                .map(|items| self.returning_schema(&table, items))
                .transpose()?;
            return Ok(Some(Prepared::Dml {
                stmt: Box::new(stmt),
                nowait: hints.nowait,
                params,
                returning,
            }));
        }
        let explains_dml = matches!(&stmt, Statement::Explain { statement, .. } if dml::Verb::of(statement).is_some());
        if matches!(stmt, Statement::Query(_) | Statement::Explain { .. }) && !explains_dml {
            let plan = self.plan(stmt).await?;
            Ok(Some(Prepared::Query {
                plan: Box::new(plan),
                bypass_cache,
            }))
        } else {
            Ok(Some(Prepared::Statement {
                stmt: Box::new(stmt),
                bypass_cache,
            }))
        }
    }

    /// Runs a prepared statement with parameter values bound.
    pub async fn run_prepared(&mut self, prepared: &Prepared, params: Option<datafusion::common::ParamValues>) -> Result<Output> {
        let span = tracing::info_span!("query", user = %self.user, prepared = true);
        async {
            match prepared {
                Prepared::Query { plan, bypass_cache } => {
                    let plan = match params {
                        Some(p) => plan.as_ref().clone().with_param_values(p).map_err(Error::from)?,
                        None => plan.as_ref().clone(),
                    };
                    self.run_plan(plan, *bypass_cache).await
                }
                Prepared::Dml { stmt, nowait, .. } => {
                    let mut stmt = stmt.as_ref().clone();
                    if let Some(datafusion::common::ParamValues::List(values)) = params {
                        let values: Vec<_> = values.into_iter().map(|v| v.value).collect();
                        dml::target::bind(&mut stmt, &values)?;
                    }
                    self.execute_dml(stmt, *nowait).await
                }
                Prepared::Statement { stmt, bypass_cache } => {
                    let hints = Hints {
                        nocache: *bypass_cache,
                        nowait: false,
                    };
                    self.execute_statement(stmt.as_ref().clone(), hints).await
                }
                Prepared::Meta { sql } => {
                    meta::answer(sql, &self.engine.backend.catalog)?.ok_or_else(|| Error::internal(format!("not a meta command: {sql}")))
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn execute_statement(&mut self, stmt: Statement, hints: Hints) -> Result<Output> {
        match &stmt {
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => self.execute_dml(stmt, hints.nowait).await,
            Statement::Explain { statement, analyze, .. } if dml::Verb::of(statement).is_some() => {
                if *analyze {
                    return Err(Error::NotSupported(
                        "EXPLAIN ANALYZE of INSERT, UPDATE or DELETE would change resources; use EXPLAIN to see the requests".into(),
                    ));
                }
                self.explain_dml(statement.as_ref().clone()).await
            }
            Statement::StartTransaction { .. } => Ok(Output::TransactionStart),
            Statement::Commit { .. } => Ok(Output::TransactionEnd("COMMIT")),
            Statement::Rollback { .. } => Ok(Output::TransactionEnd("ROLLBACK")),
            Statement::Set(set) => self.set(set),
            Statement::ShowVariable { variable } => self.show(&show_name(variable)).await,
            _ => {
                let plan = self.plan(stmt).await?;
                self.run_plan(plan, hints.nocache).await
            }
        }
    }

    async fn plan(&mut self, mut stmt: Statement) -> Result<LogicalPlan> {
        rewrite::rewrite(&mut stmt);
        rewrite::check_tables(&stmt, &self.engine.backend.catalog)?;
        let state = self.ctx.state();
        state
            .statement_to_plan(DfStatement::Statement(Box::new(stmt)))
            .await
            .map_err(Error::from)
    }

    async fn run_plan(&mut self, plan: LogicalPlan, bypass_cache: bool) -> Result<Output> {
        let settings = QuerySettings {
            bypass_cache: bypass_cache || self.settings.bypass_cache,
            ..self.settings.clone()
        };
        let mut state = self.ctx.state();
        state.config_mut().set_extension(Arc::new(settings));
        let df = datafusion::dataframe::DataFrame::new(state, plan);
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let stream = df.execute_stream().await.map_err(Error::from)?;
        Ok(Output::Rows { schema, stream })
    }

    fn set(&mut self, set: &datafusion::sql::sqlparser::ast::Set) -> Result<Output> {
        use datafusion::sql::sqlparser::ast::Set;
        let (name, values) = match set {
            Set::SingleAssignment { variable, values, .. } => (
                variable.to_string().to_lowercase(),
                values.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            ),
            Set::SetTimeZone { value, .. } => ("timezone".to_string(), vec![value.to_string()]),
            _ => return Ok(Output::Command { tag: "SET", rows: None }),
        };
        let value = values.join(", ").trim_matches('\'').to_string();
        match name.as_str() {
            "cloudpg.cache_ttl" => {
                let off = matches!(value.as_str(), "0" | "0s" | "off");
                self.settings.bypass_cache = off;
            }
            "cloudpg.allow_bulk_mutations" => self.dml.allow_bulk = parse_on_off(&name, &value)?,
            "cloudpg.nowait" => self.dml.nowait = parse_on_off(&name, &value)?,
            "cloudpg.regions" => {
                let registry = self.engine.backend.catalog.registry;
                self.settings.regions = if value == "*" {
                    DefaultRegions::All
                } else {
                    let list: Vec<String> = value
                        .split(',')
                        .map(|r| r.trim().trim_matches('\'').to_string())
                        .filter(|r| !r.is_empty())
                        .collect();
                    if let Some(bad) = list.iter().find(|r| !registry.is_region(r)) {
                        return Err(Error::invalid_parameter(
                            format!("invalid value for parameter \"cloudpg.regions\": region '{bad}' does not exist"),
                            Some(format!("valid regions are {}", registry.regions.join(", "))),
                        ));
                    }
                    DefaultRegions::List(list)
                };
            }
            _ => {}
        }
        self.variables.insert(name, value);
        Ok(Output::Command { tag: "SET", rows: None })
    }

    async fn show(&mut self, name: &str) -> Result<Output> {
        let value = match name {
            "cloudpg.regions" => match &self.settings.regions {
                DefaultRegions::All => "*".to_string(),
                DefaultRegions::List(l) => l.join(","),
            },
            "cloudpg.cache_ttl" => {
                if self.settings.bypass_cache {
                    "0".into()
                } else {
                    format!("{}s", self.engine.backend.config.cache.ttl.as_secs())
                }
            }
            "cloudpg.allow_bulk_mutations" => on_off(self.dml.allow_bulk),
            "cloudpg.nowait" => on_off(self.dml.nowait),
            "server_version" => meta::SERVER_VERSION.to_string(),
            "transaction isolation level" | "transaction_isolation" => "read committed".into(),
            "standard_conforming_strings" => "on".into(),
            "client_encoding" | "server_encoding" => "UTF8".into(),
            "datestyle" => "ISO, MDY".into(),
            "timezone" | "time zone" => self.variables.get("timezone").cloned().unwrap_or_else(|| "UTC".into()),
            "search_path" => self
                .variables
                .get("search_path")
                .cloned()
                .unwrap_or_else(|| "\"$user\", public".into()),
            other => self
                .variables
                .get(other)
                .cloned()
                .ok_or_else(|| Error::invalid_parameter(format!("unrecognized configuration parameter \"{other}\""), None))?,
        };
        Ok(meta::single_value(name, &value))
    }
}

/// The parameter a SHOW names: PostgreSQL's few multi-word names (`transaction isolation
/// level`) keep their spaces; dotted names (`cloudpg.regions`) arrive as separate words.
fn show_name(words: &[datafusion::sql::sqlparser::ast::Ident]) -> String {
    const MULTI_WORD: &[&str] = &["transaction isolation level", "time zone", "session authorization"];
    let words: Vec<String> = words.iter().map(|i| i.value.to_lowercase()).collect();
    let spaced = words.join(" ");
    if words.len() == 1 || MULTI_WORD.contains(&spaced.as_str()) {
        spaced
    } else {
        words.join(".")
    }
}

/// A boolean setting, in PostgreSQL's spellings.
fn parse_on_off(name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" | "t" => Ok(true),
        "off" | "false" | "no" | "0" | "f" => Ok(false),
        _ => Err(Error::invalid_parameter(
            format!("parameter \"{name}\" requires a Boolean value, not '{value}'"),
            Some("use on or off".into()),
        )),
    }
}

fn on_off(b: bool) -> String {
    if b { "on" } else { "off" }.to_string()
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Parses with PostgreSQL's dialect and the pg_catalog compatibility rewrites clients need
/// (`pg_catalog.` function prefixes, `COLLATE`, `OPERATOR(pg_catalog.~)`, `::regclass`); the
/// StackQL rewrites apply to the AST afterwards.
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    static PARSER: std::sync::OnceLock<datafusion_pg_catalog::sql::PostgresCompatibilityParser> = std::sync::OnceLock::new();
    PARSER
        .get_or_init(datafusion_pg_catalog::sql::PostgresCompatibilityParser::new)
        .parse(sql)
        .map_err(|e| Error::Syntax(e.to_string()))
}
