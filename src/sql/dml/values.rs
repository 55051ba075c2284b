//! SQL values → the JSON a property's schema expects, for DesiredState and patches.
//!
//! Text is the common case (StackQL pages quote every value): `'true'` becomes `true` for a
//! boolean property, `'42'` becomes `42` for an integer one, and text holding JSON is parsed for
//! object and array properties. A value that cannot become the property's type is an error
//! naming the column and the type it needs: 22P02 for unparseable text, 42804 for a SQL type
//! that cannot convert at all.

use datafusion::arrow::datatypes::TimeUnit;
use datafusion::common::ScalarValue;
use serde_json::{Number, Value};

use crate::catalog::timestamps;
use crate::error::{Error, Result};
use crate::sql::datetime::{micros_of, read_timestamptz, Zone, INPUT_HINT};

/// A non-null SQL value, reduced to the kinds that matter for JSON.
#[derive(Debug, Clone, PartialEq)]
enum Sql {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A timestamp or date, in microseconds since 1970 UTC.
    Time(i64),
}

fn classify(value: &ScalarValue) -> Option<Sql> {
    if value.is_null() {
        return None;
    }
    Some(match value {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => Sql::Text(s.clone()),
        ScalarValue::Boolean(Some(b)) => Sql::Bool(*b),
        ScalarValue::Int8(Some(v)) => Sql::Int(i64::from(*v)),
        ScalarValue::Int16(Some(v)) => Sql::Int(i64::from(*v)),
        ScalarValue::Int32(Some(v)) => Sql::Int(i64::from(*v)),
        ScalarValue::Int64(Some(v)) => Sql::Int(*v),
        ScalarValue::UInt8(Some(v)) => Sql::Int(i64::from(*v)),
        ScalarValue::UInt16(Some(v)) => Sql::Int(i64::from(*v)),
        ScalarValue::UInt32(Some(v)) => Sql::Int(i64::from(*v)),
        ScalarValue::UInt64(Some(v)) => i64::try_from(*v).map_or(Sql::Float(*v as f64), Sql::Int),
        ScalarValue::Float32(Some(v)) => Sql::Float(f64::from(*v)),
        ScalarValue::Float64(Some(v)) => Sql::Float(*v),
        ScalarValue::TimestampSecond(Some(v), _) => Sql::Time(micros_of(*v, TimeUnit::Second)),
        ScalarValue::TimestampMillisecond(Some(v), _) => Sql::Time(micros_of(*v, TimeUnit::Millisecond)),
        ScalarValue::TimestampMicrosecond(Some(v), _) => Sql::Time(*v),
        ScalarValue::TimestampNanosecond(Some(v), _) => Sql::Time(micros_of(*v, TimeUnit::Nanosecond)),
        ScalarValue::Date32(Some(d)) => Sql::Time(i64::from(*d) * 86_400_000_000),
        other => Sql::Text(other.to_string()),
    })
}

/// The text of a SQL value (for `region`, `ClientToken`, identifiers); `None` for NULL.
pub fn text(value: &ScalarValue) -> Option<String> {
    classify(value).map(|v| text_of(&v))
}

/// The JSON types a property schema allows, in the order to try them.
fn allowed_types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The property value for a SQL value; `None` for NULL (the property is left out). For a
/// property that holds secrets (write-only, or with write-only members), an error names the
/// column but never quotes the value.
/// Text without an offset for a `date-time` property is a time in `zone`, the session's.
pub fn to_json(value: &ScalarValue, schema: &Value, column: &str, secret: bool, zone: &Zone) -> Result<Option<Value>> {
    convert_value(value, schema, column, zone).map_err(|e| if secret { conceal(e, column) } else { e })
}

/// An error about a secret's value, without the value.
fn conceal(e: Error, column: &str) -> Error {
    let message = format!("invalid input for column \"{column}\" (its value is not shown: the property holds secrets)");
    match e {
        Error::DatatypeMismatch { .. } => Error::DatatypeMismatch {
            message,
            hint: Some(format!("check the type of the value given for \"{column}\" (DESCRIBE shows it)")),
        },
        Error::InvalidText { .. } => Error::InvalidText { message, hint: None },
        Error::InvalidDatetime { .. } => Error::InvalidDatetime { message, hint: None },
        other => other,
    }
}

