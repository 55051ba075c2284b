//! Which resources an UPDATE or DELETE names, and `$n` parameters bound into a statement.
//!
//! A WHERE clause made only of `identifier = …` / `identifier IN (…)` (and the same on
//! `region`) names its resources: they are mutated directly, with no read first. Anything else
//! is a bulk mutation: the matching resources are selected first, and it runs only when the
//! session allows bulk mutations.

use std::ops::ControlFlow;

use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{visit_expressions, visit_expressions_mut, BinaryOperator, Expr, Statement, Value, ValueWithSpan};
use datafusion::sql::sqlparser::tokenizer::Span;

use crate::catalog::model::{ACCOUNT_COLUMN, IDENTIFIER_COLUMN, REGION_COLUMN};
use crate::error::{Error, Result};
use crate::sql::ast::conjuncts;

/// Resources a WHERE clause names.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Named {
    pub identifiers: Vec<String>,
    /// `None` when the WHERE clause does not say; the session's region is used.
    pub regions: Option<Vec<String>>,
    /// `None` when the WHERE clause does not say; the server's only account is used.
    pub accounts: Option<Vec<String>>,
}

/// The resources `selection` names, or `None` when it is not only identifier/region equalities.
pub fn named(selection: Option<&Expr>) -> Option<Named> {
    let mut out = Named::default();
    let mut identifiers: Option<Vec<String>> = None;
    for conjunct in conjuncts(selection?) {
        let (column, values) = column_values(conjunct)?;
        let slot = match column.as_str() {
            IDENTIFIER_COLUMN => &mut identifiers,
            REGION_COLUMN => &mut out.regions,
            ACCOUNT_COLUMN => &mut out.accounts,
            _ => return None,
        };
        match slot {
            Some(existing) => existing.retain(|v| values.contains(v)),
            None => *slot = Some(values),
        }
    }
    // A resource named twice is still one request (a second would be a ConcurrentOperation).
    let mut seen = std::collections::HashSet::new();
    out.identifiers = identifiers?.into_iter().filter(|id| seen.insert(id.clone())).collect();
    Some(out)
}

/// `col = 'v'`, `'v' = col`, `col IN ('a', 'b')`, and ORs of those on one column.
fn column_values(e: &Expr) -> Option<(String, Vec<String>)> {
    match e {
        Expr::Nested(inner) => column_values(inner),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => match (column_name(left), column_name(right)) {
            (Some(c), None) => Some((c, vec![literal(right)?])),
            (None, Some(c)) => Some((c, vec![literal(left)?])),
            _ => None,
        },
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Or,
            right,
        } => {
            let (lc, mut lv) = column_values(left)?;
            let (rc, rv) = column_values(right)?;
            (lc == rc).then(|| {
                lv.extend(rv);
                (lc, lv)
            })
        }
        Expr::InList {
            expr,
            list,
            negated: false,
        } => {
            let c = column_name(expr)?;
            let values: Option<Vec<String>> = list.iter().map(literal).collect();
            Some((c, values?))
        }
        _ => None,
    }
}

fn column_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(id) => Some(id.value.to_lowercase()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|id| id.value.to_lowercase()),
        Expr::Nested(inner) => column_name(inner),
        _ => None,
    }
}

fn literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(s.clone()),
            Value::DollarQuotedString(d) => Some(d.value.clone()),
            Value::Number(n, _) => Some(n.clone()),
            _ => None,
        },
        Expr::Cast { expr, .. } | Expr::Nested(expr) => literal(expr),
        _ => None,
    }
}

/// Whether an expression reads a column (and so needs the resource's current state).
pub fn reads_columns(e: &Expr) -> bool {
    let found = visit_expressions(e, |x| match x {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    });
    found.is_break()
}

/// `$n` as a 1-based index.
pub fn placeholder_index(e: &Expr) -> Option<usize> {
    match e {
        Expr::Value(ValueWithSpan {
            value: Value::Placeholder(p),
            ..
        }) => crate::sql::parse::placeholder_number(p),
        _ => None,
    }
}

