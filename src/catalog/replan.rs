//! Physical plans planned once and run again by later executions of the same prepared
//! statement: DataFusion's physical planning and physical optimizer cost more than running a
//! cached lookup or a `SELECT 1`.
//!
//! A kept plan is a template that never runs itself: each execution gets a copy with fresh
//! operator state (DataFusion's `reset_state`) and its resource scans decided again for that
//! statement (its call budget, progress, span, regions and accounts). Only plans made of
//! operators whose state that reset covers are kept: no joins, aggregates, `ORDER BY … LIMIT`
//! (they share dynamic filters between runs) and no table whose rows are read at planning time
//! (system and catalog tables capture them there).

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::ExecutionPlan;

use super::provider::QuerySettings;
use super::scan::ResourceScanExec;

/// Operators a kept plan may hold: stateless between runs once `reset_state` made them anew.
const KEPT_OPERATORS: &[&str] = &[
    "ProjectionExec",
    "FilterExec",
    "CoalesceBatchesExec",
    "CoalescePartitionsExec",
    "CooperativeExec",
    "GlobalLimitExec",
    "LocalLimitExec",
    "PlaceholderRowExec",
    "EmptyExec",
];

/// Whether `plan` may be kept and run again by [`for_statement`].
pub fn reusable(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let mut reusable = true;
    let _ = plan.apply(|node| {
        let kept = match node.downcast_ref::<ResourceScanExec>() {
            Some(scan) => scan.can_replan(),
            // A sort without LIMIT has no dynamic filter to share.
            None => match node.downcast_ref::<SortExec>() {
                Some(sort) => sort.fetch().is_none(),
                None => KEPT_OPERATORS.contains(&node.name()),
            },
        };
        if !kept {
            reusable = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    reusable
}

/// A physical plan a prepared query keeps for its later executions.
#[derive(Debug)]
pub struct KeptPlan {
    pub template: Arc<dyn ExecutionPlan>,
    /// It scans no resource table: its rows come from its own operators alone
    /// (`PlaceholderRowExec`), so a plan of immutable expressions returns the same every time.
    pub reads_no_table: bool,
}

impl KeptPlan {
    /// Keeps `template`, a plan [`reusable`] said may run again.
    pub fn new(template: Arc<dyn ExecutionPlan>) -> KeptPlan {
        let scans = template.exists(|node| Ok(node.downcast_ref::<ResourceScanExec>().is_some()));
        KeptPlan {
            reads_no_table: !scans.unwrap_or(true),
            template,
        }
    }
}

/// A copy of a kept plan for one execution: fresh operator state, scans decided for
/// `settings`' statement.
pub fn for_statement(template: &Arc<dyn ExecutionPlan>, settings: &QuerySettings) -> Result<Arc<dyn ExecutionPlan>> {
    Arc::clone(template)
        .transform_up(|node| {
            if let Some(scan) = node.downcast_ref::<ResourceScanExec>() {
                return match scan.for_statement(settings) {
                    Some(fresh) => Ok(Transformed::yes(Arc::new(fresh?) as Arc<dyn ExecutionPlan>)),
                    None => Err(datafusion::error::DataFusionError::Internal(
                        "a kept plan holds a scan that cannot be planned again".into(),
                    )),
                };
            }
            Ok(Transformed::yes(node.reset_state()?))
        })
        .map(|t| t.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn physical(sql: &str) -> Arc<dyn ExecutionPlan> {
        let ctx = SessionContext::new();
        ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap()
    }

    #[tokio::test]
    async fn keeps_plans_whose_operators_start_afresh_and_read_nothing_at_planning() {
        assert!(reusable(&physical("SELECT 1 + 1 AS two").await));
        assert!(reusable(&physical("SELECT 1 AS x WHERE 1 > 0 LIMIT 1").await));
        // VALUES rows are captured when planned; joins share state between runs.
        assert!(!reusable(&physical("SELECT x FROM (VALUES (1), (2)) t(x)").await));
        assert!(!reusable(
            &physical("SELECT * FROM (SELECT 1 AS a) x JOIN (SELECT 1 AS b) y ON a = b").await
        ));
    }

    #[tokio::test]
    async fn a_plan_over_no_table_says_so() {
        assert!(KeptPlan::new(physical("SELECT 1 + 1 AS two").await).reads_no_table);
        assert!(KeptPlan::new(physical("SELECT 1 AS x WHERE 1 > 0 LIMIT 1").await).reads_no_table);
    }

    #[tokio::test]
    async fn every_execution_gets_its_own_copy_of_the_operators() {
        let template = physical("SELECT 1 + 1 AS two").await;
        let settings = QuerySettings {
            regions: None,
            bypass_cache: false,
            budget: Arc::new(crate::cloudcontrol::budget::CallBudget::new(10)),
            progress: Arc::default(),
            warn_on_error: false,
            span: tracing::Span::none(),
            accounts: None,
        };
        let copy = for_statement(&template, &settings).unwrap();
        assert!(!Arc::ptr_eq(&copy, &template));
        let ctx = SessionContext::new();
        for plan in [copy, for_statement(&template, &settings).unwrap()] {
            let batches = datafusion::physical_plan::collect(plan, ctx.task_ctx()).await.unwrap();
            assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
        }
    }
}
