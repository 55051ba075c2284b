//! PostgreSQL compatibility for clients and BI tools, in one place: what `pg_catalog` and
//! `information_schema` say about cloudpg's tables, the catalog functions clients call, the
//! PostgreSQL syntax they send, and the parameters they set.
//!
//! - `relations`: the model — namespaces, tables, columns, keys, comments, stable OIDs.
//! - `builtin`: PostgreSQL's own catalog relations and types.
//! - `pg_catalog`, `information_schema`: the tables built from both.
//! - `function`, `functions`, `session`: catalog functions; `session` holds the ones that read
//!   the connection (settings, user, search_path).
//! - `parameters`: the run-time parameters `SET` and `pg_settings` know.
//! - `syntax`: rewrites of PostgreSQL syntax DataFusion lacks.
//! - `rows`: building catalog tables row by row.
//! - `types`: type names clients cast to (`name`, `regclass`); `coercion`: untyped literals.

pub mod builtin;
pub mod coercion;
pub mod function;
pub mod functions;
pub mod information_schema;
pub mod json;
pub mod jsonb_ops;
pub mod jsonpath;
pub mod lateral;
pub mod network;
pub mod overflow;
pub mod parameters;
pub mod pg_catalog;
pub mod relations;
pub mod rows;
pub mod session;
pub mod stat_activity;
pub mod syntax;
pub mod time_input;
pub mod typeof_fn;
pub mod types;

use std::sync::Arc;

use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_pg_catalog::pg_catalog::{context::EmptyContextProvider, PgCatalogSchemaProvider};
use datafusion_pg_catalog::sql::rules::{
    AliasDuplicatedProjectionRewrite, CurrentUserVariableToSessionUserFunctionCall, FixArrayLiteral, FixVersionColumnName,
    PrependUnqualifiedPgTableName, ResolveUnqualifiedIdentifier, RewriteArrayAnyAllOperation, RewritePgCatalogOperator,
    RewriteRegCastToSubquery, SqlStatementRewriteRule, StripCallableQualifier, StripCollate,
};

pub use functions::Lookup;
pub use session::{PendingSet, SessionView};

use crate::error::{Error, Result};

/// Rewrites a parsed statement into what DataFusion plans: ours first, then the pg_catalog
/// crate's rules (its whole-query substitutions and its replacement of correlated
/// subqueries by NULL are left out: they change answers).
pub fn rewrite(mut stmt: Statement) -> Statement {
    syntax::rewrite(&mut stmt);
    syntax::qualify_catalog_relations(&mut stmt);
    for rule in crate_rules() {
        stmt = rule.rewrite(stmt);
    }
    stmt
}

fn crate_rules() -> &'static [Arc<dyn SqlStatementRewriteRule>] {
    static RULES: std::sync::OnceLock<Vec<Arc<dyn SqlStatementRewriteRule>>> = std::sync::OnceLock::new();
    RULES.get_or_init(|| {
        vec![
            Arc::new(AliasDuplicatedProjectionRewrite),
            Arc::new(ResolveUnqualifiedIdentifier),
            Arc::new(RewriteArrayAnyAllOperation),
            Arc::new(PrependUnqualifiedPgTableName),
            Arc::new(StripCallableQualifier),
            Arc::new(FixArrayLiteral),
            Arc::new(CurrentUserVariableToSessionUserFunctionCall),
            Arc::new(StripCollate),
            Arc::new(RewritePgCatalogOperator),
            Arc::new(RewriteRegCastToSubquery::new()),
            Arc::new(FixVersionColumnName),
        ]
    })
}

