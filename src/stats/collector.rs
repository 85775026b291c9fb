//! The collector: merges every worker's deltas into run totals per name and Aggregated, and
//! keeps the last seconds for Locust's "current" figures. It prints nothing: the reporting
//! thread ([`crate::reporter`]) asks it for [`Snapshot`]s and hands them to `report`.

use std::collections::{BTreeMap, VecDeque};

use hdrhistogram::Histogram;

use super::entry::{Entry, new_histogram, quantile_in};
use super::recorder::{FlowGauges, StatsDelta};
use super::series::Timeline;
use super::series::{SeriesPoint, TimeSeries};
use super::snapshot::{AGGREGATED, ErrorRow, LagStats, PERCENTILES, RowStats, Snapshot};
use super::stage_totals::{StageFigures, StageSpans};
use super::{
    ConnectCounts, ConnectionCounts, DeliveryCounts, DeliveryStats, METHOD, NameId, RequestKind,
};
use crate::unix_time::unix_now;

/// Seconds of per-second data kept: Locust's 10 s window plus its 2 s settling margin, and one
/// spare second.
const KEEP_SECONDS: i64 = 13;
/// The "current" rate averages seconds `[last - 12, last - 2)`, as Locust does: the two latest
/// seconds may still be waiting for other threads' deltas.
const RATE_WINDOW_START: i64 = 12;
const RATE_WINDOW_END: i64 = 2;
/// The "current" percentiles cover the last 10 seconds.
const PERCENTILE_WINDOW: i64 = 10;

/// One name's (or the total's) run totals plus its recent seconds.
#[derive(Debug)]
struct Series {
    total: Entry,
    /// second -> (requests, failures)
    per_second: BTreeMap<i64, (u64, u64)>,
    /// (second, response times recorded in that second), oldest first; empty in the
    /// Aggregated series.
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

    /// Adds `entry` to the run total and to its second's counts (what the Aggregated series
    /// keeps: its recent response times are summed from the names' at report time).
    fn count(&mut self, entry: &Entry, second: i64) {
        self.total.merge(entry);
        let counts = self.per_second.entry(second).or_default();
        counts.0 += entry.num_requests;
        counts.1 += entry.num_failures;
    }

