//! Live metrics for Prometheus: a plain snapshot of a run, its rendering in the text and
//! OpenMetrics formats, a latest-value handoff, and a small `/metrics` responder thread.
//!
//! Nothing here knows mqload's stats types. The intended wiring: the collector fills a
//! [`LoadSnapshot`] from its totals about once a second (never per message) and
//! [`SnapshotPublisher::publish`]es it; the [`MetricsResponder`] renders the latest one on
//! each scrape into a reused buffer.
//!
//! ```no_run
//! use mqload::metrics::{LoadSnapshot, MetricsResponder, ResponderOptions, snapshot_handoff};
//!
//! let (publisher, reader) = snapshot_handoff::<LoadSnapshot>();
//! let addr = "127.0.0.1:9273".parse().expect("an address");
//! let responder = MetricsResponder::start(addr, reader, ResponderOptions::default())
//!     .expect("the port is free");
//! let mut snapshot = publisher.blank();
//! snapshot.users = 100;
//! publisher.publish(snapshot);
//! responder.stop();
//! ```

pub mod broker;
pub mod exposition;
pub mod handoff;
pub mod histogram;
pub mod http;
pub mod responder;
pub mod snapshot;

pub use broker::BrokerSnapshot;
pub use exposition::{Exposition, Family, Format, MetricType};
pub use handoff::{SnapshotPublisher, SnapshotReader, snapshot_handoff};
pub use histogram::{LATENCY_BUCKET_BOUNDS, LatencyHistogram};
pub use responder::{MetricsResponder, ResponderError, ResponderOptions};
pub use snapshot::{FailureTotal, LoadSnapshot, RequestTotals, Snapshot};

/// A `--prometheus` address: an IP and a port (a host name would need a lookup).
pub fn parse_listen_addr(text: &str) -> Result<std::net::SocketAddr, String> {
    text.parse()
        .map_err(|_| "give an IP address and port to listen on, e.g. 127.0.0.1:9273".to_owned())
}
