//! A minimal PostgreSQL frontend over a raw socket, for messages no driver would send (huge
//! `$n`, `max_rows` of 2^31-1, oversized messages) and for counting a million rows without
//! keeping them.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// One backend message.
#[derive(Debug, Clone)]
pub struct Msg {
    pub kind: u8,
    pub body: Vec<u8>,
}

impl Msg {
    /// A field of an ErrorResponse or NoticeResponse (`b'C'` code, `b'M'` message…).
    pub fn field(&self, code: u8) -> Option<String> {
        let mut rest = &self.body[..];
        while let Some((&c, tail)) = rest.split_first() {
            if c == 0 {
                return None;
            }
            let end = tail.iter().position(|b| *b == 0)?;
            if c == code {
                return Some(String::from_utf8_lossy(&tail[..end]).into_owned());
            }
            rest = &tail[end + 1..];
        }
        None
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.body.strip_suffix(&[0]).unwrap_or(&self.body)).into_owned()
    }
}

/// What the server answered until a ReadyForQuery, with rows counted, not kept.
#[derive(Debug, Default, Clone)]
pub struct Answer {
    pub rows: usize,
    /// The first column of each row, for small results.
    pub values: Vec<Option<String>>,
    pub tags: Vec<String>,
    /// (SQLSTATE, message) of each ErrorResponse.
    pub errors: Vec<(String, String)>,
    pub notices: Vec<(String, String)>,
    pub suspended: usize,
    /// ParameterStatus messages: (name, value).
    pub parameters: Vec<(String, String)>,
    /// The transaction status byte of the ReadyForQuery.
    pub status: u8,
}

impl Answer {
    pub fn error_code(&self) -> Option<&str> {
        self.errors.first().map(|(c, _)| c.as_str())
    }
}

pub struct Raw {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    pub pid: i32,
    pub key: i32,
    /// The ParameterStatus messages of startup, in order.
    pub startup_parameters: Vec<(String, String)>,
}

impl Raw {
    /// Connects and finishes startup as `postgres` on database `awscc`.
    pub async fn connect(addr: SocketAddr) -> Raw {
        let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
        let mut raw = Raw {
            reader: BufReader::with_capacity(64 * 1024, r),
            writer: w,
            pid: 0,
            key: 0,
            startup_parameters: Vec::new(),
        };
        raw.startup().await;
        raw
    }

    /// A socket without startup (to test what happens before it).
    pub async fn bare(addr: SocketAddr) -> TcpStream {
        TcpStream::connect(addr).await.unwrap()
    }

    async fn startup(&mut self) {
        self.writer.write_all(&startup_message("postgres")).await.unwrap();
        loop {
            let m = self.read().await.expect("startup answer");
            match m.kind {
                b'K' => {
                    self.pid = i32::from_be_bytes(m.body[0..4].try_into().unwrap());
                    self.key = i32::from_be_bytes(m.body[4..8].try_into().unwrap());
                }
                b'S' => self.startup_parameters.push(parameter_status(&m.body)),
                b'Z' => return,
                b'E' => panic!("startup failed: {:?}", m.field(b'M')),
                _ => {}
            }
        }
    }

    pub async fn send(&mut self, kind: u8, body: &[u8]) {
        let mut msg = vec![kind];
        msg.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        msg.extend_from_slice(body);
        self.writer.write_all(&msg).await.unwrap();
    }

