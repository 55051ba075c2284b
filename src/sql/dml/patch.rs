//! JSON Patch (RFC 6902) for UPDATE: checking a patch a user wrote, and building one from
//! `SET column = value` assignments.

use serde_json::{json, Value};

use crate::error::{Error, Result};

const OPS: [&str; 6] = ["add", "remove", "replace", "move", "copy", "test"];

/// Checks a `PatchDocument` and returns it compacted, with a leading '/' added to paths that
/// lack one (AWS's own examples sometimes omit it). Errors are 22P02 and say where.
pub fn check(text: &str) -> Result<String> {
    let mut doc: Value =
        serde_json::from_str(text).map_err(|e| invalid(format!("is not valid JSON at line {} column {}: {e}", e.line(), e.column())))?;
    let Value::Array(ops) = &mut doc else {
        return Err(invalid(
            "must be a JSON array of operations, e.g. [{\"op\": \"replace\", \"path\": \"/Description\", \"value\": \"x\"}]".into(),
        ));
    };
    if ops.is_empty() {
        return Err(invalid("holds no operations".into()));
    }
    for (i, op) in ops.iter_mut().enumerate() {
        check_op(op).map_err(|why| invalid(format!("operation {} (at index {i}) {why}", i + 1)))?;
    }
    Ok(doc.to_string())
}

fn check_op(op: &mut Value) -> std::result::Result<(), String> {
    let Value::Object(o) = op else {
        return Err("is not a JSON object".into());
    };
    let name = o.get("op").and_then(Value::as_str).ok_or("has no \"op\"")?;
    if !OPS.contains(&name) {
        return Err(format!("has unknown op \"{name}\"; use one of {}", OPS.join(", ")));
    }
    let name = name.to_string();
    let path = o
        .get("path")
        .and_then(Value::as_str)
        .ok_or(format!("({name}) has no \"path\" string"))?;
    if !path.is_empty() && !path.starts_with('/') {
        let rooted = format!("/{path}");
        o.insert("path".into(), Value::String(rooted));
    }
    let name = name.as_str();
    if matches!(name, "add" | "replace" | "test") && !o.contains_key("value") {
        return Err(format!("({name}) has no \"value\""));
    }
    if matches!(name, "move" | "copy") && !o.get("from").is_some_and(Value::is_string) {
        return Err(format!("({name}) has no \"from\" string"));
    }
    Ok(())
}

fn invalid(why: String) -> Error {
    Error::InvalidText {
        message: format!("PatchDocument {why}"),
        hint: Some("PatchDocument takes an RFC 6902 JSON Patch; or write SET column = value and cloudpg builds the patch".into()),
    }
}

/// One `SET` assignment: a top-level property and its new value (`None` for NULL).
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub property: String,
    pub value: Option<Value>,
}

/// The patch for `assignments`. `present` says, per assignment, whether the property currently
/// has a value, when that is known (a statement that read the resources first):
/// - a value for a present property → `replace`; for an absent or unknown one → `add` (which
///   RFC 6902 defines as replacing an existing member, so it is right either way);
/// - NULL for a present or unknown property → `remove`; for an absent one → nothing.
pub fn build(assignments: &[Assignment], present: Option<&[bool]>) -> Vec<Value> {
    assignments
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let is_present = present.and_then(|p| p.get(i).copied());
            let path = format!("/{}", escape(&a.property));
            match (&a.value, is_present) {
                (Some(v), Some(true)) => Some(json!({"op": "replace", "path": path, "value": v})),
                (Some(v), _) => Some(json!({"op": "add", "path": path, "value": v})),
                (None, Some(false)) => None,
                (None, _) => Some(json!({"op": "remove", "path": path})),
            }
        })
        .collect()
}

/// RFC 6901 escaping of one pointer segment.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(p: &str, v: Option<Value>) -> Assignment {
        Assignment {
            property: p.into(),
            value: v,
        }
    }

    #[test]
    fn without_current_state_values_add_and_nulls_remove() {
        let patch = build(&[a("Description", Some(json!("new"))), a("KmsKeyIdentifier", None)], None);
        assert_eq!(
            Value::Array(patch),
            json!([
                {"op": "add", "path": "/Description", "value": "new"},
                {"op": "remove", "path": "/KmsKeyIdentifier"}
            ])
        );
    }

    #[test]
    fn with_current_state_present_values_are_replaced_and_absent_nulls_skipped() {
        let assignments = [
            a("RetentionInDays", Some(json!(90))),
            a("Tags", Some(json!([{"Key": "k", "Value": "v"}]))),
            a("KmsKeyId", None),
            a("DataProtectionPolicy", None),
        ];
        let patch = build(&assignments, Some(&[true, false, true, false]));
        assert_eq!(
            Value::Array(patch),
            json!([
                {"op": "replace", "path": "/RetentionInDays", "value": 90},
                {"op": "add", "path": "/Tags", "value": [{"Key": "k", "Value": "v"}]},
                {"op": "remove", "path": "/KmsKeyId"}
            ])
        );
    }

    #[test]
    fn pointer_segments_are_escaped() {
        let patch = build(&[a("a/b~c", Some(json!(1)))], None);
        assert_eq!(patch[0]["path"], json!("/a~1b~0c"));
    }

    #[test]
    fn user_patches_are_checked() {
        assert_eq!(
            check(r#"[ {"op":"replace","path":"/Description","value":"x"} ]"#).unwrap(),
            r#"[{"op":"replace","path":"/Description","value":"x"}]"#
        );
        let e = check(r#"[{"op":"replace","path":"/D","value":"x"}"#).unwrap_err();
        assert_eq!(e.sqlstate(), "22P02");
        assert!(e.to_string().contains("line 1 column"), "{e}");
        let e = check(r#"{"op":"replace"}"#).unwrap_err();
        assert!(e.to_string().contains("JSON array"), "{e}");
        let e = check(r#"[{"op":"replace","path":"/A","value":1},{"op":"frob","path":"/B"}]"#).unwrap_err();
        assert!(e.to_string().contains("operation 2") && e.to_string().contains("frob"), "{e}");
        let e = check(r#"[{"op":"add","path":"/A"}]"#).unwrap_err();
        assert!(e.to_string().contains("no \"value\""), "{e}");
        assert_eq!(
            check(r#"[{"op":"remove","path":"A"}]"#).unwrap(),
            r#"[{"op":"remove","path":"/A"}]"#
        );
        assert!(check("[]").is_err());
    }
}
