//! A local AWS Cloud Control API that speaks the real awsJson 1.0 protocol, so the real
//! `aws-sdk-cloudcontrol` (and boto3, and the AWS CLI) can talk to it over HTTP.
//!
//! # Layout
//!
//! - [`http`]: the HTTP front: `POST /` with `X-Amz-Target`, SigV4 region, body limits, error
//!   bodies; and the `/_emulator/*` control endpoints.
//! - [`ops`]: the eight operations, with AWS's validation and messages.
//! - [`store`]: per-region state: resources by type, mutation requests, client tokens.
//! - [`generate`]: deterministic demo resources generated from the resource schemas.
//! - [`validate`]: desired-state checks against the schemas (types, enums, patterns).
//! - [`pattern`]: ECMA-262 schema patterns: matching (look-around included) and generation.
//! - [`faults`]: latency, throttling and failure injection, and call counters.
//! - [`registry`]: CloudFormation `ListTypes` and `DescribeType`, the schemas a refresh reads.
//! - [`sts`]: STS `GetCallerIdentity` and `AssumeRole`, enough for the SDK's credential
//!   providers; the account of a call is derived from its access key id ([`ops::Caller`]).
//!
//! Each account (derived from the access key id) has its own resources. State is behind one
//! `std::sync::Mutex` per (account, region): every operation is a short in-memory
//! step with no `.await` while the lock is held, so a blocking mutex is cheaper and simpler
//! than an async one.

pub mod faults;
pub mod generate;
pub mod http;
pub mod ops;
pub mod pattern;
pub mod registry;
pub mod store;
pub mod sts;
pub mod validate;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use faults::{CallStamp, Counters, FaultConfig, FaultRule};
pub use ops::{Caller, DEFAULT_ACCOUNT_ID};

/// How the emulator behaves; every field can be changed at runtime through
/// `POST /_emulator/config` (fields left out keep their value).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmulatorConfig {
    /// Resources seeded per (region, type) on first use.
    pub resources_per_type: usize,
    /// Per-type override of `resources_per_type`.
    pub resources_per_type_overrides: HashMap<String, usize>,
    /// ListResources page size.
    pub page_size: usize,
    /// Per-type override of `page_size`.
    pub page_size_overrides: HashMap<String, usize>,
    /// Types whose list returns full models instead of only the primary identifier.
    pub full_list_models: Vec<String>,
    /// Seed of the generated demo data.
    pub seed: u64,
    /// How long a mutation stays IN_PROGRESS before it finishes.
    pub mutation_delay_ms: u64,
    /// Latency, throttling and failure injection.
    pub faults: FaultConfig,
    /// Types whose answers drift from their schema, as AWS's do when a service adds properties
    /// before the schema says so: each resource carries an undeclared property
    /// (`EmulatorUndeclared`), a value of the wrong type (a string in the type's first
    /// integer, number or boolean property), its first `date-time` property as epoch seconds
    /// and its second as text that is no time at all.
    pub schema_drift: Vec<String>,
    /// Opt-in regions (and regions of other partitions) every account may call; the others
    /// answer UnrecognizedClientException, as AWS does in a region an account has not enabled.
    pub opted_in_regions: Vec<String>,
    /// Provider schemas `DescribeType` answers instead of the shipped ones, by type name, as
    /// when AWS ships a new schema; a type the registry does not know is listed as a private
    /// type of the account.
    pub described_schemas: std::collections::BTreeMap<String, serde_json::Value>,
    /// What `GET /_emulator/credentials` serves, as the ECS/EKS container credentials endpoint
    /// does (`AWS_CONTAINER_CREDENTIALS_FULL_URI`); `None`: it answers 503, as an agent that
    /// cannot hand out credentials.
    pub container_credentials: Option<ContainerCredentials>,
    /// What the instance metadata service (IMDSv2: a PUT for a session token first) hands out
    /// for the instance's role, at `/latest/meta-data/iam/security-credentials/`; `None`: the
    /// instance has no role (404).
    pub instance_credentials: Option<ContainerCredentials>,
    /// Access keys whose calls answer `ExpiredTokenException`, as AWS does once a session's
    /// credentials have expired.
    pub expired_keys: Vec<String>,
    /// Access tokens of IAM Identity Center (SSO) sessions that are signed in: the portal's
    /// `GetRoleCredentials` accepts these and answers others `UnauthorizedException`, as once
    /// a session has ended.
    pub sso_access_tokens: Vec<String>,
    /// How long the role credentials `GetRoleCredentials` hands out last, in seconds.
    pub sso_credentials_seconds: u64,
    /// Types Cloud Control does not know (TypeNotFoundException) although the schema data says
    /// they exist: `"TYPE"` everywhere, `"TYPE REGION"` in one region, as when a service's
    /// rollout differs from the data.
    pub withdrawn_types: Vec<String>,
}

