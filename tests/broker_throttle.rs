//! `mqload broker --max-msg-rate N`: an honest stand-in for a broker at capacity. Real clients
//! (mosquitto_pub/mosquitto_sub, and mqload with its own delivery check) offer more than N a
//! second; the acked rate must be N within a few percent, with nothing lost or reordered. And
//! `--max-connect-rate N`: a storm of connects is answered at N a second, none refused.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    BrokerProcess, exit_counter, require_broker_tools, run_mqload, serial, tool_path, wait_until,
};

/// `mqload broker --no-tls` on a free port with `--max-msg-rate rate`, stopped by SIGTERM.
struct Throttled {
    process: BrokerProcess,
    addr: SocketAddr,
}

impl Throttled {
    fn start(rate: u64) -> Throttled {
        Throttled::with("--max-msg-rate", rate, "msg/s")
    }

    /// The broker with `limit` at `rate`; its first line must say `at most {rate} {unit}`.
    fn with(limit: &str, rate: u64, unit: &str) -> Throttled {
        let rate_text = rate.to_string();
        let process = BrokerProcess::start(&[
            "--no-tls",
            "--port",
            "0",
            "--threads",
            "2",
            limit,
            &rate_text,
        ]);
        let line = &process.first_line;
        assert!(line.contains(&format!("at most {rate} {unit}")), "{line}");
        let addr = process.addrs[0];
        Throttled { process, addr }
    }

    fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// SIGTERM; returns the exit line with the counters.
    fn stop(self) -> String {
        self.process.stop()
    }
}

fn assert_near(what: &str, got: f64, want: f64, tolerance: f64) {
    assert!(
        (got - want).abs() <= want * tolerance,
        "{what}: {got:.1}, want {want} within {:.0} %",
        tolerance * 100.0
    );
}

