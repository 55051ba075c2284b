//! Which type supplies a key a child type's list handler needs (`ClusterName` of
//! `AWS::EKS::Nodegroup` is the `Name` of an `AWS::EKS::Cluster`). The emulator seeds children
//! under their parents by this answer and the server fans a list out over the parents by it,
//! so the two agree on every type.

use crate::{Registry, ResourceType};

/// Where the values of a list handler key come from.
#[derive(Debug, Clone, Copy)]
pub struct ParentKey<'a> {
    pub parent: &'a ResourceType,
    /// The parent's property holding the value.
    pub property: &'a str,
}

/// One parent type supplying several keys at once: each of its resources gives one
/// consistent set of values (an AppConfig environment carries its application's id too).
#[derive(Debug, Clone)]
pub struct ParentPlan<'a> {
    pub parent: &'a ResourceType,
    /// (the child's list key, the parent's property holding its value)
    pub keys: Vec<(String, &'a str)>,
}

/// Endings of a key that name the parent by its resource name (`Cluster` + `Name`).
const KEY_SUFFIXES: [&str; 6] = ["Name", "Id", "Arn", "ARN", "Identifier", ""];

impl Registry {
    /// The one parent whose resources supply all of `keys` of `child`'s list handler: the
    /// parent of one of the keys (by [`Registry::list_parent`]) that also has every other key
    /// as a property (the parent of the deepest key carries its own parents' keys).
    pub fn list_parents<'a>(&'a self, child: &ResourceType, keys: &[String]) -> Option<ParentPlan<'a>> {
        let found: Vec<ParentKey<'a>> = keys.iter().map(|k| self.list_parent(child, k)).collect::<Option<_>>()?;
        found.iter().rev().find_map(|candidate| {
            let parent = candidate.parent;
            let keys = keys
                .iter()
                .zip(&found)
                .map(|(key, f)| {
                    if f.parent.type_name == parent.type_name {
                        Some((key.clone(), f.property))
                    } else {
                        parent
                            .properties()
                            .get_key_value(key.as_str())
                            .map(|(name, _)| (key.clone(), name.as_str()))
                    }
                })
                .collect::<Option<Vec<_>>>()?;
            Some(ParentPlan { parent, keys })
        })
    }

    /// The parent of `child`'s list key `key`, found by three rules in order:
    /// 0. the child's property for the key says so with a `relationshipRef` (the first that
    ///    names a known type);
    /// 1. the key is a type's resource name plus an ending (`ClusterName`, `AppId`,
    ///    `RegistryName`) and that type, in the same service, has the key or the ending as a
    ///    property (else its first primary identifier property);
    /// 2. exactly one other type of the service generates the key: has it as a read-only
    ///    property (`ApiId` of `AWS::AppSync::GraphQLApi`).
    pub fn list_parent<'a>(&'a self, child: &ResourceType, key: &str) -> Option<ParentKey<'a>> {
        if let Some(found) = self.related(child, key) {
            return Some(found);
        }
        let (vendor, service, _) = child.name_parts();
        for suffix in KEY_SUFFIXES {
            let Some(stem) = key.strip_suffix(suffix).filter(|s| !s.is_empty()) else {
                continue;
            };
            let Some(parent) = self
                .get(&format!("{vendor}::{service}::{stem}"))
                .filter(|p| p.type_name != child.type_name)
            else {
                continue;
            };
            let ending = if suffix.is_empty() { "Name" } else { suffix };
            let property = [key, ending]
                .into_iter()
                .find_map(|p| parent.properties().get_key_value(p).map(|(k, _)| k.as_str()))
                .or_else(|| parent.primary_identifier_names().into_iter().next())?;
            return Some(ParentKey { parent, property });
        }
        let prefix = format!("{vendor}::{service}::");
        let mut generators = self.types().filter(|t| {
            t.type_name.starts_with(&prefix) && t.type_name != child.type_name && t.is_read_only(key) && t.properties().contains_key(key)
        });
        match (generators.next(), generators.next()) {
            (Some(parent), None) => {
                let property = parent.properties().get_key_value(key).map(|(k, _)| k.as_str())?;
                Some(ParentKey { parent, property })
            }
            _ => None,
        }
    }
}

