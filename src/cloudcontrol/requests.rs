//! Every mutation this server starts, from submission to a final status.
//!
//! A mutation is submitted with its ClientToken; a transient failure resubmits the same request
//! (same token), so Cloud Control never starts it twice. Once accepted, a background task polls
//! GetResourceRequestStatus (backoff from `mutations.poll_initial` to `poll_max`, never before
//! the event's RetryAfter) until SUCCESS, FAILED or CANCEL_COMPLETE; a failed poll is retried on
//! the same token. The task outlives the statement that started it: a statement that stops
//! waiting (timeout, NOWAIT, a closed connection) leaves its request tracked and listed in
//! `cloudpg.requests`.
//!
//! With a [`Journal`], each request is on disk before it is sent, with its RequestToken once
//! known and its end; [`RequestLog::resume`] picks up what a previous run left unfinished.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tracing::Instrument;

use super::cache::CachedApi;
use super::journal::{Entry, Journal, Opened, Submitted};
use super::scrub::{conceal, secrets_of, Scrubber};
use super::{MutationRequest, Place, ProgressEvent};
use crate::error::{Error, Result};

/// Requests kept in the log; the oldest finished ones go first.
const KEEP: usize = 10_000;
/// Submissions of one request (same ClientToken) before its fate is declared unknown.
const SUBMIT_ROUNDS: u32 = 3;
/// How long Cloud Control honours a ClientToken: a request still unfinished after this long
/// stops being polled, and one never acknowledged is not sent again after it.
const TOKEN_LIFETIME: Duration = Duration::from_secs(36 * 3600);
/// The account of a server whose config names none.
pub use crate::config::accounts::DEFAULT_ACCOUNT;
/// The status recorded when Cloud Control never confirmed a submission.
pub const UNKNOWN_STATUS: &str = "UNKNOWN";

/// How often to ask for a request's status.
#[derive(Debug, Clone, Copy)]
pub struct PollSettings {
    pub initial: Duration,
    pub max: Duration,
}

/// One mutation and its latest progress event.
#[derive(Debug)]
pub struct TrackedRequest {
    pub client_token: String,
    /// The account and region it was sent to.
    pub place: Place,
    pub type_name: String,
    pub operation: &'static str,
    pub user: String,
    pub submitted_at: SystemTime,
    state: watch::Sender<ProgressEvent>,
    /// What the request carried in write-only properties: masked in every message kept.
    secrets: Vec<String>,
}

impl TrackedRequest {
    pub fn latest(&self) -> ProgressEvent {
        self.state.borrow().clone()
    }

    /// The final event, or `None` if the request is still running after `timeout`.
    pub async fn wait(&self, timeout: Duration) -> Option<ProgressEvent> {
        let mut rx = self.state.subscribe();
        let finished = tokio::time::timeout(timeout, async { rx.wait_for(ProgressEvent::is_terminal).await.map(|e| e.clone()) }).await;
        finished.ok().and_then(Result::ok)
    }

    fn update(&self, event: ProgressEvent) {
        let mut event = conceal_event(event, &self.secrets);
        self.state.send_modify(|current| {
            // Identifiers often appear only in some events; never forget one once seen.
            if event.identifier.is_none() {
                event.identifier = current.identifier.take();
            }
            if event.request_token.is_empty() {
                event.request_token = std::mem::take(&mut current.request_token);
            }
            *current = event;
        });
    }
}

/// This server's mutations, newest last.
pub struct RequestLog {
    api: Arc<CachedApi>,
    poll: PollSettings,
    entries: Mutex<VecDeque<Arc<TrackedRequest>>>,
    journal: Option<Arc<Journal>>,
    /// Which requests hide part of what they write (not journaled whole).
    scrubber: Arc<Scrubber>,
    /// What the journal found at startup that users should know of (a file moved aside).
    journal_note: Mutex<Option<String>>,
}

impl RequestLog {
    pub fn new(api: Arc<CachedApi>, poll: PollSettings, journal: Option<Arc<Journal>>, scrubber: Arc<Scrubber>) -> Arc<RequestLog> {
        Arc::new(RequestLog {
            api,
            poll,
            entries: Mutex::new(VecDeque::new()),
            journal,
            scrubber,
            journal_note: Mutex::new(None),
        })
    }

