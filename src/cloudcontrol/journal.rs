//! The mutation journal: an append-only file (JSON lines, fsynced) that records each mutation
//! before it is sent, its RequestToken once Cloud Control accepts it, and how it ended, so a
//! restart can finish what a crash interrupted.
//!
//! A record never holds a secret: a request that writes write-only or `[redact]` properties
//! keeps only a digest of its body, and such a request is never resent from the journal. The file starts
//! with a header naming its format version; a file this server cannot fully read (corrupt, or
//! from a newer version) is moved aside whole and nothing in it is resent.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::{Change, MutationRequest, Place, ProgressEvent};
use crate::error::{Error, Result};

/// The format this server writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Finished entries kept when the file is rewritten; unfinished ones are always kept.
const KEEP_FINISHED: usize = 10_000;
/// Appends between rewrites, beyond twice the entries kept (bounds the file's growth).
const REWRITE_SLACK: usize = 1_000;

/// The first line of a journal.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    cloudpg_mutation_journal: u32,
}

/// One line after the header.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case", deny_unknown_fields)]
enum Record {
    Submitted(Submitted),
    Accepted { client_token: String, request_token: String },
    Ended(Ended),
}

/// A mutation as it was about to be sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submitted {
    pub client_token: String,
    pub account: String,
    pub region: String,
    pub type_name: String,
    /// CREATE, UPDATE or DELETE.
    pub operation: String,
    pub identifier: Option<String>,
    /// SHA-256 of the desired state (CREATE) or the patch (UPDATE), hex.
    pub digest: Option<String>,
    pub user: String,
    /// Epoch seconds.
    #[serde(deserialize_with = "seconds")]
    pub submitted_at: f64,
    /// What resending needs; `None` when the request wrote write-only or `[redact]` values.
    pub resend: Option<Resend>,
}

/// The parts of a request that resending it needs besides what [`Submitted`] names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resend {
    /// The desired state (CREATE) or the patch (UPDATE); empty for DELETE.
    pub body: String,
    pub role_arn: Option<String>,
    pub type_version_id: Option<String>,
}

/// How a mutation ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ended {
    pub client_token: String,
    pub status: String,
    pub identifier: Option<String>,
    pub error_code: Option<String>,
    pub message: Option<String>,
    #[serde(default, deserialize_with = "optional_seconds")]
    pub event_time: Option<f64>,
}

/// Reads a number inside the tagged `Record`: serde buffers a tagged enum's fields, and with
/// serde_json's `arbitrary_precision` (jsonb keeps a number's digits) a buffered number is
/// only readable as a `serde_json::Number`.
fn seconds<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_f64()
        .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a number of seconds")))
}

fn optional_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<f64>, D::Error> {
    Option::<serde_json::Number>::deserialize(d)?
        .map(|n| {
            n.as_f64()
                .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a number of seconds")))
        })
        .transpose()
}

/// Everything the journal knows of one mutation.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub submitted: Submitted,
    pub request_token: Option<String>,
    pub ended: Option<Ended>,
}

impl Submitted {
    /// The record of `request`, about to be sent by `user`.
    pub fn of(request: &MutationRequest, user: &str, carries_secrets: bool, now: f64) -> Submitted {
        let body = match &request.change {
            Change::Create { desired_state } => desired_state.as_str(),
            Change::Update { patch, .. } => patch.as_str(),
            Change::Delete { .. } => "",
        };
        Submitted {
            client_token: request.client_token.clone(),
            account: request.place.account.clone(),
            region: request.place.region.clone(),
            type_name: request.type_name.clone(),
            operation: request.change.operation().to_string(),
            identifier: request.change.identifier().map(str::to_string),
            digest: (!body.is_empty()).then(|| sha256_hex(body)),
            user: user.to_string(),
            submitted_at: now,
            resend: (!carries_secrets).then(|| Resend {
                body: body.to_string(),
                role_arn: request.role_arn.clone(),
                type_version_id: request.type_version_id.clone(),
            }),
        }
    }

    /// Where it was sent.
    pub fn place(&self) -> Place {
        Place::new(self.account.clone(), self.region.clone())
    }

    /// The request to send again (same ClientToken), when the journal holds all of it.
    pub fn request(&self) -> Option<MutationRequest> {
        let resend = self.resend.as_ref()?;
        let change = match (self.operation.as_str(), &self.identifier) {
            ("CREATE", _) => Change::Create {
                desired_state: resend.body.clone(),
            },
            ("UPDATE", Some(id)) => Change::Update {
                identifier: id.clone(),
                patch: resend.body.clone(),
            },
            ("DELETE", Some(id)) => Change::Delete { identifier: id.clone() },
            _ => return None,
        };
        Some(MutationRequest {
            place: self.place(),
            type_name: self.type_name.clone(),
            change,
            client_token: self.client_token.clone(),
            role_arn: resend.role_arn.clone(),
            type_version_id: resend.type_version_id.clone(),
        })
    }
}

