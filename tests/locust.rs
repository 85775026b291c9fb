//! mqload as a Locust worker, against a real, unmodified Python Locust master (pinned, in
//! `target/locust-venv`, which `scripts/test.sh` creates) and a real mosquitto.
//!
//! Under `CI=true` a missing Locust is a failure; elsewhere these tests say why and skip.

mod common;

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{Broker, Pki, RunOutput, in_ci, mqload_command, repo_root, run_with_timeout};
use mqload::locust::msgpack::Encoder;
use mqload::locust::protocol::{self, WorkerState};
use mqload::locust::stats::LocustStats;
use mqload::stats::WorkerStats;

fn venv() -> PathBuf {
    repo_root().join("target/locust-venv/bin")
}

/// The venv's `locust`, or None (a skip) outside CI when it is missing.
fn require_locust() -> Option<PathBuf> {
    let bin = venv().join("locust");
    if bin.exists() {
        return Some(bin);
    }
    assert!(
        !in_ci(),
        "{} is missing, and under CI=true that is a failure: run scripts/test.sh, which \
         installs the pinned Locust into target/locust-venv",
        bin.display()
    );
    eprintln!(
        "skipping: {} is missing (scripts/test.sh installs it)",
        bin.display()
    );
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `locust --master` on loopback with the shipped locustfile and `args`.
fn master_command(locust: &Path, port: u16, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(locust);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LOCUST_") {
            cmd.env_remove(&name);
        }
    }
    cmd.current_dir(dir)
        .arg("-f")
        .arg(repo_root().join("deploy/locustfile.py"))
        .args(["--master", "--master-bind-host", "127.0.0.1"])
        .args(["--master-bind-port", &port.to_string()])
        .args(["--headless", "--web-port", &free_port().to_string()])
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// `mqload --worker` for the master on `port`, publishing to `broker`.
fn worker_command(pki: &Pki, broker: &Broker, port: u16, extra: &[&str]) -> Command {
    let mut args = common::broker_args(pki, broker);
    args.extend(
        [
            "--worker",
            "--master-port",
            &port.to_string(),
            "--processes",
            "1",
        ]
        .map(String::from),
    );
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    mqload_command(&args, &[])
}

/// A child process killed when the test ends, even by a panic.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn in_thread(cmd: Command, timeout: Duration) -> thread::JoinHandle<RunOutput> {
    thread::spawn(move || run_with_timeout(cmd, timeout))
}

/// (requests, failures) of the `_stats.csv` row whose name starts with `prefix`.
fn csv_row(path: &Path, prefix: &str) -> Option<(String, u64, u64)> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split(',').collect();
        (cols.get(1)?.starts_with(prefix)).then(|| {
            Some((
                cols[1].to_owned(),
                cols.get(2)?.parse().ok()?,
                cols.get(3)?.parse().ok()?,
            ))
        })?
    })
}

