//! The pgwire handlers: startup, simple and extended query, and Arrow → DataRow encoding.
//! One [`Connection`] per socket, holding that connection's [`Session`].

use std::fmt::Debug;
use std::sync::Arc;

mod encode;

use arrow_pg::datatypes::encode_recordbatch;
use async_trait::async_trait;
use datafusion::arrow::datatypes::Schema;
use futures::{stream, Sink, StreamExt};
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{DescribePortalResponse, DescribeStatementResponse, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, ConnectionManager, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use tokio::sync::Mutex;

use crate::error::Error;
use crate::sql::{Engine, Output, Prepared, Session};

/// A client-visible error: SQLSTATE, message, hint.
pub fn to_pg_error(e: &Error) -> PgWireError {
    if e.is_user_error() {
        tracing::debug!(error = %e, sqlstate = e.sqlstate(), "statement failed");
    } else {
        tracing::error!(error = %e, sqlstate = e.sqlstate(), "statement failed");
    }
    let mut info = ErrorInfo::new("ERROR".to_string(), e.sqlstate().to_string(), e.to_string());
    info.hint = e.hint();
    PgWireError::UserError(Box::new(info))
}

/// The handlers of one connection; its simple and extended query handlers share the session.
#[derive(Clone)]
pub struct Connection {
    engine: Arc<Engine>,
    session: Arc<Mutex<Option<Session>>>,
    parser: Arc<Parser>,
    /// The server's registry of connections, so a CancelRequest (sent on another socket)
    /// reaches the statement running here; pgwire then drops it and answers 57014.
    cancels: Arc<ConnectionManager>,
}

impl Connection {
    pub fn new(engine: Arc<Engine>, cancels: Arc<ConnectionManager>) -> Connection {
        let session = Arc::new(Mutex::new(None));
        Connection {
            parser: Arc::new(Parser {
                engine: engine.clone(),
                session: session.clone(),
            }),
            engine,
            session,
            cancels,
        }
    }
}

/// The session, created on first use from the startup parameters.
async fn with_session<'a, C: ClientInfo>(
    engine: &Arc<Engine>,
    slot: &'a Mutex<Option<Session>>,
    client: &C,
) -> tokio::sync::MutexGuard<'a, Option<Session>> {
    let mut guard = slot.lock().await;
    if guard.is_none() {
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        let database = client.metadata().get("database").cloned().unwrap_or_else(|| user.clone());
        *guard = Some(engine.session(&user, &database));
    }
    guard
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::new(Handler(self.clone()))
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::new(Handler(self.clone()))
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        Arc::new(Startup(self.cancels.clone()))
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(DefaultCancelHandler::new(self.cancels.clone()))
    }
}

struct Handler(Connection);

struct Startup(Arc<ConnectionManager>);

#[async_trait]
impl NoopStartupHandler for Startup {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(self.0.clone())
    }
}

fn to_response(output: Output, format: &Format) -> PgWireResult<Response> {
    match output {
        Output::Rows { schema, stream } => {
            let schema = encode::wire_schema(&schema);
            let fields = Arc::new(encode::fields(&schema, format)?);
            let f = fields.clone();
            let rows = stream.flat_map(
                move |batch| match batch.map_err(Error::from).and_then(|b| encode::wire_batch(b, &schema)) {
                    Ok(b) => stream::iter(encode_recordbatch(f.clone(), b).collect::<Vec<_>>()),
                    Err(e) => stream::iter(vec![Err(to_pg_error(&e))]),
                },
            );
            Ok(Response::Query(QueryResponse::new(fields, rows)))
        }
        Output::Returning { schema, stream, tag } => {
            let Response::Query(mut query) = to_response(Output::Rows { schema, stream }, format)? else {
                return Err(PgWireError::ApiError("RETURNING rows did not become a query response".into()));
            };
            // pgwire appends the row count; INSERT's tag also carries an OID, always 0.
            query.set_command_tag(if tag == "INSERT" { "INSERT 0" } else { tag });
            Ok(Response::Query(query))
        }
        Output::Command { tag: "EMPTY", .. } => Ok(Response::EmptyQuery),
        Output::Command { tag, rows } => {
            let t = Tag::new(tag);
            Ok(Response::Execution(match rows {
                Some(n) if tag == "INSERT" => t.with_oid(0).with_rows(n),
                Some(n) => t.with_rows(n),
                None => t,
            }))
        }
        Output::TransactionStart => Ok(Response::TransactionStart(Tag::new("BEGIN"))),
        Output::TransactionEnd(tag) => Ok(Response::TransactionEnd(Tag::new(tag))),
    }
}

#[async_trait]
impl SimpleQueryHandler for Handler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut guard = with_session(&self.0.engine, &self.0.session, client).await;
        let Some(session) = guard.as_mut() else {
            return Err(to_pg_error(&Error::internal("no session")));
        };
        let mut out = Vec::new();
        for result in session.execute_all(query).await {
            match result.and_then(|o| to_response(o, &Format::UnifiedText).map_err(|e| Error::internal(e.to_string()))) {
                Ok(r) => out.push(r),
                Err(e) => match to_pg_error(&e) {
                    PgWireError::UserError(info) => out.push(Response::Error(info)),
                    other => return Err(other),
                },
            }
        }
        Ok(out)
    }
}

