//! mqload runs over WebSocket: against mosquitto's `protocol websockets` listeners, plain
//! (with custom-authorizer headers) and TLS (signed with SigV4; mosquitto ignores both), with
//! what mqload reports checked against mosquitto_sub; and against a scripted server that
//! refuses every upgrade, which shows each connection signs its own upgrade at its own
//! connect time exactly as botocore does, and that the refusal is a named connect failure;
//! and against a scripted server that pings and closes, answered as RFC 6455 says. Over
//! MQTT, a custom authorizer's fields are in CONNECT's user name.

mod common;
mod websocket_listeners;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Broker, Pki, Subscriber, count, expect_stats_row, run_with_timeout, serial};
use mqload::net::websocket::{
    Control, FrameDecoder, FramesFrom, Opcode, accept_upgrade, encode_frame,
};
use websocket_listeners::add_websocket_listeners;

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzEJr//////////wEaDN+example/token==";
const REGION: &str = "eu-west-1";

/// Test credentials in the environment, everything else AWS-related removed.
fn aws_env(with_keys: bool, home: &Path) -> Vec<(String, String)> {
    let mut env = vec![
        ("HOME".to_owned(), home.display().to_string()),
        ("AWS_REGION".to_owned(), REGION.to_owned()),
    ];
    if with_keys {
        env.push(("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()));
        env.push(("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()));
        env.push(("AWS_SESSION_TOKEN".into(), SESSION_TOKEN.into()));
    }
    env
}

/// mqload with `args`, the developer's own AWS settings removed and `env` set.
fn mqload(args: &[String], env: &[(String, String)], timeout: Duration) -> common::RunOutput {
    let mut cmd = common::mqload_command(args, &[]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(name);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    run_with_timeout(cmd, timeout)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// A 4 s run of 3 QoS 1 publishers at 10 msg/s on `url`, plus `extra`; returns the
/// publishes mqload reported once mosquitto_sub has seen them all.
fn run_and_check(
    broker: &Broker,
    url: &str,
    tag: &str,
    extra: &[&str],
    env: &[(String, String)],
) -> u64 {
    let topic = format!("mqload/ws/{tag}/{{i}}");
    let subscriber = Subscriber::start(broker, &format!("mqload/ws/{tag}/#"));
    let csv = tempfile::tempdir().expect("csv dir");
    let prefix = csv.path().join("run");
    let mut args = strings(&[
        "-H",
        url,
        "-u",
        "3",
        "-r",
        "50",
        "-t",
        "4s",
        "--qos",
        "1",
        "--throughput",
        "10",
        "--topic",
        &topic,
        "--client-id",
        "ws-{i}-{rand}",
        "--only-summary",
        "--csv",
        prefix.to_str().expect("utf-8"),
    ]);
    args.extend(strings(extra));
    let out = mqload(&args, env, Duration::from_secs(40));
    assert_eq!(
        out.code,
        Some(0),
        "{tag}: {}\n{}",
        out.describe(),
        broker.log()
    );
    let connect = expect_stats_row(&csv.path().join("run_stats.csv"), "connect");
    assert_eq!(
        count(&connect, "Request Count"),
        3,
        "{tag}: {}",
        out.describe()
    );
    assert_eq!(
        count(&connect, "Failure Count"),
        0,
        "{tag}: {}",
        out.describe()
    );
    let row = expect_stats_row(
        &csv.path().join("run_stats.csv"),
        &format!("publish:1:{topic}"),
    );
    let published = count(&row, "Request Count");
    assert_eq!(count(&row, "Failure Count"), 0, "{tag}: {}", out.describe());
    // 3 users x 10/s over the ~3 s after the first second: 90 at most; a loaded machine
    // connects late, so ask for a third of it. Exact delivery is checked below.
    assert!(
        (30..=96).contains(&published),
        "{tag}: published {published}\n{}",
        out.describe()
    );
    subscriber.wait_for(published as usize, Duration::from_secs(10));
    thread::sleep(Duration::from_millis(300));
    let messages = subscriber.stop();
    assert_eq!(
        messages.len() as u64,
        published,
        "{tag}: mosquitto_sub saw what mqload reported"
    );
    published
}

#[test]
fn runs_over_websocket_plain_and_tls_deliver_what_they_report() {
    if !common::require_broker_tools() {
        return;
    }
    let _guard = serial();
    let pki = Pki::new(true);
    let mut broker = Broker::start(&pki);
    let (plain, tls) = add_websocket_listeners(&mut broker, &pki);
    let home = tempfile::tempdir().expect("home");

    // Plain, with custom-authorizer headers in each upgrade (mosquitto ignores them).
    run_and_check(
        &broker,
        &format!("ws://127.0.0.1:{plain}/mqtt"),
        "plain",
        &[
            "--authorizer-name",
            "mqload-test",
            "--token-key-name",
            "mqload-token",
            "--token",
            "device-token",
        ],
        &aws_env(false, home.path()),
    );
    // TLS, each upgrade presigned with SigV4 (mosquitto ignores the query).
    let ca = pki.ca.to_str().expect("utf-8");
    run_and_check(
        &broker,
        &format!("wss://127.0.0.1:{tls}/mqtt"),
        "tls",
        &["--cafile", ca, "--aws-sigv4"],
        &aws_env(true, home.path()),
    );
}

/// A server that answers every WebSocket upgrade with 403, recording each request head.
fn refusing_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&heads);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            seen.lock()
                .expect("heads")
                .push(String::from_utf8_lossy(&head).into_owned());
            let _ = stream.write_all(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (port, heads)
}

/// botocore's SigV4QueryAuth for `url` at the time `X-Amz-Date` says, the session token
/// appended after the signature as AWS IoT wants it: prints the presigned URL.
const BOTOCORE_SIGN: &str = r#"
import datetime, sys, urllib.parse
from unittest import mock
import botocore.auth, botocore.awsrequest, botocore.credentials
url, amz_date, key, secret, token, region = sys.argv[1:7]
auth = botocore.auth.SigV4QueryAuth(
    botocore.credentials.Credentials(key, secret), "iotdevicegateway", region, expires=86400)
request = botocore.awsrequest.AWSRequest(method="GET", url=url)
at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
with mock.patch("botocore.auth.get_current_datetime", return_value=at):
    auth.add_auth(request)
print(request.url + "&X-Amz-Security-Token=" + urllib.parse.quote(token, safe="-_.~"))
"#;

fn botocore_python() -> Option<PathBuf> {
    let python = common::repo_root().join("target/aws-venv/bin/python");
    let ok = python.exists()
        && Command::new(&python)
            .args(["-c", "import botocore"])
            .status()
            .is_ok_and(|status| status.success());
    if ok {
        return Some(python);
    }
    assert!(
        !common::in_ci(),
        "botocore is missing from target/aws-venv, and under CI=true that is a failure: \
         run `python3 -m venv target/aws-venv && target/aws-venv/bin/pip install botocore`"
    );
    eprintln!("skipping: botocore is not in target/aws-venv");
    None
}

/// `X-Amz-Date`'s value in a request target.
fn amz_date(target: &str) -> &str {
    target
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("X-Amz-Date="))
        .unwrap_or_else(|| panic!("no X-Amz-Date in {target}"))
}

/// 20261205T193000Z as Unix seconds (civil date to days, as SigV4's dates are UTC).
fn unix_of(amz: &str) -> u64 {
    let n = |range: std::ops::Range<usize>| -> i64 { amz[range].parse().expect("digits") };
    let (y, m, d) = (n(0..4), n(4..6), n(6..8));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    (days * 86_400 + n(9..11) * 3600 + n(11..13) * 60 + n(13..15)) as u64
}

#[test]
fn each_connection_signs_its_own_upgrade_as_botocore_does_and_a_403_is_a_named_failure() {
    let Some(python) = botocore_python() else {
        return;
    };
    let _guard = serial();
    let (port, heads) = refusing_server();
    let home = tempfile::tempdir().expect("home");
    let csv = tempfile::tempdir().expect("csv dir");
    let prefix = csv.path().join("run");
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let args = strings(&[
        "-H",
        &format!("ws://127.0.0.1:{port}/mqtt"),
        "--aws-sigv4",
        "-u",
        "1",
        "-t",
        "3s",
        "--only-summary",
        "--csv",
        prefix.to_str().expect("utf-8"),
    ]);
    let out = mqload(&args, &aws_env(true, home.path()), Duration::from_secs(30));
    let ended = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert_eq!(
        out.code,
        Some(1),
        "every connect failed: {}",
        out.describe()
    );
    let reason = "WebSocket upgrade: the server refused the WebSocket upgrade with HTTP 403";
    assert!(out.stderr.contains(reason), "{}", out.describe());
    let failures = std::fs::read_to_string(csv.path().join("run_failures.csv")).expect("failures");
    assert!(
        failures
            .lines()
            .any(|l| l.contains("connect") && l.contains(reason)),
        "{failures}"
    );

    let heads = heads.lock().expect("heads").clone();
    let connect = expect_stats_row(&csv.path().join("run_stats.csv"), "connect");
    // One failed connect per refused upgrade (and perhaps one cut short by the end).
    let failed = count(&connect, "Failure Count");
    assert!(
        failed == heads.len() as u64 || failed == heads.len() as u64 + 1,
        "{failed} failed connects for {} upgrades\n{heads:?}",
        heads.len()
    );
    assert!(heads.len() >= 3, "reconnects after backoff: {heads:?}");
    let mut dates = BTreeSet::new();
    for head in &heads {
        let target = head
            .strip_prefix("GET ")
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("not a GET: {head}"));
        assert!(
            head.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")),
            "{head}"
        );
        let date = amz_date(target);
        let at = unix_of(date);
        assert!(
            (started..=ended).contains(&at),
            "signed at {date}, within the run {started}..={ended}"
        );
        dates.insert(date.to_owned());
        let theirs = Command::new(&python)
            .args(["-c", BOTOCORE_SIGN])
            .arg(format!("http://127.0.0.1:{port}/mqtt"))
            .args([date, ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, REGION])
            .output()
            .expect("run botocore");
        assert!(
            theirs.status.success(),
            "{}",
            String::from_utf8_lossy(&theirs.stderr)
        );
        let theirs = String::from_utf8(theirs.stdout).expect("utf-8");
        let theirs = theirs
            .trim()
            .strip_prefix(&format!("http://127.0.0.1:{port}"))
            .expect("botocore's URL");
        assert_eq!(target, theirs, "byte for byte as botocore presigns it");
    }
    assert!(
        dates.len() >= 2,
        "each connection signs at its own connect time: {dates:?}"
    );
}

#[test]
fn sigv4_without_credentials_is_one_line_and_exit_2_before_any_connect() {
    let (port, heads) = refusing_server();
    let home = tempfile::tempdir().expect("home");
    let args = strings(&[
        "-H",
        &format!("ws://127.0.0.1:{port}/mqtt"),
        "--aws-sigv4",
        "-t",
        "2s",
    ]);
    let out = mqload(&args, &aws_env(false, home.path()), Duration::from_secs(30));
    assert_eq!(out.code, Some(2), "{}", out.describe());
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{}", out.describe());
    assert!(
        errors[0].contains("AWS_ACCESS_KEY_ID") && errors[0].contains("--aws-sigv4"),
        "{}",
        errors[0]
    );
    thread::sleep(Duration::from_millis(200));
    assert!(heads.lock().expect("heads").is_empty(), "nothing connected");
}

/// What a [`pinging_server`] connection got back: the controls mqload sent.
type Replies = Arc<Mutex<Vec<Vec<(Control, Vec<u8>)>>>>;

/// A WebSocket MQTT server: each connection is upgraded, its CONNECT answered with a
/// CONNACK, then pinged, then closed with 1001 once the pong came; it records the controls
/// mqload sent back (the pong, the echo of the close).
fn pinging_server() -> (u16, Replies) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let replies: Replies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&replies);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let controls = serve_ws(stream);
            seen.lock().expect("replies").push(controls);
        }
    });
    (port, replies)
}

