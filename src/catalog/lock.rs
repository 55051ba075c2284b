//! The name lock: which table each type is, and which column each of its properties is, once
//! a name has been handed out. Queries, views and dashboards are written against those names,
//! so a schema update (a refresh, a new private type) may add names but never move one: the
//! catalog gives locked names first and derives new ones around them.
//!
//! The shipped lock is generated from the shipped schemas (a test keeps the two in step and
//! writes the file when `CLOUDPG_TEST_WRITE_LOCK=1`); `cloudpg schemas refresh` adds what it
//! names to a local lock next to the schemas it writes.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::model::{Catalog, ColumnSource, TableKind};

/// The lock generated from the shipped schemas.
static SHIPPED: &[u8] = include_bytes!("names.lock.json.gz");
/// Where the shipped lock lives in the source tree (for messages and for regenerating it).
pub const SHIPPED_PATH: &str = "src/catalog/names.lock.json.gz";

/// The names of one type's table and columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedType {
    /// `schema.table`, e.g. `ec2.vpcs`.
    pub table: String,
    /// Column name by what the column reads (see [`column_key`]).
    columns: LockedColumns,
}

impl LockedType {
    pub fn new(table: String, columns: BTreeMap<String, String>) -> LockedType {
        LockedType {
            table,
            columns: LockedColumns::parsed(columns),
        }
    }

    /// The (schema, table) parts of [`LockedType::table`].
    pub fn schema_and_table(&self) -> Option<(&str, &str)> {
        self.table.split_once('.')
    }

    /// Column name by what the column reads (see [`column_key`]).
    pub fn columns(&self) -> &BTreeMap<String, String> {
        self.columns.get()
    }

    fn set_columns(&mut self, columns: BTreeMap<String, String>) {
        self.columns = LockedColumns::parsed(columns);
    }
}

/// A type's locked column names, kept as the lock file's JSON text until a table of the type
/// derives its columns. Parsed, the shipped lock's 20,000 names cost about 2.7 MB of heap that
/// a server holds for the few types it is asked about.
#[derive(Clone, Default)]
struct LockedColumns {
    /// Checked to parse when it was read, so parsing it again cannot fail.
    raw: Option<Box<RawValue>>,
    parsed: OnceLock<BTreeMap<String, String>>,
}

impl LockedColumns {
    fn parsed(columns: BTreeMap<String, String>) -> LockedColumns {
        LockedColumns {
            raw: None,
            parsed: OnceLock::from(columns),
        }
    }

    fn parse(raw: &RawValue) -> Result<BTreeMap<String, String>, serde_json::Error> {
        serde_json::from_str(raw.get())
    }

    fn get(&self) -> &BTreeMap<String, String> {
        self.parsed
            .get_or_init(|| self.raw.as_deref().and_then(|raw| Self::parse(raw).ok()).unwrap_or_default())
    }
}

impl PartialEq for LockedColumns {
    fn eq(&self, other: &LockedColumns) -> bool {
        self.get() == other.get()
    }
}

impl Eq for LockedColumns {}

impl std::fmt::Debug for LockedColumns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

impl Serialize for LockedColumns {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(s)
    }
}

impl<'de> Deserialize<'de> for LockedColumns {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<LockedColumns, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)?;
        Ok(LockedColumns {
            raw: Some(raw),
            parsed: OnceLock::new(),
        })
    }
}

/// Every locked name, by type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameLock {
    pub format: u32,
    /// Shared with the catalog's tables (a type's full and list-only table both name their
    /// columns by it), so building the catalog copies no names.
    #[serde(serialize_with = "shared::serialize", deserialize_with = "shared::deserialize")]
    pub types: BTreeMap<String, Arc<LockedType>>,
}

/// The lock file's `types` as shared values (serde's `rc` feature would rebuild every crate
/// that uses serde for these two functions).
mod shared {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::LockedType;

