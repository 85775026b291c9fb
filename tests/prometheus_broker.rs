//! `mqload broker --prometheus ADDR`: the built-in broker serves its own counters. After
//! mosquitto_pub sends a known number of messages, a real Prometheus reads exactly that many
//! from `mqload_broker_publishes_received_total`, and `promtool check metrics` passes.

mod common;
mod prometheus_support;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use prometheus_support::{
    PrometheusProcess, http_get, promtool_check_metrics, require_prometheus_tools,
};

const MESSAGES: usize = 25;

/// The broker process, killed on drop.
struct BrokerProcess(Child);

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn prometheus_reads_the_built_in_brokers_counters() {
    if !common::require_broker_tools() || !require_prometheus_tools() {
        return;
    }
    let metrics_addr: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .expect("a loopback address");
    let mut child = common::mqload_command(
        &[
            "broker",
            "--no-tls",
            "--port",
            "0",
            "-t",
            "90s",
            "--prometheus",
            &metrics_addr.to_string(),
        ],
        &[],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("start mqload broker");
    let stdout = child.stdout.take().expect("piped stdout");
    let broker = BrokerProcess(child);
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let port: u16 = first
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no listening line: {first:?}"));
    let serving = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(
        serving.contains(&format!("http://{metrics_addr}/metrics")),
        "{serving:?}"
    );

    let dir = tempfile::tempdir().expect("a temporary folder");
    let prometheus = PrometheusProcess::start(dir.path(), metrics_addr);
    let mut publisher = Command::new(common::tool_path("mosquitto_pub").expect("checked"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            "t",
            "-l",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("start mosquitto_pub");
    let mut stdin = publisher.stdin.take().expect("piped stdin");
    for i in 0..MESSAGES {
        writeln!(stdin, "message {i}").expect("feed mosquitto_pub");
    }
    drop(stdin);
    assert!(publisher.wait().expect("mosquitto_pub ends").success());

    let expected = format!("mqload_broker_publishes_received_total {MESSAGES}");
    let counted = common::wait_until(Duration::from_secs(5), || {
        http_get(metrics_addr, "/metrics", None)
            .1
            .lines()
            .any(|l| l == expected)
    });
    let (_, text) = http_get(metrics_addr, "/metrics", None);
    assert!(counted, "{expected} not served:\n{text}");
    let (passed, said) = promtool_check_metrics(&text);
    assert!(
        passed && said.trim().is_empty(),
        "promtool: {said}\non:\n{text}"
    );

    let scraped = common::wait_until(Duration::from_secs(30), || {
        http_get(prometheus.addr, "/-/ready", None).0 == 200
            && prometheus.single_value("mqload_broker_publishes_received_total")
                == Some(MESSAGES as f64)
    });
    assert!(
        scraped,
        "Prometheus read {:?}:\n{}",
        prometheus.query("mqload_broker_publishes_received_total"),
        prometheus.log()
    );
    assert_eq!(
        prometheus.single_value("mqload_broker_connections_accepted_total"),
        Some(1.0)
    );
    drop(broker);
}
