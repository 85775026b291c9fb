//! The JSON and HTML reports of real runs: a short load against a real mosquitto, its JSON
//! checked against the broker's own count, its HTML rendered by headless Chromium and every
//! number the page shows compared with the JSON file; reports still written after SIGTERM and
//! failures; an unwritable report path refused before the run; the built-in broker's own
//! count in the report of a run without --host.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Broker, Pki, broker_args, run_mqload, run_with_signal, run_with_timeout};
use serde_json::Value;

/// Headless Chromium, or `None` (a skip outside CI; a failure under `CI=true`).
fn chromium() -> Option<PathBuf> {
    if let Some(p) = ["chromium", "chromium-browser"]
        .iter()
        .find_map(|n| common::tool_path(n))
    {
        return Some(p);
    }
    if common::in_ci() {
        panic!(
            "chromium is not installed, and under CI=true a missing tool is a failure: \
             install it with `apt-get install -y chromium` (scripts/test.sh does this as root)"
        );
    }
    eprintln!("skipping: chromium not installed (run scripts/test.sh)");
    None
}

/// Chromium with a private profile, headless, after the page's script ran.
fn chromium_command(bin: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--virtual-time-budget=10000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// The JSON value at a `/`-separated path (array elements by index), as the page names them.
fn at<'a>(json: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('/').try_fold(json, |v, key| match v {
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        Value::Object(map) => map.get(key),
        _ => None,
    })
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// Every `(data-json path, shown text)` in the rendered DOM.
fn bound_cells(dom: &str) -> Vec<(String, String)> {
    let mut cells = Vec::new();
    let mut rest = dom;
    while let Some(i) = rest.find("data-json=\"") {
        rest = &rest[i + 11..];
        let Some(end) = rest.find('"') else { break };
        let path = unescape(&rest[..end]);
        let Some(open) = rest.find('>') else { break };
        let text_start = &rest[open + 1..];
        let text = &text_start[..text_start.find('<').unwrap_or(text_start.len())];
        cells.push((path, unescape(text)));
    }
    cells
}

/// Whether the page's text for `path` is the JSON's value: strings equal, integers equal,
/// fractions within the two shown decimals; `*_us` fields are shown in milliseconds.
fn check_cell(json: &Value, path: &str, shown: &str) -> Result<(), String> {
    let value = at(json, path).ok_or_else(|| format!("{path}: not in the JSON"))?;
    let micro = path.split('/').any(|seg| seg.ends_with("_us"));
    match value {
        Value::String(s) if s == shown => Ok(()),
        Value::Null if shown == "–" => Ok(()),
        Value::Number(n) => {
            let got: f64 = shown
                .trim()
                .parse()
                .map_err(|_| format!("{path}: shown {shown:?} is not a number"))?;
            let want = n.as_f64().unwrap_or(f64::NAN) / if micro { 1000.0 } else { 1.0 };
            let exact = !micro && (n.is_u64() || n.is_i64());
            let ok = if exact {
                got == want
            } else {
                (got - want).abs() <= 0.005 + 1e-9 * want.abs()
            };
            ok.then_some(())
                .ok_or_else(|| format!("{path}: shown {shown:?}, JSON {n}"))
        }
        other => Err(format!("{path}: shown {shown:?}, JSON {other}")),
    }
}

/// The value of `attr` in the opening tag that starts at `tag`.
fn attr<'a>(tag: &'a str, attr: &str) -> Option<&'a str> {
    let head = &tag[..tag.find('>')?];
    let key = format!(" {attr}=\"");
    let start = head.find(&key)? + key.len();
    Some(&head[start..start + head[start..].find('"')?])
}

