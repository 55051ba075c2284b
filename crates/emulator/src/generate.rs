//! Deterministic demo resources generated from resource schemas.
//!
//! Each (region, type) is seeded from a fixed seed, so the same configuration always shows the
//! same resources. Values honour the schema: enums, patterns, lengths, min/max, formats such as
//! ARNs and `vpc-…` ids, nested objects and tag arrays.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use resource_schemas::ResourceType;
use serde_json::{json, Map, Value};

use crate::pattern;

/// The account id every generated ARN uses.
pub const ACCOUNT_ID: &str = "123456789012";

/// A stable 64-bit hash (FNV-1a); std's hasher is randomised per process.
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

/// Generates resources of one type in one account and region.
pub struct Generator<'a> {
    resource: &'a ResourceType,
    region: &'a str,
    account: &'a str,
    rng: StdRng,
}

impl<'a> Generator<'a> {
    pub fn new(resource: &'a ResourceType, at: &'a crate::ops::Caller, seed: u64, index: usize) -> Generator<'a> {
        let region = at.region.as_str();
        let h = stable_hash(&[&seed.to_string(), region, &resource.type_name, &index.to_string()]);
        Generator {
            resource,
            region,
            account: &at.account,
            rng: StdRng::seed_from_u64(h),
        }
    }

    /// A full resource model. `fixed` values (parents, the caller's own) win over generated ones.
    pub fn resource(&mut self, index: usize, fixed: &Map<String, Value>) -> Map<String, Value> {
        let props = self.resource.properties();
        let primary = self.resource.primary_identifier_names();
        let mut out = Map::new();
        for (name, schema) in props {
            if self.resource.is_write_only(name) {
                continue;
            }
            if let Some(v) = fixed.get(name) {
                out.insert(name.clone(), v.clone());
                continue;
            }
            let include = primary.contains(&name.as_str())
                || self.resource.is_required(name)
                || self.resource.is_read_only(name)
                || self.rng.random_bool(0.7);
            if !include {
                continue;
            }
            let value = if primary.contains(&name.as_str()) {
                self.identifier_value(name, schema, index)
            } else {
                self.value(name, schema, 0)
            };
            if let Some(v) = value {
                out.insert(name.clone(), v);
            }
        }
        out
    }

    /// A value of `schema` for a property the caller did not give (read-only ones on create).
    pub fn property(&mut self, name: &str, index: usize) -> Option<Value> {
        let schema = self.resource.properties().get(name)?.clone();
        if self.resource.primary_identifier_names().contains(&name) {
            self.identifier_value(name, &schema, index)
        } else {
            self.value(name, &schema, 0)
        }
    }

    fn resource_kebab(&self) -> String {
        let (_, _, name) = self.resource.name_parts();
        kebab(name)
    }

    fn service(&self) -> String {
        self.resource.name_parts().1.to_ascii_lowercase()
    }

    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from_digit(self.rng.random_range(0..16), 16).unwrap_or('0'))
            .collect()
    }

    fn arn(&mut self, what: &str, index: usize) -> String {
        let suffix = self.hex(8);
        format!(
            "arn:aws:{}:{}:{}:{what}/{what}-{index:04}-{suffix}",
            self.service(),
            self.region,
            self.account
        )
    }

    /// Unique per index: identifiers must not collide within a (region, type).
    fn identifier_value(&mut self, name: &str, schema: &Value, index: usize) -> Option<Value> {
        let ty = schema.get("type").and_then(Value::as_str).unwrap_or("string");
        match ty {
            "integer" | "number" => return Some(json!(index as i64 + 1)),
            "string" => {}
            _ => return self.value(name, schema, 0),
        }
        let what = self.resource_kebab();
        let lower = name.to_ascii_lowercase();
        // Identified by the account: one resource per account and region (a singleton, such
        // as block-public-access settings), whatever the index.
        if matches!(lower.as_str(), "accountid" | "awsaccountid" | "account") {
            return Some(Value::String(self.account.to_string()));
        }
        let candidate = if let Some(prefix) = schema.get("format").and_then(Value::as_str).and_then(format_prefix) {
            format!("{prefix}-{:04x}{}", index, self.hex(13))
        } else if lower.ends_with("arn") {
            self.arn(&what, index)
        } else if lower.ends_with("url") {
            format!(
                "https://{}.{}.amazonaws.com/{}/{what}-{index:04}",
                self.service(),
                self.region,
                self.account
            )
        } else if lower.ends_with("id") {
            format!("{}-{:04x}{}", initials(self.resource.name_parts().2), index, self.hex(13))
        } else {
            format!("{what}-{index:04}")
        };
        if fits(schema, &candidate) {
            return Some(Value::String(candidate));
        }
        let generated = self.string(name, schema)?;
        // Make it unique without breaking the pattern when we can; else accept the collision
        // risk (the store re-rolls duplicates).
        let unique = format!("{generated}{index}");
        Some(Value::String(if fits(schema, &unique) { unique } else { generated }))
    }

    /// A value for `schema`; `None` when nothing sensible fits (the property is left out).
    pub fn value(&mut self, name: &str, schema: &Value, depth: usize) -> Option<Value> {
        if depth > 4 {
            return None;
        }
        if let Some(v) = schema.get("const") {
            return Some(v.clone());
        }
        if let Some(Value::Array(options)) = schema.get("enum") {
            if !options.is_empty() {
                return Some(options[self.rng.random_range(0..options.len())].clone());
            }
        }
        if name == "Tags" {
            return Some(self.tags(schema));
        }
        let ty = match schema.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(Value::Array(ts)) => ts.first().and_then(Value::as_str).unwrap_or("string"),
            _ if schema.get("properties").is_some() => "object",
            _ if schema.get("items").is_some() => "array",
            _ if schema.get("$ref").is_some() => return None,
            _ => "string",
        };
        match ty {
            "string" => self.string(name, schema).map(Value::String),
            "integer" => {
                let min = schema.get("minimum").and_then(Value::as_i64).unwrap_or(1);
                let max = schema
                    .get("maximum")
                    .and_then(Value::as_i64)
                    .unwrap_or(min.saturating_add(99))
                    .max(min);
                Some(json!(self.rng.random_range(min..=max.min(min.saturating_add(10_000)))))
            }
            "number" => {
                let min = schema.get("minimum").and_then(Value::as_f64).unwrap_or(0.0);
                let max = schema.get("maximum").and_then(Value::as_f64).unwrap_or(min + 100.0).max(min);
                let v: f64 = self.rng.random_range(min..=max);
                Some(json!((v * 100.0).round() / 100.0))
            }
            "boolean" => Some(Value::Bool(self.rng.random_bool(0.5))),
            "array" => {
                let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
                let max = schema.get("maxItems").and_then(Value::as_u64).map(|m| m as usize).unwrap_or(3);
                let n = if depth >= 3 { min } else { min.max(1).min(max).min(min.max(2)) };
                let items = schema.get("items").cloned().unwrap_or(json!({"type": "string"}));
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    if let Some(v) = self.value(&format!("{name}{i}"), &items, depth + 1) {
                        if !out.contains(&v) {
                            out.push(v);
                        }
                    }
                }
                Some(Value::Array(out))
            }
            _ => Some(self.object(schema, depth)),
        }
    }

    fn object(&mut self, schema: &Value, depth: usize) -> Value {
        let mut out = Map::new();
        let Some(Value::Object(props)) = schema.get("properties") else {
            if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
                return Value::Object(out);
            }
            out.insert("key".into(), Value::String(format!("value-{}", self.hex(4))));
            return Value::Object(out);
        };
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        // Alternatives (`oneOf` of required sets): honour the first one.
        let alt_required: Vec<String> = ["oneOf", "anyOf"]
            .iter()
            .filter_map(|k| schema.get(*k).and_then(Value::as_array).and_then(|a| a.first()))
            .filter_map(|first| first.get("required").and_then(Value::as_array))
            .flat_map(|r| r.iter().filter_map(Value::as_str).map(str::to_string))
            .collect();
        let has_alternatives = schema.get("oneOf").is_some() || schema.get("anyOf").is_some();
        for (k, sub) in props {
            let needed = required.contains(&k.as_str()) || alt_required.contains(k);
            let optional_ok = !has_alternatives && depth < 2 && self.rng.random_bool(0.5);
            if needed || optional_ok {
                if let Some(v) = self.value(k, sub, depth + 1) {
                    out.insert(k.clone(), v);
                }
            }
        }
        Value::Object(out)
    }

    fn tags(&mut self, schema: &Value) -> Value {
        const TAGS: &[(&str, &[&str])] = &[
            ("env", &["prod", "staging", "dev"]),
            ("team", &["platform", "security", "data"]),
            ("owner", &["alice", "bob", "carol"]),
        ];
        let pick = |rng: &mut StdRng, values: &[&str]| values[rng.random_range(0..values.len())].to_string();
        if schema.get("type").and_then(Value::as_str) == Some("object") {
            let mut m = Map::new();
            for (k, values) in &TAGS[..2] {
                m.insert(k.to_string(), Value::String(pick(&mut self.rng, values)));
            }
            return Value::Object(m);
        }
        let n = self.rng.random_range(1..=TAGS.len());
        Value::Array(
            TAGS[..n]
                .iter()
                .map(|(k, values)| json!({"Key": k, "Value": pick(&mut self.rng, values)}))
                .collect(),
        )
    }

    fn string(&mut self, name: &str, schema: &Value) -> Option<String> {
        let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
        let max = schema.get("maxLength").and_then(Value::as_u64).unwrap_or(2048) as usize;
        let lower = name.to_ascii_lowercase();
        let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
        let what = self.resource_kebab();
        let candidate = if let Some(prefix) = format_prefix(format) {
            format!("{prefix}-{}", self.hex(17))
        } else if format == "date-time"
            || lower.ends_with("time")
            || lower.ends_with("date")
            || lower.ends_with("at") && lower.contains("creat")
        {
            let day = self.rng.random_range(1..=28);
            let month = self.rng.random_range(1..=12);
            format!(
                "2025-{month:02}-{day:02}T{:02}:{:02}:00Z",
                self.rng.random_range(0..24),
                self.rng.random_range(0..60)
            )
        } else if format == "uri" || lower.ends_with("url") || lower.ends_with("uri") || lower.ends_with("endpoint") {
            format!("https://{what}.example.com/{}", self.hex(6))
        } else if lower.ends_with("arn") || format.ends_with(".Arn") {
            let i = self.rng.random_range(0..1000);
            self.arn(&what, i)
        } else if lower.contains("cidr") {
            format!("10.{}.0.0/16", self.rng.random_range(0..255))
        } else if lower == "region" || lower.ends_with("region") {
            self.region.to_string()
        } else if lower.contains("account") {
            self.account.to_string()
        } else if lower.contains("availabilityzone") && !lower.ends_with("id") {
            format!("{}{}", self.region, ['a', 'b', 'c'][self.rng.random_range(0..3)])
        } else if lower.ends_with("id") {
            let prefix = initials(name.trim_end_matches("Id"));
            format!("{}-{}", if prefix.is_empty() { "id" } else { &prefix }, self.hex(17))
        } else if lower.ends_with("name") {
            format!("{what}-{}", self.hex(6))
        } else if lower.contains("description") {
            format!("Demo {what} managed by cloudpg")
        } else {
            format!("{}-{}", kebab(name), self.hex(6))
        };
        if fits(schema, &candidate) {
            return Some(candidate);
        }
        if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
            if let Some(s) = pattern::generate(p, min, max, &mut self.rng) {
                return Some(s);
            }
        }
        // Fit the length, even if a pattern could not be honoured.
        let mut s: String = candidate.chars().take(max).collect();
        while s.chars().count() < min {
            s.push('x');
        }
        Some(s)
    }
}

