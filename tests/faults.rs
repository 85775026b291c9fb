//! Faults the core must survive: a broker that never acks, one that refuses, one that dies and
//! comes back. Each is counted as a named failure, the run ends on time, and it reconnects.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::{Broker, Pki, broker_args, run_mqload};
use mqload::mqtt::{self, ConnectReturnCode, Packet};

/// The bytes of a CONNACK with `code`.
fn connack(code: ConnectReturnCode) -> Vec<u8> {
    let mut out = Vec::new();
    Packet::ConnAck {
        session_present: false,
        code,
    }
    .encode(&mut out)
    .expect("connack");
    out
}

/// A plain-TCP server that answers every CONNECT with `reply`, then reads and ignores
/// everything (no PUBACK, no PINGRESP), for `lifetime`.
fn scripted_broker(reply: Vec<u8>, lifetime: Duration) -> (u16, thread::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let handle = thread::spawn(move || {
        let started = Instant::now();
        let mut connections = Vec::new();
        let mut accepted = 0;
        while started.elapsed() < lifetime {
            if let Ok((stream, _)) = listener.accept() {
                accepted += 1;
                let reply = reply.clone();
                connections.push(thread::spawn(move || serve(stream, &reply, lifetime)));
            }
            thread::sleep(Duration::from_millis(5));
        }
        accepted
    });
    (port, handle)
}

fn serve(mut stream: TcpStream, reply: &[u8], lifetime: Duration) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(lifetime));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        while let Ok(Some((packet, used))) = mqtt::decode(&buf, 1 << 20) {
            if matches!(packet, Packet::Connect(_)) && stream.write_all(reply).is_err() {
                return;
            }
            buf.drain(..used);
        }
    }
}

/// Runs mqload over plain TCP against the scripted server on `port`, with `extra` options.
fn run_against(port: u16, extra: &[&str], timeout: Duration) -> common::RunOutput {
    let port = port.to_string();
    let mut args = vec!["--host", "127.0.0.1", "--port", &port, "--no-tls"];
    args.extend_from_slice(extra);
    run_mqload(&args, &[], timeout)
}

/// The cells of `name`'s row in the (only, with `--only-summary`) stats table.
fn stats_row<'a>(stdout: &'a str, name: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .find(|l| l.starts_with("MQTT") && l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no {name} row in:\n{stdout}"))
        .split_whitespace()
        .collect()
}

#[test]
fn a_broker_that_never_acks_is_a_failure_and_a_reconnect() {
    let (port, server) =
        scripted_broker(connack(ConnectReturnCode::Accepted), Duration::from_secs(8));
    let out = run_against(
        port,
        &[
            "-u",
            "2",
            "-r",
            "10",
            "-t",
            "5s",
            "--qos",
            "1",
            "--throughput",
            "5",
            "--ack-timeout",
            "1s",
            "--stop-timeout",
            "1s",
            "--only-summary",
        ],
        Duration::from_secs(20),
    );
    // Failures give exit code 1, and the run still ends on time.
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(out.elapsed < Duration::from_secs(10), "{}", out.describe());
    assert!(
        out.stdout
            .contains("no PUBACK/PUBCOMP within the ack timeout"),
        "{}",
        out.describe()
    );
    assert!(
        out.stdout.contains("connection lost before the ack"),
        "{}",
        out.describe()
    );
    // Each user connected, timed out after its first unacked publish, and connected again.
    let connects: u64 = stats_row(&out.stdout, "connect")[2].parse().expect("count");
    assert!(connects >= 4, "{}", out.describe());
    assert!(server.join().expect("server") >= 4);
}

