//! A real Prometheus scrapes mqload's `/metrics` responder: `promtool check metrics` passes on
//! what it serves, and PromQL through Prometheus's HTTP API gives back the rate and the values
//! served (label escaping included), in the OpenMetrics format Prometheus asks for.
//!
//! The responder is fed by this test, not by a load run; `tests/prometheus_run.rs` scrapes a
//! real `--prometheus` run and compares it with mosquitto's `$SYS`.

mod common;
mod prometheus_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mqload::metrics::{
    Exposition, Format, LoadSnapshot, MetricsResponder, RequestTotals, ResponderOptions, Snapshot,
    SnapshotPublisher, snapshot_handoff,
};
use prometheus_support::{
    PrometheusProcess, http_get, promtool_check_metrics, require_prometheus_tools,
};

/// The publish counter's growth, requests per second.
const RATE: f64 = 250.0;
/// A request name with every character the label escaping must carry through.
const AWKWARD_NAME: &str = "publish:1:dev/\"q\"\\x\ny/é";
/// The users gauge, constant.
const USERS: u64 = 37;
/// Every wait in the test fits in this, leaving room under 30 s for start-up and teardown.
const TEST_BUDGET: Duration = Duration::from_secs(27);

/// [`LoadSnapshot`], counting the scrapes rendered in each format.
#[derive(Default)]
struct CountingSnapshot(LoadSnapshot);

static OPEN_METRICS_SCRAPES: AtomicUsize = AtomicUsize::new(0);
static TEXT_SCRAPES: AtomicUsize = AtomicUsize::new(0);

impl Snapshot for CountingSnapshot {
    fn clear(&mut self) {
        self.0.clear();
    }

    fn render(&self, exposition: &mut Exposition<'_>) {
        match exposition.format() {
            Format::OpenMetrics => OPEN_METRICS_SCRAPES.fetch_add(1, Ordering::Relaxed),
            Format::PrometheusText => TEXT_SCRAPES.fetch_add(1, Ordering::Relaxed),
        };
        self.0.render(exposition);
    }
}

/// Publishes a snapshot every 10 ms whose publish counter grows at [`RATE`] from its start,
/// until frozen; then publishes the frozen value once and stops.
struct Producer {
    freeze: Arc<AtomicBool>,
    frozen_value: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Producer {
    fn start(publisher: SnapshotPublisher<CountingSnapshot>) -> Producer {
        let freeze = Arc::new(AtomicBool::new(false));
        let frozen_value = Arc::new(AtomicU64::new(u64::MAX));
        let (stop, value_out) = (Arc::clone(&freeze), Arc::clone(&frozen_value));
        let thread = thread::spawn(move || {
            let began = Instant::now();
            loop {
                let frozen = stop.load(Ordering::Acquire);
                let requests = (began.elapsed().as_secs_f64() * RATE) as u64;
                let mut snapshot = publisher.blank();
                let mut request = RequestTotals {
                    kind: "publish".into(),
                    name: AWKWARD_NAME.into(),
                    requests,
                    ..RequestTotals::default()
                };
                request.response_time.record_micros(800, requests);
                snapshot.0.requests.push(request);
                snapshot.0.users = USERS;
                publisher.publish(snapshot);
                if frozen {
                    value_out.store(requests, Ordering::Release);
                    return;
                }
                thread::sleep(Duration::from_millis(10));
            }
        });
        Producer {
            freeze,
            frozen_value,
            thread: Some(thread),
        }
    }

    /// Stops the growth; the value served from now on.
    fn freeze(&mut self) -> u64 {
        self.freeze.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the producer thread ends");
        }
        self.frozen_value.load(Ordering::Acquire)
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.freeze();
    }
}

#[test]
fn promtool_accepts_the_text_format_and_rejects_a_broken_one() {
    if !require_prometheus_tools() {
        return;
    }
    let (publisher, reader) = snapshot_handoff::<CountingSnapshot>();
    let responder = MetricsResponder::start(
        "127.0.0.1:0".parse().expect("address"),
        reader,
        ResponderOptions::default(),
    )
    .expect("listen on loopback");
    let mut snapshot = publisher.blank();
    let mut request = RequestTotals {
        kind: "publish".into(),
        name: AWKWARD_NAME.into(),
        requests: 3,
        ..RequestTotals::default()
    };
    request.response_time.record_micros(150, 2);
    request.response_time.record_micros(40_000_000, 1);
    snapshot.0.requests.push(request);
    snapshot.0.failures.push(mqload::metrics::FailureTotal {
        reason: "timeout".into(),
        failures: 1,
    });

    // What is served before the first snapshot: families with no samples.
    let (status, empty) = http_get(responder.local_addr(), "/metrics", None);
    assert_eq!(status, 200);
    let (passed, said) = promtool_check_metrics(&empty);
    assert!(
        passed && said.trim().is_empty(),
        "promtool check metrics: {said}\non:\n{empty}"
    );

    publisher.publish(snapshot);
    let (status, text) = http_get(responder.local_addr(), "/metrics", None);
    assert_eq!(status, 200);
    let (passed, said) = promtool_check_metrics(&text);
    assert!(
        passed && said.trim().is_empty(),
        "promtool check metrics: {said}\non:\n{text}"
    );

    // The check can fail: a counter without `_total` is refused.
    let broken = text.replace("mqload_connects_total", "mqload_connects");
    let (passed, said) = promtool_check_metrics(&broken);
    assert!(
        !passed,
        "promtool should refuse a counter without _total: {said}"
    );
    eprintln!("promtool on a counter without _total: {}", said.trim());
}

