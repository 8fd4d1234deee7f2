//! Client-side pacing of Transfer requests: the audit's listings, describes,
//! reconciles and writes share one [`Pacer`] per execution environment (kept in
//! [`crate::apply::Chroot`], so a run's continuations start at the pace it learned).
//! The audit runs inside [`scope`]; the Transfer adapter waits on [`acquire`] before
//! each call and reports each attempt with [`answered`] or [`throttled`], which reach
//! the pacer of the work in scope, and nothing outside one: an API request, an SQS
//! record or a CloudTrail re-chroot makes a call or two and is never paced.
//!
//! Transfer meters its API with a token bucket per account and region: a sustained
//! rate and a burst. A client that sends as fast as it can drains the burst and is then
//! answered `ThrottlingException`; each throttled request waits out the SDK's backoff
//! (jittered, up to a second), and so does whatever waits on it. The [`Pacer`] sends at
//! a rate instead, learned from the answers, AIMD-style:
//!
//! - **Until the first throttle** it does not pace at all (nothing is known of the
//!   limit, and a function far below it should not wait for anything), unless
//!   `AUDIT_MAX_RPS` sets a cap: then it starts at the cap and never goes above it.
//! - **A throttle cuts** the rate to [`BETA`] of what Transfer was seen to *accept*
//!   over the last [`WINDOW`] (the answered attempts, not the sent ones), at most once
//!   per cool-down (twice the observed latency, at least [`MIN_COOLDOWN`]), so the
//!   requests already in flight when the limit was hit do not cut it again. One cut at
//!   most halves the rate; a throttle with too little answered to measure from halves
//!   it, but not below [`BLIND_RATE`], and before pacing has started changes nothing
//!   (the SDK retries it).
//! - **After [`QUIET`] without a throttle** it stops pacing again (back to the cap, if
//!   any): a throttle now and then, which no pace would have avoided, never leaves an
//!   environment slow for good.
//! - **Each answer probes upwards** by [`GROWTH`] requests a second (so about 2 % a
//!   second at the rate it sends), one [`GROWTH`] more for each second without a
//!   throttle (up to [`MAX_SPEEDUP`] times), while the rate is below twice what is
//!   accepted: a pipeline bound by latency, not by the pacer, does not inflate it.
//!
//! A throttled request is retried by the SDK (its standard mode) outside the pacer; the
//! pacer only sees that it happened ([`Pacer::throttled`], from the SDK client's
//! interceptor) and slows everything a little, instead of one call stopping for a
//! second while the others keep hitting the limit. docs/PERFORMANCE.md measures it
//! against bursts of R, R/10 and 1.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// How far back the accepted rate is measured.
pub const WINDOW: Duration = Duration::from_secs(1);
/// The share of the accepted rate a throttle cuts to.
pub const BETA: f64 = 0.9;
/// Requests a second added per answered request while probing.
pub const GROWTH: f64 = 0.02;
/// The shortest time between two cuts.
pub const MIN_COOLDOWN: Duration = Duration::from_millis(100);
/// The rate is never cut below this (requests a second).
pub const MIN_RATE: f64 = 1.0;
/// The lowest rate a throttle with nothing answered to measure from cuts to.
pub const BLIND_RATE: f64 = 20.0;
/// Without a throttle for this long, pacing stops (down to the cap).
pub const QUIET: Duration = Duration::from_secs(30);
/// The shortest span the accepted rate is measured over (a burst is not a rate).
const MIN_SPAN: Duration = Duration::from_millis(100);
/// The fewest answers the accepted rate is measured from.
const MIN_SAMPLES: usize = 10;
/// How much faster than [`GROWTH`] the probe grows after seconds without a throttle
/// (one more [`GROWTH`] per quiet second, up to this many).
pub const MAX_SPEEDUP: f64 = 10.0;

tokio::task_local! {
    static CURRENT: Arc<Pacer>;
}

