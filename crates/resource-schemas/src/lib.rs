//! The CloudFormation registry schemas of every AWS resource type, shipped inside the binary.
//!
//! `data/schemas.pack` is written by `generator/generate.py` from the schema files that the
//! PyPI package `cfn-lint` bundles (see the crate README). It is a small gzip'd JSON index of the
//! always-needed parts of every type (name, identifiers, handlers, regions), which
//! [`Registry::embedded`] reads eagerly, followed by each type's property schemas compressed on
//! their own, decompressed and parsed the first time they are asked for: startup pays for 2.7 MB
//! of JSON, not for 18 MB, and only the schemas of types in use take memory.
//!
//! This crate knows nothing of SQL: naming tables and columns is the server's job.

pub mod geography;
mod parents;
pub mod provider;
pub use parents::{ParentKey, ParentPlan};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The schema pack committed next to this crate.
static EMBEDDED: &[u8] = include_bytes!("../data/schemas.pack");
/// The name errors use for the embedded data.
pub const EMBEDDED_NAME: &str = "<embedded>/crates/resource-schemas/data/schemas.pack";
/// How a pack starts; the index's length (u64 little-endian) follows.
const PACK_MAGIC: &[u8; 8] = b"CPGSCHM2";

/// Why the schema data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read schema data file {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("schema data file {file} is malformed: {message}")]
    Malformed { file: String, message: String },
}

impl Error {
    fn malformed(file: &str, message: impl Into<String>) -> Error {
        Error::Malformed {
            file: file.to_string(),
            message: message.into(),
        }
    }
}

/// One CloudFormation operation handler: the IAM permissions it needs.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Handler {
    /// Shared among the handlers that need the same permission (32,000 names, 10,000 distinct).
    #[serde(default, deserialize_with = "shared_strings")]
    pub permissions: Vec<Arc<str>>,
    #[serde(default, rename = "timeoutInMinutes")]
    pub timeout_in_minutes: Option<u32>,
    #[serde(default, rename = "handlerSchema")]
    pub handler_schema: Option<ListHandlerSchema>,
}

fn shared_strings<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Arc<str>>, D::Error> {
    Ok(Vec::<String>::deserialize(d)?.into_iter().map(Arc::from).collect())
}

impl Handlers {
    fn each_mut(&mut self) -> impl Iterator<Item = &mut Handler> {
        [&mut self.create, &mut self.read, &mut self.update, &mut self.delete, &mut self.list]
            .into_iter()
            .flatten()
    }

    /// Each permission name replaced by the one in `pool`, which keeps one of each.
    fn share_permissions(&mut self, pool: &mut HashSet<Arc<str>>) {
        for handler in self.each_mut() {
            for name in &mut handler.permissions {
                match pool.get(name) {
                    Some(shared) => *name = Arc::clone(shared),
                    None => {
                        pool.insert(Arc::clone(name));
                    }
                }
            }
        }
    }
}

/// The parent properties a list handler needs in its `ResourceModel`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListHandlerSchema {
    #[serde(default)]
    pub params: Vec<ListParam>,
    /// Every one of these must be given.
    #[serde(default)]
    pub required: Vec<String>,
    /// Exactly one of these sets must be given.
    #[serde(default, rename = "oneOf")]
    pub one_of: Vec<Vec<String>>,
    /// At least one of these sets must be given.
    #[serde(default, rename = "anyOf")]
    pub any_of: Vec<Vec<String>>,
}

impl ListHandlerSchema {
    /// True when a list cannot run without some parent values.
    pub fn demands_model(&self) -> bool {
        !self.required.is_empty() || !self.one_of.is_empty() || !self.any_of.is_empty()
    }
}

/// One key of a list handler's `ResourceModel`.
#[derive(Debug, Clone, Deserialize)]
pub struct ListParam {
    /// The key in `ResourceModel`.
    pub name: String,
    /// The resource property the key refers to, when the schema says so.
    #[serde(default)]
    pub property: Option<String>,
    /// The key's own schema, when it is not a resource property.
    #[serde(default)]
    pub schema: Option<Value>,
}

/// The handlers a type has; a missing one means the operation is unsupported.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Handlers {
    pub create: Option<Handler>,
    pub read: Option<Handler>,
    pub update: Option<Handler>,
    pub delete: Option<Handler>,
    pub list: Option<Handler>,
}

