//! `cloudpg query "SQL"`: one-shot statements, printed as an aligned table, CSV or JSON lines.
//!
//! It connects as any client does: to a running server (`--url`), or to a server of its own
//! started in-process on a loopback port (on the embedded emulator or against AWS), so what it
//! prints is exactly what a client sees.

use std::fmt::Write as _;

use anyhow::Context as _;
use tokio_postgres::types::Type;
use tokio_postgres::{NoTls, SimpleQueryMessage};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns with a header, as psql prints them.
    Table,
    /// RFC 4180 CSV with a header row; NULL is an empty field.
    Csv,
    /// One JSON object per row: numbers, booleans and JSON as themselves, NULL as null.
    Json,
}

/// One result set: column names and types (when the statement could be described), rows as
/// PostgreSQL's text (None for NULL), or the row count of a command.
struct ResultSet {
    columns: Vec<String>,
    types: Vec<Option<Type>>,
    rows: Vec<Vec<Option<String>>>,
}

/// Runs `sql` on the server at `conninfo` and prints what it returns.
pub async fn run(conninfo: &str, sql: &str, format: Format) -> anyhow::Result<String> {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .with_context(|| format!("cannot connect to {}", shown_conninfo(conninfo)))?;
    let connection = tokio::spawn(connection);
    // The types of a single statement's columns; several statements are printed as text.
    let types = client
        .prepare(sql)
        .await
        .ok()
        .map(|s| s.columns().iter().map(|c| c.type_().clone()).collect::<Vec<_>>());
    let messages = client.simple_query(sql).await.map_err(describe_error)?;
    drop(client);
    let _ = connection.await;
    let sets = result_sets(messages, types);
    let mut out = String::new();
    for set in &sets {
        match format {
            Format::Table => table(&mut out, set),
            Format::Csv => csv(&mut out, set),
            Format::Json => json(&mut out, set),
        }
    }
    Ok(out)
}

fn shown_conninfo(conninfo: &str) -> String {
    // A URL may carry a password.
    match conninfo.split_once('@') {
        Some((_, host)) if conninfo.contains("://") => format!("postgres://…@{host}"),
        _ => conninfo.to_string(),
    }
}

fn describe_error(e: tokio_postgres::Error) -> anyhow::Error {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("ERROR:  {} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(hint) = db.hint() {
                let _ = write!(text, "\nHINT:  {hint}");
            }
            anyhow::anyhow!(text)
        }
        None => anyhow::anyhow!("{e}"),
    }
}

