//! Timestamps to and from text as PostgreSQL converts them.
//!
//! Input: Arrow's cast takes fewer forms (`'2025-03-01 10:00'` without seconds fails) and
//! ignores the session zone for text without an offset when the target is a column in UTC;
//! its failure surfaces as an optimizer error. The analyzer rule runs after type coercion, so
//! it sees the casts coercion added too (`start_date > '2025-03-01 10:00'`), and replaces
//! each cast of a text literal to a timestamp with the timestamp itself, or fails the
//! statement with 22007 naming the text and the type.
//!
//! Output: `created_at::text` is the text PostgreSQL would print for the value (the session's
//! zone and DateStyle), not Arrow's `2025-03-01T10:00:00+00:00`. The session's zone and
//! DateStyle reach the rule and the function through [`SessionTime`], a config extension the
//! session keeps current.

use std::sync::Arc;

use datafusion::arrow::array::{Array, StringBuilder};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::config::{ConfigExtension, ConfigOptions};
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{DFSchema, DataFusionError, Result as DfResult, ScalarValue};
use datafusion::logical_expr::expr::{Cast, ScalarFunction, TryCast};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use crate::error::Error;
use crate::sql::datetime::{self, is_out_of_range, read_timestamp, read_timestamptz, DateStyle, TimeFormat, Zone};

datafusion::common::extensions_options! {
    /// The session's DateStyle and TimeZone, where functions run by the query engine can
    /// read them.
    pub struct SessionTime {
        /// `SHOW DateStyle`'s text.
        pub date_style: String, default = "ISO, MDY".to_string()
        /// `SHOW TimeZone`'s text: a POSIX zone's abbreviation is not in the engine's zone.
        pub time_zone: String, default = "UTC".to_string()
    }
}

impl ConfigExtension for SessionTime {
    const PREFIX: &'static str = "cloudpg_time";
}

impl SessionTime {
    /// The zone and style a query's config says (UTC and ISO before a session set them).
    fn format_of(config: &ConfigOptions) -> TimeFormat {
        let ours = config.extensions.get::<SessionTime>();
        TimeFormat {
            zone: session_zone(config),
            style: ours
                .and_then(|t| DateStyle::parse(&t.date_style, DateStyle::default()).ok())
                .unwrap_or_default(),
        }
    }
}

/// The session's zone, as the session wrote it into the config.
fn session_zone(config: &ConfigOptions) -> Zone {
    config
        .extensions
        .get::<SessionTime>()
        .and_then(|t| Zone::parse(&t.time_zone))
        .unwrap_or_else(Zone::utc)
}

#[derive(Debug)]
pub struct TimestampCasts;

