//! The collector: merges every worker's deltas into run totals per name and Aggregated, keeps
//! the last seconds for Locust's "current" figures, and runs the reporting thread.

use std::collections::{BTreeMap, VecDeque};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use hdrhistogram::Histogram;

use super::entry::{Entry, new_histogram, quantile_in};
use super::snapshot::{ErrorRow, LagStats, PERCENTILES, RowStats, Snapshot};
use super::worker::{StatsDelta, unix_now};
use super::{METHOD, NameId, ReportOptions, RunSummary, StatsMsg};
use crate::report;

/// Seconds of per-second data kept: Locust's 10 s window plus its 2 s settling margin, and one
/// spare second.
const KEEP_SECONDS: i64 = 13;
/// The "current" rate averages seconds `[last - 12, last - 2)`, as Locust does: the two latest
/// seconds may still be waiting for other threads' deltas.
const RATE_WINDOW_START: i64 = 12;
const RATE_WINDOW_END: i64 = 2;
/// The "current" percentiles cover the last 10 seconds.
const PERCENTILE_WINDOW: i64 = 10;
/// Locust writes a history row every second.
const HISTORY_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest console interval accepted, so a zero option cannot spin the thread.
const MIN_PRINT_INTERVAL: Duration = Duration::from_millis(100);

/// One name's (or the total's) run totals plus its recent seconds.
#[derive(Debug)]
struct Series {
    total: Entry,
    /// second -> (requests, failures)
    per_second: BTreeMap<i64, (u64, u64)>,
    /// (second, response times recorded in that second), oldest first.
    recent: VecDeque<(i64, Histogram<u64>)>,
}

impl Series {
    fn new() -> Self {
        Series {
            total: Entry::new(),
            per_second: BTreeMap::new(),
            recent: VecDeque::new(),
        }
    }

    fn absorb(&mut self, entry: &Entry, second: i64) {
        self.total.merge(entry);
        let counts = self.per_second.entry(second).or_default();
        counts.0 += entry.num_requests;
        counts.1 += entry.num_failures;
        let slot = match self.recent.iter().position(|(s, _)| *s == second) {
            Some(i) => i,
            None => {
                let at = self.recent.partition_point(|(s, _)| *s < second);
                self.recent.insert(at, (second, new_histogram()));
                at
            }
        };
        if let Some((_, h)) = self.recent.get_mut(slot) {
            // Same bounds on both sides, so `add` cannot fail.
            let _ = h.add(&entry.histogram);
        }
    }

    fn prune(&mut self, oldest_kept: i64) {
        self.per_second = self.per_second.split_off(&oldest_kept);
        while self.recent.front().is_some_and(|(s, _)| *s < oldest_kept) {
            self.recent.pop_front();
        }
    }

    /// Mean of per-second (requests, failures) over `[from, to)`, zeros included.
    fn rates(&self, from: i64, to: i64) -> (f64, f64) {
        if to <= from {
            return (0.0, 0.0);
        }
        let (reqs, fails) = self
            .per_second
            .range(from..to)
            .fold((0, 0), |(r, f), (_, (dr, df))| (r + dr, f + df));
        let seconds = (to - from) as f64;
        (reqs as f64 / seconds, fails as f64 / seconds)
    }

    fn current_percentiles(&self, since: i64) -> Option<[u64; 11]> {
        let mut window = new_histogram();
        for (_, h) in self.recent.iter().filter(|(s, _)| *s >= since) {
            let _ = window.add(h);
        }
        if window.is_empty() {
            return None;
        }
        let (min, max) = (window.min(), window.max());
        Some(PERCENTILES.map(|q| quantile_in(&window, q, min, max)))
    }
}

#[derive(Debug)]
struct ErrorTotals {
    occurrences: u64,
    first_seen: f64,
    last_seen: f64,
}

