//! The worker-thread half: records into plain per-name entries (no locks, no atomics, no
//! allocation per record) and hands everything over as a [`StatsDelta`] once a second.

use std::collections::HashMap;

use hdrhistogram::Histogram;

use super::connects::ConnectCounts;
use super::delivery::DeliveryCounts;
use super::entry::{Entry, MAX_TRACKABLE_US, new_histogram};
use super::{ConnectionCounts, NameId};
use crate::unix_time::unix_now;

/// What one worker thread measured; lives on that thread, no locks.
#[derive(Debug)]
pub struct WorkerStats {
    thread: usize,
    entries: Vec<Entry>,
    /// Per name: error text -> occurrences in this interval. Looking up by `&str` needs no
    /// allocation; only a text new to this interval allocates its key.
    errors: Vec<HashMap<String, u64>>,
    send_lag: Histogram<u64>,
    send_lag_max_us: u64,
    held_back: u64,
    held_back_max_us: u64,
    connections: ConnectionCounts,
    users_connected: u64,
    flow: FlowGauges,
    interval_start: f64,
    delivery: DeliveryCounts,
    connects: ConnectCounts,
}

/// Publishes waiting on the broker at one moment, on one thread (gauges, not deltas).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowGauges {
    /// Publishes sent and not yet acknowledged.
    pub in_flight: u64,
    /// Publishes due and not sent yet because the broker holds them back (socket, TLS buffer
    /// or in-flight window full).
    pub held_back: u64,
}

/// One thread's measurements over one interval.
#[derive(Debug)]
pub struct StatsDelta {
    pub(crate) thread: usize,
    pub(crate) start_unix: f64,
    pub(crate) end_unix: f64,
    pub(crate) users_connected: u64,
    /// In-flight and held-back publishes at the end of the interval.
    pub(crate) flow: FlowGauges,
    /// Indexed by [`NameId`]; `None` when that name saw no request in the interval.
    pub(crate) entries: Vec<Option<Entry>>,
    /// (name, error text, occurrences).
    pub(crate) errors: Vec<(NameId, String, u64)>,
    /// `None` when nothing was sent in the interval.
    pub(crate) send_lag: Option<Histogram<u64>>,
    /// Exact largest send lag in the interval (the histogram rounds up to its bucket's edge).
    pub(crate) send_lag_max_us: u64,
    /// Messages that waited for the broker (socket or in-flight window full) in the interval.
    pub(crate) held_back: u64,
    /// Longest such wait, microseconds.
    pub(crate) held_back_max_us: u64,
    /// Delivery counters of the interval (publishers' sent, subscribers' received, ...).
    pub(crate) delivery: DeliveryCounts,
    /// Connects, drops and re-sends in the interval.
    pub(crate) connections: ConnectionCounts,
    /// TLS handshakes by kind, and queued connect attempts, in the interval.
    pub(crate) connects: ConnectCounts,
}

impl StatsDelta {
    /// The worker thread that measured this delta.
    pub fn thread(&self) -> usize {
        self.thread
    }
    /// Start and end of the interval, in Unix seconds.
    pub fn interval_unix(&self) -> (f64, f64) {
        (self.start_unix, self.end_unix)
    }
    /// Requests (failures included) in the interval, over all names.
    pub fn num_requests(&self) -> u64 {
        self.entries.iter().flatten().map(|e| e.num_requests).sum()
    }
}

impl WorkerStats {
    /// Empty statistics for `names` request names; the first interval starts now.
    pub fn new(thread: usize, names: usize) -> Self {
        Self::with_start(thread, names, unix_now())
    }

    /// Like [`WorkerStats::new`], with the first interval starting at `start_unix` (for
    /// deterministic tests and replays).
    pub fn with_start(thread: usize, names: usize, start_unix: f64) -> Self {
        WorkerStats {
            thread,
            entries: (0..names).map(|_| Entry::new()).collect(),
            errors: (0..names).map(|_| HashMap::new()).collect(),
            send_lag: new_histogram(),
            send_lag_max_us: 0,
            held_back: 0,
            held_back_max_us: 0,
            connections: ConnectionCounts::default(),
            users_connected: 0,
            flow: FlowGauges::default(),
            interval_start: start_unix,
            delivery: DeliveryCounts::default(),
            connects: ConnectCounts::default(),
        }
    }

    /// A request that succeeded after `response_us` microseconds, carrying `content_length` bytes.
    #[inline]
    pub fn record_success(&mut self, name: NameId, response_us: u64, content_length: u64) {
        debug_assert!(name < self.entries.len(), "unknown request name {name}");
        if let Some(entry) = self.entries.get_mut(name) {
            entry.record(response_us, content_length, false);
        }
    }

    /// A request that failed with `error` (Locust's error text) after `response_us`.
    /// Counted as a request and as a failure, like Locust does.
    pub fn record_failure(&mut self, name: NameId, response_us: u64, error: &str) {
        debug_assert!(name < self.entries.len(), "unknown request name {name}");
        let (Some(entry), Some(errors)) = (self.entries.get_mut(name), self.errors.get_mut(name))
        else {
            return;
        };
        entry.record(response_us, 0, true);
        match errors.get_mut(error) {
            Some(count) => *count += 1,
            None => {
                errors.insert(error.to_owned(), 1);
            }
        }
    }

    /// `count` requests of `name` that failed with `error` and have no response time (messages
    /// that fell due while disconnected): counted once, whatever `count` is.
    pub fn record_untimed_failures(&mut self, name: NameId, count: u64, error: &str) {
        let (Some(entry), Some(errors)) = (self.entries.get_mut(name), self.errors.get_mut(name))
        else {
            return;
        };
        entry.record_untimed_failures(count);
        match errors.get_mut(error) {
            Some(n) => *n += count,
            None => {
                errors.insert(error.to_owned(), count);
            }
        }
    }

