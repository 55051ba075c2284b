//! Result column names as PostgreSQL gives them, and duplicate names allowed.
//!
//! PostgreSQL names an output column after its expression (`count(*)` → `count`, `x::text` →
//! `x`, `1::text` → `text`, `CASE …` → `case`, anything else → `?column?`), and a SELECT may
//! repeat a name. DataFusion names columns after their whole expression (`count(*)`,
//! `Int64(1)`) and refuses repeats. [`name_columns`] gives every SELECT item PostgreSQL's
//! name as an alias before planning; a repeated name gets a marked, unique alias, and
//! [`client_name`] strips the mark from the planned schema, so clients see PostgreSQL's names.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    DataType, Expr, Ident, ObjectNamePart, Query, SelectItem, SetExpr, Statement, TrimWhereField, Value, VisitMut, VisitorMut,
};

/// Separates a PostgreSQL name from the suffix that keeps it unique for DataFusion.
const MARK: char = '\u{7f}';
/// The prefix pg_catalog's compatibility rewrite gives columns beside a wildcard.
const COMPAT_ALIAS_PREFIX: &str = "__alias_";
/// PostgreSQL's name for a column it cannot name.
pub const UNNAMED: &str = "?column?";

/// Aliases the items of every SELECT in the statement (top level, subqueries, CTEs, derived
/// tables, an INSERT's source) with their PostgreSQL names.
pub fn name_columns(stmt: &mut Statement) {
    let _ = stmt.visit(&mut Namer);
}

struct Namer;

impl VisitorMut for Namer {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        name_set_expr(&mut query.body);
        ControlFlow::Continue(())
    }
}

/// The name a client sees for a planned column.
pub fn client_name(planned: &str) -> &str {
    let name = planned.split(MARK).next().unwrap_or(planned);
    name.strip_prefix(COMPAT_ALIAS_PREFIX).unwrap_or(name)
}

fn name_set_expr(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            let has_wildcard = select
                .projection
                .iter()
                .any(|i| matches!(i, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)));
            let mut used = HashSet::new();
            for (i, item) in select.projection.iter_mut().enumerate() {
                name_item(item, i, has_wildcard, &mut used);
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            name_set_expr(left);
            name_set_expr(right);
        }
        _ => {}
    }
}

fn name_item(item: &mut SelectItem, position: usize, has_wildcard: bool, used: &mut HashSet<String>) {
    let unique = |name: &str, used: &mut HashSet<String>| -> String {
        if used.insert(name.to_string()) && !has_wildcard {
            name.to_string()
        } else {
            format!("{name}{MARK}{position}")
        }
    };
    match item {
        SelectItem::UnnamedExpr(expr) => {
            let name = column_name(expr).unwrap_or_else(|| UNNAMED.to_string());
            let alias = unique(&name, used);
            // A plain column keeps its own name in DataFusion; aliasing it anyway would change
            // nothing but how ORDER BY may refer to it.
            if alias == name && is_column(expr) {
                return;
            }
            *item = SelectItem::ExprWithAlias {
                expr: expr.clone(),
                alias: Ident::with_quote('"', alias),
            };
        }
        // Named already (statements are named when parsed and again when planned).
        SelectItem::ExprWithAlias { alias, .. } if alias.value.contains(MARK) => {
            used.insert(alias.value.clone());
        }
        SelectItem::ExprWithAlias { alias, .. } => {
            let name = ident_name(alias);
            let unique_name = unique(&name, used);
            if unique_name != name || alias.quote_style.is_none() && alias.value != name {
                *alias = Ident::with_quote('"', unique_name);
            }
        }
        _ => {}
    }
}

fn is_column(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
}

