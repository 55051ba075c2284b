//! jsonb's operators that build or test values: `||` (concatenate), `-` and `#-` (delete),
//! `?|` and `?&` (any or all keys), `=` and `<>` by value (`1.0 = 1`), `jsonb_set`, and the
//! aggregates `jsonb_agg`/`json_agg`/`jsonb_object_agg`, which the syntax rewrite makes
//! `array_agg` of `to_jsonb` values finished by `_pg_json_agg_list`/`_pg_json_object_list`.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};
use datafusion::logical_expr::ScalarUDF;
use serde_json::{Map, Value};

use super::function::{boolean, text, utf8, Arg, PgFunction};
use super::functions::json_value;
use super::json::{index_in, json_arg};
use crate::catalog::arrow::JsonKind;
use crate::catalog::jsonb;
use crate::error::Error;

fn invalid(message: String, hint: &str) -> DataFusionError {
    DataFusionError::External(Box::new(Error::InvalidParameter {
        message,
        hint: Some(hint.into()),
    }))
}

/// A SQL value as JSON: JSON text (a json or jsonb argument) as the value it holds, other
/// values as `to_jsonb` makes them.
pub fn sql_to_json(v: &ScalarValue, is_json: bool) -> Value {
    if is_json {
        if let Some(parsed) = text(v).and_then(|t| serde_json::from_str(t).ok()) {
            return parsed;
        }
    }
    json_value(v)
}

/// The text elements of a `text[]` argument, or of PostgreSQL's `'{a,b}'` array text.
fn text_list(v: &ScalarValue) -> Option<Vec<String>> {
    match v {
        ScalarValue::List(list) if list.len() == 1 && !list.is_null(0) => {
            let items = datafusion::arrow::compute::cast(&list.value(0), &DataType::Utf8).ok()?;
            Some(items.as_string::<i32>().iter().flatten().map(str::to_string).collect())
        }
        other => text(other).map(super::json::path_elements),
    }
}

/// `a || b` on jsonb: objects merge (the right side wins), arrays concatenate, anything else
/// is an element of an array.
pub fn concat(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Object(mut x), Value::Object(y)) => {
            x.extend(y);
            Value::Object(x)
        }
        (Value::Array(mut x), Value::Array(y)) => {
            x.extend(y);
            Value::Array(x)
        }
        (Value::Array(mut x), y) => {
            x.push(y);
            Value::Array(x)
        }
        (x, Value::Array(y)) => Value::Array(std::iter::once(x).chain(y).collect()),
        (x, y) => Value::Array(vec![x, y]),
    }
}

/// `a - key` (an object's key, or an array's string elements), `a - index`, `a - keys`.
fn delete(a: Value, what: &ScalarValue) -> DfResult<Value> {
    let scalar = || invalid("cannot delete from scalar".into(), "apply - to an object or an array");
    if let Some(index) = integer(what) {
        let Value::Array(mut items) = a else {
            return match a {
                Value::Object(_) => Err(invalid(
                    "cannot delete from object using integer index".into(),
                    "delete an object's key with a text operand",
                )),
                _ => Err(scalar()),
            };
        };
        let at = if index < 0 { index + items.len() as i64 } else { index };
        if let Ok(at) = usize::try_from(at) {
            if at < items.len() {
                items.remove(at);
            }
        }
        return Ok(Value::Array(items));
    }
    let keys = match what {
        ScalarValue::List(_) => text_list(what).unwrap_or_default(),
        other => text(other).map(|k| vec![k.to_string()]).unwrap_or_default(),
    };
    match a {
        Value::Object(m) => Ok(Value::Object(m.into_iter().filter(|(k, _)| !keys.contains(k)).collect())),
        Value::Array(items) => Ok(Value::Array(
            items
                .into_iter()
                .filter(|v| !matches!(v, Value::String(s) if keys.contains(s)))
                .collect(),
        )),
        _ => Err(scalar()),
    }
}

fn integer(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Int64(x) => *x,
        ScalarValue::Int32(x) => x.map(i64::from),
        ScalarValue::Int16(x) => x.map(i64::from),
        ScalarValue::Int8(x) => x.map(i64::from),
        _ => None,
    }
}

