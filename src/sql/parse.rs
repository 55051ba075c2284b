//! SQL text to checked statements: the one place statements are parsed and rewritten.
//!
//! In order: the text's nesting is bounded from its tokens (before anything recurses over a
//! syntax tree, since a 4 MiB `a OR b OR …` would be hundreds of thousands of levels deep), it
//! is parsed with PostgreSQL's dialect and the pg_catalog compatibility rewrites, the StackQL
//! rewrites apply, and every `$n` is checked. The text's [`Fingerprint`] (literals replaced)
//! is what logs and spans show, never the text: values can be secrets.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{visit_expressions, Expr, Statement, Value, ValueWithSpan};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Span, Token, TokenWithSpan, Tokenizer, Whitespace};

use super::rewrite;
use crate::error::{Error, Result};

/// The highest `$n` a statement may use: Bind carries at most 65,535 values.
pub const MAX_PARAMETERS: usize = 65_535;

/// A statement's text with its literals replaced by `?`, and a hash of that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub hash: u64,
    pub text: String,
}

impl Fingerprint {
    /// The hash as 16 hex digits, formatted where it is written (logs skip it when filtered out).
    pub fn hex(&self) -> Hex {
        Hex(self.hash)
    }
}

/// A fingerprint's hash shown as 16 hex digits.
#[derive(Debug, Clone, Copy)]
pub struct Hex(u64);

impl std::fmt::Display for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// What the `/*+ … */` hints of a statement ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hints {
    pub nocache: bool,
    pub nowait: bool,
}

impl Hints {
    pub fn of(sql: &str) -> Hints {
        Hints {
            nocache: rewrite::has_hint(sql, "NOCACHE"),
            nowait: rewrite::has_hint(sql, "NOWAIT"),
        }
    }
}

/// One pass over the tokens: the fingerprint, and an upper bound of how deep any expression
/// nests (see [`DepthBound`]).
pub fn scan(sql: &str) -> Result<(Fingerprint, usize)> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize()
        .map_err(|e| Error::Syntax(e.to_string()))?;
    let mut text = String::with_capacity(sql.len().min(4096));
    let mut depth = DepthBound::default();
    let mut space = false;
    // The last token written that could end an operand: after one, `-` is a subtraction.
    let mut after_operand = false;
    let mut iter = tokens.iter().peekable();
    while let Some(t) = iter.next() {
        depth.token(t);
        if matches!(t, Token::Whitespace(_)) {
            space = !text.is_empty();
            continue;
        }
        if space {
            text.push(' ');
            space = false;
        }
        if is_literal(t) {
            text.push('?');
            after_operand = true;
        } else if matches!(t, Token::Minus) && !after_operand && next_is_number(&iter) {
            // `-1` is one literal, as PostgreSQL reads it: its sign is part of the value.
            text.push('?');
            for skipped in iter.by_ref() {
                depth.token(skipped);
                if !matches!(skipped, Token::Whitespace(_)) {
                    break;
                }
            }
            after_operand = true;
        } else {
            text.push_str(&t.to_string());
            after_operand = matches!(t, Token::Word(_) | Token::RParen | Token::RBracket | Token::Placeholder(_));
        }
    }
    let hash = fnv1a(text.as_bytes());
    Ok((Fingerprint { hash, text }, depth.max))
}

/// Parses a text that passed [`scan`]'s depth check into rewritten, checked statements.
pub fn parse(sql: &str, max_depth: usize) -> Result<Vec<Statement>> {
    let (_, depth) = scan(sql)?;
    check_depth(depth, max_depth)?;
    parse_checked(sql)
}

/// 54001 when a statement nests deeper than `limits.max_expression_depth`.
pub fn check_depth(depth: usize, max_depth: usize) -> Result<()> {
    if depth > max_depth {
        return Err(Error::TooComplex(format!(
            "an expression nests about {depth} levels deep, more than the limit of {max_depth} (limits.max_expression_depth)"
        )));
    }
    Ok(())
}

/// Parsing and rewriting, once the depth is known to be bounded.
pub fn parse_checked(sql: &str) -> Result<Vec<Statement>> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| Error::Syntax(e.to_string()))?;
    let tokens = postgres_statements(tokens);
    let statements = Parser::new(&PostgreSqlDialect {})
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(parse_error)?;
    Ok(statements
        .into_iter()
        .map(|s| {
            let mut s = s;
            // Names first: PostgreSQL names columns after what the client wrote, not after
            // the rewrites below.
            super::names::name_columns(&mut s);
            super::compat::syntax::shown_oid_aliases(&mut s);
            let mut s = super::compat::rewrite(s);
            rewrite::rewrite(&mut s);
            s
        })
        .collect())
}

