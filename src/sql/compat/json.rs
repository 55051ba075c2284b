//! PostgreSQL's JSON operators and functions that `datafusion-functions-json` (which gives
//! `->`, `->>` and `?`) lacks: containment `@>` and `<@`, path extraction `#>` and `#>>`
//! (with PostgreSQL's `'{a,0,b}'` paths), and `jsonb_typeof`, `jsonb_array_length`,
//! `jsonb_extract_path(_text)`, `jsonb_pretty`, `jsonb_strip_nulls`, `jsonb_build_array`,
//! `to_jsonb` under both their `json` and `jsonb` names; `jsonb_array_elements(_text)` and
//! `jsonb_object_keys` in a SELECT list through `_pg_json_elements`/`_pg_json_keys` (see
//! `syntax`). JSON values are text here.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DFSchema, DataFusionError, Result as DfResult, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{Expr, ExprSchemable, ScalarUDF};
use datafusion::sql::sqlparser::ast::BinaryOperator;
use serde_json::Value;

use super::function::{boolean, text, utf8, Arg, PgFunction};
use super::jsonb_ops::sql_to_json;
use crate::catalog::arrow::JsonKind;
use crate::catalog::jsonb;
use crate::error::Error;

fn parse(t: &str, what: &str) -> DfResult<Value> {
    serde_json::from_str(t).map_err(|e| {
        DataFusionError::External(Box::new(Error::InvalidText {
            message: format!("invalid input syntax for type json: {what} is not JSON ({e})"),
            hint: None,
        }))
    })
}

pub(super) fn json_arg(v: &ScalarValue, what: &str) -> DfResult<Option<Value>> {
    text(v).map(|t| parse(t, what)).transpose()
}

/// `a @> b` as jsonb defines it: objects by key, arrays element-wise in any order, scalars
/// by value (numbers numerically), and a top-level array contains a scalar it has.
pub fn contains(a: &Value, b: &Value, top: bool) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => y.iter().all(|(k, v)| x.get(k).is_some_and(|w| contains(w, v, false))),
        (Value::Array(x), Value::Array(y)) => y.iter().all(|v| x.iter().any(|w| contains(w, v, false))),
        (Value::Array(x), scalar) if top && !scalar.is_object() => x.iter().any(|w| same_scalar(w, scalar)),
        (x, y) => same_scalar(x, y),
    }
}

fn same_scalar(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The elements of a PostgreSQL text-array path: `{a,0,"b c"}`.
pub(super) fn path_elements(path: &str) -> Vec<String> {
    let inner = path.trim().trim_start_matches('{').trim_end_matches('}');
    if inner.is_empty() {
        return Vec::new();
    }
    inner.split(',').map(|p| p.trim().trim_matches('"').to_string()).collect()
}

/// Follows `path` (keys of objects, indexes of arrays, negative from the end).
pub fn at_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, step| match v {
        Value::Object(m) => m.get(step),
        Value::Array(items) => items.get(index_in(step.parse().ok()?, items.len())?),
        _ => None,
    })
}

/// An array index as PostgreSQL counts it: from 0, negative from the end.
pub(super) fn index_in(i: i64, len: usize) -> Option<usize> {
    usize::try_from(if i < 0 { i + len as i64 } else { i }).ok()
}

/// A JSON value as `->>` gives it: strings unquoted, null as SQL NULL.
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(jsonb::text(other)),
    }
}

fn not_a(message: &str, hint: &str) -> DataFusionError {
    DataFusionError::External(Box::new(Error::InvalidParameter {
        message: message.into(),
        hint: Some(hint.into()),
    }))
}

