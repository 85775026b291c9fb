//! Per-thread request statistics (HDR histograms in microseconds), sent as deltas to a collector.
//!
//! Workers record into [`WorkerStats`] without locks and send a [`StatsDelta`] every second;
//! the collector thread ([`spawn_collector`]) merges them, prints Locust's tables, writes the
//! CSVs and returns a [`RunSummary`]. Report writers read plain [`Snapshot`]s.

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;

mod collector;
mod connections;
mod connects;
mod delivery;
mod entry;
mod series;
mod snapshot;
mod recorder;

pub use connections::ConnectionCounts;
pub use connects::ConnectCounts;
pub use delivery::{DeliveryCounts, DeliveryStats};
pub use series::{MAX_POINTS, SeriesPoint, TimeSeries};
pub use snapshot::{
    AGGREGATED, ErrorRow, LagStats, PERCENTILE_LABELS, PERCENTILES, RowStats,
    SEND_LAG_BOTTLENECK_US, Snapshot,
};
pub use recorder::{StatsDelta, WorkerStats};

/// Locust's request type for every row mqload reports.
pub const METHOD: &str = "MQTT";

/// Index of a request name in the run's name table (`RunPlan::request_names`).
pub type NameId = usize;

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
    /// Target number of users, for the summary (the history CSV's "User Count" is the
    /// number of users actually connected, from the workers' gauges).
    pub target_users: u64,
    /// Redraw a live status line between tables (only when stdout is a terminal).
    pub status_line: bool,
    /// The planned run time, for the status line's "elapsed / run time".
    pub run_time: Option<Duration>,
    /// Subscriber connections (`--subscribers`); 0 leaves the delivery line out.
    pub subscribers: u64,
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
    /// Everything the final report showed, per name and Aggregated (for JSON/HTML reports).
    pub final_stats: Snapshot,
    /// One point per second over the run (downsampled on long runs), for JSON/HTML reports.
    pub series: TimeSeries,
}

/// Starts the collector thread: it merges deltas, prints a table every `print_interval`, and
/// when every sender is dropped prints the final report, writes the CSVs and returns.
///
/// # Panics
/// When the OS cannot start a thread, as [`std::thread::spawn`] does.
pub fn spawn_collector(
    names: Vec<String>,
    rx: Receiver<StatsMsg>,
    options: ReportOptions,
) -> JoinHandle<RunSummary> {
    collector::spawn(names, rx, options)
}
