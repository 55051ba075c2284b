//! Local schemas over the shipped ones: what `cloudpg schemas refresh` read from an account (or
//! a person wrote), in a directory the server reads at startup.
//!
//! ```text
//! DIR/types/AWS-Logs-LogGroup.json   {"source": "…", "regions": ["us-east-1"], "schema": {…}}
//! DIR/names.lock.json                the names given to what the overrides add
//! ```
//!
//! `schema` is a provider schema as CloudFormation's `DescribeType` returns it. An override is
//! used only when it parses and keeps every locked name of its type (see `lock`); otherwise it
//! is refused, naming the file, the type and why, and the shipped schema stays in use.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use resource_schemas::{Registry, ResourceType};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lock::{column_key, LockedType, NameLock};
use super::model::columns_of;

/// The local lock's file name inside the directory.
pub const LOCK_FILE: &str = "names.lock.json";
/// The folder of override files inside the directory.
pub const TYPES_DIR: &str = "types";
/// Largest override file read; the largest shipped schema is well under 1 MiB.
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// One override file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideFile {
    /// Where the schema came from (`DescribeType in us-east-1 of account …, 2026-12-02T…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Regions where the type exists. Empty: the shipped type's, else every known region.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// The provider schema.
    pub schema: Value,
}

/// What became of one override (a schema file, or a finding of `facts.json`).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub type_name: String,
    pub file: PathBuf,
    pub source: Option<String>,
    pub status: Status,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Used; with what it changed, when that needs saying.
    InUse(Option<String>),
    /// Not used, and why.
    Refused(String),
    /// Kept for a person to read; the server cannot act on it.
    Recorded(String),
}

impl Outcome {
    pub fn refused(&self) -> Option<&str> {
        match &self.status {
            Status::Refused(why) => Some(why),
            _ => None,
        }
    }

    pub fn in_use(&self) -> bool {
        matches!(self.status, Status::InUse(_))
    }

    /// `in use`, `refused` or `recorded`, and the reason or note.
    pub fn status_text(&self) -> (&'static str, Option<&str>) {
        match &self.status {
            Status::InUse(note) => ("in use", note.as_deref()),
            Status::Refused(why) => ("refused", Some(why)),
            Status::Recorded(note) => ("recorded", Some(note)),
        }
    }
}

/// The registry, lock and outcomes of a directory.
pub struct Loaded {
    pub registry: Registry,
    pub lock: NameLock,
    pub outcomes: Vec<Outcome>,
}

/// Outcomes of the directory the process loaded, for `cloudpg.schema_overrides`.
static OUTCOMES: OnceLock<Vec<Outcome>> = OnceLock::new();

/// What the process loaded (empty when it loaded no directory).
pub fn outcomes() -> &'static [Outcome] {
    OUTCOMES.get().map(Vec::as_slice).unwrap_or_default()
}

/// `AWS::Logs::LogGroup` → `AWS-Logs-LogGroup.json`.
pub fn file_name(type_name: &str) -> String {
    format!("{}.json", type_name.replace("::", "-"))
}

/// The type a file name stands for, when it has the form [`file_name`] gives.
fn type_of_file(path: &Path) -> Option<String> {
    let stem = path.file_name()?.to_str()?.strip_suffix(".json")?;
    let parts: Vec<&str> = stem.split('-').collect();
    (parts.len() == 3 && parts.iter().all(|p| !p.is_empty())).then(|| parts.join("::"))
}

/// Reads `dir` over `base`: every override that parses and keeps the locked names replaces
/// (or adds) its type. An unreadable directory or lock is an error: names could not be kept.
pub fn load(dir: &Path, base: &Registry) -> Result<Loaded, String> {
    let local = NameLock::read(&dir.join(LOCK_FILE))?;
    let lock = NameLock::shipped()
        .merged(&local)
        .map_err(|e| format!("name lock {} disagrees with the shipped one: {e}", dir.join(LOCK_FILE).display()))?;
    let mut outcomes = Vec::new();
    let mut accepted = Vec::new();
    for path in override_files(dir)? {
        let hint = type_of_file(&path);
        let read = read_override(&path, hint.as_deref(), base).and_then(|(file, t)| {
            check_names(&t, lock.get(&t.type_name))?;
            Ok((file, t))
        });
        match read {
            Ok((file, t)) => {
                outcomes.push(Outcome {
                    type_name: t.type_name.clone(),
                    file: path,
                    source: file.source,
                    status: Status::InUse(None),
                });
                accepted.push(t);
            }
            Err(why) => outcomes.push(Outcome {
                type_name: hint.unwrap_or_default(),
                file: path,
                source: None,
                status: Status::Refused(why),
            }),
        }
    }
    apply_facts(dir, base, &mut accepted, &mut outcomes);
    Ok(Loaded {
        registry: base.overlay(accepted),
        lock,
        outcomes,
    })
}

