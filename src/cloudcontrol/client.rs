//! [`ResourceApi`] over the real `aws-sdk-cloudcontrol` client.
//!
//! One SDK client per region, built lazily from one loaded `SdkConfig`, each call one HTTP
//! attempt: the retries (throttling, 5xx, timeouts and network failures; exponential backoff
//! with full jitter, up to `api.max_attempts` or `api.retry_budget`) are ours, so that every
//! attempt, not only a call's first, holds a permit of its region's semaphore (at most
//! `api.concurrency_per_region` in flight, none held while backing off) and waits for the
//! region's adaptive rate limit ([`AdaptiveRate`]), which every attempt's outcome feeds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_cloudcontrol::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudcontrol::Client;
use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::rate::AdaptiveRate;
use super::scrub::Scrubber;
use super::{
    parse_properties, Change, ListPage, ListRequest, MutationRequest, ProgressEvent, RequestFilter, RequestPage, Resource, ResourceApi,
};
use crate::config::Config;
use crate::error::{Error, Result};

/// Where the SDK sends calls and as whom.
#[derive(Debug, Clone)]
pub enum Target {
    /// The standard AWS credential chain and endpoints (or `aws.endpoint_url`).
    Aws,
    /// An emulator at this URL, with fixed credentials.
    Emulator(String),
}

/// A span for one Cloud Control call (its retries included) at `$level`, with the fields
/// [`SdkApi::timed`] fills in when the call ends.
macro_rules! call_span {
    ($level:expr, $name:literal, $($field:tt)*) => {
        tracing::span!(
            $level,
            $name,
            attempts = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
            outcome = tracing::field::Empty,
            $($field)*
        )
    };
}

/// When to try a failed call again (`[api]`).
#[derive(Debug, Clone, Copy)]
struct RetrySettings {
    max_attempts: u32,
    initial_backoff: std::time::Duration,
    max_backoff: std::time::Duration,
    budget: std::time::Duration,
}

impl RetrySettings {
    /// The wait after the `made`th failed attempt: exponential, capped, with full jitter (so
    /// calls throttled together do not come back together).
    fn backoff(&self, made: u32) -> std::time::Duration {
        let ceiling = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(made.saturating_sub(1).min(31)))
            .min(self.max_backoff);
        ceiling.mul_f64(rand::random::<f64>())
    }
}

/// One region's SDK client, and what bounds its calls: how many at once, and how fast.
struct RegionCalls {
    client: Client,
    in_flight: Arc<Semaphore>,
    rate: Arc<AdaptiveRate>,
}

/// A call's place among its region's calls in flight.
struct Admission {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

pub struct SdkApi {
    base: SdkConfig,
    scrubber: Arc<Scrubber>,
    regions: Mutex<HashMap<String, Arc<RegionCalls>>>,
    concurrency: usize,
    retry: RetrySettings,
    identity: String,
    calls: Arc<super::calls::CallLog>,
}

impl SdkApi {
    /// Runs one call (with its retries), recording its outcome, time and attempts in the
    /// metrics and the recent-calls log.
    /// `span` is the call's, made by `call_span!`.
    async fn timed<T, Fut>(
        &self,
        operation: &'static str,
        type_name: &str,
        region: &str,
        span: tracing::Span,
        attempt: impl Fn() -> Fut,
    ) -> Result<T>
    where
        Fut: std::future::Future<Output = Result<T>>,
    {
        let started = std::time::Instant::now();
        let at = std::time::SystemTime::now();
        let (out, counted) = super::calls::counting_attempts(self.with_retries(region, attempt))
            .instrument(span.clone())
            .await;
        let duration = started.elapsed();
        let attempts = counted.total;
        let out = out.map_err(|e| throttled_out(e, counted, duration, operation, type_name, region));
        let code = out.as_ref().err().map(|e| match e {
            Error::Aws(a) => a.code.as_str(),
            _ => "error",
        });
        crate::observe::metrics::api_call(operation, type_name, region, code, duration);
        let duration_ms = duration.as_secs_f64() * 1000.0;
        // As i64: OpenTelemetry has no unsigned integers, and an u64 would be exported as text.
        span.record("attempts", i64::from(attempts));
        span.record("duration_ms", duration_ms);
        span.record("outcome", code.unwrap_or("ok"));
        span.in_scope(|| {
            tracing::debug!(
                operation,
                type_name,
                region,
                duration_ms,
                attempts,
                outcome = code.unwrap_or("ok"),
                "cloud control call"
            )
        });
        self.calls.push(super::calls::CallRecord {
            at,
            operation,
            type_name: type_name.to_string(),
            region: region.to_string(),
            duration,
            attempts,
            outcome: code.unwrap_or("ok").to_string(),
            rate_limit: self.rate_limit(region),
        });
        out
    }

