//! What never leaves Cloud Control's answers: write-only properties (passwords, API keys),
//! at any depth, and the columns `[redact]` masks. Applied once, where answers enter the
//! server, so rows, RETURNING, `cloudpg.requests` and `resource_requests` all see the same.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// What a masked property shows.
pub const REDACTED: &str = "[redacted]";

pub struct Scrubber {
    registry: &'static resource_schemas::Registry,
    /// Properties to mask, by type.
    redacted: HashMap<String, Vec<String>>,
}

impl Scrubber {
    pub fn new(registry: &'static resource_schemas::Registry, redacted: HashMap<String, Vec<String>>) -> Scrubber {
        Scrubber { registry, redacted }
    }

    /// Removes write-only properties and masks redacted ones of a `type_name` model.
    pub fn properties(&self, type_name: &str, properties: &mut Map<String, Value>) {
        if let Some(t) = self.registry.get(type_name) {
            t.strip_write_only(properties);
        }
        for p in self.redacted.get(type_name).into_iter().flatten() {
            if let Some(v) = properties.get_mut(p) {
                *v = Value::String(REDACTED.into());
            }
        }
    }

    /// Whether a mutation writes a property whose values must not be kept: write-only ones
    /// (whatever the value) and those `[redact]` masks. Such a request is never written to the
    /// journal whole. A type or body it cannot read counts as hiding something.
    pub fn hides_part_of(&self, request: &super::MutationRequest) -> bool {
        let Some(t) = self.registry.get(&request.type_name) else {
            return true;
        };
        let redacted = self.redacted.get(&request.type_name);
        let hidden = |property: &str| t.holds_write_only(property) || redacted.is_some_and(|r| r.iter().any(|p| p == property));
        let top_level = |path: &str| path.trim_start_matches('/').split('/').next().unwrap_or_default().to_string();
        match &request.change {
            super::Change::Create { desired_state } => match serde_json::from_str::<Value>(desired_state) {
                Ok(Value::Object(model)) => model.keys().any(|k| hidden(k)),
                _ => true,
            },
            super::Change::Update { patch, .. } => match serde_json::from_str::<Value>(patch) {
                Ok(Value::Array(ops)) => ops.iter().any(|op| {
                    ["path", "from"]
                        .iter()
                        .filter_map(|k| op.get(*k).and_then(Value::as_str))
                        .any(|p| hidden(&top_level(p)))
                }),
                _ => true,
            },
            super::Change::Delete { .. } => false,
        }
    }

    /// The same for a model as JSON text (a progress event's ResourceModel). Text that is
    /// not a JSON object cannot be checked, so it is not passed on.
    pub fn model_text(&self, type_name: Option<&str>, text: &str) -> Option<String> {
        let Ok(Value::Object(mut model)) = serde_json::from_str::<Value>(text) else {
            return None;
        };
        if let Some(t) = type_name {
            self.properties(t, &mut model);
        }
        Some(Value::Object(model).to_string())
    }
}

/// The secrets a mutation carries: text at write-only paths of its DesiredState, or in the
/// values its patch writes under a write-only path.
pub fn secrets_of(request: &super::MutationRequest) -> Vec<String> {
    let Some(t) = resource_schemas::Registry::shared().ok().and_then(|r| r.get(&request.type_name)) else {
        return Vec::new();
    };
    let mut secrets = match &request.change {
        super::Change::Create { desired_state } => match serde_json::from_str::<Value>(desired_state) {
            Ok(Value::Object(model)) => t.write_only_values(&model),
            _ => Vec::new(),
        },
        super::Change::Update { patch, .. } => patch_secrets(t, patch),
        super::Change::Delete { .. } => Vec::new(),
    };
    // Short values would mask ordinary words in messages; they are no secret worth the name.
    secrets.retain(|s| s.len() >= 4);
    secrets
}

fn patch_secrets(t: &resource_schemas::ResourceType, patch: &str) -> Vec<String> {
    let Ok(Value::Array(ops)) = serde_json::from_str::<Value>(patch) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for op in ops {
        let (Some(path), Some(value)) = (op.get("path").and_then(Value::as_str), op.get("value")) else {
            continue;
        };
        // Rebuild the written part as a model and read its write-only values.
        let mut model = Map::new();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let Some((first, rest)) = parts.split_first() else { continue };
        let mut nested = value.clone();
        for p in rest.iter().rev() {
            nested = Value::Object(Map::from_iter([(p.to_string(), nested)]));
        }
        model.insert(first.to_string(), nested);
        out.extend(t.write_only_values(&model));
    }
    out
}

/// `text` with every secret replaced by [`REDACTED`].
pub fn conceal(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_string(), |t, s| t.replace(s.as_str(), REDACTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_redacted_columns_never_pass() {
        let registry = resource_schemas::Registry::shared().unwrap();
        let redacted = HashMap::from([("AWS::Lambda::Function".to_string(), vec!["Environment".to_string()])]);
        let s = Scrubber::new(registry, redacted);
        let text = r#"{"Name":"c","AuthParameters":{"ApiKeyAuthParameters":{"ApiKeyName":"k","ApiKeyValue":"sekrit"}}}"#;
        let out = s.model_text(Some("AWS::Events::Connection"), text).unwrap();
        assert!(!out.contains("sekrit") && out.contains("ApiKeyName"), "{out}");
        let mut f = serde_json::json!({"FunctionName": "f", "Environment": {"Variables": {"TOKEN": "t"}}});
        let Value::Object(m) = &mut f else { unreachable!() };
        s.properties("AWS::Lambda::Function", m);
        assert_eq!(f["Environment"], REDACTED);
        assert_eq!(s.model_text(Some("AWS::Events::Connection"), "not json"), None);
    }

    #[test]
    fn a_mutation_knows_its_secrets() {
        use crate::cloudcontrol::{Change, MutationRequest};
        let request = |change| MutationRequest {
            place: crate::cloudcontrol::Place::new("default", "us-east-1"),
            type_name: "AWS::Events::Connection".into(),
            change,
            client_token: "t".into(),
            role_arn: None,
            type_version_id: None,
        };
        let create = request(Change::Create {
            desired_state: r#"{"Name":"c","AuthParameters":{"ApiKeyAuthParameters":{"ApiKeyName":"k","ApiKeyValue":"sekrit-1"}}}"#.into(),
        });
        assert_eq!(secrets_of(&create), vec!["sekrit-1".to_string()]);
        let update = request(Change::Update {
            identifier: "c".into(),
            patch: r#"[{"op":"replace","path":"/AuthParameters/ApiKeyAuthParameters/ApiKeyValue","value":"sekrit-2"},{"op":"replace","path":"/Description","value":"open"}]"#.into(),
        });
        assert_eq!(secrets_of(&update), vec!["sekrit-2".to_string()]);
        assert_eq!(conceal("value sekrit-2 is bad", &secrets_of(&update)), "value [redacted] is bad");
        let registry = resource_schemas::Registry::shared().unwrap();
        let redacting = Scrubber::new(
            registry,
            HashMap::from([("AWS::Events::Connection".to_string(), vec!["Description".to_string()])]),
        );
        let plain = Scrubber::new(registry, HashMap::new());
        assert!(plain.hides_part_of(&create) && plain.hides_part_of(&update));
        let description = request(Change::Update {
            identifier: "c".into(),
            patch: r#"[{"op":"replace","path":"/Description","value":"x"}]"#.into(),
        });
        assert!(!plain.hides_part_of(&description));
        assert!(redacting.hides_part_of(&description), "a [redact] column is not journaled either");
    }
}
