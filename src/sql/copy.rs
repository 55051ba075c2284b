//! `COPY (query) TO STDOUT` and `COPY table [(columns)] TO STDOUT`, in PostgreSQL's text, CSV
//! and binary formats, with its options (`DELIMITER`, `NULL`, `HEADER`, `QUOTE`, `ESCAPE`,
//! `FORCE_QUOTE`). Rows are formatted from the same per-value text or binary encoding SELECT
//! sends, so a value reads the same either way.
//!
//! `COPY … FROM` is refused: rows are created with INSERT, one Cloud Control request each.

use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Ident, ObjectName, Statement,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Csv,
    Binary,
}

/// How the rows of a COPY are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    pub format: Format,
    pub delimiter: char,
    pub null: String,
    pub header: bool,
    pub quote: char,
    pub escape: char,
    /// `FORCE_QUOTE *`: quote every non-NULL value (CSV).
    pub force_quote_all: bool,
    /// `FORCE_QUOTE (a, b)`: quote these columns' non-NULL values (CSV).
    pub force_quote: Vec<String>,
}

impl CopyOptions {
    fn new(format: Format) -> CopyOptions {
        CopyOptions {
            format,
            delimiter: if format == Format::Csv { ',' } else { '\t' },
            null: if format == Format::Csv { String::new() } else { "\\N".into() },
            header: false,
            quote: '"',
            escape: '"',
            force_quote_all: false,
            force_quote: Vec::new(),
        }
    }
}

/// A COPY statement, checked: the query whose rows it writes, and how.
pub fn classify(statement: &Statement) -> Result<(Statement, CopyOptions)> {
    let Statement::Copy {
        source,
        to,
        target,
        options,
        legacy_options,
        ..
    } = statement
    else {
        return Err(Error::Internal("not a COPY statement".into()));
    };
    if !to {
        return Err(Error::NotSupported(
            "COPY … FROM is not supported: create resources with INSERT INTO awscc.<service>.<table> (one Cloud Control request per row)"
                .into(),
        ));
    }
    match target {
        CopyTarget::Stdout => {}
        CopyTarget::File { .. } | CopyTarget::Program { .. } => return Err(Error::PermissionDenied(
            "COPY to a file or program on the server is not allowed: use COPY … TO STDOUT (psql's \\copy writes the file on the client)"
                .into(),
        )),
        CopyTarget::Stdin => return Err(Error::Syntax("COPY … TO STDIN is not valid: use TO STDOUT".into())),
    }
    let opts = copy_options(options, legacy_options)?;
    let query = match source {
        CopySource::Query(q) => Statement::Query(q.clone()),
        CopySource::Table { table_name, columns } => select_of(table_name, columns)?,
    };
    Ok((query, opts))
}

/// `SELECT columns FROM table`, for `COPY table (columns) TO STDOUT`.
fn select_of(table: &ObjectName, columns: &[Ident]) -> Result<Statement> {
    let list = if columns.is_empty() {
        "*".to_string()
    } else {
        columns.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    };
    let sql = format!("SELECT {list} FROM {table}");
    Parser::parse_sql(&PostgreSqlDialect {}, &sql)
        .map_err(|e| Error::Syntax(e.to_string()))?
        .pop()
        .ok_or_else(|| Error::Internal("COPY's table became no statement".into()))
}

fn single_char(name: &str, c: char) -> Result<char> {
    if c == '\n' || c == '\r' {
        return Err(Error::invalid_parameter(
            format!("COPY {name} cannot be newline or carriage return"),
            None,
        ));
    }
    Ok(c)
}

