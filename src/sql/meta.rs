//! StackQL-style meta commands answered as result sets: `SHOW SERVICES`,
//! `SHOW RESOURCES IN awscc.ec2`, `DESCRIBE [TABLE] awscc.ec2.instance_connect_endpoints`.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

use super::Output;
use crate::catalog::model::{Catalog, SqlOperation, TableKind};
use crate::error::{Error, Result};

/// What `version()` returns; clients match `PostgreSQL (\d+)`.
pub const VERSION_STRING: &str = concat!("PostgreSQL 16.6 (cloudpg ", env!("CARGO_PKG_VERSION"), ") on x86_64-pc-linux-gnu");

/// A meta command, recognised from its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meta {
    Services,
    ResourcesIn(String),
    Describe(String),
}

pub fn parse_meta(sql: &str) -> Option<Meta> {
    let words: Vec<&str> = sql.trim().trim_end_matches(';').split_whitespace().collect();
    let is = |i: usize, w: &str| words.get(i).is_some_and(|x| x.eq_ignore_ascii_case(w));
    match words.len() {
        2 if is(0, "SHOW") && is(1, "SERVICES") => Some(Meta::Services),
        4 if is(0, "SHOW") && is(1, "RESOURCES") && is(2, "IN") => Some(Meta::ResourcesIn(words[3].to_ascii_lowercase())),
        _ if is(0, "DESCRIBE") => {
            let name = words
                .iter()
                .skip(1)
                .find(|x| !x.eq_ignore_ascii_case("TABLE"))
                .copied()
                .unwrap_or_default();
            Some(Meta::Describe(name.to_ascii_lowercase()))
        }
        _ => None,
    }
}

/// Text columns with these names.
pub fn text_schema(columns: &[&str]) -> SchemaRef {
    Arc::new(Schema::new(
        columns.iter().map(|c| Field::new(*c, DataType::Utf8, true)).collect::<Vec<_>>(),
    ))
}

/// The columns of `EXPLAIN` of a mutation.
pub fn plan_schema() -> SchemaRef {
    text_schema(&["QUERY PLAN"])
}

/// The columns a meta command answers with.
pub fn schema(meta: &Meta) -> SchemaRef {
    match meta {
        Meta::Services => text_schema(&SERVICES_COLUMNS),
        Meta::ResourcesIn(_) => text_schema(&RESOURCES_COLUMNS),
        Meta::Describe(_) => text_schema(&DESCRIBE_COLUMNS),
    }
}

const SERVICES_COLUMNS: [&str; 2] = ["service", "resources"];
const RESOURCES_COLUMNS: [&str; 4] = ["name", "id", "type_name", "statements"];
const DESCRIBE_COLUMNS: [&str; 4] = ["name", "type", "insert", "description"];

/// Rows of text, as a statement's output.
pub fn rows(columns: &[&str], data: Vec<Vec<String>>) -> Output {
    let schema = text_schema(columns);
    let arrays: Vec<ArrayRef> = (0..columns.len())
        .map(|i| Arc::new(StringArray::from(data.iter().map(|r| r[i].clone()).collect::<Vec<_>>())) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays);
    let stream = futures::stream::iter(vec![batch.map_err(Into::into)]);
    Output::rows(
        schema.clone(),
        Box::pin(RecordBatchStreamAdapter::new(schema, stream)),
        "SELECT",
        true,
    )
}

/// One row, one column: the answer to `SHOW name`.
pub fn single_value(name: &str, value: &str) -> Output {
    rows(&[name], vec![vec![value.to_string()]])
}

/// The answer to a meta command.
pub fn answer(meta: &Meta, catalog: &Catalog) -> Result<Output> {
    match meta {
        Meta::Services => Ok(services(catalog)),
        Meta::ResourcesIn(target) => resources_in(catalog, target),
        Meta::Describe(name) => describe(catalog, name),
    }
}

fn services(catalog: &Catalog) -> Output {
    let data = catalog
        .schema_names()
        .map(|s| {
            let n = catalog
                .tables_in(s)
                .map(|t| t.values().filter(|t| t.kind == TableKind::Full).count())
                .unwrap_or(0);
            vec![s.to_string(), n.to_string()]
        })
        .collect();
    rows(&SERVICES_COLUMNS, data)
}

/// `SHOW RESOURCES IN awscc.ec2` (or just `ec2`).
fn resources_in(catalog: &Catalog, target: &str) -> Result<Output> {
    let service = target.rsplit('.').next().unwrap_or_default();
    let tables = catalog.tables_in(service).ok_or_else(|| Error::UndefinedSchema {
        suggestions: Vec::new(),
        name: target.to_string(),
    })?;
    let data = tables
        .values()
        .map(|t| {
            let ops: Vec<&str> = SqlOperation::ALL
                .iter()
                .filter(|op| t.supports(**op))
                .map(|op| op.keyword())
                .collect();
            vec![t.name.clone(), t.qualified_name(), t.type_name().to_string(), ops.join(",")]
        })
        .collect();
    Ok(rows(&RESOURCES_COLUMNS, data))
}

/// `DESCRIBE [TABLE] awscc.ec2.instance_connect_endpoints`: one row per column.
fn describe(catalog: &Catalog, name: &str) -> Result<Output> {
    let table = catalog.resolve(name).ok_or_else(|| Error::UndefinedTable {
        suggestions: catalog.closest_tables(name, 3),
        name: name.to_string(),
    })?;
    let data = table
        .columns()
        .iter()
        .map(|c| {
            let required = c.property().is_some_and(|p| table.resource.is_required(p));
            vec![
                c.name.clone(),
                c.pg_type.sql_name().to_string(),
                if required { "required".into() } else { String::new() },
                c.description.clone(),
            ]
        })
        .collect();
    Ok(rows(&DESCRIBE_COLUMNS, data))
}