fn list_of(values: Vec<Option<String>>) -> ScalarValue {
    let array = datafusion::arrow::array::StringArray::from(values);
    ScalarValue::List(Arc::new(datafusion::arrow::array::ListArray::new(
        Arc::new(datafusion::arrow::datatypes::Field::new_list_field(DataType::Utf8, true)),
        datafusion::arrow::buffer::OffsetBuffer::from_lengths([datafusion::arrow::array::Array::len(&array)]),
        Arc::new(array),
        None,
    )))
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// An object's keys in jsonb's order; its values in the same order come from the map.
fn sorted_keys(m: &serde_json::Map<String, Value>) -> Vec<&String> {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort_by(|a, b| jsonb::key_order(a, b));
    keys
}

/// `jsonb_typeof`'s name of a value's type (jsonpath's `.type()` too).
pub(super) fn typeof_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A jsonpath argument, parsed; 22P02 naming where it goes wrong.
fn path_arg(v: &ScalarValue) -> DfResult<Option<super::jsonpath::JsonPath>> {
    let Some(t) = text(v) else { return Ok(None) };
    // PostgreSQL reports a malformed path as a syntax error (42601).
    super::jsonpath::parse(t).map(Some).map_err(|e| {
        DataFusionError::External(Box::new(Error::Syntax(format!(
            "syntax error in jsonpath \"{t}\" at position {}: {}; paths look like '$.key[*] ? (@.other == \"value\")'",
            e.position + 1,
            e.message
        ))))
    })
}

/// What a path yields on a value, with `vars` (a JSON object) for `$name`.
fn path_items(a: &[ScalarValue]) -> DfResult<Option<Vec<Value>>> {
    let (Some(target), Some(path)) = (json_arg(&a[0], "the first argument")?, path_arg(&a[1])?) else {
        return Ok(None);
    };
    let vars = match a.get(2).map(|v| json_arg(v, "vars")).transpose()?.flatten() {
        None => serde_json::Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(not_a(
                "\"vars\" argument is not an object",
                "pass the path's variables as a JSON object: '{\"min\": 1}'",
            ))
        }
    };
    Ok(Some(super::jsonpath::query(&path, &target, &vars)))
}

