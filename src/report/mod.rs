//! Writers over the collector's state: the Locust-style console table, percentiles, errors, CSV.
//!
//! They take plain [`crate::stats::Snapshot`]s, never live histograms, so further formats
//! (JSON, HTML) can be added beside them without touching the collector.

pub mod console;
pub mod csv;
