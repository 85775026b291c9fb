//! Connection scale against a real mosquitto: `--bind` sources seen by the broker,
//! `--connect-only` holding connections without a publish, `--connection-lifetime` churn
//! resuming TLS sessions, and the limits that stop a run before it connects.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::thread;
use std::time::Duration;

use common::{
    Broker, Pki, broker_args, mqload_command, run_against, run_mqload, run_with_timeout, serial,
};

/// (requests, failures) of one row of a Locust `_stats.csv`.
fn csv_counts(path: &Path, name: &str) -> Option<(u64, u64)> {
    let row = common::stats_row(path, name)?;
    let count = |title: &str| row.get(title)?.parse().ok();
    Some((count("Request Count")?, count("Failure Count")?))
}

/// `(full, resumed)` from the report's "TLS handshakes: N full, M resumed" line.
fn handshakes(stdout: &str) -> Option<(u64, u64)> {
    let line = stdout.lines().find(|l| l.starts_with("TLS handshakes: "))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    Some((words.get(2)?.parse().ok()?, words.get(4)?.parse().ok()?))
}

/// Source addresses of the broker log's "New client connected from A:P" lines, counted.
fn connected_sources(log: &str) -> BTreeMap<String, usize> {
    let mut sources = BTreeMap::new();
    for line in log.lines() {
        if let Some(rest) = line.split("New client connected from ").nth(1)
            && let Some((addr, _)) = rest.split_once(':')
        {
            *sources.entry(addr.to_string()).or_insert(0) += 1;
        }
    }
    sources
}

