//! PostgreSQL's run-time parameters as clients see them: the names `SET` accepts (others get
//! 42704 with the closest names), their defaults, and the rows of `pg_settings`.
//!
//! cloudpg keeps a session's value for any of these; the ones that change what cloudpg does
//! (`statement_timeout`, `search_path`, the `cloudpg.*` settings…) are read by the session,
//! the others are kept so clients read back what they set.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::Result as DfResult;

use super::rows::{boolean, text, Rows};
use super::session::SessionView;

/// A parameter: name, default, type, context, category, description.
pub struct Parameter {
    pub name: &'static str,
    pub default: &'static str,
    pub vartype: &'static str,
    pub context: &'static str,
    pub category: &'static str,
    pub description: &'static str,
}

macro_rules! parameters {
    ($( $name:literal, $default:literal, $vartype:literal, $context:literal, $category:expr, $desc:literal; )*) => {
        &[$( Parameter { name: $name, default: $default, vartype: $vartype, context: $context, category: $category, description: $desc } ),*]
    };
}

const CLIENT: &str = "Client Connection Defaults / Statement Behavior";
const LOCALE: &str = "Client Connection Defaults / Locale and Formatting";

/// PostgreSQL 16's parameters that clients set or read. Names are lower case.
pub const PARAMETERS: &[Parameter] = parameters![
    "application_name", "", "string", "user", "Reporting and Logging / What to Log", "Sets the application name to be reported in statistics and logs.";
    "array_nulls", "on", "bool", "user", "Version and Platform Compatibility", "Enable input of NULL elements in arrays.";
    "backslash_quote", "safe_encoding", "enum", "user", "Version and Platform Compatibility", "Sets whether \"\\'\" is allowed in string literals.";
    "block_size", "8192", "integer", "internal", "Preset Options", "Shows the size of a disk block.";
    "bytea_output", "hex", "enum", "user", CLIENT, "Sets the output format for bytea.";
    "check_function_bodies", "on", "bool", "user", CLIENT, "Check routine bodies during CREATE FUNCTION and CREATE PROCEDURE.";
    "client_encoding", "UTF8", "string", "user", LOCALE, "Sets the client's character set encoding.";
    "client_min_messages", "notice", "enum", "user", CLIENT, "Sets the message levels that are sent to the client.";
    "cpu_operator_cost", "0.0025", "real", "user", "Query Tuning / Planner Cost Constants", "Sets the planner's estimate of the cost of processing each operator or function call.";
    "cursor_tuple_fraction", "0.1", "real", "user", "Query Tuning / Other Planner Options", "Sets the planner's estimate of the fraction of a cursor's rows that will be retrieved.";
    "data_checksums", "off", "bool", "internal", "Preset Options", "Shows whether data checksums are turned on for this cluster.";
    "datestyle", "ISO, MDY", "string", "user", LOCALE, "Sets the display format for date and time values.";
    "deadlock_timeout", "1000", "integer", "superuser", "Lock Management", "Sets the time to wait on a lock before checking for deadlock.";
    "default_tablespace", "", "string", "user", CLIENT, "Sets the default tablespace to create tables and indexes in.";
    "default_text_search_config", "pg_catalog.english", "string", "user", LOCALE, "Sets default text search configuration.";
    "default_transaction_deferrable", "off", "bool", "user", CLIENT, "Sets the default deferrable status of new transactions.";
    "default_transaction_isolation", "read committed", "enum", "user", CLIENT, "Sets the transaction isolation level of each new transaction.";
    "default_transaction_read_only", "off", "bool", "user", CLIENT, "Sets the default read-only status of new transactions.";
    "effective_cache_size", "524288", "integer", "user", "Query Tuning / Planner Cost Constants", "Sets the planner's assumption about the total size of the data caches.";
    "enable_hashjoin", "on", "bool", "user", "Query Tuning / Planner Method Configuration", "Enables the planner's use of hash join plans.";
    "enable_mergejoin", "on", "bool", "user", "Query Tuning / Planner Method Configuration", "Enables the planner's use of merge join plans.";
    "enable_nestloop", "on", "bool", "user", "Query Tuning / Planner Method Configuration", "Enables the planner's use of nested-loop join plans.";
    "enable_seqscan", "on", "bool", "user", "Query Tuning / Planner Method Configuration", "Enables the planner's use of sequential-scan plans.";
    "escape_string_warning", "on", "bool", "user", "Version and Platform Compatibility", "Warn about backslash escapes in ordinary string literals.";
    "extra_float_digits", "1", "integer", "user", LOCALE, "Sets the number of digits displayed for floating-point values.";
    "from_collapse_limit", "8", "integer", "user", "Query Tuning / Other Planner Options", "Sets the FROM-list size beyond which subqueries are not collapsed.";
    "geqo", "on", "bool", "user", "Query Tuning / Genetic Query Optimizer", "Enables genetic query optimization.";
    "idle_in_transaction_session_timeout", "0", "integer", "user", CLIENT, "Sets the maximum allowed idle time between queries, when in a transaction.";
    "idle_session_timeout", "0", "integer", "user", CLIENT, "Sets the maximum allowed idle time between queries, when not in a transaction.";
    "in_hot_standby", "off", "bool", "internal", "Preset Options", "Shows whether hot standby is currently active.";
    "integer_datetimes", "on", "bool", "internal", "Preset Options", "Shows whether datetimes are integer based.";
    "intervalstyle", "postgres", "enum", "user", LOCALE, "Sets the display format for interval values.";
    "is_superuser", "off", "bool", "internal", "Preset Options", "Shows whether the current user is a superuser.";
    "jit", "off", "bool", "user", "Query Tuning / Other Planner Options", "Allow JIT compilation.";
    "join_collapse_limit", "8", "integer", "user", "Query Tuning / Other Planner Options", "Sets the FROM-list size beyond which JOIN constructs are not flattened.";
    "lc_collate", "C", "string", "internal", "Preset Options", "Shows the collation order locale.";
    "lc_ctype", "C", "string", "internal", "Preset Options", "Shows the character classification and case conversion locale.";
    "lc_messages", "C", "string", "superuser", LOCALE, "Sets the language in which messages are displayed.";
    "lc_monetary", "C", "string", "user", LOCALE, "Sets the locale for formatting monetary amounts.";
    "lc_numeric", "C", "string", "user", LOCALE, "Sets the locale for formatting numbers.";
    "lc_time", "C", "string", "user", LOCALE, "Sets the locale for formatting date and time values.";
    "lock_timeout", "0", "integer", "user", CLIENT, "Sets the maximum allowed duration of any wait for a lock.";
    "log_min_duration_statement", "-1", "integer", "superuser", "Reporting and Logging / When to Log", "Sets the minimum execution time above which all statements will be logged.";
    "log_statement", "none", "enum", "superuser", "Reporting and Logging / What to Log", "Sets the type of statements logged.";
    "maintenance_work_mem", "65536", "integer", "user", "Resource Usage / Memory", "Sets the maximum memory to be used for maintenance operations.";
    "max_connections", "100", "integer", "postmaster", "Connections and Authentication / Connection Settings", "Sets the maximum number of concurrent connections.";
    "max_function_args", "100", "integer", "internal", "Preset Options", "Shows the maximum number of function arguments.";
    "max_identifier_length", "63", "integer", "internal", "Preset Options", "Shows the maximum identifier length.";
    "max_index_keys", "32", "integer", "internal", "Preset Options", "Shows the maximum number of index keys.";
    "max_parallel_workers_per_gather", "2", "integer", "user", "Resource Usage / Asynchronous Behavior", "Sets the maximum number of parallel processes per executor node.";
    "quote_all_identifiers", "off", "bool", "user", "Version and Platform Compatibility", "When generating SQL fragments, quote all identifiers.";
    "random_page_cost", "4", "real", "user", "Query Tuning / Planner Cost Constants", "Sets the planner's estimate of the cost of a nonsequentially fetched disk page.";
    "role", "none", "string", "user", "Preset Options", "Sets the current role.";
    "row_security", "on", "bool", "user", CLIENT, "Enable row security.";
    "search_path", "\"$user\", public", "string", "user", CLIENT, "Sets the schema search order for names that are not schema-qualified.";
    "seq_page_cost", "1", "real", "user", "Query Tuning / Planner Cost Constants", "Sets the planner's estimate of the cost of a sequentially fetched disk page.";
    "server_encoding", "UTF8", "string", "internal", "Preset Options", "Shows the server (database) character set encoding.";
    "server_version", "16.6", "string", "internal", "Preset Options", "Shows the server version.";
    "server_version_num", "160006", "integer", "internal", "Preset Options", "Shows the server version as an integer.";
    "session_authorization", "", "string", "user", "Preset Options", "Sets the session user name.";
    "session_replication_role", "origin", "enum", "superuser", CLIENT, "Sets the session's behavior for triggers and rewrite rules.";
    "standard_conforming_strings", "on", "bool", "user", "Version and Platform Compatibility", "Causes '...' strings to treat backslashes literally.";
    "statement_timeout", "0", "integer", "user", CLIENT, "Sets the maximum allowed duration of any statement.";
    "synchronize_seqscans", "on", "bool", "user", "Version and Platform Compatibility", "Enable synchronized sequential scans.";
    "synchronous_commit", "on", "enum", "user", "Write-Ahead Log / Settings", "Sets the current transaction's synchronization level.";
    "tcp_keepalives_count", "0", "integer", "user", "Connections and Authentication / TCP Settings", "Maximum number of TCP keepalive retransmits.";
    "tcp_keepalives_idle", "0", "integer", "user", "Connections and Authentication / TCP Settings", "Time between issuing TCP keepalives.";
    "tcp_keepalives_interval", "0", "integer", "user", "Connections and Authentication / TCP Settings", "Time between TCP keepalive retransmits.";
    "temp_buffers", "1024", "integer", "user", "Resource Usage / Memory", "Sets the maximum number of temporary buffers used by each session.";
    "temp_file_limit", "-1", "integer", "superuser", "Resource Usage / Disk", "Limits the total size of all temporary files used by each process.";
    "timezone", "UTC", "string", "user", LOCALE, "Sets the time zone for displaying and interpreting time stamps.";
    "timezone_abbreviations", "Default", "string", "user", LOCALE, "Selects a file of time zone abbreviations.";
    "trace_sort", "off", "bool", "user", "Developer Options", "Emit information about resource usage in sorting.";
    "track_activities", "on", "bool", "superuser", "Statistics / Cumulative Query and Index Statistics", "Collects information about executing commands.";
    "transaction_deferrable", "off", "bool", "user", CLIENT, "Whether to defer a read-only serializable transaction until it can be executed with no possible serialization failures.";
    "transaction_isolation", "read committed", "enum", "user", CLIENT, "Sets the current transaction's isolation level.";
    "transaction_read_only", "off", "bool", "user", CLIENT, "Sets the current transaction's read-only status.";
    "transform_null_equals", "off", "bool", "user", "Version and Platform Compatibility", "Treats \"expr=NULL\" as \"expr IS NULL\".";
    "work_mem", "4096", "integer", "user", "Resource Usage / Memory", "Sets the maximum memory to be used for query workspaces.";
    "xmlbinary", "base64", "enum", "user", CLIENT, "Sets how binary values are to be encoded in XML.";
    "xmloption", "content", "enum", "user", CLIENT, "Sets whether XML data in implicit parsing and serialization operations is to be considered as documents or content fragments.";
];

