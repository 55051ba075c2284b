//! One connection's state and the single dispatch of its statements.
//!
//! [`Session::parse`] and [`Session::prepare`] turn text into [`Prepared`] statements (both
//! protocols go through them); [`Session::execute`] runs one, in the session's transaction
//! state, with a fresh per-statement scope: a Cloud Control call budget and a memory limit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::execution::session_state::SessionState;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use tracing::Instrument;

use super::compat::{self, SessionView};
use super::cursor::{Count, Cursors};
use super::dml::{self, Verb};
use super::memory::StatementMemory;
use super::parse::{self, Fingerprint, Hints};
use super::recent::RecentQueries;
use super::settings::{reported_name, SetValue, Settings};
use super::shared_plans::PlanInputs;
use super::statement::{Command, Prepared, QueryPlan};
use super::transaction::{Status, Transaction, TransactionCommand};
use super::{meta, names, rewrite, Engine, LiveNotices, Notice, Outcome, Output};
use crate::auth::Role;
use crate::catalog::provider::QuerySettings;
use crate::catalog::replan::KeptPlan;
use crate::cloudcontrol::budget::CallBudget;
use crate::error::{Error, Result};

/// One connection's state.
pub struct Session {
    pub(crate) engine: Arc<Engine>,
    /// The session's query engine state, owned rather than shared behind a lock so a
    /// statement borrows it instead of cloning its registries (hundreds of functions).
    pub(crate) state: SessionState,
    pub settings: Settings,
    transaction: Transaction,
    pub user: String,
    pub database: String,
    /// What the authenticated user may do.
    pub role: Role,
    /// The accounts the user may read and change (`[[auth.users]] accounts`); `None`: all.
    pub(crate) accounts: Option<Arc<[String]>>,
    /// What the statement running now may use.
    pub(crate) scope: Scope,
    /// The session as its catalog functions see it.
    view: Arc<SessionView>,
    cursors: Cursors,
    /// Simple-protocol queries run before, planned (see [`RecentQueries`]).
    recent: RecentQueries,
    /// This connection's row of `pg_stat_activity`.
    activity: super::activity::ActivityGuard,
    /// NOTICEs for the client while the statement still runs.
    pub(crate) live: Arc<LiveNotices>,
    /// The settings stamp the query engine's zone and time format were last set from.
    time_synced: Option<u64>,
}

/// The bounds of one statement.
pub(crate) struct Scope {
    pub budget: Arc<CallBudget>,
    pub memory: Arc<StatementMemory>,
    pub progress: Arc<crate::catalog::progress::Progress>,
}

/// One statement of a query string, classified.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub command: Command,
    pub fingerprint: Arc<Fingerprint>,
    pub hints: Hints,
}

/// Which idle timeout applies to a connection waiting for its next message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    Session,
    InTransaction,
}

impl Session {
    pub(super) fn new(engine: Arc<Engine>, user: &str, database: &str, startup: &BTreeMap<String, String>, role: Role) -> Session {
        let settings = Settings::new(&engine.backend.config, startup, role);
        let scope = engine.scope(settings.max_api_calls, user);
        let mut state = engine.base.state();
        let view = SessionView::new(user, &settings, engine.lookup.clone());
        let engine_activity = engine.activity.join(user, database);
        compat::install_session(&mut state, &view);
        let accounts = engine
            .backend
            .config
            .auth
            .users
            .iter()
            .find(|u| u.name == user)
            .and_then(|u| u.accounts.as_deref())
            .map(Arc::from);
        Session {
            state,
            view,
            cursors: Cursors::default(),
            recent: RecentQueries::default(),
            activity: engine_activity,
            engine,
            settings,
            transaction: Transaction::default(),
            accounts,
            user: user.to_string(),
            database: database.to_string(),
            role,
            scope,
            live: Arc::default(),
            time_synced: None,
        }
    }

    /// Where the running statement leaves NOTICEs the client should see before it ends; the
    /// wire layer sends them as they come.
    pub fn live_notices(&self) -> Arc<LiveNotices> {
        self.live.clone()
    }

