//! [`ResourceApi`] over the real `aws-sdk-cloudcontrol` client.
//!
//! One SDK client per region, built lazily from one loaded `SdkConfig`. Retries (throttling and
//! 5xx, exponential backoff with jitter) are the SDK's standard mode with our attempt count;
//! every call also holds a permit of its region's semaphore, so a wide scan cannot exceed
//! `api.concurrency_per_region` calls in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_cloudcontrol::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudcontrol::Client;
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::{parse_properties, ListPage, ListRequest, Resource, ResourceApi};
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

pub struct SdkApi {
    base: SdkConfig,
    clients: Mutex<HashMap<String, Client>>,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    concurrency: usize,
    identity: String,
}

impl SdkApi {
    pub async fn connect(config: &Config, target: Target) -> Result<SdkApi> {
        let retry = RetryConfig::standard()
            .with_max_attempts(config.api.max_attempts)
            .with_initial_backoff(config.api.initial_backoff);
        let timeouts = TimeoutConfig::builder()
            .operation_attempt_timeout(config.api.request_timeout)
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
            clients: Mutex::new(HashMap::new()),
            limits: Mutex::new(HashMap::new()),
            concurrency: config.api.concurrency_per_region,
            identity,
        })
    }

    fn client(&self, region: &str) -> Client {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(region.to_string())
            .or_insert_with(|| {
                let conf = aws_sdk_cloudcontrol::config::Builder::from(&self.base)
                    .region(Region::new(region.to_string()))
                    .build();
                Client::from_conf(conf)
            })
            .clone()
    }

    fn limit(&self, region: &str) -> Arc<Semaphore> {
        let mut limits = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        limits
            .entry(region.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.concurrency)))
            .clone()
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
    Error::aws(code, message, operation, region, Some(type_name))
}

#[async_trait]
impl ResourceApi for SdkApi {
    async fn list_page(&self, request: &ListRequest, next_token: Option<&str>) -> Result<ListPage> {
        let span = tracing::debug_span!("cloudcontrol.ListResources", region = %request.region, type_name = %request.type_name);
        async {
            let limit = self.limit(&request.region);
            let _permit = limit.acquire().await.map_err(|e| Error::internal(e.to_string()))?;
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
                    properties: Arc::new(parse_properties(d.properties())),
                })
                .collect();
            Ok(ListPage {
                resources,
                next_token: out.next_token().filter(|t| !t.is_empty()).map(str::to_string),
            })
        }
        .instrument(span)
        .await
    }

    async fn get(&self, region: &str, type_name: &str, identifier: &str) -> Result<Option<Resource>> {
        let span = tracing::debug_span!("cloudcontrol.GetResource", %region, %type_name, %identifier);
        async {
            let limit = self.limit(region);
            let _permit = limit.acquire().await.map_err(|e| Error::internal(e.to_string()))?;
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
                    properties: Arc::new(parse_properties(d.properties())),
                })),
                Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
                Err(e) => Err(aws_error(e, "GetResource", region, type_name)),
            }
        }
        .instrument(span)
        .await
    }

    fn identity(&self) -> String {
        self.identity.clone()
    }
}
