//! [`ResourceApi`] over the real `aws-sdk-cloudcontrol` client.
//!
//! One loaded `SdkConfig` per configured account (its own credentials: a profile, a role
//! assumed through STS, or the standard chain), and one SDK client per (account, region), built
//! lazily, with a retry partition of its own: throttling in one account never spends another's
//! quota. Every call carries `cloudpg-<version>` as the SDK's app name, so CloudTrail shows
//! whose calls they are. Each call is one HTTP attempt: the retries (throttling, 5xx, timeouts
//! and network failures; exponential backoff with full jitter, up to `api.max_attempts` or
//! `api.retry_budget`) are ours, so that every attempt, not only a call's first, holds a permit
//! of its place's semaphore (at most `api.concurrency_per_region` in flight, none held while
//! backing off) and waits for the place's adaptive rate limit ([`AdaptiveRate`]), which every
//! attempt's outcome feeds.

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

use super::rate::{AdaptiveRate, Ceiling};
use super::scrub::Scrubber;
use super::{
    parse_properties, Change, ListPage, ListRequest, MutationRequest, Place, ProgressEvent, RequestFilter, RequestPage, Resource,
    ResourceApi,
};
use crate::config::accounts::{AccountConfig, CredentialSource, RoleSource};
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

/// One (account, region)'s SDK client, and what bounds its calls: how many at once, and how fast.
struct RegionCalls {
    client: Client,
    in_flight: Arc<Semaphore>,
    rate: Arc<AdaptiveRate>,
    /// The configured hard ceiling, if any.
    ceiling: Option<Ceiling>,
}

