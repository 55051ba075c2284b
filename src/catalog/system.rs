//! The server's own tables about itself, in the `cloudpg` schema:
//!
//! - `cloudpg.api_calls`: the most recent Cloud Control calls (when, operation, type, account,
//!   region, milliseconds, HTTP attempts, outcome), oldest first;
//! - `cloudpg.accounts`: the configured accounts: name, 12-digit id (STS GetCallerIdentity,
//!   asked once), where the credentials come from, default regions, and why the id is missing;
//! - `cloudpg.api_usage`: the last hour's Cloud Control calls made for users, by user, account,
//!   region and type;
//! - `cloudpg.cache`: one row: entries, bytes, hits and misses since start, TTL and bound;
//! - `cloudpg.schema_overrides`: the schema overrides and live-check findings read at startup,
//!   in use, refused or recorded, and why.
//!
//! (`cloudpg.requests` is in `requests`; `cloudpg.settings` is `pg_settings` narrowed to
//! cloudpg's own parameters.)

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use super::arrow::{extra_field, text_array, time_array, ExtraKind};
use super::live::LiveTable;
use crate::cloudcontrol::cache::CachedApi;
use crate::cloudcontrol::calls::CallLog;
use crate::cloudcontrol::requests::epoch_seconds;

pub const API_CALLS: &str = "api_calls";
pub const ACCOUNTS: &str = "accounts";
pub const API_USAGE: &str = "api_usage";
pub const CACHE: &str = "cache";
pub const SCHEMA_OVERRIDES: &str = "schema_overrides";

fn int(name: &str) -> Field {
    Field::new(name, DataType::Int64, true)
}

fn float(name: &str) -> Field {
    Field::new(name, DataType::Float64, true)
}

/// `cloudpg.api_calls`.
pub fn api_calls(log: Arc<CallLog>) -> LiveTable {
    let schema = Arc::new(Schema::new(vec![
        extra_field("called_at", ExtraKind::Time),
        extra_field("operation", ExtraKind::Text),
        extra_field("type_name", ExtraKind::Text),
        extra_field("account", ExtraKind::Text),
        extra_field("region", ExtraKind::Text),
        float("duration_ms"),
        int("attempts"),
        extra_field("outcome", ExtraKind::Text),
        float("rate_limit"),
    ]));
    LiveTable::new(API_CALLS, schema, move || {
        let calls = log.snapshot();
        Box::pin(async move {
            let columns: Vec<ArrayRef> = vec![
                time_array(calls.iter().map(|c| Some(epoch_seconds(c.at)))),
                text_array(calls.iter().map(|c| Some(c.operation.to_string()))),
                text_array(calls.iter().map(|c| (!c.type_name.is_empty()).then(|| c.type_name.clone()))),
                text_array(calls.iter().map(|c| Some(c.account.clone()))),
                text_array(calls.iter().map(|c| Some(c.region.clone()))),
                Arc::new(Float64Array::from_iter_values(
                    calls.iter().map(|c| c.duration.as_secs_f64() * 1000.0),
                )),
                Arc::new(Int64Array::from_iter_values(calls.iter().map(|c| i64::from(c.attempts)))),
                text_array(calls.iter().map(|c| Some(c.outcome.clone()))),
                Arc::new(Float64Array::from_iter(calls.iter().map(|c| c.rate_limit))),
            ];
            Ok(columns)
        })
    })
}

