//! `cloudpg schemas refresh`: reads the current schema of every resource type from an account
//! (CloudFormation `ListTypes` / `DescribeType`) and writes those that differ from the shipped
//! ones into the override directory, with the names they add locked (see `overrides`, `lock`).
//! A schema that would rename or drop a locked column is not written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use resource_schemas::{Registry, ResourceType};
use serde_json::Value;

use super::lock::{LockedType, NameLock};
use super::overrides::{self, OverrideFile, LOCK_FILE, TYPES_DIR};
use crate::cloudcontrol::client::SdkApi;
use crate::cloudcontrol::Place;
use crate::error::{Error, Result};

/// DescribeType calls in flight at once: CloudFormation's registry calls have a low quota.
const DESCRIBE_CONCURRENCY: usize = 4;

/// What to refresh.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    pub dir: PathBuf,
    pub place: Place,
    /// Type name patterns (`AWS::Logs::*`); empty is every type.
    pub types: Vec<String>,
}

/// What a refresh did.
#[derive(Debug, Default)]
pub struct RefreshReport {
    pub listed: usize,
    pub private: usize,
    pub unchanged: usize,
    /// Types written, with whether each is new (no shipped schema).
    pub written: Vec<(String, bool)>,
    /// Override files removed because AWS's schema is the shipped one again.
    pub removed: Vec<String>,
    /// Types not written, with why.
    pub refused: Vec<(String, String)>,
    /// Types whose schema could not be read, with why.
    pub failed: Vec<(String, String)>,
    /// Types whose names the local lock holds after the refresh.
    pub locked: usize,
}

impl RefreshReport {
    /// The report as lines for a person.
    pub fn render(&self, options: &RefreshOptions) -> String {
        let mut out = format!(
            "Read {} resource types ({} private) in {}.\n",
            self.listed, self.private, options.place
        );
        out.push_str(&format!("Unchanged from the shipped schemas: {}.\n", self.unchanged));
        let types = options.dir.join(TYPES_DIR);
        out.push_str(&format!("Written to {}: {}.\n", types.display(), self.written.len()));
        for (t, new) in &self.written {
            out.push_str(&format!("  {t}{}\n", if *new { " (new type)" } else { "" }));
        }
        if !self.removed.is_empty() {
            out.push_str(&format!("Back to the shipped schema (override removed): {}.\n", self.removed.len()));
            for t in &self.removed {
                out.push_str(&format!("  {t}\n"));
            }
        }
        for (t, why) in &self.refused {
            out.push_str(&format!("Refused {t}: {why}\n"));
        }
        for (t, why) in &self.failed {
            out.push_str(&format!("Could not read {t}: {why}\n"));
        }
        out.push_str(&format!(
            "Names of {} overridden types are locked in {}.\n",
            self.locked,
            options.dir.join(LOCK_FILE).display()
        ));
        out
    }
}