/// Applies `DIR/facts.json` (what `cloudpg catalog live-check` found AWS does differently from
/// the schema data) over the types: where a type exists, and lists that need no parent after
/// all. What the server cannot act on (a list that needs a parent the data does not name, a
/// type that answers as global) is recorded for a person to read.
fn apply_facts(dir: &Path, base: &Registry, accepted: &mut Vec<ResourceType>, outcomes: &mut Vec<Outcome>) {
    use super::assumptions::{Fact, FactsFile, FACTS_FILE};
    let path = dir.join(FACTS_FILE);
    let Ok(bytes) = std::fs::read(&path) else {
        return;
    };
    let facts: FactsFile = match serde_json::from_slice(&bytes) {
        Ok(f) => f,
        Err(e) => {
            outcomes.push(Outcome {
                type_name: String::new(),
                file: path,
                source: None,
                status: Status::Refused(format!("it is not a facts file: {e}")),
            });
            return;
        }
    };
    let mut by_type: std::collections::BTreeMap<&str, Vec<&super::assumptions::Finding>> = Default::default();
    for f in &facts.findings {
        by_type.entry(f.type_name.as_str()).or_default().push(f);
    }
    for (type_name, findings) in by_type {
        let current = accepted.iter().position(|t| t.type_name == type_name);
        let Some(t) = current.map(|i| &accepted[i]).or_else(|| base.get(type_name)) else {
            continue;
        };
        let mut schema = t.provider_schema();
        let mut regions = t.regions.to_vec();
        let mut applied = Vec::new();
        for f in findings {
            let status = match (f.fact, f.aws) {
                (Fact::ExistsInRegion, false) => {
                    regions.retain(|r| *r != f.region);
                    applied.push(f.describe());
                    continue;
                }
                (Fact::ExistsInRegion, true) => {
                    if !regions.contains(&f.region) {
                        regions.push(f.region.clone());
                    }
                    applied.push(f.describe());
                    continue;
                }
                (Fact::ListNeedsParent, false) => {
                    if let Some(hs) = schema.pointer_mut("/handlers/list/handlerSchema").and_then(Value::as_object_mut) {
                        hs.insert("required".into(), Value::Array(Vec::new()));
                        hs.remove("oneOf");
                        hs.remove("anyOf");
                    }
                    applied.push(f.describe());
                    continue;
                }
                (Fact::ListNeedsParent, true) => "the schema data names no parent to list it by; reading it needs a schema that does",
                (Fact::Global, _) => "which types are global is built in; reading it from every region still answers",
            };
            outcomes.push(Outcome {
                type_name: type_name.to_string(),
                file: path.clone(),
                source: Some(f.source.clone()),
                status: Status::Recorded(format!("{}; {status}", f.describe())),
            });
        }
        if applied.is_empty() {
            continue;
        }
        match resource_schemas::provider::convert(&schema, regions) {
            Ok(changed) => {
                match current {
                    Some(i) => accepted[i] = changed,
                    None => accepted.push(changed),
                }
                outcomes.push(Outcome {
                    type_name: type_name.to_string(),
                    file: path.clone(),
                    source: Some(facts.checked_at.clone()),
                    status: Status::InUse(Some(applied.join("; "))),
                });
            }
            Err(why) => outcomes.push(Outcome {
                type_name: type_name.to_string(),
                file: path.clone(),
                source: None,
                status: Status::Refused(why),
            }),
        }
    }
}

/// The `*.json` files of `DIR/types`, sorted; none when the folder does not exist.
fn override_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let types = dir.join(TYPES_DIR);
    let entries = match std::fs::read_dir(&types) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read schema directory {}: {e}", types.display())),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// One file, parsed and converted; `expected` is the type its name stands for.
