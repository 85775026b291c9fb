//! End to end against a real mosquitto with TLS mutual auth: what mqload reports as published
//! is what an independent subscriber (mosquitto_sub) and the broker's own counter saw.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use base64::Engine;
use common::{Broker, Pki, Subscriber, broker_args, count, expect_stats_row, run_against, serial};

#[test]
fn every_qos1_publish_reported_arrives_exactly_once_with_the_seed_body() {
    if !common::require_broker_tools() {
        return;
    }
    let _guard = serial();
    let pki = Pki::new(false);
    let broker = Broker::start(&pki);
    let subscriber = Subscriber::start(&broker, "mqload/e2e/#");
    let csv = tempfile::tempdir().expect("csv dir");
    let prefix = csv.path().join("run");
    let out = run_against(
        &pki,
        &broker,
        &[
            "-u",
            "4",
            "-r",
            "100",
            "-t",
            "4s",
            "--qos",
            "1",
            "--throughput",
            "20",
            "--topic",
            "mqload/e2e/{i}",
            "--run-id",
            "RUN-E2E-1",
            "--payload-kb",
            "1",
            "--csv",
            prefix.to_str().expect("utf-8"),
            "--only-summary",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let row = expect_stats_row(
        &csv.path().join("run_stats.csv"),
        "publish:1:mqload/e2e/{i}",
    );
    let published = count(&row, "Request Count");
    assert_eq!(count(&row, "Failure Count"), 0, "{}", out.describe());
    // 4 users x 20/s x (4 s - 1 s before the first message) = 240 at most, plus one each for
    // rounding. Each user's schedule starts at its own CONNACK, so a slow TLS handshake on a
    // loaded machine costs 20 messages a second per user: 200 allows up to ~0.5 s each. Exact
    // delivery is checked below against the subscriber, whatever the count.
    assert!(
        (200..=244).contains(&published),
        "published {published}\n{}",
        out.describe()
    );

    subscriber.wait_for(published as usize, Duration::from_secs(10));
    // Anything beyond what was reported would arrive now.
    std::thread::sleep(Duration::from_millis(300));
    let messages = subscriber.stop();
    assert_eq!(messages.len() as u64, published, "delivered vs reported");

    let mut seen = HashSet::new();
    let mut per_client: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for message in &messages {
        let body: serde_json::Value =
            serde_json::from_slice(&message.payload).expect("body is JSON");
        assert_eq!(body["info"]["test_run_id"], "RUN-E2E-1");
        assert!(
            body["info"]["ts"].as_f64().is_some_and(|ts| ts > 1.7e9),
            "{body}"
        );
        let data = body["random_5KiB_data"].as_str().expect("random data");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64");
        assert_eq!(raw.len(), 1024, "--payload-kb 1 is 1024 random bytes");
        let client = body["info"]["client_id"]
            .as_str()
            .expect("client id")
            .to_string();
        assert!(
            client.starts_with("locust-") && client.len() == 23,
            "{client}"
        );
        let seq = body["info"]["seq"].as_u64().expect("seq");
        assert!(
            seen.insert((client.clone(), seq)),
            "duplicate {client} {seq}"
        );
        assert!(
            message.topic.starts_with("mqload/e2e/"),
            "{}",
            message.topic
        );
        per_client.entry(client).or_default().push(seq);
    }
    assert_eq!(per_client.len(), 4, "one client id per user");
    for (client, mut seqs) in per_client {
        seqs.sort_unstable();
        let expected: Vec<u64> = (0..seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "{client}: seq must run from 0 without gaps");
    }
}

#[test]
fn ten_clients_at_100_msgs_for_10s_deliver_what_the_plan_says() {
    if !common::require_broker_tools() {
        return;
    }
    let _guard = serial();
    let pki = Pki::new(false);
    let broker = Broker::start(&pki);
    let before = common::sys_messages_received(&broker);
    let csv = tempfile::tempdir().expect("csv dir");
    let prefix = csv.path().join("plan");
    let out = run_against(
        &pki,
        &broker,
        &[
            "--headless",
            "--users",
            "10",
            "--spawn-rate",
            "100",
            "--run-time",
            "10s",
            "--qos",
            "1",
            "--throughput",
            "100",
            "--csv",
            prefix.to_str().expect("utf-8"),
        ],
        Duration::from_secs(40),
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let row = expect_stats_row(
        &csv.path().join("plan_stats.csv"),
        "publish:1:locust/test/topic",
    );
    let published = count(&row, "Request Count");
    assert_eq!(count(&row, "Failure Count"), 0);
    // Each client's first message is due 1 s after its CONNACK: 10 x 100 x 9 s = 9,000.
    let plan = 9_000f64;
    assert!(
        (published as f64 - plan).abs() <= plan * 0.02,
        "published {published}, plan {plan}\n{}",
        out.describe()
    );
    // The broker's own counter agrees exactly (nobody else publishes to it).
    let received =
        common::wait_sys_messages_received(&broker, before + published, Duration::from_secs(5));
    assert_eq!(
        received - before,
        published,
        "broker's $SYS count vs mqload's"
    );
    // A table every 2 s while running, then the final report.
    let tables = out.stdout.matches("# reqs").count();
    assert!(tables >= 4, "periodic tables: {tables}\n{}", out.stdout);
    assert!(
        out.stdout.contains("Response time percentiles"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Send lag"), "{}", out.stdout);
    let connect = expect_stats_row(&csv.path().join("plan_stats.csv"), "connect");
    assert_eq!(count(&connect, "Request Count"), 10);
}

#[test]
fn qos0_and_qos2_are_counted_as_a_subscriber_receives_them() {
    if !common::require_broker_tools() {
        return;
    }
    let _guard = serial();
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    for qos in ["0", "2"] {
        let topic = format!("mqload/q{qos}");
        let subscriber = Subscriber::start(&broker, &topic);
        let csv = tempfile::tempdir().expect("csv dir");
        let prefix = csv.path().join("q");
        let out = run_against(
            &pki,
            &broker,
            &[
                "-u",
                "3",
                "-r",
                "50",
                "-t",
                "3s",
                "--qos",
                qos,
                "--throughput",
                "50",
                "--payload-format",
                "raw",
                "--payload-bytes",
                "100",
                "--only-summary",
                "--topic",
                &topic,
                "--csv",
                prefix.to_str().expect("utf-8"),
            ],
            Duration::from_secs(30),
        );
        assert_eq!(out.code, Some(0), "QoS {qos}: {}", out.describe());
        let row = expect_stats_row(
            &csv.path().join("q_stats.csv"),
            &format!("publish:{qos}:{topic}"),
        );
        let published = count(&row, "Request Count");
        assert!(
            published >= 250,
            "QoS {qos}: {published}\n{}",
            out.describe()
        );
        // 100 random bytes after the 32-byte delivery stamp.
        assert_eq!(row["Average Content Size"], "132.0");
        subscriber.wait_for(published as usize, Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(300));
        let messages = subscriber.stop();
        assert_eq!(
            messages.len() as u64,
            published,
            "QoS {qos}: delivered vs reported"
        );
        assert!(
            messages
                .iter()
                .all(|m| m.payload.len() == 132 && m.payload.starts_with(b"MQL1"))
        );
    }
}

#[test]
fn sigterm_mid_run_disconnects_cleanly_and_still_reports() {
    if !common::require_broker_tools() {
        return;
    }
    let _guard = serial();
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    let csv = tempfile::tempdir().expect("csv dir");
    let prefix = csv.path().join("sig");
    let mut args = broker_args(&pki, &broker);
    args.extend(
        [
            "-u",
            "5",
            "-r",
            "100",
            "--qos",
            "1",
            "--throughput",
            "10",
            "--csv",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args.push(prefix.to_str().expect("utf-8").to_string());
    // No --run-time: only the signal ends this run.
    let out = common::run_with_signal(
        common::mqload_command(&args, &[]),
        Duration::from_secs(30),
        Some((Duration::from_secs(3), libc::SIGTERM)),
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(out.elapsed < Duration::from_secs(10), "{}", out.describe());
    assert!(
        out.stdout.contains("Response time percentiles"),
        "{}",
        out.stdout
    );
    let disconnect = expect_stats_row(&csv.path().join("sig_stats.csv"), "disconnect");
    assert_eq!(count(&disconnect, "Request Count"), 5);
    assert_eq!(count(&disconnect, "Failure Count"), 0);
    // mosquitto logs "disconnected." for a DISCONNECT packet, "closed its connection" otherwise.
    assert!(
        common::wait_until(Duration::from_secs(3), || broker
            .log()
            .matches(" disconnected.")
            .count()
            == 5),
        "{}",
        broker.log()
    );
    // (The harness's own readiness probe shows up as "<unknown> closed its connection".)
    let dropped = broker
        .log()
        .lines()
        .filter(|l| l.contains("closed its connection") && !l.contains("<unknown>"))
        .count();
    assert_eq!(dropped, 0, "{}", broker.log());
}
