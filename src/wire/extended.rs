//! The extended query protocol: Parse prepares a statement (it describes itself: parameter
//! types and result columns), Bind checks what the client sends against it, Execute runs it
//! and streams rows, stopping after `max_rows` with PortalSuspended and resuming from the
//! same stream on the next Execute, as PostgreSQL does. Nothing buffers a whole result.
//! Answers are written when the client sends Sync or Flush (or the buffer fills), so a
//! Bind-Describe-Execute-Sync round trip is one write, as from PostgreSQL.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::ExtendedQueryHandler;
use pgwire::api::results::{DescribeResponse, DescribeStatementResponse, FieldInfo, Response};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState, Type, DEFAULT_NAME};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::data::{NoData, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Close, CloseComplete, Describe, Execute, Parse, ParseComplete, PortalSuspended, Sync as SyncMessage,
    TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::{EmptyQueryResponse, ReadyForQuery, TransactionStatus};
use pgwire::messages::PgWireBackendMessage;

use super::run::{self, Interrupts};
use super::{encode, to_pg_error, transaction_status, Connection};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ParamValues;

use crate::error::Error;
use crate::sql::{Outcome, Prepared, Status};

/// What the extended protocol stores per prepared statement.
pub type PreparedStatement = Arc<Statement>;

/// A prepared statement with its result columns described once per format: clients describe
/// the portal and execute it every time (pgbench, pgjdbc), and describing a wide table cost
/// more than running the lookup.
pub struct Statement {
    prepared: Prepared,
    /// Text and binary; a per-column choice of formats is described each time.
    described: [std::sync::OnceLock<encode::Described>; 2],
}

impl Statement {
    fn new(prepared: Prepared) -> Statement {
        Statement {
            prepared,
            described: Default::default(),
        }
    }

    /// The result columns in `format`; `None` for a statement that returns none.
    fn described(&self, format: &Format) -> PgWireResult<Option<encode::Described>> {
        let Some(schema) = self.prepared.result_schema() else {
            return Ok(None);
        };
        let slot = match format {
            Format::UnifiedText => &self.described[0],
            Format::UnifiedBinary => &self.described[1],
            Format::Individual(_) => return encode::describe(schema, format).map(Some),
        };
        if let Some(d) = slot.get() {
            return Ok(Some(d.clone()));
        }
        let d = encode::describe(schema, format)?;
        Ok(Some(slot.get_or_init(|| d).clone()))
    }

    /// The description of rows this statement's execution returns: kept when they have the
    /// columns it was prepared with (always, but for statements that learn theirs as they run).
    fn described_rows(&self, schema: &SchemaRef, format: &Format) -> PgWireResult<encode::Described> {
        match self.prepared.result_schema() {
            Some(prepared) if Arc::ptr_eq(prepared, schema) => match self.described(format)? {
                Some(d) => Ok(d),
                None => encode::describe(schema, format),
            },
            _ => encode::describe(schema, format),
        }
    }
}

impl std::ops::Deref for Statement {
    type Target = Prepared;

    fn deref(&self) -> &Prepared {
        &self.prepared
    }
}

pub struct Extended {
    connection: Connection,
    parser: Arc<Parser>,
}

impl Extended {
    pub fn new(connection: Connection) -> Extended {
        Extended {
            parser: Arc::new(Parser(connection.clone())),
            connection,
        }
    }
}

/// Prepares statements in the connection's session.
pub struct Parser(Connection);

#[async_trait]
impl QueryParser for Parser {
    type Statement = PreparedStatement;

    async fn parse_sql<C>(&self, _client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<PreparedStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut guard = self.0.session().await?;
        let Some(session) = guard.as_mut() else {
            return Err(PgWireError::NotReadyForQuery);
        };
        let prepared = session.prepare(sql, types.len()).await.map_err(|e| to_pg_error(&e))?;
        if let Some(p) = &prepared {
            if session.status() == Status::Failed && !p.command.ends_transaction() {
                return Err(to_pg_error(&Error::InFailedTransaction));
            }
        }
        Ok(prepared.map(|p| Arc::new(Statement::new(p))))
    }

    fn get_parameter_types(&self, stmt: &PreparedStatement) -> PgWireResult<Vec<Type>> {
        Ok(stmt
            .parameter_types()
            .iter()
            .map(|t| t.as_ref().and_then(encode::parameter_type).unwrap_or(Type::UNKNOWN))
            .collect())
    }

    fn get_result_schema(&self, stmt: &PreparedStatement, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        Ok(stmt
            .described(format.unwrap_or(&Format::UnifiedBinary))?
            .map(|d| d.fields.as_ref().clone())
            .unwrap_or_default())
    }
}

/// Describe's answer, buffered like every extended-protocol answer but ReadyForQuery: the
/// client reads it with the rest at Sync or Flush, in one write, as from PostgreSQL (pgwire's
/// `send_describe_response` flushes each message on its own).
async fn feed_describe_response<C>(client: &mut C, response: &DescribeStatementResponse) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    if let Some(types) = response.parameters() {
        let oids = types.iter().map(|t| t.oid()).collect();
        client
            .feed(PgWireBackendMessage::ParameterDescription(ParameterDescription::new(oids)))
            .await?;
    }
    if response.is_no_data() {
        client.feed(PgWireBackendMessage::NoData(NoData::new())).await?;
        return Ok(());
    }
    feed_fields(client, response.fields()).await
}

