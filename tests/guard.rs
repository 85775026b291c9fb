//! The AWS IoT Core guard: the offered load before every run, the estimated bill and quota
//! warnings for AWS, and a refusal before any connection when the estimate is over budget.

mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use common::{Broker, Pki, broker_args, require_broker_tools, run_mqload};

const TIMEOUT: Duration = Duration::from_secs(30);

/// A loopback listener that counts the connections it accepts, so a test can prove that a
/// refused run never opened one.
fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    thread::spawn(move || {
        for stream in listener.incoming() {
            if stream.is_ok() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (port, accepted)
}

/// The seed's example run (10 users x 100 msg/s x 10 min, 5 KiB JSON) as an AWS run aimed at
/// a loopback `port`.
fn seed_example(port: &str) -> Vec<&str> {
    vec![
        "--aws",
        "--host",
        "127.0.0.1",
        "--port",
        port,
        "--no-tls",
        "-u",
        "10",
        "-r",
        "1",
        "--throughput",
        "100",
        "-t",
        "10m",
    ]
}

#[test]
fn over_budget_aws_run_stops_before_connecting() {
    let (port, accepted) = counting_listener();
    let port = port.to_string();
    // The seed's example (10 users x 100 msg/s x 10 min, 5 KiB JSON) with a $1 budget.
    let mut args = seed_example(&port);
    args.extend(["--qos", "1", "--max-cost", "1"]);
    let out = run_mqload(&args, &[], TIMEOUT);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(out.stdout.is_empty(), "{}", out.describe());
    let estimate = out
        .stderr
        .lines()
        .find(|l| l.contains("AWS IoT Core estimate"))
        .unwrap_or_else(|| panic!("no estimate line:\n{}", out.describe()));
    assert!(estimate.contains("x 2 metered"), "{estimate}");
    assert!(estimate.contains("$1.19"), "{estimate}");
    assert!(
        out.stderr.contains("over AWS IoT's 512 KiB/s"),
        "the seed's 678 KiB/s per connection breaks AWS's quota:\n{}",
        out.describe()
    );
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{}", out.describe());
    assert!(errors[0].contains("over --max-cost $1.00"), "{}", errors[0]);
    assert!(errors[0].contains("--yes"), "{}", errors[0]);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "a refused run connected"
    );
}

#[test]
fn endless_aws_run_needs_a_run_time_or_yes() {
    let (port, accepted) = counting_listener();
    let port = port.to_string();
    let out = run_mqload(
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--no-tls",
            "-u",
            "2",
            "--qos",
            "2",
        ],
        &[("MQLOAD_AWS", "1")],
        TIMEOUT,
    );
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(out.stderr.contains("no --run-time"), "{}", out.describe());
    assert!(
        out.stderr.contains("does not support QoS 2"),
        "{}",
        out.describe()
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "a refused run connected"
    );
    let out = run_mqload(
        &[
            "--aws",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--no-tls",
            "-u",
            "1",
            "--price-per-million",
            "-1",
        ],
        &[],
        TIMEOUT,
    );
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(
        out.stderr.contains("--price-per-million -1"),
        "{}",
        out.describe()
    );
}

#[test]
fn confirmed_aws_run_goes_ahead_and_a_plain_run_gets_no_estimate() {
    if !require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    let mut args = broker_args(&pki, &broker);
    args.extend(
        [
            "-u",
            "2",
            "-r",
            "10",
            "-t",
            "3s",
            "--throughput",
            "5",
            "--qos",
            "1",
            "--payload-format",
            "raw",
            "--payload-bytes",
            "100",
        ]
        .map(String::from),
    );
    let plain = run_mqload(&args, &[], TIMEOUT);
    assert_eq!(plain.code, Some(0), "{}", plain.describe());
    assert!(
        plain.stderr.contains(
            "offered load: 10 msg/s in total (2 users x 5 msg/s), 149 B per message (payload + topic), 745 B/s per connection"
        ),
        "{}",
        plain.describe()
    );
    assert!(!plain.stderr.contains("AWS"), "{}", plain.describe());
    // Over a $0 budget, confirmed: the run happens and still shows the estimate.
    args.extend(["--aws", "--max-cost", "0", "--yes"].map(String::from));
    let aws = run_mqload(&args, &[], TIMEOUT);
    assert_eq!(aws.code, Some(0), "{}", aws.describe());
    assert!(aws.stderr.contains("x 1 metered"), "{}", aws.describe());
    assert!(aws.stdout.contains("publish:1:"), "{}", aws.describe());
}