#[test]
fn prometheus_scrapes_the_rate_and_values_served() {
    if !require_prometheus_tools() {
        return;
    }
    let began = Instant::now();
    let (publisher, reader) = snapshot_handoff::<CountingSnapshot>();
    let responder = MetricsResponder::start(
        "127.0.0.1:0".parse().expect("address"),
        reader,
        ResponderOptions::default(),
    )
    .expect("listen on loopback");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let prometheus = PrometheusProcess::start(dir.path(), responder.local_addr());

    // Each wait is capped by what is left of the budget, so the test ends within it.
    let within = |step: u64| {
        Duration::from_secs(step)
            .min((began + TEST_BUDGET).saturating_duration_since(Instant::now()))
    };
    let ready = common::wait_until(within(5), || {
        http_get(prometheus.addr, "/-/ready", None).0 == 200
    });
    assert!(ready, "Prometheus did not get ready:\n{}", prometheus.log());
    // The first scrape finds no snapshot yet: empty families must still parse. (Prometheus
    // applies new targets on a 5 s tick, so the first scrape can take that long.)
    let first_scrape = common::wait_until(within(8), || {
        prometheus.single_value("up{job=\"mqload\"}").is_some()
    });
    assert!(first_scrape, "no scrape within 8 s:\n{}", prometheus.log());
    assert_eq!(
        prometheus.single_value("up{job=\"mqload\"}"),
        Some(1.0),
        "the empty exposition failed to parse:\n{}",
        prometheus.log()
    );
    let mut producer = Producer::start(publisher);

    // Seven scrapes: six one-second intervals to take the rate over.
    let scraped = common::wait_until(within(12), || {
        prometheus
            .single_value("count_over_time(mqload_requests_total[1m])")
            .unwrap_or(0.0)
            >= 7.0
    });
    assert!(
        scraped,
        "Prometheus scraped too few samples; up = {:?}; log:\n{}",
        prometheus.query("up"),
        prometheus.log()
    );
    assert_eq!(
        prometheus.single_value("up{job=\"mqload\"}"),
        Some(1.0),
        "{}",
        prometheus.log()
    );
    let rate = prometheus
        .single_value("rate(mqload_requests_total{kind=\"publish\"}[5s])")
        .expect("one publish series");
    eprintln!("Prometheus measured {rate:.3}/s; {RATE}/s was served");
    assert!(
        (rate - RATE).abs() / RATE < 0.02,
        "Prometheus measured {rate:.2}/s where {RATE}/s was served"
    );

    // Freeze the counter; Prometheus must come to hold exactly the value served.
    let frozen = producer.freeze() as f64;
    let caught_up = common::wait_until(within(4), || {
        prometheus.single_value("mqload_requests_total") == Some(frozen)
    });
    assert!(
        caught_up,
        "latest: {:?}, served: {frozen}",
        prometheus.query("mqload_requests_total")
    );
    let series = prometheus.query("mqload_requests_total");
    assert_eq!(
        series[0]["metric"]["name"].as_str(),
        Some(AWKWARD_NAME),
        "labels survive escaping"
    );
    assert_eq!(prometheus.single_value("mqload_users"), Some(USERS as f64));
    assert_eq!(
        prometheus.single_value("mqload_response_time_seconds_count"),
        Some(frozen)
    );
    assert_eq!(
        prometheus.single_value("mqload_response_time_seconds_bucket{le=\"0.001\"}"),
        Some(frozen)
    );
    assert_eq!(
        prometheus.single_value("mqload_response_time_seconds_bucket{le=\"0.0005\"}"),
        Some(0.0)
    );
    let sum = prometheus
        .single_value("mqload_response_time_seconds_sum")
        .expect("a sum");
    assert!(
        (sum - frozen * 0.0008).abs() < 1e-6,
        "sum {sum} for {frozen} values of 800 µs"
    );

    assert!(
        OPEN_METRICS_SCRAPES.load(Ordering::Relaxed) >= 7,
        "Prometheus asks for OpenMetrics"
    );
    assert!(began.elapsed() < TEST_BUDGET, "took {:?}", began.elapsed());
    drop(prometheus);
    responder.stop();
}