/// A portal's columns, or NoData when it returns none.
async fn feed_row_description<C>(client: &mut C, fields: &[FieldInfo]) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    if fields.is_empty() {
        client.feed(PgWireBackendMessage::NoData(NoData::new())).await?;
        return Ok(());
    }
    feed_fields(client, fields).await
}

async fn feed_fields<C>(client: &mut C, fields: &[FieldInfo]) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let description = RowDescription::new(fields.iter().map(Into::into).collect());
    client.feed(PgWireBackendMessage::RowDescription(description)).await?;
    Ok(())
}

/// PostgreSQL's error for a statement (26000) or portal (34000) the connection does not have.
fn not_found(code: &str, what: &str, name: &str, hint: &str) -> PgWireError {
    let mut info = ErrorInfo::new("ERROR".into(), code.into(), format!("{what} \"{name}\" does not exist"));
    info.hint = Some(hint.into());
    PgWireError::UserError(Box::new(info))
}

fn protocol_error(message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), "08P01".into(), message)))
}

/// DEALLOCATE: drops prepared statements of this connection (all of them for `None`).
pub fn forget_statements<C>(connection: &Connection, client: &C, name: Option<&str>) -> PgWireResult<()>
where
    C: ClientPortalStore,
    C::PortalStore: PortalStore,
{
    let names = connection.forget_statements(name);
    if let Some(n) = name {
        if names.is_empty() {
            return Err(not_found(
                "26000",
                "prepared statement",
                n,
                "DEALLOCATE names a statement this connection prepared",
            ));
        }
    } else {
        client.portal_store().clear_portals();
    }
    for n in names {
        client.portal_store().rm_statement(&n);
    }
    Ok(())
}

