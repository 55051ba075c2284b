//! The HTTP front of the emulator: awsJson 1.0 over `POST /`, and `/_emulator/*` control
//! endpoints for tests (configuration, counters, reset).

use std::sync::Arc;
use std::time::Instant;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::faults::{sleep_rest, sleep_until_coarsely, sleep_until_precisely};
use crate::ops::{ApiError, Caller, Emulator, OPERATIONS};
use crate::EmulatorConfig;

/// Largest request body accepted; DesiredState alone may be 262,144 characters.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
const JSON_1_0: &str = "application/x-amz-json-1.0";
const TARGET_PREFIX: &str = "CloudApiService.";

pub fn router(state: Arc<Emulator>) -> Router {
    Router::new()
        .route("/", post(api))
        .route("/_emulator/config", get(get_config).post(set_config))
        .route("/_emulator/counters", get(counters))
        .route("/_emulator/reset", post(reset))
        .route("/_emulator/credentials", get(container_credentials))
        .route("/federation/credentials", get(sso_role_credentials))
        .route("/latest/api/token", axum::routing::put(imds_token))
        .route("/latest/meta-data/iam/security-credentials/", get(imds_role))
        .route("/latest/meta-data/iam/security-credentials/{role}", get(imds_credentials))
        .fallback(unknown_path)
        .with_state(state)
}

fn aws_response(status: u16, body: Value) -> Response {
    let mut resp = (StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), body.to_string()).into_response();
    let headers = resp.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(JSON_1_0));
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-amzn-requestid", id);
    }
    resp
}

fn error_response(e: &ApiError) -> Response {
    let mut resp = aws_response(e.status, json!({"__type": e.code, "Message": e.message}));
    // As AWS's JSON protocol does: the SDK reads the error code from this header first.
    if let Ok(code) = HeaderValue::from_str(e.code) {
        resp.headers_mut().insert("x-amzn-errortype", code);
    }
    resp
}

/// What a SigV4 `Authorization` header's credential scope names
/// (`Credential=AKID/20260101/us-east-1/cloudcontrolapi/aws4_request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub access_key_id: String,
    pub region: String,
    pub service: String,
}

impl Scope {
    /// The caller: the access key's account, in the signed region.
    pub fn caller(&self) -> Caller {
        Caller::new(Caller::account_of_key(&self.access_key_id), self.region.clone())
    }
}

/// The region of a SigV4 `Authorization` header's credential scope.
pub fn signed_region(headers: &HeaderMap) -> Result<String, ApiError> {
    signed_scope(headers).map(|s| s.region)
}

/// The credential scope of a SigV4 `Authorization` header.
pub fn signed_scope(headers: &HeaderMap) -> Result<Scope, ApiError> {
    let missing = || {
        ApiError::new(
            "InvalidCredentialsException",
            "Missing Authentication Token: requests must be signed with AWS Signature Version 4.",
        )
    };
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).ok_or_else(missing)?;
    if !auth.starts_with("AWS4-HMAC-SHA256") {
        return Err(missing());
    }
    let scope = auth
        .split([' ', ','])
        .find_map(|part| part.trim().strip_prefix("Credential="))
        .ok_or_else(|| ApiError::new("InvalidCredentialsException", "Authorization header has no Credential= scope."))?;
    let fields: Vec<&str> = scope.split('/').collect();
    match fields.as_slice() {
        [key, _date, region, service, "aws4_request"] if !region.is_empty() => Ok(Scope {
            access_key_id: key.to_string(),
            region: region.to_string(),
            service: service.to_string(),
        }),
        _ => Err(ApiError::new(
            "InvalidCredentialsException",
            format!("Credential scope '{scope}' is malformed; expected AKID/DATE/REGION/SERVICE/aws4_request."),
        )),
    }
}

fn operation_of(headers: &HeaderMap) -> Result<&'static str, ApiError> {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let op = target.strip_prefix(TARGET_PREFIX).unwrap_or_default();
    OPERATIONS.iter().copied().find(|o| *o == op).ok_or_else(|| {
        ApiError::new(
            "UnknownOperationException",
            if target.is_empty() {
                "Missing X-Amz-Target header: expected CloudApiService.<Operation>.".to_string()
            } else {
                format!("Operation '{target}' is not supported by this service.")
            },
        )
    })
}

