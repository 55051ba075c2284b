//! Rewrites that let StackQL-style SQL run verbatim: the `aws` catalog alias, the older
//! `data__Identifier` column spelling, `string('…')`, and hints in `/*+ … */` comments.
//! Also the table check that turns an unknown resource table into 42P01 with close names.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, visit_relations, visit_relations_mut, Expr, Ident, ObjectName, ObjectNamePart, Statement,
};

use super::names::ident_name;
use crate::catalog::model::{is_catalog_name, Catalog, CATALOG, IDENTIFIER_ALIAS, IDENTIFIER_COLUMN, SYSTEM_SCHEMAS};

/// Whether the SQL carries a `/*+ NAME */` hint (case-insensitive).
pub fn has_hint(sql: &str, name: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    let name = name.to_ascii_lowercase();
    lower.match_indices("/*+").any(|(i, _)| {
        let rest = &lower[i + 3..];
        rest.split("*/")
            .next()
            .is_some_and(|body| body.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').any(|w| w == name))
    })
}

/// Applies the compatibility rewrites in place.
pub fn rewrite(stmt: &mut Statement) {
    let _ = visit_relations_mut(stmt, |name| {
        if name.0.len() == 3 {
            if let ObjectNamePart::Identifier(first) = &mut name.0[0] {
                if first.value.eq_ignore_ascii_case("aws") {
                    *first = Ident::new(CATALOG);
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = visit_expressions_mut(stmt, |e| {
        match e {
            Expr::Identifier(id) if id.value.eq_ignore_ascii_case(IDENTIFIER_ALIAS) => *id = Ident::new(IDENTIFIER_COLUMN),
            Expr::CompoundIdentifier(parts) => {
                if let Some(last) = parts.last_mut() {
                    if last.value.eq_ignore_ascii_case(IDENTIFIER_ALIAS) {
                        *last = Ident::new(IDENTIFIER_COLUMN);
                    }
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

/// The (service, table) a relation names in the resource catalog (`awscc.ec2.vpcs`,
/// `aws.ec2.vpcs` or `ec2.vpcs`), its parts folded as PostgreSQL folds unquoted names; `None`
/// for relations elsewhere (system schemas, CTEs, unknown schemas).
pub fn resource_relation(name: &ObjectName, catalog: &Catalog) -> Option<(String, String)> {
    let parts: Vec<String> = name.0.iter().filter_map(|p| p.as_ident().map(ident_name)).collect();
    match parts.as_slice() {
        // cloudpg.requests, cloudcontrol.resource_requests, pg_catalog…: not resource tables.
        [c, s, _] if is_catalog_name(c) && SYSTEM_SCHEMAS.contains(&s.as_str()) => None,
        [c, s, t] if is_catalog_name(c) => Some((s.clone(), t.clone())),
        [s, t] if catalog.tables_in(s).is_some() => Some((s.clone(), t.clone())),
        _ => None,
    }
}

/// 42P01 for a resource table that does not exist, naming the closest ones.
pub fn check_tables(stmt: &Statement, catalog: &Catalog) -> crate::Result<()> {
    let mut missing = None;
    let _ = visit_relations(stmt, |name| {
        if let Some((schema, table)) = resource_relation(name, catalog) {
            if catalog.table(&schema, &table).is_none() {
                let written: Vec<String> = name.0.iter().filter_map(|p| p.as_ident().map(ident_name)).collect();
                missing = Some(written.join("."));
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    match missing {
        Some(name) => Err(crate::Error::UndefinedTable {
            suggestions: catalog.closest_tables(&name, 3),
            name,
        }),
        None => Ok(()),
    }
}

/// Functions StackQL pages and PostgreSQL clients call that DataFusion lacks.
pub fn register_functions(ctx: &SessionContext) {
    // `string('…')` in StackQL's UPDATE examples is the identity on text.
    ctx.register_udf(create_udf(
        "string",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| Ok(args[0].clone())),
    ));
    ctx.register_udf(create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|_args: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                super::meta::VERSION_STRING.to_string(),
            ))))
        }),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints() {
        assert!(has_hint("SELECT /*+ NOCACHE */ 1", "nocache"));
        assert!(has_hint("/*+ create, nowait */ INSERT", "NOWAIT"));
        assert!(!has_hint("SELECT 1 /* NOCACHE */", "NOCACHE"));
    }

    #[test]
    fn aliases_are_rewritten() {
        let stmts =
            crate::sql::parse::parse_checked("SELECT data__Identifier FROM aws.connect.instances WHERE data__Identifier = 'x'").unwrap();
        assert_eq!(
            stmts[0].to_string(),
            "SELECT identifier FROM awscc.connect.instances WHERE identifier = 'x'"
        );
    }
}
