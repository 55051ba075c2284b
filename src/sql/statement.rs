//! What a statement is: each parsed statement classified once into a [`Command`], used by both
//! the simple and the extended protocol, and a [`Prepared`] statement that answers its own
//! parameter types and result columns (for Describe) without the wire layer ever seeing a plan.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::{
    CloseCursor, ContextModifier, Declare, DeclareType, DiscardObject, Expr, FetchDirection, ObjectName, Reset, Set, Statement,
    TransactionAccessMode, TransactionMode, Value,
};

use super::constant;
use super::copy::{self, CopyOptions};
use super::cursor;
use super::dml::Verb;
use super::meta::Meta;
use super::parse::{Fingerprint, Hints};
use super::settings::SetValue;
use super::transaction::TransactionCommand;
use crate::catalog::replan::KeptPlan;
use crate::error::Error;

/// A statement, classified.
#[derive(Debug, Clone)]
pub enum Command {
    /// Planned and run by DataFusion: SELECT, VALUES, WITH, EXPLAIN of a query, SHOW TABLES.
    Query(Box<Statement>),
    /// INSERT, UPDATE or DELETE on a resource table: Cloud Control requests, never DataFusion.
    Dml {
        statement: Box<Statement>,
        verb: Verb,
    },
    /// EXPLAIN of INSERT, UPDATE or DELETE: the requests it would send.
    ExplainDml(Box<Statement>),
    Transaction(TransactionCommand),
    Set {
        name: String,
        value: SetValue,
        local: bool,
    },
    Show(String),
    ShowAll,
    /// `RESET name`; `None` for `RESET ALL`.
    Reset(Option<String>),
    /// `DISCARD ALL` (and the narrower DISCARDs, which hold nothing here).
    Discard {
        all: bool,
    },
    /// `DEALLOCATE name`; `None` for `DEALLOCATE ALL`.
    Deallocate(Option<String>),
    /// LISTEN and UNLISTEN: accepted; Cloud Control sends no notifications.
    Listen {
        tag: &'static str,
    },
    /// StackQL's SHOW SERVICES, SHOW RESOURCES IN, DESCRIBE.
    Meta(Meta),
    /// `DECLARE name CURSOR [WITH HOLD] FOR query`.
    Declare {
        name: String,
        query: Box<Statement>,
        hold: bool,
    },
    /// `FETCH` (or `MOVE`, which skips the rows: `discard`).
    Fetch {
        name: String,
        direction: FetchDirection,
        discard: bool,
    },
    /// `CLOSE name`; `None` for `CLOSE ALL`.
    Close(Option<String>),
    /// `COPY … TO STDOUT`: the query whose rows it writes, and how.
    Copy {
        query: Box<Statement>,
        options: CopyOptions,
    },
    /// A statement that fails when it runs, with this error.
    Invalid(Error),
    /// A statement cloudpg does not run, with why and what to do instead.
    Refused {
        message: String,
    },
}