/// Cloud Control's five resource operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    Create,
    Read,
    Update,
    Delete,
    List,
}

impl Operation {
    pub const ALL: [Operation; 5] = [
        Operation::Create,
        Operation::Read,
        Operation::Update,
        Operation::Delete,
        Operation::List,
    ];

    /// The upper-case word AWS uses in messages ("does not support LIST action").
    pub fn action_word(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Read => "READ",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::List => "LIST",
        }
    }
}

impl Handlers {
    pub fn get(&self, op: Operation) -> Option<&Handler> {
        match op {
            Operation::Create => self.create.as_ref(),
            Operation::Read => self.read.as_ref(),
            Operation::Update => self.update.as_ref(),
            Operation::Delete => self.delete.as_ref(),
            Operation::List => self.list.as_ref(),
        }
    }
}

/// A type as stored: the cheap parts typed, the property schemas raw (format 1) or where a
/// pack keeps them compressed (format 2).
#[derive(Debug, Deserialize)]
pub(crate) struct RawType {
    #[serde(rename = "typeName")]
    type_name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    properties: Option<Box<RawValue>>,
    #[serde(default)]
    definitions: Option<Box<RawValue>>,
    /// Offset and length of the compressed schemas after a pack's index.
    #[serde(default)]
    schemas: Option<(usize, usize)>,
    #[serde(default)]
    required: Vec<String>,
    #[serde(default, rename = "primaryIdentifier")]
    primary_identifier: Vec<String>,
    #[serde(default, rename = "additionalIdentifiers")]
    additional_identifiers: Vec<Vec<String>>,
    #[serde(default, rename = "readOnlyProperties")]
    read_only_properties: Vec<String>,
    #[serde(default, rename = "writeOnlyProperties")]
    write_only_properties: Vec<String>,
    #[serde(default, rename = "createOnlyProperties")]
    create_only_properties: Vec<String>,
    #[serde(default, rename = "conditionalCreateOnlyProperties")]
    conditional_create_only_properties: Vec<String>,
    #[serde(default)]
    handlers: Option<Handlers>,
    #[serde(default)]
    tagging: Option<Box<RawValue>>,
    #[serde(default)]
    regions: Vec<usize>,
}

impl RawType {
    /// Its inline property schemas (format 1 and provider schemas).
    fn inline_schemas(&mut self) -> Result<SchemaSource, String> {
        match self.properties.take() {
            Some(properties) => Ok(SchemaSource::Json {
                properties,
                definitions: self.definitions.take(),
            }),
            None => Err(format!("{} has no properties", self.type_name)),
        }
    }
}

#[derive(Debug, Deserialize)]
struct RawData {
    format: u32,
    source: String,
    #[serde(rename = "schemaDate")]
    schema_date: Option<String>,
    regions: Vec<String>,
    types: Vec<RawType>,
}

/// One resource type's schema.
#[derive(Debug)]
pub struct ResourceType {
    pub type_name: String,
    pub description: String,
    /// Top-level required property names.
    pub required: Vec<String>,
    /// JSON pointers (`/properties/Id`) of the primary identifier, in schema order.
    pub primary_identifier: Vec<String>,
    pub additional_identifiers: Vec<Vec<String>>,
    pub read_only_properties: Vec<String>,
    pub write_only_properties: Vec<String>,
    pub create_only_properties: Vec<String>,
    pub conditional_create_only_properties: Vec<String>,
    /// `None` when the type has no handlers at all (not provisionable through Cloud Control).
    pub handlers: Option<Handlers>,
    /// The schema's `tagging` object as its JSON text: only a schema refresh reads it, and
    /// parsed it is about a kilobyte per type.
    tagging: Option<Box<RawValue>>,
    /// Regions (names) where the type exists; types with the same regions (most of them) share
    /// one list.
    pub regions: Arc<[String]>,
    source: SchemaSource,
    schemas: OnceLock<Schemas>,
}

