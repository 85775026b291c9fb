//! Wall-clock time as unix seconds, for the timestamps Locust's CSVs and the reports carry.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, as unix seconds (0 if the clock is set before 1970).
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
