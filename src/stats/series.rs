//! The run over time for the JSON and HTML reports: one point per second (requests and failures
//! per name, response-time p50/p95/p99 of that second, users connected, send-lag p99), kept by
//! the collector, with memory bounded by merging old points pairwise past [`MAX_POINTS`].

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::RequestKind;
use super::entry::quantile_in;
use super::recorder::StatsDelta;
use super::stage_totals::{ClosedSecond, StageFigures, StageSpans, StageTotals};

/// Most points kept: 30 minutes at one point per second. Past that, adjacent points merge
/// pairwise and the resolution doubles (2 s, 4 s, ...), so a 24 h run keeps at most this many.
pub const MAX_POINTS: usize = 1800;

/// A second is final once deltas two seconds newer arrived (other threads' deltas for it may
/// still be on their way until then), as the collector's "current" rates also assume.
const SETTLE_SECONDS: i64 = 2;

/// One point of the time series: `seconds` seconds starting at `start_unix`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeriesPoint {
    /// First whole Unix second covered.
    pub start_unix: i64,
    /// Seconds covered (1, or a power of two after downsampling).
    pub seconds: u32,
    /// Requests per name, failures included, indexed like [`TimeSeries::names`].
    pub requests: Vec<u64>,
    /// Failures per name.
    pub failures: Vec<u64>,
    /// Response-time percentiles over every name's requests in the point, microseconds. After
    /// downsampling, the larger of the merged points' (an upper bound).
    pub p50_us: u64,
    /// 95th percentile, as `p50_us`.
    pub p95_us: u64,
    /// 99th percentile, as `p50_us`.
    pub p99_us: u64,
    /// Users connected at the end of the point (sum of the threads' latest gauges).
    pub users: u64,
    /// 99th percentile of mqload's send lag in the point, microseconds (largest when merged).
    pub send_lag_p99_us: u64,
}

impl SeriesPoint {
    /// Requests over all names.
    pub fn total_requests(&self) -> u64 {
        self.requests.iter().sum()
    }

    /// Failures over all names.
    pub fn total_failures(&self) -> u64 {
        self.failures.iter().sum()
    }

    /// Folds the next point (in time) into this one.
    fn absorb(&mut self, next: &SeriesPoint) {
        self.seconds += next.seconds;
        for (a, b) in self.requests.iter_mut().zip(&next.requests) {
            *a += b;
        }
        for (a, b) in self.failures.iter_mut().zip(&next.failures) {
            *a += b;
        }
        self.p50_us = self.p50_us.max(next.p50_us);
        self.p95_us = self.p95_us.max(next.p95_us);
        self.p99_us = self.p99_us.max(next.p99_us);
        self.users = next.users;
        self.send_lag_p99_us = self.send_lag_p99_us.max(next.send_lag_p99_us);
    }
}

/// The finished time series of a run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TimeSeries {
    /// Request names, in the order of each point's `requests` and `failures`.
    pub names: Vec<String>,
    /// Seconds per point for points added from now on (1 until the first downsampling).
    pub resolution_s: u32,
    /// Points, oldest first.
    pub points: Vec<SeriesPoint>,
}

/// One second still receiving deltas.
#[derive(Debug)]
struct Open {
    requests: Vec<u64>,
    failures: Vec<u64>,
    /// `None` until a delta brings response times (or send lags) for this second.
    latency: Option<Histogram<u64>>,
    send_lag: Option<Histogram<u64>>,
    users: u64,
    /// Publish requests, failures included.
    publishes: u64,
    /// Publish response times, kept only with `--stages` (for the per-stage percentiles).
    publish: Option<Histogram<u64>>,
}

/// Adds `source` into `slot`, or starts it with a copy: cheaper than a zeroed histogram plus
/// an add.
fn add_into(slot: &mut Option<Histogram<u64>>, source: &Histogram<u64>) {
    match slot {
        // Same bounds on both sides, so `add` cannot fail.
        Some(h) => {
            let _ = h.add(source);
        }
        None => *slot = Some(source.clone()),
    }
}

/// Builds the [`TimeSeries`] from deltas as the collector merges them.
#[derive(Debug)]
pub(crate) struct Timeline {
    series: TimeSeries,
    open: BTreeMap<i64, Open>,
    /// Latest users-connected gauge per thread.
    gauges: BTreeMap<usize, u64>,
    max_points: usize,
    /// Whether each name is a publish row.
    publish_names: Vec<bool>,
    /// `--stages`: each closed second also goes to its stage.
    stages: Option<StageTotals>,
}