    /// The statements of a query string, parsed and classified. A StackQL meta command is
    /// the whole string.
    pub fn parse(&self, sql: &str) -> Result<Vec<Parsed>> {
        let hints = Hints::of(sql);
        if let Some(m) = meta::parse_meta(sql) {
            let (fingerprint, _) = parse::scan(sql)?;
            return Ok(vec![Parsed {
                command: Command::Meta(m),
                fingerprint: Arc::new(fingerprint),
                hints,
            }]);
        }
        let (fingerprint, depth) = parse::scan(sql)?;
        parse::check_depth(depth, self.engine.backend.config.limits.max_expression_depth)?;
        let fingerprint = Arc::new(fingerprint);
        let catalog = &self.engine.backend.catalog;
        Ok(parse::parse_checked(sql)?
            .into_iter()
            .map(|mut s| {
                super::stackql_columns::resolve(&mut s, catalog);
                s
            })
            .map(|s| Parsed {
                command: Command::classify(s),
                fingerprint: fingerprint.clone(),
                hints,
            })
            .collect())
    }

    /// Parses and prepares one statement for the extended protocol; `None` when the text
    /// holds none (PostgreSQL's empty query). `declared` is how many parameter types the
    /// client gave.
    pub async fn prepare(&mut self, sql: &str, declared: usize) -> Result<Option<Prepared>> {
        if let Some(shared) = self.engine.plans.get(&self.plan_inputs(sql, declared)) {
            return Ok(Some(shared.as_ref().clone()));
        }
        let mut statements = self.parse(sql)?;
        if statements.len() > 1 {
            return Err(Error::Syntax("cannot insert multiple commands into a prepared statement".into()));
        }
        let Some(parsed) = statements.pop() else { return Ok(None) };
        let prepared = self.prepare_parsed(parsed, declared).await?;
        self.engine.plans.offer(&self.plan_inputs(sql, declared), &prepared);
        Ok(Some(prepared))
    }

    /// What a statement prepared from `sql` now would be planned for (see `shared_plans`).
    fn plan_inputs<'a>(&'a self, sql: &'a str, declared: usize) -> PlanInputs<'a> {
        PlanInputs {
            text: sql,
            declared,
            user: &self.user,
            time: self.settings.time_key(),
        }
    }

    /// Plans what needs planning, so the statement can describe itself.
    pub async fn prepare_parsed(&mut self, parsed: Parsed, declared: usize) -> Result<Prepared> {
        let mut prepared = Prepared {
            command: parsed.command,
            fingerprint: parsed.fingerprint,
            hints: parsed.hints,
            parameters: Vec::new(),
            columns: None,
            plan: None,
        };
        match &prepared.command {
            Command::Query(stmt) => {
                let count = parse::parameter_count(stmt)?;
                let plan = self.plan_query(stmt.as_ref().clone()).await?;
                let inferred = plan.get_parameter_types().map_err(Error::from)?;
                let casts = compat::syntax::placeholder_casts(stmt);
                let mut parameters = Vec::new();
                for n in 1..=count.max(declared) {
                    let t = match inferred.get(&format!("${n}")).cloned().flatten() {
                        Some(t) => Some(t),
                        None => match casts.get(&n) {
                            Some(sql_type) => self.arrow_type(sql_type).await,
                            None => None,
                        },
                    };
                    parameters.push(t);
                }
                prepared.parameters = parameters;
                prepared.columns = Some(client_schema(plan.schema().as_arrow()));
                let optimized = if count == 0 && declared == 0 && reusable(&plan) {
                    self.optimize(&plan).ok().map(Arc::new)
                } else {
                    None
                };
                prepared.plan = Some(QueryPlan {
                    logical: Arc::new(plan),
                    optimized,
                    physical: Arc::default(),
                    results: Arc::default(),
                    time: self.time_key(),
                });
            }
            Command::Dml { statement, .. } => {
                let count = parse::parameter_count(statement)?;
                let table = dml::target_table(statement, &self.engine.backend.catalog)?;
                let mut types: Vec<_> = dml::parameter_types(statement, &table, count).into_iter().map(Some).collect();
                types.resize(count.max(declared), None);
                prepared.parameters = types;
                prepared.columns = dml::returning_items(statement)
                    .map(|items| self.returning_schema(&table, items))
                    .transpose()?;
            }
            Command::ExplainDml(_) => prepared.columns = Some(meta::plan_schema()),
            Command::Show(name) => prepared.columns = Some(meta::text_schema(&[name.as_str()])),
            Command::ShowAll => prepared.columns = Some(meta::text_schema(&["name", "setting", "description"])),
            Command::Meta(m) => prepared.columns = Some(meta::schema(m)),
            Command::Fetch { name, discard: false, .. } => prepared.columns = self.cursors.schema(name),
            _ => {}
        }
        Ok(prepared)
    }

