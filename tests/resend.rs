//! QoS 1 publishes unacknowledged when a connection drops are never silently forgotten: re-sent
//! with DUP and their packet ids when the broker kept the session (clean session off), counted
//! failed when it did not or when clean session is on. A scripted server makes each case exact.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::run_mqload;
use mqload::mqtt::{self, ConnectReturnCode, Packet};

/// Publishes the first connection receives (and never acknowledges) before it is dropped.
const DROP_AFTER: usize = 4;

/// What the scripted server saw.
#[derive(Debug, Default)]
struct Seen {
    /// Clean session flag of each CONNECT.
    clean_session: Vec<bool>,
    /// Packet ids of the first connection's publishes (never acknowledged).
    first: Vec<u16>,
    /// `(dup, packet id)` of every publish on the second connection (all acknowledged).
    second: Vec<(bool, u16)>,
}

/// A plain-TCP server for one client: the first connection gets CONNACK and `DROP_AFTER`
/// publishes without PUBACK, then is closed; the second gets CONNACK with `present` as its
/// session-present flag and every publish is acknowledged, until the client disconnects.
fn withholding_broker(present: bool) -> (u16, thread::JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = thread::spawn(move || {
        let mut seen = Seen::default();
        for round in 0..2 {
            let Ok((mut stream, _)) = listener.accept() else {
                return seen;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(15)));
            serve(&mut stream, round, present, &mut seen);
        }
        seen
    });
    (port, handle)
}

fn serve(stream: &mut TcpStream, round: usize, present: bool, seen: &mut Seen) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        let mut reply = Vec::new();
        while let Ok(Some((packet, used))) = mqtt::decode(&buf, 1 << 20) {
            match packet {
                Packet::Connect(c) => {
                    seen.clean_session.push(c.clean_session);
                    Packet::ConnAck {
                        session_present: round == 1 && present,
                        code: ConnectReturnCode::Accepted,
                    }
                    .encode(&mut reply)
                    .expect("connack");
                }
                Packet::Publish(p) if round == 0 => seen.first.push(p.packet_id),
                Packet::Publish(p) => {
                    seen.second.push((p.dup, p.packet_id));
                    Packet::PubAck(p.packet_id)
                        .encode(&mut reply)
                        .expect("puback");
                }
                _ => {}
            }
            buf.drain(..used);
        }
        if stream.write_all(&reply).is_err() {
            return;
        }
        if round == 0 && seen.first.len() >= DROP_AFTER {
            // Drop the connection with every publish unacknowledged.
            return;
        }
    }
}

/// Runs one user at 10 msg/s QoS 1 against the server for 4 s.
fn run(port: u16, extra: &[&str]) -> common::RunOutput {
    let port = port.to_string();
    let mut args = vec![
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--no-tls",
        "-u",
        "1",
        "-t",
        "4s",
        "--qos",
        "1",
        "--throughput",
        "10",
        "--client-id",
        "dev-{i}",
        "--stop-timeout",
        "2s",
        "--only-summary",
    ];
    args.extend_from_slice(extra);
    run_mqload(&args, &[], Duration::from_secs(30))
}

