//! Locust's command line as mqload reads it: config files (each location, and file < env <
//! command line), `-H` URLs, Locust's switch values, refused flags, the README's table of
//! every `locust --help` flag checked against the binary, and `--json` in real Locust's shape.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{RunOutput, mqload_command, run_with_timeout};

/// mqload run in `cwd` with `HOME` = `home`, so only the test's config files are found.
fn run_in(cwd: &Path, home: &Path, args: &[&str], envs: &[(&str, &str)]) -> RunOutput {
    let mut cmd = mqload_command(args, envs);
    cmd.current_dir(cwd).env("HOME", home);
    run_with_timeout(cmd, Duration::from_secs(20))
}

/// A dry run's plan line: (users, host:port, "TLS" or "plain TCP").
fn plan_line(out: &RunOutput) -> (u64, String, String) {
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains(" users at "))
        .unwrap_or_else(|| panic!("no plan line\n{}", out.describe()));
    let users = line["mqload: ".len()..]
        .split(' ')
        .next()
        .and_then(|u| u.parse().ok())
        .expect("users");
    let target = line.split(" -> ").nth(1).expect("target");
    let (addr, rest) = target.split_once(" (").expect("addr");
    let tls = rest.split(')').next().expect("tls").to_owned();
    (users, addr.to_owned(), tls)
}

struct Dirs {
    _tmp: tempfile::TempDir,
    cwd: PathBuf,
    home: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path().join("work");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&cwd).expect("cwd");
    std::fs::create_dir_all(&home).expect("home");
    Dirs {
        _tmp: tmp,
        cwd,
        home,
    }
}

const DRY: &[&str] = &["--dry-run", "-t", "1s"];

fn dry(d: &Dirs, extra: &[&str], envs: &[(&str, &str)]) -> RunOutput {
    let mut args: Vec<&str> = DRY.to_vec();
    args.extend_from_slice(extra);
    run_in(&d.cwd, &d.home, &args, envs)
}

#[test]
fn each_config_file_location_is_read_and_later_files_win() {
    let d = dirs();
    let host = ["-H", "mqtt://127.0.0.1:1883"];
    let users = |out: &RunOutput| {
        assert_eq!(out.code, Some(0), "{}", out.describe());
        plan_line(out).0
    };
    assert_eq!(users(&dry(&d, &host, &[])), 1, "no file: the default");
    std::fs::write(d.home.join(".locust.conf"), "users = 2\n").expect("write");
    assert_eq!(users(&dry(&d, &host, &[])), 2, "~/.locust.conf");
    std::fs::write(d.cwd.join("locust.conf"), "# comment\nusers: 3\n").expect("write");
    assert_eq!(
        users(&dry(&d, &host, &[])),
        3,
        "./locust.conf beats ~/.locust.conf"
    );
    std::fs::write(
        d.cwd.join("pyproject.toml"),
        "[project]\nname = \"x\"\ndependencies = [\n  \"a\",\n]\n[tool.locust]\nusers = 4\n",
    )
    .expect("write");
    assert_eq!(
        users(&dry(&d, &host, &[])),
        4,
        "pyproject.toml beats locust.conf"
    );
    std::fs::write(d.cwd.join("extra.conf"), "--users 5\n").expect("write");
    assert_eq!(
        users(&dry(
            &d,
            &[&host[..], &["--config", "extra.conf"]].concat(),
            &[]
        )),
        5,
        "--config beats the files Locust finds itself"
    );
    std::fs::write(d.cwd.join("extra.toml"), "[tool.locust]\nusers = 6\n").expect("write");
    assert_eq!(
        users(&dry(
            &d,
            &[&host[..], &["--config", "extra.toml"]].concat(),
            &[]
        )),
        6,
        "a .toml --config is read as TOML"
    );
}