/// PostgreSQL statements sqlparser lacks, as ones it has: `ABORT` is `ROLLBACK`, and
/// `MOVE … FROM c` becomes `FETCH … FROM c INTO` a marker that classifies it as MOVE.
fn postgres_statements(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let plain = |token: Token| TokenWithSpan {
        token,
        span: Span::empty(),
    };
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let (mut at_start, mut in_move, mut in_fetch) = (true, false, false);
    let end_move = |out: &mut Vec<TokenWithSpan>| {
        out.push(plain(Token::Whitespace(Whitespace::Space)));
        out.push(plain(Token::make_keyword("INTO")));
        out.push(plain(Token::Whitespace(Whitespace::Space)));
        out.push(plain(Token::make_word(super::cursor::MOVE_MARKER, Some('"'))));
    };
    for mut t in tokens {
        match &t.token {
            Token::Whitespace(_) => {}
            Token::SemiColon => {
                if std::mem::take(&mut in_move) {
                    end_move(&mut out);
                }
                in_fetch = false;
                at_start = true;
            }
            Token::Word(w) if at_start && w.keyword == Keyword::ABORT => {
                t.token = Token::make_keyword("ROLLBACK");
                at_start = false;
            }
            Token::Word(w) if at_start && w.quote_style.is_none() && w.value.eq_ignore_ascii_case("move") => {
                t.token = Token::make_keyword("FETCH");
                (in_move, in_fetch, at_start) = (true, true, false);
            }
            Token::Word(w) if at_start && w.keyword == Keyword::FETCH => (in_fetch, at_start) = (true, false),
            // `FETCH -1` / `MOVE -5`: sqlparser wants an unsigned count; the sign goes into the
            // number, so the cursor can refuse to go backward.
            Token::Number(n, long) if in_fetch && matches!(out.last().map(|t| &t.token), Some(Token::Minus)) => {
                let (n, long) = (n.clone(), *long);
                out.pop();
                t.token = Token::Number(format!("-{n}"), long);
            }
            _ => at_start = false,
        }
        out.push(t);
    }
    if in_move {
        end_move(&mut out);
    }
    out
}

fn parse_error(e: ParserError) -> Error {
    match e {
        ParserError::RecursionLimitExceeded => {
            Error::TooComplex("parentheses, subqueries or function calls nest more than 50 levels deep".into())
        }
        other => Error::Syntax(other.to_string()),
    }
}