    /// The statement this session prepared from exactly `sql` (a whole simple-protocol
    /// message) when it can run again as planned.
    /// Another session's statement serves when it was prepared from the same text alone.
    pub fn recent_query(&self, sql: &str) -> Option<Arc<Prepared>> {
        self.recent
            .get(sql, self.settings.time_key())
            .or_else(|| self.engine.plans.get(&self.plan_inputs(sql, 0)))
            .filter(|p| p.parameters.is_empty())
    }

    /// Keeps a statement prepared from a whole simple-protocol message for its next run.
    pub fn remember_query(&mut self, sql: &str, prepared: &Arc<Prepared>) {
        self.recent.remember(sql, prepared);
        self.engine.plans.offer(&self.plan_inputs(sql, 0), prepared);
    }

    /// Runs a prepared statement; `params` are the values bound to its `$n`.
    pub async fn execute(&mut self, prepared: &Prepared, params: Option<ParamValues>) -> Result<Output> {
        // At DEBUG, as API calls' spans are: exported by OTLP (which takes cloudpg's DEBUG)
        // and written to the log when RUST_LOG asks for it. An INFO span had the log format
        // its fields for every statement, a tenth of what a `SELECT 1` costs the server;
        // the log's statement lines carry the fingerprint themselves.
        let span = tracing::debug_span!(
            "statement",
            kind = prepared.command.kind(),
            fingerprint = %prepared.fingerprint.hex(),
            sql = %truncate(&prepared.fingerprint.text, 300),
            user = %self.user,
        );
        self.scope = self.engine.scope(self.settings.max_api_calls, &self.user);
        self.activity.entry.started(
            &prepared.fingerprint.text,
            self.settings.application_name(),
            self.status() != Status::Idle,
            self.scope.budget.clone(),
        );
        let earlier = self.settle();
        match self.dispatch(prepared, params).instrument(span).await {
            Ok(mut out) => {
                out.reported.splice(0..0, earlier);
                Ok(out)
            }
            Err(e) => {
                self.transaction.fail();
                Err(e)
            }
        }
    }

    /// The current statement's scans and how often to report them, when the session wants
    /// progress NOTICEs (`cloudpg.progress`).
    pub fn progress(&self) -> Option<(Arc<crate::catalog::progress::Progress>, std::time::Duration)> {
        self.settings
            .progress
            .then(|| (self.scope.progress.clone(), self.settings.progress_interval))
    }

    /// WARNINGs for the failures the current statement went on without
    /// (`cloudpg.on_error = 'warn'`), and NOTICEs for regions it skipped, once each.
    pub fn take_warnings(&self) -> Vec<Notice> {
        self.scope
            .progress
            .take_warnings()
            .into_iter()
            .map(|(warning, text)| {
                if warning {
                    Notice::warning("01000", text)
                } else {
                    Notice::info(text)
                }
            })
            .collect()
    }

    /// The connection's backend PID and client address, for `pg_stat_activity`.
    pub fn connected(&self, pid: i32, client: Option<std::net::SocketAddr>) {
        self.activity.entry.connected(pid, client);
    }

    /// The statement's rows have all been sent (or it failed): the connection is idle again.
    pub fn statement_done(&self) {
        self.activity.entry.finished(match self.status() {
            Status::Idle => "idle",
            Status::InBlock => "idle in transaction",
            Status::Failed => "idle in transaction (aborted)",
        });
    }

    /// Cloud Control calls the current (or last) statement made.
    pub fn api_calls(&self) -> u64 {
        self.scope.budget.used()
    }

