//! PostgreSQL's catalog functions, answered from [`Lookup`]: comments
//! (`obj_description`, `col_description`), definitions (`pg_get_indexdef`,
//! `pg_get_constraintdef`, `pg_get_function_result`…), visibility and name resolution
//! (`pg_type_is_visible`, `to_regtype`, `to_regclass`), sizes (`pg_size_pretty`,
//! `pg_table_size`), `_pg_expandarray`, and the no-ops clients call on every checkout
//! (`pg_advisory_unlock_all`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, AsArray, ListArray, StructArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Int32Type};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::ScalarUDF;

use super::builtin::{Builtin, NAMESPACES};
use super::function::{oid, text, utf8, Arg, PgFunction};
use super::pg_catalog::static_tables;
use super::relations::{LazyRelations, Relation, PG_CLASS_OID};
use crate::catalog::naming::quote_if_needed;

/// Everything the catalog functions look up, indexed when a catalog function first runs (see
/// [`LazyRelations`]).
pub struct Lookup {
    relations: Arc<LazyRelations>,
    index: OnceLock<LookupIndex>,
}

impl Lookup {
    pub fn new(relations: Arc<LazyRelations>) -> Lookup {
        Lookup {
            relations,
            index: OnceLock::new(),
        }
    }
}

impl std::ops::Deref for Lookup {
    type Target = LookupIndex;

    fn deref(&self) -> &LookupIndex {
        self.index.get_or_init(|| LookupIndex::new(self.relations.clone()))
    }
}

/// The relations and PostgreSQL's own objects, by OID and name.
pub struct LookupIndex {
    pub relations: Arc<LazyRelations>,
    builtin: Arc<Builtin>,
    by_oid: HashMap<i32, usize>,
    by_index: HashMap<i32, usize>,
    by_constraint: HashMap<i32, usize>,
    namespaces: HashMap<i32, String>,
    /// `(objoid, classoid, objsubid)` → comment: PostgreSQL's and ours.
    descriptions: HashMap<(i32, i32, i32), String>,
    /// Procedure OID → (result type, argument types, returns a set).
    procs: HashMap<i32, (i32, Vec<i32>, bool)>,
    /// PostgreSQL's own constraints' definitions, by OID.
    constraint_defs: HashMap<i32, String>,
}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lookup")
    }
}

impl LookupIndex {
    fn new(relations: Arc<LazyRelations>) -> LookupIndex {
        let builtin = Builtin::get();
        let mut lookup = LookupIndex {
            builtin,
            by_oid: HashMap::new(),
            by_index: HashMap::new(),
            by_constraint: HashMap::new(),
            namespaces: NAMESPACES.iter().map(|(o, n)| (*o, n.to_string())).collect(),
            descriptions: HashMap::new(),
            procs: HashMap::new(),
            constraint_defs: HashMap::new(),
            relations: relations.clone(),
        };
        for (i, r) in relations.relations.iter().enumerate() {
            lookup.by_oid.insert(r.oid, i);
            if let Some(pk) = &r.primary_key {
                lookup.by_index.insert(pk.index_oid, i);
                lookup.by_constraint.insert(pk.constraint_oid, i);
            }
            if let Some(c) = &r.comment {
                lookup.descriptions.insert((r.oid, PG_CLASS_OID, 0), c.clone());
            }
            for (n, col) in r.columns.iter().enumerate() {
                if let Some(c) = &col.comment {
                    lookup.descriptions.insert((r.oid, PG_CLASS_OID, n as i32 + 1), c.clone());
                }
            }
        }
        for ns in &relations.namespaces {
            lookup.namespaces.insert(ns.oid, ns.name.clone());
            if let Some(c) = &ns.comment {
                lookup
                    .descriptions
                    .insert((ns.oid, super::relations::PG_NAMESPACE_OID, 0), c.clone());
            }
        }
        lookup.load_static();
        lookup
    }

