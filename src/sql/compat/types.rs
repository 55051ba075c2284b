//! Type names PostgreSQL clients cast to that DataFusion does not know: `name` and `"char"`
//! are text here, `json` text tagged as json; oid aliases (`regclass`…) are the pg_catalog crate's, whose planner this
//! one wraps.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result as DfResult;
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::sql::sqlparser::ast::DataType as SqlType;
use datafusion_pg_catalog::pg_catalog::oid_type_planner::PgOidTypePlanner;

#[derive(Debug)]
pub struct PgTypes;

/// Text types PostgreSQL names that sqlparser leaves as custom types.
const TEXT_TYPES: &[&str] = &["name", "char", "bpchar", "citext", "unknown"];

impl TypePlanner for PgTypes {
    fn plan_type_field(&self, sql_type: &SqlType) -> DfResult<Option<FieldRef>> {
        // JSON is text tagged with its type, as resource tables' JSON columns are.
        use crate::catalog::arrow::{json_field, JsonKind};
        match sql_type {
            SqlType::JSON => return Ok(Some(Arc::new(json_field("", JsonKind::Json)))),
            SqlType::JSONB => return Ok(Some(Arc::new(json_field("", JsonKind::Jsonb)))),
            // A named field makes DataFusion's cast take its (empty) metadata rather than the
            // source's: `jsonb_col::text` is text, not jsonb.
            SqlType::Text | SqlType::Varchar(None) => return Ok(Some(Arc::new(Field::new("text", DataType::Utf8View, true)))),
            _ => {}
        }
        if let SqlType::Custom(name, modifiers) = sql_type {
            let parts: Vec<String> = name
                .0
                .iter()
                .filter_map(|p| p.as_ident().map(|i| i.value.to_ascii_lowercase()))
                .collect();
            let bare = match parts.as_slice() {
                [t] => Some(t.as_str()),
                [schema, t] if schema == "pg_catalog" => Some(t.as_str()),
                _ => None,
            };
            if bare.is_some_and(|t| TEXT_TYPES.contains(&t)) && modifiers.is_empty() {
                return Ok(Some(Arc::new(Field::new("", DataType::Utf8, true))));
            }
        }
        PgOidTypePlanner.plan_type_field(sql_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::ast::{Ident, ObjectName, ObjectNamePart};

    #[test]
    fn name_is_text_and_oid_aliases_are_the_crates() {
        let custom = |n: &str| SqlType::Custom(ObjectName(vec![ObjectNamePart::Identifier(Ident::new(n))]), vec![]);
        let planned = PgTypes.plan_type_field(&custom("name")).unwrap().unwrap();
        assert_eq!(planned.data_type(), &DataType::Utf8);
        let planned = PgTypes.plan_type_field(&SqlType::Regclass).unwrap().unwrap();
        assert_eq!(planned.data_type(), &DataType::Int32);
        assert!(PgTypes.plan_type_field(&custom("hstore")).unwrap().is_none());
        let json = PgTypes.plan_type_field(&SqlType::JSON).unwrap().unwrap();
        assert!(crate::catalog::arrow::is_json(&json), "{json:?}");
    }
}