    /// Applies the `set_config` calls of the statement that just ended; returns the reported
    /// parameters that changed (ParameterStatus).
    pub fn settle(&mut self) -> Vec<(String, String)> {
        let mut reported = Vec::new();
        for p in self.view.take_pending() {
            // Checked when set_config ran; a value refused now (the role changed nothing
            // since) is dropped rather than failing a statement that already finished.
            if let Ok(out) = self.set(&p.name, SetValue::Text(p.value), p.local) {
                reported.extend(out.reported);
            }
        }
        reported
    }

    async fn dispatch(&mut self, prepared: &Prepared, params: Option<ParamValues>) -> Result<Output> {
        if !prepared.command.ends_transaction() {
            self.transaction.check_not_failed()?;
        }
        if params.is_none() && !prepared.parameters.is_empty() {
            return Err(Error::UndefinedParameterRef("$1".into()));
        }
        let bypass_cache = prepared.hints.nocache;
        match &prepared.command {
            Command::Query(stmt) => {
                let planned = prepared.plan.as_ref().filter(|p| p.time == self.settings.time_key());
                if planned.is_some() {
                    // Planned earlier: the engine's zone may have moved since, with the
                    // session's, to plan something else.
                    self.sync_time_format()?;
                }
                // A kept plan has no `$n` to bind, so its logical plan is read, not copied.
                if let Some((optimized, p)) = planned.and_then(|p| Some((p.optimized.as_deref()?, p))) {
                    if !is_explain(&p.logical) {
                        let schema = prepared
                            .columns
                            .clone()
                            .unwrap_or_else(|| client_schema(p.logical.schema().as_arrow()));
                        let stream = self.run_kept(optimized, p, bypass_cache).await?;
                        return Ok(Output::rows(schema, stream, "SELECT", true));
                    }
                }
                let plan = match planned {
                    Some(p) => p.logical.as_ref().clone(),
                    None => Box::pin(self.plan_query(stmt.as_ref().clone())).await?,
                };
                let plan = match params {
                    Some(p) => plan.with_param_values(p).map_err(Error::from)?,
                    None => plan,
                };
                let explain = is_explain(&plan);
                let schema = prepared.columns.clone().unwrap_or_else(|| client_schema(plan.schema().as_arrow()));
                let optimized = self.optimize(&plan)?;
                let stream = self.run_optimized(optimized, bypass_cache).await?;
                Ok(Output::rows(schema, stream, if explain { "EXPLAIN" } else { "SELECT" }, !explain))
            }
            Command::Dml { statement, verb } => {
                let mut statement = statement.as_ref().clone();
                if let Some(ParamValues::List(values)) = params {
                    let values: Vec<_> = values.into_iter().map(|v| v.value).collect();
                    dml::target::bind(&mut statement, &values)?;
                }
                let warning = self.check_mutation_allowed(*verb)?;
                let mut out = Box::pin(self.execute_dml(statement, prepared.hints.nowait)).await?;
                out.notices.extend(warning);
                Ok(out)
            }
            Command::ExplainDml(stmt) => Box::pin(self.explain_dml(stmt.as_ref().clone())).await,
            Command::Transaction(command) => {
                let before = self.settings.reported();
                let status = self.transaction.status();
                let done = self.transaction.run(command, &mut self.settings)?;
                if status != Status::Idle && self.transaction.status() == Status::Idle {
                    let committed = matches!(command, TransactionCommand::Commit) && status == Status::InBlock;
                    self.cursors.end_transaction(committed);
                }
                let mut out = Output::command(done.tag);
                out.reported = changed(&before, &self.settings.reported());
                out.notices
                    .extend(done.warning.map(|(code, message)| Notice::warning(code, message)));
                Ok(out)
            }
            Command::Set { name, value, local } => self.set(name, value.clone(), *local),
            Command::Show(name) => {
                let value = self.settings.get(name).ok_or_else(|| super::settings::unknown(name))?;
                Ok(meta::single_value(name, &value).with_tag("SHOW", false))
            }
            Command::ShowAll => {
                let rows = self
                    .settings
                    .all()
                    .into_iter()
                    .map(|[name, value, description]| vec![super::settings::display_name(&name).to_string(), value, description])
                    .collect();
                Ok(meta::rows(&["name", "setting", "description"], rows).with_tag("SHOW", false))
            }
            Command::Reset(name) => {
                let mut out = Output::command("RESET");
                match name {
                    Some(name) => {
                        if let Some(value) = self.settings.reset(name)? {
                            out.reported.push((reported_name(name), value));
                        }
                    }
                    None => out.reported = self.settings.reset_all(),
                }
                Ok(out)
            }
            Command::Discard { all } => {
                self.recent.clear();
                if !*all {
                    return Ok(Output::command("DISCARD"));
                }
                if self.transaction.status() != Status::Idle {
                    return Err(Error::ActiveTransaction {
                        message: "DISCARD ALL cannot run inside a transaction block".into(),
                        hint: None,
                    });
                }
                let mut out = Output::command("DISCARD ALL");
                self.cursors.close(None)?;
                out.reported = self.settings.reset_all();
                out.forget = Some(None);
                Ok(out)
            }
            Command::Deallocate(name) => {
                let mut out = Output::command(if name.is_some() { "DEALLOCATE" } else { "DEALLOCATE ALL" });
                out.forget = Some(name.clone());
                Ok(out)
            }
            Command::Listen { tag } => Ok(Output::command(*tag)),
            Command::Meta(m) => meta::answer(m, &self.engine.backend.catalog),
            Command::Refused { message } => Err(Error::NotSupported(message.clone())),
            Command::Invalid(e) => Err(e.clone()),
            Command::Declare { name, query, hold } => Box::pin(self.declare(name, query, *hold, bypass_cache)).await,
            Command::Fetch { name, direction, discard } => {
                let (schema, stream) = self.cursors.fetch(name, Count::of(direction)?)?;
                if *discard {
                    let moved = count_rows(stream).await?;
                    return Ok(Output::command(format!("MOVE {moved}")));
                }
                Ok(Output::rows(schema, stream, "FETCH", true))
            }
            Command::Close(name) => {
                self.cursors.close(name.as_deref())?;
                Ok(Output::command("CLOSE CURSOR"))
            }
            Command::Copy { query, options } => {
                let plan = Box::pin(self.plan_query(query.as_ref().clone())).await?;
                let schema = client_schema(plan.schema().as_arrow());
                let stream = self.run_plan(plan, bypass_cache).await?;
                Ok(Output::from(Outcome::Copy {
                    schema,
                    stream,
                    options: options.clone(),
                }))
            }
        }
    }

