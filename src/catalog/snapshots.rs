//! Whole lists as a scan turned them into Arrow batches, kept so the next scan of the same
//! list sends those batches instead of building them again, row by row, from cached JSON.
//! The rows of resources named by identifier (a point lookup) are kept the same way.
//!
//! A snapshot is exactly what the answers it was built from would give again: it is keyed by
//! the list (place, type, model), the table, the projection and the type's cache generation
//! (a mutation changes it, so no later scan finds the old snapshot), and it expires when the
//! oldest answer it was built from would have, `cache.ttl` after that answer was fetched.
//! Only complete lists are kept (no LIMIT cut them short, no error), and only up to
//! `cache.max_bytes` of batches, so memory stays bounded as the answer cache's does.
//! One scan at a time records a list: identical scans running alongside it (fifty dashboards
//! opening at once) send their rows unrecorded instead of each building, coalescing and
//! throwing away a copy of the same snapshot (a quarter of the server's CPU in that case).

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use moka::sync::Cache;

use crate::cloudcontrol::ListRequest;

/// Rows per kept batch: pages and hydration chunks are small; fewer, larger batches cost
/// less per row downstream.
const SNAPSHOT_BATCH_ROWS: usize = 8192;

/// Which list, read for which table and columns, in which cache generation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScanKey {
    pub request: ListRequest,
    pub generation: u64,
    /// The table's qualified name (two tables over one type differ in columns and hydration).
    pub table: String,
    pub projection: Vec<usize>,
    /// Parent column values the rows echo from the WHERE clause, sorted.
    pub parents: Vec<(String, String)>,
    /// For the rows of named resources (GetResource, not a list): their identifiers, in the
    /// order the scan reads them.
    pub reads: Option<Vec<String>>,
}

/// One list's rows as a scan sent them.
pub struct Snapshot {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// Columns that got a value of another type (NULL there): each scan warns again.
    pub misfits: Vec<String>,
    pub rows: usize,
    expires: Instant,
    bytes: usize,
}

/// The snapshots, bounded in bytes; empty (and never filled) when answers are not cached.
pub struct ScanCache {
    cache: Option<Cache<ScanKey, Arc<Snapshot>>>,
    ttl: Duration,
    max_bytes: u64,
    /// The lists a scan is recording now.
    recording: Arc<Mutex<HashSet<ScanKey>>>,
}

impl ScanCache {
    /// `ttl` is the answer cache's: zero keeps nothing.
    pub fn new(ttl: Duration, max_bytes: u64) -> ScanCache {
        let cache = (!ttl.is_zero() && max_bytes > 0).then(|| {
            Cache::builder()
                .time_to_live(ttl)
                .max_capacity(max_bytes)
                .weigher(|_k: &ScanKey, v: &Arc<Snapshot>| u32::try_from(v.bytes).unwrap_or(u32::MAX))
                .build()
        });
        ScanCache {
            cache,
            ttl,
            max_bytes,
            recording: Arc::default(),
        }
    }

    /// The snapshot of a list, if one is kept, still fresh, and of these columns.
    pub fn get(&self, key: &ScanKey, schema: &SchemaRef) -> Option<Arc<Snapshot>> {
        let snapshot = self.cache.as_ref()?.get(key)?;
        (snapshot.expires > Instant::now() && snapshot.schema == *schema).then_some(snapshot)
    }

    /// Somewhere to collect a list's batches as they are sent; `None` when nothing is kept or
    /// another scan is recording the same list.
    pub fn recorder(&self, key: &ScanKey) -> Option<Recorder> {
        self.cache.as_ref()?;
        let claim = Claim::new(&self.recording, key)?;
        Some(Recorder {
            _claim: claim,
            batches: Vec::new(),
            bytes: 0,
            max_bytes: usize::try_from(self.max_bytes).unwrap_or(usize::MAX),
            misfits: BTreeSet::new(),
            oldest: None,
        })
    }

    /// Keeps what a complete list sent, unless it is already stale or too big.
    pub fn keep(&self, key: ScanKey, schema: SchemaRef, recorder: Recorder) {
        let Some(cache) = &self.cache else { return };
        let Some(oldest) = recorder.oldest else { return };
        let expires = oldest + self.ttl;
        if recorder.bytes > recorder.max_bytes || expires <= Instant::now() {
            return;
        }
        let Ok(batches) = coalesce(&schema, recorder.batches) else { return };
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        let bytes = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        let snapshot = Snapshot {
            schema,
            batches,
            misfits: recorder.misfits.into_iter().collect(),
            rows,
            expires,
            bytes,
        };
        cache.insert(key, Arc::new(snapshot));
    }
}

/// A scan's claim to record a list, given up when its recorder is dropped (kept or not).
struct Claim {
    key: ScanKey,
    recording: Arc<Mutex<HashSet<ScanKey>>>,
}

