//! One request name's measurements (histogram, counts, sum, min, max, bytes): the unit a worker
//! records into, a delta carries, and the collector sums.

use hdrhistogram::Histogram;

/// Largest response time the histograms track (one hour, in microseconds); larger values
/// saturate to it instead of being lost.
pub(crate) const MAX_TRACKABLE_US: u64 = 3_600_000_000;

/// Significant decimal digits the histograms keep (0.1 % relative error).
pub(crate) const SIGNIFICANT_DIGITS: u8 = 3;

/// An empty microsecond histogram with mqload's fixed bounds.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKABLE_US, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// Requests of one name over some span of time; failures are requests too (as in Locust).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) histogram: Histogram<u64>,
    pub(crate) num_requests: u64,
    pub(crate) num_failures: u64,
    pub(crate) total_us: u64,
    pub(crate) min_us: u64,
    pub(crate) max_us: u64,
    pub(crate) content_length: u64,
}

impl Entry {
    pub(crate) fn new() -> Self {
        Entry {
            histogram: new_histogram(),
            num_requests: 0,
            num_failures: 0,
            total_us: 0,
            min_us: u64::MAX,
            max_us: 0,
            content_length: 0,
        }
    }

    /// One request; no allocation.
    #[inline]
    pub(crate) fn record(&mut self, response_us: u64, content_length: u64, failed: bool) {
        let response_us = response_us.min(MAX_TRACKABLE_US);
        self.histogram.saturating_record(response_us);
        self.num_requests += 1;
        self.num_failures += u64::from(failed);
        self.total_us = self.total_us.saturating_add(response_us);
        self.min_us = self.min_us.min(response_us);
        self.max_us = self.max_us.max(response_us);
        self.content_length = self.content_length.saturating_add(content_length);
    }

    /// Adds `other` into `self` (same histogram bounds, so this cannot fail in practice).
    pub(crate) fn merge(&mut self, other: &Entry) {
        if self.histogram.add(&other.histogram).is_err() {
            // Unreachable with identical bounds; keep the counts right even so.
            for value in other.histogram.iter_recorded() {
                self.histogram
                    .saturating_record_n(value.value_iterated_to(), value.count_at_value());
            }
        }
        self.num_requests += other.num_requests;
        self.num_failures += other.num_failures;
        self.total_us = self.total_us.saturating_add(other.total_us);
        self.min_us = self.min_us.min(other.min_us);
        self.max_us = self.max_us.max(other.max_us);
        self.content_length = self.content_length.saturating_add(other.content_length);
    }

    /// Hands over the recorded data and leaves `self` empty. The fresh histogram is one
    /// zeroed allocation, which is cheaper than copying the old one and clearing it.
    pub(crate) fn take(&mut self) -> Entry {
        std::mem::replace(self, Entry::new())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.num_requests == 0
    }

    /// `n` failed requests that have no response time (a message that was never sent): counted
    /// as requests and failures, kept out of the histogram, the sum, min and max.
    pub(crate) fn record_untimed_failures(&mut self, n: u64) {
        self.num_requests += n;
        self.num_failures += n;
    }

    /// Mean response time in microseconds over the requests that have one (0 without).
    pub(crate) fn avg_us(&self) -> f64 {
        let timed = self.histogram.len();
        if timed == 0 {
            0.0
        } else {
            self.total_us as f64 / timed as f64
        }
    }

    /// Exact minimum, or 0 without a timed request (Locust prints 0 then): untimed
    /// failures count as requests but leave `min_us` at its `u64::MAX` start.
    pub(crate) fn min_or_zero(&self) -> u64 {
        if self.histogram.is_empty() {
            0
        } else {
            self.min_us
        }
    }

    /// The histogram's value at `quantile`, kept inside the exact [min, max] so that an HDR
    /// bucket's upper edge never reads as more than the slowest request.
    pub(crate) fn quantile_us(&self, quantile: f64) -> u64 {
        quantile_in(&self.histogram, quantile, self.min_or_zero(), self.max_us)
    }
}

/// `histogram`'s value at `quantile`, clamped to `[min, max]`; 0 when empty.
pub(crate) fn quantile_in(histogram: &Histogram<u64>, quantile: f64, min: u64, max: u64) -> u64 {
    if histogram.is_empty() {
        return 0;
    }
    histogram
        .value_at_quantile(quantile)
        .clamp(min, max.max(min))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_and_merge_keep_exact_sums_and_extremes() {
        let mut a = Entry::new();
        a.record(100, 10, false);
        a.record(300, 0, true);
        let mut b = Entry::new();
        b.record(50, 5, false);
        a.merge(&b);
        assert_eq!(a.num_requests, 3);
        assert_eq!(a.num_failures, 1);
        assert_eq!(a.total_us, 450);
        assert_eq!((a.min_us, a.max_us), (50, 300));
        assert_eq!(a.content_length, 15);
        assert_eq!(a.avg_us(), 150.0);
        assert_eq!(a.quantile_us(0.5), 100);
        assert_eq!(a.quantile_us(1.0), 300);
    }

    #[test]
    fn huge_values_saturate_instead_of_vanishing() {
        let mut a = Entry::new();
        a.record(u64::MAX, 0, false);
        assert_eq!(a.num_requests, 1);
        assert_eq!(a.max_us, MAX_TRACKABLE_US);
        assert_eq!(a.histogram.len(), 1);
    }

    #[test]
    fn take_leaves_an_empty_entry() {
        let mut a = Entry::new();
        a.record(7, 1, false);
        let taken = a.take();
        assert_eq!(taken.num_requests, 1);
        assert!(a.is_empty());
        assert!(a.histogram.is_empty());
        assert_eq!(a.min_or_zero(), 0);
    }

    #[test]
    fn untimed_failures_alone_have_a_zero_minimum() {
        let mut a = Entry::new();
        a.record_untimed_failures(3);
        assert_eq!(a.num_requests, 3);
        assert_eq!((a.min_or_zero(), a.max_us), (0, 0));
        assert_eq!(a.avg_us(), 0.0);
        assert_eq!(a.quantile_us(0.5), 0);
        a.record(250, 0, false);
        assert_eq!(a.min_or_zero(), 250, "a timed request sets the minimum");
    }
}
