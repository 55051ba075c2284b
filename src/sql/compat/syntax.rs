//! PostgreSQL syntax clients send in catalog queries, rewritten on the syntax tree into what
//! DataFusion plans with the same meaning. Each rewrite is a pure function of the statement.
//!
//! - `ARRAY(SELECT e FROM … ORDER BY o)` → `(SELECT array_agg(e ORDER BY o) FROM …)`.
//! - A correlated scalar subquery returns at most one row in PostgreSQL (more is an error);
//!   DataFusion only decorrelates aggregated ones, so `(SELECT e FROM … WHERE outer.x = …)`
//!   becomes `(SELECT first_value(e) FROM …)`.
//! - `LIKE p ESCAPE '/'` → the pattern with `\` as its escape, the only one DataFusion knows.
//! - `(row).field` → `get_field(row, 'field')`.
//! - `information_schema._pg_expandarray(a)` → one row per element, `(x, n)`.
//! - `generate_subscripts(a, 1)` → `unnest(range(1, array_length(a, 1) + 1))`.
//! - Subscripts of `int2vector` and `oidvector` columns (`indkey[0]`) count from 0.
//! - `typinput = 'pg_catalog.array_in'::regproc`: the static `pg_type` holds procedure names.
//! - A set-returning function in FROM aliased `AS i` names its column `i`, as in PostgreSQL.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions, visit_expressions_mut, AccessExpr, BinaryOperator, CastKind, DataType, Expr, FunctionArg, FunctionArgExpr,
    FunctionArguments, ObjectName, ObjectNamePart, Query, Select, SelectItem, SetExpr, Statement, Subscript, TableAliasColumnDef,
    TableFactor, Value, ValueWithSpan, Visit, VisitMut, Visitor, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Columns of type `int2vector` or `oidvector`, whose subscripts start at 0.
const ZERO_BASED_VECTORS: &[&str] = &["indkey", "indclass", "indcollation", "indoption", "proargtypes"];

/// `pg_type` columns holding procedure names (`regproc` shown as text).
const REGPROC_NAME_COLUMNS: &[&str] = &[
    "typinput",
    "typoutput",
    "typreceive",
    "typsend",
    "typmodin",
    "typmodout",
    "typanalyze",
];

/// Aggregates: a scalar subquery projecting one of these already returns one row.
const AGGREGATES: &[&str] = &[
    "count",
    "min",
    "max",
    "sum",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "first_value",
    "last_value",
];

/// DataFusion's table functions (and the pg_catalog crate's).
const TABLE_FUNCTIONS: &[&str] = &["generate_series", "range", "unnest", "generate_subscripts", "pg_get_keywords"];

/// Set-returning functions that yield one column, named after the FROM alias.
const SCALAR_SET_FUNCTIONS: &[&str] = &["generate_series", "unnest", "generate_subscripts"];

/// Applies every rewrite, before the pg_catalog crate's own rules.
pub fn rewrite(stmt: &mut Statement) {
    let _ = visit_expressions_mut(stmt, |e| {
        rewrite_expr(e);
        ControlFlow::<()>::Continue(())
    });
    let _ = stmt.visit(&mut EmptySources);
    let _ = stmt.visit(&mut SortSubqueries);
    let _ = stmt.visit(&mut ProjectedMembership);
    let _ = stmt.visit(&mut ProjectedSeries);
    let _ = stmt.visit(&mut Correlated);
    let _ = stmt.visit(&mut FunctionAliases);
}

/// An unqualified `pg_stat_activity` is pg_catalog's, as PostgreSQL searches pg_catalog
/// first; DataFusion would look in `public`. CTE names shadow, as in PostgreSQL.
pub fn qualify_catalog_relations(stmt: &mut Statement) {
    let mut ctes = HashSet::new();
    let _ = datafusion::sql::sqlparser::ast::visit_statements(&*stmt, |s| {
        if let Statement::Query(q) = s {
            if let Some(with) = &q.with {
                ctes.extend(with.cte_tables.iter().map(|c| c.alias.name.value.to_ascii_lowercase()));
            }
        }
        ControlFlow::<()>::Continue(())
    });
    let builtin = super::builtin::Builtin::get();
    let _ = datafusion::sql::sqlparser::ast::visit_relations_mut(stmt, |name| {
        if let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() {
            let bare = ident.value.to_ascii_lowercase();
            let catalog = builtin
                .relations
                .iter()
                .any(|r| r.name == bare && r.namespace == super::relations::PG_CATALOG_NAMESPACE);
            if ident.quote_style.is_none() && catalog && !ctes.contains(&bare) {
                name.0.insert(
                    0,
                    ObjectNamePart::Identifier(datafusion::sql::sqlparser::ast::Ident::new("pg_catalog")),
                );
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

fn rewrite_expr(e: &mut Expr) {
    if let Some(new) = array_subquery(e)
        .or_else(|| like_escape(e))
        .or_else(|| field_access(e))
        .or_else(|| expand_array(e))
        .or_else(|| generate_subscripts(e))
        .or_else(|| regproc_name_comparison(e))
        .or_else(|| empty_array_literal(e))
        .or_else(|| array_literal_comparison(e))
        .or_else(|| user_keyword(e))
        .or_else(|| computed_regclass(e))
        .or_else(|| oid_alias_text(e))
        .or_else(|| network_cast(e))
        .or_else(|| json_cast(e))
        .or_else(|| json_arrow_text(e))
        .or_else(|| network_operator(e))
        .or_else(|| json_aggregate(e))
    {
        *e = new;
    }
    zero_based_subscripts(e);
}

/// The types a statement casts its parameters to (`$1::oid[]` → `oid[]`), by number: what
/// PostgreSQL infers a parameter's type from when nothing else does.
pub fn placeholder_casts(stmt: &Statement) -> std::collections::HashMap<usize, String> {
    let mut out = std::collections::HashMap::new();
    let _ = visit_expressions(stmt, |e| {
        if let Expr::Cast { expr, data_type, .. } = e {
            if let Expr::Value(ValueWithSpan {
                value: Value::Placeholder(p),
                ..
            }) = expr.as_ref()
            {
                if let Some(n) = p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
                    out.entry(n).or_insert_with(|| data_type.to_string());
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    out
}

/// Parses an expression written as text (built from Display of parts of the tree).
fn parse_expr(text: &str) -> Option<Expr> {
    Parser::new(&PostgreSqlDialect {}).try_with_sql(text).ok()?.parse_expr().ok()
}

fn function_name(name: &ObjectName) -> Option<String> {
    name.0
        .last()
        .and_then(ObjectNamePart::as_ident)
        .map(|i| i.value.to_ascii_lowercase())
}

fn single_arg(args: &FunctionArguments) -> Option<&Expr> {
    match args {
        FunctionArguments::List(list) if list.args.len() == 1 => match &list.args[0] {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        },
        _ => None,
    }
}

fn args_of(args: &FunctionArguments) -> Vec<&Expr> {
    match args {
        FunctionArguments::List(list) => list
            .args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `ARRAY(SELECT …)`.
fn array_subquery(e: &Expr) -> Option<Expr> {
    let Expr::Function(f) = e else { return None };
    if function_name(&f.name)? != "array" {
        return None;
    }
    let FunctionArguments::Subquery(query) = &f.args else { return None };
    if let Some(mapped) = array_over_unnest(query) {
        return Some(mapped);
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return wrap_array_agg(query);
    };
    let [item] = select.projection.as_slice() else { return None };
    let value = match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return None,
    };
    if query.limit_clause.is_some()
        || select.distinct.is_some()
        || !matches!(select.group_by, datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(ref g, _) if g.is_empty())
    {
        return wrap_array_agg(query);
    }
    let order = match &query.order_by {
        Some(o) => format!(" {o}"),
        None => String::new(),
    };
    let mut inner = select.as_ref().clone();
    inner.projection = vec![SelectItem::UnnamedExpr(parse_expr(&format!("array_agg({value}{order})"))?)];
    let mut q = query.as_ref().clone();
    q.order_by = None;
    q.body = Box::new(SetExpr::Select(Box::new(inner)));
    Some(Expr::Subquery(Box::new(q)))
}

/// `ARRAY(SELECT 'p' || x FROM unnest(a) x)`: a map over an array (psql's `\d` writes this
/// over a joined row's array, which a derived table could not reference).
fn array_over_unnest(query: &Query) -> Option<Expr> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    if query.order_by.is_some() || query.limit_clause.is_some() || select.selection.is_some() || select.from.len() != 1 {
        return None;
    }
    let table = &select.from[0];
    if !table.joins.is_empty() {
        return None;
    }
    let (array, alias) = match &table.relation {
        TableFactor::Table {
            name,
            args: Some(args),
            alias: Some(alias),
            ..
        } if function_name(name).as_deref() == Some("unnest") && args.args.len() == 1 => match &args.args[0] {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(a)) => (a.clone(), alias.name.value.clone()),
            _ => return None,
        },
        TableFactor::UNNEST {
            alias: Some(alias),
            array_exprs,
            ..
        } if array_exprs.len() == 1 => (array_exprs[0].clone(), alias.name.value.clone()),
        _ => return None,
    };
    let [SelectItem::UnnamedExpr(value) | SelectItem::ExprWithAlias { expr: value, .. }] = select.projection.as_slice() else {
        return None;
    };
    let is_element = |e: &Expr| matches!(e, Expr::Identifier(i) if i.value == alias);
    let literal = |e: &Expr| match e {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(s),
            ..
        }) => Some(s.replace('\'', "''")),
        _ => None,
    };
    match value {
        e if is_element(e) => Some(array),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::StringConcat,
            right,
        } => {
            let (prefix, suffix) = match (literal(left), literal(right)) {
                (Some(p), None) if is_element(right) => (p, String::new()),
                (None, Some(s)) if is_element(left) => (String::new(), s),
                _ => return None,
            };
            parse_expr(&format!("_pg_concat_each({array}, '{prefix}', '{suffix}')"))
        }
        _ => None,
    }
}

/// `ARRAY(<union or limited query>)`: aggregate over it as a derived table.
fn wrap_array_agg(query: &Query) -> Option<Expr> {
    parse_expr(&format!("(SELECT array_agg(_array._v) FROM ({query}) AS _array(_v))"))
}

/// `LIKE pattern ESCAPE 'c'` with a literal pattern.
fn like_escape(e: &Expr) -> Option<Expr> {
    let (Expr::Like { pattern, escape_char, .. } | Expr::ILike { pattern, escape_char, .. }) = e else {
        return None;
    };
    let escape = match &escape_char.as_ref()?.value {
        Value::SingleQuotedString(s) => s.clone(),
        _ => return None,
    };
    let mut chars = escape.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return None;
    };
    // A literal pattern is translated now; a computed one (a parameter) when it runs.
    let translated = match literal_text(pattern) {
        Some(text) => Expr::Value(Value::SingleQuotedString(translate_escape(&text, c)).into()),
        None => parse_expr(&format!("_pg_like_escape({pattern}, '{}')", escape.replace('\'', "''")))?,
    };
    let mut out = e.clone();
    if let Expr::Like { pattern, escape_char, .. } | Expr::ILike { pattern, escape_char, .. } = &mut out {
        **pattern = translated;
        *escape_char = None;
    }
    Some(out)
}

/// A pattern's text when it is literals joined by `||`.
fn literal_text(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s),
            ..
        }) => Some(s.clone()),
        Expr::Nested(inner) => literal_text(inner),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::StringConcat,
            right,
        } => Some(literal_text(left)? + &literal_text(right)?),
        _ => None,
    }
}

