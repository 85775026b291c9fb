//! What mqload checks before a run, and what it still tells the user when a check fails:
//! an unwritable `--csv` prefix stops the run before any connection, and `--dry-run` prints
//! its plan and estimate even where the broker's name does not resolve.

mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use common::run_mqload;

const TIMEOUT: Duration = Duration::from_secs(30);

/// The seed README's broker: an AWS IoT endpoint name that does not resolve on this machine
/// (nothing is sent to it: the lookup fails, and a dry run connects nowhere anyway).
const SEED_HOST: &str = "EXAMPLEdjbt-ats.iot.eu-west-1.amazonaws.com";

/// A loopback listener that counts the connections it accepts.
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

#[test]
fn an_unwritable_csv_prefix_stops_the_run_before_it_starts() {
    let (port, accepted) = counting_listener();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").expect("write");
    // Under a regular file no directory can be made, whoever runs the test.
    let prefix = file.join("run");
    let out = run_mqload(
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--no-tls",
            "-u",
            "1",
            "-t",
            "2s",
            "--csv",
            prefix.to_str().expect("utf-8"),
        ],
        &[],
        TIMEOUT,
    );
    assert_eq!(out.code, Some(2), "{}", out.describe());
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one error line:\n{}", out.describe());
    assert!(errors[0].contains("--csv "), "{}", out.describe());
    assert!(out.stdout.is_empty(), "no stats table: {}", out.describe());
    thread::sleep(Duration::from_millis(200));
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "the run connected");
}

#[test]
fn a_dry_run_prints_plan_and_estimate_before_an_unresolvable_host() {
    // The seed's example run: 10 users, 1/s, 100 msg/s, 10 minutes, 5 KiB JSON bodies.
    let out = run_mqload(
        &[
            "--dry-run",
            "--host",
            SEED_HOST,
            "--no-tls",
            "-u",
            "10",
            "-r",
            "1",
            "--throughput",
            "100",
            "-t",
            "10m",
        ],
        &[],
        TIMEOUT,
    );
    assert_eq!(out.code, Some(2), "{}", out.describe());
    let lines: Vec<&str> = out.stderr.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}:\n{}", out.describe()))
    };
    let plan = at("10 users at 1/s");
    let offered = at("offered load: 1,000 msg/s in total");
    let estimate = at("AWS IoT Core estimate:");
    let unresolved = at("cannot resolve broker host");
    assert!(
        plan < offered && offered < estimate && estimate < unresolved,
        "plan, load and estimate come first, then the failure:\n{}",
        out.describe()
    );
    assert!(lines[plan].contains(SEED_HOST), "{}", out.describe());
    assert!(lines[estimate].contains("= $1.19"), "{}", out.describe());
    assert!(
        !out.stderr.contains("the run would go ahead"),
        "{}",
        out.describe()
    );
}
