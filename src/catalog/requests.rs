//! The two tables of mutation requests:
//!
//! - `cloudpg.requests`: every mutation this server started (from the [`RequestLog`]), with
//!   its ClientToken, the user, and the latest status, including requests a statement stopped
//!   waiting for.
//! - `awscc.cloudcontrol.resource_requests`: Cloud Control's own list (ListResourceRequests)
//!   for the regions in the WHERE clause (or the session's), whoever started them. Filters on
//!   `operation` and `operation_status` are passed to the API as well.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::arrow::{extra_field, text_array, time_array, ExtraKind};
use super::provider::{Backend, QuerySettings};
use super::pushdown;
use crate::cloudcontrol::requests::{epoch_seconds, RequestLog};
use crate::cloudcontrol::{Place, ProgressEvent, RequestFilter};
use crate::error::Error;

/// Schema and table names of the two tables.
pub const SERVER_SCHEMA: &str = "cloudpg";
pub const SERVER_REQUESTS: &str = "requests";
pub const API_SCHEMA: &str = "cloudcontrol";
pub const API_REQUESTS: &str = "resource_requests";

fn schema_of(columns: &[(&str, ExtraKind)]) -> SchemaRef {
    Arc::new(Schema::new(
        columns.iter().map(|(name, kind)| extra_field(name, *kind)).collect::<Vec<_>>(),
    ))
}

/// A cell of one of these tables.
enum Cell {
    Text(Option<String>),
    Time(Option<f64>),
}

/// Builds a batch column by column from rows of cells.
fn batch(schema: &SchemaRef, columns: &[(&str, ExtraKind)], rows: &[Vec<Cell>]) -> DfResult<RecordBatch> {
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| match kind {
            ExtraKind::Text | ExtraKind::Json => text_array(rows.iter().map(|row| match &row[i] {
                Cell::Text(v) => v.clone(),
                Cell::Time(_) => None,
            })),
            ExtraKind::Time => time_array(rows.iter().map(|row| match &row[i] {
                Cell::Time(v) => *v,
                Cell::Text(_) => None,
            })),
        })
        .collect();
    Ok(RecordBatch::try_new(schema.clone(), arrays)?)
}

fn text(v: &Option<String>) -> Cell {
    Cell::Text(v.clone())
}

fn memory_exec(schema: SchemaRef, batch: RecordBatch, projection: Option<&Vec<usize>>) -> DfResult<Arc<dyn ExecutionPlan>> {
    Ok(MemorySourceConfig::try_new_exec(&[vec![batch]], schema, projection.cloned())?)
}

const SERVER_COLUMNS: &[(&str, ExtraKind)] = &[
    ("request_token", ExtraKind::Text),
    ("client_token", ExtraKind::Text),
    ("operation", ExtraKind::Text),
    ("operation_status", ExtraKind::Text),
    ("type_name", ExtraKind::Text),
    ("region", ExtraKind::Text),
    ("account", ExtraKind::Text),
    ("identifier", ExtraKind::Text),
    ("error_code", ExtraKind::Text),
    ("status_message", ExtraKind::Text),
    ("user_name", ExtraKind::Text),
    ("submitted_at", ExtraKind::Time),
    ("event_time", ExtraKind::Time),
];

/// `cloudpg.requests`.
pub fn server_requests(log: Arc<RequestLog>) -> super::live::LiveTable {
    let schema = schema_of(SERVER_COLUMNS);
    super::live::LiveTable::new(SERVER_REQUESTS, schema.clone(), move || {
        let rows: Vec<Vec<Cell>> = log
            .snapshot()
            .into_iter()
            .map(|(t, e)| {
                vec![
                    Cell::Text((!e.request_token.is_empty()).then(|| e.request_token.clone())),
                    Cell::Text(Some(t.client_token.clone())),
                    Cell::Text(Some(t.operation.to_string())),
                    Cell::Text(Some(e.operation_status.clone())),
                    Cell::Text(Some(t.type_name.clone())),
                    Cell::Text(Some(t.place.region.clone())),
                    Cell::Text(Some(t.place.account.clone())),
                    text(&e.identifier),
                    text(&e.error_code),
                    text(&e.status_message),
                    Cell::Text(Some(t.user.clone())),
                    Cell::Time(Some(epoch_seconds(t.submitted_at))),
                    Cell::Time(e.event_time),
                ]
            })
            .collect();
        let columns = batch(&schema, SERVER_COLUMNS, &rows).map(|b| b.columns().to_vec());
        Box::pin(async move { columns })
    })
}

const API_COLUMNS: &[(&str, ExtraKind)] = &[
    ("region", ExtraKind::Text),
    ("account", ExtraKind::Text),
    ("request_token", ExtraKind::Text),
    ("operation", ExtraKind::Text),
    ("operation_status", ExtraKind::Text),
    ("type_name", ExtraKind::Text),
    ("identifier", ExtraKind::Text),
    ("error_code", ExtraKind::Text),
    ("status_message", ExtraKind::Text),
    ("event_time", ExtraKind::Time),
    ("retry_after", ExtraKind::Time),
    ("resource_model", ExtraKind::Json),
    ("hooks_request_token", ExtraKind::Text),
];

fn api_row(place: &Place, e: &ProgressEvent) -> Vec<Cell> {
    vec![
        Cell::Text(Some(place.region.clone())),
        Cell::Text(Some(place.account.clone())),
        Cell::Text(Some(e.request_token.clone())),
        Cell::Text(Some(e.operation.clone())),
        Cell::Text(Some(e.operation_status.clone())),
        text(&e.type_name),
        text(&e.identifier),
        text(&e.error_code),
        text(&e.status_message),
        Cell::Time(e.event_time),
        Cell::Time(e.retry_after),
        text(&e.resource_model),
        text(&e.hooks_request_token),
    ]
}

/// `awscc.cloudcontrol.resource_requests`.
pub struct ApiRequestsTable {
    pub backend: Arc<Backend>,
}

impl std::fmt::Debug for ApiRequestsTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiRequestsTable")
    }
}

impl ApiRequestsTable {
    async fn fetch(&self, place: Place, filter: RequestFilter) -> Result<Vec<Vec<Cell>>, Error> {
        let mut rows = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.backend.api.list_requests(&place, &filter, token.as_deref()).await?;
            rows.extend(page.events.iter().map(|e| api_row(&place, e)));
            match page.next_token {
                Some(t) if Some(&t) != token.as_ref() => token = Some(t),
                _ => return Ok(rows),
            }
        }
    }
}

#[async_trait]
impl TableProvider for ApiRequestsTable {
    fn schema(&self) -> SchemaRef {
        schema_of(API_COLUMNS)
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
        let places = super::provider::places_named(&self.backend, super::accounts::ReadOf::NoType, &eq, &settings)?;
        let upper = |col: &str| {
            eq.get(col)
                .map(|v| v.iter().map(|s| s.to_uppercase()).collect())
                .unwrap_or_default()
        };
        let filter = RequestFilter {
            operations: upper("operation"),
            statuses: upper("operation_status"),
        };
        let fetches = places.into_iter().map(|p| self.fetch(p, filter.clone()));
        let mut rows = Vec::new();
        for result in futures::future::join_all(fetches).await {
            rows.extend(result?);
        }
        let schema = self.schema();
        let batch = batch(&schema, API_COLUMNS, &rows)?;
        memory_exec(schema, batch, projection)
    }
}