    /// Makes attempts until one succeeds, fails for good, or the attempts or the time budget
    /// run out. Each attempt waits for its place and its rate first; the backoff is slept
    /// holding neither.
    async fn with_retries<T, Fut>(&self, region: &str, attempt: impl Fn() -> Fut) -> Result<T>
    where
        Fut: std::future::Future<Output = Result<T>>,
    {
        let started = std::time::Instant::now();
        let mut made = 0;
        loop {
            made += 1;
            let admitted = self.admit(region).await?;
            let result = attempt().await;
            drop(admitted);
            let error = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if !error.is_transient() || made >= self.retry.max_attempts {
                return Err(error);
            }
            let delay = self.retry.backoff(made);
            if started.elapsed() + delay > self.retry.budget {
                return Err(error);
            }
            tokio::time::sleep(delay).await;
        }
    }

    pub async fn connect(config: &Config, target: Target, scrubber: Arc<Scrubber>, calls: Arc<super::calls::CallLog>) -> Result<SdkApi> {
        // The retries and the sending rate are ours, not the SDK's: its retries cannot wait
        // for a rate limit between attempts, and its adaptive mode, against throttling that
        // does not follow the rate, sinks to its floor of a call every couple of seconds.
        // One attempt per SDK call: `with_retries` makes the others.
        let retry = RetryConfig::disabled();
        let timeouts = TimeoutConfig::builder()
            .operation_attempt_timeout(config.api.request_timeout)
            .operation_timeout(config.api.request_timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry)
            .timeout_config(timeouts)
            // A signing region is needed even with a custom endpoint; each call's client sets its own.
            .region(Region::new("us-east-1"));
        let identity;
        match &target {
            Target::Emulator(url) => {
                loader = loader
                    .endpoint_url(url)
                    .credentials_provider(aws_credential_types::Credentials::new(
                        "AKIDCLOUDPGEMULATOR",
                        "emulator",
                        None,
                        None,
                        "cloudpg-emulator",
                    ));
                identity = "emulator".to_string();
            }
            Target::Aws => {
                if let Some(url) = &config.aws.endpoint_url {
                    loader = loader.endpoint_url(url);
                }
                if let Some(profile) = &config.aws.profile {
                    loader = loader.profile_name(profile);
                }
                identity = config.aws.profile.clone().unwrap_or_else(|| "default".to_string());
            }
        }
        let base = loader.load().await;
        Ok(SdkApi {
            base,
            scrubber,
            regions: Mutex::new(HashMap::new()),
            concurrency: config.api.concurrency_per_region,
            retry: RetrySettings {
                max_attempts: config.api.max_attempts.max(1),
                initial_backoff: config.api.initial_backoff,
                max_backoff: config.api.max_backoff,
                budget: config.api.retry_budget,
            },
            identity,
            calls,
        })
    }

    /// The region's client and limits, made on its first call.
    fn region(&self, region: &str) -> Arc<RegionCalls> {
        let mut regions = self.regions.lock().unwrap_or_else(|p| p.into_inner());
        regions
            .entry(region.to_string())
            .or_insert_with(|| {
                let rate = Arc::new(AdaptiveRate::default());
                // A retry partition of its own per region, whose retries draw on no shared
                // quota: the SDK's default quota, once a burst of throttles has spent it, fails
                // every call at its first throttle. The time budget bounds retries instead.
                let partition = RetryPartition::custom(format!("cloudpg-{region}"))
                    .token_bucket(TokenBucket::unlimited())
                    .build();
                let conf = aws_sdk_cloudcontrol::config::Builder::from(&self.base)
                    .region(Region::new(region.to_string()))
                    .retry_partition(partition)
                    .interceptor(AttemptMetrics {
                        region: region.to_string(),
                        rate: rate.clone(),
                    })
                    .build();
                Arc::new(RegionCalls {
                    client: Client::from_conf(conf),
                    in_flight: Arc::new(Semaphore::new(self.concurrency)),
                    rate,
                })
            })
            .clone()
    }

