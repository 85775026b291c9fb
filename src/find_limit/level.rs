//! What one level of the search measured: the steady window's latency, rate, failures, held-back
//! messages and send lag, and the loss subscribers saw once the level drained; or, when the
//! search raises the connect rate, the window's connects (answered, their p99, failures, those
//! not answered) and the connects mqload never started.

use crate::stats::{PERCENTILES, RequestKind, Snapshot};

/// Index of the 99th percentile in [`PERCENTILES`].
const P99: usize = 7;
const _: () = assert!(PERCENTILES[P99] == 0.99);

/// The figures of one level, as the search judges them. Latency, rate, failures, held back
/// and send lag cover the steady window (after every user connected and published its first
/// message); `lost` covers the whole level, drain included.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LevelResult {
    /// Offered load, messages per second over every publisher.
    pub offered_per_s: f64,
    /// Length of the steady window, seconds.
    pub seconds: f64,
    /// Publishes acknowledged (QoS 0: written) per second in the window.
    pub acked_per_s: f64,
    /// Publish latency p50 in the window, microseconds (the slowest publish row's).
    pub p50_us: u64,
    /// Publish latency p99 in the window, microseconds (the slowest publish row's).
    pub p99_us: u64,
    /// Requests of every kind in the window, failures included.
    pub requests: u64,
    /// Failed requests in the window.
    pub failures: u64,
    /// Publishes completed in the window (acked, or written at QoS 0), failures included.
    pub published: u64,
    /// Messages that waited for the broker (full socket or in-flight window) in the window.
    pub held_back: u64,
    /// Expected copies subscribers never received (whole level, after its drain).
    pub lost: u64,
    /// mqload's own send-lag p99 in the window, microseconds.
    pub send_lag_p99_us: u64,
    /// Connect-rate search: connects due in the window that the broker did not answer in it
    /// (neither CONNACK nor failure). 0 when the search raises msg/s.
    pub unanswered: u64,
    /// Connect-rate search: connects due before the level stopped that mqload never started
    /// (its own scheduling lag), over the whole level. 0 when the search raises msg/s.
    pub not_started: u64,
    /// Connect-rate search: connects due before the level stopped, over the whole level.
    pub due_in_level: u64,
    /// Connect-rate search: connects in the window that failed for want of mqload's own
    /// resources (local ports, open files), not for anything the broker did.
    pub local_failures: u64,
}

/// OS errors that mean this host ran out, not the broker: no local port left
/// (EADDRNOTAVAIL, 99), too many open files in the process (EMFILE, 24) or system (ENFILE, 23).
const LOCAL_ERRORS: [&str; 3] = ["(os error 99)", "(os error 24)", "(os error 23)"];

impl LevelResult {
    /// The figures of a level offered at `offered_per_s`: `steady` holds only the steady
    /// window's deltas (`seconds` long); `lost` is the whole level's loss, drain included.
    pub fn from_snapshot(
        offered_per_s: f64,
        seconds: f64,
        steady: &Snapshot,
        lost: u64,
    ) -> LevelResult {
        let publish = steady
            .rows
            .iter()
            .filter(|r| r.kind == Some(RequestKind::Publish));
        let (mut published, mut acked, mut p50_us, mut p99_us) = (0, 0, 0, 0);
        for row in publish {
            published += row.num_requests;
            acked += row.num_requests.saturating_sub(row.num_failures);
            p50_us = p50_us.max(row.median_us);
            p99_us = p99_us.max(row.percentiles_us[P99]);
        }
        LevelResult {
            offered_per_s,
            seconds,
            acked_per_s: if seconds > 0.0 {
                acked as f64 / seconds
            } else {
                0.0
            },
            p50_us,
            p99_us,
            requests: steady.total.num_requests,
            failures: steady.total.num_failures,
            published,
            held_back: steady.send_lag.held_back,
            lost,
            send_lag_p99_us: steady.send_lag.p99_us,
            unanswered: 0,
            not_started: 0,
            due_in_level: 0,
            local_failures: 0,
        }
    }

    /// The figures of a connect-rate level offered at `offered_per_s` connects a second:
    /// `steady` holds only the steady window's deltas (`seconds` long), in which
    /// `offered_per_s * seconds` connects fell due; `attempts_in_level` is every connect
    /// attempt that ended over the whole level (answered, failed, or cut off when it stopped),
    /// of `due_in_level` due before it stopped.
    pub fn from_connect_snapshot(
        offered_per_s: f64,
        seconds: f64,
        steady: &Snapshot,
        attempts_in_level: u64,
        due_in_level: u64,
    ) -> LevelResult {
        let connect = steady
            .rows
            .iter()
            .filter(|r| r.kind == Some(RequestKind::Connect));
        let (mut answered, mut failures, mut p50_us, mut p99_us) = (0, 0, 0, 0);
        for row in connect {
            answered += row.num_requests;
            failures += row.num_failures;
            p50_us = p50_us.max(row.median_us);
            p99_us = p99_us.max(row.percentiles_us[P99]);
        }
        let connect_names: Vec<&str> = steady
            .rows
            .iter()
            .filter(|r| r.kind == Some(RequestKind::Connect))
            .map(|r| r.name.as_str())
            .collect();
        let local_failures = steady
            .errors
            .iter()
            .filter(|e| connect_names.contains(&e.name.as_str()))
            .filter(|e| LOCAL_ERRORS.iter().any(|code| e.error.contains(code)))
            .map(|e| e.occurrences)
            .sum();
        let due_in_window = (offered_per_s * seconds).round() as u64;
        let connected = answered - failures;
        LevelResult {
            offered_per_s,
            seconds,
            acked_per_s: if seconds > 0.0 {
                connected as f64 / seconds
            } else {
                0.0
            },
            p50_us,
            p99_us,
            requests: answered,
            failures,
            published: answered,
            held_back: 0,
            lost: 0,
            send_lag_p99_us: 0,
            unanswered: due_in_window.saturating_sub(answered),
            not_started: due_in_level.saturating_sub(attempts_in_level),
            due_in_level,
            local_failures,
        }
    }

    /// Failed requests as a percentage of the window's requests.
    pub fn failure_percent(&self) -> f64 {
        if self.requests == 0 {
            if self.failures > 0 { 100.0 } else { 0.0 }
        } else {
            self.failures as f64 * 100.0 / self.requests as f64
        }
    }
}