/// A LIKE pattern with escape character `c` rewritten to use `\`.
pub fn translate_escape(pattern: &str, c: char) -> String {
    if c == '\\' {
        return pattern.to_string();
    }
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(ch) = chars.next() {
        if ch == c {
            match chars.next() {
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push(ch),
            }
        } else if ch == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(ch);
        }
    }
    out
}

/// `(row).field` and `(f(x)).field`.
fn field_access(e: &Expr) -> Option<Expr> {
    let Expr::CompoundFieldAccess { root, access_chain } = e else {
        return None;
    };
    if !matches!(root.as_ref(), Expr::Nested(_) | Expr::Function(_)) {
        return None;
    }
    let mut current = match root.as_ref() {
        Expr::Nested(inner) => inner.as_ref().clone(),
        other => other.clone(),
    };
    for access in access_chain {
        match access {
            AccessExpr::Dot(Expr::Identifier(field)) => {
                current = parse_expr(&format!("get_field({current}, '{}')", field.value.replace('\'', "''")))?;
            }
            _ => return None,
        }
    }
    Some(current)
}

/// `information_schema._pg_expandarray(a)`: one row per element with its 1-based position.
fn expand_array(e: &Expr) -> Option<Expr> {
    let Expr::Function(f) = e else { return None };
    if function_name(&f.name)? != "_pg_expandarray" {
        return None;
    }
    let arg = single_arg(&f.args)?;
    parse_expr(&format!("unnest(_pg_expandarray({arg}))"))
}

/// `generate_subscripts(a, 1)`: 1..n (0..n-1 for the 0-based vector columns).
fn generate_subscripts(e: &Expr) -> Option<Expr> {
    let Expr::Function(f) = e else { return None };
    if function_name(&f.name)? != "generate_subscripts" {
        return None;
    }
    let args = args_of(&f.args);
    let [array, _dim] = args.as_slice() else { return None };
    parse_expr(&format!("unnest({})", subscripts(array)))
}

fn is_zero_based(e: &Expr) -> bool {
    let name = match e {
        Expr::Identifier(i) => &i.value,
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(i) => &i.value,
            None => return false,
        },
        _ => return false,
    };
    ZERO_BASED_VECTORS.contains(&name.to_ascii_lowercase().as_str())
}

fn zero_based_subscripts(e: &mut Expr) {
    let Expr::CompoundFieldAccess { root, access_chain } = e else {
        return;
    };
    // `indkey[i]` has the column as its root; `x.indkey[i]` has it as a `.indkey` access.
    let mut zero_based = is_zero_based(root);
    for access in access_chain.iter_mut() {
        match access {
            AccessExpr::Dot(field) => zero_based = is_zero_based(field),
            AccessExpr::Subscript(Subscript::Index { index }) if zero_based => {
                if let Some(shifted) = parse_expr(&format!("({index}) + 1")) {
                    *index = shifted;
                }
                zero_based = false;
            }
            AccessExpr::Subscript(_) => zero_based = false,
        }
    }
}

/// `polroles = '{0}'`: an array written as text, compared with an array column.
fn array_literal_comparison(e: &Expr) -> Option<Expr> {
    let Expr::BinaryOp { left, op, right } = e else { return None };
    if !matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq) {
        return None;
    }
    let array = |x: &Expr| match x {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(s),
            ..
        }) if s.starts_with('{') && s.ends_with('}') => Some(s.clone()),
        _ => None,
    };
    let (literal, literal_left) = match (array(left), array(right)) {
        (Some(l), None) => (l, true),
        (None, Some(r)) => (r, false),
        _ => return None,
    };
    let items: Vec<&str> = literal[1..literal.len() - 1]
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .collect();
    let numeric = items.iter().all(|i| i.parse::<i64>().is_ok());
    let elements: Vec<String> = items
        .iter()
        .map(|i| {
            if numeric {
                i.to_string()
            } else {
                format!("'{}'", i.trim_matches('"').replace('\'', "''"))
            }
        })
        .collect();
    let made = parse_expr(&format!("make_array({})", elements.join(", ")))?;
    let (l, r) = if literal_left {
        (Box::new(made), right.clone())
    } else {
        (left.clone(), Box::new(made))
    };
    Some(Expr::BinaryOp {
        left: l,
        op: op.clone(),
        right: r,
    })
}

/// `user`, `current_role`: the session's user (`session_user()` here).
fn user_keyword(e: &Expr) -> Option<Expr> {
    let name = match e {
        Expr::Identifier(i) if i.quote_style.is_none() => i.value.to_ascii_lowercase(),
        Expr::Function(f) if matches!(f.args, FunctionArguments::None) => function_name(&f.name)?,
        _ => return None,
    };
    matches!(name.as_str(), "user" | "current_role")
        .then(|| parse_expr("session_user()"))
        .flatten()
}

/// `'pg_class'::regclass`, `format('%I.%I', s, t)::regclass`: a relation name resolved when
/// the statement runs, on the session's search_path (pg_catalog first), failing with 42P01
/// when no relation has it. Numeric strings are OIDs, left to the pg_catalog crate's rule.
fn computed_regclass(e: &Expr) -> Option<Expr> {
    let Expr::Cast { expr, data_type, .. } = e else { return None };
    let name = data_type.to_string().to_ascii_lowercase();
    if name.strip_prefix("pg_catalog.").unwrap_or(&name) != "regclass" {
        return None;
    }
    let computed = match expr.as_ref() {
        Expr::Function(f) => {
            function_name(&f.name).is_some_and(|n| matches!(n.as_str(), "format" | "concat" | "concat_ws" | "quote_ident"))
        }
        Expr::BinaryOp {
            op: BinaryOperator::StringConcat,
            ..
        } => true,
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(name),
            ..
        }) => !name.trim().chars().all(|c| c.is_ascii_digit()),
        Expr::Value(ValueWithSpan {
            value: Value::Placeholder(_),
            ..
        }) => true,
        _ => false,
    };
    // Still a regclass, so `::text` around it prints the name.
    computed
        .then(|| parse_expr(&format!("CAST(_pg_regclass({expr}) AS regclass)")))
        .flatten()
}