/// `cloudpg.accounts`: one row per configured account. The id is asked of STS once per
/// account (and again while it cannot be had); `error` says why it is missing.
pub fn accounts(accounts: Arc<super::accounts::Accounts>, api: Arc<CachedApi>) -> LiveTable {
    let schema = Arc::new(Schema::new(vec![
        extra_field("name", ExtraKind::Text),
        extra_field("account_id", ExtraKind::Text),
        extra_field("credentials", ExtraKind::Text),
        extra_field("regions", ExtraKind::Text),
        extra_field("partition", ExtraKind::Text),
        extra_field("error", ExtraKind::Text),
    ]));
    LiveTable::new(ACCOUNTS, schema, move || {
        let (accounts, api) = (accounts.clone(), api.clone());
        Box::pin(async move {
            let list: Vec<_> = accounts.iter().cloned().collect();
            let ids = futures::future::join_all(list.iter().map(|a| api.account_id(&a.name))).await;
            let regions = |a: &super::accounts::Account| match &a.regions {
                crate::config::DefaultRegions::All => "*".to_string(),
                crate::config::DefaultRegions::List(l) => l.join(","),
            };
            let columns: Vec<ArrayRef> = vec![
                text_array(list.iter().map(|a| Some(a.name.clone()))),
                text_array(ids.iter().map(|id| id.as_ref().ok().cloned())),
                text_array(list.iter().map(|a| Some(a.source.clone()))),
                text_array(list.iter().map(|a| Some(regions(a)))),
                text_array(list.iter().map(|a| Some(a.partition.name().to_string()))),
                text_array(ids.iter().map(|id| id.as_ref().err().map(|e| e.to_string()))),
            ];
            Ok(columns)
        })
    })
}

/// `cloudpg.api_usage`.
pub fn api_usage(usage: Arc<crate::cloudcontrol::usage::Usage>) -> LiveTable {
    let schema = Arc::new(Schema::new(vec![
        extra_field("user_name", ExtraKind::Text),
        extra_field("account", ExtraKind::Text),
        extra_field("region", ExtraKind::Text),
        extra_field("type_name", ExtraKind::Text),
        int("calls"),
    ]));
    LiveTable::new(API_USAGE, schema, move || {
        let rows = usage.last_hour();
        Box::pin(async move {
            let columns: Vec<ArrayRef> = vec![
                text_array(rows.iter().map(|(k, _)| Some(k.user.clone()))),
                text_array(rows.iter().map(|(k, _)| Some(k.account.clone()))),
                text_array(rows.iter().map(|(k, _)| Some(k.region.clone()))),
                text_array(rows.iter().map(|(k, _)| Some(k.type_name.clone()))),
                Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|(_, n)| i64::try_from(*n).unwrap_or(i64::MAX)),
                )),
            ];
            Ok(columns)
        })
    })
}

/// `cloudpg.cache`.
pub fn cache(api: Arc<CachedApi>) -> LiveTable {
    let schema = Arc::new(Schema::new(vec![
        int("entries"),
        int("bytes"),
        int("hits"),
        int("misses"),
        float("ttl_seconds"),
        int("max_bytes"),
    ]));
    LiveTable::new(CACHE, schema, move || {
        let api = api.clone();
        Box::pin(async move {
            let s = api.stats().await;
            let n = |v: u64| -> ArrayRef { Arc::new(Int64Array::from(vec![i64::try_from(v).unwrap_or(i64::MAX)])) };
            let columns: Vec<ArrayRef> = vec![
                n(s.entries),
                n(s.bytes),
                n(s.hits),
                n(s.misses),
                Arc::new(Float64Array::from(vec![s.ttl.as_secs_f64()])),
                n(s.max_bytes),
            ];
            Ok(columns)
        })
    })
}

/// `cloudpg.schema_overrides`.
pub fn schema_overrides() -> LiveTable {
    let schema = Arc::new(Schema::new(vec![
        extra_field("type_name", ExtraKind::Text),
        extra_field("file", ExtraKind::Text),
        extra_field("status", ExtraKind::Text),
        extra_field("source", ExtraKind::Text),
        extra_field("reason", ExtraKind::Text),
    ]));
    LiveTable::new(SCHEMA_OVERRIDES, schema, move || {
        Box::pin(async move {
            let rows = super::overrides::outcomes();
            let columns: Vec<ArrayRef> = vec![
                text_array(rows.iter().map(|o| Some(o.type_name.clone()))),
                text_array(rows.iter().map(|o| Some(o.file.display().to_string()))),
                text_array(rows.iter().map(|o| Some(o.status_text().0.to_string()))),
                text_array(rows.iter().map(|o| o.source.clone())),
                text_array(rows.iter().map(|o| o.status_text().1.map(str::to_string))),
            ];
            Ok(columns)
        })
    })
}
