//! ECMA-262 patterns from resource schemas: matching (with look-around, via fancy-regex) and
//! generating strings that match.
//!
//! A pattern that cannot be compiled never rejects a value: it is logged once and skipped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rand::Rng;
use regex_syntax::hir::{Class, Hir, HirKind};

type Compiled = Option<Arc<fancy_regex::Regex>>;

fn cache() -> &'static Mutex<HashMap<String, Compiled>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Compiled>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// ECMA escapes the Rust engines spell differently: `\uXXXX` → `\x{XXXX}`, and `\/`.
fn to_rust_syntax(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            let next = chars[i + 1];
            if next == 'u' && i + 5 < chars.len() && chars[i + 2..i + 6].iter().all(|h| h.is_ascii_hexdigit()) {
                out.push_str("\\x{");
                out.extend(&chars[i + 2..i + 6]);
                out.push('}');
                i += 6;
                continue;
            }
            if next == '/' {
                out.push('/');
                i += 2;
                continue;
            }
            out.push(c);
            out.push(next);
            i += 2;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

fn compiled(pattern: &str) -> Compiled {
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = cache.get(pattern) {
        return c.clone();
    }
    let c = match fancy_regex::Regex::new(&to_rust_syntax(pattern)) {
        Ok(r) => Some(Arc::new(r)),
        Err(e) => {
            tracing::debug!(pattern, cause = %e, "schema pattern does not compile; values are not checked against it");
            None
        }
    };
    cache.insert(pattern.to_string(), c.clone());
    c
}

/// Whether `value` matches `pattern` (anywhere, as JSON Schema's `pattern` does). `true` when
/// the pattern cannot be compiled or evaluated.
pub fn matches(pattern: &str, value: &str) -> bool {
    match compiled(pattern) {
        Some(re) => re.is_match(value).unwrap_or(true),
        None => true,
    }
}

/// Removes `(?=…)`, `(?!…)`, `(?<=…)`, `(?<!…)` groups, which the generator cannot honour;
/// candidates are checked against the full pattern afterwards.
fn strip_lookaround(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() {
            out.push(chars[i]);
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        let look = chars[i] == '('
            && chars.get(i + 1) == Some(&'?')
            && (matches!(chars.get(i + 2), Some('=' | '!'))
                || (chars.get(i + 2) == Some(&'<') && matches!(chars.get(i + 3), Some('=' | '!'))));
        if look {
            let mut depth = 0;
            let mut in_class = false;
            while i < chars.len() {
                match chars[i] {
                    '\\' => i += 1,
                    '[' => in_class = true,
                    ']' => in_class = false,
                    '(' if !in_class => depth += 1,
                    ')' if !in_class => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// A string matching `pattern` within the length bounds, or `None` if none was found in a
/// few attempts.
pub fn generate(pattern: &str, min_len: usize, max_len: usize, rng: &mut impl Rng) -> Option<String> {
    // `\Z` (end of input, as Python and fancy-regex read it) is `\z` to regex-syntax.
    let stripped = to_rust_syntax(&strip_lookaround(pattern)).replace("\\Z", "\\z");
    let hir = regex_syntax::ParserBuilder::new().build().parse(&stripped).ok()?;
    for _ in 0..24 {
        let mut s = String::new();
        emit(&hir, rng, &mut s, 0);
        let len = s.chars().count();
        if len >= min_len && len <= max_len && matches(pattern, &s) {
            return Some(s);
        }
    }
    None
}

fn emit(hir: &Hir, rng: &mut impl Rng, out: &mut String, depth: usize) {
    if depth > 40 {
        return;
    }
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(lit) => out.push_str(&String::from_utf8_lossy(&lit.0)),
        HirKind::Class(class) => {
            if let Some(c) = pick_char(class, rng) {
                out.push(c);
            }
        }
        HirKind::Repetition(rep) => {
            let max = rep.max.unwrap_or(rep.min + 8).min(rep.min + 8);
            let n = if max > rep.min { rng.random_range(rep.min..=max) } else { rep.min };
            for _ in 0..n.min(64) {
                emit(&rep.sub, rng, out, depth + 1);
            }
        }
        HirKind::Capture(cap) => emit(&cap.sub, rng, out, depth + 1),
        HirKind::Concat(parts) => parts.iter().for_each(|p| emit(p, rng, out, depth + 1)),
        HirKind::Alternation(alts) => {
            if !alts.is_empty() {
                let i = rng.random_range(0..alts.len());
                emit(&alts[i], rng, out, depth + 1);
            }
        }
    }
}

/// Readable characters first: letters and digits the class contains, then other printable
/// ASCII, then anything.
fn pick_char(class: &Class, rng: &mut impl Rng) -> Option<char> {
    let ranges: Vec<(char, char)> = match class {
        Class::Unicode(u) => u.ranges().iter().map(|r| (r.start(), r.end())).collect(),
        Class::Bytes(b) => b.ranges().iter().map(|r| (r.start() as char, r.end() as char)).collect(),
    };
    let contains = |c: char| ranges.iter().any(|(a, b)| *a <= c && c <= *b);
    let alnum: Vec<char> = ('a'..='z').chain('0'..='9').chain('A'..='Z').filter(|c| contains(*c)).collect();
    if !alnum.is_empty() {
        return Some(alnum[rng.random_range(0..alnum.len())]);
    }
    let printable: Vec<char> = (' '..='~').filter(|c| contains(*c)).collect();
    if !printable.is_empty() {
        return Some(printable[rng.random_range(0..printable.len())]);
    }
    ranges.first().map(|(a, _)| *a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn lookahead_patterns_match_and_generate() {
        let pattern = "^(?!d-)[a-z0-9-]{3,20}$";
        assert!(matches(pattern, "abc-1"));
        assert!(!matches(pattern, "d-abc"));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let s = generate(pattern, 0, 64, &mut rng).unwrap();
        assert!(matches(pattern, &s), "{s}");
    }

    #[test]
    fn ecma_escapes_and_arns() {
        let pattern = r"^arn:aws[-a-z]*:iam::\d{12}:role\/[\u0021-\u007E]+$";
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let s = generate(pattern, 1, 2048, &mut rng).unwrap();
        assert!(s.starts_with("arn:aws"), "{s}");
        assert!(matches(pattern, &s));
    }

    #[test]
    fn end_of_input_anchor() {
        let pattern = r"^arn:[a-z0-9-]+:kms:[a-z0-9-]+:\d{12}:(key|alias)/.+\Z";
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let s = generate(pattern, 0, 2048, &mut rng).unwrap();
        assert!(matches(pattern, &s), "{s}");
    }

    #[test]
    fn uncompilable_patterns_never_reject() {
        assert!(matches("([unclosed", "anything"));
    }
}