async fn read_body(body: Body) -> Result<Map<String, Value>, ApiError> {
    let bytes: Bytes = to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
        ApiError::new(
            "RequestEntityTooLargeException",
            format!("Request body is larger than {MAX_BODY_BYTES} bytes."),
        )
    })?;
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::new("SerializationException", "Request body must be a JSON object.")),
        Err(e) => Err(ApiError::new(
            "SerializationException",
            format!("Request body is not valid JSON: {e}"),
        )),
    }
}

/// The `app/NAME` token of the SDK's user agent, if the caller set an app name.
fn app_name(headers: &HeaderMap) -> Option<String> {
    ["x-amz-user-agent", "user-agent"]
        .iter()
        .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .flat_map(|ua| ua.split(' '))
        .find_map(|part| part.strip_prefix("app/").map(str::to_string))
}

async fn api(State(emu): State<Arc<Emulator>>, headers: HeaderMap, body: Body) -> Response {
    let scope = signed_scope(&headers);
    if let Some(name) = app_name(&headers) {
        emu.saw_app_name(name);
    }
    if let Some(s) = scope
        .as_ref()
        .ok()
        .filter(|s| emu.read_config(|c| c.expired_keys.contains(&s.access_key_id)))
    {
        let message = "The security token included in the request is expired";
        if s.service == "sts" || s.service == "cloudformation" {
            let answer = crate::sts::sts_error(400, "ExpiredToken", message);
            let mut resp = (StatusCode::BAD_REQUEST, answer.body).into_response();
            resp.headers_mut().insert("content-type", HeaderValue::from_static("text/xml"));
            return resp;
        }
        return error_response(&ApiError::new("ExpiredTokenException", message));
    }
    if let Some(scope) = scope.as_ref().ok().filter(|s| s.service == "sts" || s.service == "cloudformation") {
        return query_call(&emu, scope, body).await;
    }
    if scope.is_err() && is_form(&headers) {
        return unsigned_sts_call(&emu, body).await;
    }
    let op = match operation_of(&headers) {
        Ok(op) => op,
        Err(e) => return error_response(&e),
    };
    let caller = match scope {
        Ok(s) => s.caller(),
        Err(e) => return error_response(&e),
    };
    if let Err(e) = emu.check_region_enabled(&caller) {
        return error_response(&e);
    }
    let region = caller.region.clone();
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let type_name = body.get("TypeName").and_then(Value::as_str).map(str::to_string);
    let span = tracing::debug_span!("emulator_call", op, %region, type_name = type_name.as_deref().unwrap_or(""));
    let _enter = span.enter();
    let plan = emu.before_call(op, type_name.as_deref(), &caller);
    drop(_enter);
    let answer_at = Instant::now() + plan.latency;
    if let Some(e) = plan.fault {
        sleep_until_precisely(answer_at).await;
        return error_response(&e);
    }
    // The operations are short in-memory steps; seeding a large type is the longest, so they
    // run off the async workers, as does writing the answer.
    let fails_async = plan.fails_async;
    let operate = move || match emu.call(op, &caller, &body, fails_async) {
        Ok(v) => aws_response(200, v),
        Err(e) => error_response(&e),
    };
    let answered = if is_read(op) {
        // A read answers with the state as the call arrived, `latency` later: AWS's latency
        // includes its own work, and adding the emulator's after it charged the emulator's
        // CPU to the server in the benches (a fan-out's 17 answers at once, on two cores).
        let answer = tokio::task::spawn_blocking(operate).await;
        sleep_until_precisely(answer_at).await;
        answer
    } else {
        // A mutation takes effect only once its latency is over: a caller that gives up
        // before then never made it.
        sleep_until_coarsely(answer_at).await;
        tokio::task::spawn_blocking(move || {
            sleep_rest(answer_at);
            operate()
        })
        .await
    };
    if !plan.reply_latency.is_zero() {
        sleep_until_precisely(Instant::now() + plan.reply_latency).await;
    }
    answered.unwrap_or_else(|join| {
        error_response(&ApiError::new(
            "ServiceInternalErrorException",
            format!("emulator operation failed: {join}"),
        ))
    })
}

