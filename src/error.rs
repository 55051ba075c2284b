//! The one error type of the server and the one place that maps errors to SQLSTATEs.
//!
//! Every failure a client can see is an [`Error`]; `wire/` turns it into an ErrorResponse with
//! [`Error::sqlstate`], the message, and an optional hint. Messages name the bad input and,
//! where there is one, the fix.

use std::sync::Arc;

use datafusion::error::DataFusionError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error that came back from Cloud Control (or the SDK on its way there).
#[derive(Debug, Clone)]
pub struct AwsError {
    /// AWS's error code, e.g. `ThrottlingException`, or an `ErrorCode` of a FAILED request.
    pub code: String,
    pub message: String,
    pub operation: String,
    /// The configured account's name.
    pub account: String,
    pub region: String,
    pub type_name: Option<String>,
    /// The mutation's request token, when there is one: the user can look it up later.
    pub request_token: Option<String>,
}

/// Cheap to clone (the foreign errors are shared), so a single-flight failure or an error found
/// deep inside DataFusion's wrapping reaches every caller whole.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("syntax error: {0}")]
    Syntax(String),
    #[error("relation \"{name}\" does not exist")]
    UndefinedTable { name: String, suggestions: Vec<String> },
    #[error("function {name}() does not exist")]
    UndefinedFunction { name: String, suggestions: Vec<String> },
    /// A function that exists, called with argument types it does not take.
    #[error("function {signature} does not exist")]
    NoFunctionSignature { signature: String, hint: String },
    #[error("schema \"{name}\" does not exist")]
    UndefinedSchema { name: String, suggestions: Vec<String> },
    #[error("column \"{column}\" does not exist{}", table.as_ref().map(|t| format!(" in {t}")).unwrap_or_default())]
    UndefinedColumn {
        column: String,
        table: Option<String>,
        suggestions: Vec<String>,
    },
    #[error("{message}")]
    InvalidParameter { message: String, hint: Option<String> },
    #[error("{message}")]
    InvalidText { message: String, hint: Option<String> },
    /// Text that is no date or time: `invalid input syntax for type timestamp with time zone`.
    #[error("{message}")]
    InvalidDatetime { message: String, hint: Option<String> },
    /// A date or time whose fields are out of range: `2025-13-01`.
    #[error("date/time field value out of range: \"{0}\"")]
    DatetimeOutOfRange(String),
    #[error("{message}")]
    DatatypeMismatch { message: String, hint: Option<String> },
    /// A value outside its type's range: `bigint out of range`.
    #[error("{0}")]
    NumericOutOfRange(String),
    #[error("{message}")]
    MissingFilter { message: String, hint: Option<String> },
    #[error("{message}")]
    NotNullViolation { message: String, hint: Option<String> },
    #[error("column \"{0}\" specified more than once")]
    DuplicateColumn(String),
    /// A column Cloud Control sets (a read-only property, `identifier`).
    #[error("{message}")]
    GeneratedColumn { message: String, hint: Option<String> },
    /// A change Cloud Control cannot make in place (a create-only property).
    #[error("{message}")]
    NotUpdatable { message: String, hint: Option<String> },
    /// A statement on a relation that does not support it (INSERT into a `_list_only` table).
    #[error("{message}")]
    WrongObjectType { message: String, hint: Option<String> },
    #[error("{0}")]
    NotSupported(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("{}", aws_message(.0))]
    Aws(Box<AwsError>),
    #[error("{message}")]
    Timeout { message: String, hint: Option<String> },
    #[error("canceling statement due to user request")]
    Canceled,
    #[error("canceling statement due to statement timeout")]
    StatementTimeout,
    /// A statement nests deeper than the server plans safely.
    #[error("statement is too complex: {0}")]
    TooComplex(String),
    /// A statement would make more Cloud Control calls than `cloudpg.max_api_calls`.
    #[error("{message}")]
    TooManyCalls { message: String },
    /// A user's budget of Cloud Control calls per minute is spent.
    #[error("{message}")]
    BudgetSpent { message: String, hint: Option<String> },
    #[error("out of memory: {0}")]
    OutOfMemory(String),
    #[error("current transaction is aborted, commands ignored until end of transaction block")]
    InFailedTransaction,
    /// A statement that only works inside a transaction block, run outside one.
    #[error("{0} can only be used in transaction blocks")]
    NoActiveTransaction(String),
    /// A mutation inside a transaction block, which Cloud Control cannot roll back.
    #[error("{message}")]
    ActiveTransaction { message: String, hint: Option<String> },
    #[error("cannot execute {0} in a read-only transaction")]
    ReadOnlyTransaction(String),
    #[error("savepoint \"{0}\" does not exist")]
    InvalidSavepoint(String),
    #[error("unrecognized configuration parameter \"{name}\"")]
    UndefinedParameter { name: String, suggestions: Vec<String> },
    #[error("{message}")]
    CantChangeParameter { message: String, hint: Option<String> },
    /// A `$n` that no Bind can supply (`$0`, beyond `$65535`) or that was not supplied.
    #[error("cursor \"{0}\" already exists")]
    DuplicateCursor(String),
    #[error("cursor \"{0}\" does not exist")]
    UndefinedCursor(String),
    /// 55000: an object is not in the state the statement needs.
    #[error("{message}")]
    ObjectState { message: String, hint: Option<String> },
    #[error("there is no parameter {0}")]
    UndefinedParameterRef(String),
    #[error("{0}")]
    ProtocolViolation(String),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Schemas(#[source] Arc<resource_schemas::Error>),
    /// A file the server must write could not be (the mutation journal).
    #[error("{0}")]
    Io(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("{0}")]
    DataFusion(#[source] Arc<DataFusionError>),
}

fn aws_message(e: &AwsError) -> String {
    let place = crate::cloudcontrol::Place::new(e.account.clone(), e.region.clone());
    let mut m = format!("AWS {} failed in {place}", e.operation);
    if let Some(t) = &e.type_name {
        m.push_str(&format!(" for {t}"));
    }
    m.push_str(&format!(": {}: {}", e.code, e.message));
    if let Some(token) = &e.request_token {
        m.push_str(&format!(" (RequestToken: {token})"));
    }
    m
}

impl From<DataFusionError> for Error {
    fn from(e: DataFusionError) -> Self {
        // Errors our own table providers (or a cancel, a budget, the memory pool) raised travel
        // through DataFusion wrapped, sometimes several layers deep inside an aggregate or a
        // join; find them so their SQLSTATE survives.
        match e {
            DataFusionError::External(inner) => match inner.downcast::<Error>() {
                Ok(ours) => *ours,
                Err(other) => ours_within(other.as_ref()).unwrap_or_else(|| Error::DataFusion(Arc::new(DataFusionError::External(other)))),
            },
            DataFusionError::Context(ctx, inner) => match Error::from(*inner) {
                Error::DataFusion(df) => Error::DataFusion(Arc::new(DataFusionError::Context(
                    ctx,
                    Box::new(Arc::try_unwrap(df).unwrap_or_else(DataFusionError::Shared)),
                ))),
                ours => ours,
            },
            DataFusionError::Diagnostic(_, inner) => Error::from(*inner),
            // Planning reports every unknown column at once; PostgreSQL reports the first.
            DataFusionError::Collection(mut errors) if !errors.is_empty() => Error::from(errors.swap_remove(0)),
            DataFusionError::SchemaError(inner, context) => match *inner {
                datafusion::common::SchemaError::FieldNotFound { field, valid_fields } => Error::UndefinedColumn {
                    suggestions: closest(&field.name, valid_fields.iter().map(|c| c.name.as_str())),
                    column: field.flat_name(),
                    table: None,
                },
                other => Error::DataFusion(Arc::new(DataFusionError::SchemaError(Box::new(other), context))),
            },
            DataFusionError::Shared(shared) => match Arc::try_unwrap(shared) {
                Ok(inner) => Error::from(inner),
                Err(shared) => ours_within(shared.as_ref()).unwrap_or(Error::DataFusion(shared)),
            },
            other => ours_within(&other).unwrap_or_else(|| Error::DataFusion(Arc::new(other))),
        }
    }
}

/// Our error somewhere in the chain of sources of `e`.
fn ours_within(e: &(dyn std::error::Error + 'static)) -> Option<Error> {
    let mut current = Some(e);
    while let Some(c) = current {
        if let Some(ours) = c.downcast_ref::<Error>() {
            return Some(ours.clone());
        }
        current = c.source();
    }
    None
}

impl From<resource_schemas::Error> for Error {
    fn from(e: resource_schemas::Error) -> Self {
        Error::Schemas(Arc::new(e))
    }
}

impl From<Error> for DataFusionError {
    fn from(e: Error) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

impl Error {
    pub fn internal(msg: impl Into<String>) -> Error {
        Error::Internal(msg.into())
    }

    pub fn invalid_parameter(message: impl Into<String>, hint: Option<String>) -> Error {
        Error::InvalidParameter {
            message: message.into(),
            hint,
        }
    }

    pub fn aws(
        code: impl Into<String>,
        message: impl Into<String>,
        operation: &str,
        place: &crate::cloudcontrol::Place,
        type_name: Option<&str>,
    ) -> Error {
        Error::Aws(Box::new(AwsError {
            code: code.into(),
            message: message.into(),
            operation: operation.to_string(),
            account: place.account.clone(),
            region: place.region.clone(),
            type_name: type_name.map(str::to_string),
            request_token: None,
        }))
    }

    /// The PostgreSQL error code a client sees.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Error::Syntax(_) => "42601",
            Error::UndefinedTable { .. } => "42P01",
            Error::UndefinedSchema { .. } => "3F000",
            Error::UndefinedFunction { .. } | Error::NoFunctionSignature { .. } => "42883",
            Error::UndefinedColumn { .. } => "42703",
            Error::InvalidParameter { .. } => "22023",
            Error::InvalidText { .. } => "22P02",
            Error::InvalidDatetime { .. } => "22007",
            Error::DatetimeOutOfRange(_) => "22008",
            Error::DatatypeMismatch { .. } => "42804",
            Error::NumericOutOfRange(_) => "22003",
            Error::MissingFilter { .. } => "42P10",
            Error::NotNullViolation { .. } => "23502",
            Error::DuplicateColumn(_) => "42701",
            Error::GeneratedColumn { .. } => "428C9",
            Error::NotUpdatable { .. } => "55000",
            Error::WrongObjectType { .. } => "42809",
            Error::NotSupported(_) => "0A000",
            Error::PermissionDenied(_) => "42501",
            Error::Aws(e) => aws_sqlstate(&e.code),
            Error::Timeout { .. } => "57014",
            Error::Canceled | Error::StatementTimeout => "57014",
            Error::TooComplex(_) => "54001",
            Error::TooManyCalls { .. } => "54000",
            Error::BudgetSpent { .. } => "53400",
            Error::OutOfMemory(_) => "53200",
            Error::InFailedTransaction => "25P02",
            Error::NoActiveTransaction(_) => "25P01",
            Error::ActiveTransaction { .. } => "25001",
            Error::ReadOnlyTransaction(_) => "25006",
            Error::InvalidSavepoint(_) => "3B001",
            Error::UndefinedParameter { .. } => "42704",
            Error::CantChangeParameter { .. } => "55P02",
            Error::UndefinedParameterRef(_) => "42P02",
            Error::DuplicateCursor(_) => "42P03",
            Error::UndefinedCursor(_) => "34000",
            Error::ObjectState { .. } => "55000",
            Error::ProtocolViolation(_) => "08P01",
            Error::Config(_) => "F0000",
            Error::Schemas(_) | Error::Io(_) => "58030",
            Error::Internal(_) => "XX000",
            Error::DataFusion(e) => datafusion_sqlstate(e),
        }
    }

    /// A hint for the client: the closest names, or how to fix the input.
    pub fn hint(&self) -> Option<String> {
        let did_you_mean = |s: &[String]| {
            (!s.is_empty()).then(|| {
                format!(
                    "Did you mean {}?",
                    s.iter().map(|x| format!("\"{x}\"")).collect::<Vec<_>>().join(", ")
                )
            })
        };
        match self {
            Error::UndefinedTable { suggestions, .. } | Error::UndefinedSchema { suggestions, .. } => did_you_mean(suggestions),
            Error::UndefinedFunction { suggestions, .. } => did_you_mean(suggestions)
                .or_else(|| Some("\\df lists the functions cloudpg has; check the name and the argument types".into())),
            Error::UndefinedColumn { suggestions, .. } | Error::UndefinedParameter { suggestions, .. } => did_you_mean(suggestions),
            Error::NoFunctionSignature { hint, .. } => Some(hint.clone()),
            Error::TooComplex(_) => Some("split the expression: a long chain of OR/AND can often be written as col IN (…) or run as several statements".into()),
            Error::TooManyCalls { .. } => Some(
                "narrow the WHERE clause (region = …, identifier IN (…)), or SET cloudpg.max_api_calls to a higher number (at most the server's limits.max_api_calls)".into(),
            ),
            Error::OutOfMemory(_) => Some("filter or aggregate more before sorting or joining, or ask for a higher limits.query_memory".into()),
            Error::InFailedTransaction => Some("run ROLLBACK (or ROLLBACK TO SAVEPOINT) to end the failed transaction".into()),
            Error::ActiveTransaction { hint, .. } | Error::CantChangeParameter { hint, .. } => hint.clone(),
            Error::UndefinedParameterRef(_) => Some("parameters are numbered from $1 to $65535, and each needs a value".into()),
            Error::UndefinedCursor(_) => Some("DECLARE it first (inside BEGIN … COMMIT, or WITH HOLD)".into()),
            Error::InvalidParameter { hint, .. }
            | Error::InvalidText { hint, .. }
            | Error::InvalidDatetime { hint, .. }
            | Error::DatatypeMismatch { hint, .. }
            | Error::MissingFilter { hint, .. }
            | Error::NotNullViolation { hint, .. }
            | Error::GeneratedColumn { hint, .. }
            | Error::NotUpdatable { hint, .. }
            | Error::ObjectState { hint, .. }
            | Error::WrongObjectType { hint, .. }
            | Error::Timeout { hint, .. }
            | Error::BudgetSpent { hint, .. } => hint.clone(),
            Error::Aws(e) if e.request_token.is_some() => Some(format!(
                "the request is listed in cloudpg.requests: SELECT * FROM cloudpg.requests WHERE request_token = '{}'",
                e.request_token.as_deref().unwrap_or_default()
            )),
            Error::Aws(e) if e.code.contains("Throttling") => {
                Some("Cloud Control throttled the calls after all retries; retry later or lower api.concurrency_per_region.".into())
            }
            _ => None,
        }
    }

    /// True for failures worth retrying with the same request: throttling, 5xx, timeouts and
    /// network errors. Anything else will fail the same way again.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Aws(e) => {
                let code = e.code.trim_end_matches("Exception");
                matches!(
                    code,
                    "Throttling"
                        | "RequestLimitExceeded"
                        | "ServiceInternalError"
                        | "InternalFailure"
                        | "NetworkFailure"
                        | "RequestTimeout"
                        | "InvalidResponse"
                        | "ServiceUnavailable"
                        | "HandlerInternalFailure"
                )
            }
            _ => false,
        }
    }

    /// True when AWS refused the credentials in a region because the account has not enabled
    /// (opted into) it, or the region is in another partition.
    pub fn is_region_not_enabled(&self) -> bool {
        match self {
            Error::Aws(e) => matches!(
                e.code.trim_end_matches("Exception"),
                "UnrecognizedClient" | "InvalidClientTokenId" | "OptInRequired" | "AuthFailure"
            ),
            _ => false,
        }
    }

    /// What a log may say of this error: its kind and, for AWS, the code and where it came
    /// from, never its message (messages quote input: literals, property values).
    pub fn log_summary(&self) -> String {
        match self {
            Error::Aws(a) => format!(
                "AWS {} from {} in {}{}",
                a.code,
                a.operation,
                crate::cloudcontrol::Place::new(a.account.clone(), a.region.clone()),
                a.type_name.as_deref().map(|t| format!(" for {t}")).unwrap_or_default()
            ),
            Error::DataFusion(e) => format!("query engine error ({})", datafusion_kind(e)),
            other => {
                let debug = format!("{other:?}");
                let kind = debug.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("Error").to_string();
                kind
            }
        }
    }

    /// True for errors the user caused (logged at debug), false for the server's own faults.
    pub fn is_user_error(&self) -> bool {
        !matches!(self.sqlstate().get(..2), Some("XX" | "58" | "F0"))
    }
}

