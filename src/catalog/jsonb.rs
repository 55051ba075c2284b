//! The text of `jsonb` values as PostgreSQL prints them: object keys shortest first (then
//! bytewise), the last of duplicate keys kept, `", "` and `": "` between items, numbers as
//! `numeric` prints them (`1e2` is `100`, `1.50` stays `1.50`: serde_json is built with
//! `arbitrary_precision`, so a parsed number keeps its digits). Resource columns, `::jsonb`
//! casts and the jsonb functions all produce this form, so equal values print alike and
//! compare equal as text.

use serde_json::Value;

/// A JSON value in jsonb's canonical text.
pub fn text(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out, None);
    out
}

/// `jsonb_pretty`: four spaces a level, an empty object or array over two lines, as
/// PostgreSQL lays it out.
pub fn pretty(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out, Some(0));
    out
}

/// The canonical text of JSON text; `None` when it is not JSON. serde_json keeps each
/// number's digits (`arbitrary_precision`) and the last of duplicate keys.
pub fn canonical(json: &str) -> Option<String> {
    serde_json::from_str::<Value>(json).ok().map(|v| text(&v))
}

/// Writes a value on one line (`depth` `None`) or laid out from that depth.
fn write(v: &Value, out: &mut String, depth: Option<usize>) {
    let (open, close, mut items): (char, char, Vec<(Option<&String>, &Value)>) = match v {
        Value::Array(items) => ('[', ']', items.iter().map(|i| (None, i)).collect()),
        Value::Object(m) => ('{', '}', m.iter().map(|(k, v)| (Some(k), v)).collect()),
        Value::Number(n) => {
            let digits = n.to_string();
            out.push_str(&numeric_text(&digits).unwrap_or(digits));
            return;
        }
        other => {
            out.push_str(&other.to_string());
            return;
        }
    };
    items.sort_by(|a, b| key_order(a.0.map_or("", String::as_str), b.0.map_or("", String::as_str)));
    let pad = |d: usize, out: &mut String| out.extend(std::iter::repeat_n("    ", d));
    out.push(open);
    for (i, (key, item)) in items.into_iter().enumerate() {
        match depth {
            None if i > 0 => out.push_str(", "),
            None => {}
            Some(d) => {
                out.push_str(if i > 0 { ",\n" } else { "\n" });
                pad(d + 1, out);
            }
        }
        if let Some(k) = key {
            out.push_str(&Value::String(k.clone()).to_string());
            out.push_str(": ");
        }
        write(item, out, depth.map(|d| d + 1));
    }
    if let Some(d) = depth {
        out.push('\n');
        pad(d, out);
    }
    out.push(close);
}

/// jsonb's key order: shorter keys first, equal lengths bytewise.
pub fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// A JSON number as `numeric` prints it: no exponent, the scale the digits had.
pub fn numeric_text(raw: &str) -> Option<String> {
    let (negative, unsigned) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let valid_int = !int.is_empty() && int.bytes().all(|c| c.is_ascii_digit()) && (int == "0" || !int.starts_with('0'));
    let valid_frac = frac.bytes().all(|c| c.is_ascii_digit()) && (!frac.is_empty() || !mantissa.contains('.'));
    if !valid_int || !valid_frac || exponent.unsigned_abs() > 100_000 {
        return None;
    }
    let digits: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    let point = int.len() as i64 + exponent;
    let scale = (frac.len() as i64 - exponent).max(0);
    let digit = |at: i64| usize::try_from(at).ok().and_then(|at| digits.get(at)).map_or('0', |&d| d as char);
    let whole: String = (0..point.max(0)).map(digit).collect();
    let whole = whole.trim_start_matches('0');
    let mut out = String::new();
    out.push_str(if whole.is_empty() { "0" } else { whole });
    if scale > 0 {
        out.push('.');
        out.extend((point..point + scale).map(digit));
    }
    let zero = out.bytes().all(|c| matches!(c, b'0' | b'.'));
    Some(if negative && !zero { format!("-{out}") } else { out })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_sort_shortest_first_and_separators_are_spaced() {
        assert_eq!(canonical(r#"{"b":1,"a":[1,2]}"#).unwrap(), r#"{"a": [1, 2], "b": 1}"#);
        assert_eq!(canonical(r#"{"aa":1,"b":2,"a":{}}"#).unwrap(), r#"{"a": {}, "b": 2, "aa": 1}"#);
        assert_eq!(
            canonical(r#" { "a" : 1 , "a" : 2 } "#).unwrap(),
            r#"{"a": 2}"#,
            "the last duplicate wins"
        );
        assert_eq!(text(&json!({"b": 1, "a": [1, 2]})), r#"{"a": [1, 2], "b": 1}"#);
        assert_eq!(canonical("[]").unwrap(), "[]");
        let parsed: Value = serde_json::from_str(r#"{"n": [1.50, 1e2, -0]}"#).unwrap();
        assert_eq!(text(&parsed), r#"{"n": [1.50, 100, 0]}"#, "digits survive parsing");
        assert_eq!(
            pretty(&json!({"a": [1, {}], "b": []})),
            "{\n    \"a\": [\n        1,\n        {\n        }\n    ],\n    \"b\": [\n    ]\n}"
        );
        assert_eq!(canonical(r#""a\/b\u00e9\n""#).unwrap(), "\"a/bé\\n\"");
    }

    #[test]
    fn numbers_print_as_numeric_does() {
        for (raw, shown) in [
            ("1", "1"),
            ("1.0", "1.0"),
            ("1.50", "1.50"),
            ("1e2", "100"),
            ("1E+2", "100"),
            ("2.50e1", "25.0"),
            ("1.5e-3", "0.0015"),
            ("-0", "0"),
            ("-0.0", "0.0"),
            ("-12.5", "-12.5"),
            ("123456789012345678901234567890", "123456789012345678901234567890"),
        ] {
            assert_eq!(numeric_text(raw).as_deref(), Some(shown), "{raw}");
        }
        for bad in ["01", "1.", ".5", "1e", "--1", "1e999999999"] {
            assert_eq!(numeric_text(bad), None, "{bad}");
        }
    }

    #[test]
    fn what_is_not_json_is_refused() {
        for bad in ["", "{", "[1,]", "{\"a\"}", "tru", "1 2", "{\"a\":1,}", "'a'"] {
            assert_eq!(canonical(bad), None, "{bad}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert_eq!(canonical(&deep), None, "nesting is bounded (serde_json's limit of 128)");
    }
}
