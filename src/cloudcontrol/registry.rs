//! CloudFormation's registry: the current schema of every resource type an account can use
//! (`ListTypes`, `DescribeType`), which `cloudpg schemas refresh` writes over the shipped ones.
//! Calls go through the same retries, limits and call log as Cloud Control's.

use aws_config::Region;
use aws_sdk_cloudformation::types::{Category, DeprecatedStatus, RegistryType, TypeFilters, Visibility};

use super::client::SdkApi;
use super::Place;
use crate::error::{Error, Result};

/// One type `ListTypes` named.
#[derive(Debug, Clone)]
pub struct TypeSummary {
    pub type_name: String,
    /// A private type: registered in the account (or a third-party type it activated).
    pub private: bool,
}

impl SdkApi {
    fn cloudformation(&self, place: &Place) -> Result<aws_sdk_cloudformation::Client> {
        let conf = aws_sdk_cloudformation::config::Builder::from(self.sdk_config(&place.account)?)
            .region(Region::new(place.region.clone()))
            .build();
        Ok(aws_sdk_cloudformation::Client::from_conf(conf))
    }

    /// Every live resource type in `place` whose name starts with `prefix`: AWS's own public
    /// types, then the account's private ones (registered in it, or third-party types it
    /// activated: a public third-party type it has not activated cannot be used).
    pub async fn list_resource_types(&self, place: &Place, prefix: &str) -> Result<Vec<TypeSummary>> {
        let client = self.cloudformation(place)?;
        let mut out = Vec::new();
        for (visibility, private) in [(Visibility::Public, false), (Visibility::Private, true)] {
            let mut token: Option<String> = None;
            loop {
                let span =
                    tracing::info_span!("cloudformation_call", operation = "ListTypes", region = %place.region, account = %place.account);
                let attempt = || {
                    let mut filters = TypeFilters::builder();
                    if !private {
                        filters = filters.category(Category::AwsTypes);
                    }
                    if !prefix.is_empty() {
                        filters = filters.type_name_prefix(prefix);
                    }
                    client
                        .list_types()
                        .r#type(RegistryType::Resource)
                        .visibility(visibility.clone())
                        .deprecated_status(DeprecatedStatus::Live)
                        .filters(filters.build())
                        .max_results(100)
                        .set_next_token(token.clone())
                        .send()
                };
                let page = self
                    .timed("cloudformation:ListTypes", "", place, span, || async {
                        attempt()
                            .await
                            .map_err(|e| self.aws_error(e, "cloudformation:ListTypes", place, ""))
                    })
                    .await?;
                out.extend(page.type_summaries().iter().filter_map(|t| {
                    t.type_name().map(|name| TypeSummary {
                        type_name: name.to_string(),
                        private,
                    })
                }));
                token = page.next_token().map(str::to_string).filter(|t| !t.is_empty());
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// A type's current provider schema (JSON text), as `DescribeType` gives it.
    pub async fn describe_resource_type(&self, place: &Place, type_name: &str) -> Result<String> {
        let client = self.cloudformation(place)?;
        let span = tracing::info_span!("cloudformation_call", operation = "DescribeType", region = %place.region, account = %place.account, type_name);
        let out = self
            .timed("cloudformation:DescribeType", type_name, place, span, || async {
                client
                    .describe_type()
                    .r#type(RegistryType::Resource)
                    .type_name(type_name)
                    .send()
                    .await
                    .map_err(|e| self.aws_error(e, "cloudformation:DescribeType", place, type_name))
            })
            .await?;
        out.schema().map(str::to_string).ok_or_else(|| {
            Error::aws(
                "InvalidResponse",
                "DescribeType answered without a schema".to_string(),
                "cloudformation:DescribeType",
                place,
                Some(type_name),
            )
        })
    }
}