/// Puts our `pg_catalog` over the crate's, registers `information_schema` and the catalog
/// functions. Call after the crate's `setup_pg_catalog`.
pub fn install(
    ctx: &SessionContext,
    catalog_name: &str,
    relations: Arc<relations::LazyRelations>,
    activity: Arc<crate::sql::activity::Activity>,
) -> Result<Arc<Lookup>> {
    let catalog = ctx
        .catalog(catalog_name)
        .ok_or_else(|| Error::Internal(format!("catalog {catalog_name} is not registered")))?;
    // The crate's tables under ours, read from our copy of PostgreSQL's catalog snapshot:
    // `setup_pg_catalog` registered a schema with its own copy (5 MB), dropped here.
    let inner = Arc::new(
        PgCatalogSchemaProvider::try_new(
            ctx.state().catalog_list().clone(),
            pg_catalog::static_tables().map_err(Error::from)?,
            EmptyContextProvider,
        )
        .map_err(Error::from)?,
    );
    catalog
        .register_schema(
            "pg_catalog",
            Arc::new(pg_catalog::PgCatalogSchema::new(inner, relations.clone(), activity)),
        )
        .map_err(Error::from)?;
    catalog
        .register_schema(
            "information_schema",
            Arc::new(information_schema::InformationSchema::new(relations.clone())),
        )
        .map_err(Error::from)?;
    let lookup = Arc::new(Lookup::new(relations));
    for f in functions::functions(&lookup) {
        ctx.register_udf(f);
    }
    ctx.register_udf(typeof_fn::udf());
    for f in overflow::functions() {
        ctx.register_udf(f);
    }
    for f in network::functions() {
        ctx.register_udf(f);
    }
    let mut json_functions = json::functions();
    json_functions.extend(jsonb_ops::functions());
    let json_operators = json::JsonOperators::new(&json_functions);
    for f in json_functions {
        ctx.register_udf(f);
    }
    if let Ok(f) = datafusion::execution::FunctionRegistry::udf(ctx, "json_build_object") {
        ctx.register_udf(f.as_ref().clone().with_aliases(["jsonb_build_object"]));
    }
    // PostgreSQL's name for DataFusion's uuid().
    if let Ok(uuid) = datafusion::execution::FunctionRegistry::udf(ctx, "uuid") {
        ctx.register_udf(uuid.as_ref().clone().with_aliases(["gen_random_uuid"]));
    }
    let state = ctx.state_ref();
    let existing = state.read().clone();
    let mut rules = existing.analyzer().rules.clone();
    // Before DataFusion's type coercion, which would refuse the comparison.
    rules.insert(0, Arc::new(coercion::UnknownLiterals));
    // Before anything reads the plan: correlated functions in FROM become joins it can run.
    rules.insert(0, Arc::new(lateral::LateralFunctions));
    // After it, once both sides of an operator have their final types.
    rules.push(Arc::new(overflow::CheckedIntegers));
    rules.push(Arc::new(time_input::TimestampCasts));
    // Ours first: the first planner that plans an operator wins.
    let mut planners: Vec<Arc<dyn datafusion::logical_expr::planner::ExprPlanner>> = Vec::new();
    if let Some(ops) = json_operators {
        planners.push(Arc::new(ops));
    }
    planners.extend(existing.expr_planners().iter().cloned());
    *state.write() = datafusion::execution::session_state::SessionStateBuilder::new_from_existing(existing)
        .with_type_planner(Arc::new(types::PgTypes))
        .with_analyzer_rules(rules)
        .with_expr_planners(planners)
        .build();
    Ok(lookup)
}

/// Registers the functions that read the session in a session's context.
pub fn install_session(state: &mut datafusion::execution::session_state::SessionState, view: &Arc<SessionView>) {
    use datafusion::execution::FunctionRegistry;
    for f in session::functions(view) {
        // Only fails for a registry that takes no functions, which a session's does.
        let _ = state.register_udf(Arc::new(f));
    }
}

/// DataFusion's planning error about an unknown function or relation, as PostgreSQL reports
/// it: 0A000 naming one PostgreSQL has and cloudpg does not, 42883 or 42P01 otherwise.
pub fn unknown_object(e: &Error) -> Option<Error> {
    if !matches!(e, Error::DataFusion(_)) {
        return None;
    }
    let message = e.to_string();
    if let Some(name) = quoted_after(&message, "Invalid function '") {
        if builtin_function_names().contains(name.to_ascii_lowercase().as_str()) {
            return Some(Error::NotSupported(format!("function {name}() is not supported by cloudpg")));
        }
        let suggestions = quoted_after(&message, "Did you mean '")
            .map(|s| vec![s.to_string()])
            .unwrap_or_default();
        return Some(Error::UndefinedFunction {
            name: name.to_string(),
            suggestions,
        });
    }
    if let Some(name) = quoted_after(&message, "table '") {
        let shown = shown_relation(name);
        let relation = name.rsplit('.').next().unwrap_or(name);
        if builtin::Builtin::get().relations.iter().any(|r| r.name == relation) {
            return Some(Error::NotSupported(format!("relation \"{shown}\" is not supported by cloudpg")));
        }
        return Some(Error::UndefinedTable {
            name: shown,
            suggestions: Vec::new(),
        });
    }
    None
}

/// A resolved relation name as the user wrote it: without the database, and without
/// `public`, where unqualified names land.
fn shown_relation(resolved: &str) -> String {
    let name = resolved
        .strip_prefix(&format!("{}.", crate::catalog::model::CATALOG))
        .unwrap_or(resolved);
    name.strip_prefix("public.").unwrap_or(name).to_string()
}

fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let start = message.find(prefix)? + prefix.len();
    let end = message[start..].find('\'')?;
    Some(&message[start..start + end])
}

/// The names of PostgreSQL's functions (`pg_proc.proname`).
fn builtin_function_names() -> &'static std::collections::HashSet<String> {
    static NAMES: std::sync::OnceLock<std::collections::HashSet<String>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        use datafusion::arrow::array::AsArray;
        let mut out = std::collections::HashSet::new();
        if let Ok(statics) = pg_catalog::static_tables() {
            for batch in statics.pg_proc.data() {
                if let Some(names) = batch.column_by_name("proname").and_then(|c| c.as_string_opt::<i32>().cloned()) {
                    out.extend(names.iter().flatten().map(str::to_string));
                }
            }
        }
        out
    })
}
