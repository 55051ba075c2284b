//! Table definitions derived from resource schemas: which (schema, table) each Cloud Control
//! type becomes, its columns and PostgreSQL types, and what SQL it supports.
//!
//! Built once at startup from the registry without parsing any property schema; a table's
//! columns are derived on first use, so registering ~3,400 tables costs only their names.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use resource_schemas::{ListHandlerSchema, Operation, Registry, ResourceType};
use serde_json::Value;

use super::lock::{column_key, LockedType, NameLock};
use super::naming::{pluralize, snake_case};

/// The catalog every resource table lives in.
pub const CATALOG: &str = "awscc";
/// Accepted as another spelling of [`CATALOG`] (`aws.connect.instances`).
pub const CATALOG_ALIAS: &str = "aws";
/// Suffix of the tables that read only the list response.
pub const LIST_ONLY_SUFFIX: &str = "_list_only";
/// The column holding the API region of each row.
pub const REGION_COLUMN: &str = "region";
/// The column holding the configured account (its name) of each row.
pub const ACCOUNT_COLUMN: &str = "account";
/// The column holding the Cloud Control identifier (primary identifier values joined by `|`).
pub const IDENTIFIER_COLUMN: &str = "identifier";
/// The older spelling of [`IDENTIFIER_COLUMN`] that StackQL pages use.
pub const IDENTIFIER_ALIAS: &str = "data__identifier";
/// Schemas of the catalog that hold tables but no resources.
pub const SYSTEM_SCHEMAS: &[&str] = &["cloudpg", "cloudcontrol", "pg_catalog", "information_schema", "public"];
/// Suffix a property column gets when its name collides with a column cloudpg adds.
pub const PROPERTY_COLLISION_SUFFIX: &str = "_property";
/// The columns cloudpg adds to every resource table; a property of the same name becomes
/// `<name>_property`.
const RESERVED_COLUMNS: [&str; 4] = [REGION_COLUMN, ACCOUNT_COLUMN, IDENTIFIER_COLUMN, IDENTIFIER_ALIAS];

/// PostgreSQL types resource columns use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgType {
    Text,
    Bigint,
    Double,
    Boolean,
    Json,
    /// A `date-time` string property.
    Timestamptz,
}

impl PgType {
    pub fn sql_name(self) -> &'static str {
        match self {
            PgType::Text => "text",
            PgType::Bigint => "bigint",
            PgType::Double => "double precision",
            PgType::Boolean => "boolean",
            PgType::Json => "jsonb",
            PgType::Timestamptz => "timestamp with time zone",
        }
    }

    /// The column type of a property schema. Nested values, and properties whose type the
    /// schema leaves open (`["object","string"]`, none at all), are kept whole as JSON.
    pub fn of_property(schema: &Value) -> PgType {
        match schema.get("type") {
            Some(Value::String(t)) => match t.as_str() {
                "string" if schema.get("format").and_then(Value::as_str) == Some("date-time") => PgType::Timestamptz,
                "string" => PgType::Text,
                "integer" => PgType::Bigint,
                "number" => PgType::Double,
                "boolean" => PgType::Boolean,
                _ => PgType::Json,
            },
            _ => PgType::Json,
        }
    }
}

/// Where a column's values come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnSource {
    /// A top-level property (its CloudFormation name).
    Property(String),
    /// A list handler parameter that is not a property: only a filter, echoed back in rows.
    ListParam(String),
    Region,
    /// The configured account's name.
    Account,
    Identifier,
    /// `tag_map`: the `Tags` property (a list of `{Key, Value}` or a map) as one JSON object,
    /// `{"env": "staging"}`, so `tag_map->>'env'` works on every table with tags.
    TagMap(String),
    /// `_extra`: what the answer holds that the columns cannot: properties the schema does not
    /// declare, and values of another type than their column's. Maps each declared property
    /// to its column type.
    Extra(std::sync::Arc<BTreeMap<String, PgType>>),
}

#[derive(Debug, Clone)]
pub struct ColumnDef {
    pub name: String,
    pub pg_type: PgType,
    pub description: String,
    pub source: ColumnSource,
}

impl ColumnDef {
    pub fn property(&self) -> Option<&str> {
        match &self.source {
            ColumnSource::Property(p) => Some(p),
            _ => None,
        }
    }
}

/// What a StackQL column spelling reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackqlColumn {
    /// One of our columns under another name.
    Column(String),
    /// A value inside a JSON column (a nested primary identifier).
    Nested { column: String, path: Vec<String> },
}

/// Which of the two tables of a type this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// Every property: a list, then a GetResource per row unless the projection allows less.
    Full,
    /// The primary identifier columns and region: ListResources only.
    ListOnly,
}

/// A parent value a list needs in `ResourceModel`, and the column that supplies it.
#[derive(Debug, Clone)]
pub struct ParentColumn {
    /// The key in `ResourceModel`.
    pub model_key: String,
    pub column: String,
}