    fn client(&self, region: &str) -> Client {
        self.region(region).client.clone()
    }

    /// Waits for a place among the region's calls in flight, then for its rate limit.
    async fn admit(&self, region: &str) -> Result<Admission> {
        let limits = self.region(region);
        let permit = limits
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::internal(e.to_string()))?;
        limits.rate.admit().await;
        Ok(Admission { _permit: permit })
    }

    /// The region's call rate limit now (calls per second), `None` while unlimited.
    pub fn rate_limit(&self, region: &str) -> Option<f64> {
        self.region(region).rate.limit()
    }
}

/// Counts every HTTP attempt (one per `send`; [`SdkApi::with_retries`] makes the others) and
/// the throttled ones, which only an interceptor sees, and feeds them to the region's rate.
#[derive(Debug)]
struct AttemptMetrics {
    region: String,
    rate: Arc<AdaptiveRate>,
}

impl aws_sdk_cloudcontrol::config::Intercept for AttemptMetrics {
    fn name(&self) -> &'static str {
        "cloudpg.attempt_metrics"
    }

    fn read_after_attempt(
        &self,
        context: &aws_sdk_cloudcontrol::config::interceptors::FinalizerInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_cloudcontrol::config::RuntimeComponents,
        cfg: &mut aws_sdk_cloudcontrol::config::ConfigBag,
    ) -> std::result::Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let operation = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map_or("unknown", |m| m.name());
        let throttled = context.response().is_some_and(|r| {
            r.status().as_u16() == 429
                || r.headers()
                    .get("x-amzn-errortype")
                    .is_some_and(|t| t.starts_with("Throttling") || t.starts_with("TooManyRequests"))
        });
        crate::observe::metrics::api_attempt(operation, throttled);
        super::calls::count_attempt(throttled);
        self.rate.attempted(throttled, std::time::Instant::now());
        crate::observe::metrics::api_rate_limit(&self.region, self.rate.limit());
        Ok(())
    }
}

/// A call that ran out of time while Cloud Control kept throttling it failed because of the
/// throttling: it says so (53400), not that it timed out.
fn throttled_out(
    err: Error,
    attempts: super::calls::Attempts,
    spent: std::time::Duration,
    operation: &str,
    type_name: &str,
    region: &str,
) -> Error {
    match &err {
        Error::Aws(a)
            if attempts.throttled > 0 && attempts.total > 1 && (a.code == "RequestTimeout" || a.code.starts_with("Throttling")) =>
        {
            Error::aws(
                "ThrottlingException".to_string(),
                format!(
                    "Rate exceeded: throttled on {} of {} attempts over {:.1} s (api.retry_budget, api.max_attempts)",
                    attempts.throttled,
                    attempts.total,
                    spent.as_secs_f64()
                ),
                operation,
                region,
                Some(type_name).filter(|t| !t.is_empty()),
            )
        }
        _ => err,
    }
}

/// An SDK error as our error, keeping AWS's code and message and saying where it came from.
fn aws_error<E>(err: SdkError<E>, operation: &str, region: &str, type_name: &str) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (code, message) = match &err {
        SdkError::TimeoutError(_) => ("RequestTimeout".to_string(), "the call timed out (api.request_timeout)".to_string()),
        SdkError::DispatchFailure(f) => ("NetworkFailure".to_string(), format!("could not reach Cloud Control: {f:?}")),
        SdkError::ResponseError(_) => (
            "InvalidResponse".to_string(),
            "Cloud Control sent a response that could not be read".to_string(),
        ),
        _ => (
            err.code().unwrap_or("Unknown").to_string(),
            err.message()
                .map(str::to_string)
                .unwrap_or_else(|| aws_smithy_types::error::display::DisplayErrorContext(&err).to_string()),
        ),
    };
    Error::aws(code, message, operation, region, Some(type_name).filter(|t| !t.is_empty()))
}