impl Command {
    /// Classifies a parsed, rewritten statement.
    pub fn classify(statement: Statement) -> Command {
        if let Some(verb) = Verb::of(&statement) {
            return Command::Dml {
                statement: Box::new(statement),
                verb,
            };
        }
        match statement {
            Statement::Explain { ref statement, .. } if Verb::of(statement).is_some() => {
                Command::ExplainDml(Box::new(statement_of_explain(statement)))
            }
            Statement::Query(_)
            | Statement::Explain { .. }
            | Statement::ShowTables { .. }
            | Statement::ShowColumns { .. }
            | Statement::ExplainTable { .. } => Command::Query(Box::new(statement)),
            Statement::StartTransaction { modes, .. } => Command::Transaction(TransactionCommand::Begin {
                read_only: read_only(&modes),
            }),
            Statement::Commit { .. } => Command::Transaction(TransactionCommand::Commit),
            Statement::Rollback { savepoint: Some(name), .. } => Command::Transaction(TransactionCommand::RollbackTo(name.value)),
            Statement::Rollback { savepoint: None, .. } => Command::Transaction(TransactionCommand::Rollback),
            Statement::Savepoint { name } => Command::Transaction(TransactionCommand::Savepoint(name.value)),
            Statement::ReleaseSavepoint { name } => Command::Transaction(TransactionCommand::Release(name.value)),
            Statement::Set(set) => classify_set(set),
            Statement::ShowVariable { variable } => {
                let words: Vec<String> = variable.iter().map(|i| i.value.to_lowercase()).collect();
                if words == ["all"] {
                    Command::ShowAll
                } else {
                    Command::Show(parameter_name(&words))
                }
            }
            Statement::Reset(r) => match r.reset {
                Reset::ALL => Command::Reset(None),
                Reset::ConfigurationParameter(name) => Command::Reset(Some(object_name(&name))),
            },
            Statement::Discard { object_type } => Command::Discard {
                all: matches!(object_type, DiscardObject::ALL),
            },
            Statement::Deallocate { name, .. } => {
                if name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all") {
                    Command::Deallocate(None)
                } else {
                    Command::Deallocate(Some(name.value))
                }
            }
            Statement::Declare { stmts } => classify_declare(stmts),
            Statement::Fetch { name, direction, into, .. } => Command::Fetch {
                name: name.value,
                direction,
                discard: into.is_some_and(|i| i.0.len() == 1 && i.0[0].as_ident().is_some_and(|x| x.value == cursor::MOVE_MARKER)),
            },
            Statement::Close { cursor } => Command::Close(match cursor {
                CloseCursor::All => None,
                CloseCursor::Specific { name } => Some(name.value),
            }),
            Statement::Copy { .. } => match copy::classify(&statement) {
                Ok((query, options)) => Command::Copy {
                    query: Box::new(query),
                    options,
                },
                Err(e) => Command::Invalid(e),
            },
            Statement::LISTEN { .. } => Command::Listen { tag: "LISTEN" },
            Statement::UNLISTEN { .. } => Command::Listen { tag: "UNLISTEN" },
            other => refuse(&other),
        }
    }

    /// The command tag PostgreSQL would report, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Query(_) => "SELECT",
            Command::Dml { verb, .. } => verb.tag(),
            Command::ExplainDml(_) => "EXPLAIN",
            Command::Transaction(_) => "TRANSACTION",
            Command::Set { .. } => "SET",
            Command::Show(_) | Command::ShowAll => "SHOW",
            Command::Reset(_) => "RESET",
            Command::Discard { .. } => "DISCARD",
            Command::Deallocate(_) => "DEALLOCATE",
            Command::Listen { tag } => tag,
            Command::Meta(_) => "META",
            Command::Refused { .. } => "REFUSED",
            Command::Declare { .. } => "DECLARE CURSOR",
            Command::Fetch { discard: false, .. } => "FETCH",
            Command::Fetch { discard: true, .. } => "MOVE",
            Command::Close(_) => "CLOSE CURSOR",
            Command::Copy { .. } => "COPY",
            Command::Invalid(_) => "INVALID",
        }
    }

    /// Whether a failed transaction block lets it run (only its end does).
    pub fn ends_transaction(&self) -> bool {
        matches!(
            self,
            Command::Transaction(TransactionCommand::Commit | TransactionCommand::Rollback | TransactionCommand::RollbackTo(_))
        )
    }
}

fn statement_of_explain(inner: &Statement) -> Statement {
    inner.clone()
}

fn read_only(modes: &[TransactionMode]) -> Option<bool> {
    modes.iter().rev().find_map(|m| match m {
        TransactionMode::AccessMode(TransactionAccessMode::ReadOnly) => Some(true),
        TransactionMode::AccessMode(TransactionAccessMode::ReadWrite) => Some(false),
        _ => None,
    })
}

