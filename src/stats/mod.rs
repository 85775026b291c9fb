//! Per-thread request statistics (HDR histograms in microseconds), sent as deltas to a collector.
//!
//! Workers record into [`WorkerStats`] without locks and send a [`StatsDelta`] every second;
//! a [`Collector`] merges them into [`Snapshot`]s. This room prints nothing: the reporting
//! thread (`crate::reporter`) owns the collector and hands snapshots to `crate::report`.

mod collector;
mod connections;
mod connects;
mod delivery;
mod entry;
mod recorder;
mod request_kind;
mod series;
mod snapshot;
mod stage_totals;

pub use collector::Collector;
#[cfg(test)]
pub(crate) use collector::fixtures;
pub use connections::ConnectionCounts;
pub use connects::ConnectCounts;
pub use delivery::{DeliveryCounts, DeliveryStats};
pub use recorder::{FlowGauges, StatsDelta, WorkerStats};
pub use request_kind::RequestKind;
pub use series::{MAX_POINTS, SeriesPoint, TimeSeries};
pub use snapshot::{
    AGGREGATED, ErrorRow, LagStats, PERCENTILE_LABELS, PERCENTILES, RowStats,
    SEND_LAG_BOTTLENECK_US, Snapshot,
};
pub use stage_totals::{STAGE_QUANTILES, StageFigures, StageSpans};

/// Locust's request type for every row mqload reports.
pub const METHOD: &str = "MQTT";

/// Index of a request name in the run's name table (`RunPlan::request_names`).
pub type NameId = usize;

/// What workers send the collector.
#[derive(Debug)]
// One Delta per engine thread per second: moving it beats boxing it on the heap.
#[allow(clippy::large_enum_variant)]
pub enum StatsMsg {
    /// Measurements since the previous delta of that thread.
    Delta(StatsDelta),
    /// `--reset-stats`: spawning is complete; forget the request statistics so far, as
    /// Locust's `RequestStats.reset_all` does.
    ResetRequests,
}