    /// PostgreSQL's own comments, procedures and constraints.
    fn load_static(&mut self) {
        let Ok(statics) = static_tables() else { return };
        for batch in statics.pg_constraint.data() {
            let cols = (
                batch.column_by_name("oid").and_then(|c| c.as_primitive_opt::<Int32Type>().cloned()),
                batch.column_by_name("conname").and_then(|c| c.as_string_opt::<i32>().cloned()),
                batch.column_by_name("contype").and_then(|c| c.as_string_opt::<i32>().cloned()),
                batch
                    .column_by_name("conrelid")
                    .and_then(|c| c.as_primitive_opt::<Int32Type>().cloned()),
                batch.column_by_name("conkey").and_then(|c| c.as_string_opt::<i32>().cloned()),
            );
            let (Some(o), Some(name), Some(kind), Some(rel), Some(keys)) = cols else {
                continue;
            };
            for i in 0..batch.num_rows() {
                let keys: Vec<i16> = if keys.is_null(i) {
                    Vec::new()
                } else {
                    keys.value(i)
                        .split(|c: char| !c.is_ascii_digit())
                        .filter_map(|k| k.parse().ok())
                        .collect()
                };
                if let Some(def) = self.builtin_constraint(name.value(i), kind.value(i), rel.value(i), &keys) {
                    self.constraint_defs.insert(o.value(i), def);
                }
            }
        }
        for batch in statics.pg_description.data() {
            let cols = (
                batch
                    .column_by_name("objoid")
                    .and_then(|c| c.as_primitive_opt::<Int32Type>().cloned()),
                batch
                    .column_by_name("classoid")
                    .and_then(|c| c.as_primitive_opt::<Int32Type>().cloned()),
                batch
                    .column_by_name("objsubid")
                    .and_then(|c| c.as_primitive_opt::<Int32Type>().cloned()),
                batch.column_by_name("description").and_then(|c| c.as_string_opt::<i32>().cloned()),
            );
            let (Some(o), Some(c), Some(s), Some(d)) = cols else { continue };
            for i in 0..batch.num_rows() {
                if !d.is_null(i) {
                    self.descriptions
                        .entry((o.value(i), c.value(i), s.value(i)))
                        .or_insert_with(|| d.value(i).to_string());
                }
            }
        }
        for batch in statics.pg_proc.data() {
            let cols = (
                batch.column_by_name("oid").and_then(|c| c.as_primitive_opt::<Int32Type>().cloned()),
                batch
                    .column_by_name("prorettype")
                    .and_then(|c| c.as_primitive_opt::<Int32Type>().cloned()),
                batch.column_by_name("proargtypes").and_then(|c| c.as_string_opt::<i32>().cloned()),
                batch.column_by_name("proretset").and_then(|c| c.as_boolean_opt().cloned()),
            );
            let (Some(o), Some(r), Some(a), Some(set)) = cols else { continue };
            for i in 0..batch.num_rows() {
                let args = if a.is_null(i) {
                    Vec::new()
                } else {
                    a.value(i).split_whitespace().filter_map(|t| t.parse().ok()).collect()
                };
                self.procs.insert(o.value(i), (r.value(i), args, set.value(i)));
            }
        }
    }

    /// A PostgreSQL catalog constraint as `pg_get_constraintdef` prints it.
    fn builtin_constraint(&self, name: &str, kind: &str, relid: i32, keys: &[i16]) -> Option<String> {
        let columns = || -> Option<String> {
            let r = self.builtin.relations.iter().find(|r| r.oid == relid)?;
            let names: Option<Vec<&str>> = keys
                .iter()
                .map(|k| r.columns.iter().find(|c| c.attnum == *k).map(|c| c.name.as_str()))
                .collect();
            Some(names?.join(", "))
        };
        match (kind, name) {
            ("p", _) => Some(format!("PRIMARY KEY ({})", columns()?)),
            ("u", _) => Some(format!("UNIQUE ({})", columns()?)),
            // The two CHECK constraints of information_schema's domains.
            ("c", "cardinal_number_domain_check") => Some("CHECK (VALUE >= 0)".into()),
            ("c", "yes_or_no_check") => {
                Some("CHECK (((VALUE)::text = ANY ((ARRAY['YES'::character varying, 'NO'::character varying])::text[])))".into())
            }
            _ => None,
        }
    }

    pub fn relation(&self, oid: i64) -> Option<&Relation> {
        self.by_oid.get(&i32::try_from(oid).ok()?).map(|i| &self.relations.relations[*i])
    }

