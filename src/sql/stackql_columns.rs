//! StackQL's column spellings (`v_pn_gateway_id`, `_values`) as ours (`vpn_gateway_id`,
//! `values`), resolved against the resource tables a statement names: in SELECT lists,
//! WHERE clauses and every other expression, INSERT column lists, UPDATE's SET and RETURNING.
//!
//! A spelling is rewritten only when it is not already a column of one of those tables (ours
//! win), not a name the statement itself defines (an output alias, a CTE or table alias), and
//! all the tables that know it agree on the column. A bare column in a SELECT list keeps the
//! spelling the client wrote as its output name, as PostgreSQL names it after what was written.
//! Table spellings need no rewrite: the catalog resolves them.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{
    AssignmentTarget, BinaryOperator, Expr, Ident, ObjectName, ObjectNamePart, Query, Select, SelectItem, Statement, TableFactor, Value,
    Visit, VisitMut, Visitor, VisitorMut,
};

use super::names::ident_name;
use crate::catalog::model::{Catalog, StackqlColumn, TableDef};

/// Rewrites StackQL column spellings in `stmt` to the columns of the tables it names.
pub fn resolve(stmt: &mut Statement, catalog: &Catalog) {
    let mut scope = Scope::default();
    let _ = Visit::visit(
        &*stmt,
        &mut Collector {
            catalog,
            scope: &mut scope,
        },
    );
    if scope.tables.is_empty() {
        return;
    }
    let _ = VisitMut::visit(stmt, &mut Rewriter { scope: &scope });
}

/// The resource tables a statement names and the names it defines itself.
#[derive(Default)]
struct Scope {
    tables: Vec<Arc<TableDef>>,
    defined: BTreeSet<String>,
}

impl Scope {
    /// What `ident` reads, when it is a StackQL spelling the rules above let through.
    fn resolve(&self, ident: &Ident) -> Option<&StackqlColumn> {
        let name = ident_name(ident);
        if self.defined.contains(&name) || self.tables.iter().any(|t| t.column(&name).is_some()) {
            return None;
        }
        let mut targets = self.tables.iter().filter_map(|t| t.stackql_column(&name));
        let first = targets.next()?;
        targets.all(|t| t == first).then_some(first)
    }

    /// `ident` renamed to its column (our names need no quoting); `None` also for nested
    /// values, which are not columns (an INSERT or SET cannot name them).
    fn renamed(&self, ident: &Ident) -> Option<Ident> {
        match self.resolve(ident)? {
            StackqlColumn::Column(column) => Some(Ident::with_span(ident.span, column.clone())),
            StackqlColumn::Nested { .. } => None,
        }
    }

    /// The last part of a column reference (`t.v_pn_gateway_id`), renamed.
    fn rename_last(&self, name: &mut ObjectName) {
        if let Some(ObjectNamePart::Identifier(last)) = name.0.last_mut() {
            if let Some(new) = self.renamed(last) {
                *last = new;
            }
        }
    }

    /// A nested value as `column ->> 'Key'` (through `->` for deeper paths), qualified as
    /// the reference was.
    fn nested(&self, qualifier: &[Ident], ident: &Ident) -> Option<Expr> {
        let StackqlColumn::Nested { column, path } = self.resolve(ident)? else {
            return None;
        };
        let column = Ident::with_span(ident.span, column.clone());
        let mut expr = match qualifier {
            [] => Expr::Identifier(column),
            q => Expr::CompoundIdentifier(q.iter().cloned().chain([column]).collect()),
        };
        for (i, key) in path.iter().enumerate() {
            let op = if i + 1 == path.len() {
                BinaryOperator::LongArrow
            } else {
                BinaryOperator::Arrow
            };
            expr = Expr::BinaryOp {
                left: Box::new(Expr::Nested(Box::new(expr))),
                op,
                right: Box::new(Expr::Value(Value::SingleQuotedString(key.clone()).into())),
            };
        }
        Some(expr)
    }

    /// A bare column in a SELECT or RETURNING list, renamed and aliased to what was written.
    fn rename_items(&self, items: &mut [SelectItem]) {
        for item in items {
            let SelectItem::UnnamedExpr(expr) = item else { continue };
            let written = match expr {
                Expr::Identifier(id) => id.clone(),
                Expr::CompoundIdentifier(parts) => match parts.last() {
                    Some(last) => last.clone(),
                    None => continue,
                },
                _ => continue,
            };
            if self.resolve(&written).is_none() {
                continue;
            }
            let mut renamed = expr.clone();
            self.rename_expr(&mut renamed);
            *item = SelectItem::ExprWithAlias {
                expr: renamed,
                alias: written,
            };
        }
    }