#[async_trait]
impl ExtendedQueryHandler for Extended {
    type Statement = PreparedStatement;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.parser.clone()
    }

    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(name) = message.name.as_deref().filter(|n| !n.is_empty()) {
            self.connection.remember_statement(name)?;
        }
        if message.type_oids.len() > crate::sql::parse::MAX_PARAMETERS {
            return Err(protocol_error(format!(
                "Parse declares {} parameter types, more than the {} a statement may have",
                message.type_oids.len(),
                crate::sql::parse::MAX_PARAMETERS
            )));
        }
        let name = message.name.clone().unwrap_or_else(|| DEFAULT_NAME.to_owned());
        match StoredStatement::parse(client, &message, self.query_parser()).await? {
            Some(statement) => client.portal_store().put_statement(Arc::new(statement)),
            None => client.portal_store().put_empty_statement(&name),
        }
        client.feed(PgWireBackendMessage::ParseComplete(ParseComplete::new())).await?;
        Ok(())
    }

    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => match client.portal_store().get_statement(name) {
                Some(Entry::Value(statement)) => {
                    let response = self.do_describe_statement(client, &statement).await?;
                    feed_describe_response(client, &response).await
                }
                Some(Entry::Empty) => feed_describe_response(client, &DescribeStatementResponse::no_data()).await,
                None => Err(not_found(
                    "26000",
                    "prepared statement",
                    message.name.as_deref().unwrap_or(""),
                    "send Parse for it first",
                )),
            },
            TARGET_TYPE_BYTE_PORTAL => match client.portal_store().get_portal(name) {
                Some(Entry::Value(portal)) => {
                    // The statement's kept description, not a copy of it per Describe.
                    let described = portal.statement.statement.described(&portal.result_column_format)?;
                    feed_row_description(client, described.as_ref().map_or(&[], |d| d.fields.as_slice())).await
                }
                Some(Entry::Empty) => feed_row_description(client, &[]).await,
                None => {
                    // A cursor DECLAREd by SQL is a portal too: psycopg describes it to learn its columns.
                    let schema = {
                        let guard = self.connection.session().await?;
                        guard.as_ref().and_then(|s| s.cursor_schema(name))
                    };
                    let Some(schema) = schema else {
                        return Err(not_found(
                            "34000",
                            "portal",
                            message.name.as_deref().unwrap_or(""),
                            "send Parse and Bind for it first",
                        ));
                    };
                    let fields = encode::fields(&encode::wire_schema(&schema), &Format::UnifiedText)?;
                    feed_row_description(client, &fields).await
                }
            },
            other => Err(PgWireError::InvalidTargetType(other)),
        }
    }

    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let shown = message.statement_name.as_deref().unwrap_or("");
        let statement = match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(s)) => Some(s),
            Some(Entry::Empty) => None,
            None => return Err(not_found("26000", "prepared statement", shown, "send Parse for it first")),
        };
        let (params, columns) = statement.as_ref().map_or((0, 0), |s| {
            (
                s.statement.parameters.len().max(s.parameter_types.len()),
                s.statement.result_schema().map_or(0, |c| c.fields().len()),
            )
        });
        check_bind(&message, shown, params, columns)?;
        if message.portal_name.as_deref().is_some_and(|n| !n.is_empty()) {
            self.connection.open_portal()?;
        }
        match statement {
            Some(statement) => {
                let portal = Portal::try_new(&message, statement)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            None => client
                .portal_store()
                .put_empty_portal(message.portal_name.as_deref().unwrap_or(DEFAULT_NAME)),
        }
        client.feed(PgWireBackendMessage::BindComplete(BindComplete::new())).await?;
        Ok(())
    }

    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let portal_name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        // Zero or less means every row, as in PostgreSQL (pgjdbc sends Integer.MAX_VALUE).
        let max_rows = usize::try_from(message.max_rows).unwrap_or(0);
        let portal = match client.portal_store().get_portal(portal_name) {
            Some(Entry::Value(p)) => p,
            Some(Entry::Empty) => {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new()))
                    .await?;
                return Ok(());
            }
            None => {
                let shown = message.name.as_deref().unwrap_or("");
                return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "ERROR".into(),
                    "34000".into(),
                    format!("portal \"{shown}\" does not exist"),
                ))));
            }
        };
        client.set_state(PgWireConnectionState::QueryInProgress);
        let mut guard = self.connection.session().await?;
        let Some(session) = guard.as_mut() else {
            return Err(PgWireError::NotReadyForQuery);
        };
        let mut interrupts = Interrupts::start(client, session).await;
        let started = std::time::Instant::now();
        let kind = portal.statement.statement.command.kind();
        let state = portal.state();
        let mut state = state.lock().await;
        let connection = &self.connection;
        let result = interrupts
            .guard(async {
                if matches!(*state, PortalExecutionState::Initial) {
                    let prepared = &portal.statement.statement;
                    let params = if prepared.parameters.is_empty() {
                        None
                    } else {
                        let decoding = decoding_types(&portal, &prepared.parameters);
                        let types: Vec<Option<&DataType>> = decoding.iter().map(Option::as_ref).collect();
                        let values = arrow_pg::datatypes::df::deserialize_parameters(portal.as_ref(), &types)?;
                        Some(cast_parameters(values, &prepared.parameters).map_err(|e| to_pg_error(&e))?)
                    };
                    let live = session.live_notices();
                    let output = run::forwarding_notices(client, &live, session.execute(prepared, params))
                        .await?
                        .map_err(|e| to_pg_error(&e))?;
                    if let Some(name) = &output.forget {
                        forget_statements(connection, client, name.as_deref())?;
                    }
                    run::send_notices(client, &output.notices).await?;
                    match output.result {
                        Outcome::Rows { schema, stream, tag, .. } => {
                            let described = portal.statement.statement.described_rows(&schema, &portal.result_column_format)?;
                            *state = PortalExecutionState::Suspended(run::query_response(described, stream, tag, session.time_format()));
                        }
                        Outcome::Command(tag) => {
                            *state = PortalExecutionState::Finished;
                            client
                                .feed(PgWireBackendMessage::CommandComplete(run::command_complete(&tag)))
                                .await?;
                            return run::send_reported(client, &output.reported).await;
                        }
                        Outcome::Copy { schema, stream, options } => {
                            *state = PortalExecutionState::Finished;
                            Box::pin(run::send_copy(client, schema, stream, &options, session.time_format())).await?;
                            return run::send_reported(client, &output.reported).await;
                        }
                    }
                    run::send_reported(client, &output.reported).await?;
                }
                match &mut *state {
                    PortalExecutionState::Suspended(rows) => {
                        let (sent, more) = run::send_rows(client, rows, max_rows, session.progress()).await?;
                        if more {
                            client.feed(PgWireBackendMessage::PortalSuspended(PortalSuspended::new())).await?;
                        } else {
                            let tag = rows.command_tag().to_string();
                            run::send_notices(client, &session.take_warnings()).await?;
                            client
                                .feed(PgWireBackendMessage::CommandComplete(run::rows_complete(&tag, sent)))
                                .await?;
                            *state = PortalExecutionState::Finished;
                            run::send_reported(client, &session.settle()).await?;
                        }
                    }
                    _ => {
                        client
                            .feed(PgWireBackendMessage::CommandComplete(run::rows_complete("SELECT", 0)))
                            .await?;
                    }
                }
                Ok(())
            })
            .await;
        if result.is_err() {
            // A failed portal cannot be resumed; its stream (and the work under it) ends here.
            *state = PortalExecutionState::Finished;
            session.fail();
        }
        if result.is_err() || matches!(*state, PortalExecutionState::Finished) {
            // The time of the Execute that finished the portal (a suspended portal's earlier
            // Executes are not counted: the client's pace is not the statement's).
            let finished = run::Finished {
                kind,
                fingerprint: &portal.statement.statement.fingerprint,
                api_calls: session.api_calls(),
                started,
            };
            run::record_statement(finished, &result);
            session.statement_done();
        }
        client.set_transaction_status(transaction_status(session.status()));
        client.set_state(PgWireConnectionState::ReadyForQuery);
        result
    }

    async fn on_sync<C>(&self, client: &mut C, _message: SyncMessage) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Sync ends the implicit transaction: outside a transaction block every portal ends
        // with it, as in PostgreSQL; inside one only the unnamed portal does.
        if client.transaction_status() == TransactionStatus::Idle {
            client.portal_store().clear_portals();
            self.connection.portals_closed();
        } else {
            client.portal_store().rm_portal(DEFAULT_NAME);
        }
        let status = client.transaction_status();
        client.send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(status))).await?;
        client.flush().await?;
        Ok(())
    }

    async fn on_close<C>(&self, client: &mut C, message: Close) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => {
                client.portal_store().rm_statement(name);
                self.connection.forget_statements(Some(name));
            }
            TARGET_TYPE_BYTE_PORTAL => client.portal_store().rm_portal(name),
            _ => {}
        }
        client.feed(PgWireBackendMessage::CloseComplete(CloseComplete::new())).await?;
        Ok(())
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<PreparedStatement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let server = self.parser.get_parameter_types(&target.statement)?;
        let count = server.len().max(target.parameter_types.len());
        let params = (0..count)
            .map(|i| {
                target
                    .parameter_types
                    .get(i)
                    .cloned()
                    .flatten()
                    .or_else(|| server.get(i).cloned())
                    .unwrap_or(Type::UNKNOWN)
            })
            .collect();
        let fields = self.parser.get_result_schema(&target.statement, None)?;
        Ok(DescribeStatementResponse::new(params, fields))
    }

    async fn do_query<C>(&self, _client: &mut C, _portal: &Portal<PreparedStatement>, _max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // on_execute runs portals itself, streaming and suspending them.
        Err(PgWireError::ApiError(
            "the extended protocol runs portals through on_execute".into(),
        ))
    }
}