    /// The schema of a relation (ours, an index of ours, or PostgreSQL's).
    pub fn namespace_of_relation(&self, oid: i64) -> Option<String> {
        let oid = i32::try_from(oid).ok()?;
        let ns = match self.by_oid.get(&oid).or_else(|| self.by_index.get(&oid)) {
            Some(i) => self.relations.relations[*i].namespace,
            None => self.builtin.relations.iter().find(|r| r.oid == oid)?.namespace,
        };
        self.namespaces.get(&ns).cloned()
    }

    pub fn has_namespace(&self, name: &str) -> bool {
        self.namespaces.values().any(|n| n == name)
    }

    fn description(&self, objoid: i64, classoid: Option<i32>, subid: i32) -> Option<String> {
        let objoid = i32::try_from(objoid).ok()?;
        match classoid {
            Some(c) => self.descriptions.get(&(objoid, c, subid)).cloned(),
            None => self
                .descriptions
                .iter()
                .find(|((o, _, s), _)| *o == objoid && *s == subid)
                .map(|(_, d)| d.clone()),
        }
    }

    /// A relation name as `regclass` reads it: `schema.table`, or a bare name looked up in
    /// `pg_catalog` and then the schemas of `path` (the session's `search_path`), in order.
    pub fn resolve_relation(&self, name: &str, path: &[String]) -> Option<i32> {
        let parts: Vec<String> = name.split('.').map(|p| unquote(p.trim())).collect();
        match parts.as_slice() {
            [t] => std::iter::once("pg_catalog")
                .chain(path.iter().map(String::as_str))
                .find_map(|s| self.relation_in(s, t)),
            [s, t] => self.relation_in(s, t),
            [_, s, t] => self.relation_in(s, t),
            _ => None,
        }
    }

    fn relation_in(&self, schema: &str, table: &str) -> Option<i32> {
        let ours = self
            .relations
            .relations
            .iter()
            .find(|r| r.name == table && r.schema == schema)
            .map(|r| r.oid);
        ours.or_else(|| {
            self.builtin
                .relations
                .iter()
                .find(|r| r.name == table && self.namespaces.get(&r.namespace).is_some_and(|n| n == schema))
                .map(|r| r.oid)
        })
    }

    /// A relation as `regclass` prints it: the bare name when `path` (the session's
    /// `search_path`) finds this relation by it, `schema.name` otherwise.
    pub fn relation_name(&self, oid: i64, path: &[String]) -> Option<String> {
        let id = i32::try_from(oid).ok()?;
        let (name, namespace) = match self.by_oid.get(&id) {
            Some(i) => (self.relations.relations[*i].name.clone(), self.relations.relations[*i].namespace),
            None => match self.by_index.get(&id) {
                Some(i) => {
                    let r = &self.relations.relations[*i];
                    (r.primary_key.as_ref()?.name.clone(), r.namespace)
                }
                None => {
                    let r = self.builtin.relations.iter().find(|r| r.oid == id)?;
                    (r.name.clone(), r.namespace)
                }
            },
        };
        let schema = self.namespaces.get(&namespace)?;
        let visible = match self.resolve_relation(&quote_if_needed(&name), path) {
            Some(found) => i64::from(found) == oid,
            // An index: visible when its schema is searched.
            None => schema == "pg_catalog" || path.contains(schema),
        };
        Some(if visible {
            quote_if_needed(&name)
        } else {
            format!("{}.{}", quote_if_needed(schema), quote_if_needed(&name))
        })
    }

    fn function_result(&self, oid: i64) -> Option<String> {
        let (ret, _, set) = self.procs.get(&i32::try_from(oid).ok()?)?;
        let name = self.builtin.type_display(*ret)?;
        Some(if *set { format!("SETOF {name}") } else { name })
    }

