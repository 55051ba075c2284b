//! Limits on the rate of Cloud Control calls, one of each per (account, region): an adaptive
//! limit, unlimited until throttling shows up, then a token bucket whose rate follows what the
//! API lets through; and an optional fixed [`Ceiling`] from the configuration.
//!
//! Once a window of attempts ends with more than [`CUT_ABOVE`] of them throttled, the rate is
//! cut to a little over the rate that got through; while throttling stays rare, it grows back
//! (and the limit is dropped once it no longer binds). The SDK's own adaptive mode does the
//! first part; it also keeps cutting when throttling does not follow the sending rate (a
//! share of calls refused whatever the rate), until calls crawl. This one checks what a cut
//! did: against a rate limit, sending less gets as many calls through; when instead the calls
//! that got through fell with the rate, the throttling is not the rate's doing, so the cuts are
//! undone and none is made for a while; retries (bounded by `api.retry_budget`) deal with it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a window of attempts lasts before the rate is reconsidered.
const WINDOW: Duration = Duration::from_millis(500);
/// Attempts a window needs before its share of throttled ones means anything (a window lasts
/// up to ten times [`WINDOW`] to gather them).
const MIN_ATTEMPTS: u32 = 40;
/// The share of throttled attempts above which the rate is cut.
pub const CUT_ABOVE: f64 = 0.05;
/// A new rate is this much above the rate that succeeded, to keep probing for more.
const HEADROOM: f64 = 1.1;
/// Growth per window while throttling is rare.
const GROWTH: f64 = 1.2;
/// Below this sending rate (calls per second) a window is not cut on: a call now and then says
/// little about a rate limit. (Cloud Control's limits can be a few calls per second, so a
/// paging or hydrating read at ten is already worth judging.)
const MIN_CUT_RATE: f64 = 2.0;
/// A limit binds when calls are let through at this share of it or more: callers wait on it.
const BINDING: f64 = 0.8;
/// Attempts a window needs to judge a limit that binds.
const MIN_BINDING_ATTEMPTS: u32 = 8;
/// Cuts after which a throttled share still above 80% of what set them off means cutting
/// does not help.
const MAX_FUTILE_CUTS: u32 = 3;
/// A cut must lower the sending rate at least this much to be judged.
const JUDGED_CUT: f64 = 0.85;
/// How long after cuts that did not help no new cut is made; doubled each time cutting
/// proves useless again, up to [`INSENSITIVE_MAX`].
const INSENSITIVE_FOR: Duration = Duration::from_secs(30);
const INSENSITIVE_MAX: Duration = Duration::from_secs(15 * 60);
/// The lowest rate a cut sets, in calls per second (a window of few attempts lasts up to ten
/// times as long, so even at the floor the limit is reconsidered).
const FLOOR: f64 = 1.0;

/// One region's limit.
#[derive(Debug)]
pub struct AdaptiveRate {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Calls per second; `None` while unlimited.
    limit: Option<f64>,
    tokens: f64,
    refilled: Instant,
    window: Window,
    /// What the last window saw.
    previous: Option<Seen>,
    /// The cuts being made since throttling set in, if any.
    cutting: Option<Cutting>,
    /// Until when throttling is known not to follow the rate.
    insensitive_until: Option<Instant>,
    /// How long the next such period lasts.
    insensitive_for: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    /// Calls let through.
    sent: u32,
    attempts: u32,
    throttled: u32,
}

/// A run of cuts.
#[derive(Debug, Clone, Copy)]
struct Cutting {
    /// The limit before the first cut, to go back to if cutting does not help.
    from: Option<f64>,
    /// The cuts made so far.
    cuts: u32,
    /// The throttled share that set them off.
    first_share: f64,
}

/// A finished window, in rates.
#[derive(Debug, Clone, Copy)]
struct Seen {
    sent_rate: f64,
    ok_rate: f64,
    /// Whether a limit was in force.
    limited: bool,
}

impl Seen {
    /// Whether, from `before` to `self`, sending less got proportionally fewer calls through:
    /// the throttling takes a share whatever the rate, so cutting only loses calls.
    fn fell_with_the_rate(&self, before: &Seen) -> bool {
        if before.sent_rate <= 0.0 || before.ok_rate <= 0.0 {
            return false;
        }
        let sent = self.sent_rate / before.sent_rate;
        sent < JUDGED_CUT && self.ok_rate / before.ok_rate < (1.0 + sent) / 2.0
    }
}

impl Window {
    fn new(now: Instant) -> Window {
        Window {
            started: now,
            sent: 0,
            attempts: 0,
            throttled: 0,
        }
    }
}

impl Default for AdaptiveRate {
    fn default() -> Self {
        AdaptiveRate::new(Instant::now())
    }
}