    /// How long after its due time a message was written (mqload's own lag).
    #[inline]
    pub fn record_send_lag(&mut self, lag_us: u64) {
        let lag_us = lag_us.min(MAX_TRACKABLE_US);
        self.send_lag.saturating_record(lag_us);
        self.send_lag_max_us = self.send_lag_max_us.max(lag_us);
    }

    /// A message written `lag_us` after its due time because the broker held it back (the
    /// socket, TLS buffer or in-flight window was full): the broker's delay, not mqload's.
    #[inline]
    pub fn record_held_back(&mut self, lag_us: u64) {
        self.held_back += 1;
        self.held_back_max_us = self.held_back_max_us.max(lag_us.min(MAX_TRACKABLE_US));
    }

    /// Delivery counters of this interval, to add to.
    #[inline]
    pub fn delivery(&mut self) -> &mut DeliveryCounts {
        &mut self.delivery
    }

    /// Connection life counts, recorded directly (plain integers, no allocation).
    pub fn connections(&mut self) -> &mut ConnectionCounts {
        &mut self.connections
    }

    /// A TLS handshake completed, resumed or full.
    pub fn record_handshake(&mut self, resumed: bool) {
        self.connects.record(resumed);
    }

    /// A connect attempt started after waiting `wait_us` for its turn (`--max-connecting`).
    pub fn record_connect_queued(&mut self, wait_us: u64) {
        self.connects.record_queued(wait_us);
    }

    /// Current users connected on this thread (a gauge, not a delta).
    pub fn set_users_connected(&mut self, connected: u64) {
        self.users_connected = connected;
    }

    /// Publishes in flight and held back on this thread now (gauges, set once a second).
    pub fn set_flow(&mut self, flow: FlowGauges) {
        self.flow = flow;
    }

    /// Everything recorded since the last call; resets the counters, keeps the gauges.
    pub fn take_delta(&mut self, now_unix: f64) -> StatsDelta {
        let entries = self
            .entries
            .iter_mut()
            .map(|e| (!e.is_empty()).then(|| e.take()))
            .collect();
        let mut errors = Vec::new();
        for (name, map) in self.errors.iter_mut().enumerate() {
            errors.extend(
                std::mem::take(map)
                    .into_iter()
                    .map(|(text, n)| (name, text, n)),
            );
        }
        let send_lag = (!self.send_lag.is_empty())
            .then(|| std::mem::replace(&mut self.send_lag, new_histogram()));
        let start_unix = self.interval_start;
        self.interval_start = now_unix;
        StatsDelta {
            thread: self.thread,
            start_unix,
            end_unix: now_unix,
            users_connected: self.users_connected,
            flow: self.flow,
            entries,
            errors,
            send_lag,
            send_lag_max_us: std::mem::take(&mut self.send_lag_max_us),
            held_back: std::mem::take(&mut self.held_back),
            held_back_max_us: std::mem::take(&mut self.held_back_max_us),
            delivery: std::mem::take(&mut self.delivery),
            connections: std::mem::take(&mut self.connections),
            connects: std::mem::take(&mut self.connects),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_carries_everything_once_then_resets() {
        let mut w = WorkerStats::with_start(3, 2, 100.0);
        w.set_users_connected(7);
        w.record_success(1, 420, 100);
        w.record_success(1, 580, 100);
        w.record_failure(0, 0, "refused");
        w.record_failure(0, 0, "refused");
        w.record_failure(1, 900, "timeout");
        w.record_send_lag(30);

        let d = w.take_delta(101.0);
        assert_eq!(d.thread(), 3);
        assert_eq!(d.interval_unix(), (100.0, 101.0));
        assert_eq!(d.users_connected, 7);
        assert_eq!(d.num_requests(), 5);
        let publish = d.entries[1].as_ref().expect("name 1 recorded");
        assert_eq!(publish.num_requests, 3);
        assert_eq!(publish.num_failures, 1);
        assert_eq!(publish.content_length, 200);
        assert_eq!((publish.min_us, publish.max_us), (420, 900));
        let connect = d.entries[0].as_ref().expect("name 0 recorded");
        assert_eq!((connect.num_requests, connect.num_failures), (2, 2));
        let mut errors = d.errors.clone();
        errors.sort();
        assert_eq!(
            errors,
            vec![(0, "refused".to_owned(), 2), (1, "timeout".to_owned(), 1)]
        );
        assert_eq!(d.send_lag.as_ref().map(|h| h.len()), Some(1));
        assert_eq!(d.send_lag_max_us, 30);

        let empty = w.take_delta(102.0);
        assert_eq!(empty.interval_unix(), (101.0, 102.0));
        assert!(empty.entries.iter().all(Option::is_none));
        assert!(empty.errors.is_empty());
        assert!(empty.send_lag.is_none());
        assert_eq!(empty.send_lag_max_us, 0);
        assert_eq!(empty.users_connected, 7, "the gauge survives take_delta");
    }

    #[test]
    fn untimed_failures_count_once_and_leave_latency_alone() {
        let mut w = WorkerStats::with_start(0, 1, 0.0);
        w.record_success(0, 1_000, 10);
        w.record_untimed_failures(0, 5_000, "not connected when due");
        let d = w.take_delta(1.0);
        let e = d.entries[0].as_ref().expect("recorded");
        assert_eq!((e.num_requests, e.num_failures), (5_001, 5_000));
        assert_eq!((e.min_us, e.max_us), (1_000, 1_000));
        assert_eq!(
            e.avg_us(),
            1_000.0,
            "the average is over timed requests only"
        );
        assert_eq!(
            d.errors,
            vec![(0, "not connected when due".to_owned(), 5_000)]
        );
    }
}
