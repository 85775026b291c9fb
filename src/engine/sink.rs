//! Where a device records what happened: a trait the event loop's `WorkerStats` implements
//! and the virtual-time tests implement with a recorder.

use crate::stats::{ConnectionCounts, DeliveryCounts, NameId, WorkerStats};

/// Where a device records what happened. The loop passes its `WorkerStats`; tests pass a
/// recorder they can assert on. Every method is called at most once per message and must
/// not allocate.
pub trait StatsSink {
    /// A request (`NAME_*` row) succeeded after `response_us`.
    fn record_success(&mut self, name: NameId, response_us: u64, content_length: u64);
    /// A request failed after `response_us`, for `error`.
    fn record_failure(&mut self, name: NameId, response_us: u64, error: &str);
    /// `count` requests failed without a time (never sent).
    fn record_untimed_failures(&mut self, name: NameId, count: u64, error: &str);
    /// A publish went `lag_us` after its due time.
    fn record_send_lag(&mut self, lag_us: u64);
    /// A held-back publish went `lag_us` after its due time.
    fn record_held_back(&mut self, lag_us: u64);
    /// Sent/expected/received message counts.
    fn delivery(&mut self) -> &mut DeliveryCounts;
    /// Connects, reconnects, drops, failed attempts, resends.
    fn connections(&mut self) -> &mut ConnectionCounts;
}

impl StatsSink for WorkerStats {
    #[inline]
    fn record_success(&mut self, name: NameId, response_us: u64, content_length: u64) {
        WorkerStats::record_success(self, name, response_us, content_length);
    }
    #[inline]
    fn record_failure(&mut self, name: NameId, response_us: u64, error: &str) {
        WorkerStats::record_failure(self, name, response_us, error);
    }
    #[inline]
    fn record_untimed_failures(&mut self, name: NameId, count: u64, error: &str) {
        WorkerStats::record_untimed_failures(self, name, count, error);
    }
    #[inline]
    fn record_send_lag(&mut self, lag_us: u64) {
        WorkerStats::record_send_lag(self, lag_us);
    }
    #[inline]
    fn record_held_back(&mut self, lag_us: u64) {
        WorkerStats::record_held_back(self, lag_us);
    }
    #[inline]
    fn delivery(&mut self) -> &mut DeliveryCounts {
        WorkerStats::delivery(self)
    }
    #[inline]
    fn connections(&mut self) -> &mut ConnectionCounts {
        WorkerStats::connections(self)
    }
}
