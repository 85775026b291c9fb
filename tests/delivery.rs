//! Subscribers against a real mosquitto: what mqload's subscribers count (sent, received,
//! lost, duplicates) agrees with an independent subscriber (mosquitto_sub) and the broker's own
//! counter, a loss the broker really causes is found, and both payload formats carry the stamp.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{Broker, Pki, RunOutput, Subscriber, broker_args, run_mqload, serial};

fn run(pki: &Pki, broker: &Broker, extra: &[&str], csv_prefix: &Path) -> RunOutput {
    let mut args = broker_args(pki, broker);
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend([
        "--csv".to_string(),
        csv_prefix.to_string_lossy().into_owned(),
        "--only-summary".to_string(),
        "--stop-timeout".to_string(),
        "3s".to_string(),
    ]);
    run_mqload(&args, &[], Duration::from_secs(40))
}

/// `PREFIX_delivery.csv`'s one row, by column name.
fn delivery(prefix: &Path, out: &RunOutput) -> BTreeMap<String, u64> {
    let path = prefix.with_file_name(format!(
        "{}_delivery.csv",
        prefix.file_name().and_then(|n| n.to_str()).unwrap_or("run")
    ));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), out.describe()));
    let mut lines = text.lines();
    let header = lines.next().expect("header").split(',');
    let row = lines.next().expect("one row").split(',');
    header
        .zip(row)
        .map(|(h, v)| (h.to_string(), v.parse().expect("a count")))
        .collect()
}

/// `Request Count` of one row of `PREFIX_stats.csv`.
fn requests(prefix: &Path, name: &str) -> u64 {
    let path = prefix.with_file_name(format!(
        "{}_stats.csv",
        prefix.file_name().and_then(|n| n.to_str()).unwrap_or("run")
    ));
    common::count(&common::expect_stats_row(&path, name), "Request Count")
}

