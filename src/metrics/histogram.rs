//! Response-time histograms with fixed cumulative buckets fit for MQTT (100 µs to 30 s), in
//! the shape Prometheus serves them, fed one value at a time or from an HDR histogram.
//!
//! # Why these bounds
//! A 1-2-5 series from 100 µs to 20 s, then 30 s:
//! - 100 µs is about one loopback round trip through a broker, the fastest answer worth
//!   telling apart; 30 s is the longest an MQTT acknowledgement is usefully waited for (a
//!   keep-alive or ack timeout is reached well before), so anything slower is `+Inf`.
//! - Neighbouring bounds are at most 2.5 times apart, so `histogram_quantile`'s linear
//!   interpolation inside a bucket is never off by more than that factor, across loopback
//!   (sub-millisecond), LAN (milliseconds), cloud brokers (tens of milliseconds) and an
//!   overloaded broker (seconds), with 19 series per request name: within Prometheus's advice
//!   of about ten to twenty buckets.
//! - Round bounds are the thresholds people write SLOs in (1 ms, 5 ms, 20 ms, 100 ms, 1 s), so
//!   "the share of publishes under 20 ms" is one exact bucket, not an interpolation.

use hdrhistogram::Histogram;

/// One bucket's upper bound, inclusive (`le`): in microseconds to place values exactly, and
/// spelled as the `le` label value in seconds.
#[derive(Debug, Clone, Copy)]
pub struct BucketBound {
    /// The bound in microseconds.
    pub micros: u64,
    /// The bound in seconds, as written in the `le` label.
    pub le: &'static str,
}

const fn bound(micros: u64, le: &'static str) -> BucketBound {
    BucketBound { micros, le }
}

/// The finite bucket bounds, ascending; `+Inf` follows implicitly.
pub const LATENCY_BUCKET_BOUNDS: [BucketBound; 18] = [
    bound(100, "0.0001"),
    bound(200, "0.0002"),
    bound(500, "0.0005"),
    bound(1_000, "0.001"),
    bound(2_000, "0.002"),
    bound(5_000, "0.005"),
    bound(10_000, "0.01"),
    bound(20_000, "0.02"),
    bound(50_000, "0.05"),
    bound(100_000, "0.1"),
    bound(200_000, "0.2"),
    bound(500_000, "0.5"),
    bound(1_000_000, "1"),
    bound(2_000_000, "2"),
    bound(5_000_000, "5"),
    bound(10_000_000, "10"),
    bound(20_000_000, "20"),
    bound(30_000_000, "30"),
];

/// Response times counted into [`LATENCY_BUCKET_BOUNDS`]: a fixed-size value (no heap), so a
/// snapshot full of them is cheap to refill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatencyHistogram {
    /// Values in each finite bucket alone (not cumulative); values over the last bound are
    /// only in `count`.
    per_bucket: [u64; LATENCY_BUCKET_BOUNDS.len()],
    count: u64,
    sum_micros: u64,
}

impl LatencyHistogram {
    /// Counts `times` values of `micros` microseconds each.
    pub fn record_micros(&mut self, micros: u64, times: u64) {
        let index = LATENCY_BUCKET_BOUNDS.partition_point(|bound| bound.micros < micros);
        if let Some(bucket) = self.per_bucket.get_mut(index) {
            *bucket += times;
        }
        self.count += times;
        self.sum_micros = self.sum_micros.saturating_add(micros.saturating_mul(times));
    }

    /// Replaces the contents with an HDR histogram of microseconds and its exact sum (HDR keeps
    /// no sum; mqload's stats do). Each recorded value is placed by the lowest value it stands
    /// for, so a bucket edge is as exact as the HDR's own precision (0.1 % with 3 digits).
    pub fn fill_from_hdr_micros(&mut self, histogram: &Histogram<u64>, sum_micros: u64) {
        *self = LatencyHistogram::default();
        for value in histogram.iter_recorded() {
            let micros = histogram.lowest_equivalent(value.value_iterated_to());
            self.record_micros(micros, value.count_at_value());
        }
        self.sum_micros = sum_micros;
    }