/// Operations that change nothing.
fn is_read(op: &str) -> bool {
    matches!(
        op,
        "ListResources" | "GetResource" | "GetResourceRequestStatus" | "ListResourceRequests"
    )
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"))
}

/// An unsigned STS call: `AssumeRoleWithWebIdentity` is the one STS takes without a signature
/// (the region is the client's; the emulator serves every region from one address).
async fn unsigned_sts_call(emu: &Emulator, body: Body) -> Response {
    let answer = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => {
            let form: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
            match form.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.as_str()) {
                Some("AssumeRoleWithWebIdentity") => {
                    emu.count_query_call(
                        "AssumeRoleWithWebIdentity",
                        &Caller::new(crate::ops::DEFAULT_ACCOUNT_ID, "us-east-1"),
                    );
                    crate::sts::assume_role_with_web_identity(emu, "us-east-1", &form)
                }
                _ => crate::sts::sts_error(403, "MissingAuthenticationToken", "Request is missing Authentication Token"),
            }
        }
        Err(_) => crate::sts::sts_error(413, "RequestEntityTooLarge", "Request body is too large."),
    };
    let mut resp = (StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_REQUEST), answer.body).into_response();
    resp.headers_mut().insert("content-type", HeaderValue::from_static("text/xml"));
    resp
}

/// An STS or CloudFormation call (awsQuery: a form-encoded body, an XML answer).
async fn query_call(emu: &Emulator, scope: &Scope, body: Body) -> Response {
    let answer = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => {
            let form: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
            let action = form.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.as_str()).unwrap_or("");
            if scope.service == "cloudformation" {
                emu.count_query_call(&format!("cloudformation:{action}"), &scope.caller());
                crate::registry::call(emu, &scope.region, &form)
            } else {
                emu.count_query_call(action, &scope.caller());
                crate::sts::call(emu, &scope.caller(), &scope.access_key_id, &form)
            }
        }
        Err(_) => crate::sts::sts_error(413, "RequestEntityTooLarge", "Request body is too large."),
    };
    let mut resp = (StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_REQUEST), answer.body).into_response();
    resp.headers_mut().insert("content-type", HeaderValue::from_static("text/xml"));
    resp
}

/// The container credentials endpoint: the configured credentials, expiring as configured.
async fn container_credentials(State(emu): State<Arc<Emulator>>) -> Response {
    let Some(c) = emu.config().container_credentials else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no credentials to hand out").into_response();
    };
    let expiration = crate::sts::iso8601(crate::store::epoch_seconds() as u64 + c.expires_in_seconds);
    Json(json!({
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": "emulated-secret",
        "Token": format!("emulated-session-{}", uuid::Uuid::new_v4().simple()),
        "Expiration": expiration,
    }))
    .into_response()
}

/// The IAM Identity Center portal's `GetRoleCredentials` (restJson, unsigned: the session's
/// access token is the proof): credentials of the named account for a signed-in session.
async fn sso_role_credentials(State(emu): State<Arc<Emulator>>, headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let query: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let token = headers
        .get("x-amz-sso_bearer_token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let config = emu.config();
    let unauthorized = || {
        let mut resp = (
            StatusCode::UNAUTHORIZED,
            json!({"message": "Session token not found or invalid"}).to_string(),
        )
            .into_response();
        resp.headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static("UnauthorizedException"));
        resp.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        resp
    };
    if token.is_empty() || !config.sso_access_tokens.iter().any(|t| t == token) {
        return unauthorized();
    }
    let account = param("account_id");
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) || param("role_name").is_empty() {
        return unauthorized();
    }
    let expiration_ms = (crate::store::epoch_seconds() as u64 + config.sso_credentials_seconds) * 1000;
    let key = format!(
        "ASIA{}{account}",
        &uuid::Uuid::new_v4().simple().to_string()[..4].to_ascii_uppercase()
    );
    Json(json!({"roleCredentials": {
        "accessKeyId": key,
        "secretAccessKey": "emulated-sso-secret",
        "sessionToken": format!("emulated-sso-{}", uuid::Uuid::new_v4().simple()),
        "expiration": expiration_ms,
    }}))
    .into_response()
}

