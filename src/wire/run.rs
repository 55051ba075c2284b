//! Running one statement for either protocol: what may interrupt it (a CancelRequest,
//! `statement_timeout`, a client that left) and how its results reach the client (notices,
//! rows streamed as they are produced, the command tag, changed parameters).
//!
//! An interrupt drops the statement's future, and with it the DataFusion stream and the scan
//! tasks under it: queued and in-flight Cloud Control calls stop there. Started mutations are
//! not affected (they run in their own tasks and stay tracked).

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use futures::channel::oneshot;
use futures::{stream, FutureExt, Sink, SinkExt, StreamExt};
use pgwire::api::portal::Format;
use pgwire::api::results::{QueryResponse, Tag};
use pgwire::api::{ClientInfo, ConnectionHandle};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyOutResponse};
use pgwire::messages::data::DataRow;
use pgwire::messages::response::CommandComplete;
use pgwire::messages::startup::ParameterStatus;
use pgwire::messages::PgWireBackendMessage;
use tokio::time::Instant;

use super::connection::Disconnect;
use super::{encode, rows, to_pg_error};
use crate::catalog::progress::Progress;
use crate::error::Error;
use crate::sql::copy::{self, CopyOptions};
use crate::sql::datetime::TimeFormat;
use crate::sql::parse::Fingerprint;
use crate::sql::{LiveNotices, Notice, Session};

/// What may stop the statement running now.
pub struct Interrupts {
    cancel: Option<oneshot::Receiver<()>>,
    deadline: Option<Instant>,
    disconnect: Option<Arc<Disconnect>>,
}

impl Interrupts {
    /// Arms the interrupts of a new statement: a fresh cancel receiver (an older CancelRequest
    /// does not carry over), and the session's `statement_timeout` from now.
    pub async fn start<C: ClientInfo>(client: &C, session: &Session) -> Interrupts {
        let cancel = match client.session_extensions().get::<Arc<ConnectionHandle>>() {
            Some(handle) => Some(handle.start_query().await),
            None => None,
        };
        Interrupts {
            cancel,
            deadline: session.statement_timeout().map(|d| Instant::now() + d),
            disconnect: client.session_extensions().get::<Arc<Disconnect>>().map(|d| Arc::clone(d.as_ref())),
        }
    }

    /// Runs `work` to its end, or stops it at the first interrupt.
    pub async fn guard<T>(&mut self, work: impl Future<Output = PgWireResult<T>>) -> PgWireResult<T> {
        let mut work = std::pin::pin!(work);
        // Most statements (a cached lookup, `SELECT 1`) end in their first poll, where nothing
        // could have interrupted them: arming the interrupts (a waker on the cancel channel and
        // on the disconnect notifier) cost more than such a statement's own work.
        if let std::task::Poll::Ready(out) = futures::poll!(work.as_mut()) {
            return out;
        }
        let deadline = self.deadline;
        let disconnect = self.disconnect.clone();
        let cancel = &mut self.cancel;
        let canceled = async {
            match cancel {
                // A dropped sender (the handle re-armed) is not a cancel.
                Some(rx) => {
                    if rx.await.is_ok() {
                        return;
                    }
                    futures::future::pending::<()>().await
                }
                None => futures::future::pending::<()>().await,
            }
        };
        let timed_out = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => futures::future::pending::<()>().await,
            }
        };
        let gone = async {
            match &disconnect {
                Some(d) => d.closed().await,
                None => futures::future::pending::<()>().await,
            }
        };
        tokio::select! {
            biased;
            _ = canceled => Err(to_pg_error(&Error::Canceled)),
            _ = timed_out => Err(to_pg_error(&Error::StatementTimeout)),
            _ = gone => {
                tracing::debug!("client closed the connection mid-statement; stopping it");
                Err(PgWireError::IoError(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "client closed the connection")))
            }
            r = &mut work => r,
        }
    }
}

