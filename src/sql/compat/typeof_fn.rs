//! `pg_typeof(x)`: the PostgreSQL type a client would be told `x` has, by its display name
//! (`integer`, `double precision`, `json`), from the argument's planned field.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use super::builtin::Builtin;

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgTypeof {
    signature: Signature,
}

pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(PgTypeof {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

/// The PostgreSQL type name of a field, as `format_type` prints it.
pub fn type_name(field: &Field) -> String {
    if let Some(kind) = crate::catalog::arrow::json_kind(field) {
        return kind.name().into();
    }
    // What `jsonb -> key` returns.
    if matches!(field.data_type(), DataType::Union(..)) {
        return "jsonb".into();
    }
    // An untyped NULL is `unknown` in PostgreSQL too.
    if field.data_type() == &DataType::Null {
        return "unknown".into();
    }
    let oid = arrow_pg::datatypes::field_into_pg_type(&Arc::new(field.clone()))
        .ok()
        .map(|t| t.oid() as i32);
    oid.and_then(|o| Builtin::get().type_display(o)).unwrap_or_else(|| "unknown".into())
}

impl ScalarUDFImpl for PgTypeof {
    fn name(&self) -> &str {
        "pg_typeof"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let name = args
            .arg_fields
            .first()
            .map(|f: &FieldRef| type_name(f))
            .unwrap_or_else(|| "unknown".into());
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_postgres_display_names() {
        assert_eq!(type_name(&Field::new("x", DataType::Int64, true)), "bigint");
        assert_eq!(type_name(&Field::new("x", DataType::Int32, true)), "integer");
        assert_eq!(type_name(&Field::new("x", DataType::Float64, true)), "double precision");
        assert_eq!(type_name(&Field::new("x", DataType::Utf8, true)), "text");
        assert_eq!(type_name(&Field::new("x", DataType::Boolean, true)), "boolean");
        use crate::catalog::arrow::{json_field, JsonKind};
        assert_eq!(type_name(&json_field("x", JsonKind::Json)), "json");
        assert_eq!(type_name(&json_field("x", JsonKind::Jsonb)), "jsonb");
    }
}