/// Two mosquitto_pub processes (on different broker threads, most likely) each send 4,000
/// numbered QoS 1 messages as fast as they can; mosquitto_sub stamps each arrival. At
/// 2,000/s the broker lets through 8,000 in about 4 s, evenly, in each publisher's order.
#[test]
fn mosquitto_clients_are_paced_to_the_rate_in_order_without_loss() {
    if !require_broker_tools() {
        return;
    }
    let _one = serial();
    const RATE: u64 = 2_000;
    const EACH: usize = 4_000;
    let broker = Throttled::start(RATE);
    let mut sub = Command::new("stdbuf")
        .arg("-oL")
        .arg(tool_path("mosquitto_sub").expect("mosquitto_sub"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port(),
            "-q",
            "1",
            "-v",
            "-d",
        ])
        .args(["-t", "paced/#", "-C", &(2 * EACH).to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn mosquitto_sub");
    let arrivals: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let sink = Arc::clone(&arrivals);
    let stdout = sub.stdout.take().expect("stdout");
    let subscribed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let saw_suback = Arc::clone(&subscribed);
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("paced/") {
                sink.lock().expect("arrivals").push((Instant::now(), line));
            } else if line.contains("received SUBACK") {
                saw_suback.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    assert!(
        wait_until(Duration::from_secs(30), || subscribed
            .load(std::sync::atomic::Ordering::Relaxed)),
        "mosquitto_sub got no SUBACK"
    );
    let publishers: Vec<Child> = ["a", "b"]
        .iter()
        .map(|name| {
            let mut publisher = Command::new(tool_path("mosquitto_pub").expect("mosquitto_pub"))
                .args(["-h", "127.0.0.1", "-p", &broker.port(), "-q", "1", "-l"])
                .args(["-t", &format!("paced/{name}")])
                .stdin(Stdio::piped())
                .spawn()
                .expect("spawn mosquitto_pub");
            let lines: String = (0..EACH).map(|i| format!("{name}-{i}\n")).collect();
            let mut stdin = publisher.stdin.take().expect("stdin");
            stdin
                .write_all(lines.as_bytes())
                .expect("feed mosquitto_pub");
            publisher
        })
        .collect();
    let all_in = wait_until(Duration::from_secs(60), || {
        arrivals.lock().expect("arrivals").len() >= 2 * EACH
    });
    for mut publisher in publishers {
        assert!(publisher.wait().expect("mosquitto_pub").success());
    }
    let _ = reader.join();
    let _ = sub.wait();
    let arrivals = arrivals.lock().expect("arrivals").clone();
    assert!(all_in, "only {} of {} arrived", arrivals.len(), 2 * EACH);
    for name in ["a", "b"] {
        let payloads: Vec<&str> = arrivals
            .iter()
            .filter_map(|(_, line)| line.strip_prefix(&format!("paced/{name} ")))
            .collect();
        let expected: Vec<String> = (0..EACH).map(|i| format!("{name}-{i}")).collect();
        assert!(
            payloads == expected,
            "publisher {name}: lost or out of order"
        );
    }
    // After the first quarter (the bucket's small burst and the start), to the last.
    let (from, to) = (&arrivals[2 * EACH / 4], &arrivals[2 * EACH - 1]);
    let span = to.0.duration_since(from.0).as_secs_f64();
    let rate = (2 * EACH - 1 - 2 * EACH / 4) as f64 / span;
    eprintln!("delivered {rate:.1} msg/s at --max-msg-rate {RATE}");
    assert_near("delivered msg/s", rate, RATE as f64, 0.04);
    let exit = broker.stop();
    assert_eq!(
        exit_counter(&exit, "messages received"),
        2 * EACH as u64,
        "{exit}"
    );
    assert_eq!(exit_counter(&exit, "dropped"), 0, "{exit}");
}

/// mqload offers 3,000 msg/s at QoS 1 to a 1,500/s broker with one checking subscriber: every
/// steady second of its report shows 1,500 acked, and its subscriber lost nothing.
#[test]
fn mqload_sees_the_rate_each_second_and_loses_nothing() {
    if !require_broker_tools() {
        return;
    }
    let _one = serial();
    const RATE: u64 = 1_500;
    let broker = Throttled::start(RATE);
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let port = broker.port();
    let args = [
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--no-tls",
        "-u",
        "10",
        "-r",
        "100",
        "-t",
        "6s",
        "--qos",
        "1",
        "--throughput",
        "300",
        "--subscribers",
        "1",
        "--subscribe-topic",
        "locust/#",
        "--only-summary",
        "--report-json",
    ];
    let mut args: Vec<String> = args.map(String::from).to_vec();
    args.push(json.display().to_string());
    let out = run_mqload(&args, &[], Duration::from_secs(90));
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("json");
    let delivery = &report["sections"]["delivery"];
    assert_eq!(delivery["lost"], 0, "{delivery}");
    assert_eq!(delivery["reordered"], 0, "{delivery}");
    assert_eq!(delivery["duplicates"], 0, "{delivery}");
    let names = report["series"]["names"].as_array().expect("names");
    let publish = names
        .iter()
        .position(|n| n.as_str().is_some_and(|n| n.starts_with("publish:")))
        .expect("a publish row");
    let points = report["series"]["points"].as_array().expect("points");
    let per_second: Vec<u64> = points
        .iter()
        .map(|p| p["requests"][publish].as_u64().unwrap_or(0))
        .collect();
    // Seconds 2..=4: all users publishing, before the last (partial) second.
    assert!(per_second.len() >= 6, "{per_second:?}");
    eprintln!("acked per second at --max-msg-rate {RATE}: {per_second:?}");
    for (second, acked) in per_second.iter().enumerate().take(5).skip(2) {
        assert_near(
            &format!("second {second} of {per_second:?}"),
            *acked as f64,
            RATE as f64,
            0.03,
        );
    }
    let published: u64 = per_second.iter().sum();
    assert_eq!(delivery["sent"], published, "{delivery}");
    let exit = broker.stop();
    assert_eq!(
        exit_counter(&exit, "messages received"),
        published,
        "{exit}"
    );
}

#[test]
fn a_zero_rate_is_refused_with_exit_2() {
    let out = run_mqload(
        &["broker", "--no-tls", "--port", "0", "--max-msg-rate", "0"],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(out.stderr.contains("--max-msg-rate"), "{}", out.describe());
}

/// mqload opens 900 connections at 1,000 a second (no --max-connecting queue) against a
/// broker answering 300 CONNECTs a second on two threads: every connect succeeds, and each
/// full second after the first answers 300 within 5 %.
#[test]
fn a_connect_storm_is_answered_at_the_connect_rate_and_none_refused() {
    if !require_broker_tools() {
        return;
    }
    let _one = serial();
    const RATE: u64 = 300;
    let broker = Throttled::with("--max-connect-rate", RATE, "connects/s");
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let port = broker.port();
    let mut args: Vec<String> = [
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--no-tls",
        "--connect-only",
        "-u",
        "900",
        "-r",
        "1000",
        "--max-connecting",
        "0",
        "--connect-timeout",
        "30s",
        "-t",
        "5s",
        "--only-summary",
        "--report-json",
    ]
    .map(String::from)
    .to_vec();
    args.push(json.display().to_string());
    let out = run_mqload(&args, &[], Duration::from_secs(90));
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("json");
    let names = report["series"]["names"].as_array().expect("names");
    let connect = names
        .iter()
        .position(|n| n == "connect")
        .expect("a connect row");
    let per_second: Vec<u64> = report["series"]["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["requests"][connect].as_u64().unwrap_or(0))
        .collect();
    eprintln!("connects answered per second at --max-connect-rate {RATE}: {per_second:?}");
    assert!(per_second.len() >= 3, "{per_second:?}");
    for (second, answered) in per_second.iter().enumerate().take(3).skip(1) {
        assert_near(
            &format!("second {second} of {per_second:?}"),
            *answered as f64,
            RATE as f64,
            0.05,
        );
    }
    let all_connected = "Connections: 900 connects (0 reconnects), 0 failed attempts";
    assert!(
        out.stdout.contains(all_connected) || out.stderr.contains(all_connected),
        "{}",
        out.describe()
    );
    let exit = broker.stop();
    assert_eq!(exit_counter(&exit, "connections accepted"), 900, "{exit}");
}