fn serve_ws(mut stream: std::net::TcpStream) -> Vec<(Control, Vec<u8>)> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut received = Vec::new();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let head_len = loop {
        match accept_upgrade(&received, &mut out) {
            Ok(Some(n)) => break n,
            Ok(None) => {}
            Err(_) => return Vec::new(),
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return Vec::new(),
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    };
    let mut decoder = FrameDecoder::new(FramesFrom::Client, 1 << 20);
    let (mut mqtt, mut controls) = (Vec::new(), Vec::new());
    let mut pending = received.split_off(head_len);
    let mut step = 0;
    loop {
        let mut input = pending.as_slice();
        while !input.is_empty() {
            let Ok(decoded) = decoder.decode(input, &mut mqtt) else {
                return controls;
            };
            if let Some(control) = decoded.control {
                controls.push((control, decoder.control_payload().to_vec()));
            }
            input = &input[decoded.consumed..];
        }
        pending.clear();
        if step == 0 && mqtt.first() == Some(&0x10) {
            encode_frame(&mut out, true, Opcode::Binary, &[0x20, 2, 0, 0], None);
            encode_frame(&mut out, true, Opcode::Ping, b"mqload?", None);
            step = 1;
        }
        if step == 1 && controls.iter().any(|(c, _)| *c == Control::Pong) {
            encode_frame(&mut out, true, Opcode::Close, &1001u16.to_be_bytes(), None);
            step = 2;
        }
        if step == 2 && decoder.is_closed() {
            return controls;
        }
        if stream.write_all(&out).is_err() {
            return controls;
        }
        out.clear();
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return controls,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn pings_are_answered_and_a_servers_close_is_echoed_and_a_named_drop() {
    let _guard = serial();
    let (port, replies) = pinging_server();
    let home = tempfile::tempdir().expect("home");
    let csv = tempfile::tempdir().expect("csv dir");
    let prefix = csv.path().join("run");
    let args = strings(&[
        "-H",
        &format!("ws://127.0.0.1:{port}/mqtt"),
        "-u",
        "1",
        "-t",
        "3s",
        "--connect-only",
        "--only-summary",
        "--csv",
        prefix.to_str().expect("utf-8"),
    ]);
    let out = mqload(&args, &aws_env(false, home.path()), Duration::from_secs(30));
    assert_eq!(out.code, Some(1), "drops are failures: {}", out.describe());
    let reason = "the server closed the WebSocket (code 1001)";
    let failures = std::fs::read_to_string(csv.path().join("run_failures.csv")).expect("failures");
    assert!(
        failures
            .lines()
            .any(|l| l.contains("disconnect") && l.contains(reason)),
        "{failures}\n{}",
        out.describe()
    );
    let connect = expect_stats_row(&csv.path().join("run_stats.csv"), "connect");
    assert!(count(&connect, "Request Count") >= 1, "{}", out.describe());
    let replies = replies.lock().expect("replies").clone();
    let first = replies.first().expect("one connection at least");
    assert_eq!(
        first.as_slice(),
        [
            (Control::Pong, b"mqload?".to_vec()),
            (
                Control::Close { code: Some(1001) },
                1001u16.to_be_bytes().to_vec()
            ),
        ],
        "the pong carries the ping's payload; the close is echoed"
    );
}

#[test]
fn an_upgrade_never_answered_is_named_when_the_run_ends() {
    let _guard = serial();
    // Accepts and reads, never answers; the streams stay open until the listener drops.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 1024];
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = stream.read(&mut buf);
            open.push(stream);
        }
    });
    let home = tempfile::tempdir().expect("home");
    let args = strings(&[
        "-H",
        &format!("ws://127.0.0.1:{port}/mqtt"),
        "-u",
        "1",
        "-t",
        "2s",
        "--only-summary",
    ]);
    let out = mqload(&args, &aws_env(false, home.path()), Duration::from_secs(30));
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(
        out.stderr
            .contains("WebSocket upgrade not answered before the run ended"),
        "{}",
        out.describe()
    );
}