/// Runs `work` with every Transfer call in it paced by `pacer`.
pub async fn scope<F: Future>(pacer: Arc<Pacer>, work: F) -> F::Output {
    CURRENT.scope(pacer, work).await
}

/// Waits for the current pacer's send slot (at once outside a [`scope`]).
pub async fn acquire() {
    if let Ok(pacer) = CURRENT.try_with(Arc::clone) {
        pacer.acquire().await;
    }
}

/// An attempt of the work in scope was answered (anything but a throttle).
pub fn answered(latency: Duration) {
    let _ = CURRENT.try_with(|p| p.answered(latency));
}

/// An attempt of the work in scope was throttled.
pub fn throttled() {
    let _ = CURRENT.try_with(|p| p.throttled());
}

/// What the pacer knows, for logs and progress.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// The pace in requests a second; `None`: not pacing.
    pub rate: Option<f64>,
    /// Attempts answered, and attempts throttled, since the environment started.
    pub answered: u64,
    pub throttled: u64,
}

/// What one item (its describe, or its reconcile's read and write, with their pacing
/// waits and retries) is seen to take, smoothed as TCP smooths its round trips (RFC
/// 6298's mean and mean deviation): new items start only while one more could still
/// finish before the hard stop, at the mean plus two deviations. Not TCP's four: a
/// throttled item (half a second of backoff among items of a few milliseconds) would
/// keep the last second of every invocation idle, and an item the hard stop catches
/// costs only its read again (the audit waits for writes already started). Before the
/// first observation it is RFC 6298's initial second.
#[derive(Debug, Clone, Copy, Default)]
struct ItemTime {
    srtt: Option<Duration>,
    rttvar: Duration,
}

impl ItemTime {
    const INITIAL: Duration = Duration::from_secs(1);
    /// Scheduling noise: never plan on less.
    const FLOOR: Duration = Duration::from_millis(50);

    fn need(&self) -> Duration {
        self.srtt
            .map_or(Self::INITIAL, |s| (s + self.rttvar * 2).max(Self::FLOOR))
    }

    fn observe(&mut self, took: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(took);
                self.rttvar = took / 2;
            }
            Some(s) => {
                self.rttvar = (self.rttvar * 3 + s.abs_diff(took)) / 4;
                self.srtt = Some((s * 7 + took) / 8);
            }
        }
    }
}

/// The shared pacer (see the module's documentation).
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<State>,
    /// What the audit's items take (kept across the invocations of an environment).
    items: Mutex<ItemTime>,
}

#[derive(Debug)]
struct State {
    cap: Option<f64>,
    rate: Option<f64>,
    /// The next free send slot.
    next: Instant,
    /// When each attempt of the last [`WINDOW`] was answered.
    answers: VecDeque<Instant>,
    /// When the first answer came (the window's span until it is full).
    first_answer: Option<Instant>,
    last_cut: Option<Instant>,
    last_throttle: Option<Instant>,
    /// Smoothed attempt latency (an EWMA, 1/8 per sample, as TCP's SRTT).
    latency: Option<Duration>,
    answered: u64,
    throttled: u64,
}

impl Default for Pacer {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Pacer {
    /// A pacer that never sends more than `cap` requests a second (`AUDIT_MAX_RPS`).
    pub fn new(cap: Option<f64>) -> Self {
        let cap = cap.filter(|c| c.is_finite() && *c > 0.0);
        Self {
            state: Mutex::new(State {
                cap,
                rate: cap,
                next: Instant::now(),
                answers: VecDeque::new(),
                first_answer: None,
                last_cut: None,
                last_throttle: None,
                latency: None,
                answered: 0,
                throttled: 0,
            }),
            items: Mutex::new(ItemTime::default()),
        }
    }

    /// How long a new audit item may take: start it only with this much left.
    pub fn need(&self) -> Duration {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).need()
    }

