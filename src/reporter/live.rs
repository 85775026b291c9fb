//! `--prometheus`: fills a [`LoadSnapshot`] from the collector's totals and hands it to the
//! `/metrics` responder, after each burst of merged deltas (about once a second, never per
//! message), so a scrape sees counts at most a few milliseconds older than the deltas.

use std::time::{Duration, Instant};

use crate::metrics::{FailureTotal, LoadSnapshot, RequestTotals, SnapshotPublisher};
use crate::report::csv::CsvLayout;
use crate::stats::Collector;

/// Snapshots are not refilled more often than this, however many threads send deltas.
const MIN_PUBLISH_GAP: Duration = Duration::from_millis(100);

/// The reporting thread's end of the live metrics.
#[derive(Debug)]
pub struct LiveMetrics {
    publisher: SnapshotPublisher<LoadSnapshot>,
    /// The spawn schedule, for the users gauge (users spawned, as Locust counts them).
    layout: CsvLayout,
    started: Instant,
    last_published: Option<Instant>,
}

impl LiveMetrics {
    /// Publishes through `publisher`; users are counted by `layout`'s spawn schedule from now.
    pub fn new(publisher: SnapshotPublisher<LoadSnapshot>, layout: &CsvLayout) -> LiveMetrics {
        LiveMetrics {
            publisher,
            // Not `.clone()`: the layout is `Copy` today and may not stay so.
            layout: CsvLayout::clone(layout),
            started: Instant::now(),
            last_published: None,
        }
    }

    /// Publishes the collector's state unless one was published less than
    /// [`MIN_PUBLISH_GAP`] ago (`force` publishes anyway: the run's last state).
    pub fn publish(&mut self, collector: &Collector, now: Instant, force: bool) {
        if !force
            && self
                .last_published
                .is_some_and(|last| now.duration_since(last) < MIN_PUBLISH_GAP)
        {
            return;
        }
        let mut snapshot = self.publisher.blank();
        let users = self
            .layout
            .users_spawned(now.duration_since(self.started).as_secs_f64());
        fill(&mut snapshot, collector, users);
        self.publisher.publish(snapshot);
        self.last_published = Some(now);
    }
}

/// Writes `collector`'s totals and gauges into a cleared `snapshot`.
fn fill(snapshot: &mut LoadSnapshot, collector: &Collector, users: u64) {
    for (kind, name, requests, histogram, sum_us) in collector.name_totals() {
        let mut totals = RequestTotals {
            kind: kind.label().to_owned(),
            name: name.to_owned(),
            requests,
            ..RequestTotals::default()
        };
        totals.response_time.fill_from_hdr_micros(histogram, sum_us);
        snapshot.requests.push(totals);
    }
    for (reason, failures) in collector.failures_by_reason() {
        // The same text can come from several names; each series appears once.
        match snapshot.failures.iter_mut().find(|f| f.reason == reason) {
            Some(total) => total.failures += failures,
            None => snapshot.failures.push(FailureTotal {
                reason: reason.to_owned(),
                failures,
            }),
        }
    }
    let (connections, delivery) = collector.counts();
    let (connected, flow) = collector.gauges();
    snapshot.connects = connections.connects;
    snapshot.connection_drops = connections.drops;
    snapshot.deliveries = delivery.received;
    snapshot.users = users;
    snapshot.connected = connected;
    snapshot.in_flight = flow.in_flight;
    snapshot.held_back = flow.held_back;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::snapshot_handoff;
    use crate::stats::fixtures::{NAMES, two_thread_deltas};

    #[test]
    fn the_snapshot_carries_the_collector_totals_and_gauges() {
        let mut collector = Collector::new(NAMES.iter().map(|s| s.to_string()).collect(), 10);
        let (a, b) = two_thread_deltas();
        collector.merge(a);
        collector.merge(b);
        let mut snapshot = LoadSnapshot::default();
        fill(&mut snapshot, &collector, 9);

        let publish = snapshot
            .requests
            .iter()
            .find(|r| r.kind == "publish")
            .expect("a publish row");
        assert_eq!((publish.name.as_str(), publish.requests), (NAMES[2], 1000));
        assert_eq!(publish.response_time.count(), 1000);
        let expected_sum = (1..=1000_u64).sum::<u64>() as f64 / 1e6;
        assert!((publish.response_time.sum_seconds() - expected_sum).abs() < 1e-9);
        let connect = snapshot.requests.iter().find(|r| r.kind == "connect");
        assert_eq!(connect.map(|r| r.requests), Some(2));
        let mut failures: Vec<(&str, u64)> = snapshot
            .failures
            .iter()
            .map(|f| (f.reason.as_str(), f.failures))
            .collect();
        failures.sort();
        assert_eq!(failures, [("refused", 1), ("timeout", 1)]);
        assert_eq!((snapshot.users, snapshot.connected), (9, 7));
    }

    #[test]
    fn publishing_is_throttled_unless_forced() {
        let (publisher, mut reader) = snapshot_handoff::<LoadSnapshot>();
        let layout = CsvLayout {
            full_history: false,
            users: 5,
            spawn_rate: 0.0,
            stages: None,
        };
        let mut live = LiveMetrics::new(publisher, &layout);
        let collector = Collector::new(NAMES.iter().map(|s| s.to_string()).collect(), 5);
        let now = Instant::now();
        live.publish(&collector, now, false);
        assert_eq!(reader.latest().users, 5, "all users spawned at once");
        live.last_published = Some(now);
        let (publisher2, mut reader2) = snapshot_handoff::<LoadSnapshot>();
        live.publisher = publisher2;
        live.publish(&collector, now + Duration::from_millis(10), false);
        assert_eq!(reader2.latest().users, 0, "too soon: nothing published");
        live.publish(&collector, now + Duration::from_millis(10), true);
        assert_eq!(reader2.latest().users, 5, "forced");
    }
}
