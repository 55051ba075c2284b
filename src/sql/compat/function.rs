//! A PostgreSQL function as a DataFusion scalar UDF: declared parameters (coerced the way
//! PostgreSQL resolves `oid`, `text` and `bool` arguments), optional trailing ones, and a body
//! evaluated row by row. Catalog functions run over catalog-sized inputs, so clarity wins over
//! vectorisation here.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{new_empty_array, ArrayRef};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{plan_err, Result as DfResult, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

/// What a parameter accepts, and the type its argument is coerced to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arg {
    /// An OID or any integer: `Int64`.
    Oid,
    /// Text: `Utf8`.
    Text,
    /// A boolean.
    Bool,
    /// Any type, passed as it is.
    Any,
}

impl Arg {
    fn coerced(self, given: &DataType) -> DataType {
        match self {
            Arg::Oid => DataType::Int64,
            Arg::Text => DataType::Utf8,
            Arg::Bool => DataType::Boolean,
            Arg::Any => given.clone(),
        }
    }
}

/// A function's body: given one row's arguments and which of them are JSON (text of a json or
/// jsonb column, which `to_jsonb` embeds as JSON rather than as a string).
type Body = dyn Fn(&[ScalarValue], &[bool]) -> DfResult<ScalarValue> + Send + Sync;

/// A function over rows of [`ScalarValue`]s.
pub struct PgFunction {
    name: String,
    params: Vec<Arg>,
    required: usize,
    returns: DataType,
    /// The JSON type its text result is, reported to clients as that type.
    json: Option<crate::catalog::arrow::JsonKind>,
    /// Whether its first argument must be JSON (a json or jsonb value, or a literal).
    takes_json: bool,
    /// PostgreSQL's STRICT: a NULL argument gives NULL without calling the body.
    strict: bool,
    signature: Signature,
    body: Arc<Body>,
}

impl PgFunction {
    /// A function taking `params`, of which the first `required` must be given.
    pub fn new(
        name: &str,
        params: &[Arg],
        required: usize,
        returns: DataType,
        body: impl Fn(&[ScalarValue]) -> DfResult<ScalarValue> + Send + Sync + 'static,
    ) -> PgFunction {
        PgFunction::json_aware(name, params, required, returns, move |args, _| body(args))
    }

    /// A function whose body also learns which arguments are JSON.
    pub fn json_aware(
        name: &str,
        params: &[Arg],
        required: usize,
        returns: DataType,
        body: impl Fn(&[ScalarValue], &[bool]) -> DfResult<ScalarValue> + Send + Sync + 'static,
    ) -> PgFunction {
        PgFunction {
            name: name.to_string(),
            params: params.to_vec(),
            required,
            returns,
            json: None,
            takes_json: false,
            strict: true,
            // Volatile: never folded at planning time, so per-session state is read when the
            // statement runs, and catalog lookups never run during optimisation.
            signature: Signature::user_defined(Volatility::Volatile),
            body: Arc::new(body),
        }
    }

    /// Called even when an argument is NULL.
    /// Its text result is JSON of this type.
    pub fn returns_json(mut self, kind: crate::catalog::arrow::JsonKind) -> PgFunction {
        self.json = Some(kind);
        self
    }

    /// Its first argument must be JSON: a text column is refused at planning (42883), as
    /// PostgreSQL has no such function of text; literals and parameters are taken as JSON.
    pub fn takes_json(mut self) -> PgFunction {
        self.takes_json = true;
        self
    }

    pub fn lenient(mut self) -> PgFunction {
        self.strict = false;
        self
    }

    pub fn udf(self) -> ScalarUDF {
        ScalarUDF::new_from_impl(self)
    }

    fn null(&self) -> DfResult<ScalarValue> {
        ScalarValue::try_from(&self.returns)
    }
}

impl PgFunction {
    /// Refuses a first argument that is a column or expression of a non-JSON type.
    fn check_json_argument(&self, args: &datafusion::logical_expr::ReturnFieldArgs) -> DfResult<()> {
        let Some(first) = args.arg_fields.first() else { return Ok(()) };
        let literal = args.scalar_arguments.first().is_some_and(Option::is_some);
        let json_like = crate::catalog::arrow::is_json(first) || matches!(first.data_type(), DataType::Null | DataType::Union(..));
        if literal || json_like {
            return Ok(());
        }
        let types: Vec<String> = args.arg_fields.iter().map(|f| super::typeof_fn::type_name(f)).collect();
        Err(datafusion::common::DataFusionError::External(Box::new(
            crate::error::Error::NoFunctionSignature {
                signature: format!("{}({})", self.name, types.join(", ")),
                hint: format!(
                    "No function matches the given name and argument types: {} takes jsonb; cast the argument (x::jsonb)",
                    self.name
                ),
            },
        )))
    }
}

impl std::fmt::Debug for PgFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgFunction({})", self.name)
    }
}