fn result_sets(messages: Vec<SimpleQueryMessage>, types: Option<Vec<Type>>) -> Vec<ResultSet> {
    let mut sets = Vec::new();
    let mut current: Option<ResultSet> = None;
    for m in messages {
        match m {
            SimpleQueryMessage::RowDescription(columns) => {
                let names: Vec<String> = columns.iter().map(|c| c.name().to_string()).collect();
                let types = match &types {
                    Some(t) if t.len() == names.len() => t.iter().cloned().map(Some).collect(),
                    _ => vec![None; names.len()],
                };
                current = Some(ResultSet {
                    columns: names,
                    types,
                    rows: Vec::new(),
                });
            }
            SimpleQueryMessage::Row(row) => {
                if let Some(set) = current.as_mut() {
                    set.rows.push((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect());
                }
            }
            SimpleQueryMessage::CommandComplete(_) => {
                if let Some(set) = current.take() {
                    sets.push(set);
                }
            }
            _ => {}
        }
    }
    sets
}

fn table(out: &mut String, set: &ResultSet) {
    let cells: Vec<Vec<String>> = set
        .rows
        .iter()
        .map(|r| r.iter().map(|v| v.clone().unwrap_or_default()).collect())
        .collect();
    let widths: Vec<usize> = set
        .columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([name.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<String>, right: &[bool]| -> String {
        values
            .iter()
            .zip(&widths)
            .zip(right)
            .map(|((v, w), r)| if *r { format!(" {v:>w$} ") } else { format!(" {v:<w$} ") })
            .collect::<Vec<_>>()
            .join("|")
            .trim_end()
            .to_string()
    };
    let centered: Vec<String> = set.columns.iter().zip(&widths).map(|(n, w)| format!("{n:^w$}")).collect();
    let _ = writeln!(out, "{}", line(centered, &vec![false; widths.len()]));
    let _ = writeln!(out, "{}", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("+"));
    let right: Vec<bool> = set.types.iter().map(|t| t.as_ref().is_some_and(is_number)).collect();
    for row in cells {
        let _ = writeln!(out, "{}", line(row, &right));
    }
    let n = set.rows.len();
    let _ = writeln!(out, "({n} {})\n", if n == 1 { "row" } else { "rows" });
}

fn csv(out: &mut String, set: &ResultSet) {
    let field = |v: &str| {
        if v.contains([',', '"', '\n', '\r']) || v.is_empty() {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v.to_string()
        }
    };
    let _ = writeln!(out, "{}", set.columns.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
    for row in &set.rows {
        // NULL is an empty field; an empty string is quoted, so the two stay apart.
        let fields: Vec<String> = row.iter().map(|v| v.as_deref().map(field).unwrap_or_default()).collect();
        let _ = writeln!(out, "{}", fields.join(","));
    }
}

fn json(out: &mut String, set: &ResultSet) {
    for row in &set.rows {
        let mut object = serde_json::Map::new();
        for ((name, ty), value) in set.columns.iter().zip(&set.types).zip(row) {
            object.insert(name.clone(), json_value(value.as_deref(), ty.as_ref()));
        }
        let _ = writeln!(out, "{}", serde_json::Value::Object(object));
    }
}

fn json_value(value: Option<&str>, ty: Option<&Type>) -> serde_json::Value {
    let Some(v) = value else { return serde_json::Value::Null };
    let parsed = match ty {
        Some(t) if *t == Type::BOOL => Some(serde_json::Value::Bool(v == "t")),
        Some(t) if is_number(t) => serde_json::from_str::<serde_json::Number>(v).ok().map(serde_json::Value::Number),
        Some(t) if *t == Type::JSON || *t == Type::JSONB => serde_json::from_str(v).ok(),
        _ => None,
    };
    parsed.unwrap_or_else(|| serde_json::Value::String(v.to_string()))
}

fn is_number(t: &Type) -> bool {
    [
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::NUMERIC,
        Type::OID,
    ]
    .contains(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> ResultSet {
        ResultSet {
            columns: vec!["id".into(), "n".into(), "ok".into(), "tags".into()],
            types: vec![Some(Type::TEXT), Some(Type::INT8), Some(Type::BOOL), Some(Type::JSON)],
            rows: vec![
                vec![Some("a,b".into()), Some("10".into()), Some("t".into()), Some("{\"k\":1}".into())],
                vec![Some(String::new()), None, Some("f".into()), None],
            ],
        }
    }

    #[test]
    fn formats() {
        let mut out = String::new();
        csv(&mut out, &set());
        assert_eq!(out, "id,n,ok,tags\n\"a,b\",10,t,\"{\"\"k\"\":1}\"\n\"\",,f,\n");
        let mut out = String::new();
        json(&mut out, &set());
        assert_eq!(
            out,
            "{\"id\":\"a,b\",\"n\":10,\"ok\":true,\"tags\":{\"k\":1}}\n{\"id\":\"\",\"n\":null,\"ok\":false,\"tags\":null}\n"
        );
        let mut out = String::new();
        table(&mut out, &set());
        assert_eq!(
            out,
            " id  | n  | ok |  tags\n-----+----+----+---------\n a,b | 10 | t  | {\"k\":1}\n     |    | f  |\n(2 rows)\n\n"
        );
    }
}
