//! The relations cloudpg shows to catalog queries, as PostgreSQL would describe them: a
//! namespace per service, an ordinary table per resource table, columns with PostgreSQL types,
//! a primary key on `(region, identifier)`, and comments from the resource schemas.
//!
//! Built once, when a catalog query first needs them (the set of tables is fixed by the
//! shipped schemas and the config), with OIDs that are the same on every start: a hash of the
//! object's name, probed past collisions in name order.

use std::collections::{BTreeMap, HashSet};
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::datatypes::{DataType, Field, SchemaRef, TimeUnit};

use crate::catalog::arrow::JsonKind;
use crate::catalog::model::{Catalog, ColumnSource, PgType, TableKind, IDENTIFIER_COLUMN, REGION_COLUMN};

/// The first OID PostgreSQL gives user objects.
pub const FIRST_USER_OID: u32 = 16384;
/// `pg_catalog`'s namespace OID.
pub const PG_CATALOG_NAMESPACE: i32 = 11;
/// `pg_class`'s OID: the `classoid` of table comments.
pub const PG_CLASS_OID: i32 = 1259;
/// `pg_namespace`'s OID: the `classoid` of schema comments.
pub const PG_NAMESPACE_OID: i32 = 2615;
/// `pg_constraint`'s OID.
pub const PG_CONSTRAINT_OID: i32 = 2606;

/// A PostgreSQL type as catalogs name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgTypeInfo {
    pub oid: i32,
    /// `pg_type.typname` (`int8`).
    pub typname: &'static str,
    /// `information_schema.columns.data_type` (`bigint`).
    pub sql_name: &'static str,
    /// `pg_type.typlen`.
    pub len: i16,
    pub numeric_precision: Option<i32>,
}

pub const TEXT: PgTypeInfo = PgTypeInfo {
    oid: 25,
    typname: "text",
    sql_name: "text",
    len: -1,
    numeric_precision: None,
};
const INT8: PgTypeInfo = PgTypeInfo {
    oid: 20,
    typname: "int8",
    sql_name: "bigint",
    len: 8,
    numeric_precision: Some(64),
};
const INT4: PgTypeInfo = PgTypeInfo {
    oid: 23,
    typname: "int4",
    sql_name: "integer",
    len: 4,
    numeric_precision: Some(32),
};
const INT2: PgTypeInfo = PgTypeInfo {
    oid: 21,
    typname: "int2",
    sql_name: "smallint",
    len: 2,
    numeric_precision: Some(16),
};
const FLOAT8: PgTypeInfo = PgTypeInfo {
    oid: 701,
    typname: "float8",
    sql_name: "double precision",
    len: 8,
    numeric_precision: Some(53),
};
const BOOL: PgTypeInfo = PgTypeInfo {
    oid: 16,
    typname: "bool",
    sql_name: "boolean",
    len: 1,
    numeric_precision: None,
};
const JSON: PgTypeInfo = PgTypeInfo {
    oid: 114,
    typname: "json",
    sql_name: "json",
    len: -1,
    numeric_precision: None,
};
const JSONB: PgTypeInfo = PgTypeInfo {
    oid: 3802,
    typname: "jsonb",
    sql_name: "jsonb",
    len: -1,
    numeric_precision: None,
};
const TIMESTAMPTZ: PgTypeInfo = PgTypeInfo {
    oid: 1184,
    typname: "timestamptz",
    sql_name: "timestamp with time zone",
    len: 8,
    numeric_precision: None,
};
const TIMESTAMP: PgTypeInfo = PgTypeInfo {
    oid: 1114,
    typname: "timestamp",
    sql_name: "timestamp without time zone",
    len: 8,
    numeric_precision: None,
};
const DATE: PgTypeInfo = PgTypeInfo {
    oid: 1082,
    typname: "date",
    sql_name: "date",
    len: 4,
    numeric_precision: None,
};

impl PgTypeInfo {
    pub fn of_column(t: PgType) -> PgTypeInfo {
        match t {
            PgType::Text => TEXT,
            PgType::Bigint => INT8,
            PgType::Double => FLOAT8,
            PgType::Boolean => BOOL,
            PgType::Json => JSONB,
            PgType::Timestamptz => TIMESTAMPTZ,
        }
    }