    /// Sends a message whose length header says `length` but carries `body` (a lie is fine:
    /// the server must not trust it).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    pub async fn query(&mut self, sql: &str) {
        self.send(b'Q', &cstr(sql)).await;
    }

    pub async fn parse(&mut self, name: &str, sql: &str) {
        let mut body = cstr(name);
        body.extend(cstr(sql));
        body.extend_from_slice(&0i16.to_be_bytes());
        self.send(b'P', &body).await;
    }

    /// Bind with text parameters and `result_formats` result format codes.
    pub async fn bind(&mut self, portal: &str, statement: &str, params: &[Option<&str>], result_formats: &[i16]) {
        let mut body = cstr(portal);
        body.extend(cstr(statement));
        body.extend_from_slice(&0i16.to_be_bytes());
        body.extend_from_slice(&(params.len() as i16).to_be_bytes());
        for p in params {
            match p {
                Some(v) => {
                    body.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    body.extend_from_slice(v.as_bytes());
                }
                None => body.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        body.extend_from_slice(&(result_formats.len() as i16).to_be_bytes());
        for f in result_formats {
            body.extend_from_slice(&f.to_be_bytes());
        }
        self.send(b'B', &body).await;
    }

    pub async fn describe_statement(&mut self, statement: &str) {
        let mut body = vec![b'S'];
        body.extend(cstr(statement));
        self.send(b'D', &body).await;
    }

    pub async fn describe_portal(&mut self, portal: &str) {
        let mut body = vec![b'P'];
        body.extend(cstr(portal));
        self.send(b'D', &body).await;
    }

    pub async fn execute(&mut self, portal: &str, max_rows: i32) {
        let mut body = cstr(portal);
        body.extend_from_slice(&max_rows.to_be_bytes());
        self.send(b'E', &body).await;
    }

    pub async fn sync(&mut self) {
        self.send(b'S', &[]).await;
    }

    pub async fn flush(&mut self) {
        self.send(b'H', &[]).await;
    }

    /// The next message; `None` when the server closed the connection.
    pub async fn read(&mut self) -> Option<Msg> {
        let kind = self.reader.read_u8().await.ok()?;
        let len = self.reader.read_i32().await.ok()?;
        let mut body = vec![0u8; usize::try_from(len).ok()?.checked_sub(4)?];
        self.reader.read_exact(&mut body).await.ok()?;
        Some(Msg { kind, body })
    }

    /// Reads until ReadyForQuery (or the end of the connection), counting rows.
    pub async fn answer(&mut self) -> Answer {
        self.answer_until(|_| false).await
    }

    /// Reads until ReadyForQuery, or until `stop` says so for a message (which is included).
    pub async fn answer_until(&mut self, stop: impl Fn(&Msg) -> bool) -> Answer {
        let mut a = Answer::default();
        while let Some(m) = self.read().await {
            match m.kind {
                b'D' => {
                    a.rows += 1;
                    if a.values.len() < 100 {
                        a.values.push(first_column(&m.body));
                    }
                }
                b'C' => a.tags.push(m.text()),
                b'E' => a
                    .errors
                    .push((m.field(b'C').unwrap_or_default(), m.field(b'M').unwrap_or_default())),
                b'N' => a
                    .notices
                    .push((m.field(b'C').unwrap_or_default(), m.field(b'M').unwrap_or_default())),
                b's' => a.suspended += 1,
                b'S' => a.parameters.push(parameter_status(&m.body)),
                b'Z' => {
                    a.status = m.body.first().copied().unwrap_or(0);
                    return a;
                }
                _ => {}
            }
            if stop(&m) {
                return a;
            }
        }
        a
    }

    /// Runs a simple query and returns its answer.
    pub async fn simple(&mut self, sql: &str) -> Answer {
        self.query(sql).await;
        self.answer().await
    }

    /// Whether the server closed the connection within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, async { while self.read().await.is_some() {} })
            .await
            .is_ok()
    }
}

/// A protocol 3.0 StartupMessage for `user` on database `awscc`.
pub fn startup_message(user: &str) -> Vec<u8> {
    let mut body = 196_608i32.to_be_bytes().to_vec();
    for (k, v) in [("user", user), ("database", "awscc")] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    msg.extend(body);
    msg
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn parameter_status(body: &[u8]) -> (String, String) {
    let mut parts = body.split(|b| *b == 0).map(|p| String::from_utf8_lossy(p).into_owned());
    (parts.next().unwrap_or_default(), parts.next().unwrap_or_default())
}

fn first_column(body: &[u8]) -> Option<String> {
    let len = i32::from_be_bytes(body.get(2..6)?.try_into().ok()?);
    let len = usize::try_from(len).ok()?;
    Some(String::from_utf8_lossy(body.get(6..6 + len)?).into_owned())
}