pub fn functions() -> Vec<ScalarUDF> {
    let mut out = Vec::new();
    let text_list_type = DataType::List(Arc::new(datafusion::arrow::datatypes::Field::new_list_field(DataType::Utf8, true)));
    // Not strict: a NULL vars argument means none.
    out.push(
        PgFunction::new("_pg_json_path_query", &[Arg::Text, Arg::Text, Arg::Text], 2, text_list_type, |a| {
            if a[0].is_null() || a[1].is_null() {
                return Ok(list_of(Vec::new()));
            }
            let items = path_items(a)?.unwrap_or_default();
            Ok(list_of(items.iter().map(|v| Some(jsonb::text(v))).collect()))
        })
        .lenient()
        .udf(),
    );
    out.push(
        PgFunction::new(
            "jsonb_path_query_array",
            &[Arg::Text, Arg::Text, Arg::Text, Arg::Bool],
            2,
            DataType::Utf8,
            |a| Ok(utf8(path_items(a)?.map(|items| jsonb::text(&Value::Array(items))))),
        )
        .takes_json()
        .returns_json(JsonKind::Jsonb)
        .udf(),
    );
    out.push(
        PgFunction::new(
            "jsonb_path_query_first",
            &[Arg::Text, Arg::Text, Arg::Text, Arg::Bool],
            2,
            DataType::Utf8,
            |a| Ok(utf8(path_items(a)?.and_then(|items| items.first().map(jsonb::text)))),
        )
        .takes_json()
        .returns_json(JsonKind::Jsonb)
        .udf(),
    );
    out.push(
        PgFunction::new(
            "jsonb_path_exists",
            &[Arg::Text, Arg::Text, Arg::Text, Arg::Bool],
            2,
            DataType::Boolean,
            |a| Ok(ScalarValue::Boolean(path_items(a)?.map(|items| !items.is_empty()))),
        )
        .takes_json()
        .udf(),
    );
    out.push(
        PgFunction::new(
            "jsonb_path_match",
            &[Arg::Text, Arg::Text, Arg::Text, Arg::Bool],
            2,
            DataType::Boolean,
            |a| match path_items(a)?.as_deref() {
                None | Some([Value::Null]) => Ok(ScalarValue::Boolean(None)),
                Some([Value::Bool(b)]) => Ok(ScalarValue::Boolean(Some(*b))),
                Some(_) => Err(DataFusionError::External(Box::new(Error::InvalidParameter {
                    message: "single boolean result is expected".into(),
                    hint: Some("jsonb_path_match and @@ take a predicate such as '$.a > 1'; use jsonb_path_exists or @? for a path".into()),
                }))),
            },
        )
        .takes_json()
        .udf(),
    );
    out.push(
        PgFunction::new("_pg_json_checked", &[Arg::Text, Arg::Bool], 1, DataType::Utf8, |a| {
            let Some(t) = text(&a[0]) else { return Ok(utf8(None)) };
            parse(t, "the value")?;
            let canonical = a.get(1).and_then(boolean).unwrap_or(false);
            Ok(utf8(Some(if canonical {
                jsonb::canonical(t).unwrap_or_else(|| t.to_string())
            } else {
                t.to_string()
            })))
        })
        .udf(),
    );
    out.push(
        PgFunction::new("_pg_json_contains", &[Arg::Text, Arg::Text], 2, DataType::Boolean, |a| {
            let (x, y) = (
                json_arg(&a[0], "the left operand of @>")?,
                json_arg(&a[1], "the right operand of @>")?,
            );
            Ok(ScalarValue::Boolean(x.zip(y).map(|(x, y)| contains(&x, &y, true))))
        })
        .udf(),
    );
    for (name, as_text_result) in [("_pg_json_path", false), ("_pg_json_path_text", true)] {
        let udf = PgFunction::new(name, &[Arg::Text, Arg::Text], 2, DataType::Utf8, move |a| {
            let Some(v) = json_arg(&a[0], "the left operand of #>")? else {
                return Ok(utf8(None));
            };
            let path = path_elements(text(&a[1]).unwrap_or_default());
            let found = at_path(&v, &path);
            Ok(utf8(if as_text_result {
                found.and_then(as_text)
            } else {
                found.map(jsonb::text)
            }))
        });
        out.push(if as_text_result { udf } else { udf.returns_json(JsonKind::Jsonb) }.udf());
    }
    for (prefix, kind) in [("json", JsonKind::Json), ("jsonb", JsonKind::Jsonb)] {
        out.push(
            PgFunction::new(&format!("{prefix}_typeof"), &[Arg::Text], 1, DataType::Utf8, |a| {
                Ok(utf8(json_arg(&a[0], "the argument")?.map(|v| typeof_name(&v).to_string())))
            })
            .takes_json()
            .udf(),
        );
        out.push(
            PgFunction::new(
                &format!("{prefix}_array_length"),
                &[Arg::Text],
                1,
                DataType::Int32,
                |a| match json_arg(&a[0], "the argument")? {
                    None => Ok(ScalarValue::Int32(None)),
                    Some(Value::Array(items)) => Ok(ScalarValue::Int32(i32::try_from(items.len()).ok())),
                    Some(_) => Err(DataFusionError::External(Box::new(Error::InvalidParameter {
                        message: "cannot get array length of a non-array".into(),
                        hint: Some("check jsonb_typeof(x) = 'array' first".into()),
                    }))),
                },
            )
            .takes_json()
            .udf(),
        );
        for (suffix, as_text_result) in [("extract_path", false), ("extract_path_text", true)] {
            let udf = PgFunction::new(&format!("{prefix}_{suffix}"), &[Arg::Text; 64], 1, DataType::Utf8, move |a| {
                let Some(v) = json_arg(&a[0], "the first argument")? else {
                    return Ok(utf8(None));
                };
                let path: Vec<String> = a[1..].iter().filter_map(|p| text(p).map(str::to_string)).collect();
                let found = at_path(&v, &path);
                Ok(utf8(if as_text_result {
                    found.and_then(as_text)
                } else {
                    found.map(jsonb::text)
                }))
            });
            let udf = udf.takes_json();
            out.push(if as_text_result { udf } else { udf.returns_json(kind) }.udf());
        }
        out.push(
            PgFunction::new(&format!("{prefix}_strip_nulls"), &[Arg::Text], 1, DataType::Utf8, |a| {
                Ok(utf8(json_arg(&a[0], "the argument")?.map(|v| jsonb::text(&strip_nulls(v)))))
            })
            .takes_json()
            .returns_json(kind)
            .udf(),
        );
        out.push(
            PgFunction::json_aware(&format!("{prefix}_build_array"), &[Arg::Any; 100], 0, DataType::Utf8, |a, json| {
                let items = a.iter().zip(json).map(|(v, j)| sql_to_json(v, *j)).collect();
                Ok(utf8(Some(jsonb::text(&Value::Array(items)))))
            })
            .lenient()
            .returns_json(kind)
            .udf(),
        );
        out.push(
            PgFunction::json_aware(&format!("to_{prefix}"), &[Arg::Any], 1, DataType::Utf8, |a, json| {
                Ok(utf8((!a[0].is_null()).then(|| jsonb::text(&sql_to_json(&a[0], json[0])))))
            })
            .lenient()
            .returns_json(kind)
            .udf(),
        );
    }
    let text_list = DataType::List(Arc::new(datafusion::arrow::datatypes::Field::new_list_field(DataType::Utf8, true)));
    out.push(
        PgFunction::new("_pg_json_elements", &[Arg::Text, Arg::Bool], 2, text_list.clone(), |a| {
            let as_text_elements = boolean(&a[1]).unwrap_or(false);
            let items = match json_arg(&a[0], "the argument")? {
                None => Vec::new(),
                Some(Value::Array(items)) => items,
                Some(_) => {
                    return Err(not_a(
                        "cannot extract elements from a non-array",
                        "check jsonb_typeof(x) = 'array' first",
                    ))
                }
            };
            let values: Vec<Option<String>> = items
                .iter()
                .map(|v| if as_text_elements { as_text(v) } else { Some(jsonb::text(v)) })
                .collect();
            Ok(list_of(values))
        })
        .udf(),
    );
    out.push(
        PgFunction::new("_pg_json_keys", &[Arg::Text], 1, text_list.clone(), |a| {
            let keys = match json_arg(&a[0], "the argument")? {
                None => Vec::new(),
                Some(Value::Object(m)) => sorted_keys(&m).into_iter().map(|k| Some(k.clone())).collect(),
                Some(_) => {
                    return Err(not_a(
                        "cannot call jsonb_object_keys on a non-object",
                        "check jsonb_typeof(x) = 'object' first",
                    ))
                }
            };
            Ok(list_of(keys))
        })
        .udf(),
    );
    out.push(
        PgFunction::new("_pg_json_values", &[Arg::Text, Arg::Bool], 2, text_list.clone(), |a| {
            let as_text_values = boolean(&a[1]).unwrap_or(false);
            let values = match json_arg(&a[0], "the argument")? {
                None => Vec::new(),
                Some(Value::Object(m)) => sorted_keys(&m)
                    .into_iter()
                    .map(|k| &m[k])
                    .map(|v| if as_text_values { as_text(v) } else { Some(jsonb::text(v)) })
                    .collect(),
                Some(_) => {
                    return Err(not_a(
                        "cannot call jsonb_each on a non-object",
                        "check jsonb_typeof(x) = 'object' first",
                    ))
                }
            };
            Ok(list_of(values))
        })
        .udf(),
    );
    out.push(
        PgFunction::new("jsonb_pretty", &[Arg::Text], 1, DataType::Utf8, |a| {
            let v = json_arg(&a[0], "the argument")?;
            Ok(utf8(v.map(|v| jsonb::pretty(&v))))
        })
        .takes_json()
        .udf(),
    );
    out
}