/// `x::cidr`, `x::inet` → `_pg_cidr(x)`, `_pg_inet(x)`: checked, printed as PostgreSQL does.
fn network_cast(e: &Expr) -> Option<Expr> {
    let Expr::Cast { expr, data_type, .. } = e else { return None };
    let name = data_type.to_string().to_ascii_lowercase();
    match name.strip_prefix("pg_catalog.").unwrap_or(&name) {
        "cidr" => parse_expr(&format!("_pg_cidr({expr})")),
        "inet" => parse_expr(&format!("_pg_inet({expr})")),
        _ => None,
    }
}

/// `(x -> k)::text`: the JSON text of the value, as PostgreSQL prints a json value cast to
/// text. `->` gives datafusion-functions-json's union, which a plain cast turns into NULL.
fn json_arrow_text(e: &Expr) -> Option<Expr> {
    let Expr::Cast { expr, data_type, .. } = e else { return None };
    let name = data_type.to_string().to_ascii_lowercase();
    if !matches!(
        name.strip_prefix("pg_catalog.").unwrap_or(&name),
        "text" | "varchar" | "character varying" | "string"
    ) {
        return None;
    }
    let mut inner = expr.as_ref();
    while let Expr::Nested(x) = inner {
        inner = x;
    }
    let Expr::BinaryOp {
        left,
        op: BinaryOperator::Arrow,
        right,
    } = inner
    else {
        return None;
    };
    parse_expr(&format!("json_get_json({left}, {right})"))
}

/// `x::json`, `x::jsonb` of text: the text is checked (22P02 naming what is wrong) and stays
/// a cast, which types it as JSON. Already checked (`_pg_json_checked(…)`) is left alone.
fn json_cast(e: &Expr) -> Option<Expr> {
    let Expr::Cast { expr, data_type, .. } = e else { return None };
    if !matches!(data_type, DataType::JSON | DataType::JSONB) {
        return None;
    }
    if matches!(expr.as_ref(), Expr::Function(f) if function_name(&f.name).as_deref() == Some("_pg_json_checked")) {
        return None;
    }
    // jsonb keeps the canonical form of the text, json the text as written.
    let canonical = matches!(data_type, DataType::JSONB);
    parse_expr(&format!("CAST(_pg_json_checked({expr}, {canonical}) AS {data_type})"))
}

/// `jsonb_agg(x …)` and `jsonb_object_agg(k, v …)` (and their `json_` names): `array_agg` of
/// the `to_jsonb` values, keeping the call's ORDER BY, FILTER and OVER, made JSON by
/// `_pg_json_agg_list`/`_pg_json_object_list`.
fn json_aggregate(e: &Expr) -> Option<Expr> {
    let Expr::Function(f) = e else { return None };
    let name = function_name(&f.name)?;
    let FunctionArguments::List(list) = &f.args else { return None };
    let arg = |i: usize| match list.args.get(i) {
        Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(x))) => Some(x.clone()),
        _ => None,
    };
    let gathered = |x: Expr| {
        let mut call = f.clone();
        call.name = ObjectName(vec![ObjectNamePart::Identifier(datafusion::sql::sqlparser::ast::Ident::new(
            "array_agg",
        ))]);
        if let FunctionArguments::List(l) = &mut call.args {
            l.args = vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(x))];
        }
        Expr::Function(call)
    };
    let to_jsonb = |x: Expr| parse_expr(&format!("to_jsonb({x})"));
    match (name.as_str(), list.args.len()) {
        ("jsonb_agg", 1) => {
            let items = gathered(to_jsonb(arg(0)?)?);
            parse_expr(&format!("_pg_json_agg_list({items})"))
        }
        ("json_agg", 1) => {
            let items = gathered(to_jsonb(arg(0)?)?);
            parse_expr(&format!("_pg_json_agg_list_json({items})"))
        }
        (aggregate @ ("jsonb_object_agg" | "json_object_agg"), 2) => {
            let keys = gathered(arg(0)?);
            let values = gathered(to_jsonb(arg(1)?)?);
            let finish = if aggregate == "json_object_agg" {
                "_pg_json_object_list_json"
            } else {
                "_pg_json_object_list"
            };
            parse_expr(&format!("{finish}({keys}, {values})"))
        }
        _ => None,
    }
}

/// `a << b`, `<<=`, `>>`, `>>=`, `&&` where a side is a network (a `::cidr`/`::inet` cast,
/// or `network(…)`): containment and overlap, not bit shifts or array overlap.
fn network_operator(e: &Expr) -> Option<Expr> {
    let Expr::BinaryOp { left, op, right } = e else { return None };
    let is_net = |x: &Expr| {
        let mut x = x;
        while let Expr::Nested(inner) = x {
            x = inner;
        }
        matches!(x, Expr::Function(f) if function_name(&f.name).is_some_and(|n| matches!(n.as_str(), "_pg_cidr" | "_pg_inet" | "network")))
    };
    if !is_net(left) && !is_net(right) {
        return None;
    }
    let call = match op {
        BinaryOperator::PGBitwiseShiftLeft => format!("_pg_net_contains({right}, {left}, true)"),
        BinaryOperator::PGBitwiseShiftRight => format!("_pg_net_contains({left}, {right}, true)"),
        BinaryOperator::Custom(o) if o == "<<=" => format!("_pg_net_contains({right}, {left}, false)"),
        BinaryOperator::Custom(o) if o == ">>=" => format!("_pg_net_contains({left}, {right}, false)"),
        BinaryOperator::PGOverlap => format!("_pg_net_overlaps({left}, {right})"),
        _ => return None,
    };
    parse_expr(&call)
}

/// `typelem::regtype::text`, `attrelid::regclass::text`: an OID shown by its name, as the
/// oid-alias types print themselves.
fn oid_alias_text(e: &Expr) -> Option<Expr> {
    let Expr::Cast { expr, data_type, .. } = e else { return None };
    let bare = |t: &DataType| {
        let name = t.to_string().to_ascii_lowercase();
        name.strip_prefix("pg_catalog.").unwrap_or(&name).to_string()
    };
    if !matches!(bare(data_type).as_str(), "text" | "varchar" | "name" | "character varying") {
        return None;
    }
    let Expr::Cast {
        expr: inner,
        data_type: alias,
        ..
    } = expr.as_ref()
    else {
        return None;
    };
    if matches!(inner.as_ref(), Expr::Value(_)) {
        return None;
    }
    let function = match bare(alias).as_str() {
        "regtype" => "format_type",
        "regclass" => "_pg_regclass_name",
        "regnamespace" => "_pg_regnamespace_name",
        _ => return None,
    };
    let extra = if function == "format_type" { ", NULL" } else { "" };
    parse_expr(&format!("{function}({inner}{extra})"))
}

/// `coalesce(a, '{}')`: the untyped literal is an empty array of `a`'s type.
fn empty_array_literal(e: &Expr) -> Option<Expr> {
    let Expr::Function(f) = e else { return None };
    if function_name(&f.name)? != "coalesce" {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else { return None };
    let empty = |a: &FunctionArg| matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(ValueWithSpan { value: Value::SingleQuotedString(s), .. }))) if s == "{}");
    if !list.args.iter().any(empty) {
        return None;
    }
    let mut out = f.clone();
    if let FunctionArguments::List(list) = &mut out.args {
        for a in list.args.iter_mut() {
            if empty(a) {
                *a = FunctionArg::Unnamed(FunctionArgExpr::Expr(parse_expr("make_array()")?));
            }
        }
    }
    Some(Expr::Function(out))
}

/// `typinput = 'pg_catalog.array_in'::regproc` (or `= 'array_in'`): compare names.
fn regproc_name_comparison(e: &Expr) -> Option<Expr> {
    let Expr::BinaryOp { left, op, right } = e else { return None };
    if !matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq) {
        return None;
    }
    let names_column = |x: &Expr| is_named(x, REGPROC_NAME_COLUMNS);
    let (column, other, column_left) = if names_column(left) {
        (left, right, true)
    } else if names_column(right) {
        (right, left, false)
    } else {
        return None;
    };
    let name = regproc_literal(other)?;
    let bare = name.strip_prefix("pg_catalog.").unwrap_or(&name).to_string();
    let literal = Expr::Value(Value::SingleQuotedString(bare).into());
    let (l, r) = if column_left {
        (column.clone(), Box::new(literal))
    } else {
        (Box::new(literal), column.clone())
    };
    Some(Expr::BinaryOp {
        left: l,
        op: op.clone(),
        right: r,
    })
}

fn regproc_literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(s),
            ..
        }) if !s.chars().all(|c| c.is_ascii_digit()) => Some(s.clone()),
        Expr::Cast {
            expr,
            data_type,
            kind: CastKind::DoubleColon | CastKind::Cast,
            ..
        } if is_regproc(data_type) => regproc_literal(expr),
        _ => None,
    }
}