/// A statement's rows as pgwire's row stream, encoded batch by batch as they arrive.
pub fn query_response(described: encode::Described, stream: SendableRecordBatchStream, tag: &str, time: TimeFormat) -> QueryResponse {
    let encode::Described { schema, fields } = described;
    let row_fields = fields.clone();
    let rows = stream.flat_map(move |batch| {
        match batch
            .map_err(Error::from)
            .and_then(|b| encode::wire_batch(b, &schema))
            .and_then(|b| encode::postgres_float_text(b, &row_fields))
            .and_then(|b| encode::postgres_time_text(b, &row_fields, &time))
            .and_then(|b| encode::jsonb_binary(b, &row_fields))
        {
            Ok(b) => stream::iter(rows::data_rows(&b, &row_fields)),
            Err(e) => stream::iter(vec![Err(to_pg_error(&e))]),
        }
    });
    let mut response = QueryResponse::new(fields, rows);
    response.set_command_tag(tag);
    response
}

/// The statement's scans and how often to tell the client how far they have got.
pub type ProgressReport = Option<(Arc<Progress>, std::time::Duration)>;

/// Sends up to `max_rows` rows (0: all); returns how many were sent and whether rows remain.
/// While the next row is slow to come, a progress NOTICE goes out every interval (flushed at
/// once, so psql shows it while the client waits).
pub async fn send_rows<C>(
    client: &mut C,
    rows: &mut QueryResponse,
    max_rows: usize,
    progress: ProgressReport,
) -> PgWireResult<(usize, bool)>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    // The timer starts the first time a row is not ready: rows that are (a cached lookup's)
    // go out without one, since a timer per statement cost more than sending its rows.
    let mut ticks: Option<tokio::time::Interval> = None;
    let mut sent = 0;
    while max_rows == 0 || sent < max_rows {
        let next = match &progress {
            Some((scans, every)) => {
                let mut next_row = rows.data_rows().next();
                match (&mut next_row).now_or_never() {
                    Some(row) => row,
                    None => {
                        let ticks = ticks.get_or_insert_with(|| {
                            let mut t = tokio::time::interval_at(Instant::now() + *every, *every);
                            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                            t
                        });
                        tokio::select! {
                            row = next_row => row,
                            _ = ticks.tick() => {
                                if let Some(text) = scans.describe() {
                                    let info = ErrorInfo::new("NOTICE".into(), "00000".into(), text);
                                    client.send(PgWireBackendMessage::NoticeResponse(info.into())).await?;
                                }
                                continue;
                            }
                        }
                    }
                }
            }
            None => rows.data_rows().next().await,
        };
        match next {
            Some(row) => {
                client.feed(PgWireBackendMessage::DataRow(row?)).await?;
                sent += 1;
            }
            None => return Ok((sent, false)),
        }
    }
    Ok((sent, true))
}

/// `COPY … TO STDOUT`: CopyOutResponse, a CopyData per row (after the binary header or the
/// HEADER line), CopyDone and `COPY n`. Rows are encoded as SELECT encodes them, then
/// formatted as COPY lines.
pub async fn send_copy<C>(
    client: &mut C,
    schema: SchemaRef,
    stream: SendableRecordBatchStream,
    options: &CopyOptions,
    time: TimeFormat,
) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let binary = options.format == copy::Format::Binary;
    let format = if binary { Format::UnifiedBinary } else { Format::UnifiedText };
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let code = i16::from(binary);
    let columns = i16::try_from(names.len()).map_err(|_| PgWireError::ApiError("COPY of more than 32767 columns".into()))?;
    let mut rows = query_response(encode::describe(&schema, &format)?, stream, "COPY", time);
    client
        .feed(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
            code as i8,
            columns,
            vec![code; names.len()],
        )))
        .await?;
    if let Some(bytes) = options.header_line(&names) {
        client.feed(PgWireBackendMessage::CopyData(CopyData::new(bytes.into()))).await?;
    }
    // PostgreSQL sends the binary header in the same message as the first row (psycopg reads
    // it there), and the trailer on its own.
    let mut header = if binary { copy::BINARY_HEADER.to_vec() } else { Vec::new() };
    let mut sent = 0usize;
    while let Some(row) = rows.data_rows().next().await {
        let row = row?;
        let values = data_row_values(&row)?;
        let mut bytes = std::mem::take(&mut header);
        bytes.extend(if binary {
            copy::binary_row(&values)
        } else {
            options.line(&values, &names)
        });
        client.feed(PgWireBackendMessage::CopyData(CopyData::new(bytes.into()))).await?;
        sent += 1;
    }
    if binary {
        header.extend_from_slice(copy::BINARY_TRAILER);
        client.feed(PgWireBackendMessage::CopyData(CopyData::new(header.into()))).await?;
    }
    client.feed(PgWireBackendMessage::CopyDone(CopyDone::new())).await?;
    client
        .feed(PgWireBackendMessage::CommandComplete(command_complete(&format!("COPY {sent}"))))
        .await?;
    Ok(())
}