/// A call's place among its region's calls in flight.
struct Admission {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

pub struct SdkApi {
    /// Per account: the loaded config its clients are made from.
    accounts: HashMap<String, AccountSdk>,
    scrubber: Arc<Scrubber>,
    places: Mutex<HashMap<Place, Arc<RegionCalls>>>,
    concurrency: usize,
    retry: RetrySettings,
    calls: Arc<super::calls::CallLog>,
    /// Account ids from STS GetCallerIdentity, once known.
    account_ids: Mutex<HashMap<String, String>>,
}

/// One account's SDK setup.
struct AccountSdk {
    config: SdkConfig,
    /// Where its credentials come from, for messages.
    source: String,
    /// The region of its profile or `AWS_REGION`, when one is set.
    profile_region: Option<String>,
    /// Its ceiling on calls per second per region, if any.
    max_calls_per_second: Option<f64>,
}

impl SdkApi {
    /// Runs one call (with its retries), recording its outcome, time and attempts in the
    /// metrics and the recent-calls log.
    /// `span` is the call's, made by `call_span!`.
    pub(super) async fn timed<T, Fut>(
        &self,
        operation: &'static str,
        type_name: &str,
        place: &Place,
        span: tracing::Span,
        attempt: impl Fn() -> Fut,
    ) -> Result<T>
    where
        Fut: std::future::Future<Output = Result<T>>,
    {
        let started = std::time::Instant::now();
        let at = std::time::SystemTime::now();
        let region = place.region.as_str();
        let (out, counted) = super::calls::counting_attempts(self.with_retries(place, attempt))
            .instrument(span.clone())
            .await;
        let duration = started.elapsed();
        let attempts = counted.total;
        let out = out.map_err(|e| throttled_out(e, counted, duration, operation, type_name, place));
        let code = out.as_ref().err().map(|e| match e {
            Error::Aws(a) => a.code.as_str(),
            _ => "error",
        });
        crate::observe::metrics::api_call(operation, type_name, place, code, duration);
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
            account: place.account.clone(),
            region: region.to_string(),
            duration,
            attempts,
            outcome: code.unwrap_or("ok").to_string(),
            rate_limit: self.rate_limit(place),
        });
        out
    }

    /// Makes attempts until one succeeds, fails for good, or the attempts or the time budget
    /// run out. Each attempt waits for its place and its rate first; the backoff is slept
    /// holding neither.
    async fn with_retries<T, Fut>(&self, place: &Place, attempt: impl Fn() -> Fut) -> Result<T>
    where
        Fut: std::future::Future<Output = Result<T>>,
    {
        let started = std::time::Instant::now();
        let mut made = 0;
        loop {
            made += 1;
            let admitted = self.admit(place).await?;
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
        let mut accounts: HashMap<String, AccountSdk> = HashMap::new();
        // Accounts that assume a role from another account come after that account.
        let mut ordered: Vec<&AccountConfig> = config.accounts.iter().collect();
        ordered.sort_by_key(|a| matches!(&a.credentials, CredentialSource::Role(r) if matches!(r.source, RoleSource::Account(_))));
        // One HTTPS client for every account when a CA bundle asks for one: read it once.
        let http = https_client(config)?;
        for account in ordered {
            let sdk = account_sdk(config, &target, account, &accounts, http.clone()).await?;
            accounts.insert(account.name.clone(), sdk);
        }
        Ok(SdkApi {
            accounts,
            scrubber,
            places: Mutex::new(HashMap::new()),
            concurrency: config.api.concurrency_per_region,
            retry: RetrySettings {
                max_attempts: config.api.max_attempts.max(1),
                initial_backoff: config.api.initial_backoff,
                max_backoff: config.api.max_backoff,
                budget: config.api.retry_budget,
            },
            calls,
            account_ids: Mutex::new(HashMap::new()),
        })
    }

    /// The SDK for a command that reads AWS outside a server (a schema refresh, a live check):
    /// answers scrubbed of write-only values by the shipped schemas, nothing redacted.
    pub async fn connect_for_command(config: &Config, target: Target) -> Result<SdkApi> {
        let shipped = resource_schemas::Registry::shipped().map_err(|e| Error::Config(e.to_string()))?;
        let scrubber = Arc::new(Scrubber::new(shipped, HashMap::new()));
        Self::connect(config, target, scrubber, Arc::new(super::calls::CallLog::default())).await
    }

    /// The accounts whose credentials cannot be had now, with why.
    pub async fn credential_problems(&self) -> Vec<(String, Error)> {
        use aws_credential_types::provider::ProvideCredentials;
        let mut out = Vec::new();
        for (name, sdk) in &self.accounts {
            let outcome = match sdk.config.credentials_provider() {
                None => Err(Error::Config(format!("account {name}: no AWS credentials provider is configured"))),
                Some(provider) => provider
                    .provide_credentials()
                    .await
                    .map(|_| ())
                    .map_err(|e| Error::Config(credentials_message(name, &sdk.source, &e))),
            };
            if let Err(e) = outcome {
                out.push((name.clone(), e));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The region of an account's profile (or `AWS_REGION`), when one is set.
    pub fn profile_region(&self, account: &str) -> Option<String> {
        self.accounts.get(account).and_then(|a| a.profile_region.clone())
    }

    /// An account's SDK configuration (credentials, endpoint, timeouts), for the other AWS
    /// services cloudpg calls.
    pub(super) fn sdk_config(&self, account: &str) -> Result<&SdkConfig> {
        Ok(&self.account(account)?.config)
    }

    fn account(&self, account: &str) -> Result<&AccountSdk> {
        self.accounts
            .get(account)
            .ok_or_else(|| Error::internal(format!("account {account:?} is not configured")))
    }

    /// The place's client and limits, made on its first call.
    fn place(&self, place: &Place) -> Result<Arc<RegionCalls>> {
        let account = self.account(&place.account)?;
        let base = &account.config;
        let mut places = self.places.lock().unwrap_or_else(|p| p.into_inner());
        let calls = places.entry(place.clone()).or_insert_with(|| {
            let rate = Arc::new(AdaptiveRate::default());
            // A retry partition of its own per account and region, whose retries draw on no
            // shared quota: the SDK's default partition is per region and shared by every
            // client in the process, and its quota, once a burst of throttles has spent it,
            // fails every call at its first throttle. The time budget bounds retries instead.
            let partition = RetryPartition::custom(format!("cloudpg-{}-{}", place.account, place.region))
                .token_bucket(TokenBucket::unlimited())
                .build();
            let conf = aws_sdk_cloudcontrol::config::Builder::from(base)
                .region(Region::new(place.region.clone()))
                .retry_partition(partition)
                .interceptor(AttemptMetrics {
                    place: place.clone(),
                    rate: rate.clone(),
                })
                .build();
            Arc::new(RegionCalls {
                client: Client::from_conf(conf),
                in_flight: Arc::new(Semaphore::new(self.concurrency)),
                rate,
                ceiling: account.max_calls_per_second.map(Ceiling::new),
            })
        });
        Ok(calls.clone())
    }

    fn client(&self, place: &Place) -> Result<Client> {
        Ok(self.place(place)?.client.clone())
    }

    /// Waits for a place among the calls in flight to the same account and region, then for
    /// its rate limits: the configured ceiling, and the adaptive one.
    async fn admit(&self, place: &Place) -> Result<Admission> {
        let limits = self.place(place)?;
        let permit = limits
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::internal(e.to_string()))?;
        if let Some(ceiling) = &limits.ceiling {
            ceiling.admit().await;
        }
        limits.rate.admit().await;
        Ok(Admission { _permit: permit })
    }

    /// The place's call rate limit now (calls per second), `None` while unlimited.
    pub fn rate_limit(&self, place: &Place) -> Option<f64> {
        self.place(place).ok().and_then(|p| p.rate.limit())
    }
}

/// The SDK's app name: `cloudpg-<version>` (the SDK allows no `/` in it); user agents carry
/// it as `app/cloudpg-<version>`.
fn app_name() -> Option<aws_config::AppName> {
    aws_config::AppName::new(format!("cloudpg-{}", env!("CARGO_PKG_VERSION"))).ok()
}

/// The CA bundle to trust besides the system's roots: `aws.ca_bundle`, else `AWS_CA_BUNDLE`.
fn ca_bundle(config: &Config) -> Option<std::path::PathBuf> {
    config
        .aws
        .ca_bundle
        .clone()
        .or_else(|| std::env::var("AWS_CA_BUNDLE").ok())
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from)
}

/// The SDK's HTTPS client trusting the CA bundle too (and, as its default client does, the
/// proxies of HTTPS_PROXY / HTTP_PROXY / NO_PROXY); `None` without a bundle: the SDK's default.
/// A bundle that cannot be read or holds no certificate stops the server, naming the file.
fn https_client(config: &Config) -> Result<Option<aws_smithy_runtime_api::client::http::SharedHttpClient>> {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
    let Some(path) = ca_bundle(config) else {
        return Ok(None);
    };
    let bad = |why: String| Error::Config(format!("CA bundle {} (aws.ca_bundle or AWS_CA_BUNDLE): {why}", path.display()));
    let pem = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(bad("it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
    }
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::default().with_native_roots(true).with_pem_certificate(pem))
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let client = aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        let mut builder = aws_smithy_http_client::Connector::builder()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(context.clone());
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.set_proxy_config(Some(ProxyConfig::from_env()));
        builder.build()
    });
    Ok(Some(client))
}

