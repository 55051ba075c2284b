//! PostgreSQL's own catalog objects as clients expect to find them: the namespaces
//! `pg_catalog`, `information_schema`, `pg_toast` and `public`, the relations of
//! `pg_catalog` and `information_schema` with their real OIDs (`'pg_class'::regclass` is
//! 1259 everywhere), their columns, and the types of `pg_type`.
//!
//! The relation and column lists are a snapshot (`pg_relations.tsv`, `pg_attributes.tsv`);
//! types come from the pg_catalog crate's `pg_type`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Int16Type, Int32Type};

use super::pg_catalog::static_tables;

pub const PG_TOAST_NAMESPACE: i32 = 99;
pub const PUBLIC_NAMESPACE: i32 = 2200;
pub const INFORMATION_SCHEMA_NAMESPACE: i32 = 13283;

/// PostgreSQL's namespaces: OID and name.
pub const NAMESPACES: &[(i32, &str)] = &[
    (PG_TOAST_NAMESPACE, "pg_toast"),
    (super::relations::PG_CATALOG_NAMESPACE, "pg_catalog"),
    (PUBLIC_NAMESPACE, "public"),
    (INFORMATION_SCHEMA_NAMESPACE, "information_schema"),
];

#[derive(Debug, Clone)]
pub struct BuiltinColumn {
    pub name: String,
    pub type_oid: i32,
    pub attnum: i16,
    pub not_null: bool,
}

#[derive(Debug, Clone)]
pub struct BuiltinRelation {
    pub namespace: i32,
    pub name: String,
    pub oid: i32,
    /// `r` or `v`.
    pub kind: String,
    pub columns: Vec<BuiltinColumn>,
}

/// A row of `pg_type`, as far as catalogs need it.
#[derive(Debug, Clone)]
pub struct PgTypeRow {
    pub oid: i32,
    pub name: String,
    pub namespace: i32,
    pub len: i16,
    /// The element type of an array type, else 0.
    pub elem: i32,
    /// The array type of this type, else 0.
    pub array: i32,
    pub collation: i32,
    /// The type a domain is over, else 0.
    pub basetype: i32,
}

/// PostgreSQL's relations and types.
#[derive(Debug, Default)]
pub struct Builtin {
    pub relations: Vec<BuiltinRelation>,
    pub types: Vec<PgTypeRow>,
    type_by_oid: HashMap<i32, usize>,
    type_by_name: HashMap<String, usize>,
}

impl Builtin {
    /// Loaded once per process.
    pub fn get() -> Arc<Builtin> {
        static BUILTIN: OnceLock<Arc<Builtin>> = OnceLock::new();
        BUILTIN.get_or_init(|| Arc::new(Builtin::load())).clone()
    }

    fn load() -> Builtin {
        let mut columns: HashMap<i32, Vec<BuiltinColumn>> = HashMap::new();
        for fields in tsv(include_str!("pg_attributes.tsv")) {
            if let [rel, name, ty, num, not_null] = fields.as_slice() {
                if let (Ok(rel), Ok(ty), Ok(num)) = (rel.parse(), ty.parse(), num.parse()) {
                    columns.entry(rel).or_default().push(BuiltinColumn {
                        name: name.to_string(),
                        type_oid: ty,
                        attnum: num,
                        not_null: *not_null == "1",
                    });
                }
            }
        }
        let relations = tsv(include_str!("pg_relations.tsv"))
            .filter_map(|fields| match fields.as_slice() {
                [ns, name, oid, kind] => {
                    let oid: i32 = oid.parse().ok()?;
                    Some(BuiltinRelation {
                        namespace: ns.parse().ok()?,
                        name: name.to_string(),
                        oid,
                        kind: kind.to_string(),
                        columns: columns.remove(&oid).unwrap_or_default(),
                    })
                }
                _ => None,
            })
            .collect();
        let mut out = Builtin {
            relations,
            types: load_types(),
            ..Builtin::default()
        };
        for (i, t) in out.types.iter().enumerate() {
            out.type_by_oid.insert(t.oid, i);
            out.type_by_name.entry(t.name.clone()).or_insert(i);
        }
        out
    }

    pub fn type_by_oid(&self, oid: i32) -> Option<&PgTypeRow> {
        self.type_by_oid.get(&oid).map(|i| &self.types[*i])
    }

    pub fn type_by_name(&self, name: &str) -> Option<&PgTypeRow> {
        self.type_by_name.get(name).map(|i| &self.types[*i])
    }

    /// A type as `format_type` and `pg_get_function_result` print it (`integer`, `text[]`).
    pub fn type_display(&self, oid: i32) -> Option<String> {
        let t = self.type_by_oid(oid)?;
        if t.elem != 0 && t.name.starts_with('_') {
            return Some(format!("{}[]", self.type_display(t.elem)?));
        }
        Some(sql_type_name(&t.name).unwrap_or(&t.name).to_string())
    }

    /// The type at the bottom of a chain of domains (0 for a type that is not a domain), as
    /// asyncpg's recursive `typebases` query computes it.
    pub fn domain_base(&self, oid: i32) -> i32 {
        let mut current = self.type_by_oid(oid).map_or(0, |t| t.basetype);
        // Domains nest a few levels at most; the bound keeps a cycle from looping.
        for _ in 0..32 {
            match self.type_by_oid(current).map(|t| t.basetype) {
                Some(next) if next != 0 => current = next,
                _ => break,
            }
        }
        current
    }

