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
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::arrow::PG_TYPE_KEY;
use super::provider::{Backend, QuerySettings};
use super::pushdown;
use crate::cloudcontrol::requests::{epoch_seconds, RequestLog};
use crate::cloudcontrol::{ProgressEvent, RequestFilter};
use crate::config::DefaultRegions;
use crate::error::Error;

/// Schema and table names of the two tables.
pub const SERVER_SCHEMA: &str = "cloudpg";
pub const SERVER_REQUESTS: &str = "requests";
pub const API_SCHEMA: &str = "cloudcontrol";
pub const API_REQUESTS: &str = "resource_requests";

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Json,
    Time,
}

fn schema_of(columns: &[(&str, Kind)]) -> SchemaRef {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, kind)| match kind {
            Kind::Text => Field::new(*name, DataType::Utf8, true),
            Kind::Json => Field::new(*name, DataType::Utf8, true)
                .with_metadata(std::collections::HashMap::from([(PG_TYPE_KEY.to_string(), "json".to_string())])),
            Kind::Time => Field::new(*name, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// A cell of one of these tables.
enum Cell {
    Text(Option<String>),
    Time(Option<f64>),
}

/// Builds a batch column by column from rows of cells.
fn batch(schema: &SchemaRef, columns: &[(&str, Kind)], rows: &[Vec<Cell>]) -> DfResult<RecordBatch> {
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (i, (_, kind)) in columns.iter().enumerate() {
        let array: ArrayRef = match kind {
            Kind::Text | Kind::Json => {
                let mut b = StringBuilder::new();
                for row in rows {
                    match &row[i] {
                        Cell::Text(v) => b.append_option(v.as_deref()),
                        Cell::Time(_) => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            Kind::Time => {
                let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
                for row in rows {
                    match &row[i] {
                        Cell::Time(Some(secs)) => b.append_value((secs * 1e6).round() as i64),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
        };
        arrays.push(array);
    }
    Ok(RecordBatch::try_new(schema.clone(), arrays)?)
}

fn text(v: &Option<String>) -> Cell {
    Cell::Text(v.clone())
}

fn memory_exec(schema: SchemaRef, batch: RecordBatch, projection: Option<&Vec<usize>>) -> DfResult<Arc<dyn ExecutionPlan>> {
    Ok(MemorySourceConfig::try_new_exec(&[vec![batch]], schema, projection.cloned())?)
}

const SERVER_COLUMNS: &[(&str, Kind)] = &[
    ("request_token", Kind::Text),
    ("client_token", Kind::Text),
    ("operation", Kind::Text),
    ("operation_status", Kind::Text),
    ("type_name", Kind::Text),
    ("region", Kind::Text),
    ("identifier", Kind::Text),
    ("error_code", Kind::Text),
    ("status_message", Kind::Text),
    ("user_name", Kind::Text),
    ("submitted_at", Kind::Time),
    ("event_time", Kind::Time),
];

/// `cloudpg.requests`.
pub struct ServerRequestsTable {
    pub log: Arc<RequestLog>,
}

impl std::fmt::Debug for ServerRequestsTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerRequestsTable")
    }
}

#[async_trait]
impl TableProvider for ServerRequestsTable {
    fn schema(&self) -> SchemaRef {
        schema_of(SERVER_COLUMNS)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let rows: Vec<Vec<Cell>> = self
            .log
            .snapshot()
            .into_iter()
            .map(|(t, e)| {
                vec![
                    Cell::Text((!e.request_token.is_empty()).then(|| e.request_token.clone())),
                    Cell::Text(Some(t.client_token.clone())),
                    Cell::Text(Some(t.operation.to_string())),
                    Cell::Text(Some(e.operation_status.clone())),
                    Cell::Text(Some(t.type_name.clone())),
                    Cell::Text(Some(t.region.clone())),
                    text(&e.identifier),
                    text(&e.error_code),
                    text(&e.status_message),
                    Cell::Text(Some(t.user.clone())),
                    Cell::Time(Some(epoch_seconds(t.submitted_at))),
                    Cell::Time(e.event_time),
                ]
            })
            .collect();
        let schema = self.schema();
        let batch = batch(&schema, SERVER_COLUMNS, &rows)?;
        memory_exec(schema, batch, projection)
    }
}

const API_COLUMNS: &[(&str, Kind)] = &[
    ("region", Kind::Text),
    ("request_token", Kind::Text),
    ("operation", Kind::Text),
    ("operation_status", Kind::Text),
    ("type_name", Kind::Text),
    ("identifier", Kind::Text),
    ("error_code", Kind::Text),
    ("status_message", Kind::Text),
    ("event_time", Kind::Time),
    ("retry_after", Kind::Time),
    ("resource_model", Kind::Json),
    ("hooks_request_token", Kind::Text),
];

fn api_row(region: &str, e: &ProgressEvent) -> Vec<Cell> {
    vec![
        Cell::Text(Some(region.to_string())),
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
    fn regions(&self, wanted: Option<&Vec<String>>, settings: &QuerySettings) -> Result<Vec<String>, Error> {
        let registry = self.backend.catalog.registry;
        match wanted {
            Some(list) => {
                if let Some(bad) = list.iter().find(|r| !registry.is_region(r)) {
                    return Err(Error::invalid_parameter(
                        format!("region '{bad}' does not exist"),
                        Some(format!("valid regions are {}", registry.regions.join(", "))),
                    ));
                }
                Ok(list.clone())
            }
            None => Ok(match &settings.regions {
                DefaultRegions::List(list) => list.clone(),
                DefaultRegions::All => registry.regions.clone(),
            }),
        }
    }

    async fn fetch(&self, region: String, filter: RequestFilter) -> Result<Vec<Vec<Cell>>, Error> {
        let mut rows = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.backend.api.list_requests(&region, &filter, token.as_deref()).await?;
            rows.extend(page.events.iter().map(|e| api_row(&region, e)));
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
        // The API narrows the rows; DataFusion still checks them, so Inexact is always right.
        Ok(filters
            .iter()
            .map(|f| {
                if pushdown::is_equality(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
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
        let regions = self.regions(eq.get("region"), &settings)?;
        let upper = |col: &str| {
            eq.get(col)
                .map(|v| v.iter().map(|s| s.to_uppercase()).collect())
                .unwrap_or_default()
        };
        let filter = RequestFilter {
            operations: upper("operation"),
            statuses: upper("operation_status"),
        };
        let fetches = regions.into_iter().map(|r| self.fetch(r, filter.clone()));
        let mut rows = Vec::new();
        for result in futures::future::join_all(fetches).await {
            rows.extend(result?);
        }
        let schema = self.schema();
        let batch = batch(&schema, API_COLUMNS, &rows)?;
        memory_exec(schema, batch, projection)
    }
}