impl PartialEq for PgFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.params == other.params && Arc::ptr_eq(&self.body, &other.body)
    }
}

impl Eq for PgFunction {}

impl Hash for PgFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.params.hash(state);
    }
}

impl ScalarUDFImpl for PgFunction {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(self.returns.clone())
    }

    fn return_field_from_args(&self, args: datafusion::logical_expr::ReturnFieldArgs) -> DfResult<datafusion::arrow::datatypes::FieldRef> {
        if self.takes_json {
            self.check_json_argument(&args)?;
        }
        let field = match self.json {
            Some(kind) => crate::catalog::arrow::json_field(&self.name, kind),
            None => datafusion::arrow::datatypes::Field::new(&self.name, self.returns.clone(), true),
        };
        Ok(Arc::new(field))
    }

    fn coerce_types(&self, given: &[DataType]) -> DfResult<Vec<DataType>> {
        if given.len() < self.required || given.len() > self.params.len() {
            let expected = if self.required == self.params.len() {
                self.required.to_string()
            } else {
                format!("{} to {}", self.required, self.params.len())
            };
            return plan_err!(
                "function {}() takes {expected} arguments, not {}: No function matches the given name and argument types",
                self.name,
                given.len()
            );
        }
        Ok(given.iter().zip(&self.params).map(|(t, p)| p.coerced(t)).collect())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        if rows == 0 {
            return Ok(ColumnarValue::Array(new_empty_array(&self.returns)));
        }
        let arrays: Vec<ArrayRef> = args.args.iter().map(|a| a.to_array(rows)).collect::<DfResult<_>>()?;
        let json: Vec<bool> = args.arg_fields.iter().map(|f| crate::catalog::arrow::is_json(f)).collect();
        let mut out = Vec::with_capacity(rows);
        let mut row = Vec::with_capacity(arrays.len());
        for i in 0..rows {
            row.clear();
            for a in &arrays {
                row.push(ScalarValue::try_from_array(a, i)?);
            }
            let value = if self.strict && row.iter().any(ScalarValue::is_null) {
                self.null()?
            } else {
                (self.body)(&row, &json)?
            };
            out.push(if value.is_null() { self.null()? } else { value });
        }
        let array = ScalarValue::iter_to_array(out)?;
        let array = if array.data_type() == &self.returns {
            array
        } else {
            datafusion::arrow::compute::cast(&array, &self.returns)?
        };
        Ok(ColumnarValue::Array(array))
    }
}

/// The integer in a coerced [`Arg::Oid`] argument.
pub fn oid(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Int64(x) => *x,
        ScalarValue::Int32(x) => x.map(i64::from),
        ScalarValue::Int16(x) => x.map(i64::from),
        ScalarValue::UInt32(x) => x.map(i64::from),
        _ => None,
    }
}

/// The text in a coerced [`Arg::Text`] argument.
pub fn text(v: &ScalarValue) -> Option<&str> {
    match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => Some(s),
        _ => None,
    }
}

/// The boolean in a coerced [`Arg::Bool`] argument.
pub fn boolean(v: &ScalarValue) -> Option<bool> {
    match v {
        ScalarValue::Boolean(b) => *b,
        _ => None,
    }
}

pub fn utf8(s: Option<String>) -> ScalarValue {
    ScalarValue::Utf8(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::Field;

    fn call(f: &PgFunction, args: Vec<ColumnarValue>, rows: usize) -> DfResult<ArrayRef> {
        let arg_fields = args.iter().map(|a| Arc::new(Field::new("a", a.data_type(), true))).collect();
        let out = f.invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields,
            number_rows: rows,
            return_field: Arc::new(Field::new("r", f.returns.clone(), true)),
            config_options: Arc::new(Default::default()),
        })?;
        out.to_array(rows)
    }

    #[test]
    fn strict_functions_return_null_for_null_arguments() {
        let f = PgFunction::new("twice", &[Arg::Oid], 1, DataType::Utf8, |a| {
            Ok(utf8(oid(&a[0]).map(|n| (n * 2).to_string())))
        });
        let input: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(4)]));
        let out = call(&f, vec![ColumnarValue::Array(input)], 3).unwrap();
        let out = out.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(out.value(0), "2");
        assert!(out.is_null(1));
        assert_eq!(out.value(2), "8");
    }

    #[test]
    fn argument_counts_are_checked() {
        let f = PgFunction::new("f", &[Arg::Oid, Arg::Bool], 1, DataType::Utf8, |_| Ok(utf8(None)));
        assert_eq!(f.coerce_types(&[DataType::Int32]).unwrap(), vec![DataType::Int64]);
        assert!(f.coerce_types(&[]).unwrap_err().to_string().contains("takes 1 to 2 arguments"));
        assert!(f.coerce_types(&[DataType::Int32, DataType::Boolean, DataType::Utf8]).is_err());
    }
}
