//! The built-in broker (`mqload broker`, and the target of a run without `--host`), checked
//! with clients nobody here wrote (mosquitto_pub, mosquitto_sub over mutual TLS with
//! certificates from `pki/local-ca.sh`), with raw sockets for the fault cases, and with mqload.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{Pki, mqload_bin, require_broker_tools, run_mqload, tool_path, utf8, wait_until};

/// How long a client of these tests waits for anything.
const WAIT: Duration = Duration::from_secs(10);

/// `mqload broker` in a child process on a free port; SIGTERM on drop.
struct OurBroker {
    child: Option<Child>,
    addr: SocketAddr,
    stdout: Option<BufReader<ChildStdout>>,
}

impl OurBroker {
    /// With the PKI's broker certificate, requiring client certificates from its CA.
    fn tls(pki: &Pki) -> OurBroker {
        OurBroker::start(&[
            "--tls-cert",
            utf8(&pki.broker_cert),
            "--tls-key",
            utf8(&pki.broker_key),
            "--cafile",
            utf8(&pki.ca),
        ])
    }

    /// Plain TCP (for the raw-socket fault tests).
    fn plain() -> OurBroker {
        OurBroker::start(&["--no-tls"])
    }

    fn start(extra: &[&str]) -> OurBroker {
        let mut child = Command::new(mqload_bin())
            .args([
                "broker",
                "--port",
                "0",
                "--threads",
                "2",
                "--run-time",
                "120s",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn mqload broker");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("read the broker's first line");
        let addr = line
            .split_whitespace()
            .find_map(|word| word.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("no address in the broker's first line {line:?}"));
        OurBroker {
            child: Some(child),
            addr,
            stdout: Some(stdout),
        }
    }

    fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// Stops it (SIGTERM) and returns its exit line with the counters.
    fn stop(mut self) -> String {
        self.terminate()
    }

    fn terminate(&mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return String::new();
        };
        // SAFETY: kill(2) on our own child, not reaped yet.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let mut rest = String::new();
        if let Some(mut stdout) = self.stdout.take() {
            let _ = stdout.read_to_string(&mut rest);
        }
        let status = child.wait().expect("wait for mqload broker");
        assert!(status.success(), "mqload broker exited with {status}");
        rest
    }
}

impl Drop for OurBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A counter from the broker's exit line ("messages received 12, ...").
fn counter(exit_line: &str, name: &str) -> u64 {
    let after = exit_line
        .split_once(name)
        .unwrap_or_else(|| panic!("no {name:?} in {exit_line:?}"))
        .1;
    after
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {name:?} in {exit_line:?}"))
}

fn tls_args(pki: &Pki) -> Vec<String> {
    pki.client_args().map(String::from).to_vec()
}

/// `mosquitto_sub -d` on our broker: every line it prints, collected as it arrives.
struct Sub {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Sub {
    /// Subscribes to `filter` at `qos` and returns once the SUBACK arrived.
    fn start(pki: &Pki, broker: &OurBroker, id: &str, filter: &str, qos: u8) -> Sub {
        Sub::start_with(Some(pki), broker, id, filter, qos)
    }

    /// As [`Sub::start`]; plain TCP without a PKI.
    fn start_with(pki: Option<&Pki>, broker: &OurBroker, id: &str, filter: &str, qos: u8) -> Sub {
        Sub::start_args(pki, broker, id, filter, qos, &[])
    }

