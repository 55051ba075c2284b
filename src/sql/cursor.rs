//! Server-side cursors: `DECLARE name [NO SCROLL] CURSOR [WITH HOLD] FOR query`, `FETCH`,
//! `MOVE` and `CLOSE`. A cursor holds its query's row stream; each FETCH streams the next rows
//! from it, so nothing is buffered beyond the batch being read. Cursors read forward only (as
//! PostgreSQL's NO SCROLL cursors); a cursor without HOLD closes when its transaction ends, and
//! every cursor declared in a transaction that rolls back closes with it.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::sqlparser::ast::{FetchDirection, Value, ValueWithSpan};
use futures::StreamExt;
use tokio::sync::Mutex;

use crate::error::{Error, Result};

/// How many cursors one connection may hold open.
pub const MAX_CURSORS: usize = 10_000;

/// The name FETCH is given `INTO` to mark it as MOVE (sqlparser has no MOVE statement).
pub const MOVE_MARKER: &str = "__cloudpg_move";

/// How far a FETCH or MOVE reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Rows(u64),
    All,
}

impl Count {
    /// The forward count of a FETCH direction; 55000 for the backward ones.
    pub fn of(direction: &FetchDirection) -> Result<Count> {
        let number = |v: &ValueWithSpan| -> Result<i64> {
            match &v.value {
                Value::Number(n, _) => n
                    .parse::<i64>()
                    .map_err(|_| Error::Syntax(format!("FETCH count {n} is not a whole number"))),
                other => Err(Error::Syntax(format!("FETCH count {other} is not a number"))),
            }
        };
        let forward = |n: i64| -> Result<Count> { u64::try_from(n).map(Count::Rows).map_err(|_| backward()) };
        match direction {
            FetchDirection::Next | FetchDirection::Forward { limit: None } => Ok(Count::Rows(1)),
            FetchDirection::Count { limit } | FetchDirection::Forward { limit: Some(limit) } | FetchDirection::Relative { limit } => {
                forward(number(limit)?)
            }
            FetchDirection::All | FetchDirection::ForwardAll => Ok(Count::All),
            _ => Err(backward()),
        }
    }
}

fn backward() -> Error {
    Error::ObjectState {
        message: "cursor can only scan forward".into(),
        hint: Some("cloudpg's cursors read forward only: FETCH NEXT, FETCH n, FETCH FORWARD n or FETCH ALL".into()),
    }
}

/// The rows a cursor has yet to return.
struct Rows {
    stream: SendableRecordBatchStream,
    /// The part of a batch a FETCH did not return.
    leftover: Option<RecordBatch>,
}

struct Cursor {
    schema: SchemaRef,
    rows: Arc<Mutex<Rows>>,
    hold: bool,
    /// Declared in the transaction now open (closed if it rolls back).
    in_transaction: bool,
}

/// A connection's open cursors.
#[derive(Default)]
pub struct Cursors {
    open: BTreeMap<String, Cursor>,
}

impl Cursors {
    pub fn declare(
        &mut self,
        name: &str,
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
        hold: bool,
        in_transaction: bool,
    ) -> Result<()> {
        if self.open.contains_key(name) {
            return Err(Error::DuplicateCursor(name.to_string()));
        }
        if self.open.len() >= MAX_CURSORS {
            return Err(Error::TooManyCalls {
                message: format!("this connection holds {MAX_CURSORS} open cursors, the most it may: CLOSE some first"),
            });
        }
        self.open.insert(
            name.to_string(),
            Cursor {
                schema,
                rows: Arc::new(Mutex::new(Rows { stream, leftover: None })),
                hold,
                in_transaction,
            },
        );
        Ok(())
    }

    /// The next rows of a cursor, as a stream that reads them from it.
    pub fn fetch(&self, name: &str, count: Count) -> Result<(SchemaRef, SendableRecordBatchStream)> {
        let cursor = self.open.get(name).ok_or_else(|| Error::UndefinedCursor(name.to_string()))?;
        let remaining = match count {
            Count::Rows(n) => Some(n),
            Count::All => None,
        };
        let rows = cursor.rows.clone();
        let stream = futures::stream::unfold((rows, remaining), |(rows, remaining)| async move {
            if remaining == Some(0) {
                return None;
            }
            let batch = {
                let mut r = rows.lock().await;
                let next = match r.leftover.take() {
                    Some(b) => Some(Ok(b)),
                    None => r.stream.next().await,
                };
                match next {
                    Some(Ok(b)) => match remaining {
                        Some(n) if (b.num_rows() as u64) > n => {
                            let n = n as usize;
                            r.leftover = Some(b.slice(n, b.num_rows() - n));
                            Ok(b.slice(0, n))
                        }
                        _ => Ok(b),
                    },
                    Some(Err(e)) => Err(e),
                    None => return None,
                }
            };
            let left = match (&batch, remaining) {
                (Ok(b), Some(n)) => Some(n - b.num_rows() as u64),
                (Err(_), _) => Some(0),
                (_, None) => None,
            };
            Some((batch, (rows, left)))
        });
        Ok((
            cursor.schema.clone(),
            Box::pin(RecordBatchStreamAdapter::new(cursor.schema.clone(), stream)),
        ))
    }

