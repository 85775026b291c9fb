//! The built-in broker's counters as Prometheus sees them (`mqload broker --prometheus ADDR`),
//! as plain data the broker fills, so this room still knows nothing of the broker's types.

use super::exposition::{Exposition, Family, MetricType};
use super::snapshot::Snapshot;

/// The broker's counters since it started, and its open connections now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrokerSnapshot {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed for a malformed or forbidden packet, or a failed TLS handshake.
    pub bad_packets: u64,
    /// PUBLISH packets received.
    pub received: u64,
    /// PUBLISH packets sent to subscribers.
    pub sent: u64,
    /// QoS 0 deliveries dropped for a full subscriber buffer.
    pub dropped: u64,
    /// Subscribers disconnected for not reading their deliveries.
    pub slow_disconnects: u64,
    /// Connections closed for silence or no CONNECT in time.
    pub expired: u64,
    /// Connections closed because their client id connected again.
    pub taken_over: u64,
    /// Connections open now.
    pub open_connections: u64,
}

const fn counter(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        help,
        metric_type: MetricType::Counter,
        unit: None,
    }
}

const ACCEPTED: Family = counter(
    "mqload_broker_connections_accepted",
    "Connections the built-in broker accepted.",
);
const BAD_PACKETS: Family = counter(
    "mqload_broker_bad_packet_closes",
    "Connections closed for a malformed or forbidden packet or a failed TLS handshake.",
);
const RECEIVED: Family = counter(
    "mqload_broker_publishes_received",
    "PUBLISH packets the built-in broker received.",
);
const SENT: Family = counter(
    "mqload_broker_publishes_sent",
    "PUBLISH packets the built-in broker sent to subscribers.",
);
const DROPPED: Family = counter(
    "mqload_broker_deliveries_dropped",
    "QoS 0 deliveries dropped for a full subscriber buffer.",
);
const SLOW: Family = counter(
    "mqload_broker_slow_subscriber_closes",
    "Subscribers disconnected for not reading their deliveries.",
);
const EXPIRED: Family = counter(
    "mqload_broker_expired_closes",
    "Connections closed for silence or no CONNECT in time.",
);
const TAKEN_OVER: Family = counter(
    "mqload_broker_taken_over_closes",
    "Connections closed because their client id connected again.",
);
const OPEN: Family = Family {
    name: "mqload_broker_open_connections",
    help: "Connections open now.",
    metric_type: MetricType::Gauge,
    unit: None,
};

impl Snapshot for BrokerSnapshot {
    fn clear(&mut self) {
        *self = BrokerSnapshot::default();
    }

    fn render(&self, out: &mut Exposition<'_>) {
        for (family, value) in [
            (&ACCEPTED, self.accepted),
            (&BAD_PACKETS, self.bad_packets),
            (&RECEIVED, self.received),
            (&SENT, self.sent),
            (&DROPPED, self.dropped),
            (&SLOW, self.slow_disconnects),
            (&EXPIRED, self.expired),
            (&TAKEN_OVER, self.taken_over),
        ] {
            out.family(family);
            out.counter(family, &[], value);
        }
        out.family(&OPEN);
        out.gauge(&OPEN, &[], self.open_connections);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::exposition::Format;

    #[test]
    fn every_counter_and_the_gauge_are_served() {
        let snapshot = BrokerSnapshot {
            accepted: 1,
            bad_packets: 2,
            received: 3,
            sent: 4,
            dropped: 5,
            slow_disconnects: 6,
            expired: 7,
            taken_over: 8,
            open_connections: 9,
        };
        let mut text = String::new();
        let mut exposition = Exposition::new(&mut text, Format::PrometheusText);
        snapshot.render(&mut exposition);
        exposition.finish();
        for line in [
            "mqload_broker_connections_accepted_total 1",
            "mqload_broker_bad_packet_closes_total 2",
            "mqload_broker_publishes_received_total 3",
            "mqload_broker_publishes_sent_total 4",
            "mqload_broker_deliveries_dropped_total 5",
            "mqload_broker_slow_subscriber_closes_total 6",
            "mqload_broker_expired_closes_total 7",
            "mqload_broker_taken_over_closes_total 8",
            "mqload_broker_open_connections 9",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
