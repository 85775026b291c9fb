//! One level of the capacity search: a fresh engine run at the level's rate, its statistics
//! split into the warm-up (connects, first messages; or a connect-rate level's first second),
//! the steady window the search judges, and the drain (which only counts toward loss, or
//! toward the connects a connect-rate level offered and mqload never started).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use crate::engine::{self, Epoch};
use crate::find_limit::{LevelResult, SearchMode};
use crate::plan::{NAME_CONNECT, RunPlan};
use crate::stats::{
    Collector, ConnectionCounts, DeliveryCounts, Snapshot, StatsDelta, StatsMsg, TimeSeries,
};
use crate::unix_time::unix_now;

/// Time after the last user's CONNACK before the steady window opens: the seed's one second
/// before a device's first message, and one more for the rate to settle.
const SETTLE: Duration = Duration::from_secs(2);
/// Deltas come every second; the window closes one interval after its nominal end so that
/// the last full interval of each thread falls inside it.
const DELTA_INTERVAL: Duration = Duration::from_secs(1);
/// How long a connect-rate level runs on after its window closed (well under the one second
/// of connects `CONNECT_TAIL` leaves due after it).
const CUT_OFF_AFTER_WINDOW: Duration = Duration::from_millis(500);

/// What one level measured.
#[derive(Debug)]
pub struct LevelRun {
    /// The figures the search judges.
    pub result: LevelResult,
    /// The steady window's statistics and series (the report's tables when it is the answer).
    pub steady: Snapshot,
    /// See `steady`.
    pub series: TimeSeries,
    /// Wall-clock start and end of the steady window, Unix seconds.
    pub window_unix: (f64, f64),
    /// Successful connects over the whole level.
    pub connects: u64,
    /// The first reason a connect failed, if any did.
    pub first_connect_error: Option<String>,
    /// Why a worker could not run, if any could not.
    pub worker_errors: Vec<String>,
    /// A signal stopped the level early.
    pub interrupted: bool,
}

/// Runs `plan` (whose throughput, or spawn rate for a connect-rate level, is already the
/// level's) and measures `level_time` of it once every user is connected and publishing (a
/// connect-rate level: after `connect_lead`, while connects keep falling due).
pub fn run_level(
    plan: &Arc<RunPlan>,
    mode: SearchMode,
    offered_per_s: f64,
    level_time: Duration,
    connect_lead: Duration,
) -> LevelRun {
    let last_start = plan.users.saturating_sub(1) as f64 / plan.spawn_rate;
    let warm_up = match mode {
        SearchMode::Messages => Duration::from_secs_f64(last_start.min(3600.0)) + SETTLE,
        SearchMode::Connects => connect_lead,
    };
    let (tx, rx) = crossbeam_channel::unbounded();
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Epoch::now();
    let engine = {
        let (plan, stop) = (Arc::clone(plan), Arc::clone(&stop));
        thread::spawn(move || engine::run(&plan, &tx, &stop, epoch))
    };
    let window_start = epoch.unix + warm_up.as_secs_f64();
    let stop_at = epoch.instant + warm_up + level_time + DELTA_INTERVAL;
    let mut window = Window::new(plan, window_start);
    let mut totals = Totals::default();
    let mut interrupted = false;
    let mut stopped_at = stop_at;
    // A connect-rate level goes on a little after its window closed, so the attempts the stop
    // cuts off (counted then as failed connects) fall outside the window.
    let engine_stop_at = match mode {
        SearchMode::Messages => stop_at,
        SearchMode::Connects => stop_at + CUT_OFF_AFTER_WINDOW,
    };
    loop {
        let deadline = if stop.load(Ordering::Relaxed) {
            Instant::now() + Duration::from_secs(3600)
        } else if window.end.is_finite() {
            engine_stop_at
        } else {
            stop_at
        };
        match rx.recv_deadline(deadline) {
            Ok(StatsMsg::Delta(delta)) => {
                totals.add(&delta);
                window.take(delta);
            }
            Ok(StatsMsg::ResetRequests) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let signalled = crate::signals::received();
        let now = Instant::now();
        if window.end.is_infinite() && (now >= stop_at || signalled) {
            window.end = unix_now();
        }
        if !stop.load(Ordering::Relaxed) && (now >= engine_stop_at || signalled) {
            interrupted = signalled;
            stopped_at = now;
            stop.store(true, Ordering::Relaxed);
        }
    }
    let worker_errors = join(engine);
    let Window {
        mut span, steady, ..
    } = window;
    if span.1 < span.0 {
        span = (window_start, window_start);
    }
    let snapshot = steady.snapshot();
    let level = Level {
        mode,
        plan,
        offered_per_s,
        seconds: span.1 - span.0,
        ran_for: stopped_at.saturating_duration_since(epoch.instant),
    };
    let result = level.figures(&snapshot, &totals);
    LevelRun {
        result,
        series: steady.finish_series(),
        steady: snapshot,
        window_unix: span,
        connects: totals.connections.connects,
        first_connect_error: totals.first_connect_error,
        worker_errors,
        interrupted,
    }
}

/// What is counted over the whole level, warm-up and drain included.
#[derive(Default)]
struct Totals {
    delivery: DeliveryCounts,
    connections: ConnectionCounts,
    first_connect_error: Option<String>,
}

impl Totals {
    fn add(&mut self, delta: &StatsDelta) {
        self.delivery += delta.delivery;
        self.connections.add(&delta.connections);
        if self.first_connect_error.is_none() {
            self.first_connect_error = delta
                .errors
                .iter()
                .find(|(name, _, _)| *name == NAME_CONNECT)
                .map(|(_, text, _)| text.clone());
        }
    }
}

/// A level that ran: what it offered, how long its window was, how long the engine ran.
struct Level<'a> {
    mode: SearchMode,
    plan: &'a RunPlan,
    offered_per_s: f64,
    seconds: f64,
    ran_for: Duration,
}