/// The number of parameters a statement uses (its highest `$n`), or 42P02 for a `$n` that
/// cannot exist (`$0`, beyond `$65535`).
pub fn parameter_count(stmt: &Statement) -> Result<usize> {
    let mut max = 0;
    let mut bad = None;
    let _ = visit_expressions(stmt, |e| {
        if let Expr::Value(ValueWithSpan {
            value: Value::Placeholder(p),
            ..
        }) = e
        {
            match placeholder_number(p) {
                Some(n) => max = max.max(n),
                None => {
                    bad = Some(p.clone());
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    });
    match bad {
        Some(p) => Err(Error::UndefinedParameterRef(p)),
        None => Ok(max),
    }
}

/// `$n` as its number, when it is one a client can bind (1 to 65,535).
pub fn placeholder_number(p: &str) -> Option<usize> {
    let n: usize = p.strip_prefix('$')?.parse().ok()?;
    (1..=MAX_PARAMETERS).contains(&n).then_some(n)
}

/// Whether the next token that is not whitespace is a number.
fn next_is_number<'a>(iter: &(impl Iterator<Item = &'a Token> + Clone)) -> bool {
    iter.clone()
        .find(|t| !matches!(t, Token::Whitespace(_)))
        .is_some_and(|t| matches!(t, Token::Number(..)))
}

fn is_literal(t: &Token) -> bool {
    matches!(
        t,
        Token::Number(..)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedByteStringLiteral(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::TripleSingleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::SingleQuotedRawStringLiteral(_)
    )
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// An upper bound of expression depth, from tokens alone.
///
/// The parser nests recursively only through parentheses, brackets, function calls and
/// subqueries, which it limits to 50 levels; what it builds iteratively, and so without
/// bound, are chains of infix operators (`a OR b OR …`, `x::t::t`, `a + b + …`), each operator
/// one level. Within a parenthesis level, operators of lower precedence start new terms of
/// those above them, so the depth there is the operators counted per precedence level since
/// the last operator of a lower one, plus the deepest parenthesized term so far; enclosing
/// levels add theirs. Commas and clause keywords start a new expression.
#[derive(Debug)]
struct DepthBound {
    /// The innermost parenthesis level last.
    frames: Vec<Frame>,
    max: usize,
}

#[derive(Debug, Default, Clone)]
struct Frame {
    /// Depth of the enclosing levels.
    base: usize,
    /// Operators per precedence level in the current expression.
    levels: [usize; PRECEDENCE_LEVELS],
    /// The deepest parenthesized term of the current expression.
    carry: usize,
    /// The deepest point reached inside this level.
    peak: usize,
}

const PRECEDENCE_LEVELS: usize = 5;

impl Default for DepthBound {
    fn default() -> Self {
        DepthBound {
            frames: vec![Frame::default()],
            max: 0,
        }
    }
}

impl Frame {
    fn depth(&self) -> usize {
        self.base + self.levels.iter().sum::<usize>() + self.carry
    }

    fn new_expression(&mut self) {
        self.levels = Default::default();
        self.carry = 0;
    }
}

impl DepthBound {
    fn top(&mut self) -> &mut Frame {
        if self.frames.is_empty() {
            self.frames.push(Frame::default());
        }
        let last = self.frames.len() - 1;
        &mut self.frames[last]
    }

    fn record(&mut self) {
        let top = self.top();
        top.peak = top.peak.max(top.depth());
        let peak = top.peak;
        self.max = self.max.max(peak);
    }

    fn operator(&mut self, level: usize) {
        let top = self.top();
        top.levels[level] += 1;
        for l in &mut top.levels[level + 1..] {
            *l = 0;
        }
        self.record();
    }

    fn open(&mut self) {
        let base = self.top().depth() + 1;
        self.frames.push(Frame {
            base,
            peak: base,
            ..Frame::default()
        });
        self.record();
    }

    fn close(&mut self) {
        if self.frames.len() < 2 {
            return; // unbalanced: the parser will say so
        }
        let Some(inner) = self.frames.pop() else { return };
        let term = inner.peak + 1 - inner.base;
        let top = self.top();
        top.carry = top.carry.max(term);
        self.record();
    }

    fn token(&mut self, t: &Token) {
        match t {
            Token::LParen | Token::LBrace => self.open(),
            Token::LBracket => {
                self.operator(PRECEDENCE_LEVELS - 1);
                self.open();
            }
            Token::RParen | Token::RBracket | Token::RBrace => self.close(),
            Token::Comma | Token::SemiColon => self.top().new_expression(),
            Token::Word(w) => match w.keyword {
                Keyword::OR => self.operator(0),
                Keyword::AND => self.operator(1),
                Keyword::IS | Keyword::LIKE | Keyword::ILIKE | Keyword::SIMILAR | Keyword::IN | Keyword::BETWEEN => self.operator(2),
                Keyword::COLLATE | Keyword::AT => self.operator(4),
                Keyword::SELECT
                | Keyword::FROM
                | Keyword::WHERE
                | Keyword::GROUP
                | Keyword::HAVING
                | Keyword::ORDER
                | Keyword::LIMIT
                | Keyword::OFFSET
                | Keyword::ON
                | Keyword::JOIN
                | Keyword::UNION
                | Keyword::INTERSECT
                | Keyword::EXCEPT
                | Keyword::CASE
                | Keyword::WHEN
                | Keyword::THEN
                | Keyword::ELSE
                | Keyword::END
                | Keyword::SET
                | Keyword::VALUES
                | Keyword::RETURNING
                | Keyword::USING
                | Keyword::WINDOW
                | Keyword::AS => self.top().new_expression(),
                _ => {}
            },
            Token::Eq | Token::DoubleEq | Token::Neq | Token::Lt | Token::Gt | Token::LtEq | Token::GtEq => self.operator(3),
            Token::Whitespace(_) | Token::Period | Token::Placeholder(_) | Token::EOF | Token::Colon | Token::DoubleQuotedString(_) => {}
            other if is_literal(other) => {}
            // Every other symbol may be an infix operator (`+`, `||`, `->`, `::`, `@>`…).
            _ => self.operator(PRECEDENCE_LEVELS - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(sql: &str) -> usize {
        scan(sql).unwrap().1
    }

    #[test]
    fn fingerprints_hide_literals_and_ignore_spacing() {
        let (a, _) = scan("SELECT * FROM t WHERE password = 'hunter2' AND n = 42").unwrap();
        let (b, _) = scan("SELECT *  FROM t\nWHERE password = 'other' AND n = 7").unwrap();
        assert_eq!(a, b);
        assert!(!a.text.contains("hunter2") && !a.text.contains("42"), "{}", a.text);
        assert_eq!(a.text, "SELECT * FROM t WHERE password = ? AND n = ?");
        assert_ne!(a.hash, scan("SELECT * FROM u").unwrap().0.hash);
        let hex = a.hex().to_string();
        assert_eq!((hex.len(), u64::from_str_radix(&hex, 16).unwrap()), (16, a.hash));
        let small = Fingerprint {
            hash: 0xab,
            text: String::new(),
        };
        assert_eq!(small.hex().to_string(), "00000000000000ab", "zero-padded");
    }

    #[test]
    fn a_negative_number_is_one_literal_but_a_subtraction_stays() {
        let text = |sql: &str| scan(sql).unwrap().0.text;
        assert_eq!(
            text("SELECT * FROM t WHERE n = -42 AND m IN (- 7, 3)"),
            "SELECT * FROM t WHERE n = ? AND m IN (?, ?)"
        );
        assert_eq!(text("SELECT a - 1, (b) -2, $1 - 3"), "SELECT a - ?, (b) -?, $1 - ?");
    }

    #[test]
    fn abort_and_move_become_statements_sqlparser_knows() {
        let s = parse_checked("abort; MOVE FORWARD 5 FROM c; move all in \"c\"").unwrap();
        assert_eq!(s[0].to_string(), "ROLLBACK");
        assert_eq!(s[1].to_string(), "FETCH FORWARD 5 FROM c INTO \"__cloudpg_move\"");
        assert_eq!(s[2].to_string(), "FETCH ALL IN \"c\" INTO \"__cloudpg_move\"");
        assert_eq!(parse_checked("SELECT 1 AS move").unwrap()[0].to_string(), "SELECT 1 AS move");
        assert_eq!(
            parse_checked("MOVE -1 FROM c").unwrap()[0].to_string(),
            "FETCH -1 FROM c INTO \"__cloudpg_move\""
        );
        assert_eq!(parse_checked("SELECT 2 -1").unwrap()[0].to_string(), "SELECT 2 - 1 AS \"?column?\"");
    }

    #[test]
    fn depth_bounds_follow_operator_chains() {
        let or_chain = format!("SELECT 1 WHERE {}", vec!["1=1"; 2000].join(" OR "));
        let d = depth(&or_chain);
        assert!((2000..=2010).contains(&d), "{d}");
        let and_of_eq = format!("SELECT 1 WHERE {}", vec!["a = 1"; 3000].join(" AND "));
        let d = depth(&and_of_eq);
        assert!((3000..=3010).contains(&d), "{d}");
        // Lists are flat: a long IN list or select list is shallow.
        let in_list = format!("SELECT a + 1, b FROM t WHERE x IN ({})", vec!["'v'"; 10_000].join(", "));
        assert!(depth(&in_list) < 10, "{}", depth(&in_list));
        let casts = format!("SELECT 1{}", "::text".repeat(500));
        assert!(depth(&casts) >= 500);
        // Parentheses add their level and what is outside them.
        assert!(depth("SELECT (a + (b + (c + d)))") >= 4);
        let term_then_chain = format!("SELECT ({}) {}", vec!["a"; 3000].join(" + "), " OR b".repeat(3000));
        assert!(depth(&term_then_chain) >= 6000, "{}", depth(&term_then_chain));
        let paren_terms = format!("SELECT 1 WHERE {}", vec!["(1=1)"; 3000].join(" OR "));
        assert!(depth(&paren_terms) >= 3000, "{}", depth(&paren_terms));
        let nested = format!("SELECT {}", ["(a OR b"; 10].join(" AND ") + &")".repeat(10));
        assert!(depth(&nested) >= 20, "{}", depth(&nested));
    }

    #[test]
    fn too_deep_is_54001_before_parsing() {
        let sql = format!("SELECT 1 WHERE {}", vec!["1=1"; 100_000].join(" OR "));
        let e = parse(&sql, 5000).unwrap_err();
        assert_eq!(e.sqlstate(), "54001");
        assert!(e.to_string().contains("limits.max_expression_depth"), "{e}");
        let parens = format!("SELECT {}1{}", "(".repeat(200), ")".repeat(200));
        assert_eq!(parse(&parens, 5000).unwrap_err().sqlstate(), "54001");
    }

    #[test]
    fn placeholders_are_numbered_from_1_to_65535() {
        let count = |sql: &str| parameter_count(&parse(sql, 100).unwrap()[0]);
        assert_eq!(count("SELECT $1, $3").unwrap(), 3);
        assert_eq!(count("SELECT 1").unwrap(), 0);
        assert_eq!(count("SELECT $65535").unwrap(), 65535);
        for bad in ["SELECT $0", "SELECT $65536", "DELETE FROM t WHERE identifier = $99999999999"] {
            let e = count(bad).unwrap_err();
            assert_eq!(e.sqlstate(), "42P02", "{bad}");
        }
    }
}
