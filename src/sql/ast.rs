//! Small questions about sqlparser expressions that several rewrites ask.

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr};

/// The terms of an AND chain, parenthesised ANDs included: `a AND (b AND c)` → `[a, b, c]`.
/// A parenthesised term that is not an AND stays as written, parentheses and all, so
/// `(x OR y)` keeps its meaning when the terms are joined again.
pub fn conjuncts(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut v = conjuncts(left);
            v.extend(conjuncts(right));
            v
        }
        Expr::Nested(inner) => {
            let inner_terms = conjuncts(inner);
            if inner_terms.len() > 1 {
                inner_terms
            } else {
                vec![e]
            }
        }
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn terms(sql: &str) -> Vec<String> {
        let e = Parser::new(&PostgreSqlDialect {}).try_with_sql(sql).unwrap().parse_expr().unwrap();
        conjuncts(&e).iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn and_chains_split_and_other_parentheses_stay() {
        assert_eq!(
            terms("a = 1 AND (b = 2 AND ((c = 3 AND d = 4)))"),
            vec!["a = 1", "b = 2", "c = 3", "d = 4"]
        );
        assert_eq!(terms("(x OR y) AND (z = 1)"), vec!["(x OR y)", "(z = 1)"]);
        assert_eq!(terms("x OR y"), vec!["x OR y"]);
    }
}