    /// `DECLARE`: the query starts, and its rows wait in the cursor for FETCH.
    async fn declare(&mut self, name: &str, query: &Statement, hold: bool, bypass_cache: bool) -> Result<Output> {
        let in_transaction = self.transaction.status() != Status::Idle;
        if !hold && !in_transaction {
            return Err(Error::NoActiveTransaction("DECLARE CURSOR".into()));
        }
        let plan = self.plan_query(query.clone()).await?;
        let schema = client_schema(plan.schema().as_arrow());
        let stream = self.run_plan(plan, bypass_cache).await?;
        self.cursors.declare(name, schema, stream, hold, in_transaction)?;
        Ok(Output::command("DECLARE CURSOR"))
    }

    /// `SET [LOCAL] name = value`, and `set_config`.
    fn set(&mut self, name: &str, value: SetValue, local: bool) -> Result<Output> {
        let mut out = Output::command("SET");
        if local {
            if let Some((code, message)) = self.transaction.before_set_local(&self.settings) {
                out.notices.push(Notice::warning(code, message));
                return Ok(out);
            }
        }
        if let Some(value) = self.settings.set(name, value)? {
            out.reported.push((reported_name(name), value));
        }
        if !local {
            self.transaction.after_set(name, &self.settings);
        }
        Ok(out)
    }

    /// The columns of an open cursor (a cursor is a portal clients may describe).
    pub fn cursor_schema(&self, name: &str) -> Option<SchemaRef> {
        self.cursors.schema(name).map(|s| client_schema(&s))
    }

    /// The zone and style date-time values are printed in.
    pub fn time_format(&self) -> crate::sql::datetime::TimeFormat {
        self.settings.time_format().clone()
    }

    /// The transaction status a ReadyForQuery reports.
    pub fn status(&self) -> Status {
        self.transaction.status()
    }

    /// A statement failed outside [`Session::execute`] (a protocol error): an open block fails.
    pub fn fail(&mut self) {
        self.transaction.fail();
        self.view.take_pending();
    }