/// Whether a string satisfies the schema's length and pattern.
fn fits(schema: &Value, s: &str) -> bool {
    let len = s.chars().count();
    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = schema.get("maxLength").and_then(Value::as_u64).unwrap_or(u64::MAX) as usize;
    let enum_ok = match schema.get("enum") {
        Some(Value::Array(options)) => options.iter().any(|o| o.as_str() == Some(s)),
        _ => true,
    };
    len >= min && len <= max && enum_ok && schema.get("pattern").and_then(Value::as_str).is_none_or(|p| pattern::matches(p, s))
}

/// Id prefixes of the `AWS::Service::Type.Id` formats the enhanced schemas use.
fn format_prefix(format: &str) -> Option<&'static str> {
    Some(match format {
        "AWS::EC2::VPC.Id" => "vpc",
        "AWS::EC2::Subnet.Id" => "subnet",
        "AWS::EC2::SecurityGroup.Id" | "AWS::EC2::SecurityGroup.Ids" => "sg",
        "AWS::EC2::Image.Id" => "ami",
        "AWS::EC2::Instance.Id" => "i",
        "AWS::EC2::VPCEndpoint.Id" => "vpce",
        "AWS::EC2::InternetGateway.Id" => "igw",
        "AWS::EC2::RouteTable.Id" => "rtb",
        "AWS::EC2::NetworkInterface.Id" => "eni",
        "AWS::EC2::NatGateway.Id" => "nat",
        "AWS::EC2::TransitGateway.Id" => "tgw",
        "AWS::EC2::KeyPair.KeyName" => "key",
        "AWS::EC2::Volume.Id" => "vol",
        "AWS::EC2::PrefixList.Id" => "pl",
        "AWS::EC2::EIP.AllocationId" => "eipalloc",
        "AWS::EC2::CarrierGateway.Id" => "cagw",
        "AWS::EC2::NetworkAcl.Id" => "acl",
        "AWS::EC2::LaunchTemplate.Id" => "lt",
        "AWS::EC2::SecurityGroup.GroupId" => "sg",
        "AWS::EC2::PlacementGroup.Id" => "pg",
        "AWS::EC2::CapacityReservation.Id" => "cr",
        "AWS::EC2::VPNGateway.Id" => "vgw",
        "AWS::EC2::CustomerGateway.Id" => "cgw",
        _ => return None,
    })
}

