//! Checks a desired state against a resource schema the way CloudFormation's validator
//! reports it: `#/Path: message`, collected into one InvalidRequest message.

use resource_schemas::ResourceType;
use serde_json::{Map, Value};

use crate::pattern;

/// Why a model is invalid; each entry is `#/Path: message`.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<String>);

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The message AWS returns for a model that fails validation.
    pub fn message(&self) -> String {
        format!("Model validation failed ({})", self.0.join("; "))
    }
}

/// What the caller may set: on create everything but read-only properties; on update also not
/// create-only ones (those are reported as NotUpdatable by the caller, before this check).
pub fn check_model(resource: &ResourceType, model: &Map<String, Value>, creating: bool) -> Problems {
    let mut problems = Problems::default();
    let props = resource.properties();
    if creating {
        for r in &resource.required {
            if !model.contains_key(r) {
                problems.0.push(format!("#: required key [{r}] not found"));
            }
        }
    }
    for (key, value) in model {
        match props.get(key) {
            None => problems.0.push(format!("#: extraneous key [{key}] is not permitted")),
            Some(_) if creating && resource.is_read_only(key) => {
                problems.0.push(format!("#/{key}: read-only property [{key}] cannot be set"))
            }
            Some(schema) => check_value(resource, value, schema, &format!("#/{key}"), &mut problems, 0),
        }
    }
    problems
}

fn type_word(v: &Value) -> &'static str {
    match v {
        Value::Null => "Null",
        Value::Bool(_) => "Boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "Integer",
        Value::Number(_) => "Number",
        Value::String(_) => "String",
        Value::Array(_) => "JSONArray",
        Value::Object(_) => "JSONObject",
    }
}

fn matches_type(ty: &str, v: &Value) -> bool {
    match ty {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        _ => true,
    }
}

fn check_value(resource: &ResourceType, value: &Value, schema: &Value, path: &str, problems: &mut Problems, depth: usize) {
    if depth > 16 {
        return;
    }
    let schema = match schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/definitions/"))
    {
        Some(name) => match resource.definitions().get(name) {
            Some(def) => def,
            None => return,
        },
        None => schema,
    };
    let allowed: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !allowed.is_empty() && !allowed.iter().any(|t| matches_type(t, value)) {
        let expected = allowed
            .iter()
            .map(|t| match *t {
                "string" => "String",
                "integer" => "Integer",
                "number" => "Number",
                "boolean" => "Boolean",
                "array" => "JSONArray",
                "object" => "JSONObject",
                other => other,
            })
            .collect::<Vec<_>>()
            .join(" or ");
        problems
            .0
            .push(format!("{path}: expected type: {expected}, found: {}", type_word(value)));
        return;
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        let case_insensitive = schema.get("enumCaseInsensitive").and_then(Value::as_bool).unwrap_or(false);
        let found = options
            .iter()
            .any(|o| o == value || (case_insensitive && o.as_str().zip(value.as_str()).is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))));
        if !found {
            problems.0.push(format!("{path}: {value} is not a valid enum value"));
        }
    }
    match value {
        Value::String(s) => {
            if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
                if !pattern::matches(p, s) {
                    problems.0.push(format!("{path}: string [{s}] does not match pattern {p}"));
                }
            }
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
                if len < min {
                    problems.0.push(format!("{path}: expected minLength: {min}, actual: {len}"));
                }
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
                if len > max {
                    problems.0.push(format!("{path}: expected maxLength: {max}, actual: {len}"));
                }
            }
        }
        Value::Number(n) => {
            if let (Some(min), Some(v)) = (schema.get("minimum").and_then(Value::as_f64), n.as_f64()) {
                if v < min {
                    problems.0.push(format!("{path}: {n} is not greater or equal to {min}"));
                }
            }
            if let (Some(max), Some(v)) = (schema.get("maximum").and_then(Value::as_f64), n.as_f64()) {
                if v > max {
                    problems.0.push(format!("{path}: {n} is not less or equal to {max}"));
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check_value(resource, item, item_schema, &format!("{path}/{i}"), problems, depth + 1);
                }
            }
        }
        Value::Object(map) => {
            if let Some(Value::Object(props)) = schema.get("properties") {
                let closed = schema.get("additionalProperties") == Some(&Value::Bool(false)) && schema.get("patternProperties").is_none();
                for (k, v) in map {
                    match props.get(k) {
                        Some(sub) => check_value(resource, v, sub, &format!("{path}/{k}"), problems, depth + 1),
                        None if closed => problems.0.push(format!("{path}: extraneous key [{k}] is not permitted")),
                        None => {}
                    }
                }
                if let Some(Value::Array(required)) = schema.get("required") {
                    for r in required.iter().filter_map(Value::as_str) {
                        if !map.contains_key(r) {
                            problems.0.push(format!("{path}: required key [{r}] not found"));
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use resource_schemas::Registry;
    use serde_json::json;

    fn ice() -> &'static ResourceType {
        Registry::shared().unwrap().get("AWS::EC2::InstanceConnectEndpoint").unwrap()
    }

    fn model(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn valid_model_passes() {
        let p = check_model(
            ice(),
            &model(json!({"SubnetId": "subnet-1", "PreserveClientIp": true, "Tags": [{"Key": "a", "Value": "b"}]})),
            true,
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn each_problem_names_the_property() {
        let p = check_model(
            ice(),
            &model(json!({"PreserveClientIp": "yes", "Bogus": 1, "Id": "x", "State": "create-complete"})),
            true,
        );
        let m = p.message();
        assert!(m.contains("required key [SubnetId] not found"), "{m}");
        assert!(m.contains("#/PreserveClientIp: expected type: Boolean, found: String"), "{m}");
        assert!(m.contains("extraneous key [Bogus]"), "{m}");
        assert!(m.contains("read-only property [Id]"), "{m}");
        let p = check_model(ice(), &model(json!({"SubnetId": "s", "Tags": [{"Key": "a"}]})), true);
        assert!(p.message().contains("#/Tags/0: required key [Value] not found"), "{}", p.message());
    }

    #[test]
    fn enums_and_patterns() {
        let reg = Registry::shared().unwrap();
        let t = reg.get("AWS::Connect::Instance").unwrap();
        let p = check_model(
            t,
            &model(json!({"IdentityManagementType": "NOPE", "Attributes": {"InboundCalls": true, "OutboundCalls": true}})),
            true,
        );
        assert!(
            p.message().contains("#/IdentityManagementType: \"NOPE\" is not a valid enum value"),
            "{}",
            p.message()
        );
    }
}