/// Run totals merged from every thread's deltas.
#[derive(Debug)]
pub(crate) struct Collector {
    names: Vec<String>,
    series: Vec<Series>,
    total: Series,
    errors: BTreeMap<(NameId, String), ErrorTotals>,
    send_lag: Histogram<u64>,
    /// Latest users-connected gauge per thread.
    users: BTreeMap<usize, u64>,
    start_unix: Option<f64>,
    end_unix: Option<f64>,
    target_users: u64,
}

impl Collector {
    pub(crate) fn new(names: Vec<String>, target_users: u64) -> Self {
        Collector {
            series: names.iter().map(|_| Series::new()).collect(),
            names,
            total: Series::new(),
            errors: BTreeMap::new(),
            send_lag: new_histogram(),
            users: BTreeMap::new(),
            start_unix: None,
            end_unix: None,
            target_users,
        }
    }

    /// Folds one thread's interval into the totals. A delta's counts land in the second that
    /// holds the middle of its interval; entries for names outside the table are dropped.
    pub(crate) fn merge(&mut self, delta: StatsDelta) {
        let (start, end) = (delta.start_unix.min(delta.end_unix), delta.end_unix);
        self.start_unix = Some(self.start_unix.map_or(start, |s| s.min(start)));
        self.end_unix = Some(self.end_unix.map_or(end, |e| e.max(end)));
        let second = ((start + end) / 2.0).floor() as i64;
        for (series, entry) in self.series.iter_mut().zip(&delta.entries) {
            if let Some(entry) = entry {
                series.absorb(entry, second);
                self.total.absorb(entry, second);
            }
        }
        for (name, text, n) in delta.errors {
            if name >= self.names.len() {
                continue;
            }
            let e = self.errors.entry((name, text)).or_insert(ErrorTotals {
                occurrences: 0,
                first_seen: end,
                last_seen: end,
            });
            e.occurrences += n;
            e.first_seen = e.first_seen.min(end);
            e.last_seen = e.last_seen.max(end);
        }
        if let Some(lag) = &delta.send_lag {
            let _ = self.send_lag.add(lag);
        }
        self.users.insert(delta.thread, delta.users_connected);
        if let Some(last) = self.last_second() {
            let oldest = last - KEEP_SECONDS;
            self.total.prune(oldest);
            self.series.iter_mut().for_each(|s| s.prune(oldest));
        }
    }

    fn last_second(&self) -> Option<i64> {
        self.end_unix.map(|e| e.floor() as i64)
    }

    /// The run as it stands, for the report writers.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut rows: Vec<RowStats> = self
            .series
            .iter()
            .zip(&self.names)
            .filter(|(s, _)| !s.total.is_empty())
            .map(|(s, name)| self.row(s, METHOD, name))
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        let errors = self
            .errors
            .iter()
            .map(|((name, text), e)| ErrorRow {
                method: METHOD.to_owned(),
                name: self.names.get(*name).cloned().unwrap_or_default(),
                error: text.clone(),
                occurrences: e.occurrences,
                first_seen_unix: e.first_seen,
                last_seen_unix: e.last_seen,
            })
            .collect();
        let lag = &self.send_lag;
        Snapshot {
            timestamp_unix: unix_now(),
            users_connected: self.users.values().sum(),
            target_users: self.target_users,
            rows,
            total: self.row(&self.total, "", "Aggregated"),
            errors,
            send_lag: LagStats {
                count: lag.len(),
                p50_us: quantile_in(lag, 0.5, lag.min(), lag.max()),
                p99_us: quantile_in(lag, 0.99, lag.min(), lag.max()),
                max_us: if lag.is_empty() { 0 } else { lag.max() },
            },
        }
    }

    fn row(&self, series: &Series, method: &str, name: &str) -> RowStats {
        let t = &series.total;
        let (current_rps, current_fail_per_sec, current_percentiles_us) = match self.last_second() {
            Some(last) => {
                let first = self.start_unix.map_or(last, |s| s.floor() as i64);
                let from = (last - RATE_WINDOW_START).max(first);
                let (rps, fps) = series.rates(from, last - RATE_WINDOW_END);
                let pct = series.current_percentiles(last - PERCENTILE_WINDOW);
                (rps, fps, pct)
            }
            None => (0.0, 0.0, None),
        };
        let elapsed = match (self.start_unix, self.end_unix) {
            (Some(s), Some(e)) if e > s => e - s,
            _ => 0.0,
        };
        let per_second = |n: u64| {
            if elapsed > 0.0 {
                n as f64 / elapsed
            } else {
                0.0
            }
        };
        RowStats {
            method: method.to_owned(),
            name: name.to_owned(),
            num_requests: t.num_requests,
            num_failures: t.num_failures,
            avg_us: t.avg_us(),
            min_us: t.min_or_zero(),
            max_us: t.max_us,
            median_us: t.quantile_us(0.5),
            avg_content_length: if t.num_requests == 0 {
                0.0
            } else {
                t.content_length as f64 / t.num_requests as f64
            },
            current_rps,
            current_fail_per_sec,
            total_rps: per_second(t.num_requests),
            total_fail_per_sec: per_second(t.num_failures),
            percentiles_us: PERCENTILES.map(|q| t.quantile_us(q)),
            current_percentiles_us,
        }
    }
}

