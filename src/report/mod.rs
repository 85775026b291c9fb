//! Writers over the collector's state: the Locust-style console table, percentiles, errors, CSV,
//! the live status line, and the JSON and HTML report files.
//!
//! They take plain [`crate::stats::Snapshot`]s, never live histograms, so further formats
//! (JSON, HTML) can be added beside them without touching the collector.

pub mod console;
pub mod csv;
pub mod delivery;
pub mod find_limit;
pub mod html;
pub mod json;
pub mod locust_json;
pub mod output;
pub mod sections;
pub mod stages;
pub mod status;
