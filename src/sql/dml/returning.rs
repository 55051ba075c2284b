//! `RETURNING`: the rows a mutation affected, with the resource's columns (from the final
//! ResourceModel, or a GetResource when Cloud Control sent none) and the progress-event fields
//! (`RequestToken`, `OperationStatus`, …; also as `request_token`, …). The items are planned by
//! DataFusion over that frame, so any expression works.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::logical_expr::Expr as DfExpr;
use datafusion::prelude::{ident, DataFrame};
use datafusion::sql::sqlparser::ast::SelectItem;

use super::{RowOutcome, Verb};
use crate::catalog::arrow::{self as arrow_rows, extra_field, text_array, time_array, ExtraKind, Row};
use crate::catalog::TableDef;
use crate::cloudcontrol::{parse_properties, ProgressEvent};
use crate::error::{Error, Result};
use crate::sql::{Output, Session};

/// The progress-event fields, as AWS names them and in snake_case.
const PROGRESS: [(&str, &str, ExtraKind); 10] = [
    ("ErrorCode", "error_code", ExtraKind::Text),
    ("EventTime", "event_time", ExtraKind::Time),
    ("Identifier", "identifier", ExtraKind::Text),
    ("Operation", "operation", ExtraKind::Text),
    ("OperationStatus", "operation_status", ExtraKind::Text),
    ("RequestToken", "request_token", ExtraKind::Text),
    ("ResourceModel", "resource_model", ExtraKind::Json),
    ("RetryAfter", "retry_after", ExtraKind::Time),
    ("StatusMessage", "status_message", ExtraKind::Text),
    ("TypeName", "type_name", ExtraKind::Text),
];

fn progress_value(e: &ProgressEvent, camel: &str) -> Option<String> {
    match camel {
        "ErrorCode" => e.error_code.clone(),
        "Identifier" => e.identifier.clone(),
        "Operation" => Some(e.operation.clone()),
        "OperationStatus" => Some(e.operation_status.clone()),
        "RequestToken" => Some(e.request_token.clone()),
        "ResourceModel" => e.resource_model.clone(),
        "StatusMessage" => e.status_message.clone(),
        "TypeName" => e.type_name.clone(),
        _ => None,
    }
}

fn progress_time(e: &ProgressEvent, camel: &str) -> Option<f64> {
    match camel {
        "EventTime" => e.event_time,
        "RetryAfter" => e.retry_after,
        _ => None,
    }
}

/// Progress columns the frame adds: (column name, field), skipping names the table uses.
fn progress_columns(table: &TableDef) -> Vec<(String, (&'static str, ExtraKind))> {
    let mut taken: Vec<String> = table.columns().iter().map(|c| c.name.clone()).collect();
    let mut out = Vec::new();
    for (camel, snake, kind) in PROGRESS {
        for name in [camel.to_lowercase(), snake.to_string(), camel.to_string()] {
            if !taken.contains(&name) {
                taken.push(name.clone());
                out.push((name, (camel, kind)));
            }
        }
    }
    out
}

fn frame_schema(table: &TableDef, progress: &[(String, (&'static str, ExtraKind))]) -> SchemaRef {
    let mut fields: Vec<Field> = arrow_rows::schema(table).fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(progress.iter().map(|(name, (_, kind))| extra_field(name, *kind)));
    Arc::new(Schema::new(fields))
}

impl Session {
    /// The RETURNING rows of a finished statement.
    pub(super) async fn returning(&self, table: &TableDef, items: &[SelectItem], outcomes: &[RowOutcome], verb: Verb) -> Result<Output> {
        let mut rows = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            rows.push(self.resource_row(table, o, verb).await?);
        }
        let df = self.returning_frame(table, items, outcomes, &rows)?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let stream = df.execute_stream().await.map_err(Error::from)?;
        let tag = if verb == Verb::Insert { "INSERT 0" } else { verb.tag() };
        Ok(Output::rows(crate::sql::session::client_schema(&schema), stream, tag, true))
    }

    /// The RETURNING columns, for Describe before the statement runs.
    pub(crate) fn returning_schema(&self, table: &TableDef, items: &[SelectItem]) -> Result<SchemaRef> {
        let df = self.returning_frame(table, items, &[], &[])?;
        Ok(Arc::new(df.schema().as_arrow().clone()))
    }

    async fn resource_row(&self, table: &TableDef, o: &RowOutcome, verb: Verb) -> Result<Row> {
        let identifier = o.event.identifier.clone().unwrap_or_default();
        let properties = match &o.event.resource_model {
            Some(model) => Arc::new(parse_properties(Some(model))),
            None if verb != Verb::Delete && o.event.operation_status == "SUCCESS" && !identifier.is_empty() => {
                let found = self
                    .engine
                    .backend
                    .api
                    .get_cached(&o.place, table.type_name(), &identifier, true, &self.scope.budget)
                    .await?;
                found.as_ref().as_ref().map(|r| r.properties.clone()).unwrap_or_default()
            }
            None => Arc::default(),
        };
        Ok(Row {
            place: Arc::new(o.place.clone()),
            identifier,
            properties,
            parents: Arc::default(),
        })
    }

    fn returning_frame(&self, table: &TableDef, items: &[SelectItem], outcomes: &[RowOutcome], rows: &[Row]) -> Result<DataFrame> {
        let progress = progress_columns(table);
        let schema = frame_schema(table, &progress);
        let columns: Vec<_> = table.columns().iter().collect();
        let resource = arrow_rows::batch(arrow_rows::schema(table), &columns, rows)?;
        let mut arrays: Vec<ArrayRef> = resource.columns().to_vec();
        for (_, (camel, kind)) in &progress {
            arrays.push(match kind {
                ExtraKind::Text | ExtraKind::Json => text_array(outcomes.iter().map(|o| progress_value(&o.event, camel))),
                ExtraKind::Time => time_array(outcomes.iter().map(|o| progress_time(&o.event, camel))),
            });
        }
        let batch = RecordBatch::try_new(schema, arrays).map_err(|e| Error::internal(format!("RETURNING frame: {e}")))?;
        let df = datafusion::prelude::SessionContext::new_with_state(self.state.clone())
            .read_batch(batch)
            .map_err(Error::from)?;
        let mut exprs: Vec<DfExpr> = Vec::new();
        for it in items {
            match it {
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                    exprs.extend(table.columns().iter().map(|c| ident(&c.name)));
                }
                SelectItem::UnnamedExpr(e) => exprs.push(df.parse_sql_expr(&e.to_string()).map_err(Error::from)?),
                SelectItem::ExprWithAlias { expr, alias } => {
                    let name = crate::sql::names::ident_name(alias);
                    exprs.push(df.parse_sql_expr(&expr.to_string()).map_err(Error::from)?.alias(name));
                }
                SelectItem::ExprWithAliases { .. } => {
                    return Err(Error::NotSupported(
                        "RETURNING expr AS (a, b): give each value its own alias".into(),
                    ));
                }
            }
        }
        df.select(exprs).map_err(Error::from)
    }
}
