//! `ResourceScanExec`: the execution plan that turns pushed-down constraints into Cloud Control
//! calls and streams the rows back as Arrow batches.
//!
//! Per place, an (account, region) pair (concurrently): GetResource per identifier when identifiers were given; otherwise
//! ListResources page by page, and, when the projection needs more than the list returns,
//! GetResource per listed resource with bounded concurrency, started while later pages are still
//! being fetched. Batches go to the client as they are built; a pushed-down LIMIT stops paging.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream};
use futures::{stream, StreamExt, TryStreamExt};
use tokio::sync::mpsc;

use super::arrow::{batch, Row};
use super::model::{ColumnDef, TableDef};
use super::snapshots::{Recorder, ScanCache, ScanKey, Snapshot};
use crate::cloudcontrol::budget::CallBudget;
use crate::cloudcontrol::cache::CachedApi;
use crate::cloudcontrol::{ListRequest, Place};
use crate::error::{Error, Result};
use tracing::Instrument;

/// Rows per batch while hydrating; list pages without hydration keep their own size.
const HYDRATE_BATCH_ROWS: usize = 64;
/// Listed identifiers waiting to be read; bounds how far paging runs ahead of reading.
const LIST_PREFETCH_IDS: usize = 256;

/// One list to run: `ResourceModel` and the parent column values it stands for.
#[derive(Debug, Clone, Default)]
pub struct ModelFilter {
    pub model: Option<String>,
    pub parents: HashMap<String, String>,
}

/// Everything a scan decided at planning time.
#[derive(Debug, Clone)]
pub struct ScanSpec {
    pub table: Arc<TableDef>,
    /// The accounts and regions called.
    pub places: Vec<super::accounts::ScanPlace>,
    pub identifiers: Option<Vec<String>>,
    pub models: Vec<ModelFilter>,
    /// Whether each listed resource is read with GetResource.
    pub hydrate: bool,
    pub limit: Option<usize>,
    /// Indices into the table's columns.
    pub projection: Vec<usize>,
    pub bypass_cache: bool,
    pub hydrate_concurrency: usize,
    /// The statement's Cloud Control calls; every call this scan makes is taken from it.
    pub budget: Arc<CallBudget>,
    /// Where the statement's scans report how far they have got.
    pub progress: Arc<crate::catalog::progress::Progress>,
    /// The statement's span, the parent of the scan's.
    pub span: tracing::Span,
    /// Whether a failing region (or parent) is a warning and missing rows, not an error.
    pub warn_on_error: bool,
    /// Parents to list first when the list needs keys the statement did not give; each model
    /// in `models` is then listed once per parent.
    pub fan_out: Option<Arc<super::fanout::FanOut>>,
}

impl ScanSpec {
    /// The calls this scan will make, for EXPLAIN.
    pub fn describe_calls(&self) -> String {
        let t = self.table.type_name();
        match &self.identifiers {
            Some(ids) => format!("GetResource({t}) x {} per region and account", ids.len()),
            None => {
                let mut s = match &self.fan_out {
                    Some(fan) => format!("{} -> ListResources({t}) per parent", fan.describe()),
                    None => format!("ListResources({t})"),
                };
                if self.models.iter().any(|m| m.model.is_some()) {
                    let models: Vec<&str> = self.models.iter().filter_map(|m| m.model.as_deref()).collect();
                    s.push_str(&format!(" ResourceModel={}", models.join(" | ")));
                }
                if self.hydrate {
                    s.push_str(&format!(
                        " + GetResource per row (hydrate, concurrency {})",
                        self.hydrate_concurrency
                    ));
                } else {
                    s.push_str(" (list only, no GetResource)");
                }
                s
            }
        }
    }
}

/// Decides a scan again for another statement's settings (see [`super::replan`]).
pub type Replan = Arc<dyn Fn(&super::provider::QuerySettings) -> datafusion::error::Result<ScanSpec> + Send + Sync>;

pub struct ResourceScanExec {
    spec: ScanSpec,
    api: Arc<CachedApi>,
    scans: Arc<ScanCache>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    replan: Option<Replan>,
}

