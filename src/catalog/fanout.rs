//! Child types listed without their parent: when a list handler needs keys the WHERE clause
//! does not give (`awscc.eks.nodegroups` needs `cluster_name`), the scan lists the parent type
//! (`AWS::EKS::Cluster`) and lists the children under each parent, filling the key columns of
//! every row. Which parent supplies which key is [`resource_schemas::Registry::list_parents`],
//! the rule the emulator seeds children by. A parent whose own list needs keys is fanned out
//! over in turn, at most [`MAX_DEPTH`] levels deep.

use std::sync::Arc;

use futures::future::BoxFuture;
use resource_schemas::ListHandlerSchema;
use serde_json::{Map, Value};

use super::model::{Catalog, TableDef};
use crate::cloudcontrol::budget::CallBudget;
use crate::cloudcontrol::cache::CachedApi;
use crate::cloudcontrol::ListRequest;
use crate::error::Result;

/// Parents of parents of parents at most.
pub const MAX_DEPTH: usize = 3;

/// A list key the parent supplies.
#[derive(Debug, Clone)]
pub struct FanKey {
    /// The key in the child's `ResourceModel`.
    pub model_key: String,
    /// The parent's property holding the value.
    pub property: String,
    /// The child's column the value fills, when it has one.
    pub column: Option<String>,
}

/// How to find the parent values a child list needs.
#[derive(Debug, Clone)]
pub struct FanOut {
    /// The parent type's full table.
    pub parent: Arc<TableDef>,
    pub keys: Vec<FanKey>,
    /// Keys of the parent's own list that the statement gave.
    pub parent_given: Map<String, Value>,
    /// How to list the parent when its own list needs keys nobody gave.
    pub nested: Option<Box<FanOut>>,
}

/// The keys a list handler still needs beyond `given`: every required one, and of the
/// `oneOf`/`anyOf` sets (when none is complete) the one missing the fewest.
pub fn missing_keys(hs: &ListHandlerSchema, given: &[&str]) -> Vec<String> {
    let missing = |keys: &[String]| keys.iter().filter(|k| !given.contains(&k.as_str())).cloned().collect::<Vec<_>>();
    let mut out = missing(&hs.required);
    for alternatives in [&hs.one_of, &hs.any_of] {
        if alternatives.is_empty() || alternatives.iter().any(|alt| missing(alt).is_empty()) {
            continue;
        }
        if let Some(fewest) = alternatives.iter().map(|alt| missing(alt)).min_by_key(Vec::len) {
            for key in fewest {
                if !out.contains(&key) {
                    out.push(key);
                }
            }
        }
    }
    out
}

/// The fan-out that supplies `keys` of `child`'s list, given the keys in `given`; why there is
/// none otherwise (for the error the statement gets).
pub fn plan(catalog: &Catalog, child: &TableDef, keys: &[String], given: &Map<String, Value>, depth: usize) -> Result<FanOut, String> {
    let plan = catalog
        .registry
        .list_parents(child.resource, keys)
        .ok_or_else(|| format!("no resource type supplies {}", keys.join(", ")))?;
    let parent = catalog
        .table_for_type(&plan.parent.type_name)
        .filter(|t| t.can_list())
        .ok_or_else(|| format!("its parent type {} cannot be listed", plan.parent.type_name))?
        .clone();
    let columns = child.parent_columns();
    let keys = plan
        .keys
        .iter()
        .map(|(key, property)| FanKey {
            model_key: key.clone(),
            property: property.to_string(),
            column: columns.iter().find(|c| &c.model_key == key).map(|c| c.column.clone()),
        })
        .collect();
    let parent_given: Map<String, Value> = match parent.list_handler_schema() {
        Some(hs) => hs
            .params
            .iter()
            .filter_map(|p| given.get(&p.name).map(|v| (p.name.clone(), v.clone())))
            .collect(),
        None => Map::new(),
    };
    let given_names: Vec<&str> = parent_given.keys().map(String::as_str).collect();
    let parent_missing = parent
        .list_handler_schema()
        .map(|hs| missing_keys(hs, &given_names))
        .unwrap_or_default();
    let nested = if parent_missing.is_empty() {
        None
    } else if depth + 1 >= MAX_DEPTH {
        return Err(format!("its parents nest deeper than {MAX_DEPTH} levels"));
    } else {
        Some(Box::new(plan_nested(catalog, &parent, &parent_missing, &parent_given, depth)?))
    };
    Ok(FanOut {
        parent,
        keys,
        parent_given,
        nested,
    })
}

fn plan_nested(
    catalog: &Catalog,
    parent: &TableDef,
    missing: &[String],
    given: &Map<String, Value>,
    depth: usize,
) -> Result<FanOut, String> {
    plan(catalog, parent, missing, given, depth + 1)
        .map_err(|why| format!("listing {} needs {}: {why}", parent.type_name(), missing.join(", ")))
}

/// What a scan needs to list a parent.
pub struct Lister<'a> {
    pub api: &'a CachedApi,
    pub place: &'a crate::cloudcontrol::Place,
    pub budget: &'a CallBudget,
    pub bypass_cache: bool,
}

