//! Table definitions as Arrow schemas, and resource rows as Arrow record batches.
//!
//! JSON columns are Utf8 fields tagged with [`PG_TYPE_KEY`] = `jsonb` (or `json`), so the wire
//! layer reports them as PostgreSQL `jsonb` while DataFusion's JSON functions read them as text.
//! Resource properties are `jsonb`, in its canonical text ([`super::jsonb`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, RecordBatchOptions, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde_json::{Map, Value};

use super::model::{ColumnDef, ColumnSource, PgType, TableDef};
use crate::error::{Error, Result};

/// Field metadata key naming the PostgreSQL type when Arrow's type does not say it.
pub const PG_TYPE_KEY: &str = "cloudpg.pg_type";

pub fn arrow_type(t: PgType) -> DataType {
    match t {
        PgType::Text | PgType::Json => DataType::Utf8,
        PgType::Bigint => DataType::Int64,
        PgType::Double => DataType::Float64,
        PgType::Boolean => DataType::Boolean,
        PgType::Timestamptz => time_type(),
    }
}

/// `timestamptz`: instants, kept in UTC and printed in the session's zone.
pub fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

pub fn field(c: &ColumnDef) -> Field {
    if c.pg_type == PgType::Json {
        json_field(&c.name, JsonKind::Jsonb)
    } else {
        Field::new(&c.name, arrow_type(c.pg_type), true)
    }
}

/// PostgreSQL's two JSON types: `json` keeps the text as written, `jsonb` the canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    Json,
    Jsonb,
}

impl JsonKind {
    pub fn name(self) -> &'static str {
        match self {
            JsonKind::Json => "json",
            JsonKind::Jsonb => "jsonb",
        }
    }
}

/// A JSON column: text tagged with its JSON type.
pub fn json_field(name: &str, kind: JsonKind) -> Field {
    Field::new(name, DataType::Utf8, true).with_metadata(json_metadata(kind))
}

pub fn json_metadata(kind: JsonKind) -> HashMap<String, String> {
    HashMap::from([(PG_TYPE_KEY.to_string(), kind.name().to_string())])
}

/// Which JSON type a field holds, if any.
pub fn json_kind(field: &Field) -> Option<JsonKind> {
    match field.metadata().get(PG_TYPE_KEY).map(String::as_str) {
        Some("json") => Some(JsonKind::Json),
        Some("jsonb") => Some(JsonKind::Jsonb),
        _ => None,
    }
}

/// Whether a field holds JSON text.
pub fn is_json(field: &Field) -> bool {
    json_kind(field).is_some()
}

/// Kinds of the columns of tables cloudpg builds itself (request lists, RETURNING frames).
#[derive(Debug, Clone, Copy)]
pub enum ExtraKind {
    Text,
    Json,
    /// Epoch seconds, shown as `timestamptz`.
    Time,
}

pub fn extra_field(name: &str, kind: ExtraKind) -> Field {
    match kind {
        ExtraKind::Text => Field::new(name, DataType::Utf8, true),
        ExtraKind::Json => json_field(name, JsonKind::Jsonb),
        ExtraKind::Time => Field::new(name, time_type(), true),
    }
}

/// A text (or json) column of an [`ExtraKind`] table.
pub fn text_array(values: impl IntoIterator<Item = Option<String>>) -> ArrayRef {
    let mut b = StringBuilder::new();
    for v in values {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

/// A [`ExtraKind::Time`] column from epoch seconds.
pub fn time_array(values: impl IntoIterator<Item = Option<f64>>) -> ArrayRef {
    let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    for v in values {
        b.append_option(v.map(|secs| (secs * 1e6).round() as i64));
    }
    Arc::new(b.finish())
}

pub fn schema(t: &TableDef) -> SchemaRef {
    t.arrow_schema
        .get_or_init(|| Arc::new(Schema::new(t.columns().iter().map(field).collect::<Vec<_>>())))
        .clone()
}

/// One resource as the scan found it.
#[derive(Debug, Clone)]
pub struct Row {
    /// The account and region it was read from.
    pub place: Arc<crate::cloudcontrol::Place>,
    pub identifier: String,
    pub properties: Arc<Map<String, Value>>,
    /// Values of list-filter columns, echoed from the WHERE clause.
    pub parents: Arc<HashMap<String, String>>,
}

/// A batch of `rows` with the given columns (already projected).
pub fn batch(schema: SchemaRef, columns: &[&ColumnDef], rows: &[Row]) -> Result<RecordBatch> {
    let arrays: Vec<ArrayRef> = columns.iter().map(|c| column_array(c, rows)).collect();
    let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    RecordBatch::try_new_with_options(schema, arrays, &options).map_err(|e| Error::internal(format!("building a result batch: {e}")))
}

fn value_of<'a>(c: &ColumnDef, row: &'a Row) -> Option<std::borrow::Cow<'a, Value>> {
    use std::borrow::Cow;
    match &c.source {
        ColumnSource::Property(p) => row
            .properties
            .get(p)
            .map(Cow::Borrowed)
            .or_else(|| row.parents.get(&c.name).map(|v| Cow::Owned(Value::String(v.clone())))),
        ColumnSource::ListParam(_) => row.parents.get(&c.name).map(|v| Cow::Owned(Value::String(v.clone()))),
        ColumnSource::Region => Some(Cow::Owned(Value::String(row.place.region.clone()))),
        ColumnSource::Account => Some(Cow::Owned(Value::String(row.place.account.clone()))),
        ColumnSource::Identifier => Some(Cow::Owned(Value::String(row.identifier.clone()))),
        ColumnSource::TagMap(p) => row.properties.get(p).and_then(super::model::tag_map).map(Cow::Owned),
        ColumnSource::Extra(declared) => extra(declared, &row.properties).map(Cow::Owned),
    }
}