impl AdaptiveRate {
    pub fn new(now: Instant) -> AdaptiveRate {
        AdaptiveRate {
            state: Mutex::new(State {
                limit: None,
                tokens: 0.0,
                refilled: now,
                window: Window::new(now),
                previous: None,
                cutting: None,
                insensitive_until: None,
                insensitive_for: INSENSITIVE_FOR,
            }),
        }
    }

    /// The limit in calls per second, `None` while unlimited.
    pub fn limit(&self) -> Option<f64> {
        self.lock().limit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until a call may be sent.
    pub async fn admit(&self) {
        loop {
            let wait = self.try_admit(Instant::now());
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a token if one is there (returns zero), else says how long until one is.
    pub fn try_admit(&self, now: Instant) -> Duration {
        let mut s = self.lock();
        s.roll_window(now);
        let Some(rate) = s.limit else {
            s.window.sent += 1;
            return Duration::ZERO;
        };
        // A fifth of a second's worth of burst, and always room for one call.
        let capacity = (rate / 5.0).max(1.0);
        let elapsed = now.saturating_duration_since(s.refilled).as_secs_f64();
        s.tokens = (s.tokens + elapsed * rate).min(capacity);
        s.refilled = now;
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            s.window.sent += 1;
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - s.tokens) / rate)
        }
    }

    /// One HTTP attempt's outcome.
    pub fn attempted(&self, throttled: bool, now: Instant) {
        let mut s = self.lock();
        if throttled && s.limit.is_none() && s.window.throttled == 0 {
            // The first throttle while unlimited: measure from here, not from calls that
            // went through before the API started refusing.
            s.window = Window::new(now);
        }
        s.roll_window(now);
        s.window.attempts += 1;
        s.window.throttled += u32::from(throttled);
    }
}

impl State {
    /// Ends the window if its time is up, adjusting the limit by what it saw.
    fn roll_window(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window.started);
        if elapsed < WINDOW {
            return;
        }
        let w = self.window;
        if w.attempts < MIN_ATTEMPTS && elapsed < WINDOW * 10 {
            // Too few attempts to judge (a low limit, or little traffic): keep counting.
            return;
        }
        self.window = Window::new(now);
        let sent_rate = f64::from(w.sent) / elapsed.as_secs_f64();
        // A limit the callers wait on is judged on fewer attempts: at a low API limit, windows
        // never gather many, and letting the limit go for want of them sends every caller back
        // into throttling and retries.
        let binding = self.limit.is_some_and(|l| sent_rate >= BINDING * l);
        let judged = if binding { MIN_BINDING_ATTEMPTS } else { MIN_ATTEMPTS };
        if w.attempts < judged || sent_rate < MIN_CUT_RATE {
            // Too little traffic to judge: a limit this low only keeps the evidence away, so
            // it grows (or goes when nothing was throttled).
            self.previous = None;
            self.limit = self.limit.filter(|_| w.throttled > 0).map(|l| l * GROWTH);
            if self.limit.is_none() {
                self.cutting = None;
            }
            return;
        }
        let secs = elapsed.as_secs_f64();
        let share = f64::from(w.throttled) / f64::from(w.attempts);
        let seen = Seen {
            sent_rate: f64::from(w.sent) / secs,
            ok_rate: f64::from(w.attempts - w.throttled) / secs,
            limited: self.limit.is_some(),
        };
        let insensitive = self.insensitive_until.is_some_and(|t| now < t);
        if share <= CUT_ABOVE {
            self.cutting = None;
            if let Some(l) = self.limit {
                let grown = l * GROWTH;
                // A limit well above what is sent no longer binds: drop it.
                self.limit = (grown < 2.0 * seen.sent_rate.max(FLOOR)).then_some(grown);
            }
        } else if insensitive {
        } else if self
            .previous
            .is_some_and(|p| p.limited && seen.limited && seen.fell_with_the_rate(&p))
            || self
                .cutting
                .is_some_and(|c| c.cuts >= MAX_FUTILE_CUTS && share > c.first_share * 0.8)
        {
            // Judged between windows that both had a limit (a window before the first cut may
            // mix throttled and unthrottled time), or by cuts that left the share where it was
            // (against a rate limit, the second or third brings it near the headroom's).
            self.limit = self.cutting.take().and_then(|c| c.from);
            self.insensitive_until = Some(now + self.insensitive_for);
            self.insensitive_for = (self.insensitive_for * 2).min(INSENSITIVE_MAX);
            tracing::debug!(share, "throttling does not follow the call rate; limit restored");
        } else {
            self.cutting
                .get_or_insert(Cutting {
                    from: self.limit,
                    cuts: 0,
                    first_share: share,
                })
                .cuts += 1;
            // At most halved per window, so one bad window cannot sink it.
            let floor = (self.limit.unwrap_or(seen.sent_rate) * 0.5).max(FLOOR);
            let cut = (seen.ok_rate * HEADROOM).max(floor);
            self.limit = Some(self.limit.map_or(cut, |l| l.min(cut)).max(FLOOR));
            self.tokens = self.tokens.min(1.0);
            tracing::debug!(share, limit = self.limit, "throttled: call rate cut");
        }
        self.previous = Some(seen);
    }
}