fn copy_options(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> Result<CopyOptions> {
    let mut format = Format::Text;
    for o in options {
        if let CopyOption::Format(f) = o {
            format = match f.value.to_ascii_lowercase().as_str() {
                "text" => Format::Text,
                "csv" => Format::Csv,
                "binary" => Format::Binary,
                other => {
                    return Err(Error::invalid_parameter(
                        format!("COPY format \"{other}\" not recognized"),
                        Some("use FORMAT text, csv or binary".into()),
                    ))
                }
            };
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Binary => format = Format::Binary,
            CopyLegacyOption::Csv(_) => format = Format::Csv,
            _ => {}
        }
    }
    let mut out = CopyOptions::new(format);
    for o in options {
        match o {
            CopyOption::Format(_) | CopyOption::Freeze(_) => {}
            CopyOption::Delimiter(c) => out.delimiter = single_char("delimiter", *c)?,
            CopyOption::Null(s) => out.null = s.clone(),
            CopyOption::Header(h) => out.header = *h,
            CopyOption::Quote(c) => out.quote = *c,
            CopyOption::Escape(c) => out.escape = *c,
            CopyOption::ForceQuote(cols) => out.force_quote.extend(cols.iter().map(|c| c.value.clone())),
            CopyOption::Encoding(e) => {
                if !matches!(e.to_ascii_uppercase().replace(['-', '_'], "").as_str(), "UTF8" | "UNICODE") {
                    return Err(Error::NotSupported(format!("COPY ENCODING '{e}': cloudpg writes UTF8 only")));
                }
            }
            CopyOption::ForceNotNull(_) | CopyOption::ForceNull(_) => {
                return Err(Error::NotSupported(
                    "FORCE_NOT_NULL and FORCE_NULL apply to COPY FROM, which is not supported".into(),
                ))
            }
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Binary => {}
            CopyLegacyOption::Delimiter(c) => out.delimiter = single_char("delimiter", *c)?,
            CopyLegacyOption::Null(s) => out.null = s.clone(),
            CopyLegacyOption::Header => out.header = true,
            CopyLegacyOption::Csv(csv) => {
                for c in csv {
                    match c {
                        CopyLegacyCsvOption::Header => out.header = true,
                        CopyLegacyCsvOption::Quote(q) => out.quote = *q,
                        CopyLegacyCsvOption::Escape(e) => out.escape = *e,
                        CopyLegacyCsvOption::ForceQuote(cols) => out.force_quote.extend(cols.iter().map(|c| c.value.clone())),
                        CopyLegacyCsvOption::ForceNotNull(_) => {}
                    }
                }
            }
            other => return Err(Error::NotSupported(format!("COPY option {other} is not supported"))),
        }
    }
    if out.force_quote.iter().any(|c| c == "*") {
        out.force_quote_all = true;
    }
    if format == Format::Binary && (out.header || out.delimiter != '\t') {
        return Err(Error::invalid_parameter("cannot specify HEADER or DELIMITER in BINARY mode", None));
    }
    if format != Format::Csv && (out.quote != '"' || out.escape != '"' || !out.force_quote.is_empty()) {
        return Err(Error::invalid_parameter(
            "COPY QUOTE, ESCAPE and FORCE_QUOTE are available only in CSV mode",
            None,
        ));
    }
    Ok(out)
}

/// The signature, flags and header extension that open a binary COPY.
pub const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The field count of -1 that ends a binary COPY.
pub const BINARY_TRAILER: &[u8] = &[0xff, 0xff];

impl CopyOptions {
    /// The header line (CSV and text with HEADER).
    pub fn header_line(&self, columns: &[String]) -> Option<Vec<u8>> {
        if !self.header || self.format == Format::Binary {
            return None;
        }
        let values: Vec<Option<&[u8]>> = columns.iter().map(|c| Some(c.as_bytes())).collect();
        let plain = CopyOptions {
            force_quote_all: false,
            force_quote: Vec::new(),
            ..self.clone()
        };
        Some(plain.line(&values, columns))
    }

    /// One row as a line: values as their text encodings, `None` for NULL.
    pub fn line(&self, values: &[Option<&[u8]>], columns: &[String]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                push_char(&mut out, self.delimiter);
            }
            match (self.format, v) {
                (_, None) => out.extend_from_slice(self.null.as_bytes()),
                (Format::Csv, Some(v)) => {
                    let forced = self.force_quote_all || columns.get(i).is_some_and(|c| self.force_quote.contains(c));
                    self.csv_value(&mut out, v, forced);
                }
                (_, Some(v)) => self.text_value(&mut out, v),
            }
        }
        out.push(b'\n');
        out
    }

    fn text_value(&self, out: &mut Vec<u8>, v: &[u8]) {
        let delimiter = u8::try_from(self.delimiter).ok();
        for b in v {
            match *b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' if delimiter == Some(b'\t') => out.extend_from_slice(b"\\t"),
                x if Some(x) == delimiter => {
                    out.push(b'\\');
                    out.push(x);
                }
                x => out.push(x),
            }
        }
    }

    fn csv_value(&self, out: &mut Vec<u8>, v: &[u8], forced: bool) {
        let text = String::from_utf8_lossy(v);
        let needs = forced
            || text.is_empty()
            || text == self.null
            || text.contains(self.delimiter)
            || text.contains(self.quote)
            || text.contains(['\n', '\r'])
            || text == "\\.";
        if !needs {
            out.extend_from_slice(v);
            return;
        }
        push_char(out, self.quote);
        for c in text.chars() {
            if c == self.quote || c == self.escape {
                push_char(out, self.escape);
            }
            push_char(out, c);
        }
        push_char(out, self.quote);
    }
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// One row of a binary COPY: the field count, then each field's length and bytes.
pub fn binary_row(values: &[Option<&[u8]>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(values.len() as i16).to_be_bytes());
    for v in values {
        match v {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(v) => {
                out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                out.extend_from_slice(v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(sql: &str) -> Result<CopyOptions> {
        let stmt = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().remove(0);
        classify(&stmt).map(|(_, o)| o)
    }

    #[test]
    fn options_in_both_syntaxes() {
        let o = options("COPY (SELECT 1) TO STDOUT WITH (FORMAT csv, HEADER true, DELIMITER ';')").unwrap();
        assert_eq!((o.format, o.delimiter, o.header), (Format::Csv, ';', true));
        let o = options("COPY (SELECT 1) TO STDOUT CSV HEADER").unwrap();
        assert_eq!((o.format, o.delimiter, o.header), (Format::Csv, ',', true));
        assert_eq!(options("COPY (SELECT 1) TO STDOUT BINARY").unwrap().format, Format::Binary);
        assert_eq!(options("COPY t TO STDOUT").unwrap(), CopyOptions::new(Format::Text));
        assert!(matches!(options("COPY t FROM STDIN"), Err(Error::NotSupported(_))));
        assert!(matches!(options("COPY t TO '/etc/passwd'"), Err(Error::PermissionDenied(_))));
        assert!(options("COPY t TO STDOUT (FORMAT xml)").is_err());
    }

    #[test]
    fn text_lines_escape_as_postgres() {
        let o = CopyOptions::new(Format::Text);
        let line = o.line(&[Some(b"a\tb\\c\nd"), None, Some(b"")], &[]);
        assert_eq!(line, b"a\\tb\\\\c\\nd\t\\N\t\n");
    }

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let o = CopyOptions::new(Format::Csv);
        let line = o.line(&[Some(b"plain"), Some(b"a,b"), Some(b"say \"hi\""), None, Some(b"")], &[]);
        assert_eq!(String::from_utf8(line).unwrap(), "plain,\"a,b\",\"say \"\"hi\"\"\",,\"\"\n");
        let header = CopyOptions { header: true, ..o }.header_line(&["a".into(), "b c".into()]).unwrap();
        assert_eq!(header, b"a,b c\n");
    }

    #[test]
    fn binary_rows_carry_lengths() {
        assert_eq!(binary_row(&[Some(&[1, 2]), None]), vec![0, 2, 0, 0, 0, 2, 1, 2, 255, 255, 255, 255]);
        assert_eq!(&BINARY_HEADER[..11], b"PGCOPY\n\xff\r\n\0");
        assert_eq!(BINARY_HEADER.len(), 19);
    }
}