/// One account's loaded config: its credentials, our timeouts, no SDK retries.
async fn account_sdk(
    config: &Config,
    target: &Target,
    account: &AccountConfig,
    loaded: &HashMap<String, AccountSdk>,
    http: Option<aws_smithy_runtime_api::client::http::SharedHttpClient>,
) -> Result<AccountSdk> {
    // The retries and the sending rate are ours, not the SDK's: its retries cannot wait
    // for a rate limit between attempts, and its adaptive mode, against throttling that
    // does not follow the rate, sinks to its floor of a call every couple of seconds.
    // One attempt per SDK call: `with_retries` makes the others.
    let timeouts = TimeoutConfig::builder()
        .operation_attempt_timeout(config.api.request_timeout)
        .operation_timeout(config.api.request_timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts);
    if let Some(client) = http {
        loader = loader.http_client(client);
    }
    if let Some(name) = app_name() {
        loader = loader.app_name(name);
    }
    let endpoint = match target {
        Target::Emulator(url) => Some(url.clone()),
        Target::Aws => config.aws.endpoint_url.clone(),
    };
    if let Some(url) = &endpoint {
        loader = loader.endpoint_url(url);
    }
    if matches!(target, Target::Emulator(_)) {
        // The region of AWS_REGION or the profile, without asking EC2's instance metadata:
        // off EC2 that probe fails with a warning on every start of the emulator.
        let profile_region = match &account.credentials {
            CredentialSource::Profile(p) => aws_config::profile::ProfileFileRegionProvider::builder().profile_name(p).build(),
            _ => aws_config::profile::ProfileFileRegionProvider::new(),
        };
        loader = loader.region(
            aws_config::meta::region::RegionProviderChain::first_try(aws_config::environment::EnvironmentVariableRegionProvider::new())
                .or_else(profile_region)
                // Else the fallback every default takes; left unset, the SDK's token chain
                // would go looking in instance metadata after all.
                .or_else(Region::new("us-east-1")),
        );
    }
    let emulator_key = || aws_credential_types::Credentials::new("AKIDCLOUDPGEMULATOR", "emulator", None, None, "cloudpg-emulator");
    // A named profile is the only source of its account's credentials: the standard chain
    // would take AWS_ACCESS_KEY_ID from the environment first, and read another account.
    let profile = |p: &str| {
        aws_config::profile::ProfileFileCredentialsProvider::builder()
            .profile_name(p)
            .build()
    };
    match (&account.credentials, target) {
        (CredentialSource::Profile(p), _) => loader = loader.profile_name(p).credentials_provider(profile(p)),
        // The emulator needs no real credentials: a fixed key is its default account.
        (CredentialSource::DefaultChain, Target::Emulator(_)) => loader = loader.credentials_provider(emulator_key()),
        (CredentialSource::DefaultChain, Target::Aws) => {}
        (CredentialSource::Role(role), _) => match (&role.source, target) {
            (RoleSource::Profile(p), _) => loader = loader.profile_name(p).credentials_provider(profile(p)),
            (RoleSource::DefaultChain, Target::Emulator(_)) => loader = loader.credentials_provider(emulator_key()),
            (RoleSource::DefaultChain, Target::Aws) => {}
            (RoleSource::Account(from), _) => {
                let source = loaded.get(from).and_then(|s| s.config.credentials_provider()).ok_or_else(|| {
                    Error::Config(format!(
                        "accounts: account {:?}: source_account {from:?} has no credentials",
                        account.name
                    ))
                })?;
                loader = loader.credentials_provider(source);
            }
        },
    }
    let loaded_config = loader.load().await;
    let profile_region = loaded_config.region().map(|r| r.to_string());
    // A signing region is needed even with a custom endpoint; each client sets its own.
    let mut config_out = loaded_config
        .into_builder()
        .region(Region::new(profile_region.clone().unwrap_or_else(|| "us-east-1".to_string())))
        .build();
    if let CredentialSource::Role(role) = &account.credentials {
        let mut assume = aws_config::sts::AssumeRoleProvider::builder(role.role_arn.clone())
            .session_name(role.session_name.clone())
            .configure(&config_out);
        if let Some(id) = &role.external_id {
            assume = assume.external_id(id.clone());
        }
        let provider = assume.build().await;
        config_out = config_out
            .into_builder()
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(provider))
            .build();
    }
    Ok(AccountSdk {
        config: config_out,
        source: account.credentials.describe(),
        profile_region,
        max_calls_per_second: account.max_calls_per_second.or(config.api.max_calls_per_second),
    })
}

