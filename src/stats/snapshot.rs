//! Plain data the report writers take: per-name totals at one moment, free of histograms, so
//! console, CSV and (later) JSON/HTML reports all read the same numbers.

use super::ConnectionCounts;
use super::DeliveryStats;

/// The percentiles Locust reports, as fractions.
pub const PERCENTILES: [f64; 11] = [
    0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0,
];

/// Column labels for [`PERCENTILES`], as Locust spells them.
pub const PERCENTILE_LABELS: [&str; 11] = [
    "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%",
];

/// The state of a run at one moment. `Snapshot::default()` is a run without requests: no
/// rows, and an empty "Aggregated" total.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Wall-clock time the snapshot was taken, Unix seconds.
    pub timestamp_unix: f64,
    /// Users connected (sum of the workers' latest gauges).
    pub users_connected: u64,
    /// Users the run aims for.
    pub target_users: u64,
    /// One row per request name that saw a request, sorted by name.
    pub rows: Vec<RowStats>,
    /// The "Aggregated" row over every name.
    pub total: RowStats,
    /// Failures grouped by (name, error text), sorted.
    pub errors: Vec<ErrorRow>,
    /// mqload's own lag between a message's due time and its write.
    pub send_lag: LagStats,
    /// Subscribers' delivery figures; `None` without `--subscribers`.
    pub delivery: Option<DeliveryStats>,
    /// Connects, reconnects, failed attempts, drops and DUP re-sends so far.
    pub connections: ConnectionCounts,
    /// TLS handshakes by kind, and connect attempts that queued (`--max-connecting`).
    pub connects: super::ConnectCounts,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            timestamp_unix: 0.0,
            users_connected: 0,
            target_users: 0,
            rows: Vec::new(),
            total: RowStats {
                name: AGGREGATED.to_owned(),
                ..RowStats::default()
            },
            errors: Vec::new(),
            send_lag: LagStats::default(),
            delivery: None,
            connections: ConnectionCounts::default(),
            connects: super::ConnectCounts::default(),
        }
    }
}

/// Name of the total row, as Locust calls it.
pub const AGGREGATED: &str = "Aggregated";

/// One row of Locust's tables: a request name, or the "Aggregated" total.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowStats {
    /// Request type: "MQTT", or "" for the Aggregated row.
    pub method: String,
    /// Request name, or "Aggregated".
    pub name: String,
    /// What the row counts; `None` for the Aggregated row.
    pub kind: Option<super::RequestKind>,
    /// Requests, failures included.
    pub num_requests: u64,
    /// Failed requests.
    pub num_failures: u64,
    /// Mean response time, microseconds.
    pub avg_us: f64,
    /// Fastest response, microseconds (0 without requests).
    pub min_us: u64,
    /// Slowest response, microseconds.
    pub max_us: u64,
    /// Median response time, microseconds.
    pub median_us: u64,
    /// Mean bytes per request.
    pub avg_content_length: f64,
    /// Requests per second over the last ~10 s (Locust's "current" rate).
    pub current_rps: f64,
    /// Failures per second over the last ~10 s.
    pub current_fail_per_sec: f64,
    /// Requests per second over the whole run.
    pub total_rps: f64,
    /// Failures per second over the whole run.
    pub total_fail_per_sec: f64,
    /// Whole-run response times at [`PERCENTILES`], microseconds.
    pub percentiles_us: [u64; 11],
    /// Response times at [`PERCENTILES`] over the last ~10 s; `None` without requests there.
    pub current_percentiles_us: Option<[u64; 11]>,
}

impl RowStats {
    /// Failures as a fraction of requests (1.0 when there are failures but no requests).
    pub fn fail_ratio(&self) -> f64 {
        if self.num_requests == 0 {
            if self.num_failures > 0 { 1.0 } else { 0.0 }
        } else {
            self.num_failures as f64 / self.num_requests as f64
        }
    }
}

/// One distinct failure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorRow {
    /// Request type ("MQTT").
    pub method: String,
    /// Request name.
    pub name: String,
    /// Error text as the engine reported it.
    pub error: String,
    /// How many times it happened.
    pub occurrences: u64,
    /// End of the first interval it was reported in, Unix seconds.
    pub first_seen_unix: f64,
    /// End of the last interval it was reported in, Unix seconds.
    pub last_seen_unix: f64,
}

/// Send lag (due time to write time) over the whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LagStats {
    /// Messages measured.
    pub count: u64,
    /// Median lag, microseconds.
    pub p50_us: u64,
    /// 99th percentile lag, microseconds.
    pub p99_us: u64,
    /// Largest lag, microseconds.
    pub max_us: u64,
    /// Messages that waited for the broker (socket or in-flight window full); not in the above.
    pub held_back: u64,
    /// Longest such wait, microseconds.
    pub held_back_max_us: u64,
}

/// Above this p99 send lag, mqload itself (not the broker) limited the run.
pub const SEND_LAG_BOTTLENECK_US: u64 = 10_000;

impl LagStats {
    /// Whether mqload was too slow to send on time (p99 over [`SEND_LAG_BOTTLENECK_US`]).
    pub fn is_bottleneck(&self) -> bool {
        self.p99_us > SEND_LAG_BOTTLENECK_US
    }
}
