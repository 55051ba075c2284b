//! PostgreSQL's SQL/JSON path language, in its default `lax` mode, for `jsonb_path_query`,
//! `jsonb_path_query_array`, `jsonb_path_query_first`, `jsonb_path_exists`,
//! `jsonb_path_match` and the `@?`/`@@` operators: `$`, `@`, `$var`, `.key`, `."key"`, `.*`,
//! `[*]`, `[n]`, `[n to m]`, `[last]`, `.**`, filters `? (…)` with `== != <> < <= > >=`,
//! `&& || !`, `exists (…)`, `like_regex`, `starts with`, `is unknown`, and the methods
//! `size() type() double() abs() floor() ceiling()`. Lax mode unwraps arrays where an
//! accessor or comparison wants an item, and a structural mismatch yields nothing rather
//! than an error, as PostgreSQL's does.

use serde_json::{Map, Number, Value};

/// A parsed path, ready to run on many values.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonPath {
    Path(Path),
    Predicate(Predicate),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    start: Start,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
enum Start {
    Root,
    Current,
    Variable(String),
    Literal(Value),
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    AnyKey,
    AnyIndex,
    Indexes(Vec<(Subscript, Option<Subscript>)>),
    Descendants,
    Filter(Box<Predicate>),
    Method(Method),
    Negate,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Subscript {
    Index(i64),
    /// `last`, `last - n`.
    FromLast(i64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Method {
    Size,
    Type,
    Double,
    Abs,
    Floor,
    Ceiling,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Comparison {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    Compare(Comparison, Path, Path),
    And(Box<Predicate>, Box<Predicate>),
    Or(Box<Predicate>, Box<Predicate>),
    Not(Box<Predicate>),
    Exists(Path),
    LikeRegex(Path, String, String),
    StartsWith(Path, Path),
    IsUnknown(Box<Predicate>),
}

/// SQL's three truth values, which a filter needs (`unknown` items are dropped).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    fn of(b: bool) -> Truth {
        if b {
            Truth::True
        } else {
            Truth::False
        }
    }
}

/// A malformed path: what was wrong and where (a byte offset into the path text).
#[derive(Debug, Clone, PartialEq)]
pub struct PathError {
    pub message: String,
    pub position: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Dollar,
    At,
    Variable(String),
    Dot,
    DoubleStar,
    Star,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Question,
    Op(&'static str),
    Not,
    Minus,
    Plus,
    Number(String),
    Str(String),
    Word(String),
}

/// The tokens of one character.
fn single(c: u8) -> Option<Token> {
    Some(match c {
        b'@' => Token::At,
        b'*' => Token::Star,
        b'.' => Token::Dot,
        b'[' => Token::LBracket,
        b']' => Token::RBracket,
        b'(' => Token::LParen,
        b')' => Token::RParen,
        b',' => Token::Comma,
        b'?' => Token::Question,
        b'-' => Token::Minus,
        b'+' => Token::Plus,
        b'<' => Token::Op("<"),
        b'>' => Token::Op(">"),
        b'!' => Token::Not,
        _ => return None,
    })
}

/// The operators of two characters.
fn double(two: &[u8]) -> Option<Token> {
    Some(match two {
        b"**" => Token::DoubleStar,
        b"==" => Token::Op("=="),
        b"!=" | b"<>" => Token::Op("!="),
        b"<=" => Token::Op("<="),
        b">=" => Token::Op(">="),
        b"&&" => Token::Op("&&"),
        b"||" => Token::Op("||"),
        _ => return None,
    })
}

fn tokens(text: &str) -> Result<Vec<(Token, usize)>, PathError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let error = |message: &str, position: usize| PathError {
        message: message.to_string(),
        position,
    };
    let word_at = |at: usize| -> String { text[at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let token = if c == b'$' {
            let name = word_at(i + 1);
            i += 1 + name.len();
            if name.is_empty() {
                Token::Dollar
            } else {
                Token::Variable(name)
            }
        } else if let Some(t) = bytes.get(i..i + 2).and_then(double) {
            i += 2;
            t
        } else if c == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            if j >= bytes.len() {
                return Err(error("unterminated quoted string", i));
            }
            let s: String = serde_json::from_str(&text[i..=j]).map_err(|_| error("invalid escape in a quoted string", i))?;
            i = j + 1;
            Token::Str(s)
        } else if c.is_ascii_digit() {
            let end = number_end(bytes, i);
            let number = text[i..end].to_string();
            i = end;
            Token::Number(number)
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let word = word_at(i);
            i += word.len();
            Token::Word(word)
        } else if c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) && matches!(out.last(), None | Some((Token::Op(_), _))) {
            return Err(error("a number needs a digit before its point", i));
        } else if let Some(t) = single(c) {
            i += 1;
            t
        } else {
            return Err(error(
                &format!("unexpected character \"{}\"", text[i..].chars().next().unwrap_or(' ')),
                i,
            ));
        };
        out.push((token, start));
    }
    Ok(out)
}

/// Where a number starting at `i` ends: digits, a fraction, an exponent.
fn number_end(bytes: &[u8], i: usize) -> usize {
    let digit = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_digit);
    let mut j = i;
    while digit(j) || bytes.get(j) == Some(&b'.') && digit(j + 1) {
        j += 1;
    }
    if matches!(bytes.get(j), Some(b'e' | b'E')) {
        j += 1;
        if matches!(bytes.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        while digit(j) {
            j += 1;
        }
    }
    j
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    at: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(t, _)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |(_, p)| *p)
    }

    fn error<T>(&self, message: &str) -> Result<T, PathError> {
        Err(PathError {
            message: message.to_string(),
            position: self.position(),
        })
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).map(|(t, _)| t.clone());
        self.at += 1;
        t
    }

    fn eat(&mut self, t: &Token) -> bool {
        if self.peek() == Some(t) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(x)) if x == w) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: &Token, what: &str) -> Result<(), PathError> {
        if self.eat(t) {
            Ok(())
        } else {
            self.error(&format!("expected {what}"))
        }
    }

    fn or(&mut self) -> Result<Predicate, PathError> {
        let mut left = self.and()?;
        while self.eat(&Token::Op("||")) {
            left = Predicate::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Predicate, PathError> {
        let mut left = self.unary()?;
        while self.eat(&Token::Op("&&")) {
            left = Predicate::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Predicate, PathError> {
        if self.eat(&Token::Not) {
            self.expect(&Token::LParen, "( after !")?;
            let inner = self.or()?;
            self.expect(&Token::RParen, ")")?;
            return Ok(Predicate::Not(Box::new(inner)));
        }
        let predicate = self.primary()?;
        if self.eat_word("is") {
            if !self.eat_word("unknown") {
                return self.error("expected unknown after is");
            }
            return Ok(Predicate::IsUnknown(Box::new(predicate)));
        }
        Ok(predicate)
    }

    fn primary(&mut self) -> Result<Predicate, PathError> {
        if self.eat_word("exists") {
            self.expect(&Token::LParen, "( after exists")?;
            let path = self.path()?;
            self.expect(&Token::RParen, ")")?;
            return Ok(Predicate::Exists(path));
        }
        // A parenthesised predicate, unless it is a parenthesised path being compared.
        if self.peek() == Some(&Token::LParen) {
            let saved = self.at;
            self.at += 1;
            if let Ok(inner) = self.or() {
                if self.eat(&Token::RParen) && !matches!(self.peek(), Some(Token::Op(op)) if !matches!(*op, "&&" | "||")) {
                    return Ok(inner);
                }
            }
            self.at = saved;
        }
        let left = self.path()?;
        let comparison = match self.peek() {
            Some(Token::Op("==")) => Comparison::Eq,
            Some(Token::Op("!=")) => Comparison::Ne,
            Some(Token::Op("<")) => Comparison::Lt,
            Some(Token::Op("<=")) => Comparison::Le,
            Some(Token::Op(">")) => Comparison::Gt,
            Some(Token::Op(">=")) => Comparison::Ge,
            Some(Token::Word(w)) if w == "like_regex" => {
                self.at += 1;
                let Some(Token::Str(pattern)) = self.next() else {
                    return self.error("like_regex needs a quoted pattern");
                };
                let flags = if self.eat_word("flag") {
                    match self.next() {
                        Some(Token::Str(f)) => f,
                        _ => return self.error("flag needs quoted flags"),
                    }
                } else {
                    String::new()
                };
                return Ok(Predicate::LikeRegex(left, pattern, flags));
            }
            Some(Token::Word(w)) if w == "starts" => {
                self.at += 1;
                if !self.eat_word("with") {
                    return self.error("expected with after starts");
                }
                return Ok(Predicate::StartsWith(left, self.path()?));
            }
            _ => return self.error("a filter needs a comparison, exists (…), like_regex or starts with"),
        };
        self.at += 1;
        Ok(Predicate::Compare(comparison, left, self.path()?))
    }

    fn path(&mut self) -> Result<Path, PathError> {
        let negate = if self.eat(&Token::Minus) {
            true
        } else {
            self.eat(&Token::Plus);
            false
        };
        let start = match self.next() {
            Some(Token::Dollar) => Start::Root,
            Some(Token::At) => Start::Current,
            Some(Token::Variable(name)) => Start::Variable(name),
            Some(Token::Number(n)) => Start::Literal(
                n.parse::<i64>()
                    .map(Value::from)
                    .or_else(|_| n.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number).ok_or(()))
                    .or_else(|_| self.error("invalid number"))?,
            ),
            Some(Token::Str(s)) => Start::Literal(Value::String(s)),
            Some(Token::Word(w)) if w == "true" => Start::Literal(Value::Bool(true)),
            Some(Token::Word(w)) if w == "false" => Start::Literal(Value::Bool(false)),
            Some(Token::Word(w)) if w == "null" => Start::Literal(Value::Null),
            Some(Token::LParen) => {
                let inner = self.path()?;
                self.expect(&Token::RParen, ")")?;
                let mut inner = inner;
                if negate {
                    inner.steps.push(Step::Negate);
                }
                return self.steps(inner);
            }
            _ => {
                self.at = self.at.saturating_sub(1);
                return self.error("expected $, @, a variable or a literal");
            }
        };
        let mut path = self.steps(Path { start, steps: Vec::new() })?;
        if negate {
            path.steps.push(Step::Negate);
        }
        Ok(path)
    }

    fn steps(&mut self, mut path: Path) -> Result<Path, PathError> {
        loop {
            match self.peek() {
                Some(Token::Dot) => {
                    self.at += 1;
                    let step = match self.next() {
                        Some(Token::Star) => Step::AnyKey,
                        Some(Token::DoubleStar) => Step::Descendants,
                        Some(Token::Str(key)) => Step::Key(key),
                        Some(Token::Word(w)) if self.peek() == Some(&Token::LParen) => {
                            self.at += 1;
                            self.expect(&Token::RParen, ") after a method name")?;
                            Step::Method(match w.as_str() {
                                "size" => Method::Size,
                                "type" => Method::Type,
                                "double" => Method::Double,
                                "abs" => Method::Abs,
                                "floor" => Method::Floor,
                                "ceiling" => Method::Ceiling,
                                _ => {
                                    self.at -= 3;
                                    return self.error(&format!("unknown method {w}()"));
                                }
                            })
                        }
                        Some(Token::Word(key)) => Step::Key(key),
                        _ => {
                            self.at -= 1;
                            return self.error("expected a key, * or ** after .");
                        }
                    };
                    path.steps.push(step);
                }
                Some(Token::LBracket) => {
                    self.at += 1;
                    if self.eat(&Token::Star) {
                        self.expect(&Token::RBracket, "]")?;
                        path.steps.push(Step::AnyIndex);
                        continue;
                    }
                    let mut subscripts = Vec::new();
                    loop {
                        let from = self.subscript()?;
                        let to = if self.eat_word("to") { Some(self.subscript()?) } else { None };
                        subscripts.push((from, to));
                        if self.eat(&Token::RBracket) {
                            break;
                        }
                        self.expect(&Token::Comma, ", or ]")?;
                    }
                    path.steps.push(Step::Indexes(subscripts));
                }
                Some(Token::Question) => {
                    self.at += 1;
                    self.expect(&Token::LParen, "( after ?")?;
                    let filter = self.or()?;
                    self.expect(&Token::RParen, ") closing the filter")?;
                    path.steps.push(Step::Filter(Box::new(filter)));
                }
                _ => return Ok(path),
            }
        }
    }

    fn subscript(&mut self) -> Result<Subscript, PathError> {
        if self.eat_word("last") {
            if self.eat(&Token::Minus) {
                let Some(Token::Number(n)) = self.next() else {
                    return self.error("expected a number after last -");
                };
                return Ok(Subscript::FromLast(n.parse().or_else(|_| self.error("invalid subscript"))?));
            }
            return Ok(Subscript::FromLast(0));
        }
        let negative = self.eat(&Token::Minus);
        match self.next() {
            Some(Token::Number(n)) => {
                let i: i64 = n.parse().or_else(|_| self.error("subscripts are integers"))?;
                Ok(Subscript::Index(if negative { -i } else { i }))
            }
            _ => {
                self.at -= 1;
                self.error("expected a subscript")
            }
        }
    }
}

/// Parses a path (`lax`, the default, or `strict`, run here as lax).
pub fn parse(text: &str) -> Result<JsonPath, PathError> {
    let tokens = tokens(text)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        end: text.len(),
    };
    if !parser.eat_word("lax") {
        parser.eat_word("strict");
    }
    if parser.peek().is_none() {
        return parser.error("the path is empty");
    }
    let saved = parser.at;
    let parsed = match parser.path() {
        Ok(path) if parser.peek().is_none() => JsonPath::Path(path),
        _ => {
            parser.at = saved;
            JsonPath::Predicate(parser.or()?)
        }
    };
    if parser.peek().is_some() {
        return parser.error("unexpected text after the path");
    }
    Ok(parsed)
}

/// Runs a path: the items it yields (a predicate yields `true`, `false` or `null`).
pub fn query(path: &JsonPath, root: &Value, vars: &Map<String, Value>) -> Vec<Value> {
    let context = Context { root, vars };
    match path {
        JsonPath::Path(p) => context.path(p, root),
        JsonPath::Predicate(p) => vec![match context.predicate(p, root) {
            Truth::True => Value::Bool(true),
            Truth::False => Value::Bool(false),
            Truth::Unknown => Value::Null,
        }],
    }
}

struct Context<'a> {
    root: &'a Value,
    vars: &'a Map<String, Value>,
}