/// `(requests, failures)` of `name`'s row in the final stats table.
fn row(stdout: &str, name: &str) -> (u64, u64) {
    let cells: Vec<&str> = stdout
        .lines()
        .find(|l| l.starts_with("MQTT") && l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no {name} row in:\n{stdout}"))
        .split_whitespace()
        .collect();
    let number = |cell: &str| {
        cell.split('(')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a count: {cell:?}"))
    };
    (number(cells[2]), number(cells[3]))
}

/// Occurrences of errors whose text contains `needle`, summed over the error report.
fn occurrences(stdout: &str, needle: &str) -> u64 {
    stdout
        .lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

const PUBLISH: &str = "publish:1:locust/test/topic";

#[test]
fn unacked_publishes_are_resent_with_dup_and_the_same_ids_when_the_session_is_present() {
    let started = Instant::now();
    let (port, server) = withholding_broker(true);
    let out = run(port, &["--clean-session", "false"]);
    let seen = server.join().expect("server");
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{}",
        out.describe()
    );
    assert_eq!(seen.clean_session, vec![false, false], "{}", out.describe());
    assert_eq!(seen.first.len(), DROP_AFTER, "{seen:?}\n{}", out.describe());
    // The second connection starts with the dropped publishes: DUP set, same ids, same order.
    let resent: Vec<(bool, u16)> = seen.first.iter().map(|&id| (true, id)).collect();
    assert!(
        seen.second.len() > DROP_AFTER,
        "publishing resumed: {seen:?}\n{}",
        out.describe()
    );
    assert_eq!(seen.second[..DROP_AFTER], resent[..], "{}", out.describe());
    // Everything after them is new: no DUP, ids continuing after the last one used.
    let last_first = *seen.first.last().expect("first");
    for (k, &(dup, id)) in seen.second[DROP_AFTER..].iter().enumerate() {
        assert!(!dup, "{seen:?}");
        assert_eq!(usize::from(id), usize::from(last_first) + 1 + k, "{seen:?}");
    }
    // Nothing forgotten: every distinct message the server received was acked, and counted
    // acked by mqload; the only publish failures are messages due while disconnected.
    let (reqs, fails) = row(&out.stdout, PUBLISH);
    let unique = seen.second.len() as u64;
    assert_eq!(reqs - fails, unique, "{seen:?}\n{}", out.describe());
    assert_eq!(
        fails,
        occurrences(&out.stdout, "not connected when due"),
        "{}",
        out.describe()
    );
    assert_eq!(occurrences(&out.stdout, "before the ack"), 0);
    assert_eq!(row(&out.stdout, "disconnect").1, 1, "{}", out.describe());
    let line = format!(
        "Connections: 2 connects (1 reconnects), 0 failed attempts, 1 dropped (causes: \
         disconnect rows of the error report), {DROP_AFTER} publishes re-sent with DUP"
    );
    assert!(out.stdout.contains(&line), "{line}\n{}", out.describe());
}

#[test]
fn unacked_publishes_are_failures_when_the_broker_lost_the_session() {
    let (port, server) = withholding_broker(false);
    let out = run(port, &["--clean-session", "false"]);
    let seen = server.join().expect("server");
    assert_eq!(seen.first.len(), DROP_AFTER, "{}", out.describe());
    assert!(seen.second.iter().all(|&(dup, _)| !dup), "{seen:?}");
    assert_eq!(
        occurrences(&out.stdout, "broker lost the session before the ack"),
        DROP_AFTER as u64,
        "{}",
        out.describe()
    );
    let (reqs, fails) = row(&out.stdout, PUBLISH);
    assert_eq!(reqs - fails, seen.second.len() as u64, "{}", out.describe());
    assert_eq!(out.code, Some(1), "{}", out.describe());
}

#[test]
fn unacked_publishes_are_failures_with_clean_session_on() {
    let (port, server) = withholding_broker(true);
    let out = run(port, &[]);
    let seen = server.join().expect("server");
    assert_eq!(seen.clean_session, vec![true, true], "{}", out.describe());
    assert_eq!(seen.first.len(), DROP_AFTER, "{}", out.describe());
    assert!(seen.second.iter().all(|&(dup, _)| !dup), "{seen:?}");
    assert_eq!(
        occurrences(&out.stdout, "connection lost before the ack"),
        DROP_AFTER as u64,
        "{}",
        out.describe()
    );
    let (reqs, fails) = row(&out.stdout, PUBLISH);
    assert_eq!(reqs - fails, seen.second.len() as u64, "{}", out.describe());
}

/// The count before `after` in the connections line, e.g. `publishes re-sent with DUP`.
fn connections_count(stdout: &str, after: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Connections: "))
        .unwrap_or_else(|| panic!("no connections line:\n{stdout}"));
    line.split(", ")
        .flat_map(|part| part.split(" ("))
        .find_map(|part| part.strip_suffix(after)?.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_stalled_mosquitto_gets_the_unacked_publishes_again_with_dup_after_the_reconnect() {
    if !common::require_broker_tools() {
        return;
    }
    const USERS: u64 = 3;
    let pki = common::Pki::new(true);
    let broker = common::Broker::start(&pki);
    let mut args = common::broker_args(&pki, &broker);
    args.extend(
        [
            "-u",
            &USERS.to_string(),
            "-r",
            "100",
            "-t",
            "9s",
            "--qos",
            "1",
            "--throughput",
            "20",
            "--clean-session",
            "false",
            "--client-id",
            "dev-{i}",
            "--ack-timeout",
            "1s",
            "--stop-timeout",
            "3s",
            "--only-summary",
        ]
        .map(String::from),
    );
    let run = thread::spawn(move || run_mqload(&args, &[], Duration::from_secs(40)));
    // Stop the broker (acks stop; mqload's ack timeout drops each connection with publishes in
    // flight), then let it go on: it still holds every session, so the CONNACKs say
    // session present and the unacked publishes come again with DUP.
    thread::sleep(Duration::from_millis(3500));
    let pid = broker.pid().expect("broker pid") as libc::pid_t;
    // SAFETY: kill(2) on the pid of the broker child this test started and still owns.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    thread::sleep(Duration::from_secs(2));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let out = run.join().expect("run");
    let resent = connections_count(&out.stdout, "publishes re-sent with DUP");
    assert!(resent > 0, "{}", out.describe());
    assert!(
        connections_count(&out.stdout, "reconnects)") >= USERS,
        "{}",
        out.describe()
    );
    // Nothing forgotten or given up: the only publish failures are messages that fell due
    // while a device was disconnected; every message sent was acknowledged.
    let (reqs, fails) = row(&out.stdout, PUBLISH);
    assert_eq!(
        fails,
        occurrences(&out.stdout, "not connected when due"),
        "{}",
        out.describe()
    );
    let acked = reqs - fails;
    // The broker counts every PUBLISH it read: each acked message once, plus at most one more
    // for each re-sent one (when it had read the original before the drop).
    let received = common::wait_sys_messages_received(&broker, acked, Duration::from_secs(5));
    eprintln!("acked {acked}, failed {fails}, re-sent {resent}, broker received {received}");
    assert!(
        (acked..=acked + resent).contains(&received),
        "broker received {received}, mqload acked {acked}, re-sent {resent}:\n{}\n{}",
        out.describe(),
        broker.log()
    );
}