    /// How long the connection may sit idle before it is closed, and which timeout that is.
    pub fn idle_timeout(&self) -> Option<(Duration, Idle)> {
        let (d, which) = match self.transaction.status() {
            Status::Idle => (self.settings.idle_session_timeout, Idle::Session),
            _ => (self.settings.idle_in_transaction_session_timeout, Idle::InTransaction),
        };
        (!d.is_zero()).then_some((d, which))
    }

    /// `statement_timeout`, when set.
    pub fn statement_timeout(&self) -> Option<Duration> {
        let d = self.settings.statement_timeout;
        (!d.is_zero()).then_some(d)
    }

    /// 25006 in a read-only transaction; 25001 inside a transaction block (Cloud Control
    /// cannot roll a mutation back) unless `cloudpg.autocommit_mutations`, which runs it at
    /// once with a warning.
    fn check_mutation_allowed(&self, verb: Verb) -> Result<Option<Notice>> {
        if self.transaction.read_only(&self.settings) {
            return Err(Error::ReadOnlyTransaction(verb.tag().to_string()));
        }
        if self.transaction.status() == Status::Idle {
            return Ok(None);
        }
        if !self.settings.autocommit_mutations {
            return Err(Error::ActiveTransaction {
                message: format!(
                    "{} cannot run inside a transaction block: Cloud Control has no transactions, so it could not be rolled back",
                    verb.tag()
                ),
                hint: Some(
                    "run it outside BEGIN … COMMIT (in autocommit mode), or SET cloudpg.autocommit_mutations = on to run it at once inside the block"
                        .into(),
                ),
            });
        }
        Ok(Some(Notice::warning(
            "01000",
            format!(
                "{} runs now, outside the transaction: Cloud Control cannot roll it back (cloudpg.autocommit_mutations is on)",
                verb.tag()
            ),
        )))
    }

    /// Plans a query with PostgreSQL's column names.
    pub(crate) async fn plan_query(&mut self, mut stmt: Statement) -> Result<LogicalPlan> {
        names::name_columns(&mut stmt);
        rewrite::check_tables(&stmt, &self.engine.backend.catalog)?;
        self.sync_time_format()?;
        self.state
            .statement_to_plan(DfStatement::Statement(Box::new(stmt)))
            .await
            .map_err(|e| {
                let e = Error::from(e);
                compat::unknown_object(&e).unwrap_or(e)
            })
    }

    /// The query engine's zone follows the session's: `now()` is a `timestamptz` there, and
    /// text without an offset cast to `timestamptz` is read as a time there, as PostgreSQL does;
    /// `::text` of a timestamp reads the zone and DateStyle from [`compat::time_input::SessionTime`].
    fn sync_time_format(&mut self) -> Result<()> {
        use datafusion::execution::FunctionRegistry;
        if self.time_synced == Some(self.settings.stamp()) {
            return Ok(());
        }
        self.time_synced = Some(self.settings.stamp());
        let format = self.settings.time_format();
        let zone = Some(format.zone.arrow_name());
        let time = compat::time_input::SessionTime {
            date_style: format.style.shown(),
            time_zone: format.zone.shown().to_string(),
        };
        let state = &mut self.state;
        let options = state.config_mut().options_mut();
        match options.extensions.get_mut::<compat::time_input::SessionTime>() {
            Some(t) => *t = time,
            None => options.extensions.insert(time),
        }
        if options.execution.time_zone == zone {
            return Ok(());
        }
        options.execution.time_zone = zone;
        let options = state.config().options().clone();
        let updated: Vec<_> = state
            .scalar_functions()
            .values()
            .filter_map(|f| f.inner().with_updated_config(&options).map(Arc::new))
            .collect();
        for f in updated {
            state.register_udf(f).map_err(Error::from)?;
        }
        Ok(())
    }

    fn time_key(&self) -> String {
        self.settings.time_key().to_string()
    }

    /// Runs the analyzer and the optimizer as of now (`now()` folds to this statement's start).
    fn optimize(&mut self, plan: &LogicalPlan) -> Result<LogicalPlan> {
        self.state.mark_start_execution();
        self.state.optimize(plan).map_err(Error::from)
    }

