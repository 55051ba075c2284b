//! The text of `jsonb` values as PostgreSQL prints them: object keys shortest first (then
//! bytewise), the last of duplicate keys kept, `", "` and `": "` between items, numbers as
//! `numeric` prints them (`1e2` is `100`, `1.50` stays `1.50`). Resource columns, `::jsonb`
//! casts and the jsonb functions all produce this form, so equal values print alike and
//! compare equal as text.

use serde_json::Value;

/// A JSON value in jsonb's canonical text.
pub fn text(v: &Value) -> String {
    let mut out = String::new();
    write_value(v, &mut out);
    out
}

fn write_value(v: &Value, out: &mut String) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| key_order(a.0, b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write_value(v, out);
            }
            out.push('}');
        }
        // serde_json keeps a number's digits (`arbitrary_precision`); numeric prints them.
        Value::Number(n) => {
            let digits = n.to_string();
            out.push_str(&numeric_text(&digits).unwrap_or(digits));
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `jsonb_pretty`: four spaces a level, an empty object or array over two lines, as
/// PostgreSQL lays it out.
pub fn pretty(v: &Value) -> String {
    let mut out = String::new();
    write_pretty(v, 0, &mut out);
    out
}

fn write_pretty(v: &Value, depth: usize, out: &mut String) {
    let indent = |d: usize, out: &mut String| out.extend(std::iter::repeat_n("    ", d));
    match v {
        Value::Array(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                indent(depth + 1, out);
                write_pretty(item, depth + 1, out);
            }
            if !items.is_empty() {
                out.push('\n');
            }
            indent(depth, out);
            out.push(']');
        }
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| key_order(a.0, b.0));
            out.push_str("{\n");
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                indent(depth + 1, out);
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push_str(": ");
                write_pretty(v, depth + 1, out);
            }
            if !entries.is_empty() {
                out.push('\n');
            }
            indent(depth, out);
            out.push('}');
        }
        other => write_value(other, out),
    }
}

/// jsonb's key order: shorter keys first, equal lengths bytewise.
pub fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// The canonical text of JSON text, keeping each number's digits (serde_json would turn
/// `1.50` into the float `1.5`); `None` when the text is not JSON.
pub fn canonical(json: &str) -> Option<String> {
    let mut parser = Parser { s: json.as_bytes(), i: 0 };
    let value = parser.value()?;
    parser.skip_space();
    if parser.i != parser.s.len() {
        return None;
    }
    let mut out = String::with_capacity(json.len());
    value.write(&mut out);
    Some(out)
}

/// A parsed value whose numbers keep their text.
enum Node {
    Atom(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl Node {
    fn write(&self, out: &mut String) {
        match self {
            Node::Atom(t) => out.push_str(t),
            Node::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Node::Object(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push_str(": ");
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

/// Nesting deeper than this is refused rather than risking the stack: serde_json's limit,
/// which every other JSON path here has.
const MAX_DEPTH: usize = 128;

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.s.get(self.i).is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn value(&mut self) -> Option<Node> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: usize) -> Option<Node> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        match *self.s.get(self.i)? {
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.skip_space();
                if self.eat(b']') {
                    return Some(Node::Array(items));
                }
                loop {
                    items.push(self.value_at(depth + 1)?);
                    self.skip_space();
                    if self.eat(b']') {
                        return Some(Node::Array(items));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'{' => {
                self.i += 1;
                let mut entries: Vec<(String, Node)> = Vec::new();
                self.skip_space();
                if self.eat(b'}') {
                    return Some(Node::Object(entries));
                }
                loop {
                    self.skip_space();
                    let key = self.string()?;
                    self.skip_space();
                    if !self.eat(b':') {
                        return None;
                    }
                    let value = self.value_at(depth + 1)?;
                    match entries.iter_mut().find(|(k, _)| *k == key) {
                        Some(existing) => existing.1 = value,
                        None => entries.push((key, value)),
                    }
                    self.skip_space();
                    if self.eat(b'}') {
                        entries.sort_by(|a, b| key_order(&a.0, &b.0));
                        return Some(Node::Object(entries));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'"' => {
                let s = self.string()?;
                Some(Node::Atom(Value::String(s).to_string()))
            }
            b't' => self.word("true"),
            b'f' => self.word("false"),
            b'n' => self.word("null"),
            _ => self.number(),
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self, w: &str) -> Option<Node> {
        let end = self.i + w.len();
        (self.s.get(self.i..end)? == w.as_bytes()).then(|| {
            self.i = end;
            Node::Atom(w.to_string())
        })
    }

    /// A string token, unescaped.
    fn string(&mut self) -> Option<String> {
        let start = self.i;
        if !self.eat(b'"') {
            return None;
        }
        while let Some(&c) = self.s.get(self.i) {
            self.i += 1;
            match c {
                b'\\' => self.i += 1,
                b'"' => {
                    let raw = std::str::from_utf8(&self.s[start..self.i]).ok()?;
                    return serde_json::from_str(raw).ok();
                }
                _ => {}
            }
        }
        None
    }

    fn number(&mut self) -> Option<Node> {
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            self.i += 1;
        }
        let raw = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        numeric_text(raw).map(Node::Atom)
    }
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
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert_eq!(canonical(&deep), None);
    }
}