fn classify_set(set: Set) -> Command {
    match set {
        Set::SingleAssignment {
            scope, variable, values, ..
        } => {
            let name = object_name(&variable);
            let value = set_value(&values);
            Command::Set {
                name,
                value,
                local: matches!(scope, Some(ContextModifier::Local)),
            }
        }
        Set::SetTimeZone { local, value } => Command::Set {
            name: "timezone".into(),
            value: time_zone_value(&value),
            local,
        },
        Set::SetNames { charset_name, .. } => Command::Set {
            name: "client_encoding".into(),
            value: SetValue::Text(charset_name.value),
            local: false,
        },
        Set::SetTransaction { modes, session, .. } => Command::Transaction(TransactionCommand::SetCharacteristics {
            read_only: read_only(&modes),
            session,
        }),
        Set::SetSessionAuthorization(_) | Set::SetRole { .. } => Command::Refused {
            message: "SET ROLE and SET SESSION AUTHORIZATION are not supported: a connection keeps the user it logged in as".into(),
        },
        other => Command::Refused {
            message: format!("this form of SET is not supported: {other}"),
        },
    }
}

/// A SET value as text: quoted strings as they are, identifiers and numbers as written, a
/// list (`search_path = a, b`) joined with `, `.
fn set_value(values: &[Expr]) -> SetValue {
    if let [Expr::Identifier(i)] = values {
        if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default") {
            return SetValue::Default;
        }
    }
    let parts: Vec<String> = values
        .iter()
        .map(|v| match v {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) | Value::EscapedStringLiteral(s) => s.clone(),
                Value::Number(n, _) => n.clone(),
                Value::Boolean(b) => b.to_string(),
                other => other.to_string(),
            },
            Expr::Identifier(i) => i.value.clone(),
            Expr::UnaryOp { op, expr } => format!("{op}{expr}"),
            other => other.to_string(),
        })
        .collect();
    SetValue::Text(parts.join(", "))
}

/// `SET TIME ZONE`'s value: `LOCAL` is the default, an interval is hours east of UTC.
fn time_zone_value(value: &Expr) -> SetValue {
    match value {
        Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("local") => SetValue::Default,
        Expr::Interval(interval) => match interval.value.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) => SetValue::Text(interval_hours(s).unwrap_or_else(|| s.clone())),
                other => SetValue::Text(other.to_string()),
            },
            other => SetValue::Text(other.to_string()),
        },
        other => set_value(std::slice::from_ref(other)),
    }
}