impl Ended {
    pub fn of(client_token: &str, event: &ProgressEvent) -> Ended {
        Ended {
            client_token: client_token.to_string(),
            status: event.operation_status.clone(),
            identifier: event.identifier.clone(),
            error_code: event.error_code.clone(),
            message: event.status_message.clone(),
            event_time: event.event_time,
        }
    }
}

fn sha256_hex(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A journal file found at startup that could not be fully read, now under another name.
#[derive(Debug, Clone)]
pub struct SetAside {
    pub moved_to: PathBuf,
    pub reason: String,
    /// The entries that could be read; shown, never resent.
    pub readable: Vec<Entry>,
}

/// What opening the journal found.
#[derive(Debug, Default)]
pub struct Opened {
    /// The entries of a readable journal, oldest first.
    pub entries: Vec<Entry>,
    pub set_aside: Option<SetAside>,
}

/// The open journal file and the entries it holds, in order.
pub struct Journal {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    file: File,
    entries: IndexMap<String, Entry>,
    /// Lines in the file after the header.
    lines: usize,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Journal({})", self.path.display())
    }
}

impl Journal {
    /// Opens (or creates) the journal at `path`. A file that cannot be fully read is moved
    /// aside and a new one started; only a directory or file that cannot be written at all
    /// is an error.
    pub fn open(path: &Path) -> Result<(Arc<Journal>, Opened)> {
        let io = |what: &str, e: std::io::Error| Error::Io(format!("mutation journal {}: {what}: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io("cannot create its directory", e))?;
        }
        let mut opened = Opened::default();
        let entries = match std::fs::read(path) {
            Ok(bytes) => match read(&bytes) {
                Ok(entries) => entries,
                Err(unreadable) => {
                    let moved_to = aside_name(path);
                    std::fs::rename(path, &moved_to).map_err(|e| io("cannot move the unreadable file aside", e))?;
                    opened.set_aside = Some(SetAside {
                        moved_to,
                        reason: unreadable.reason,
                        readable: unreadable.readable.into_values().collect(),
                    });
                    IndexMap::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => IndexMap::new(),
            Err(e) => return Err(io("cannot read it", e)),
        };
        let (file, lines) = rewrite(path, &entries).map_err(|e| io("cannot write it", e))?;
        opened.entries = entries.values().cloned().collect();
        let journal = Journal {
            path: path.to_path_buf(),
            state: Mutex::new(State { file, entries, lines }),
        };
        Ok((Arc::new(journal), opened))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a request about to be sent; it is on disk when this returns.
    pub async fn submitted(self: &Arc<Self>, record: Submitted) -> Result<()> {
        self.append(Record::Submitted(record)).await
    }

    pub async fn accepted(self: &Arc<Self>, client_token: &str, request_token: &str) -> Result<()> {
        self.append(Record::Accepted {
            client_token: client_token.to_string(),
            request_token: request_token.to_string(),
        })
        .await
    }

    pub async fn ended(self: &Arc<Self>, client_token: &str, event: &ProgressEvent) -> Result<()> {
        self.append(Record::Ended(Ended::of(client_token, event))).await
    }

    /// Writes and fsyncs one record off the async threads.
    async fn append(self: &Arc<Self>, record: Record) -> Result<()> {
        let journal = self.clone();
        tokio::task::spawn_blocking(move || journal.append_now(record))
            .await
            .map_err(|e| Error::internal(format!("mutation journal task failed: {e}")))?
    }

    fn append_now(&self, record: Record) -> Result<()> {
        let io = |e: std::io::Error| Error::Io(format!("cannot write the mutation journal {}: {e}", self.path.display()));
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut line = serde_json::to_string(&record).map_err(|e| Error::internal(format!("journal record: {e}")))?;
        line.push('\n');
        state.file.write_all(line.as_bytes()).map_err(io)?;
        state.file.sync_data().map_err(io)?;
        state.lines += 1;
        // Only an end can take the finished entries past what is kept.
        let ends = matches!(record, Record::Ended(_));
        apply(&mut state.entries, record);
        if ends {
            forget_oldest_finished(&mut state.entries);
        }
        if state.lines > 2 * state.entries.len() + REWRITE_SLACK {
            let (file, lines) = rewrite(&self.path, &state.entries).map_err(io)?;
            state.file = file;
            state.lines = lines;
        }
        Ok(())
    }
}

/// Why a journal could not be fully read, and what could.
#[derive(Debug)]
struct Unreadable {
    reason: String,
    readable: IndexMap<String, Entry>,
}

/// The entries of a journal file. A last line without its newline is a write a crash cut
/// short before its fsync returned, so before its request was sent: it is dropped.
fn read(bytes: &[u8]) -> std::result::Result<IndexMap<String, Entry>, Unreadable> {
    let mut entries = IndexMap::new();
    let unreadable = |reason: String, entries: IndexMap<String, Entry>| Unreadable { reason, readable: entries };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(unreadable("it is not UTF-8 text".into(), entries));
    };
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None if text.is_empty() => return Ok(entries),
        None => return Err(unreadable("it has no complete line".into(), entries)),
    };
    let mut lines = complete.lines().enumerate();
    match lines.next().map(|(_, l)| serde_json::from_str::<Header>(l)) {
        Some(Ok(h)) if h.cloudpg_mutation_journal == FORMAT_VERSION => {}
        Some(Ok(h)) => {
            return Err(unreadable(
                format!(
                    "it is format version {} (a newer cloudpg wrote it); this server reads version {FORMAT_VERSION}",
                    h.cloudpg_mutation_journal
                ),
                entries,
            ))
        }
        _ => {
            return Err(unreadable(
                "its first line is not a cloudpg mutation journal header".into(),
                entries,
            ))
        }
    }
    for (i, line) in lines {
        match serde_json::from_str::<Record>(line) {
            Ok(record) => apply(&mut entries, record),
            Err(e) => return Err(unreadable(format!("line {} cannot be read ({e})", i + 1), entries)),
        }
    }
    Ok(entries)
}

/// Adds a record to the entries it belongs to; records of an unknown request are ignored
/// (their submission was forgotten as finished).
fn apply(entries: &mut IndexMap<String, Entry>, record: Record) {
    match record {
        Record::Submitted(s) => {
            entries.insert(
                s.client_token.clone(),
                Entry {
                    submitted: s,
                    request_token: None,
                    ended: None,
                },
            );
        }
        Record::Accepted {
            client_token,
            request_token,
        } => {
            if let Some(e) = entries.get_mut(&client_token) {
                e.request_token = Some(request_token);
            }
        }
        Record::Ended(ended) => {
            if let Some(e) = entries.get_mut(&ended.client_token) {
                e.ended = Some(ended);
            }
        }
    }
}

fn forget_oldest_finished(entries: &mut IndexMap<String, Entry>) {
    let finished = entries.values().filter(|e| e.ended.is_some()).count();
    for _ in KEEP_FINISHED..finished {
        if let Some(i) = entries.values().position(|e| e.ended.is_some()) {
            entries.shift_remove_index(i);
        }
    }
}

/// Writes the entries to a new file that replaces the journal at once (a crash leaves the
/// old file or the new one, never half of either); returns it open for appending.
fn rewrite(path: &Path, entries: &IndexMap<String, Entry>) -> std::io::Result<(File, usize)> {
    let tmp = path.with_file_name(format!("{}.new", file_name(path)));
    let mut out = String::new();
    let header = Header {
        cloudpg_mutation_journal: FORMAT_VERSION,
    };
    let mut lines = 0;
    out.push_str(&serde_json::to_string(&header).map_err(std::io::Error::other)?);
    out.push('\n');
    for e in entries.values() {
        let mut records = vec![Record::Submitted(e.submitted.clone())];
        if let Some(token) = &e.request_token {
            records.push(Record::Accepted {
                client_token: e.submitted.client_token.clone(),
                request_token: token.clone(),
            });
        }
        records.extend(e.ended.clone().map(Record::Ended));
        for r in records {
            out.push_str(&serde_json::to_string(&r).map_err(std::io::Error::other)?);
            out.push('\n');
            lines += 1;
        }
    }
    {
        let mut f = private_file(&tmp, true)?;
        f.write_all(out.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename itself must survive a crash.
        File::open(dir)?.sync_all()?;
    }
    Ok((private_file(path, false)?, lines))
}

/// Opens for appending (or truncates), readable by the server's user only: bodies are not
/// secret but are still the account's business.
fn private_file(path: &Path, truncate: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true);
    if truncate {
        options.write(true).truncate(true);
    } else {
        options.append(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "journal".to_string(), |n| n.to_string_lossy().into_owned())
}

/// `<name>.unreadable-<epoch seconds>`, unique if that exists already.
fn aside_name(path: &Path) -> PathBuf {
    let now = super::requests::epoch_seconds(std::time::SystemTime::now()) as u64;
    let base = format!("{}.unreadable-{now}", file_name(path));
    (0..)
        .map(|n| path.with_file_name(if n == 0 { base.clone() } else { format!("{base}-{n}") }))
        .find(|p| !p.exists())
        .unwrap_or_else(|| path.with_file_name(base))
}

/// The journal's default place: `$XDG_STATE_HOME/cloudpg/mutations.journal`, else under
/// `~/.local/state`; `None` when neither can be found.
pub fn default_path() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("cloudpg").join("mutations.journal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(token: &str) -> MutationRequest {
        MutationRequest {
            place: Place::new("default", "us-east-1"),
            type_name: "AWS::S3::Bucket".into(),
            change: Change::Create {
                desired_state: r#"{"BucketName":"b"}"#.into(),
            },
            client_token: token.into(),
            role_arn: None,
            type_version_id: None,
        }
    }

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("cloudpg-journal-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn event(status: &str) -> ProgressEvent {
        ProgressEvent {
            operation_status: status.into(),
            request_token: "rt".into(),
            identifier: Some("b".into()),
            ..ProgressEvent::default()
        }
    }

    #[tokio::test]
    async fn entries_survive_a_reopen_with_their_tokens_and_ends() {
        let path = dir().join("j");
        let (j, opened) = Journal::open(&path).unwrap();
        assert!(opened.entries.is_empty() && opened.set_aside.is_none());
        j.submitted(Submitted::of(&request("a"), "alice", false, 1.0)).await.unwrap();
        j.submitted(Submitted::of(&request("b"), "alice", false, 2.0)).await.unwrap();
        j.accepted("a", "rt-a").await.unwrap();
        j.ended("b", &event("SUCCESS")).await.unwrap();
        drop(j);
        let (_, opened) = Journal::open(&path).unwrap();
        assert_eq!(opened.entries.len(), 2);
        assert_eq!(opened.entries[0].request_token.as_deref(), Some("rt-a"));
        assert_eq!(opened.entries[0].submitted.request(), Some(request("a")));
        assert_eq!(opened.entries[1].ended.as_ref().map(|e| e.status.as_str()), Some("SUCCESS"));
    }

    #[test]
    fn requests_with_secrets_keep_only_a_digest() {
        let r = request("a");
        let s = Submitted::of(&r, "u", true, 1.0);
        assert!(s.resend.is_none() && s.request().is_none());
        let line = serde_json::to_string(&Record::Submitted(s)).unwrap();
        assert!(!line.contains("BucketName"), "{line}");
        assert!(line.contains(&sha256_hex(r#"{"BucketName":"b"}"#)), "{line}");
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_a_corrupt_one_is_not_read() {
        let header = "{\"cloudpg_mutation_journal\":1}\n";
        let sub = serde_json::to_string(&Record::Submitted(Submitted::of(&request("a"), "u", false, 1.0))).unwrap();
        let torn = format!("{header}{sub}\n{{\"record\":\"acc");
        assert_eq!(read(torn.as_bytes()).ok().map(|e| e.len()), Some(1));
        let corrupt = format!("{header}{{\"record\":\"what\"}}\n{sub}\n");
        let err = read(corrupt.as_bytes()).err().unwrap();
        assert!(err.reason.contains("line 2"), "{}", err.reason);
        let newer = "{\"cloudpg_mutation_journal\":2}\n";
        assert!(read(newer.as_bytes()).err().unwrap().reason.contains("version 2"));
        assert!(read(b"garbage\n").is_err());
        assert!(read(b"").unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unreadable_journal_is_moved_aside_and_a_new_one_started() {
        let d = dir();
        let path = d.join("j");
        std::fs::write(&path, "{\"cloudpg_mutation_journal\":7}\n{}\n").unwrap();
        let (j, opened) = Journal::open(&path).unwrap();
        let aside = opened.set_aside.unwrap();
        assert!(aside.reason.contains("version 7"), "{}", aside.reason);
        assert_eq!(
            std::fs::read_to_string(&aside.moved_to).unwrap(),
            "{\"cloudpg_mutation_journal\":7}\n{}\n"
        );
        j.submitted(Submitted::of(&request("a"), "u", false, 1.0)).await.unwrap();
        assert_eq!(Journal::open(&path).unwrap().1.entries.len(), 1);
    }

    #[test]
    fn only_the_newest_finished_entries_are_kept() {
        let mut entries = IndexMap::new();
        for i in 0..KEEP_FINISHED + 5 {
            let token = format!("t{i}");
            apply(&mut entries, Record::Submitted(Submitted::of(&request(&token), "u", false, 1.0)));
            if i != 0 {
                apply(&mut entries, Record::Ended(Ended::of(&token, &event("SUCCESS"))));
            }
        }
        forget_oldest_finished(&mut entries);
        assert_eq!(entries.len(), KEEP_FINISHED + 1);
        assert!(entries.contains_key("t0"), "unfinished entries are never forgotten");
        assert!(!entries.contains_key("t1"));
    }
}