#[test]
fn a_refused_connack_names_the_reason() {
    let (port, _server) = scripted_broker(
        connack(ConnectReturnCode::NotAuthorized),
        Duration::from_secs(5),
    );
    let out = run_against(
        port,
        &["-u", "1", "-t", "2s", "--only-summary"],
        Duration::from_secs(20),
    );
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(
        out.stdout.contains("CONNACK refused: 5 not authorized"),
        "{}",
        out.describe()
    );
    // One line on stderr says nothing ever connected, and why.
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("no connection to the broker succeeded"))
        .unwrap_or_else(|| panic!("no never-connected line:\n{}", out.describe()));
    assert!(
        line.ends_with(
            "first error: CONNACK refused: 5 not authorized (check the certificate's policy)"
        ),
        "{line}"
    );
    let connect = stats_row(&out.stdout, "connect");
    assert_eq!(
        connect[2],
        connect[3].split('(').next().expect("fails"),
        "every connect failed"
    );
}

/// The failure count in a stats row's `# fails` cell, `12(3.45%)`.
fn failures(cell: &str) -> u64 {
    cell.split('(')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a `# fails` cell: {cell:?}"))
}

#[test]
fn garbage_and_oversized_packets_from_the_broker_are_named_failures_not_crashes() {
    let cases: [(&[u8], &str); 3] = [
        // Packet type 0 is reserved.
        (&[0x00, 0x00], "malformed packet from broker"),
        // A CONNACK whose remaining length announces 256 MiB: refused from the header.
        (
            &[0x20, 0xff, 0xff, 0xff, 0x7f],
            "malformed packet from broker",
        ),
        // A PINGREQ, which only clients send.
        (&[0xc0, 0x00], "unexpected packet from broker"),
    ];
    for (reply, needle) in cases {
        let (port, _server) = scripted_broker(reply.to_vec(), Duration::from_secs(5));
        let out = run_against(
            port,
            &["-u", "2", "-r", "10", "-t", "2s", "--only-summary"],
            Duration::from_secs(20),
        );
        assert_eq!(out.code, Some(1), "{reply:?}: {}", out.describe());
        assert!(out.elapsed < Duration::from_secs(8), "{}", out.describe());
        assert!(out.stdout.contains(needle), "{reply:?}: {}", out.describe());
        assert!(!out.stderr.contains("panicked"), "{}", out.describe());
    }
}