/// `'+05:30'` (an interval's text, hours and minutes) as hours: `5.5`.
fn interval_hours(text: &str) -> Option<String> {
    let t = text.trim();
    let (sign, rest) = match t.strip_prefix('-') {
        Some(r) => (-1.0, r),
        None => (1.0, t.strip_prefix('+').unwrap_or(t)),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let hours = h.trim().parse::<f64>().ok()? + m.trim().parse::<f64>().ok()? / 60.0;
    Some(format!("{}", sign * hours))
}

/// `a.b` as PostgreSQL spells a parameter name: lower case, dotted.
fn object_name(name: &ObjectName) -> String {
    let words: Vec<String> = name.0.iter().filter_map(|p| p.as_ident()).map(|i| i.value.to_lowercase()).collect();
    words.join(".")
}

/// The parameter a SHOW names: PostgreSQL's few multi-word names (`transaction isolation
/// level`) keep their spaces; dotted names (`cloudpg.regions`) arrive as separate words.
fn parameter_name(words: &[String]) -> String {
    const MULTI_WORD: &[&str] = &["transaction isolation level", "time zone", "session authorization"];
    let spaced = words.join(" ");
    if words.len() == 1 || MULTI_WORD.contains(&spaced.as_str()) {
        spaced
    } else {
        words.join(".")
    }
}

/// `DECLARE name [BINARY] [NO SCROLL] CURSOR [WITH HOLD] FOR query`.
fn classify_declare(mut stmts: Vec<Declare>) -> Command {
    let refused = |message: &str| Command::Refused { message: message.into() };
    if stmts.len() != 1 {
        return refused("DECLARE one cursor at a time");
    }
    let d = stmts.remove(0);
    let (Some(DeclareType::Cursor), Some(query), [name]) = (&d.declare_type, d.for_query, d.names.as_slice()) else {
        return refused("only DECLARE name CURSOR FOR query is supported");
    };
    if d.scroll == Some(true) {
        return refused("SCROLL cursors are not supported: cloudpg's cursors read forward only (NO SCROLL)");
    }
    if d.binary == Some(true) {
        return refused("BINARY cursors are not supported: FETCH through the extended protocol to get binary rows");
    }
    Command::Declare {
        name: name.value.clone(),
        query: Box::new(Statement::Query(query)),
        hold: d.hold == Some(true),
    }
}

/// Statements cloudpg does not run: what they are, and what to do instead.
fn refuse(s: &Statement) -> Command {
    let message = match s {
        Statement::CreateTable(_) | Statement::CreateView(_) | Statement::CreateSchema { .. } | Statement::CreateIndex(_) | Statement::Drop { .. } | Statement::AlterTable(_) | Statement::Truncate(_) => {
            "cloudpg does not store tables: its tables are the Cloud Control resource types. Create, change and delete resources with INSERT, UPDATE and DELETE on awscc.<service>.<table>".to_string()
        }
        Statement::Prepare { .. } | Statement::Execute { .. } => {
            "PREPARE and EXECUTE statements are not supported: use your driver's prepared statements (the extended protocol)".to_string()
        }
        Statement::NOTIFY { .. } => "NOTIFY is not supported: cloudpg has no notification channels".to_string(),
        other => {
            let text = other.to_string();
            let words: Vec<&str> = text.split_whitespace().take(2).collect();
            format!("{} is not supported by cloudpg", words.join(" "))
        }
    };
    Command::Refused { message }
}

/// A statement ready to run: classified, and (for queries) planned, so it can describe its
/// parameters and result columns before it runs.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub command: Command,
    pub fingerprint: Arc<Fingerprint>,
    pub hints: Hints,
    /// Parameter types in `$n` order; `None` where nothing tells (the client's type wins).
    pub parameters: Vec<Option<DataType>>,
    /// The result columns, named as clients see them; `None` when it returns no rows.
    pub columns: Option<SchemaRef>,
    /// A query's plans, kept for its executions.
    pub(crate) plan: Option<QueryPlan>,
}

/// What a query's executions reuse.
#[derive(Debug, Clone)]
pub(crate) struct QueryPlan {
    pub logical: Arc<LogicalPlan>,
    /// The analyzed and optimized plan, when every execution would make the same one (no
    /// parameters, nothing that changes between runs): executions only plan the scans.
    pub optimized: Option<Arc<LogicalPlan>>,
    /// The optimized plan's physical plan, once an execution made it: `Some` when later
    /// executions may run copies of it (see `catalog::replan`).
    pub physical: Arc<OnceLock<Option<KeptPlan>>>,
    /// The rows of a kept plan that reads no table, once an execution read them all.
    pub results: constant::Slot,
    /// The session's time zone and DateStyle when planned: its `timestamptz` values carry
    /// that zone, which `date_trunc` and casts to `timestamp` use, and casts to text the style.
    pub time: String,
}

impl Prepared {
    pub fn parameter_types(&self) -> &[Option<DataType>] {
        &self.parameters
    }

    pub fn result_schema(&self) -> Option<&SchemaRef> {
        self.columns.as_ref()
    }
}