/// Counts every HTTP attempt (one per `send`; [`SdkApi::with_retries`] makes the others) and
/// the throttled ones, which only an interceptor sees, and feeds them to the region's rate.
#[derive(Debug)]
struct AttemptMetrics {
    place: Place,
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
        crate::observe::metrics::api_rate_limit(&self.place, self.rate.limit());
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
    place: &Place,
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
                place,
                Some(type_name).filter(|t| !t.is_empty()),
            )
        }
        _ => err,
    }
}

impl SdkApi {
    /// An SDK error as our error, keeping AWS's code and message and saying where it came
    /// from; credentials that cannot be had name the account and where they come from.
    pub(super) fn aws_error<E>(&self, err: SdkError<E>, operation: &str, place: &Place, type_name: &str) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let type_name = Some(type_name).filter(|t| !t.is_empty());
        let source = self.accounts.get(&place.account).map_or("", |a| a.source.as_str());
        // The provider (a profile, STS AssumeRole, SSO) could not give credentials, so the
        // call was never sent.
        if let Some(cause) = cause_of::<aws_credential_types::provider::error::CredentialsError>(&err) {
            let message = credentials_message(&place.account, source, cause);
            let code = if message.contains("AccessDenied") {
                "AccessDenied"
            } else {
                "CredentialsUnavailable"
            };
            return Error::aws(code, message, operation, place, type_name);
        }
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
        let message = if code.trim_end_matches("Exception") == "ExpiredToken" {
            format!(
                "{message}: the credentials of account {} ({source}) have expired; refresh them (for SSO: aws sso login) \
                 and run the statement again, the server picks them up without a restart",
                place.account
            )
        } else {
            message
        };
        Error::aws(code, message, operation, place, type_name)
    }
}