    /// The type of an Arrow field of a system table.
    pub fn of_field(f: &Field) -> PgTypeInfo {
        match crate::catalog::arrow::json_kind(f) {
            Some(JsonKind::Json) => return JSON,
            Some(JsonKind::Jsonb) => return JSONB,
            None => {}
        }
        match f.data_type() {
            DataType::Int64 | DataType::UInt64 | DataType::UInt32 => INT8,
            DataType::Int32 | DataType::UInt16 => INT4,
            DataType::Int16 | DataType::Int8 | DataType::UInt8 => INT2,
            DataType::Float64 | DataType::Float32 => FLOAT8,
            DataType::Boolean => BOOL,
            DataType::Timestamp(_, Some(_)) => TIMESTAMPTZ,
            DataType::Timestamp(TimeUnit::Second | TimeUnit::Millisecond | TimeUnit::Microsecond | TimeUnit::Nanosecond, None) => TIMESTAMP,
            DataType::Date32 | DataType::Date64 => DATE,
            _ => TEXT,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Namespace {
    pub oid: i32,
    pub name: String,
    pub comment: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: String,
    pub pg_type: PgTypeInfo,
    pub not_null: bool,
    pub comment: Option<String>,
}

/// A table's primary key and the index behind it.
#[derive(Debug, Clone)]
pub struct PrimaryKey {
    pub name: String,
    pub index_oid: i32,
    pub constraint_oid: i32,
    /// 1-based column numbers.
    pub attnums: Vec<i16>,
}

#[derive(Debug, Clone)]
pub struct Relation {
    pub oid: i32,
    pub namespace: i32,
    pub schema: String,
    pub name: String,
    pub columns: Vec<Attribute>,
    pub comment: Option<String>,
    pub primary_key: Option<PrimaryKey>,
}

impl Relation {
    /// `CREATE UNIQUE INDEX … USING btree (…)`, as `pg_get_indexdef` prints it.
    pub fn index_definition(&self) -> Option<String> {
        let pk = self.primary_key.as_ref()?;
        Some(format!(
            "CREATE UNIQUE INDEX {} ON {}.{} USING btree ({})",
            pk.name,
            self.schema,
            self.name,
            self.key_columns().join(", ")
        ))
    }

    /// `PRIMARY KEY (…)`, as `pg_get_constraintdef` prints it.
    pub fn constraint_definition(&self) -> Option<String> {
        self.primary_key.as_ref()?;
        Some(format!("PRIMARY KEY ({})", self.key_columns().join(", ")))
    }

    pub fn key_columns(&self) -> Vec<String> {
        self.primary_key
            .iter()
            .flat_map(|pk| pk.attnums.iter())
            .filter_map(|n| self.columns.get((*n as usize).checked_sub(1)?).map(|c| c.name.clone()))
            .collect()
    }
}

/// Every namespace and relation catalog queries see.
#[derive(Debug, Default)]
pub struct Relations {
    pub namespaces: Vec<Namespace>,
    pub relations: Vec<Relation>,
}

/// A table of the server's own (`cloudpg.requests`), described by its Arrow schema.
pub struct SystemTable {
    pub schema: &'static str,
    pub name: &'static str,
    pub arrow: SchemaRef,
    pub comment: String,
}

impl Relations {
    /// The relations of `catalog` (and `system` tables); `_list_only` tables only when
    /// `list_only` says so.
    pub fn build(catalog: &Catalog, system: &[SystemTable], list_only: bool) -> Relations {
        let mut oids = Oids::default();
        let mut out = Relations::default();
        let mut schemas: BTreeMap<String, Option<String>> = catalog.schema_names().map(|s| (s.to_string(), None)).collect();
        for t in system {
            schemas.insert(t.schema.to_string(), Some(format!("cloudpg's own tables ({})", t.schema)));
        }
        let namespace_oid: BTreeMap<String, i32> = schemas
            .keys()
            .map(|s| (s.clone(), oids.assign(&format!("namespace {s}"))))
            .collect();
        for (name, comment) in &schemas {
            out.namespaces.push(Namespace {
                oid: namespace_oid[name],
                name: name.clone(),
                comment: comment
                    .clone()
                    .or_else(|| Some(format!("AWS Cloud Control resource types of the {name} service"))),
            });
        }
        for t in catalog.tables() {
            if t.kind == TableKind::ListOnly && !list_only {
                continue;
            }
            let columns: Vec<Attribute> = t
                .columns()
                .iter()
                .map(|c| Attribute {
                    name: c.name.clone(),
                    pg_type: PgTypeInfo::of_column(c.pg_type),
                    not_null: matches!(c.source, ColumnSource::Region | ColumnSource::Account | ColumnSource::Identifier),
                    comment: (!c.description.is_empty()).then(|| c.description.clone()),
                })
                .collect();
            let qualified = format!("{}.{}", t.schema, t.name);
            let oid = oids.assign(&format!("table {qualified}"));
            let key: Vec<i16> = [REGION_COLUMN, IDENTIFIER_COLUMN]
                .iter()
                .filter_map(|k| columns.iter().position(|c| c.name == *k).map(|i| i as i16 + 1))
                .collect();
            let primary_key = (key.len() == 2).then(|| PrimaryKey {
                name: format!("{}_pkey", t.name),
                index_oid: oids.assign(&format!("index {qualified}")),
                constraint_oid: oids.assign(&format!("constraint {qualified}")),
                attnums: key,
            });
            let comment = match t.kind {
                TableKind::Full => format!("{} ({})", t.resource.description.trim(), t.type_name()),
                TableKind::ListOnly => format!("{} as ListResources lists them (no GetResource)", t.type_name()),
            };
            out.relations.push(Relation {
                oid,
                namespace: namespace_oid[&t.schema],
                schema: t.schema.clone(),
                name: t.name.clone(),
                columns,
                comment: Some(comment),
                primary_key,
            });
        }
        for t in system {
            let columns = t
                .arrow
                .fields()
                .iter()
                .map(|f| Attribute {
                    name: f.name().clone(),
                    pg_type: PgTypeInfo::of_field(f),
                    not_null: !f.is_nullable(),
                    comment: None,
                })
                .collect();
            out.relations.push(Relation {
                oid: oids.assign(&format!("table {}.{}", t.schema, t.name)),
                namespace: namespace_oid[t.schema],
                schema: t.schema.to_string(),
                name: t.name.to_string(),
                columns,
                comment: Some(t.comment.clone()),
                primary_key: None,
            });
        }
        out
    }

    pub fn relation(&self, oid: i32) -> Option<&Relation> {
        self.relations.iter().find(|r| r.oid == oid)
    }

    /// The relation whose primary-key index has this OID.
    pub fn by_index(&self, index_oid: i32) -> Option<&Relation> {
        self.relations
            .iter()
            .find(|r| r.primary_key.as_ref().is_some_and(|pk| pk.index_oid == index_oid))
    }

    pub fn by_constraint(&self, constraint_oid: i32) -> Option<&Relation> {
        self.relations
            .iter()
            .find(|r| r.primary_key.as_ref().is_some_and(|pk| pk.constraint_oid == constraint_oid))
    }

    /// These relations, already built.
    pub fn shared(self) -> Arc<LazyRelations> {
        Arc::new(LazyRelations {
            built: OnceLock::from(self),
            source: None,
        })
    }
}

/// [`Relations`] built on first use: describing every table reads every type's property
/// schemas, which take most of a start's time and memory and which a server only ever asked
/// for rows never needs.
pub struct LazyRelations {
    built: OnceLock<Relations>,
    source: Option<(Arc<Catalog>, Vec<SystemTable>, bool)>,
}

impl LazyRelations {
    /// The relations [`Relations::build`] will make of these, when first read.
    pub fn new(catalog: Arc<Catalog>, system: Vec<SystemTable>, list_only: bool) -> Arc<LazyRelations> {
        Arc::new(LazyRelations {
            built: OnceLock::new(),
            source: Some((catalog, system, list_only)),
        })
    }
}

impl Deref for LazyRelations {
    type Target = Relations;

    fn deref(&self) -> &Relations {
        self.built.get_or_init(|| match &self.source {
            Some((catalog, system, list_only)) => Relations::build(catalog, system, *list_only),
            None => Relations::default(),
        })
    }
}

impl std::fmt::Debug for LazyRelations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LazyRelations")
    }
}

/// Stable OIDs: a name's hash in the user range, probed past ones already taken.
#[derive(Default)]
struct Oids {
    taken: HashSet<u32>,
}

impl Oids {
    fn assign(&mut self, key: &str) -> i32 {
        const SPAN: u32 = 1 << 30;
        let mut oid = FIRST_USER_OID + (fnv1a(key.as_bytes()) as u32 % SPAN);
        while !self.taken.insert(oid) {
            oid = FIRST_USER_OID + ((oid - FIRST_USER_OID + 1) % SPAN);
        }
        oid as i32
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::build(resource_schemas::Registry::shared().unwrap())
    }

