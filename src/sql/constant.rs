//! Results kept by prepared queries that read no table and call only immutable functions
//! (`SELECT 1`, `SELECT version()`, a pool's health check): the first execution that reads
//! its rows to the end keeps them, and later executions of the statement, in every session
//! that shares it, replay them instead of having DataFusion run the plan again, which cost a
//! trivial statement more than its parsing, its wire messages and its log line together.
//!
//! Only small results are kept, and never a failure: a statement that fails (`SELECT 1/0`)
//! runs, and fails, every time.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::Result;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::Stream;

/// A result with more rows than this is not kept: replaying it would save little over
/// running it, and it would stay in memory as long as the statement is prepared.
const MAX_ROWS: usize = 64;
/// Nor one whose arrays take more memory than this. A connection may keep 10,000 prepared
/// statements, and a short text makes a long value (`SELECT repeat('x', 1000000)`), so this
/// bounds what each statement may add to its plans (a `SELECT 1` row takes about 100 bytes,
/// a row of a few text columns under 1 KiB).
const MAX_BYTES: usize = 4 * 1024;

/// Where a prepared statement keeps its result once an execution recorded it.
pub type Slot = Arc<OnceLock<ConstantResult>>;

/// The rows of a statement whose every execution returns the same.
#[derive(Debug)]
pub struct ConstantResult {
    schema: SchemaRef,
    batches: Arc<[RecordBatch]>,
}

impl ConstantResult {
    /// The kept rows as a stream of their own (the batches' arrays are shared, not copied).
    pub fn replay(&self) -> SendableRecordBatchStream {
        let batches: Vec<Result<RecordBatch>> = self.batches.iter().cloned().map(Ok).collect();
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), futures::stream::iter(batches)))
    }
}

/// `stream` as it is, keeping its batches in `slot` if it ends without an error within the
/// bounds above.
pub fn recording(stream: SendableRecordBatchStream, slot: Slot) -> SendableRecordBatchStream {
    Box::pin(Recording {
        inner: stream,
        slot,
        kept: Some(Vec::new()),
        rows: 0,
        bytes: 0,
    })
}

struct Recording {
    inner: SendableRecordBatchStream,
    slot: Slot,
    /// `None` once the result is known not to be kept.
    kept: Option<Vec<RecordBatch>>,
    rows: usize,
    bytes: usize,
}

impl Recording {
    fn keep(&mut self, batch: &RecordBatch) {
        self.rows += batch.num_rows();
        self.bytes += batch.get_array_memory_size();
        if self.rows > MAX_ROWS || self.bytes > MAX_BYTES {
            self.kept = None;
        } else if let Some(kept) = &mut self.kept {
            kept.push(batch.clone());
        }
    }

    fn finish(&mut self) {
        if let Some(batches) = self.kept.take() {
            // Another execution may have kept the same rows first: either copy serves.
            let _ = self.slot.set(ConstantResult {
                schema: self.inner.schema(),
                batches: batches.into(),
            });
        }
    }
}

impl Stream for Recording {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let next = this.inner.as_mut().poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(batch))) => this.keep(batch),
            Poll::Ready(Some(Err(_))) => this.kept = None,
            Poll::Ready(None) => this.finish(),
            Poll::Pending => {}
        }
        next
    }
}

impl RecordBatchStream for Recording {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::error::DataFusionError;
    use futures::StreamExt;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]))
    }

    fn batch(rows: usize) -> RecordBatch {
        let values: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
        RecordBatch::try_new(schema(), vec![values]).unwrap()
    }

    fn stream(items: Vec<Result<RecordBatch>>) -> SendableRecordBatchStream {
        Box::pin(RecordBatchStreamAdapter::new(schema(), futures::stream::iter(items)))
    }

    async fn drain(mut s: SendableRecordBatchStream) -> Vec<Result<RecordBatch>> {
        let mut out = Vec::new();
        while let Some(item) = s.next().await {
            out.push(item);
        }
        out
    }

    #[tokio::test]
    async fn a_result_read_to_its_end_is_kept_and_replayed_whole() {
        let slot = Slot::default();
        let first = drain(recording(stream(vec![Ok(batch(2)), Ok(batch(3))]), slot.clone())).await;
        assert_eq!(first.len(), 2);
        let kept = slot.get().expect("kept");
        let replayed = drain(kept.replay()).await;
        let rows: Vec<usize> = replayed.iter().map(|b| b.as_ref().unwrap().num_rows()).collect();
        assert_eq!(rows, [2, 3]);
        // Replays are independent: each is the whole result again.
        assert_eq!(drain(kept.replay()).await.len(), 2);
    }

    #[tokio::test]
    async fn an_empty_result_keeps_its_schema() {
        let slot = Slot::default();
        drain(recording(stream(vec![]), slot.clone())).await;
        let replay = slot.get().expect("kept").replay();
        assert_eq!(replay.schema(), schema());
        assert!(drain(replay).await.is_empty());
    }

    #[tokio::test]
    async fn a_failure_is_never_kept() {
        let slot = Slot::default();
        let error = DataFusionError::Execution("Divide by zero error".into());
        let out = drain(recording(stream(vec![Ok(batch(1)), Err(error)]), slot.clone())).await;
        assert!(out[1].is_err());
        assert!(slot.get().is_none());
    }

    #[tokio::test]
    async fn a_result_not_read_to_its_end_is_not_kept() {
        let slot = Slot::default();
        let mut s = recording(stream(vec![Ok(batch(1)), Ok(batch(1))]), slot.clone());
        assert!(s.next().await.is_some());
        drop(s);
        assert!(slot.get().is_none());
    }

    #[tokio::test]
    async fn a_result_of_many_rows_is_not_kept() {
        let slot = Slot::default();
        let out = drain(recording(stream(vec![Ok(batch(MAX_ROWS)), Ok(batch(1))]), slot.clone())).await;
        assert_eq!(out.len(), 2, "the rows still all reach the client");
        assert!(slot.get().is_none());
        let slot = Slot::default();
        drain(recording(stream(vec![Ok(batch(MAX_ROWS))]), slot.clone())).await;
        assert!(slot.get().is_some(), "as many rows as the bound are kept");
    }

    #[tokio::test]
    async fn a_row_of_long_values_is_not_kept() {
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, false)]));
        let long: ArrayRef = Arc::new(StringArray::from(vec!["x".repeat(MAX_BYTES)]));
        let row = RecordBatch::try_new(schema.clone(), vec![long]).unwrap();
        let slot = Slot::default();
        let s = Box::pin(RecordBatchStreamAdapter::new(schema, futures::stream::iter(vec![Ok(row)])));
        assert_eq!(drain(recording(s, slot.clone())).await.len(), 1);
        assert!(slot.get().is_none());
    }
}