/// A hard ceiling on the calls per second to one (account, region) (`api.max_calls_per_second`,
/// or the account's own): Cloud Control's quota is shared with the account's other users, so
/// cloudpg can be told to take no more than its share, throttled or not. Calls are spaced
/// `1 / rate` apart (no burst), so any window of `t` seconds holds at most `t × rate + 1`.
#[derive(Debug)]
pub struct Ceiling {
    interval: Duration,
    /// When the next call may go.
    next: Mutex<Instant>,
}

impl Ceiling {
    /// `per_second` must be positive and finite (the config checks it).
    pub fn new(per_second: f64) -> Ceiling {
        Ceiling {
            interval: Duration::from_secs_f64(1.0 / per_second.max(1e-6)),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this call's slot. A slot given up (the caller dropped mid-wait) stays taken,
    /// which only ever slows calls, never lets more through.
    pub async fn admit(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `seconds` of traffic offering `offered` calls per second, evenly spaced;
    /// `throttle(t)` says whether a call sent at `t` seconds is throttled. Returns the limit
    /// at the end of each second.
    fn simulate(seconds: u32, offered: u32, mut throttle: impl FnMut(f64) -> bool) -> Vec<Option<f64>> {
        let start = Instant::now();
        let rate = AdaptiveRate::new(start);
        let mut limits = Vec::new();
        for second in 0..seconds {
            for i in 0..offered {
                let t = f64::from(second) + f64::from(i) / f64::from(offered);
                let now = start + Duration::from_secs_f64(t);
                if rate.try_admit(now).is_zero() {
                    rate.attempted(throttle(t), now);
                }
            }
            limits.push(rate.limit());
        }
        limits
    }

    /// An API that lets `per_second` calls through (a bucket of a second's worth) and
    /// throttles the rest, until `until` seconds; then it throttles nothing.
    fn capacity(per_second: f64, until: f64) -> impl FnMut(f64) -> bool {
        let (mut tokens, mut last) = (per_second, 0.0);
        move |t| {
            tokens = (tokens + (t - last) * per_second).min(per_second);
            last = t;
            if t >= until || tokens >= 1.0 {
                tokens -= 1.0;
                false
            } else {
                true
            }
        }
    }

    /// Closed loop, as the server runs: `workers` calls in flight at most, each answered after
    /// `latency`; a throttled call waits an exponential backoff with full jitter (100 ms
    /// doubling to 5 s, as `[api]`'s defaults) and is tried again; `api(t)` says whether an
    /// attempt sent at `t` is throttled. Returns (calls through per second, attempts per call
    /// through) over the last `judged` seconds of `seconds`.
    fn closed_loop(workers: usize, api: impl FnMut(f64) -> bool, latency: f64, seconds: f64, judged: f64) -> (f64, f64) {
        closed_loop_with(workers, api, latency, (0.1, 5.0), seconds, judged)
    }

    /// [`closed_loop`] with the backoff's first and longest wait, in seconds.
    fn closed_loop_with(
        workers: usize,
        mut api: impl FnMut(f64) -> bool,
        latency: f64,
        (initial, longest): (f64, f64),
        seconds: f64,
        judged: f64,
    ) -> (f64, f64) {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let start = Instant::now();
        let rate = AdaptiveRate::new(start);
        let mut made = vec![0u32; workers];
        let mut heap: BinaryHeap<Reverse<(u64, usize)>> = (0..workers).map(|w| Reverse((w as u64, w))).collect();
        // A fixed-seed linear congruential generator for the jitter: the same run every time.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut jitter = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut ok, mut attempts) = (0u64, 0u64);
        let from = seconds - judged;
        while let Some(Reverse((at, w))) = heap.pop() {
            let t = at as f64 / 1e6;
            if t > seconds {
                break;
            }
            let now = start + Duration::from_micros(at);
            let wait = rate.try_admit(now);
            if !wait.is_zero() {
                heap.push(Reverse((at + wait.as_micros().max(1) as u64, w)));
                continue;
            }
            let throttled = api(t);
            let answered = t + latency;
            rate.attempted(throttled, start + Duration::from_secs_f64(answered));
            made[w] += 1;
            if t >= from {
                attempts += 1;
                ok += u64::from(!throttled);
            }
            let next = if throttled {
                let exp = initial * 2f64.powi(made[w].saturating_sub(1).min(16) as i32);
                answered + exp.min(longest) * jitter()
            } else {
                made[w] = 0;
                answered
            };
            heap.push(Reverse(((next * 1e6) as u64, w)));
        }
        (ok as f64 / judged, attempts as f64 / ok.max(1) as f64)
    }

    #[test]
    fn in_a_closed_loop_calls_run_near_the_api_limit_with_few_retries() {
        for (workers, per_second) in [(16, 5.0), (4, 2.0), (16, 20.0), (64, 50.0), (64, 200.0)] {
            let (through, per_call) = closed_loop(workers, capacity(per_second, f64::INFINITY), 0.05, 120.0, 60.0);
            eprintln!("{workers} workers against {per_second}/s: {through:.1}/s through, {per_call:.2} attempts per call");
            assert!(
                through >= per_second * 0.8,
                "{workers} workers, {per_second}/s: {through:.1}/s through"
            );
            assert!(
                per_call <= 1.5,
                "{workers} workers, {per_second}/s: {per_call:.2} attempts per call"
            );
        }
    }

    #[test]
    fn a_fast_api_and_fast_retries_settle_too() {
        // The fault tests' setting: answers in a millisecond, retries after 1-20 ms, 16 calls
        // in flight, an API that lets 100 calls a second through. Until the first window
        // ends (half a second) nothing limits them: a short scan pays that start in retries
        // (about 4 attempts per call over 5 s, measured); a long one hardly does. Windows
        // shortened to react faster were tried and rejected: the API's burst makes a short
        // window's rate a lie, and the cut set from it doubled the retries at 50 calls/s.
        let (through, per_call) = closed_loop_with(16, capacity(100.0, f64::INFINITY), 0.001, (0.001, 0.02), 60.0, 60.0);
        eprintln!("fast API over 60 s: {through:.1}/s through, {per_call:.2} attempts per call");
        assert!(
            through >= 95.0 && per_call <= 1.5,
            "{through:.1}/s through, {per_call:.2} attempts per call"
        );
    }

    #[test]
    fn in_a_closed_loop_throttling_that_ignores_the_rate_costs_only_its_retries() {
        // 60% of attempts throttled whatever the rate: 2.5 attempts per call is the least any
        // client can do; the limit must not sink the rate below what the workers can send.
        let mut seed = 7u64;
        let random_share = move |_t: f64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % 10 < 6
        };
        let (through, per_call) = closed_loop(64, random_share, 0.05, 120.0, 60.0);
        eprintln!("60% throttled: {through:.1}/s through, {per_call:.2} attempts per call");
        assert!(per_call < 3.0, "{per_call:.2} attempts per call");
        // A client with no limit at all gets 105 calls/s through here.
        assert!(through > 90.0, "{through:.1}/s through");
    }

    #[test]
    fn without_throttling_there_is_no_limit() {
        assert!(simulate(10, 200, |_| false).iter().all(Option::is_none));
    }

    #[test]
    fn against_a_capacity_the_limit_settles_near_it() {
        let limits = simulate(40, 400, capacity(50.0, f64::INFINITY));
        let last = limits.last().copied().flatten().expect("a limit is set");
        assert!((40.0..=90.0).contains(&last), "limit {last} for a capacity of 50: {limits:?}");
    }

    #[test]
    fn throttling_that_ignores_the_rate_does_not_sink_it() {
        // 60% of calls throttled whatever the rate: once cutting shows it does not help, the
        // limit goes back and stays off.
        let mut n = 0u32;
        let limits = simulate(30, 200, |_| {
            n += 1;
            n % 5 < 3
        });
        let low = limits.iter().flatten().fold(f64::INFINITY, |a, b| a.min(*b));
        assert!(low > 20.0, "lowest limit {low}: {limits:?}");
        assert!(limits[5..].iter().all(Option::is_none), "{limits:?}");
    }

    #[test]
    fn the_limit_grows_back_once_throttling_stops() {
        let limits = simulate(30, 300, capacity(50.0, 5.0));
        assert!(limits[4].is_some(), "{limits:?}");
        assert!(limits.last().unwrap().is_none(), "{limits:?}");
    }

    #[tokio::test]
    async fn a_ceiling_spaces_calls_whatever_their_number() {
        // Only lower bounds: a sleep never ends early, however loaded the machine.
        let ceiling = std::sync::Arc::new(Ceiling::new(50.0));
        let started = Instant::now();
        let calls = (0..11).map(|_| {
            let c = ceiling.clone();
            tokio::spawn(async move {
                c.admit().await;
                Instant::now()
            })
        });
        let mut times = Vec::new();
        for call in calls {
            times.push(call.await.unwrap() - started);
        }
        times.sort();
        // The i-th call to go cannot go before its slot, i × 20 ms after the first.
        for (i, t) in times.iter().enumerate() {
            assert!(*t >= Duration::from_millis(20 * i as u64 - u64::from(i > 0)), "{times:?}");
        }
    }
}