#[test]
fn a_broker_killed_mid_run_is_reconnected_to_when_it_returns() {
    if !common::require_broker_tools() {
        return;
    }
    const USERS: u64 = 3;
    const RATE: u64 = 20;
    let pki = Pki::new(true);
    let mut broker = Broker::start(&pki);
    let mut args = broker_args(&pki, &broker);
    args.extend(
        [
            "-u",
            &USERS.to_string(),
            "-r",
            "100",
            // Long enough that publishing resumes for seconds even when the restart is slow: the
            // backoff (100 ms doubling, jitter x0.5..1.5) retries at most ~2.25 s after the kill
            // if the broker is back by then, and the first message is due 1 s after a CONNACK.
            "-t",
            "12s",
            "--qos",
            "1",
            "--throughput",
            &RATE.to_string(),
            "--only-summary",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let started = Instant::now();
    let run = thread::spawn(move || run_mqload(&args, &[], Duration::from_secs(40)));
    thread::sleep(Duration::from_secs(3));
    broker.kill();
    // Measured, not assumed: on a loaded machine the sleep can overrun.
    let killed_at = started.elapsed();
    thread::sleep(Duration::from_secs(1));
    broker.restart();
    let out = run.join().expect("run");
    assert_eq!(
        out.code,
        Some(1),
        "the drop is a failure:\n{}",
        out.describe()
    );
    // Exactly three drops (one per user) counted as failed disconnects.
    let disconnect = stats_row(&out.stdout, "disconnect");
    assert_eq!(failures(disconnect[3]), USERS, "{}", out.describe());
    // The connections line says the same: every user dropped once and came back once.
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("Connections: "))
        .unwrap_or_else(|| panic!("no connections line:\n{}", out.describe()));
    assert!(
        line.starts_with(&format!(
            "Connections: {} connects ({USERS} reconnects), ",
            2 * USERS
        )) && line.contains(&format!(", {USERS} dropped (causes: ")),
        "{line}"
    );
    // Three connects, then three reconnects (failed attempts while it was down come on top).
    let connect = stats_row(&out.stdout, "connect");
    let connect_successes = connect[2].parse::<u64>().expect("count") - failures(connect[3]);
    assert!(connect_successes >= 2 * USERS, "{}", out.describe());
    // Publishing resumed: `# reqs` includes the failures (messages that fell due while
    // disconnected are counted as failed at reconnect), so count the successes. Before the kill
    // each user could send for at most `killed_at - 1 s` (the first message is due 1 s after
    // its CONNACK), plus one for rounding; everything beyond that was acked by the restarted
    // broker. Require at least a full second's worth more from every user.
    let publish = stats_row(&out.stdout, "publish:1:locust/test/topic");
    let successes = publish[2].parse::<u64>().expect("count") - failures(publish[3]);
    let before_kill = USERS
        * (RATE * killed_at.saturating_sub(Duration::from_secs(1)).as_millis() as u64 / 1000 + 1);
    assert!(
        successes >= before_kill + USERS * RATE,
        "{successes} acked, at most {before_kill} before the kill at {killed_at:?}:\n{}",
        out.describe()
    );
    // (Counted before reading $SYS, whose subscriber is a client too.)
    let reconnected = broker.log().matches("New client connected").count();
    assert_eq!(reconnected, 3, "all three came back:\n{}", broker.log());
    // The restarted broker saw them too: its counter started at zero with the restart.
    let after_restart =
        common::wait_sys_messages_received(&broker, USERS * RATE, Duration::from_secs(5));
    assert!(
        after_restart >= USERS * RATE,
        "the restarted broker received {after_restart} publishes:\n{}",
        out.describe()
    );
}

/// A TCP server that accepts for `lifetime` and, per connection, reads once (the TLS
/// ClientHello or the CONNECT) and closes when `close_after_read`, or holds the socket open and
/// silent otherwise.
fn mute_server(close_after_read: bool, lifetime: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    thread::spawn(move || {
        let started = Instant::now();
        let mut held = Vec::new();
        while started.elapsed() < lifetime {
            if let Ok((mut stream, _)) = listener.accept() {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                if close_after_read {
                    let _ = stream.read(&mut [0u8; 4096]);
                } else {
                    held.push(stream);
                }
            }
            thread::sleep(Duration::from_millis(5));
        }
    });
    port
}

#[test]
fn a_server_that_closes_mid_handshake_or_never_answers_is_named_and_the_run_ends_on_time() {
    // (close after the first read, TLS?, the failure named)
    let cases = [
        (
            true,
            true,
            "connection closed by the broker during the TLS handshake",
        ),
        (true, false, "connection closed by the broker"),
        (false, true, "connect timeout (TCP + TLS + CONNACK)"),
        (false, false, "connect timeout (TCP + TLS + CONNACK)"),
    ];
    let runs: Vec<_> = cases
        .iter()
        .map(|&(close, tls, needle)| {
            let port = mute_server(close, Duration::from_secs(8)).to_string();
            thread::spawn(move || {
                let mut args = vec!["--host", "127.0.0.1", "--port", &port];
                if !tls {
                    args.push("--no-tls");
                }
                args.extend([
                    "-u",
                    "2",
                    "-r",
                    "10",
                    "-t",
                    "3s",
                    "--connect-timeout",
                    "1s",
                    "--stop-timeout",
                    "1s",
                    "--only-summary",
                ]);
                (
                    needle,
                    close,
                    run_mqload(&args, &[], Duration::from_secs(20)),
                )
            })
        })
        .collect();
    for run in runs {
        let (needle, close, out) = run.join().expect("run");
        assert_eq!(out.code, Some(1), "{needle}: {}", out.describe());
        // 3 s run + 1 s stop timeout, plus slack for a loaded machine: never the 20 s kill.
        assert!(out.elapsed < Duration::from_secs(8), "{}", out.describe());
        assert!(!out.stderr.contains("panicked"), "{}", out.describe());
        let table_line = out
            .stdout
            .lines()
            .find(|l| l.contains("MQTT connect: ") && l.contains(needle))
            .unwrap_or_else(|| panic!("{needle}: no connect error:\n{}", out.describe()));
        assert!(table_line.contains(needle), "{table_line}");
        let connect = stats_row(&out.stdout, "connect");
        let attempts: u64 = connect[2].parse().expect("count");
        assert_eq!(failures(connect[3]), attempts, "{}", out.describe());
        if close {
            // Refused at once, so retried with backoff: several attempts per user.
            assert!(attempts > 2, "{}", out.describe());
        } else {
            // Each attempt waits out the 1 s connect timeout, then backs off.
            assert!((2..=6).contains(&attempts), "{}", out.describe());
        }
        assert!(
            out.stderr.contains("no connection to the broker succeeded"),
            "{}",
            out.describe()
        );
    }
}

/// `(Request Count, Failure Count)` of `name`'s row in a Locust `_stats.csv`.
fn csv_counts(path: &std::path::Path, name: &str) -> (u64, u64) {
    let row = common::expect_stats_row(path, name);
    (
        common::count(&row, "Request Count"),
        common::count(&row, "Failure Count"),
    )
}

#[test]
fn ctrl_c_mid_run_drains_disconnects_every_client_and_writes_the_reports() {
    if !common::require_broker_tools() {
        return;
    }
    const USERS: u64 = 4;
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    let csv = tempfile::tempdir().expect("csv dir");
    let prefix = csv.path().join("int");
    let mut args = broker_args(&pki, &broker);
    args.extend(
        [
            "-u",
            &USERS.to_string(),
            "-r",
            "100",
            "--qos",
            "1",
            "--throughput",
            "10",
            "--csv",
            prefix.to_str().expect("utf-8"),
        ]
        .map(String::from),
    );
    // No --run-time: only Ctrl-C (SIGINT) ends this run.
    let out = common::run_with_signal(
        common::mqload_command(&args, &[]),
        Duration::from_secs(30),
        Some((Duration::from_secs(3), libc::SIGINT)),
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(out.elapsed < Duration::from_secs(10), "{}", out.describe());
    assert!(
        out.stdout.contains("Response time percentiles"),
        "{}",
        out.describe()
    );
    for suffix in ["stats", "stats_history", "failures", "exceptions"] {
        let path = csv.path().join(format!("int_{suffix}.csv"));
        assert!(path.exists(), "{} missing", path.display());
    }
    let stats = csv.path().join("int_stats.csv");
    assert_eq!(csv_counts(&stats, "disconnect"), (USERS, 0));
    // Drained, not dropped: every publish sent was acknowledged before the DISCONNECT.
    let (published, failed) = csv_counts(&stats, "publish:1:locust/test/topic");
    assert!(published >= USERS * 10, "{published} publishes");
    assert_eq!(failed, 0);
    // mosquitto logs "disconnected." for a DISCONNECT packet, "closed its connection" otherwise.
    assert!(
        common::wait_until(Duration::from_secs(3), || broker
            .log()
            .matches(" disconnected.")
            .count()
            == USERS as usize),
        "{}",
        broker.log()
    );
    let dropped = broker
        .log()
        .lines()
        .filter(|l| l.contains("closed its connection") && !l.contains("<unknown>"))
        .count();
    assert_eq!(dropped, 0, "{}", broker.log());
    // The broker got exactly what mqload counted as acknowledged.
    let received = common::wait_sys_messages_received(&broker, published, Duration::from_secs(5));
    assert_eq!(received, published, "{}", out.describe());
}
