//! Building catalog tables row by row against a fixed Arrow schema: a row names the columns
//! it knows, and every other column gets PostgreSQL's zero value (NULL where the column is
//! nullable, else `0`, `false` or `''`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};

/// A schema's tables by name.
pub type Tables = HashMap<&'static str, Arc<dyn TableProvider>>;

/// A schema's tables, built on first use (a failure is kept and reported each time).
#[derive(Default)]
pub struct LazyTables {
    cell: OnceLock<Result<Tables, String>>,
}

impl LazyTables {
    pub fn get(&self, schema: &str, build: impl FnOnce() -> DfResult<Tables>) -> DfResult<&Tables> {
        self.cell
            .get_or_init(|| build().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| DataFusionError::Internal(format!("building {schema}: {e}")))
    }
}

/// Rows for one schema, kept column by column.
pub struct Rows {
    schema: SchemaRef,
    columns: Vec<Vec<ScalarValue>>,
}

impl Rows {
    pub fn new(schema: SchemaRef) -> Rows {
        let columns = schema.fields().iter().map(|_| Vec::new()).collect();
        Rows { schema, columns }
    }

    /// Adds a row; `values` names columns, the others get their zero value.
    pub fn push(&mut self, values: &[(&str, ScalarValue)]) -> DfResult<()> {
        for (i, field) in self.schema.fields().iter().enumerate() {
            let v = match values.iter().find(|(n, _)| *n == field.name()) {
                Some((_, v)) if v.data_type() == *field.data_type() => v.clone(),
                Some((_, v)) if v.is_null() => ScalarValue::try_from(field.data_type())?,
                Some((_, v)) => v.cast_to(field.data_type())?,
                None => zero(field)?,
            };
            self.columns[i].push(v);
        }
        Ok(())
    }

    pub fn finish(self) -> DfResult<RecordBatch> {
        let arrays: Vec<ArrayRef> = self
            .columns
            .into_iter()
            .zip(self.schema.fields())
            .map(|(values, field)| {
                if values.is_empty() {
                    Ok(datafusion::arrow::array::new_empty_array(field.data_type()))
                } else {
                    ScalarValue::iter_to_array(values)
                }
            })
            .collect::<DfResult<_>>()?;
        Ok(RecordBatch::try_new(self.schema, arrays)?)
    }
}

/// PostgreSQL's value for a column a row does not set.
fn zero(field: &Field) -> DfResult<ScalarValue> {
    if field.is_nullable() {
        return ScalarValue::try_from(field.data_type());
    }
    Ok(match field.data_type() {
        DataType::Utf8 => ScalarValue::Utf8(Some(String::new())),
        DataType::Boolean => ScalarValue::Boolean(Some(false)),
        other => ScalarValue::new_zero(other)?,
    })
}

pub fn text(s: impl Into<String>) -> ScalarValue {
    ScalarValue::Utf8(Some(s.into()))
}

pub fn int32(n: i32) -> ScalarValue {
    ScalarValue::Int32(Some(n))
}

pub fn int16(n: i16) -> ScalarValue {
    ScalarValue::Int16(Some(n))
}

pub fn boolean(b: bool) -> ScalarValue {
    ScalarValue::Boolean(Some(b))
}

/// A list value (`int2vector`, `oid[]`, `text[]`…) of `elem` elements.
pub fn list(values: &[ScalarValue], elem: &DataType) -> ScalarValue {
    ScalarValue::List(ScalarValue::new_list_nullable(values, elem))
}

/// The type [`list`] makes.
pub fn list_type(elem: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(elem, true)))
}

/// A text column of arrays as PostgreSQL prints them (`1 2`, `{1,2}`, `{a,"b c"}`) → lists of
/// `elem`.
pub fn parse_vectors(column: &dyn Array, elem: &DataType) -> DfResult<ArrayRef> {
    let strings = datafusion::arrow::compute::cast(column, &DataType::Utf8)?;
    let strings = strings
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| datafusion::error::DataFusionError::Internal("array column is not text".into()))?;
    let values: Vec<ScalarValue> = strings
        .iter()
        .map(|s| match s {
            None => ScalarValue::try_from(&list_type(elem.clone())),
            Some(s) => {
                let items: Vec<ScalarValue> = split_array(s)
                    .into_iter()
                    .map(|item| ScalarValue::Utf8(Some(item)).cast_to(elem))
                    .collect::<DfResult<_>>()?;
                Ok(list(&items, elem))
            }
        })
        .collect::<DfResult<_>>()?;
    if values.is_empty() {
        return Ok(datafusion::arrow::array::new_empty_array(&list_type(elem.clone())));
    }
    ScalarValue::iter_to_array(values)
}

/// The elements of `{a,"b c"}` or of a space-separated vector (`1 2`).
fn split_array(text: &str) -> Vec<String> {
    let inner = text.trim();
    // PostgreSQL writes `{1,2}`; the snapshot has some as `[1, 2]`.
    let bracketed = inner.strip_prefix('{').and_then(|i| i.strip_suffix('}'));
    let Some(inner) = bracketed.or_else(|| inner.strip_prefix('[').and_then(|i| i.strip_suffix(']'))) else {
        return inner.split_whitespace().map(str::to_string).collect();
    };
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => current.extend(chars.next()),
            ',' if !quoted => out.push(std::mem::take(&mut current).trim().to_string()),
            other => current.push(other),
        }
    }
    if !inner.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Int16Type, Schema};

    #[test]
    fn missing_columns_get_zero_values() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int32, false),
            Field::new("b", DataType::Utf8, false),
            Field::new("c", DataType::Utf8, true),
            Field::new("d", DataType::Float32, false),
        ]));
        let mut rows = Rows::new(schema);
        rows.push(&[("d", ScalarValue::Float64(Some(-1.0)))]).unwrap();
        let batch = rows.finish().unwrap();
        assert_eq!(
            batch.column(0).as_primitive::<datafusion::arrow::datatypes::Int32Type>().value(0),
            0
        );
        assert_eq!(batch.column(1).as_string::<i32>().value(0), "");
        assert!(batch.column(2).is_null(0));
        assert_eq!(
            batch.column(3).as_primitive::<datafusion::arrow::datatypes::Float32Type>().value(0),
            -1.0
        );
    }

    #[test]
    fn vectors_parse_in_either_spelling() {
        let input = StringArray::from(vec![Some("1 2"), Some("[3, 4]"), None, Some("")]);
        let out = parse_vectors(&input, &DataType::Int16).unwrap();
        let out = out.as_list::<i32>();
        assert_eq!(out.value(0).as_primitive::<Int16Type>().values().to_vec(), vec![1, 2]);
        assert_eq!(out.value(1).as_primitive::<Int16Type>().values().to_vec(), vec![3, 4]);
        assert!(out.is_null(2));
        assert_eq!(out.value(3).len(), 0);
        let acl = StringArray::from(vec![Some("{postgres=arwdDxtm/postgres,\"a b\"}"), Some("{}")]);
        let out = parse_vectors(&acl, &DataType::Utf8).unwrap();
        let out = out.as_list::<i32>();
        let first = out.value(0);
        assert_eq!(
            first.as_string::<i32>().iter().flatten().collect::<Vec<_>>(),
            vec!["postgres=arwdDxtm/postgres", "a b"]
        );
        assert_eq!(out.value(1).len(), 0);
    }
}