/// The types to decode bound values as: the statement's, except that a binary integer whose
/// length gives another width is read at that width (pgjdbc binds an int8 where the column is
/// an int4, with the type left for the server to infer) and cast afterwards.
fn decoding_types(portal: &Portal<PreparedStatement>, inferred: &[Option<DataType>]) -> Vec<Option<DataType>> {
    inferred
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let width = portal.parameters.get(i).and_then(|p| p.as_ref()).map(|b| b.len());
            let binary = i < portal.parameters.len() && portal.parameter_format.is_binary(i);
            match (t, width) {
                (Some(DataType::Int16 | DataType::Int32 | DataType::Int64), Some(w)) if binary => Some(match w {
                    2 => DataType::Int16,
                    4 => DataType::Int32,
                    8 => DataType::Int64,
                    _ => return t.clone(),
                }),
                _ => t.clone(),
            }
        })
        .collect()
}

/// Decoded values cast to the types the statement inferred.
fn cast_parameters(values: ParamValues, inferred: &[Option<DataType>]) -> Result<ParamValues, Error> {
    let ParamValues::List(list) = values else { return Ok(values) };
    let cast = list
        .into_iter()
        .zip(inferred.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|(mut v, t)| {
            if let Some(Some(t)) = t {
                if v.value.data_type() != *t && !v.value.is_null() {
                    v.value = v.value.cast_to(t).map_err(Error::from)?;
                }
            }
            Ok(v)
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(ParamValues::List(cast))
}

/// 08P01 for a Bind whose counts do not match the statement, as PostgreSQL words it.
fn check_bind(bind: &Bind, statement: &str, params: usize, columns: usize) -> PgWireResult<()> {
    if bind.parameters.len() != params {
        return Err(protocol_error(format!(
            "bind message supplies {} parameters, but prepared statement \"{statement}\" requires {params}",
            bind.parameters.len()
        )));
    }
    let formats = bind.parameter_format_codes.len();
    if formats > 1 && formats != params {
        return Err(protocol_error(format!(
            "bind message has {formats} parameter formats but {params} parameters"
        )));
    }
    let results = bind.result_column_format_codes.len();
    if results > 1 && results != columns {
        return Err(protocol_error(format!(
            "bind message has {results} result formats but query has {columns} columns"
        )));
    }
    if let Some(bad) = bind
        .parameter_format_codes
        .iter()
        .chain(&bind.result_column_format_codes)
        .find(|c| !matches!(c, 0 | 1))
    {
        return Err(protocol_error(format!("unsupported format code: {bad}")));
    }
    Ok(())
}
