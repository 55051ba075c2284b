//! The least-privilege IAM policy for chosen tables (`cloudpg catalog iam-policy`): Cloud
//! Control's own actions, plus every permission the types' handlers declare in their schemas
//! (Cloud Control calls the service APIs with the caller's credentials, so those are needed
//! too). Read-only: the read and list handlers' permissions and the read actions; otherwise the
//! create, update and delete handlers' and the request-tracking actions as well.

use std::collections::BTreeSet;
use std::sync::Arc;

use resource_schemas::Operation;
use serde_json::{json, Value};

use super::model::{Catalog, TableDef};
use crate::error::Error;

/// Cloud Control actions every reader needs.
const READ_ACTIONS: &[&str] = &["cloudformation:GetResource", "cloudformation:ListResources"];
/// Cloud Control actions mutations need beyond reading.
const WRITE_ACTIONS: &[&str] = &[
    "cloudformation:CancelResourceRequest",
    "cloudformation:CreateResource",
    "cloudformation:DeleteResource",
    "cloudformation:GetResourceRequestStatus",
    "cloudformation:ListResourceRequests",
    "cloudformation:UpdateResource",
];

/// Which tables a policy covers.
#[derive(Debug, Clone, Default)]
pub struct PolicyScope {
    pub read_only: bool,
    /// Services (schemas) whose every table is covered.
    pub services: Vec<String>,
    /// Single tables (`ec2.vpcs`, `awscc.ec2.vpcs`).
    pub tables: Vec<String>,
}

/// The tables a scope names; every table when it names none. An unknown service or table is
/// an error naming it.
fn chosen_tables<'a>(catalog: &'a Catalog, scope: &PolicyScope) -> Result<Vec<&'a Arc<TableDef>>, Error> {
    if scope.services.is_empty() && scope.tables.is_empty() {
        return Ok(catalog.tables().collect());
    }
    let mut out: Vec<&Arc<TableDef>> = Vec::new();
    for service in &scope.services {
        let tables = catalog
            .tables_in(&service.to_ascii_lowercase())
            .ok_or_else(|| Error::UndefinedSchema {
                name: service.clone(),
                suggestions: Vec::new(),
            })?;
        out.extend(tables.values());
    }
    for name in &scope.tables {
        let table = catalog.resolve(&name.to_ascii_lowercase()).ok_or_else(|| Error::UndefinedTable {
            name: name.clone(),
            suggestions: catalog.closest_tables(name, 5),
        })?;
        out.push(table);
    }
    Ok(out)
}

/// The policy document, as IAM takes it.
pub fn iam_policy(catalog: &Catalog, scope: &PolicyScope) -> Result<Value, Error> {
    let tables = chosen_tables(catalog, scope)?;
    let mut operations = vec![Operation::Read, Operation::List];
    if !scope.read_only {
        operations.extend([Operation::Create, Operation::Update, Operation::Delete]);
    }
    let mut service_actions: BTreeSet<String> = BTreeSet::new();
    let mut types: BTreeSet<&str> = BTreeSet::new();
    for table in &tables {
        types.insert(table.type_name());
        for op in &operations {
            if let Some(handler) = table.resource.handler(*op) {
                service_actions.extend(handler.permissions.iter().map(|p| p.to_string()));
            }
        }
    }
    let mut cloud_control: Vec<&str> = READ_ACTIONS.to_vec();
    if !scope.read_only {
        cloud_control.extend(WRITE_ACTIONS);
    }
    cloud_control.sort_unstable();
    let mut statements = vec![json!({
        "Sid": "CloudControl",
        "Effect": "Allow",
        "Action": cloud_control,
        "Resource": "*",
    })];
    if !service_actions.is_empty() {
        statements.push(json!({
            "Sid": "ResourceHandlers",
            "Effect": "Allow",
            "Action": service_actions.into_iter().collect::<Vec<_>>(),
            "Resource": "*",
        }));
    }
    Ok(json!({
        "Version": "2012-10-17",
        "Statement": statements,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::build(resource_schemas::Registry::shared().unwrap())
    }

    fn actions(policy: &Value) -> Vec<String> {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()))
            .collect()
    }

    #[test]
    fn read_only_policies_hold_read_actions_and_the_handlers_read_permissions() {
        let scope = PolicyScope {
            read_only: true,
            tables: vec!["ec2.vpcs".into()],
            ..Default::default()
        };
        let p = iam_policy(&catalog(), &scope).unwrap();
        let a = actions(&p);
        assert!(a.contains(&"cloudformation:ListResources".to_string()));
        assert!(a.contains(&"ec2:DescribeVpcs".to_string()), "{a:?}");
        assert!(
            !a.iter().any(|x| x == "cloudformation:CreateResource" || x == "ec2:CreateVpc"),
            "{a:?}"
        );
        let write = iam_policy(&catalog(), &PolicyScope { read_only: false, ..scope }).unwrap();
        assert!(actions(&write).contains(&"ec2:CreateVpc".to_string()));
    }

    #[test]
    fn unknown_services_and_tables_are_named() {
        let e = iam_policy(
            &catalog(),
            &PolicyScope {
                services: vec!["nope".into()],
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.sqlstate(), "3F000");
        let e = iam_policy(
            &catalog(),
            &PolicyScope {
                tables: vec!["ec2.vpc".into()],
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.hint().is_some_and(|h| h.contains("vpcs")), "{e:?}");
    }
}
