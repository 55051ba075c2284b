//! The only place that knows the AWS SDK: Cloud Control calls behind the [`ResourceApi`] trait.
//!
//! - `client`: the SDK implementation: one client per region, retries with backoff and jitter
//!   for throttling and 5xx (the SDK's own classification), a concurrency limit per region and a
//!   per-attempt timeout, all from config.
//! - `cache`: list pages and GetResource results in a moka cache with TTL, a byte bound and
//!   single-flight, keyed by account, region, type and model/identifier.
//! - `budget`: the Cloud Control calls one statement may make.
//! - `usage`: each user's calls per minute (budgets) and the last hour's calls by user,
//!   account, region and type.
//! - `scrub`: write-only properties and redacted columns removed from every answer.
//! - `requests`: every mutation this server starts: submitted with its ClientToken, polled to
//!   a final status in the background, listed in `cloudpg.requests`.
//!
//! Everything above this module sees plain Rust types: JSON properties, pages, errors.

pub mod budget;
pub mod cache;
pub mod calls;
pub mod client;
pub mod journal;
pub mod rate;
pub mod registry;
pub mod requests;
pub mod scrub;
pub mod usage;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::error::Result;

/// One resource as Cloud Control describes it. Properties are shared, so rows built from a
/// cached answer do not copy them.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub identifier: String,
    pub properties: Arc<Map<String, Value>>,
}

/// One page of a ListResources call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListPage {
    pub resources: Vec<Resource>,
    pub next_token: Option<String>,
}

impl ListPage {
    /// Approximate bytes held, for the cache's size bound.
    pub fn weight(&self) -> u32 {
        let bytes: usize = self.resources.iter().map(Resource::weight).sum();
        u32::try_from(bytes + self.next_token.as_ref().map_or(0, String::len)).unwrap_or(u32::MAX)
    }
}

impl Resource {
    pub fn weight(&self) -> usize {
        // Serialised size is a fair proxy for the in-memory size of a JSON map.
        let json = serde_json::to_vec(self.properties.as_ref()).map_or(0, |v| v.len());
        self.identifier.len() + json + 64
    }
}

/// Where a call goes: one of the server's accounts (by its configured name) and a region.
/// Throttling, concurrency, retries, the cache and request tracking are all per place.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Place {
    pub account: String,
    pub region: String,
}

impl Place {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Place {
        Place {
            account: account.into(),
            region: region.into(),
        }
    }
}

impl std::fmt::Display for Place {
    /// `us-east-1`, or `us-east-1 of account prod` beside other accounts.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.account == requests::DEFAULT_ACCOUNT {
            f.write_str(&self.region)
        } else {
            write!(f, "{} of account {}", self.region, self.account)
        }
    }
}

/// What a list needs beyond the type: the place and the parent values (`ResourceModel`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListRequest {
    pub place: Place,
    pub type_name: String,
    /// `ResourceModel` as a JSON object string, for types whose list handler needs parents.
    pub model: Option<String>,
}

/// Cloud Control's read operations, as the rest of the server uses them.
#[async_trait]
pub trait ResourceApi: Send + Sync {
    /// One page of ListResources; `next_token` from the previous page.
    async fn list_page(&self, request: &ListRequest, next_token: Option<&str>) -> Result<ListPage>;

    /// GetResource; `None` when the resource does not exist.
    async fn get(&self, place: &Place, type_name: &str, identifier: &str) -> Result<Option<Resource>>;

    /// The 12-digit id of a configured account (STS GetCallerIdentity, asked once).
    async fn account_id(&self, account: &str) -> Result<String>;

    /// Whether the configuration has an account of this name.
    fn has_account(&self, account: &str) -> bool;

    /// CreateResource, UpdateResource or DeleteResource: the first progress event.
    async fn mutate(&self, request: &MutationRequest) -> Result<ProgressEvent>;

    /// GetResourceRequestStatus.
    async fn request_status(&self, place: &Place, request_token: &str) -> Result<ProgressEvent>;

    /// One page of ListResourceRequests.
    async fn list_requests(&self, place: &Place, filter: &RequestFilter, next_token: Option<&str>) -> Result<RequestPage>;

    /// Whether calls can be made now (every account's credentials can be had); `/readyz` asks.
    async fn ready(&self) -> Result<()> {
        Ok(())
    }
}

/// What a mutation asks Cloud Control to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Create { desired_state: String },
    Update { identifier: String, patch: String },
    Delete { identifier: String },
}

impl Change {
    /// The `Operation` of its progress events.
    pub fn operation(&self) -> &'static str {
        match self {
            Change::Create { .. } => "CREATE",
            Change::Update { .. } => "UPDATE",
            Change::Delete { .. } => "DELETE",
        }
    }

    /// The API operation that starts it.
    pub fn api_operation(&self) -> &'static str {
        match self {
            Change::Create { .. } => "CreateResource",
            Change::Update { .. } => "UpdateResource",
            Change::Delete { .. } => "DeleteResource",
        }
    }

    pub fn identifier(&self) -> Option<&str> {
        match self {
            Change::Create { .. } => None,
            Change::Update { identifier, .. } | Change::Delete { identifier } => Some(identifier),
        }
    }
}

/// One mutation of one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct MutationRequest {
    pub place: Place,
    pub type_name: String,
    pub change: Change,
    /// Idempotency token: sending the same request again with it returns the original request
    /// instead of starting a second one, so a retried create cannot create twice.
    pub client_token: String,
    pub role_arn: Option<String>,
    pub type_version_id: Option<String>,
}

/// Cloud Control's account of a mutation request. Times are epoch seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProgressEvent {
    pub type_name: Option<String>,
    pub identifier: Option<String>,
    pub request_token: String,
    pub hooks_request_token: Option<String>,
    pub operation: String,
    pub operation_status: String,
    pub event_time: Option<f64>,
    pub resource_model: Option<String>,
    pub status_message: Option<String>,
    pub error_code: Option<String>,
    pub retry_after: Option<f64>,
}

impl ProgressEvent {
    /// SUCCESS, FAILED and CANCEL_COMPLETE end a request; PENDING, IN_PROGRESS and
    /// CANCEL_IN_PROGRESS do not.
    pub fn is_terminal(&self) -> bool {
        matches!(self.operation_status.as_str(), "SUCCESS" | "FAILED" | "CANCEL_COMPLETE")
    }
}

/// ListResourceRequests' filter; empty lists mean "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestFilter {
    pub operations: Vec<String>,
    pub statuses: Vec<String>,
}

/// One page of ListResourceRequests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestPage {
    pub events: Vec<ProgressEvent>,
    pub next_token: Option<String>,
}

/// Parses a `Properties` / `ResourceModel` string; a non-object becomes an empty map with the
/// raw text kept under `_raw`, so a malformed handler answer is visible, not fatal.
pub fn parse_properties(text: Option<&str>) -> Map<String, Value> {
    match text.map(serde_json::from_str::<Value>) {
        Some(Ok(Value::Object(m))) => m,
        Some(Ok(other)) => Map::from_iter([("_raw".to_string(), other)]),
        Some(Err(_)) => Map::from_iter([("_raw".to_string(), Value::String(text.unwrap_or_default().to_string()))]),
        None => Map::new(),
    }
}