impl Context<'_> {
    fn path(&self, path: &Path, current: &Value) -> Vec<Value> {
        let mut items = match &path.start {
            Start::Root => vec![self.root.clone()],
            Start::Current => vec![current.clone()],
            Start::Variable(name) => self.vars.get(name).cloned().into_iter().collect(),
            Start::Literal(v) => vec![v.clone()],
        };
        for step in &path.steps {
            items = items.into_iter().flat_map(|item| self.step(step, item)).collect();
        }
        items
    }

    fn step(&self, step: &Step, item: Value) -> Vec<Value> {
        match (step, item) {
            (Step::Key(k), Value::Object(mut m)) => m.shift_remove(k).into_iter().collect(),
            (Step::Key(_) | Step::AnyKey, Value::Array(items)) => items.into_iter().flat_map(|i| self.step(step, i)).collect(),
            (Step::AnyKey, Value::Object(m)) => m.into_iter().map(|(_, v)| v).collect(),
            (Step::Key(_) | Step::AnyKey, _) => Vec::new(),
            (Step::AnyIndex, Value::Array(items)) => items,
            (Step::AnyIndex, other) => vec![other],
            (Step::Indexes(subscripts), Value::Array(items)) => {
                let last = items.len() as i64 - 1;
                let resolve = |s: &Subscript| match s {
                    Subscript::Index(i) => *i,
                    Subscript::FromLast(n) => last - n,
                };
                let mut out = Vec::new();
                for (from, to) in subscripts {
                    let (a, b) = (resolve(from), to.as_ref().map_or(resolve(from), resolve));
                    for i in a.max(0)..=b.min(last) {
                        if let Some(v) = usize::try_from(i).ok().and_then(|i| items.get(i)) {
                            out.push(v.clone());
                        }
                    }
                }
                out
            }
            // Lax mode: a single item is an array of one.
            (Step::Indexes(subscripts), other) => {
                let hits = subscripts.iter().any(|(from, to)| {
                    let at = |s: &Subscript| match s {
                        Subscript::Index(i) => *i,
                        Subscript::FromLast(n) => -n,
                    };
                    (at(from)..=to.as_ref().map_or(at(from), at)).contains(&0)
                });
                if hits {
                    vec![other]
                } else {
                    Vec::new()
                }
            }
            (Step::Descendants, item) => {
                let mut out = Vec::new();
                descendants(&item, &mut out);
                out
            }
            (Step::Filter(p), Value::Array(items)) => items.into_iter().filter(|i| self.predicate(p, i) == Truth::True).collect(),
            (Step::Filter(p), item) => {
                if self.predicate(p, &item) == Truth::True {
                    vec![item]
                } else {
                    Vec::new()
                }
            }
            (Step::Method(m), item) => method(*m, item),
            (Step::Negate, Value::Number(n)) => n
                .as_i64()
                .map(|i| Value::from(-i))
                .or_else(|| n.as_f64().and_then(|f| Number::from_f64(-f)).map(Value::Number))
                .into_iter()
                .collect(),
            (Step::Negate, _) => Vec::new(),
        }
    }

    /// The items of an operand, arrays unwrapped (lax mode).
    fn operand(&self, path: &Path, current: &Value) -> Vec<Value> {
        self.path(path, current)
            .into_iter()
            .flat_map(|v| match v {
                Value::Array(items) => items,
                other => vec![other],
            })
            .collect()
    }

    fn predicate(&self, p: &Predicate, current: &Value) -> Truth {
        match p {
            Predicate::Compare(op, a, b) => {
                let (left, right) = (self.operand(a, current), self.operand(b, current));
                any_pair(&left, &right, |x, y| compare(*op, x, y))
            }
            Predicate::And(a, b) => match (self.predicate(a, current), self.predicate(b, current)) {
                (Truth::False, _) | (_, Truth::False) => Truth::False,
                (Truth::True, Truth::True) => Truth::True,
                _ => Truth::Unknown,
            },
            Predicate::Or(a, b) => match (self.predicate(a, current), self.predicate(b, current)) {
                (Truth::True, _) | (_, Truth::True) => Truth::True,
                (Truth::False, Truth::False) => Truth::False,
                _ => Truth::Unknown,
            },
            Predicate::Not(a) => match self.predicate(a, current) {
                Truth::True => Truth::False,
                Truth::False => Truth::True,
                Truth::Unknown => Truth::Unknown,
            },
            Predicate::Exists(path) => Truth::of(!self.path(path, current).is_empty()),
            Predicate::IsUnknown(a) => Truth::of(self.predicate(a, current) == Truth::Unknown),
            Predicate::StartsWith(a, b) => {
                let (left, right) = (self.operand(a, current), self.operand(b, current));
                any_pair(&left, &right, |x, y| match (x, y) {
                    (Value::String(x), Value::String(y)) => Truth::of(x.starts_with(y.as_str())),
                    _ => Truth::Unknown,
                })
            }
            Predicate::LikeRegex(a, pattern, flags) => {
                let case = if flags.contains('i') { "(?i)" } else { "" };
                let Ok(re) = regex::Regex::new(&format!("{case}{pattern}")) else {
                    return Truth::Unknown;
                };
                let left = self.operand(a, current);
                let none: [Value; 1] = [Value::Null];
                any_pair(&left, &none, |x, _| match x {
                    Value::String(s) => Truth::of(re.is_match(s)),
                    _ => Truth::Unknown,
                })
            }
        }
    }
}

