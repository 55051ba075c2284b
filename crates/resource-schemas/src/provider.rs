//! Provider schemas as CloudFormation's `DescribeType` returns them, and the shape the data file
//! keeps: `$ref`s into `definitions` inlined (recursive definitions kept once), list handler
//! schemas reduced to the parent keys they need. The same conversion `generator/generate.py`
//! applies to the shipped data, so a schema read from an account and the shipped one compare
//! equal when AWS has not changed it.

use serde_json::{Map, Value};

use crate::{RawType, ResourceType};

/// Keys of a property schema that say nothing the catalog uses.
const DROPPED_SCHEMA_KEYS: &[&str] = &[
    "$comment",
    "markdownDescription",
    "examples",
    "propertyTransform",
    "$schema",
    "arrayType",
];

/// Top-level lists of property pointers, kept as they are when not empty.
const TOP_LEVEL_LISTS: &[&str] = &[
    "required",
    "readOnlyProperties",
    "writeOnlyProperties",
    "createOnlyProperties",
    "conditionalCreateOnlyProperties",
];

const DEFINITION_PREFIX: &str = "#/definitions/";
const PROPERTY_REF: &str = "#/properties/";

/// A provider schema, checked and converted into a type that exists in `regions`.
///
/// Refused (with what is wrong) when it is not an object with a `typeName` of the form
/// `Vendor::Service::Resource`, an object of `properties`, and a `primaryIdentifier` naming
/// some of them.
pub fn convert(schema: &Value, regions: Vec<String>) -> Result<ResourceType, String> {
    let converted = convert_value(schema)?;
    let text = converted.to_string();
    let mut raw: RawType = serde_json::from_str(&text).map_err(|e| format!("schema does not have the expected shape: {e}"))?;
    let schemas = raw.inline_schemas()?;
    Ok(ResourceType::from_raw(raw, regions.into(), schemas))
}

/// The data-file shape of a provider schema (without regions).
fn convert_value(schema: &Value) -> Result<Value, String> {
    let Value::Object(schema) = schema else {
        return Err("a schema must be a JSON object".into());
    };
    let type_name = schema
        .get("typeName")
        .and_then(Value::as_str)
        .ok_or("the schema has no \"typeName\" string")?;
    if type_name.split("::").count() != 3 || type_name.split("::").any(str::is_empty) {
        return Err(format!("typeName {type_name:?} is not of the form Vendor::Service::Resource"));
    }
    let Some(Value::Object(properties)) = schema.get("properties") else {
        return Err("the schema has no \"properties\" object".into());
    };
    let primary = pointer_list(schema, "primaryIdentifier")?;
    if primary.is_empty() {
        return Err("the schema has no \"primaryIdentifier\"".into());
    }
    for pointer in &primary {
        let name = crate::pointer_top_level(pointer);
        if !properties.contains_key(name) {
            return Err(format!("primaryIdentifier {pointer} names no property of the schema"));
        }
    }
    let definitions = match schema.get("definitions") {
        Some(Value::Object(d)) => d.clone(),
        None => Map::new(),
        Some(_) => return Err("\"definitions\" is not an object".into()),
    };
    let mut resolver = Resolver::new(definitions);
    let props: Map<String, Value> = properties.iter().map(|(k, v)| (k.clone(), resolver.resolve(v, &[]))).collect();
    let mut out = Map::new();
    out.insert("typeName".into(), Value::from(type_name));
    out.insert(
        "description".into(),
        schema
            .get("description")
            .cloned()
            .filter(Value::is_string)
            .unwrap_or_else(|| Value::from("")),
    );
    out.insert("properties".into(), Value::Object(props));
    out.insert("primaryIdentifier".into(), Value::from(primary));
    let recursive = resolver.recursive_definitions();
    if !recursive.is_empty() {
        out.insert("definitions".into(), Value::Object(recursive));
    }
    for key in TOP_LEVEL_LISTS {
        let list = if *key == "required" {
            string_list(schema, key)?
        } else {
            pointer_list(schema, key)?
        };
        if !list.is_empty() {
            out.insert((*key).into(), Value::from(list));
        }
    }
    if let Some(additional) = schema.get("additionalIdentifiers").filter(|v| !is_empty(v)) {
        out.insert("additionalIdentifiers".into(), additional.clone());
    }
    if let Some(handlers) = convert_handlers(schema.get("handlers"))? {
        out.insert("handlers".into(), handlers);
    }
    if let Some(tagging) = schema.get("tagging").filter(|v| !is_empty(v)) {
        out.insert("tagging".into(), tagging.clone());
    }
    Ok(Value::Object(out))
}

/// Python's falsiness, which the generator's `if schema.get(key)` tests.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
    }
}