    /// As [`Sub::start_with`], with more mosquitto_sub options.
    fn start_args(
        pki: Option<&Pki>,
        broker: &OurBroker,
        id: &str,
        filter: &str,
        qos: u8,
        extra: &[&str],
    ) -> Sub {
        // stdbuf: mosquitto_sub's debug lines would otherwise wait in a pipe buffer.
        let mut child = Command::new("stdbuf")
            .arg("-oL")
            .arg(tool_path("mosquitto_sub").expect("mosquitto_sub"))
            .args(["-h", "127.0.0.1", "-p", &broker.port(), "-d", "-v"])
            .args(pki.map(tls_args).unwrap_or_default())
            .args(["-i", id, "-q", &qos.to_string(), "-t", filter])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mosquitto_sub");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&lines);
        // Bytes, not text: a binary payload must not end the reading (mosquitto_sub would
        // then die of SIGPIPE on its next line).
        thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line).into_owned();
                sink.lock().expect("lines").push(line);
            }
        });
        let sub = Sub { child, lines };
        assert!(
            wait_until(WAIT, || sub.saw("received SUBACK")),
            "mosquitto_sub got no SUBACK: {:?}",
            sub.all()
        );
        sub
    }

    fn all(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    fn saw(&self, needle: &str) -> bool {
        self.all().iter().any(|l| l.contains(needle))
    }

    /// The messages (`-v`: "topic payload" lines, not debug lines).
    fn messages(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|l| !l.starts_with("Client ") && !l.starts_with("Subscribed (mid"))
            .collect()
    }

    fn wait_messages(&self, n: usize) -> Vec<String> {
        wait_until(WAIT, || self.messages().len() >= n);
        self.messages()
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn publish(pki: &Pki, broker: &OurBroker, topic: &str, qos: u8, message: &str, retain: bool) {
    let mut cmd = Command::new(tool_path("mosquitto_pub").expect("mosquitto_pub"));
    cmd.args(["-h", "127.0.0.1", "-p", &broker.port()])
        .args(tls_args(pki))
        .args(["-q", &qos.to_string(), "-t", topic]);
    if message.is_empty() {
        cmd.arg("-n");
    } else {
        cmd.args(["-m", message]);
    }
    if retain {
        cmd.arg("-r");
    }
    let out = cmd.output().expect("run mosquitto_pub");
    assert!(
        out.status.success(),
        "mosquitto_pub failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn routes_by_wildcards_at_each_qos() {
    if !require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    let broker = OurBroker::tls(&pki);
    let plus = Sub::start(&pki, &broker, "sub-plus", "a/+/c", 1);
    let hash = Sub::start(&pki, &broker, "sub-hash", "a/#", 2);
    let other = Sub::start(&pki, &broker, "sub-other", "other/#", 0);
    publish(&pki, &broker, "a/b/c", 1, "one", false);
    publish(&pki, &broker, "a/x", 2, "two", false);
    publish(&pki, &broker, "z/y", 0, "three", false);
    assert_eq!(hash.wait_messages(2), ["a/b/c one", "a/x two"]);
    assert_eq!(plus.wait_messages(1), ["a/b/c one"]);
    // Delivered at min(publish QoS, subscription QoS), with the handshake each needs.
    assert!(hash.saw("received PUBLISH (d0, q1, r0"), "{:?}", hash.all());
    assert!(hash.saw("received PUBLISH (d0, q2, r0"), "{:?}", hash.all());
    assert!(hash.saw("sending PUBCOMP"), "{:?}", hash.all());
    assert!(plus.saw("sending PUBACK"), "{:?}", plus.all());
    // $SYS counts what came in (published once a second, retained).
    let sys = Sub::start(
        &pki,
        &broker,
        "sub-sys",
        "$SYS/broker/publish/messages/received",
        0,
    );
    let seen = sys.wait_messages(1);
    assert!(
        seen.iter().any(|l| l.ends_with(" 3")),
        "expected a $SYS count of 3: {seen:?}"
    );
    assert!(other.messages().is_empty(), "{:?}", other.messages());
    drop((plus, hash, other, sys));
    let exit = broker.stop();
    assert_eq!(counter(&exit, "messages received"), 3, "{exit}");
    assert_eq!(counter(&exit, "bad packets"), 0, "{exit}");
}

#[test]
fn retained_messages_reach_late_subscribers_until_cleared() {
    if !require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    let broker = OurBroker::tls(&pki);
    publish(&pki, &broker, "dev/1/state", 1, "on", true);
    publish(&pki, &broker, "dev/2/state", 0, "off", true);
    let late = Sub::start(&pki, &broker, "late", "dev/+/state", 1);
    let mut got = late.wait_messages(2);
    got.sort();
    assert_eq!(got, ["dev/1/state on", "dev/2/state off"]);
    assert!(late.saw("r1"), "retained flag expected: {:?}", late.all());
    // An empty retained message clears the topic.
    publish(&pki, &broker, "dev/1/state", 0, "", true);
    let later = Sub::start(&pki, &broker, "later", "dev/+/state", 1);
    assert_eq!(later.wait_messages(1), ["dev/2/state off"]);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(later.messages(), ["dev/2/state off"]);
}

/// A raw MQTT client over plain TCP, for what well-behaved clients never do.
struct Raw {
    stream: TcpStream,
}

impl Raw {
    fn connect(broker: &OurBroker) -> Raw {
        let stream = TcpStream::connect(broker.addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        Raw { stream }
    }

    /// Sends CONNECT and expects CONNACK 0.
    fn mqtt_connect(broker: &OurBroker, id: &str, keep_alive: u16) -> Raw {
        Raw::mqtt_connect_with_will(broker, id, keep_alive, None)
    }

    /// Sends CONNECT (with a QoS 1 will `(topic, message)` when given), expects CONNACK 0.
    fn mqtt_connect_with_will(
        broker: &OurBroker,
        id: &str,
        keep_alive: u16,
        will: Option<(&str, &str)>,
    ) -> Raw {
        let mut raw = Raw::connect(broker);
        let flags = if will.is_some() { 0x0E } else { 0x02 };
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, flags];
        body.extend_from_slice(&keep_alive.to_be_bytes());
        let mut fields = vec![id];
        if let Some((topic, message)) = will {
            fields.extend([topic, message]);
        }
        for field in fields {
            body.extend_from_slice(&(field.len() as u16).to_be_bytes());
            body.extend_from_slice(field.as_bytes());
        }
        let mut packet = vec![0x10, body.len() as u8];
        packet.extend_from_slice(&body);
        raw.send(&packet);
        assert_eq!(raw.read_exact(4), [0x20, 2, 0, 0], "CONNACK accepted");
        raw
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.stream.read_exact(&mut buf).expect("read");
        buf
    }

    /// Waits for the broker to close the connection; returns how long that took.
    fn wait_closed(&mut self) -> Duration {
        let started = Instant::now();
        let mut byte = [0u8; 1];
        loop {
            match self.stream.read(&mut byte) {
                Ok(0) => return started.elapsed(),
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return started.elapsed();
                }
                Err(e) => panic!("connection still open after {:?}: {e}", started.elapsed()),
            }
        }
    }

    fn ping(&mut self) {
        self.send(&[0xC0, 0]);
        assert_eq!(self.read_exact(2), [0xD0, 0], "PINGRESP");
    }
}

#[test]
fn a_second_connection_with_the_same_client_id_takes_over() {
    let broker = OurBroker::plain();
    let mut first = Raw::mqtt_connect(&broker, "same-device", 60);
    let mut second = Raw::mqtt_connect(&broker, "same-device", 60);
    first.wait_closed();
    second.ping();
    let exit = broker.stop();
    assert_eq!(counter(&exit, "taken over"), 1, "{exit}");
}

#[test]
fn keepalive_expires_after_one_and_a_half_times_it() {
    let broker = OurBroker::plain();
    let mut silent = Raw::mqtt_connect(&broker, "silent", 1);
    let mut pinging = Raw::mqtt_connect(&broker, "pinging", 1);
    let pinger = thread::spawn(move || {
        for _ in 0..8 {
            thread::sleep(Duration::from_millis(400));
            pinging.ping();
        }
    });
    let closed_after = silent.wait_closed();
    // 1.5 s of silence, checked once a second: closed between 1.5 and about 2.6 s.
    assert!(
        closed_after >= Duration::from_millis(1400) && closed_after < Duration::from_secs(4),
        "closed after {closed_after:?}"
    );
    pinger.join().expect("the pinging client stayed connected");
    let exit = broker.stop();
    assert_eq!(counter(&exit, "keepalive expired"), 1, "{exit}");
}

#[test]
fn garbage_closes_only_its_own_connection() {
    let broker = OurBroker::plain();
    let mut good = Raw::mqtt_connect(&broker, "good", 60);
    for garbage in [
        &b"\xff\xff\xff\xff\xff"[..],
        b"GET / HTTP/1.1\r\n\r\n",
        // PINGREQ before CONNECT.
        b"\xc0\x00",
        // CONNECT with a remaining length past 4 bytes.
        b"\x10\xff\xff\xff\xff\x01",
    ] {
        let mut bad = Raw::connect(&broker);
        bad.send(garbage);
        bad.wait_closed();
        good.ping();
    }
    // A second CONNECT and a SUBACK from a client are violations too.
    let mut twice = Raw::mqtt_connect(&broker, "twice", 60);
    twice.send(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00");
    twice.wait_closed();
    good.ping();
    let exit = broker.stop();
    assert_eq!(counter(&exit, "bad packets"), 5, "{exit}");
}

#[test]
fn tls_garbage_and_unknown_certificates_are_refused_and_counted() {
    if !require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    let stranger = Pki::new(true);
    let broker = OurBroker::tls(&pki);
    let mut raw = Raw::connect(&broker);
    raw.send(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00");
    raw.wait_closed();
    // A client certificate from another CA.
    let out = Command::new(tool_path("mosquitto_pub").expect("mosquitto_pub"))
        .args(["-h", "127.0.0.1", "-p", &broker.port()])
        .args(["--cafile", utf8(&pki.ca)])
        .args(["--cert", utf8(&stranger.cert), "--key", utf8(&stranger.key)])
        .args(["-t", "t", "-m", "x"])
        .output()
        .expect("run mosquitto_pub");
    assert!(
        !out.status.success(),
        "a stranger's certificate was accepted"
    );
    publish(&pki, &broker, "t", 0, "ok", false);
    let exit = broker.stop();
    assert_eq!(counter(&exit, "bad packets"), 2, "{exit}");
    assert_eq!(counter(&exit, "messages received"), 1, "{exit}");
}

/// The first number after the request name in mqload's summary table.
fn requests(stdout: &str, name_prefix: &str) -> u64 {
    stdout
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| w.starts_with(name_prefix))?;
            words.next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no {name_prefix} row in:\n{stdout}"))
}

#[test]
fn a_run_without_host_tests_the_built_in_broker() {
    let out = run_mqload(
        &["-u", "50", "-r", "50", "-t", "5s", "--only-summary"],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("no --host given: testing the built-in broker on 127.0.0.1:"),
        "{}",
        out.describe()
    );
    let published = requests(&out.stdout, "publish:");
    assert!(published >= 150, "{}", out.describe());
    assert_eq!(requests(&out.stdout, "connect"), 50, "{}", out.describe());
    let broker_line = out
        .stderr
        .lines()
        .find(|l| l.contains("built-in broker: connections accepted"))
        .unwrap_or_else(|| panic!("no broker counters:\n{}", out.describe()));
    assert_eq!(
        counter(broker_line, "messages received"),
        published,
        "{}",
        out.describe()
    );
    assert_eq!(counter(broker_line, "bad packets"), 0, "{broker_line}");
    assert_eq!(
        counter(broker_line, "connections accepted"),
        50,
        "{broker_line}"
    );
}

#[test]
fn mqload_with_host_loads_mqload_broker_at_qos_2() {
    if !require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    let broker = OurBroker::tls(&pki);
    let mut args = vec!["--host", "127.0.0.1", "--port"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    args.push(broker.port());
    args.extend(tls_args(&pki));
    args.extend(
        [
            "-u",
            "10",
            "-r",
            "10",
            "-t",
            "3s",
            "--qos",
            "2",
            "--throughput",
            "20",
        ]
        .map(String::from),
    );
    args.push("--only-summary".into());
    let out = run_mqload(&args, &[], Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let published = requests(&out.stdout, "publish:");
    let exit = broker.stop();
    assert_eq!(counter(&exit, "messages received"), published, "{exit}");
}

#[test]
fn configuration_mistakes_exit_2() {
    for (args, needle) in [
        (
            &["broker", "--tls-cert", "/nonexistent.pem"][..],
            "--tls-key",
        ),
        (&["broker", "--no-tls", "--cafile", "x.pem"][..], "--no-tls"),
        (
            &[
                "broker",
                "--tls-cert",
                "/nonexistent.pem",
                "--tls-key",
                "/nonexistent.key",
            ][..],
            "--tls-cert",
        ),
        (&["broker", "--threads", "0"][..], "1 or more"),
        (&["broker", "--run-time", "soon"][..], "--run-time"),
        (
            &[
                "broker",
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem",
                "--pki-out",
                "/tmp",
            ][..],
            "--pki-out",
        ),
        (
            &["broker", "--port", "0", "--pki-out", "/dev/null/pki"][..],
            "--pki-out",
        ),
        // Without a host the plan is still checked before anything runs.
        (&["-u", "0"][..], "--users"),
    ] {
        let out = run_mqload(args, &[], Duration::from_secs(20));
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.describe());
        let errors: Vec<_> = out.stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(errors.len(), 1, "{args:?}: {}", out.describe());
        assert!(errors[0].contains(needle), "{args:?}: {}", out.describe());
        assert!(
            !out.stderr.contains("testing the built-in broker"),
            "{}",
            out.describe()
        );
    }
}

#[test]
fn a_subscriber_that_never_reads_is_bounded() {
    let broker = OurBroker::plain();
    // Two subscribers that never read, loaded with QoS 1 messages: at QoS 0 their deliveries
    // get dropped, at QoS 1 the subscriber is disconnected.
    let mut lazy0 = Raw::mqtt_connect(&broker, "lazy-0", 0);
    lazy0.send(b"\x82\x08\x00\x01\x00\x03t/#\x00");
    assert_eq!(lazy0.read_exact(5), [0x90, 3, 0, 1, 0], "SUBACK QoS 0");
    let mut lazy1 = Raw::mqtt_connect(&broker, "lazy-1", 0);
    lazy1.send(b"\x82\x08\x00\x01\x00\x03t/#\x01");
    assert_eq!(lazy1.read_exact(5), [0x90, 3, 0, 1, 1], "SUBACK QoS 1");
    let port = broker.port();
    let out = run_mqload(
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--no-tls",
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "3s",
            "--qos",
            "1",
            "--throughput",
            "2000",
            "--payload-format",
            "raw",
            "--payload-bytes",
            "2000",
            "--topic",
            "t/{i}",
            "--only-summary",
        ],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let published = requests(&out.stdout, "publish:");
    let exit = broker.stop();
    assert_eq!(counter(&exit, "messages received"), published, "{exit}");
    // ~24k messages of 2 kB (48 MB) to each: far more than the 1 MiB cap plus socket buffers.
    assert!(counter(&exit, "dropped") > 0, "{exit}");
    assert_eq!(counter(&exit, "slow subscribers disconnected"), 1, "{exit}");
    // Every message was either delivered or dropped for the QoS 0 subscriber.
    assert!(
        counter(&exit, "messages sent") + counter(&exit, "dropped") >= published,
        "{exit}"
    );
    drop((lazy0, lazy1));
}

#[test]
fn a_will_is_published_when_a_client_vanishes_not_when_it_says_goodbye() {
    if !require_broker_tools() {
        return;
    }
    let broker = OurBroker::plain();
    let watcher = Sub::start_with(None, &broker, "watcher", "wills/#", 1);
    let vanishing =
        Raw::mqtt_connect_with_will(&broker, "dev-1", 60, Some(("wills/dev-1", "lost")));
    let mut polite =
        Raw::mqtt_connect_with_will(&broker, "dev-2", 60, Some(("wills/dev-2", "lost")));
    polite.send(&[0xE0, 0]);
    polite.wait_closed();
    drop(vanishing);
    assert_eq!(watcher.wait_messages(1), ["wills/dev-1 lost"]);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(watcher.messages(), ["wills/dev-1 lost"]);
}

#[test]
fn generated_certificates_work_for_an_openssl_client() {
    if !require_broker_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // A directory that does not exist yet: the broker makes it.
    let pki_dir = dir.path().join("made/by/broker");
    let broker = OurBroker::start(&["--pki-out", utf8(&pki_dir)]);
    let file = |name: &str| pki_dir.join(name);
    let out = Command::new(tool_path("mosquitto_pub").expect("mosquitto_pub"))
        .args(["-h", "127.0.0.1", "-p", &broker.port()])
        .args(["--cafile", utf8(&file("ca.pem"))])
        .args(["--cert", utf8(&file("client.pem"))])
        .args(["--key", utf8(&file("client.key"))])
        .args(["-q", "1", "-t", "calibration", "-m", "hello"])
        .output()
        .expect("run mosquitto_pub");
    assert!(
        out.status.success(),
        "mosquitto_pub refused the generated PKI: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without a client certificate the handshake fails: mutual TLS is required.
    let out = Command::new(tool_path("mosquitto_pub").expect("mosquitto_pub"))
        .args(["-h", "127.0.0.1", "-p", &broker.port()])
        .args(["--cafile", utf8(&file("ca.pem"))])
        .args(["-t", "calibration", "-m", "anonymous"])
        .output()
        .expect("run mosquitto_pub");
    assert!(!out.status.success(), "a client without certificate got in");
    let exit = broker.stop();
    assert_eq!(counter(&exit, "messages received"), 1, "{exit}");
}

#[test]
fn a_stored_session_keeps_messages_for_an_absent_client() {
    if !require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    let broker = OurBroker::tls(&pki);
    let keep = ["-c"]; // clean session off
    let away = Sub::start_args(Some(&pki), &broker, "keeper", "p/#", 1, &keep);
    drop(away);
    thread::sleep(Duration::from_millis(200)); // the broker sees it gone
    publish(&pki, &broker, "p/1", 1, "while-away", false);
    publish(&pki, &broker, "p/2", 0, "qos0-not-kept", false);
    let back = Sub::start_args(Some(&pki), &broker, "keeper", "p/#", 1, &keep);
    assert_eq!(back.wait_messages(1), ["p/1 while-away"]);
    drop(back);
    // A clean session throws the stored one away.
    let clean = Sub::start_with(Some(&pki), &broker, "keeper", "other", 1);
    drop(clean);
    thread::sleep(Duration::from_millis(200));
    publish(&pki, &broker, "p/3", 1, "after-clean", false);
    let last = Sub::start_args(Some(&pki), &broker, "keeper", "nothing/here", 1, &keep);
    thread::sleep(Duration::from_millis(500));
    assert!(last.messages().is_empty(), "{:?}", last.all());
}

#[test]
fn every_message_of_a_load_run_reaches_a_subscriber_across_threads() {
    if !require_broker_tools() {
        return;
    }
    // Two broker threads share the listener and eleven connections: unless all ten
    // publishers land on the subscriber's thread (accepts go to whichever thread wakes
    // first; runs here split them 7/3, 8/2, 1/9), deliveries also cross threads.
    let broker = OurBroker::plain();
    let watcher = Sub::start_with(None, &broker, "fan-in", "load/#", 1);
    let port = broker.port();
    let out = run_mqload(
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--no-tls",
            "-u",
            "10",
            "-r",
            "10",
            "-t",
            "3s",
            "--qos",
            "1",
            "--throughput",
            "100",
            "--payload-format",
            "raw",
            "--payload-bytes",
            "20",
            "--topic",
            "load/{i}",
            "--only-summary",
        ],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let published = requests(&out.stdout, "publish:");
    let deliveries = || {
        let all = watcher.all();
        all.iter()
            .filter(|l| l.contains("received PUBLISH"))
            .count() as u64
    };
    wait_until(WAIT, || deliveries() >= published);
    let received = deliveries();
    let exit = broker.stop();
    assert_eq!(counter(&exit, "messages received"), published, "{exit}");
    assert_eq!(received, published, "{exit}");
    assert_eq!(counter(&exit, "messages sent"), published, "{exit}");
}

#[test]
fn a_stored_session_gets_back_what_it_never_acknowledged() {
    let broker = OurBroker::plain();
    // CONNECT with clean session off (flags 0x00), keep alive 60.
    let connect_kept = b"\x10\x13\x00\x04MQTT\x04\x00\x00\x3c\x00\x07keeper2";
    let mut sub = Raw::connect(&broker);
    sub.send(connect_kept);
    assert_eq!(sub.read_exact(4), [0x20, 2, 0, 0], "new session");
    sub.send(b"\x82\x08\x00\x01\x00\x03r/#\x01");
    assert_eq!(sub.read_exact(5), [0x90, 3, 0, 1, 1]);
    let mut publisher = Raw::mqtt_connect(&broker, "pub", 60);
    publisher.send(b"\x32\x0c\x00\x03r/1\x00\x01hello");
    assert_eq!(publisher.read_exact(4), [0x40, 2, 0, 1], "PUBACK");
    let delivered = sub.read_exact(14);
    assert_eq!(&delivered[..2], [0x32, 0x0c], "QoS 1 PUBLISH");
    assert_eq!(&delivered[9..], b"hello");
    // Gone without PUBACK.
    drop(sub);
    thread::sleep(Duration::from_millis(200));
    let mut back = Raw::connect(&broker);
    back.send(connect_kept);
    assert_eq!(back.read_exact(4), [0x20, 2, 1, 0], "session present");
    let again = back.read_exact(14);
    assert_eq!(
        again[..9],
        delivered[..9]
            .iter()
            .enumerate()
            .map(|(i, b)| if i == 0 { b | 0x08 } else { *b })
            .collect::<Vec<_>>(),
        "the same PUBLISH, same packet id, with DUP"
    );
    assert_eq!(&again[9..], b"hello");
}

#[test]
fn retained_messages_sent_at_subscribe_are_bounded_like_any_delivery() {
    const COUNT: usize = 24;
    const PAYLOAD: usize = 100_000;
    let broker = OurBroker::plain();
    // 24 retained messages of 100 kB (2.4 MB): more than a connection's 1 MiB output cap.
    let mut publisher = Raw::mqtt_connect(&broker, "retainer", 0);
    let payload = vec![b'x'; PAYLOAD];
    let mut packet_len = 0;
    for n in 0..COUNT {
        let topic = format!("big/{n:02}");
        let mut packet = Vec::new();
        let publish = mqload::mqtt::Publish {
            dup: false,
            qos: mqload::mqtt::QoS::AtMostOnce,
            retain: true,
            topic: &topic,
            packet_id: 0,
            payload: &payload,
        };
        mqload::mqtt::encode_publish_into(&publish, &mut packet).expect("encode");
        packet_len = packet.len();
        publisher.send(&packet);
    }
    publisher.ping();
    // A subscriber to all of them at once: the broker must not queue 2.4 MB for it.
    let mut greedy = Raw::mqtt_connect(&broker, "greedy", 0);
    greedy.send(b"\x82\x0a\x00\x01\x00\x05big/#\x00");
    assert_eq!(greedy.read_exact(5), [0x90, 3, 0, 1, 0], "SUBACK QoS 0");
    greedy
        .stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let mut received = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match greedy.stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    assert_eq!(
        received % packet_len,
        0,
        "whole PUBLISH packets: {received} bytes"
    );
    let delivered = received / packet_len;
    let exit = broker.stop();
    assert!(
        (1..COUNT).contains(&delivered),
        "{delivered} of {COUNT} retained messages sent at once; {exit}"
    );
    assert_eq!(
        counter(&exit, "dropped"),
        (COUNT - delivered) as u64,
        "the rest counted as dropped: {exit}"
    );
    drop((publisher, greedy));
}

/// Reads one packet: its first byte and its body (after the remaining length).
fn read_packet(raw: &mut Raw) -> (u8, Vec<u8>) {
    let kind = raw.read_exact(1)[0];
    let mut length = 0usize;
    for shift in [0, 7, 14, 21] {
        let byte = raw.read_exact(1)[0];
        length |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    (kind, raw.read_exact(length))
}

/// A resumed session's offline queue goes out as the client reads, under the 1 MiB output
/// cap: before, all of it went into the connection's output at once, and a client that did
/// not read at once was disconnected as slow (its queue lost).
#[test]
fn a_resumed_session_gets_its_large_queue_in_order_as_it_reads() {
    const COUNT: usize = 150;
    const PAYLOAD: usize = 100_000;
    let broker = OurBroker::plain();
    // CONNECT with clean session off (flags 0x00), keep alive 60; subscribe r/# at QoS 1.
    let connect_kept = b"\x10\x13\x00\x04MQTT\x04\x00\x00\x3c\x00\x07backlog";
    let mut away = Raw::connect(&broker);
    away.send(connect_kept);
    assert_eq!(away.read_exact(4), [0x20, 2, 0, 0], "new session");
    away.send(b"\x82\x08\x00\x01\x00\x03r/#\x01");
    assert_eq!(away.read_exact(5), [0x90, 3, 0, 1, 1]);
    drop(away);
    thread::sleep(Duration::from_millis(200)); // the broker sees it gone
    // 150 QoS 1 messages of 100 kB (15 MB) queued while it is away: more than loopback
    // socket buffers take, and far past the 1 MiB output cap.
    let mut publisher = Raw::mqtt_connect(&broker, "bulk", 60);
    for n in 0..COUNT {
        publish_numbered(&mut publisher, n, PAYLOAD);
    }
    // It comes back and does not read for a moment; one more message arrives meanwhile.
    let mut back = Raw::connect(&broker);
    back.send(connect_kept);
    assert_eq!(back.read_exact(4), [0x20, 2, 1, 0], "session present");
    thread::sleep(Duration::from_secs(1));
    publish_numbered(&mut publisher, COUNT, PAYLOAD);
    thread::sleep(Duration::from_millis(500));
    // Then it reads (and acknowledges) everything: all of it, in order.
    let mut order = Vec::new();
    while order.len() <= COUNT {
        let (kind, body) = read_packet(&mut back);
        assert_eq!(kind & 0xf6, 0x32, "a QoS 1 PUBLISH, got {kind:#x}");
        let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
        let id = &body[2 + topic_len..4 + topic_len];
        let payload = &body[4 + topic_len..];
        assert_eq!(payload.len(), PAYLOAD);
        order.push(utf8_number(&payload[..6]));
        back.send(&[0x40, 2, id[0], id[1]]);
    }
    let exit = broker.stop();
    assert_eq!(order, (0..=COUNT).collect::<Vec<_>>(), "{exit}");
    assert_eq!(counter(&exit, "slow subscribers disconnected"), 0, "{exit}");
    assert_eq!(counter(&exit, "dropped"), 0, "{exit}");
    assert_eq!(counter(&exit, "messages sent"), COUNT as u64 + 1, "{exit}");
    drop((publisher, back));
}

/// Publishes QoS 1 message `n` on `r/big`: its number in six digits, padded to `size`
/// bytes; waits for the PUBACK.
fn publish_numbered(publisher: &mut Raw, n: usize, size: usize) {
    let mut payload = format!("{n:06}").into_bytes();
    payload.resize(size, b'x');
    let mut packet = Vec::new();
    let publish = mqload::mqtt::Publish {
        dup: false,
        qos: mqload::mqtt::QoS::AtLeastOnce,
        retain: false,
        topic: "r/big",
        packet_id: n as u16 + 1,
        payload: &payload,
    };
    mqload::mqtt::encode_publish_into(&publish, &mut packet).expect("encode");
    publisher.send(&packet);
    let id = (n as u16 + 1).to_be_bytes();
    assert_eq!(publisher.read_exact(4), [0x40, 2, id[0], id[1]], "PUBACK");
}

/// A QoS 1 PUBLISH read from `raw`: (DUP flag, packet id, the number its payload starts
/// with); checks the payload is `size` bytes.
fn read_numbered(raw: &mut Raw, size: usize) -> (bool, [u8; 2], usize) {
    let (kind, body) = read_packet(raw);
    assert_eq!(kind & 0xf6, 0x32, "a QoS 1 PUBLISH, got {kind:#x}");
    let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let id = [body[2 + topic_len], body[3 + topic_len]];
    let payload = &body[4 + topic_len..];
    assert_eq!(payload.len(), size);
    (kind & 0x08 != 0, id, utf8_number(&payload[..6]))
}

/// A resumed session's unacknowledged deliveries go out again as the client reads, under
/// the 1 MiB output cap: before, all of them went into the connection's output at once,
/// and a client that did not read at once was disconnected as slow.
#[test]
fn a_resumed_session_resends_its_large_unacknowledged_deliveries_as_it_reads() {
    const COUNT: usize = 150;
    const PAYLOAD: usize = 100_000;
    let broker = OurBroker::plain();
    // CONNECT with clean session off (flags 0x00), keep alive 60; subscribe r/# at QoS 1.
    let connect_kept = b"\x10\x13\x00\x04MQTT\x04\x00\x00\x3c\x00\x07unacked";
    let mut first = Raw::connect(&broker);
    first.send(connect_kept);
    assert_eq!(first.read_exact(4), [0x20, 2, 0, 0], "new session");
    first.send(b"\x82\x08\x00\x01\x00\x03r/#\x01");
    assert_eq!(first.read_exact(5), [0x90, 3, 0, 1, 1]);
    // 150 QoS 1 messages of 100 kB (15 MB: more than loopback socket buffers take, far
    // past the 1 MiB output cap), read as they come and never acknowledged.
    let mut publisher = Raw::mqtt_connect(&broker, "bulk", 60);
    for n in 0..COUNT {
        publish_numbered(&mut publisher, n, PAYLOAD);
        assert_eq!(read_numbered(&mut first, PAYLOAD).2, n);
    }
    drop(first);
    thread::sleep(Duration::from_millis(200)); // the broker sees it gone
    // It comes back and does not read for a while.
    let mut back = Raw::connect(&broker);
    back.send(connect_kept);
    assert_eq!(back.read_exact(4), [0x20, 2, 1, 0], "session present");
    thread::sleep(Duration::from_millis(1500));
    // Then it reads (and acknowledges) everything again: all of it, with DUP, in order.
    let mut order = Vec::new();
    while order.len() < COUNT {
        let (dup, id, n) = read_numbered(&mut back, PAYLOAD);
        assert!(dup, "message {n} sent again with DUP");
        order.push(n);
        back.send(&[0x40, 2, id[0], id[1]]);
    }
    let exit = broker.stop();
    assert_eq!(order, (0..COUNT).collect::<Vec<_>>(), "{exit}");
    assert_eq!(counter(&exit, "slow subscribers disconnected"), 0, "{exit}");
    assert_eq!(counter(&exit, "dropped"), 0, "{exit}");
    assert_eq!(counter(&exit, "messages sent"), COUNT as u64, "{exit}");
    drop((publisher, back));
}

fn utf8_number(digits: &[u8]) -> usize {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX)
}