#[test]
fn html_report_draws_its_charts_and_shows_the_json_numbers_in_chromium() {
    if !common::require_broker_tools() {
        return;
    }
    let Some(chromium) = chromium() else { return };
    let pki = Pki::new(false);
    let broker = Broker::start(&pki);
    let received_before = common::sys_messages_received(&broker);
    let dir = tempfile::tempdir().expect("tempdir");
    let (json_path, html_path) = (dir.path().join("run.json"), dir.path().join("run.html"));
    let mut args = broker_args(&pki, &broker);
    for a in [
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        "5s",
        "--qos",
        "1",
        "--throughput",
        "20",
        "--payload-format",
        "raw",
        "--payload-bytes",
        "64",
        "--topic",
        "mqload/reports/{i}",
        "--only-summary",
        "--report-json",
    ] {
        args.push(a.into());
    }
    args.push(json_path.display().to_string());
    args.push("--html".into());
    args.push(html_path.display().to_string());
    let out = run_mqload(&args, &[], Duration::from_secs(40));
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(
        !out.stdout.contains('\r'),
        "no status line when piped:\n{}",
        out.stdout
    );

    // The JSON agrees with itself and with the broker.
    let json = read_json(&json_path);
    assert_eq!(json["schema"], "mqload.report/1");
    assert_eq!(json["parameters"]["users"], 4);
    assert_eq!(json["parameters"]["tls"], true);
    // A shared CI machine may make mqload late (send lag): the verdict must say so then.
    let late = json["send_lag"]["p99_us"].as_u64().expect("lag")
        > json["send_lag"]["bottleneck_threshold_us"]
            .as_u64()
            .expect("threshold");
    let want = if late { "mqload_bottleneck" } else { "clean" };
    assert_eq!(json["verdict"]["kind"], want, "{json}");
    assert_eq!(json["stats"]["aggregated"]["num_failures"], 0, "{json}");
    let rows = json["stats"]["rows"].as_array().expect("rows");
    let publish = rows
        .iter()
        .find(|r| r["name"].as_str().is_some_and(|n| n.starts_with("publish")))
        .expect("a publish row");
    let published = publish["num_requests"].as_u64().expect("count");
    assert!(published > 0, "{json}");
    let received = common::wait_sys_messages_received(
        &broker,
        received_before + published,
        Duration::from_secs(5),
    );
    assert_eq!(
        received - received_before,
        published,
        "the broker counted what the JSON says was published"
    );
    let sum: u64 = rows.iter().filter_map(|r| r["num_requests"].as_u64()).sum();
    assert_eq!(json["stats"]["aggregated"]["num_requests"], sum);
    let points = json["series"]["points"].as_array().expect("points");
    assert!(
        (4..=9).contains(&points.len()),
        "{} points for a 5 s run",
        points.len()
    );
    let names = json["series"]["names"].as_array().expect("names");
    let pi = names
        .iter()
        .position(|n| *n == publish["name"])
        .expect("publish in series names");
    let in_series: u64 = points
        .iter()
        .map(|p| p["requests"][pi].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        in_series, published,
        "the time series adds up to the totals"
    );
    assert_eq!(json["connections"]["peak_connected"], 4);
    let offered = &json["sections"]["offered_load"];
    assert_eq!(offered["planned_messages_per_s"], 80.0, "4 users x 20/s");
    assert_eq!(offered["sent_messages"], published);
    assert_eq!(
        json["sections"]["connects"]["tls_full_handshakes"]
            .as_u64()
            .unwrap_or(0)
            + json["sections"]["connects"]["tls_resumed_handshakes"]
                .as_u64()
                .unwrap_or(0),
        4,
        "one TLS handshake per user"
    );
    assert_eq!(json["sections"]["connects"]["connects"], 4);
    assert_eq!(json["sections"]["connects"]["reconnects"], 0);
    assert!(
        json["sections"].get("aws_cost").is_none(),
        "no AWS cost for a local broker"
    );

    // Chromium runs the page's script; the DOM it serialises is what a reader sees.
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("file://{}", html_path.display());
    let mut dump = chromium_command(&chromium, profile.path());
    dump.arg("--dump-dom").arg(&url);
    let dom_run = run_with_timeout(dump, Duration::from_secs(60));
    assert_eq!(dom_run.code, Some(0), "{}", dom_run.describe());
    assert!(
        dom_run.stdout.contains("data-rendered=\"true\""),
        "the script did not finish:\n{}",
        dom_run.stdout
    );
    // What was drawn, without the scripts' own source text.
    let dom = &dom_run.stdout[..dom_run
        .stdout
        .find("<script")
        .unwrap_or(dom_run.stdout.len())];

    let n = points.len();
    let charts: Vec<&str> = dom.match_indices("<svg").map(|(i, _)| &dom[i..]).collect();
    assert_eq!(charts.len(), 4, "four charts");
    for svg in &charts {
        assert_eq!(attr(svg, "data-points"), Some(n.to_string().as_str()));
    }
    let lines: Vec<&str> = dom
        .match_indices("<polyline")
        .map(|(i, _)| &dom[i..])
        .collect();
    assert_eq!(lines.len(), 9, "2 + 3 + 2 + 2 lines");
    for line in &lines {
        let coords = attr(line, "points").expect("points");
        let pairs: Vec<(f64, f64)> = coords
            .split(' ')
            .filter_map(|c| c.split_once(','))
            .filter_map(|(x, y)| Some((x.parse().ok()?, y.parse().ok()?)))
            .collect();
        assert_eq!(pairs.len(), n, "one vertex per point: {coords}");
        assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0), "x increases");
    }
    let rate = lines
        .iter()
        .find(|l| attr(l, "data-series") == Some("messages/s"))
        .expect("messages/s line");
    let ys: Vec<f64> = attr(rate, "points")
        .unwrap_or_default()
        .split(' ')
        .filter_map(|c| c.split_once(',')?.1.parse().ok())
        .collect();
    assert!(
        ys.iter().any(|y| (y - ys[0]).abs() > 1.0),
        "the messages/s line is not flat: {ys:?}"
    );

    let cells = bound_cells(dom);
    let errors: Vec<String> = cells
        .iter()
        .filter_map(|(p, t)| check_cell(&json, p, t).err())
        .collect();
    assert!(
        errors.is_empty(),
        "page differs from the JSON:\n{errors:#?}"
    );
    let row_cells = (rows.len() + 1) * (9 + 11);
    assert!(
        cells.len() >= row_cells,
        "{} bound cells, want at least {row_cells}",
        cells.len()
    );
    for must in [
        "stats/aggregated/num_requests",
        "stats/aggregated/percentiles_us/99%",
        "send_lag/p99_us",
        "connections/peak_connected",
        "sections/offered_load/sent_messages",
    ] {
        assert!(cells.iter().any(|(p, _)| p == must), "{must} not shown");
    }
    assert!(dom.contains(&format!("data-kind=\"{want}\"")));

    // A screenshot for people: target/test-artefacts/report.png (not in git).
    let artefacts = common::repo_root().join("target/test-artefacts");
    std::fs::create_dir_all(&artefacts).expect("artefacts dir");
    let png = artefacts.join("report.png");
    let _ = std::fs::remove_file(&png);
    let mut shot = chromium_command(&chromium, profile.path());
    shot.arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,2400")
        .arg(&url);
    let shot_run = run_with_timeout(shot, Duration::from_secs(60));
    assert_eq!(shot_run.code, Some(0), "{}", shot_run.describe());
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 20_000, "screenshot of {size} bytes");
    let _ = std::fs::copy(&json_path, artefacts.join("report.json"));
    let _ = std::fs::copy(&html_path, artefacts.join("report.html"));
}

