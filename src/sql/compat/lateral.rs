//! Set-returning functions in FROM that read the relations before them, as PostgreSQL makes
//! every function call in FROM implicitly `LATERAL`: `FROM vpcs v, jsonb_array_elements(v.tags)
//! t`. The syntax rewrite turns such a call into `LATERAL (SELECT unnest(<list>) AS value …)`;
//! DataFusion plans that as a join against a subquery with outer references, which it cannot
//! execute. This analyzer rule decorrelates the shape it produces: the subquery's `unnest`
//! runs over the left relation itself, one output row per element, with the left columns kept
//! and the function's columns qualified by its alias, so the rest of the plan sees the join's
//! schema unchanged.

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{NullHandling, Result as DfResult, ScalarValue, UnnestOptions};
use datafusion::logical_expr::{lit, when, Expr, JoinType, LogicalPlan, LogicalPlanBuilder, Projection, SubqueryAlias, Unnest};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug)]
pub struct LateralFunctions;

impl AnalyzerRule for LateralFunctions {
    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> DfResult<LogicalPlan> {
        plan.transform_up_with_subqueries(decorrelate).data()
    }

    fn name(&self) -> &str {
        "cloudpg_lateral_functions"
    }
}

/// The lateral subquery's parts: its output projection and, when it unnests, the unnest and
/// the projection making the lists.
struct Body<'a> {
    alias: &'a SubqueryAlias,
    output: &'a Projection,
    unnest: Option<(&'a Unnest, &'a Projection)>,
}

/// `SubqueryAlias(Subquery(Projection [Unnest (Projection (one row))]))`, the shape of
/// `LATERAL (SELECT …)` without a FROM.
fn lateral_body(plan: &LogicalPlan) -> Option<Body<'_>> {
    let LogicalPlan::SubqueryAlias(alias) = plan else { return None };
    let LogicalPlan::Subquery(subquery) = alias.input.as_ref() else {
        return None;
    };
    let LogicalPlan::Projection(output) = subquery.subquery.as_ref() else {
        return None;
    };
    let unnest = match output.input.as_ref() {
        LogicalPlan::EmptyRelation(e) if e.produce_one_row => None,
        LogicalPlan::Unnest(unnest) => match unnest.input.as_ref() {
            LogicalPlan::Projection(lists) if matches!(lists.input.as_ref(), LogicalPlan::EmptyRelation(e) if e.produce_one_row) => {
                Some((unnest, lists))
            }
            _ => return None,
        },
        _ => return None,
    };
    Some(Body { alias, output, unnest })
}

/// An inner or left join whose condition is absent or `true`.
fn joins_every_row(join: &datafusion::logical_expr::Join) -> bool {
    let unconditional = join.on.is_empty()
        && join
            .filter
            .as_ref()
            .is_none_or(|f| matches!(f, Expr::Literal(ScalarValue::Boolean(Some(true)), _)));
    unconditional && matches!(join.join_type, JoinType::Inner | JoinType::Left)
}

fn decorrelate(plan: LogicalPlan) -> DfResult<Transformed<LogicalPlan>> {
    let LogicalPlan::Join(join) = &plan else {
        return Ok(Transformed::no(plan));
    };
    if !joins_every_row(join) {
        return Ok(Transformed::no(plan));
    }
    let Some(body) = lateral_body(&join.right) else {
        return Ok(Transformed::no(plan));
    };
    let keep_unmatched = join.join_type == JoinType::Left;
    let left = join.left.as_ref().clone();
    let left_columns: Vec<Expr> = left.schema().columns().into_iter().map(Expr::Column).collect();
    let mut builder = LogicalPlanBuilder::from(left);
    if let Some((unnest, lists)) = body.unnest {
        let mut exprs = left_columns.clone();
        for e in &lists.expr {
            let (inner, name) = match e {
                Expr::Alias(a) => (a.expr.as_ref().clone(), a.name.clone()),
                other => (other.clone(), other.schema_name().to_string()),
            };
            let inner = without_outer_references(inner)?;
            // A left join keeps a row whose list is empty, with NULLs.
            let inner = if keep_unmatched {
                when(cardinality(inner.clone()).gt(lit(0u64)), inner).end()?
            } else {
                inner
            };
            exprs.push(inner.alias(name));
        }
        let null_handling = if keep_unmatched {
            NullHandling::PreserveAndExpandEmpty
        } else {
            NullHandling::Drop
        };
        let options = UnnestOptions {
            null_handling,
            ..unnest.options.clone()
        };
        builder = builder
            .project(exprs)?
            .unnest_columns_with_options(unnest.exec_columns.clone(), options)?;
    }
    let mut exprs = left_columns;
    for (e, (_, field)) in body.output.expr.iter().zip(body.alias.schema.iter()) {
        let e = without_outer_references(e.clone().unalias())?;
        exprs.push(e.alias_qualified(Some(body.alias.alias.clone()), field.name()));
    }
    let plan = builder.project(exprs)?.build()?;
    Ok(Transformed::yes(plan))
}

fn cardinality(list: Expr) -> Expr {
    datafusion::functions_nested::expr_fn::cardinality(list)
}

/// The subquery's references to the left relation, as plain columns once it runs over it.
fn without_outer_references(e: Expr) -> DfResult<Expr> {
    e.transform_up(|e| match e {
        Expr::OuterReferenceColumn(_, column) => Ok(Transformed::yes(Expr::Column(column))),
        other => Ok(Transformed::no(other)),
    })
    .data()
}