    /// An audit item that called Transfer took `took`.
    pub fn took(&self, took: Duration) {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(took);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent whatever a panicking holder did: plain numbers.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for this request's send slot (at once when not pacing).
    pub async fn acquire(&self) {
        let slot = self.lock().reserve(Instant::now());
        if let Some(at) = slot {
            tokio::time::sleep_until(at).await;
        }
    }

    /// An attempt was answered (anything but a throttle) after `latency`.
    pub fn answered(&self, latency: Duration) {
        self.lock().answered(Instant::now(), latency);
    }

    /// An attempt was answered `ThrottlingException`.
    pub fn throttled(&self) {
        let cut = self.lock().throttled(Instant::now());
        if let Some((from, to, accepted)) = cut {
            tracing::info!(
                from = from.map(|r| r.round()),
                to = to.round(),
                accepted = accepted.round(),
                "Transfer throttled: pacing its requests"
            );
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let s = self.lock();
        Snapshot {
            rate: s.rate,
            answered: s.answered,
            throttled: s.throttled,
        }
    }
}

impl State {
    fn reserve(&mut self, now: Instant) -> Option<Instant> {
        if self
            .last_throttle
            .is_some_and(|t| now.saturating_duration_since(t) >= QUIET)
        {
            self.rate = self.cap;
            self.last_throttle = None;
        }
        let rate = self.rate?;
        let slot = self.next.max(now);
        self.next = slot + Duration::from_secs_f64(1.0 / rate);
        (slot > now).then_some(slot)
    }

    fn expire(&mut self, now: Instant) {
        while self
            .answers
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > WINDOW)
        {
            self.answers.pop_front();
        }
    }

    /// Requests a second answered over the last [`WINDOW`] (or since the first answer).
    fn accepted(&mut self, now: Instant) -> Option<f64> {
        self.expire(now);
        let first = self.first_answer?;
        let span = now.saturating_duration_since(first).clamp(MIN_SPAN, WINDOW);
        // Too few answers measure nothing: a burst, not a rate.
        (self.answers.len() >= MIN_SAMPLES).then(|| self.answers.len() as f64 / span.as_secs_f64())
    }

    fn answered(&mut self, now: Instant, latency: Duration) {
        self.answered += 1;
        self.first_answer.get_or_insert(now);
        self.answers.push_back(now);
        self.latency = Some(match self.latency {
            None => latency,
            Some(l) => (l * 7 + latency) / 8,
        });
        if let Some(rate) = self.rate {
            let accepted = self.accepted(now).unwrap_or(rate);
            if rate < 2.0 * accepted {
                // Faster the longer Transfer has not throttled: a deep cut (or one made
                // on little evidence) is made up in seconds, not minutes.
                let quiet = self
                    .last_throttle
                    .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64());
                let grown = rate + GROWTH * (1.0 + quiet).min(MAX_SPEEDUP);
                self.rate = Some(self.cap.map_or(grown, |c| grown.min(c)));
            }
        }
    }

    /// Cuts the rate unless a cut is cooling down: (from, to, accepted) when it did.
    fn throttled(&mut self, now: Instant) -> Option<(Option<f64>, f64, f64)> {
        self.throttled += 1;
        self.last_throttle = Some(now);
        let cooldown = self
            .latency
            .map_or(MIN_COOLDOWN, |l| (l * 2).max(MIN_COOLDOWN));
        if self
            .last_cut
            .is_some_and(|t| now.saturating_duration_since(t) < cooldown)
        {
            return None;
        }
        let accepted = self.accepted(now).filter(|a| *a > 0.0);
        let to = match (self.rate, accepted) {
            (Some(rate), Some(a)) => (rate.min(a) * BETA).max(rate / 2.0),
            (None, Some(a)) => a * BETA,
            (Some(rate), None) => (rate / 2.0).max(BLIND_RATE.min(rate)),
            // Nothing to measure from and not pacing: the SDK's retry is all there is
            // to do until answers show a rate (the first requests of a run, say).
            (None, None) => return None,
        };
        let mut to = to.max(MIN_RATE);
        if let Some(cap) = self.cap {
            to = to.min(cap);
        }
        let from = self.rate.replace(to);
        self.last_cut = Some(now);
        // The slots already handed out at the old rate stay; the next ones follow the new.
        Some((from, to, accepted.unwrap_or(0.0)))
    }
}

