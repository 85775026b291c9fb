//! MQTT 5 end to end against a real mosquitto 2.0: what mqload reports as published is what
//! an independent subscriber saw, the properties arrive, and an ACL's refusal shows up as
//! named PUBACK 0x87 failures in the CSV and the JSON report.

mod common;

use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Broker, Pki, Subscriber, count, expect_stats_row, run_against, serial};

/// A mosquitto_sub speaking MQTT 5 that prints each message's content type and user
/// properties (`-F '%C|%P'`), stopping after `n` messages or `seconds`.
fn mqtt5_properties_of(broker: &Broker, filter: &str, n: usize, seconds: u32) -> Command {
    let sub = common::tool_path("mosquitto_sub").expect("mosquitto_sub is installed");
    let mut cmd = Command::new(sub);
    cmd.args(["-h", "127.0.0.1", "-p", &broker.plain_port.to_string()])
        .args(["-V", "mqttv5", "-q", "1", "-t", filter, "-F", "%C|%P"])
        .args(["-C", &n.to_string(), "-W", &seconds.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn mqtt5_publishes_arrive_once_each_with_their_properties() {
    if !common::require_broker_tools() {
        return;
    }
    let _guard = serial();
    let pki = Pki::new(false);
    let broker = Broker::start(&pki);
    let subscriber = Subscriber::start(&broker, "mqload/v5/#");
    let watcher = mqtt5_properties_of(&broker, "mqload/v5/#", 5, 30)
        .spawn()
        .expect("spawn mosquitto_sub -V mqttv5");
    // mosquitto logs the MQTT 5 subscription before it delivers to it.
    assert!(
        common::wait_until(Duration::from_secs(5), || broker
            .log()
            .matches(" 1 mqload/v5/#")
            .count()
            >= 2),
        "{}",
        broker.log()
    );
    let csv = tempfile::tempdir().expect("csv dir");
    let prefix = csv.path().join("run");
    let out = run_against(
        &pki,
        &broker,
        &[
            "--mqtt-version",
            "5",
            "--session-expiry",
            "0",
            "--receive-maximum",
            "32",
            "--topic-alias-maximum",
            "8",
            "--message-expiry",
            "60",
            "--content-type",
            "application/json",
            "--user-property",
            "site=lab",
            "-u",
            "3",
            "-r",
            "100",
            "-t",
            "4s",
            "--qos",
            "1",
            "--throughput",
            "20",
            "--topic",
            "mqload/v5/{i}",
            "--csv",
            prefix.to_str().expect("utf-8"),
            "--only-summary",
        ],
        Duration::from_secs(40),
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let row = expect_stats_row(&csv.path().join("run_stats.csv"), "publish:1:mqload/v5/{i}");
    let published = count(&row, "Request Count");
    assert_eq!(count(&row, "Failure Count"), 0, "{}", out.describe());
    // 3 users x 20/s over the 3 s after the first-message delay, less a slow start.
    assert!((100..=190).contains(&published), "published {published}");

    subscriber.wait_for(published as usize, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    let messages = subscriber.stop();
    assert_eq!(messages.len() as u64, published, "delivered vs reported");
    // Aliased publishes carry an empty topic: the broker must have resolved every one.
    for message in &messages {
        let user = message.topic.strip_prefix("mqload/v5/").expect("our topic");
        assert!(["0", "1", "2"].contains(&user), "{}", message.topic);
    }

    let watched = watcher.wait_with_output().expect("mosquitto_sub -V mqttv5");
    let lines = String::from_utf8_lossy(&watched.stdout);
    assert_eq!(
        lines.lines().count(),
        5,
        "{lines}\n{}",
        String::from_utf8_lossy(&watched.stderr)
    );
    for line in lines.lines() {
        assert_eq!(line, "application/json|site:lab", "{lines}");
    }
}

#[test]
fn an_acl_refusal_is_counted_as_puback_0x87_not_authorized() {
    if !common::require_broker_tools() {
        return;
    }
    let _guard = serial();
    let pki = Pki::new(false);
    let mut broker = Broker::start(&pki);
    // Anonymous clients (mqload authenticates by certificate only) may read everything under
    // mqload/ and write only mqload/allowed/#.
    let acl = broker.conf_path().with_file_name("acl");
    fs::write(
        &acl,
        "topic read mqload/#\ntopic readwrite mqload/allowed/#\n",
    )
    .expect("acl");
    let mut conf = fs::read_to_string(broker.conf_path()).expect("conf");
    conf.insert_str(
        0,
        &format!("per_listener_settings false\nacl_file {}\n", acl.display()),
    );
    fs::write(broker.conf_path(), conf).expect("conf");
    broker.restart();
    let subscriber = Subscriber::start(&broker, "mqload/#");

    let dir = tempfile::tempdir().expect("dir");
    let prefix = dir.path().join("run");
    let json = dir.path().join("run.json");
    let out = run_against(
        &pki,
        &broker,
        &[
            "--mqtt-version",
            "5",
            "-u",
            "2",
            "-r",
            "100",
            "-t",
            "3s",
            "--qos",
            "1",
            "--throughput",
            "10",
            "--topic",
            "mqload/denied/{i}",
            "--csv",
            prefix.to_str().expect("utf-8"),
            "--report-json",
            json.to_str().expect("utf-8"),
            "--only-summary",
        ],
        Duration::from_secs(40),
    );
    assert_eq!(
        out.code,
        Some(1),
        "failures make exit code 1\n{}",
        out.describe()
    );
    let row = expect_stats_row(
        &prefix.with_file_name("run_stats.csv"),
        "publish:1:mqload/denied/{i}",
    );
    let refused = count(&row, "Failure Count");
    assert!(refused >= 20, "{refused} refused\n{}", out.describe());
    assert_eq!(
        count(&row, "Request Count"),
        refused,
        "every publish refused"
    );

    let failures =
        fs::read_to_string(prefix.with_file_name("run_failures.csv")).expect("failures csv");
    let header: Vec<&str> = failures
        .lines()
        .next()
        .unwrap_or_default()
        .split(',')
        .collect();
    let column = header
        .iter()
        .position(|h| h.trim_matches('"') == "Occurrences")
        .unwrap_or_else(|| panic!("no Occurrences column:\n{failures}"));
    let line = failures
        .lines()
        .find(|l| l.contains("PUBACK 0x87 not authorized"))
        .unwrap_or_else(|| panic!("no PUBACK 0x87 row:\n{failures}"));
    let occurrences: u64 = line
        .split(',')
        .nth(column)
        .and_then(|n| n.trim().trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("occurrences in {line:?}"));
    assert_eq!(occurrences, refused, "{failures}");

    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&json).expect("json")).expect("valid JSON");
    assert!(
        report.to_string().contains("PUBACK 0x87 not authorized"),
        "{report}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let delivered = subscriber.stop();
    assert!(
        delivered.is_empty(),
        "the broker dropped refused messages: {delivered:?}"
    );
}

#[test]
fn a_shared_subscription_counts_each_message_once_for_the_group() {
    if !common::require_broker_tools() {
        return;
    }
    let _guard = serial();
    let pki = Pki::new(false);
    let broker = Broker::start(&pki);
    let dir = tempfile::tempdir().expect("dir");
    let prefix = dir.path().join("run");
    let out = run_against(
        &pki,
        &broker,
        &[
            "--mqtt-version",
            "5",
            "-u",
            "6",
            "-r",
            "100",
            "-t",
            "4s",
            "--qos",
            "1",
            "--throughput",
            "10",
            "--topic",
            "mqload/shared/{i}",
            "--subscribers",
            "3",
            "--subscribe-topic",
            "$share/workers/mqload/shared/#",
            "--subscribe-qos",
            "1",
            "--retain-handling",
            "2",
            "--stop-timeout",
            "3s",
            "--csv",
            prefix.to_str().expect("utf-8"),
            "--only-summary",
        ],
        Duration::from_secs(40),
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let text = fs::read_to_string(prefix.with_file_name("run_delivery.csv")).expect("delivery csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let row: Vec<u64> = lines
        .next()
        .expect("row")
        .split(',')
        .map(|v| v.parse().expect("a count"))
        .collect();
    let d = |name: &str| row[header.iter().position(|h| *h == name).expect(name)];
    let sent = d("Sent");
    assert!(sent > 60, "{text}\n{}", out.describe());
    // One copy per message for the group of three, whichever member got it.
    assert_eq!(d("Expected"), sent, "{text}");
    assert_eq!(d("Received"), sent, "{text}");
    assert_eq!((d("Lost"), d("Duplicates")), (0, 0), "{text}");
    // All three members joined the one group.
    let log = broker.log();
    assert_eq!(
        log.matches(" 1 $share/workers/mqload/shared/#").count(),
        3,
        "{log}"
    );
}

#[test]
fn mqtt5_options_without_mqtt5_or_out_of_range_are_one_clear_line_and_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["--session-expiry", "60"], "add --mqtt-version 5"),
        (&["--mqtt-version", "4.0"], "use 3.1.1 or 5"),
        (
            &["--mqtt-version", "5", "--receive-maximum", "0"],
            "give 1 to 65535",
        ),
        (
            &["--mqtt-version", "5", "--user-property", "novalue"],
            "NAME=VALUE",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["--host", "127.0.0.1", "--port", "1", "--no-tls", "-t", "1s"];
        args.extend_from_slice(extra);
        let out = common::run_mqload(&args, &[], Duration::from_secs(20));
        assert_eq!(out.code, Some(2), "{extra:?}\n{}", out.describe());
        let errors: Vec<&str> = out.stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(errors.len(), 1, "{}", out.describe());
        assert!(errors[0].contains(needle), "{}", out.describe());
    }
}