/// Where a type's property schemas are until first parsed.
#[derive(Debug)]
enum SchemaSource {
    Json {
        properties: Box<RawValue>,
        definitions: Option<Box<RawValue>>,
    },
    /// Raw deflate of `{"properties": …, "definitions": …}` inside a pack.
    Packed(&'static [u8]),
}

/// A type's property schemas, parsed.
#[derive(Debug, Default, Deserialize)]
struct Schemas {
    #[serde(default)]
    properties: Map<String, Value>,
    #[serde(default)]
    definitions: Map<String, Value>,
}

impl SchemaSource {
    /// The schemas, parsed. Format-1 JSON was validated when it was loaded and every embedded
    /// blob is checked by this crate's tests; a pack read with [`Registry::from_file`] is not
    /// inflated until used, so a corrupt blob there surfaces here: the type then has no
    /// properties rather than taking the process down.
    fn parse(&self) -> Schemas {
        match self {
            SchemaSource::Json { properties, definitions } => Schemas {
                properties: serde_json::from_str(properties.get()).unwrap_or_default(),
                definitions: definitions
                    .as_ref()
                    .and_then(|raw| serde_json::from_str(raw.get()).ok())
                    .unwrap_or_default(),
            },
            SchemaSource::Packed(deflated) => {
                let mut json = Vec::with_capacity(deflated.len() * 8);
                match flate2::read::DeflateDecoder::new(*deflated).read_to_end(&mut json) {
                    Ok(_) => serde_json::from_slice(&json).unwrap_or_default(),
                    Err(_) => Schemas::default(),
                }
            }
        }
    }
}

impl ResourceType {
    fn from_raw(t: RawType, regions: Arc<[String]>, source: SchemaSource) -> ResourceType {
        ResourceType {
            type_name: t.type_name,
            description: t.description,
            required: t.required,
            primary_identifier: t.primary_identifier,
            additional_identifiers: t.additional_identifiers,
            read_only_properties: t.read_only_properties,
            write_only_properties: t.write_only_properties,
            create_only_properties: t.create_only_properties,
            conditional_create_only_properties: t.conditional_create_only_properties,
            handlers: t.handlers,
            tagging: t.tagging,
            regions,
            source,
            schemas: OnceLock::new(),
        }
    }

    fn schemas(&self) -> &Schemas {
        self.schemas.get_or_init(|| self.source.parse())
    }

    /// The schema's `tagging` object (what tags the type takes and how).
    pub fn tagging(&self) -> Option<Value> {
        self.tagging.as_deref().and_then(|raw| serde_json::from_str(raw.get()).ok())
    }

    /// The (service, resource) parts of `AWS::Service::Resource`.
    pub fn name_parts(&self) -> (&str, &str, &str) {
        let mut parts = self.type_name.splitn(3, "::");
        let vendor = parts.next().unwrap_or_default();
        let service = parts.next().unwrap_or_default();
        let resource = parts.next().unwrap_or_default();
        (vendor, service, resource)
    }

    /// Top-level property schemas by name (sorted), with `$ref`s inlined; parsed on first use.
    pub fn properties(&self) -> &Map<String, Value> {
        &self.schemas().properties
    }

    /// Definitions kept because they are recursive; inlined trees point at them with `$ref`.
    pub fn definitions(&self) -> &Map<String, Value> {
        &self.schemas().definitions
    }

    /// Property names of the primary identifier, in schema order.
    pub fn primary_identifier_names(&self) -> Vec<&str> {
        self.primary_identifier.iter().map(|p| pointer_top_level(p)).collect()
    }

    pub fn supports(&self, op: Operation) -> bool {
        self.handler(op).is_some()
    }

    pub fn handler(&self, op: Operation) -> Option<&Handler> {
        self.handlers.as_ref().and_then(|h| h.get(op))
    }

    /// The list handler's parent requirements, when it has any.
    pub fn list_handler_schema(&self) -> Option<&ListHandlerSchema> {
        self.handler(Operation::List).and_then(|h| h.handler_schema.as_ref())
    }

    pub fn exists_in(&self, region: &str) -> bool {
        self.regions.iter().any(|r| r == region)
    }

    /// True when `name` is a top-level property listed in the given pointer list.
    fn listed(list: &[String], name: &str) -> bool {
        list.iter().any(|p| pointer_top_level(p) == name && is_top_level(p))
    }

    pub fn is_read_only(&self, name: &str) -> bool {
        Self::listed(&self.read_only_properties, name)
    }