/// Up to three of `candidates` that look like a misspelling of `name`, best first: the
/// "did you mean" of an unknown name.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = candidates
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(s, _)| *s > 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, n)| n.to_string()).collect()
}

/// Cloud Control error codes (exception names and FAILED `ErrorCode`s) → SQLSTATE.
pub fn aws_sqlstate(code: &str) -> &'static str {
    let code = code.trim_end_matches("Exception");
    match code {
        "AccessDenied" | "UnauthorizedTaggingOperation" => "42501",
        "InvalidCredentials" | "ExpiredToken" | "UnrecognizedClient" | "InvalidClientTokenId" | "CredentialsUnavailable" => "28000",
        "Throttling" | "ServiceLimitExceeded" | "RequestLimitExceeded" => "53400",
        "AlreadyExists" => "23505",
        "NotFound" | "ResourceNotFound" | "RequestTokenNotFound" => "02000",
        "NotUpdatable" => "55000",
        "ResourceConflict" | "ConcurrentOperation" | "ConcurrentModification" | "ClientTokenConflict" => "55P03",
        "InvalidRequest" | "Validation" | "GeneralService" => "22023",
        "TypeNotFound" | "PrivateType" => "42P01",
        "UnsupportedAction" => "0A000",
        "NotStabilized" | "ServiceTimeout" => "57014",
        "NetworkFailure" | "HandlerFailure" | "HandlerInternalFailure" | "ServiceInternalError" | "InternalFailure" => "58000",
        _ => "58000",
    }
}