    /// Where requests are journaled and what was found there at startup, for the comment
    /// of `cloudpg.requests`.
    pub fn journal_description(&self) -> String {
        let place = match &self.journal {
            Some(j) => format!("journaled in {}, so they survive a restart", j.path().display()),
            None => "kept in memory only ([mutations] journal is off)".to_string(),
        };
        let note = self.journal_note.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match note {
            Some(n) => format!("{place}. {n}"),
            None => place,
        }
    }

    /// Starts a mutation and tracks it until it ends. Errors are Cloud Control's refusals; a
    /// submission that never got an answer is also recorded, with status UNKNOWN and its
    /// ClientToken, before the error is returned.
    ///
    /// The submission runs as its own task: a statement cancelled or disconnected mid-call
    /// cannot leave a request started in Cloud Control but missing from the log.
    pub async fn submit(self: &Arc<Self>, request: MutationRequest, user: &str) -> Result<Arc<TrackedRequest>> {
        let (log, user) = (self.clone(), user.to_string());
        // Its own span, not the statement's: the request outlives the statement.
        let span = tracing::info_span!(parent: None, "mutation.submit", account = %request.place.account, region = %request.place.region, type_name = %request.type_name);
        let task = tokio::spawn(async move { log.submit_now(request, &user).await }.instrument(span));
        task.await
            .map_err(|e| Error::internal(format!("mutation submission task failed: {e}")))?
    }

    async fn submit_now(self: &Arc<Self>, request: MutationRequest, user: &str) -> Result<Arc<TrackedRequest>> {
        let secrets = secrets_of(&request);
        self.submit_concealed(request, user, secrets.clone())
            .await
            .map_err(|e| conceal_error(e, &secrets))
    }

    async fn submit_concealed(self: &Arc<Self>, request: MutationRequest, user: &str, secrets: Vec<String>) -> Result<Arc<TrackedRequest>> {
        // In flight from submission until it ends (the tracking task keeps it past here).
        let in_flight = crate::observe::metrics::MutationGauge::start();
        self.api.invalidate_type(&request.place, &request.type_name);
        let submitted_at = SystemTime::now();
        if let Some(journal) = &self.journal {
            let record = Submitted::of(&request, user, self.scrubber.hides_part_of(&request), epoch_seconds(submitted_at));
            // Not on disk, not sent: a crash must never leave a request nobody knows of.
            journal.submitted(record).await.map_err(|e| match e {
                Error::Io(m) => Error::Io(format!("{m}; the request was not sent")),
                other => other,
            })?;
        }
        self.send(request, user, secrets, submitted_at, in_flight).await
    }