#[test]
fn files_lose_to_the_environment_which_loses_to_the_command_line() {
    let d = dirs();
    std::fs::write(
        d.cwd.join("locust.conf"),
        "users = 3\nhost = mqtt://127.0.0.1:1001\nonly-summary = true\n",
    )
    .expect("write");
    let out = dry(&d, &[], &[]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert_eq!(
        plan_line(&out),
        (3, "127.0.0.1:1001".into(), "plain TCP".into())
    );
    let env = [
        ("LOCUST_USERS", "7"),
        ("LOCUST_HOST", "mqtt://127.0.0.1:1002"),
    ];
    let out = dry(&d, &[], &env);
    assert_eq!(
        plan_line(&out),
        (7, "127.0.0.1:1002".into(), "plain TCP".into())
    );
    let out = dry(&d, &["-u", "9", "-H", "mqtts://127.0.0.1:1003"], &env);
    assert_eq!(plan_line(&out), (9, "127.0.0.1:1003".into(), "TLS".into()));
    // LOCUST_HOST (Locust's -H) beats the seed's LOCUST_MQTT_HOST.
    let out = dry(
        &d,
        &[],
        &[
            ("LOCUST_MQTT_HOST", "127.0.0.9"),
            ("LOCUST_HOST", "127.0.0.1:1004"),
        ],
    );
    assert_eq!(plan_line(&out).1, "127.0.0.1:1004");
    // A false switch in the environment beats a true one in a file (configargparse).
    std::fs::write(d.cwd.join("locust.conf"), "worker = true\n").expect("write");
    let out = dry(&d, &["-H", "127.0.0.1"], &[]);
    assert_eq!(
        out.code,
        Some(2),
        "a worker refuses --dry-run: {}",
        out.describe()
    );
    assert!(out.stderr.contains("--worker"), "{}", out.describe());
    let out = dry(&d, &["-H", "127.0.0.1"], &[("LOCUST_MODE_WORKER", "false")]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
}

#[test]
fn host_urls_set_host_port_and_tls() {
    let d = dirs();
    for (host, addr, tls) in [
        ("mqtts://127.0.0.1:8884", "127.0.0.1:8884", "TLS"),
        ("mqtts://127.0.0.1", "127.0.0.1:8883", "TLS"),
        ("mqtt://127.0.0.1:1884", "127.0.0.1:1884", "plain TCP"),
        ("mqtt://127.0.0.1", "127.0.0.1:1883", "plain TCP"),
        ("127.0.0.1:1885", "127.0.0.1:1885", "TLS"),
        ("[::1]:1886", "[::1]:1886", "TLS"),
    ] {
        for flag in ["-H", "--host"] {
            let out = dry(&d, &[flag, host], &[]);
            assert_eq!(out.code, Some(0), "{host}: {}", out.describe());
            let (_, got_addr, got_tls) = plan_line(&out);
            assert!(
                got_addr.ends_with(addr.trim_start_matches("[::1]")),
                "{host}: {got_addr}"
            );
            assert_eq!(got_tls, tls, "{host}");
        }
    }
    // The URL beats the seed's exported port and a file's no-tls; typed options conflict.
    let out = dry(
        &d,
        &["-H", "mqtt://127.0.0.1:1887"],
        &[("LOCUST_MQTT_PORT", "8883")],
    );
    assert_eq!(plan_line(&out).1, "127.0.0.1:1887", "{}", out.describe());
    let out = dry(&d, &["-H", "mqtts://127.0.0.1"], &[("MQLOAD_NO_TLS", "1")]);
    assert_eq!(plan_line(&out).2, "TLS", "{}", out.describe());
    let out = dry(&d, &["-H", "127.0.0.1", "--port", "1888"], &[]);
    assert_eq!(plan_line(&out).1, "127.0.0.1:1888", "{}", out.describe());
    for bad in [
        vec!["-H", "https://127.0.0.1"],
        vec!["-H", "mqtt://u:p@127.0.0.1"],
        vec!["-H", "mqtts://127.0.0.1", "--no-tls"],
        vec!["-H", "mqtt://127.0.0.1:1883", "--port", "1884"],
    ] {
        let out = dry(&d, &bad, &[]);
        assert_eq!(out.code, Some(2), "{bad:?}: {}", out.describe());
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
        assert!(out.stderr.contains("--"), "{}", out.describe());
    }
}

#[test]
fn switches_take_locusts_values_everywhere() {
    let d = dirs();
    let host = ["-H", "mqtt://127.0.0.1"];
    for value in ["1", "true", "TRUE", "yes", "on"] {
        let out = dry(&d, &host, &[("LOCUST_MODE_WORKER", value)]);
        assert_eq!(out.code, Some(2), "{value}: {}", out.describe());
        assert!(
            out.stderr
                .contains("a --worker's run comes from its Locust master"),
            "LOCUST_MODE_WORKER={value} starts a worker: {}",
            out.describe()
        );
    }
    for value in ["0", "false", "No", "off"] {
        let out = dry(&d, &host, &[("LOCUST_MODE_WORKER", value)]);
        assert_eq!(out.code, Some(0), "{value}: {}", out.describe());
    }
    for (name, value) in [("LOCUST_MODE_WORKER", "y"), ("LOCUST_HEADLESS", "2")] {
        let out = dry(&d, &host, &[(name, value)]);
        assert_eq!(out.code, Some(2), "{name}={value}: {}", out.describe());
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
    }
    for value in ["yes", "1", "true"] {
        let out = dry(
            &d,
            &host,
            &[("MQLOAD_NO_TLS", value), ("LOCUST_HOST", "127.0.0.1")],
        );
        assert_eq!(plan_line(&out).2, "plain TCP", "MQLOAD_NO_TLS={value}");
    }
    std::fs::write(d.cwd.join("locust.conf"), "no-tls = on\nheadless\n").expect("write");
    let out = dry(&d, &["-H", "127.0.0.1"], &[]);
    assert_eq!(plan_line(&out).2, "plain TCP", "{}", out.describe());
    std::fs::write(d.cwd.join("locust.conf"), "headless = maybe\n").expect("write");
    let out = dry(&d, &host, &[]);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(
        out.stderr.contains("locust.conf line 1"),
        "{}",
        out.describe()
    );
}

#[test]
fn config_file_mistakes_are_one_line_naming_the_file() {
    let d = dirs();
    let host = ["-H", "mqtt://127.0.0.1"];
    for (file, text, expect) in [
        ("locust.conf", "no-such-option = 1\n", "no-such-option"),
        ("locust.conf", "web-port = 8089\n", "not supported"),
        ("locust.conf", "users = many\n", "locust.conf"),
        ("locust.conf", "spawn_rate = 2\n", "spawn_rate"),
        (
            "pyproject.toml",
            "[tool.locust]\nusers = { a = 1 }\n",
            "pyproject.toml",
        ),
        (
            "pyproject.toml",
            "[tool.locust]\ntags = [\n\"a\"]\n",
            "several lines",
        ),
    ] {
        std::fs::write(d.cwd.join(file), text).expect("write");
        let out = dry(&d, &host, &[]);
        std::fs::remove_file(d.cwd.join(file)).expect("remove");
        assert_eq!(out.code, Some(2), "{text}: {}", out.describe());
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
        assert!(out.stderr.contains(expect), "{expect}: {}", out.describe());
    }
    let out = dry(
        &d,
        &[&host[..], &["--config", "missing.conf"]].concat(),
        &[],
    );
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(out.stderr.contains("missing.conf"), "{}", out.describe());
}

#[test]
fn unknown_and_unsupported_flags_are_one_line_and_exit_2() {
    let d = dirs();
    for (args, names) in [
        (vec!["--web-port", "8089"], "--web-port"),
        (vec!["-P", "8089"], "--web-port"),
        (vec!["--master"], "--master"),
        (vec!["--tags", "a"], "--tags"),
        (vec!["--no-such-flag"], "--no-such-flag"),
        (vec!["MyUser"], "MyUser"),
    ] {
        let out = dry(&d, &args, &[]);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.describe());
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
        assert!(out.stderr.contains(names), "{}", out.describe());
    }
    for args in [vec!["-L", "LOUD"], vec!["--loglevel", "verbose"]] {
        let out = dry(&d, &[&args[..], &["-H", "127.0.0.1"]].concat(), &[]);
        assert_eq!(
            out.code,
            Some(2),
            "Locust's levels only: {}",
            out.describe()
        );
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
    }
    let blocker = d.cwd.join("a-file");
    std::fs::write(&blocker, "").expect("write");
    let under_a_file = blocker.join("stats").display().to_string();
    let out = dry(&d, &["-H", "127.0.0.1", "--json-file", &under_a_file], &[]);
    assert_eq!(
        out.code,
        Some(2),
        "checked before the run: {}",
        out.describe()
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
    assert!(out.stderr.contains("--json-file"), "{}", out.describe());
    let out = dry(&d, &["-H", "127.0.0.1"], &[("LOCUST_WEB_PORT", "8089")]);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(out.stderr.contains("LOCUST_WEB_PORT"), "{}", out.describe());
    let out = dry(&d, &["-H", "127.0.0.1"], &[("LOCUST_MODE_MASTER", "0")]);
    assert_eq!(
        out.code,
        Some(0),
        "a false switch is fine: {}",
        out.describe()
    );
}

/// The README's table of Locust flags: (short, long, status word).
fn readme_table() -> Vec<(Option<String>, String, String)> {
    let readme = std::fs::read_to_string(common::repo_root().join("README.md")).expect("README");
    let start = readme
        .find("| Locust flag | mqload |")
        .expect("the Locust flag table");
    readme[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let names: Vec<String> = cells[1]
                .split(", ")
                .map(|n| n.trim_matches('`').to_owned())
                .collect();
            let long = names
                .last()
                .expect("long")
                .trim_start_matches("--")
                .to_owned();
            let short = (names.len() > 1).then(|| names[0].clone());
            let status = if cells[2].starts_with("supported") {
                "supported"
            } else if cells[2].starts_with("accepted and ignored") {
                "ignored"
            } else if cells[2].starts_with("not supported") {
                "unsupported"
            } else {
                panic!("unknown status in {line}")
            };
            (short, long, status.to_owned())
        })
        .collect()
}

/// A value that makes sense for each value-taking flag mqload accepts.
fn sample_value(long: &str, dir: &Path) -> Option<String> {
    let path = |name: &str| dir.join(name).display().to_string();
    Some(match long {
        "locustfile" => "locustfile.py".into(),
        "config" => {
            std::fs::write(dir.join("c.conf"), "users = 1\n").expect("write");
            path("c.conf")
        }
        "host" => "mqtt://127.0.0.1:1883".into(),
        "users" | "processes" | "exit-code-on-error" | "stop-timeout" | "spawn-rate" => "1".into(),
        "run-time" => "1s".into(),
        "master-host" => "127.0.0.1".into(),
        "master-port" => "5557".into(),
        "csv" => path("csv"),
        "html" => path("r.html"),
        "json-file" => path("j"),
        "loglevel" => "debug".into(),
        "logfile" => path("log.txt"),
        "profile" => "p".into(),
        _ => return None,
    })
}

/// Every flag of `locust --help`, from the pinned Locust.
fn locust_help_flags() -> Option<Vec<String>> {
    let locust = common::repo_root().join("target/locust-venv/bin/locust");
    if !locust.exists() {
        assert!(
            std::env::var("CI").is_err(),
            "CI=true needs target/locust-venv (scripts/test.sh installs it)"
        );
        eprintln!("skipping the locust --help comparison: no target/locust-venv");
        return None;
    }
    let out = Command::new(locust)
        .arg("--help")
        .output()
        .expect("locust --help");
    let help = String::from_utf8_lossy(&out.stdout);
    let mut flags: Vec<String> = Vec::new();
    for line in help.lines() {
        // Option lines start at column 2; the description follows after two spaces.
        let Some(line) = line.strip_prefix("  -") else {
            continue;
        };
        let names = line.split("  ").next().unwrap_or("");
        for word in format!("-{names}").split([' ', ',']) {
            if let Some(long) = word.strip_prefix("--")
                && !long.is_empty()
                && !flags.iter().any(|f| f == long)
            {
                flags.push(long.to_owned());
            }
        }
    }
    Some(flags)
}

#[test]
fn the_readme_table_lists_every_locust_flag_and_matches_the_binary() {
    let table = readme_table();
    if let Some(help) = locust_help_flags() {
        let listed: Vec<&str> = table.iter().map(|(_, l, _)| l.as_str()).collect();
        for flag in &help {
            assert!(
                listed.contains(&flag.as_str()),
                "--{flag} of locust --help is not in the README table"
            );
        }
        assert_eq!(
            listed.len(),
            help.len(),
            "the table lists only Locust's flags"
        );
    }
    let d = dirs();
    for (short, long, status) in &table {
        for name in short.iter().cloned().chain([format!("--{long}")]) {
            let mut args: Vec<String> = vec![name.clone()];
            if let Some(v) = sample_value(long, &d.cwd) {
                args.push(v);
            } else if status == "unsupported" {
                args.push("1".into());
            }
            if !matches!(long.as_str(), "host" | "help" | "version") {
                args.extend(["-H".into(), "127.0.0.1".into()]);
            }
            if long == "csv-full-history" {
                // Locust, and mqload, refuse the switch without --csv.
                args.extend(["--csv".into(), d.cwd.join("out").display().to_string()]);
            }
            args.push("--dry-run".into());
            if long != "run-time" {
                args.extend(["-t".into(), "1s".into()]);
            }
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = run_in(&d.cwd, &d.home, &argv, &[]);
            let said = format!("{name}: {}", out.describe());
            match status.as_str() {
                "unsupported" => {
                    assert_eq!(out.code, Some(2), "{said}");
                    assert_eq!(out.stderr.lines().count(), 1, "{said}");
                    assert!(out.stderr.contains(&format!("--{long}")), "{said}");
                    assert!(out.stderr.contains("not supported"), "{said}");
                }
                "ignored" if long == "locustfile" => {
                    assert_eq!(out.code, Some(0), "{said}");
                    assert!(out.stderr.contains("ignoring -f"), "{said}");
                }
                "ignored" => {
                    assert_eq!(out.code, Some(0), "{said}");
                    assert!(
                        out.stderr
                            .contains(&format!("--{long} is accepted and ignored")),
                        "{said}"
                    );
                }
                _ if long == "worker" => {
                    // A worker is supported; it only refuses --dry-run, by name.
                    assert_eq!(out.code, Some(2), "{said}");
                    assert!(out.stderr.contains("a --worker's run comes from"), "{said}");
                }
                _ => {
                    assert_eq!(out.code, Some(0), "{said}");
                    assert!(!out.stderr.contains("not supported"), "{said}");
                    assert!(!out.stderr.contains("accepted and ignored"), "{said}");
                    if long == "logfile" {
                        let log = std::fs::read_to_string(d.cwd.join("log.txt")).expect("log");
                        assert!(
                            log.contains("--dry-run"),
                            "stderr went to the log file: {log}"
                        );
                    }
                }
            }
        }
    }
}

/// The first JSON array printed on its own line in `stdout`.
fn json_list(stdout: &str) -> Vec<serde_json::Value> {
    let start = stdout
        .match_indices('[')
        .map(|(i, _)| i)
        .find(|&i| i == 0 || stdout.as_bytes()[i - 1] == b'\n')
        .unwrap_or_else(|| panic!("no JSON list in stdout:\n{stdout}"));
    let mut stream =
        serde_json::Deserializer::from_str(&stdout[start..]).into_iter::<serde_json::Value>();
    match stream.next() {
        Some(Ok(serde_json::Value::Array(items))) => items,
        other => panic!("not a JSON list: {other:?}\n{stdout}"),
    }
}

/// Key order and JSON type of each field of an entry.
fn shape(entry: &serde_json::Value) -> Vec<(String, &'static str)> {
    let object = entry.as_object().expect("an entry is an object");
    object
        .iter()
        .map(|(k, v)| {
            let kind = match v {
                serde_json::Value::Null => "null",
                serde_json::Value::Bool(_) => "bool",
                serde_json::Value::Number(n) if n.is_f64() => "float",
                serde_json::Value::Number(_) => "int",
                serde_json::Value::String(_) => "string",
                serde_json::Value::Array(_) => "array",
                serde_json::Value::Object(_) => "object",
            };
            (k.clone(), kind)
        })
        .collect()
}

#[test]
fn json_prints_the_final_stats_in_locusts_shape() {
    let locust = common::repo_root().join("target/locust-venv/bin/locust");
    if !locust.exists() {
        assert!(
            std::env::var("CI").is_err(),
            "CI=true needs target/locust-venv"
        );
        eprintln!("skipping: no target/locust-venv");
        return;
    }
    let _serial = common::serial();
    let d = dirs();
    // A locustfile that reports timed MQTT-typed requests, as the seed's MQTT user does.
    std::fs::write(
        d.cwd.join("locustfile.py"),
        "from locust import User, task, constant_throughput\n\
         class Mqtt(User):\n    wait_time = constant_throughput(20)\n    @task\n    def publish(self):\n\
         \x20       self.environment.events.request.fire(request_type='MQTT', name='publish:0:t',\n\
         \x20           response_time=1.25, response_length=32, exception=None, context={})\n",
    )
    .expect("locustfile");
    let mut cmd = Command::new(&locust);
    cmd.current_dir(&d.cwd).env("HOME", &d.home).args([
        "-f",
        "locustfile.py",
        "--headless",
        "-u",
        "2",
        "-r",
        "10",
        "-t",
        "2s",
        "--json",
        "--only-summary",
    ]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LOCUST_") {
            cmd.env_remove(name);
        }
    }
    let real = run_with_timeout(cmd, Duration::from_secs(60));
    assert_eq!(real.code, Some(0), "{}", real.describe());
    let theirs = json_list(&real.stdout);
    assert!(!theirs.is_empty(), "{}", real.describe());

    let json_file = d.cwd.join("out/stats");
    let json_file_arg = json_file.display().to_string();
    let out = run_in(
        &d.cwd,
        &d.home,
        &[
            "-u",
            "2",
            "-r",
            "10",
            "-t",
            "2s",
            "--throughput",
            "20",
            "--payload-format",
            "raw",
            "--payload-bytes",
            "32",
            "--json",
            "--json-file",
            &json_file_arg,
            "--only-summary",
        ],
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let ours = json_list(&out.stdout);
    let publish = ours
        .iter()
        .find(|e| e["name"].as_str().is_some_and(|n| n.starts_with("publish")))
        .unwrap_or_else(|| panic!("a publish entry: {}", out.describe()));
    assert_eq!(
        shape(publish),
        shape(&theirs[0]),
        "same keys, order and types as Locust's"
    );
    assert!(publish["num_requests"].as_u64().is_some_and(|n| n > 0));
    let buckets: u64 = publish["response_times"]
        .as_object()
        .expect("response_times")
        .values()
        .filter_map(serde_json::Value::as_u64)
        .sum();
    assert_eq!(
        Some(buckets),
        publish["num_requests"].as_u64(),
        "every publish is in a bucket"
    );
    let written = std::fs::read_to_string(d.cwd.join("out/stats.json"))
        .expect("FILE.json, as Locust names it");
    let from_file: Vec<serde_json::Value> = serde_json::from_str(&written).expect("json");
    assert_eq!(from_file, ours, "--json-file holds what --json printed");
}

/// Publish requests in a run's `--json` output.
fn published(out: &RunOutput) -> u64 {
    json_list(&out.stdout)
        .iter()
        .filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with("publish")))
        .filter_map(|e| e["num_requests"].as_u64())
        .sum()
}