/// The kind of a DataFusion error, for logs.
fn datafusion_kind(e: &DataFusionError) -> &'static str {
    match e {
        DataFusionError::SQL(..) => "SQL",
        DataFusionError::SchemaError(..) => "schema",
        DataFusionError::NotImplemented(_) => "not implemented",
        DataFusionError::Plan(_) => "plan",
        DataFusionError::Execution(_) => "execution",
        DataFusionError::ArrowError(..) => "arrow",
        DataFusionError::ResourcesExhausted(_) => "resources exhausted",
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => datafusion_kind(inner),
        DataFusionError::External(_) => "external",
        _ => "other",
    }
}

fn datafusion_sqlstate(e: &DataFusionError) -> &'static str {
    match e {
        DataFusionError::SQL(..) => "42601",
        DataFusionError::SchemaError(inner, _) => match inner.as_ref() {
            datafusion::common::SchemaError::FieldNotFound { .. } => "42703",
            datafusion::common::SchemaError::AmbiguousReference { .. } => "42702",
            _ => "42P18",
        },
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::Plan(msg) => plan_sqlstate(msg),
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => datafusion_sqlstate(inner),
        DataFusionError::ResourcesExhausted(_) => "53200",
        DataFusionError::ArrowError(inner, _) => match inner.as_ref() {
            datafusion::arrow::error::ArrowError::CastError(_) | datafusion::arrow::error::ArrowError::ParseError(_) => "22P02",
            datafusion::arrow::error::ArrowError::DivideByZero => "22012",
            datafusion::arrow::error::ArrowError::ArithmeticOverflow(_) => "22003",
            _ => "XX000",
        },
        DataFusionError::Execution(msg) if msg.contains("Divide by zero") => "22012",
        DataFusionError::Execution(msg) if msg.contains("Cannot cast") || msg.contains("Failed to parse") => "22P02",
        _ => "XX000",
    }
}

