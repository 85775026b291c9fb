//! Optional report sections built from other features' figures (the JSON's `sections`, shown
//! by the HTML page as key/value tables): the offered load against what was achieved, and for
//! AWS IoT Core the cost of what was actually sent; the built-in broker's own counters when the
//! run tested it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::broker::RunningBroker;
use crate::guard::{self, LoadShape};
use crate::plan::RunPlan;
use crate::stats::{RequestKind, Snapshot};

/// Publish requests in the run (every publish row), failures included.
fn published(stats: &Snapshot) -> u64 {
    stats
        .rows
        .iter()
        .filter(|r| r.kind == Some(RequestKind::Publish))
        .map(|r| r.num_requests)
        .sum()
}

/// `offered_load` (always) and `aws_cost` (when `aws` is set: `--aws` or an AWS IoT host),
/// priced at `price_per_million` dollars per million metered messages.
pub fn guard_sections(
    plan: &RunPlan,
    stats: &Snapshot,
    aws: bool,
    price_per_million: f64,
) -> Vec<(String, Value)> {
    let shape = LoadShape::from_plan(plan);
    let offered = shape.offered();
    let sent = published(stats);
    let achieved: f64 = stats
        .rows
        .iter()
        .filter(|r| r.kind == Some(RequestKind::Publish))
        .map(|r| r.total_rps)
        .sum();
    let mut sections = vec![(
        "offered_load".to_owned(),
        json!({
            "planned_messages_per_s": offered.messages_per_sec,
            "achieved_messages_per_s": achieved,
            "planned_messages": shape.messages_in_run(),
            "sent_messages": sent,
            "message_bytes": offered.message_bytes,
            "bytes_per_s_per_connection": offered.bytes_per_sec_per_connection,
        }),
    )];
    if aws {
        let estimate = guard::estimate_cost(&shape, price_per_million);
        let metered = estimate.metered_per_message;
        sections.push((
            "aws_cost".to_owned(),
            json!({
                "metered_per_message": metered,
                "price_per_million_usd": price_per_million,
                "planned_usd": estimate.dollars,
                "sent_usd": estimate.dollars_for(sent as f64),
                "usd_per_hour_at_full_load": estimate.dollars_per_hour,
            }),
        ));
    }
    sections
}

/// `ack_timing`: how ack and delivery times were taken, and how far batching can move them.
/// The kernel stamps a read once (SO_TIMESTAMPNS, the newest segment's arrival), so an ack read
/// together with later ones looks late by the gap to the last arrival in that read. Every
/// readable edge is read at the next wakeup, so that gap is below one wake interval plus one
/// turn of the loop; the send-lag p99 says how late the loop ran, so their sum is the bound
/// this run's figures carry at the 99th percentile (`tests/read_stamps.rs` measures the error).
pub fn ack_timing(plan: &RunPlan, stats: &Snapshot) -> (String, Value) {
    let wake_us = u64::try_from(plan.wake_interval.as_micros()).unwrap_or(u64::MAX);
    (
        "ack_timing".to_owned(),
        json!({
            "source": "kernel receive timestamp, one per read (SO_TIMESTAMPNS)",
            "wake_interval_us": wake_us,
            "send_lag_p99_us": stats.send_lag.p99_us,
            "batched_read_error_p99_bound_us": wake_us.saturating_add(stats.send_lag.p99_us),
            "meaning": "an ack read with later ones is stamped at the read's last arrival: \
                        late by at most one wake interval plus one loop turn (send-lag p99)",
        }),
    )
}

/// How long [`built_in_broker`] waits for the run's connections to close, so the broker has
/// read everything they sent (as `app` waits before printing its counters).
const BROKER_IDLE_WAIT: Duration = Duration::from_secs(5);

