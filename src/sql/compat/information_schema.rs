//! `information_schema` as the SQL standard and PostgreSQL define it, for the clients that
//! browse with it (Grafana, Metabase, many ORMs): `schemata`, `tables`, `columns` (with
//! PostgreSQL's `data_type` and `udt_name`), `table_constraints`, `key_column_usage`, and an
//! empty `views`. Built from [`Relations`] on first use.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::datasource::MemTable;

use super::builtin::NAMESPACES;
use super::pg_catalog::OWNER_NAME;
use super::relations::{LazyRelations, Relations};
use super::rows::{int32, text, LazyTables, Rows, Tables};
use crate::catalog::model::CATALOG;

const TABLES: &[&str] = &["schemata", "tables", "columns", "table_constraints", "key_column_usage", "views"];

pub struct InformationSchema {
    relations: Arc<LazyRelations>,
    built: LazyTables,
}

impl InformationSchema {
    pub fn new(relations: Arc<LazyRelations>) -> InformationSchema {
        InformationSchema {
            relations,
            built: LazyTables::default(),
        }
    }
}

impl std::fmt::Debug for InformationSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InformationSchema")
    }
}

#[async_trait]
impl SchemaProvider for InformationSchema {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(|t| t.to_string()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let built = self.built.get("information_schema", || build(&self.relations))?;
        Ok(built.get(name.to_ascii_lowercase().as_str()).cloned())
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.contains(&name.to_ascii_lowercase().as_str())
    }
}

fn texts(names: &[&str]) -> SchemaRef {
    Arc::new(Schema::new(
        names
            .iter()
            .map(|n| match *n {
                "ordinal_position"
                | "character_maximum_length"
                | "character_octet_length"
                | "numeric_precision"
                | "numeric_precision_radix"
                | "numeric_scale"
                | "datetime_precision"
                | "interval_precision"
                | "maximum_cardinality"
                | "position_in_unique_constraint" => Field::new(*n, DataType::Int32, true),
                _ => Field::new(*n, DataType::Utf8, true),
            })
            .collect::<Vec<_>>(),
    ))
}

fn build(relations: &Relations) -> DfResult<Tables> {
    let mut out = Tables::new();
    for (name, batch) in [
        ("schemata", schemata(relations)?),
        ("tables", tables(relations)?),
        ("columns", columns(relations)?),
        ("table_constraints", table_constraints(relations)?),
        ("key_column_usage", key_column_usage(relations)?),
        ("views", Rows::new(views_schema()).finish()?),
    ] {
        out.insert(name, Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?));
    }
    Ok(out)
}

fn schemata(relations: &Relations) -> DfResult<RecordBatch> {
    let mut rows = Rows::new(texts(&[
        "catalog_name",
        "schema_name",
        "schema_owner",
        "default_character_set_catalog",
        "default_character_set_schema",
        "default_character_set_name",
        "sql_path",
    ]));
    let names = NAMESPACES
        .iter()
        .map(|(_, n)| n.to_string())
        .chain(relations.namespaces.iter().map(|n| n.name.clone()));
    for name in names {
        rows.push(&[
            ("catalog_name", text(CATALOG)),
            ("schema_name", text(name)),
            ("schema_owner", text(OWNER_NAME)),
        ])?;
    }
    rows.finish()
}

fn tables(relations: &Relations) -> DfResult<RecordBatch> {
    let mut rows = Rows::new(texts(&[
        "table_catalog",
        "table_schema",
        "table_name",
        "table_type",
        "self_referencing_column_name",
        "reference_generation",
        "user_defined_type_catalog",
        "user_defined_type_schema",
        "user_defined_type_name",
        "is_insertable_into",
        "is_typed",
        "commit_action",
    ]));
    for r in &relations.relations {
        rows.push(&[
            ("table_catalog", text(CATALOG)),
            ("table_schema", text(&r.schema)),
            ("table_name", text(&r.name)),
            ("table_type", text("BASE TABLE")),
            ("is_insertable_into", text(if r.primary_key.is_some() { "YES" } else { "NO" })),
            ("is_typed", text("NO")),
        ])?;
    }
    rows.finish()
}