/// An identifier as PostgreSQL folds it: unquoted ones to lower case.
pub fn ident_name(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// PostgreSQL's name for an expression, or `None` for `?column?`.
pub fn column_name(e: &Expr) -> Option<String> {
    strong_name(e).or_else(|| weak_name(e))
}

/// Names PostgreSQL takes from a column or function (they win over a cast's type name).
fn strong_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(i) => Some(ident_name(i)),
        Expr::CompoundIdentifier(parts) => parts.last().map(ident_name),
        Expr::CompoundFieldAccess { root, access_chain } => match access_chain.last() {
            Some(datafusion::sql::sqlparser::ast::AccessExpr::Dot(Expr::Identifier(i))) => Some(ident_name(i)),
            _ => strong_name(root),
        },
        Expr::Function(f) => {
            let last = f.name.0.last()?;
            match last {
                ObjectNamePart::Identifier(i) => Some(ident_name(i)),
                _ => None,
            }
        }
        Expr::Nested(inner) | Expr::Collate { expr: inner, .. } => strong_name(inner),
        Expr::Cast { expr, .. } => strong_name(expr),
        Expr::Extract { .. } => Some("extract".into()),
        Expr::Substring { .. } => Some("substring".into()),
        Expr::Position { .. } => Some("position".into()),
        Expr::Overlay { .. } => Some("overlay".into()),
        Expr::Ceil { .. } => Some("ceil".into()),
        Expr::Floor { .. } => Some("floor".into()),
        Expr::AtTimeZone { .. } => Some("timezone".into()),
        Expr::Trim { trim_where, .. } => Some(
            match trim_where {
                Some(TrimWhereField::Leading) => "ltrim",
                Some(TrimWhereField::Trailing) => "rtrim",
                _ => "btrim",
            }
            .into(),
        ),
        Expr::Exists { .. } => Some("exists".into()),
        Expr::Subquery(q) => match q.body.as_ref() {
            SetExpr::Select(s) => match s.projection.first() {
                Some(SelectItem::ExprWithAlias { alias, .. }) => Some(ident_name(alias)),
                Some(SelectItem::UnnamedExpr(inner)) => column_name(inner),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// Names PostgreSQL falls back to: a cast's type, `case`, `array`, `row`, `bool`.
fn weak_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Nested(inner) => weak_name(inner),
        Expr::Cast { data_type, .. } => Some(type_name(data_type)),
        Expr::TypedString(t) => Some(type_name(&t.data_type)),
        Expr::Interval(_) => Some("interval".into()),
        Expr::Case { .. } => Some("case".into()),
        Expr::Array(_) => Some("array".into()),
        Expr::Tuple(_) => Some("row".into()),
        // `true` and `false` are typed constants in PostgreSQL's grammar.
        Expr::Value(v) if matches!(v.value, Value::Boolean(_)) => Some("bool".into()),
        _ => None,
    }
}

/// PostgreSQL's internal name of a type (`integer` → `int4`), which is what it names casts.
fn type_name(t: &DataType) -> String {
    match t {
        DataType::Int(_) | DataType::Integer(_) | DataType::Int4(_) => "int4".into(),
        DataType::BigInt(_) | DataType::Int8(_) => "int8".into(),
        DataType::SmallInt(_) | DataType::Int2(_) => "int2".into(),
        DataType::Real | DataType::Float4 => "float4".into(),
        DataType::Double(_) | DataType::DoublePrecision | DataType::Float8 | DataType::Float(_) => "float8".into(),
        DataType::Bool | DataType::Boolean => "bool".into(),
        DataType::Varchar(_) | DataType::CharacterVarying(_) | DataType::CharVarying(_) => "varchar".into(),
        DataType::Char(_) | DataType::Character(_) => "bpchar".into(),
        DataType::Numeric(_) | DataType::Decimal(_) | DataType::Dec(_) => "numeric".into(),
        DataType::Timestamp(_, tz) => match tz {
            datafusion::sql::sqlparser::ast::TimezoneInfo::WithTimeZone | datafusion::sql::sqlparser::ast::TimezoneInfo::Tz => {
                "timestamptz".into()
            }
            _ => "timestamp".into(),
        },
        DataType::Time(_, tz) => match tz {
            datafusion::sql::sqlparser::ast::TimezoneInfo::WithTimeZone | datafusion::sql::sqlparser::ast::TimezoneInfo::Tz => {
                "timetz".into()
            }
            _ => "time".into(),
        },
        DataType::Array(inner) => match inner {
            datafusion::sql::sqlparser::ast::ArrayElemTypeDef::SquareBracket(t, _)
            | datafusion::sql::sqlparser::ast::ArrayElemTypeDef::AngleBracket(t)
            | datafusion::sql::sqlparser::ast::ArrayElemTypeDef::Parenthesis(t) => type_name(t),
            datafusion::sql::sqlparser::ast::ArrayElemTypeDef::None => "anyarray".into(),
        },
        DataType::Custom(name, _) => name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(ident_name)
            .unwrap_or_else(|| UNNAMED.into()),
        other => other.to_string().to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names PostgreSQL 16 gives these select items.
    const CASES: &[(&str, &str)] = &[
        ("1", "?column?"),
        ("'a'", "?column?"),
        ("NULL", "?column?"),
        ("true", "bool"),
        ("count(*)", "count"),
        ("max(x)", "max"),
        ("pg_catalog.count(x)", "count"),
        ("x::text", "x"),
        ("t.x::text", "x"),
        ("1::text", "text"),
        ("'1'::integer", "int4"),
        ("CAST(x AS bigint)", "x"),
        ("CAST(1 AS bigint)", "int8"),
        ("'1'::double precision", "float8"),
        ("now()::timestamptz", "now"),
        ("x + 1", "?column?"),
        ("(x)", "x"),
        ("CASE WHEN x THEN 1 END", "case"),
        ("ARRAY[1, 2]", "array"),
        ("coalesce(a, b)", "coalesce"),
        ("EXISTS (SELECT 1)", "exists"),
        ("(SELECT max(y) FROM t)", "max"),
        ("(SELECT 1 AS k)", "k"),
        ("extract(year FROM d)", "extract"),
        ("substring(s FROM 1 FOR 2)", "substring"),
        ("trim(s)", "btrim"),
        ("tags -> 0", "?column?"),
        ("DATE '2020-01-01'", "date"),
        ("\"MixedCase\"", "MixedCase"),
        ("MixedCase", "mixedcase"),
        ("x IS NULL", "?column?"),
    ];

    fn name_of(item: &str) -> String {
        let stmt = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            &format!("SELECT {item} FROM t"),
        )
        .unwrap()
        .remove(0);
        let Statement::Query(q) = stmt else { panic!() };
        let SetExpr::Select(s) = *q.body else { panic!() };
        match &s.projection[0] {
            SelectItem::UnnamedExpr(e) => column_name(e).unwrap_or_else(|| UNNAMED.into()),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn names_follow_postgres() {
        for (item, expected) in CASES {
            assert_eq!(name_of(item), *expected, "SELECT {item}");
        }
    }

    fn aliased(sql: &str) -> String {
        let mut stmt = crate::sql::parse::parse_checked(sql).unwrap().remove(0);
        name_columns(&mut stmt);
        stmt.to_string().replace(MARK, "#")
    }

    #[test]
    fn repeated_names_get_marked_unique_aliases() {
        assert_eq!(aliased("SELECT 'a', 'a'"), "SELECT 'a' AS \"?column?\", 'a' AS \"?column?#1\"");
        assert_eq!(aliased("SELECT x, x FROM t"), "SELECT x, x AS \"x#1\" FROM t");
        assert_eq!(aliased("SELECT count(*) FROM t"), "SELECT count(*) AS \"count\" FROM t");
        assert_eq!(aliased("SELECT 1 AS a, 2 AS A"), "SELECT 1 AS a, 2 AS \"a#1\"");
        assert_eq!(aliased("SELECT *, region FROM t"), "SELECT *, region AS \"region#1\" FROM t");
        assert_eq!(client_name("__alias_region\u{7f}1"), "region");
        assert_eq!(
            aliased("SELECT * FROM (SELECT 1, 1) s"),
            "SELECT * FROM (SELECT 1 AS \"?column?\", 1 AS \"?column?#1\") s"
        );
        assert_eq!(client_name("?column?\u{7f}1"), "?column?");
        assert_eq!(client_name("__alias_oid"), "oid");
        assert_eq!(client_name("region"), "region");
    }
}
