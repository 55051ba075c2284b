//! `pg_catalog` as clients read it: the pg_catalog crate's schema, with the relations that
//! describe cloudpg's tables replaced by ours. `pg_namespace`, `pg_class`, `pg_attribute`,
//! `pg_index`, `pg_constraint`, `pg_description` and `pg_tables` hold PostgreSQL's own
//! catalog rows (from the crate's snapshot) followed by one row per service, table, column,
//! primary key and comment of [`Relations`]; `pg_settings` is the session's.
//!
//! `int2vector` columns (`pg_index.indkey`) and `int2[]` ones (`pg_constraint.conkey`) are
//! lists, so `unnest`, subscripts and `_pg_expandarray` work on them.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};
use datafusion::datasource::{MemTable, TableType};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_pg_catalog::pg_catalog::{ArrowTable, PgCatalogStaticTables};

use datafusion_pg_catalog::pg_catalog::oid_field::{kind, oid_field};

use super::builtin::{Builtin, NAMESPACES};
use super::relations::{LazyRelations, Relation, Relations, PG_CATALOG_NAMESPACE, PG_CLASS_OID, PG_NAMESPACE_OID};
use super::rows::{boolean, int16, int32, list, list_type, parse_vectors, text, LazyTables, Rows, Tables};
use super::session::SessionView;

/// The owner PostgreSQL's bootstrap superuser has; every relation here belongs to it.
const OWNER_OID: i32 = 10;
/// `pg_am` btree.
const BTREE_OID: i32 = 403;
/// `pg_collation` "default".
const DEFAULT_COLLATION: i32 = 100;
/// `text_ops`, the operator class of a text index key.
const TEXT_OPS: i32 = 3126;
/// The owner's name, as `pg_tables.tableowner` and `pg_roles` show it.
pub const OWNER_NAME: &str = "cloudpg";