    /// `to_regtype`: a type name as SQL writes it (`integer`, `pg_catalog.int4`, `text[]`,
    /// `"char"`) to its OID.
    pub fn resolve_type(&self, name: &str) -> Option<i32> {
        let lower = name.trim().to_ascii_lowercase();
        let bare = lower.strip_prefix("pg_catalog.").unwrap_or(&lower).trim_matches('"');
        if let Some(elem) = bare.strip_suffix("[]") {
            let oid = self.resolve_type(elem)?;
            return self.type_by_oid(oid).map(|t| t.array).filter(|a| *a != 0);
        }
        let internal = internal_type_name(bare).unwrap_or(bare);
        self.type_by_name(internal).map(|t| t.oid)
    }
}

fn tsv(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').collect())
}

fn load_types() -> Vec<PgTypeRow> {
    let Ok(statics) = static_tables() else { return Vec::new() };
    let mut out = Vec::new();
    for batch in statics.pg_type.data() {
        let col = |n: &str| batch.column_by_name(n).cloned();
        let (Some(oid), Some(name), Some(ns), Some(len), Some(elem), Some(array), Some(coll), Some(base)) = (
            col("oid"),
            col("typname"),
            col("typnamespace"),
            col("typlen"),
            col("typelem"),
            col("typarray"),
            col("typcollation"),
            col("typbasetype"),
        ) else {
            continue;
        };
        let (Some(oid), Some(name), Some(ns), Some(len), Some(elem), Some(array), Some(coll), Some(base)) = (
            oid.as_primitive_opt::<Int32Type>(),
            name.as_string_opt::<i32>(),
            ns.as_primitive_opt::<Int32Type>(),
            len.as_primitive_opt::<Int16Type>(),
            elem.as_primitive_opt::<Int32Type>(),
            array.as_primitive_opt::<Int32Type>(),
            coll.as_primitive_opt::<Int32Type>(),
            base.as_primitive_opt::<Int32Type>(),
        ) else {
            continue;
        };
        for i in 0..batch.num_rows() {
            if oid.is_null(i) || name.is_null(i) {
                continue;
            }
            out.push(PgTypeRow {
                oid: oid.value(i),
                name: name.value(i).to_string(),
                namespace: ns.value(i),
                len: len.value(i),
                elem: elem.value(i),
                array: array.value(i),
                collation: coll.value(i),
                basetype: base.value(i),
            });
        }
    }
    out
}

/// PostgreSQL's SQL spelling of an internal type name.
fn sql_type_name(internal: &str) -> Option<&'static str> {
    Some(match internal {
        "int2" => "smallint",
        "int4" => "integer",
        "int8" => "bigint",
        "float4" => "real",
        "float8" => "double precision",
        "bool" => "boolean",
        "varchar" => "character varying",
        "bpchar" => "character",
        "timestamptz" => "timestamp with time zone",
        "timestamp" => "timestamp without time zone",
        "timetz" => "time with time zone",
        "time" => "time without time zone",
        "varbit" => "bit varying",
        _ => return None,
    })
}

/// The internal name of a type written the SQL way.
fn internal_type_name(sql: &str) -> Option<&'static str> {
    Some(match sql {
        "smallint" => "int2",
        "integer" | "int" => "int4",
        "bigint" => "int8",
        "real" => "float4",
        "double precision" | "float" => "float8",
        "boolean" => "bool",
        "character varying" | "varchar" => "varchar",
        "character" | "char" => "bpchar",
        "timestamp with time zone" => "timestamptz",
        "timestamp without time zone" => "timestamp",
        "time with time zone" => "timetz",
        "time without time zone" => "time",
        "decimal" => "numeric",
        "bit varying" => "varbit",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_relations_have_their_real_oids_and_columns() {
        let b = Builtin::get();
        let class = b.relations.iter().find(|r| r.name == "pg_class").unwrap();
        assert_eq!(class.oid, 1259);
        assert_eq!(class.namespace, super::super::relations::PG_CATALOG_NAMESPACE);
        assert!(class.columns.iter().any(|c| c.name == "relacl"));
        assert!(b
            .relations
            .iter()
            .any(|r| r.name == "columns" && r.namespace == INFORMATION_SCHEMA_NAMESPACE));
    }

    #[test]
    fn types_resolve_by_sql_and_internal_names() {
        let b = Builtin::get();
        assert_eq!(b.resolve_type("integer"), Some(23));
        assert_eq!(b.resolve_type("pg_catalog.int4"), Some(23));
        assert_eq!(b.resolve_type("jsonb"), Some(3802));
        assert_eq!(b.resolve_type("text[]"), Some(1009));
        assert_eq!(b.resolve_type("hstore"), None);
        assert_eq!(b.type_display(1184).as_deref(), Some("timestamp with time zone"));
        assert_eq!(b.type_display(1009).as_deref(), Some("text[]"));
        let cardinal = b.types.iter().find(|t| t.name == "cardinal_number").unwrap();
        assert_eq!(b.domain_base(cardinal.oid), 23);
        assert_eq!(b.domain_base(23), 0);
    }
}
