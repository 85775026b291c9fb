//! `--stages` against a real mosquitto: the users mqload runs (its per-second series) and the
//! publishes the broker counts (`$SYS/broker/publish/messages/received`, read live by
//! mosquitto_sub) follow the profile within 2 % once each ramp has settled; the report has a
//! section per stage (its own percentiles, never above its worst second's; its requests, which
//! sum to the run's) and the CSV history a Stage column; mistakes stop with exit 2.

mod common;

use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Broker, Pki, broker_args, require_broker_tools, run_mqload, serial, tool_path};

/// Ramp to 150 users at 1 msg/s, hold; ramp the rate to 3 msg/s, hold; drop to 60 users,
/// hold: 22 s in all.
const PROFILE: &str = "3s:150u,6s:150u,2s:150u@3,5s:150u@3,1s:60u,5s:60u";
/// The holds: (from, to, users, msg/s per user, settled after), seconds from the start. After
/// new users a hold settles 1.5 s in (a new user's first publish comes 1 s after its
/// CONNACK); after a rate change or a removal at once (0.3 s for the orders to go round).
/// mosquitto 2.0 with `sys_interval 1` updates `$SYS` every 2 s, so each settled part is
/// over 4 s long and holds at least one whole interval.
const HOLDS: [(f64, f64, f64, f64, f64); 3] = [
    (3.0, 9.0, 150.0, 1.0, 1.5),
    (11.0, 16.0, 150.0, 3.0, 0.3),
    (17.0, 22.0, 60.0, 3.0, 0.3),
];
/// Users and rates must be this close to the profile.
const TOLERANCE: f64 = 0.02;

/// A `$SYS` sample: when mosquitto_sub received it (unix seconds) and the count.
fn sys_samples(text: &str) -> Vec<(f64, u64)> {
    text.lines()
        .filter_map(|line| {
            let (at, count) = line.split_once(' ')?;
            Some((at.parse().ok()?, count.trim().parse().ok()?))
        })
        .collect()
}

