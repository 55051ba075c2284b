//! The one error type of the server and the one place that maps errors to SQLSTATEs.
//!
//! Every failure a client can see is an [`Error`]; `wire/` turns it into an ErrorResponse with
//! [`Error::sqlstate`], the message, and an optional hint. Messages name the bad input and,
//! where there is one, the fix.

use datafusion::error::DataFusionError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error that came back from Cloud Control (or the SDK on its way there).
#[derive(Debug, Clone)]
pub struct AwsError {
    /// AWS's error code, e.g. `ThrottlingException`, or an `ErrorCode` of a FAILED request.
    pub code: String,
    pub message: String,
    pub operation: String,
    pub region: String,
    pub type_name: Option<String>,
    /// The mutation's request token, when there is one: the user can look it up later.
    pub request_token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("syntax error: {0}")]
    Syntax(String),
    #[error("relation \"{name}\" does not exist")]
    UndefinedTable { name: String, suggestions: Vec<String> },
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
    #[error("{message}")]
    DatatypeMismatch { message: String, hint: Option<String> },
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
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Schemas(#[from] resource_schemas::Error),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("{0}")]
    DataFusion(#[source] Box<DataFusionError>),
}

fn aws_message(e: &AwsError) -> String {
    let mut m = format!("AWS {} failed in {}", e.operation, e.region);
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
        // Errors our own table providers raised travel through DataFusion wrapped; unwrap them
        // so their SQLSTATE survives.
        match e {
            DataFusionError::External(inner) => match inner.downcast::<Error>() {
                Ok(ours) => *ours,
                Err(other) => Error::DataFusion(Box::new(DataFusionError::External(other))),
            },
            DataFusionError::Context(ctx, inner) => match Error::from(*inner) {
                Error::DataFusion(df) => Error::DataFusion(Box::new(DataFusionError::Context(ctx, df))),
                ours => ours,
            },
            DataFusionError::Shared(shared) => match std::sync::Arc::try_unwrap(shared) {
                Ok(inner) => Error::from(inner),
                Err(shared) => Error::Internal(shared.to_string()),
            },
            other => Error::DataFusion(Box::new(other)),
        }
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

    pub fn aws(code: impl Into<String>, message: impl Into<String>, operation: &str, region: &str, type_name: Option<&str>) -> Error {
        Error::Aws(Box::new(AwsError {
            code: code.into(),
            message: message.into(),
            operation: operation.to_string(),
            region: region.to_string(),
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
            Error::UndefinedColumn { .. } => "42703",
            Error::InvalidParameter { .. } => "22023",
            Error::InvalidText { .. } => "22P02",
            Error::DatatypeMismatch { .. } => "42804",
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
            Error::Canceled => "57014",
            Error::Config(_) => "F0000",
            Error::Schemas(_) => "58030",
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
            Error::UndefinedColumn { suggestions, .. } => did_you_mean(suggestions),
            Error::InvalidParameter { hint, .. }
            | Error::InvalidText { hint, .. }
            | Error::DatatypeMismatch { hint, .. }
            | Error::MissingFilter { hint, .. }
            | Error::NotNullViolation { hint, .. }
            | Error::GeneratedColumn { hint, .. }
            | Error::NotUpdatable { hint, .. }
            | Error::WrongObjectType { hint, .. }
            | Error::Timeout { hint, .. } => hint.clone(),
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

    /// True for errors the user caused (logged at debug), false for the server's own faults.
    pub fn is_user_error(&self) -> bool {
        !matches!(self.sqlstate().get(..2), Some("XX" | "58" | "F0"))
    }
}

/// Cloud Control error codes (exception names and FAILED `ErrorCode`s) → SQLSTATE.
pub fn aws_sqlstate(code: &str) -> &'static str {
    let code = code.trim_end_matches("Exception");
    match code {
        "AccessDenied" | "UnauthorizedTaggingOperation" => "42501",
        "InvalidCredentials" | "ExpiredToken" | "UnrecognizedClient" => "28000",
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
            "us-east-1",
            Some("AWS::S3::Bucket"),
        );
        assert_eq!(
            e.to_string(),
            "AWS ListResources failed in us-east-1 for AWS::S3::Bucket: ThrottlingException: Rate exceeded"
        );
        assert!(e.hint().is_some());
    }
}
