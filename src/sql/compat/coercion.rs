//! PostgreSQL's untyped literals: `'t'` compared with a boolean is a boolean, as `'42'`
//! compared with an integer is an integer. DataFusion coerces text literals to numbers but
//! not to booleans, so `i.indisprimary = 't'` (psqlODBC) failed to plan. This analyzer rule
//! runs before DataFusion's type coercion and types such literals after the other operand.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{DFSchema, DFSchemaRef, Result as DfResult, ScalarValue};
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub struct UnknownLiterals;

impl AnalyzerRule for UnknownLiterals {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DfResult<LogicalPlan> {
        plan.transform_up_with_subqueries(|p| {
            let schema = expression_schema(&p);
            p.map_expressions(|e| e.transform_up(|e| Ok(typed_literal(e, &schema))))
        })
        .data()
    }

    fn name(&self) -> &str {
        "cloudpg_unknown_literals"
    }
}

/// The schema a node's expressions are evaluated against.
pub(super) fn expression_schema(p: &LogicalPlan) -> DFSchemaRef {
    match p.inputs().as_slice() {
        [one] => one.schema().clone(),
        [a, b] => a.schema().join(b.schema()).map(Arc::new).unwrap_or_else(|_| p.schema().clone()),
        _ => p.schema().clone(),
    }
}

fn is_comparison(op: &Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom
    )
}

/// PostgreSQL's spellings of a boolean.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Some(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

fn typed_literal(e: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &e else {
        return Transformed::no(e);
    };
    if !is_comparison(op) {
        return Transformed::no(e);
    }
    let as_bool = |literal: &Expr, other: &Expr| -> Option<Expr> {
        let Expr::Literal(ScalarValue::Utf8(Some(text)), _) = literal else {
            return None;
        };
        if other.get_type(schema).ok()? != DataType::Boolean {
            return None;
        }
        Some(Expr::Literal(ScalarValue::Boolean(Some(parse_bool(text)?)), None))
    };
    if let Some(l) = as_bool(left, right) {
        return Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(Box::new(l), *op, right.clone())));
    }
    if let Some(r) = as_bool(right, left) {
        return Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(left.clone(), *op, Box::new(r))));
    }
    Transformed::no(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::logical_expr::{col, lit};

    #[test]
    fn text_literals_compared_with_booleans_become_booleans() {
        let schema = DFSchema::try_from(Schema::new(vec![
            Field::new("b", DataType::Boolean, true),
            Field::new("s", DataType::Utf8, true),
        ]))
        .unwrap();
        let out = typed_literal(col("b").eq(lit("t")), &schema);
        assert!(out.transformed);
        assert_eq!(out.data, col("b").eq(lit(true)));
        // Text compared with text stays text, whatever it spells.
        assert!(!typed_literal(col("s").eq(lit("t")), &schema).transformed);
        assert_eq!(parse_bool("Off"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