/// Credentials the container endpoint hands out.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerCredentials {
    pub access_key_id: String,
    /// Seconds until they expire.
    pub expires_in_seconds: u64,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            resources_per_type: 5,
            resources_per_type_overrides: HashMap::new(),
            page_size: 20,
            page_size_overrides: HashMap::new(),
            full_list_models: Vec::new(),
            seed: 42,
            mutation_delay_ms: 50,
            faults: FaultConfig::default(),
            opted_in_regions: Vec::new(),
            schema_drift: Vec::new(),
            described_schemas: std::collections::BTreeMap::new(),
            container_credentials: None,
            instance_credentials: None,
            expired_keys: Vec::new(),
            sso_access_tokens: Vec::new(),
            sso_credentials_seconds: 3600,
            withdrawn_types: Vec::new(),
        }
    }
}

/// The types that always have several demo resources, whatever `resources_per_type` says.
pub const ALWAYS_SEEDED: &[&str] = &[
    "AWS::EC2::InstanceConnectEndpoint",
    "AWS::Connect::Instance",
    "AWS::Events::Connection",
    "AWS::CodeConnections::Connection",
    "AWS::EC2::VPC",
    "AWS::EC2::Subnet",
    "AWS::EC2::SecurityGroup",
    "AWS::S3::Bucket",
    "AWS::IAM::Role",
    "AWS::Lambda::Function",
    "AWS::Logs::LogGroup",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::KMS::Key",
    "AWS::EKS::Cluster",
    "AWS::EKS::Nodegroup",
];

/// Minimum number of resources of an [`ALWAYS_SEEDED`] type.
pub const ALWAYS_SEEDED_MIN: usize = 3;

/// A running emulator. Dropping it (or calling [`Emulator::shutdown`]) stops the server.
pub struct Emulator {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    state: Arc<ops::Emulator>,
}

impl Emulator {
    /// Starts on `addr` (port 0 picks a free port) in the current tokio runtime.
    pub async fn start(addr: SocketAddr, config: EmulatorConfig) -> std::io::Result<Emulator> {
        let listener = TcpListener::bind(addr).await?;
        Self::serve(listener, config)
    }

    /// Serves on an already-bound listener.
    pub fn serve(listener: TcpListener, config: EmulatorConfig) -> std::io::Result<Emulator> {
        let addr = listener.local_addr()?;
        let registry = resource_schemas::Registry::shared().map_err(|e| std::io::Error::other(e.to_string()))?;
        let state = Arc::new(ops::Emulator::new(registry, config));
        let (tx, rx) = oneshot::channel::<()>();
        let app = http::router(state.clone());
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = server.await {
                tracing::error!(cause = %e, "emulator server stopped");
            }
        });
        tracing::info!(%addr, "Cloud Control emulator listening");
        Ok(Emulator {
            addr,
            shutdown: Some(tx),
            task: Some(task),
            state,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for an SDK endpoint override.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Calls made so far, per operation and per operation and type.
    pub fn counters(&self) -> Counters {
        self.state.counters()
    }

    pub fn reset_counters(&self) {
        self.state.reset_counters();
    }

    pub fn config(&self) -> EmulatorConfig {
        self.state.config()
    }

    pub fn set_config(&self, config: EmulatorConfig) {
        self.state.set_config(config);
    }

    /// Stops accepting connections and waits for the server task to end.
    pub async fn shutdown(mut self) {
        self.stop();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}