    #[test]
    fn oids_are_stable_and_distinct() {
        let a = Relations::build(&catalog(), &[], false);
        let b = Relations::build(&catalog(), &[], false);
        let oids: Vec<i32> = a.relations.iter().map(|r| r.oid).collect();
        assert_eq!(oids, b.relations.iter().map(|r| r.oid).collect::<Vec<_>>());
        let distinct: HashSet<i32> = oids.iter().copied().collect();
        assert_eq!(distinct.len(), oids.len());
        assert!(oids.iter().all(|o| *o >= FIRST_USER_OID as i32));
    }

    #[test]
    fn tables_have_types_keys_and_comments() {
        let r = Relations::build(&catalog(), &[], false);
        assert!(
            r.relations.iter().all(|t| !t.name.ends_with("_list_only")),
            "list-only tables stay out of listings"
        );
        let vpcs = r.relations.iter().find(|t| t.schema == "ec2" && t.name == "vpcs").unwrap();
        let col = |n: &str| vpcs.columns.iter().find(|c| c.name == n).unwrap();
        assert_eq!(col("cidr_block").pg_type, TEXT);
        assert_eq!(col("tags").pg_type.typname, "jsonb");
        assert!(col("region").not_null && col("identifier").not_null);
        assert_eq!(vpcs.key_columns(), vec!["region", "identifier"]);
        assert_eq!(vpcs.constraint_definition().unwrap(), "PRIMARY KEY (region, identifier)");
        assert!(vpcs.comment.as_deref().unwrap().contains("AWS::EC2::VPC"));
        let with_list_only = Relations::build(&catalog(), &[], true);
        assert!(with_list_only.relations.len() > r.relations.len());
    }
}