/// Plans `@>`, `<@`, `#>` and `#>>` on text operands (JSON here) before
/// `datafusion-functions-json`, which knows no containment and reads `#>` paths as keys.
#[derive(Debug)]
pub struct JsonOperators {
    contains: Arc<ScalarUDF>,
    path: Arc<ScalarUDF>,
    path_text: Arc<ScalarUDF>,
    path_exists: Arc<ScalarUDF>,
    path_match: Arc<ScalarUDF>,
    concat: Arc<ScalarUDF>,
    delete: Arc<ScalarUDF>,
    delete_path: Arc<ScalarUDF>,
    exists_any: Arc<ScalarUDF>,
    exists_all: Arc<ScalarUDF>,
    eq: Arc<ScalarUDF>,
    ne: Arc<ScalarUDF>,
    element: Arc<ScalarUDF>,
    element_text: Arc<ScalarUDF>,
}

impl JsonOperators {
    pub fn new(udfs: &[ScalarUDF]) -> Option<JsonOperators> {
        let find = |name: &str| udfs.iter().find(|u| u.name() == name).cloned().map(Arc::new);
        Some(JsonOperators {
            contains: find("_pg_json_contains")?,
            path: find("_pg_json_path")?,
            path_text: find("_pg_json_path_text")?,
            path_exists: find("jsonb_path_exists")?,
            path_match: find("jsonb_path_match")?,
            concat: find("_pg_jsonb_concat")?,
            delete: find("_pg_jsonb_delete")?,
            delete_path: find("_pg_jsonb_delete_path")?,
            exists_any: find("_pg_jsonb_exists_any")?,
            exists_all: find("_pg_jsonb_exists_all")?,
            eq: find("_pg_jsonb_eq")?,
            ne: find("_pg_jsonb_ne")?,
            element: find("_pg_jsonb_element")?,
            element_text: find("_pg_jsonb_element_text")?,
        })
    }
}