fn plan_sqlstate(msg: &str) -> &'static str {
    if msg.contains("not found") && msg.contains("table") {
        "42P01"
    } else if msg.contains("No function matches")
        || msg.contains("Invalid function")
        || msg.contains("function") && msg.contains("not found")
    {
        "42883"
    } else if msg.contains("Cannot infer common") || msg.contains("type") && msg.contains("coerce") {
        "42804"
    } else {
        "42000"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_errors_survive_a_trip_through_datafusion() {
        let ours = Error::invalid_parameter("region 'mars-1' does not exist", None);
        let df: DataFusionError = ours.into();
        let back = Error::from(DataFusionError::Context("scan".into(), Box::new(df)));
        assert_eq!(back.sqlstate(), "22023");
    }

    #[test]
    fn aws_codes_map_to_sqlstates() {
        assert_eq!(aws_sqlstate("AccessDeniedException"), "42501");
        assert_eq!(aws_sqlstate("ThrottlingException"), "53400");
        assert_eq!(aws_sqlstate("AlreadyExists"), "23505");
        assert_eq!(aws_sqlstate("NotUpdatable"), "55000");
        assert_eq!(aws_sqlstate("Weird"), "58000");
        let e = Error::aws(
            "ThrottlingException",
            "Rate exceeded",
            "ListResources",
            &crate::cloudcontrol::Place::new("default", "us-east-1"),
            Some("AWS::S3::Bucket"),
        );
        assert_eq!(
            e.to_string(),
            "AWS ListResources failed in us-east-1 for AWS::S3::Bucket: ThrottlingException: Rate exceeded"
        );
        assert!(e.hint().is_some());
        assert_eq!(
            e.log_summary(),
            "AWS ThrottlingException from ListResources in us-east-1 for AWS::S3::Bucket"
        );
        let other = Error::aws(
            "AccessDenied",
            "no",
            "ListResources",
            &crate::cloudcontrol::Place::new("prod", "eu-west-1"),
            None,
        );
        assert_eq!(
            other.to_string(),
            "AWS ListResources failed in eu-west-1 of account prod: AccessDenied: no"
        );
    }

    #[test]
    fn log_summaries_never_quote_input() {
        let e = Error::InvalidText {
            message: "invalid input for ApiKeyValue: 'sekrit'".into(),
            hint: None,
        };
        assert_eq!(e.log_summary(), "InvalidText");
        let df = Error::from(DataFusionError::Execution("Cannot cast string 'sekrit'".into()));
        assert!(!df.log_summary().contains("sekrit"), "{}", df.log_summary());
    }
}