    pub fn is_write_only(&self, name: &str) -> bool {
        Self::listed(&self.write_only_properties, name)
    }

    /// Whether a top-level property is write-only or has write-only members: its values are
    /// secrets, never to be quoted back.
    pub fn holds_write_only(&self, name: &str) -> bool {
        self.write_only_properties.iter().any(|p| pointer_top_level(p) == name)
    }

    /// The text values a model holds at write-only paths (the secrets it carries), so
    /// messages that quote them can be masked.
    pub fn write_only_values(&self, model: &serde_json::Map<String, Value>) -> Vec<String> {
        let mut out = Vec::new();
        for pointer in &self.write_only_properties {
            if let Some(rest) = pointer.strip_prefix("/properties/") {
                let path: Vec<&str> = rest.split('/').collect();
                if let Some((first, tail)) = path.split_first() {
                    if let Some(v) = model.get(*first) {
                        collect_at(v, tail, &mut out);
                    }
                }
            }
        }
        out
    }

    /// Removes every write-only property from a resource model, nested ones included
    /// (`/properties/AuthParameters/ApiKeyAuthParameters/ApiKeyValue`, `/properties/A/*/B`
    /// for each element of an array): Cloud Control never returns them.
    pub fn strip_write_only(&self, model: &mut serde_json::Map<String, Value>) {
        for pointer in &self.write_only_properties {
            if let Some(rest) = pointer.strip_prefix("/properties/") {
                let path: Vec<&str> = rest.split('/').collect();
                remove_path(model, &path);
            }
        }
    }

    pub fn is_create_only(&self, name: &str) -> bool {
        Self::listed(&self.create_only_properties, name)
    }

    pub fn is_required(&self, name: &str) -> bool {
        self.required.iter().any(|r| r == name)
    }
}

/// Every string (and number, as text) under `value` at `path`; `*` is every array element.
fn collect_at(value: &Value, path: &[&str], out: &mut Vec<String>) {
    match (value, path.split_first()) {
        (Value::String(s), None) => out.push(s.clone()),
        (Value::Number(n), None) => out.push(n.to_string()),
        (Value::Array(items), None) | (Value::Array(items), Some((&"*", _))) => {
            let rest = if path.is_empty() { path } else { &path[1..] };
            for item in items {
                collect_at(item, rest, out);
            }
        }
        (Value::Object(map), None) => {
            for v in map.values() {
                collect_at(v, path, out);
            }
        }
        (Value::Object(map), Some((first, rest))) => {
            if let Some(v) = map.get(*first) {
                collect_at(v, rest, out);
            }
        }
        _ => {}
    }
}

/// Removes the member `path` names from `object`; `*` stands for every element of an array.
fn remove_path(object: &mut serde_json::Map<String, Value>, path: &[&str]) {
    match path {
        [] => {}
        [last] => {
            object.remove(*last);
        }
        [first, rest @ ..] => {
            if let Some(child) = object.get_mut(*first) {
                remove_in_value(child, rest);
            }
        }
    }
}

fn remove_in_value(value: &mut Value, path: &[&str]) {
    match (value, path) {
        (Value::Array(items), ["*", rest @ ..]) => {
            if rest.is_empty() {
                items.clear();
            } else {
                for item in items {
                    remove_in_value(item, rest);
                }
            }
        }
        (Value::Object(object), _) => remove_path(object, path),
        _ => {}
    }
}

/// `bytes` decompressed, or an error naming the data file.
fn gunzip(bytes: &[u8], name: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(bytes.len() * 10);
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| Error::malformed(name, format!("not valid gzip data: {e}")))?;
    Ok(out)
}

/// The top-level property name of a pointer such as `/properties/A/B` (→ `A`).
pub fn pointer_top_level(pointer: &str) -> &str {
    let rest = pointer.strip_prefix("/properties/").unwrap_or(pointer);
    rest.split('/').next().unwrap_or(rest)
}

/// True for `/properties/A`, false for nested pointers such as `/properties/A/B`.
pub fn is_top_level(pointer: &str) -> bool {
    pointer.strip_prefix("/properties/").is_some_and(|rest| !rest.contains('/'))
}

/// The registry [`Registry::install`] made the process's.
static INSTALLED: OnceLock<&'static Registry> = OnceLock::new();