/// Lax mode's existential rule: true if any pair is, else unknown if any pair is.
fn any_pair(left: &[Value], right: &[Value], f: impl Fn(&Value, &Value) -> Truth) -> Truth {
    let mut unknown = false;
    for x in left {
        for y in right {
            match f(x, y) {
                Truth::True => return Truth::True,
                Truth::Unknown => unknown = true,
                Truth::False => {}
            }
        }
    }
    if unknown {
        Truth::Unknown
    } else {
        Truth::False
    }
}

fn compare(op: Comparison, a: &Value, b: &Value) -> Truth {
    use std::cmp::Ordering;
    let ordering = match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64().and_then(|x| y.as_f64().and_then(|y| x.partial_cmp(&y))),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) if matches!(op, Comparison::Eq | Comparison::Ne) => Some(x.cmp(y)),
        (Value::Null, Value::Null) if matches!(op, Comparison::Eq | Comparison::Ne) => Some(Ordering::Equal),
        // null against anything else is unequal, never unknown.
        (Value::Null, _) | (_, Value::Null) => return Truth::of(op == Comparison::Ne),
        _ => None,
    };
    let Some(o) = ordering else { return Truth::Unknown };
    Truth::of(match op {
        Comparison::Eq => o == Ordering::Equal,
        Comparison::Ne => o != Ordering::Equal,
        Comparison::Lt => o == Ordering::Less,
        Comparison::Le => o != Ordering::Greater,
        Comparison::Gt => o == Ordering::Greater,
        Comparison::Ge => o != Ordering::Less,
    })
}