fn string_list(schema: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match schema.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("\"{key}\" holds {v}, not a string"))
            })
            .collect(),
        Some(other) => Err(format!("\"{key}\" is {other}, not a list of strings")),
    }
}

/// A list of `/properties/…` pointers.
fn pointer_list(schema: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    let list = string_list(schema, key)?;
    match list.iter().find(|p| !p.starts_with("/properties/")) {
        Some(bad) => Err(format!("\"{key}\" holds {bad:?}, not a /properties/… pointer")),
        None => Ok(list),
    }
}

fn convert_handlers(handlers: Option<&Value>) -> Result<Option<Value>, String> {
    let handlers = match handlers {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(h)) => h,
        Some(_) => return Err("\"handlers\" is not an object".into()),
    };
    let mut out = Map::new();
    for (op, handler) in handlers {
        let Value::Object(handler) = handler else {
            return Err(format!("handler {op:?} is not an object"));
        };
        let mut h = Map::new();
        h.insert("permissions".into(), Value::from(string_list(handler, "permissions")?));
        if let Some(t) = handler.get("timeoutInMinutes").filter(|v| !is_empty(v)) {
            h.insert("timeoutInMinutes".into(), t.clone());
        }
        if op == "list" {
            if let Some(Value::Object(hs)) = handler.get("handlerSchema") {
                h.insert("handlerSchema".into(), normalise_handler_schema(hs));
            }
        }
        out.insert(op.clone(), Value::Object(h));
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

/// `{"properties": {"ClusterName": {"$ref": "resource-schema.json#/properties/ClusterName"}},
/// "required": […]}` → `{"params": [{"name": "ClusterName", "property": "ClusterName"}], …}`.
fn normalise_handler_schema(hs: &Map<String, Value>) -> Value {
    let mut params = Vec::new();
    let mut names: Vec<(&String, &Value)> = hs.get("properties").and_then(Value::as_object).into_iter().flatten().collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    for (name, schema) in names {
        let mut param = Map::new();
        param.insert("name".into(), Value::from(name.as_str()));
        let reference = schema.get("$ref").and_then(Value::as_str).and_then(|r| r.split_once(PROPERTY_REF));
        match (reference, schema) {
            (Some((_, property)), _) => {
                param.insert("property".into(), Value::from(property));
            }
            (None, Value::Object(s)) => {
                let kept: Map<String, Value> = s
                    .iter()
                    .filter(|(k, _)| !DROPPED_SCHEMA_KEYS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                param.insert("schema".into(), Value::Object(kept));
            }
            (None, other) => {
                param.insert("schema".into(), other.clone());
            }
        }
        params.push(Value::Object(param));
    }
    let mut out = Map::new();
    out.insert("params".into(), Value::from(params));
    out.insert(
        "required".into(),
        hs.get("required")
            .cloned()
            .filter(Value::is_array)
            .unwrap_or_else(|| Value::Array(Vec::new())),
    );
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(alternatives)) = hs.get(key) {
            let sets: Vec<Value> = alternatives
                .iter()
                .map(|alt| {
                    alt.get("required")
                        .cloned()
                        .filter(Value::is_array)
                        .unwrap_or_else(|| Value::Array(Vec::new()))
                })
                .collect();
            out.insert(key.into(), Value::from(sets));
        }
    }
    Value::Object(out)
}

/// Inlines `#/definitions/X` references of one schema, keeping recursion finite: a definition
/// met again inside itself stays a `$ref` and is kept once under `definitions`.
struct Resolver {
    definitions: Map<String, Value>,
    /// Recursive definitions found so far, in the order found.
    recursive: Vec<String>,
}

impl Resolver {
    fn new(definitions: Map<String, Value>) -> Resolver {
        Resolver {
            definitions,
            recursive: Vec::new(),
        }
    }

    fn resolve(&mut self, node: &Value, stack: &[&str]) -> Value {
        match node {
            Value::Array(items) => Value::Array(items.iter().map(|v| self.resolve(v, stack)).collect()),
            Value::Object(map) => self.resolve_object(map, stack),
            other => other.clone(),
        }
    }