    /// Sends a request (again, on a resume) and tracks it until it ends.
    async fn send(
        self: &Arc<Self>,
        request: MutationRequest,
        user: &str,
        secrets: Vec<String>,
        submitted_at: SystemTime,
        in_flight: crate::observe::metrics::MutationGauge,
    ) -> Result<Arc<TrackedRequest>> {
        let mut delay = self.poll.initial;
        let mut round = 1;
        let event = loop {
            match self.api.mutate(&request).await {
                Ok(event) => break event,
                Err(e) if e.is_transient() && round < SUBMIT_ROUNDS => {
                    tracing::warn!(error = %e.log_summary(), client_token = %request.client_token, round, "resubmitting with the same ClientToken");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.poll.max);
                    round += 1;
                }
                Err(e) if e.is_transient() => {
                    let unknown = ProgressEvent {
                        type_name: Some(request.type_name.clone()),
                        identifier: request.change.identifier().map(str::to_string),
                        operation: request.change.operation().to_string(),
                        operation_status: UNKNOWN_STATUS.to_string(),
                        event_time: Some(epoch_seconds(SystemTime::now())),
                        status_message: Some(format!(
                            "Cloud Control did not confirm the request ({e}); sending it again with ClientToken '{}' returns \
                             the original request instead of starting another",
                            request.client_token
                        )),
                        ..ProgressEvent::default()
                    };
                    self.record(&request, user, unknown, secrets, submitted_at);
                    return Err(e);
                }
                Err(e) => {
                    self.journal_ended(&request.client_token, &refused_event(&request, &e)).await;
                    return Err(e);
                }
            }
        };
        let mut event = event;
        if event.identifier.is_none() {
            event.identifier = request.change.identifier().map(str::to_string);
        }
        if let Some(journal) = self.journal.as_ref().filter(|_| !event.request_token.is_empty()) {
            if let Err(e) = journal.accepted(&request.client_token, &event.request_token).await {
                // A restart would send it again under the same ClientToken: no second request.
                tracing::error!(error = %e, "could not journal the RequestToken");
            }
        }
        if event.is_terminal() {
            // Before the status is published: whoever sees it done must not read the old state.
            self.api.invalidate_type(&request.place, &request.type_name);
            self.journal_ended(&request.client_token, &event).await;
        }
        let tracked = self.record(&request, user, event.clone(), secrets, submitted_at);
        if !event.is_terminal() {
            self.spawn_track(tracked.clone(), in_flight);
        }
        Ok(tracked)
    }

    fn spawn_track(self: &Arc<Self>, tracked: Arc<TrackedRequest>, in_flight: crate::observe::metrics::MutationGauge) {
        let latest = tracked.latest();
        let span = tracing::info_span!(parent: None, "mutation.track", request_token = %latest.request_token, account = %tracked.place.account, region = %tracked.place.region, type_name = %tracked.type_name);
        let track = self.clone().track(tracked);
        tokio::spawn(
            async move {
                let _in_flight = in_flight;
                track.await
            }
            .instrument(span),
        );
    }

    /// Records how a request ended, so a restart does not pick it up again.
    async fn journal_ended(&self, client_token: &str, event: &ProgressEvent) {
        if let Some(journal) = &self.journal {
            if let Err(e) = journal.ended(client_token, event).await {
                tracing::error!(error = %e, "could not journal the end of a request");
            }
        }
    }

    /// Picks up what a previous run journaled and did not see end: requests with a
    /// RequestToken are polled; requests never acknowledged are sent again with their
    /// ClientToken (Cloud Control returns the original request if it had started it), unless
    /// the token has expired or the journal does not hold the whole request, which leaves
    /// them to a person. A journal that could not be read is only shown, never resent.
    pub fn resume(self: &Arc<Self>, opened: Opened) {
        let mut resent = 0;
        for entry in opened.entries {
            resent += usize::from(self.resume_entry(entry, true));
        }
        if let Some(aside) = opened.set_aside {
            let note = format!(
                "The journal found at startup could not be read ({}); it was kept as {} and nothing in it was sent again",
                aside.reason,
                aside.moved_to.display()
            );
            tracing::error!(moved_to = %aside.moved_to.display(), reason = %aside.reason, "mutation journal unreadable; kept aside, nothing resent");
            for entry in aside.readable {
                self.resume_entry(entry, false);
            }
            *self.journal_note.lock().unwrap_or_else(|p| p.into_inner()) = Some(note);
        }
        if resent > 0 {
            tracing::info!(resent, "resending unacknowledged mutations from the journal");
        }
    }

    /// Shows one journaled request and, if unfinished, finishes it; true when it is resent.
    fn resume_entry(self: &Arc<Self>, entry: Entry, may_resend: bool) -> bool {
        let s = &entry.submitted;
        let submitted_at = UNIX_EPOCH + Duration::from_secs_f64(s.submitted_at.max(0.0));
        let mut event = ProgressEvent {
            type_name: Some(s.type_name.clone()),
            identifier: s.identifier.clone(),
            request_token: entry.request_token.clone().unwrap_or_default(),
            operation: s.operation.clone(),
            ..ProgressEvent::default()
        };
        let show = |event: ProgressEvent| {
            self.keep(TrackedRequest {
                client_token: s.client_token.clone(),
                place: s.place(),
                type_name: s.type_name.clone(),
                operation: operation_name(&s.operation),
                user: s.user.clone(),
                submitted_at,
                state: watch::Sender::new(event),
                secrets: Vec::new(),
            })
        };
        if let Some(ended) = &entry.ended {
            event.operation_status = ended.status.clone();
            event.identifier = ended.identifier.clone().or(event.identifier);
            event.error_code = ended.error_code.clone();
            event.status_message = ended.message.clone();
            event.event_time = ended.event_time;
            show(event);
            return false;
        }
        if !self.api.has_account(&s.account) {
            event.operation_status = UNKNOWN_STATUS.into();
            event.error_code = Some("NeedsDecision".into());
            event.status_message = Some(format!(
                "the request was sent as account {:?}, which the configuration no longer has: add it back to \
                 [[accounts]] and restart to let cloudpg finish it, or check {} in that account yourself",
                s.account, s.type_name
            ));
            show(event);
            return false;
        }
        if !event.request_token.is_empty() {
            event.operation_status = "IN_PROGRESS".into();
            let tracked = show(event);
            self.spawn_track(tracked, crate::observe::metrics::MutationGauge::start());
            return false;
        }
        let expired = SystemTime::now().duration_since(submitted_at).is_ok_and(|age| age > TOKEN_LIFETIME);
        match s.request().filter(|_| may_resend && !expired) {
            Some(request) => {
                let (log, user) = (self.clone(), s.user.clone());
                let span = tracing::info_span!(parent: None, "mutation.resume", account = %request.place.account, region = %request.place.region, type_name = %request.type_name);
                tokio::spawn(
                    async move {
                        let in_flight = crate::observe::metrics::MutationGauge::start();
                        let shown = (request.clone(), user.clone());
                        if let Err(e) = log.send(request, &user, Vec::new(), submitted_at, in_flight).await {
                            tracing::warn!(error = %e.log_summary(), "resending a journaled mutation failed");
                            if !e.is_transient() {
                                // Refused outright, and no statement waits to be told: the
                                // table says so (a transient failure is listed as UNKNOWN
                                // already).
                                let mut refused = refused_event(&shown.0, &e);
                                refused.status_message = Some(e.to_string());
                                log.record(&shown.0, &shown.1, refused, Vec::new(), submitted_at);
                            }
                        }
                    }
                    .instrument(span),
                );
                true
            }
            None => {
                event.operation_status = UNKNOWN_STATUS.into();
                event.error_code = Some("NeedsDecision".into());
                event.status_message = Some(needs_decision(s, expired, may_resend));
                show(event);
                false
            }
        }
    }

    /// Completes once every request this server is still polling has ended: a graceful
    /// shutdown waits for this (up to its timeout) so no started mutation goes untracked.
    pub async fn settled(&self) {
        let unfinished: Vec<Arc<TrackedRequest>> = {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries
                .iter()
                .filter(|t| {
                    let e = t.latest();
                    !e.is_terminal() && e.operation_status != UNKNOWN_STATUS
                })
                .cloned()
                .collect()
        };
        for t in unfinished {
            let mut rx = t.state.subscribe();
            let _ = rx.wait_for(ProgressEvent::is_terminal).await;
        }
    }

    /// Every request this server started, oldest first, with its latest event.
    pub fn snapshot(&self) -> Vec<(Arc<TrackedRequest>, ProgressEvent)> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.iter().map(|t| (t.clone(), t.latest())).collect()
    }

    fn record(
        &self,
        request: &MutationRequest,
        user: &str,
        event: ProgressEvent,
        secrets: Vec<String>,
        submitted_at: SystemTime,
    ) -> Arc<TrackedRequest> {
        let event = conceal_event(event, &secrets);
        self.keep(TrackedRequest {
            secrets,
            client_token: request.client_token.clone(),
            place: request.place.clone(),
            type_name: request.type_name.clone(),
            operation: request.change.operation(),
            user: user.to_string(),
            submitted_at,
            state: watch::Sender::new(event),
        })
    }

    /// Adds a request to the log, making room by forgetting the oldest finished one.
    fn keep(&self, tracked: TrackedRequest) -> Arc<TrackedRequest> {
        let tracked = Arc::new(tracked);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= KEEP {
            if let Some(i) = entries.iter().position(|t| t.latest().is_terminal()) {
                entries.remove(i);
            }
        }
        entries.push_back(tracked.clone());
        tracked
    }

    /// Polls until the request ends, then drops the cache entries it may have changed.
    async fn track(self: Arc<Self>, tracked: Arc<TrackedRequest>) {
        let mut backoff = self.poll.initial;
        loop {
            let current = tracked.latest();
            if current.is_terminal() {
                break;
            }
            if SystemTime::now()
                .duration_since(tracked.submitted_at)
                .is_ok_and(|age| age > TOKEN_LIFETIME)
            {
                tracing::warn!("request still unfinished after {TOKEN_LIFETIME:?}; no longer polling it");
                return;
            }
            let now = epoch_seconds(SystemTime::now());
            tokio::time::sleep(next_poll_delay(backoff, current.retry_after, now, self.poll.max)).await;
            backoff = (backoff * 2).min(self.poll.max);
            match self.api.request_status(&tracked.place, &current.request_token).await {
                Ok(event) => {
                    if event.is_terminal() {
                        // Before the final status is published, as on submission.
                        self.api.invalidate_type(&tracked.place, &tracked.type_name);
                        self.journal_ended(&tracked.client_token, &event).await;
                    }
                    tracked.update(event)
                }
                Err(Error::Aws(e)) if e.code.starts_with("RequestTokenNotFound") => {
                    self.api.invalidate_type(&tracked.place, &tracked.type_name);
                    let failed = ProgressEvent {
                        operation_status: "FAILED".into(),
                        error_code: Some("RequestTokenNotFound".into()),
                        status_message: Some(e.message.clone()),
                        event_time: Some(epoch_seconds(SystemTime::now())),
                        ..current
                    };
                    self.journal_ended(&tracked.client_token, &failed).await;
                    tracked.update(failed);
                }
                // The request itself is unaffected by a lost answer: ask again on the same token.
                Err(e) => tracing::warn!(error = %e.log_summary(), "polling failed; asking again"),
            }
        }
        tracing::debug!(status = %tracked.latest().operation_status, "request finished");
        self.api.invalidate_type(&tracked.place, &tracked.type_name);
    }
}