#[test]
fn users_and_broker_counted_rate_follow_the_profile() {
    if !require_broker_tools() {
        return;
    }
    let _serial = serial();
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    let dir = tempfile::tempdir().expect("tempdir");
    let sys_path = dir.path().join("sys.txt");
    let sub = tool_path("mosquitto_sub").expect("mosquitto_sub");
    let mut sys = Command::new(sub)
        .args(["-h", "127.0.0.1", "-p", &broker.plain_port.to_string()])
        .args(["-t", "$SYS/broker/publish/messages/received", "-F", "%U %p"])
        .args(["-W", "90"])
        .stdin(Stdio::null())
        .stdout(fs::File::create(&sys_path).expect("sys file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mosquitto_sub");
    let report = dir.path().join("report.json");
    let html = dir.path().join("report.html");
    let csv = dir.path().join("run");
    let mut args = broker_args(&pki, &broker);
    for extra in [
        "--stages",
        PROFILE,
        "--client-id",
        "stage-{i}",
        "--payload-bytes",
        "64",
        "--only-summary",
        "--report-json",
        report.to_str().expect("utf-8 path"),
        "--csv",
        csv.to_str().expect("utf-8 path"),
        "--html",
        html.to_str().expect("utf-8 path"),
    ] {
        args.push(extra.to_owned());
    }
    let run = run_mqload(&args, &[], Duration::from_secs(90));
    // The last $SYS update after the run (up to 2 s later) is not needed: holds end earlier.
    let _ = sys.kill();
    let _ = sys.wait();
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert!(
        run.stderr
            .contains("stages: 6 segments over 22s, up to 150 users"),
        "{}",
        run.describe()
    );
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&report).expect("report")).expect("JSON");
    let start = report["run"]["start_unix"].as_f64().expect("start_unix");

    // Users: every whole second of the series inside a settled hold.
    let mut user_seconds = 0;
    for point in report["series"]["points"].as_array().expect("points") {
        let from = point["unix"].as_f64().expect("unix") - start;
        let users = point["users"].as_f64().expect("users");
        for &(hold_from, hold_to, target, _, settle) in &HOLDS {
            // Connects and drains finish within a second of the orders on a loaded machine.
            if from >= hold_from + settle.max(1.0) && from + 1.0 <= hold_to {
                user_seconds += 1;
                assert!(
                    (users - target).abs() <= target * TOLERANCE,
                    "{users} users connected {from:.1} s in, the profile holds {target}\n{}",
                    run.describe()
                );
            }
        }
    }
    assert!(
        user_seconds >= 7,
        "only {user_seconds} settled seconds in the series"
    );

    // Broker-counted msg/s: every interval between two $SYS updates inside a settled hold.
    let samples = sys_samples(&fs::read_to_string(&sys_path).expect("sys samples"));
    let mut intervals = Vec::new();
    for pair in samples.windows(2) {
        let ((t0, n0), (t1, n1)) = (pair[0], pair[1]);
        let (from, to) = (t0 - start, t1 - start);
        for (i, &(hold_from, hold_to, users, rate, settle)) in HOLDS.iter().enumerate() {
            if from >= hold_from + settle && to <= hold_to {
                let measured = (n1 - n0) as f64 / (t1 - t0);
                let expected = users * rate;
                intervals.push((i, from, to, measured, expected));
            }
        }
    }
    eprintln!(
        "{user_seconds} settled seconds of users; $SYS intervals (hold, from, to, msg/s, asked): {intervals:.2?}"
    );
    let seen: Vec<usize> = intervals.iter().map(|i| i.0).collect();
    for hold in 0..HOLDS.len() {
        assert!(
            seen.contains(&hold),
            "no $SYS interval inside hold {hold}: {samples:?} (start {start})"
        );
    }
    for (hold, from, to, measured, expected) in &intervals {
        assert!(
            (measured - expected).abs() <= expected * TOLERANCE,
            "hold {hold}: the broker counted {measured:.1} msg/s from {from:.2} to {to:.2} s, \
             the profile asks {expected}\nall: {intervals:?}\n{}",
            run.describe()
        );
    }

    // One report section per stage, in order, each with its target.
    let sections = report["sections"].as_object().expect("sections");
    let stages: Vec<&String> = sections
        .keys()
        .filter(|k| k.starts_with("stage_"))
        .collect();
    assert_eq!(stages.len(), 6, "{sections:?}");
    assert_eq!(sections["stage_4"]["target_msg_per_s"], 450.0);
    assert_eq!(sections["stage_6"]["target_users"], 60);
    // Each stage's own percentiles (merged from its seconds) can never pass its worst
    // second's, and every request falls in exactly one stage.
    let figure = |stage: &str, field: &str| {
        sections[stage][field]
            .as_u64()
            .unwrap_or_else(|| panic!("{stage}.{field}: {:?}", sections[stage]))
    };
    let mut requests = 0;
    for stage in &stages {
        requests += figure(stage, "requests");
        assert!(figure(stage, "publishes") > 0, "{:?}", sections[*stage]);
        let [p50, p90, p99, p999] =
            ["p50_us", "p90_us", "p99_us", "p999_us"].map(|f| figure(stage, f));
        assert!(
            0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= p999,
            "{stage}: {:?}",
            sections[*stage]
        );
        for (own, worst) in [
            ("p99_us", "p99_us_worst_second"),
            ("send_lag_p99_us", "send_lag_p99_us_worst_second"),
        ] {
            assert!(
                figure(stage, own) <= figure(stage, worst),
                "{stage}: {own} above {worst}: {:?}",
                sections[*stage]
            );
        }
    }
    let total = report["stats"]["aggregated"]["num_requests"]
        .as_u64()
        .expect("aggregated requests");
    assert_eq!(
        requests, total,
        "requests per stage against the run's total"
    );

    // The HTML page, as headless Chromium draws it: a section per stage, the JSON's figures.
    let chromium = ["chromium", "chromium-browser"]
        .iter()
        .find_map(|n| tool_path(n));
    match chromium {
        Some(bin) => {
            let profile = tempfile::tempdir().expect("profile dir");
            let mut dump = Command::new(bin);
            dump.args(["--headless", "--no-sandbox", "--disable-gpu"])
                .args(["--disable-dev-shm-usage", "--no-first-run"])
                .arg("--virtual-time-budget=10000")
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .arg("--dump-dom")
                .arg(format!("file://{}", html.display()));
            let dom = common::run_with_timeout(dump, Duration::from_secs(60));
            assert!(
                dom.stdout.contains("data-rendered=\"true\""),
                "{}",
                dom.describe()
            );
            for n in 1..=6 {
                let heading = format!("<h2>Stage {n}</h2>");
                assert!(
                    dom.stdout.contains(&heading),
                    "{heading} missing:\n{}",
                    dom.stdout
                );
            }
            let cell = "data-json=\"sections/stage_4/target_msg_per_s\">450</td>";
            assert!(dom.stdout.contains(cell), "{cell} missing:\n{}", dom.stdout);
            // Shown in ms with two decimals.
            let key = "data-json=\"sections/stage_4/p99_us\">";
            let shown: Option<f64> = dom
                .stdout
                .split_once(key)
                .and_then(|(_, rest)| rest.split_once('<').and_then(|(text, _)| text.parse().ok()));
            let p99_ms = figure("stage_4", "p99_us") as f64 / 1000.0;
            assert!(
                shown.is_some_and(|ms| (ms - p99_ms).abs() < 0.006),
                "stage 4's p99 of {p99_ms} ms shown as {shown:?}:\n{}",
                dom.stdout
            );
        }
        None if common::in_ci() => {
            panic!("chromium is not installed (scripts/test.sh installs it)")
        }
        None => eprintln!("skipping the HTML check: chromium not installed"),
    }

    // The CSV history: Locust's columns plus Stage, stages in order.
    let history = fs::read_to_string(common_csv(&csv)).expect("history");
    let mut lines = history.lines();
    assert!(
        lines
            .next()
            .is_some_and(|h| h.ends_with(",Total Average Content Size,Stage"))
    );
    let labels: Vec<u32> = lines
        .filter_map(|l| l.rsplit(',').next()?.parse().ok())
        .collect();
    assert_eq!(labels.first(), Some(&1), "{history}");
    assert_eq!(labels.last(), Some(&6), "{history}");
    assert!(labels.windows(2).all(|w| w[0] <= w[1]), "{history}");
}