impl Registry {
    /// Rule 0: a `relationshipRef` in the key's property schema (inside `anyOf` and the like
    /// too), `{"typeName": "AWS::EC2::VPNGateway", "propertyPath": "/properties/VPNGatewayId"}`.
    fn related<'a>(&'a self, child: &ResourceType, key: &str) -> Option<ParentKey<'a>> {
        let mut refs = Vec::new();
        collect_relationship_refs(child.properties().get(key)?, &mut refs);
        refs.into_iter().find_map(|(type_name, path)| {
            let parent = self.get(type_name).filter(|p| p.type_name != child.type_name)?;
            let name = path.strip_prefix("/properties/")?;
            let (property, _) = parent.properties().get_key_value(name)?;
            Some(ParentKey {
                parent,
                property: property.as_str(),
            })
        })
    }
}

fn collect_relationship_refs<'v>(schema: &'v serde_json::Value, out: &mut Vec<(&'v str, &'v str)>) {
    match schema {
        serde_json::Value::Object(map) => {
            if let Some(r) = map.get("relationshipRef") {
                if let (Some(t), Some(p)) = (
                    r.get("typeName").and_then(serde_json::Value::as_str),
                    r.get("propertyPath").and_then(serde_json::Value::as_str),
                ) {
                    out.push((t, p));
                }
            }
            map.values().for_each(|v| collect_relationship_refs(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_relationship_refs(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::Registry;

    fn parent(child: &str, key: &str) -> Option<(String, String)> {
        let registry = Registry::shared().expect("the shipped schemas load");
        let child = registry.get(child).expect("type exists");
        registry
            .list_parent(child, key)
            .map(|p| (p.parent.type_name.clone(), p.property.to_string()))
    }

    /// Prints, for every list key a handler requires, where its values come from
    /// (`cargo test -p resource-schemas list_parent_report -- --ignored --nocapture`).
    #[test]
    #[ignore = "a report, not a check"]
    fn list_parent_report() {
        let registry = Registry::shared().expect("the shipped schemas load");
        for t in registry.types().filter(|t| t.handlers.is_some()) {
            let Some(hs) = t.list_handler_schema().filter(|h| h.demands_model()) else {
                continue;
            };
            let keys: Vec<String> = if hs.required.is_empty() {
                hs.one_of.first().or(hs.any_of.first()).cloned().unwrap_or_default()
            } else {
                hs.required.clone()
            };
            for key in keys {
                let found = registry.list_parent(t, &key);
                println!(
                    "{}\t{key}\t{}",
                    t.type_name,
                    found
                        .map(|p| format!("{}.{}", p.parent.type_name, p.property))
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
    }

    #[test]
    fn parents_by_resource_name_then_by_generated_key() {
        let cluster = Some(("AWS::EKS::Cluster".to_string(), "Name".to_string()));
        assert_eq!(parent("AWS::EKS::Nodegroup", "ClusterName"), cluster);
        assert_eq!(
            parent("AWS::Amplify::Branch", "AppId"),
            Some(("AWS::Amplify::App".to_string(), "AppId".to_string()))
        );
        assert_eq!(
            parent("AWS::EventSchemas::Schema", "RegistryName"),
            Some(("AWS::EventSchemas::Registry".to_string(), "RegistryName".to_string()))
        );
        // `Api` + `Id`: the resource-name rule wins over the GraphQLApi that also generates one.
        assert_eq!(
            parent("AWS::AppSync::DataSource", "ApiId"),
            Some(("AWS::AppSync::Api".to_string(), "ApiId".to_string()))
        );
        assert_eq!(parent("AWS::EKS::Nodegroup", "NoSuchKey"), None);
        // Named by a relationshipRef, though no rule of names would find it.
        assert_eq!(
            parent("AWS::DirectConnect::DirectConnectGatewayAssociation", "AssociatedGatewayId"),
            Some(("AWS::EC2::VPNGateway".to_string(), "VPNGatewayId".to_string()))
        );
    }

    #[test]
    fn several_keys_come_from_the_deepest_parent() {
        let registry = Registry::shared().expect("the shipped schemas load");
        let child = registry.get("AWS::AppConfig::Deployment").expect("type exists");
        let plan = registry
            .list_parents(child, &["ApplicationId".to_string(), "EnvironmentId".to_string()])
            .expect("a parent carries both keys");
        assert_eq!(plan.parent.type_name, "AWS::AppConfig::Environment");
        assert_eq!(
            plan.keys,
            vec![
                ("ApplicationId".to_string(), "ApplicationId"),
                ("EnvironmentId".to_string(), "EnvironmentId")
            ]
        );
    }
}
