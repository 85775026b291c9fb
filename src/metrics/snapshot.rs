//! What mqload's `/metrics` serves, as plain data: one snapshot of a run's counters, gauges
//! and response-time histograms, independent of the stats types that fill it, and its
//! rendering to either text format.

use super::exposition::{Exposition, Family, MetricType};
use super::histogram::LatencyHistogram;

/// A value the responder can serve: the producer fills one about once a second and hands it
/// over (see [`super::handoff`]); the responder renders the latest on each scrape.
pub trait Snapshot: Default + Send + 'static {
    /// Empties the value for refilling, keeping what it has allocated.
    fn clear(&mut self);
    /// Writes every family and sample (not the closing `# EOF`; the caller finishes).
    fn render(&self, exposition: &mut Exposition<'_>);
}

/// One request name's totals since the run began (failed requests count here too, as in
/// Locust). A snapshot holds each `(kind, name)` once: both formats require each series to
/// appear once per exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestTotals {
    /// What the request is: `connect`, `publish`, `subscribe`, `disconnect`.
    pub kind: String,
    /// Its Locust-style name, e.g. `publish:1:devices/{id}/telemetry`.
    pub name: String,
    /// Requests made.
    pub requests: u64,
    /// Their response times.
    pub response_time: LatencyHistogram,
}

/// Failures of one reason since the run began.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FailureTotal {
    /// Why they failed, e.g. `timeout` or `connack refused`.
    pub reason: String,
    /// How many.
    pub failures: u64,
}

/// A load run as Prometheus sees it: totals since the start, and the state now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadSnapshot {
    /// Requests by kind and name.
    pub requests: Vec<RequestTotals>,
    /// Failures by reason.
    pub failures: Vec<FailureTotal>,
    /// Successful MQTT connects.
    pub connects: u64,
    /// Connections lost after they were up.
    pub connection_drops: u64,
    /// Messages delivered to mqload's subscribers.
    pub deliveries: u64,
    /// Simulated users now.
    pub users: u64,
    /// Users connected now.
    pub connected: u64,
    /// Publishes sent and not yet acknowledged.
    pub in_flight: u64,
    /// Publishes due but held back (by the broker's receive maximum or back-pressure).
    pub held_back: u64,
}

const REQUESTS: Family = Family {
    name: "mqload_requests",
    help: "Requests made, failed ones included, by kind and name.",
    metric_type: MetricType::Counter,
    unit: None,
};
const FAILURES: Family = Family {
    name: "mqload_failures",
    help: "Failed requests by reason.",
    metric_type: MetricType::Counter,
    unit: None,
};
const CONNECTS: Family = Family {
    name: "mqload_connects",
    help: "Successful MQTT connects (CONNACK accepted).",
    metric_type: MetricType::Counter,
    unit: None,
};
const CONNECTION_DROPS: Family = Family {
    name: "mqload_connection_drops",
    help: "Connections lost after they were up.",
    metric_type: MetricType::Counter,
    unit: None,
};
const DELIVERIES: Family = Family {
    name: "mqload_deliveries",
    help: "Messages delivered to mqload's subscribers.",
    metric_type: MetricType::Counter,
    unit: None,
};
const USERS: Family = Family {
    name: "mqload_users",
    help: "Simulated users now.",
    metric_type: MetricType::Gauge,
    unit: None,
};
const CONNECTED: Family = Family {
    name: "mqload_connected_users",
    help: "Users with an MQTT session up now.",
    metric_type: MetricType::Gauge,
    unit: None,
};
const IN_FLIGHT: Family = Family {
    name: "mqload_in_flight_messages",
    help: "Publishes sent and not yet acknowledged.",
    metric_type: MetricType::Gauge,
    unit: None,
};
const HELD_BACK: Family = Family {
    name: "mqload_held_back_messages",
    help: "Publishes due but held back by flow control.",
    metric_type: MetricType::Gauge,
    unit: None,
};
const RESPONSE_TIME: Family = Family {
    name: "mqload_response_time_seconds",
    help: "Response time from when a request was due to its answer, by kind and name.",
    metric_type: MetricType::Histogram,
    unit: Some("seconds"),
};

impl Snapshot for LoadSnapshot {
    fn clear(&mut self) {
        self.requests.clear();
        self.failures.clear();
        *self = LoadSnapshot {
            requests: std::mem::take(&mut self.requests),
            failures: std::mem::take(&mut self.failures),
            ..LoadSnapshot::default()
        };
    }