#[cfg(test)]
mod tests {
    //! On the pacer's state with instants given, so time is the test's own.
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn state(cap: Option<f64>) -> State {
        Pacer::new(cap)
            .state
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// `n` answers spaced by `gap` from `*t` (advanced), each after `latency`.
    fn answers(s: &mut State, t: &mut Instant, n: usize, gap: Duration, latency: Duration) {
        for _ in 0..n {
            *t += gap;
            s.answered(*t, latency);
        }
    }

    #[test]
    fn unpaced_until_throttled_then_near_what_was_accepted() {
        let mut s = state(None);
        let mut t = Instant::now();
        for _ in 0..100 {
            assert_eq!(s.reserve(t), None, "no limit known: no wait");
        }
        // 300 answers over one second, then a throttle.
        answers(&mut s, &mut t, 300, Duration::from_micros(3_333), ms(5));
        s.throttled(t).expect("cut");
        let rate = s.rate.expect("pacing");
        assert!((260.0..=280.0).contains(&rate), "{rate}");
        // Requests are now spaced at that rate: the 100th waits 99 intervals.
        let last = (0..100).filter_map(|_| s.reserve(t)).last().unwrap();
        let expected = Duration::from_secs_f64(99.0 / rate);
        let waited = last - t;
        assert!(
            waited.abs_diff(expected) < ms(1),
            "{waited:?}, not {expected:?}"
        );
    }

    #[test]
    fn throttles_within_the_cool_down_cut_once() {
        let mut s = state(None);
        let mut t = Instant::now();
        answers(&mut s, &mut t, 100, ms(10), ms(20));
        assert!(s.throttled(t).is_some());
        let once = s.rate.unwrap();
        for _ in 0..7 {
            // The rest of the pipeline's requests, already in flight.
            assert!(s.throttled(t + ms(10)).is_none());
        }
        assert_eq!(s.rate.unwrap(), once);
        assert_eq!(s.throttled, 8);
        // Cool-down: twice the latency (20 ms), at least MIN_COOLDOWN.
        assert!(
            s.throttled(t + MIN_COOLDOWN).is_some(),
            "a later throttle cuts"
        );
        assert!(s.rate.unwrap() < once);
    }

    #[test]
    fn answers_probe_upwards_only_while_the_pacer_binds() {
        let mut s = state(None);
        let mut t = Instant::now();
        answers(&mut s, &mut t, 100, ms(10), ms(1));
        s.throttled(t);
        let cut = s.rate.unwrap();
        // Answered at the pace for about a second: GROWTH per answer, a little more as
        // the quiet second goes by.
        let pace = Duration::from_secs_f64(1.0 / cut);
        answers(&mut s, &mut t, 100, pace, ms(1));
        let grown = s.rate.unwrap() - cut;
        assert!(
            (100.0 * GROWTH..100.0 * GROWTH * 2.2).contains(&grown),
            "{cut} -> +{grown}"
        );
        let grown = s.rate.unwrap();
        // Answered at a tenth of the pace (bound by latency): not inflated.
        answers(&mut s, &mut t, 50, pace * 10, ms(1));
        assert!(s.rate.unwrap() - grown < 0.2, "{grown} -> {:?}", s.rate);
    }

    #[test]
    fn a_cap_paces_from_the_start_and_is_never_exceeded() {
        let mut s = state(Some(50.0));
        let t = Instant::now();
        let slots: Vec<Instant> = (0..51).map(|_| s.reserve(t).unwrap_or(t)).collect();
        assert_eq!(slots[50] - t, Duration::from_secs(1), "51 requests: 1 s");
        let mut now = t;
        answers(&mut s, &mut now, 10_000, ms(20), ms(1));
        assert_eq!(s.rate, Some(50.0));
        s.throttled(now);
        assert!(s.rate.unwrap() <= 50.0 * BETA);
    }

    #[test]
    fn a_throttle_with_nothing_to_measure_from_never_paces_below_blind_rate() {
        let t = Instant::now();
        let mut s = state(None);
        assert!(
            s.throttled(t).is_none(),
            "not pacing, nothing answered: no cut"
        );
        assert_eq!(s.rate, None);
        // Pacing and throttled again and again with nothing answered: halved, not
        // below BLIND_RATE.
        s.rate = Some(400.0);
        s.throttled(t + MIN_COOLDOWN);
        assert_eq!(s.rate, Some(200.0));
        for i in 2..20 {
            s.throttled(t + MIN_COOLDOWN * i);
        }
        assert_eq!(s.rate, Some(BLIND_RATE));
        let mut capped = state(Some(0.5));
        capped.throttled(t);
        assert!(capped.rate.unwrap() <= 0.5, "the cap wins");
    }

    #[test]
    fn the_probe_speeds_up_the_longer_transfer_is_quiet() {
        let mut s = state(None);
        let mut t = Instant::now();
        answers(&mut s, &mut t, 100, ms(10), ms(1));
        s.throttled(t);
        let cut = s.rate.unwrap();
        let pace = Duration::from_secs_f64(1.0 / cut);
        answers(&mut s, &mut t, 10, pace, ms(1));
        let early = s.rate.unwrap() - cut;
        t += Duration::from_secs(5);
        let before = s.rate.unwrap();
        answers(&mut s, &mut t, 10, pace, ms(1));
        let later = s.rate.unwrap() - before;
        assert!(later > early * 5.0, "{early} then {later}");
    }

    #[test]
    fn one_cut_at_most_halves_and_quiet_ends_pacing() {
        let mut s = state(None);
        let mut t = Instant::now();
        answers(&mut s, &mut t, 1000, ms(1), ms(1));
        s.throttled(t);
        let first = s.rate.unwrap();
        // Transfer now accepts a tenth as much: the next cut halves, not more.
        answers(&mut s, &mut t, 100, ms(10), ms(1));
        let before = s.rate.unwrap();
        assert!(before >= first, "probed up meanwhile");
        s.throttled(t);
        assert_eq!(s.rate.unwrap(), before / 2.0);
        s.reserve(t + QUIET - ms(1));
        assert!(s.rate.is_some(), "still pacing");
        assert_eq!(s.reserve(t + QUIET * 2), None, "quiet: unpaced");
        assert_eq!(s.rate, None);
    }

    #[test]
    fn the_accepted_rate_forgets_what_is_older_than_the_window() {
        let mut s = state(None);
        let mut t = Instant::now();
        answers(&mut s, &mut t, 1000, ms(1), ms(1)); // 1000/s for a second
        answers(&mut s, &mut t, 100, ms(10), ms(1)); // then 100/s for a second
        let a = s.accepted(t).unwrap();
        assert!((95.0..=105.0).contains(&a), "{a}");
    }

    #[tokio::test]
    async fn only_the_work_in_scope_is_paced() {
        let capped = Arc::new(Pacer::new(Some(20.0)));
        let outside = std::time::Instant::now();
        for _ in 0..5 {
            acquire().await; // an API request, an SQS record: no pacer in scope
        }
        throttled(); // reported outside a scope: nobody's
        assert!(outside.elapsed() < Duration::from_millis(20));
        let inside = std::time::Instant::now();
        scope(Arc::clone(&capped), async {
            for _ in 0..5 {
                acquire().await;
            }
            answered(Duration::from_millis(1));
        })
        .await;
        assert!(inside.elapsed() >= Duration::from_millis(190), "5 at 20/s");
        let snap = capped.snapshot();
        assert_eq!((snap.answered, snap.throttled), (1, 0));
    }
}