fn is_regproc(t: &DataType) -> bool {
    let name = t.to_string().to_ascii_lowercase();
    matches!(name.strip_prefix("pg_catalog.").unwrap_or(&name), "regproc" | "regprocedure")
}

fn is_named(e: &Expr, names: &[&str]) -> bool {
    let last = match e {
        Expr::Identifier(i) => i,
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(i) => i,
            None => return false,
        },
        _ => return false,
    };
    names.contains(&last.value.to_ascii_lowercase().as_str())
}

/// Rewrites correlated scalar subqueries into forms DataFusion decorrelates.
struct Correlated;

impl VisitorMut for Correlated {
    type Break = ();

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if let Expr::Subquery(query) = e {
            if let Some(new) = domain_base_query(query).or_else(|| decorrelate(query)) {
                *e = new;
            }
        }
        ControlFlow::Continue(())
    }
}

/// Catalogs that hold no rows here: cloudpg has no row security policies, extended
/// statistics, triggers, inheritance, rewrite rules or publications.
pub const EMPTY_CATALOGS: &[&str] = &[
    "pg_policy",
    "pg_statistic_ext",
    "pg_trigger",
    "pg_inherits",
    "pg_rewrite",
    "pg_publication",
    "pg_publication_rel",
    "pg_publication_namespace",
    "pg_sequence",
    "pg_attrdef",
];

/// A SELECT whose FROM starts with an empty catalog (joined to others by inner or left
/// joins) has no rows, so subqueries in its select list never run: they become NULL, which
/// spares planning correlations DataFusion cannot decorrelate (psql's policy query).
struct EmptySources;

impl VisitorMut for EmptySources {
    type Break = ();

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        // A scalar subquery over an empty catalog is NULL.
        if let Expr::Subquery(q) = e {
            if matches!(q.body.as_ref(), SetExpr::Select(select) if reads_empty_catalog(select)) {
                *e = Expr::Value(Value::Null.into());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        if !reads_empty_catalog(select) {
            return ControlFlow::Continue(());
        }
        for item in select.projection.iter_mut() {
            if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
                let _ = visit_expressions_mut(e, |x| {
                    let subquery = matches!(x, Expr::Subquery(_))
                        || matches!(x, Expr::Function(f) if matches!(f.args, FunctionArguments::Subquery(_)));
                    if subquery {
                        *x = Expr::Value(Value::Null.into());
                    }
                    ControlFlow::<()>::Continue(())
                });
            }
        }
        ControlFlow::Continue(())
    }
}

/// Whether a SELECT has no rows: its FROM starts with an empty catalog, joined to the rest by
/// inner or left joins.
fn reads_empty_catalog(select: &Select) -> bool {
    use datafusion::sql::sqlparser::ast::JoinOperator;
    let Some(first) = select.from.first() else { return false };
    let empty = matches!(&first.relation, TableFactor::Table { name, args: None, .. }
        if function_name(name).is_some_and(|n| EMPTY_CATALOGS.contains(&n.as_str())));
    let keeps_rows = first.joins.iter().any(|j| {
        !matches!(
            j.join_operator,
            JoinOperator::Join(_)
                | JoinOperator::Inner(_)
                | JoinOperator::Left(_)
                | JoinOperator::LeftOuter(_)
                | JoinOperator::CrossJoin(_)
        )
    });
    empty && !keeps_rows
}

/// `ORDER BY <expression with a subquery>`, which DataFusion only plans in a projection: the
/// expression is computed as a hidden column of a derived table and sorted on outside it.
struct SortSubqueries;

impl VisitorMut for SortSubqueries {
    type Break = ();

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(q) = sort_outside(query) {
            *query = q;
        }
        ControlFlow::Continue(())
    }
}

fn has_subquery(e: &Expr) -> bool {
    let mut found = false;
    let _ = visit_expressions(e, |x| {
        if matches!(x, Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. }) {
            found = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    found
}

fn sort_outside(query: &Query) -> Option<Query> {
    let order = query.order_by.as_ref()?;
    let datafusion::sql::sqlparser::ast::OrderByKind::Expressions(items) = &order.kind else {
        return None;
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let collision = hidden_column_collision(select, items);
    if !collision && !items.iter().any(|i| has_subquery(&i.expr)) {
        return None;
    }
    if select.distinct.is_some() {
        return None;
    }
    let names: Vec<String> = select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.value.clone()),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => parts.last().map(|i| i.value.clone()),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let mut inner = select.as_ref().clone();
    let mut sort = Vec::new();
    for (k, item) in items.iter().enumerate() {
        let mut outer_item = item.clone();
        if has_subquery(&item.expr) || collision && !is_output_reference(&item.expr, &names) {
            let hidden = format!("__order_{k}");
            inner.projection.push(SelectItem::ExprWithAlias {
                expr: item.expr.clone(),
                alias: datafusion::sql::sqlparser::ast::Ident::with_quote('"', hidden.clone()),
            });
            outer_item.expr = Expr::Identifier(datafusion::sql::sqlparser::ast::Ident::with_quote('"', hidden));
        }
        sort.push(outer_item.to_string());
    }
    let columns: Vec<String> = names.iter().map(|n| format!("\"{}\"", n.replace('"', "\"\""))).collect();
    let mut text = format!(
        "SELECT {} FROM ({inner}) AS __sorted ORDER BY {}",
        columns.join(", "),
        sort.join(", ")
    );
    if let Some(limit) = &query.limit_clause {
        text.push_str(&format!(" {limit}"));
    }
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, &text).ok()?;
    match statements.pop()? {
        Statement::Query(q) => {
            let mut q = *q;
            q.with = query.with.clone();
            Some(q)
        }
        _ => None,
    }
}

/// Whether ORDER BY names a column `t.c` the SELECT list does not show as itself while an
/// output column computed from other things is also called `c` (`SELECT t.oid::regclass …
/// ORDER BY t.oid`): DataFusion would add `t.c` beside the output `c` and refuse the pair as
/// ambiguous, so the sort moves outside.
fn hidden_column_collision(select: &Select, items: &[datafusion::sql::sqlparser::ast::OrderByExpr]) -> bool {
    let computed: HashSet<String> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { expr, alias } if !matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) => {
                Some(crate::sql::names::client_name(&alias.value).to_ascii_lowercase())
            }
            _ => None,
        })
        .collect();
    if computed.is_empty() {
        return false;
    }
    items.iter().any(|item| {
        let mut hit = false;
        let _ = visit_expressions(&item.expr, |x| {
            if let Expr::CompoundIdentifier(parts) = x {
                hit |= parts.last().is_some_and(|c| computed.contains(&c.value.to_ascii_lowercase()));
            }
            ControlFlow::<()>::Continue(())
        });
        hit
    })
}

/// An ORDER BY item that names an output column or its position.
fn is_output_reference(e: &Expr, names: &[String]) -> bool {
    match e {
        Expr::Identifier(i) => names
            .iter()
            .any(|n| crate::sql::names::client_name(n).eq_ignore_ascii_case(&i.value)),
        Expr::Value(ValueWithSpan {
            value: Value::Number(..), ..
        }) => true,
        _ => false,
    }
}

/// The oid-alias types print as names (`c.oid::regclass` → `ec2.vpcs`): where the outermost
/// SELECT shows such a cast, it shows the name, as PostgreSQL's output function would.
/// Inside the query the cast keeps its number, so joins and comparisons on it still work.
pub fn shown_oid_aliases(stmt: &mut Statement) {
    let Statement::Query(query) = stmt else { return };
    show_oid_aliases(&mut query.body);
}

fn show_oid_aliases(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            for item in select.projection.iter_mut() {
                let SelectItem::ExprWithAlias { expr, .. } = item else { continue };
                if let Some(shown) = oid_alias_shown(expr) {
                    *expr = shown;
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            show_oid_aliases(left);
            show_oid_aliases(right);
        }
        _ => {}
    }
}

fn oid_alias_shown(e: &Expr) -> Option<Expr> {
    let Expr::Cast {
        expr: inner, data_type, ..
    } = e
    else {
        return None;
    };
    let name = data_type.to_string().to_ascii_lowercase();
    let literal = matches!(inner.as_ref(), Expr::Value(_));
    match name.strip_prefix("pg_catalog.").unwrap_or(&name) {
        "regclass" => parse_expr(&format!("_pg_regclass_name({e})")),
        "regtype" if !literal => parse_expr(&format!("format_type({inner}, NULL)")),
        "regnamespace" if !literal => parse_expr(&format!("_pg_regnamespace_name({inner})")),
        _ => None,
    }
}

/// `SELECT generate_series(a, b) AS i`: a set-returning function in a SELECT list returns rows,
/// as `unnest` of the list DataFusion's scalar `generate_series` returns.
struct ProjectedSeries;