#[test]
fn a_real_master_counts_what_the_broker_received_and_its_quit_ends_the_workers() {
    if !common::require_broker_tools() {
        return;
    }
    let Some(locust) = require_locust() else {
        return;
    };
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    let port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let master = master_command(
        &locust,
        port,
        dir.path(),
        &[
            "--expect-workers",
            "2",
            "-u",
            "100",
            "-r",
            "50",
            "-t",
            "20s",
            "--csv",
            "run",
            "--mqtt-topic",
            "mqload-locust/{i}",
            "--mqtt-qos",
            "1",
            "--mqtt-throughput",
            "1",
            "--mqtt-payload-bytes",
            "100",
            "--mqtt-payload-format",
            "raw",
        ],
    );
    let master = in_thread(master, Duration::from_secs(60));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            in_thread(
                worker_command(&pki, &broker, port, &[]),
                Duration::from_secs(60),
            )
        })
        .collect();
    let master = master.join().expect("master thread");
    let workers: Vec<RunOutput> = workers
        .into_iter()
        .map(|w| w.join().expect("worker"))
        .collect();
    assert_eq!(master.code, Some(0), "master:\n{}", master.describe());
    for w in &workers {
        assert_eq!(
            w.code,
            Some(0),
            "a worker did not quit cleanly:\n{}",
            w.describe()
        );
        assert!(
            w.stderr.contains("the master said quit"),
            "{}",
            w.describe()
        );
    }
    let stats = dir.path().join("run_stats.csv");
    let (name, requests, failures) = csv_row(&stats, "publish:").unwrap_or_else(|| {
        panic!(
            "no publish row in {}\n{}",
            stats.display(),
            master.describe()
        )
    });
    assert_eq!(
        name, "publish:1:mqload-locust/{i}",
        "the master's options reached the workers"
    );
    assert_eq!(
        failures,
        0,
        "{}",
        fs::read_to_string(&stats).unwrap_or_default()
    );
    // 100 users x 1 msg/s for most of 20 s.
    assert!(requests > 1_000, "only {requests} publishes");
    let received = common::wait_sys_messages_received(&broker, requests, Duration::from_secs(5));
    thread::sleep(Duration::from_millis(1_500));
    let settled = common::sys_messages_received(&broker);
    assert_eq!(settled, received, "the broker was still counting");
    eprintln!("master CSV: {requests} publishes; broker: {received} received");
    assert_eq!(
        requests, received,
        "the master's CSV counts {requests} publishes, the broker received {received}"
    );
    let (_, connects, connect_failures) = csv_row(&stats, "connect").expect("connect row");
    assert_eq!(
        (connects, connect_failures),
        (100, 0),
        "one connection per user"
    );
}

#[test]
fn a_worker_started_before_the_master_waits_and_joins() {
    if !common::require_broker_tools() {
        return;
    }
    let Some(locust) = require_locust() else {
        return;
    };
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    let port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = in_thread(
        worker_command(
            &pki,
            &broker,
            port,
            &[
                "--payload-bytes",
                "10",
                "--payload-format",
                "raw",
                "--qos",
                "0",
            ],
        ),
        Duration::from_secs(40),
    );
    thread::sleep(Duration::from_secs(3));
    let master = master_command(
        &locust,
        port,
        dir.path(),
        &[
            "--expect-workers",
            "1",
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "5s",
            "--csv",
            "run",
            "--mqtt-qos",
            "1",
            "--mqtt-topic",
            "early/{i}",
        ],
    );
    let master = run_with_timeout(master, Duration::from_secs(30));
    let worker = worker.join().expect("worker thread");
    assert_eq!(master.code, Some(0), "master:\n{}", master.describe());
    assert_eq!(worker.code, Some(0), "worker:\n{}", worker.describe());
    assert!(
        worker.stderr.contains("joined the master"),
        "{}",
        worker.describe()
    );
    let (name, requests, failures) =
        csv_row(&dir.path().join("run_stats.csv"), "publish:").expect("a publish row");
    assert_eq!(
        name, "publish:0:early/{i}",
        "the worker's --qos wins over the master's, the master's topic is used"
    );
    assert!(
        requests >= 4 && failures == 0,
        "{requests} publishes, {failures} failed"
    );
}

