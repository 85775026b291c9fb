//! After a reconnect, publishing resumes at the next slot of the absolute plan: only the
//! messages that fell due while the connection was really down count as missed, not the
//! second the client waits before a user's first publish.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::run_mqload;
use mqload::mqtt::{self, Packet};

/// CONNACK, session not present, accepted.
const CONNACK_ACCEPTED: [u8; 4] = [0x20, 0x02, 0x00, 0x00];

/// A plain-TCP server that accepts every CONNECT and reads everything after it (the QoS 0
/// publishes need no answer). The first connection is cut `cut_after` after its CONNACK;
/// later ones are served until the client leaves. Sends when each connection was accepted.
fn cutting_server(cut_after: Duration, lifetime: Duration) -> (u16, mpsc::Receiver<Instant>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let (accepted_tx, accepted_rx) = mpsc::channel();
    thread::spawn(move || {
        let started = Instant::now();
        let mut first = true;
        while started.elapsed() < lifetime {
            if let Ok((stream, _)) = listener.accept() {
                let _ = accepted_tx.send(Instant::now());
                let cut = std::mem::take(&mut first).then_some(cut_after);
                thread::spawn(move || serve(stream, cut, lifetime));
            }
            thread::sleep(Duration::from_millis(1));
        }
    });
    (port, accepted_rx)
}

/// Answers the CONNECT, then reads until the client leaves or `cut` after the CONNACK.
fn serve(mut stream: TcpStream, cut: Option<Duration>, lifetime: Duration) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(5)));
    let started = Instant::now();
    let mut connacked_at: Option<Instant> = None;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while started.elapsed() < lifetime {
        if let (Some(at), Some(cut)) = (connacked_at, cut)
            && at.elapsed() >= cut
        {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(_) => return,
        }
        while let Ok(Some((packet, used))) = mqtt::decode(&buf, 1 << 20) {
            if matches!(packet, Packet::Connect(_)) {
                if stream.write_all(&CONNACK_ACCEPTED).is_err() {
                    return;
                }
                connacked_at = Some(Instant::now());
            }
            buf.drain(..used);
        }
    }
}

/// The count of the error `message` of a request named `name...` (publish rows carry the
/// topic) in the summary's error table.
fn error_count(stdout: &str, name: &str, message: &str) -> Option<u64> {
    let prefix = format!("MQTT {name}");
    let suffix = format!(": {message}");
    let line = stdout
        .lines()
        .find(|l| l.contains(&prefix) && l.ends_with(&suffix))?;
    line.split_whitespace().next()?.parse().ok()
}

#[test]
fn a_short_outage_at_100_msg_per_s_misses_about_ten_messages_not_a_hundred_and_ten() {
    let _serial = common::serial();
    // One user at 100 msg/s: its first message is due 1 s after the CONNACK; the connection
    // is cut 2.5 s after it, and the client reconnects after its first backoff (50-150 ms).
    let (port, accepted) = cutting_server(Duration::from_millis(2500), Duration::from_secs(15));
    let port = port.to_string();
    let args = [
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--no-tls",
        "--qos",
        "0",
        "-u",
        "1",
        "-r",
        "1",
        "--throughput",
        "100",
        "-t",
        "5s",
        "--stop-timeout",
        "1s",
        "--only-summary",
    ];
    let out = run_mqload(&args, &[], Duration::from_secs(30));
    let accepts: Vec<Instant> = accepted.try_iter().collect();
    assert_eq!(accepts.len(), 2, "one reconnect: {}", out.describe());
    // The outage as the server saw it: from the cut to the next accept.
    let outage = accepts[1].saturating_duration_since(accepts[0]) - Duration::from_millis(2500);
    let missed = error_count(&out.stdout, "publish", "not connected when due")
        .unwrap_or_else(|| panic!("no missed messages counted: {}", out.describe()));
    // 100 msg/s: one message per 10 ms of outage, plus one for rounding and the time the
    // cut takes to reach the client. Before the fix it was the outage plus a whole second.
    let expected = outage.as_millis() as u64 / 10;
    assert!(
        missed >= expected.saturating_sub(2) && missed <= expected + 3,
        "{missed} missed over a {outage:?} outage (about {expected} expected): {}",
        out.describe()
    );
    assert!(missed < 50, "{missed} missed: {}", out.describe());
}