#[async_trait]
impl ResourceApi for SdkApi {
    async fn list_page(&self, request: &ListRequest, next_token: Option<&str>) -> Result<ListPage> {
        let span =
            call_span!(tracing::Level::DEBUG, "cloudcontrol.ListResources", region = %request.region, type_name = %request.type_name);
        let attempt = || async {
            let out = self
                .client(&request.region)
                .list_resources()
                .type_name(&request.type_name)
                .set_resource_model(request.model.clone())
                .set_next_token(next_token.map(str::to_string))
                .send()
                .await
                .map_err(|e| aws_error(e, "ListResources", &request.region, &request.type_name))?;
            let resources = out
                .resource_descriptions()
                .iter()
                .map(|d| Resource {
                    identifier: d.identifier().unwrap_or_default().to_string(),
                    properties: Arc::new(self.scrubbed(&request.type_name, d.properties())),
                })
                .collect();
            Ok(ListPage {
                resources,
                next_token: out.next_token().filter(|t| !t.is_empty()).map(str::to_string),
            })
        };
        self.timed("ListResources", &request.type_name, &request.region, span, attempt)
            .await
    }

    async fn get(&self, region: &str, type_name: &str, identifier: &str) -> Result<Option<Resource>> {
        let span = call_span!(tracing::Level::DEBUG, "cloudcontrol.GetResource", %region, %type_name, %identifier);
        let attempt = || async {
            let result = self
                .client(region)
                .get_resource()
                .type_name(type_name)
                .identifier(identifier)
                .send()
                .await;
            match result {
                Ok(out) => Ok(out.resource_description().map(|d| Resource {
                    identifier: d.identifier().unwrap_or(identifier).to_string(),
                    properties: Arc::new(self.scrubbed(type_name, d.properties())),
                })),
                Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
                Err(e) => Err(aws_error(e, "GetResource", region, type_name)),
            }
        };
        self.timed("GetResource", type_name, region, span, attempt).await
    }

    fn identity(&self) -> String {
        self.identity.clone()
    }

    async fn ready(&self) -> Result<()> {
        use aws_credential_types::provider::ProvideCredentials;
        let provider = self
            .base
            .credentials_provider()
            .ok_or_else(|| Error::Config("no AWS credentials provider is configured".into()))?;
        provider
            .provide_credentials()
            .await
            .map(|_| ())
            .map_err(|e| Error::Config(format!("AWS credentials cannot be had: {e}")))
    }

    async fn mutate(&self, request: &MutationRequest) -> Result<ProgressEvent> {
        let operation = request.change.api_operation();
        let span = call_span!(
            tracing::Level::INFO,
            "cloudcontrol.mutate",
            operation,
            region = %request.region,
            type_name = %request.type_name,
            identifier = request.change.identifier().unwrap_or(""),
            client_token = %request.client_token,
        );
        let attempt = || async {
            let client = self.client(&request.region);
            let event = match &request.change {
                Change::Create { desired_state } => {
                    client
                        .create_resource()
                        .type_name(&request.type_name)
                        .desired_state(desired_state)
                        .client_token(&request.client_token)
                        .set_role_arn(request.role_arn.clone())
                        .set_type_version_id(request.type_version_id.clone())
                        .send()
                        .await
                        .map_err(|e| aws_error(e, operation, &request.region, &request.type_name))?
                        .progress_event
                }
                Change::Update { identifier, patch } => {
                    client
                        .update_resource()
                        .type_name(&request.type_name)
                        .identifier(identifier)
                        .patch_document(patch)
                        .client_token(&request.client_token)
                        .set_role_arn(request.role_arn.clone())
                        .set_type_version_id(request.type_version_id.clone())
                        .send()
                        .await
                        .map_err(|e| aws_error(e, operation, &request.region, &request.type_name))?
                        .progress_event
                }
                Change::Delete { identifier } => {
                    client
                        .delete_resource()
                        .type_name(&request.type_name)
                        .identifier(identifier)
                        .client_token(&request.client_token)
                        .set_role_arn(request.role_arn.clone())
                        .set_type_version_id(request.type_version_id.clone())
                        .send()
                        .await
                        .map_err(|e| aws_error(e, operation, &request.region, &request.type_name))?
                        .progress_event
                }
            };
            event.as_ref().map(|e| self.progress_event(e)).ok_or_else(|| {
                Error::aws(
                    "InvalidResponse",
                    "Cloud Control accepted the request but sent no progress event",
                    operation,
                    &request.region,
                    Some(&request.type_name),
                )
            })
        };
        self.timed(operation, &request.type_name, &request.region, span, attempt).await
    }

