//! A broker that accepts the TCP connection and never answers (no CONNACK, or no TLS
//! ServerHello) is not a clean run: the attempts still waiting when the run ends are failed
//! connects with the step they were at, and a run in which no user connected exits with
//! `--exit-code-on-error` and says why.

mod common;

use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use common::run_mqload;

/// A listener that accepts every connection for `lifetime` and holds it open, reading nothing
/// and writing nothing.
fn silent_listener(lifetime: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    thread::spawn(move || {
        let started = Instant::now();
        let mut held = Vec::new();
        while started.elapsed() < lifetime {
            if let Ok((stream, _)) = listener.accept() {
                held.push(stream);
            }
            thread::sleep(Duration::from_millis(5));
        }
    });
    port
}

/// Runs the issue's command (5 users, 4 s, QoS 1) against a silent listener and checks that
/// each of the 5 attempts is a failed connect named `reason`, and the exit code is the
/// `--exit-code-on-error` one.
fn run_against_silence(tls: bool, reason: &str) {
    let port = silent_listener(Duration::from_secs(15)).to_string();
    let mut args = vec!["--host", "127.0.0.1", "--port", &port];
    if !tls {
        args.push("--no-tls");
    }
    args.extend([
        "--qos",
        "1",
        "-u",
        "5",
        "-r",
        "5",
        "-t",
        "4s",
        "--stop-timeout",
        "1s",
        "--exit-code-on-error",
        "3",
        "--only-summary",
    ]);
    let out = run_mqload(&args, &[], Duration::from_secs(20));
    assert_eq!(out.code, Some(3), "{}", out.describe());
    let connect = out
        .stdout
        .lines()
        .find(|l| l.starts_with("MQTT") && l.split_whitespace().nth(1) == Some("connect"))
        .unwrap_or_else(|| panic!("no connect row:\n{}", out.describe()));
    let cells: Vec<&str> = connect.split_whitespace().collect();
    assert_eq!(cells[2], "5", "five attempts: {}", out.describe());
    assert!(
        cells[3].starts_with("5("),
        "all five failed: {}",
        out.describe()
    );
    assert!(
        out.stdout.lines().any(|l| l.contains(reason)),
        "the reason {reason:?} is in the error table: {}",
        out.describe()
    );
    assert!(
        out.stderr.contains("no connection to the broker succeeded") && out.stderr.contains(reason),
        "stderr says why: {}",
        out.describe()
    );
}

#[test]
fn a_listener_that_never_sends_a_connack_is_a_failed_run() {
    run_against_silence(false, "no CONNACK before the run ended");
}

#[test]
fn a_tls_handshake_that_never_finishes_is_a_failed_run() {
    run_against_silence(true, "TLS handshake not finished before the run ended");
}
