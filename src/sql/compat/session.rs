//! What catalog queries read of the session running them: its settings (`current_setting`,
//! `pg_settings`, `set_config`), its user and its `search_path` (`current_schema`,
//! `current_schemas`, `pg_table_is_visible`).
//!
//! A [`SessionView`] is shared by a session and the functions registered in its context.
//! The session refreshes it before each query; `set_config` checks and applies a value to the
//! view at once (later calls in the same statement see it, as in PostgreSQL) and queues it for
//! the session, which applies it to its own settings when the statement ends.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ListArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::ScalarUDF;

use super::function::{boolean, oid, text, utf8, Arg, PgFunction};
use super::Lookup;
use crate::sql::settings::{SetValue, Settings};

/// A `set_config` call the session has yet to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingSet {
    pub name: String,
    pub value: String,
    pub local: bool,
}

/// The session as its catalog functions see it.
#[derive(Debug)]
pub struct SessionView {
    pub user: String,
    lookup: Arc<Lookup>,
    settings: Mutex<Settings>,
    pending: Mutex<Vec<PendingSet>>,
}

impl SessionView {
    pub fn new(user: &str, settings: &Settings, lookup: Arc<Lookup>) -> Arc<SessionView> {
        Arc::new(SessionView {
            user: user.to_string(),
            lookup,
            settings: Mutex::new(settings.clone()),
            pending: Mutex::new(Vec::new()),
        })
    }

    /// Takes the session's settings as they are now.
    pub fn refresh(&self, settings: &Settings) {
        let mut mine = lock(&self.settings);
        if mine.stamp() != settings.stamp() {
            *mine = settings.clone();
        }
    }

    /// The `set_config` calls made since the last call.
    pub fn take_pending(&self) -> Vec<PendingSet> {
        std::mem::take(&mut *lock(&self.pending))
    }

    /// Every parameter that has a value, as `(name, value)`.
    pub fn settings(&self) -> Vec<(String, String)> {
        lock(&self.settings).all().into_iter().map(|[n, v, _]| (n, v)).collect()
    }

    fn get(&self, name: &str) -> Option<String> {
        lock(&self.settings).get(name)
    }

    fn set(&self, name: &str, value: &str, local: bool) -> crate::Result<()> {
        lock(&self.settings).set(name, SetValue::Text(value.to_string()))?;
        lock(&self.pending).push(PendingSet {
            name: name.to_string(),
            value: value.to_string(),
            local,
        });
        Ok(())
    }

    /// The schemas of `search_path` (`$user` resolved), in order.
    pub fn search_path(&self) -> Vec<String> {
        let path = self.get("search_path").unwrap_or_default();
        split_search_path(&path, &self.user)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `"$user", public` → `[user, public]`, names unquoted.
pub fn split_search_path(path: &str, user: &str) -> Vec<String> {
    path.split(',')
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let unquoted = p.trim_matches('"');
            if unquoted == "$user" {
                user.to_string()
            } else if p.starts_with('"') {
                unquoted.to_string()
            } else {
                unquoted.to_ascii_lowercase()
            }
        })
        .collect()
}