impl FanOut {
    /// One set of key values per parent resource in the region (`{"ClusterName": "prod"}`),
    /// without repeats. A parent the list does not describe fully is read with GetResource.
    pub fn values<'a>(&'a self, lister: &'a Lister<'a>) -> BoxFuture<'a, Result<Vec<Map<String, Value>>>> {
        Box::pin(async move {
            let models = match &self.nested {
                Some(nested) => nested
                    .values(lister)
                    .await?
                    .into_iter()
                    .map(|mut keys| {
                        keys.extend(self.parent_given.clone());
                        keys
                    })
                    .collect(),
                None => vec![self.parent_given.clone()],
            };
            lister.budget.check_planned(
                models.len() as u64,
                &format!(
                    "a ListResources of {} under each of its {} parents in {}",
                    self.parent.type_name(),
                    models.len(),
                    lister.place
                ),
            )?;
            let mut out: Vec<Map<String, Value>> = Vec::new();
            for model in models {
                for values in self.values_under(lister, model).await? {
                    if !out.contains(&values) {
                        out.push(values);
                    }
                }
            }
            Ok(out)
        })
    }

    async fn values_under(&self, lister: &Lister<'_>, model: Map<String, Value>) -> Result<Vec<Map<String, Value>>> {
        let type_name = self.parent.type_name().to_string();
        let request = ListRequest {
            place: lister.place.clone(),
            type_name: type_name.clone(),
            model: (!model.is_empty()).then(|| Value::Object(model).to_string()),
        };
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = lister
                .api
                .list_page_cached(&request, token.as_deref(), lister.bypass_cache, lister.budget)
                .await?;
            for resource in &page.resources {
                let mut values = self.keys_of(&resource.properties);
                if values.is_none() {
                    let read = lister
                        .api
                        .get_cached(lister.place, &type_name, &resource.identifier, lister.bypass_cache, lister.budget)
                        .await?;
                    values = read.as_ref().as_ref().and_then(|r| self.keys_of(&r.properties));
                }
                out.extend(values);
            }
            token = page.next_token.clone();
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// The child's keys from a parent's properties, when all are there.
    fn keys_of(&self, properties: &Map<String, Value>) -> Option<Map<String, Value>> {
        self.keys
            .iter()
            .map(|k| {
                properties
                    .get(&k.property)
                    .filter(|v| !v.is_null())
                    .map(|v| (k.model_key.clone(), v.clone()))
            })
            .collect()
    }

    /// `ListResources(parent)`, nested parents first, for EXPLAIN.
    pub fn describe(&self) -> String {
        let own = format!("ListResources({})", self.parent.type_name());
        match &self.nested {
            Some(nested) => format!("{} -> {own}", nested.describe()),
            None => own,
        }
    }
}

/// A key value as a column shows it: strings as they are, other JSON as its text.
pub fn column_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> &'static Catalog {
        static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
        CATALOG.get_or_init(|| Catalog::build(resource_schemas::Registry::shared().expect("the shipped schemas load")))
    }

    /// Over every listable type: how many list with region alone, how many fan out over a
    /// parent, how many still need keys and why
    /// (`cargo test --lib fan_out_report -- --ignored --nocapture`).
    #[test]
    #[ignore = "a report, not a check"]
    fn fan_out_report() {
        let (mut free, mut fanned, mut why) = (0, 0, std::collections::BTreeMap::<String, usize>::new());
        for table in catalog()
            .tables()
            .filter(|t| t.kind == super::super::model::TableKind::Full && t.can_list())
        {
            let missing = table.list_handler_schema().map(|hs| missing_keys(hs, &[])).unwrap_or_default();
            if missing.is_empty() {
                free += 1;
                continue;
            }
            match plan(catalog(), table, &missing, &Map::new(), 0) {
                Ok(_) => fanned += 1,
                Err(e) => *why.entry(e.split(" supplies ").next().unwrap_or(&e).to_string()).or_default() += 1,
            }
        }
        println!("list freely: {free}; fan out over a parent: {fanned}; still need keys: {why:?}");
    }

    #[test]
    fn nodegroups_fan_out_over_clusters() {
        let table = catalog().table("eks", "nodegroups").unwrap();
        let fan = plan(catalog(), table, &["ClusterName".to_string()], &Map::new(), 0).unwrap();
        assert_eq!(fan.parent.type_name(), "AWS::EKS::Cluster");
        assert_eq!(fan.keys[0].property, "Name");
        assert_eq!(fan.keys[0].column.as_deref(), Some("cluster_name"));
        assert!(fan.nested.is_none());
    }

    #[test]
    fn a_parent_needing_keys_is_fanned_out_over_in_turn() {
        let table = catalog().table("appconfig", "deployments").unwrap();
        let keys = ["ApplicationId".to_string(), "EnvironmentId".to_string()];
        let fan = plan(catalog(), table, &keys, &Map::new(), 0).unwrap();
        assert_eq!(fan.parent.type_name(), "AWS::AppConfig::Environment");
        let nested = fan.nested.as_ref().expect("environments are listed per application");
        assert_eq!(nested.parent.type_name(), "AWS::AppConfig::Application");
        assert_eq!(
            fan.describe(),
            "ListResources(AWS::AppConfig::Application) -> ListResources(AWS::AppConfig::Environment)"
        );
    }

    #[test]
    fn missing_keys_take_the_closest_alternative() {
        let hs: ListHandlerSchema = serde_json::from_value(serde_json::json!({
            "params": [{"name": "A"}, {"name": "B"}, {"name": "C"}],
            "required": ["A"],
            "oneOf": [["B", "C"], ["C"]]
        }))
        .unwrap();
        assert_eq!(missing_keys(&hs, &[]), vec!["A".to_string(), "C".to_string()]);
        assert_eq!(missing_keys(&hs, &["A", "C"]), Vec::<String>::new());
    }
}