impl VisitorMut for ProjectedSeries {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        for item in select.projection.iter_mut() {
            if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
                if matches!(e, Expr::Function(f) if function_name(&f.name).as_deref() == Some("generate_series")) {
                    if let Some(rows) = parse_expr(&format!("unnest({e})")) {
                        *e = rows;
                    }
                    continue;
                }
                // Anywhere in the item: `jsonb_array_elements(tags) ->> 'Key'` is a set too.
                let _ = visit_expressions_mut(e, |x| {
                    if let Expr::Function(f) = &*x {
                        if let Some(rows) = function_name(&f.name).and_then(|n| json_set_function(&n, &args_of(&f.args))) {
                            *x = rows;
                        }
                    }
                    ControlFlow::<()>::Continue(())
                });
            }
        }
        ControlFlow::Continue(())
    }
}

/// `jsonb_array_elements(x)`, `…_text`, `jsonb_object_keys(x)`, `jsonb_path_query(x, path)`
/// (and the `json_` names) in a SELECT list: one row per element, key or item, as `unnest`
/// of the list they make; JSON elements stay jsonb.
fn json_set_function(name: &str, args: &[&Expr]) -> Option<Expr> {
    let (call, json) = json_set_list(name, args)?;
    let rows = format!("unnest({call})");
    parse_expr(&if json { format!("CAST({rows} AS JSONB)") } else { rows })
}

/// The list a JSON set-returning function's rows come from, and whether they are JSON.
fn json_set_list(name: &str, args: &[&Expr]) -> Option<(String, bool)> {
    Some(match (name, args) {
        ("jsonb_array_elements" | "json_array_elements", [a]) => (format!("_pg_json_elements({a}, false)"), true),
        ("jsonb_array_elements_text" | "json_array_elements_text", [a]) => (format!("_pg_json_elements({a}, true)"), false),
        ("jsonb_object_keys" | "json_object_keys", [a]) => (format!("_pg_json_keys({a})"), false),
        ("jsonb_path_query", [a, path, rest @ ..]) if rest.len() <= 2 => {
            let vars = rest.first().map_or("NULL".to_string(), ToString::to_string);
            (format!("_pg_json_path_query({a}, {path}, {vars})"), true)
        }
        _ => return None,
    })
}

/// `x IN (SELECT …)` in a SELECT list, which DataFusion plans only in filters: membership in
/// the subquery's values gathered into an array by a scalar subquery.
struct ProjectedMembership;

impl VisitorMut for ProjectedMembership {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        for item in select.projection.iter_mut() {
            if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
                let _ = visit_expressions_mut(e, |x| {
                    if let Some(new) = membership(x) {
                        *x = new;
                    }
                    ControlFlow::<()>::Continue(())
                });
            }
        }
        ControlFlow::Continue(())
    }
}

fn membership(e: &Expr) -> Option<Expr> {
    let Expr::InSubquery { expr, subquery, negated } = e else {
        return None;
    };
    let values = wrap_array_agg(subquery)?;
    let not = if *negated { "NOT " } else { "" };
    parse_expr(&format!("{not}array_has({values}, {expr})"))
}

/// asyncpg's type introspection finds a domain's base type with a correlated recursive query
/// over `pg_type.typbasetype` (`WITH RECURSIVE typebases(oid, depth) AS (SELECT t2.typbasetype,
/// 0 FROM pg_type t2 WHERE t2.oid = t.oid UNION ALL …) SELECT oid … ORDER BY depth DESC LIMIT
/// 1`), which DataFusion cannot decorrelate: it is `_pg_domain_base(t.oid)`.
fn domain_base_query(query: &Query) -> Option<Expr> {
    let with = query.with.as_ref()?;
    let [cte] = with.cte_tables.as_slice() else { return None };
    if !with.recursive || !cte.query.to_string().to_ascii_lowercase().contains("typbasetype") {
        return None;
    }
    let SetExpr::SetOperation { left, .. } = cte.query.body.as_ref() else {
        return None;
    };
    let SetExpr::Select(anchor) = left.as_ref() else { return None };
    let Some(Expr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    }) = &anchor.selection
    else {
        return None;
    };
    let defined = defined_names(anchor);
    let outer = match (refs(left, &defined), refs(right, &defined)) {
        (Refs::Inner, Refs::Outer) => right,
        (Refs::Outer, Refs::Inner) => left,
        _ => return None,
    };
    parse_expr(&format!("_pg_domain_base({outer})"))
}

/// Where an expression's columns come from, seen from a subquery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refs {
    /// Only the subquery's own tables (or none at all).
    Inner,
    /// Only the outer query's.
    Outer,
    Mixed,
}

fn refs(e: &Expr, defined: &HashSet<String>) -> Refs {
    struct Scan<'a> {
        defined: &'a HashSet<String>,
        inner: bool,
        outer: bool,
    }
    impl Visitor for Scan<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                    let qualifier: Vec<String> = parts[..parts.len() - 1].iter().map(|i| i.value.to_ascii_lowercase()).collect();
                    if self.defined.contains(&qualifier.join(".")) {
                        self.inner = true;
                    } else {
                        self.outer = true;
                    }
                }
                Expr::Identifier(_) => self.inner = true,
                // A nested query's references are its own business: treat it as mixed.
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                    self.inner = true;
                    self.outer = true;
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut scan = Scan {
        defined,
        inner: false,
        outer: false,
    };
    let _ = e.visit(&mut scan);
    match (scan.inner, scan.outer) {
        (_, false) => Refs::Inner,
        (false, true) => Refs::Outer,
        (true, true) => Refs::Mixed,
    }
}

fn is_comparison(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Eq | BinaryOperator::NotEq | BinaryOperator::Lt | BinaryOperator::LtEq | BinaryOperator::Gt | BinaryOperator::GtEq
    )
}

/// A correlated scalar subquery `(SELECT v FROM t WHERE …)`, which PostgreSQL requires to
/// return at most one row, as subqueries DataFusion can decorrelate: the value is
/// aggregated with `first_value`, conditions on the outer row alone move into a `CASE`, and
/// a comparison between an inner and an outer column compares the inner column's own
/// subquery to the outer column. Equality correlations stay, as DataFusion joins on them.
fn decorrelate(query: &Query) -> Option<Expr> {
    if query.limit_clause.is_some() || query.fetch.is_some() || query.with.is_some() {
        return None;
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let plain_group = matches!(&select.group_by, datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(g, _) if g.is_empty());
    if select.distinct.is_some() || !plain_group || select.having.is_some() || select.projection.len() != 1 {
        return None;
    }
    let value = match &select.projection[0] {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return None,
    };
    if is_aggregate_call(value) || !is_correlated(select) {
        return None;
    }
    let defined = defined_names(select);
    let all: Vec<Expr> = select
        .selection
        .as_ref()
        .map(|w| crate::sql::ast::conjuncts(w).into_iter().cloned().collect())
        .unwrap_or_default();
    let (mut kept, mut conditions) = (Vec::new(), Vec::new());
    let mut compared = Vec::new();
    for c in all {
        match refs(&c, &defined) {
            Refs::Inner => kept.push(c.to_string()),
            Refs::Outer => conditions.push(c.to_string()),
            Refs::Mixed => match &c {
                Expr::BinaryOp { left, op, right } if is_comparison(op) => match (refs(left, &defined), refs(right, &defined)) {
                    (Refs::Inner, Refs::Outer) | (Refs::Outer, Refs::Inner) if *op == BinaryOperator::Eq => kept.push(c.to_string()),
                    (Refs::Inner, Refs::Outer) => compared.push((left.to_string(), op.clone(), right.to_string(), true)),
                    (Refs::Outer, Refs::Inner) => compared.push((right.to_string(), op.clone(), left.to_string(), false)),
                    _ => kept.push(c.to_string()),
                },
                _ => kept.push(c.to_string()),
            },
        }
    }
    let from: Vec<String> = select.from.iter().map(ToString::to_string).collect();
    let filter = if kept.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", kept.join(" AND "))
    };
    let sub = |e: &str| format!("(SELECT first_value({e}) FROM {}{filter})", from.join(", "));
    for (inner, op, outer, inner_left) in compared {
        conditions.push(if inner_left {
            format!("{} {op} {outer}", sub(&inner))
        } else {
            format!("{outer} {op} {}", sub(&inner))
        });
    }
    let result = sub(&value.to_string());
    if conditions.is_empty() {
        parse_expr(&result)
    } else {
        parse_expr(&format!("CASE WHEN {} THEN {result} END", conditions.join(" AND ")))
    }
}

fn is_aggregate_call(e: &Expr) -> bool {
    match e {
        Expr::Function(f) => f.over.is_none() && function_name(&f.name).is_some_and(|n| AGGREGATES.contains(&n.as_str())),
        Expr::Nested(inner) => is_aggregate_call(inner),
        _ => false,
    }
}

/// The names a SELECT's FROM defines: tables (with and without their schema) and aliases.
fn defined_names(select: &Select) -> HashSet<String> {
    let mut defined = HashSet::new();
    for twj in &select.from {
        collect_names(&twj.relation, &mut defined);
        for j in &twj.joins {
            collect_names(&j.relation, &mut defined);
        }
    }
    defined
}