    fn function_arguments(&self, oid: i64) -> Option<String> {
        let (_, args, _) = self.procs.get(&i32::try_from(oid).ok()?)?;
        Some(
            args.iter()
                .map(|a| self.builtin.type_display(*a).unwrap_or_else(|| a.to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}

/// An identifier as written: `"Name"` keeps its case, `Name` folds to lower case.
fn unquote(part: &str) -> String {
    if part.len() >= 2 && part.starts_with('"') && part.ends_with('"') {
        part[1..part.len() - 1].replace("\"\"", "\"")
    } else {
        part.to_ascii_lowercase()
    }
}

/// The OID of the catalog a name (`pg_class`, `pg_catalog.pg_namespace`) denotes.
fn catalog_oid(name: &str) -> Option<i32> {
    let bare = name.trim().strip_prefix("pg_catalog.").unwrap_or(name.trim());
    Builtin::get().relations.iter().find(|r| r.name == bare).map(|r| r.oid)
}

/// `pg_size_pretty`, with PostgreSQL's rounding and units.
pub fn size_pretty(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    let limit = 10 * 1024;
    if bytes.abs() < limit {
        return format!("{bytes} bytes");
    }
    // Keep one extra bit for rounding, as PostgreSQL does.
    let mut size = bytes >> 9;
    for (i, unit) in UNITS.iter().enumerate() {
        if size.abs() < limit * 2 - 1 || i == UNITS.len() - 1 {
            let rounded = (size + if size < 0 { -1 } else { 1 }) / 2;
            return format!("{rounded} {unit}");
        }
        size >>= 10;
    }
    format!("{bytes} bytes")
}

fn struct_fields() -> Fields {
    Fields::from(vec![Field::new("x", DataType::Int32, true), Field::new("n", DataType::Int32, true)])
}

/// `_pg_expandarray(a)`: the elements of `a` with their 1-based positions, as a list of
/// `(x, n)` for `unnest` to turn into rows.
fn expand_array(v: &ScalarValue) -> DfResult<ScalarValue> {
    let values: Vec<Option<i32>> = match v {
        ScalarValue::List(list) if !list.is_empty() && !list.is_null(0) => {
            let inner = datafusion::arrow::compute::cast(&list.value(0), &DataType::Int32)?;
            inner.as_primitive::<Int32Type>().iter().collect()
        }
        _ => Vec::new(),
    };
    let n = values.len();
    let xs = datafusion::arrow::array::Int32Array::from(values);
    let ns = datafusion::arrow::array::Int32Array::from((1..=n as i32).collect::<Vec<_>>());
    let rows = StructArray::try_new(struct_fields(), vec![Arc::new(xs), Arc::new(ns)], None)?;
    let list = ListArray::try_new(
        Arc::new(Field::new_list_field(DataType::Struct(struct_fields()), true)),
        OffsetBuffer::from_lengths([n]),
        Arc::new(rows),
        None,
    )?;
    Ok(ScalarValue::List(Arc::new(list)))
}

/// The catalog functions, over `lookup`.
pub fn functions(lookup: &Arc<Lookup>) -> Vec<ScalarUDF> {
    let mut out = Vec::new();
    let l = lookup.clone();
    out.push(PgFunction::new(
        "col_description",
        &[Arg::Oid, Arg::Oid],
        2,
        DataType::Utf8,
        move |a| {
            let sub = oid(&a[1]).and_then(|s| i32::try_from(s).ok()).unwrap_or(-1);
            Ok(utf8(oid(&a[0]).and_then(|o| l.description(o, Some(PG_CLASS_OID), sub))))
        },
    ));
    let l = lookup.clone();
    out.push(PgFunction::new(
        "obj_description",
        &[Arg::Oid, Arg::Text],
        1,
        DataType::Utf8,
        move |a| {
            let class = match a.get(1) {
                Some(c) => match text(c).and_then(catalog_oid) {
                    Some(oid) => Some(oid),
                    None => return Ok(utf8(None)),
                },
                None => None,
            };
            Ok(utf8(oid(&a[0]).and_then(|o| l.description(o, class, 0))))
        },
    ));
    // Shared objects (databases, roles) have no comments here.
    out.push(PgFunction::new(
        "shobj_description",
        &[Arg::Oid, Arg::Text],
        2,
        DataType::Utf8,
        |_| Ok(utf8(None)),
    ));
    let l = lookup.clone();
    out.push(PgFunction::new(
        "pg_get_indexdef",
        &[Arg::Oid, Arg::Oid, Arg::Bool],
        1,
        DataType::Utf8,
        move |a| {
            let Some(r) = oid(&a[0])
                .and_then(|o| l.by_index.get(&i32::try_from(o).ok()?))
                .map(|i| &l.relations.relations[*i])
            else {
                return Ok(utf8(None));
            };
            match a.get(1).and_then(oid) {
                // Column n of the index: its name.
                Some(n) if n > 0 => Ok(utf8(usize::try_from(n - 1).ok().and_then(|i| r.key_columns().get(i).cloned()))),
                _ => Ok(utf8(r.index_definition())),
            }
        },
    ));
    let l = lookup.clone();
    out.push(PgFunction::new(
        "pg_get_constraintdef",
        &[Arg::Oid, Arg::Bool],
        1,
        DataType::Utf8,
        move |a| {
            let Some(id) = oid(&a[0]).and_then(|o| i32::try_from(o).ok()) else {
                return Ok(utf8(None));
            };
            let ours = l
                .by_constraint
                .get(&id)
                .and_then(|i| l.relations.relations[*i].constraint_definition());
            Ok(utf8(ours.or_else(|| l.constraint_defs.get(&id).cloned())))
        },
    ));
    let l = lookup.clone();
    out.push(PgFunction::new(
        "pg_get_function_result",
        &[Arg::Oid],
        1,
        DataType::Utf8,
        move |a| Ok(utf8(oid(&a[0]).and_then(|o| l.function_result(o)))),
    ));
    for name in ["pg_get_function_arguments", "pg_get_function_identity_arguments"] {
        let l = lookup.clone();
        out.push(PgFunction::new(name, &[Arg::Oid], 1, DataType::Utf8, move |a| {
            Ok(utf8(oid(&a[0]).and_then(|o| l.function_arguments(o))))
        }));
    }
    // No SQL-bodied functions, views, sequences or serial columns exist here.
    out.push(PgFunction::new("pg_get_function_sqlbody", &[Arg::Oid], 1, DataType::Utf8, |_| {
        Ok(utf8(None))
    }));
    out.push(PgFunction::new("pg_get_viewdef", &[Arg::Any, Arg::Any], 1, DataType::Utf8, |_| {
        Ok(utf8(None))
    }));
    out.push(PgFunction::new(
        "pg_get_serial_sequence",
        &[Arg::Text, Arg::Text],
        2,
        DataType::Utf8,
        |_| Ok(utf8(None)),
    ));
    for name in [
        "pg_type_is_visible",
        "pg_function_is_visible",
        "pg_collation_is_visible",
        "pg_opclass_is_visible",
        "pg_operator_is_visible",
        "pg_conversion_is_visible",
        "pg_ts_config_is_visible",
    ] {
        // Types, functions and the rest live in pg_catalog, which is always on the path.
        out.push(PgFunction::new(name, &[Arg::Oid], 1, DataType::Boolean, |_| {
            Ok(ScalarValue::Boolean(Some(true)))
        }));
    }
    let b = Builtin::get();
    out.push(PgFunction::new("to_regtype", &[Arg::Text], 1, DataType::Int32, move |a| {
        Ok(ScalarValue::Int32(text(&a[0]).and_then(|t| b.resolve_type(t))))
    }));
    let l = lookup.clone();
    out.push(PgFunction::new("to_regnamespace", &[Arg::Text], 1, DataType::Int32, move |a| {
        let name = text(&a[0]).map(unquote);
        Ok(ScalarValue::Int32(
            name.and_then(|n| l.namespaces.iter().find(|(_, v)| **v == n).map(|(k, _)| *k)),
        ))
    }));
    out.push(PgFunction::new("pg_size_pretty", &[Arg::Oid], 1, DataType::Utf8, |a| {
        Ok(utf8(oid(&a[0]).map(size_pretty)))
    }));
    // Resource tables are stored in AWS, not here: they take no space.
    for name in [
        "pg_table_size",
        "pg_relation_size",
        "pg_total_relation_size",
        "pg_indexes_size",
        "pg_database_size",
    ] {
        out.push(PgFunction::new(name, &[Arg::Any, Arg::Text], 1, DataType::Int64, |_| {
            Ok(ScalarValue::Int64(Some(0)))
        }));
    }
    out.push(
        PgFunction::new("pg_has_role", &[Arg::Any, Arg::Any, Arg::Text], 2, DataType::Boolean, |_| {
            Ok(ScalarValue::Boolean(Some(true)))
        })
        .lenient(),
    );
    // Publications, partitions, extended statistics and expressions do not exist here.
    out.push(PgFunction::new(
        "pg_relation_is_publishable",
        &[Arg::Oid],
        1,
        DataType::Boolean,
        |_| Ok(ScalarValue::Boolean(Some(false))),
    ));
    for name in ["pg_get_partkeydef", "pg_get_statisticsobjdef_columns"] {
        out.push(PgFunction::new(name, &[Arg::Oid], 1, DataType::Utf8, |_| Ok(utf8(None))));
    }
    out.push(PgFunction::new(
        "pg_get_expr",
        &[Arg::Any, Arg::Oid, Arg::Bool],
        2,
        DataType::Utf8,
        |_| Ok(utf8(None)),
    ));
    out.push(PgFunction::new("pg_stat_get_numscans", &[Arg::Oid], 1, DataType::Int64, |_| {
        Ok(ScalarValue::Int64(Some(0)))
    }));
    out.push(PgFunction::new("pg_get_userbyid", &[Arg::Oid], 1, DataType::Utf8, |a| {
        Ok(utf8(Some(match oid(&a[0]) {
            Some(10) => super::pg_catalog::OWNER_NAME.to_string(),
            Some(other) => format!("unknown (OID={other})"),
            None => return Ok(utf8(None)),
        })))
    }));
    out.push(PgFunction::new("pg_encoding_to_char", &[Arg::Oid], 1, DataType::Utf8, |a| {
        Ok(utf8(Some(if oid(&a[0]) == Some(6) { "UTF8" } else { "" }.to_string())))
    }));
    out.push(PgFunction::new("pg_is_in_recovery", &[], 0, DataType::Boolean, |_| {
        Ok(ScalarValue::Boolean(Some(false)))
    }));
    // Advisory locks guard nothing here: there is no shared state for them to protect.
    out.push(PgFunction::new("pg_advisory_unlock_all", &[], 0, DataType::Utf8, |_| {
        Ok(utf8(None))
    }));
    out.push(PgFunction::new("_pg_expandarray", &[Arg::Any], 1, expand_type(), |a| expand_array(&a[0])).lenient());
    let text_list = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
    out.push(PgFunction::new(
        "_pg_concat_each",
        &[Arg::Any, Arg::Text, Arg::Text],
        3,
        text_list,
        concat_each,
    ));
    let l = lookup.clone();
    out.push(PgFunction::new("_pg_regnamespace_name", &[Arg::Oid], 1, DataType::Utf8, move |a| {
        Ok(utf8(oid(&a[0]).map(|o| {
            i32::try_from(o)
                .ok()
                .and_then(|o| l.namespaces.get(&o).cloned())
                .unwrap_or_else(|| o.to_string())
        })))
    }));
    let b = Builtin::get();
    out.push(PgFunction::new("_pg_domain_base", &[Arg::Oid], 1, DataType::Int32, move |a| {
        Ok(ScalarValue::Int32(
            oid(&a[0]).and_then(|o| i32::try_from(o).ok()).map(|o| b.domain_base(o)),
        ))
    }));
    out.push(PgFunction::new(
        "_pg_like_escape",
        &[Arg::Text, Arg::Text],
        2,
        DataType::Utf8,
        |a| {
            let escape = text(&a[1]).unwrap_or_default();
            let mut chars = escape.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Ok(utf8(text(&a[0]).map(|p| super::syntax::translate_escape(p, c)))),
                _ => datafusion::common::exec_err!("invalid escape string: ESCAPE must be a single character"),
            }
        },
    ));
    out.push(
        PgFunction::json_aware("json_build_object", &[Arg::Any; 100], 0, DataType::Utf8, json_build_object)
            .lenient()
            .returns_json(crate::catalog::arrow::JsonKind::Jsonb),
    );
    let mut format_params = vec![Arg::Text];
    format_params.extend([Arg::Any; 100]);
    out.push(PgFunction::new("format", &format_params, 1, DataType::Utf8, pg_format).lenient());
    out.into_iter().map(PgFunction::udf).collect()
}

/// An argument of `format` as text (`None` for NULL).
fn display(v: &ScalarValue) -> Option<String> {
    if v.is_null() {
        return None;
    }
    Some(text(v).map(str::to_string).unwrap_or_else(|| v.to_string()))
}

/// PostgreSQL's `format(fmt, …)`: `%s` (text), `%I` (identifier), `%L` (literal), `%%`, and
/// positions (`%2$s`).
fn pg_format(args: &[ScalarValue]) -> DfResult<ScalarValue> {
    let Some(fmt) = args.first().and_then(display) else {
        return Ok(utf8(None));
    };
    let values = &args[1..];
    let mut out = String::new();
    let mut next = 0;
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        let position = if !digits.is_empty() && chars.peek() == Some(&'$') {
            chars.next();
            digits.parse::<usize>().ok().and_then(|n| n.checked_sub(1))
        } else {
            None
        };
        let kind = chars.next();
        if kind == Some('%') {
            out.push('%');
            continue;
        }
        let index = position.unwrap_or(next);
        next = index + 1;
        let Some(value) = values.get(index) else {
            return datafusion::common::exec_err!("too few arguments for format()");
        };
        match kind {
            Some('s') => out.push_str(&display(value).unwrap_or_default()),
            Some('I') => match display(value) {
                Some(v) => out.push_str(&quote_if_needed(&v)),
                None => return datafusion::common::exec_err!("null values cannot be formatted as an SQL identifier"),
            },
            Some('L') => match display(value) {
                Some(v) => out.push_str(&format!("'{}'", v.replace('\'', "''"))),
                None => out.push_str("NULL"),
            },
            other => {
                return datafusion::common::exec_err!(
                    "unrecognized format() type specifier \"{}\": use %s, %I, %L or %%",
                    other.map(String::from).unwrap_or_default()
                )
            }
        }
    }
    Ok(utf8(Some(out)))
}

/// `prefix || x || suffix` for every element `x` of a text array.
fn concat_each(args: &[ScalarValue]) -> DfResult<ScalarValue> {
    let ScalarValue::List(list) = &args[0] else {
        return datafusion::common::exec_err!("_pg_concat_each takes an array");
    };
    if list.is_null(0) {
        return Ok(ScalarValue::Null);
    }
    let (prefix, suffix) = (text(&args[1]).unwrap_or_default(), text(&args[2]).unwrap_or_default());
    let items = datafusion::arrow::compute::cast(&list.value(0), &DataType::Utf8)?;
    let values: Vec<ScalarValue> = items
        .as_string::<i32>()
        .iter()
        .map(|x| utf8(x.map(|x| format!("{prefix}{x}{suffix}"))))
        .collect();
    Ok(ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Utf8)))
}