impl fmt::Debug for ResourceScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceScanExec").field("spec", &self.spec).finish()
    }
}

impl ResourceScanExec {
    pub fn new(spec: ScanSpec, api: Arc<CachedApi>, scans: Arc<ScanCache>, schema: SchemaRef) -> ResourceScanExec {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        ResourceScanExec {
            spec,
            api,
            scans,
            schema,
            properties,
            replan: None,
        }
    }

    /// The same scan, able to be decided again for the next statement that runs its plan.
    pub fn with_replan(mut self, replan: Replan) -> ResourceScanExec {
        self.replan = Some(replan);
        self
    }

    /// Whether [`Self::for_statement`] can decide this scan again.
    pub fn can_replan(&self) -> bool {
        self.replan.is_some()
    }

    /// This scan as `settings`' statement would have planned it (its budget, progress, span,
    /// regions and accounts); `None` when it cannot be planned again.
    pub fn for_statement(&self, settings: &super::provider::QuerySettings) -> Option<datafusion::error::Result<ResourceScanExec>> {
        let replan = self.replan.as_ref()?;
        Some(replan(settings).map(|spec| ResourceScanExec {
            spec,
            api: self.api.clone(),
            scans: self.scans.clone(),
            schema: self.schema.clone(),
            properties: self.properties.clone(),
            replan: Some(replan.clone()),
        }))
    }

    pub fn spec(&self) -> &ScanSpec {
        &self.spec
    }
}

impl DisplayAs for ResourceScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let s = &self.spec;
        let places: Vec<String> = s.places.iter().map(|p| p.place.to_string()).collect();
        write!(
            f,
            "ResourceScanExec: table={}, type={}, regions=[{}]",
            s.table.qualified_name(),
            s.table.type_name(),
            places.join(", ")
        )?;
        if let Some(ids) = &s.identifiers {
            write!(f, ", identifiers=[{}]", ids.join(", "))?;
        }
        if let Some(limit) = s.limit {
            write!(f, ", limit={limit}")?;
        }
        if s.bypass_cache {
            write!(f, ", cache=bypass")?;
        }
        write!(f, ", calls={}", s.describe_calls())
    }
}

impl ExecutionPlan for ResourceScanExec {
    fn name(&self) -> &str {
        "ResourceScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn datafusion::physical_expr::PhysicalExpr>) -> datafusion::error::Result<TreeNodeRecursion>,
    ) -> datafusion::error::Result<TreeNodeRecursion> {
        // Filters are pushed into the API calls, not kept as expressions.
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal("ResourceScanExec has no children".into()))
        }
    }

    fn execute(&self, partition: usize, _context: Arc<TaskContext>) -> datafusion::error::Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "ResourceScanExec has one partition, asked for {partition}"
            )));
        }
        if let Some(snapshot) = self.kept_answer() {
            return Ok(self.replay_now(snapshot));
        }
        // A small channel: the producer runs at most a couple of batches ahead of the client,
        // so memory does not grow with the result.
        let (tx, rx) = mpsc::channel::<datafusion::error::Result<RecordBatch>>(2);
        let spec = self.spec.clone();
        let (api, scans) = (self.api.clone(), self.scans.clone());
        let schema = self.schema.clone();
        let places: Vec<String> = spec.places.iter().map(|p| p.place.to_string()).collect();
        let span = tracing::info_span!(parent: &spec.span, "scan", table = %spec.table.qualified_name(), regions = ?places);
        let task = tokio::spawn(run_producer(spec, api, scans, schema, tx).instrument(span));
        let abort = AbortOnDrop(task);
        let out = stream::unfold((rx, abort), |(mut rx, abort)| async move {
            rx.recv().await.map(|item| (item, (rx, abort)))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), out)))
    }
}

/// The identifiers stopped coming: the pager reached the end of the list, or it died (a
/// panic), which must fail the scan rather than pass for the end of the list.
async fn pager_finished(pager: &mut tokio::task::JoinHandle<()>, what: &str) -> Result<()> {
    pager
        .await
        .map_err(|e| Error::internal(format!("{what} stopped before its end ({e}); the rows would have been incomplete")))
}