    /// The Arrow type of an SQL type name, as a cast to it plans (`None` if it does not).
    async fn arrow_type(&self, sql_type: &str) -> Option<DataType> {
        let plan = self
            .state
            .create_logical_plan(&format!("SELECT CAST(NULL AS {sql_type})"))
            .await
            .ok()?;
        plan.schema().fields().first().map(|f| f.data_type().clone())
    }

    /// Runs a plan with the session's settings and the statement's scope.
    pub(crate) async fn run_plan(&mut self, plan: LogicalPlan, bypass_cache: bool) -> Result<SendableRecordBatchStream> {
        let optimized = self.optimize(&plan)?;
        self.run_optimized(optimized, bypass_cache).await
    }

    /// Runs an optimized plan: scans are planned now, with this statement's settings.
    async fn run_optimized(&mut self, plan: LogicalPlan, bypass_cache: bool) -> Result<SendableRecordBatchStream> {
        self.begin_query(bypass_cache);
        let physical = self.physical_plan(&plan).await?;
        self.execute_physical(physical)
    }

    /// Runs a prepared query's optimized plan, from the physical plan an earlier execution
    /// kept when it may be run again (`catalog::replan`), else planned now; a plan that reads
    /// no table replays the rows an earlier execution kept (`sql::constant`).
    async fn run_kept(&mut self, plan: &LogicalPlan, query: &QueryPlan, bypass_cache: bool) -> Result<SendableRecordBatchStream> {
        if let Some(result) = query.results.get() {
            return Ok(result.replay());
        }
        let settings = self.begin_query(bypass_cache);
        let kept = &query.physical;
        let (physical, constant) = match kept.get() {
            Some(Some(kept)) => (
                crate::catalog::replan::for_statement(&kept.template, &settings).map_err(Error::from)?,
                kept.reads_no_table,
            ),
            Some(None) => (self.physical_plan(plan).await?, false),
            None => {
                let physical = self.physical_plan(plan).await?;
                let mut constant = false;
                if crate::catalog::replan::reusable(&physical) {
                    // The kept copy holds no handle on this statement's span, which would
                    // otherwise stay open (and unexported) as long as the statement is prepared.
                    let detached = QuerySettings {
                        span: tracing::Span::none(),
                        ..settings.clone()
                    };
                    let template = crate::catalog::replan::for_statement(&physical, &detached).map_err(Error::from)?;
                    let template = KeptPlan::new(template);
                    constant = template.reads_no_table;
                    let _ = kept.set(Some(template));
                } else {
                    let _ = kept.set(None);
                }
                // Planned for this statement and never run: it runs as it is.
                (physical, constant)
            }
        };
        let stream = self.execute_physical(physical)?;
        // Only an optimized plan is kept, and only one calling no function whose value
        // changes between runs (`reusable`): over no table, its rows are the same every time.
        Ok(if constant {
            super::constant::recording(stream, query.results.clone())
        } else {
            stream
        })
    }

    /// Puts this statement's settings where scans read them when they are planned.
    fn begin_query(&mut self, bypass_cache: bool) -> QuerySettings {
        let settings = QuerySettings {
            regions: self.settings.regions.clone(),
            bypass_cache: bypass_cache || self.settings.bypass_cache,
            budget: self.scope.budget.clone(),
            progress: self.scope.progress.clone(),
            warn_on_error: self.settings.warn_on_error,
            span: tracing::Span::current(),
            accounts: self.accounts.clone(),
        };
        self.view.refresh(&self.settings);
        let state = &mut self.state;
        state.config_mut().set_extension(Arc::new(settings.clone()));
        state.config_mut().set_extension(self.view.clone());
        settings
    }

    async fn physical_plan(&self, plan: &LogicalPlan) -> Result<Arc<dyn ExecutionPlan>> {
        let state = &self.state;
        // Boxed: the planner's future is large, and it would otherwise be part of (and
        // copied with) every statement's future, also those that run a kept plan.
        Box::pin(state.query_planner().create_physical_plan(plan, state))
            .await
            .map_err(Error::from)
    }