    pub fn serialize<S: Serializer>(types: &BTreeMap<String, Arc<LockedType>>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(types.iter().map(|(k, v)| (k, &**v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Arc<LockedType>>, D::Error> {
        let types = BTreeMap::<String, LockedType>::deserialize(d)?;
        Ok(types.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

/// The lock [`NameLock::install`] made the process's.
static INSTALLED: OnceLock<NameLock> = OnceLock::new();

/// What a column reads, as the lock keys it: the property name, `list:<key>` for a list
/// handler parameter that is no property, `@tag_map` and `@_extra` for the columns cloudpg
/// derives. `region`, `account` and `identifier` have fixed names and are not locked.
pub fn column_key(source: &ColumnSource) -> Option<String> {
    match source {
        ColumnSource::Property(p) => Some(p.clone()),
        ColumnSource::ListParam(p) => Some(format!("list:{p}")),
        ColumnSource::TagMap(_) => Some("@tag_map".into()),
        ColumnSource::Extra(_) => Some("@_extra".into()),
        ColumnSource::Region | ColumnSource::Account | ColumnSource::Identifier => None,
    }
}

impl NameLock {
    pub const FORMAT: u32 = 1;

    /// The lock shipped with the schemas. Its bytes are checked by this module's tests; if they
    /// could not be read, no name would be locked, which only matters once schemas change.
    pub fn shipped() -> &'static NameLock {
        static LOCK: OnceLock<NameLock> = OnceLock::new();
        LOCK.get_or_init(|| {
            NameLock::from_gzip(SHIPPED).unwrap_or_else(|e| {
                tracing::error!(error = %e, file = SHIPPED_PATH, "the shipped name lock cannot be read; names are not locked");
                NameLock::default()
            })
        })
    }

    /// The process's lock: the installed one (shipped with a local one over it), else the
    /// shipped one.
    pub fn effective() -> &'static NameLock {
        INSTALLED.get().unwrap_or_else(|| NameLock::shipped())
    }

    /// Makes `lock` the process's; once, before the catalog is built.
    pub fn install(lock: NameLock) -> bool {
        INSTALLED.set(lock).is_ok()
    }

    fn from_gzip(bytes: &[u8]) -> Result<NameLock, String> {
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut json)
            .map_err(|e| format!("not valid gzip data: {e}"))?;
        NameLock::from_json(&json)
    }

    pub fn from_json(json: &[u8]) -> Result<NameLock, String> {
        let lock: NameLock = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        if lock.format != Self::FORMAT {
            return Err(format!("format {} is not supported (expected {})", lock.format, Self::FORMAT));
        }
        for (type_name, t) in &lock.types {
            if t.schema_and_table().is_none() {
                return Err(format!("{type_name}: table {:?} is not of the form schema.table", t.table));
            }
        }
        Ok(lock)
    }

    /// A lock file; a missing file is an empty lock.
    pub fn read(path: &Path) -> Result<NameLock, String> {
        match std::fs::read(path) {
            Ok(bytes) => NameLock::from_json(&bytes).map_err(|e| format!("name lock {} is malformed: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(NameLock {
                format: Self::FORMAT,
                types: BTreeMap::new(),
            }),
            Err(e) => Err(format!("cannot read name lock {}: {e}", path.display())),
        }
    }

    /// Writes the lock as sorted, indented JSON (reviewable in a diff), atomically.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        super::overrides::write_atomically(path, format!("{text}\n").as_bytes())
    }

    pub fn get(&self, type_name: &str) -> Option<&LockedType> {
        self.types.get(type_name).map(|t| &**t)
    }

    /// [`NameLock::get`], shared rather than borrowed.
    pub fn shared(&self, type_name: &str) -> Option<Arc<LockedType>> {
        self.types.get(type_name).cloned()
    }

    /// `self` with `other`'s names added. A name `other` gives differently from `self`, or a
    /// name both give to different things, is an error naming it: two locks that disagree
    /// cannot both be kept.
    pub fn merged(&self, other: &NameLock) -> Result<NameLock, String> {
        let mut out = self.clone();
        let mut tables: BTreeMap<&str, &str> = self.types.iter().map(|(k, v)| (v.table.as_str(), k.as_str())).collect();
        for (type_name, theirs) in &other.types {
            if let Some(owner) = tables.get(theirs.table.as_str()).filter(|owner| **owner != type_name) {
                return Err(format!("table {} is locked to {owner}, not {type_name}", theirs.table));
            }
            tables.insert(&theirs.table, type_name);
            let ours = Arc::make_mut(
                out.types
                    .entry(type_name.clone())
                    .or_insert_with(|| Arc::new(LockedType::new(theirs.table.clone(), BTreeMap::new()))),
            );
            if ours.table != theirs.table {
                return Err(format!("{type_name} is locked to table {}, not {}", ours.table, theirs.table));
            }
            let mut columns = ours.columns().clone();
            for (key, name) in theirs.columns() {
                match columns.get(key) {
                    Some(existing) if existing != name => {
                        return Err(format!("{type_name}: {key} is locked to column {existing}, not {name}"));
                    }
                    Some(_) => {}
                    None => {
                        if let Some((other_key, _)) = columns.iter().find(|(_, n)| *n == name) {
                            return Err(format!("{type_name}: column {name} is locked to {other_key}, not {key}"));
                        }
                        columns.insert(key.clone(), name.clone());
                    }
                }
            }
            ours.set_columns(columns);
        }
        Ok(out)
    }

    /// The names a catalog gives every table and column (derives every table's columns).
    pub fn of_catalog(catalog: &Catalog) -> NameLock {
        let types = catalog
            .tables()
            .filter(|t| t.kind == TableKind::Full)
            .map(|t| (t.type_name().to_string(), Arc::new(LockedType::of_table(t))))
            .collect();
        NameLock {
            format: Self::FORMAT,
            types,
        }
    }
}

impl LockedType {
    /// The names one full table gives.
    pub fn of_table(table: &super::model::TableDef) -> LockedType {
        let columns = table
            .columns()
            .iter()
            .filter_map(|c| column_key(&c.source).map(|k| (k, c.name.clone())))
            .collect();
        LockedType::new(format!("{}.{}", table.schema, table.name), columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lock(json: serde_json::Value) -> NameLock {
        NameLock::from_json(json.to_string().as_bytes()).unwrap()
    }

    /// The shipped lock names exactly what the shipped schemas give; with
    /// `CLOUDPG_TEST_WRITE_LOCK=1` this writes it (after the schema data changed: the names
    /// already locked stay, new ones are added).
    #[test]
    fn shipped_lock_matches_the_shipped_schemas() {
        let registry = resource_schemas::Registry::shipped().unwrap();
        let derived = NameLock::of_catalog(&Catalog::build_with(registry, NameLock::shipped()));
        if std::env::var("CLOUDPG_TEST_WRITE_LOCK").as_deref() == Ok("1") {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(SHIPPED_PATH);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(serde_json::to_string(&derived).unwrap().as_bytes()).unwrap();
            std::fs::write(&path, gz.finish().unwrap()).unwrap();
            return;
        }
        let shipped = NameLock::shipped();
        assert_eq!(
            shipped.types.len(),
            derived.types.len(),
            "regenerate with CLOUDPG_TEST_WRITE_LOCK=1"
        );
        for (type_name, names) in &derived.types {
            assert_eq!(
                shipped.get(type_name),
                Some(&**names),
                "{type_name}: regenerate with CLOUDPG_TEST_WRITE_LOCK=1"
            );
        }
        assert_eq!(shipped.get("AWS::EC2::VPC").unwrap().table, "ec2.vpcs");
    }

    /// Columns stay JSON text until asked for; a lock whose columns are not a map of names is
    /// refused when it is read, not when a table first derives its columns.
    #[test]
    fn columns_are_parsed_when_first_asked_for_and_checked_when_read() {
        let shipped = NameLock::from_gzip(SHIPPED).unwrap();
        assert!(shipped.types.values().all(|t| t.columns.parsed.get().is_none()));
        let vpc = shipped.get("AWS::EC2::VPC").unwrap();
        assert_eq!(vpc.columns().get("CidrBlock").map(String::as_str), Some("cidr_block"));
        assert!(vpc.columns.parsed.get().is_some());
        let written = serde_json::to_string(&lock(serde_json::json!({"format": 1, "types": {
            "AWS::Logs::LogGroup": {"table": "logs.log_groups", "columns": {"KmsKeyId": "kms_key_id"}}
        }})))
        .unwrap();
        assert!(written.contains(r#""columns":{"KmsKeyId":"kms_key_id"}"#), "{written}");
        for bad in [r#"["kms_key_id"]"#, r#"{"KmsKeyId": 7}"#, "null"] {
            let json = format!(r#"{{"format": 1, "types": {{"AWS::Logs::LogGroup": {{"table": "logs.log_groups", "columns": {bad}}}}}}}"#);
            assert!(NameLock::from_json(json.as_bytes()).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn locks_merge_when_they_agree_and_say_where_they_do_not() {
        let base = lock(serde_json::json!({"format": 1, "types": {
            "AWS::Logs::LogGroup": {"table": "logs.log_groups", "columns": {"KmsKeyId": "kms_key_id"}}
        }}));
        let more = lock(serde_json::json!({"format": 1, "types": {
            "AWS::Logs::LogGroup": {"table": "logs.log_groups", "columns": {"KMSKeyId": "kms_key_id_2"}},
            "AAA::Logs::LogGroup": {"table": "logs.log_groups_aaa", "columns": {}}
        }}));
        let merged = base.merged(&more).unwrap();
        assert_eq!(merged.get("AWS::Logs::LogGroup").unwrap().columns().len(), 2);
        assert!(merged.get("AAA::Logs::LogGroup").is_some());
        let renamed = lock(serde_json::json!({"format": 1, "types": {
            "AWS::Logs::LogGroup": {"table": "logs.log_groups", "columns": {"KmsKeyId": "kms_key"}}
        }}));
        assert!(base
            .merged(&renamed)
            .unwrap_err()
            .contains("KmsKeyId is locked to column kms_key_id"));
        let stolen = lock(serde_json::json!({"format": 1, "types": {
            "AWS::Logs::LogGroup": {"table": "logs.log_groups", "columns": {"KMSKeyId": "kms_key_id"}}
        }}));
        assert!(base
            .merged(&stolen)
            .unwrap_err()
            .contains("column kms_key_id is locked to KmsKeyId"));
        let table = lock(serde_json::json!({"format": 1, "types": {
            "AAA::Logs::LogGroup": {"table": "logs.log_groups", "columns": {}}
        }}));
        assert!(base
            .merged(&table)
            .unwrap_err()
            .contains("table logs.log_groups is locked to AWS::Logs::LogGroup"));
        assert!(NameLock::from_json(br#"{"format": 2, "types": {}}"#)
            .unwrap_err()
            .contains("format 2"));
        assert!(
            NameLock::from_json(br#"{"format": 1, "types": {"A::B::C": {"table": "nodot", "columns": {}}}}"#)
                .unwrap_err()
                .contains("schema.table")
        );
    }
}