    fn resolve_object(&mut self, node: &Map<String, Value>, stack: &[&str]) -> Value {
        let mut out = Map::new();
        if let Some(name) = node
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(DEFINITION_PREFIX))
        {
            match self.definitions.get(name).cloned() {
                None => {
                    out.insert("type".into(), node.get("type").cloned().unwrap_or_else(|| Value::from("object")));
                }
                Some(_) if stack.contains(&name) => {
                    if !self.recursive.iter().any(|r| r == name) {
                        self.recursive.push(name.to_string());
                    }
                    out.insert("$ref".into(), Value::from(format!("{DEFINITION_PREFIX}{name}")));
                }
                Some(target) => {
                    let mut deeper = stack.to_vec();
                    deeper.push(name);
                    if let Value::Object(resolved) = self.resolve(&target, &deeper) {
                        out.extend(resolved);
                    }
                }
            }
        }
        for (key, value) in node {
            if key == "$ref" || DROPPED_SCHEMA_KEYS.contains(&key.as_str()) {
                continue;
            }
            let resolved = match value {
                Value::Object(members) if matches!(key.as_str(), "properties" | "patternProperties" | "definitions") => {
                    Value::Object(members.iter().map(|(k, v)| (k.clone(), self.resolve(v, stack))).collect())
                }
                other => self.resolve(other, stack),
            };
            out.insert(key.clone(), resolved);
        }
        Value::Object(out)
    }

    /// The recursive definitions, each resolved with itself on the stack.
    fn recursive_definitions(&mut self) -> Map<String, Value> {
        let mut done = Map::new();
        while done.len() < self.recursive.len() {
            let pending: Vec<String> = self.recursive.iter().filter(|n| !done.contains_key(*n)).cloned().collect();
            for name in pending {
                let target = self.definitions.get(&name).cloned().unwrap_or(Value::Null);
                let resolved = self.resolve(&target, &[name.as_str()]);
                done.insert(name, resolved);
            }
        }
        done
    }
}

impl ResourceType {
    /// Whether two schemas of a type say the same: JSON compared as values (key order aside),
    /// regions aside.
    pub fn same_schema(&self, other: &ResourceType) -> bool {
        let listed = |t: &ResourceType| {
            format!(
                "{} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                t.type_name,
                t.description,
                t.required,
                t.primary_identifier,
                t.additional_identifiers,
                t.read_only_properties,
                t.write_only_properties,
                t.create_only_properties,
                t.conditional_create_only_properties,
                t.handlers,
            )
        };
        listed(self) == listed(other)
            && self.tagging() == other.tagging()
            && self.properties() == other.properties()
            && self.definitions() == other.definitions()
    }

    /// This type as a provider schema, the form `DescribeType` returns: what an emulator
    /// answers, and what [`convert`] turns back into the same type.
    pub fn provider_schema(&self) -> Value {
        let mut out = Map::new();
        out.insert("typeName".into(), Value::from(self.type_name.as_str()));
        out.insert("description".into(), Value::from(self.description.as_str()));
        out.insert("properties".into(), Value::Object(self.properties().clone()));
        if !self.definitions().is_empty() {
            out.insert("definitions".into(), Value::Object(self.definitions().clone()));
        }
        out.insert("primaryIdentifier".into(), Value::from(self.primary_identifier.clone()));
        let lists = [
            ("required", &self.required),
            ("readOnlyProperties", &self.read_only_properties),
            ("writeOnlyProperties", &self.write_only_properties),
            ("createOnlyProperties", &self.create_only_properties),
            ("conditionalCreateOnlyProperties", &self.conditional_create_only_properties),
        ];
        for (key, list) in lists {
            if !list.is_empty() {
                out.insert(key.into(), Value::from(list.clone()));
            }
        }
        if !self.additional_identifiers.is_empty() {
            out.insert("additionalIdentifiers".into(), Value::from(self.additional_identifiers.clone()));
        }
        if let Some(handlers) = &self.handlers {
            let mut h = Map::new();
            for (op, key) in [
                (crate::Operation::Create, "create"),
                (crate::Operation::Read, "read"),
                (crate::Operation::Update, "update"),
                (crate::Operation::Delete, "delete"),
                (crate::Operation::List, "list"),
            ] {
                if let Some(handler) = handlers.get(op) {
                    h.insert(key.into(), provider_handler(handler));
                }
            }
            out.insert("handlers".into(), Value::Object(h));
        }
        if let Some(tagging) = self.tagging() {
            out.insert("tagging".into(), tagging);
        }
        Value::Object(out)
    }
}