/// One SQL table over one Cloud Control type.
#[derive(Debug)]
pub struct TableDef {
    pub schema: String,
    pub name: String,
    pub kind: TableKind,
    pub resource: &'static ResourceType,
    /// The names the lock holds for this type's columns.
    locked: Option<Arc<LockedType>>,
    columns: OnceLock<Vec<ColumnDef>>,
    /// StackQL's spelling of a column → what it reads, where they differ (built on first use).
    stackql_columns: OnceLock<BTreeMap<String, StackqlColumn>>,
    /// The Arrow schema of `columns`, built once (DataFusion asks for it on every lookup).
    pub(super) arrow_schema: OnceLock<datafusion::arrow::datatypes::SchemaRef>,
}

impl TableDef {
    fn new(schema: &str, name: String, kind: TableKind, resource: &'static ResourceType, locked: Option<Arc<LockedType>>) -> TableDef {
        TableDef {
            schema: schema.to_string(),
            name,
            kind,
            resource,
            locked,
            columns: OnceLock::new(),
            stackql_columns: OnceLock::new(),
            arrow_schema: OnceLock::new(),
        }
    }

    pub fn type_name(&self) -> &str {
        &self.resource.type_name
    }

    /// `awscc.ec2.instance_connect_endpoints`
    pub fn qualified_name(&self) -> String {
        format!("{CATALOG}.{}.{}", self.schema, self.name)
    }

    pub fn columns(&self) -> &[ColumnDef] {
        self.columns
            .get_or_init(|| derive_columns(self.resource, self.kind, self.locked.as_deref()))
    }

    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns().iter().find(|c| c.name == name)
    }

    /// What StackQL's spelling of a column reads (`v_pn_gateway_id` is our `vpn_gateway_id`,
    /// `schedule__schedule_id` the `ScheduleId` inside `schedule`). Only spellings that are
    /// not one of our column names: ours win, so `identifier` is always the Cloud Control
    /// identifier, as in StackQL's WHERE clauses.
    pub fn stackql_column(&self, name: &str) -> Option<&StackqlColumn> {
        self.stackql_columns.get_or_init(|| self.derive_stackql_columns()).get(name)
    }

    fn derive_stackql_columns(&self) -> BTreeMap<String, StackqlColumn> {
        let ours: BTreeSet<&str> = self.columns().iter().map(|c| c.name.as_str()).collect();
        let mut out = BTreeMap::new();
        for c in self.columns() {
            if let Some(property) = c.property() {
                out.insert(super::stackql::column_name(property), StackqlColumn::Column(c.name.clone()));
            }
        }
        // StackQL names a nested primary identifier (`/properties/Schedule/ScheduleId`) by
        // its whole path.
        for pointer in &self.resource.primary_identifier {
            let parts: Vec<&str> = pointer.trim_start_matches("/properties/").split('/').collect();
            if let [top, path @ ..] = parts.as_slice() {
                if let (Some(column), false) = (self.column_of_property(top), path.is_empty()) {
                    let nested = StackqlColumn::Nested {
                        column: column.name.clone(),
                        path: path.iter().map(|p| p.to_string()).collect(),
                    };
                    out.insert(super::stackql::nested_column_name(&parts), nested);
                }
            }
        }
        out.retain(|alias, target| !ours.contains(alias.as_str()) && !matches!(target, StackqlColumn::Column(c) if c == alias));
        out
    }

    /// The column of a top-level property.
    pub fn column_of_property(&self, property: &str) -> Option<&ColumnDef> {
        self.columns().iter().find(|c| c.property() == Some(property))
    }

    /// Columns of the primary identifier, in schema order.
    pub fn identifier_columns(&self) -> Vec<&ColumnDef> {
        self.resource
            .primary_identifier_names()
            .into_iter()
            .filter_map(|p| self.column_of_property(p))
            .collect()
    }

    /// SQL operations this table allows, from the type's handlers.
    pub fn supports(&self, op: SqlOperation) -> bool {
        let r = self.resource;
        match (self.kind, op) {
            (TableKind::ListOnly, SqlOperation::Select) => r.supports(Operation::List),
            (TableKind::ListOnly, _) => false,
            (TableKind::Full, SqlOperation::Select) => r.supports(Operation::Read),
            (TableKind::Full, SqlOperation::Insert) => r.supports(Operation::Create),
            (TableKind::Full, SqlOperation::Update) => r.supports(Operation::Update),
            (TableKind::Full, SqlOperation::Delete) => r.supports(Operation::Delete),
        }
    }

    /// Whether a SELECT without an identifier can list this table's type.
    pub fn can_list(&self) -> bool {
        self.resource.supports(Operation::List)
    }

    /// The list handler's parameters, when it has any, and the columns that supply them.
    pub fn parent_columns(&self) -> Vec<ParentColumn> {
        let Some(hs) = self.resource.list_handler_schema() else {
            return Vec::new();
        };
        hs.params
            .iter()
            .filter_map(|p| {
                let column = match &p.property {
                    Some(prop) if self.column_of_property(prop).is_some() => self.column_of_property(prop),
                    _ => self
                        .column_of_property(&p.name)
                        .or_else(|| self.columns().iter().find(|c| c.source == ColumnSource::ListParam(p.name.clone()))),
                }?;
                Some(ParentColumn {
                    model_key: p.name.clone(),
                    column: column.name.clone(),
                })
            })
            .collect()
    }

    pub fn list_handler_schema(&self) -> Option<&ListHandlerSchema> {
        self.resource.list_handler_schema()
    }

    /// Properties an INSERT may set: everything not read-only.
    pub fn insertable_columns(&self) -> Vec<&ColumnDef> {
        self.columns()
            .iter()
            .filter(|c| c.property().is_some_and(|p| !self.resource.is_read_only(p)))
            .collect()
    }
}

