//! The simple query protocol: a Query message may hold several statements; they run in order
//! and the first error ends the message, as in PostgreSQL. Each statement is interruptible,
//! and its rows stream to the client as they are produced.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::portal::Format;
use pgwire::api::query::SimpleQueryHandler;
use pgwire::api::results::Response;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::RowDescription;
use pgwire::messages::response::{EmptyQueryResponse, ReadyForQuery};
use pgwire::messages::simplequery::Query;
use pgwire::messages::PgWireBackendMessage;

use super::run::{self, Interrupts};
use super::{to_pg_error, transaction_status, Connection};
use crate::sql::statement::Prepared;
use crate::sql::{Outcome, Parsed, Session};

pub struct Simple(pub Connection);

/// One statement of a Query message: parsed now, or the same text run before.
enum Source<'a> {
    /// `whole`: the message's text, when this is its only statement (it may be kept).
    Parsed {
        parsed: Parsed,
        whole: Option<&'a str>,
    },
    Recent(Arc<Prepared>),
}

/// The statements of a Query message, parsed.
fn parse<'a>(session: &Session, sql: &'a str) -> crate::error::Result<Vec<Source<'a>>> {
    let statements = session.parse(sql)?;
    let whole = (statements.len() == 1).then_some(sql);
    Ok(statements.into_iter().map(|parsed| Source::Parsed { parsed, whole }).collect())
}

#[async_trait]
impl SimpleQueryHandler for Simple {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let mut guard = self.0.session().await?;
        let Some(session) = guard.as_mut() else {
            return Err(PgWireError::NotReadyForQuery);
        };
        let recent = session.recent_query(&query.query);
        match recent
            .map(|p| Ok(vec![Source::Recent(p)]))
            .unwrap_or_else(|| parse(session, &query.query))
        {
            Err(e) => {
                session.fail();
                client
                    .feed(PgWireBackendMessage::ErrorResponse(super::error_info(&e).into()))
                    .await?;
            }
            Ok(statements) if statements.is_empty() => {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new()))
                    .await?;
            }
            Ok(statements) => {
                for statement in statements {
                    if let Err(e) = self.run(client, session, statement).await {
                        if matches!(e, PgWireError::IoError(_)) {
                            return Err(e);
                        }
                        session.fail();
                        let info = match e {
                            PgWireError::UserError(info) => *info,
                            other => other.into(),
                        };
                        client.feed(PgWireBackendMessage::ErrorResponse(info.into())).await?;
                        break;
                    }
                }
            }
        }
        let status = transaction_status(session.status());
        if session.status() == crate::sql::Status::Idle {
            // The transaction ended: its portals end with it, as in PostgreSQL.
            client.portal_store().clear_portals();
            self.0.portals_closed();
        }
        client.set_transaction_status(status);
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(status))).await?;
        Ok(())
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // on_query runs statements itself, streaming each one's rows.
        Err(PgWireError::ApiError("the simple query protocol runs through on_query".into()))
    }
}

impl Simple {
    /// One statement of the message: prepared, run and streamed, all of it interruptible.
    async fn run<C>(&self, client: &mut C, session: &mut Session, statement: Source<'_>) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut interrupts = Interrupts::start(client, session).await;
        let started = std::time::Instant::now();
        let (kind, fingerprint) = match &statement {
            Source::Parsed { parsed, .. } => (parsed.command.kind(), parsed.fingerprint.clone()),
            Source::Recent(prepared) => (prepared.command.kind(), prepared.fingerprint.clone()),
        };
        let result = interrupts
            .guard(async {
                let prepared = match statement {
                    Source::Recent(prepared) => prepared,
                    Source::Parsed { parsed, whole } => {
                        // Boxed: planning's future is large, and a repeated text does not plan.
                        let prepared = Box::pin(session.prepare_parsed(parsed, 0)).await;
                        let prepared = Arc::new(prepared.map_err(|e| to_pg_error(&e))?);
                        if let Some(sql) = whole {
                            session.remember_query(sql, &prepared);
                        }
                        prepared
                    }
                };
                let live = session.live_notices();
                let output = run::forwarding_notices(client, &live, session.execute(&prepared, None))
                    .await?
                    .map_err(|e| to_pg_error(&e))?;
                if let Some(name) = &output.forget {
                    super::extended::forget_statements(&self.0, client, name.as_deref())?;
                }
                run::send_notices(client, &output.notices).await?;
                match output.result {
                    Outcome::Rows { schema, stream, tag, .. } => {
                        let described = super::encode::describe(&schema, &Format::UnifiedText)?;
                        let mut rows = run::query_response(described, stream, tag, session.time_format());
                        let description = RowDescription::new(rows.row_schema.iter().map(Into::into).collect());
                        client.feed(PgWireBackendMessage::RowDescription(description)).await?;
                        let (sent, _) = run::send_rows(client, &mut rows, 0, session.progress()).await?;
                        run::send_notices(client, &session.take_warnings()).await?;
                        client
                            .feed(PgWireBackendMessage::CommandComplete(run::rows_complete(tag, sent)))
                            .await?;
                    }
                    Outcome::Command(tag) => {
                        client
                            .feed(PgWireBackendMessage::CommandComplete(run::command_complete(&tag)))
                            .await?;
                    }
                    Outcome::Copy { schema, stream, options } => {
                        Box::pin(run::send_copy(client, schema, stream, &options, session.time_format())).await?
                    }
                }
                run::send_reported(client, &output.reported).await?;
                run::send_reported(client, &session.settle()).await
            })
            .await;
        let finished = run::Finished {
            kind,
            fingerprint: &fingerprint,
            api_calls: session.api_calls(),
            started,
        };
        run::record_statement(finished, &result);
        session.statement_done();
        result
    }
}