/// [`Registry::install`] was called twice.
#[derive(Debug, thiserror::Error)]
#[error("a schema registry is already installed in this process")]
pub struct AlreadyInstalled;

/// Every resource type, looked up by its `AWS::Service::Resource` name.
#[derive(Debug)]
pub struct Registry {
    pub source: String,
    pub schema_date: Option<String>,
    /// Every region any type exists in, sorted.
    pub regions: Vec<String>,
    types: Vec<Arc<ResourceType>>,
    by_name: HashMap<String, usize>,
}

impl Registry {
    /// The data shipped in the binary.
    pub fn embedded() -> Result<Registry, Error> {
        Self::from_pack(EMBEDDED, EMBEDDED_NAME)
    }

    /// The process-wide registry: the one [`Registry::install`]ed (the shipped data with local
    /// overrides), else the embedded data, loaded once.
    ///
    /// The embedded bytes are checked by this crate's tests, so failure here means a broken
    /// build; callers that want to report it nicely use [`Registry::embedded`] first.
    pub fn shared() -> Result<&'static Registry, &'static Error> {
        if let Some(installed) = INSTALLED.get() {
            return Ok(installed);
        }
        Self::shipped()
    }

    /// The embedded data alone, whatever was installed.
    pub fn shipped() -> Result<&'static Registry, &'static Error> {
        static SHIPPED: OnceLock<Result<Registry, Error>> = OnceLock::new();
        SHIPPED.get_or_init(Registry::embedded).as_ref()
    }