/// The parameter of this (lower-case) name.
pub fn parameter(name: &str) -> Option<&'static Parameter> {
    PARAMETERS.iter().find(|p| p.name == name)
}

/// Whether `SET name` is accepted: a PostgreSQL parameter, or a custom `prefix.name` one
/// (PostgreSQL accepts those too, so extensions' settings don't break clients).
pub fn is_settable(name: &str) -> bool {
    parameter(name).is_some() || name.contains('.')
}

pub fn pg_settings_schema() -> SchemaRef {
    let text = |n: &str| Field::new(n, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        text("name"),
        text("setting"),
        text("unit"),
        text("category"),
        text("short_desc"),
        text("extra_desc"),
        text("context"),
        text("vartype"),
        text("source"),
        text("min_val"),
        text("max_val"),
        text("enumvals"),
        text("boot_val"),
        text("reset_val"),
        text("sourcefile"),
        Field::new("sourceline", DataType::Int32, true),
        Field::new("pending_restart", DataType::Boolean, true),
    ]))
}

/// `pg_settings` for a session (the defaults when there is none).
pub fn pg_settings(view: Option<&SessionView>) -> DfResult<RecordBatch> {
    let mut rows = Rows::new(pg_settings_schema());
    let values = view.map(SessionView::settings).unwrap_or_default();
    let value_of = |name: &str| values.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let mut names: Vec<&str> = PARAMETERS.iter().map(|p| p.name).collect();
    for (n, _) in &values {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    names.sort_unstable();
    for name in names {
        let known = parameter(name);
        let setting = value_of(name).or_else(|| known.map(|p| p.default.to_string())).unwrap_or_default();
        let changed = known.is_none_or(|p| p.default != setting);
        rows.push(&[
            ("name", text(crate::sql::settings::display_name(name))),
            ("setting", text(setting)),
            ("category", text(known.map_or("Customized Options", |p| p.category))),
            ("short_desc", text(known.map_or("", |p| p.description))),
            ("context", text(known.map_or("user", |p| p.context))),
            ("vartype", text(known.map_or("string", |p| p.vartype))),
            ("source", text(if changed { "session" } else { "default" })),
            ("boot_val", text(known.map_or("", |p| p.default))),
            ("reset_val", text(known.map_or("", |p| p.default))),
            ("pending_restart", boolean(false)),
        ])?;
    }
    rows.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_case_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for p in PARAMETERS {
            assert_eq!(p.name, p.name.to_ascii_lowercase());
            assert!(seen.insert(p.name), "{} twice", p.name);
        }
    }

    #[test]
    fn custom_names_are_settable() {
        assert!(is_settable("search_path") && is_settable("myapp.tenant"));
        assert!(!is_settable("serch_path"));
    }
}
