//! Configuration: the TOML file (documented key by key in `config/default.toml`) and the
//! environment read into [`RawConfig`] (`sources`), then checked once into [`Config`], so later
//! code never re-parses strings; `show` prints the effective configuration with secrets masked.

pub mod accounts;
mod show;
pub mod sources;

pub use show::effective_toml;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::{Method, Role, ScramVerifier, User, Verifier};
use crate::error::{Error, Result};

/// The deepest expression nesting `limits.max_expression_depth` may allow: what the worker
/// threads' stacks are sized for (see `server::WORKER_STACK_BYTES`).
pub const MAX_EXPRESSION_DEPTH: usize = 10_000;
/// The smallest `limits.max_message_size`: catalog queries of BI tools run to tens of KB.
pub const MIN_MESSAGE_SIZE: usize = 64 * 1024;

/// The file as written; every key optional, defaults from `config/default.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    pub listen: String,
    /// Unset: each account's profile region or `AWS_REGION`, else us-east-1.
    pub regions: Option<Vec<String>>,
    pub max_connections: usize,
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    pub aws: RawAws,
    pub api: RawApi,
    pub cache: RawCache,
    pub mutations: RawMutations,
    pub limits: RawLimits,
    pub auth: RawAuth,
    pub tls: RawTls,
    pub redact: RawRedact,
    pub catalog: RawCatalog,
    pub schemas: RawSchemas,
    pub emulator: RawEmulator,
    pub metrics: RawMetrics,
    pub log: RawLog,
    pub tracing: RawTracing,
    pub accounts: Vec<accounts::RawAccount>,
}

/// The Prometheus and health endpoints (`[metrics]`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMetrics {
    /// Address of the HTTP listener serving `/metrics`, `/healthz` and `/readyz`; unset is off.
    pub listen: Option<String>,
}

/// How the server logs (`[log]`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLog {
    pub format: LogFormat,
}

/// OpenTelemetry span export (`[tracing]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawTracing {
    /// OTLP/HTTP (protobuf) URL spans are sent to, with its path (`…:4318/v1/traces`); unset is off.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute of every exported span.
    pub service_name: String,
    /// Headers sent with every export, e.g. a tracing vendor's API key.
    pub otlp_headers: std::collections::BTreeMap<String, String>,
}