/// `base` with a parent's key values added to its model and its parent columns.
fn with_parent(base: &ModelFilter, fan: &super::fanout::FanOut, values: &serde_json::Map<String, serde_json::Value>) -> ModelFilter {
    let mut model: serde_json::Map<String, serde_json::Value> =
        base.model.as_deref().and_then(|m| serde_json::from_str(m).ok()).unwrap_or_default();
    let mut parents = base.parents.clone();
    for key in &fan.keys {
        if let Some(value) = values.get(&key.model_key) {
            model.insert(key.model_key.clone(), value.clone());
            if let Some(column) = &key.column {
                parents.insert(column.clone(), super::fanout::column_text(value));
            }
        }
    }
    ModelFilter {
        model: Some(serde_json::Value::Object(model).to_string()),
        parents,
    }
}

/// What the rows of one list (or of the named resources, `reads`) in `place` are kept under
/// (see [`super::snapshots`]). Read before the list, so a mutation while it runs leaves its
/// snapshot where no later scan looks.
fn snapshot_key(spec: &ScanSpec, api: &CachedApi, place: &Place, model: &ModelFilter, reads: Option<&[String]>) -> ScanKey {
    let request = ListRequest {
        place: place.clone(),
        type_name: spec.table.type_name().to_string(),
        model: model.model.clone(),
    };
    let mut parents: Vec<(String, String)> = model.parents.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    parents.sort();
    ScanKey {
        generation: api.generation(place, &request.type_name),
        request,
        table: spec.table.qualified_name(),
        projection: spec.projection.clone(),
        parents,
        reads: reads.map(<[String]>::to_vec),
    }
}

/// What a kept answer counts for in the scan's progress, as the scan that built it counted.
fn count_replayed(progress: &super::progress::TableProgress, spec: &ScanSpec, rows: usize) {
    match &spec.identifiers {
        Some(ids) => progress.read_many(ids.len()),
        None => {
            progress.listed_page(rows);
            if spec.hydrate {
                progress.read_many(rows);
            }
            progress.list_done();
        }
    }
}

/// The WARNING for a column that got a value of another type.
fn misfit_warning(spec: &ScanSpec, column: &str) -> String {
    format!(
        "{}: column {column} got a value of another type than it holds; it is NULL there and kept in _extra",
        spec.table.qualified_name()
    )
}

/// Stops the producer when the client stops reading (cancel, disconnect, LIMIT reached).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type Sender = mpsc::Sender<datafusion::error::Result<RecordBatch>>;

impl ResourceScanExec {
    /// The whole answer of a scan of one list, or of named resources, in one place, when it is
    /// kept: sent from here, without a producer task (a cached point lookup costs less than
    /// starting one).
    fn kept_answer(&self) -> Option<Arc<Snapshot>> {
        let spec = &self.spec;
        let [at] = spec.places.as_slice() else { return None };
        if spec.bypass_cache || spec.fan_out.is_some() {
            return None;
        }
        let key = match (&spec.identifiers, spec.models.as_slice()) {
            (Some(ids), _) => snapshot_key(spec, &self.api, &at.place, &ModelFilter::default(), Some(ids)),
            (None, [model]) => snapshot_key(spec, &self.api, &at.place, model, None),
            (None, _) => return None,
        };
        self.scans.get(&key, &self.schema)
    }

    /// Sends a kept answer as the producer would: progress, misfit warnings, and batches up to
    /// the pushed-down LIMIT.
    fn replay_now(&self, snapshot: Arc<Snapshot>) -> SendableRecordBatchStream {
        let spec = &self.spec;
        let progress = spec.progress.track(
            &spec.table.qualified_name(),
            usize::from(spec.identifiers.is_none()),
            spec.models.len() <= 1,
            spec.hydrate || spec.identifiers.is_some(),
            spec.identifiers.as_ref().map_or(0, Vec::len),
        );
        count_replayed(&progress, spec, snapshot.rows);
        progress.finish();
        self.api.count_scan_hit();
        for column in &snapshot.misfits {
            spec.progress.warn(misfit_warning(spec, column));
        }
        let mut rows = 0;
        let batches: Vec<datafusion::error::Result<RecordBatch>> = snapshot
            .batches
            .iter()
            .take_while(|b| {
                let more = spec.limit.is_none_or(|l| rows < l);
                rows += b.num_rows();
                more
            })
            .map(|b| Ok(b.clone()))
            .collect();
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream::iter(batches)))
    }
}