/// `InstanceConnectEndpoint` → `instance-connect-endpoint`.
pub fn kebab(name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower) {
                out.push('-');
            }
        }
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// `InstanceConnectEndpoint` → `ice`.
fn initials(name: &str) -> String {
    kebab(name).split('-').filter_map(|w| w.chars().next()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use resource_schemas::Registry;

    #[test]
    fn generation_is_deterministic_and_honours_the_schema() {
        let reg = Registry::shared().unwrap();
        let t = reg.get("AWS::EC2::InstanceConnectEndpoint").unwrap();
        let a = Generator::new(t, &crate::ops::Caller::new(ACCOUNT_ID, "us-east-1"), 42, 0).resource(0, &Map::new());
        let b = Generator::new(t, &crate::ops::Caller::new(ACCOUNT_ID, "us-east-1"), 42, 0).resource(0, &Map::new());
        assert_eq!(a, b);
        assert!(a["Id"].as_str().unwrap().starts_with("ice-"), "{a:?}");
        assert!(a["SubnetId"].is_string());
        assert!(!a.contains_key("ClientToken"), "write-only properties are never generated");
        let states = t.properties()["State"]["enum"].as_array().unwrap();
        assert!(states.contains(&a["State"]));
        let c = Generator::new(t, &crate::ops::Caller::new(ACCOUNT_ID, "us-east-1"), 42, 1).resource(1, &Map::new());
        assert_ne!(a["Id"], c["Id"]);
    }

    #[test]
    fn every_type_generates_without_panicking() {
        let reg = Registry::shared().unwrap();
        for t in reg.types().filter(|t| t.handlers.is_some()) {
            let r = Generator::new(t, &crate::ops::Caller::new(ACCOUNT_ID, "us-east-1"), 1, 0).resource(0, &Map::new());
            for id in t.primary_identifier_names() {
                if t.properties().contains_key(id) {
                    assert!(r.contains_key(id), "{} lacks identifier {id}", t.type_name);
                }
            }
        }
    }

    #[test]
    fn kebab_and_initials() {
        assert_eq!(kebab("InstanceConnectEndpoint"), "instance-connect-endpoint");
        assert_eq!(kebab("VPC"), "vpc");
        assert_eq!(initials("InstanceConnectEndpoint"), "ice");
    }
}

#[cfg(test)]
mod conformance {
    use super::*;
    use crate::validate::check_model;
    use resource_schemas::Registry;

    /// Demo data of the common types passes the same validation user input gets.
    #[test]
    fn seeded_types_generate_valid_models() {
        let reg = Registry::shared().unwrap();
        for name in crate::ALWAYS_SEEDED {
            let t = reg.get(name).unwrap();
            for i in 0..5 {
                let model = Generator::new(t, &crate::ops::Caller::new(ACCOUNT_ID, "us-east-1"), 42, i).resource(i, &Map::new());
                let writable: Map<String, Value> = model.into_iter().filter(|(k, _)| !t.is_read_only(k)).collect();
                let problems = check_model(t, &writable, false);
                assert!(problems.is_empty(), "{name}: {}", problems.message());
            }
        }
    }
}
