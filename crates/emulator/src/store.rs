//! Per-region state: resources of each type (ordered by identifier, so a list page is a range
//! read), mutation requests by token, and client tokens.
//!
//! Mutations finish lazily: a request carries the instant it is due, and [`RegionState::settle`]
//! applies every due request before any read, so no background task is needed and the result
//! is the same whoever looks first.

use std::collections::{BTreeMap, HashMap};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use resource_schemas::ResourceType;
use serde_json::{json, Map, Value};

/// Seconds since the epoch, as the awsJson protocol sends timestamps.
pub fn epoch_seconds() -> f64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}

/// The Cloud Control identifier of a model: primary identifier values joined by `|`.
pub fn identifier_of(resource: &ResourceType, model: &Map<String, Value>) -> Option<String> {
    let parts: Option<Vec<String>> = resource
        .primary_identifier_names()
        .iter()
        .map(|name| {
            model.get(*name).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        })
        .collect();
    parts.map(|p| p.join("|"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Delete,
}

impl Op {
    pub fn word(self) -> &'static str {
        match self {
            Op::Create => "CREATE",
            Op::Update => "UPDATE",
            Op::Delete => "DELETE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Success,
    Failed,
    CancelInProgress,
    CancelComplete,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::InProgress => "IN_PROGRESS",
            Status::Success => "SUCCESS",
            Status::Failed => "FAILED",
            Status::CancelInProgress => "CANCEL_IN_PROGRESS",
            Status::CancelComplete => "CANCEL_COMPLETE",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Success | Status::Failed | Status::CancelComplete)
    }
}

/// One mutation request and everything needed to finish it.
#[derive(Debug, Clone)]
pub struct Request {
    pub token: String,
    pub op: Op,
    pub type_name: String,
    pub identifier: String,
    /// Whether the identifier may be shown before the request finishes (the caller chose it).
    pub identifier_known_early: bool,
    pub status: Status,
    pub event_time: f64,
    pub due: Instant,
    /// The model after the mutation (create, update); `None` for delete.
    pub model: Option<Map<String, Value>>,
    /// Decided when the request was accepted: it will fail with this code and message.
    pub failure: Option<(String, String)>,
    pub error: Option<(String, String)>,
    /// The request as received, to tell an idempotent retry from a conflicting reuse.
    pub fingerprint: String,
    /// The type, whose write-only properties the ResourceModel it returns leaves out.
    pub resource: &'static resource_schemas::ResourceType,
}

impl Request {
    /// The ProgressEvent members AWS sends, leaving out those without a value.
    pub fn progress_event(&self) -> Value {
        let mut e = Map::new();
        e.insert("TypeName".into(), json!(self.type_name));
        let show_id = self.status == Status::Success || self.identifier_known_early || self.op != Op::Create;
        if show_id && !self.identifier.is_empty() {
            e.insert("Identifier".into(), json!(self.identifier));
        }
        e.insert("RequestToken".into(), json!(self.token));
        e.insert("Operation".into(), json!(self.op.word()));
        e.insert("OperationStatus".into(), json!(self.status.word()));
        e.insert("EventTime".into(), json!(self.event_time));
        if self.status == Status::Success {
            if let Some(model) = &self.model {
                let mut visible = model.clone();
                self.resource.strip_write_only(&mut visible);
                e.insert("ResourceModel".into(), json!(Value::Object(visible).to_string()));
            }
        }
        if let Some((code, message)) = &self.error {
            e.insert("ErrorCode".into(), json!(code));
            e.insert("StatusMessage".into(), json!(message));
        }
        if self.status == Status::InProgress {
            e.insert("RetryAfter".into(), json!(self.event_time + 0.05));
        }
        Value::Object(e)
    }
}

/// The resources of one type in one region.
#[derive(Debug, Default)]
pub struct TypeState {
    pub seeded: bool,
    pub resources: BTreeMap<String, Map<String, Value>>,
    /// Index the next created resource's generated values use.
    pub next_index: usize,
}

#[derive(Debug, Default)]
pub struct RegionState {
    pub types: HashMap<String, TypeState>,
    pub requests: HashMap<String, Request>,
    /// Request tokens in the order they were made (for ListResourceRequests).
    pub request_order: Vec<String>,
    /// Requests not yet finished.
    pub pending: Vec<String>,
    /// Client token → request token.
    pub client_tokens: HashMap<String, String>,
    /// Successful mutations per "OPERATION Type".
    pub succeeded: BTreeMap<String, u64>,
}

impl RegionState {
    pub fn type_state(&mut self, type_name: &str) -> &mut TypeState {
        self.types.entry(type_name.to_string()).or_default()
    }

    /// The request still running on this resource, if any.
    pub fn busy(&self, type_name: &str, identifier: &str) -> Option<&Request> {
        self.pending
            .iter()
            .filter_map(|t| self.requests.get(t))
            .find(|r| r.type_name == type_name && r.identifier == identifier && !r.status.is_terminal())
    }

    pub fn add_request(&mut self, request: Request, client_token: Option<String>) {
        if let Some(ct) = client_token {
            self.client_tokens.insert(ct, request.token.clone());
        }
        self.pending.push(request.token.clone());
        self.request_order.push(request.token.clone());
        self.requests.insert(request.token.clone(), request);
    }

    /// Finishes every request whose time has come.
    pub fn settle(&mut self, now: Instant) {
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|t| {
                self.requests
                    .get(*t)
                    .is_some_and(|r| r.due <= now || r.status == Status::CancelInProgress)
            })
            .cloned()
            .collect();
        for token in due {
            self.finish(&token);
        }
        let requests = &self.requests;
        self.pending.retain(|t| requests.get(t).is_some_and(|r| !r.status.is_terminal()));
    }

    fn finish(&mut self, token: &str) {
        let Some(mut req) = self.requests.remove(token) else { return };
        req.event_time = epoch_seconds();
        if req.status == Status::CancelInProgress {
            req.status = Status::CancelComplete;
        } else if let Some((code, message)) = req.failure.take() {
            req.status = Status::Failed;
            req.error = Some((code, message));
        } else {
            let type_name = req.type_name.clone();
            let resources = &mut self.type_state(&type_name).resources;
            let outcome = match req.op {
                Op::Create if resources.contains_key(&req.identifier) => Err((
                    "AlreadyExists",
                    format!(
                        "Resource of type '{type_name}' with identifier '{}' already exists.",
                        req.identifier
                    ),
                )),
                Op::Update | Op::Delete if !resources.contains_key(&req.identifier) => Err((
                    "NotFound",
                    format!("Resource of type '{type_name}' with identifier '{}' was not found.", req.identifier),
                )),
                Op::Create | Op::Update => {
                    resources.insert(req.identifier.clone(), req.model.clone().unwrap_or_default());
                    Ok(())
                }
                Op::Delete => {
                    resources.remove(&req.identifier);
                    Ok(())
                }
            };
            match outcome {
                Ok(()) => {
                    req.status = Status::Success;
                    *self.succeeded.entry(format!("{} {type_name}", req.op.word())).or_default() += 1;
                }
                Err((code, message)) => {
                    req.status = Status::Failed;
                    req.error = Some((code.to_string(), message));
                }
            }
        }
        self.requests.insert(token.to_string(), req);
    }
}