/// Whether a SELECT names a table its FROM does not define (an outer query's).
fn is_correlated(select: &Select) -> bool {
    let defined = defined_names(select);
    let mut finder = OuterReference {
        defined: &defined,
        found: false,
    };
    let _ = select.visit(&mut finder);
    finder.found
}

fn collect_names(factor: &TableFactor, out: &mut HashSet<String>) {
    match factor {
        TableFactor::Table { name, alias, .. } => {
            let parts: Vec<String> = name
                .0
                .iter()
                .filter_map(|p| p.as_ident().map(|i| i.value.to_ascii_lowercase()))
                .collect();
            for start in 0..parts.len() {
                out.insert(parts[start..].join("."));
            }
            if let Some(a) = alias {
                out.insert(a.name.value.to_ascii_lowercase());
            }
        }
        TableFactor::Derived { alias: Some(a), .. }
        | TableFactor::Function { alias: Some(a), .. }
        | TableFactor::UNNEST { alias: Some(a), .. } => {
            out.insert(a.name.value.to_ascii_lowercase());
        }
        TableFactor::NestedJoin { table_with_joins, alias } => {
            collect_names(&table_with_joins.relation, out);
            for j in &table_with_joins.joins {
                collect_names(&j.relation, out);
            }
            if let Some(a) = alias {
                out.insert(a.name.value.to_ascii_lowercase());
            }
        }
        _ => {}
    }
}

struct OuterReference<'a> {
    defined: &'a HashSet<String>,
    found: bool,
}

impl Visitor for OuterReference<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if let Expr::CompoundIdentifier(parts) = e {
            if parts.len() >= 2 {
                let qualifier: Vec<String> = parts[..parts.len() - 1].iter().map(|i| i.value.to_ascii_lowercase()).collect();
                if !self.defined.contains(&qualifier.join(".")) {
                    self.found = true;
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Set-returning functions in FROM. `AS i` names the column `i`, as in PostgreSQL; and a
/// call DataFusion's table functions cannot take (`unnest`, `generate_subscripts`, or
/// arguments that are not literals) becomes `(SELECT unnest(<the list>) AS i) AS i`.
struct FunctionAliases;

impl VisitorMut for FunctionAliases {
    type Break = ();

    /// `FROM t, jsonb_array_elements(t.x) r WHERE r ->> 'k' = …`: PostgreSQL lets the alias of
    /// a one-column function stand for its column; here it becomes `r.value`.
    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        let columns = one_column_aliases(select);
        if columns.is_empty() {
            return ControlFlow::Continue(());
        }
        let qualify = |e: &mut Expr| {
            let _ = visit_expressions_mut(e, |x| {
                if let Expr::Identifier(i) = x {
                    if let Some(column) = columns.get(&crate::sql::names::ident_name(i)) {
                        *x = Expr::CompoundIdentifier(vec![i.clone(), datafusion::sql::sqlparser::ast::Ident::new(column.clone())]);
                    }
                }
                ControlFlow::<()>::Continue(())
            });
        };
        for item in select.projection.iter_mut() {
            if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
                qualify(e);
            }
        }
        if let Some(e) = select.selection.as_mut() {
            qualify(e);
        }
        if let Some(e) = select.having.as_mut() {
            qualify(e);
        }
        if let datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
            exprs.iter_mut().for_each(qualify);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let Some(derived) = set_function_table(factor) {
            *factor = derived;
            return ControlFlow::Continue(());
        }
        if let TableFactor::Table {
            name,
            args: Some(_),
            alias: Some(alias),
            ..
        } = factor
        {
            let scalar = function_name(name).is_some_and(|n| SCALAR_SET_FUNCTIONS.contains(&n.as_str()));
            if scalar && alias.columns.is_empty() {
                alias.columns = vec![TableAliasColumnDef::from_name(alias.name.value.clone())];
            }
        }
        ControlFlow::Continue(())
    }
}

/// The aliases of the one-column set-returning functions with named columns in a SELECT's
/// FROM (`jsonb_array_elements(…) r`), each with its column's name.
fn one_column_aliases(select: &Select) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    let factors = select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
    for factor in factors {
        let (name, alias) = match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                alias: Some(alias),
                with_ordinality: false,
                ..
            }
            | TableFactor::Function {
                name,
                alias: Some(alias),
                with_ordinality: false,
                ..
            } => (name, alias),
            _ => continue,
        };
        let named = matches!(
            function_name(name).as_deref(),
            Some("jsonb_array_elements" | "json_array_elements" | "jsonb_array_elements_text" | "json_array_elements_text")
        );
        if named {
            let column = alias.columns.first().map_or("value".to_string(), |c| c.name.value.clone());
            out.insert(crate::sql::names::ident_name(&alias.name), column);
        }
    }
    out
}

fn is_literal(e: &Expr) -> bool {
    match e {
        Expr::Value(_) => true,
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) => is_literal(expr),
        Expr::Cast { expr, .. } => is_literal(expr),
        _ => false,
    }
}

/// One column a set-returning function in FROM yields: its name when the alias names none,
/// the list whose elements are its rows, and whether they are JSON.
struct SetColumn {
    name: String,
    list: String,
    json: bool,
}

/// The columns of a set-returning function call in FROM, `None` for one DataFusion's own
/// table functions take as they are.
fn set_function_columns(function: &str, values: &[&Expr], default_name: &str, ordinality: bool) -> Option<Vec<SetColumn>> {
    let column = |list: String, json: bool| SetColumn {
        name: default_name.to_string(),
        list,
        json,
    };
    let named = |name: &str, list: String, json: bool| SetColumn {
        name: name.to_string(),
        list,
        json,
    };
    let columns = match (function, values) {
        ("generate_series", _) if !ordinality && values.iter().all(|v| is_literal(v)) => return None,
        ("generate_series", [a, b]) => vec![column(format!("generate_series({a}, {b})"), false)],
        ("generate_series", [a, b, step]) => vec![column(format!("generate_series({a}, {b}, {step})"), false)],
        ("unnest", [a]) => vec![column(a.to_string(), false)],
        ("generate_subscripts", [a, _dim]) => vec![column(subscripts(a), false)],
        ("jsonb_array_elements" | "json_array_elements", [a]) => vec![named("value", format!("_pg_json_elements({a}, false)"), true)],
        ("jsonb_array_elements_text" | "json_array_elements_text", [a]) => {
            vec![named("value", format!("_pg_json_elements({a}, true)"), false)]
        }
        ("jsonb_object_keys" | "json_object_keys" | "jsonb_path_query", _) => {
            let (list, json) = json_set_list(function, values)?;
            vec![column(list, json)]
        }
        ("jsonb_each" | "json_each", [a]) => vec![
            named("key", format!("_pg_json_keys({a})"), false),
            named("value", format!("_pg_json_values({a}, false)"), true),
        ],
        ("jsonb_each_text" | "json_each_text", [a]) => vec![
            named("key", format!("_pg_json_keys({a})"), false),
            named("value", format!("_pg_json_values({a}, true)"), false),
        ],
        // A scalar function in FROM is a one-row table.
        (f, _) if !TABLE_FUNCTIONS.contains(&f) => {
            let args: Vec<String> = values.iter().map(ToString::to_string).collect();
            vec![column(format!("[{function}({})]", args.join(", ")), false)]
        }
        _ => return None,
    };
    Some(columns)
}

fn set_function_table(factor: &TableFactor) -> Option<TableFactor> {
    let (name, args, alias, ordinality) = match factor {
        TableFactor::Table {
            name,
            args: Some(args),
            alias,
            with_ordinality,
            ..
        } => (name, args.args.as_slice(), alias, *with_ordinality),
        TableFactor::Function {
            name,
            args,
            alias,
            with_ordinality,
            ..
        } => (name, args.as_slice(), alias, *with_ordinality),
        _ => return None,
    };
    let function = function_name(name)?;
    let values: Vec<&Expr> = args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let alias_columns: Vec<String> = alias
        .as_ref()
        .map(|a| a.columns.iter().map(|c| c.name.value.clone()).collect())
        .unwrap_or_default();
    let default_name = alias.as_ref().map_or(function.clone(), |a| a.name.value.clone());
    let mut columns = set_function_columns(&function, &values, &default_name, ordinality)?;
    if ordinality {
        let first = &columns.first()?.list;
        columns.push(SetColumn {
            name: "ordinality".into(),
            list: format!("range(CAST(1 AS BIGINT), CAST(coalesce(cardinality({first}), 0) + 1 AS BIGINT))"),
            json: false,
        });
    }
    let items: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let name = alias_columns.get(i).unwrap_or(&c.name).replace('"', "\"\"");
            let rows = format!("unnest({})", c.list);
            let rows = if c.json { format!("CAST({rows} AS JSONB)") } else { rows };
            format!("{rows} AS \"{name}\"")
        })
        .collect();
    let table = default_name.replace('"', "\"\"");
    // Every function call in FROM may read the relations before it, as in PostgreSQL.
    let lateral = if values.iter().all(|v| is_literal(v)) { "" } else { "LATERAL " };
    let sql = format!("SELECT * FROM {lateral}(SELECT {}) AS \"{table}\"", items.join(", "));
    let Ok(mut statements) = Parser::parse_sql(&PostgreSqlDialect {}, &sql) else {
        return None;
    };
    let Some(Statement::Query(q)) = statements.pop() else { return None };
    let SetExpr::Select(select) = *q.body else { return None };
    select.from.into_iter().next().map(|t| t.relation)
}