#[test]
fn a_master_that_disappears_makes_the_worker_stop_after_the_heartbeat_timeout() {
    if !common::require_broker_tools() {
        return;
    }
    let Some(locust) = require_locust() else {
        return;
    };
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    let port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut master = master_command(
        &locust,
        port,
        dir.path(),
        &["--expect-workers", "1", "-u", "2", "-r", "2", "-t", "60s"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .map(KillOnDrop)
    .expect("start the master");
    let worker = in_thread(
        worker_command(&pki, &broker, port, &["--master-heartbeat-timeout", "3s"]),
        Duration::from_secs(40),
    );
    // Let it join, spawn and exchange heartbeats, then the master vanishes without a word.
    thread::sleep(Duration::from_secs(6));
    let _ = master.0.kill();
    let _ = master.0.wait();
    let killed = Instant::now();
    let worker = worker.join().expect("worker thread");
    let after = killed.elapsed();
    assert!(!worker.timed_out, "{}", worker.describe());
    assert_eq!(worker.code, Some(1), "{}", worker.describe());
    assert!(
        worker.stderr.contains("no heartbeat from the master"),
        "{}",
        worker.describe()
    );
    assert!(
        after >= Duration::from_secs(2) && after < Duration::from_secs(10),
        "stopped {after:?} after the master died (timeout 3 s)"
    );
}

/// Every message the worker sends, decoded by Locust's own code the way the master does it,
/// with the statistics summed by the master's own `worker_report` listener.
#[test]
fn every_message_the_worker_sends_decodes_the_way_the_master_decodes_it() {
    let python = venv().join("python");
    if require_locust().is_none() {
        return;
    }
    let id = "host-1_0123456789abcdef0123456789abcdef";
    let classes = vec![("MqttPublisher".to_owned(), 7)];
    let names: Vec<String> = ["connect", "disconnect", "publish:1:t/{i}"]
        .map(String::from)
        .to_vec();
    let mut stats = LocustStats::new(names, 1_000.0);
    let mut w = WorkerStats::with_start(0, 3, 1_000.0);
    w.record_success(0, 2_500, 0);
    w.record_success(2, 400, 100);
    w.record_success(2, 150_000, 100);
    w.record_failure(2, 30_000_000, "no ack before the stop timeout");
    w.record_untimed_failures(2, 3, "not connected when due");
    w.record_failure(0, 1_000, "connection refused (os error 111)");
    stats.add(&w.take_delta(1_001.0));
    w.record_success(2, 12_345, 100);
    stats.add(&w.take_delta(1_002.0));
    let report = |stats: &mut LocustStats| {
        protocol::encode("stats", id, |e: &mut Encoder| {
            stats.write_report(e, &classes)
        })
    };
    let mut messages = vec![
        protocol::client_ready(id),
        protocol::heartbeat(id, WorkerState::Ready, 0.0, 1 << 20),
        protocol::bare("spawning", id),
        protocol::spawning_complete(id, &classes),
        report(&mut stats),
        report(&mut stats),
        protocol::exception(id, "user class X: unsupported", "(mqload worker)"),
        protocol::heartbeat(id, WorkerState::Stopping, 12.5, 3 << 20),
        protocol::bare("client_stopped", id),
        protocol::bare("quit", id),
    ];
    for state in [WorkerState::Spawning, WorkerState::Running] {
        messages.push(protocol::heartbeat(id, state, 1.0, 1));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("messages.bin");
    let mut out = fs::File::create(&file).expect("create");
    for m in &messages {
        out.write_all(&(m.len() as u32).to_be_bytes())
            .expect("write");
        out.write_all(m).expect("write");
    }
    drop(out);
    let script = repo_root().join("tests/locust/decode_as_master.py");
    let result = Command::new(&python)
        .arg(&script)
        .arg(&file)
        .output()
        .expect("run the venv's python");
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "Locust's decoder refused a message:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(v["kinds"].as_array().map(Vec::len), Some(messages.len()));
    let publish = &v["entries"]["publish:1:t/{i}"];
    assert_eq!(publish["method"], "MQTT");
    assert_eq!(publish["num_requests"], 7);
    assert_eq!(publish["num_failures"], 4);
    assert_eq!(publish["num_none_requests"], 3);
    assert_eq!(publish["bucketed"], 4, "one bucket count per timed request");
    assert_eq!(publish["per_sec"], 7);
    assert_eq!(publish["total_content_length"], 300);
    assert_eq!(publish["min_response_time"].as_f64(), Some(0.4));
    assert_eq!(publish["max_response_time"].as_f64(), Some(30_000.0));
    let avg = publish["avg"].as_f64().expect("avg");
    let want = (0.4 + 150.0 + 30_000.0 + 12.345) / 4.0;
    assert!((avg - want).abs() < 0.01, "avg {avg}, want {want}");
    assert_eq!(v["entries"]["connect"]["num_requests"], 2);
    assert_eq!(v["total_requests"], 9);
    assert_eq!(v["total_failures"], 5);
    assert_eq!(v["total_p99"], 30_000);
    let errors = v["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e[2] == "not connected when due" && e[3] == 3)
    );
}

/// The clients connected now, by the broker's own log (mosquitto_sub's `auto-` readers left
/// out). The log is exact at every moment; `$SYS/broker/clients/connected` is a once-a-second
/// sample that counts the reading mosquitto_sub only when it happened to be connected at the
/// sample, so under load it read one short for a whole wait.
fn clients_connected(broker: &Broker) -> Option<u64> {
    let log = std::fs::read_to_string(broker.log_path()).ok()?;
    let mut connected = std::collections::HashSet::new();
    for line in log.lines() {
        if let Some(rest) = line
            .split(" as ")
            .nth(1)
            .filter(|_| line.contains("New client connected"))
        {
            if let Some(id) = rest.split(' ').next() {
                connected.insert(id.to_owned());
            }
            continue;
        }
        let gone = [
            " disconnected",
            " closed its connection",
            " has exceeded timeout",
            ", disconnecting",
        ];
        if gone.iter().any(|g| line.contains(g)) {
            let id = line
                .split("lient ")
                .nth(1)
                .and_then(|rest| rest.split([' ', ',']).next());
            if let Some(id) = id {
                connected.remove(id);
            }
        }
    }
    Some(
        connected
            .iter()
            .filter(|id| !id.starts_with("auto-"))
            .count() as u64,
    )
}

/// The control channel the worker drives: users added, removed (gracefully) and re-added
/// live, as the broker sees them.
#[test]
fn the_engine_adds_and_removes_users_live_through_its_control_channel() {
    use clap::Parser;
    use mqload::engine::Epoch;
    use mqload::engine::control::{Control, Engine};
    use std::sync::Arc;

    if !common::require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    let mut args = vec!["mqload".to_owned()];
    args.extend(common::broker_args(&pki, &broker));
    args.extend(["--processes", "2", "--qos", "1", "--payload-bytes", "10"].map(String::from));
    let cli = mqload::cli::Cli::parse_from(args);
    let plan = Arc::new(mqload::plan::RunPlan::from_cli(&cli).expect("plan"));
    let (tx, rx) = crossbeam_channel::unbounded();
    let engine = Engine::start(plan, tx, Epoch::now());
    let expect = |n: u64| {
        let mut seen = None;
        let ok = common::wait_until(Duration::from_secs(8), || {
            seen = clients_connected(&broker);
            seen == Some(n)
        });
        assert!(
            ok,
            "the broker sees {seen:?} clients, want {n}\n{}",
            broker.log()
        );
    };
    for (count, want) in [(5, 5), (2, 2), (4, 4), (0, 0)] {
        engine.send(Control::SetUsers {
            count,
            spawn_rate: 100.0,
        });
        expect(want);
    }
    engine.send(Control::SetUsers {
        count: 3,
        spawn_rate: 100.0,
    });
    expect(3);
    let errors = engine.stop();
    assert!(errors.is_empty(), "{errors:?}");
    expect(0);
    let deltas: Vec<_> = rx.try_iter().collect();
    assert!(!deltas.is_empty());
    // Removed users said DISCONNECT: 3 (5 -> 2) + 4 (4 -> 0) + 3 at the stop.
    let log = broker.log();
    let ours = |what: &str| {
        log.lines()
            .filter(|l| l.contains("Client locust-") && l.contains(what))
            .count()
    };
    assert_eq!(ours(" disconnected."), 10, "{log}");
    assert_eq!(ours("closed its connection"), 0, "{log}");
}

/// One HTTP/1.1 request to the master's web UI on loopback; the response body (empty when
/// the web UI does not listen yet).
fn http(port: u16, method: &str, path: &str, form: &str) -> String {
    use std::io::Read;
    // Not listening yet: an empty answer, which the callers' waits retry.
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    s.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or(response)
}

/// The master's view of its workers: (state, user_count) each.
fn master_workers(web: u16) -> Vec<(String, u64)> {
    let body = http(web, "GET", "/stats/requests", "");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["workers"]
        .as_array()
        .map(|ws| {
            ws.iter()
                .map(|w| {
                    (
                        w["state"].as_str().unwrap_or_default().to_owned(),
                        w["user_count"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Driven from the master's web UI: more users, fewer users, stop (the worker reports, says
/// client_stopped and is ready again), a new test, then the master quits and the worker exits 0.
#[test]
fn a_real_master_changes_users_live_stops_and_starts_again() {
    if !common::require_broker_tools() {
        return;
    }
    let Some(locust) = require_locust() else {
        return;
    };
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    let (port, web) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(&locust);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LOCUST_") {
            cmd.env_remove(&name);
        }
    }
    cmd.current_dir(dir.path())
        .arg("-f")
        .arg(repo_root().join("deploy/locustfile.py"))
        .args(["--master", "--master-bind-host", "127.0.0.1"])
        .args(["--master-bind-port", &port.to_string()])
        .args(["--web-host", "127.0.0.1", "--web-port", &web.to_string()])
        .args(["--mqtt-payload-bytes", "10", "--mqtt-qos", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.path().join("master.log")).expect("log file"));
    let mut master = KillOnDrop(cmd.spawn().expect("start the master"));
    let log = || fs::read_to_string(dir.path().join("master.log")).unwrap_or_default();
    let worker = in_thread(
        worker_command(&pki, &broker, port, &[]),
        Duration::from_secs(60),
    );
    let ready = |want: &[(&str, u64)]| {
        let mut seen = Vec::new();
        let ok = common::wait_until(Duration::from_secs(10), || {
            seen = master_workers(web);
            seen.len() == want.len() && seen.iter().zip(want).all(|(s, w)| s.0 == w.0 && s.1 == w.1)
        });
        assert!(
            ok,
            "the master sees workers {seen:?}, want {want:?}\n{}",
            log()
        );
    };
    let connected = |n: u64| {
        let mut seen = None;
        let ok = common::wait_until(Duration::from_secs(10), || {
            seen = clients_connected(&broker);
            seen == Some(n)
        });
        assert!(ok, "the broker sees {seen:?} clients, want {n}");
    };
    ready(&[("ready", 0)]);
    for (users, running) in [(6, 6), (2, 2)] {
        http(
            web,
            "POST",
            "/swarm",
            &format!("user_count={users}&spawn_rate=20"),
        );
        ready(&[("running", running)]);
        connected(running);
    }
    http(web, "POST", "/stop", "");
    connected(0);
    ready(&[("ready", 0)]);
    http(web, "POST", "/swarm", "user_count=3&spawn_rate=20");
    ready(&[("running", 3)]);
    connected(3);
    // SIGTERM: the master quits, telling its workers to quit.
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe { libc::kill(master.0.id() as i32, libc::SIGTERM) };
    let _ = master.0.wait();
    let worker = worker.join().expect("worker thread");
    assert_eq!(worker.code, Some(0), "{}", worker.describe());
    connected(0);
}

/// A scripted master that misbehaves: garbage instead of ZMTP, an absurd frame size, then
/// messages that are not Locust's, absurd user counts, and a `reconnect`. The worker names
/// each problem, reconnects (closing the old connection first), never panics, and still
/// stops cleanly on SIGTERM.
#[test]
fn a_misbehaving_master_is_survived_and_named() {
    use std::io::Read;
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let args: Vec<String> = [
        "--worker",
        "--master-port",
        &port.to_string(),
        "--host",
        "127.0.0.1",
        "--port",
        "9",
        "--no-tls",
        "--processes",
        "1",
    ]
    .map(String::from)
    .to_vec();
    let cmd = mqload_command(&args, &[]);
    let worker = thread::spawn(move || {
        common::run_with_signal(
            cmd,
            Duration::from_secs(30),
            Some((Duration::from_secs(7), libc::SIGTERM)),
        )
    });
    // What libzmq's ROUTER says first: a ZMTP 3.1 NULL greeting and a READY.
    let mut hello = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 1];
    hello.extend_from_slice(b"NULL");
    hello.resize(64, 0);
    let ready = b"\x05READY\x0bSocket-Type\x00\x00\x00\x06ROUTER\x08Identity\x00\x00\x00\x00";
    hello.extend_from_slice(&[0x04, ready.len() as u8]);
    hello.extend_from_slice(ready);
    let frame = |body: &[u8]| {
        let mut f = vec![0x00, body.len() as u8];
        f.extend_from_slice(body);
        f
    };
    // Counts that would overflow a sum and exhaust memory if believed.
    let absurd_spawn = protocol::encode("spawn", "", |e: &mut Encoder| {
        e.map(2);
        e.str("timestamp");
        e.float(1.0);
        e.str("user_classes_count");
        e.map(2);
        e.str("A");
        e.uint(u64::MAX);
        e.str("B");
        e.uint(u64::MAX);
    });
    let scripts: Vec<Vec<u8>> = vec![
        b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
        [hello.clone(), vec![0x02, 0xff, 0, 0, 0, 0, 0, 0, 0]].concat(),
        [
            hello.clone(),
            frame(b"abc"),
            frame(b"\x92\x01\x02"),
            frame(b"\x93\xa5spawn\xc0\xa1x"),
            frame(b"\x93\xa3ack\x81\xa5index\x00\xa1x"),
            frame(&absurd_spawn),
            frame(b"\x93\xa9reconnect\xc0\xa1x"),
        ]
        .concat(),
        hello.clone(),
    ];
    let mut connections = Vec::new();
    for script in &scripts {
        let (mut s, _) = listener.accept().expect("the worker connects");
        s.write_all(script).expect("send the script");
        let mut greeting = [0u8; 10];
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        let _ = s.read_exact(&mut greeting);
        assert_eq!(greeting[0], 0xff, "the worker opens with a ZMTP greeting");
        if connections.len() == 2 {
            // `reconnect`: the old connection is closed before a new one opens (a ROUTER
            // ignores a second peer with the same identity).
            let mut rest = Vec::new();
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            assert!(s.read_to_end(&mut rest).is_ok(), "the worker closed it");
        }
        connections.push(s);
    }
    let out = worker.join().expect("worker thread");
    assert_eq!(out.code, Some(0), "{}", out.describe());
    for expected in [
        "did not answer with a ZMTP 3 greeting",
        "over the 16777216-byte limit",
        "ignoring a message: message from the master is not msgpack",
        "ignoring a message: message from the master is not [type, data, node_id]",
        "ignoring a message: spawn message from the master has a bad or missing \"timestamp\"",
        "joined the master",
        "refusing 18446744073709551615 users",
        "the master asked for a reconnect",
    ] {
        assert!(
            out.stderr.contains(expected),
            "no {expected:?} in\n{}",
            out.describe()
        );
    }
    assert!(!out.stderr.contains("panicked"), "{}", out.describe());
}

#[test]
fn a_real_masters_subscriber_class_times_every_message_the_broker_received() {
    if !common::require_broker_tools() {
        return;
    }
    let Some(locust) = require_locust() else {
        return;
    };
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    let port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    // 12 users: 2 MqttSubscriber (a fixed count, spawned first) and 10 MqttPublisher.
    let master = master_command(
        &locust,
        port,
        dir.path(),
        &[
            "--expect-workers",
            "1",
            "-u",
            "12",
            "-r",
            "12",
            "-t",
            "8s",
            "--csv",
            "run",
            "--mqtt-topic",
            "mqload-sub/{i}",
            "--mqtt-qos",
            "1",
            "--mqtt-throughput",
            "5",
            "--mqtt-subscribers",
            "2",
            "--mqtt-subscribe-topic",
            "mqload-sub/#",
            "--mqtt-subscribe-qos",
            "1",
        ],
    );
    let master = in_thread(master, Duration::from_secs(60));
    let worker = in_thread(
        worker_command(&pki, &broker, port, &[]),
        Duration::from_secs(60),
    );
    let master = master.join().expect("master thread");
    let worker = worker.join().expect("worker");
    assert_eq!(master.code, Some(0), "master:\n{}", master.describe());
    assert_eq!(worker.code, Some(0), "worker:\n{}", worker.describe());
    assert!(
        worker.stderr.contains("10 users, 2 subscribers"),
        "the master's class counts reached the worker:\n{}",
        worker.describe()
    );
    let stats = dir.path().join("run_stats.csv");
    let table = fs::read_to_string(&stats).unwrap_or_default();
    let (_, published, _) = csv_row(&stats, "publish:").expect(&table);
    let (name, subscribed, refused) = csv_row(&stats, "subscribe:").expect(&table);
    assert_eq!(name, "subscribe:1:mqload-sub/#", "{table}");
    assert_eq!(
        (subscribed, refused),
        (2, 0),
        "one SUBACK per subscriber:\n{table}"
    );
    let (name, received, failed) = csv_row(&stats, "receive:").expect(&table);
    assert_eq!(name, "receive:1:mqload-sub/#", "{table}");
    assert_eq!(failed, 0, "{table}");
    let on_broker = common::wait_sys_messages_received(&broker, published, Duration::from_secs(5));
    // 10 publishers x 5 msg/s for most of 8 s.
    assert!(on_broker > 200, "only {on_broker} messages:\n{table}");
    eprintln!(
        "master CSV: {published} publishes, {received} receives; broker: {on_broker} received"
    );
    assert_eq!(published, on_broker, "every publish reported:\n{table}");
    // Publishers start 1 s after their CONNACK, long after the SUBACKs on loopback, and
    // subscribers leave 1 s after the stop: each sees every message the broker took, once.
    assert_eq!(
        received,
        2 * on_broker,
        "2 subscribers x {on_broker} messages on the broker, the master's CSV says {received}:\n{table}"
    );
}

/// Subscribers (a Locust subscriber class) added, removed and re-added live through their own
/// engine, as the broker sees them; every removed one leaves with a DISCONNECT.
#[test]
fn the_engine_adds_and_removes_subscribers_live_through_its_control_channel() {
    use clap::Parser;
    use mqload::engine::Epoch;
    use mqload::engine::control::{Control, Engine};
    use std::sync::Arc;

    if !common::require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    let mut args = vec!["mqload".to_owned()];
    args.extend(common::broker_args(&pki, &broker));
    args.extend(
        [
            "--worker",
            "--processes",
            "2",
            "--subscribe-topic",
            "live/#",
            "--subscribe-qos",
            "1",
        ]
        .map(String::from),
    );
    let cli = mqload::cli::Cli::parse_from(args);
    let plan = Arc::new(mqload::locust::subscribers::plan(&cli).expect("plan"));
    let (tx, _rx) = crossbeam_channel::unbounded();
    let engine = Engine::start(plan, tx, Epoch::now());
    let expect = |n: u64| {
        let mut seen = None;
        let ok = common::wait_until(Duration::from_secs(8), || {
            seen = clients_connected(&broker);
            seen == Some(n)
        });
        assert!(
            ok,
            "the broker sees {seen:?} clients, want {n}\n{}",
            broker.log()
        );
    };
    for count in [2, 1, 3, 0, 2] {
        engine.send(Control::SetSubscribers { count });
        expect(count);
    }
    let errors = engine.stop();
    assert!(errors.is_empty(), "{errors:?}");
    expect(0);
    // 1 (2 -> 1) + 3 (3 -> 0) + 2 at the stop.
    let log = broker.log();
    let ours = |what: &str| {
        log.lines()
            .filter(|l| l.contains("Client locust-") && l.contains(what))
            .count()
    };
    assert_eq!(ours(" disconnected."), 6, "{log}");
    assert_eq!(ours("closed its connection"), 0, "{log}");
}