    /// Counts `entry` and keeps its histogram for the "current" percentiles. The histogram
    /// is moved, not copied: a fresh one costs as much as zeroing a few hundred KiB.
    fn absorb(&mut self, entry: Entry, second: i64) {
        self.count(&entry, second);
        match self.recent.iter_mut().find(|(s, _)| *s == second) {
            // Same bounds on both sides, so `add` cannot fail.
            Some((_, h)) => {
                let _ = h.add(&entry.histogram);
            }
            None => {
                let at = self.recent.partition_point(|(s, _)| *s < second);
                self.recent.insert(at, (second, entry.histogram));
            }
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
}

/// Percentiles of the response times recorded from second `since` on, over `recent`
/// (one or several names' per-second histograms); `None` without any.
fn window_percentiles<'a>(
    recent: impl Iterator<Item = &'a (i64, Histogram<u64>)>,
    since: i64,
) -> Option<[u64; 11]> {
    let mut window: Option<Histogram<u64>> = None;
    for (_, h) in recent.filter(|(s, _)| *s >= since) {
        match window.as_mut() {
            Some(w) => {
                let _ = w.add(h);
            }
            None => window = Some(h.clone()),
        }
    }
    let window = window.filter(|w| !w.is_empty())?;
    let (min, max) = (window.min(), window.max());
    Some(PERCENTILES.map(|q| quantile_in(&window, q, min, max)))
}

#[derive(Debug)]
struct ErrorTotals {
    occurrences: u64,
    first_seen: f64,
    last_seen: f64,
}

/// Run totals merged from every thread's deltas.
#[derive(Debug)]
pub struct Collector {
    names: Vec<String>,
    /// The kind of each name, read once from the name table.
    kinds: Vec<RequestKind>,
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
    /// Latest in-flight and held-back gauges per thread.
    flow: BTreeMap<usize, FlowGauges>,
    start_unix: Option<f64>,
    end_unix: Option<f64>,
    target_users: u64,
    /// Subscriber connections of the run (0: no delivery figures).
    pub subscribers: u64,
    delivery: DeliveryCounts,
    connects: ConnectCounts,
    /// One point per second for the JSON and HTML reports.
    timeline: Timeline,
}

impl Collector {
    /// An empty collector for the run's name table and its target number of users.
    pub fn new(names: Vec<String>, target_users: u64) -> Self {
        Collector {
            series: names.iter().map(|_| Series::new()).collect(),
            timeline: Timeline::new(names.clone()),
            kinds: names.iter().map(|n| RequestKind::of_name(n)).collect(),
            names,
            total: Series::new(),
            errors: BTreeMap::new(),
            send_lag: new_histogram(),
            send_lag_max_us: 0,
            held_back: 0,
            held_back_max_us: 0,
            connections: ConnectionCounts::default(),
            users: BTreeMap::new(),
            flow: BTreeMap::new(),
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
    pub fn merge(&mut self, mut delta: StatsDelta) {
        let (start, end) = (delta.start_unix.min(delta.end_unix), delta.end_unix);
        self.start_unix = Some(self.start_unix.map_or(start, |s| s.min(start)));
        self.end_unix = Some(self.end_unix.map_or(end, |e| e.max(end)));
        let second = ((start + end) / 2.0).floor() as i64;
        if let Some(lag) = &delta.send_lag {
            let _ = self.send_lag.add(lag);
        }
        self.timeline.absorb(&mut delta, second);
        for (series, entry) in self
            .series
            .iter_mut()
            .zip(std::mem::take(&mut delta.entries))
        {
            if let Some(entry) = entry {
                self.total.count(&entry, second);
                series.absorb(entry, second);
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
        self.send_lag_max_us = self.send_lag_max_us.max(delta.send_lag_max_us);
        self.held_back += delta.held_back;
        self.connects.add(delta.connects);
        self.held_back_max_us = self.held_back_max_us.max(delta.held_back_max_us);
        self.delivery += delta.delivery;
        self.connections.add(&delta.connections);
        self.users.insert(delta.thread, delta.users_connected);
        self.flow.insert(delta.thread, delta.flow);
        if let Some(last) = self.last_second() {
            self.total.prune(last);
            self.series.iter_mut().for_each(|s| s.prune(last));
        }
    }

    /// Forgets the request rows, the totals and the errors (Locust's `reset_all`); gauges,
    /// connection and delivery counts and the per-second timeline stay.
    pub(crate) fn reset_requests(&mut self) {
        self.series.iter_mut().for_each(|s| *s = Series::new());
        self.total = Series::new();
        self.errors.clear();
    }

    fn last_second(&self) -> Option<i64> {
        self.end_unix.map(|e| e.floor() as i64)
    }

    /// The latest closed second of the time series, with the kind of each name, for a live
    /// rate.
    pub fn latest_point(&self) -> Option<(&SeriesPoint, &[RequestKind])> {
        self.timeline
            .latest()
            .map(|(point, _)| (point, self.kinds.as_slice()))
    }

    /// `--stages`: from now on each closed second of the time series is also merged into the
    /// stage of `spans` it falls in (see [`Collector::finish`]).
    pub fn track_stages(&mut self, spans: StageSpans) {
        self.timeline.track_stages(spans);
    }

    /// Closes the time series at the end of the run.
    pub fn finish_series(self) -> TimeSeries {
        self.finish().0
    }

    /// Closes the time series at the end of the run, with each stage's figures when
    /// [`Collector::track_stages`] was called (empty otherwise).
    pub fn finish(self) -> (TimeSeries, Vec<StageFigures>) {
        self.timeline.finish()
    }

    /// Each name's run totals (failures included), in name-table order, skipping names with
    /// no request: kind, name, requests, response times (µs) and their exact sum.
    pub fn name_totals(
        &self,
    ) -> impl Iterator<Item = (RequestKind, &str, u64, &Histogram<u64>, u64)> {
        self.series
            .iter()
            .zip(self.names.iter().zip(&self.kinds))
            .filter(|(s, _)| !s.total.is_empty())
            .map(|(s, (name, kind))| {
                let t = &s.total;
                (
                    *kind,
                    name.as_str(),
                    t.num_requests,
                    &t.histogram,
                    t.total_us,
                )
            })
    }

    /// Failures so far by error text, over all names (a text may repeat across names).
    pub fn failures_by_reason(&self) -> impl Iterator<Item = (&str, u64)> {
        self.errors
            .iter()
            .map(|((_, text), e)| (text.as_str(), e.occurrences))
    }

    /// Gauges now, summed over threads: users connected, publishes in flight and held back.
    pub fn gauges(&self) -> (u64, FlowGauges) {
        let flow = self
            .flow
            .values()
            .fold(FlowGauges::default(), |a, f| FlowGauges {
                in_flight: a.in_flight + f.in_flight,
                held_back: a.held_back + f.held_back,
            });
        (self.users.values().sum(), flow)
    }

    /// Connection life and delivery counts so far.
    pub fn counts(&self) -> (ConnectionCounts, DeliveryCounts) {
        (self.connections, self.delivery)
    }

    /// Everything the reports show, as of the deltas merged so far.
    pub fn snapshot(&self) -> Snapshot {
        let mut rows: Vec<RowStats> = self
            .series
            .iter()
            .zip(self.names.iter().zip(&self.kinds))
            .filter(|(s, _)| !s.total.is_empty())
            .map(|(s, (name, kind))| self.row(s, Some(*kind), name))
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
            total: self.row(&self.total, None, AGGREGATED),
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

    /// A row's figures; `kind` is `None` for the Aggregated row (which has no method).
    fn row(&self, series: &Series, kind: Option<RequestKind>, name: &str) -> RowStats {
        let t = &series.total;
        let (current_rps, current_fail_per_sec, current_percentiles_us) = match self.last_second() {
            Some(last) => {
                let first = self.start_unix.map_or(last, |s| s.floor() as i64);
                let from = (last - RATE_WINDOW_START).max(first);
                let (rps, fps) = series.rates(from, last - RATE_WINDOW_END);
                let since = last - PERCENTILE_WINDOW;
                let pct = match kind {
                    Some(_) => window_percentiles(series.recent.iter(), since),
                    None => window_percentiles(self.series.iter().flat_map(|s| &s.recent), since),
                };
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
            method: if kind.is_some() { METHOD } else { "" }.to_owned(),
            name: name.to_owned(),
            kind,
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

/// Deltas shared by the collector's tests and the reporting thread's.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::StatsDelta;
    use crate::stats::WorkerStats;

    /// The name table of the fixtures.
    pub(crate) const NAMES: [&str; 3] = ["connect", "disconnect", "publish:1:t"];

    /// Two threads over the same second: thread 0 publishes 1..=500 µs, thread 1 501..=1000 µs
    /// (one of them failing), and each connects once (one refused).
    pub(crate) fn two_thread_deltas() -> (StatsDelta, StatsDelta) {
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
}

#[cfg(test)]
mod tests {
    use super::fixtures::{NAMES, two_thread_deltas};
    use super::*;
    use crate::stats::WorkerStats;

    fn collector() -> Collector {
        Collector::new(NAMES.iter().map(|s| s.to_string()).collect(), 10)
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
        // The Aggregated window is summed over the names' recent histograms: the two
        // connects (0 µs, kept as 1 µs by the histogram) plus the 1000 publishes.
        let current = s.total.current_percentiles_us.expect("a current window");
        assert_eq!((current[0], current[10]), (499, 1000));
        let publish_current = publish.current_percentiles_us.expect("a current window");
        assert_eq!((publish_current[0], publish_current[10]), (500, 1000));
        assert_eq!(
            s.total.percentiles_us, current,
            "one second: the window is the run"
        );

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
        assert!(
            c.total.recent.is_empty(),
            "the Aggregated window is summed when asked"
        );
        assert!(c.series[2].recent.len() <= PERCENTILE_WINDOW as usize + 1);
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
}