/// The statements a table may support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlOperation {
    Select,
    Insert,
    Update,
    Delete,
}

impl SqlOperation {
    pub const ALL: [SqlOperation; 4] = [
        SqlOperation::Select,
        SqlOperation::Insert,
        SqlOperation::Update,
        SqlOperation::Delete,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            SqlOperation::Select => "SELECT",
            SqlOperation::Insert => "INSERT",
            SqlOperation::Update => "UPDATE",
            SqlOperation::Delete => "DELETE",
        }
    }
}

/// The columns a type's full table would have under `locked` names: what a schema override
/// is checked with before it is used.
pub fn columns_of(resource: &ResourceType, locked: Option<&LockedType>) -> Vec<ColumnDef> {
    derive_columns(resource, TableKind::Full, locked)
}

/// Column order: primary identifier properties, required properties, the rest (all by name),
/// then list-only parameters, `region`, `account` and `identifier`.
///
/// Names: a locked one where the lock has the column; otherwise the derived name, made unique
/// against every locked name of the type (a name once given is never given to another).
fn derive_columns(resource: &ResourceType, kind: TableKind, locked: Option<&LockedType>) -> Vec<ColumnDef> {
    let props = resource.properties();
    let primary = resource.primary_identifier_names();
    let mut ordered: Vec<&str> = primary.clone();
    if kind == TableKind::ListOnly {
        // The parent keys a list is filtered by (or fanned out over), so `_list_only` rows say
        // which parent they belong to, as the full table's do.
        for p in resource.list_handler_schema().iter().flat_map(|hs| &hs.params) {
            let property = p.property.as_deref().unwrap_or(&p.name);
            if let Some((name, _)) = props.get_key_value(property) {
                if !ordered.contains(&name.as_str()) {
                    ordered.push(name);
                }
            }
        }
    }
    if kind == TableKind::Full {
        let mut required: Vec<&str> = resource
            .required
            .iter()
            .map(String::as_str)
            .filter(|r| !primary.contains(r))
            .collect();
        required.sort_unstable();
        required.dedup();
        ordered.extend(required);
        let mut rest: Vec<&str> = props.keys().map(String::as_str).filter(|p| !ordered.contains(p)).collect();
        rest.sort_unstable();
        ordered.extend(rest);
    }
    let mut taken: BTreeSet<String> = RESERVED_COLUMNS.iter().map(|s| s.to_string()).collect();
    taken.extend(locked.iter().flat_map(|l| l.columns().values().cloned()));
    let mut name_for = |source: &ColumnSource, derived: &str| -> String {
        match locked.and_then(|l| column_key(source).and_then(|k| l.columns().get(&k))) {
            Some(name) => name.clone(),
            None => unique_name(&mut taken, derived),
        }
    };
    let mut columns = Vec::with_capacity(ordered.len() + 2);
    for prop in ordered {
        let schema = props.get(prop).unwrap_or(&Value::Null);
        let source = ColumnSource::Property(prop.to_string());
        columns.push(ColumnDef {
            name: name_for(&source, &snake_case(prop)),
            pg_type: PgType::of_property(schema),
            description: schema.get("description").and_then(Value::as_str).unwrap_or_default().to_string(),
            source,
        });
    }
    if kind == TableKind::Full && props.contains_key(TAGS_PROPERTY) {
        let source = ColumnSource::TagMap(TAGS_PROPERTY.to_string());
        columns.push(ColumnDef {
            name: name_for(&source, TAG_MAP_COLUMN),
            pg_type: PgType::Json,
            description: "The tags as one JSON object ({\"env\": \"prod\"}), whichever form `tags` has; read-only.".to_string(),
            source,
        });
    }
    if let Some(hs) = resource.list_handler_schema() {
        for p in &hs.params {
            let is_property = p.property.as_deref().is_some_and(|x| props.contains_key(x)) || props.contains_key(&p.name);
            if !is_property {
                let schema = p.schema.clone().unwrap_or(Value::Null);
                let source = ColumnSource::ListParam(p.name.clone());
                columns.push(ColumnDef {
                    name: name_for(&source, &snake_case(&p.name)),
                    pg_type: PgType::Text,
                    description: schema
                        .get("description")
                        .and_then(Value::as_str)
                        .map(|d| format!("{d} (list filter)"))
                        .unwrap_or_else(|| "Parent value the list handler filters on.".to_string()),
                    source,
                });
            }
        }
    }
    columns.push(ColumnDef {
        name: REGION_COLUMN.to_string(),
        pg_type: PgType::Text,
        description: if resource_schemas::geography::is_global_type(&resource.type_name) {
            "AWS region: a global type is read once per account, from its partition's home region (us-east-1 in aws).".to_string()
        } else {
            "AWS region.".to_string()
        },
        source: ColumnSource::Region,
    });
    columns.push(ColumnDef {
        name: ACCOUNT_COLUMN.to_string(),
        pg_type: PgType::Text,
        description: "The account's name in cloudpg's configuration; its 12-digit id is in cloudpg.accounts.".to_string(),
        source: ColumnSource::Account,
    });
    if kind == TableKind::Full {
        let declared: BTreeMap<String, PgType> = props.iter().map(|(k, v)| (k.clone(), PgType::of_property(v))).collect();
        let source = ColumnSource::Extra(std::sync::Arc::new(declared));
        columns.push(ColumnDef {
            name: name_for(&source, EXTRA_COLUMN),
            pg_type: PgType::Json,
            description: "What the answer holds that the columns cannot: properties the schema does not declare, and values of another type than their column's (with a WARNING).".to_string(),
            source,
        });
        columns.push(ColumnDef {
            name: IDENTIFIER_COLUMN.to_string(),
            pg_type: PgType::Text,
            description: "Cloud Control identifier: the primary identifier values joined by '|'.".to_string(),
            source: ColumnSource::Identifier,
        });
    }
    columns
}

