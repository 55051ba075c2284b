//! CloudFormation's registry, as `cloudpg schemas refresh` reads it: `ListTypes` and
//! `DescribeType` over the awsQuery protocol.
//!
//! Public types are the registry's types with handlers; `DescribeType` answers each with its
//! provider schema. `described_schemas` in the configuration stands for AWS having shipped a
//! new schema: it replaces a public type's answer, and a type the registry does not know
//! becomes a private type of every account (registered in it, as AWS lists private types).

use serde_json::Value;

use crate::ops::Emulator;
use crate::sts::{iso8601, query_error, query_ok, xml_escape, QueryAnswer};

const NAMESPACE: &str = "http://cloudformation.amazonaws.com/doc/2010-05-15/";
/// `MaxResults` when the caller gives none, and the most it may ask for.
const MAX_RESULTS: usize = 100;

/// Runs one CloudFormation call in `region`.
pub fn call(emu: &Emulator, region: &str, form: &[(String, String)]) -> QueryAnswer {
    let param = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let result = match param("Action") {
        Some("ListTypes") => list_types(emu, region, &param),
        Some("DescribeType") => describe_type(emu, region, &param),
        Some(other) => Err(error(
            400,
            "InvalidAction",
            &format!("Could not find operation {other} for version 2010-05-15"),
        )),
        None => Err(error(400, "MissingAction", "Missing Action")),
    };
    result.unwrap_or_else(|e| e)
}

fn error(status: u16, code: &str, message: &str) -> QueryAnswer {
    query_error(NAMESPACE, status, code, message)
}

/// The names a visibility lists, sorted, with their descriptions.
fn types_of(emu: &Emulator, region: &str, private: bool) -> Vec<(String, String)> {
    let registry = emu.registry();
    let description = |schema: &Value| schema.get("description").and_then(Value::as_str).unwrap_or_default().to_string();
    let mut out: Vec<(String, String)> = emu.read_config(|c| {
        let described = &c.described_schemas;
        if private {
            described
                .iter()
                .filter(|(name, _)| registry.get(name).is_none())
                .map(|(name, schema)| (name.clone(), description(schema)))
                .collect()
        } else {
            registry
                .types()
                .filter(|t| t.handlers.is_some() && t.exists_in(region))
                .map(|t| match described.get(&t.type_name) {
                    Some(schema) => (t.type_name.clone(), description(schema)),
                    None => (t.type_name.clone(), t.description.clone()),
                })
                .collect()
        }
    });
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A type's schema and whether it is private; `None` when the region has no such type.
fn schema_of(emu: &Emulator, region: &str, name: &str) -> Option<(bool, Value)> {
    let described = emu.read_config(|c| c.described_schemas.get(name).cloned());
    match emu.registry().get(name) {
        Some(t) if t.handlers.is_some() && t.exists_in(region) => Some((false, described.unwrap_or_else(|| t.provider_schema()))),
        Some(_) => None,
        None => described.map(|schema| (true, schema)),
    }
}

fn list_types<'a>(emu: &Emulator, region: &str, param: &dyn Fn(&str) -> Option<&'a str>) -> Result<QueryAnswer, QueryAnswer> {
    if let Some(t) = param("Type").filter(|t| *t != "RESOURCE") {
        // Hooks and modules exist in AWS; the emulator has resource types only.
        if !matches!(t, "HOOK" | "MODULE") {
            return Err(error(400, "ValidationError", &format!("1 validation error detected: Value '{t}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [RESOURCE, MODULE, HOOK]")));
        }
        return Ok(query_ok(NAMESPACE, "ListTypes", "<TypeSummaries/>"));
    }
    // As AWS: PRIVATE unless the caller says otherwise.
    let private = match param("Visibility").unwrap_or("PRIVATE") {
        "PRIVATE" => true,
        "PUBLIC" => false,
        other => {
            return Err(error(400, "ValidationError", &format!("1 validation error detected: Value '{other}' at 'visibility' failed to satisfy constraint: Member must satisfy enum value set: [PUBLIC, PRIVATE]")));
        }
    };
    let max = match param("MaxResults").map(str::parse::<usize>) {
        None => MAX_RESULTS,
        Some(Ok(n)) if (1..=MAX_RESULTS).contains(&n) => n,
        Some(_) => {
            return Err(error(
                400,
                "ValidationError",
                "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100",
            ));
        }
    };
    let prefix = param("Filters.TypeNamePrefix").unwrap_or("");
    let start = match param("NextToken") {
        None => 0,
        Some(token) => token
            .strip_prefix("emulated-")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| error(400, "ValidationError", "NextToken is invalid"))?,
    };
    let types: Vec<(String, String)> = types_of(emu, region, private)
        .into_iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .collect();
    let page = types.iter().skip(start).take(max);
    let mut body = String::from("<TypeSummaries>");
    let updated = iso8601(emu.started_at());
    for (name, description) in page {
        body.push_str(&format!(
            "<member><Type>RESOURCE</Type><TypeName>{}</TypeName><TypeArn>{}</TypeArn><LastUpdated>{updated}</LastUpdated>\
             <Description>{}</Description><IsActivated>{}</IsActivated></member>",
            xml_escape(name),
            xml_escape(&type_arn(region, name, private)),
            xml_escape(description),
            !private,
        ));
    }
    body.push_str("</TypeSummaries>");
    if start + max < types.len() {
        body.push_str(&format!("<NextToken>emulated-{}</NextToken>", start + max));
    }
    Ok(query_ok(NAMESPACE, "ListTypes", &body))
}

fn type_arn(region: &str, name: &str, private: bool) -> String {
    let path = name.replace("::", "-");
    if private {
        format!(
            "arn:aws:cloudformation:{region}:{}:type/resource/{path}",
            crate::ops::DEFAULT_ACCOUNT_ID
        )
    } else {
        format!("arn:aws:cloudformation:{region}::type/resource/{path}")
    }
}

fn describe_type<'a>(emu: &Emulator, region: &str, param: &dyn Fn(&str) -> Option<&'a str>) -> Result<QueryAnswer, QueryAnswer> {
    let name = match (param("TypeName"), param("Arn")) {
        (Some(name), None) => name.to_string(),
        (None, Some(arn)) => arn
            .rsplit('/')
            .next()
            .map(|p| p.replace('-', "::"))
            .ok_or_else(|| error(400, "ValidationError", "Arn is malformed"))?,
        _ => return Err(error(400, "ValidationError", "Either Arn or TypeName and Type must be specified")),
    };
    let Some((private, schema)) = schema_of(emu, region, &name) else {
        return Err(error(404, "TypeNotFoundException", &format!("The type '{name}' cannot be found.")));
    };
    let body = format!(
        "<Arn>{}</Arn><Type>RESOURCE</Type><TypeName>{}</TypeName><Schema>{}</Schema>\
         <ProvisioningType>FULLY_MUTABLE</ProvisioningType><DeprecatedStatus>LIVE</DeprecatedStatus>\
         <Visibility>{}</Visibility><LastUpdated>{}</LastUpdated>",
        xml_escape(&type_arn(region, &name, private)),
        xml_escape(&name),
        xml_escape(&schema.to_string()),
        if private { "PRIVATE" } else { "PUBLIC" },
        iso8601(emu.started_at()),
    );
    Ok(query_ok(NAMESPACE, "DescribeType", &body))
}
