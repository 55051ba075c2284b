//! Arrow results as PostgreSQL rows: field descriptions (with `json` and `jsonb` for JSON
//! columns) and batches made encodable (JSON unions from `->` become jsonb text; binary jsonb
//! gets its version byte).

use std::sync::Arc;

use arrow_pg::datatypes::arrow_schema_to_pg_fields;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringBuilder, UnionArray};
use datafusion::arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Int64Type, Schema, SchemaRef};
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::api::Type;
use pgwire::error::PgWireResult;

use crate::catalog::arrow::{json_field, json_kind, JsonKind};
use crate::error::{Error, Result};
use crate::sql::datetime::{self, Style, TimeFormat};

/// The schema clients see: JSON unions (what `jsonb_col -> key` returns) become jsonb text.
pub fn wire_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Union(..) => json_field(f.name(), JsonKind::Jsonb),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Result columns as the client is told of them: the wire schema batches are converted to,
/// and its field descriptions in one format. Cheap to clone.
#[derive(Clone)]
pub struct Described {
    pub schema: SchemaRef,
    pub fields: Arc<Vec<FieldInfo>>,
}

/// Describes a result schema for the client in `format`.
pub fn describe(schema: &Schema, format: &Format) -> PgWireResult<Described> {
    let schema = wire_schema(schema);
    let fields = Arc::new(fields(&schema, format)?);
    Ok(Described { schema, fields })
}

/// Field descriptions for a wire schema; JSON columns reported as PostgreSQL json or jsonb.
pub fn fields(schema: &Schema, format: &Format) -> PgWireResult<Vec<FieldInfo>> {
    let mut out = arrow_schema_to_pg_fields(schema, format, None)?;
    for (i, f) in schema.fields().iter().enumerate() {
        let replaced = if let Some(kind) = json_kind(f) {
            match kind {
                JsonKind::Json => Type::JSON,
                JsonKind::Jsonb => Type::JSONB,
            }
        } else if is_oid_list(f.data_type()) {
            Type::OID_ARRAY
        } else if is_oid_alias(out[i].datatype()) && f.data_type() == &DataType::Int32 {
            // The catalogs' OID columns are tagged with the alias they point at (`regclass`
            // for `attrelid`); PostgreSQL's columns are plain `oid`, and a `regclass` would
            // have to print a name, not the number these hold.
            Type::OID
        } else {
            continue;
        };
        let old = &out[i];
        out[i] = FieldInfo::new(old.name().to_string(), None, None, replaced, old.format());
    }
    Ok(out)
}

fn is_oid_alias(t: &Type) -> bool {
    [
        Type::REGCLASS,
        Type::REGTYPE,
        Type::REGNAMESPACE,
        Type::REGROLE,
        Type::REGPROC,
        Type::REGPROCEDURE,
        Type::REGOPER,
        Type::REGOPERATOR,
        Type::REGCONFIG,
        Type::REGDICTIONARY,
        Type::REGCOLLATION,
    ]
    .contains(t)
}

/// Lists of 32-bit integers are OID arrays here: only catalogs have 32-bit integers (resource
/// properties are `bigint`), and their integers are OIDs. Clients that know `oid[]` but not
/// `int4[]` (asyncpg) then need no type lookup, which its own lookup query would need again.
pub fn is_oid_list(t: &DataType) -> bool {
    matches!(t, DataType::List(f) if f.data_type() == &DataType::Int32)
}

/// The PostgreSQL type a parameter is described with.
pub fn parameter_type(t: &DataType) -> Option<Type> {
    if is_oid_list(t) {
        return Some(Type::OID_ARRAY);
    }
    arrow_pg::datatypes::into_pg_type(t).ok()
}

/// A batch in the wire schema: union columns converted to JSON text.
pub fn wire_batch(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if !batch.columns().iter().any(|c| matches!(c.data_type(), DataType::Union(..))) {
        return Ok(batch);
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| match c.as_any().downcast_ref::<UnionArray>() {
            Some(u) => Arc::new(union_to_json(u)) as ArrayRef,
            None => c.clone(),
        })
        .collect();
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| Error::internal(format!("converting JSON values: {e}")))
}