fn read_override(path: &Path, expected: Option<&str>, base: &Registry) -> Result<(OverrideFile, ResourceType), String> {
    let size = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?.len();
    if size > MAX_FILE_BYTES {
        return Err(format!("it is {size} bytes, more than the {MAX_FILE_BYTES} a schema may have"));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let file: OverrideFile = serde_json::from_slice(&bytes).map_err(|e| format!("it is not a schema override file: {e}"))?;
    let type_name = file.schema.get("typeName").and_then(Value::as_str).unwrap_or_default();
    let expected = expected.ok_or("its name is not Vendor-Service-Resource.json")?;
    if type_name != expected {
        return Err(format!("its schema is of {type_name:?}, not {expected} as its name says"));
    }
    let regions = if !file.regions.is_empty() {
        match file.regions.iter().find(|r| !base.is_region(r) && !looks_like_region(r)) {
            Some(bad) => return Err(format!("region {bad:?} is not an AWS region")),
            None => file.regions.clone(),
        }
    } else {
        base.get(expected)
            .map(|t| t.regions.to_vec())
            .unwrap_or_else(|| base.regions.clone())
    };
    let t = resource_schemas::provider::convert(&file.schema, regions)?;
    Ok((file, t))
}

/// `ap-southeast-7`: a region launched after the shipped data was made still reads as one.
fn looks_like_region(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// Refuses a schema under which a locked column of its type would be renamed or dropped.
pub fn check_names(t: &ResourceType, locked: Option<&LockedType>) -> Result<(), String> {
    let Some(locked) = locked else {
        return Ok(());
    };
    let columns = columns_of(t, Some(locked));
    let unlocked = |c: &&super::ColumnDef| column_key(&c.source).is_some_and(|k| !locked.columns().contains_key(&k));
    let mut problems = Vec::new();
    for (key, name) in locked.columns() {
        if columns.iter().any(|c| column_key(&c.source).as_deref() == Some(key.as_str())) {
            continue;
        }
        // The natural name of a new column is the locked one it would have taken over.
        let heir = columns.iter().filter(unlocked).find(|c| {
            let natural = match &c.source {
                super::ColumnSource::Property(p) => super::naming::snake_case(p),
                _ => return false,
            };
            natural == *name || c.name.strip_prefix(name.as_str()).is_some_and(|rest| rest.starts_with('_'))
        });
        problems.push(match heir.and_then(|c| c.property()) {
            Some(new) => format!(
                "would rename column {name} (property {key} is gone; {new} would be read as {})",
                heir.map(|c| c.name.as_str()).unwrap_or_default()
            ),
            None => format!("would drop column {name} ({key} is no longer in the schema)"),
        });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of table {} is locked: {}; the shipped schema stays in use (remove the file to stop this message)",
            t.type_name,
            locked.table,
            problems.join("; ")
        ))
    }
}

/// Makes a loaded directory the process's registry and lock, and logs what became of each
/// file. Before the catalog is built, once.
pub fn install(loaded: Loaded, dir: &Path) -> Result<(), String> {
    for o in &loaded.outcomes {
        match &o.status {
            Status::InUse(_) => tracing::info!(type_name = %o.type_name, file = %o.file.display(), "schema override in use"),
            Status::Recorded(note) => tracing::info!(type_name = %o.type_name, file = %o.file.display(), "finding recorded: {note}"),
            Status::Refused(why) => tracing::error!(
                type_name = %o.type_name,
                file = %o.file.display(),
                "schema override refused: {why}"
            ),
        }
    }
    let used = loaded.outcomes.iter().filter(|o| o.in_use()).count();
    let refused = loaded.outcomes.iter().filter(|o| o.refused().is_some()).count();
    tracing::info!(directory = %dir.display(), used, refused, "schema overrides read");
    Registry::install(loaded.registry).map_err(|e| e.to_string())?;
    if !NameLock::install(loaded.lock) {
        return Err("a name lock is already installed in this process".into());
    }
    let _ = OUTCOMES.set(loaded.outcomes);
    Ok(())
}

/// The directory the server reads: `[schemas] directory`, unless "off"; unset, the user's data
/// directory against AWS and none on the emulator (whose schemas are the shipped ones).
pub fn directory(config: &crate::config::Config, target: &crate::cloudcontrol::client::Target) -> Option<PathBuf> {
    match config.schemas.directory.as_deref() {
        Some("off") | Some("") => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None if matches!(target, crate::cloudcontrol::client::Target::Emulator(_)) => None,
        None => default_directory(),
    }
}

/// `$XDG_DATA_HOME/cloudpg/schemas`, else `~/.local/share/cloudpg/schemas`.
pub fn default_directory() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("cloudpg").join("schemas"))
}