fn convert_value(value: &ScalarValue, schema: &Value, column: &str, zone: &Zone) -> Result<Option<Value>> {
    let Some(sql) = classify(value) else { return Ok(None) };
    let types = allowed_types(schema);
    if types.is_empty() {
        // The schema leaves the type open: JSON text is taken as JSON, anything else as is.
        return Ok(Some(match sql {
            Sql::Text(s) => match serde_json::from_str::<Value>(&s) {
                Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
                _ => Value::String(s),
            },
            other => scalar_json(other),
        }));
    }
    // Prefer a structured reading of text when the schema allows one.
    if let Sql::Text(s) = &sql {
        let structured = types.iter().any(|t| matches!(*t, "object" | "array"));
        if structured && types.contains(&"string") {
            if let Ok(v @ (Value::Object(_) | Value::Array(_))) = serde_json::from_str::<Value>(s) {
                if types.contains(&json_type(&v)) {
                    return Ok(Some(v));
                }
            }
            return Ok(Some(Value::String(s.clone())));
        }
    }
    if schema.get("format").and_then(Value::as_str) == Some("date-time") && types.contains(&"string") {
        return date_time(&sql, column, zone).map(Some);
    }
    let mut first_error = None;
    for t in &types {
        match convert(&sql, t, column) {
            Ok(v) => return Ok(Some(v)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| Error::internal("no type to convert to")))
}

/// A `date-time` property's value: RFC 3339 in UTC, from a timestamp or from text as
/// PostgreSQL reads timestamptz input (`2025-03-01 10:00 Europe/Paris`, `now`; without an
/// offset, a time in `zone`), or in the other shapes [`timestamps::text_micros`] reads
/// (epoch seconds).
fn date_time(sql: &Sql, column: &str, zone: &Zone) -> Result<Value> {
    let micros = match sql {
        Sql::Time(m) => Some(*m),
        Sql::Text(s) => read_timestamptz(s, zone, chrono::Utc::now().naive_utc()).or_else(|| timestamps::text_micros(s)),
        other => return Err(mismatch(column, "timestamp with time zone", other)),
    };
    micros
        .and_then(timestamps::rfc3339)
        .map(Value::String)
        .ok_or_else(|| Error::InvalidDatetime {
            message: format!(
                "invalid input syntax for type timestamp with time zone: \"{}\" (column \"{column}\")",
                shorten(&text_of(sql))
            ),
            hint: Some(INPUT_HINT.into()),
        })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::Null => "null",
    }
}

fn scalar_json(sql: Sql) -> Value {
    match sql {
        Sql::Text(s) => Value::String(s),
        Sql::Int(i) => Value::from(i),
        Sql::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Sql::Bool(b) => Value::Bool(b),
        time @ Sql::Time(_) => Value::String(text_of(&time)),
    }
}

fn sql_type_name(sql: &Sql) -> &'static str {
    match sql {
        Sql::Text(_) => "text",
        Sql::Int(_) => "an integer",
        Sql::Float(_) => "a number",
        Sql::Bool(_) => "a boolean",
        Sql::Time(_) => "a timestamp",
    }
}

fn mismatch(column: &str, expected: &str, got: &Sql) -> Error {
    Error::DatatypeMismatch {
        message: format!("column \"{column}\" is of type {expected} but the value is {}", sql_type_name(got)),
        hint: Some(format!("give \"{column}\" a {expected} value (text that reads as one works too)")),
    }
}

fn bad_text(column: &str, expected: &str, text: &str, why: &str) -> Error {
    Error::InvalidText {
        message: format!("invalid input for column \"{column}\" of type {expected}: '{}'{why}", shorten(text)),
        hint: None,
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s.to_string()
    }
}

fn convert(sql: &Sql, json_type_name: &str, column: &str) -> Result<Value> {
    match json_type_name {
        "string" => Ok(match sql {
            Sql::Text(s) => Value::String(s.clone()),
            other => Value::String(text_of(other)),
        }),
        "integer" => match sql {
            Sql::Int(i) => Ok(Value::from(*i)),
            Sql::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Value::from(*f as i64)),
            Sql::Text(s) => s
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| bad_text(column, "integer", s, "")),
            other => Err(mismatch(column, "integer", other)),
        },
        "number" => match sql {
            Sql::Int(i) => Ok(Value::from(*i)),
            Sql::Float(f) => Number::from_f64(*f)
                .map(Value::Number)
                .ok_or_else(|| bad_text(column, "number", &f.to_string(), " (not a finite number)")),
            Sql::Text(s) => {
                let t = s.trim();
                if let Ok(i) = t.parse::<i64>() {
                    return Ok(Value::from(i));
                }
                t.parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| bad_text(column, "number", s, ""))
            }
            other => Err(mismatch(column, "number", other)),
        },
        "boolean" => match sql {
            Sql::Bool(b) => Ok(Value::Bool(*b)),
            Sql::Text(s) => parse_bool(s)
                .map(Value::Bool)
                .ok_or_else(|| bad_text(column, "boolean", s, " (use true or false)")),
            other => Err(mismatch(column, "boolean", other)),
        },
        "object" | "array" => match sql {
            Sql::Text(s) => {
                let v: Value = serde_json::from_str(s).map_err(|e| {
                    bad_text(
                        column,
                        &format!("json ({json_type_name})"),
                        s,
                        &format!(": not valid JSON at line {} column {}: {}", e.line(), e.column(), json_reason(&e)),
                    )
                })?;
                if json_type(&v) == json_type_name {
                    Ok(v)
                } else {
                    Err(Error::DatatypeMismatch {
                        message: format!(
                            "column \"{column}\" needs a JSON {json_type_name}, but the value is a JSON {}",
                            json_type(&v)
                        ),
                        hint: Some(if json_type_name == "array" {
                            format!("write it as a JSON array, e.g. '[{}]'", shorten(s))
                        } else {
                            "write it as a JSON object, e.g. '{\"Key\": \"value\"}'".to_string()
                        }),
                    })
                }
            }
            other => Err(mismatch(column, &format!("json ({json_type_name})"), other)),
        },
        "null" => Err(mismatch(column, "null", sql)),
        _ => Ok(scalar_json(sql.clone())),
    }
}

