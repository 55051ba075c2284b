//! Integer arithmetic that fails on overflow, as PostgreSQL's does (`bigint out of range`,
//! SQLSTATE 22003). DataFusion adds, subtracts and multiplies integers with wrapping kernels,
//! so `9223372036854775807 + 1` was `-9223372036854775808`: a wrong answer, not an error.
//! This analyzer rule runs after type coercion and turns `+`, `-` and `*` between two
//! integers of one type into calls of checked functions, keeping the expressions' names.

use std::sync::Arc;

use datafusion::arrow::compute::kernels::numeric;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{DFSchema, DataFusionError, Result as DfResult, ScalarValue};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use crate::error::Error;

/// The three checked operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Add,
    Sub,
    Mul,
}

impl Op {
    fn of(op: &Operator) -> Option<Op> {
        match op {
            Operator::Plus => Some(Op::Add),
            Operator::Minus => Some(Op::Sub),
            Operator::Multiply => Some(Op::Mul),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Op::Add => "_pg_int_add",
            Op::Sub => "_pg_int_sub",
            Op::Mul => "_pg_int_mul",
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Checked {
    op: Op,
    signature: Signature,
}

impl ScalarUDFImpl for Checked {
    fn name(&self) -> &str {
        self.op.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        Ok(args.first().cloned().unwrap_or(DataType::Int64))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [left, right] = arrays.as_slice() else {
            return Err(DataFusionError::Internal(format!("{} takes two arguments", self.op.name())));
        };
        let result = match self.op {
            Op::Add => numeric::add(left, right),
            Op::Sub => numeric::sub(left, right),
            Op::Mul => numeric::mul(left, right),
        };
        let array = result.map_err(|e| match e {
            ArrowError::ArithmeticOverflow(_) => DataFusionError::External(Box::new(Error::NumericOutOfRange(format!(
                "{} out of range",
                pg_name(left.data_type())
            )))),
            other => DataFusionError::ArrowError(Box::new(other), None),
        })?;
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?))
        } else {
            Ok(ColumnarValue::Array(array))
        }
    }
}

/// PostgreSQL's name of an integer type, as its range errors say it.
fn pg_name(t: &DataType) -> &'static str {
    match t {
        DataType::Int16 => "smallint",
        DataType::Int32 => "integer",
        _ => "bigint",
    }
}

/// The checked functions, registered so plans that name them can be deserialised and shown.
pub fn functions() -> Vec<ScalarUDF> {
    [Op::Add, Op::Sub, Op::Mul].into_iter().map(udf).collect()
}

fn udf(op: Op) -> ScalarUDF {
    ScalarUDF::new_from_impl(Checked {
        op,
        signature: Signature::uniform(2, vec![DataType::Int16, DataType::Int32, DataType::Int64], Volatility::Immutable),
    })
}

/// The analyzer rule; after DataFusion's type coercion, so both sides have their final type.
#[derive(Debug, Default)]
pub struct CheckedIntegers;

impl AnalyzerRule for CheckedIntegers {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DfResult<LogicalPlan> {
        plan.transform_up_with_subqueries(|p| {
            let schema = super::coercion::expression_schema(&p);
            let names = NamePreserver::new(&p);
            p.map_expressions(|e| {
                let saved = names.save(&e);
                let rewritten = e.transform_up(|e| Ok(checked(e, &schema)))?;
                Ok(rewritten.update_data(|e| saved.restore(e)))
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "cloudpg_checked_integers"
    }
}

fn checked(e: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &e else {
        return Transformed::no(e);
    };
    let Some(op) = Op::of(op) else {
        return Transformed::no(e);
    };
    let (Ok(l), Ok(r)) = (left.get_type(schema), right.get_type(schema)) else {
        return Transformed::no(e);
    };
    if l != r || !matches!(l, DataType::Int16 | DataType::Int32 | DataType::Int64) {
        return Transformed::no(e);
    }
    let call = Arc::new(udf(op)).call(vec![left.as_ref().clone(), right.as_ref().clone()]);
    Transformed::yes(call)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, Int32Array, Int64Array};

    fn run(op: Op, l: ArrayRef, r: ArrayRef) -> DfResult<ColumnarValue> {
        let field = Arc::new(datafusion::arrow::datatypes::Field::new("x", l.data_type().clone(), true));
        Checked {
            op,
            signature: Signature::any(2, Volatility::Immutable),
        }
        .invoke_with_args(ScalarFunctionArgs {
            args: vec![ColumnarValue::Array(l), ColumnarValue::Array(r)],
            arg_fields: vec![field.clone(), field.clone()],
            number_rows: 2,
            return_field: field,
            config_options: Arc::new(ConfigOptions::default()),
        })
    }

    #[test]
    fn overflow_is_an_out_of_range_error_and_the_rest_is_arithmetic() {
        let big = Arc::new(Int64Array::from(vec![Some(i64::MAX), None])) as ArrayRef;
        let one = Arc::new(Int64Array::from(vec![1, 1])) as ArrayRef;
        let e = Error::from(run(Op::Add, big.clone(), one.clone()).unwrap_err());
        assert_eq!((e.sqlstate(), e.to_string().as_str()), ("22003", "bigint out of range"));
        let small = Arc::new(Int32Array::from(vec![i32::MIN, 5])) as ArrayRef;
        let two = Arc::new(Int32Array::from(vec![2, 2])) as ArrayRef;
        let e = Error::from(run(Op::Mul, small, two.clone()).unwrap_err());
        assert_eq!(e.to_string(), "integer out of range");
        let ok = run(Op::Sub, Arc::new(Int32Array::from(vec![7, -3])), two).unwrap();
        let ColumnarValue::Array(a) = ok else { panic!("an array") };
        assert_eq!(a.as_ref(), &Int32Array::from(vec![5, -5]) as &dyn datafusion::arrow::array::Array);
    }
}