/// PostgreSQL's catalog snapshot, parsed once per process.
pub fn static_tables() -> DfResult<Arc<PgCatalogStaticTables>> {
    static TABLES: OnceLock<Result<Arc<PgCatalogStaticTables>, String>> = OnceLock::new();
    TABLES
        .get_or_init(|| {
            PgCatalogStaticTables::try_new()
                .and_then(without_rewrite_rules)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(DataFusionError::Internal)
}

/// The snapshot with `pg_rewrite` emptied. Its rows are the rules behind PostgreSQL's own
/// system views, 3 MB decoded, and no query reads them here: the syntax rewrites answer
/// `pg_rewrite` as empty ([`super::syntax::EMPTY_CATALOGS`]), because cloudpg's views have no
/// rules and PostgreSQL's views are not its relations.
fn without_rewrite_rules(mut tables: PgCatalogStaticTables) -> DfResult<PgCatalogStaticTables> {
    let mut ipc = Vec::new();
    let mut writer = datafusion::arrow::ipc::writer::FileWriter::try_new(&mut ipc, &tables.pg_rewrite.schema())?;
    writer.finish()?;
    drop(writer);
    tables.pg_rewrite = Arc::new(ArrowTable::from_ipc_data(ipc)?);
    Ok(tables)
}

/// Live, not built once: the server's connections.
const STAT_ACTIVITY: &str = "pg_stat_activity";

/// The tables this module answers instead of the pg_catalog crate.
const OVERRIDDEN: &[&str] = &[
    "pg_namespace",
    "pg_class",
    "pg_attribute",
    "pg_index",
    "pg_constraint",
    "pg_description",
    "pg_tables",
    "pg_settings",
    "pg_policy",
    "pg_statistic_ext",
    "pg_proc",
    "pg_type",
    "pg_trigger",
    "pg_extension",
];

/// Array columns (`oid[]`, `int2vector`, `aclitem[]`…), by table, with their element type.
/// The snapshot holds them as text; they are lists here so `ANY`, `unnest`, subscripts and
/// `array_to_string` work on them.
const ARRAYS: &[(&str, &[(&str, Elem)])] = &[
    ("pg_class", &[("relacl", Elem::Text), ("reloptions", Elem::Text)]),
    ("pg_namespace", &[("nspacl", Elem::Text)]),
    (
        "pg_attribute",
        &[("attacl", Elem::Text), ("attoptions", Elem::Text), ("attfdwoptions", Elem::Text)],
    ),
    (
        "pg_index",
        &[
            ("indkey", Elem::Int2),
            ("indcollation", Elem::Oid),
            ("indclass", Elem::Oid),
            ("indoption", Elem::Int2),
        ],
    ),
    (
        "pg_constraint",
        &[
            ("conkey", Elem::Int2),
            ("confkey", Elem::Int2),
            ("conpfeqop", Elem::Oid),
            ("conppeqop", Elem::Oid),
            ("conffeqop", Elem::Oid),
            ("conexclop", Elem::Oid),
        ],
    ),
    ("pg_policy", &[("polroles", Elem::Oid)]),
    ("pg_statistic_ext", &[("stxkeys", Elem::Int2), ("stxkind", Elem::Text)]),
    (
        "pg_proc",
        &[
            ("proargtypes", Elem::Oid),
            ("proallargtypes", Elem::Oid),
            ("proargmodes", Elem::Text),
            ("proargnames", Elem::Text),
            ("proconfig", Elem::Text),
            ("proacl", Elem::Text),
        ],
    ),
    ("pg_type", &[("typacl", Elem::Text)]),
    ("pg_trigger", &[("tgattr", Elem::Int2)]),
    ("pg_extension", &[("extconfig", Elem::Oid), ("extcondition", Elem::Text)]),
];

#[derive(Debug, Clone, Copy)]
enum Elem {
    Int2,
    Oid,
    Text,
}

impl Elem {
    fn data_type(self) -> DataType {
        match self {
            Elem::Int2 => DataType::Int16,
            Elem::Oid => DataType::Int32,
            Elem::Text => DataType::Utf8,
        }
    }
}

/// The array columns of a table.
fn arrays_of(table: &str) -> &'static [(&'static str, Elem)] {
    ARRAYS.iter().find(|(t, _)| *t == table).map_or(&[], |(_, cols)| cols)
}

/// `pg_catalog`, with [`OVERRIDDEN`] tables built from [`Relations`] on first use.
pub struct PgCatalogSchema {
    inner: Arc<dyn SchemaProvider>,
    relations: Arc<LazyRelations>,
    built: LazyTables,
    activity: Arc<crate::sql::activity::Activity>,
}

impl PgCatalogSchema {
    pub fn new(
        inner: Arc<dyn SchemaProvider>,
        relations: Arc<LazyRelations>,
        activity: Arc<crate::sql::activity::Activity>,
    ) -> PgCatalogSchema {
        PgCatalogSchema {
            inner,
            relations,
            built: LazyTables::default(),
            activity,
        }
    }

    fn ours(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let built = self.built.get("pg_catalog", || build(&self.relations))?;
        Ok(built.get(name).cloned())
    }
}

impl std::fmt::Debug for PgCatalogSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgCatalogSchema")
    }
}

#[async_trait]
impl SchemaProvider for PgCatalogSchema {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let lower = name.to_ascii_lowercase();
        if OVERRIDDEN.contains(&lower.as_str()) {
            return self.ours(&lower);
        }
        if lower == STAT_ACTIVITY {
            return Ok(Some(Arc::new(super::stat_activity::stat_activity(self.activity.clone()))));
        }
        self.inner.table(name).await
    }

    fn table_exist(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case(STAT_ACTIVITY) || self.inner.table_exist(name)
    }
}