/// Each value of a JSON union as JSON text: strings quoted, arrays and objects as they are,
/// JSON null as SQL NULL (PostgreSQL's `->` gives NULL for a missing key).
fn union_to_json(u: &UnionArray) -> datafusion::arrow::array::StringArray {
    let DataType::Union(union_fields, _) = u.data_type() else {
        return datafusion::arrow::array::StringArray::new_null(u.len());
    };
    let mut out = StringBuilder::with_capacity(u.len(), u.len() * 16);
    for i in 0..u.len() {
        let type_id = u.type_id(i);
        let child = u.child(type_id);
        let offset = u.value_offset(i);
        let field = union_fields.iter().find(|(id, _)| *id == type_id).map(|(_, f)| f.clone());
        if child.is_null(offset) {
            out.append_null();
            continue;
        }
        match child.data_type() {
            DataType::Null => out.append_null(),
            DataType::Boolean => out.append_value(child.as_boolean().value(offset).to_string()),
            DataType::Int64 => out.append_value(child.as_primitive::<Int64Type>().value(offset).to_string()),
            DataType::Float64 => out.append_value(child.as_primitive::<Float64Type>().value(offset).to_string()),
            DataType::Utf8 => {
                let s = child.as_string::<i32>().value(offset);
                let raw_json = field
                    .as_ref()
                    .is_some_and(|f| f.metadata().contains_key("is_json") || matches!(f.name().as_str(), "array" | "object"));
                if raw_json {
                    out.append_value(s);
                } else {
                    out.append_value(serde_json::Value::String(s.to_string()).to_string());
                }
            }
            other => out.append_value(format!("\"unsupported JSON value of type {other}\"")),
        }
    }
    out.finish()
}

/// jsonb's binary format is a version byte (1) and the text: binary jsonb columns become
/// bytes with it, which the encoder sends as they are.
pub fn jsonb_binary(batch: RecordBatch, fields: &[FieldInfo]) -> Result<RecordBatch> {
    let is_binary_jsonb = |i: usize, c: &ArrayRef| {
        c.data_type() == &DataType::Utf8
            && fields
                .get(i)
                .is_some_and(|f| f.format() == FieldFormat::Binary && f.datatype() == &Type::JSONB)
    };
    replace_columns(batch, is_binary_jsonb, "encoding jsonb", |c| {
        let text = c.as_string::<i32>();
        let mut out = datafusion::arrow::array::BinaryBuilder::with_capacity(c.len(), text.value_data().len() + c.len());
        let mut value = Vec::new();
        for v in text.iter() {
            match v {
                None => out.append_null(),
                Some(v) => {
                    value.clear();
                    value.push(1u8);
                    value.extend_from_slice(v.as_bytes());
                    out.append_value(&value);
                }
            }
        }
        Arc::new(out.finish())
    })
}

/// Float columns sent as text, printed as PostgreSQL prints them (`300`, `1e+20`, `1e-07`,
/// `Infinity`): pgwire's own text form (`300.0`, `1e20`, `inf`) is not PostgreSQL's. Binary
/// columns are left to the encoder.
pub fn postgres_float_text(batch: RecordBatch, fields: &[FieldInfo]) -> Result<RecordBatch> {
    as_text(
        batch,
        fields,
        |t| matches!(t, DataType::Float64 | DataType::Float32),
        |c, row| {
            if let Some(a) = c.as_primitive_opt::<Float64Type>() {
                float_text(a.value(row), 15)
            } else if let Some(a) = c.as_primitive_opt::<Float32Type>() {
                float4_text(a.value(row))
            } else {
                String::new()
            }
        },
    )
}

