//! TLS failures against a real mosquitto (client certificate required), each a named failure in
//! the error table with rustls's reason, and a never-connected line that says what to fix:
//! unknown CA, wrong host name, expired broker certificate, client certificate refused or absent.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Broker, Pki, broker_args, run_mqload};

/// Runs one user for 2 s with `args` (broker options first), then checks the run failed,
/// the error table names `reason`, and the never-connected line carries `hint`.
fn expect_named_failure(args: Vec<String>, reason: &str, hint: &str) {
    let mut args = args;
    args.extend(
        [
            "-u",
            "1",
            "-t",
            "2s",
            "--connect-timeout",
            "1s",
            "--only-summary",
        ]
        .map(String::from),
    );
    let out = run_mqload(&args, &[], Duration::from_secs(20));
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(out.elapsed < Duration::from_secs(8), "{}", out.describe());
    let table_line = out
        .stdout
        .lines()
        .find(|l| l.contains("MQTT connect: TLS: "))
        .unwrap_or_else(|| panic!("no TLS failure in the error table:\n{}", out.describe()));
    assert!(table_line.contains(reason), "{table_line}");
    eprintln!("error table: {table_line}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("no connection to the broker succeeded"))
        .unwrap_or_else(|| panic!("no never-connected line:\n{}", out.describe()));
    assert!(
        line.contains(reason) && line.contains(hint),
        "{line}\n{}",
        out.describe()
    );
}

/// Replaces `option`'s value in `args` by `value`, or removes the option with `None`.
fn with_option(mut args: Vec<String>, option: &str, value: Option<&Path>) -> Vec<String> {
    let at = args
        .iter()
        .position(|a| a == option)
        .unwrap_or_else(|| panic!("{option} not in {args:?}"));
    match value {
        Some(v) => args[at + 1] = v.to_string_lossy().into_owned(),
        None => {
            args.drain(at..at + 2);
        }
    }
    args
}

#[test]
fn a_broker_certificate_from_an_unknown_ca_names_the_cafile() {
    if !common::require_broker_tools() {
        return;
    }
    let (pki, other) = (Pki::new(true), Pki::new(true));
    let broker = Broker::start(&pki);
    let args = with_option(broker_args(&pki, &broker), "--cafile", Some(&other.ca));
    // Both test CAs have the same name, so rustls finds an issuer by name and then reports
    // BadSignature (UnknownIssuer for a CA of another name): the same fix either way.
    expect_named_failure(
        args,
        "invalid peer certificate: ",
        "not signed by --cafile: pass the CA that signed it",
    );
}

#[test]
fn a_broker_certificate_for_another_name_names_the_server_name() {
    if !common::require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    let mut args = broker_args(&pki, &broker);
    args.extend(["--server-name", "not-this-broker.test"].map(String::from));
    expect_named_failure(
        args,
        "certificate not valid for name \"not-this-broker.test\"",
        "--server-name",
    );
}

#[test]
fn an_expired_broker_certificate_is_named() {
    if !common::require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    expire_broker_certificate(&pki);
    let broker = Broker::start(&pki);
    expect_named_failure(
        broker_args(&pki, &broker),
        "invalid peer certificate: expired",
        "the broker's certificate has expired",
    );
}

#[test]
fn a_client_certificate_the_broker_does_not_trust_is_named() {
    if !common::require_broker_tools() {
        return;
    }
    let (pki, other) = (Pki::new(true), Pki::new(true));
    let broker = Broker::start(&pki);
    let args = with_option(broker_args(&pki, &broker), "--cert", Some(&other.cert));
    let args = with_option(args, "--key", Some(&other.key));
    expect_named_failure(
        args,
        "received fatal alert",
        "the broker refused the client certificate: pass --cert/--key signed by a CA it trusts",
    );
}

#[test]
fn a_missing_client_certificate_is_named() {
    if !common::require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    let args = with_option(broker_args(&pki, &broker), "--cert", None);
    let args = with_option(args, "--key", None);
    expect_named_failure(
        args,
        "received fatal alert: CertificateRequired",
        "pass --cert and --key",
    );
}

/// Re-signs `pki`'s broker certificate (same key, same names) with a validity of zero days:
/// `notAfter` is the signing second, so it has expired by the time mqload checks it.
fn expire_broker_certificate(pki: &Pki) {
    let dir = pki.dir.path();
    std::fs::write(
        dir.join("expired.cnf"),
        "[ server_ext ]\n\
         basicConstraints = critical,CA:FALSE\n\
         keyUsage = critical,digitalSignature\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("write extensions");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-new",
        "-key",
        "broker.key",
        "-subj",
        "/CN=localhost",
        "-out",
        "expired.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-sha256",
        "-days",
        "0",
        "-in",
        "expired.csr",
        "-CA",
        "root_ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "4242",
        "-extfile",
        "expired.cnf",
        "-extensions",
        "server_ext",
        "-out",
        "broker.crt",
    ]);
    // notAfter is this second: wait until it is strictly in the past.
    std::thread::sleep(Duration::from_millis(1100));
}