fn build(relations: &Relations) -> DfResult<Tables> {
    let statics = static_tables()?;
    let builtin = Builtin::get();
    let mut out = Tables::new();
    let mut put = |name: &'static str, batch: RecordBatch| -> DfResult<()> {
        out.insert(name, Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?));
        Ok(())
    };
    put("pg_namespace", pg_namespace(relations)?)?;
    put("pg_class", pg_class(&builtin, relations)?)?;
    put("pg_attribute", pg_attribute(&builtin, relations)?)?;
    put("pg_index", pg_index(&statics.pg_index, relations)?)?;
    put("pg_constraint", pg_constraint(&statics.pg_constraint, relations)?)?;
    put("pg_description", pg_description(&statics.pg_description, relations)?)?;
    put("pg_tables", pg_tables(&builtin, relations)?)?;
    for (name, table) in [
        ("pg_policy", &statics.pg_policy),
        ("pg_statistic_ext", &statics.pg_statistic_ext),
        ("pg_proc", &statics.pg_proc),
        ("pg_type", &statics.pg_type),
        ("pg_trigger", &statics.pg_trigger),
        ("pg_extension", &statics.pg_extension),
    ] {
        let schema = with_arrays(&table.schema(), name);
        let batches = snapshot_with_arrays(table, &schema, name)?;
        out.insert(name, Arc::new(MemTable::try_new(schema, vec![batches])?));
    }
    out.insert("pg_settings", Arc::new(PgSettings { only_cloudpg: false }));
    Ok(out)
}

/// The snapshot's rows, then ours, in one batch of the snapshot's schema.
fn with_snapshot(snapshot: &ArrowTable, ours: RecordBatch) -> DfResult<RecordBatch> {
    let mut batches: Vec<RecordBatch> = snapshot.data().to_vec();
    batches.push(ours);
    Ok(datafusion::arrow::compute::concat_batches(&snapshot.schema(), &batches)?)
}

fn oid_column(name: &str) -> Field {
    oid_field(name, kind::OID, false)
}

fn columns(table: &str, fields: Vec<Field>) -> SchemaRef {
    with_arrays(&Schema::new(fields), table)
}

fn pg_namespace_schema() -> SchemaRef {
    columns(
        "pg_namespace",
        vec![
            oid_column("oid"),
            Field::new("nspname", DataType::Utf8, false),
            oid_column("nspowner"),
            Field::new("nspacl", DataType::Utf8, true),
        ],
    )
}

fn pg_class_schema() -> SchemaRef {
    use DataType::{Boolean, Float32, Int16, Int32, Utf8};
    let f = |n: &str, t: DataType| Field::new(n, t, false);
    columns(
        "pg_class",
        vec![
            oid_column("oid"),
            f("relname", Utf8),
            oid_field("relnamespace", kind::REGNAMESPACE, false),
            oid_field("reltype", kind::REGTYPE, false),
            oid_field("reloftype", kind::REGTYPE, false),
            oid_column("relowner"),
            oid_column("relam"),
            oid_column("relfilenode"),
            oid_column("reltablespace"),
            f("relpages", Int32),
            f("reltuples", Float32),
            f("relallvisible", Int32),
            oid_field("reltoastrelid", kind::REGCLASS, false),
            f("relhasindex", Boolean),
            f("relisshared", Boolean),
            f("relpersistence", Utf8),
            f("relkind", Utf8),
            f("relnatts", Int16),
            f("relchecks", Int16),
            f("relhasrules", Boolean),
            f("relhastriggers", Boolean),
            f("relhassubclass", Boolean),
            f("relrowsecurity", Boolean),
            f("relforcerowsecurity", Boolean),
            f("relispopulated", Boolean),
            f("relreplident", Utf8),
            f("relispartition", Boolean),
            oid_field("relrewrite", kind::REGCLASS, false),
            f("relfrozenxid", Utf8),
            f("relminmxid", Utf8),
            Field::new("relacl", Utf8, true),
            Field::new("reloptions", Utf8, true),
            Field::new("relpartbound", Utf8, true),
        ],
    )
}