#[test]
fn bind_spreads_connections_over_every_source_address() {
    if !common::require_broker_tools() {
        return;
    }
    let _guard = serial();
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    let out = run_against(
        &pki,
        &broker,
        &[
            "-u",
            "9",
            "-r",
            "100",
            "-t",
            "3s",
            "--connect-only",
            "--only-summary",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let mut args = broker_args(&pki, &broker);
    args.extend(
        [
            "-u",
            "9",
            "-r",
            "10000",
            "-t",
            "3s",
            "--connect-only",
            "--only-summary",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args.extend(["--bind".to_string(), "127.0.0.2-127.0.0.4".to_string()]);
    // All due at once, two attempts at a time: the others queue in mqload, and the report
    // says so.
    args.extend(["--max-connecting".to_string(), "2".to_string()]);
    let before = connected_sources(&broker.log());
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        ["127.0.0.1"],
        "{before:?}"
    );
    let out = run_mqload(&args, &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(
        out.stdout.contains("Connect queue: ") && out.stdout.contains("attempts waited"),
        "{}",
        out.describe()
    );
    let mut after = connected_sources(&broker.log());
    after.remove("127.0.0.1");
    let want: BTreeMap<String, usize> = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        .iter()
        .map(|s| (s.to_string(), 3))
        .collect();
    assert_eq!(after, want, "{}", broker.log());
}

#[test]
fn connect_only_holds_every_connection_and_publishes_nothing() {
    if !common::require_broker_tools() {
        return;
    }
    let _guard = serial();
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    let csv = tempfile::tempdir().expect("csv dir");
    let prefix = csv.path().join("run");
    let prefix_text = prefix.to_string_lossy().into_owned();
    let args = {
        let mut a = broker_args(&pki, &broker);
        a.extend(
            [
                "-u",
                "50",
                "-r",
                "100",
                "-t",
                "5s",
                "--connect-only",
                "--keepalive",
                "1s",
                "--throughput",
                "10",
                "--qos",
                "1",
                "--only-summary",
                "--csv",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        a.push(prefix_text);
        a
    };
    let runner = thread::spawn(move || run_mqload(&args, &[], Duration::from_secs(40)));
    // Read the broker's own gauge while mqload holds its connections. The gauge is refreshed
    // once a second, so it may or may not count the mosquitto_sub reading it.
    let mut connected = String::new();
    let held = common::wait_until(Duration::from_secs(4), || {
        connected = common::sys_value(&broker, "$SYS/broker/clients/connected").unwrap_or_default();
        connected == "50" || connected == "51"
    });
    let out = runner.join().expect("mqload runner");
    assert!(
        held,
        "broker saw {connected:?} clients connected, not 50 (+1 reader)\n{}",
        out.describe()
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let received = common::sys_messages_received(&broker);
    assert_eq!(
        received,
        0,
        "the broker received publishes: {}",
        out.describe()
    );
    let stats = csv.path().join("run_stats.csv");
    assert_eq!(
        csv_counts(&stats, "connect"),
        Some((50, 0)),
        "{}",
        out.describe()
    );
    assert_eq!(csv_counts(&stats, "publish:1:locust/test/topic"), None);
    assert_eq!(handshakes(&out.stdout), Some((50, 0)), "{}", out.describe());
    // Keep alive 1 s over 5 s: pings were answered, no connection dropped.
    assert_eq!(
        csv_counts(&stats, "disconnect"),
        Some((50, 0)),
        "{}",
        out.describe()
    );
}

#[test]
fn churn_reconnects_every_client_and_resumes_its_tls_session() {
    if !common::require_broker_tools() {
        return;
    }
    let _guard = serial();
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    let csv = tempfile::tempdir().expect("csv dir");
    let prefix = csv.path().join("run");
    let prefix_text = prefix.to_string_lossy().into_owned();
    let out = run_against(
        &pki,
        &broker,
        &[
            "-u",
            "20",
            "-r",
            "100",
            "-t",
            "9s",
            "--connection-lifetime",
            "2s",
            "--qos",
            "1",
            "--throughput",
            "2",
            "--payload-format",
            "raw",
            "--payload-bytes",
            "50",
            "--only-summary",
            "--csv",
            &prefix_text,
        ],
        Duration::from_secs(40),
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let stats = csv.path().join("run_stats.csv");
    let (connects, connect_failures) = csv_counts(&stats, "connect").expect("connect row");
    assert_eq!(connect_failures, 0, "{}", out.describe());
    // Connected near 0.2 s, then every 2 s: 4 reconnects each in 9 s (a slow one may miss one).
    assert!(
        (20 * 4..=20 * 5).contains(&connects),
        "{connects} connects for 20 clients\n{}",
        out.describe()
    );
    let (full, resumed) = handshakes(&out.stdout).expect("handshake line");
    assert_eq!(full + resumed, connects, "{}", out.describe());
    assert_eq!(
        full,
        20,
        "only first connections are full handshakes\n{}",
        out.describe()
    );
    let (published, publish_failures) =
        csv_counts(&stats, "publish:1:locust/test/topic").expect("publish row");
    assert_eq!(publish_failures, 0, "{}", out.describe());
    let received = common::wait_sys_messages_received(&broker, published, Duration::from_secs(4));
    assert_eq!(
        received, published,
        "broker count vs mqload's acked publishes"
    );
    assert!(
        published >= 20 * 2 * 7,
        "{published} publishes\n{}",
        out.describe()
    );
}

#[test]
fn churn_without_tickets_makes_every_handshake_full() {
    if !common::require_broker_tools() {
        return;
    }
    let _guard = serial();
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    let out = run_against(
        &pki,
        &broker,
        &[
            "-u",
            "5",
            "-r",
            "100",
            "-t",
            "3500ms",
            "--connect-only",
            "--connection-lifetime",
            "1s",
            "--tls-tickets",
            "off",
            "--only-summary",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let (full, resumed) = handshakes(&out.stdout).expect("handshake line");
    assert_eq!(resumed, 0, "{}", out.describe());
    assert!(
        full >= 5 * 3,
        "{full} handshakes: clients did not churn\n{}",
        out.describe()
    );
}

#[test]
fn bind_and_lifetime_mistakes_exit_2_with_one_line() {
    for (args, needle) in [
        (&["--bind", "localhost"][..], "--bind \"localhost\""),
        (
            &["--bind", "127.0.0.9-127.0.0.2"][..],
            "lower address first",
        ),
        (&["--bind", "192.0.2.1"][..], "not an address of this host"),
        (&["--bind", "::1"][..], "broker's family"),
        (
            &["--connection-lifetime", "0s"][..],
            "--connection-lifetime",
        ),
        (
            &["--connection-lifetime", "soon"][..],
            "--connection-lifetime",
        ),
    ] {
        let mut all = vec!["--host", "127.0.0.1", "--port", "1", "--no-tls", "-t", "1s"];
        all.extend_from_slice(args);
        let out = run_mqload(&all, &[], Duration::from_secs(10));
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.describe());
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", out.describe());
        assert!(lines[0].contains(needle), "{args:?}: {}", out.describe());
    }
}

#[test]
fn too_many_users_for_the_open_file_limit_exit_2_before_any_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port().to_string();
    let args = [
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--no-tls",
        "-u",
        "1000",
        "-t",
        "2s",
    ];
    let mut cmd = mqload_command(&args, &[]);
    // SAFETY: setrlimit is async-signal-safe; it runs in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 300,
                rlim_max: 300,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            Ok(())
        });
    }
    let out = run_with_timeout(cmd, Duration::from_secs(10));
    assert_eq!(out.code, Some(2), "{}", out.describe());
    let line = out.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{}", out.describe());
    for needle in [
        "1000 users",
        "open-file limit is 300",
        "ulimit -Hn",
        "--users",
        "more mqload processes",
    ] {
        assert!(line.contains(needle), "{needle:?} missing: {line}");
    }
    assert!(
        listener.accept().is_err(),
        "mqload connected before refusing"
    );
}