/// Runs 20 QoS 1 publishers and 2 QoS 1 subscribers on `locust/#` beside mosquitto_sub, in
/// `format`; checks the figures against each other and mosquitto_sub; returns the row.
fn healthy_run(format: &str, seconds: &str) -> (BTreeMap<String, u64>, Vec<common::Message>) {
    let pki = Pki::new(false);
    let broker = Broker::start(&pki);
    let observer = Subscriber::start(&broker, "locust/#");
    let dir = tempfile::tempdir().expect("csv dir");
    let prefix = dir.path().join("run");
    let out = run(
        &pki,
        &broker,
        &[
            "-u",
            "20",
            "-r",
            "100",
            "-t",
            seconds,
            "--qos",
            "1",
            "--throughput",
            "10",
            "--subscribers",
            "2",
            "--subscribe-topic",
            "locust/#",
            "--subscribe-qos",
            "1",
            "--payload-format",
            format,
            "--payload-bytes",
            "200",
        ],
        &prefix,
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let d = delivery(&prefix, &out);
    let sent = d["Sent"];
    assert!(sent > 100, "{d:?}\n{}", out.describe());
    assert_eq!(d["Subscribers"], 2);
    assert_eq!(d["Lost"], 0, "{d:?}\n{}", out.describe());
    assert_eq!(d["Duplicates"], 0, "{d:?}");
    assert_eq!(d["Expected"], 2 * sent, "{d:?}");
    assert_eq!(d["Received"], 2 * sent, "{d:?}");
    for unchecked in ["Stale", "Untracked", "Foreign", "Unparseable"] {
        assert_eq!(d[unchecked], 0, "{unchecked}: {d:?}");
    }
    // The receive row counts every copy; the publish row every acked message.
    assert_eq!(requests(&prefix, "receive:1:locust/#"), 2 * sent);
    assert_eq!(requests(&prefix, "publish:1:locust/test/topic"), sent);
    assert_eq!(requests(&prefix, "subscribe:1:locust/#"), 2);
    assert!(
        out.stdout.contains(&format!(
            "Delivery (2 subscribers): sent {sent}, expected {}, received {}, lost 0",
            2 * sent,
            2 * sent
        )),
        "{}",
        out.stdout
    );
    // mosquitto_sub, subscribed before the run, counts the same messages.
    observer.wait_for(sent as usize, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    let messages = observer.stop();
    assert_eq!(messages.len() as u64, sent, "mosquitto_sub's count");
    (d, messages)
}

#[test]
fn qos1_subscribers_lose_nothing_and_agree_with_mosquitto_sub_json() {
    if !common::require_broker_tools() {
        return;
    }
    let _guard = serial();
    let (_, messages) = healthy_run("json", "6s");
    for message in &messages {
        let body: serde_json::Value =
            serde_json::from_slice(&message.payload).expect("body is JSON");
        let info = &body["info"];
        assert!(info["ts"].as_f64().is_some_and(|ts| ts > 1.7e9), "{body}");
        assert!(info["seq"].as_u64().is_some() && info["client_id"].is_string());
    }
}

#[test]
fn raw_payloads_carry_the_stamp_header_and_give_the_same_figures() {
    if !common::require_broker_tools() {
        return;
    }
    let _guard = serial();
    let (_, messages) = healthy_run("raw", "4s");
    for message in &messages {
        let p = &message.payload;
        assert_eq!(p.len(), 32 + 200, "header + --payload-bytes");
        assert_eq!(&p[..4], b"MQL1");
        let word = |at: usize| u64::from_be_bytes(p[at..at + 8].try_into().expect("8 bytes"));
        assert!(word(8) < 20, "publisher index is a user index");
        let due_s = word(24) / 1_000_000_000;
        assert!(due_s > 1_700_000_000, "due time in unix ns: {}", word(24));
    }
}

#[test]
fn a_broker_that_drops_messages_shows_as_lost() {
    if !common::require_broker_tools() {
        return;
    }
    let _guard = serial();
    let pki = Pki::new(false);
    let mut broker = Broker::start(&pki);
    // One message in flight and five queued per subscriber: a QoS 1 subscriber that must ack
    // each one cannot keep up with a burst, and mosquitto drops the rest.
    let conf = std::fs::read_to_string(broker.conf_path()).expect("conf");
    let conf = conf
        .replace("max_inflight_messages 0", "max_inflight_messages 1")
        .replace("max_queued_messages 100000", "max_queued_messages 5");
    std::fs::write(broker.conf_path(), conf).expect("write conf");
    broker.restart();
    let before = common::sys_messages_received(&broker);
    let dir = tempfile::tempdir().expect("csv dir");
    let prefix = dir.path().join("loss");
    let out = run(
        &pki,
        &broker,
        &[
            "-u",
            "20",
            "-r",
            "100",
            "-t",
            "3s",
            "--qos",
            "1",
            "--throughput",
            "200",
            "--subscribers",
            "1",
            "--subscribe-topic",
            "locust/#",
            "--subscribe-qos",
            "1",
            "--payload-format",
            "raw",
            "--payload-bytes",
            "100",
        ],
        &prefix,
    );
    // No request failed, but messages were lost: a script must see it in the exit code.
    assert_eq!(out.code, Some(1), "{}", out.describe());
    let d = delivery(&prefix, &out);
    assert!(d["Lost"] > 0, "{d:?}\n{}", out.describe());
    assert!(
        out.stderr.contains(&format!(
            "{} of {} expected messages never reached a subscriber",
            d["Lost"], d["Expected"]
        )),
        "{}",
        out.describe()
    );
    assert_eq!(d["Duplicates"] + d["Stale"], 0, "{d:?}");
    assert_eq!(d["Expected"], d["Sent"], "one subscriber");
    assert_eq!(d["Lost"] + d["Received"], d["Expected"], "{d:?}");
    // The broker got every message mqload says it sent: the loss is on the way out.
    let received =
        common::wait_sys_messages_received(&broker, before + d["Sent"], Duration::from_secs(5));
    assert_eq!(
        received - before,
        d["Sent"],
        "$SYS publish/messages/received"
    );
}

#[test]
fn subscriber_mistakes_are_one_line_and_exit_2() {
    for (args, fix) in [
        (&["--subscribers", "2"][..], "--subscribe-topic"),
        (&["--subscribe-topic", "a/#"][..], "--subscribers"),
        (
            &["--subscribers", "1", "--subscribe-topic", "a/#/b"][..],
            "topic filter",
        ),
        (
            &["--subscribers", "1", "--subscribe-topic", ""][..],
            "topic filter",
        ),
        (
            &[
                "--subscribers",
                "1",
                "--subscribe-topic",
                "a",
                "--subscribe-qos",
                "3",
            ][..],
            "--subscribe-qos 3",
        ),
        (
            &[
                "--subscribers",
                "1",
                "--subscribe-topic",
                "a",
                "--client-id",
                "same",
            ][..],
            "same id",
        ),
        (
            &["--subscribers", "1", "--subscribe-topic", "a", "--worker"][..],
            "--worker",
        ),
    ] {
        let mut all = vec!["--host", "127.0.0.1", "--no-tls", "-t", "1s"];
        all.extend_from_slice(args);
        let out = run_mqload(&all, &[], Duration::from_secs(10));
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.describe());
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", out.stderr);
        assert!(lines[0].contains(fix), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn subscribers_alone_check_another_process_with_the_same_run_id_and_say_so() {
    if !common::require_broker_tools() {
        return;
    }
    let _guard = serial();
    let pki = Pki::new(false);
    let broker = Broker::start(&pki);
    let dir = tempfile::tempdir().expect("csv dir");
    let (sub_prefix, pub_prefix) = (dir.path().join("sub"), dir.path().join("pub"));
    let mut sub_args = broker_args(&pki, &broker);
    sub_args.extend(
        [
            "-u",
            "0",
            "-t",
            "8s",
            "--subscribers",
            "1",
            "--subscribe-topic",
            "locust/{run_id}/#",
            "--subscribe-qos",
            "1",
            "--run-id",
            "SHARED-RUN",
            "--client-id",
            "sub-{i}",
            "--only-summary",
            "--stop-timeout",
            "1s",
            "--csv",
        ]
        .map(String::from),
    );
    sub_args.push(sub_prefix.to_string_lossy().into_owned());
    let subscribers = common::mqload_command(&sub_args, &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the subscriber process");
    let subscribed = common::wait_until(Duration::from_secs(5), || {
        broker.log().contains(" sub-0 1 locust/SHARED-RUN/#")
    });
    assert!(subscribed, "{}", broker.log());
    let publishers = run(
        &pki,
        &broker,
        &[
            "-u",
            "5",
            "-r",
            "100",
            "-t",
            "3s",
            "--qos",
            "1",
            "--throughput",
            "10",
            "--run-id",
            "SHARED-RUN",
            "--topic",
            "locust/{run_id}/{i}",
        ],
        &pub_prefix,
    );
    assert_eq!(publishers.code, Some(0), "{}", publishers.describe());
    let sent = requests(&pub_prefix, "publish:1:locust/{run_id}/{i}");
    assert!(sent > 20, "{}", publishers.describe());
    let out = subscribers.wait_with_output().expect("subscriber process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let text = std::fs::read_to_string(dir.path().join("sub_delivery.csv")).expect("csv");
    let row: Vec<u64> = text
        .lines()
        .nth(1)
        .expect("row")
        .split(',')
        .map(|v| v.parse().expect("count"))
        .collect();
    // Subscribers, Sent, Expected, Received, Lost, Duplicates, ...
    assert_eq!(row[..6], [1, 0, 0, sent, 0, 0], "{text}\n{stdout}");
    assert!(stdout.contains("another process"), "{stdout}");
    assert!(stdout.contains("clocks"), "{stdout}");
}

#[test]
fn subscribers_subscribe_again_after_the_broker_restarts() {
    if !common::require_broker_tools() {
        return;
    }
    let _guard = serial();
    let pki = Pki::new(false);
    let mut broker = Broker::start(&pki);
    let dir = tempfile::tempdir().expect("csv dir");
    let prefix = dir.path().join("restart");
    let mut args = broker_args(&pki, &broker);
    args.extend(
        [
            "-u",
            "5",
            "-r",
            "100",
            "-t",
            "8s",
            "--qos",
            "1",
            "--throughput",
            "20",
            "--subscribers",
            "1",
            "--subscribe-topic",
            "locust/#",
            "--subscribe-qos",
            "1",
            "--only-summary",
            "--stop-timeout",
            "2s",
            "--csv",
        ]
        .map(String::from),
    );
    args.push(prefix.to_string_lossy().into_owned());
    let child = common::mqload_command(&args, &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn mqload");
    std::thread::sleep(Duration::from_secs(3));
    broker.kill();
    std::thread::sleep(Duration::from_millis(300));
    broker.restart();
    let out = child.wait_with_output().expect("mqload");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Publishers lost their connections: failures, so exit code 1.
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(requests(&prefix, "subscribe:1:locust/#"), 2, "{stdout}");
    let path = dir.path().join("restart_delivery.csv");
    let text = std::fs::read_to_string(path).expect("delivery csv");
    let row: Vec<u64> = text
        .lines()
        .nth(1)
        .expect("row")
        .split(',')
        .map(|v| v.parse().expect("count"))
        .collect();
    let (expected, received, lost) = (row[2], row[3], row[4]);
    // Without the second SUBSCRIBE, everything after the restart (about half) would be lost;
    // only what was in flight at the crash may be.
    assert!(expected > 200 && lost * 4 < expected, "{text}\n{stdout}");
    assert_eq!(lost + received, expected + row[5], "{text}");
}