/// The producer task: owns its inputs so the spawned future is `'static`, and reports a
/// failure through the channel so the query ends with the error.
async fn run_producer(spec: ScanSpec, api: Arc<CachedApi>, scans: Arc<ScanCache>, schema: SchemaRef, tx: Sender) {
    let named = spec.identifiers.as_ref().map_or(0, Vec::len);
    let lists = if spec.identifiers.is_some() {
        0
    } else {
        spec.places.len() * spec.models.len()
    };
    let progress = spec.progress.track(
        &spec.table.qualified_name(),
        lists,
        spec.models.len() <= 1,
        spec.hydrate || spec.identifiers.is_some(),
        named * spec.places.len(),
    );
    let producer = Producer {
        progress: progress.clone(),
        spec: Arc::new(spec),
        api,
        scans,
        schema,
        tx: tx.clone(),
        emitted: Arc::new(AtomicUsize::new(0)),
        missing: Arc::new(AtomicUsize::new(0)),
        missed: Arc::new(tokio::sync::Notify::new()),
        misfits: Arc::default(),
    };
    let result = producer.run().await;
    progress.finish();
    if let Err(e) = result {
        let _ = tx.send(Err(e.into())).await;
    }
}

/// Everything one scan's jobs share; cheap to clone into each spawned job.
#[derive(Clone)]
struct Producer {
    spec: Arc<ScanSpec>,
    progress: Arc<crate::catalog::progress::TableProgress>,
    api: Arc<CachedApi>,
    scans: Arc<ScanCache>,
    schema: SchemaRef,
    tx: Sender,
    emitted: Arc<AtomicUsize>,
    /// Listed resources that were gone when read; with a LIMIT, paging continues to make up
    /// for them.
    missing: Arc<AtomicUsize>,
    missed: Arc<tokio::sync::Notify>,
    /// Columns already warned of a value of the wrong type, so each is said once.
    misfits: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Producer {
    /// One job per place (and per parent model), run concurrently; the first error ends the
    /// scan, and dropping the set aborts the rest.
    async fn run(&self) -> Result<()> {
        let mut jobs = tokio::task::JoinSet::new();
        for at in &self.spec.places {
            let place = Arc::new(at.place.clone());
            if self.spec.identifiers.is_some() {
                let (p, at) = (self.clone(), at.clone());
                jobs.spawn(async move { (at, p.read_identifiers(place).await) }.in_current_span());
            } else if let Some(fan) = &self.spec.fan_out {
                let (p, at, fan) = (self.clone(), at.clone(), fan.clone());
                jobs.spawn(async move { (at, p.list_under_parents(place, fan).await) }.in_current_span());
            } else {
                for model in &self.spec.models {
                    let (p, at, place, model) = (self.clone(), at.clone(), place.clone(), model.clone());
                    jobs.spawn(async move { (at, p.list(place, model).await) }.in_current_span());
                }
            }
        }
        let mut skipped = std::collections::HashSet::new();
        while let Some(joined) = jobs.join_next().await {
            let (at, outcome) = joined.map_err(|e| Error::internal(format!("scan task failed: {e}")))?;
            match outcome {
                Ok(()) => {}
                // A region of "*" the account has not enabled: nothing to read there, which
                // is no failure; said once, and not asked again for the cache TTL.
                Err(e) if at.optional && e.is_region_not_enabled() => {
                    self.api.remember_not_enabled(&at.place);
                    if skipped.insert(at.place.clone()) {
                        self.spec.progress.note(format!(
                            "{}: skipped {}: the account has not enabled this region ({})",
                            self.spec.table.qualified_name(),
                            at.place,
                            e.log_summary()
                        ));
                    }
                }
                // A region the account cannot read, or whose calls keep failing: its rows are
                // missing and the client is told, when the session asked to go on.
                Err(e @ Error::Aws(_)) if self.spec.warn_on_error => {
                    self.spec
                        .progress
                        .warn(format!("{}: no rows from here: {e}", self.spec.table.qualified_name()));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.spec.limit.is_some_and(|l| self.emitted.load(Ordering::Relaxed) >= l) || self.tx.is_closed()
    }

    /// Builds and sends a batch of rows; `recorder` keeps it for the list's snapshot.
    async fn send(&self, rows: &[Row], recorder: Option<&mut Recorder>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let columns: Vec<&ColumnDef> = self
            .spec
            .projection
            .iter()
            .filter_map(|&i| self.spec.table.columns().get(i))
            .collect();
        let misfits = super::arrow::misfit_columns(&columns, rows);
        for column in &misfits {
            self.warn_misfit(column);
        }
        let b = batch(self.schema.clone(), &columns, rows)?;
        if let Some(recorder) = recorder {
            recorder.batch(&b, &misfits);
        }
        self.emit(b).await;
        Ok(())
    }

    async fn emit(&self, batch: RecordBatch) {
        self.emitted.fetch_add(batch.num_rows(), Ordering::Relaxed);
        // A closed channel means the client is gone; stop quietly.
        let _ = self.tx.send(Ok(batch)).await;
    }

    /// Once per scan and column.
    fn warn_misfit(&self, column: &str) {
        if self.misfits.lock().unwrap_or_else(|p| p.into_inner()).insert(column.to_string()) {
            self.spec.progress.warn(misfit_warning(&self.spec, column));
        }
    }

    /// Sends the rows kept under `key` again, if there are any and the statement may use
    /// them; whether it did.
    async fn replayed(&self, key: &ScanKey) -> bool {
        if self.spec.bypass_cache {
            return false;
        }
        match self.scans.get(key, &self.schema) {
            Some(snapshot) => {
                self.replay(&snapshot).await;
                true
            }
            None => false,
        }
    }

    /// Somewhere to collect the rows for keeping; only a whole answer is kept, and a LIMIT
    /// may stop it early.
    fn recorder(&self, key: &ScanKey) -> Option<Recorder> {
        if self.spec.bypass_cache || self.spec.limit.is_some() {
            return None;
        }
        self.scans.recorder(key)
    }

    /// Sends a kept list again, as the scan that built it did (warnings and progress too).
    async fn replay(&self, snapshot: &Snapshot) {
        count_replayed(&self.progress, &self.spec, snapshot.rows);
        self.api.count_scan_hit();
        for column in &snapshot.misfits {
            self.warn_misfit(column);
        }
        for b in &snapshot.batches {
            if self.done() {
                return;
            }
            self.emit(b.clone()).await;
        }
    }

    /// GetResource for `id`, as a future that owns what it needs; the answer comes with when
    /// it was fetched.
    fn read(
        &self,
        place: &Arc<Place>,
        id: String,
    ) -> impl std::future::Future<Output = Result<(Arc<Option<crate::cloudcontrol::Resource>>, std::time::Instant)>> + Send + 'static {
        let (api, place, type_name, bypass, budget, progress) = (
            self.api.clone(),
            place.clone(),
            self.spec.table.type_name().to_string(),
            self.spec.bypass_cache,
            self.spec.budget.clone(),
            self.progress.clone(),
        );
        async move {
            let read = api.get_cached_at(&place, &type_name, &id, bypass, &budget).await;
            progress.read_one();
            read
        }
    }

    fn rows_of(
        &self,
        place: &Arc<Place>,
        got: Vec<Result<(Arc<Option<crate::cloudcontrol::Resource>>, std::time::Instant)>>,
        parents: &Arc<HashMap<String, String>>,
        mut recorder: Option<&mut Recorder>,
    ) -> Result<Vec<Row>> {
        let mut rows = Vec::with_capacity(got.len());
        for r in got {
            let (r, fetched) = r?;
            if let Some(recorder) = recorder.as_deref_mut() {
                recorder.answer(fetched);
            }
            // Gone between list and read, or never existed: no row.
            match r.as_ref() {
                Some(r) => rows.push(Row {
                    place: place.clone(),
                    identifier: r.identifier.clone(),
                    properties: r.properties.clone(),
                    parents: parents.clone(),
                }),
                None => {
                    self.missing.fetch_add(1, Ordering::Relaxed);
                    self.missed.notify_one();
                }
            }
        }
        Ok(rows)
    }

    /// The named resources' rows: kept ones sent again (see [`super::snapshots`]), or read
    /// (from the answer cache or Cloud Control) and kept when all were read.
    async fn read_identifiers(self, place: Arc<Place>) -> Result<()> {
        let no_parents = Arc::new(HashMap::new());
        let ids: Vec<String> = self.spec.identifiers.clone().unwrap_or_default();
        let key = snapshot_key(&self.spec, &self.api, &place, &ModelFilter::default(), Some(&ids));
        if self.replayed(&key).await {
            return Ok(());
        }
        let mut recorder = self.recorder(&key);
        let reads = stream::iter(ids.into_iter().map(|id| self.read(&place, id)))
            .buffered(self.spec.hydrate_concurrency)
            .ready_chunks(HYDRATE_BATCH_ROWS);
        let mut reads = std::pin::pin!(reads);
        while let Some(chunk) = reads.next().await {
            let rows = self.rows_of(&place, chunk, &no_parents, recorder.as_mut())?;
            self.send(&rows, recorder.as_mut()).await?;
            if self.done() {
                // Cut short (the client left): not every row was sent, so none is kept.
                return Ok(());
            }
        }
        if let Some(recorder) = recorder {
            self.scans.keep(key, self.schema.clone(), recorder);
        }
        Ok(())
    }

    async fn list(self, place: Arc<Place>, model: ModelFilter) -> Result<()> {
        let request = ListRequest {
            place: place.as_ref().clone(),
            type_name: self.spec.table.type_name().to_string(),
            model: model.model.clone(),
        };
        let parents = Arc::new(model.parents.clone());
        let key = snapshot_key(&self.spec, &self.api, &place, &model, None);
        if self.replayed(&key).await {
            return Ok(());
        }
        let mut recorder = self.recorder(&key);
        if !self.spec.hydrate {
            let mut token: Option<String> = None;
            loop {
                let (page, fetched) = self
                    .api
                    .list_page_cached_at(&request, token.as_deref(), self.spec.bypass_cache, &self.spec.budget)
                    .await?;
                if let Some(recorder) = recorder.as_mut() {
                    recorder.answer(fetched);
                }
                let rows: Vec<Row> = page
                    .resources
                    .iter()
                    .map(|r| Row {
                        place: place.clone(),
                        identifier: r.identifier.clone(),
                        properties: r.properties.clone(),
                        parents: parents.clone(),
                    })
                    .collect();
                self.progress.listed_page(rows.len());
                self.send(&rows, recorder.as_mut()).await?;
                token = page.next_token.clone();
                if token.is_none() {
                    self.progress.list_done();
                    if let Some(recorder) = recorder {
                        self.scans.keep(key, self.schema.clone(), recorder);
                    }
                    return Ok(());
                }
                if self.done() {
                    return Ok(());
                }
            }
        }
        // Hydrate: a paging task lists ahead into a bounded channel of identifiers while bounded
        // concurrent GetResource calls read them, so paging and reading overlap instead of each
        // page boundary stalling the reads.
        let (id_tx, mut id_rx) = mpsc::channel::<Result<(String, std::time::Instant)>>(LIST_PREFETCH_IDS);
        let what = format!("the list of {} in {place}", request.type_name);
        let mut pager = AbortOnDrop(tokio::spawn(self.clone().page_identifiers(request, id_tx).in_current_span()));
        let pages = stream::poll_fn(move |cx| id_rx.poll_recv(cx));
        let (reader, read_place) = (self.clone(), place.clone());
        let reads = pages
            .map_ok(move |(id, listed)| {
                // A row is as old as the older of its list page and its GetResource answer.
                let read = reader.read(&read_place, id);
                async move { read.await.map(|(r, fetched)| (r, fetched.min(listed))) }
            })
            .try_buffered(self.spec.hydrate_concurrency)
            .ready_chunks(HYDRATE_BATCH_ROWS);
        let mut reads = std::pin::pin!(reads);
        while let Some(chunk) = reads.next().await {
            let rows = self.rows_of(&place, chunk, &parents, recorder.as_mut())?;
            self.send(&rows, recorder.as_mut()).await?;
            if self.done() {
                return Ok(());
            }
        }
        pager_finished(&mut pager.0, &what).await?;
        if let Some(recorder) = recorder {
            self.scans.keep(key, self.schema.clone(), recorder);
        }
        Ok(())
    }

    /// Lists the parents in `region`, then the children under each (and under each model the
    /// WHERE clause gave), a bounded number at once. Refuses with 54000 before the first child
    /// list when they would go past the statement's call cap.
    async fn list_under_parents(self, place: Arc<Place>, fan: Arc<super::fanout::FanOut>) -> Result<()> {
        let lister = super::fanout::Lister {
            api: &self.api,
            place: &place,
            budget: &self.spec.budget,
            bypass_cache: self.spec.bypass_cache,
        };
        let parents = fan.values(&lister).await?;
        let mut models = Vec::with_capacity(parents.len() * self.spec.models.len());
        for base in &self.spec.models {
            for values in &parents {
                models.push(with_parent(base, &fan, values));
            }
        }
        self.spec.budget.check_planned(
            models.len() as u64,
            &format!(
                "a ListResources of {} under each of {} {} in {place}",
                self.spec.table.type_name(),
                parents.len(),
                fan.parent.type_name()
            ),
        )?;
        let lists = stream::iter(models.into_iter().map(|m| self.clone().list(place.clone(), m)));
        let mut lists = std::pin::pin!(lists.buffer_unordered(self.spec.hydrate_concurrency.max(1)));
        while let Some(listed) = lists.next().await {
            listed?;
            if self.done() {
                break;
            }
        }
        Ok(())
    }

    /// Lists every page of `request`, sending each identifier; stops at the end, on the first
    /// error (which it forwards), or when the reader has gone or has enough rows.
    async fn page_identifiers(self, request: ListRequest, ids: mpsc::Sender<Result<(String, std::time::Instant)>>) {
        let mut token: Option<String> = None;
        let mut sent = 0;
        loop {
            if self.done() {
                return;
            }
            // With a LIMIT, list no further than the rows still needed: one more page only once
            // the identifiers sent (less those found gone) no longer cover it.
            while let Some(limit) = self.spec.limit {
                if sent < limit + self.missing.load(Ordering::Relaxed) {
                    break;
                }
                tokio::select! {
                    _ = self.missed.notified() => {}
                    _ = ids.closed() => return,
                }
            }
            let (page, fetched) = match self
                .api
                .list_page_cached_at(&request, token.as_deref(), self.spec.bypass_cache, &self.spec.budget)
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    let _ = ids.send(Err(e)).await;
                    return;
                }
            };
            self.progress.listed_page(page.resources.len());
            for r in &page.resources {
                if ids.send(Ok((r.identifier.clone(), fetched))).await.is_err() {
                    return;
                }
                sent += 1;
            }
            match &page.next_token {
                Some(next) => token = Some(next.clone()),
                None => {
                    self.progress.list_done();
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pager_that_dies_fails_the_scan() {
        let mut finished = tokio::spawn(async {});
        assert!(pager_finished(&mut finished, "the list").await.is_ok());
        let mut died = tokio::spawn(async { panic!("injected") });
        let e = pager_finished(&mut died, "the list of AWS::EC2::VPC in us-east-1")
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("AWS::EC2::VPC in us-east-1") && e.to_string().contains("incomplete"),
            "{e}"
        );
    }
}