/// Parses and plans statements for the extended protocol, in the connection's session.
pub struct Parser {
    engine: Arc<Engine>,
    session: Arc<Mutex<Option<Session>>>,
}

/// A parsed statement with what Describe needs.
#[derive(Clone, Debug)]
pub struct ParsedStatement {
    prepared: Prepared,
    params: Vec<Type>,
    /// DataFusion's inferred parameter types, in `$n` order, for decoding Bind values.
    arrow_params: Vec<Option<datafusion::arrow::datatypes::DataType>>,
    schema: Option<Arc<Schema>>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = ParsedStatement;

    async fn parse_sql<C>(&self, client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<ParsedStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut guard = with_session(&self.engine, &self.session, client).await;
        let Some(session) = guard.as_mut() else {
            return Err(to_pg_error(&Error::internal("no session")));
        };
        let Some(prepared) = session.prepare(sql).await.map_err(|e| to_pg_error(&e))? else {
            return Ok(None);
        };
        let (params, arrow_params, schema) = match &prepared {
            Prepared::Query { plan, .. } => {
                let inferred = plan.get_parameter_types().map_err(|e| to_pg_error(&Error::from(e)))?;
                let mut ordered: Vec<(String, Option<datafusion::arrow::datatypes::DataType>)> = inferred.into_iter().collect();
                ordered.sort_by_key(|(k, _)| k.trim_start_matches('$').parse::<usize>().unwrap_or(0));
                let params = ordered
                    .iter()
                    .enumerate()
                    .map(|(i, (_, t))| match types.get(i).cloned().flatten() {
                        Some(given) => given,
                        None => t
                            .as_ref()
                            .and_then(|t| arrow_pg::datatypes::into_pg_type(t).ok())
                            .unwrap_or(Type::UNKNOWN),
                    })
                    .collect();
                let arrow_params = ordered.into_iter().map(|(_, t)| t).collect();
                (params, arrow_params, Some(Arc::new(plan.schema().as_arrow().clone())))
            }
            Prepared::Dml { params, returning, .. } => {
                let pg: Vec<Type> = params
                    .iter()
                    .enumerate()
                    .map(|(i, t)| match types.get(i).cloned().flatten() {
                        Some(given) => given,
                        None => arrow_pg::datatypes::into_pg_type(t).unwrap_or(Type::TEXT),
                    })
                    .collect();
                (pg, params.iter().cloned().map(Some).collect(), returning.clone())
            }
            Prepared::Statement { .. } | Prepared::Meta { .. } => (Vec::new(), Vec::new(), None),
        };
        Ok(Some(ParsedStatement {
            prepared,
            params,
            arrow_params,
            schema,
        }))
    }

    fn get_parameter_types(&self, stmt: &ParsedStatement) -> PgWireResult<Vec<Type>> {
        Ok(stmt.params.clone())
    }

    fn get_result_schema(&self, stmt: &ParsedStatement, column_format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        match &stmt.schema {
            Some(s) => encode::fields(&encode::wire_schema(s), column_format.unwrap_or(&Format::UnifiedBinary)),
            None => Ok(Vec::new()),
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for Handler {
    type Statement = ParsedStatement;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.0.parser.clone()
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<ParsedStatement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = ParsedStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let fields = self.0.parser.get_result_schema(&target.statement, None)?;
        Ok(DescribeStatementResponse::new(target.statement.params.clone(), fields))
    }

    async fn do_describe_portal<C>(&self, _client: &mut C, target: &Portal<ParsedStatement>) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = ParsedStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let fields = self
            .0
            .parser
            .get_result_schema(&target.statement.statement, Some(&target.result_column_format))?;
        Ok(DescribePortalResponse::new(fields))
    }

    async fn do_query<C>(&self, client: &mut C, portal: &Portal<ParsedStatement>, _max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = ParsedStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let stmt = &portal.statement.statement;
        let params = match &stmt.prepared {
            Prepared::Query { .. } | Prepared::Dml { .. } if !stmt.params.is_empty() => {
                let types: Vec<Option<&datafusion::arrow::datatypes::DataType>> = stmt.arrow_params.iter().map(Option::as_ref).collect();
                Some(arrow_pg::datatypes::df::deserialize_parameters(portal, &types)?)
            }
            _ => None,
        };
        let mut guard = with_session(&self.0.engine, &self.0.session, client).await;
        let Some(session) = guard.as_mut() else {
            return Err(to_pg_error(&Error::internal("no session")));
        };
        let output = session.run_prepared(&stmt.prepared, params).await.map_err(|e| to_pg_error(&e))?;
        to_response(output, &portal.result_column_format)
    }
}