impl AnalyzerRule for TimestampCasts {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> DfResult<LogicalPlan> {
        let zone = session_zone(config);
        let engine_zone: Option<Arc<str>> = config.execution.time_zone.as_deref().map(Arc::from);
        let now = chrono::Utc::now().naive_utc();
        let text = Arc::new(ScalarUDF::new_from_impl(TimestampText::default()));
        plan.transform_up_with_subqueries(|p| {
            let schema = super::coercion::expression_schema(&p);
            let names = NamePreserver::new(&p);
            p.map_expressions(|e| {
                let saved = names.save(&e);
                let rewritten = e.transform_up(|e| match read(e, &zone, now)? {
                    t if t.transformed => Ok(t),
                    t => match print(t.data, &schema, &text) {
                        t if t.transformed => Ok(t),
                        t => Ok(in_session_zone(t.data, &schema, &engine_zone)),
                    },
                })?;
                Ok(rewritten.update_data(|e| saved.restore(e)))
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "cloudpg_timestamp_casts"
    }
}

/// Calendar functions (and casts to `timestamp`) over a timestamptz in another zone than the
/// session's (resource columns are kept in UTC) see it in the session's zone first, as
/// PostgreSQL's do: `date_trunc('day', created_at)` is midnight where the session is.
fn in_session_zone(e: Expr, schema: &DFSchema, zone: &Option<Arc<str>>) -> Transformed<Expr> {
    let Some(zone) = zone else { return Transformed::no(e) };
    let relabel = |arg: &Expr| match arg.get_type(schema) {
        Ok(DataType::Timestamp(unit, Some(tz))) if *tz != **zone => Some(Expr::Cast(Cast::new(
            Box::new(arg.clone()),
            DataType::Timestamp(unit, Some(zone.clone())),
        ))),
        _ => None,
    };
    match e {
        Expr::ScalarFunction(mut f) if matches!(f.func.name(), "date_trunc" | "date_part" | "date_bin" | "to_char") => {
            let mut changed = false;
            for arg in f.args.iter_mut() {
                if let Some(relabeled) = relabel(arg) {
                    *arg = relabeled;
                    changed = true;
                }
            }
            if changed {
                Transformed::yes(Expr::ScalarFunction(f))
            } else {
                Transformed::no(Expr::ScalarFunction(f))
            }
        }
        // Arrow's cast to a zone-less timestamp keeps the UTC clock; PostgreSQL's gives the
        // session's wall clock.
        Expr::Cast(Cast { expr, field })
            if matches!(field.data_type(), DataType::Timestamp(_, None))
                && matches!(expr.get_type(schema), Ok(DataType::Timestamp(_, Some(_)))) =>
        {
            let zoned = relabel(&expr).unwrap_or_else(|| expr.as_ref().clone());
            let local = datafusion::functions::datetime::to_local_time().call(vec![zoned]);
            Transformed::yes(Expr::Cast(Cast::new(Box::new(local), field.data_type().clone())))
        }
        other => Transformed::no(other),
    }
}

/// A cast of a timestamp to text, as a call printing it as PostgreSQL does.
fn print(e: Expr, schema: &DFSchema, text: &Arc<ScalarUDF>) -> Transformed<Expr> {
    let (inner, target) = match &e {
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) => (expr.as_ref(), field.data_type()),
        _ => return Transformed::no(e),
    };
    if !matches!(target, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
        || !matches!(inner.get_type(schema), Ok(DataType::Timestamp(..)))
    {
        return Transformed::no(e);
    }
    let call = Expr::ScalarFunction(ScalarFunction::new_udf(text.clone(), vec![inner.clone()]));
    Transformed::yes(if *target == DataType::Utf8 {
        call
    } else {
        call.cast_to(target, schema).unwrap_or_else(|_| e.clone())
    })
}

/// `_pg_timestamp_text(ts)`: the text PostgreSQL prints for a timestamp in this session.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TimestampText {
    signature: Signature,
}

impl Default for TimestampText {
    fn default() -> TimestampText {
        TimestampText {
            signature: Signature::any(1, Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for TimestampText {
    fn name(&self) -> &str {
        "_pg_timestamp_text"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let format = SessionTime::format_of(&args.config_options);
        let array = match &args.args[..] {
            [value] => value.to_array(args.number_rows)?,
            _ => return Err(DataFusionError::Internal("_pg_timestamp_text takes one argument".into())),
        };
        if !matches!(array.data_type(), DataType::Timestamp(..)) {
            return Err(DataFusionError::Internal(format!("_pg_timestamp_text of {}", array.data_type())));
        }
        let mut out = StringBuilder::with_capacity(array.len(), array.len() * 24);
        for row in 0..array.len() {
            if array.is_null(row) {
                out.append_null();
            } else {
                out.append_option(datetime::value_text(&array, row, &format));
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
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
        Some(m) => Some(datetime::micros_in(m, *unit)),
        None if strict && is_out_of_range(text) => {
            return Err(DataFusionError::External(Box::new(Error::DatetimeOutOfRange(text.clone()))));
        }
        None if strict => {
            let type_name = if tz.is_some() { "timestamp with time zone" } else { "timestamp" };
            return Err(DataFusionError::External(Box::new(Error::InvalidDatetime {
                message: format!("invalid input syntax for type {type_name}: \"{text}\""),
                hint: Some(datetime::INPUT_HINT.into()),
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