    /// Starts a physical plan under the statement's memory limit.
    fn execute_physical(&self, physical: Arc<dyn ExecutionPlan>) -> Result<SendableRecordBatchStream> {
        let state = &self.state;
        let runtime = self.scope.memory.runtime(state.runtime_env());
        // Without the function registries: they serve plan deserialisation, which no
        // statement does, and copying them cost more than the rest of a `SELECT 1`.
        let task = TaskContext::new(
            None,
            state.session_id().to_string(),
            state.config().clone(),
            Default::default(),
            Default::default(),
            Default::default(),
            Default::default(),
            runtime,
        );
        datafusion::physical_plan::execute_stream(physical, Arc::new(task)).map_err(Error::from)
    }
}

impl Engine {
    fn scope(&self, max_api_calls: u64, user: &str) -> Scope {
        Scope {
            budget: Arc::new(CallBudget::for_user(max_api_calls, user, self.backend.usage.clone())),
            memory: StatementMemory::new(self.backend.config.limits.query_memory, self.memory.clone()),
            progress: Arc::default(),
        }
    }
}

fn is_explain(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_))
}

/// Whether a plan's optimized form can serve every execution: no `$n` to bind (binding
/// comes before optimizing, so `identifier = $1` still reaches the scan as a literal) and no
/// function whose value changes between executions (`now()` folds to a constant).
fn reusable(plan: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::{Expr, Volatility};
    let mut reusable = true;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            let changing = e.exists(|e| {
                Ok(match e {
                    Expr::ScalarFunction(f) => f.func.signature().volatility != Volatility::Immutable,
                    Expr::Placeholder(_) | Expr::ScalarVariable(..) => true,
                    _ => false,
                })
            })?;
            reusable &= !changing;
            Ok(if changing {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        })
    });
    reusable
}

/// A planned schema with the names clients see (PostgreSQL's, duplicates allowed).
pub fn client_schema(planned: &Schema) -> SchemaRef {
    let fields: Vec<Field> = planned
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_name(names::client_name(f.name())))
        .collect();
    Arc::new(Schema::new_with_metadata(fields, planned.metadata().clone()))
}

/// Reads a stream to its end, counting its rows (MOVE).
async fn count_rows(mut stream: SendableRecordBatchStream) -> Result<u64> {
    use futures::StreamExt;
    let mut n = 0;
    while let Some(batch) = stream.next().await {
        n += batch.map_err(Error::from)?.num_rows() as u64;
    }
    Ok(n)
}

/// Reported parameters whose value changed.
fn changed(before: &[(String, String)], after: &[(String, String)]) -> Vec<(String, String)> {
    after.iter().filter(|a| !before.contains(a)).cloned().collect()
}

fn truncate(s: &str, n: usize) -> &str {
    // No more characters than bytes: most statements are shorter, and need no walk.
    if s.len() <= n {
        return s;
    }
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl Output {
    fn with_tag(mut self, tag: &'static str, counted: bool) -> Output {
        if let Outcome::Rows { tag: t, counted: c, .. } = &mut self.result {
            *t = tag;
            *c = counted;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn plan(sql: &str) -> LogicalPlan {
        let state = datafusion::prelude::SessionContext::new().state();
        state.create_logical_plan(sql).await.unwrap()
    }

    #[test]
    fn logged_sql_is_cut_at_a_character_count_not_a_byte_count() {
        assert_eq!(truncate("SELECT 1", 300), "SELECT 1");
        assert_eq!(truncate("abcdef", 3), "abc");
        // Six bytes, three characters: within the limit though longer in bytes.
        assert_eq!(truncate("ééé", 3), "ééé");
        assert_eq!(truncate("éééé", 3), "ééé");
    }

    #[tokio::test]
    async fn only_plans_every_execution_would_optimize_alike_are_reused() {
        for sql in [
            "SELECT 1",
            "SELECT upper('a') || 'b'",
            "SELECT x FROM (VALUES (1), (2)) t(x) WHERE x > 1",
        ] {
            assert!(reusable(&plan(sql).await), "{sql}");
        }
        for sql in [
            "SELECT now()",
            "SELECT random()",
            "SELECT $1",
            "SELECT x FROM (VALUES (1)) t(x) WHERE x = $1",
            "SELECT x FROM (VALUES (1)) t(x) WHERE x IN (SELECT extract(year FROM now()))",
        ] {
            assert!(!reusable(&plan(sql).await), "{sql}");
        }
    }
}