/// Why an account's credentials could not be had, in one line naming the account and where
/// they come from: STS's own code and message when it refused (AssumeRole), else the causes'
/// chain, cut short (it can dump a whole HTTP response). Startup, `/readyz` and failed calls
/// all say it this way.
fn credentials_message(account: &str, source: &str, cause: &aws_credential_types::provider::error::CredentialsError) -> String {
    type AssumeRoleFailure = SdkError<aws_sdk_sts::operation::assume_role::AssumeRoleError, aws_smithy_runtime_api::http::Response>;
    let why = match cause_of::<AssumeRoleFailure>(cause) {
        Some(sts) => format!(
            "STS AssumeRole: {}: {}",
            sts.code().unwrap_or("Unknown"),
            sts.message().unwrap_or("no message")
        ),
        None => {
            let chain = aws_smithy_types::error::display::DisplayErrorContext(cause).to_string();
            match chain.char_indices().nth(400) {
                Some((cut, _)) => format!("{}…", &chain[..cut]),
                None => chain,
            }
        }
    };
    format!("the credentials of account {account} ({source}) cannot be had: {why}")
}

/// The first error of type `T` among `err` and its causes.
fn cause_of<'a, T: std::error::Error + 'static>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a T> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

#[async_trait]
impl ResourceApi for SdkApi {
    async fn list_page(&self, request: &ListRequest, next_token: Option<&str>) -> Result<ListPage> {
        let span = call_span!(tracing::Level::DEBUG, "cloudcontrol.ListResources", account = %request.place.account, region = %request.place.region, type_name = %request.type_name);
        let attempt = || async {
            let out = self
                .client(&request.place)?
                .list_resources()
                .type_name(&request.type_name)
                .set_resource_model(request.model.clone())
                .set_next_token(next_token.map(str::to_string))
                .send()
                .await
                .map_err(|e| self.aws_error(e, "ListResources", &request.place, &request.type_name))?;
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
        self.timed("ListResources", &request.type_name, &request.place, span, attempt).await
    }

    async fn get(&self, place: &Place, type_name: &str, identifier: &str) -> Result<Option<Resource>> {
        let span = call_span!(tracing::Level::DEBUG, "cloudcontrol.GetResource", account = %place.account, region = %place.region, %type_name, %identifier);
        let attempt = || async {
            let result = self
                .client(place)?
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
                Err(e) => Err(self.aws_error(e, "GetResource", place, type_name)),
            }
        };
        self.timed("GetResource", type_name, place, span, attempt).await
    }

    fn has_account(&self, account: &str) -> bool {
        self.accounts.contains_key(account)
    }