fn pg_attribute_schema() -> SchemaRef {
    use DataType::{Boolean, Int16, Int32, Utf8};
    let f = |n: &str, t: DataType| Field::new(n, t, false);
    columns(
        "pg_attribute",
        vec![
            oid_field("attrelid", kind::REGCLASS, false),
            f("attname", Utf8),
            oid_field("atttypid", kind::REGTYPE, false),
            f("attlen", Int16),
            f("attnum", Int16),
            f("attcacheoff", Int32),
            f("atttypmod", Int32),
            f("attndims", Int16),
            f("attbyval", Boolean),
            f("attalign", Utf8),
            f("attstorage", Utf8),
            f("attcompression", Utf8),
            f("attnotnull", Boolean),
            f("atthasdef", Boolean),
            f("atthasmissing", Boolean),
            f("attidentity", Utf8),
            f("attgenerated", Utf8),
            f("attisdropped", Boolean),
            f("attislocal", Boolean),
            f("attinhcount", Int16),
            oid_column("attcollation"),
            Field::new("attstattarget", Int16, true),
            Field::new("attacl", Utf8, true),
            Field::new("attoptions", Utf8, true),
            Field::new("attfdwoptions", Utf8, true),
            Field::new("attmissingval", Utf8, true),
        ],
    )
}

fn pg_namespace(relations: &Relations) -> DfResult<RecordBatch> {
    let mut rows = Rows::new(pg_namespace_schema());
    for (oid, name) in NAMESPACES {
        rows.push(&[("oid", int32(*oid)), ("nspname", text(*name)), ("nspowner", int32(OWNER_OID))])?;
    }
    for ns in &relations.namespaces {
        rows.push(&[("oid", int32(ns.oid)), ("nspname", text(&ns.name)), ("nspowner", int32(OWNER_OID))])?;
    }
    rows.finish()
}

/// The columns every `pg_class` row sets.
fn class_row(oid: i32, name: &str, namespace: i32, kind: &str, am: i32, natts: usize) -> Vec<(&'static str, ScalarValue)> {
    vec![
        ("oid", int32(oid)),
        ("relname", text(name)),
        ("relnamespace", int32(namespace)),
        ("relowner", int32(OWNER_OID)),
        ("relam", int32(am)),
        ("reltuples", ScalarValue::Float64(Some(-1.0))),
        ("relpersistence", text("p")),
        ("relkind", text(kind)),
        ("relnatts", int16(natts as i16)),
        ("relispopulated", boolean(true)),
        ("relreplident", text(if kind == "r" { "d" } else { "n" })),
        ("relfrozenxid", text("0")),
        ("relminmxid", text("0")),
    ]
}

fn pg_class(builtin: &Builtin, relations: &Relations) -> DfResult<RecordBatch> {
    let mut rows = Rows::new(pg_class_schema());
    for r in &builtin.relations {
        let mut row = class_row(r.oid, &r.name, r.namespace, &r.kind, 0, r.columns.len());
        let acl = [
            text(format!("{OWNER_NAME}=arwdDxtm/{OWNER_NAME}")),
            text(format!("=r/{OWNER_NAME}")),
        ];
        row.push(("relacl", list(&acl, &DataType::Utf8)));
        rows.push(&row)?;
    }
    for r in &relations.relations {
        let mut table = class_row(r.oid, &r.name, r.namespace, "r", 0, r.columns.len());
        table.push(("relhasindex", boolean(r.primary_key.is_some())));
        rows.push(&table)?;
        if let Some(pk) = &r.primary_key {
            rows.push(&class_row(pk.index_oid, &pk.name, r.namespace, "i", BTREE_OID, pk.attnums.len()))?;
        }
    }
    rows.finish()
}

fn attribute_row(relid: i32, attnum: i16, column: &super::relations::Attribute) -> Vec<(&'static str, ScalarValue)> {
    let t = column.pg_type;
    let fixed = t.len > 0;
    vec![
        ("attrelid", int32(relid)),
        ("attname", text(&column.name)),
        ("atttypid", int32(t.oid)),
        ("attlen", int16(t.len)),
        ("attnum", int16(attnum)),
        ("attcacheoff", int32(-1)),
        ("atttypmod", int32(-1)),
        ("attbyval", boolean(fixed)),
        (
            "attalign",
            text(match t.len {
                8 => "d",
                1 => "c",
                2 => "s",
                _ => "i",
            }),
        ),
        ("attstorage", text(if fixed { "p" } else { "x" })),
        ("attnotnull", boolean(column.not_null)),
        ("attislocal", boolean(true)),
        (
            "attcollation",
            int32(if t.oid == super::relations::TEXT.oid {
                DEFAULT_COLLATION
            } else {
                0
            }),
        ),
        ("attstattarget", int16(-1)),
    ]
}