    fn rename_expr(&self, expr: &mut Expr) {
        match expr {
            Expr::Identifier(id) => {
                if let Some(new) = self.renamed(id) {
                    *id = new;
                } else if let Some(nested) = self.nested(&[], id) {
                    *expr = nested;
                }
            }
            Expr::CompoundIdentifier(parts) if parts.len() > 1 => {
                let Some((last, qualifier)) = parts.split_last() else { return };
                if let Some(new) = self.renamed(last) {
                    if let Some(last) = parts.last_mut() {
                        *last = new;
                    }
                } else if let Some(nested) = self.nested(qualifier, last) {
                    *expr = nested;
                }
            }
            _ => {}
        }
    }
}

struct Collector<'a> {
    catalog: &'a Catalog,
    scope: &'a mut Scope,
}

impl Visitor for Collector<'_> {
    type Break = ();

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        let table = super::rewrite::resource_relation(relation, self.catalog).and_then(|(s, t)| self.catalog.table(&s, &t));
        if let Some(table) = table {
            if !self.scope.tables.iter().any(|t| Arc::ptr_eq(t, table)) {
                self.scope.tables.push(table.clone());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        for cte in query.with.iter().flat_map(|w| &w.cte_tables) {
            self.scope.defined.insert(ident_name(&cte.alias.name));
            self.scope.defined.extend(cte.alias.columns.iter().map(|c| ident_name(&c.name)));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        for item in &select.projection {
            if let SelectItem::ExprWithAlias { alias, .. } = item {
                self.scope.defined.insert(ident_name(alias));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        let alias = match factor {
            TableFactor::Table { alias, .. }
            | TableFactor::Derived { alias, .. }
            | TableFactor::Function { alias, .. }
            | TableFactor::UNNEST { alias, .. }
            | TableFactor::NestedJoin { alias, .. } => alias.as_ref(),
            _ => None,
        };
        if let Some(alias) = alias {
            self.scope.defined.insert(ident_name(&alias.name));
            self.scope.defined.extend(alias.columns.iter().map(|c| ident_name(&c.name)));
        }
        ControlFlow::Continue(())
    }
}

struct Rewriter<'a> {
    scope: &'a Scope,
}

impl VisitorMut for Rewriter<'_> {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        self.scope.rename_items(&mut select.projection);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        self.scope.rename_expr(expr);
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, stmt: &mut Statement) -> ControlFlow<()> {
        let returning = match stmt {
            Statement::Insert(insert) => {
                for column in &mut insert.columns {
                    self.scope.rename_last(column);
                }
                insert.returning.as_mut()
            }
            Statement::Update(update) => {
                for assignment in &mut update.assignments {
                    match &mut assignment.target {
                        AssignmentTarget::ColumnName(name) => self.scope.rename_last(name),
                        AssignmentTarget::Tuple(names) => names.iter_mut().for_each(|n| self.scope.rename_last(n)),
                    }
                }
                update.returning.as_mut()
            }
            Statement::Delete(delete) => delete.returning.as_mut(),
            _ => None,
        };
        if let Some(items) = returning {
            self.scope.rename_items(items);
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> &'static Catalog {
        static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
        CATALOG.get_or_init(|| Catalog::build(resource_schemas::Registry::shared().expect("the shipped schemas load")))
    }

    fn resolved(sql: &str) -> String {
        let mut stmt = crate::sql::parse::parse_checked(sql).unwrap().remove(0);
        resolve(&mut stmt, catalog());
        stmt.to_string()
    }

    #[test]
    fn stackql_spellings_become_our_columns() {
        assert_eq!(
            resolved("SELECT t.v_pn_gateway_id, length(v_pn_gateway_id) FROM awscc.ec2.vpn_gateways t WHERE v_pn_gateway_id = 'x'"),
            "SELECT t.vpn_gateway_id AS v_pn_gateway_id, length(vpn_gateway_id) AS \"length\" FROM awscc.ec2.vpn_gateways t WHERE vpn_gateway_id = 'x'"
        );
    }

    #[test]
    fn our_names_and_defined_names_stay() {
        let sql = "SELECT vpn_gateway_id AS v_pn_gateway_id FROM awscc.ec2.vpn_gateways ORDER BY v_pn_gateway_id";
        assert_eq!(resolved(sql), crate::sql::parse::parse_checked(sql).unwrap()[0].to_string());
        let sql = "SELECT identifier FROM awscc.ec2.vpcs";
        assert_eq!(resolved(sql), crate::sql::parse::parse_checked(sql).unwrap()[0].to_string());
    }

    #[test]
    fn dml_column_lists_and_returning_resolve() {
        assert_eq!(
            resolved("INSERT INTO awscc.iam.saml_providers (name, saml_provider_uu_id) VALUES ('a', 'b') RETURNING saml_provider_uu_id"),
            "INSERT INTO awscc.iam.saml_providers (name, saml_provider_uuid) VALUES ('a', 'b') RETURNING saml_provider_uuid AS saml_provider_uu_id"
        );
        assert_eq!(
            resolved("UPDATE awscc.gamelift.fleets SET e_c2_inbound_permissions = '[]' WHERE identifier = 'f'"),
            "UPDATE awscc.gamelift.fleets SET ec2_inbound_permissions = '[]' WHERE identifier = 'f'"
        );
    }
}
