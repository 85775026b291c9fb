//! `--stages` figures per stage: each closed second of the time series (publish latency and
//! send-lag histograms, requests, users) is merged into the stage its middle falls in, so a
//! stage's percentiles are its own, not its worst second's. Once a second per stage touched,
//! never per message; memory is one histogram pair per stage that saw data.

use hdrhistogram::Histogram;

use super::entry::quantile_in;

/// Where the stages lie in time, as plain numbers (the `stages` room above turns a profile
/// into this): the run's start and each stage's end, in seconds from it.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSpans {
    start_unix: f64,
    ends_s: Vec<f64>,
}

impl StageSpans {
    /// Stages ending `ends_s` seconds (non-decreasing) after `start_unix`.
    pub fn new(start_unix: f64, ends_s: Vec<f64>) -> StageSpans {
        StageSpans { start_unix, ends_s }
    }

    /// The stage of the whole Unix second `second`: the one its middle falls in. A second
    /// before the start counts in the first stage, one past the end in the last.
    pub fn stage_of(&self, second: i64) -> usize {
        let middle = second as f64 + 0.5 - self.start_unix;
        self.ends_s
            .iter()
            .position(|end| middle < *end)
            .unwrap_or(self.ends_s.len().saturating_sub(1))
    }

    fn len(&self) -> usize {
        self.ends_s.len()
    }
}

/// What one stage measured, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StageFigures {
    /// Seconds of the series that fell in the stage.
    pub seconds: u32,
    /// Mean users connected over those seconds.
    pub users_mean: f64,
    /// Users connected at the end of its last second.
    pub users_at_end: u64,
    /// Requests of every name, failures included.
    pub requests: u64,
    /// Failures of every name.
    pub failures: u64,
    /// Publish requests, failures included.
    pub publishes: u64,
    /// Publish latency percentiles over the whole stage, microseconds: p50, p90, p99, p99.9.
    pub publish_us: [u64; 4],
    /// Send-lag p99 over the whole stage, microseconds.
    pub send_lag_p99_us: u64,
    /// The largest one-second publish p99 in the stage: a spike its own p99 can hide.
    pub p99_us_worst_second: u64,
    /// The largest one-second send-lag p99 in the stage.
    pub send_lag_p99_us_worst_second: u64,
}

/// The quantiles behind [`StageFigures::publish_us`].
pub const STAGE_QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];

/// One closed second, as the time series hands it over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClosedSecond<'a> {
    pub(crate) second: i64,
    pub(crate) requests: u64,
    pub(crate) failures: u64,
    pub(crate) publishes: u64,
    pub(crate) users: u64,
    pub(crate) publish: Option<&'a Histogram<u64>>,
    pub(crate) send_lag: Option<&'a Histogram<u64>>,
}

/// One stage's running sums.
#[derive(Debug, Default)]
struct Stage {
    seconds: u32,
    user_seconds: u64,
    users_at_end: u64,
    requests: u64,
    failures: u64,
    publishes: u64,
    publish: Option<Histogram<u64>>,
    send_lag: Option<Histogram<u64>>,
    p99_us_worst_second: u64,
    send_lag_p99_us_worst_second: u64,
}

/// Adds `source` into `slot`, or starts it with a copy.
fn add_into(slot: &mut Option<Histogram<u64>>, source: &Histogram<u64>) {
    match slot {
        // Same bounds on both sides, so `add` cannot fail.
        Some(h) => {
            let _ = h.add(source);
        }
        None => *slot = Some(source.clone()),
    }
}

fn quantile(h: Option<&Histogram<u64>>, q: f64) -> u64 {
    h.map_or(0, |h| quantile_in(h, q, h.min(), h.max()))
}

/// The per-stage sums, fed one closed second at a time.
#[derive(Debug)]
pub(crate) struct StageTotals {
    spans: StageSpans,
    stages: Vec<Stage>,
}

impl StageTotals {
    pub(crate) fn new(spans: StageSpans) -> StageTotals {
        let stages = (0..spans.len()).map(|_| Stage::default()).collect();
        StageTotals { spans, stages }
    }

    /// Merges one closed second into its stage.
    pub(crate) fn add(&mut self, closed: ClosedSecond<'_>) {
        let index = self.spans.stage_of(closed.second);
        let Some(stage) = self.stages.get_mut(index) else {
            return;
        };
        stage.seconds += 1;
        stage.user_seconds += closed.users;
        stage.users_at_end = closed.users;
        stage.requests += closed.requests;
        stage.failures += closed.failures;
        stage.publishes += closed.publishes;
        if let Some(h) = closed.publish {
            stage.p99_us_worst_second = stage.p99_us_worst_second.max(quantile(Some(h), 0.99));
            add_into(&mut stage.publish, h);
        }
        if let Some(h) = closed.send_lag {
            stage.send_lag_p99_us_worst_second = stage
                .send_lag_p99_us_worst_second
                .max(quantile(Some(h), 0.99));
            add_into(&mut stage.send_lag, h);
        }
    }

