//! Text literals read as `timestamptz` and `timestamp` the way PostgreSQL reads them. Arrow's
//! cast takes fewer forms (`'2025-03-01 10:00'` without seconds fails) and ignores the
//! session zone for text without an offset when the target is a column in UTC; its failure
//! surfaces as an optimizer error. This analyzer rule runs after type coercion, so it sees
//! the casts coercion added too (`start_date > '2025-03-01 10:00'`), and replaces each cast
//! of a text literal to a timestamp with the timestamp itself, or fails the statement with
//! 22007 naming the text and the type.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};
use datafusion::logical_expr::expr::{Cast, TryCast};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;

use crate::error::Error;
use crate::sql::datetime::{is_out_of_range, read_timestamp, read_timestamptz, Zone};

#[derive(Debug)]
pub struct TimestampLiterals;

impl AnalyzerRule for TimestampLiterals {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> DfResult<LogicalPlan> {
        let zone = config
            .execution
            .time_zone
            .as_deref()
            .and_then(Zone::from_arrow_name)
            .unwrap_or_else(Zone::utc);
        let now = chrono::Utc::now().naive_utc();
        plan.transform_up_with_subqueries(|p| {
            let names = NamePreserver::new(&p);
            p.map_expressions(|e| {
                let saved = names.save(&e);
                let rewritten = e.transform_up(|e| read(e, &zone, now))?;
                Ok(rewritten.update_data(|e| saved.restore(e)))
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "cloudpg_timestamp_literals"
    }
}

/// A cast of a text literal to a timestamp, evaluated; other expressions as they are.
fn read(e: Expr, zone: &Zone, now: chrono::NaiveDateTime) -> DfResult<Transformed<Expr>> {
    let (inner, target, strict) = match &e {
        Expr::Cast(Cast { expr, field }) => (expr.as_ref(), field.data_type(), true),
        Expr::TryCast(TryCast { expr, field }) => (expr.as_ref(), field.data_type(), false),
        _ => return Ok(Transformed::no(e)),
    };
    let DataType::Timestamp(unit, tz) = target else {
        return Ok(Transformed::no(e));
    };
    let Expr::Literal(ScalarValue::Utf8(Some(text)) | ScalarValue::Utf8View(Some(text)) | ScalarValue::LargeUtf8(Some(text)), _) = inner
    else {
        return Ok(Transformed::no(e));
    };
    let micros = match tz {
        Some(_) => read_timestamptz(text, zone, now),
        None => read_timestamp(text, zone, now),
    };
    let value = match micros {
        Some(m) => Some(in_unit(m, *unit)),
        None if strict && is_out_of_range(text) => {
            return Err(DataFusionError::External(Box::new(Error::DatetimeOutOfRange(text.clone()))));
        }
        None if strict => {
            let type_name = if tz.is_some() { "timestamp with time zone" } else { "timestamp" };
            return Err(DataFusionError::External(Box::new(Error::InvalidDatetime {
                message: format!("invalid input syntax for type {type_name}: \"{text}\""),
                hint: Some("write it as '2025-03-01 10:00:00+00', '2025-03-01T10:00:00Z' or '2025-03-01'".into()),
            })));
        }
        None => None,
    };
    let literal = match unit {
        TimeUnit::Second => ScalarValue::TimestampSecond(value, tz.clone()),
        TimeUnit::Millisecond => ScalarValue::TimestampMillisecond(value, tz.clone()),
        TimeUnit::Microsecond => ScalarValue::TimestampMicrosecond(value, tz.clone()),
        TimeUnit::Nanosecond => ScalarValue::TimestampNanosecond(value, tz.clone()),
    };
    Ok(Transformed::yes(Expr::Literal(literal, None)))
}

/// Microseconds in another unit (PostgreSQL's precision is the microsecond, so nanoseconds
/// are exact and coarser units truncate).
fn in_unit(micros: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => micros.div_euclid(1_000_000),
        TimeUnit::Millisecond => micros.div_euclid(1_000),
        TimeUnit::Microsecond => micros,
        TimeUnit::Nanosecond => micros.saturating_mul(1_000),
    }
}