/// The role name the instance metadata service gives its role.
const INSTANCE_ROLE: &str = "cloudpg-emulated-instance-role";

/// IMDSv2's session token (`PUT /latest/api/token` with a TTL header).
async fn imds_token(headers: HeaderMap) -> Response {
    let Some(ttl) = headers.get("x-aws-ec2-metadata-token-ttl-seconds").cloned() else {
        return (StatusCode::BAD_REQUEST, "missing x-aws-ec2-metadata-token-ttl-seconds").into_response();
    };
    let mut resp = format!("emulated-imds-{}", uuid::Uuid::new_v4().simple()).into_response();
    resp.headers_mut().insert("x-aws-ec2-metadata-token-ttl-seconds", ttl);
    resp
}

/// IMDSv2 only: a request without a session token is refused, as on an instance that
/// requires tokens.
fn has_imds_session(headers: &HeaderMap) -> bool {
    headers
        .get("x-aws-ec2-metadata-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("emulated-imds-"))
}

async fn imds_role(State(emu): State<Arc<Emulator>>, headers: HeaderMap) -> Response {
    if !has_imds_session(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match emu.config().instance_credentials {
        Some(_) => INSTANCE_ROLE.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn imds_credentials(
    State(emu): State<Arc<Emulator>>,
    headers: HeaderMap,
    axum::extract::Path(role): axum::extract::Path<String>,
) -> Response {
    if !has_imds_session(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Some(c) = emu.config().instance_credentials.filter(|_| role == INSTANCE_ROLE) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let now = crate::store::epoch_seconds() as u64;
    Json(json!({
        "Code": "Success",
        "LastUpdated": crate::sts::iso8601(now),
        "Type": "AWS-HMAC",
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": "emulated-secret",
        "Token": format!("emulated-instance-{}", uuid::Uuid::new_v4().simple()),
        "Expiration": crate::sts::iso8601(now + c.expires_in_seconds),
    }))
    .into_response()
}

async fn get_config(State(emu): State<Arc<Emulator>>) -> Json<EmulatorConfig> {
    Json(emu.config())
}

/// Merges the given fields into the configuration.
async fn set_config(State(emu): State<Arc<Emulator>>, body: Body) -> Response {
    let patch = match read_body(body).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, e.message).into_response(),
    };
    let mut current = match serde_json::to_value(emu.config()) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for (k, v) in patch {
        current.insert(k, v);
    }
    match serde_json::from_value::<EmulatorConfig>(Value::Object(current)) {
        Ok(cfg) => {
            emu.set_config(cfg.clone());
            Json(cfg).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("invalid emulator configuration: {e}")).into_response(),
    }
}

async fn counters(State(emu): State<Arc<Emulator>>) -> Response {
    Json(emu.counters()).into_response()
}

/// `POST /_emulator/reset` resets counters; `?state=true` also forgets every resource.
async fn reset(State(emu): State<Arc<Emulator>>, uri: axum::http::Uri) -> Response {
    emu.reset_counters();
    if uri.query().is_some_and(|q| q.contains("state=true")) {
        emu.reset_state();
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn unknown_path() -> Response {
    error_response(&ApiError::new(
        "UnknownOperationException",
        "Cloud Control is served at POST / only.",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_comes_from_the_credential_scope() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/cloudcontrolapi/aws4_request, SignedHeaders=host, Signature=abc",
            ),
        );
        assert_eq!(signed_region(&h).unwrap(), "eu-west-1");
        assert_eq!(signed_region(&HeaderMap::new()).unwrap_err().code, "InvalidCredentialsException");
    }
}
