//! `awscc.cloudcontrol.resources`: any type Cloud Control knows, by name, including types the
//! shipped schemas do not have (private, third-party, or newer than the data): one row per
//! resource with its properties whole as JSON.
//!
//! `WHERE type_name = '…'` (or `IN (…)`) is required; `account`, `region` and `identifier`
//! narrow the calls as on the typed tables. The rows stream page by page.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use futures::StreamExt;

use super::arrow::{extra_field, text_array, ExtraKind};
use super::provider::{Backend, QuerySettings};
use super::pushdown;
use crate::cloudcontrol::{ListRequest, Place, Resource};
use crate::error::Error;

pub const ANY_TYPE_TABLE: &str = "resources";

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        extra_field("type_name", ExtraKind::Text),
        extra_field("region", ExtraKind::Text),
        extra_field("account", ExtraKind::Text),
        extra_field("identifier", ExtraKind::Text),
        extra_field("properties", ExtraKind::Json),
    ]))
}

/// `awscc.cloudcontrol.resources`.
pub struct AnyTypeTable {
    pub backend: Arc<Backend>,
}

impl std::fmt::Debug for AnyTypeTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnyTypeTable")
    }
}

/// The calls one scan makes: types × places, each a list (or reads of named identifiers).
#[derive(Clone)]
struct Reads {
    backend: Arc<Backend>,
    settings: QuerySettings,
    targets: Vec<(String, Place)>,
    identifiers: Option<Vec<String>>,
}

impl std::fmt::Debug for Reads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reads").field("targets", &self.targets).finish()
    }
}

fn batch(type_name: &str, place: &Place, resources: &[&Resource]) -> Result<RecordBatch, Error> {
    let n = resources.len();
    let columns: Vec<ArrayRef> = vec![
        text_array(std::iter::repeat_n(Some(type_name.to_string()), n)),
        text_array(std::iter::repeat_n(Some(place.region.clone()), n)),
        text_array(std::iter::repeat_n(Some(place.account.clone()), n)),
        text_array(resources.iter().map(|r| Some(r.identifier.clone()))),
        text_array(resources.iter().map(|r| serde_json::to_string(r.properties.as_ref()).ok())),
    ];
    RecordBatch::try_new(schema(), columns).map_err(|e| Error::internal(format!("building a result batch: {e}")))
}

impl Reads {
    /// Every batch of one type in one place, in order.
    fn of(&self, type_name: String, place: Place) -> futures::stream::BoxStream<'static, Result<RecordBatch, Error>> {
        let (api, bypass, budget) = (self.backend.api.clone(), self.settings.bypass_cache, self.settings.budget.clone());
        match self.identifiers.clone() {
            Some(ids) => futures::stream::iter(ids)
                .then(move |id| {
                    let (api, budget, type_name, place) = (api.clone(), budget.clone(), type_name.clone(), place.clone());
                    async move {
                        let found = api.get_cached(&place, &type_name, &id, bypass, &budget).await?;
                        let rows: Vec<&Resource> = found.as_ref().iter().collect();
                        batch(&type_name, &place, &rows)
                    }
                })
                .boxed(),
            None => {
                let request = ListRequest {
                    place: place.clone(),
                    type_name: type_name.clone(),
                    model: None,
                };
                // (next token, done)
                futures::stream::unfold((None::<String>, false), move |(token, done)| {
                    let (api, budget, request) = (api.clone(), budget.clone(), request.clone());
                    async move {
                        if done {
                            return None;
                        }
                        let page = match api.list_page_cached(&request, token.as_deref(), bypass, &budget).await {
                            Ok(p) => p,
                            Err(e) => return Some((Err(e), (None, true))),
                        };
                        let rows: Vec<&Resource> = page.resources.iter().collect();
                        let out = batch(&request.type_name, &request.place, &rows);
                        let next = page.next_token.clone();
                        let done = next.is_none();
                        Some((out, (next, done)))
                    }
                })
                .boxed()
            }
        }
    }
}

impl PartitionStream for Reads {
    fn schema(&self) -> &SchemaRef {
        static SCHEMA: std::sync::OnceLock<SchemaRef> = std::sync::OnceLock::new();
        SCHEMA.get_or_init(schema)
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let streams: Vec<_> = self.targets.iter().map(|(t, p)| self.of(t.clone(), p.clone())).collect();
        let merged = futures::stream::select_all(streams).map(|b| b.map_err(|e| DataFusionError::External(Box::new(e))));
        Box::pin(RecordBatchStreamAdapter::new(schema(), merged))
    }
}

#[async_trait]
impl TableProvider for AnyTypeTable {
    fn schema(&self) -> SchemaRef {
        schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(pushdown::equalities_support(filters))
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let settings = QuerySettings::of(state, &self.backend);
        let eq = pushdown::equalities(filters);
        let types = eq.get("type_name").cloned().ok_or_else(|| Error::MissingFilter {
            message: "awscc.cloudcontrol.resources reads the types its WHERE clause names".into(),
            hint: Some("add WHERE type_name = 'AWS::Service::Resource' (or type_name IN (…))".into()),
        })?;
        let mut targets: Vec<(String, Place)> = Vec::new();
        let mut places = 0;
        for t in &types {
            let of = super::accounts::ReadOf::TypeNamed(t);
            let at = super::provider::places_named(&self.backend, of, &eq, &settings)?;
            places = places.max(at.len());
            targets.extend(at.into_iter().map(|p| (t.clone(), p)));
        }
        let identifiers = eq.get("identifier").cloned();
        let per_target = identifiers.as_ref().map_or(1, Vec::len) as u64;
        settings.budget.check_planned(
            targets.len() as u64 * per_target,
            &format!("{} type(s) x {places} place(s)", types.len()),
        )?;
        let reads = Reads {
            backend: self.backend.clone(),
            settings,
            targets,
            identifiers,
        };
        let exec = StreamingTableExec::try_new(schema(), vec![Arc::new(reads)], projection, Vec::new(), false, None)?;
        Ok(Arc::new(exec))
    }
}