fn error(e: crate::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

fn text_list(values: Vec<String>) -> ScalarValue {
    let list = ListArray::new(
        Arc::new(Field::new_list_field(DataType::Utf8, true)),
        datafusion::arrow::buffer::OffsetBuffer::from_lengths([values.len()]),
        Arc::new(StringArray::from(values)),
        None,
    );
    ScalarValue::List(Arc::new(list))
}

/// The functions that read the session, bound to `view`.
pub fn functions(view: &Arc<SessionView>) -> Vec<ScalarUDF> {
    let v = view.clone();
    let current_setting = PgFunction::new("current_setting", &[Arg::Text, Arg::Bool], 1, DataType::Utf8, move |a| {
        let name = text(&a[0]).unwrap_or_default();
        let missing_ok = a.get(1).and_then(boolean).unwrap_or(false);
        match v.get(name) {
            Some(value) => Ok(utf8(Some(value))),
            None if missing_ok => Ok(utf8(None)),
            None => Err(error(crate::Error::UndefinedParameter {
                name: name.to_string(),
                suggestions: Vec::new(),
            })),
        }
    });
    let v = view.clone();
    let set_config = PgFunction::new("set_config", &[Arg::Text, Arg::Text, Arg::Bool], 3, DataType::Utf8, move |a| {
        let (Some(name), Some(value)) = (text(&a[0]), text(&a[1])) else {
            return Ok(utf8(None));
        };
        v.set(name, value, boolean(&a[2]).unwrap_or(false)).map_err(error)?;
        Ok(utf8(v.get(name)))
    });
    let v = view.clone();
    let current_schema = PgFunction::new("current_schema", &[], 0, DataType::Utf8, move |_| {
        let path = v.search_path();
        Ok(utf8(path.into_iter().find(|s| v.is_schema(s))))
    });
    let v = view.clone();
    let list_type = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
    let current_schemas = PgFunction::new("current_schemas", &[Arg::Bool], 1, list_type, move |a| {
        let mut out = Vec::new();
        if boolean(&a[0]).unwrap_or(false) {
            out.push("pg_catalog".to_string());
        }
        out.extend(v.search_path().into_iter().filter(|s| v.is_schema(s) && s != "pg_catalog"));
        Ok(text_list(out))
    });
    let v = view.clone();
    let table_is_visible = PgFunction::new("pg_table_is_visible", &[Arg::Oid], 1, DataType::Boolean, move |a| {
        let Some(schema) = oid(&a[0]).and_then(|o| v.lookup.namespace_of_relation(o)) else {
            return Ok(ScalarValue::Boolean(Some(false)));
        };
        Ok(ScalarValue::Boolean(Some(
            schema == "pg_catalog" || v.search_path().contains(&schema),
        )))
    });
    // `'name'::regclass` reads the name with the session's search_path, and fails as
    // PostgreSQL does when nothing has it; `to_regclass` gives NULL instead.
    let v = view.clone();
    let regclass = PgFunction::new("_pg_regclass", &[Arg::Text], 1, DataType::Int32, move |a| {
        let Some(name) = text(&a[0]) else {
            return Ok(ScalarValue::Int32(None));
        };
        match v.lookup.resolve_relation(name, &v.search_path()) {
            Some(oid) => Ok(ScalarValue::Int32(Some(oid))),
            None => Err(crate::error::Error::UndefinedTable {
                name: name.to_string(),
                suggestions: Vec::new(),
            }
            .into()),
        }
    });
    let v = view.clone();
    let regclass_name = PgFunction::new("_pg_regclass_name", &[Arg::Oid], 1, DataType::Utf8, move |a| {
        Ok(utf8(oid(&a[0]).map(|o| {
            v.lookup.relation_name(o, &v.search_path()).unwrap_or_else(|| o.to_string())
        })))
    });
    let v = view.clone();
    let to_regclass = PgFunction::new("to_regclass", &[Arg::Text], 1, DataType::Int32, move |a| {
        Ok(ScalarValue::Int32(
            text(&a[0]).and_then(|t| v.lookup.resolve_relation(t, &v.search_path())),
        ))
    });
    let user = view.user.clone();
    let session_user = PgFunction::new("session_user", &[], 0, DataType::Utf8, move |_| Ok(utf8(Some(user.clone()))));
    let user = view.user.clone();
    let current_user = PgFunction::new("current_user", &[], 0, DataType::Utf8, move |_| Ok(utf8(Some(user.clone()))));
    let functions = vec![
        current_setting.udf(),
        set_config.udf(),
        current_schema.udf(),
        current_schemas.udf(),
        table_is_visible.udf(),
        regclass.udf(),
        regclass_name.udf(),
        to_regclass.udf(),
        session_user.udf(),
        current_user.udf(),
    ];
    debug_assert!(
        functions.iter().all(|f| is_session_bound(f.name())) && functions.len() == SESSION_BOUND.len(),
        "SESSION_BOUND must name exactly the functions built here"
    );
    functions
}

/// The names of the functions [`functions`] builds: a plan calling one of them answers for
/// the session that planned it only (see `sql::shared_plans`).
const SESSION_BOUND: &[&str] = &[
    "current_setting",
    "set_config",
    "current_schema",
    "current_schemas",
    "pg_table_is_visible",
    "_pg_regclass",
    "_pg_regclass_name",
    "to_regclass",
    "session_user",
    "current_user",
];

/// Whether the function of that name reads the session that planned the statement.
pub fn is_session_bound(name: &str) -> bool {
    SESSION_BOUND.contains(&name)
}

impl SessionView {
    /// Whether a schema of that name exists (`current_schema` skips the ones that don't).
    fn is_schema(&self, name: &str) -> bool {
        self.lookup.has_namespace(name)
    }
}