fn pg_attribute(builtin: &Builtin, relations: &Relations) -> DfResult<RecordBatch> {
    let mut rows = Rows::new(pg_attribute_schema());
    for r in &builtin.relations {
        for c in &r.columns {
            let Some(t) = builtin.type_by_oid(c.type_oid) else { continue };
            rows.push(&[
                ("attrelid", int32(r.oid)),
                ("attname", text(&c.name)),
                ("atttypid", int32(c.type_oid)),
                ("attlen", int16(t.len)),
                ("attnum", int16(c.attnum)),
                ("attcacheoff", int32(-1)),
                ("atttypmod", int32(-1)),
                ("attbyval", boolean(t.len > 0 && t.len <= 8)),
                ("attalign", text("i")),
                ("attstorage", text(if t.len > 0 { "p" } else { "x" })),
                ("attnotnull", boolean(c.not_null)),
                ("attislocal", boolean(true)),
                ("attcollation", int32(t.collation)),
            ])?;
        }
    }
    for r in &relations.relations {
        for (i, c) in r.columns.iter().enumerate() {
            rows.push(&attribute_row(r.oid, i as i16 + 1, c))?;
        }
        // An index has attributes of its own: its key columns, numbered from 1.
        if let Some(pk) = &r.primary_key {
            for (i, n) in pk.attnums.iter().enumerate() {
                if let Some(c) = column(r, *n) {
                    rows.push(&attribute_row(pk.index_oid, i as i16 + 1, c))?;
                }
            }
        }
    }
    rows.finish()
}

fn column(r: &Relation, attnum: i16) -> Option<&super::relations::Attribute> {
    r.columns.get(usize::try_from(attnum).ok()?.checked_sub(1)?)
}

/// A schema with the table's [`ARRAYS`] columns as lists, and its `"char"` columns marked
/// so the wire reports them as `"char"` (a one-byte type clients decode as such).
fn with_arrays(schema: &Schema, table: &str) -> SchemaRef {
    let arrays = arrays_of(table);
    let chars = char_columns(table);
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| match arrays.iter().find(|(n, _)| n == f.name()) {
                Some((_, elem)) => Arc::new(Field::new(f.name(), list_type(elem.data_type()), true)),
                None if f.data_type() == &DataType::Utf8 && chars.contains(f.name()) => {
                    let mut metadata = f.metadata().clone();
                    metadata.insert(arrow_pg::datatypes::PG_CHAR_KEY.to_string(), "true".to_string());
                    Arc::new(f.as_ref().clone().with_metadata(metadata))
                }
                None => f.clone(),
            })
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