/// The subscripts of an array as a list: from 1 (from 0 for `int2vector`/`oidvector`).
fn subscripts(array: &Expr) -> String {
    let first = if is_zero_based(array) { 0 } else { 1 };
    format!("range(CAST({first} AS BIGINT), CAST({first} + coalesce(array_length({array}, 1), 0) AS BIGINT))")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut stmt = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().remove(0);
        rewrite(&mut stmt);
        stmt.to_string()
    }

    #[test]
    fn array_of_a_subquery_aggregates() {
        assert_eq!(
            rewritten("SELECT array(SELECT rolname FROM pg_roles r WHERE r.oid = ANY(p.polroles) ORDER BY 1) FROM policies p"),
            "SELECT (SELECT array_agg(rolname ORDER BY 1) FROM pg_roles r WHERE r.oid = ANY(p.polroles)) FROM policies p"
        );
        assert_eq!(
            rewritten("SELECT array(SELECT 1 UNION SELECT 2)"),
            "SELECT (SELECT array_agg(_array._v) FROM (SELECT 1 UNION SELECT 2) AS _array (_v))"
        );
    }

    #[test]
    fn correlated_scalar_subqueries_are_aggregated() {
        assert_eq!(
            rewritten("SELECT (SELECT c.relkind = 'c' FROM pg_class c WHERE c.oid = t.typrelid) FROM pg_type t"),
            "SELECT (SELECT first_value(c.relkind = 'c') FROM pg_class c WHERE c.oid = t.typrelid) FROM pg_type t"
        );
        // Fully qualified outer columns, as SQLAlchemy writes them.
        let sql = "SELECT (SELECT pg_catalog.pg_get_expr(pg_catalog.defaults.adbin, pg_catalog.defaults.adrelid) FROM pg_catalog.defaults \
                   WHERE pg_catalog.defaults.adrelid = pg_catalog.pg_attribute.attrelid) FROM pg_catalog.pg_attribute";
        assert!(rewritten(sql).contains("first_value(pg_catalog.pg_get_expr"), "{}", rewritten(sql));
        // Uncorrelated and already aggregated subqueries stay as they are.
        let same = "SELECT (SELECT c.relname FROM pg_class c WHERE c.oid = 1259)";
        assert_eq!(rewritten(same), same);
        let same = "SELECT (SELECT count(*) FROM pg_class c WHERE c.relnamespace = n.oid) FROM pg_namespace n";
        assert_eq!(rewritten(same), same);
    }

    #[test]
    fn oid_aliases_show_names_only_in_the_outermost_select() {
        let shown = |sql: &str| {
            let mut stmt = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().remove(0);
            crate::sql::names::name_columns(&mut stmt);
            shown_oid_aliases(&mut stmt);
            stmt.to_string()
        };
        assert_eq!(
            shown("SELECT c.oid::regclass, t.typelem::regtype FROM c, t"),
            "SELECT _pg_regclass_name(c.oid::REGCLASS) AS \"oid\", format_type(t.typelem, NULL) AS \"typelem\" FROM c, t"
        );
        let inner = "SELECT * FROM (SELECT c.oid::REGCLASS AS r FROM c) AS s WHERE s.r = 1";
        assert_eq!(shown(inner), inner);
    }

    #[test]
    fn a_sort_on_a_column_hidden_behind_a_computed_output_moves_outside() {
        assert_eq!(
            rewritten("SELECT f(c.oid) AS oid FROM c ORDER BY c.oid, oid LIMIT 3"),
            "SELECT \"oid\" FROM (SELECT f(c.oid) AS oid, c.oid AS \"__order_0\" FROM c) AS __sorted ORDER BY \"__order_0\", oid LIMIT 3"
        );
        let plain = "SELECT c.oid AS oid FROM c ORDER BY c.oid";
        assert_eq!(rewritten(plain), plain);
    }

    #[test]
    fn unqualified_catalog_relations_are_pg_catalogs() {
        let qualified = |sql: &str| {
            let mut stmt = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().remove(0);
            qualify_catalog_relations(&mut stmt);
            stmt.to_string()
        };
        assert_eq!(
            qualified("SELECT pid FROM pg_stat_activity"),
            "SELECT pid FROM pg_catalog.pg_stat_activity"
        );
        let shadowed = "WITH pg_stat_activity AS (SELECT 1 AS pid) SELECT pid FROM pg_stat_activity";
        assert_eq!(qualified(shadowed), shadowed);
        let quoted = "SELECT * FROM \"pg_stat_activity\"";
        assert_eq!(qualified(quoted), quoted);
    }

    #[test]
    fn network_casts_and_operators_become_calls() {
        assert_eq!(
            rewritten("SELECT 1 FROM s WHERE cidr_block::cidr << '10.0.0.0/8'"),
            "SELECT 1 FROM s WHERE _pg_net_contains('10.0.0.0/8', _pg_cidr(cidr_block), true)"
        );
        assert_eq!(
            rewritten("SELECT a::inet >>= b::inet, a::cidr && '10.0.0.0/8'::cidr, a::cidr <<= '0.0.0.0/0'"),
            "SELECT _pg_net_contains(_pg_inet(a), _pg_inet(b), false), _pg_net_overlaps(_pg_cidr(a), _pg_cidr('10.0.0.0/8')), \
             _pg_net_contains('0.0.0.0/0', _pg_cidr(a), false)"
        );
        assert_eq!(
            rewritten("SELECT (tags -> 0 -> 'Key')::text"),
            "SELECT json_get_json(tags -> 0, 'Key')"
        );
        assert_eq!(
            rewritten("SELECT x::jsonb -> 'a'"),
            "SELECT CAST(_pg_json_checked(x, true) AS JSONB) -> 'a'"
        );
        // Without a network on either side they stay what they are.
        assert_eq!(rewritten("SELECT 1 << 2"), "SELECT 1 << 2");
    }

    #[test]
    fn json_set_functions_in_the_select_list_unnest() {
        assert_eq!(
            rewritten("SELECT id, jsonb_array_elements(tags) AS tag FROM t"),
            "SELECT id, CAST(unnest(_pg_json_elements(tags, false)) AS JSONB) AS tag FROM t"
        );
        assert_eq!(
            rewritten("SELECT json_object_keys(tag_map) FROM t"),
            "SELECT unnest(_pg_json_keys(tag_map)) FROM t"
        );
        assert_eq!(
            rewritten("SELECT jsonb_array_elements(tags) ->> 'Key' FROM t"),
            "SELECT CAST(unnest(_pg_json_elements(tags, false)) AS JSONB) ->> 'Key' FROM t"
        );
    }

    #[test]
    fn like_escapes_become_backslashes() {
        assert_eq!(translate_escape("pg/_%", '/'), "pg\\_%");
        assert_eq!(translate_escape("a\\b", '/'), "a\\\\b");
        assert_eq!(translate_escape("a//b", '/'), "a\\/b");
        assert_eq!(
            rewritten("SELECT 1 FROM n WHERE nspname NOT LIKE 'pg/_' || '%' ESCAPE '/'"),
            "SELECT 1 FROM n WHERE nspname NOT LIKE 'pg\\_%'"
        );
    }

    #[test]
    fn composite_fields_and_expandarray() {
        assert_eq!(
            rewritten("SELECT (information_schema._pg_expandarray(i.indkey)).n FROM pg_index i"),
            "SELECT get_field(unnest(_pg_expandarray(i.indkey)), 'n') FROM pg_index i"
        );
        assert_eq!(rewritten("SELECT (r.keys).x FROM r"), "SELECT get_field(r.keys, 'x') FROM r");
    }

    #[test]
    fn vector_subscripts_count_from_zero() {
        assert_eq!(
            rewritten("SELECT i.indkey[ia.attnum - 1] FROM i"),
            "SELECT i.indkey[(ia.attnum - 1) + 1] FROM i"
        );
        assert_eq!(rewritten("SELECT conkey[i] FROM c"), "SELECT conkey[i] FROM c");
        assert_eq!(
            rewritten("SELECT generate_subscripts(pg_index.indkey, 1) FROM pg_index"),
            "SELECT unnest(range(CAST(0 AS BIGINT), CAST(0 + coalesce(array_length(pg_index.indkey, 1), 0) AS BIGINT))) FROM pg_index"
        );
    }

    #[test]
    fn regproc_names_compare_as_text() {
        assert_eq!(
            rewritten("SELECT 1 FROM pg_type t WHERE t.typinput = 'pg_catalog.array_in'::regproc"),
            "SELECT 1 FROM pg_type t WHERE t.typinput = 'array_in'"
        );
        assert_eq!(
            rewritten("SELECT 1 FROM t WHERE typinput='jsonb_in'"),
            "SELECT 1 FROM t WHERE typinput = 'jsonb_in'"
        );
    }

    #[test]
    fn outer_conditions_and_comparisons_leave_the_subquery() {
        let sql = "SELECT (SELECT c.collname FROM pg_collation c, pg_type t WHERE c.oid = a.attcollation AND t.oid = a.atttypid \
                   AND a.attcollation <> t.typcollation AND a.attisdropped) FROM pg_attribute a";
        assert_eq!(
            rewritten(sql),
            "SELECT CASE WHEN a.attisdropped AND a.attcollation <> (SELECT first_value(t.typcollation) FROM pg_collation c, pg_type t \
             WHERE c.oid = a.attcollation AND t.oid = a.atttypid) THEN (SELECT first_value(c.collname) FROM pg_collation c, pg_type t \
             WHERE c.oid = a.attcollation AND t.oid = a.atttypid) END FROM pg_attribute a"
        );
    }

    #[test]
    fn empty_array_literals_take_the_other_type() {
        assert_eq!(
            rewritten("SELECT coalesce(a.f, '{}') FROM a"),
            "SELECT coalesce(a.f, make_array()) FROM a"
        );
    }

    #[test]
    fn set_functions_in_from_become_derived_tables() {
        assert_eq!(
            rewritten("SELECT s[i] FROM generate_series(array_lower(x, 1), array_upper(x, 1)) AS i"),
            "SELECT s[i] FROM LATERAL (SELECT unnest(generate_series(array_lower(x, 1), array_upper(x, 1))) AS \"i\") AS \"i\""
        );
        // Functions with named output columns keep them; WITH ORDINALITY adds one, and the
        // alias's column list renames them in order.
        assert_eq!(
            rewritten("SELECT * FROM v, jsonb_each(v.tags) WITH ORDINALITY AS e(k)"),
            "SELECT * FROM v, LATERAL (SELECT unnest(_pg_json_keys(v.tags)) AS \"k\", CAST(unnest(_pg_json_values(v.tags, false)) AS JSONB) AS \"value\", \
             unnest(range(CAST(1 AS BIGINT), CAST(coalesce(cardinality(_pg_json_keys(v.tags)), 0) + 1 AS BIGINT))) AS \"ordinality\") AS \"e\""
        );
    }

    #[test]
    fn scalar_functions_in_from_are_one_row_tables() {
        assert_eq!(
            rewritten("SELECT s[1] FROM string_to_array('a,b', ',') s"),
            "SELECT s[1] FROM (SELECT unnest([string_to_array('a,b', ',')]) AS \"s\") AS \"s\""
        );
    }

    #[test]
    fn user_and_computed_regclass() {
        assert_eq!(rewritten("SELECT user, \"user\" FROM t"), "SELECT session_user, \"user\" FROM t");
        assert_eq!(
            rewritten("SELECT CAST(CAST(format('%I.%I', s, t) AS regclass) AS oid)"),
            "SELECT CAST(CAST(_pg_regclass(format('%I.%I', s, t)) AS REGCLASS) AS oid)"
        );
    }

    #[test]
    fn subqueries_in_order_by_move_into_a_derived_table() {
        assert_eq!(
            rewritten("SELECT a AS t, b FROM x ORDER BY CASE WHEN a IN (SELECT c FROM y) THEN 0 ELSE 1 END DESC, 1 LIMIT 5"),
            "SELECT \"t\", \"b\" FROM (SELECT a AS t, b, CASE WHEN array_has((SELECT array_agg(_array._v) FROM (SELECT c FROM y) \
             AS _array (_v)), a) THEN 0 ELSE 1 END AS \"__order_0\" FROM x) AS __sorted ORDER BY \"__order_0\" DESC, 1 LIMIT 5"
        );
    }

    #[test]
    fn membership_in_a_select_list_uses_an_array() {
        assert_eq!(
            rewritten("SELECT CASE WHEN a IN (SELECT c FROM y) THEN 0 END FROM x WHERE a IN (SELECT c FROM y)"),
            "SELECT CASE WHEN array_has((SELECT array_agg(_array._v) FROM (SELECT c FROM y) AS _array (_v)), a) THEN 0 END \
             FROM x WHERE a IN (SELECT c FROM y)"
        );
    }

    #[test]
    fn array_literals_compare_as_arrays() {
        assert_eq!(
            rewritten("SELECT 1 FROM p WHERE p.polroles = '{0}'"),
            "SELECT 1 FROM p WHERE p.polroles = make_array(0)"
        );
        assert_eq!(
            rewritten("SELECT 1 FROM p WHERE '{a,b}' <> x"),
            "SELECT 1 FROM p WHERE make_array('a', 'b') <> x"
        );
    }

    #[test]
    fn arrays_mapped_over_unnest() {
        assert_eq!(
            rewritten("SELECT array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x) FROM pg_class tc"),
            "SELECT _pg_concat_each(tc.reloptions, 'toast.', '') FROM pg_class tc"
        );
    }

    #[test]
    fn subqueries_over_empty_catalogs_are_null() {
        assert_eq!(
            rewritten(
                "SELECT pol.polname, array(select rolname from pg_roles where oid = any (pol.polroles)) FROM pg_catalog.pg_policy pol"
            ),
            "SELECT pol.polname, NULL FROM pg_catalog.pg_policy pol"
        );
    }

    #[test]
    fn series_in_a_select_list_are_rows() {
        assert_eq!(
            rewritten("SELECT generate_series(array_lower(k, 1), array_upper(k, 1)) AS i FROM c"),
            "SELECT unnest(generate_series(array_lower(k, 1), array_upper(k, 1))) AS i FROM c"
        );
    }

    #[test]
    fn subqueries_reading_empty_catalogs_are_null() {
        assert_eq!(
            rewritten("SELECT (SELECT json_build_object('start', s.seqstart) FROM pg_catalog.pg_sequence s WHERE s.seqrelid = a.attrelid) FROM pg_attribute a"),
            "SELECT NULL FROM pg_attribute a"
        );
        assert_eq!(
            rewritten("SELECT 1 FROM n WHERE nspname NOT LIKE $1::VARCHAR || '%' ESCAPE '/'"),
            "SELECT 1 FROM n WHERE nspname NOT LIKE _pg_like_escape($1::VARCHAR || '%', '/')"
        );
    }

    #[test]
    fn parameter_casts_name_their_types() {
        let stmt = Parser::parse_sql(&PostgreSqlDialect {}, "SELECT $1::bigint + 1 WHERE x = ANY($2::oid[]) AND y = $3")
            .unwrap()
            .remove(0);
        let casts = placeholder_casts(&stmt);
        assert_eq!(casts.get(&1).map(String::as_str), Some("BIGINT"));
        assert_eq!(casts.get(&2).map(String::as_str), Some("oid[]"));
        assert!(!casts.contains_key(&3));
    }

    #[test]
    fn asyncpgs_domain_base_query_is_a_function() {
        let sql =
            "SELECT (CASE WHEN t.typtype = 'd' THEN (WITH RECURSIVE typebases(oid, depth) AS (SELECT t2.typbasetype AS oid, 0 AS depth \
                   FROM pg_type t2 WHERE t2.oid = t.oid UNION ALL SELECT t2.typbasetype AS oid, tb.depth + 1 AS depth FROM pg_type t2, \
                   typebases tb WHERE tb.oid = t2.oid AND t2.typbasetype != 0) SELECT oid FROM typebases ORDER BY depth DESC LIMIT 1) \
                   ELSE NULL END) FROM pg_type t";
        assert_eq!(
            rewritten(sql),
            "SELECT (CASE WHEN t.typtype = 'd' THEN _pg_domain_base(t.oid) ELSE NULL END) FROM pg_type t"
        );
    }

    #[test]
    fn oid_aliases_print_names() {
        assert_eq!(
            rewritten("SELECT elemtype::regtype::text, c.oid::pg_catalog.regclass::pg_catalog.text, 'x'::regclass::text FROM t"),
            "SELECT format_type(elemtype, NULL), _pg_regclass_name(c.oid), _pg_regclass_name(_pg_regclass('x')) FROM t"
        );
    }

    #[test]
    fn function_aliases_name_the_column() {
        assert_eq!(
            rewritten("SELECT i FROM generate_series(1, 3) AS i"),
            "SELECT i FROM generate_series(1, 3) AS i (i)"
        );
    }
}
