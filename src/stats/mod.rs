//! Per-thread request statistics (HDR histograms in microseconds), sent as deltas to a collector.
//!
//! Skeleton of the contract between the engine and the stats/report helper; the helper fills
//! in the bodies and may add private modules, but keeps these signatures.

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;

/// Locust's request type for every row mqload reports.
pub const METHOD: &str = "MQTT";

/// Index of a request name in the run's name table (`RunPlan::request_names`).
pub type NameId = usize;

/// What one worker thread measured; lives on that thread, no locks.
#[derive(Debug)]
pub struct WorkerStats {
    _private: (),
}

impl WorkerStats {
    /// Empty statistics for `names` request names.
    pub fn new(_thread: usize, _names: usize) -> Self {
        todo!("stats")
    }
    /// A request that succeeded after `response_us` microseconds, carrying `content_length` bytes.
    pub fn record_success(&mut self, _name: NameId, _response_us: u64, _content_length: u64) {
        todo!("stats")
    }
    /// A request that failed with `error` (Locust's error text) after `response_us`.
    pub fn record_failure(&mut self, _name: NameId, _response_us: u64, _error: &str) {
        todo!("stats")
    }
    /// How long after its due time a message was written (mqload's own lag).
    pub fn record_send_lag(&mut self, _lag_us: u64) {
        todo!("stats")
    }
    /// Current users connected on this thread (a gauge, not a delta).
    pub fn set_users_connected(&mut self, _connected: u64) {
        todo!("stats")
    }
    /// Everything recorded since the last call; resets the counters, keeps the gauge.
    pub fn take_delta(&mut self, _now_unix: f64) -> StatsDelta {
        todo!("stats")
    }
}

/// One thread's measurements over one interval.
#[derive(Debug)]
pub struct StatsDelta {
    _private: (),
}

/// What workers send the collector.
#[derive(Debug)]
pub enum StatsMsg {
    /// Measurements since the previous delta of that thread.
    Delta(StatsDelta),
}

/// How and where the collector reports.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// `--csv PREFIX`: write Locust's four CSV files.
    pub csv_prefix: Option<PathBuf>,
    /// `--only-summary`: no periodic tables, only the final one.
    pub only_summary: bool,
    /// Time between console tables (Locust: 2 s).
    pub print_interval: Duration,
    /// Target number of users, for the history CSV's "User Count" and the summary.
    pub target_users: u64,
}

/// The end of a run, as the exit code and later reports need it.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// All requests, failures included.
    pub total_requests: u64,
    /// Failed requests.
    pub total_failures: u64,
    /// 99th percentile of send lag in microseconds.
    pub send_lag_p99_us: u64,
}

/// Starts the collector thread: it merges deltas, prints a table every `print_interval`, and
/// when every sender is dropped prints the final report, writes the CSVs and returns.
pub fn spawn_collector(
    _names: Vec<String>,
    _rx: Receiver<StatsMsg>,
    _options: ReportOptions,
) -> JoinHandle<RunSummary> {
    todo!("stats")
}
