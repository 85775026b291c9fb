//! A run with no `--host` over WebSocket: the built-in broker started in-process opens its
//! WebSocket listener (TLS unless `--no-tls`) and the run goes through it, with every publish
//! acked and the broker's own counters (the report's `built_in_broker`) equal to mqload's.

mod common;

use std::time::Duration;

use common::{run_mqload, serial};
use serde_json::Value;

/// A 4 s run of 3 QoS 1 publishers at 10 msg/s over WebSocket to the built-in broker, plus
/// `extra`; checks it and returns the number of acked publishes.
fn run_over_websocket(extra: &[&str]) -> u64 {
    let dir = tempfile::tempdir().expect("report dir");
    let report = dir.path().join("report.json");
    let mut args = vec![
        "--transport",
        "websockets",
        "-u",
        "3",
        "-r",
        "50",
        "-t",
        "4s",
        "--qos",
        "1",
        "--throughput",
        "10",
        "--only-summary",
        "--report-json",
        report.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    let out = run_mqload(&args, &[], Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{extra:?}: {}", out.describe());
    // The run's target is the broker's WebSocket listener, and the plan speaks WebSocket to it.
    let first = out.stderr.lines().next().unwrap_or_default();
    let Some(addr) = first
        .strip_prefix("no --host given: testing the built-in broker on ")
        .and_then(|rest| rest.strip_suffix(" (WebSocket)"))
    else {
        panic!(
            "{extra:?}: no WebSocket built-in broker line: {}",
            out.describe()
        );
    };
    let tls = if extra.contains(&"--no-tls") {
        "plain TCP"
    } else {
        "TLS"
    };
    let plan_line = format!("-> {addr} (WebSocket /mqtt, {tls})");
    assert!(
        out.stderr.contains(&plan_line),
        "{extra:?}: no `{plan_line}` in {}",
        out.describe()
    );
    let text = std::fs::read_to_string(&report).expect("report written");
    let report: Value = serde_json::from_str(&text).expect("report is JSON");
    let (published, failed) = publish_counts(&report);
    assert!(published >= 30, "{extra:?}: {published} acked\n{text}");
    assert_eq!(failed, 0, "{extra:?}: every publish acked\n{text}");
    let broker = &report["sections"]["built_in_broker"];
    assert_eq!(broker["connections_accepted"], 3, "{extra:?}: {broker}");
    assert_eq!(broker["bad_packets"], 0, "{extra:?}: {broker}");
    assert_eq!(
        broker["messages_received"].as_u64(),
        Some(published),
        "{extra:?}: the broker's count is mqload's: {broker}"
    );
    published
}

/// Acked and failed publishes over every `publish:` row of the report.
fn publish_counts(report: &Value) -> (u64, u64) {
    let rows = report["stats"]["rows"].as_array().expect("stats rows");
    rows.iter()
        .filter(|row| {
            row["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("publish:"))
        })
        .fold((0, 0), |(ok, failed), row| {
            (
                ok + row["num_requests"].as_u64().unwrap_or(0),
                failed + row["num_failures"].as_u64().unwrap_or(0),
            )
        })
}

#[test]
fn a_run_without_host_goes_through_the_built_in_brokers_websocket_listener_plain_and_tls() {
    let _guard = serial();
    run_over_websocket(&["--no-tls"]);
    run_over_websocket(&[]);
}

#[test]
fn an_mqtt5_run_without_host_goes_through_the_built_in_brokers_websocket_listener() {
    let _guard = serial();
    run_over_websocket(&["--mqtt-version", "5"]);
}