/// The columns of a pg_catalog table whose PostgreSQL type is `"char"`.
fn char_columns(table: &str) -> Vec<String> {
    const CHAR_OID: i32 = 18;
    Builtin::get()
        .relations
        .iter()
        .find(|r| r.name == table && r.namespace == PG_CATALOG_NAMESPACE)
        .map(|r| {
            r.columns
                .iter()
                .filter(|c| c.type_oid == CHAR_OID)
                .map(|c| c.name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The snapshot's batches with the table's array columns parsed into lists.
fn snapshot_with_arrays(snapshot: &ArrowTable, schema: &SchemaRef, table: &str) -> DfResult<Vec<RecordBatch>> {
    let arrays = arrays_of(table);
    snapshot
        .data()
        .iter()
        .map(|b| {
            let columns: Vec<ArrayRef> = b
                .schema()
                .fields()
                .iter()
                .zip(b.columns())
                .map(|(f, c)| match arrays.iter().find(|(n, _)| n == f.name()) {
                    Some((_, elem)) => parse_vectors(c.as_ref(), &elem.data_type()),
                    None => Ok(c.clone()),
                })
                .collect::<DfResult<_>>()?;
            Ok(RecordBatch::try_new(schema.clone(), columns)?)
        })
        .collect()
}

fn concat(schema: &SchemaRef, mut batches: Vec<RecordBatch>, ours: RecordBatch) -> DfResult<RecordBatch> {
    batches.push(ours);
    Ok(datafusion::arrow::compute::concat_batches(schema, &batches)?)
}

fn pg_index(snapshot: &ArrowTable, relations: &Relations) -> DfResult<RecordBatch> {
    let schema = with_arrays(&snapshot.schema(), "pg_index");
    let theirs = snapshot_with_arrays(snapshot, &schema, "pg_index")?;
    let mut rows = Rows::new(schema.clone());
    for r in &relations.relations {
        let Some(pk) = &r.primary_key else { continue };
        let n = pk.attnums.len();
        let keys: Vec<ScalarValue> = pk.attnums.iter().map(|a| int16(*a)).collect();
        rows.push(&[
            ("indexrelid", int32(pk.index_oid)),
            ("indrelid", int32(r.oid)),
            ("indnatts", int16(n as i16)),
            ("indnkeyatts", int16(n as i16)),
            ("indisunique", boolean(true)),
            ("indisprimary", boolean(true)),
            ("indimmediate", boolean(true)),
            ("indisvalid", boolean(true)),
            ("indisready", boolean(true)),
            ("indislive", boolean(true)),
            ("indkey", list(&keys, &DataType::Int16)),
            ("indcollation", list(&vec![int32(DEFAULT_COLLATION); n], &DataType::Int32)),
            ("indclass", list(&vec![int32(TEXT_OPS); n], &DataType::Int32)),
            ("indoption", list(&vec![int16(0); n], &DataType::Int16)),
        ])?;
    }
    concat(&schema, theirs, rows.finish()?)
}

fn pg_constraint(snapshot: &ArrowTable, relations: &Relations) -> DfResult<RecordBatch> {
    let schema = with_arrays(&snapshot.schema(), "pg_constraint");
    let theirs = snapshot_with_arrays(snapshot, &schema, "pg_constraint")?;
    let mut rows = Rows::new(schema.clone());
    for r in &relations.relations {
        let Some(pk) = &r.primary_key else { continue };
        rows.push(&[
            ("oid", int32(pk.constraint_oid)),
            ("conname", text(&pk.name)),
            ("connamespace", int32(r.namespace)),
            ("contype", text("p")),
            ("convalidated", boolean(true)),
            ("conrelid", int32(r.oid)),
            ("conindid", int32(pk.index_oid)),
            ("confupdtype", text(" ")),
            ("confdeltype", text(" ")),
            ("confmatchtype", text(" ")),
            ("conislocal", boolean(true)),
            ("connoinherit", boolean(true)),
            (
                "conkey",
                list(&pk.attnums.iter().map(|a| int16(*a)).collect::<Vec<_>>(), &DataType::Int16),
            ),
        ])?;
    }
    concat(&schema, theirs, rows.finish()?)
}

fn pg_description(snapshot: &ArrowTable, relations: &Relations) -> DfResult<RecordBatch> {
    let mut rows = Rows::new(snapshot.schema());
    let mut add = |objoid: i32, classoid: i32, subid: i32, comment: &Option<String>| match comment {
        Some(c) => rows.push(&[
            ("objoid", int32(objoid)),
            ("classoid", int32(classoid)),
            ("objsubid", int32(subid)),
            ("description", text(c)),
        ]),
        None => Ok(()),
    };
    for ns in &relations.namespaces {
        add(ns.oid, PG_NAMESPACE_OID, 0, &ns.comment)?;
    }
    for r in &relations.relations {
        add(r.oid, PG_CLASS_OID, 0, &r.comment)?;
        for (i, c) in r.columns.iter().enumerate() {
            add(r.oid, PG_CLASS_OID, i as i32 + 1, &c.comment)?;
        }
    }
    with_snapshot(snapshot, rows.finish()?)
}

fn pg_tables_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("schemaname", DataType::Utf8, false),
        Field::new("tablename", DataType::Utf8, false),
        Field::new("tableowner", DataType::Utf8, false),
        Field::new("tablespace", DataType::Utf8, true),
        Field::new("hasindexes", DataType::Boolean, false),
        Field::new("hasrules", DataType::Boolean, false),
        Field::new("hastriggers", DataType::Boolean, false),
        Field::new("rowsecurity", DataType::Boolean, false),
    ]))
}