impl Timeline {
    pub(crate) fn new(names: Vec<String>) -> Self {
        Self::with_max_points(names, MAX_POINTS)
    }

    pub(crate) fn with_max_points(names: Vec<String>, max_points: usize) -> Self {
        Timeline {
            publish_names: names
                .iter()
                .map(|n| RequestKind::of_name(n) == RequestKind::Publish)
                .collect(),
            stages: None,
            series: TimeSeries {
                names,
                resolution_s: 1,
                points: Vec::new(),
            },
            open: BTreeMap::new(),
            gauges: BTreeMap::new(),
            max_points: max_points.max(2),
        }
    }

    /// Merges each second closed from now on into the stage of `spans` it falls in.
    pub(crate) fn track_stages(&mut self, spans: StageSpans) {
        self.stages = Some(StageTotals::new(spans));
    }

    /// Adds one thread's delta to the second it belongs to, and closes seconds that are final.
    /// Takes the delta's send-lag histogram (the caller has added it to its run total).
    pub(crate) fn absorb(&mut self, delta: &mut StatsDelta, second: i64) {
        self.gauges.insert(delta.thread, delta.users_connected);
        let users: u64 = self.gauges.values().sum();
        let names = self.series.names.len();
        // A delta for a second already closed (a very late thread) joins the oldest open one.
        let second = match self.series.points.last() {
            Some(p) if second < p.start_unix + i64::from(p.seconds) => {
                p.start_unix + i64::from(p.seconds)
            }
            _ => second,
        };
        let open = self.open.entry(second).or_insert_with(|| Open {
            requests: vec![0; names],
            failures: vec![0; names],
            latency: None,
            send_lag: None,
            users: 0,
            publishes: 0,
            publish: None,
        });
        let by_stage = self.stages.is_some();
        for (i, entry) in delta.entries.iter().enumerate().take(names) {
            if let Some(e) = entry {
                open.requests[i] += e.num_requests;
                open.failures[i] += e.num_failures;
                add_into(&mut open.latency, &e.histogram);
                if self.publish_names[i] {
                    open.publishes += e.num_requests;
                    if by_stage {
                        add_into(&mut open.publish, &e.histogram);
                    }
                }
            }
        }
        if let Some(lag) = delta.send_lag.take() {
            match open.send_lag.as_mut() {
                Some(h) => {
                    let _ = h.add(&lag);
                }
                None => open.send_lag = Some(lag),
            }
        }
        open.users = users;
        let newest = self.open.keys().next_back().copied().unwrap_or(second);
        while let Some(oldest) = self.open.keys().next().copied() {
            if oldest > newest - SETTLE_SECONDS {
                break;
            }
            self.close(oldest);
        }
    }

    /// The newest closed point and the request names (for a live display).
    pub(crate) fn latest(&self) -> Option<(&SeriesPoint, &[String])> {
        self.series
            .points
            .last()
            .map(|p| (p, self.series.names.as_slice()))
    }

    /// Closes every open second: the run is over. With `--stages`, each stage's figures too
    /// (empty without).
    pub(crate) fn finish(mut self) -> (TimeSeries, Vec<StageFigures>) {
        while let Some(oldest) = self.open.keys().next().copied() {
            self.close(oldest);
        }
        let stages = self.stages.as_ref().map(StageTotals::figures);
        (self.series, stages.unwrap_or_default())
    }

    fn close(&mut self, second: i64) {
        let Some(open) = self.open.remove(&second) else {
            return;
        };
        if let Some(stages) = self.stages.as_mut() {
            stages.add(ClosedSecond {
                second,
                requests: open.requests.iter().sum(),
                failures: open.failures.iter().sum(),
                publishes: open.publishes,
                users: open.users,
                publish: open.publish.as_ref().filter(|h| !h.is_empty()),
                send_lag: open.send_lag.as_ref().filter(|h| !h.is_empty()),
            });
        }
        let q = |f: f64| match &open.latency {
            Some(h) if !h.is_empty() => quantile_in(h, f, h.min(), h.max()),
            _ => 0,
        };
        let point = SeriesPoint {
            start_unix: second,
            seconds: 1,
            p50_us: q(0.5),
            p95_us: q(0.95),
            p99_us: q(0.99),
            requests: open.requests,
            failures: open.failures,
            users: open.users,
            send_lag_p99_us: match &open.send_lag {
                Some(lag) if !lag.is_empty() => quantile_in(lag, 0.99, lag.min(), lag.max()),
                _ => 0,
            },
        };
        self.push(point);
    }