/// The undeclared properties and the declared ones whose value does not fit their column, as
/// one object; `None` when there are none.
fn extra(declared: &BTreeMap<String, PgType>, properties: &Map<String, Value>) -> Option<Value> {
    let out: Map<String, Value> = properties
        .iter()
        .filter(|(k, v)| declared.get(*k).is_none_or(|t| !fits(*t, v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!out.is_empty()).then_some(Value::Object(out))
}

/// Whether a JSON value converts to a column of this type (NULL always does).
pub fn fits(pg_type: PgType, v: &Value) -> bool {
    v.is_null()
        || match pg_type {
            PgType::Text | PgType::Json => true,
            PgType::Bigint => as_i64(v).is_some(),
            PgType::Double => as_f64(v).is_some(),
            PgType::Boolean => as_bool(v).is_some(),
            PgType::Timestamptz => super::timestamps::instant_micros(v).is_some(),
        }
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(x) => Some(*x),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// The projected property columns some row holds a value of the wrong type for (it is NULL
/// in the column and kept in `_extra`), for a WARNING naming each.
pub fn misfit_columns<'a>(columns: &[&'a ColumnDef], rows: &[Row]) -> Vec<&'a str> {
    columns
        .iter()
        .filter(|c| matches!(c.source, ColumnSource::Property(_)))
        .filter(|c| rows.iter().any(|r| value_of(c, r).is_some_and(|v| !fits(c.pg_type, &v))))
        .map(|c| c.name.as_str())
        .collect()
}

/// Converts values to the column type; a value of another JSON type than the schema says
/// (a handler sending `"5"` for an integer) is converted when it can be, else NULL.
fn column_array(c: &ColumnDef, rows: &[Row]) -> ArrayRef {
    match c.pg_type {
        PgType::Text | PgType::Json => {
            let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 16);
            for r in rows {
                match value_of(c, r).as_deref() {
                    None | Some(Value::Null) => b.append_null(),
                    Some(Value::String(s)) if c.pg_type == PgType::Text => b.append_value(s),
                    Some(other) if c.pg_type == PgType::Text => b.append_value(other.to_string()),
                    Some(v) => b.append_value(super::jsonb::text(v)),
                }
            }
            Arc::new(b.finish())
        }
        PgType::Bigint => {
            let mut b = Int64Builder::with_capacity(rows.len());
            for r in rows {
                b.append_option(value_of(c, r).and_then(|v| as_i64(&v)));
            }
            Arc::new(b.finish())
        }
        PgType::Double => {
            let mut b = Float64Builder::with_capacity(rows.len());
            for r in rows {
                b.append_option(value_of(c, r).and_then(|v| as_f64(&v)));
            }
            Arc::new(b.finish())
        }
        PgType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(rows.len());
            for r in rows {
                b.append_option(value_of(c, r).and_then(|v| as_bool(&v)));
            }
            Arc::new(b.finish())
        }
        PgType::Timestamptz => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
            for r in rows {
                b.append_option(value_of(c, r).and_then(|v| super::timestamps::instant_micros(&v)));
            }
            Arc::new(b.finish())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;
    use resource_schemas::Registry;
    use serde_json::json;

    #[test]
    fn values_convert_to_column_types() {
        let catalog = Catalog::build(Registry::shared().unwrap());
        let t = catalog.resolve("awscc.logs.log_groups").unwrap();
        let cols: Vec<&ColumnDef> = ["log_group_name", "retention_in_days", "tags", "region", "identifier"]
            .iter()
            .map(|n| t.column(n).unwrap())
            .collect();
        let schema = Arc::new(Schema::new(cols.iter().map(|c| field(c)).collect::<Vec<_>>()));
        let row = |props: Value| Row {
            place: Arc::new(crate::cloudcontrol::Place::new("default", "us-east-1")),
            identifier: "g".into(),
            properties: Arc::new(props.as_object().unwrap().clone()),
            parents: Arc::new(HashMap::new()),
        };
        let rows = vec![
            row(json!({"LogGroupName": "g", "RetentionInDays": 7, "Tags": [{"Key": "a", "Value": "b"}]})),
            row(json!({"LogGroupName": "h", "RetentionInDays": "30"})),
            row(json!({"RetentionInDays": true})),
        ];
        let b = batch(schema, &cols, &rows).unwrap();
        let days = b.column(1).as_primitive::<Int64Type>();
        assert_eq!((days.value(0), days.value(1), days.is_null(2)), (7, 30, true));
        assert_eq!(
            b.column(2).as_string::<i32>().value(0),
            r#"[{"Key": "a", "Value": "b"}]"#,
            "jsonb's text"
        );
        assert!(b.column(0).is_null(2));
        assert_eq!(b.column(3).as_string::<i32>().value(2), "us-east-1");
        assert_eq!(b.schema().field(2).metadata().get(PG_TYPE_KEY).map(String::as_str), Some("jsonb"));
        assert_eq!(misfit_columns(&cols, &rows), vec!["retention_in_days"]);
        let extra = t.column("_extra").unwrap();
        let drifted = row(json!({"LogGroupName": "g", "RetentionInDays": "soon", "NewThing": 1}));
        let got = value_of(extra, &drifted).unwrap().into_owned();
        assert_eq!(got, json!({"RetentionInDays": "soon", "NewThing": 1}));
        assert!(value_of(extra, &rows[0]).is_none(), "nothing extra: NULL");
    }
}