/// The end of a request Cloud Control refused outright (nothing was started).
fn refused_event(request: &MutationRequest, e: &Error) -> ProgressEvent {
    ProgressEvent {
        operation: request.change.operation().to_string(),
        operation_status: "FAILED".into(),
        error_code: match e {
            Error::Aws(a) => Some(a.code.clone()),
            _ => None,
        },
        event_time: Some(epoch_seconds(SystemTime::now())),
        ..ProgressEvent::default()
    }
}

/// `CREATE` → the `&'static str` TrackedRequest keeps.
fn operation_name(op: &str) -> &'static str {
    match op {
        "CREATE" => "CREATE",
        "UPDATE" => "UPDATE",
        "DELETE" => "DELETE",
        _ => "UNKNOWN",
    }
}

/// Why a journaled request is left to a person, with what is known of it.
fn needs_decision(s: &Submitted, expired: bool, may_resend: bool) -> String {
    let why = if !may_resend {
        "it comes from a journal that could not be fully read".to_string()
    } else if expired {
        format!(
            "it was never acknowledged and its ClientToken expired ({} hours after submission), so sending it again \
             could start it twice",
            TOKEN_LIFETIME.as_secs() / 3600
        )
    } else {
        "it was never acknowledged and it carried write-only or [redact] values, which the journal never stores".to_string()
    };
    let target = match (&s.identifier, &s.digest) {
        (Some(id), _) => format!("resource '{id}'"),
        (None, Some(d)) => format!("the resource whose desired state has SHA-256 {d}"),
        (None, None) => "the resource".to_string(),
    };
    format!(
        "cloudpg cannot finish this {} of {} in {} by itself: {why}. Check whether {target} is in the state wanted \
         (SELECT … FROM the type's table) and run the statement again if it is not",
        s.operation,
        s.type_name,
        s.place()
    )
}

