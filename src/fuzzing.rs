//! Entry points for hostile input, shared by the cargo-fuzz targets under `fuzz/` (nightly)
//! and the test suite, which replays the committed corpus and runs property tests on stable.
//! Each takes arbitrary bytes and must return, never panic or loop, whatever they hold.
//!
//! They reach the code that reads client input before any DataFusion plan exists: message
//! framing and decoding, the authentication exchange, SQL scanning and classification, DML
//! translation (table, fields, targets, DesiredState and patch), the conversion of SQL values
//! to property JSON, and PatchDocument checking.

use bytes::BytesMut;
use datafusion::common::ScalarValue;
use pgwire::messages::{DecodeContext, PgWireFrontendMessage};

use crate::sql::dml::{patch, values};

/// Messages decoded from one input at most, so a fuzz run cannot spin on one case.
const MAX_MESSAGES: usize = 256;
/// The message size limit the connection's guard holds messages to (as `limits.max_message_size`).
const MESSAGE_LIMIT: usize = 1 << 20;
/// Expression depth the parser is held to (the server's default is deeper, on larger stacks).
const MAX_DEPTH: usize = 48;

/// A byte stream as a connection receives it: SSLRequest or startup first, then messages,
/// each decoded as pgwire decodes it after the guard has checked its length header.
pub fn frontend_messages(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    let mut ctx = DecodeContext::default();
    for _ in 0..MAX_MESSAGES {
        if !ctx.awaiting_frontend_startup && over_limit(&buf) {
            return;
        }
        // As the connection does: a panic inside pgwire's decoder is an invalid message.
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| PgWireFrontendMessage::decode(&mut buf, &ctx)));
        match decoded.unwrap_or(Ok(None)) {
            Ok(Some(message)) => {
                match &message {
                    PgWireFrontendMessage::SslNegotiation(_) => {}
                    PgWireFrontendMessage::Startup(_) => ctx.awaiting_frontend_startup = false,
                    PgWireFrontendMessage::PasswordMessageFamily(pgwire::messages::startup::PasswordMessageFamily::Raw(body)) => {
                        authentication(body)
                    }
                    PgWireFrontendMessage::Query(q) => sql(q.query.as_bytes()),
                    PgWireFrontendMessage::Parse(p) => sql(p.query.as_bytes()),
                    _ => {}
                }
                ctx.awaiting_frontend_ssl = false;
            }
            Ok(None) | Err(_) => return,
        }
    }
}

/// Whether the next message announces more than the guard lets through.
fn over_limit(buf: &[u8]) -> bool {
    buf.get(1..5)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .is_some_and(|len| u32::from_be_bytes(len) as usize > MESSAGE_LIMIT)
}

/// The bodies a client sends while logging in: a password message, a SASLInitialResponse,
/// and the two SCRAM messages (the input split in half).
pub fn authentication(data: &[u8]) {
    let _ = crate::wire::startup::cstring(data);
    let _ = crate::wire::startup::sasl_initial_response(data);
    let verifier = crate::auth::ScramVerifier::with_salt("secret", b"fuzzing-salt".to_vec(), 16);
    let (first, last) = data.split_at(data.len() / 2);
    if let Ok((exchange, _)) = crate::auth::ScramExchange::start(verifier, first) {
        let _ = exchange.finish(last);
    }
}

/// A query string: its fingerprint, its statements and what each one is.
pub fn sql(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = crate::sql::parse::scan(text);
    if let Ok(statements) = crate::sql::parse::parse(text, MAX_DEPTH) {
        for s in statements {
            let _ = crate::sql::parse::parameter_count(&s);
            let _ = crate::sql::statement::Command::classify(s);
        }
    }
}

/// A value as an INSERT or UPDATE gives it: converted for each JSON type a property may
/// have, and read as a PatchDocument.
pub fn dml_value(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let value = ScalarValue::Utf8(Some(text.to_string()));
    for t in ["string", "integer", "number", "boolean", "array", "object"] {
        let schema = serde_json::json!({ "type": t });
        let zone = crate::sql::datetime::Zone::utc();
        let _ = values::to_json(&value, &schema, "fuzzed", false, &zone);
        let _ = values::to_json(&value, &schema, "fuzzed", true, &zone);
    }
    let _ = patch::check(text);
}

/// A DML statement and values for it: the input is SQL, then after a NUL byte the values,
/// separated by 0x1F (each read as text, and as an integer, boolean or NULL where it is one).
/// The statement is translated offline against the shipped catalog: table, fields, SET
/// targets, the identifiers its WHERE names, the DesiredState or patch.
pub fn dml(data: &[u8]) {
    let (sql_part, rest) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(sql_part) else { return };
    let Ok(statements) = crate::sql::parse::parse(text, MAX_DEPTH) else {
        return;
    };
    let vals: Vec<ScalarValue> = rest
        .split(|b| *b == 0x1f)
        .filter_map(|v| std::str::from_utf8(v).ok())
        .map(|v| match v {
            "NULL" => ScalarValue::Null,
            "true" | "false" => ScalarValue::Boolean(Some(v == "true")),
            _ => v
                .parse::<i64>()
                .map(|n| ScalarValue::Int64(Some(n)))
                .unwrap_or_else(|_| ScalarValue::Utf8(Some(v.to_string()))),
        })
        .collect();
    let Some(catalog) = shipped_catalog() else { return };
    for statement in statements {
        let _ = crate::sql::dml::translate_offline(&statement, catalog, &vals);
    }
}

/// The catalog of the shipped schemas, built once (`None` only if the embedded data, which its
/// crate's tests check, could not be read).
fn shipped_catalog() -> Option<&'static crate::catalog::Catalog> {
    static CATALOG: std::sync::OnceLock<Option<crate::catalog::Catalog>> = std::sync::OnceLock::new();
    CATALOG
        .get_or_init(|| {
            let registry = resource_schemas::Registry::shipped().ok()?;
            Some(crate::catalog::Catalog::build_with(
                registry,
                crate::catalog::lock::NameLock::shipped(),
            ))
        })
        .as_ref()
}

/// The entry point for a corpus directory's name (`fuzz/corpus/<target>`).
pub fn target(name: &str) -> Option<fn(&[u8])> {
    match name {
        "frontend_messages" => Some(frontend_messages),
        "authentication" => Some(authentication),
        "sql" => Some(sql),
        "dml_value" => Some(dml_value),
        "dml" => Some(dml),
        _ => None,
    }
}
