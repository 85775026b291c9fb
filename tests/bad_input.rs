//! Users' mistakes: each gives one clear line naming the fix and exit code 2, before any traffic.

mod common;

use std::time::Duration;

use common::{Pki, RunOutput, run_mqload};

const TIMEOUT: Duration = Duration::from_secs(20);

/// Runs mqload with `args` (after a valid TLS setup unless the args replace it).
fn run(args: &[&str]) -> RunOutput {
    run_mqload(args, &[], TIMEOUT)
}

fn assert_config_error(out: &RunOutput, needle: &str) {
    assert_eq!(out.code, Some(2), "{}", out.describe());
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(
        errors.len(),
        1,
        "one error line expected:\n{}",
        out.describe()
    );
    assert!(
        errors[0].contains(needle),
        "error line lacks {needle:?}:\n{}",
        out.describe()
    );
    assert!(
        out.stdout.is_empty(),
        "no report for a config error:\n{}",
        out.describe()
    );
}

fn tls_args(pki: &Pki) -> Vec<&str> {
    let mut args = vec!["--host", "127.0.0.1", "--port", "1"];
    args.extend(pki.client_args());
    args.extend(["-t", "1s"]);
    args
}

#[test]
fn zero_users() {
    let out = run(&["--host", "127.0.0.1", "--no-tls", "-u", "0"]);
    assert_config_error(&out, "--users");
}

#[test]
fn qos_three() {
    let out = run(&["--host", "127.0.0.1", "--no-tls", "--qos", "3"]);
    assert_config_error(&out, "use 0, 1 or 2");
    // The seed's variable is read too.
    let out = run_mqload(
        &["--host", "127.0.0.1", "--no-tls"],
        &[("LOCUST_MQTT_QOS", "3")],
        TIMEOUT,
    );
    assert_config_error(&out, "LOCUST_MQTT_QOS");
}

#[test]
fn bad_durations() {
    for (option, value) in [
        ("--run-time", "ten"),
        ("--stop-timeout", "5x"),
        ("--keepalive", "1h30"),
    ] {
        let out = run(&["--host", "127.0.0.1", "--no-tls", option, value]);
        assert_config_error(&out, "30s, 10m, 1h30m");
    }
}

#[test]
fn unresolvable_host() {
    let out = run(&["--host", "no-such-broker.invalid", "--no-tls"]);
    assert_config_error(&out, "cannot resolve broker host");
}

// No host is no longer a mistake: the run tests the built-in broker (tests/broker.rs).

#[test]
fn more_users_than_open_files() {
    let out = run(&["--host", "127.0.0.1", "--no-tls", "-u", "100000000"]);
    assert_config_error(&out, "open-file limit");
}

#[test]
fn missing_and_unreadable_tls_files() {
    if !common::require_tool("openssl") {
        return;
    }
    let pki = Pki::new(false);
    let missing = pki.dir.path().join("nope.pem");
    for option in ["--cafile", "--cert", "--key"] {
        let mut args = tls_args(&pki);
        let at = args.iter().position(|a| *a == option).expect("option") + 1;
        args[at] = common::utf8(&missing);
        let out = run(&args);
        assert_config_error(&out, &format!("cannot read the {}", &option[2..]));
    }
    // A file that exists but holds no PEM.
    let junk = pki.dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").expect("write junk");
    let mut args = tls_args(&pki);
    args[5] = common::utf8(&junk);
    assert_config_error(&run(&args), "holds no certificate");
    // A certificate without its key.
    let out = run(&["--host", "127.0.0.1", "--cert", common::utf8(&pki.cert)]);
    assert_config_error(&out, "give both --cert and --key");
}

#[test]
fn key_that_does_not_match_the_certificate() {
    if !common::require_tool("openssl") {
        return;
    }
    let pki = Pki::new(false);
    let other = Pki::new(false);
    let mut args = tls_args(&pki);
    args[9] = common::utf8(&other.key);
    assert_config_error(&run(&args), "does not match the client certificate");
}

#[test]
fn a_locustfile_is_accepted_with_one_warning() {
    // A bad QoS still fails, but only after the -f warning: scripts that pass -f keep working.
    let out = run(&[
        "-f",
        "locustfile.py",
        "--host",
        "127.0.0.1",
        "--no-tls",
        "--qos",
        "7",
    ]);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(
        out.stderr.contains("ignoring -f locustfile.py"),
        "{}",
        out.describe()
    );
}

#[test]
fn absurd_durations_and_rates_are_refused_not_a_hang() {
    // 1e19 s once overflowed the run's deadline and left mqload deaf to SIGTERM.
    let out = run(&["--host", "127.0.0.1", "--no-tls", "-t", "1e19"]);
    assert_config_error(&out, "30s, 10m, 1h30m");
    for (option, value) in [
        ("--throughput", "0"),
        ("--spawn-rate", "1e-300"),
        ("--throughput", "NaN"),
    ] {
        let out = run(&["--host", "127.0.0.1", "--no-tls", option, value]);
        assert_config_error(&out, "must be a number from");
    }
}

#[test]
fn what_mqtt_cannot_carry_is_refused_before_connecting() {
    let cases: &[(&[&str], &str)] = &[
        (&["--topic", "a/#"], "--topic cannot be sent over MQTT"),
        (&["--topic", ""], "--topic cannot be sent over MQTT"),
        (&["--password", "x"], "add --username"),
        (&["--client-id", "same", "-u", "2"], "add {i} or {rand}"),
        (&["--client-id", "id-{client_id}"], "unknown placeholder"),
        (&["--payload-kb", "4000000"], "more than mqload builds"),
        (
            &["--payload-bytes", "18446744073709551615"],
            "more than mqload builds",
        ),
        (&["--keepalive", "500ms"], "whole seconds"),
        (&["--ack-timeout", "0"], "would fail every attempt"),
        (&["--wake-interval", "1s"], "0ms to 100ms"),
        (&["--max-inflight", "0"], "--max-inflight 0"),
        (&["-u", "18446744073709551615"], "open-file limit"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["--host", "127.0.0.1", "--no-tls", "-t", "1s"];
        args.extend_from_slice(extra);
        assert_config_error(&run(&args), needle);
    }
}