/// `pg_tables`: PostgreSQL's own catalog tables and ours.
fn pg_tables(builtin: &Builtin, relations: &Relations) -> DfResult<RecordBatch> {
    let mut rows = Rows::new(pg_tables_schema());
    for r in builtin.relations.iter().filter(|r| r.kind == "r") {
        let schema = NAMESPACES
            .iter()
            .find(|(oid, _)| *oid == r.namespace)
            .map_or("pg_catalog", |(_, n)| n);
        rows.push(&[
            ("schemaname", text(schema)),
            ("tablename", text(&r.name)),
            ("tableowner", text(OWNER_NAME)),
            ("hasindexes", boolean(true)),
        ])?;
    }
    for r in &relations.relations {
        rows.push(&[
            ("schemaname", text(&r.schema)),
            ("tablename", text(&r.name)),
            ("tableowner", text(OWNER_NAME)),
            ("hasindexes", boolean(r.primary_key.is_some())),
        ])?;
    }
    rows.finish()
}

/// `pg_settings` (the session's parameters as `SHOW ALL` has them), or with `only_cloudpg` the `cloudpg.settings` view of cloudpg's own
/// parameters, as the session running the query has them.
#[derive(Debug)]
pub struct PgSettings {
    pub only_cloudpg: bool,
}

#[async_trait]
impl TableProvider for PgSettings {
    fn schema(&self) -> SchemaRef {
        super::parameters::pg_settings_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let view = state.config().get_extension::<SessionView>();
        let mut batch = super::parameters::pg_settings(view.as_deref())?;
        if self.only_cloudpg {
            let names = batch
                .column_by_name("name")
                .and_then(|c| c.as_string_opt::<i32>().cloned())
                .ok_or_else(|| DataFusionError::Internal("pg_settings has no name column".into()))?;
            let keep: datafusion::arrow::array::BooleanArray =
                names.iter().map(|n| Some(n.is_some_and(|n| n.starts_with("cloudpg.")))).collect();
            batch = datafusion::arrow::compute::filter_record_batch(&batch, &keep)?;
        }
        let table = MemTable::try_new(self.schema(), vec![vec![batch]])?;
        table.scan(state, projection, &[], None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogs_rewrites_treat_as_empty_are_empty() {
        let statics = static_tables().unwrap();
        for name in super::super::syntax::EMPTY_CATALOGS {
            let table = match *name {
                "pg_policy" => &statics.pg_policy,
                "pg_statistic_ext" => &statics.pg_statistic_ext,
                "pg_trigger" => &statics.pg_trigger,
                "pg_inherits" => &statics.pg_inherits,
                "pg_rewrite" => &statics.pg_rewrite,
                "pg_publication" => &statics.pg_publication,
                "pg_publication_rel" => &statics.pg_publication_rel,
                "pg_publication_namespace" => &statics.pg_publication_namespace,
                "pg_sequence" => &statics.pg_sequence,
                "pg_attrdef" => &statics.pg_attrdef,
                other => panic!("{other} is not checked"),
            };
            let rows: usize = table.data().iter().map(|b| b.num_rows()).sum();
            assert_eq!(rows, 0, "{name} has rows");
        }
    }
}