/// The `Vendor::Service::` part a pattern's matches share, to narrow ListTypes.
fn common_prefix(patterns: &[String]) -> String {
    match patterns {
        [one] => one.split('*').next().unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

/// Reads, compares and writes; see the module comment.
pub async fn refresh(sdk: &SdkApi, options: &RefreshOptions) -> Result<RefreshReport> {
    let io = |what: &str, path: &Path, e: std::io::Error| Error::Config(format!("cannot {what} {}: {e}", path.display()));
    let shipped = Registry::shipped().map_err(|e| Error::Config(e.to_string()))?;
    let lock_path = options.dir.join(LOCK_FILE);
    let local = NameLock::read(&lock_path).map_err(Error::Config)?;
    let lock = NameLock::shipped().merged(&local).map_err(Error::Config)?;
    let listed: Vec<_> = sdk
        .list_resource_types(&options.place, &common_prefix(&options.types))
        .await?
        .into_iter()
        .filter(|t| options.types.is_empty() || options.types.iter().any(|p| super::model::glob(p, &t.type_name)))
        .collect();
    let mut report = RefreshReport {
        listed: listed.len(),
        private: listed.iter().filter(|t| t.private).count(),
        ..Default::default()
    };
    let described: Vec<_> = stream::iter(listed)
        .map(|t| async move {
            let schema = sdk.describe_resource_type(&options.place, &t.type_name).await;
            (t.type_name, schema)
        })
        .buffer_unordered(DESCRIBE_CONCURRENCY)
        .collect()
        .await;
    let types = options.dir.join(TYPES_DIR);
    std::fs::create_dir_all(&types).map_err(|e| io("create", &types, e))?;
    let mut described: Vec<_> = described;
    described.sort_by(|a, b| a.0.cmp(&b.0));
    for (type_name, schema) in described {
        let path = types.join(overrides::file_name(&type_name));
        let schema = match schema.and_then(|text| {
            serde_json::from_str::<Value>(&text).map_err(|e| Error::Config(format!("DescribeType's schema is not JSON: {e}")))
        }) {
            Ok(schema) => schema,
            Err(e) => {
                report.failed.push((type_name, e.to_string()));
                continue;
            }
        };
        let base = shipped.get(&type_name);
        let regions = regions_of(base, &options.place.region);
        let fetched = match resource_schemas::provider::convert(&schema, regions.clone()) {
            Ok(t) => t,
            Err(why) => {
                report.refused.push((type_name, why));
                continue;
            }
        };
        if base.is_some_and(|b| is_shipped(&fetched, b)) {
            report.unchanged += 1;
            if path.exists() {
                std::fs::remove_file(&path).map_err(|e| io("remove", &path, e))?;
                report.removed.push(type_name);
            }
            continue;
        }
        if let Err(why) = overrides::check_names(&fetched, lock.get(&type_name)) {
            report.refused.push((type_name, why));
            continue;
        }
        let file = OverrideFile {
            source: Some(format!("DescribeType in {} at {}", options.place, now_rfc3339())),
            regions,
            schema,
        };
        let text = serde_json::to_string_pretty(&file).map_err(|e| Error::internal(e.to_string()))?;
        overrides::write_atomically(&path, format!("{text}\n").as_bytes()).map_err(|e| io("write", &path, e))?;
        report.written.push((type_name, base.is_none()));
    }
    report.locked = lock_new_names(&options.dir, shipped, &local)?;
    Ok(report)
}

/// Where a type exists: the shipped type's regions and the one it was just read in.
fn regions_of(base: Option<&ResourceType>, region: &str) -> Vec<String> {
    let mut regions = base.map(|b| b.regions.to_vec()).unwrap_or_default();
    if !regions.iter().any(|r| r == region) {
        regions.push(region.to_string());
    }
    regions
}

/// Whether a schema read from AWS says what the shipped one does. The shipped one is also
/// compared as a provider schema converted again, because the data file keeps recursive
/// definitions one level less deep than a conversion of its own output gives.
fn is_shipped(fetched: &ResourceType, shipped: &ResourceType) -> bool {
    fetched.same_schema(shipped)
        || resource_schemas::provider::convert(&shipped.provider_schema(), Vec::new()).is_ok_and(|again| fetched.same_schema(&again))
}

/// Locks the names of every table and column the directory's overrides give (in the local
/// lock, which only grows), and returns how many types it holds.
fn lock_new_names(dir: &Path, shipped: &Registry, local: &NameLock) -> Result<usize> {
    let loaded = overrides::load(dir, shipped).map_err(Error::Config)?;
    let in_use: Vec<String> = loaded
        .outcomes
        .iter()
        .filter(|o| o.in_use() && o.file.parent().is_some_and(|p| p.ends_with(TYPES_DIR)))
        .map(|o| o.type_name.clone())
        .collect();
    let registry: &'static Registry = Box::leak(Box::new(loaded.registry));
    let catalog = super::Catalog::build_with(registry, &loaded.lock);
    let named: BTreeMap<String, Arc<LockedType>> = in_use
        .iter()
        .filter_map(|t| {
            catalog
                .table_for_type(t)
                .map(|table| (t.clone(), Arc::new(LockedType::of_table(table))))
        })
        .collect();
    let added = NameLock {
        format: NameLock::FORMAT,
        types: named,
    };
    let updated = local.merged(&added).map_err(Error::Config)?;
    let path = dir.join(LOCK_FILE);
    updated
        .write(&path)
        .map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))?;
    Ok(updated.types.len())
}

/// Where a refresh reads: the named account (else the first), in the named region, else the
/// first of the account's or the server's regions, else its profile's, else us-east-1.
pub fn place_for(config: &crate::config::Config, sdk: &SdkApi, account: Option<&str>, region: Option<&str>) -> Result<Place> {
    use crate::config::DefaultRegions;
    let chosen = match account {
        Some(name) => config.accounts.iter().find(|a| a.name == name).ok_or_else(|| {
            let known: Vec<&str> = config.accounts.iter().map(|a| a.name.as_str()).collect();
            Error::Config(format!("account {name:?} is not configured; the accounts are {}", known.join(", ")))
        })?,
        None => config
            .accounts
            .first()
            .ok_or_else(|| Error::Config("no account is configured".into()))?,
    };
    let first = |r: &Option<DefaultRegions>| match r {
        Some(DefaultRegions::List(list)) => list.first().cloned(),
        _ => None,
    };
    let region = region
        .map(str::to_string)
        .or_else(|| first(&chosen.regions))
        .or_else(|| first(&config.regions))
        .or_else(|| sdk.profile_region(&chosen.name))
        .unwrap_or_else(|| "us-east-1".to_string());
    Ok(Place::new(&chosen.name, &region))
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_narrow_the_listing() {
        assert_eq!(common_prefix(&["AWS::Logs::*".to_string()]), "AWS::Logs::");
        assert_eq!(common_prefix(&["AWS::Logs::LogGroup".to_string()]), "AWS::Logs::LogGroup");
        assert_eq!(common_prefix(&["a*".to_string(), "b*".to_string()]), "");
    }

    #[test]
    fn shipped_schemas_compare_equal_to_themselves_read_back() {
        let shipped = Registry::shipped().unwrap();
        for name in ["AWS::Logs::LogGroup", "AWS::WAFv2::WebACL"] {
            let t = shipped.get(name).unwrap();
            let fetched = resource_schemas::provider::convert(&t.provider_schema(), Vec::new()).unwrap();
            assert!(is_shipped(&fetched, t), "{name}");
        }
        let t = shipped.get("AWS::Logs::LogGroup").unwrap();
        let mut changed = t.provider_schema();
        changed["properties"]["RetentionTier"] = serde_json::json!({"type": "string"});
        let fetched = resource_schemas::provider::convert(&changed, Vec::new()).unwrap();
        assert!(!is_shipped(&fetched, t));
        assert_eq!(regions_of(Some(t), "us-east-1"), t.regions.to_vec());
        assert_eq!(regions_of(None, "eu-west-1"), vec!["eu-west-1"]);
    }
}