fn common_csv(prefix: &std::path::Path) -> std::path::PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push("_stats_history.csv");
    name.into()
}

#[test]
fn the_guard_prices_the_whole_profile_and_conflicts_stop_with_exit_2() {
    // 0 -> 100 users over 10 s at 1 msg/s (500), then 100 users ramping 1 -> 2 msg/s over
    // 50 s (7,500): 8,000 messages. A dry run connects to nothing.
    let dry = run_mqload(
        &[
            "--host",
            "127.0.0.1",
            "--no-tls",
            "--client-id",
            "d-{i}",
            "--aws",
            "--dry-run",
            "--stages",
            "10s:100u,50s:100u@2",
        ],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(dry.code, Some(0), "{}", dry.describe());
    assert!(
        dry.stderr.contains("AWS IoT Core estimate: 8,000 messages"),
        "{}",
        dry.describe()
    );
    assert!(
        dry.stderr.contains("stopping after 1m"),
        "{}",
        dry.describe()
    );
    // AWS's 500 CONNECT/s account quota is checked against the profile's steepest second,
    // not --spawn-rate: 10 users/s passes, 800 users in the first second does not.
    let connect_warnings = |out: &common::RunOutput| -> Vec<String> {
        out.stderr
            .lines()
            .filter(|l| l.contains("warning: AWS IoT quota") && l.contains("CONNECT"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        connect_warnings(&dry),
        Vec::<String>::new(),
        "{}",
        dry.describe()
    );
    let steep = run_mqload(
        &[
            "--host",
            "127.0.0.1",
            "--no-tls",
            "--client-id",
            "s-{i}",
            "--aws",
            "--dry-run",
            "--stages",
            "1s:800u,10s:800u",
        ],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(steep.code, Some(0), "{}", steep.describe());
    let warnings = connect_warnings(&steep);
    assert_eq!(warnings.len(), 1, "{}", steep.describe());
    assert!(warnings[0].contains("up to 800 CONNECTs/s"), "{warnings:?}");
    for (extra, says) in [
        (
            &["--stages", "10s:5u", "-u", "10"][..],
            "--stages with --users",
        ),
        (
            &["--stages", "10s:5u", "--reset-stats"][..],
            "--stages with --reset-stats",
        ),
        (&["--stages", "10s:5"][..], "segment \"10s:5\" is not valid"),
    ] {
        let mut args = vec!["--host", "127.0.0.1", "--no-tls", "--client-id", "e-{i}"];
        args.extend_from_slice(extra);
        let out = run_mqload(&args, &[], Duration::from_secs(30));
        assert_eq!(out.code, Some(2), "{extra:?}: {}", out.describe());
        let errors: Vec<&str> = out.stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(errors.len(), 1, "{extra:?}: {}", out.describe());
        assert!(errors[0].contains(says), "{extra:?}: {}", out.describe());
    }
}