fn json_reason(e: &serde_json::Error) -> String {
    let full = e.to_string();
    full.split(" at line ").next().unwrap_or(&full).to_string()
}

fn text_of(sql: &Sql) -> String {
    match sql {
        Sql::Text(s) => s.clone(),
        Sql::Int(i) => i.to_string(),
        Sql::Float(f) => f.to_string(),
        Sql::Bool(b) => b.to_string(),
        Sql::Time(m) => timestamps::rfc3339(*m).unwrap_or_else(|| m.to_string()),
    }
}

/// PostgreSQL's boolean input syntax.
fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "on" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "off" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_not_quoted_in_errors() {
        let schema = serde_json::json!({"type": "object"});
        let v = ScalarValue::Utf8(Some("{not json sekrit".into()));
        let open = to_json(&v, &schema, "auth_parameters", false, &Zone::utc()).unwrap_err();
        assert!(open.to_string().contains("sekrit"));
        let hidden = to_json(&v, &schema, "auth_parameters", true, &Zone::utc()).unwrap_err();
        assert_eq!(hidden.sqlstate(), open.sqlstate());
        assert!(
            !hidden.to_string().contains("sekrit") && hidden.to_string().contains("auth_parameters"),
            "{hidden}"
        );
        let array = serde_json::json!({"type": "array"});
        let hidden = to_json(
            &ScalarValue::Utf8(Some("{\"a\": \"sekrit\"}".into())),
            &array,
            "x",
            true,
            &Zone::utc(),
        )
        .unwrap_err();
        assert!(!format!("{hidden} {:?}", hidden.hint()).contains("sekrit"));
    }
    use serde_json::json;

    fn text_value(s: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(s.to_string()))
    }

    #[test]
    fn text_becomes_the_property_type() {
        assert_eq!(
            to_json(&text_value("true"), &json!({"type": "boolean"}), "c", false, &Zone::utc()).unwrap(),
            Some(json!(true))
        );
        assert_eq!(
            to_json(&text_value("off"), &json!({"type": "boolean"}), "c", false, &Zone::utc()).unwrap(),
            Some(json!(false))
        );
        assert_eq!(
            to_json(&text_value(" 42 "), &json!({"type": "integer"}), "c", false, &Zone::utc()).unwrap(),
            Some(json!(42))
        );
        assert_eq!(
            to_json(&text_value("2.5"), &json!({"type": "number"}), "c", false, &Zone::utc()).unwrap(),
            Some(json!(2.5))
        );
        assert_eq!(
            to_json(
                &text_value(r#"[{"Key":"a","Value":"b"}]"#),
                &json!({"type": "array"}),
                "tags",
                false,
                &Zone::utc()
            )
            .unwrap(),
            Some(json!([{"Key": "a", "Value": "b"}]))
        );
        assert_eq!(
            to_json(&text_value(r#"{"A": 1}"#), &json!({"type": "object"}), "c", false, &Zone::utc()).unwrap(),
            Some(json!({"A": 1}))
        );
    }

    #[test]
    fn sql_types_convert_too() {
        assert_eq!(
            to_json(&ScalarValue::Int32(Some(7)), &json!({"type": "string"}), "c", false, &Zone::utc()).unwrap(),
            Some(json!("7"))
        );
        assert_eq!(
            to_json(
                &ScalarValue::Boolean(Some(true)),
                &json!({"type": "boolean"}),
                "c",
                false,
                &Zone::utc()
            )
            .unwrap(),
            Some(json!(true))
        );
        assert_eq!(
            to_json(&ScalarValue::Int64(Some(3)), &json!({"type": "number"}), "c", false, &Zone::utc()).unwrap(),
            Some(json!(3))
        );
        assert_eq!(
            to_json(&ScalarValue::Utf8(None), &json!({"type": "string"}), "c", false, &Zone::utc()).unwrap(),
            None
        );
    }

    #[test]
    fn open_and_mixed_types() {
        assert_eq!(
            to_json(&text_value(r#"{"a":1}"#), &json!({}), "c", false, &Zone::utc()).unwrap(),
            Some(json!({"a": 1}))
        );
        assert_eq!(
            to_json(&text_value("plain"), &json!({}), "c", false, &Zone::utc()).unwrap(),
            Some(json!("plain"))
        );
        let mixed = json!({"type": ["object", "string"]});
        assert_eq!(
            to_json(&text_value(r#"{"a":1}"#), &mixed, "c", false, &Zone::utc()).unwrap(),
            Some(json!({"a": 1}))
        );
        assert_eq!(
            to_json(&text_value("{{ x }}"), &mixed, "c", false, &Zone::utc()).unwrap(),
            Some(json!("{{ x }}"))
        );
    }

    #[test]
    fn wrong_values_name_the_column_and_type() {
        let e = to_json(&text_value("abc"), &json!({"type": "integer"}), "max_size", false, &Zone::utc()).unwrap_err();
        assert_eq!(e.sqlstate(), "22P02");
        assert!(e.to_string().contains("\"max_size\"") && e.to_string().contains("integer"), "{e}");
        let e = to_json(
            &ScalarValue::Boolean(Some(true)),
            &json!({"type": "integer"}),
            "max_size",
            false,
            &Zone::utc(),
        )
        .unwrap_err();
        assert_eq!(e.sqlstate(), "42804");
        let e = to_json(
            &text_value("sg-1"),
            &json!({"type": "array"}),
            "security_group_ids",
            false,
            &Zone::utc(),
        )
        .unwrap_err();
        assert_eq!(e.sqlstate(), "22P02");
        assert!(e.to_string().contains("line 1 column 1"), "{e}");
        let e = to_json(
            &text_value(r#"{"a":1}"#),
            &json!({"type": "array"}),
            "security_group_ids",
            false,
            &Zone::utc(),
        )
        .unwrap_err();
        assert_eq!(e.sqlstate(), "42804");
        assert!(e.to_string().contains("JSON array"), "{e}");
        let e = to_json(&text_value("maybe"), &json!({"type": "boolean"}), "flag", false, &Zone::utc()).unwrap_err();
        assert!(e.to_string().contains("true or false"), "{e}");
    }

    #[test]
    fn date_time_properties_take_rfc3339() {
        let schema = json!({"type": "string", "format": "date-time"});
        let convert = |v: ScalarValue| to_json(&v, &schema, "start_date", false, &Zone::utc());
        let kolkata = Zone::parse("Asia/Kolkata").unwrap();
        let local = to_json(&text_value("2025-03-01 15:30"), &schema, "start_date", false, &kolkata).unwrap();
        assert_eq!(
            local,
            Some(json!("2025-03-01T10:00:00Z")),
            "text without an offset is in the session's zone"
        );
        assert_eq!(
            convert(text_value("2025-03-01 12:00:00+02")).unwrap(),
            Some(json!("2025-03-01T10:00:00Z"))
        );
        assert_eq!(convert(text_value("2025-03-01")).unwrap(), Some(json!("2025-03-01T00:00:00Z")));
        assert_eq!(
            convert(text_value("2025-03-01 11:00 Europe/Paris")).unwrap(),
            Some(json!("2025-03-01T10:00:00Z"))
        );
        assert_eq!(convert(text_value("1740823200")).unwrap(), Some(json!("2025-03-01T10:00:00Z")));
        let at = ScalarValue::TimestampNanosecond(Some(1_740_823_200_500_000_000), Some("Europe/Paris".into()));
        assert_eq!(convert(at).unwrap(), Some(json!("2025-03-01T10:00:00.500Z")));
        let hidden = to_json(&text_value("next tuesday"), &schema, "start_date", true, &Zone::utc()).unwrap_err();
        assert_eq!(hidden.sqlstate(), "22007");
        assert!(!hidden.to_string().contains("tuesday"), "a secret's text is not shown: {hidden}");
        let e = convert(text_value("next tuesday")).unwrap_err();
        assert_eq!(e.sqlstate(), "22007");
        assert!(
            e.to_string().contains("\"next tuesday\"") && e.to_string().contains("start_date"),
            "{e}"
        );
        assert_eq!(convert(ScalarValue::Boolean(Some(true))).unwrap_err().sqlstate(), "42804");
    }
}