/// `json_build_object(k1, v1, k2, v2, …)`.
fn json_build_object(args: &[ScalarValue], json: &[bool]) -> DfResult<ScalarValue> {
    if !args.len().is_multiple_of(2) {
        return datafusion::common::plan_err!(
            "argument list must have even number of elements: json_build_object() takes key, value pairs"
        );
    }
    let mut object = serde_json::Map::new();
    for (i, pair) in args.chunks(2).enumerate() {
        let key = match &pair[0] {
            v if v.is_null() => return datafusion::common::exec_err!("null value not allowed for object key"),
            v => text(v).map(str::to_string).unwrap_or_else(|| v.to_string()),
        };
        let value_is_json = json.get(2 * i + 1).copied().unwrap_or(false);
        object.insert(key, super::jsonb_ops::sql_to_json(&pair[1], value_is_json));
    }
    Ok(utf8(Some(crate::catalog::jsonb::text(&serde_json::Value::Object(object)))))
}

/// A SQL value as JSON: text as a string, numbers and booleans as themselves.
pub(super) fn json_value(v: &ScalarValue) -> serde_json::Value {
    use serde_json::Value;
    if v.is_null() {
        return Value::Null;
    }
    match v {
        ScalarValue::Boolean(Some(b)) => Value::Bool(*b),
        ScalarValue::Int8(Some(n)) => Value::from(*n),
        ScalarValue::Int16(Some(n)) => Value::from(*n),
        ScalarValue::Int32(Some(n)) => Value::from(*n),
        ScalarValue::Int64(Some(n)) => Value::from(*n),
        ScalarValue::UInt32(Some(n)) => Value::from(*n),
        ScalarValue::UInt64(Some(n)) => Value::from(*n),
        ScalarValue::Float32(Some(n)) => Value::from(*n),
        ScalarValue::Float64(Some(n)) => Value::from(*n),
        other => Value::String(text(other).map(str::to_string).unwrap_or_else(|| other.to_string())),
    }
}