#[test]
fn a_custom_authorizer_over_mqtt_is_in_the_connect_user_name() {
    let _guard = serial();
    // Reads the CONNECT, accepts it, and holds the connection until mqload leaves.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut connect = vec![0u8; 4096];
        let n = stream.read(&mut connect).unwrap_or(0);
        connect.truncate(n);
        let _ = stream.write_all(&[0x20, 2, 0, 0]);
        let _ = tx.send(connect);
        let mut rest = [0u8; 1024];
        while matches!(stream.read(&mut rest), Ok(n) if n > 0) {}
    });
    let home = tempfile::tempdir().expect("home");
    let args = strings(&[
        "-H",
        &format!("mqtt://127.0.0.1:{port}"),
        "--username",
        "device-7",
        "--authorizer-name",
        "fleet-auth",
        "--token-key-name",
        "fleet-token",
        "--token",
        "a b",
        "-u",
        "1",
        "-t",
        "1s",
        "--connect-only",
        "--only-summary",
    ]);
    let out = mqload(&args, &aws_env(false, home.path()), Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let connect = rx.recv_timeout(Duration::from_secs(5)).expect("a CONNECT");
    let expected = b"device-7?x-amz-customauthorizer-name=fleet-auth&fleet-token=a%20b";
    assert!(
        connect.windows(expected.len()).any(|w| w == expected),
        "{:?}",
        String::from_utf8_lossy(&connect)
    );
}