/// Whether an expression is JSON (a json or jsonb column, cast or function), which decides
/// what `||`, `-` and `=` mean.
fn is_integer(e: &Expr, schema: &DFSchema) -> bool {
    e.get_type(schema).is_ok_and(|t| t.is_integer())
}

fn is_json_typed(e: &Expr, schema: &DFSchema) -> bool {
    e.to_field(schema).is_ok_and(|(_, f)| crate::catalog::arrow::is_json(&f))
}

fn is_text(e: &Expr, schema: &DFSchema) -> bool {
    e.get_type(schema)
        .is_ok_and(|t| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View))
}

impl ExprPlanner for JsonOperators {
    fn plan_binary_op(&self, expr: RawBinaryExpr, schema: &DFSchema) -> DfResult<PlannerResult<RawBinaryExpr>> {
        let call = |udf: &Arc<ScalarUDF>, args: Vec<Expr>| Expr::ScalarFunction(ScalarFunction::new_udf(udf.clone(), args));
        let planned = match &expr.op {
            BinaryOperator::AtArrow if is_text(&expr.left, schema) => call(&self.contains, vec![expr.left.clone(), expr.right.clone()]),
            BinaryOperator::ArrowAt if is_text(&expr.right, schema) => call(&self.contains, vec![expr.right.clone(), expr.left.clone()]),
            BinaryOperator::HashArrow if is_text(&expr.left, schema) => call(&self.path, vec![expr.left.clone(), expr.right.clone()]),
            BinaryOperator::HashLongArrow if is_text(&expr.left, schema) => {
                call(&self.path_text, vec![expr.left.clone(), expr.right.clone()])
            }
            BinaryOperator::Arrow if is_json_typed(&expr.left, schema) && is_integer(&expr.right, schema) => {
                call(&self.element, vec![expr.left.clone(), expr.right.clone()])
            }
            BinaryOperator::LongArrow if is_json_typed(&expr.left, schema) && is_integer(&expr.right, schema) => {
                call(&self.element_text, vec![expr.left.clone(), expr.right.clone()])
            }
            BinaryOperator::Question if is_text(&expr.left, schema) => call(&self.exists_any, vec![expr.left.clone(), expr.right.clone()]),
            BinaryOperator::AtQuestion if is_text(&expr.left, schema) => {
                call(&self.path_exists, vec![expr.left.clone(), expr.right.clone()])
            }
            BinaryOperator::AtAt if is_text(&expr.left, schema) => call(&self.path_match, vec![expr.left.clone(), expr.right.clone()]),
            BinaryOperator::HashMinus if is_text(&expr.left, schema) => {
                call(&self.delete_path, vec![expr.left.clone(), expr.right.clone()])
            }
            BinaryOperator::QuestionPipe if is_text(&expr.left, schema) => {
                call(&self.exists_any, vec![expr.left.clone(), expr.right.clone()])
            }
            BinaryOperator::QuestionAnd if is_text(&expr.left, schema) => {
                call(&self.exists_all, vec![expr.left.clone(), expr.right.clone()])
            }
            BinaryOperator::StringConcat if is_json_typed(&expr.left, schema) || is_json_typed(&expr.right, schema) => {
                call(&self.concat, vec![expr.left.clone(), expr.right.clone()])
            }
            BinaryOperator::Minus if is_json_typed(&expr.left, schema) => call(&self.delete, vec![expr.left.clone(), expr.right.clone()]),
            BinaryOperator::Eq if is_json_typed(&expr.left, schema) && is_json_typed(&expr.right, schema) => {
                call(&self.eq, vec![expr.left.clone(), expr.right.clone()])
            }
            BinaryOperator::NotEq if is_json_typed(&expr.left, schema) && is_json_typed(&expr.right, schema) => {
                call(&self.ne, vec![expr.left.clone(), expr.right.clone()])
            }
            _ => return Ok(PlannerResult::Original(expr)),
        };
        Ok(PlannerResult::Planned(planned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containment_as_jsonb_defines_it() {
        assert!(contains(&json!([1, 2, 3]), &json!([3, 1]), true));
        assert!(contains(&json!([1, 2, 3]), &json!(2), true));
        assert!(
            !contains(&json!([[1, 2]]), &json!(1), true),
            "only the top level array contains scalars"
        );
        assert!(contains(&json!({"a": 1, "b": {"c": [1, 2]}}), &json!({"b": {"c": [2]}}), true));
        assert!(!contains(&json!({"a": 1}), &json!({"a": 1, "b": 2}), true));
        assert!(contains(&json!([{"Key": "env", "Value": "prod"}]), &json!([{"Key": "env"}]), true));
        assert!(contains(&json!(1.0), &json!(1), true), "numbers compare by value");
        assert!(!contains(&json!("1"), &json!(1), true));
    }

    #[test]
    fn paths_follow_keys_and_indexes() {
        let v = json!({"a": [{"b": "x"}, {"b": null}], "n": 1});
        assert_eq!(path_elements("{a,0,b}"), vec!["a", "0", "b"]);
        assert_eq!(at_path(&v, &path_elements("{a,0,b}")), Some(&json!("x")));
        assert_eq!(at_path(&v, &path_elements("{a,-1}")), Some(&json!({"b": null})));
        assert_eq!(at_path(&v, &path_elements("{a,9}")), None);
        assert_eq!(at_path(&v, &path_elements("{}")), Some(&v));
        assert_eq!(as_text(&json!("x")).as_deref(), Some("x"));
        assert_eq!(as_text(&json!({"k": 1})).as_deref(), Some("{\"k\": 1}"));
        assert_eq!(strip_nulls(json!({"a": null, "b": [null, {"c": null}]})), json!({"b": [null, {}]}));
        assert_eq!(
            jsonb::pretty(&json!({"a": ["x  y"]})),
            "{\n    \"a\": [\n        \"x  y\"\n    ]\n}"
        );
    }
}
