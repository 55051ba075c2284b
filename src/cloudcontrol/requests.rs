//! Every mutation this server starts, from submission to a final status.
//!
//! A mutation is submitted with its ClientToken; a transient failure resubmits the same request
//! (same token), so Cloud Control never starts it twice. Once accepted, a background task polls
//! GetResourceRequestStatus (backoff from `mutations.poll_initial` to `poll_max`, never before
//! the event's RetryAfter) until SUCCESS, FAILED or CANCEL_COMPLETE; a failed poll is retried on
//! the same token. The task outlives the statement that started it: a statement that stops
//! waiting (timeout, NOWAIT, a closed connection) leaves its request tracked and listed in
//! `cloudpg.requests`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tracing::Instrument;

use super::cache::CachedApi;
use super::scrub::{conceal, secrets_of};
use super::{MutationRequest, ProgressEvent};
use crate::error::{Error, Result};

/// Requests kept in the log; the oldest finished ones go first.
const KEEP: usize = 10_000;
/// Submissions of one request (same ClientToken) before its fate is declared unknown.
const SUBMIT_ROUNDS: u32 = 3;
/// A request still unfinished after this long stops being polled (ClientTokens last 36 hours).
const TRACK_LIMIT: Duration = Duration::from_secs(36 * 3600);
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
    pub region: String,
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
}

impl RequestLog {
    pub fn new(api: Arc<CachedApi>, poll: PollSettings) -> Arc<RequestLog> {
        Arc::new(RequestLog {
            api,
            poll,
            entries: Mutex::new(VecDeque::new()),
        })
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
        let span = tracing::info_span!(parent: None, "mutation.submit", region = %request.region, type_name = %request.type_name);
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
        self.api.invalidate_type(&request.region, &request.type_name);
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
                    self.record(&request, user, unknown, secrets);
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        };
        let mut event = event;
        if event.identifier.is_none() {
            event.identifier = request.change.identifier().map(str::to_string);
        }
        if event.is_terminal() {
            // Before the status is published: whoever sees it done must not read the old state.
            self.api.invalidate_type(&request.region, &request.type_name);
        }
        let tracked = self.record(&request, user, event.clone(), secrets);
        if !event.is_terminal() {
            let span = tracing::info_span!(parent: None, "mutation.track", request_token = %event.request_token, region = %request.region, type_name = %request.type_name);
            let track = self.clone().track(tracked.clone());
            tokio::spawn(
                async move {
                    let _in_flight = in_flight;
                    track.await
                }
                .instrument(span),
            );
        }
        Ok(tracked)
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

    fn record(&self, request: &MutationRequest, user: &str, event: ProgressEvent, secrets: Vec<String>) -> Arc<TrackedRequest> {
        let event = conceal_event(event, &secrets);
        let tracked = Arc::new(TrackedRequest {
            secrets,
            client_token: request.client_token.clone(),
            region: request.region.clone(),
            type_name: request.type_name.clone(),
            operation: request.change.operation(),
            user: user.to_string(),
            submitted_at: SystemTime::now(),
            state: watch::Sender::new(event),
        });
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
        let started = Instant::now();
        let mut backoff = self.poll.initial;
        loop {
            let current = tracked.latest();
            if current.is_terminal() {
                break;
            }
            if started.elapsed() > TRACK_LIMIT {
                tracing::warn!("request still unfinished after {TRACK_LIMIT:?}; no longer polling it");
                return;
            }
            let now = epoch_seconds(SystemTime::now());
            tokio::time::sleep(next_poll_delay(backoff, current.retry_after, now, self.poll.max)).await;
            backoff = (backoff * 2).min(self.poll.max);
            match self.api.request_status(&tracked.region, &current.request_token).await {
                Ok(event) => {
                    if event.is_terminal() {
                        // Before the final status is published, as on submission.
                        self.api.invalidate_type(&tracked.region, &tracked.type_name);
                    }
                    tracked.update(event)
                }
                Err(Error::Aws(e)) if e.code.starts_with("RequestTokenNotFound") => {
                    self.api.invalidate_type(&tracked.region, &tracked.type_name);
                    tracked.update(ProgressEvent {
                        operation_status: "FAILED".into(),
                        error_code: Some("RequestTokenNotFound".into()),
                        status_message: Some(e.message.clone()),
                        event_time: Some(epoch_seconds(SystemTime::now())),
                        ..current
                    });
                }
                // The request itself is unaffected by a lost answer: ask again on the same token.
                Err(e) => tracing::warn!(error = %e.log_summary(), "polling failed; asking again"),
            }
        }
        tracing::debug!(status = %tracked.latest().operation_status, "request finished");
        self.api.invalidate_type(&tracked.region, &tracked.type_name);
    }
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