#[cfg(test)]
impl Prepared {
    /// A statement planned as `plan` under the time settings `time`, kept optimized when
    /// `optimized`, for the tests of what keeps statements.
    pub(crate) fn planned(command: Command, plan: LogicalPlan, optimized: bool, time: &str) -> Prepared {
        let plan = Arc::new(plan);
        Prepared {
            command,
            fingerprint: Arc::new(Fingerprint {
                hash: 0,
                text: String::new(),
            }),
            hints: Hints::default(),
            parameters: Vec::new(),
            columns: None,
            plan: Some(QueryPlan {
                logical: plan.clone(),
                optimized: optimized.then_some(plan),
                physical: Arc::default(),
                results: Arc::default(),
                time: time.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(sql: &str) -> Command {
        Command::classify(crate::sql::parse::parse_checked(sql).unwrap().remove(0))
    }

    #[test]
    fn statements_classify_once() {
        assert!(matches!(classify("SELECT 1"), Command::Query(_)));
        assert!(matches!(classify("EXPLAIN SELECT 1"), Command::Query(_)));
        assert!(matches!(
            classify("DELETE FROM awscc.logs.log_groups WHERE identifier = 'x'"),
            Command::Dml { verb: Verb::Delete, .. }
        ));
        assert!(matches!(
            classify("EXPLAIN DELETE FROM awscc.logs.log_groups WHERE identifier = 'x'"),
            Command::ExplainDml(_)
        ));
        assert!(matches!(
            classify("BEGIN READ ONLY"),
            Command::Transaction(TransactionCommand::Begin { read_only: Some(true) })
        ));
        assert!(matches!(
            classify("START TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
            Command::Transaction(TransactionCommand::Begin { read_only: None })
        ));
        assert!(matches!(classify("END"), Command::Transaction(TransactionCommand::Commit)));
        assert!(matches!(classify("ABORT"), Command::Transaction(TransactionCommand::Rollback)));
        assert!(matches!(classify("ROLLBACK TO SAVEPOINT a"), Command::Transaction(TransactionCommand::RollbackTo(n)) if n == "a"));
        assert!(matches!(classify("RELEASE \"_pg3_1\""), Command::Transaction(TransactionCommand::Release(n)) if n == "_pg3_1"));
        assert!(matches!(
            classify("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED"),
            Command::Transaction(TransactionCommand::SetCharacteristics { session: true, .. })
        ));
        assert!(matches!(classify("SHOW ALL"), Command::ShowAll));
        assert!(matches!(classify("SHOW TRANSACTION ISOLATION LEVEL"), Command::Show(n) if n == "transaction isolation level"));
        assert!(matches!(classify("SHOW cloudpg.regions"), Command::Show(n) if n == "cloudpg.regions"));
        assert!(matches!(classify("RESET ALL"), Command::Reset(None)));
        assert!(matches!(classify("RESET statement_timeout"), Command::Reset(Some(n)) if n == "statement_timeout"));
        assert!(matches!(classify("DISCARD ALL"), Command::Discard { all: true }));
        assert!(matches!(classify("DEALLOCATE \"_PLAN0x1\""), Command::Deallocate(Some(n)) if n == "_PLAN0x1"));
        assert!(matches!(classify("UNLISTEN *"), Command::Listen { tag: "UNLISTEN" }));
        assert!(matches!(classify("CREATE TABLE t (a int)"), Command::Refused { .. }));
    }

    #[test]
    fn set_values_as_text() {
        let set = |sql: &str| match classify(sql) {
            Command::Set { name, value, local } => (name, value, local),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            set("SET statement_timeout = 200"),
            ("statement_timeout".into(), SetValue::Text("200".into()), false)
        );
        assert_eq!(set("SET statement_timeout TO '1s'").1, SetValue::Text("1s".into()));
        assert_eq!(
            set("SET LOCAL cloudpg.nowait = on"),
            ("cloudpg.nowait".into(), SetValue::Text("on".into()), true)
        );
        assert_eq!(
            set("SET SESSION TIMEZONE TO 'UTC'"),
            ("timezone".into(), SetValue::Text("UTC".into()), false)
        );
        assert_eq!(set("SET TIME ZONE 'Europe/Paris'").0, "timezone");
        assert_eq!(set("SET TIME ZONE LOCAL").1, SetValue::Default);
        assert_eq!(set("SET TIME ZONE -8").1, SetValue::Text("-8".into()));
        assert_eq!(
            set("SET TIME ZONE INTERVAL '+05:30' HOUR TO MINUTE").1,
            SetValue::Text("5.5".into())
        );
        assert_eq!(set("SET search_path = a, b").1, SetValue::Text("a, b".into()));
        assert_eq!(set("SET cloudpg.regions = DEFAULT").1, SetValue::Default);
        assert_eq!(set("SET extra_float_digits = 3").1, SetValue::Text("3".into()));
    }
}