fn provider_handler(handler: &crate::Handler) -> Value {
    let mut h = Map::new();
    h.insert(
        "permissions".into(),
        handler.permissions.iter().map(|p| Value::from(&**p)).collect(),
    );
    if let Some(t) = handler.timeout_in_minutes {
        h.insert("timeoutInMinutes".into(), Value::from(t));
    }
    if let Some(hs) = &handler.handler_schema {
        let mut properties = Map::new();
        for p in &hs.params {
            let schema = match (&p.property, &p.schema) {
                (Some(property), _) => serde_json::json!({"$ref": format!("resource-schema.json{PROPERTY_REF}{property}")}),
                (None, Some(schema)) => schema.clone(),
                (None, None) => serde_json::json!({"type": "string"}),
            };
            properties.insert(p.name.clone(), schema);
        }
        let mut schema = Map::new();
        schema.insert("properties".into(), Value::Object(properties));
        schema.insert("required".into(), Value::from(hs.required.clone()));
        for (key, sets) in [("oneOf", &hs.one_of), ("anyOf", &hs.any_of)] {
            if !sets.is_empty() {
                let alternatives: Vec<Value> = sets.iter().map(|set| serde_json::json!({"required": set})).collect();
                schema.insert(key.into(), Value::from(alternatives));
            }
        }
        h.insert("handlerSchema".into(), Value::Object(schema));
    }
    Value::Object(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;
    use serde_json::json;

    #[test]
    fn every_shipped_type_survives_a_round_trip_through_its_provider_schema() {
        let registry = Registry::shipped().unwrap();
        let mut recursive = 0;
        for t in registry.types() {
            let back = convert(&t.provider_schema(), t.regions.to_vec()).unwrap_or_else(|e| panic!("{}: {e}", t.type_name));
            if t.definitions().is_empty() {
                assert!(back.same_schema(t), "{}", t.type_name);
            } else {
                // Recursive definitions come back inlined one level deeper: the same columns.
                recursive += 1;
                assert!(back.properties().keys().eq(t.properties().keys()), "{}", t.type_name);
                let names = |t: &ResourceType| t.definitions().keys().cloned().collect::<std::collections::BTreeSet<_>>();
                assert_eq!(names(&back), names(t), "{}", t.type_name);
                let again = convert(&t.provider_schema(), t.regions.to_vec()).unwrap();
                assert!(back.same_schema(&again), "{}: converting is deterministic", t.type_name);
            }
        }
        assert!(recursive < 100, "{recursive} recursive types");
    }

    #[test]
    fn references_are_inlined_and_recursion_is_kept_once() {
        let schema = json!({
            "typeName": "Acme::Test::Thing",
            "properties": {
                "Id": {"type": "string", "markdownDescription": "dropped"},
                "Tags": {"type": "array", "items": {"$ref": "#/definitions/Tag"}},
                "Rule": {"$ref": "#/definitions/Rule"},
                "examples": {"type": "string"}
            },
            "definitions": {
                "Tag": {"type": "object", "properties": {"Key": {"type": "string"}}},
                "Rule": {"type": "object", "properties": {"Not": {"$ref": "#/definitions/Rule"}}}
            },
            "primaryIdentifier": ["/properties/Id"],
            "readOnlyProperties": ["/properties/Id"],
            "handlers": {
                "list": {"permissions": ["acme:List"], "handlerSchema": {
                    "properties": {"Parent": {"$ref": "resource-schema.json#/properties/Id"}, "Filter": {"type": "string", "$comment": "x"}},
                    "required": ["Parent"]
                }}
            }
        });
        let t = convert(&schema, vec!["us-east-1".into()]).unwrap();
        let props = t.properties();
        assert_eq!(props["Tags"]["items"]["properties"]["Key"]["type"], "string");
        assert!(props["Id"].get("markdownDescription").is_none());
        assert!(props.contains_key("examples"), "a property named like a dropped key stays");
        assert_eq!(props["Rule"]["properties"]["Not"]["$ref"], "#/definitions/Rule");
        assert!(t.definitions().contains_key("Rule"));
        let hs = t.list_handler_schema().unwrap();
        assert_eq!(hs.required, vec!["Parent"]);
        assert_eq!(hs.params[1].property.as_deref(), Some("Id"));
        assert_eq!(hs.params[0].schema, Some(json!({"type": "string"})));
        assert!(t.is_read_only("Id"));
    }

    #[test]
    fn malformed_schemas_say_what_is_wrong() {
        let cases = [
            (json!([]), "JSON object"),
            (json!({"properties": {}}), "typeName"),
            (json!({"typeName": "Acme::Thing", "properties": {}}), "Vendor::Service::Resource"),
            (json!({"typeName": "A::B::C"}), "properties"),
            (json!({"typeName": "A::B::C", "properties": {"Id": {}}}), "primaryIdentifier"),
            (
                json!({"typeName": "A::B::C", "properties": {"Id": {}}, "primaryIdentifier": ["/properties/Nope"]}),
                "Nope",
            ),
            (
                json!({"typeName": "A::B::C", "properties": {"Id": {}}, "primaryIdentifier": ["Id"]}),
                "pointer",
            ),
            (
                json!({"typeName": "A::B::C", "properties": {"Id": {}}, "primaryIdentifier": ["/properties/Id"], "handlers": {"read": 3}}),
                "handler \"read\"",
            ),
        ];
        for (schema, expected) in cases {
            let err = convert(&schema, Vec::new())
                .err()
                .unwrap_or_else(|| panic!("{schema} was accepted"));
            assert!(err.contains(expected), "{schema}: {err}");
        }
    }
}