    /// How many values there are, `+Inf`'s bucket.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of all values, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_micros as f64 / 1e6
    }

    /// Each finite bucket's cumulative count (values at or under its bound), ascending.
    pub fn cumulative_counts(&self) -> impl Iterator<Item = u64> + '_ {
        self.per_bucket.iter().scan(0_u64, |running, &in_bucket| {
            *running += in_bucket;
            Some(*running)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::exposition::{Exposition, Family, Format, MetricType};

    #[test]
    fn bounds_ascend_and_their_labels_spell_their_micros() {
        for pair in LATENCY_BUCKET_BOUNDS.windows(2) {
            assert!(pair[0].micros < pair[1].micros);
            assert!(pair[1].micros as f64 / pair[0].micros as f64 <= 2.5);
        }
        for bound in LATENCY_BUCKET_BOUNDS {
            let seconds: f64 = bound.le.parse().expect("le parses as a float");
            assert_eq!((seconds * 1e6).round() as u64, bound.micros, "{}", bound.le);
        }
        assert_eq!(LATENCY_BUCKET_BOUNDS[0].micros, 100);
        assert_eq!(
            LATENCY_BUCKET_BOUNDS[LATENCY_BUCKET_BOUNDS.len() - 1].micros,
            30_000_000
        );
    }

    #[test]
    fn a_value_on_a_bound_counts_in_that_bucket() {
        let mut histogram = LatencyHistogram::default();
        histogram.record_micros(100, 1); // le 0.0001
        histogram.record_micros(101, 2); // le 0.0002
        histogram.record_micros(0, 1); // le 0.0001
        histogram.record_micros(30_000_001, 1); // +Inf only
        let cumulative: Vec<u64> = histogram.cumulative_counts().collect();
        assert_eq!(cumulative[0], 2);
        assert_eq!(cumulative[1], 4);
        assert_eq!(cumulative[17], 4);
        assert_eq!(histogram.count(), 5);
        assert!((histogram.sum_seconds() - 30.000_303).abs() < 1e-9);
    }

    #[test]
    fn hdr_histograms_land_in_the_same_buckets_as_single_values() {
        let mut hdr = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("bounds");
        let mut direct = LatencyHistogram::default();
        let mut sum = 0;
        for micros in [
            1, 99, 100, 150, 999, 1_000, 4_999, 20_000, 31_000, 29_000_000, 40_000_000,
        ] {
            hdr.record(micros).expect("in range");
            direct.record_micros(micros, 1);
            sum += micros;
        }
        let mut from_hdr = LatencyHistogram::default();
        from_hdr.record_micros(5, 5); // replaced, not added to
        from_hdr.fill_from_hdr_micros(&hdr, sum);
        assert_eq!(from_hdr, direct);
    }

    #[test]
    fn renders_cumulative_buckets_inf_sum_and_count() {
        const LATENCY: Family = Family {
            name: "mqload_response_time_seconds",
            help: "Response time.",
            metric_type: MetricType::Histogram,
            unit: Some("seconds"),
        };
        let mut histogram = LatencyHistogram::default();
        histogram.record_micros(150, 3);
        histogram.record_micros(1_500_000, 1);
        histogram.record_micros(60_000_000, 1);
        let mut out = String::new();
        let mut exposition = Exposition::new(&mut out, Format::OpenMetrics);
        exposition.family(&LATENCY);
        exposition.histogram(&LATENCY, &[("name", "a\"b")], &histogram);
        exposition.finish();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "# HELP mqload_response_time_seconds Response time."
        );
        assert_eq!(lines[1], "# TYPE mqload_response_time_seconds histogram");
        assert_eq!(lines[2], "# UNIT mqload_response_time_seconds seconds");
        let sample = |le: &str| {
            format!("mqload_response_time_seconds_bucket{{name=\"a\\\"b\",le=\"{le}\"}}")
        };
        assert_eq!(lines[3], format!("{} 0", sample("0.0001")));
        assert_eq!(lines[4], format!("{} 3", sample("0.0002")));
        assert_eq!(lines[15], format!("{} 3", sample("1")));
        assert_eq!(lines[16], format!("{} 4", sample("2")));
        assert_eq!(lines[20], format!("{} 4", sample("30")));
        assert_eq!(lines[21], format!("{} 5", sample("+Inf")));
        assert_eq!(
            lines[22],
            "mqload_response_time_seconds_sum{name=\"a\\\"b\"} 61.50045"
        );
        assert_eq!(
            lines[23],
            "mqload_response_time_seconds_count{name=\"a\\\"b\"} 5"
        );
        assert_eq!(lines[24], "# EOF");
        assert_eq!(lines.len(), 25);
    }
}