/// `built_in_broker`: the counters of the broker a run without `--host` tested (its own
/// count of messages received, independent of mqload's).
pub fn built_in_broker(broker: &RunningBroker) -> (String, Value) {
    let deadline = Instant::now() + BROKER_IDLE_WAIT;
    while broker.open_connections() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let s = broker.stats();
    (
        "built_in_broker".to_owned(),
        json!({
            "connections_accepted": s.accepted,
            "messages_received": s.received,
            "messages_sent": s.sent,
            "dropped": s.dropped,
            "bad_packets": s.bad_packets,
            "slow_disconnects": s.slow_disconnects,
            "keepalive_expired": s.expired,
            "taken_over": s.taken_over,
        }),
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::Cli;
    use crate::stats::RowStats;

    #[test]
    fn offered_load_always_and_the_cost_of_what_was_sent_for_aws() {
        let cli = Cli::parse_from([
            "mqload",
            "--host",
            "127.0.0.1",
            "--no-tls",
            "-u",
            "10",
            "--throughput",
            "2",
            "--payload-bytes",
            "6000",
            "--payload-format",
            "raw",
            "-t",
            "10s",
        ]);
        let plan = RunPlan::from_cli(&cli).expect("valid plan");
        let mut stats = Snapshot::default();
        stats.rows.push(RowStats {
            name: "publish:0:locust/test/topic".into(),
            kind: Some(RequestKind::Publish),
            num_requests: 1_000_000,
            total_rps: 19.5,
            ..RowStats::default()
        });
        let local = guard_sections(&plan, &stats, false, 1.0);
        assert_eq!(local.len(), 1);
        let offered = &local[0].1;
        assert_eq!(offered["planned_messages_per_s"], 20.0);
        assert_eq!(offered["achieved_messages_per_s"], 19.5);
        assert_eq!(offered["sent_messages"], 1_000_000);
        let aws = guard_sections(&plan, &stats, true, 1.0);
        let cost = &aws[1].1;
        assert_eq!(aws[1].0, "aws_cost");
        assert_eq!(
            cost["metered_per_message"], 2,
            "6 KB bills as two 5 KB messages"
        );
        assert_eq!(
            cost["sent_usd"], 2.0,
            "a million messages x 2 at $1 per million"
        );
    }

    #[test]
    fn the_cost_of_what_was_sent_bills_deliveries_as_the_estimate_does() {
        let cli = Cli::parse_from([
            "mqload",
            "--host",
            "127.0.0.1",
            "--no-tls",
            "-u",
            "10",
            "--throughput",
            "2",
            "--payload-bytes",
            "6000",
            "--payload-format",
            "raw",
            "-t",
            "10s",
            "--subscribers",
            "3",
            "--subscribe-topic",
            "locust/#",
        ]);
        let plan = RunPlan::from_cli(&cli).expect("valid plan");
        let mut stats = Snapshot::default();
        stats.rows.push(RowStats {
            name: "publish:0:locust/test/topic".into(),
            kind: Some(RequestKind::Publish),
            num_requests: 1_000_000,
            ..RowStats::default()
        });
        let aws = guard_sections(&plan, &stats, true, 1.0);
        let (offered, cost) = (&aws[0].1, &aws[1].1);
        let planned = offered["planned_messages"].as_f64().unwrap_or(0.0);
        let planned_usd = cost["planned_usd"].as_f64().unwrap_or(0.0);
        assert!(planned > 0.0, "{offered}");
        let sent_usd = cost["sent_usd"].as_f64().unwrap_or(0.0);
        assert!(
            (sent_usd - planned_usd / planned * 1e6).abs() < 1e-9,
            "a message sent costs what a planned one does: {cost}"
        );
        assert_eq!(
            cost["sent_usd"], 8.0,
            "a million publishes x 2 metered x (1 + 3 deliveries) at $1 per million"
        );
    }

    #[test]
    fn the_ack_timing_bound_is_one_wake_interval_plus_the_send_lag_p99() {
        let cli = Cli::parse_from([
            "mqload",
            "--host",
            "127.0.0.1",
            "--no-tls",
            "--wake-interval",
            "2ms",
        ]);
        let plan = RunPlan::from_cli(&cli).expect("valid plan");
        let mut stats = Snapshot::default();
        stats.send_lag.p99_us = 350;
        let (name, section) = ack_timing(&plan, &stats);
        assert_eq!(name, "ack_timing");
        assert_eq!(section["wake_interval_us"], 2_000);
        assert_eq!(section["batched_read_error_p99_bound_us"], 2_350);
    }
}