/// The column of what the schema does not declare.
pub const EXTRA_COLUMN: &str = "_extra";

/// The property `tag_map` is derived from, and the column's name.
const TAGS_PROPERTY: &str = "Tags";
const TAG_MAP_COLUMN: &str = "tag_map";

/// Tags as one object: `[{"Key": "env", "Value": "prod"}]` and `{"env": "prod"}` both give
/// `{"env": "prod"}`; anything else gives `None`.
pub fn tag_map(tags: &Value) -> Option<Value> {
    match tags {
        Value::Object(map) => Some(Value::Object(map.clone())),
        Value::Array(items) => {
            let mut out = serde_json::Map::new();
            for item in items {
                let key = item.get("Key").and_then(Value::as_str)?;
                out.insert(key.to_string(), item.get("Value").cloned().unwrap_or(Value::Null));
            }
            Some(Value::Object(out))
        }
        _ => None,
    }
}

/// `name`, or `name_property` when cloudpg's own columns use it, or `name_2`… after that.
fn unique_name(taken: &mut BTreeSet<String>, name: &str) -> String {
    let mut candidate = if taken.contains(name) && RESERVED_COLUMNS.contains(&name) {
        format!("{name}{PROPERTY_COLLISION_SUFFIX}")
    } else {
        name.to_string()
    };
    let base = candidate.clone();
    let mut n = 2;
    while taken.contains(&candidate) {
        candidate = format!("{base}_{n}");
        n += 1;
    }
    taken.insert(candidate.clone());
    candidate
}

/// Every table of every supported type, by schema and table name.
#[derive(Debug)]
pub struct Catalog {
    pub registry: &'static Registry,
    schemas: BTreeMap<String, BTreeMap<String, Arc<TableDef>>>,
    by_type: BTreeMap<String, Arc<TableDef>>,
    /// StackQL's spelling of a table → ours, per schema, where they differ.
    stackql_tables: BTreeMap<String, BTreeMap<String, Arc<TableDef>>>,
}

/// StackQL's table names that differ from ours and name no table of ours.
fn stackql_table_aliases(schemas: &BTreeMap<String, BTreeMap<String, Arc<TableDef>>>) -> BTreeMap<String, BTreeMap<String, Arc<TableDef>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Arc<TableDef>>> = BTreeMap::new();
    for (schema, tables) in schemas {
        for table in tables.values() {
            let (_, _, resource_name) = table.resource.name_parts();
            let mut alias = super::stackql::table_name(resource_name);
            if table.kind == TableKind::ListOnly {
                alias.push_str(LIST_ONLY_SUFFIX);
            }
            if alias != table.name && !tables.contains_key(&alias) {
                // Types sort by name, so the AWS type keeps the alias when vendors share a name.
                out.entry(schema.clone()).or_default().entry(alias).or_insert_with(|| table.clone());
            }
        }
    }
    out
}

impl Catalog {
    /// Tables for every type that Cloud Control can provision (it has handlers), under the
    /// process's name lock.
    pub fn build(registry: &'static Registry) -> Catalog {
        Self::build_with(registry, NameLock::effective())
    }