/// At startup, before the catalog is built: refreshes the directory when configured to, then
/// reads it and makes it the process's schemas. Nothing to read is no error; a lock that
/// cannot be read is (names could not be kept).
pub async fn prepare(config: &crate::config::Config, target: &crate::cloudcontrol::client::Target) -> crate::error::Result<()> {
    use crate::error::Error;
    let Some(dir) = directory(config, target) else {
        return Ok(());
    };
    if config.schemas.refresh_on_start {
        let sdk = crate::cloudcontrol::client::SdkApi::connect_for_command(config, target.clone()).await?;
        let options = super::refresh::RefreshOptions {
            dir: dir.clone(),
            place: super::refresh::place_for(config, &sdk, None, None)?,
            types: Vec::new(),
        };
        let report = super::refresh::refresh(&sdk, &options)
            .await
            .map_err(|e| Error::Config(format!("[schemas] refresh_on_start: {e}")))?;
        tracing::info!(
            directory = %dir.display(),
            listed = report.listed,
            written = report.written.len(),
            refused = report.refused.len(),
            failed = report.failed.len(),
            "schemas refreshed"
        );
    }
    use_directory(&dir).map_err(|e| Error::Config(format!("[schemas] directory: {e}")))
}

/// Reads `dir` over the shipped schemas and makes it the process's; nothing to do when it
/// does not exist. Once per process, before a catalog is built.
pub fn use_directory(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        return Ok(());
    }
    let shipped = Registry::shipped().map_err(|e| e.to_string())?;
    install(load(dir, shipped)?, dir)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader sees the old