    async fn account_id(&self, account: &str) -> Result<String> {
        if let Some(id) = self.account_ids.lock().unwrap_or_else(|p| p.into_inner()).get(account) {
            return Ok(id.clone());
        }
        let sdk = self.account(account)?;
        let out = aws_sdk_sts::Client::new(&sdk.config)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| {
                let at = Place::new(account, sdk.config.region().map_or("us-east-1", |r| r.as_ref()));
                self.aws_error(e, "sts:GetCallerIdentity", &at, "")
            })?;
        let id = out.account().unwrap_or_default().to_string();
        self.account_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(account.to_string(), id.clone());
        Ok(id)
    }

    async fn ready(&self) -> Result<()> {
        match self.credential_problems().await.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    async fn mutate(&self, request: &MutationRequest) -> Result<ProgressEvent> {
        let operation = request.change.api_operation();
        let span = call_span!(
            tracing::Level::INFO,
            "cloudcontrol.mutate",
            operation,
            account = %request.place.account,
            region = %request.place.region,
            type_name = %request.type_name,
            identifier = request.change.identifier().unwrap_or(""),
            client_token = %request.client_token,
        );
        let attempt = || async {
            let client = self.client(&request.place)?;
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
                        .map_err(|e| self.aws_error(e, operation, &request.place, &request.type_name))?
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
                        .map_err(|e| self.aws_error(e, operation, &request.place, &request.type_name))?
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
                        .map_err(|e| self.aws_error(e, operation, &request.place, &request.type_name))?
                        .progress_event
                }
            };
            event.as_ref().map(|e| self.progress_event(e)).ok_or_else(|| {
                Error::aws(
                    "InvalidResponse",
                    "Cloud Control accepted the request but sent no progress event",
                    operation,
                    &request.place,
                    Some(&request.type_name),
                )
            })
        };
        self.timed(operation, &request.type_name, &request.place, span, attempt).await
    }

    async fn request_status(&self, place: &Place, request_token: &str) -> Result<ProgressEvent> {
        let span = call_span!(tracing::Level::DEBUG, "cloudcontrol.GetResourceRequestStatus", account = %place.account, region = %place.region, %request_token);
        let attempt = || async {
            let out = self
                .client(place)?
                .get_resource_request_status()
                .request_token(request_token)
                .send()
                .await
                .map_err(|e| with_token(self.aws_error(e, "GetResourceRequestStatus", place, ""), request_token))?;
            out.progress_event().map(|e| self.progress_event(e)).ok_or_else(|| {
                with_token(
                    Error::aws(
                        "InvalidResponse",
                        "no progress event in the answer",
                        "GetResourceRequestStatus",
                        place,
                        None,
                    ),
                    request_token,
                )
            })
        };
        self.timed("GetResourceRequestStatus", "", place, span, attempt).await
    }

    async fn list_requests(&self, place: &Place, filter: &RequestFilter, next_token: Option<&str>) -> Result<RequestPage> {
        use aws_sdk_cloudcontrol::types::{Operation, OperationStatus, ResourceRequestStatusFilter};
        let span = call_span!(tracing::Level::DEBUG, "cloudcontrol.ListResourceRequests", account = %place.account, region = %place.region);
        let attempt = || async {
            let sdk_filter = (!filter.operations.is_empty() || !filter.statuses.is_empty()).then(|| {
                ResourceRequestStatusFilter::builder()
                    .set_operations(Some(filter.operations.iter().map(|o| Operation::from(o.as_str())).collect()))
                    .set_operation_statuses(Some(filter.statuses.iter().map(|s| OperationStatus::from(s.as_str())).collect()))
                    .build()
            });
            let out = self
                .client(place)?
                .list_resource_requests()
                .max_results(100)
                .set_resource_request_status_filter(sdk_filter)
                .set_next_token(next_token.map(str::to_string))
                .send()
                .await
                .map_err(|e| self.aws_error(e, "ListResourceRequests", place, ""))?;
            Ok(RequestPage {
                events: out
                    .resource_request_status_summaries()
                    .iter()
                    .map(|e| self.progress_event(e))
                    .collect(),
                next_token: out.next_token().filter(|t| !t.is_empty()).map(str::to_string),
            })
        };
        self.timed("ListResourceRequests", "", place, span, attempt).await
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