/// An event's message and model without the request's secrets (Cloud Control may quote input).
fn conceal_event(mut event: ProgressEvent, secrets: &[String]) -> ProgressEvent {
    if !secrets.is_empty() {
        event.status_message = event.status_message.map(|m| conceal(&m, secrets));
        event.resource_model = event.resource_model.map(|m| conceal(&m, secrets));
    }
    event
}

fn conceal_error(e: Error, secrets: &[String]) -> Error {
    match e {
        Error::Aws(mut a) if !secrets.is_empty() => {
            a.message = conceal(&a.message, secrets);
            Error::Aws(a)
        }
        other => other,
    }
}

/// The wait before the next poll: the backoff, but never before the event's RetryAfter (which
/// is trusted up to `max`, so a clock skew cannot stall polling).
pub fn next_poll_delay(backoff: Duration, retry_after: Option<f64>, now: f64, max: Duration) -> Duration {
    let until_retry = retry_after
        .map(|at| at - now)
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::ZERO, |s| Duration::from_secs_f64(s).min(max));
    backoff.max(until_retry)
}

pub fn epoch_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(10);

    #[test]
    fn polls_follow_the_backoff_without_retry_after() {
        assert_eq!(
            next_poll_delay(Duration::from_millis(100), None, 1000.0, MAX),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn polls_wait_for_retry_after() {
        let d = next_poll_delay(Duration::from_millis(100), Some(1002.0), 1000.0, MAX);
        assert_eq!(d, Duration::from_secs(2));
    }

    #[test]
    fn a_past_retry_after_does_not_shorten_the_backoff() {
        let d = next_poll_delay(Duration::from_millis(400), Some(999.0), 1000.0, MAX);
        assert_eq!(d, Duration::from_millis(400));
    }

    #[test]
    fn a_far_retry_after_is_capped() {
        let d = next_poll_delay(Duration::from_millis(100), Some(1_000_000.0), 1000.0, MAX);
        assert_eq!(d, MAX);
    }
}