    /// Tables under `lock`: locked types take their locked table names first; the others
    /// derive theirs around them (and around the names of locked types that are gone).
    pub fn build_with(registry: &'static Registry, lock: &NameLock) -> Catalog {
        let mut schemas: BTreeMap<String, BTreeMap<String, Arc<TableDef>>> = BTreeMap::new();
        let mut by_type = BTreeMap::new();
        let mut types: Vec<&'static ResourceType> = registry.types().filter(|t| t.handlers.is_some()).collect();
        // The collision rule depends on order: the type first by name keeps the plain name.
        types.sort_by(|a, b| a.type_name.cmp(&b.type_name));
        let reserved: BTreeSet<(&str, &str)> = lock.types.values().filter_map(|l| l.schema_and_table()).collect();
        let (locked, unlocked): (Vec<_>, Vec<_>) = types.into_iter().partition(|t| {
            lock.get(&t.type_name)
                .and_then(|l| l.schema_and_table())
                .is_some_and(|(schema, _)| schema == t.name_parts().1.to_ascii_lowercase())
        });
        for resource in locked.into_iter().chain(unlocked) {
            let (vendor, service, name) = resource.name_parts();
            let schema = service.to_ascii_lowercase();
            let locked = lock.shared(&resource.type_name);
            let tables = schemas.entry(schema.clone()).or_default();
            let table_name = match locked.as_ref().and_then(|l| l.schema_and_table()).filter(|(s, _)| *s == schema) {
                Some((_, table)) => table.to_string(),
                None => {
                    let base = pluralize(&snake_case(name));
                    let gone = |n: &str| reserved.contains(&(schema.as_str(), n));
                    resolve_table_collision(tables, &base, vendor, name, &gone)
                }
            };
            let full = Arc::new(TableDef::new(
                &schema,
                table_name.clone(),
                TableKind::Full,
                resource,
                locked.clone(),
            ));
            tables.insert(table_name.clone(), full.clone());
            by_type.insert(resource.type_name.clone(), full);
            if resource.supports(Operation::List) {
                let list_name = format!("{table_name}{LIST_ONLY_SUFFIX}");
                tables.insert(
                    list_name.clone(),
                    Arc::new(TableDef::new(&schema, list_name, TableKind::ListOnly, resource, locked)),
                );
            }
        }
        let stackql_tables = stackql_table_aliases(&schemas);
        Catalog {
            registry,
            schemas,
            by_type,
            stackql_tables,
        }
    }

    /// Only the services and tables `[catalog]` exposes. Unknown service names are an error
    /// naming the closest ones, so a typo does not silently hide (or show) a service.
    pub fn restrict(mut self, filter: &crate::config::RawCatalog) -> Result<Catalog, crate::error::Error> {
        let known: Vec<String> = self.schemas.keys().cloned().collect();
        for name in filter.services.iter().chain(&filter.exclude_services) {
            if !known.contains(&name.to_ascii_lowercase()) {
                let close: Vec<&String> = known
                    .iter()
                    .filter(|k| strsim::levenshtein(k, name) <= 1 || strsim::jaro_winkler(k, name) > 0.9)
                    .take(3)
                    .collect();
                return Err(crate::error::Error::Config(format!(
                    "[catalog] names service \"{name}\", which does not exist{}",
                    if close.is_empty() {
                        " (`cloudpg catalog services` lists them)".to_string()
                    } else {
                        format!(
                            "; did you mean {}?",
                            close.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
                        )
                    }
                )));
            }
        }
        let include: Vec<String> = filter.services.iter().map(|s| s.to_ascii_lowercase()).collect();
        let exclude: Vec<String> = filter.exclude_services.iter().map(|s| s.to_ascii_lowercase()).collect();
        self.schemas
            .retain(|schema, _| (include.is_empty() || include.contains(schema)) && !exclude.contains(schema));
        for (schema, tables) in self.schemas.iter_mut() {
            tables.retain(|table, _| !filter.exclude_tables.iter().any(|p| table_matches(p, schema, table)));
        }
        self.schemas.retain(|_, tables| !tables.is_empty());
        let kept: std::collections::HashSet<(String, String)> = self.tables().map(|t| (t.schema.clone(), t.name.clone())).collect();
        self.by_type.retain(|_, t| kept.contains(&(t.schema.clone(), t.name.clone())));
        for aliases in self.stackql_tables.values_mut() {
            aliases.retain(|_, t| kept.contains(&(t.schema.clone(), t.name.clone())));
        }
        Ok(self)
    }

    pub fn schema_names(&self) -> impl Iterator<Item = &str> {
        self.schemas.keys().map(String::as_str)
    }

    pub fn tables_in(&self, schema: &str) -> Option<&BTreeMap<String, Arc<TableDef>>> {
        self.schemas.get(schema)
    }

    pub fn tables(&self) -> impl Iterator<Item = &Arc<TableDef>> {
        self.schemas.values().flat_map(|t| t.values())
    }

    /// The table of that name, or the one StackQL spells so (`appsync.graphql_apis` is
    /// `appsync.graph_ql_apis`). Our names win: a StackQL spelling that is also one of our
    /// table names means our table.
    pub fn table(&self, schema: &str, table: &str) -> Option<&Arc<TableDef>> {
        self.schemas
            .get(schema)
            .and_then(|t| t.get(table))
            .or_else(|| self.stackql_tables.get(schema).and_then(|t| t.get(table)))
    }

    /// The full table of a CloudFormation type.
    pub fn table_for_type(&self, type_name: &str) -> Option<&Arc<TableDef>> {
        self.by_type.get(type_name)
    }