    /// The columns a cursor returns, if it is open.
    pub fn schema(&self, name: &str) -> Option<SchemaRef> {
        self.open.get(name).map(|c| c.schema.clone())
    }

    /// `CLOSE name`, or `CLOSE ALL` for `None`.
    pub fn close(&mut self, name: Option<&str>) -> Result<()> {
        match name {
            None => self.open.clear(),
            Some(n) => {
                self.open.remove(n).ok_or_else(|| Error::UndefinedCursor(n.to_string()))?;
            }
        }
        Ok(())
    }

    /// The transaction ended: cursors without HOLD close; on rollback, so do those it declared.
    pub fn end_transaction(&mut self, committed: bool) {
        self.open.retain(|_, c| c.hold && (committed || !c.in_transaction));
        for c in self.open.values_mut() {
            c.in_transaction = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    fn numbers(n: i64, per_batch: i64) -> (SchemaRef, SendableRecordBatchStream) {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batches: Vec<_> = (0..n)
            .step_by(per_batch as usize)
            .map(|start| {
                let values: Vec<i64> = (start..(start + per_batch).min(n)).collect();
                Ok(RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values))]).unwrap())
            })
            .collect();
        let stream = futures::stream::iter(batches);
        (schema.clone(), Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }

    async fn fetched(c: &Cursors, count: Count) -> Vec<i64> {
        let (_, stream) = c.fetch("c", count).unwrap();
        let batches: Vec<RecordBatch> = stream.map(|b| b.unwrap()).collect().await;
        batches
            .iter()
            .flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec())
            .collect()
    }

    #[tokio::test]
    async fn fetches_continue_where_the_last_stopped() {
        let mut c = Cursors::default();
        let (schema, stream) = numbers(25, 10);
        c.declare("c", schema, stream, false, true).unwrap();
        assert_eq!(fetched(&c, Count::Rows(3)).await, vec![0, 1, 2]);
        assert_eq!(fetched(&c, Count::Rows(10)).await, (3..13).collect::<Vec<_>>());
        assert_eq!(fetched(&c, Count::All).await, (13..25).collect::<Vec<_>>());
        assert!(fetched(&c, Count::Rows(5)).await.is_empty());
        assert!(matches!(
            c.declare("c", numbers(1, 1).0, numbers(1, 1).1, false, true),
            Err(Error::DuplicateCursor(_))
        ));
    }

    #[test]
    fn transactions_close_cursors_as_postgres_does() {
        let mut c = Cursors::default();
        let (s, st) = numbers(1, 1);
        c.declare("plain", s, st, false, true).unwrap();
        let (s, st) = numbers(1, 1);
        c.declare("held", s, st, true, true).unwrap();
        c.end_transaction(true);
        assert!(c.fetch("plain", Count::All).is_err());
        assert!(c.fetch("held", Count::All).is_ok());
        let (s, st) = numbers(1, 1);
        c.declare("rolled", s, st, true, true).unwrap();
        c.end_transaction(false);
        assert!(c.fetch("rolled", Count::All).is_err());
        assert!(
            c.fetch("held", Count::All).is_ok(),
            "a cursor held from an earlier transaction survives a rollback"
        );
        assert!(matches!(c.close(Some("nope")), Err(Error::UndefinedCursor(_))));
        c.close(None).unwrap();
        assert!(c.fetch("held", Count::All).is_err());
    }

    #[test]
    fn only_forward_directions() {
        let v = |n: &str| ValueWithSpan::from(Value::Number(n.into(), false));
        assert_eq!(
            Count::of(&FetchDirection::Forward { limit: Some(v("10")) }).unwrap(),
            Count::Rows(10)
        );
        assert_eq!(Count::of(&FetchDirection::Next).unwrap(), Count::Rows(1));
        assert!(Count::of(&FetchDirection::Prior).is_err());
        assert!(Count::of(&FetchDirection::Count { limit: v("-1") }).is_err());
    }
}