    /// Each stage's figures, in profile order.
    pub(crate) fn figures(&self) -> Vec<StageFigures> {
        self.stages
            .iter()
            .map(|s| StageFigures {
                seconds: s.seconds,
                users_mean: if s.seconds == 0 {
                    0.0
                } else {
                    s.user_seconds as f64 / f64::from(s.seconds)
                },
                users_at_end: s.users_at_end,
                requests: s.requests,
                failures: s.failures,
                publishes: s.publishes,
                publish_us: STAGE_QUANTILES.map(|q| quantile(s.publish.as_ref(), q)),
                send_lag_p99_us: quantile(s.send_lag.as_ref(), 0.99),
                p99_us_worst_second: s.p99_us_worst_second,
                send_lag_p99_us_worst_second: s.send_lag_p99_us_worst_second,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::entry::new_histogram;
    use crate::stats::fixtures::NAMES;
    use crate::stats::{Collector, WorkerStats};

    /// Publish latency of the `k`-th publish of `thread` in second `s`: spread, and slower
    /// in the second stage.
    fn latency_us(thread: u64, s: i64, k: u64) -> u64 {
        let base = if s >= 1003 { 5_000 } else { 200 };
        base + (k * 37 + thread * 1_009 + s as u64 * 13) % (base * 3)
    }

    #[test]
    fn each_stage_gets_exactly_the_merged_percentiles_of_its_seconds() {
        // Stages [0, 3) and [3, 6) s from 1000.0; two threads, one delta a second each.
        let mut collector = Collector::new(NAMES.iter().map(|s| s.to_string()).collect(), 10);
        collector.track_stages(StageSpans::new(1000.0, vec![3.0, 6.0]));
        let mut expected = [new_histogram(), new_histogram()];
        let mut lags = [new_histogram(), new_histogram()];
        let mut counts = [(0u64, 0u64, 0u64); 2];
        for s in 1000..1006 {
            let stage = usize::from(s >= 1003);
            for thread in 0..2u64 {
                let mut w = WorkerStats::with_start(thread as usize, NAMES.len(), s as f64);
                let n = 50 + 25 * thread + (s as u64 % 3) * 40;
                for k in 0..n {
                    let us = latency_us(thread, s, k);
                    w.record_success(2, us, 0);
                    expected[stage].record(us).expect("in range");
                }
                // Connects are slow and must stay out of the publish percentiles.
                w.record_success(0, 900_000, 0);
                w.record_failure(2, 7_000, "timeout");
                expected[stage].record(7_000).expect("in range");
                let lag = 10 * (s as u64 - 990) * (thread + 1);
                w.record_send_lag(lag);
                lags[stage].record(lag).expect("in range");
                w.set_users_connected(5 + thread);
                let (requests, failures, publishes) = &mut counts[stage];
                *requests += n + 2;
                *failures += 1;
                *publishes += n + 1;
                collector.merge(w.take_delta(s as f64 + 1.0));
            }
        }
        let (_, figures) = collector.finish();
        assert_eq!(figures.len(), 2);
        for (stage, f) in figures.iter().enumerate() {
            let h = &expected[stage];
            let want = STAGE_QUANTILES.map(|q| quantile_in(h, q, h.min(), h.max()));
            assert_eq!(f.publish_us, want, "stage {stage}");
            let lag = &lags[stage];
            assert_eq!(
                f.send_lag_p99_us,
                quantile_in(lag, 0.99, lag.min(), lag.max())
            );
            assert_eq!((f.requests, f.failures, f.publishes), counts[stage]);
            assert_eq!((f.seconds, f.users_at_end, f.users_mean), (3, 11, 11.0));
            assert!(f.publish_us[2] <= f.p99_us_worst_second, "{f:?}");
            assert!(f.send_lag_p99_us <= f.send_lag_p99_us_worst_second, "{f:?}");
        }
        assert!(figures[0].publish_us[1] < 1_000, "{:?}", figures[0]);
        assert!(figures[1].publish_us[0] > 5_000, "{:?}", figures[1]);
    }

    #[test]
    fn a_second_belongs_to_the_stage_its_middle_falls_in() {
        // Stages [0, 2), [2, 2) (empty), [2, 5) from 1000.7.
        let spans = StageSpans::new(1000.7, vec![2.0, 2.0, 5.0]);
        // 1000.5 is before the start: the first stage.
        assert_eq!(spans.stage_of(1000), 0);
        // 1002.5 is 1.8 s in; 1003.5 is 2.8 s in.
        assert_eq!(spans.stage_of(1002), 0);
        assert_eq!(spans.stage_of(1003), 2);
        // Past the end: the last stage.
        assert_eq!(spans.stage_of(1010), 2);
    }
}