    /// 22023 for a region that does not exist, naming the valid ones.
    pub fn check_region(&self, region: &str) -> Result<(), crate::error::Error> {
        if self.registry.is_region(region) {
            return Ok(());
        }
        Err(crate::error::Error::invalid_parameter(
            format!("region '{region}' does not exist"),
            Some(format!("valid regions are {}", self.registry.regions.join(", "))),
        ))
    }

    /// Looks up `[catalog.]schema.table`; the catalog may be `awscc` or `aws`.
    pub fn resolve(&self, name: &str) -> Option<&Arc<TableDef>> {
        let parts: Vec<&str> = name.split('.').collect();
        match parts.as_slice() {
            [catalog, schema, table] if is_catalog_name(catalog) => self.table(schema, table),
            [schema, table] => self.table(schema, table),
            _ => None,
        }
    }

    /// Up to `n` qualified table names closest to `name` (which may be qualified or not).
    pub fn closest_tables(&self, name: &str, n: usize) -> Vec<String> {
        let wanted = name.to_ascii_lowercase();
        let wanted = wanted
            .strip_prefix("awscc.")
            .or_else(|| wanted.strip_prefix("aws."))
            .unwrap_or(&wanted)
            .to_string();
        let qualified = wanted.contains('.');
        let mut scored: Vec<(f64, String)> = self
            .tables()
            .map(|t| {
                let candidate = if qualified {
                    format!("{}.{}", t.schema, t.name)
                } else {
                    t.name.clone()
                };
                (strsim::jaro_winkler(&wanted, &candidate), t.qualified_name())
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        scored.into_iter().take(n).map(|(_, name)| name).collect()
    }
}

/// Whether `service.table` (each part may hold `*`) names this table.
fn table_matches(pattern: &str, schema: &str, table: &str) -> bool {
    let lower = pattern.to_ascii_lowercase();
    let (s, t) = lower.split_once('.').unwrap_or(("*", lower.as_str()));
    glob(s, schema) && glob(t, table)
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(after) = text.strip_prefix(head) else { return false };
            (0..=after.len())
                .filter(|i| after.is_char_boundary(*i))
                .any(|i| glob(rest, &after[i..]))
        }
    }
}

/// True for `awscc` and its alias `aws`.
pub fn is_catalog_name(name: &str) -> bool {
    name.eq_ignore_ascii_case(CATALOG) || name.eq_ignore_ascii_case(CATALOG_ALIAS)
}

