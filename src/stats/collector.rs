//! The collector: merges every worker's deltas into run totals per name and Aggregated, keeps
//! the last seconds for Locust's "current" figures, and runs the reporting thread.

use std::collections::{BTreeMap, VecDeque};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use hdrhistogram::Histogram;

use super::entry::{Entry, new_histogram, quantile_in};
use super::series::Timeline;
use super::snapshot::{AGGREGATED, ErrorRow, LagStats, PERCENTILES, RowStats, Snapshot};
use super::recorder::{StatsDelta, unix_now};
use super::{
    ConnectCounts, ConnectionCounts, DeliveryCounts, DeliveryStats, METHOD, NameId, ReportOptions,
    RunSummary, StatsMsg,
};
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
/// The live status line (when stdout is a terminal) is redrawn this often.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);
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

    /// Drops counts before `last - KEEP_SECONDS` and histograms older than the percentile
    /// window (each is a few hundred KiB).
    fn prune(&mut self, last: i64) {
        self.per_second = self.per_second.split_off(&(last - KEEP_SECONDS));
        while self
            .recent
            .front()
            .is_some_and(|(s, _)| *s < last - PERCENTILE_WINDOW)
        {
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
    send_lag_max_us: u64,
    held_back: u64,
    held_back_max_us: u64,
    connections: ConnectionCounts,
    /// Latest users-connected gauge per thread.
    users: BTreeMap<usize, u64>,
    start_unix: Option<f64>,
    end_unix: Option<f64>,
    target_users: u64,
    /// Subscriber connections of the run (0: no delivery figures).
    pub(crate) subscribers: u64,
    delivery: DeliveryCounts,
    connects: ConnectCounts,
    /// One point per second for the JSON and HTML reports.
    timeline: Timeline,
}

impl Collector {
    pub(crate) fn new(names: Vec<String>, target_users: u64) -> Self {
        Collector {
            series: names.iter().map(|_| Series::new()).collect(),
            timeline: Timeline::new(names.clone()),
            names,
            total: Series::new(),
            errors: BTreeMap::new(),
            send_lag: new_histogram(),
            send_lag_max_us: 0,
            held_back: 0,
            held_back_max_us: 0,
            connections: ConnectionCounts::default(),
            users: BTreeMap::new(),
            start_unix: None,
            end_unix: None,
            target_users,
            subscribers: 0,
            delivery: DeliveryCounts::default(),
            connects: ConnectCounts::default(),
        }
    }

    /// Folds one thread's interval into the totals. A delta's counts land in the second that
    /// holds the middle of its interval; entries for names outside the table are dropped.
    pub(crate) fn merge(&mut self, delta: StatsDelta) {
        let (start, end) = (delta.start_unix.min(delta.end_unix), delta.end_unix);
        self.start_unix = Some(self.start_unix.map_or(start, |s| s.min(start)));
        self.end_unix = Some(self.end_unix.map_or(end, |e| e.max(end)));
        let second = ((start + end) / 2.0).floor() as i64;
        self.timeline.absorb(&delta, second);
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
        self.send_lag_max_us = self.send_lag_max_us.max(delta.send_lag_max_us);
        self.held_back += delta.held_back;
        self.connects.add(delta.connects);
        self.held_back_max_us = self.held_back_max_us.max(delta.held_back_max_us);
        self.delivery += delta.delivery;
        self.connections.add(&delta.connections);
        self.users.insert(delta.thread, delta.users_connected);
        if let Some(last) = self.last_second() {
            self.total.prune(last);
            self.series.iter_mut().for_each(|s| s.prune(last));
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
        let (lag, lag_max) = (&self.send_lag, self.send_lag_max_us);
        Snapshot {
            timestamp_unix: unix_now(),
            users_connected: self.users.values().sum(),
            target_users: self.target_users,
            rows,
            total: self.row(&self.total, "", AGGREGATED),
            errors,
            send_lag: LagStats {
                count: lag.len(),
                p50_us: quantile_in(lag, 0.5, lag.min(), lag_max),
                p99_us: quantile_in(lag, 0.99, lag.min(), lag_max),
                max_us: lag_max,
                held_back: self.held_back,
                held_back_max_us: self.held_back_max_us,
            },
            delivery: (self.subscribers > 0)
                .then(|| DeliveryStats::new(self.subscribers, self.delivery)),
            connections: self.connections,
            connects: self.connects,
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
    collector.subscribers = options.subscribers;
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
    let mut status = report::status::StatusLine::new(options.status_line, options.run_time);
    let mut next_status = options.status_line.then(|| started + STATUS_INTERVAL);
    loop {
        let deadline = [next_print, next_history, next_status]
            .into_iter()
            .flatten()
            .min();
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
            status.clear();
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
        if let Some(due) = next_status.filter(|due| *due <= now) {
            let rate = collector
                .timeline
                .latest()
                .map(|(p, names)| report::status::publish_rate(p, names));
            status.show(now.duration_since(started), &collector.snapshot(), rate);
            next_status = Some(next_due(due, STATUS_INTERVAL, now));
        }
    }
    status.clear();
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
        series: collector.timeline.finish(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::WorkerStats;

    const NAMES: [&str; 3] = ["connect", "disconnect", "publish:1:t"];

    fn collector() -> Collector {
        Collector::new(NAMES.iter().map(|s| s.to_string()).collect(), 10)
    }

    /// Two threads over the same second: thread 0 publishes 1..=500 µs, thread 1 501..=1000 µs
    /// (one of them failing), and each connects once (one refused).
    fn two_thread_deltas() -> (StatsDelta, StatsDelta) {
        let mut a = WorkerStats::with_start(0, NAMES.len(), 1000.0);
        let mut b = WorkerStats::with_start(1, NAMES.len(), 1000.0);
        for us in 1..=500 {
            a.record_success(2, us, 10);
        }
        for us in 501..=999 {
            b.record_success(2, us, 30);
        }
        b.record_failure(2, 1000, "timeout");
        a.record_success(0, 0, 0);
        b.record_failure(0, 0, "refused");
        a.record_send_lag(100);
        b.record_send_lag(20_000);
        a.set_users_connected(3);
        b.set_users_connected(4);
        (a.take_delta(1001.0), b.take_delta(1001.0))
    }

    #[test]
    fn merging_two_threads_gives_exact_totals_and_percentiles() {
        let mut c = collector();
        let (a, b) = two_thread_deltas();
        c.merge(a);
        c.merge(b);
        let s = c.snapshot();

        let names: Vec<&str> = s.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["connect", "publish:1:t"], "idle names are left out");
        let publish = &s.rows[1];
        assert_eq!(publish.method, "MQTT");
        assert_eq!((publish.num_requests, publish.num_failures), (1000, 1));
        assert_eq!((publish.min_us, publish.max_us), (1, 1000));
        assert_eq!(publish.avg_us, 500.5);
        assert_eq!(publish.median_us, 500);
        assert_eq!(publish.percentiles_us[0], 500);
        assert_eq!(publish.percentiles_us[7], 990, "p99");
        assert_eq!(publish.percentiles_us[10], 1000, "p100");
        assert_eq!(
            publish.avg_content_length,
            (500.0 * 10.0 + 499.0 * 30.0) / 1000.0
        );
        assert_eq!(publish.total_rps, 1000.0, "1000 requests over one second");
        assert_eq!(publish.total_fail_per_sec, 1.0);

        let connect = &s.rows[0];
        assert_eq!((connect.num_requests, connect.num_failures), (2, 1));
        assert_eq!(connect.fail_ratio(), 0.5);

        assert_eq!(s.total.name, "Aggregated");
        assert_eq!(s.total.method, "");
        assert_eq!((s.total.num_requests, s.total.num_failures), (1002, 2));
        assert_eq!((s.total.min_us, s.total.max_us), (0, 1000));

        let errors: Vec<(&str, &str, u64)> = s
            .errors
            .iter()
            .map(|e| (e.name.as_str(), e.error.as_str(), e.occurrences))
            .collect();
        assert_eq!(
            errors,
            [("connect", "refused", 1), ("publish:1:t", "timeout", 1)]
        );
        assert_eq!(s.errors[0].first_seen_unix, 1001.0);

        assert_eq!(s.users_connected, 7);
        assert_eq!(s.target_users, 10);
        assert_eq!(s.send_lag.count, 2);
        assert_eq!(s.send_lag.max_us, 20_000);
        assert!(s.send_lag.is_bottleneck(), "p99 is the 20 ms sample");
    }

    #[test]
    fn current_rate_averages_the_locust_window() {
        let mut c = collector();
        let mut w = WorkerStats::with_start(0, NAMES.len(), 1000.0);
        // 10 publishes a second for 20 s, then 100 a second for the last 2 s, which the
        // window leaves out as possibly incomplete.
        for k in 1..=22 {
            let n = if k > 20 { 100 } else { 10 };
            for _ in 0..n {
                w.record_success(2, 500, 0);
            }
            if k % 4 == 0 {
                w.record_failure(2, 500, "x");
            }
            c.merge(w.take_delta(1000.0 + k as f64));
        }
        let s = c.snapshot();
        let publish = &s.rows[0];
        // last second 1022, window [1010, 1020) = deltas k = 11..=20: 10 a second plus
        // failures at k = 12, 16, 20.
        assert_eq!(publish.current_rps, 10.3);
        assert_eq!(publish.current_fail_per_sec, 0.3);
        assert_eq!(publish.current_percentiles_us.map(|p| p[0]), Some(500));
        assert_eq!(publish.num_requests, 20 * 10 + 2 * 100 + 5);
        assert!(c.total.per_second.len() <= KEEP_SECONDS as usize + 1);
        assert!(c.total.recent.len() <= PERCENTILE_WINDOW as usize + 1);
    }

    #[test]
    fn empty_run_reports_zeros_without_rows() {
        let s = collector().snapshot();
        assert!(s.rows.is_empty());
        assert_eq!(s.total.num_requests, 0);
        assert_eq!(s.total.current_rps, 0.0);
        assert_eq!(s.total.current_percentiles_us, None);
        assert_eq!(s.send_lag.count, 0);
    }

    /// A collector writing CSVs under `prefix` and printing only its final report.
    fn spawn_quiet_collector(
        prefix: &std::path::Path,
        target_users: u64,
    ) -> (
        crossbeam_channel::Sender<StatsMsg>,
        std::thread::JoinHandle<crate::stats::RunSummary>,
    ) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = crate::stats::spawn_collector(
            NAMES.iter().map(|s| s.to_string()).collect(),
            rx,
            ReportOptions {
                csv_prefix: Some(prefix.to_path_buf()),
                only_summary: true,
                print_interval: Duration::from_secs(2),
                status_line: false,
                run_time: None,
                target_users,
                subscribers: 0,
            },
        );
        (tx, handle)
    }

    #[test]
    fn collector_thread_reports_and_writes_csvs_when_senders_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let prefix = dir.path().join("run");
        let (tx, handle) = spawn_quiet_collector(&prefix, 10);
        let (a, b) = two_thread_deltas();
        let tx2 = tx.clone();
        tx.send(StatsMsg::Delta(a)).expect("collector alive");
        tx2.send(StatsMsg::Delta(b)).expect("collector alive");
        drop(tx);
        drop(tx2);
        let summary = handle.join().expect("collector thread");

        assert_eq!(summary.total_requests, 1002);
        assert_eq!(summary.total_failures, 2);
        assert_eq!(summary.send_lag_p99_us, 20_000);
        assert_eq!(summary.final_stats.rows.len(), 2);

        let read = |suffix: &str| {
            std::fs::read_to_string(report::csv::csv_path(&prefix, suffix)).expect("csv written")
        };
        let stats = read("_stats.csv");
        let lines: Vec<&str> = stats.split("\r\n").collect();
        assert_eq!(lines[0], report::csv::STATS_HEADER);
        assert!(lines[1].starts_with("MQTT,connect,2,1,"), "{}", lines[1]);
        assert!(lines[2].starts_with("MQTT,publish:1:t,1000,1,0.50,0.50,0.00,1.00,"));
        assert!(lines[3].starts_with(",Aggregated,1002,2,"), "{}", lines[3]);
        let history = read("_stats_history.csv");
        let history: Vec<&str> = history.split("\r\n").collect();
        assert_eq!(history[0], report::csv::HISTORY_HEADER);
        assert!(
            history[1].contains(",7,MQTT,connect,"),
            "users connected: {}",
            history[1]
        );
        assert!(history[3].contains(",7,,Aggregated,"), "{}", history[3]);
        let failures = read("_failures.csv");
        assert!(
            failures.contains("MQTT,publish:1:t,timeout,1,"),
            "{failures}"
        );
        assert_eq!(read("_exceptions.csv"), "Count,Message,Traceback,Nodes\r\n");
    }

    #[test]
    fn missed_ticks_are_skipped_not_bunched() {
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        assert_eq!(next_due(t0, second, t0), t0 + second);
        assert_eq!(next_due(t0, second, t0 + 5 * second), t0 + 6 * second);
    }

    #[test]
    fn history_gets_a_row_set_every_second_while_running() {
        let dir = tempfile::tempdir().expect("tempdir");
        let prefix = dir.path().join("h");
        let history_path = report::csv::csv_path(&prefix, "_stats_history.csv");
        let aggregated_rows = || {
            std::fs::read_to_string(&history_path)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(",Aggregated,"))
                .count()
        };
        let spawned = Instant::now();
        let (tx, handle) = spawn_quiet_collector(&prefix, 1);
        let (a, _) = two_thread_deltas();
        tx.send(StatsMsg::Delta(a)).expect("collector alive");
        // The file is flushed at every row set: wait (however loaded the machine) for the first
        // one, written while the sender is still alive, so it is an interval row set, not the
        // final one.
        let deadline = spawned + Duration::from_secs(30);
        let mut while_running = aggregated_rows();
        while while_running == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            while_running = aggregated_rows();
        }
        let seen_at = spawned.elapsed();
        assert!(while_running >= 1, "no history row set within 30 s");
        assert!(
            seen_at >= HISTORY_INTERVAL,
            "the first row set is due {HISTORY_INTERVAL:?} after the start, seen at {seen_at:?}"
        );
        drop(tx);
        let summary = handle.join().expect("collector thread");
        assert_eq!(summary.total_requests, 501);
        // The end adds exactly one row set to what was written while running. How many interval
        // row sets came between our look and the disconnect depends on scheduling, so the
        // count is bounded by the seconds that passed, not pinned.
        let interval_sets_max = spawned.elapsed().as_secs() as usize;
        let total = aggregated_rows();
        let history = std::fs::read_to_string(&history_path).expect("history written");
        assert!(
            (while_running + 1..=interval_sets_max + 1).contains(&total),
            "{while_running} row set(s) while running, at most {interval_sets_max} interval ones, \
             then one at the end; got {total}:\n{history}"
        );
        // Every row set is complete: one row per name that has requests, and Aggregated.
        let rows = history.lines().skip(1).count();
        assert_eq!(
            rows,
            total * 3,
            "connect, publish:1:t, Aggregated:\n{history}"
        );
    }
}