#[test]
fn a_dry_run_prints_the_estimate_and_never_connects() {
    let (port, accepted) = counting_listener();
    let port = port.to_string();
    let seed = |extra: &[&str]| {
        let mut args = seed_example(&port);
        args.push("--dry-run");
        args.extend_from_slice(extra);
        run_mqload(&args, &[], TIMEOUT)
    };
    // Within budget: the plan and the estimate, exit 0, and no connection.
    let out = seed(&[]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(out.stderr.contains("= $1.19"), "{}", out.describe());
    assert!(
        out.stderr.contains("--dry-run: the run would go ahead"),
        "{}",
        out.describe()
    );
    assert!(out.stdout.is_empty(), "no stats table: {}", out.describe());
    // Over budget: the same refusal (exit 2) a real run gets.
    let out = seed(&["--max-cost", "1"]);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(
        out.stderr.contains("over --max-cost $1.00"),
        "{}",
        out.describe()
    );
    // A worker's plan comes from its master: --dry-run there is a mistake, one line, exit 2.
    let out = run_mqload(&["--worker", "--dry-run"], &[], TIMEOUT);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(
        out.stderr.contains("drop --dry-run or --worker"),
        "{}",
        out.describe()
    );
    thread::sleep(Duration::from_millis(200));
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "a dry run connected");
}

#[test]
fn a_dry_run_warns_when_spawn_rate_or_churn_passes_aws_connect_quotas() {
    let (port, accepted) = counting_listener();
    let port = port.to_string();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--aws",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--no-tls",
            "--client-id",
            "dev-{i}",
            "-t",
            "1m",
            "--dry-run",
            "--yes",
        ];
        args.extend_from_slice(extra);
        run_mqload(&args, &[], TIMEOUT)
    };
    let connect_warnings = |out: &common::RunOutput| -> Vec<String> {
        assert_eq!(out.code, Some(0), "{}", out.describe());
        out.stderr
            .lines()
            .filter(|l| l.contains("warning: AWS IoT quota") && l.contains("CONNECT"))
            .map(str::to_owned)
            .collect()
    };
    // 1,000 users at 100/s, no churn: within both quotas.
    let calm = run(&["-u", "1000", "-r", "100"]);
    assert_eq!(connect_warnings(&calm), Vec::<String>::new());
    // Spawning 800/s passes the account's 500/s.
    let fast = connect_warnings(&run(&["-u", "1000", "-r", "800"]));
    assert_eq!(fast.len(), 1, "{fast:?}");
    assert!(fast[0].contains("up to 800 CONNECTs/s"), "{}", fast[0]);
    assert!(fast[0].contains("500 per account"), "{}", fast[0]);
    // Churn: 1,000 users at 100/s reconnecting every 500 ms: 2 per second per client id,
    // and the reconnects of earlier users on top of the spawn rate.
    let churn = connect_warnings(&run(&[
        "-u",
        "1000",
        "-r",
        "100",
        "--connection-lifetime",
        "500ms",
    ]));
    assert_eq!(churn.len(), 2, "{churn:?}");
    assert!(churn.iter().any(|l| l.contains("2 times/s")), "{churn:?}");
    assert!(
        churn.iter().any(|l| l.contains("up to 2100 CONNECTs/s")),
        "{churn:?}"
    );
    thread::sleep(Duration::from_millis(200));
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "a dry run connected");
}

#[test]
fn mqtt5_user_properties_count_in_the_metered_size() {
    let (port, accepted) = counting_listener();
    let port = port.to_string();
    let long_value = format!("k={}", "v".repeat(200));
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--aws",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--no-tls",
            "--mqtt-version",
            "5",
            "--payload-format",
            "raw",
            "--payload-bytes",
            "5000",
            "--topic",
            "t",
            "-u",
            "1",
            "-t",
            "1m",
            "--dry-run",
        ];
        args.extend_from_slice(extra);
        let out = run_mqload(&args, &[], TIMEOUT);
        assert_eq!(out.code, Some(0), "{}", out.describe());
        out
    };
    // "..., N B per message (payload + topic...)" and "x M metered".
    let figures = |out: &common::RunOutput| -> (u64, u64) {
        let offered = out
            .stderr
            .lines()
            .find(|l| l.contains("B per message"))
            .unwrap_or_else(|| panic!("no offered load:\n{}", out.describe()));
        let bytes = offered
            .split(" B per message")
            .next()
            .and_then(|head| head.rsplit(' ').next())
            .and_then(|n| n.replace(',', "").parse().ok())
            .unwrap_or_else(|| panic!("bytes in {offered}"));
        let estimate = out
            .stderr
            .lines()
            .find(|l| l.contains("AWS IoT Core estimate"))
            .unwrap_or_else(|| panic!("no estimate:\n{}", out.describe()));
        let metered = estimate
            .split(" metered")
            .next()
            .and_then(|head| head.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("metered in {estimate}"));
        (bytes, metered)
    };
    let (plain_bytes, plain_metered) = figures(&run(&[]));
    let with = run(&["--user-property", &long_value]);
    let (bytes, metered) = figures(&with);
    assert!(
        with.stderr.contains("(payload + topic + user properties)"),
        "{}",
        with.describe()
    );
    // One property on the wire: identifier, then name and value each with a 2-byte length.
    assert_eq!(bytes - plain_bytes, 1 + 2 + 1 + 2 + 200);
    assert!(
        plain_bytes <= 5 * 1024 && bytes > 5 * 1024,
        "{plain_bytes} {bytes}"
    );
    assert_eq!((plain_metered, metered), (1, 2));
    thread::sleep(Duration::from_millis(200));
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "a dry run connected");
}