/// `.**`: the item, then everything inside it, depth first.
fn descendants(v: &Value, out: &mut Vec<Value>) {
    out.push(v.clone());
    match v {
        Value::Object(m) => m.values().for_each(|c| descendants(c, out)),
        Value::Array(items) => items.iter().for_each(|c| descendants(c, out)),
        _ => {}
    }
}

fn method(m: Method, item: Value) -> Vec<Value> {
    let number = |f: fn(f64) -> f64, item: &Value| match item {
        Value::Number(n) if n.is_i64() => n.as_i64().map(|i| Value::from(f(i as f64) as i64)),
        Value::Number(n) => n.as_f64().and_then(|x| Number::from_f64(f(x))).map(Value::Number),
        _ => None,
    };
    let out = match (m, &item) {
        (Method::Size, Value::Array(items)) => Some(Value::from(items.len())),
        (Method::Size, _) => Some(Value::from(1)),
        (Method::Type, v) => Some(Value::from(super::json::typeof_name(v))),
        (Method::Double, Value::Number(n)) => n.as_f64().and_then(Number::from_f64).map(Value::Number),
        (Method::Double, Value::String(s)) => s.trim().parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number),
        (Method::Abs, v) => number(f64::abs, v),
        (Method::Floor, v) => number(f64::floor, v),
        (Method::Ceiling, v) => number(f64::ceil, v),
        _ => None,
    };
    // Lax mode: methods other than size() and type() apply to an array's elements.
    match (m, item) {
        (Method::Double | Method::Abs | Method::Floor | Method::Ceiling, Value::Array(items)) => {
            items.into_iter().flat_map(|i| method(m, i)).collect()
        }
        _ => out.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(path: &str, v: Value) -> Vec<Value> {
        query(&parse(path).unwrap_or_else(|e| panic!("{path}: {e:?}")), &v, &Map::new())
    }

    #[test]
    fn accessors_walk_keys_indexes_and_wildcards() {
        let v = json!({"a": [{"b": 1}, {"b": 2}, {"c": 3}], "k": {"x": 1, "y": "s"}});
        assert_eq!(run("$.a[*].b", v.clone()), vec![json!(1), json!(2)]);
        assert_eq!(run("$.a.b", v.clone()), vec![json!(1), json!(2)], "lax mode unwraps arrays");
        assert_eq!(run("$.a[0 to 1].b", v.clone()), vec![json!(1), json!(2)]);
        assert_eq!(run("$.a[last].c", v.clone()), vec![json!(3)]);
        assert_eq!(run("$.k.*", v.clone()), vec![json!(1), json!("s")]);
        assert_eq!(run("$.\"k\".y", v.clone()), vec![json!("s")]);
        assert_eq!(run("$.missing", v.clone()), Vec::<Value>::new());
        assert_eq!(run("$.k.x[0]", v.clone()), vec![json!(1)], "a single item is an array of one");
        assert_eq!(run("$.a.size()", v.clone()), vec![json!(3)]);
        assert_eq!(run("$.k.y.type()", v.clone()), vec![json!("string")]);
        // As PostgreSQL warns: `.**` selects the array and its elements, and lax `.b` unwraps
        // the array, so each value comes twice.
        assert_eq!(run("$.**.b", v.clone()), vec![json!(1), json!(2), json!(1), json!(2)]);
        assert_eq!(
            run("$.**", json!({"a": {"b": 1}})),
            vec![json!({"a": {"b": 1}}), json!({"b": 1}), json!(1)]
        );
    }

    #[test]
    fn filters_compare_with_lax_three_valued_logic() {
        let v = json!({"a": [1, 2, 3, "x", null], "rules": [{"cidr": "0.0.0.0/0", "port": 22}, {"cidr": "10.0.0.0/8", "port": 443}]});
        assert_eq!(run("$.a[*] ? (@ > 1)", v.clone()), vec![json!(2), json!(3)]);
        assert_eq!(run("$.a[*] ? (@ == null)", v.clone()), vec![json!(null)]);
        assert_eq!(run("$.a[*] ? (@ != 1 && @ < 3)", v.clone()), vec![json!(2)]);
        assert_eq!(run("$.rules[*] ? (@.cidr == \"0.0.0.0/0\").port", v.clone()), vec![json!(22)]);
        assert_eq!(run("$.rules ? (@.port > 100).cidr", v.clone()), vec![json!("10.0.0.0/8")]);
        assert_eq!(
            run("$.rules[*] ? (exists (@.port) && !(@.port == 22)).port", v.clone()),
            vec![json!(443)]
        );
        assert_eq!(
            run("$.rules[*].cidr ? (@ starts with \"10.\")", v.clone()),
            vec![json!("10.0.0.0/8")]
        );
        assert_eq!(
            run("$.rules[*].cidr ? (@ like_regex \"^0\\\\.\")", v.clone()),
            vec![json!("0.0.0.0/0")]
        );
        assert_eq!(
            run("$.a[*] ? ((@ > 1) is unknown)", v.clone()),
            vec![json!("x")],
            "null compares unequal, strings unknown"
        );
        assert_eq!(run("$.a[*] > 2", v.clone()), vec![json!(true)]);
        assert_eq!(
            run("$.a[*] > 5", v.clone()),
            vec![json!(null)],
            "a string against a number is unknown"
        );
        let vars = json!({"min": 2});
        let p = parse("$.a[*] ? (@ >= $min)").unwrap();
        assert_eq!(query(&p, &v, vars.as_object().unwrap()), vec![json!(2), json!(3)]);
        assert!(parse("$.a[0] + 1").is_err(), "arithmetic is refused, not guessed");
    }

    #[test]
    fn malformed_paths_name_the_position() {
        for (bad, at) in [
            ("$.", 2),
            ("$[1", 3),
            ("$ ? (@ >)", 8),
            ("", 0),
            ("$.a ?", 5),
            ("$.a.nope()", 4),
            ("$ #", 2),
        ] {
            let e = parse(bad).expect_err(bad);
            assert_eq!(e.position, at, "{bad}: {e:?}");
        }
    }
}