/// `a #- path`: the value without what the path reaches.
fn delete_path(a: Value, path: &[String]) -> DfResult<Value> {
    let Some((last, parents)) = path.split_last() else { return Ok(a) };
    if !a.is_object() && !a.is_array() {
        return Err(invalid("cannot delete path in scalar".into(), "apply #- to an object or an array"));
    }
    // An empty object or array has nothing to delete, whatever the path.
    if a.as_array().is_some_and(Vec::is_empty) || a.as_object().is_some_and(Map::is_empty) {
        return Ok(a);
    }
    check_array_steps(&a, path)?;
    let mut a = a;
    if let Some(parent) = step_mut(&mut a, parents) {
        match parent {
            Value::Object(m) => {
                m.shift_remove(last);
            }
            Value::Array(items) => {
                if let Some(at) = array_index(last, items.len()) {
                    if at < items.len() {
                        items.remove(at);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(a)
}

/// The gathered keys and values of an object aggregate, in order; `None` when no row came.
fn object_pairs(keys: &ScalarValue, values: &ScalarValue) -> DfResult<Option<Vec<(String, Value)>>> {
    let (Some(keys), Some(values)) = (text_items(keys)?, json_items(values)?) else {
        return Ok(None);
    };
    keys.into_iter()
        .zip(values)
        .map(|(k, v)| match k {
            Some(k) => Ok((k, v)),
            None => Err(invalid("field name must not be null".into(), "filter out NULL keys first")),
        })
        .collect::<DfResult<Vec<_>>>()
        .map(Some)
}

/// PostgreSQL refuses a path whose step into an array is not an integer (22P02).
fn check_array_steps(v: &Value, path: &[String]) -> DfResult<()> {
    let mut at = v;
    for (i, step) in path.iter().enumerate() {
        match at {
            Value::Array(items) => {
                let Ok(index) = step.trim().parse::<i64>() else {
                    return Err(DataFusionError::External(Box::new(Error::InvalidText {
                        message: format!("path element at position {} is not an integer: \"{step}\"", i + 1),
                        hint: Some("arrays are reached by index: '{tags,0,Key}'".into()),
                    })));
                };
                match index_in(index, items.len()).and_then(|k| items.get(k)) {
                    Some(next) => at = next,
                    None => return Ok(()),
                }
            }
            Value::Object(m) => match m.get(step) {
                Some(next) => at = next,
                None => return Ok(()),
            },
            _ => return Ok(()),
        }
    }
    Ok(())
}

fn array_index(step: &str, len: usize) -> Option<usize> {
    index_in(step.trim().parse().ok()?, len)
}

fn step_mut<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, step| match v {
        Value::Object(m) => m.get_mut(step),
        Value::Array(items) => {
            let at = array_index(step, items.len())?;
            items.get_mut(at)
        }
        _ => None,
    })
}

/// `jsonb_set(target, path, new, create_missing)`: replaces what the path reaches, or adds
/// it (the last step's key to an object, at the index to an array) when asked to.
fn set(mut target: Value, path: &[String], new: Value, create_missing: bool) -> Value {
    let Some((last, parents)) = path.split_last() else { return target };
    if let Some(parent) = step_mut(&mut target, parents) {
        match parent {
            Value::Object(m) if m.contains_key(last) || create_missing => {
                m.insert(last.clone(), new);
            }
            Value::Array(items) => {
                if let Ok(i) = last.trim().parse::<i64>() {
                    let len = items.len() as i64;
                    let at = if i < 0 { i + len } else { i };
                    if (0..len).contains(&at) {
                        items[at as usize] = new;
                    } else if create_missing {
                        if at < 0 {
                            items.insert(0, new);
                        } else {
                            items.push(new);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    target
}

/// `a -> i`: an array's element (negative from the end). PostgreSQL stores a scalar as an
/// array of one, so index 0 (or -1) of a scalar is the scalar itself.
fn element(v: &Value, i: i64) -> Option<&Value> {
    match v {
        Value::Array(items) => index_in(i, items.len()).and_then(|at| items.get(at)),
        Value::Object(_) => None,
        scalar => matches!(i, 0 | -1).then_some(scalar),
    }
}

/// Whether jsonb's `?` would find `key`: an object's key, an array's string element, or the
/// string itself.
fn has_key(v: &Value, key: &str) -> bool {
    match v {
        Value::Object(m) => m.contains_key(key),
        Value::Array(items) => items.iter().any(|i| matches!(i, Value::String(s) if s == key)),
        Value::String(s) => s == key,
        _ => false,
    }
}

/// jsonb equality: numbers by value, objects regardless of key order.
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| equal(x, y)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w))),
        _ => a == b,
    }
}

fn jsonb_text(v: Option<Value>) -> ScalarValue {
    utf8(v.map(|v| jsonb::text(&v)))
}

/// The values of a list of `to_jsonb` texts.
fn json_items(v: &ScalarValue) -> DfResult<Option<Vec<Value>>> {
    let parse = |t: Option<String>| t.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
    Ok(text_items(v)?.map(|items| items.into_iter().map(parse).collect()))
}

pub fn functions() -> Vec<ScalarUDF> {
    let jsonb_fn = |name: &str, params: &[Arg], required: usize, body: fn(&[ScalarValue]) -> DfResult<ScalarValue>| {
        PgFunction::new(name, params, required, DataType::Utf8, body)
            .returns_json(JsonKind::Jsonb)
            .udf()
    };
    let mut out = vec![
        jsonb_fn("_pg_jsonb_concat", &[Arg::Text, Arg::Text], 2, |a| {
            let (x, y) = (
                json_arg(&a[0], "the left operand of ||")?,
                json_arg(&a[1], "the right operand of ||")?,
            );
            Ok(jsonb_text(x.zip(y).map(|(x, y)| concat(x, y))))
        }),
        jsonb_fn("_pg_jsonb_delete", &[Arg::Text, Arg::Any], 2, |a| {
            let Some(x) = json_arg(&a[0], "the left operand of -")? else {
                return Ok(utf8(None));
            };
            Ok(jsonb_text(Some(delete(x, &a[1])?)))
        }),
        jsonb_fn("_pg_jsonb_delete_path", &[Arg::Text, Arg::Any], 2, |a| {
            let Some(x) = json_arg(&a[0], "the left operand of #-")? else {
                return Ok(utf8(None));
            };
            let path = text_list(&a[1]).unwrap_or_default();
            Ok(jsonb_text(Some(delete_path(x, &path)?)))
        }),
        PgFunction::new("jsonb_set", &[Arg::Text, Arg::Any, Arg::Text, Arg::Bool], 3, DataType::Utf8, |a| {
            let Some(target) = json_arg(&a[0], "the target")? else {
                return Ok(utf8(None));
            };
            let Some(new) = json_arg(&a[2], "the new value")? else {
                return Ok(utf8(None));
            };
            let path = text_list(&a[1]).unwrap_or_default();
            let create = a.get(3).and_then(boolean).unwrap_or(true);
            if !target.is_object() && !target.is_array() {
                return Err(invalid("cannot set path in scalar".into(), "jsonb_set changes objects and arrays"));
            }
            check_array_steps(&target, &path)?;
            Ok(jsonb_text(Some(set(target, &path, new, create))))
        })
        .takes_json()
        .returns_json(JsonKind::Jsonb)
        .udf(),
        jsonb_fn("_pg_json_agg_list", &[Arg::Any], 1, |a| {
            Ok(jsonb_text(json_items(&a[0])?.map(Value::Array)))
        }),
        // json_agg is json: the same text, typed json.
        PgFunction::new("_pg_json_agg_list_json", &[Arg::Any], 1, DataType::Utf8, |a| {
            Ok(jsonb_text(json_items(&a[0])?.map(Value::Array)))
        })
        .returns_json(JsonKind::Json)
        .udf(),
        PgFunction::new("_pg_json_object_list", &[Arg::Any, Arg::Any], 2, DataType::Utf8, |a| {
            let Some(pairs) = object_pairs(&a[0], &a[1])? else {
                return Ok(utf8(None));
            };
            Ok(jsonb_text(Some(Value::Object(pairs.into_iter().collect()))))
        })
        .returns_json(JsonKind::Jsonb)
        .udf(),
        // json_object_agg is json: every pair kept, in PostgreSQL's `{ "k" : v, … }` layout.
        PgFunction::new("_pg_json_object_list_json", &[Arg::Any, Arg::Any], 2, DataType::Utf8, |a| {
            let Some(pairs) = object_pairs(&a[0], &a[1])? else {
                return Ok(utf8(None));
            };
            let members: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{} : {}", Value::String(k.clone()), jsonb::text(v)))
                .collect();
            Ok(utf8(Some(format!("{{ {} }}", members.join(", ")))))
        })
        .returns_json(JsonKind::Json)
        .udf(),
    ];
    for (name, as_text) in [("_pg_jsonb_element", false), ("_pg_jsonb_element_text", true)] {
        let udf = PgFunction::new(name, &[Arg::Text, Arg::Any], 2, DataType::Utf8, move |a| {
            let Some(x) = json_arg(&a[0], "the left operand of ->")? else {
                return Ok(utf8(None));
            };
            let found = integer(&a[1]).and_then(|i| element(&x, i));
            Ok(utf8(match (found, as_text) {
                (Some(Value::String(s)), true) => Some(s.clone()),
                (Some(Value::Null), true) | (None, _) => None,
                (Some(v), _) => Some(jsonb::text(v)),
            }))
        });
        out.push(if as_text { udf } else { udf.returns_json(JsonKind::Jsonb) }.udf());
    }
    for (name, all) in [("_pg_jsonb_exists_any", false), ("_pg_jsonb_exists_all", true)] {
        out.push(
            PgFunction::new(name, &[Arg::Text, Arg::Any], 2, DataType::Boolean, move |a| {
                let Some(x) = json_arg(&a[0], "the left operand")? else {
                    return Ok(ScalarValue::Boolean(None));
                };
                let keys = text_list(&a[1]).unwrap_or_default();
                let found = if all {
                    keys.iter().all(|k| has_key(&x, k))
                } else {
                    keys.iter().any(|k| has_key(&x, k))
                };
                Ok(ScalarValue::Boolean(Some(found)))
            })
            .udf(),
        );
    }
    for (name, negated) in [("_pg_jsonb_eq", false), ("_pg_jsonb_ne", true)] {
        out.push(
            PgFunction::new(name, &[Arg::Text, Arg::Text], 2, DataType::Boolean, move |a| {
                let (x, y) = (json_arg(&a[0], "the left operand")?, json_arg(&a[1], "the right operand")?);
                Ok(ScalarValue::Boolean(x.zip(y).map(|(x, y)| equal(&x, &y) != negated)))
            })
            .udf(),
        );
    }
    out
}

/// The keys a `jsonb_object_agg` gathered, as text.
fn text_items(v: &ScalarValue) -> DfResult<Option<Vec<Option<String>>>> {
    let ScalarValue::List(list) = v else { return Ok(None) };
    if list.is_null(0) {
        return Ok(None);
    }
    let items = datafusion::arrow::compute::cast(&list.value(0), &DataType::Utf8)?;
    Ok(Some(items.as_string::<i32>().iter().map(|t| t.map(str::to_string)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn concatenation_merges_objects_and_appends_to_arrays() {
        assert_eq!(concat(json!({"a": 1, "b": 2}), json!({"b": 3})), json!({"a": 1, "b": 3}));
        assert_eq!(concat(json!([1]), json!([2, 3])), json!([1, 2, 3]));
        assert_eq!(concat(json!([1]), json!({"a": 1})), json!([1, {"a": 1}]));
        assert_eq!(concat(json!(1), json!([2])), json!([1, 2]));
        assert_eq!(concat(json!({"a": 1}), json!(2)), json!([{"a": 1}, 2]));
    }

    #[test]
    fn deletion_by_key_index_and_path() {
        let key = |k: &str| ScalarValue::Utf8(Some(k.into()));
        assert_eq!(delete(json!({"a": 1, "b": 2}), &key("a")).unwrap(), json!({"b": 2}));
        assert_eq!(delete(json!(["a", "b", 1]), &key("a")).unwrap(), json!(["b", 1]));
        assert_eq!(delete(json!([1, 2, 3]), &ScalarValue::Int64(Some(-1))).unwrap(), json!([1, 2]));
        assert!(delete(json!(1), &key("a")).is_err());
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            delete_path(json!({"a": [1, {"b": 2}]}), &path(&["a", "1", "b"])).unwrap(),
            json!({"a": [1, {}]})
        );
        assert_eq!(set(json!({"a": 1}), &path(&["b"]), json!(2), true), json!({"a": 1, "b": 2}));
        assert_eq!(set(json!({"a": 1}), &path(&["b"]), json!(2), false), json!({"a": 1}));
        assert_eq!(set(json!([1, 2]), &path(&["-1"]), json!(9), true), json!([1, 9]));
        assert_eq!(set(json!([1, 2]), &path(&["5"]), json!(9), true), json!([1, 2, 9]));
    }

    #[test]
    fn keys_and_equality_as_jsonb_has_them() {
        assert!(has_key(&json!(["a", 1]), "a") && !has_key(&json!([["a"]]), "a"));
        assert!(equal(&json!({"a": [1.0]}), &json!({"a": [1]})));
        assert!(!equal(&json!([1, 2]), &json!([2, 1])));
    }
}