    /// Makes `registry` the one [`Registry::shared`] returns from now on; once per process,
    /// before the server builds its catalog from it.
    pub fn install(registry: Registry) -> Result<&'static Registry, AlreadyInstalled> {
        if INSTALLED.get().is_some() {
            return Err(AlreadyInstalled);
        }
        let leaked: &'static Registry = Box::leak(Box::new(registry));
        INSTALLED.set(leaked).map_err(|_| AlreadyInstalled)?;
        Ok(leaked)
    }

    /// This registry with some types replaced or added: the types share what they do not
    /// change with `self`.
    pub fn overlay(&self, replacements: Vec<ResourceType>) -> Registry {
        let mut types = self.types.clone();
        let mut by_name = self.by_name.clone();
        for t in replacements {
            match by_name.get(&t.type_name) {
                Some(&i) => types[i] = Arc::new(t),
                None => {
                    by_name.insert(t.type_name.clone(), types.len());
                    types.push(Arc::new(t));
                }
            }
        }
        let mut order: Vec<usize> = (0..types.len()).collect();
        order.sort_by(|&a, &b| types[a].type_name.cmp(&types[b].type_name));
        let types: Vec<Arc<ResourceType>> = order.into_iter().map(|i| types[i].clone()).collect();
        let by_name = types.iter().enumerate().map(|(i, t)| (t.type_name.clone(), i)).collect();
        let mut regions = self.regions.clone();
        for t in &types {
            for r in t.regions.iter() {
                if !regions.contains(r) {
                    regions.push(r.clone());
                }
            }
        }
        regions.sort();
        Registry {
            source: self.source.clone(),
            schema_date: self.schema_date.clone(),
            regions,
            types,
            by_name,
        }
    }

    /// A data file: a pack as the generator writes it, or format-1 JSON (gzip-compressed or
    /// plain). A pack's bytes stay in memory for the life of the process, as a registry does.
    pub fn from_file(path: &Path) -> Result<Registry, Error> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            file: file.clone(),
            source,
        })?;
        if bytes.starts_with(PACK_MAGIC) {
            Self::from_pack(Box::leak(bytes.into_boxed_slice()), &file)
        } else if bytes.starts_with(&[0x1f, 0x8b]) {
            Self::from_gzip(&bytes, &file)
        } else {
            Self::from_json(&bytes, &file)
        }
    }

    /// Gzip-compressed format-1 JSON.
    pub fn from_gzip(bytes: &[u8], name: &str) -> Result<Registry, Error> {
        Self::from_json(&gunzip(bytes, name)?, name)
    }

    /// Format-1 JSON: every type's property schemas inline.
    pub fn from_json(json: &[u8], name: &str) -> Result<Registry, Error> {
        Self::from_index(json, name, 1, RawType::inline_schemas)
    }

    /// A pack (see `generator/generate.py`): the gzip'd format-2 index, then each type's
    /// compressed schemas at the offset the index gives.
    pub fn from_pack(bytes: &'static [u8], name: &str) -> Result<Registry, Error> {
        let malformed = |message: &str| Error::malformed(name, message);
        let rest = bytes
            .strip_prefix(PACK_MAGIC)
            .ok_or_else(|| malformed("not a schema pack (it does not start with CPGSCHM2)"))?;
        let (length, rest) = rest
            .split_first_chunk::<8>()
            .ok_or_else(|| malformed("the pack ends before its index length"))?;
        let index_len = usize::try_from(u64::from_le_bytes(*length)).unwrap_or(usize::MAX);
        if index_len > rest.len() {
            return Err(malformed("the pack ends inside its index"));
        }
        let (index, blobs) = rest.split_at(index_len);
        Self::from_index(&gunzip(index, name)?, name, 2, |t| {
            let (offset, len) = t.schemas.ok_or_else(|| format!("{} has no schemas offset", t.type_name))?;
            offset
                .checked_add(len)
                .and_then(|end| blobs.get(offset..end))
                .map(SchemaSource::Packed)
                .ok_or_else(|| format!("{}'s schemas lie outside the pack", t.type_name))
        })
    }

    /// The registry an index describes, with each type's schemas where `source` finds them.
    fn from_index(
        json: &[u8],
        name: &str,
        format: u32,
        mut source: impl FnMut(&mut RawType) -> Result<SchemaSource, String>,
    ) -> Result<Registry, Error> {
        let malformed = |message: String| Error::malformed(name, message);
        let raw: RawData = serde_json::from_slice(json).map_err(|e| malformed(e.to_string()))?;
        if raw.format != format {
            return Err(malformed(format!(
                "format version {} is not supported here (expected {format}); regenerate it with generator/generate.py",
                raw.format
            )));
        }
        let mut types = Vec::with_capacity(raw.types.len());
        let mut by_name = HashMap::with_capacity(raw.types.len());
        let mut region_lists: HashMap<Vec<usize>, Arc<[String]>> = HashMap::new();
        let mut permissions = HashSet::new();
        for mut t in raw.types {
            if let Some(handlers) = &mut t.handlers {
                handlers.share_permissions(&mut permissions);
            }
            let schemas = source(&mut t).map_err(&malformed)?;
            let regions = match region_lists.get(&t.regions) {
                Some(shared) => Arc::clone(shared),
                None => {
                    let names = t
                        .regions
                        .iter()
                        .map(|&i| {
                            raw.regions
                                .get(i)
                                .cloned()
                                .ok_or_else(|| malformed(format!("{} names region index {i}, which does not exist", t.type_name)))
                        })
                        .collect::<Result<Arc<[String]>, _>>()?;
                    region_lists.insert(t.regions.clone(), Arc::clone(&names));
                    names
                }
            };
            if by_name.insert(t.type_name.clone(), types.len()).is_some() {
                return Err(malformed(format!("type {} appears twice", t.type_name)));
            }
            types.push(Arc::new(ResourceType::from_raw(t, regions, schemas)));
        }
        Ok(Registry {
            source: raw.source,
            schema_date: raw.schema_date,
            regions: raw.regions,
            types,
            by_name,
        })
    }

    pub fn get(&self, type_name: &str) -> Option<&ResourceType> {
        self.by_name.get(type_name).map(|&i| &*self.types[i])
    }

    /// Every type, sorted by name.
    pub fn types(&self) -> impl Iterator<Item = &ResourceType> {
        self.types.iter().map(|t| &**t)
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Types grouped by service, for listings.
    pub fn by_service(&self) -> BTreeMap<&str, Vec<&ResourceType>> {
        let mut out: BTreeMap<&str, Vec<&ResourceType>> = BTreeMap::new();
        for t in &self.types {
            out.entry(t.name_parts().1).or_default().push(&**t);
        }
        out
    }

    pub fn is_region(&self, region: &str) -> bool {
        self.regions.iter().any(|r| r == region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_data_loads_with_every_type() {
        let reg = Registry::embedded().expect("embedded data loads");
        assert_eq!(reg.regions.len(), 45);
        let with_handlers = reg.types().filter(|t| t.handlers.is_some()).count();
        assert!(with_handlers >= 1700, "{with_handlers} types with handlers");
        let listable_use1 = reg
            .types()
            .filter(|t| t.exists_in("us-east-1") && t.supports(Operation::List))
            .count();
        assert!(listable_use1 >= 1600, "{listable_use1} listable in us-east-1");
    }

    #[test]
    fn types_in_the_same_regions_share_one_list() {
        let reg = Registry::embedded().unwrap();
        let vpc = reg.get("AWS::EC2::VPC").unwrap();
        let same: Vec<_> = reg.types().filter(|t| t.regions == vpc.regions).collect();
        assert!(same.len() > 100, "{} types in the VPC's regions", same.len());
        assert!(same.iter().all(|t| Arc::ptr_eq(&t.regions, &vpc.regions)));
    }

    #[test]
    fn instance_connect_endpoint_is_complete() {
        let reg = Registry::embedded().unwrap();
        let t = reg.get("AWS::EC2::InstanceConnectEndpoint").unwrap();
        assert_eq!(t.primary_identifier_names(), vec!["Id"]);
        assert_eq!(t.required, vec!["SubnetId"]);
        assert!(t.is_read_only("Id"));
        assert!(t.is_write_only("ClientToken"));
        assert!(t.is_create_only("SubnetId"));
        let props = t.properties();
        assert_eq!(props["PreserveClientIp"]["type"], "boolean");
        // `$ref` to a definition is inlined.
        assert_eq!(props["Tags"]["items"]["properties"]["Key"]["type"], "string");
        assert!(t
            .handler(Operation::Create)
            .unwrap()
            .permissions
            .iter()
            .any(|p| &**p == "ec2:CreateInstanceConnectEndpoint"));
        assert!(t.exists_in("us-east-1"));
        let tagging = t.tagging().expect("the type's tagging object");
        assert_eq!(tagging["taggable"], true);
        assert_eq!(tagging["tagProperty"], "/properties/Tags");
        assert!(reg
            .get("AWS::EC2::VPCGatewayAttachment")
            .unwrap()
            .tagging()
            .is_none_or(|t| t["taggable"] == false));
    }

    #[test]
    fn write_only_properties_are_stripped_at_any_depth() {
        let r = Registry::shared().unwrap();
        let t = r.get("AWS::Events::Connection").unwrap();
        let mut model = serde_json::json!({
            "Name": "c1",
            "AuthParameters": {
                "ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": "sekrit"},
                "BasicAuthParameters": {"Username": "u", "Password": "p"}
            }
        });
        let Value::Object(map) = &mut model else { unreachable!() };
        t.strip_write_only(map);
        assert_eq!(
            model,
            serde_json::json!({
                "Name": "c1",
                "AuthParameters": {
                    "ApiKeyAuthParameters": {"ApiKeyName": "x-api-key"},
                    "BasicAuthParameters": {"Username": "u"}
                }
            })
        );
        let mut again = serde_json::json!({"AuthParameters": {"ApiKeyAuthParameters": {"ApiKeyValue": "sekrit"}}});
        let Value::Object(map) = &mut again else { unreachable!() };
        assert_eq!(t.write_only_values(map), vec!["sekrit".to_string()]);
        assert!(t.holds_write_only("AuthParameters") && !t.holds_write_only("Name"));
        let a = r.get("AWS::AuditManager::Assessment").unwrap();
        let mut model = serde_json::json!({"Scope": {"AwsAccounts": [{"Id": "1", "Name": "n", "EmailAddress": "e"}, {"Id": "2"}]}});
        let Value::Object(map) = &mut model else { unreachable!() };
        a.strip_write_only(map);
        assert_eq!(model, serde_json::json!({"Scope": {"AwsAccounts": [{"Id": "1"}, {"Id": "2"}]}}));
    }

    #[test]
    fn list_handler_schema_names_parents() {
        let reg = Registry::embedded().unwrap();
        let t = reg.get("AWS::EKS::Nodegroup").unwrap();
        let hs = t.list_handler_schema().unwrap();
        assert!(hs.demands_model());
        assert_eq!(hs.required, vec!["ClusterName"]);
    }

    #[test]
    fn recursive_definitions_stay_finite() {
        let reg = Registry::embedded().unwrap();
        let recursive: Vec<_> = reg.types().filter(|t| !t.definitions().is_empty()).collect();
        assert!(!recursive.is_empty());
        for t in recursive {
            assert!(!t.properties().is_empty(), "{}", t.type_name);
        }
    }

    #[test]
    fn malformed_data_names_the_file() {
        let err = Registry::from_gzip(b"not gzip", "bad.json.gz").unwrap_err();
        assert!(err.to_string().contains("bad.json.gz"), "{err}");
        let err = Registry::from_json(b"{\"format\":1}", "x.json").unwrap_err();
        assert!(err.to_string().contains("x.json"), "{err}");
        let err = Registry::from_json(
            br#"{"format":1,"source":"s","regions":[],"types":[{"typeName":"A::B::C","properties":{},"regions":[3]}]}"#,
            "y.json",
        )
        .unwrap_err();
        assert!(err.to_string().contains("region index 3"), "{err}");
        let err = Registry::from_file(Path::new("/nonexistent/schemas.pack")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/schemas.pack"), "{err}");
    }

    #[test]
    fn every_packed_schema_decompresses_and_parses() {
        // A corrupt blob would leave its type without properties (see `SchemaSource::parse`).
        let reg = Registry::embedded().unwrap();
        for t in reg.types() {
            assert!(matches!(t.source, SchemaSource::Packed(_)), "{}", t.type_name);
            assert!(!t.properties().is_empty(), "{} has no properties", t.type_name);
        }
    }

    #[test]
    fn malformed_packs_name_the_file_and_the_fault() {
        fn leaked(bytes: Vec<u8>) -> &'static [u8] {
            Box::leak(bytes.into_boxed_slice())
        }
        let err = Registry::from_pack(b"CPGSCHM1xxxxxxxx", "old.pack").unwrap_err().to_string();
        assert!(err.contains("old.pack") && err.contains("not a schema pack"), "{err}");
        let err = Registry::from_pack(b"CPGSCHM2\x01", "short.pack").unwrap_err().to_string();
        assert!(err.contains("before its index length"), "{err}");
        let mut huge = PACK_MAGIC.to_vec();
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        let err = Registry::from_pack(leaked(huge), "huge.pack").unwrap_err().to_string();
        assert!(err.contains("ends inside its index"), "{err}");
        // An index pointing past the end of the blobs.
        let index = br#"{"format":2,"source":"s","regions":[],"types":[{"typeName":"A::B::C","schemas":[0,99]}]}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, index).unwrap();
        let index = gz.finish().unwrap();
        let mut pack = PACK_MAGIC.to_vec();
        pack.extend_from_slice(&(index.len() as u64).to_le_bytes());
        pack.extend_from_slice(&index);
        pack.extend_from_slice(&[0; 10]);
        let err = Registry::from_pack(leaked(pack), "cut.pack").unwrap_err().to_string();
        assert!(
            err.contains("cut.pack") && err.contains("A::B::C's schemas lie outside the pack"),
            "{err}"
        );
        // Format-1 JSON is not an index, nor the other way round.
        let err = Registry::from_json(br#"{"format":2,"source":"s","regions":[],"types":[]}"#, "v2.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("format version 2 is not supported here (expected 1)"), "{err}");
    }

    #[test]
    fn a_pack_file_loads_like_the_embedded_data() {
        let path = std::env::temp_dir().join(format!("resource-schemas-{}.pack", std::process::id()));
        std::fs::write(&path, EMBEDDED).unwrap();
        let loaded = Registry::from_file(&path);
        std::fs::remove_file(&path).unwrap();
        let loaded = loaded.unwrap();
        let embedded = Registry::embedded().unwrap();
        assert_eq!(loaded.len(), embedded.len());
        let t = loaded.get("AWS::EC2::InstanceConnectEndpoint").unwrap();
        assert_eq!(t.properties(), embedded.get(&t.type_name).unwrap().properties());
    }

    #[test]
    fn pointers() {
        assert_eq!(pointer_top_level("/properties/A/B"), "A");
        assert!(is_top_level("/properties/A"));
        assert!(!is_top_level("/properties/A/B"));
    }
}