/// The fields of an encoded row: each value's bytes, `None` for NULL.
fn data_row_values(row: &DataRow) -> PgWireResult<Vec<Option<&[u8]>>> {
    let data: &[u8] = &row.data;
    let mut values = Vec::with_capacity(usize::try_from(row.field_count).unwrap_or(0));
    let mut at = 0;
    for _ in 0..row.field_count {
        let len_bytes: [u8; 4] = data
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| PgWireError::ApiError("a row ended early".into()))?;
        at += 4;
        let len = i32::from_be_bytes(len_bytes);
        if len < 0 {
            values.push(None);
            continue;
        }
        let end = at + len as usize;
        values.push(Some(
            data.get(at..end)
                .ok_or_else(|| PgWireError::ApiError("a value ended early".into()))?,
        ));
        at = end;
    }
    Ok(values)
}

/// The CommandComplete of a row-returning statement: `SELECT 3`, `INSERT 0 1`, or `SHOW`.
pub fn rows_complete(tag: &str, rows: usize) -> CommandComplete {
    let t = Tag::new(tag);
    if matches!(tag, "SHOW" | "EXPLAIN") {
        t.into()
    } else {
        t.with_rows(rows).into()
    }
}

/// A complete command tag as CommandComplete.
pub fn command_complete(tag: &str) -> CommandComplete {
    CommandComplete::new(tag.to_string())
}

pub async fn send_notices<C>(client: &mut C, notices: &[Notice]) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for n in notices {
        let info = ErrorInfo::new(n.severity.to_string(), n.code.to_string(), n.message.clone());
        client.feed(PgWireBackendMessage::NoticeResponse(info.into())).await?;
    }
    Ok(())
}

/// Runs a statement, sending the NOTICEs it leaves in `live` (flushed, so the client sees
/// them at once) while it runs, and the rest when it is done.
pub async fn forwarding_notices<C, T>(client: &mut C, live: &LiveNotices, work: impl std::future::Future<Output = T>) -> PgWireResult<T>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let mut work = std::pin::pin!(work);
    // A statement that ends in its first poll needs no waker on the notices (see `guard`).
    let out = match futures::poll!(work.as_mut()) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => loop {
            tokio::select! {
                out = &mut work => break out,
                _ = live.ready() => {
                    send_notices(client, &live.take()).await?;
                    client.flush().await?;
                }
            }
        },
    };
    send_notices(client, &live.take()).await?;
    Ok(out)
}

pub async fn send_reported<C>(client: &mut C, reported: &[(String, String)]) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for (name, value) in reported {
        client
            .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                name.clone(),
                value.clone(),
            )))
            .await?;
    }
    Ok(())
}

/// What the log and the metrics keep of a statement that ended.
pub struct Finished<'a> {
    pub kind: &'static str,
    pub fingerprint: &'a Fingerprint,
    pub api_calls: u64,
    pub started: std::time::Instant,
}

/// Counts a statement that ended and logs it (by fingerprint, never its literals): at DEBUG
/// when it succeeded, at INFO with its SQLSTATE when it failed.
pub fn record_statement<T>(finished: Finished<'_>, result: &PgWireResult<T>) {
    let code = match result {
        Ok(_) => None,
        Err(PgWireError::UserError(info)) => Some(info.code.clone()),
        Err(_) => Some("08000".to_string()),
    };
    let took = finished.started.elapsed();
    crate::observe::metrics::statement(finished.kind, code.as_deref(), took);
    let duration_ms = took.as_secs_f64() * 1000.0;
    let fingerprint = finished.fingerprint.hex();
    match &code {
        None => tracing::debug!(
            kind = finished.kind,
            %fingerprint,
            duration_ms,
            api_calls = finished.api_calls,
            "statement finished"
        ),
        Some(sqlstate) => tracing::info!(
            kind = finished.kind,
            %fingerprint,
            duration_ms,
            api_calls = finished.api_calls,
            %sqlstate,
            "statement failed"
        ),
    }
}
