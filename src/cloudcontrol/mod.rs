//! The only place that knows the AWS SDK: Cloud Control calls behind the [`ResourceApi`] trait.
//!
//! - `client`: the SDK implementation: one client per region, retries with backoff and jitter
//!   for throttling and 5xx (the SDK's own classification), a concurrency limit per region and a
//!   per-attempt timeout, all from config.
//! - `cache`: list pages and GetResource results in a moka cache with TTL, a byte bound and
//!   single-flight, keyed by credentials identity, region, type and model/identifier.
//!
//! Everything above this module sees plain Rust types: JSON properties, pages, errors.

pub mod cache;
pub mod client;

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

/// What a list needs beyond the type: the region and the parent values (`ResourceModel`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListRequest {
    pub region: String,
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
    async fn get(&self, region: &str, type_name: &str, identifier: &str) -> Result<Option<Resource>>;

    /// Who the calls are made as; part of every cache key so two identities never share results.
    fn identity(&self) -> String;
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
