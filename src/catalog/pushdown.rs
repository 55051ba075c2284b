//! Which WHERE conditions a resource scan enforces itself, and what they become in API calls.
//!
//! Only equality and `IN` on `region`, `account`, `identifier` and the list handler's parent columns are
//! pushed down; they are enforced exactly (the calls return only matching rows), so DataFusion
//! drops its own filter and may push LIMIT into the scan. Everything else is left to DataFusion.

use std::collections::BTreeMap;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};

use super::model::{TableDef, TableKind, ACCOUNT_COLUMN, IDENTIFIER_COLUMN, REGION_COLUMN};

/// The pushed-down constraints of one scan. `None` means "not constrained".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pushdown {
    pub regions: Option<Vec<String>>,
    /// Configured account names.
    pub accounts: Option<Vec<String>>,
    pub identifiers: Option<Vec<String>>,
    /// Parent column → allowed values.
    pub parents: BTreeMap<String, Vec<String>>,
}

/// The column a filter constrains, and the literal values it allows.
fn column_values(expr: &Expr) -> Option<(String, Vec<String>)> {
    match expr {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), lit) | (lit, Expr::Column(c)) => Some((c.name.clone(), vec![literal_string(lit)?])),
            _ => None,
        },
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            let (lc, mut lv) = column_values(left)?;
            let (rc, rv) = column_values(right)?;
            (lc == rc).then(|| {
                lv.extend(rv);
                (lc, lv)
            })
        }
        Expr::InList(list) if !list.negated => match list.expr.as_ref() {
            Expr::Column(c) => {
                let values: Option<Vec<String>> = list.list.iter().map(literal_string).collect();
                Some((c.name.clone(), values?))
            }
            _ => None,
        },
        _ => None,
    }
}

fn literal_string(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)), _) => Some(s.clone()),
        Expr::Cast(c) => literal_string(&c.expr),
        _ => None,
    }
}

/// Columns whose equality the scan can enforce for this table.
fn pushable_columns(table: &TableDef) -> Vec<String> {
    let mut cols = vec![REGION_COLUMN.to_string(), ACCOUNT_COLUMN.to_string()];
    if table.kind == TableKind::Full {
        cols.push(IDENTIFIER_COLUMN.to_string());
    }
    cols.extend(table.parent_columns().into_iter().map(|p| p.column));
    cols
}

/// DataFusion's question: which of these filters does the scan enforce?
pub fn support(filters: &[&Expr], table: &TableDef) -> Vec<TableProviderFilterPushDown> {
    let pushable = pushable_columns(table);
    filters
        .iter()
        .map(|f| match column_values(f) {
            // Enforced by the calls themselves: only those accounts / regions / resources /
            // children come back.
            Some((col, _)) if pushable.contains(&col) => TableProviderFilterPushDown::Exact,
            // Anything else: DataFusion evaluates it on the rows.
            _ => TableProviderFilterPushDown::Unsupported,
        })
        .collect()
}

/// The constraints of the filters the scan accepted; several on one column intersect.
pub fn collect(filters: &[Expr], table: &TableDef) -> Pushdown {
    let pushable = pushable_columns(table);
    let mut out = Pushdown::default();
    for f in filters {
        let Some((col, values)) = column_values(f) else { continue };
        if !pushable.contains(&col) {
            continue;
        }
        let slot = if col == REGION_COLUMN {
            &mut out.regions
        } else if col == ACCOUNT_COLUMN {
            &mut out.accounts
        } else if col == IDENTIFIER_COLUMN {
            &mut out.identifiers
        } else {
            let entry = out.parents.entry(col).or_insert_with(|| values.clone());
            entry.retain(|v| values.contains(v));
            continue;
        };
        match slot {
            Some(existing) => existing.retain(|v| values.contains(v)),
            None => *slot = Some(dedup(values)),
        }
    }
    out
}

/// For tables with no TableDef: the literal values each column is constrained to by the
/// equality / `IN` filters among `filters` (several on one column intersect).
pub fn equalities(filters: &[Expr]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (col, values) in filters.iter().filter_map(column_values) {
        match out.get_mut(&col) {
            Some(existing) => existing.retain(|v| values.contains(v)),
            None => {
                out.insert(col, dedup(values));
            }
        }
    }
    out
}

/// DataFusion's question for tables read through [`equalities`]: the calls narrow the rows by
/// the equalities, and DataFusion still checks them, so Inexact is always right.
pub fn equalities_support(filters: &[&Expr]) -> Vec<TableProviderFilterPushDown> {
    filters
        .iter()
        .map(|f| {
            if is_equality(f) {
                TableProviderFilterPushDown::Inexact
            } else {
                TableProviderFilterPushDown::Unsupported
            }
        })
        .collect()
}

/// Whether [`equalities`] understands a filter.
pub fn is_equality(filter: &Expr) -> bool {
    column_values(filter).is_some()
}

fn dedup(mut values: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    values.retain(|v| seen.insert(v.clone()));
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use datafusion::prelude::{col, lit};
    use resource_schemas::Registry;

    fn table(name: &str) -> std::sync::Arc<TableDef> {
        let catalog = Catalog::build(Registry::shared().unwrap());
        catalog.resolve(name).unwrap().clone()
    }

    #[test]
    fn region_identifier_and_parents_are_exact() {
        let t = table("awscc.eks.nodegroups");
        let filters = [
            col("region").eq(lit("us-east-1")),
            col("identifier").in_list(vec![lit("a"), lit("b")], false),
            col("cluster_name").eq(lit("c1")),
            col("nodegroup_name").eq(lit("x")),
            col("region").eq(lit("us-east-1")).or(col("region").eq(lit("eu-west-1"))),
            col("identifier").in_list(vec![lit("a")], true),
        ];
        let refs: Vec<&Expr> = filters.iter().collect();
        use TableProviderFilterPushDown::*;
        let support = support(&refs, &t);
        assert!(
            matches!(support[..], [Exact, Exact, Exact, Unsupported, Exact, Unsupported]),
            "{support:?}"
        );
    }

    #[test]
    fn constraints_intersect() {
        let t = table("awscc.ec2.vpcs");
        let p = collect(
            &[
                col("region").in_list(vec![lit("us-east-1"), lit("eu-west-1")], false),
                lit("eu-west-1").eq(col("region")),
                col("cidr_block").eq(lit("10.0.0.0/16")),
                col("account").in_list(vec![lit("prod"), lit("dev")], false),
                col("account").eq(lit("prod")).or(col("account").eq(lit("audit"))),
            ],
            &t,
        );
        assert_eq!(p.regions, Some(vec!["eu-west-1".to_string()]));
        assert_eq!(p.accounts, Some(vec!["prod".to_string()]));
        assert_eq!(p.identifiers, None);
    }

    #[test]
    fn list_only_tables_have_no_identifier_column() {
        let t = table("awscc.ec2.vpcs_list_only");
        let f = col("identifier").eq(lit("vpc-1"));
        assert_eq!(support(&[&f], &t), vec![TableProviderFilterPushDown::Unsupported]);
    }
}
