//! What a person needs to know about one table: its columns, identifier, INSERT columns,
//! supported statements, list parents and IAM permissions. Rendered as text by
//! `cloudpg catalog describe`; the same facts back the `DESCRIBE` statement.

use std::fmt::Write as _;

use resource_schemas::Operation;

use super::model::{Catalog, SqlOperation, TableDef, TableKind, IDENTIFIER_ALIAS, IDENTIFIER_COLUMN};
use super::naming::quote_if_needed;

/// One line of `catalog list`: a table and what it supports.
pub fn list_line(t: &TableDef) -> String {
    let ops: Vec<&str> = SqlOperation::ALL
        .iter()
        .filter(|op| t.supports(**op))
        .map(|op| op.keyword())
        .collect();
    format!("{:<70} {:<50} {}", t.qualified_name(), t.type_name(), ops.join(","))
}

/// The tables of one service (or all), one line each.
pub fn list_text(catalog: &Catalog, service: Option<&str>) -> Result<String, crate::error::Error> {
    let mut out = String::new();
    let schemas: Vec<&str> = match service {
        Some(s) => {
            let s = s.to_ascii_lowercase();
            let found = catalog.schema_names().find(|n| *n == s);
            match found {
                Some(n) => vec![n],
                None => {
                    let mut names: Vec<(f64, &str)> = catalog.schema_names().map(|n| (strsim::jaro_winkler(&s, n), n)).collect();
                    names.sort_by(|a, b| b.0.total_cmp(&a.0));
                    let close: Vec<&str> = names.iter().take(3).map(|x| x.1).collect();
                    return Err(crate::error::Error::UndefinedSchema {
                        name: s,
                        suggestions: close.iter().map(|s| s.to_string()).collect(),
                    });
                }
            }
        }
        None => catalog.schema_names().collect(),
    };
    let mut count = 0;
    for schema in schemas {
        for t in catalog.tables_in(schema).into_iter().flat_map(|m| m.values()) {
            let _ = writeln!(out, "{}", list_line(t));
            count += 1;
        }
    }
    let _ = writeln!(out, "({count} tables)");
    Ok(out)
}

/// The permissions each CloudFormation handler needs, in operation order.
pub fn permissions(t: &TableDef) -> Vec<(Operation, Vec<String>)> {
    Operation::ALL
        .iter()
        .filter_map(|op| {
            t.resource
                .handler(*op)
                .map(|h| (*op, h.permissions.iter().map(|p| p.to_string()).collect()))
        })
        .collect()
}

/// The example WHERE clause a list of this table needs, e.g. `region = 'us-east-1' AND cluster_name = '...'`.
pub fn list_where_example(t: &TableDef) -> String {
    let mut parts = vec!["region = 'us-east-1'".to_string()];
    let parents = t.parent_columns();
    if let Some(hs) = t.list_handler_schema() {
        let needed: Vec<&String> = if !hs.required.is_empty() {
            hs.required.iter().collect()
        } else {
            hs.one_of
                .first()
                .or(hs.any_of.first())
                .map(|v| v.iter().collect())
                .unwrap_or_default()
        };
        for key in needed {
            if let Some(p) = parents.iter().find(|p| &p.model_key == key) {
                parts.push(format!("{} = '...'", quote_if_needed(&p.column)));
            }
        }
    }
    parts.join(" AND ")
}

/// A description of one table for a person.
pub fn describe_text(t: &TableDef) -> String {
    let r = t.resource;
    let mut out = String::new();
    let _ = writeln!(out, "Table       {}", t.qualified_name());
    let _ = writeln!(out, "Type        {}", r.type_name);
    if t.kind == TableKind::ListOnly {
        let _ = writeln!(out, "Kind        list only (ListResources, no GetResource)");
    }
    let _ = writeln!(out, "Description {}", r.description.trim());
    let ids: Vec<String> = t.identifier_columns().iter().map(|c| c.name.clone()).collect();
    let _ = writeln!(
        out,
        "Identifier  {} (filter with {IDENTIFIER_COLUMN} = '...' or {IDENTIFIER_ALIAS}; composite values are joined by '|')",
        ids.join(", ")
    );
    let ops: Vec<&str> = SqlOperation::ALL
        .iter()
        .filter(|op| t.supports(**op))
        .map(|op| op.keyword())
        .collect();
    let _ = writeln!(out, "Statements  {}", ops.join(", "));
    if t.kind == TableKind::Full && !t.can_list() {
        let _ = writeln!(out, "            (no list handler: SELECT needs {IDENTIFIER_COLUMN} = '...')");
    }
    let parents = t.parent_columns();
    if !parents.is_empty() {
        let _ = writeln!(out, "List needs  WHERE {}", list_where_example(t));
    }
    let _ = writeln!(out, "Regions     {}", r.regions.len());
    let _ = writeln!(out);
    let _ = writeln!(out, "Columns");
    let width = t.columns().iter().map(|c| quote_if_needed(&c.name).len()).max().unwrap_or(10);
    for c in t.columns() {
        let desc = c.description.split_whitespace().collect::<Vec<_>>().join(" ");
        let _ = writeln!(
            out,
            "  {:<width$}  {:<16}  {}",
            quote_if_needed(&c.name),
            c.pg_type.sql_name(),
            desc
        );
    }
    if t.kind == TableKind::Full && t.supports(SqlOperation::Insert) {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "INSERT columns (* required; CloudFormation or column names; plus region, ClientToken, RoleArn, TypeVersionId)"
        );
        for c in t.insertable_columns() {
            let prop = c.property().unwrap_or_default();
            let mark = if r.is_required(prop) { "*" } else { " " };
            let _ = writeln!(out, "  {mark} {prop} ({})", c.name);
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Permissions");
    for (op, perms) in permissions(t) {
        let _ = writeln!(out, "  {:<7} {}", op.action_word().to_ascii_lowercase(), perms.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use resource_schemas::Registry;

    #[test]
    fn describe_shows_permissions_and_required_insert_columns() {
        let catalog = Catalog::build(Registry::shared().unwrap());
        let t = catalog.resolve("awscc.ec2.instance_connect_endpoints").unwrap();
        let text = describe_text(t);
        assert!(text.contains("* SubnetId (subnet_id)"), "{text}");
        assert!(text.contains("ec2:CreateInstanceConnectEndpoint"), "{text}");
        assert!(text.contains("SELECT, INSERT, UPDATE, DELETE"), "{text}");
        let ng = catalog.resolve("awscc.eks.nodegroups").unwrap();
        assert!(describe_text(ng).contains("List needs  WHERE region = 'us-east-1' AND cluster_name = '...'"));
    }
}