#[test]
fn reports_are_written_after_sigterm_and_failures() {
    // Nothing listens on this port, so every connect fails (refused).
    let port = common::free_port().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let (json_path, html_path) = (dir.path().join("stop.json"), dir.path().join("stop.html"));
    let cmd = common::mqload_command(
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--no-tls",
            "-u",
            "2",
            "-r",
            "10",
            "-t",
            "60s",
            "--only-summary",
            "--report-json",
            &json_path.display().to_string(),
            "--html",
            &html_path.display().to_string(),
        ],
        &[],
    );
    let out = run_with_signal(
        cmd,
        Duration::from_secs(30),
        Some((Duration::from_millis(2500), libc::SIGTERM)),
    );
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(out.elapsed < Duration::from_secs(20), "{}", out.describe());
    let json = read_json(&json_path);
    assert_eq!(json["run"]["stopped_by"], "signal");
    assert_eq!(json["verdict"]["kind"], "failures");
    let connect = &json["stats"]["rows"][0];
    assert_eq!(connect["name"], "connect");
    let attempts = connect["num_requests"].as_u64().unwrap_or(0);
    assert!(attempts >= 2, "{json}");
    assert_eq!(connect["num_failures"], attempts);
    let errors = json["errors"].as_array().expect("errors");
    let occurrences: u64 = errors
        .iter()
        .filter_map(|e| e["occurrences"].as_u64())
        .sum();
    assert_eq!(occurrences, attempts, "{json}");
    let html = std::fs::read_to_string(&html_path).expect("html written");
    assert!(html.contains("\"stopped_by\": \"signal\""));
}

#[test]
fn an_unwritable_report_path_is_refused_before_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (option, path) in [
        ("--report-json", dir.path().join("missing/run.json")),
        ("--html", dir.path().to_path_buf()),
    ] {
        let out = run_mqload(
            &[
                "--host",
                "127.0.0.1",
                "--no-tls",
                "-t",
                "30s",
                option,
                &path.display().to_string(),
            ],
            &[],
            Duration::from_secs(10),
        );
        assert_eq!(out.code, Some(2), "{}", out.describe());
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {}", out.describe());
        assert!(lines[0].contains(option), "{}", lines[0]);
        assert!(out.elapsed < Duration::from_secs(3), "{}", out.describe());
    }
    // A Locust worker's master reports; a report file asked of a worker is a mistake.
    let json = dir.path().join("worker.json").display().to_string();
    let out = run_mqload(
        &["--worker", "--report-json", &json],
        &[],
        Duration::from_secs(10),
    );
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
    assert!(out.stderr.contains("--worker"), "{}", out.describe());
}

#[test]
fn a_run_on_the_built_in_broker_reports_the_brokers_own_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json_path = dir.path().join("builtin.json");
    let out = run_mqload(
        &[
            "-u",
            "3",
            "-r",
            "10",
            "-t",
            "3s",
            "--qos",
            "1",
            "--throughput",
            "10",
            "--payload-format",
            "raw",
            "--payload-bytes",
            "32",
            "--only-summary",
            "--report-json",
            &json_path.display().to_string(),
        ],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let json = read_json(&json_path);
    let published: u64 = json["stats"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["name"].as_str().is_some_and(|n| n.starts_with("publish")))
        .filter_map(|r| r["num_requests"].as_u64())
        .sum();
    assert!(published > 0, "{json}");
    let broker = &json["sections"]["built_in_broker"];
    assert_eq!(broker["messages_received"], published, "{json}");
    assert_eq!(broker["connections_accepted"], 3, "{json}");
}