    async fn request_status(&self, region: &str, request_token: &str) -> Result<ProgressEvent> {
        let span = call_span!(tracing::Level::DEBUG, "cloudcontrol.GetResourceRequestStatus", %region, %request_token);
        let attempt = || async {
            let out = self
                .client(region)
                .get_resource_request_status()
                .request_token(request_token)
                .send()
                .await
                .map_err(|e| with_token(aws_error(e, "GetResourceRequestStatus", region, ""), request_token))?;
            out.progress_event().map(|e| self.progress_event(e)).ok_or_else(|| {
                with_token(
                    Error::aws(
                        "InvalidResponse",
                        "no progress event in the answer",
                        "GetResourceRequestStatus",
                        region,
                        None,
                    ),
                    request_token,
                )
            })
        };
        self.timed("GetResourceRequestStatus", "", region, span, attempt).await
    }

    async fn list_requests(&self, region: &str, filter: &RequestFilter, next_token: Option<&str>) -> Result<RequestPage> {
        use aws_sdk_cloudcontrol::types::{Operation, OperationStatus, ResourceRequestStatusFilter};
        let span = call_span!(tracing::Level::DEBUG, "cloudcontrol.ListResourceRequests", %region);
        let attempt = || async {
            let sdk_filter = (!filter.operations.is_empty() || !filter.statuses.is_empty()).then(|| {
                ResourceRequestStatusFilter::builder()
                    .set_operations(Some(filter.operations.iter().map(|o| Operation::from(o.as_str())).collect()))
                    .set_operation_statuses(Some(filter.statuses.iter().map(|s| OperationStatus::from(s.as_str())).collect()))
                    .build()
            });
            let out = self
                .client(region)
                .list_resource_requests()
                .max_results(100)
                .set_resource_request_status_filter(sdk_filter)
                .set_next_token(next_token.map(str::to_string))
                .send()
                .await
                .map_err(|e| aws_error(e, "ListResourceRequests", region, ""))?;
            Ok(RequestPage {
                events: out
                    .resource_request_status_summaries()
                    .iter()
                    .map(|e| self.progress_event(e))
                    .collect(),
                next_token: out.next_token().filter(|t| !t.is_empty()).map(str::to_string),
            })
        };
        self.timed("ListResourceRequests", "", region, span, attempt).await
    }
}

fn with_token(e: Error, token: &str) -> Error {
    match e {
        Error::Aws(mut a) => {
            a.request_token = Some(token.to_string());
            Error::Aws(a)
        }
        other => other,
    }
}

impl SdkApi {
    /// A model from Cloud Control, without secrets or redacted columns.
    fn scrubbed(&self, type_name: &str, text: Option<&str>) -> serde_json::Map<String, serde_json::Value> {
        let mut properties = parse_properties(text);
        self.scrubber.properties(type_name, &mut properties);
        properties
    }

    fn progress_event(&self, e: &aws_sdk_cloudcontrol::types::ProgressEvent) -> ProgressEvent {
        let mut event = progress_event(e);
        event.resource_model = event
            .resource_model
            .as_deref()
            .and_then(|m| self.scrubber.model_text(event.type_name.as_deref(), m));
        event
    }
}

fn progress_event(e: &aws_sdk_cloudcontrol::types::ProgressEvent) -> ProgressEvent {
    ProgressEvent {
        type_name: e.type_name().map(str::to_string),
        identifier: e.identifier().map(str::to_string),
        request_token: e.request_token().unwrap_or_default().to_string(),
        hooks_request_token: e.hooks_request_token().map(str::to_string),
        operation: e.operation().map(|o| o.as_str().to_string()).unwrap_or_default(),
        operation_status: e.operation_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
        event_time: e.event_time().map(aws_smithy_types::DateTime::as_secs_f64),
        resource_model: e.resource_model().map(str::to_string),
        status_message: e.status_message().map(str::to_string),
        error_code: e.error_code().map(|c| c.as_str().to_string()),
        retry_after: e.retry_after().map(aws_smithy_types::DateTime::as_secs_f64),
    }
}