fn expand_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Struct(struct_fields()), true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_as_postgres_prints_them() {
        assert_eq!(size_pretty(0), "0 bytes");
        assert_eq!(size_pretty(10239), "10239 bytes");
        assert_eq!(size_pretty(10240), "10 kB");
        assert_eq!(size_pretty(1_000_000), "977 kB");
        assert_eq!(size_pretty(10 * 1024 * 1024), "10 MB");
        assert_eq!(size_pretty(5 * 1024 * 1024 * 1024 * 1024 * 1024), "5120 TB");
    }

    #[test]
    fn format_quotes_identifiers_and_literals() {
        let t = |s: &str| ScalarValue::Utf8(Some(s.into()));
        let out = pg_format(&[
            t("%I.%I = %L, %s%%, %2$s"),
            t("ec2"),
            t("Order"),
            t("it's"),
            ScalarValue::Int64(Some(3)),
        ])
        .unwrap();
        assert_eq!(out, t("ec2.\"Order\" = 'it''s', 3%, Order"));
        assert!(pg_format(&[t("%s %s"), t("a")]).is_err());
    }

    #[test]
    fn expandarray_numbers_elements() {
        let list = ListArray::from_iter_primitive::<datafusion::arrow::datatypes::Int16Type, _, _>(vec![Some(vec![Some(3), Some(1)])]);
        let out = expand_array(&ScalarValue::List(Arc::new(list))).unwrap();
        let ScalarValue::List(l) = out else { panic!() };
        let rows = l.value(0);
        let rows = rows.as_struct();
        assert_eq!(rows.column(0).as_primitive::<Int32Type>().values().to_vec(), vec![3, 1]);
        assert_eq!(rows.column(1).as_primitive::<Int32Type>().values().to_vec(), vec![1, 2]);
    }

    #[test]
    fn comments_and_definitions_come_from_relations() {
        let catalog = crate::catalog::Catalog::build(resource_schemas::Registry::shared().unwrap());
        let lookup = Lookup::new(super::super::relations::Relations::build(&catalog, &[], false).shared());
        let vpcs = lookup.relations.relations.iter().find(|r| r.name == "vpcs").unwrap();
        assert!(lookup
            .description(vpcs.oid.into(), Some(PG_CLASS_OID), 0)
            .unwrap()
            .contains("AWS::EC2::VPC"));
        let path = ["public".to_string()];
        assert_eq!(lookup.resolve_relation("ec2.vpcs", &path), Some(vpcs.oid));
        assert_eq!(lookup.resolve_relation("EC2.\"vpcs\"", &path), Some(vpcs.oid));
        assert_eq!(lookup.resolve_relation("pg_class", &path), Some(1259));
        assert_eq!(lookup.resolve_relation("vpcs", &path), None, "ec2 is not on the path");
        assert_eq!(lookup.resolve_relation("vpcs", &["ec2".to_string()]), Some(vpcs.oid));
        assert_eq!(lookup.namespace_of_relation(vpcs.oid.into()).as_deref(), Some("ec2"));
        assert_eq!(lookup.relation_name(vpcs.oid.into(), &path).as_deref(), Some("ec2.vpcs"));
        assert_eq!(lookup.relation_name(vpcs.oid.into(), &["ec2".into()]).as_deref(), Some("vpcs"));
        assert_eq!(lookup.relation_name(1259, &path).as_deref(), Some("pg_class"));
        assert_eq!(lookup.function_result(1081).as_deref(), Some("text"));
        assert_eq!(catalog_oid("pg_catalog.pg_namespace"), Some(2615));
        assert_eq!(lookup.constraint_defs.get(&13298).map(String::as_str), Some("CHECK (VALUE >= 0)"));
        assert!(
            lookup.constraint_defs.values().any(|d| d == "PRIMARY KEY (oid)"),
            "catalog primary keys print their columns"
        );
    }
}