/// Replaces every `$n` with the literal of its bound value.
pub fn bind(stmt: &mut Statement, values: &[ScalarValue]) -> Result<()> {
    let mut missing = None;
    let _ = visit_expressions_mut(stmt, |e| {
        if let Some(n) = placeholder_index(e) {
            match values.get(n.wrapping_sub(1)) {
                Some(v) => *e = literal_expr(v),
                None => {
                    missing = Some(n);
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    });
    match missing {
        Some(n) => Err(Error::invalid_parameter(
            format!("there is no parameter ${n}: {} values were bound", values.len()),
            None,
        )),
        None => Ok(()),
    }
}

fn literal_expr(v: &ScalarValue) -> Expr {
    let value = if v.is_null() {
        Value::Null
    } else {
        match v {
            ScalarValue::Boolean(Some(b)) => Value::Boolean(*b),
            ScalarValue::Int8(_)
            | ScalarValue::Int16(_)
            | ScalarValue::Int32(_)
            | ScalarValue::Int64(_)
            | ScalarValue::UInt8(_)
            | ScalarValue::UInt16(_)
            | ScalarValue::UInt32(_)
            | ScalarValue::UInt64(_)
            | ScalarValue::Float32(_)
            | ScalarValue::Float64(_) => Value::Number(v.to_string(), false),
            other => Value::SingleQuotedString(super::values::text(other).unwrap_or_default()),
        }
    };
    Expr::Value(ValueWithSpan {
        value,
        span: Span::empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn where_of(sql: &str) -> Option<Expr> {
        let mut stmts = crate::sql::parse::parse_checked(sql).unwrap();
        match stmts.pop().unwrap() {
            Statement::Delete(d) => d.selection,
            Statement::Update(u) => u.selection,
            other => panic!("not DML: {other}"),
        }
    }

    #[test]
    fn identifier_and_region_equalities_name_resources() {
        let w = where_of("DELETE FROM awscc.ec2.vpcs WHERE data__Identifier = 'vpc-1' AND region = 'us-east-1'");
        assert_eq!(
            named(w.as_ref()),
            Some(Named {
                identifiers: vec!["vpc-1".into()],
                regions: Some(vec!["us-east-1".into()]),
                accounts: None,
            })
        );
        let w = where_of("DELETE FROM awscc.ec2.vpcs v WHERE (v.identifier IN ('a', 'b') OR identifier = 'c' OR identifier = 'a')");
        assert_eq!(named(w.as_ref()).unwrap().identifiers, vec!["a", "b", "c"]);
        let w = where_of("UPDATE awscc.ec2.vpcs SET x = 1 WHERE 'a' = identifier AND identifier IN ('a', 'b')");
        assert_eq!(named(w.as_ref()).unwrap().identifiers, vec!["a"]);
    }

    #[test]
    fn other_conditions_are_bulk() {
        assert_eq!(
            named(where_of("DELETE FROM awscc.ec2.vpcs WHERE cidr_block = '10.0.0.0/16'").as_ref()),
            None
        );
        assert_eq!(
            named(where_of("DELETE FROM awscc.ec2.vpcs WHERE region = 'us-east-1'").as_ref()),
            None
        );
        assert_eq!(
            named(where_of("DELETE FROM awscc.ec2.vpcs WHERE identifier = 'a' OR cidr_block = 'x'").as_ref()),
            None
        );
        assert_eq!(named(where_of("DELETE FROM awscc.ec2.vpcs").as_ref()), None);
    }

    #[test]
    fn parameters_are_counted_and_bound() {
        let mut stmt = crate::sql::parse::parse_checked("DELETE FROM awscc.ec2.vpcs WHERE identifier = $1 AND region = $2")
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(crate::sql::parse::parameter_count(&stmt).unwrap(), 2);
        bind(
            &mut stmt,
            &[ScalarValue::Utf8(Some("it's".into())), ScalarValue::Utf8(Some("us-east-1".into()))],
        )
        .unwrap();
        assert_eq!(
            stmt.to_string(),
            "DELETE FROM awscc.ec2.vpcs WHERE identifier = 'it''s' AND region = 'us-east-1'"
        );
        assert!(bind(&mut stmt.clone(), &[]).is_ok());
        let mut two = crate::sql::parse::parse_checked("DELETE FROM t WHERE a = $2")
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(bind(&mut two, &[ScalarValue::Int64(Some(1))]).unwrap_err().sqlstate(), "22023");
    }

    #[test]
    fn column_references_are_found() {
        let e = |sql: &str| match crate::sql::parse::parse_checked(&format!("SELECT {sql}")).unwrap().pop().unwrap() {
            Statement::Query(q) => match *q.body {
                datafusion::sql::sqlparser::ast::SetExpr::Select(s) => match &s.projection[0] {
                    datafusion::sql::sqlparser::ast::SelectItem::UnnamedExpr(e)
                    | datafusion::sql::sqlparser::ast::SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
                    _ => unreachable!(),
                },
                _ => unreachable!(),
            },
            _ => unreachable!(),
        };
        assert!(!reads_columns(&e("string('[1]')")));
        assert!(reads_columns(&e("description || 'x'")));
    }
}