impl Claim {
    /// `None` when another scan holds the claim.
    fn new(recording: &Arc<Mutex<HashSet<ScanKey>>>, key: &ScanKey) -> Option<Claim> {
        lock(recording).insert(key.clone()).then(|| Claim {
            key: key.clone(),
            recording: recording.clone(),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        lock(&self.recording).remove(&self.key);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The set is consistent after any panic (one insert or remove): keep using it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A list's batches while it is being scanned.
pub struct Recorder {
    _claim: Claim,
    batches: Vec<RecordBatch>,
    bytes: usize,
    max_bytes: usize,
    misfits: BTreeSet<String>,
    /// When the oldest answer the rows came from was fetched.
    oldest: Option<Instant>,
}

impl Recorder {
    /// A batch sent, and the columns it had misfits in; past the byte bound the batches are
    /// dropped (the list will not be kept).
    pub fn batch(&mut self, batch: &RecordBatch, misfits: &[&str]) {
        self.bytes = self.bytes.saturating_add(batch.get_array_memory_size());
        if self.bytes > self.max_bytes {
            self.batches = Vec::new();
            return;
        }
        self.batches.push(batch.clone());
        self.misfits.extend(misfits.iter().map(|m| m.to_string()));
    }

    /// An answer the rows came from, fetched at `at`.
    pub fn answer(&mut self, at: Instant) {
        self.oldest = Some(self.oldest.map_or(at, |o| o.min(at)));
    }
}

/// Fewer, larger batches: at most [`SNAPSHOT_BATCH_ROWS`] rows each.
fn coalesce(schema: &SchemaRef, batches: Vec<RecordBatch>) -> datafusion::arrow::error::Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    let mut pending: Vec<RecordBatch> = Vec::new();
    let mut rows = 0;
    for b in batches {
        rows += b.num_rows();
        pending.push(b);
        if rows >= SNAPSHOT_BATCH_ROWS {
            out.push(concat_batches(schema, &pending)?);
            pending.clear();
            rows = 0;
        }
    }
    if !pending.is_empty() {
        out.push(concat_batches(schema, &pending)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    fn key(generation: u64) -> ScanKey {
        ScanKey {
            request: ListRequest {
                place: crate::cloudcontrol::Place::new("default", "us-east-1"),
                type_name: "AWS::SQS::Queue".into(),
                model: None,
            },
            generation,
            table: "sqs.queues".into(),
            projection: vec![0],
            parents: Vec::new(),
            reads: None,
        }
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]))
    }

    fn batch(n: usize) -> RecordBatch {
        let values: ArrayRef = Arc::new(Int64Array::from_iter_values((0..n as i64).collect::<Vec<_>>()));
        RecordBatch::try_new(schema(), vec![values]).unwrap()
    }

    #[test]
    fn keeps_a_complete_list_in_large_batches_until_its_oldest_answer_expires() {
        let cache = ScanCache::new(Duration::from_secs(60), 1 << 30);
        let mut r = cache.recorder(&key(0)).unwrap();
        for _ in 0..200 {
            r.batch(&batch(64), &["n"]);
        }
        r.answer(Instant::now());
        cache.keep(key(0), schema(), r);
        let got = cache.get(&key(0), &schema()).unwrap();
        assert_eq!(got.rows, 12_800);
        assert_eq!(got.batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(), [8192, 4608]);
        assert_eq!(got.misfits, ["n"]);
        // Another generation (a mutation since) or other columns: not this snapshot.
        assert!(cache.get(&key(1), &schema()).is_none());
        let other = Arc::new(Schema::new(vec![Field::new("m", DataType::Int64, true)]));
        assert!(cache.get(&key(0), &other).is_none());
    }

    #[test]
    fn keeps_nothing_stale_too_big_or_without_a_cache() {
        let cache = ScanCache::new(Duration::from_secs(60), 1 << 30);
        let mut stale = cache.recorder(&key(0)).unwrap();
        stale.batch(&batch(10), &[]);
        stale.answer(Instant::now() - Duration::from_secs(61));
        stale.answer(Instant::now());
        cache.keep(key(0), schema(), stale);
        assert!(cache.get(&key(0), &schema()).is_none());

        let small = ScanCache::new(Duration::from_secs(60), 1024);
        let mut big = small.recorder(&key(0)).unwrap();
        for _ in 0..100 {
            big.batch(&batch(64), &[]);
        }
        big.answer(Instant::now());
        small.keep(key(0), schema(), big);
        assert!(small.get(&key(0), &schema()).is_none());

        assert!(ScanCache::new(Duration::ZERO, 1 << 30).recorder(&key(0)).is_none());
    }

    #[test]
    fn one_scan_at_a_time_records_a_list() {
        let cache = ScanCache::new(Duration::from_secs(60), 1 << 30);
        let first = cache.recorder(&key(0)).unwrap();
        assert!(cache.recorder(&key(0)).is_none(), "an identical scan alongside does not record");
        assert!(cache.recorder(&key(1)).is_some(), "another list does");
        drop(first);
        let mut again = cache
            .recorder(&key(0))
            .expect("a dropped recorder (a scan cut short) gives up its claim");
        again.batch(&batch(3), &[]);
        again.answer(Instant::now());
        cache.keep(key(0), schema(), again);
        assert!(cache.recorder(&key(0)).is_some(), "keeping gives up the claim");
        assert_eq!(cache.get(&key(0), &schema()).unwrap().rows, 3);
    }
}