/// Starts the collector thread (see [`super::spawn_collector`]).
pub(crate) fn spawn(
    names: Vec<String>,
    rx: Receiver<StatsMsg>,
    options: ReportOptions,
) -> JoinHandle<RunSummary> {
    std::thread::Builder::new()
        .name("mqload-stats".to_owned())
        .spawn(move || run(names, rx, options))
        .expect("the OS could not start the statistics thread")
}

fn run(names: Vec<String>, rx: Receiver<StatsMsg>, options: ReportOptions) -> RunSummary {
    let mut collector = Collector::new(names, options.target_users);
    let mut csv = options.csv_prefix.as_deref().and_then(|prefix| {
        report::csv::CsvFiles::create(prefix)
            .map_err(report_csv_error)
            .ok()
    });
    let print_interval = options.print_interval.max(MIN_PRINT_INTERVAL);
    let name_width = report::console::name_width();
    let started = Instant::now();
    let mut next_print = (!options.only_summary).then(|| started + print_interval);
    let mut next_history = csv.is_some().then(|| started + HISTORY_INTERVAL);
    loop {
        let deadline = match (next_print, next_history) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let received = match deadline {
            Some(d) => rx.recv_deadline(d),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(StatsMsg::Delta(delta)) => collector.merge(delta),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now = Instant::now();
        if let Some(due) = next_print.filter(|due| *due <= now) {
            report::console::print(&report::console::stats_table(
                &collector.snapshot(),
                true,
                name_width,
            ));
            next_print = Some(next_due(due, print_interval, now));
        }
        if let (Some(due), Some(files)) = (next_history.filter(|due| *due <= now), csv.as_mut()) {
            if let Err(e) = files.write_interval(&collector.snapshot()) {
                report_csv_error(e);
            }
            next_history = Some(next_due(due, HISTORY_INTERVAL, now));
        }
    }
    let last = collector.snapshot();
    report::console::print(&report::console::final_report(&last, name_width));
    if let Some(files) = csv.as_mut()
        && let Err(e) = files.write_final(&last)
    {
        report_csv_error(e);
    }
    RunSummary {
        total_requests: last.total.num_requests,
        total_failures: last.total.num_failures,
        send_lag_p99_us: last.send_lag.p99_us,
        final_stats: last,
    }
}

/// The next tick after `due`, skipping ticks missed while busy rather than bunching them.
fn next_due(due: Instant, interval: Duration, now: Instant) -> Instant {
    let next = due + interval;
    if next <= now { now + interval } else { next }
}

fn report_csv_error(e: report::csv::CsvError) {
    eprintln!("mqload: {e}");
}