    fn render(&self, out: &mut Exposition<'_>) {
        out.family(&REQUESTS);
        for request in &self.requests {
            let labels = [
                ("kind", request.kind.as_str()),
                ("name", request.name.as_str()),
            ];
            out.counter(&REQUESTS, &labels, request.requests);
        }
        out.family(&FAILURES);
        for failure in &self.failures {
            out.counter(
                &FAILURES,
                &[("reason", failure.reason.as_str())],
                failure.failures,
            );
        }
        for (family, value) in [
            (&CONNECTS, self.connects),
            (&CONNECTION_DROPS, self.connection_drops),
            (&DELIVERIES, self.deliveries),
        ] {
            out.family(family);
            out.counter(family, &[], value);
        }
        for (family, value) in [
            (&USERS, self.users),
            (&CONNECTED, self.connected),
            (&IN_FLIGHT, self.in_flight),
            (&HELD_BACK, self.held_back),
        ] {
            out.family(family);
            out.gauge(family, &[], value);
        }
        out.family(&RESPONSE_TIME);
        for request in &self.requests {
            let labels = [
                ("kind", request.kind.as_str()),
                ("name", request.name.as_str()),
            ];
            out.histogram(&RESPONSE_TIME, &labels, &request.response_time);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::exposition::Format;

    fn sample_snapshot() -> LoadSnapshot {
        let mut response_time = LatencyHistogram::default();
        response_time.record_micros(800, 10);
        LoadSnapshot {
            requests: vec![RequestTotals {
                kind: "publish".into(),
                name: "publish:1:t/\"x\"".into(),
                requests: 10,
                response_time,
            }],
            failures: vec![FailureTotal {
                reason: "timeout".into(),
                failures: 2,
            }],
            connects: 3,
            connection_drops: 1,
            deliveries: 9,
            users: 4,
            connected: 3,
            in_flight: 5,
            held_back: 6,
        }
    }

    fn render(snapshot: &LoadSnapshot, format: Format) -> String {
        let mut out = String::new();
        let mut exposition = Exposition::new(&mut out, format);
        snapshot.render(&mut exposition);
        exposition.finish();
        out
    }

    #[test]
    fn every_field_is_served() {
        let text = render(&sample_snapshot(), Format::PrometheusText);
        for line in [
            "mqload_requests_total{kind=\"publish\",name=\"publish:1:t/\\\"x\\\"\"} 10",
            "mqload_failures_total{reason=\"timeout\"} 2",
            "mqload_connects_total 3",
            "mqload_connection_drops_total 1",
            "mqload_deliveries_total 9",
            "mqload_users 4",
            "mqload_connected_users 3",
            "mqload_in_flight_messages 5",
            "mqload_held_back_messages 6",
            "mqload_response_time_seconds_bucket{kind=\"publish\",name=\"publish:1:t/\\\"x\\\"\",le=\"0.0005\"} 0",
            "mqload_response_time_seconds_bucket{kind=\"publish\",name=\"publish:1:t/\\\"x\\\"\",le=\"0.001\"} 10",
            "mqload_response_time_seconds_sum{kind=\"publish\",name=\"publish:1:t/\\\"x\\\"\"} 0.008",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("# EOF"));
        assert!(render(&sample_snapshot(), Format::OpenMetrics).ends_with("\n# EOF\n"));
    }

    #[test]
    fn clear_keeps_capacity_and_zeroes_everything() {
        let mut snapshot = sample_snapshot();
        let capacity = snapshot.requests.capacity();
        snapshot.clear();
        assert_eq!(snapshot, LoadSnapshot::default());
        assert_eq!(snapshot.requests.capacity(), capacity);
    }

    #[test]
    fn rendering_again_into_a_warm_buffer_does_not_grow_it() {
        let snapshot = sample_snapshot();
        let mut out = String::new();
        for _ in 0..2 {
            out.clear();
            let mut exposition = Exposition::new(&mut out, Format::OpenMetrics);
            snapshot.render(&mut exposition);
            exposition.finish();
        }
        let (capacity, pointer) = (out.capacity(), out.as_ptr());
        out.clear();
        let mut exposition = Exposition::new(&mut out, Format::OpenMetrics);
        snapshot.render(&mut exposition);
        exposition.finish();
        assert_eq!((out.capacity(), out.as_ptr()), (capacity, pointer));
    }
}