/// file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shipped() -> &'static Registry {
        Registry::shipped().unwrap()
    }

    fn log_group_schema() -> Value {
        shipped().get("AWS::Logs::LogGroup").unwrap().provider_schema()
    }

    fn write(dir: &Path, name: &str, content: &str) {
        std::fs::create_dir_all(dir.join(TYPES_DIR)).unwrap();
        std::fs::write(dir.join(TYPES_DIR).join(name), content).unwrap();
    }

    #[test]
    fn file_names_stand_for_types() {
        assert_eq!(file_name("AWS::Logs::LogGroup"), "AWS-Logs-LogGroup.json");
        assert_eq!(
            type_of_file(Path::new("/x/AWS-Logs-LogGroup.json")).as_deref(),
            Some("AWS::Logs::LogGroup")
        );
        assert_eq!(type_of_file(Path::new("/x/notes.json")), None);
    }

    #[test]
    fn an_added_property_is_used_and_locked_names_stay() {
        let dir = tempfile_dir("added");
        let mut schema = log_group_schema();
        schema["properties"]["KMSKeyId"] = json!({"type": "integer"});
        schema["properties"]["RetentionTier"] = json!({"type": "string"});
        write(
            &dir,
            "AWS-Logs-LogGroup.json",
            &json!({"source": "test", "schema": schema}).to_string(),
        );
        let loaded = load(&dir, shipped()).unwrap();
        assert_eq!(loaded.outcomes.len(), 1);
        assert!(loaded.outcomes[0].in_use(), "{:?}", loaded.outcomes[0].status);
        let t = loaded.registry.get("AWS::Logs::LogGroup").unwrap();
        assert!(t.properties().contains_key("RetentionTier"));
        let columns = columns_of(t, loaded.lock.get("AWS::Logs::LogGroup"));
        let name = |p: &str| columns.iter().find(|c| c.property() == Some(p)).map(|c| c.name.clone());
        assert_eq!(name("KmsKeyId").as_deref(), Some("kms_key_id"));
        assert_eq!(name("KMSKeyId").as_deref(), Some("kms_key_id_2"));
        assert_eq!(name("RetentionTier").as_deref(), Some("retention_tier"));
        assert_eq!(t.regions, shipped().get("AWS::Logs::LogGroup").unwrap().regions);
    }

    #[test]
    fn bad_files_are_refused_naming_why() {
        let dir = tempfile_dir("bad");
        write(&dir, "AWS-Logs-LogGroup.json", "{not json");
        let mut renamed = log_group_schema();
        let props = renamed["properties"].as_object_mut().unwrap();
        let kms = props.remove("KmsKeyId").unwrap();
        props.insert("KMSKeyId".into(), kms);
        write(
            &dir,
            "AWS-Logs-Destination.json",
            &json!({"schema": log_group_schema()}).to_string(),
        );
        write(
            &dir,
            "AWS-Logs-MetricFilter.json",
            &json!({"schema": {"typeName": "AWS::Logs::MetricFilter"}}).to_string(),
        );
        let mut renamed_file = renamed.clone();
        renamed_file["typeName"] = json!("AWS::Logs::LogGroup");
        std::fs::create_dir_all(dir.join("other")).unwrap();
        write(
            &dir,
            "AWS-Logs-Other.json",
            &json!({"schema": renamed_file, "regions": ["mars-1"]}).to_string(),
        );
        let loaded = load(&dir, shipped()).unwrap();
        let why = |t: &str| {
            loaded
                .outcomes
                .iter()
                .find(|o| o.file.file_name().unwrap().to_str().unwrap().contains(t))
                .and_then(|o| o.refused().map(str::to_string))
                .unwrap_or_default()
        };
        assert!(why("LogGroup").contains("not a schema override file"), "{}", why("LogGroup"));
        assert!(why("Destination").contains("not AWS::Logs::Destination"), "{}", why("Destination"));
        assert!(why("MetricFilter").contains("properties"), "{}", why("MetricFilter"));
        assert!(why("Other").contains("not AWS::Logs::Other"), "{}", why("Other"));
        assert!(loaded.outcomes.iter().all(|o| o.refused().is_some()));
        assert!(loaded
            .registry
            .get("AWS::Logs::LogGroup")
            .unwrap()
            .same_schema(shipped().get("AWS::Logs::LogGroup").unwrap()));

        let t = resource_schemas::provider::convert(&renamed, Vec::new()).unwrap();
        let err = check_names(&t, NameLock::shipped().get("AWS::Logs::LogGroup")).unwrap_err();
        assert!(
            err.contains("would rename column kms_key_id (property KmsKeyId is gone; KMSKeyId would be read as kms_key_id_2)"),
            "{err}"
        );
        assert!(err.contains("logs.log_groups"), "{err}");
        let mut dropped = log_group_schema();
        dropped["properties"].as_object_mut().unwrap().remove("DataProtectionPolicy");
        let t = resource_schemas::provider::convert(&dropped, Vec::new()).unwrap();
        let err = check_names(&t, NameLock::shipped().get("AWS::Logs::LogGroup")).unwrap_err();
        assert!(err.contains("would drop column data_protection_policy"), "{err}");
    }

    #[test]
    fn a_lock_that_disagrees_with_the_shipped_one_is_an_error() {
        let dir = tempfile_dir("lock");
        std::fs::write(
            dir.join(LOCK_FILE),
            r#"{"format":1,"types":{"AWS::Logs::LogGroup":{"table":"logs.groups","columns":{}}}}"#,
        )
        .unwrap();
        let err = load(&dir, shipped()).err().unwrap();
        assert!(err.contains(LOCK_FILE) && err.contains("logs.log_groups"), "{err}");
        std::fs::write(dir.join(LOCK_FILE), "[").unwrap();
        assert!(load(&dir, shipped()).err().unwrap().contains("malformed"));
    }

    #[test]
    fn live_check_findings_are_applied_or_recorded() {
        let dir = tempfile_dir("facts");
        let facts = json!({"format": 1, "checked_at": "2026-12-02T00:00:00Z", "findings": [
            {"type_name": "AWS::EC2::VPC", "account": "prod", "region": "eu-west-1", "fact": "exists_in_region",
             "catalog": true, "aws": false, "source": "ListResources in eu-west-1: TypeNotFoundException"},
            {"type_name": "AWS::EKS::Nodegroup", "account": "prod", "region": "us-east-1", "fact": "list_needs_parent",
             "catalog": true, "aws": false, "source": "ListResources in us-east-1: 0 identifiers"},
            {"type_name": "AWS::S3::Bucket", "account": "prod", "region": "us-east-1 and eu-west-1", "fact": "global",
             "catalog": false, "aws": true, "source": "two regions listed the same"}
        ]});
        std::fs::write(dir.join(super::super::assumptions::FACTS_FILE), facts.to_string()).unwrap();
        let loaded = load(&dir, shipped()).unwrap();
        let vpc = loaded.registry.get("AWS::EC2::VPC").unwrap();
        assert!(!vpc.exists_in("eu-west-1") && vpc.exists_in("us-east-1"));
        let nodegroup = loaded.registry.get("AWS::EKS::Nodegroup").unwrap();
        assert!(!nodegroup.list_handler_schema().unwrap().demands_model());
        let status = |t: &str| loaded.outcomes.iter().find(|o| o.type_name == t).map(|o| o.status_text().0);
        assert_eq!(status("AWS::EC2::VPC"), Some("in use"));
        assert_eq!(status("AWS::EKS::Nodegroup"), Some("in use"));
        assert_eq!(status("AWS::S3::Bucket"), Some("recorded"));
        std::fs::write(dir.join(super::super::assumptions::FACTS_FILE), "[").unwrap();
        let loaded = load(&dir, shipped()).unwrap();
        assert!(loaded.outcomes[0].refused().unwrap().contains("not a facts file"));
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cloudpg-overrides-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