#[test]
fn reset_stats_forgets_the_ramp_up_once_the_last_user_started() {
    let _serial = common::serial();
    let d = dirs();
    // User 0 starts at 0 s and publishes from 1 s; user 1 starts at 8 s (-r 0.125): without
    // the reset about 100 publishes are counted, with it only those after 8 s (about 30, and
    // up to one more second of deltas).
    let run = |extra: &[&str]| {
        let mut args = vec![
            "-u",
            "2",
            "-r",
            "0.125",
            "-t",
            "10s",
            "--throughput",
            "10",
            "--payload-format",
            "raw",
            "--payload-bytes",
            "16",
            "--json",
            "--only-summary",
        ];
        args.extend_from_slice(extra);
        let out = run_in(&d.cwd, &d.home, &args, &[]);
        assert_eq!(out.code, Some(0), "{}", out.describe());
        out
    };
    let whole = run(&[]);
    let reset = run(&["--reset-stats"]);
    assert!(
        reset.stderr.contains("resetting the statistics"),
        "{}",
        reset.describe()
    );
    let (whole, after) = (published(&whole), published(&reset));
    assert!(whole >= 70, "the whole run: {whole}");
    assert!(
        after > 0 && after * 2 < whole,
        "after the reset {after}, whole run {whole}"
    );
}