impl Level<'_> {
    /// The figures the search judges, from the window's `steady` snapshot and the level's
    /// `totals`.
    fn figures(&self, steady: &Snapshot, totals: &Totals) -> LevelResult {
        let (offered, seconds) = (self.offered_per_s, self.seconds);
        match self.mode {
            SearchMode::Messages => {
                // Loss is counted over the whole level, once it drained: a message sent at the
                // window's end arrives after it.
                let lost = match steady.delivery {
                    Some(_) => totals.delivery.lost(),
                    None => 0,
                };
                LevelResult::from_snapshot(offered, seconds, steady, lost)
            }
            SearchMode::Connects => {
                // User `i` falls due at `i / rate`: those due before the stop, and every attempt
                // that ended (answered, failed, or cut off by the stop and counted failed then).
                let rate = self.plan.spawn_rate;
                let due = (self.ran_for.as_secs_f64() * rate).floor() as u64 + 1;
                let due = due.min(self.plan.users);
                let c = &totals.connections;
                let attempts = c.connects + c.failed_attempts;
                LevelResult::from_connect_snapshot(offered, seconds, steady, attempts, due)
            }
        }
    }
}

/// The steady window: the deltas wholly inside it, merged.
struct Window {
    start: f64,
    /// Unix seconds; infinite until the window closes.
    end: f64,
    /// The first start and last end of the deltas taken.
    span: (f64, f64),
    steady: Collector,
}

impl Window {
    fn new(plan: &RunPlan, start: f64) -> Window {
        let mut steady = Collector::new(plan.request_names.clone(), plan.users);
        steady.subscribers = plan.subscribe.as_ref().map_or(0, |s| s.subscribers);
        Window {
            start,
            end: f64::INFINITY,
            span: (f64::INFINITY, f64::NEG_INFINITY),
            steady,
        }
    }

    /// Merges `delta` when its interval lies inside the window.
    fn take(&mut self, delta: StatsDelta) {
        let (start, end) = delta.interval_unix();
        if start >= self.start && end <= self.end {
            self.span = (self.span.0.min(start), self.span.1.max(end));
            self.steady.merge(delta);
        }
    }
}

/// Waits for the engine; its workers' errors in words.
fn join(engine: thread::JoinHandle<Vec<engine::WorkerError>>) -> Vec<String> {
    match engine.join() {
        Ok(errors) => errors.iter().map(ToString::to_string).collect(),
        Err(_) => vec!["a worker thread panicked (a bug in mqload)".to_owned()],
    }
}