/// Timestamps and dates sent as text, printed in the session's `TimeZone` and `DateStyle`
/// as PostgreSQL prints them (pgwire's text form always has six fraction digits and ignores
/// the zone). Binary values are instants and need neither.
pub fn postgres_time_text(batch: RecordBatch, fields: &[FieldInfo], time: &TimeFormat) -> Result<RecordBatch> {
    let is_time = |t: &DataType| matches!(t, DataType::Timestamp(..)) || (*t == DataType::Date32 && time.style.style != Style::Iso);
    as_text(batch, fields, is_time, |c, row| {
        datetime::value_text(c, row, time).unwrap_or_default()
    })
}

/// The batch with the text-format columns whose type `pick` accepts replaced by `render`'s
/// text of each value (NULLs stay NULL); the field descriptions keep the original types.
fn as_text(
    batch: RecordBatch,
    fields: &[FieldInfo],
    pick: impl Fn(&DataType) -> bool,
    render: impl Fn(&ArrayRef, usize) -> String,
) -> Result<RecordBatch> {
    let chosen = |i: usize, c: &ArrayRef| pick(c.data_type()) && fields.get(i).is_some_and(|f| f.format() == FieldFormat::Text);
    replace_columns(batch, chosen, "formatting values as text", |c| {
        let mut out = StringBuilder::with_capacity(c.len(), c.len() * 8);
        for row in 0..c.len() {
            if c.is_null(row) {
                out.append_null();
            } else {
                out.append_value(render(c, row));
            }
        }
        Arc::new(out.finish())
    })
}

/// The batch with the columns `chosen` picks (by position and array) replaced by `convert`'s
/// array; untouched when it picks none.
fn replace_columns(
    batch: RecordBatch,
    chosen: impl Fn(usize, &ArrayRef) -> bool,
    doing: &str,
    convert: impl Fn(&ArrayRef) -> ArrayRef,
) -> Result<RecordBatch> {
    if !batch.columns().iter().enumerate().any(|(i, c)| chosen(i, c)) {
        return Ok(batch);
    }
    let mut columns = Vec::with_capacity(batch.num_columns());
    let mut schema_fields = Vec::with_capacity(batch.num_columns());
    for (i, (c, f)) in batch.columns().iter().zip(batch.schema().fields()).enumerate() {
        if chosen(i, c) {
            let converted = convert(c);
            schema_fields.push(Field::new(f.name(), converted.data_type().clone(), true));
            columns.push(converted);
        } else {
            columns.push(c.clone());
            schema_fields.push(f.as_ref().clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(schema_fields)), columns).map_err(|e| Error::internal(format!("{doing}: {e}")))
}

fn float4_text(v: f32) -> String {
    if v.is_finite() && v != 0.0 {
        // The shortest digits of the float4 value itself, not of its widened float8.
        let exp = format!("{v:e}");
        return shortest(&exp, &format!("{v}"), 6);
    }
    float_text(f64::from(v), 6)
}

/// PostgreSQL's shortest-exact output (`extra_float_digits` of 1 or more, its default): plain
/// notation for decimal exponents from -4 to below `digits` (15 for float8, 6 for float4),
/// scientific with a signed two-digit exponent otherwise.
pub fn float_text(v: f64, digits: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    shortest(&format!("{v:e}"), &format!("{v}"), digits)
}

/// From Rust's shortest round-trip forms (`3e2`, `300`) to PostgreSQL's.
fn shortest(scientific: &str, plain: &str, digits: i32) -> String {
    let Some((mantissa, exp)) = scientific.split_once('e') else {
        return plain.to_string();
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..digits).contains(&exp) {
        plain.to_string()
    } else {
        format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_postgres_prints_them() {
        let cases = [
            (300.0, "300"),
            (1.5, "1.5"),
            (1e20, "1e+20"),
            (1e-7, "1e-07"),
            (1e14, "100000000000000"),
            (1e15, "1e+15"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-300, "-2.5e-300"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (-0.0, "-0"),
            (0.1 + 0.2, "0.30000000000000004"),
        ];
        for (v, expected) in cases {
            assert_eq!(float_text(v, 15), expected, "{v:?}");
        }
        assert_eq!(float4_text(0.1), "0.1");
        assert_eq!(float4_text(1_234_567.0), "1.234567e+06");
        assert_eq!(float4_text(123_456.0), "123456");
    }
}