const COLUMNS: &[&str] = &[
    "table_catalog",
    "table_schema",
    "table_name",
    "column_name",
    "ordinal_position",
    "column_default",
    "is_nullable",
    "data_type",
    "character_maximum_length",
    "character_octet_length",
    "numeric_precision",
    "numeric_precision_radix",
    "numeric_scale",
    "datetime_precision",
    "interval_type",
    "interval_precision",
    "character_set_catalog",
    "character_set_schema",
    "character_set_name",
    "collation_catalog",
    "collation_schema",
    "collation_name",
    "domain_catalog",
    "domain_schema",
    "domain_name",
    "udt_catalog",
    "udt_schema",
    "udt_name",
    "scope_catalog",
    "scope_schema",
    "scope_name",
    "maximum_cardinality",
    "dtd_identifier",
    "is_self_referencing",
    "is_identity",
    "identity_generation",
    "identity_start",
    "identity_increment",
    "identity_maximum",
    "identity_minimum",
    "identity_cycle",
    "is_generated",
    "generation_expression",
    "is_updatable",
];

fn columns(relations: &Relations) -> DfResult<RecordBatch> {
    let mut rows = Rows::new(texts(COLUMNS));
    for r in &relations.relations {
        for (i, c) in r.columns.iter().enumerate() {
            let t = c.pg_type;
            let position = i as i32 + 1;
            let mut row = vec![
                ("table_catalog", text(CATALOG)),
                ("table_schema", text(&r.schema)),
                ("table_name", text(&r.name)),
                ("column_name", text(&c.name)),
                ("ordinal_position", int32(position)),
                ("is_nullable", text(if c.not_null { "NO" } else { "YES" })),
                ("data_type", text(t.sql_name)),
                ("udt_catalog", text(CATALOG)),
                ("udt_schema", text("pg_catalog")),
                ("udt_name", text(t.typname)),
                ("dtd_identifier", text(position.to_string())),
                ("is_self_referencing", text("NO")),
                ("is_identity", text("NO")),
                ("identity_cycle", text("NO")),
                ("is_generated", text("NEVER")),
                ("is_updatable", text(if r.primary_key.is_some() { "YES" } else { "NO" })),
            ];
            if let Some(p) = t.numeric_precision {
                row.push(("numeric_precision", int32(p)));
                row.push(("numeric_precision_radix", int32(2)));
                if t.typname != "float8" {
                    row.push(("numeric_scale", int32(0)));
                }
            }
            if t.typname.starts_with("timestamp") {
                row.push(("datetime_precision", int32(6)));
            }
            if t.typname == "text" {
                row.push(("character_octet_length", int32(1_073_741_824)));
            }
            rows.push(&row)?;
        }
    }
    rows.finish()
}

fn table_constraints(relations: &Relations) -> DfResult<RecordBatch> {
    let mut rows = Rows::new(texts(&[
        "constraint_catalog",
        "constraint_schema",
        "constraint_name",
        "table_catalog",
        "table_schema",
        "table_name",
        "constraint_type",
        "is_deferrable",
        "initially_deferred",
        "enforced",
        "nulls_distinct",
    ]));
    for r in &relations.relations {
        let Some(pk) = &r.primary_key else { continue };
        rows.push(&[
            ("constraint_catalog", text(CATALOG)),
            ("constraint_schema", text(&r.schema)),
            ("constraint_name", text(&pk.name)),
            ("table_catalog", text(CATALOG)),
            ("table_schema", text(&r.schema)),
            ("table_name", text(&r.name)),
            ("constraint_type", text("PRIMARY KEY")),
            ("is_deferrable", text("NO")),
            ("initially_deferred", text("NO")),
            ("enforced", text("YES")),
        ])?;
    }
    rows.finish()
}

fn key_column_usage(relations: &Relations) -> DfResult<RecordBatch> {
    let mut rows = Rows::new(texts(&[
        "constraint_catalog",
        "constraint_schema",
        "constraint_name",
        "table_catalog",
        "table_schema",
        "table_name",
        "column_name",
        "ordinal_position",
        "position_in_unique_constraint",
    ]));
    for r in &relations.relations {
        let Some(pk) = &r.primary_key else { continue };
        for (i, column) in r.key_columns().into_iter().enumerate() {
            rows.push(&[
                ("constraint_catalog", text(CATALOG)),
                ("constraint_schema", text(&r.schema)),
                ("constraint_name", text(&pk.name)),
                ("table_catalog", text(CATALOG)),
                ("table_schema", text(&r.schema)),
                ("table_name", text(&r.name)),
                ("column_name", text(column)),
                ("ordinal_position", int32(i as i32 + 1)),
                ("position_in_unique_constraint", ScalarValue::Int32(None)),
            ])?;
        }
    }
    rows.finish()
}

fn views_schema() -> SchemaRef {
    texts(&[
        "table_catalog",
        "table_schema",
        "table_name",
        "view_definition",
        "check_option",
        "is_updatable",
        "is_insertable_into",
        "is_trigger_updatable",
        "is_trigger_deletable",
        "is_trigger_insertable_into",
    ])
}