impl Default for RawTracing {
    fn default() -> Self {
        RawTracing {
            otlp_endpoint: None,
            service_name: "cloudpg".into(),
            otlp_headers: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Who may connect (`[auth]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAuth {
    /// Unset: `scram-sha-256` when users are configured, `trust` when there are none.
    pub method: Option<Method>,
    pub users: Vec<RawUser>,
    /// The longest an address that keeps failing to log in waits for each answer.
    #[serde(with = "humantime_serde")]
    pub max_failure_delay: Duration,
}

impl Default for RawAuth {
    fn default() -> Self {
        RawAuth {
            method: None,
            users: Vec::new(),
            max_failure_delay: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub name: String,
    /// A verifier from `cloudpg user hash` (never a plaintext password).
    pub password: Option<String>,
    /// An environment variable holding the password, for secret stores.
    pub password_env: Option<String>,
    #[serde(default = "reader")]
    pub role: Role,
    pub accounts: Option<Vec<String>>,
    /// Cloud Control calls per minute this user's statements may make; unset: no budget.
    pub max_calls_per_minute: Option<u32>,
}

fn reader() -> Role {
    Role::Reader
}

/// TLS for client connections (`[tls]`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawTls {
    pub mode: TlsMode,
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plaintext only; SSLRequest is answered `N`.
    #[default]
    Off,
    /// TLS when the client asks, plaintext otherwise.
    Allow,
    /// TLS or nothing: a plaintext startup is refused (28000).
    Require,
}

/// Which tables clients see (`[catalog]`). BI tools read every table they list on each sync;
/// against a real account each table is at least one API call per region.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawCatalog {
    /// Services to expose (`ec2`, `s3`); empty exposes every service.
    pub services: Vec<String>,
    /// Services to leave out.
    pub exclude_services: Vec<String>,
    /// Tables to leave out, as `service.table`; `*` in either part matches any run of characters.
    pub exclude_tables: Vec<String>,
    /// Whether `_list_only` tables appear in catalog listings (`pg_class`,
    /// `information_schema`); they can always be queried by name.
    pub list_only_in_listings: bool,
}

/// Schemas read from an account over the shipped ones (`[schemas]`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawSchemas {
    /// The directory `cloudpg schemas refresh` writes and the server reads; "off" for the
    /// shipped schemas only. Unset: `$XDG_DATA_HOME/cloudpg/schemas` (or
    /// `~/.local/share/cloudpg/schemas`) against AWS, none on the emulator.
    pub directory: Option<String>,
    /// Refresh the directory from the first account's first region at startup, before the
    /// catalog is built.
    pub refresh_on_start: bool,
}

/// Readable but sensitive columns, masked for everyone (`[redact]`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRedact {
    /// `awscc.<service>.<table>.<column>`.
    pub columns: Vec<String>,
}

/// What one client, one statement and one connection may use; each bound is a number a
/// client cannot raise past the config (sessions may lower the per-statement ones).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLimits {
    /// A connection that has not finished its startup (and authentication) by then is closed.
    #[serde(with = "humantime_serde")]
    pub startup_timeout: Duration,
    /// Default of the session setting `statement_timeout`; zero is off.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// Default of `idle_session_timeout`: an idle connection is closed after this; zero is off.
    #[serde(with = "humantime_serde")]
    pub idle_session_timeout: Duration,
    /// Default of `idle_in_transaction_session_timeout`; zero is off.
    #[serde(with = "humantime_serde")]
    pub idle_in_transaction_session_timeout: Duration,
    /// Idle time before TCP keepalive probes start; zero leaves the OS default (off).
    #[serde(with = "humantime_serde")]
    pub tcp_keepalive: Duration,
    /// Largest protocol message a client may send, in bytes.
    pub max_message_size: usize,
    /// Default of `cloudpg.max_api_calls`: Cloud Control calls one statement may make.
    pub max_api_calls: u64,
    /// Deepest expression nesting a statement may have (`a OR b OR …` counts one per term).
    pub max_expression_depth: usize,
    /// Memory one statement's query engine may hold (sorts, joins, aggregates), in bytes.
    pub query_memory: usize,
    /// Memory all statements together may hold, in bytes.
    pub memory_pool: usize,
    /// Threads that run connections and statements; zero is one per CPU core.
    pub workers: usize,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAws {
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
    /// PEM file of certificate authorities trusted besides the system's, for AWS endpoints
    /// behind a TLS-inspecting proxy; unset: `AWS_CA_BUNDLE`, as the AWS CLI reads it.
    pub ca_bundle: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawApi {
    pub concurrency_per_region: usize,
    pub hydrate_concurrency: usize,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    pub max_attempts: u32,
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// How long one call may keep retrying throttling and 5xx answers.
    #[serde(with = "humantime_serde")]
    pub retry_budget: Duration,
    /// A hard ceiling on Cloud Control calls per second to each (account, region), retries
    /// included; unset: none (only the adaptive limit).
    pub max_calls_per_second: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawCache {
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    pub max_bytes: u64,
    /// How long past `ttl` a list page is still served while it is fetched again in the
    /// background; 0s: never.
    #[serde(with = "humantime_serde")]
    pub stale_while_revalidate: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMutations {
    pub allow: Option<bool>,
    /// Users who may mutate when mutations are allowed; empty means every user.
    pub writers: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub await_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub poll_initial: Duration,
    #[serde(with = "humantime_serde")]
    pub poll_max: Duration,
    /// Where mutations are journaled before they are sent: a file path, or "off". Unset: the
    /// user's state directory against AWS, off on the embedded emulator (its state dies with
    /// the process, so there is nothing to resume).
    pub journal: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawEmulator {
    pub resources_per_type: usize,
    pub latency_ms: u64,
    pub page_size: usize,
    pub seed: u64,
    #[serde(with = "humantime_serde")]
    pub mutation_delay: Duration,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            listen: "127.0.0.1:5433".into(),
            regions: None,
            max_connections: 256,
            shutdown_timeout: Duration::from_secs(10),
            aws: RawAws::default(),
            api: RawApi::default(),
            cache: RawCache::default(),
            mutations: RawMutations::default(),
            limits: RawLimits::default(),
            auth: RawAuth::default(),
            tls: RawTls::default(),
            redact: RawRedact::default(),
            catalog: RawCatalog::default(),
            schemas: RawSchemas::default(),
            emulator: RawEmulator::default(),
            metrics: RawMetrics::default(),
            log: RawLog::default(),
            tracing: RawTracing::default(),
            accounts: Vec::new(),
        }
    }
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            startup_timeout: Duration::from_secs(10),
            statement_timeout: Duration::ZERO,
            idle_session_timeout: Duration::ZERO,
            idle_in_transaction_session_timeout: Duration::ZERO,
            tcp_keepalive: Duration::from_secs(60),
            max_message_size: 4 * 1024 * 1024,
            max_api_calls: 10_000,
            max_expression_depth: 3_000,
            query_memory: 1024 * 1024 * 1024,
            memory_pool: 4 * 1024 * 1024 * 1024,
            workers: 0,
        }
    }
}

impl Default for RawApi {
    fn default() -> Self {
        RawApi {
            concurrency_per_region: 16,
            hydrate_concurrency: 16,
            request_timeout: Duration::from_secs(30),
            max_attempts: 100,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            retry_budget: Duration::from_secs(30),
            max_calls_per_second: None,
        }
    }
}

impl Default for RawCache {
    fn default() -> Self {
        RawCache {
            ttl: Duration::from_secs(300),
            max_bytes: 256 * 1024 * 1024,
            stale_while_revalidate: Duration::ZERO,
        }
    }
}

impl Default for RawMutations {
    fn default() -> Self {
        RawMutations {
            allow: None,
            writers: Vec::new(),
            await_timeout: Duration::from_secs(600),
            poll_initial: Duration::from_millis(100),
            poll_max: Duration::from_secs(10),
            journal: None,
        }
    }
}

impl Default for RawEmulator {
    fn default() -> Self {
        RawEmulator {
            resources_per_type: 5,
            latency_ms: 0,
            page_size: 20,
            seed: 42,
            mutation_delay: Duration::from_millis(50),
        }
    }
}

/// Which regions a query without a region filter reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultRegions {
    /// These regions (where the type exists).
    List(Vec<String>),
    /// `"*"`: every region where the type exists.
    All,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// `None`: each account's own (its `regions`, else its profile's region or `AWS_REGION`,
    /// else us-east-1).
    pub regions: Option<DefaultRegions>,
    /// The accounts read; one named `default` when the file configures none.
    pub accounts: Vec<accounts::AccountConfig>,
    pub max_connections: usize,
    pub shutdown_timeout: Duration,
    pub aws: RawAws,
    pub api: RawApi,
    pub cache: RawCache,
    pub mutations: RawMutations,
    pub limits: RawLimits,
    /// How clients log in, and the users.
    pub auth: AuthConfig,
    pub tls: RawTls,
    pub redact: RawRedact,
    pub catalog: RawCatalog,
    pub schemas: RawSchemas,
    pub emulator: RawEmulator,
    /// Where `/metrics`, `/healthz` and `/readyz` are served; `None` is off.
    pub metrics_listen: Option<SocketAddr>,
    pub log: RawLog,
    pub tracing: RawTracing,
}

/// The checked `[auth]`: the method and users with parsed verifiers.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub method: Method,
    pub users: Vec<User>,
    pub max_failure_delay: Duration,
}

impl Config {
    /// Reads and checks a TOML file alone (no environment).
    pub fn load(path: &Path) -> Result<Config> {
        let raw = sources::read(Some(path), std::iter::empty())?;
        Config::from_raw(raw).map_err(|e| Error::Config(format!("config file {}: {e}", path.display())))
    }

    /// The file (if any), then the `CLOUDPG_…` environment variables over it, checked.
    pub fn load_layered(path: Option<&Path>) -> Result<Config> {
        let raw = sources::read(path, std::env::vars())?;
        let at = path.map(|p| format!("config file {} with the environment", p.display()));
        Config::from_raw(raw).map_err(|e| Error::Config(format!("{}: {e}", at.as_deref().unwrap_or("configuration"))))
    }

    pub fn from_raw(raw: RawConfig) -> Result<Config> {
        let listen = raw
            .listen
            .parse()
            .map_err(|e| Error::Config(format!("listen = {:?} is not an address like 127.0.0.1:5433: {e}", raw.listen)))?;
        let regions = raw
            .regions
            .as_deref()
            .map(|r| accounts::check_regions(r, "regions"))
            .transpose()
            .map_err(Error::Config)?;
        let accounts = accounts::check(&raw.accounts, raw.aws.profile.as_deref())?;
        if !raw.accounts.is_empty() && raw.aws.profile.is_some() {
            return Err(Error::Config(
                "aws.profile and [[accounts]] are both set; give the profile to an account instead".into(),
            ));
        }
        let positive = |name: &str, v: usize| {
            if v == 0 {
                Err(Error::Config(format!("{name} must be at least 1")))
            } else {
                Ok(())
            }
        };
        positive("max_connections", raw.max_connections)?;
        positive("api.concurrency_per_region", raw.api.concurrency_per_region)?;
        positive("api.hydrate_concurrency", raw.api.hydrate_concurrency)?;
        positive("api.max_attempts", raw.api.max_attempts as usize)?;
        positive("emulator.page_size", raw.emulator.page_size)?;
        positive(
            "limits.max_api_calls",
            usize::try_from(raw.limits.max_api_calls).unwrap_or(usize::MAX),
        )?;
        positive("limits.max_expression_depth", raw.limits.max_expression_depth)?;
        if raw.limits.max_expression_depth > MAX_EXPRESSION_DEPTH {
            return Err(Error::Config(format!(
                "limits.max_expression_depth = {} is above {MAX_EXPRESSION_DEPTH}, the deepest the worker threads' stacks are sized for",
                raw.limits.max_expression_depth
            )));
        }
        if raw.limits.max_message_size < MIN_MESSAGE_SIZE {
            return Err(Error::Config(format!(
                "limits.max_message_size = {} is too small: clients need at least {MIN_MESSAGE_SIZE} bytes",
                raw.limits.max_message_size
            )));
        }
        if raw.limits.startup_timeout.is_zero() {
            return Err(Error::Config("limits.startup_timeout must be above 0".into()));
        }
        positive("limits.query_memory", raw.limits.query_memory)?;
        if raw.limits.memory_pool < raw.limits.query_memory {
            return Err(Error::Config(format!(
                "limits.memory_pool ({}) must be at least limits.query_memory ({})",
                raw.limits.memory_pool, raw.limits.query_memory
            )));
        }
        let metrics_listen = match &raw.metrics.listen {
            Some(addr) => Some(
                addr.parse()
                    .map_err(|e| Error::Config(format!("metrics.listen = {addr:?} is not an address like 127.0.0.1:9187: {e}")))?,
            ),
            None => None,
        };
        check_rate("api.max_calls_per_second", raw.api.max_calls_per_second)?;
        for a in &raw.accounts {
            check_rate(
                &format!("accounts: account {:?}: max_calls_per_second", a.name),
                a.max_calls_per_second,
            )?;
        }
        let auth = check_auth(&raw.auth)?;
        for user in &auth.users {
            for name in user.accounts.iter().flatten() {
                if !accounts.iter().any(|a| &a.name == name) {
                    return Err(Error::Config(format!(
                        "auth.users {:?}: accounts names {name:?}, which is not one of the configured accounts ({})",
                        user.name,
                        accounts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
                    )));
                }
            }
        }
        check_tls(&raw.tls)?;
        check_tracing(&raw.tracing)?;
        if raw.mutations.poll_initial.is_zero() || raw.mutations.poll_max < raw.mutations.poll_initial {
            return Err(Error::Config(
                "mutations.poll_initial must be above 0 and at most mutations.poll_max".into(),
            ));
        }
        Ok(Config {
            listen,
            regions,
            accounts,
            max_connections: raw.max_connections,
            shutdown_timeout: raw.shutdown_timeout,
            aws: raw.aws,
            api: raw.api,
            cache: raw.cache,
            mutations: raw.mutations,
            limits: raw.limits,
            auth,
            tls: raw.tls,
            redact: raw.redact,
            catalog: raw.catalog,
            schemas: raw.schemas,
            emulator: raw.emulator,
            metrics_listen,
            log: raw.log,
            tracing: raw.tracing,
        })
    }
}

/// A rate limit, when set, is a positive number of calls per second.
fn check_rate(key: &str, rate: Option<f64>) -> Result<()> {
    match rate {
        Some(r) if !(r.is_finite() && r > 0.0) => Err(Error::Config(format!("{key} = {r} must be a positive number of calls per second"))),
        _ => Ok(()),
    }
}

/// The OTLP endpoint is an http(s) URL with a host, so a typo stops the server at startup
/// rather than dropping every span in the background.
fn check_tracing(raw: &RawTracing) -> Result<()> {
    let Some(endpoint) = &raw.otlp_endpoint else {
        return Ok(());
    };
    let host = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .map(|rest| rest.split(['/', ':']).next().unwrap_or(""));
    match host {
        Some(host) if !host.is_empty() => {}
        _ => {
            return Err(Error::Config(format!(
                "tracing.otlp_endpoint = {endpoint:?} is not a URL like \"http://127.0.0.1:4318/v1/traces\""
            )))
        }
    }
    if raw.service_name.trim().is_empty() {
        return Err(Error::Config("tracing.service_name must not be empty".into()));
    }
    for name in raw.otlp_headers.keys() {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(Error::Config(format!(
                "tracing.otlp_headers: {name:?} is not an HTTP header name (letters, digits, '-')"
            )));
        }
    }
    Ok(())
}

/// Verifiers parsed, `password_env` read, the method settled.
fn check_auth(raw: &RawAuth) -> Result<AuthConfig> {
    let mut users = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for u in &raw.users {
        let at = format!("auth.users name = {:?}", u.name);
        if u.name.is_empty() || u.name.len() > crate::auth::MAX_NAME_BYTES {
            return Err(Error::Config(format!("{at}: a user name has 1 to 63 bytes")));
        }
        if !seen.insert(u.name.clone()) {
            return Err(Error::Config(format!("{at}: the user is listed twice")));
        }
        let verifier = match (&u.password, &u.password_env) {
            (Some(p), None) => Verifier::parse(p).map_err(|e| Error::Config(format!("{at}: password: {e}")))?,
            (None, Some(var)) => {
                let password = std::env::var(var)
                    .map_err(|_| Error::Config(format!("{at}: password_env = {var:?}, but the environment has no {var}")))?;
                if password.is_empty() {
                    return Err(Error::Config(format!("{at}: the environment variable {var} is empty")));
                }
                Verifier::Scram(ScramVerifier::from_password(&password))
            }
            _ => {
                return Err(Error::Config(format!(
                    "{at}: give exactly one of password (a verifier from `cloudpg user hash`) or password_env"
                )))
            }
        };
        users.push(User {
            name: u.name.clone(),
            verifier,
            role: u.role,
            accounts: u.accounts.clone(),
            max_calls_per_minute: u.max_calls_per_minute,
        });
        if u.max_calls_per_minute == Some(0) {
            return Err(Error::Config(format!("{at}: max_calls_per_minute must be at least 1")));
        }
    }
    let method = raw
        .method
        .unwrap_or(if users.is_empty() { Method::Trust } else { Method::ScramSha256 });
    if method != Method::Trust && users.is_empty() {
        return Err(Error::Config(
            "auth.method asks for passwords but there are no [[auth.users]]: add one (cloudpg user hash makes its password)".into(),
        ));
    }
    if method == Method::ScramSha256 {
        if let Some(u) = users.iter().find(|u| matches!(u.verifier, Verifier::Md5(_))) {
            return Err(Error::Config(format!(
                "auth.users name = {:?} has an md5 verifier, which auth.method = \"scram-sha-256\" cannot check: give it a SCRAM verifier, or set auth.method = \"md5\"",
                u.name
            )));
        }
    }
    Ok(AuthConfig {
        method,
        users,
        max_failure_delay: raw.max_failure_delay,
    })
}

fn check_tls(tls: &RawTls) -> Result<()> {
    if tls.mode == TlsMode::Off {
        return Ok(());
    }
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => crate::tls::load(cert, key).map(|_| ()),
        _ => Err(Error::Config("tls.mode needs tls.cert and tls.key (PEM files)".into())),
    }
}

impl Config {
    /// Whether the listener is exposed without passwords, which is refused except on the
    /// embedded emulator (no AWS account behind it). Returns warnings to log at startup.
    pub fn check_exposure(&self, emulator: bool) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        if !self.mutations.writers.is_empty() {
            warnings.push(
                "[mutations] writers is deprecated: give each user a role (role = \"writer\" in [[auth.users]]); it still limits who may write for now"
                    .into(),
            );
        }
        if self.auth.method != Method::Trust {
            return Ok(warnings);
        }
        let loopback = self.listen.ip().is_loopback();
        match (loopback, emulator) {
            (true, _) => warnings.push(format!(
                "no passwords: trust authentication on {} (loopback only); add [[auth.users]] to require passwords",
                self.listen
            )),
            (false, true) => warnings.push(format!(
                "no passwords on {}, reachable from other hosts: allowed only because this server runs on the emulator",
                self.listen
            )),
            (false, false) => {
                return Err(Error::Config(format!(
                    "listen = \"{}\" is reachable from other hosts, but [auth] has no users (trust): add a user with `cloudpg user hash` \
                     ([[auth.users]] name, password, role), or listen on 127.0.0.1",
                    self.listen
                )))
            }
        }
        Ok(warnings)
    }
}

impl Default for Config {
    fn default() -> Self {
        // The defaults are valid by construction; the test below keeps them so.
        Config::from_raw(RawConfig::default()).unwrap_or_else(|e| panic!("built-in defaults are invalid: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_toml_matches_the_built_in_defaults() {
        let text = include_str!("../../config/default.toml");
        let raw: RawConfig = toml::from_str(text).expect("config/default.toml parses");
        let file = Config::from_raw(raw).expect("config/default.toml is valid");
        let builtin = Config::default();
        assert_eq!(format!("{file:?}"), format!("{builtin:?}"));
    }

    #[test]
    fn bad_values_are_named() {
        let raw = RawConfig {
            regions: Some(vec!["mars-1".into()]),
            ..RawConfig::default()
        };
        let err = Config::from_raw(raw).unwrap_err().to_string();
        assert!(err.contains("mars-1") && err.contains("us-east-1"), "{err}");
        let err = toml::from_str::<RawConfig>("listen = 5").unwrap_err().to_string();
        assert!(err.contains("listen"), "{err}");
        let err = toml::from_str::<RawConfig>("nope = 1").unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
        let raw: RawConfig = toml::from_str("regions = [\"*\"]").unwrap();
        assert_eq!(Config::from_raw(raw).unwrap().regions, Some(DefaultRegions::All));
    }

    #[test]
    fn otlp_endpoints_must_be_http_urls() {
        for (text, ok) in [
            ("[tracing]\notlp_endpoint = \"http://127.0.0.1:4318/v1/traces\"", true),
            ("[tracing]\notlp_endpoint = \"https://otel.example.com/v1/traces\"", true),
            ("[tracing]\notlp_endpoint = \"127.0.0.1:4318\"", false),
            ("[tracing]\notlp_endpoint = \"http:///v1/traces\"", false),
            ("[tracing]\notlp_endpoint = \"http://h\"\nservice_name = \" \"", false),
            ("[tracing]\notlp_endpoint = \"http://h\"\notlp_headers = { \"a b\" = \"1\" }", false),
        ] {
            let result = auth(text);
            assert_eq!(result.is_ok(), ok, "{text}: {result:?}");
            if let Err(e) = result {
                assert!(e.to_string().contains("tracing."), "{e}");
            }
        }
    }

    fn auth(toml_text: &str) -> Result<Config> {
        Config::from_raw(toml::from_str(toml_text).map_err(|e| Error::Config(e.to_string()))?)
    }

    #[test]
    fn users_need_verifiers_and_exposure_needs_users() {
        let verifier = ScramVerifier::from_password("pw").to_string();
        let ok = auth(&format!(
            "[[auth.users]]\nname = \"alice\"\npassword = \"{verifier}\"\nrole = \"writer\""
        ))
        .unwrap();
        assert_eq!(ok.auth.method, Method::ScramSha256);
        assert_eq!(ok.auth.users[0].role, Role::Writer);
        let e = auth("[[auth.users]]\nname = \"alice\"\npassword = \"hunter2\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("alice") && e.contains("cloudpg user hash") && !e.contains("hunter2"),
            "{e}"
        );
        let e = auth("[[auth.users]]\nname = \"bob\"\npassword_env = \"CLOUDPG_TEST_NO_SUCH_VAR\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("CLOUDPG_TEST_NO_SUCH_VAR"), "{e}");
        let e = auth("[auth]\nmethod = \"scram-sha-256\"").unwrap_err().to_string();
        assert!(e.contains("no [[auth.users]]"), "{e}");
        let e = auth(&format!(
            "[auth]\nmethod = \"scram-sha-256\"\n[[auth.users]]\nname = \"old\"\npassword = \"{}\"",
            crate::auth::md5_verifier("old", "pw")
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("md5"), "{e}");

        let open = auth("listen = \"0.0.0.0:5433\"").unwrap();
        let e = open.check_exposure(false).unwrap_err().to_string();
        assert!(e.contains("0.0.0.0:5433") && e.contains("cloudpg user hash"), "{e}");
        assert_eq!(open.check_exposure(true).unwrap().len(), 1, "the emulator may, with a warning");
        assert!(Config::default().check_exposure(false).is_ok(), "loopback trust is the default");
        let e = auth("[tls]\nmode = \"require\"\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/cert.pem"), "{e}");
    }
}