/// The rule for two types whose names give the same table within one schema: the type that
/// comes first by name keeps the plural; a later one from another vendor gets the vendor as
/// suffix (`skills_alexa`), one from the same vendor its singular name, else a number.
/// `locked` names tables the lock keeps for someone else.
fn resolve_table_collision(
    tables: &BTreeMap<String, Arc<TableDef>>,
    base: &str,
    vendor: &str,
    resource_name: &str,
    locked: &dyn Fn(&str) -> bool,
) -> String {
    let free = |n: &str| !tables.contains_key(n) && !tables.contains_key(&format!("{n}{LIST_ONLY_SUFFIX}")) && !locked(n);
    if free(base) && !base.ends_with(LIST_ONLY_SUFFIX) {
        return base.to_string();
    }
    // Taken by a table of another vendor: that vendor's suffix; by one of the same vendor, or
    // kept by the lock for a type that is gone: the singular name.
    let first_vendor = tables.get(base).map(|t| t.resource.name_parts().0);
    let candidates = [
        if first_vendor.is_some_and(|v| v != vendor) {
            format!("{base}_{}", vendor.to_ascii_lowercase())
        } else {
            snake_case(resource_name)
        },
        snake_case(resource_name),
    ];
    for c in candidates {
        if free(&c) && !c.ends_with(LIST_ONLY_SUFFIX) {
            return c;
        }
    }
    (2..)
        .map(|n| format!("{base}_{n}"))
        .find(|c| free(c))
        .unwrap_or_else(|| base.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_maps_from_lists_and_maps() {
        let list = serde_json::json!([{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "data"}]);
        assert_eq!(tag_map(&list), Some(serde_json::json!({"env": "prod", "team": "data"})));
        let map = serde_json::json!({"env": "dev"});
        assert_eq!(tag_map(&map), Some(map.clone()));
        assert_eq!(tag_map(&serde_json::json!("x")), None);
        assert_eq!(tag_map(&serde_json::json!([{"Value": "no key"}])), None);
        let catalog = Catalog::build(resource_schemas::Registry::shared().unwrap());
        let vpcs = catalog.resolve("awscc.ec2.vpcs").unwrap();
        assert!(vpcs.column("tag_map").is_some());
        let list_only = catalog.resolve("awscc.ec2.vpcs_list_only").unwrap();
        assert!(list_only.column("tag_map").is_none());
    }

    fn catalog() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| Catalog::build(Registry::shared().expect("embedded registry")))
    }

    fn synthetic(types_json: &str) -> Catalog {
        let json = format!(r#"{{"format":1,"source":"test","regions":["us-east-1"],"types":{types_json}}}"#);
        let registry = Registry::from_json(json.as_bytes(), "test").expect("synthetic registry");
        Catalog::build(Box::leak(Box::new(registry)))
    }

    fn names(t: &TableDef) -> Vec<&str> {
        t.columns().iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn the_catalog_config_restricts_services_and_tables() {
        let all = || Catalog::build(Registry::shared().expect("embedded registry"));
        let filter = crate::config::RawCatalog {
            services: vec!["ec2".into(), "s3".into()],
            exclude_tables: vec!["ec2.*_list_only".into(), "s3.access_*".into()],
            ..Default::default()
        };
        let c = all().restrict(&filter).unwrap();
        assert_eq!(c.schema_names().collect::<Vec<_>>(), vec!["ec2", "s3"]);
        assert!(c.table("ec2", "vpcs").is_some());
        assert!(c.table("ec2", "vpcs_list_only").is_none());
        assert!(c.table("s3", "buckets_list_only").is_some());
        assert!(c.tables_in("s3").unwrap().keys().all(|t| !t.starts_with("access_")));
        assert!(c.table_for_type("AWS::Lambda::Function").is_none());
        let filter = crate::config::RawCatalog {
            exclude_services: vec!["ec3".into()],
            ..Default::default()
        };
        let err = all().restrict(&filter).unwrap_err().to_string();
        assert!(err.contains("\"ec3\"") && err.contains("\"ec2\""), "{err}");
        assert!(glob("*_list_only", "vpcs_list_only") && !glob("*_list_only", "vpcs") && glob("a*b*c", "abxbc"));
    }

    #[test]
    fn counts_of_tables_match_the_registry() {
        let c = catalog();
        let full = c.tables().filter(|t| t.kind == TableKind::Full).count();
        let list_use1 = c
            .tables()
            .filter(|t| t.kind == TableKind::ListOnly && t.resource.exists_in("us-east-1"))
            .count();
        println!("{full} resource tables, {list_use1} listable in us-east-1");
        assert!(full >= 1700, "{full}");
        assert!(list_use1 >= 1600, "{list_use1}");
    }

    #[test]
    fn every_type_with_handlers_has_exactly_one_table() {
        let c = catalog();
        let with_handlers = c.registry.types().filter(|t| t.handlers.is_some()).count();
        let full: BTreeSet<&str> = c.tables().filter(|t| t.kind == TableKind::Full).map(|t| t.type_name()).collect();
        assert_eq!(full.len(), with_handlers);
        for t in c.tables() {
            let cols = t.columns();
            let unique: BTreeSet<&str> = cols.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(unique.len(), cols.len(), "duplicate column in {}", t.qualified_name());
        }
    }

    #[test]
    fn seed_tables_resolve() {
        let c = catalog();
        let t = c.resolve("awscc.ec2.instance_connect_endpoints").unwrap();
        assert_eq!(t.type_name(), "AWS::EC2::InstanceConnectEndpoint");
        assert_eq!(c.resolve("aws.connect.instances").unwrap().type_name(), "AWS::Connect::Instance");
        let lo = c.resolve("awscc.events.connections_list_only").unwrap();
        assert_eq!(names(lo), vec!["name", "region", "account"]);
        assert_eq!(
            c.resolve("aws.codeconnections.connections").unwrap().type_name(),
            "AWS::CodeConnections::Connection"
        );
    }

    #[test]
    fn column_types_follow_the_schema() {
        let t = catalog().resolve("awscc.ec2.instance_connect_endpoints").unwrap();
        let ty = |n: &str| t.column(n).unwrap().pg_type;
        assert_eq!(ty("preserve_client_ip"), PgType::Boolean);
        assert_eq!(ty("tags"), PgType::Json);
        assert_eq!(ty("security_group_ids"), PgType::Json);
        assert_eq!(ty("subnet_id"), PgType::Text);
        assert_eq!(names(t)[0], "id");
        assert_eq!(*names(t).last().unwrap(), "identifier");
    }

    #[test]
    fn operations_follow_handlers() {
        let c = catalog();
        let t = c.resolve("awscc.ec2.instance_connect_endpoints").unwrap();
        assert!(SqlOperation::ALL.iter().all(|op| t.supports(*op)));
        let lo = c.resolve("awscc.ec2.instance_connect_endpoints_list_only").unwrap();
        assert!(lo.supports(SqlOperation::Select) && !lo.supports(SqlOperation::Insert));
        let immutable = c
            .tables()
            .find(|t| t.kind == TableKind::Full && !t.resource.supports(Operation::Update))
            .unwrap();
        assert!(!immutable.supports(SqlOperation::Update));
        let nodegroups = c.resolve("awscc.eks.nodegroups").unwrap();
        let parents = nodegroups.parent_columns();
        assert_eq!(parents.len(), 1);
        assert_eq!(parents[0].model_key, "ClusterName");
        assert_eq!(parents[0].column, "cluster_name");
    }

    #[test]
    fn property_named_region_account_or_identifier_is_renamed() {
        let c = synthetic(
            r#"[{"typeName":"AWS::Foo::Bar","properties":{"Region":{"type":"string"},"Identifier":{"type":"integer"},"Id":{"type":"string"},"Account":{"type":"string"}},
                "primaryIdentifier":["/properties/Id"],"handlers":{"read":{"permissions":[]}},"regions":[0]}]"#,
        );
        let t = c.resolve("awscc.foo.bars").unwrap();
        assert_eq!(
            names(t),
            vec![
                "id",
                "account_property",
                "identifier_property",
                "region_property",
                "region",
                "account",
                "_extra",
                "identifier"
            ]
        );
        assert_eq!(t.column("identifier_property").unwrap().pg_type, PgType::Bigint);
    }

    #[test]
    fn colliding_table_names_are_resolved() {
        let c = synthetic(
            r#"[{"typeName":"AWS::Foo::Policy","properties":{},"handlers":{"read":{}},"regions":[0]},
                {"typeName":"AWS::Foo::Policies","properties":{},"handlers":{"read":{}},"regions":[0]},
                {"typeName":"Other::Foo::Policy","properties":{},"handlers":{"read":{}},"regions":[0]},
                {"typeName":"AWS::Foo::NoHandlers","properties":{},"regions":[0]},
                {"typeName":"AWS::Foo::Key","properties":{"KeyId":{"type":"string"},"Key_Id":{"type":"string"}},"handlers":{"read":{},"list":{}},"regions":[0]}]"#,
        );
        let tables: Vec<&str> = c.tables_in("foo").unwrap().keys().map(String::as_str).collect();
        assert_eq!(tables, vec!["keys", "keys_list_only", "policies", "policies_other", "policy"]);
        assert_eq!(c.resolve("foo.policies").unwrap().type_name(), "AWS::Foo::Policies");
        assert_eq!(c.resolve("foo.policy").unwrap().type_name(), "AWS::Foo::Policy");
        let keys = c.resolve("foo.keys").unwrap();
        assert_eq!(names(keys), vec!["key_id", "key_id_2", "region", "account", "_extra", "identifier"]);
    }

    #[test]
    fn locked_names_stay_when_types_and_properties_are_added() {
        let json = r#"{"format":1,"source":"test","regions":["us-east-1"],"types":[
            {"typeName":"AAA::Foo::Key","properties":{"Id":{"type":"string"}},"primaryIdentifier":["/properties/Id"],"handlers":{"read":{}},"regions":[0]},
            {"typeName":"AWS::Foo::Key","properties":{"KEYId":{"type":"integer"},"KeyId":{"type":"string"},"Gone":{"type":"string"}},"primaryIdentifier":["/properties/KeyId"],"handlers":{"read":{}},"regions":[0]},
            {"typeName":"AWS::Foo::Thing","properties":{"Id":{"type":"string"}},"primaryIdentifier":["/properties/Id"],"handlers":{"read":{}},"regions":[0]}]}"#;
        let registry: &'static Registry = Box::leak(Box::new(Registry::from_json(json.as_bytes(), "test").unwrap()));
        // Unlocked, the type and property that sort first take the plain names.
        let free = Catalog::build_with(registry, &NameLock::default());
        assert_eq!(free.resolve("foo.keys").unwrap().type_name(), "AAA::Foo::Key");
        let lock = NameLock::from_json(
            br#"{"format":1,"types":{
                "AWS::Foo::Key":{"table":"foo.keys","columns":{"KeyId":"key_id","Gone":"gone_column"}},
                "AWS::Foo::Removed":{"table":"foo.things","columns":{}}}}"#,
        )
        .unwrap();
        let c = Catalog::build_with(registry, &lock);
        assert_eq!(c.resolve("foo.keys").unwrap().type_name(), "AWS::Foo::Key");
        assert_eq!(c.resolve("foo.keys_aaa").unwrap().type_name(), "AAA::Foo::Key");
        // A name locked by a type that is gone is not handed to another.
        assert_eq!(c.table_for_type("AWS::Foo::Thing").unwrap().name, "thing");
        let keys = c.resolve("foo.keys").unwrap();
        assert_eq!(keys.column_of_property("KeyId").unwrap().name, "key_id");
        assert_eq!(keys.column_of_property("KEYId").unwrap().name, "key_id_2");
        assert_eq!(keys.column_of_property("Gone").unwrap().name, "gone_column");
    }

    #[test]
    fn tables_share_their_types_lock_entry() {
        let lock = NameLock::effective();
        let c = Catalog::build_with(Registry::shared().unwrap(), lock);
        let entry = lock.shared("AWS::SQS::Queue").unwrap();
        for name in ["sqs.queues", "sqs.queues_list_only"] {
            let table = c.resolve(name).unwrap();
            assert!(
                Arc::ptr_eq(table.locked.as_ref().unwrap(), &entry),
                "{name} copied the lock's names"
            );
        }
    }

    #[test]
    fn closest_names_for_typos() {
        let c = catalog();
        let close = c.closest_tables("awscc.ec2.instance_connect_endpoint", 3);
        assert_eq!(close[0], "awscc.ec2.instance_connect_endpoints");
        let close = c.closest_tables("s3.bukets", 3);
        assert!(close.contains(&"awscc.s3.buckets".to_string()), "{close:?}");
    }
}
