//! `--prometheus` on a real run: a real Prometheus scrapes a time-bounded mqload publishing
//! to a real mosquitto (`sys_interval 1`). The publish rate PromQL gives over a window must be
//! within 2 % of the rate the broker's own `$SYS/broker/publish/messages/received` shows over
//! the same window, and `promtool check metrics` must pass on what mqload serves mid-run.
//!
//! Why a 55 s window: mqload's counters move once a second (the engine's deltas), so a scrape
//! sees them between 0 and 1 s old, and `rate()`'s two end samples can differ in age by up
//! to a second: 1/55 keeps that under 2 %.

mod common;
mod prometheus_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_support::{
    PrometheusProcess, http_get, promtool_check_metrics, require_prometheus_tools,
};

const USERS: u64 = 50;
const MSG_PER_SEC_PER_USER: u64 = 10;
const RUN_SECONDS: u64 = 72;
/// The window ends this long after mqload starts (its last publishes go out at 72 s).
const WINDOW_END_S: f64 = 66.0;
const WINDOW_S: f64 = 55.0;
/// A missing broker or Prometheus is a failure under CI; this bounds the whole test.
const TEST_BUDGET: Duration = Duration::from_secs(150);

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `(receipt time, value)` of every `$SYS/broker/publish/messages/received` the broker
/// published (each carries mosquitto_sub's own receipt stamp, `%U`).
struct SysRecorder {
    child: Child,
    samples: Arc<Mutex<Vec<(f64, u64)>>>,
}

impl SysRecorder {
    fn start(broker: &common::Broker) -> SysRecorder {
        let mut child = Command::new(common::tool_path("mosquitto_sub").expect("checked"))
            .args(["-h", "127.0.0.1", "-p", &broker.plain_port.to_string()])
            .args(["-t", "$SYS/broker/publish/messages/received", "-F", "%U %p"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto_sub");
        let stdout = child.stdout.take().expect("piped stdout");
        let samples = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&samples);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut fields = line.split_whitespace();
                let stamp = fields.next().and_then(|t| t.parse::<f64>().ok());
                let value = fields.next().and_then(|v| v.parse::<u64>().ok());
                if let (Some(stamp), Some(value)) = (stamp, value) {
                    into.lock().expect("not poisoned").push((stamp, value));
                }
            }
        });
        SysRecorder { child, samples }
    }

    /// The broker's rate over the samples nearest to `from` and `to` (unix seconds).
    fn rate_between(&self, from: f64, to: f64) -> Option<(f64, usize)> {
        let samples = self.samples.lock().expect("not poisoned").clone();
        let nearest = |t: f64| {
            samples
                .iter()
                .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
                .copied()
        };
        let (a, b) = (nearest(from)?, nearest(to)?);
        (b.0 > a.0).then(|| ((b.1 - a.1) as f64 / (b.0 - a.0), samples.len()))
    }
}

impl Drop for SysRecorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn prometheus_reads_the_publish_rate_the_broker_counts() {
    if !common::require_broker_tools() || !require_prometheus_tools() {
        return;
    }
    let _one_load = common::serial();
    let began = Instant::now();
    let pki = common::Pki::new(true);
    let broker = common::Broker::start(&pki);
    let sys = SysRecorder::start(&broker);
    let metrics_addr = format!("127.0.0.1:{}", common::free_port());
    let dir = tempfile::tempdir().expect("a temporary folder");
    let prometheus = PrometheusProcess::start(
        dir.path(),
        metrics_addr.parse().expect("a loopback address"),
    );
    let ready = common::wait_until(Duration::from_secs(15), || {
        http_get(prometheus.addr, "/-/ready", None).0 == 200
    });
    assert!(ready, "Prometheus did not get ready:\n{}", prometheus.log());

    let mut args = common::broker_args(&pki, &broker);
    let (users, rate, run) = (
        USERS.to_string(),
        MSG_PER_SEC_PER_USER.to_string(),
        format!("{RUN_SECONDS}s"),
    );
    args.extend(
        [
            "-u",
            &users,
            "-r",
            &users,
            "--throughput",
            &rate,
            "--qos",
            "1",
            "-t",
            &run,
            "--headless",
            "--only-summary",
            "--prometheus",
            &metrics_addr,
        ]
        .map(str::to_owned),
    );
    let stderr_path = dir.path().join("mqload.stderr");
    let stderr = std::fs::File::create(&stderr_path).expect("create mqload's stderr file");
    let started_unix = unix_now();
    let mut mqload = common::mqload_command(&args, &[])
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start mqload");

    // Mid-run, what mqload serves passes promtool and shows every user connected.
    let all_connected = common::wait_until(Duration::from_secs(20), || {
        let (_, text) = http_get(metrics_addr.parse().expect("addr"), "/metrics", None);
        text.lines()
            .any(|l| l == format!("mqload_connected_users {USERS}"))
    });
    let (status, live) = http_get(metrics_addr.parse().expect("addr"), "/metrics", None);
    assert!(all_connected && status == 200, "status {status}:\n{live}");
    let (passed, said) = promtool_check_metrics(&live);
    assert!(
        passed && said.trim().is_empty(),
        "promtool: {said}\non:\n{live}"
    );
    for family in [
        "mqload_requests_total",
        "mqload_response_time_seconds_bucket",
    ] {
        assert!(live.contains(family), "{family} missing:\n{live}");
    }

    // Wait for the scrape after the window's end, then ask Prometheus for the rate over it.
    let window_end = started_unix + WINDOW_END_S;
    while unix_now() < window_end + 3.0 {
        assert!(began.elapsed() < TEST_BUDGET, "out of time");
        thread::sleep(Duration::from_millis(200));
    }
    let promql = format!("rate(mqload_requests_total{{kind=\"publish\"}}[{WINDOW_S}s])");
    let measured = prometheus
        .single_value_at(&promql, window_end)
        .unwrap_or_else(|| panic!("no value for {promql}:\n{}", prometheus.log()));
    let (broker_rate, samples) = sys
        .rate_between(window_end - WINDOW_S, window_end)
        .expect("the broker published $SYS counters during the window");
    let offered = (USERS * MSG_PER_SEC_PER_USER) as f64;
    eprintln!(
        "Prometheus: {measured:.2} publishes/s; broker $SYS: {broker_rate:.2}/s \
         ({samples} samples); offered {offered}/s"
    );
    assert!(
        (measured - broker_rate).abs() / broker_rate < 0.02,
        "Prometheus says {measured:.2}/s, the broker counted {broker_rate:.2}/s"
    );
    assert!(
        broker_rate > offered * 0.9,
        "the broker received {broker_rate:.1}/s of {offered}/s offered: the run did not hold"
    );

    let finished = common::wait_until(Duration::from_secs(30), || {
        matches!(mqload.try_wait(), Ok(Some(_)))
    });
    if !finished {
        let _ = mqload.kill();
    }
    let status = mqload.wait().expect("mqload ends");
    assert!(
        finished && status.success(),
        "mqload: {status:?}\n{}",
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    assert!(began.elapsed() < TEST_BUDGET, "took {:?}", began.elapsed());
}