    fn push(&mut self, point: SeriesPoint) {
        let resolution = self.series.resolution_s;
        let points = &mut self.series.points;
        match points.last_mut() {
            // The last point still has room at the current resolution and is adjacent.
            Some(last)
                if last.seconds < resolution
                    && point.start_unix == last.start_unix + i64::from(last.seconds) =>
            {
                last.absorb(&point)
            }
            _ => points.push(point),
        }
        if points.len() > self.max_points {
            self.downsample();
        }
    }

    /// Merges points pairwise and doubles the resolution.
    fn downsample(&mut self) {
        let old = std::mem::take(&mut self.series.points);
        let mut merged: Vec<SeriesPoint> = Vec::with_capacity(old.len() / 2 + 1);
        for pair in old.chunks(2) {
            let mut p = pair[0].clone();
            if let Some(next) = pair.get(1) {
                p.absorb(next);
            }
            merged.push(p);
        }
        self.series.points = merged;
        self.series.resolution_s = self.series.resolution_s.saturating_mul(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::WorkerStats;

    fn names() -> Vec<String> {
        vec!["connect".into(), "publish".into()]
    }

    /// A delta of `thread` for second `s` with `n` publishes at 1..=n ms and `users` connected.
    fn delta(thread: usize, s: i64, n: u64, fails: u64, users: u64) -> StatsDelta {
        let mut w = WorkerStats::with_start(thread, 2, s as f64);
        for i in 1..=n {
            w.record_success(1, i * 1000, 0);
        }
        for _ in 0..fails {
            w.record_failure(1, 1000, "timeout");
        }
        w.record_send_lag(50 * (thread as u64 + 1));
        w.set_users_connected(users);
        w.take_delta(s as f64 + 1.0)
    }

    #[test]
    fn one_point_per_second_summed_over_threads_once_settled() {
        let mut t = Timeline::new(names());
        t.absorb(&mut delta(0, 100, 100, 0, 3), 100);
        t.absorb(&mut delta(1, 100, 100, 2, 4), 100);
        t.absorb(&mut delta(0, 101, 10, 0, 3), 101);
        assert!(t.series.points.is_empty(), "second 100 is not settled yet");
        t.absorb(&mut delta(0, 102, 10, 0, 5), 102);
        assert_eq!(t.series.points.len(), 1, "second 100 closed");
        let (s, _) = t.finish();
        assert_eq!(s.points.len(), 3);
        let p = &s.points[0];
        assert_eq!((p.start_unix, p.seconds), (100, 1));
        assert_eq!((p.total_requests(), p.total_failures()), (202, 2));
        assert_eq!(p.requests, vec![0, 202]);
        assert_eq!(p.users, 7, "both threads' gauges");
        assert!((49_000..=51_000).contains(&p.p50_us), "{}", p.p50_us);
        assert!((98_000..=100_100).contains(&p.p99_us), "{}", p.p99_us);
        assert!(p.p50_us <= p.p95_us && p.p95_us <= p.p99_us);
        assert_eq!(p.send_lag_p99_us, 100);
        assert_eq!(s.points[2].users, 9, "thread 1's last gauge still counts");
    }

    #[test]
    fn late_delta_for_a_closed_second_is_not_lost() {
        let mut t = Timeline::new(names());
        t.absorb(&mut delta(0, 100, 5, 0, 1), 100);
        t.absorb(&mut delta(0, 103, 5, 0, 1), 103);
        t.absorb(&mut delta(1, 100, 7, 0, 1), 100);
        let (s, _) = t.finish();
        let total: u64 = s.points.iter().map(SeriesPoint::total_requests).sum();
        assert_eq!(total, 17);
        assert_eq!(s.points[0].total_requests(), 5);
    }

    #[test]
    fn long_runs_stay_bounded_and_keep_every_request() {
        let mut t = Timeline::with_max_points(names(), 16);
        for s in 0..1000 {
            t.absorb(&mut delta(0, s, 2, 1, 1), s);
        }
        let (s, _) = t.finish();
        assert!(s.points.len() <= 16, "{} points", s.points.len());
        assert!(s.resolution_s >= 64, "resolution {}", s.resolution_s);
        let covered: u32 = s.points.iter().map(|p| p.seconds).sum();
        assert_eq!(covered, 1000);
        let total: u64 = s.points.iter().map(SeriesPoint::total_requests).sum();
        assert_eq!(total, 3000);
        for w in s.points.windows(2) {
            assert_eq!(w[0].start_unix + i64::from(w[0].seconds), w[1].start_unix);
        }
    }
}
