//! Checks the test harness itself against a real mosquitto, so that when an
//! mqload integration test fails, the harness is not the suspect.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Broker, Pki, Subscriber};

fn openssl_verifies(pki: &Pki, purpose: &str, cert: &std::path::Path) {
    let out = Command::new("openssl")
        .args(["verify", "-purpose", purpose, "-CAfile"])
        .arg(&pki.ca)
        .arg(cert)
        .output()
        .expect("run openssl verify");
    assert!(
        out.status.success(),
        "openssl verify -purpose {purpose} {cert:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn local_ca_makes_chains_that_verify() {
    if !common::require_tool("openssl") {
        return;
    }
    for ecdsa in [false, true] {
        let pki = Pki::new(ecdsa);
        for file in [
            &pki.ca,
            &pki.cert,
            &pki.key,
            &pki.broker_cert,
            &pki.broker_key,
        ] {
            assert!(file.is_file(), "local-ca.sh did not make {file:?}");
        }
        openssl_verifies(&pki, "sslserver", &pki.broker_cert);
        openssl_verifies(&pki, "sslclient", &pki.cert);
        let text = Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&pki.broker_cert)
            .output()
            .expect("run openssl x509");
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(
            text.contains("Version: 3"),
            "broker certificate is not v3:\n{text}"
        );
        assert!(
            text.contains("DNS:localhost") && text.contains("IP Address:127.0.0.1"),
            "broker certificate lacks the SAN webpki needs:\n{text}"
        );
    }
}

#[test]
fn broker_delivers_and_counts_tls_publishes() {
    if !common::require_broker_tools() {
        return;
    }
    let pki = Pki::new(false);
    let broker = Broker::start(&pki);
    let before = common::sys_messages_received(&broker);
    let subscriber = Subscriber::start(&broker, "harness/#");

    let payloads: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"n": {i}, "note": "tab\there"}}"#))
        .collect();
    let payload_refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
    common::mosquitto_pub_tls(&pki, &broker, "harness/t1", 1, &payload_refs);

    let got = subscriber.wait_for(10, Duration::from_secs(5));
    // Give a stray 11th message a moment to show up before counting exactly.
    std::thread::sleep(Duration::from_millis(200));
    let got_all = subscriber.stop();
    assert_eq!(
        got.len(),
        10,
        "subscriber got {} of 10\nbroker log:\n{}",
        got.len(),
        broker.log()
    );
    assert_eq!(
        got_all.len(),
        10,
        "subscriber got extra messages: {got_all:?}"
    );
    for (message, sent) in got_all.iter().zip(&payloads) {
        assert_eq!(message.topic, "harness/t1");
        assert_eq!(message.payload, sent.as_bytes());
    }

    let after = common::wait_sys_messages_received(&broker, before + 10, Duration::from_secs(5));
    assert!(
        after >= before + 10,
        "$SYS received counter went from {before} to {after}, expected +10\n{}",
        broker.log()
    );
}

#[test]
fn broker_requires_a_client_certificate() {
    if !common::require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    let broker = Broker::start(&pki);
    let out = Command::new(common::tool_path("mosquitto_pub").expect("mosquitto_pub"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port.to_string(),
            "--cafile",
        ])
        .arg(&pki.ca)
        .args(["-q", "1", "-t", "harness/nocert", "-m", "x"])
        .output()
        .expect("run mosquitto_pub");
    assert!(
        !out.status.success(),
        "a client without a certificate got in:\n{}",
        broker.log()
    );
    // And with the certificate (ECDSA this time) it does.
    common::mosquitto_pub_tls(&pki, &broker, "harness/cert", 1, &["ok"]);
}

#[test]
fn broker_restarts_on_the_same_ports() {
    if !common::require_broker_tools() {
        return;
    }
    let pki = Pki::new(false);
    let mut broker = Broker::start(&pki);
    let (port, plain_port) = (broker.port, broker.plain_port);
    broker.kill();
    assert!(!broker.is_running());
    broker.restart();
    assert!(broker.is_running());
    assert_eq!((broker.port, broker.plain_port), (port, plain_port));
    let subscriber = Subscriber::start(&broker, "harness/again");
    common::mosquitto_pub_tls(&pki, &broker, "harness/again", 1, &["after restart"]);
    let got = subscriber.wait_for(1, Duration::from_secs(5));
    assert_eq!(
        got.len(),
        1,
        "nothing delivered after restart\n{}",
        broker.log()
    );
}

#[test]
fn subscriber_keeps_binary_payloads_exact() {
    if !common::require_broker_tools() {
        return;
    }
    let pki = Pki::new(false);
    let broker = Broker::start(&pki);
    let subscriber = Subscriber::start(&broker, "harness/bin");
    // A payload with a newline, a tab and non-UTF-8 bytes, from a file (-f).
    let payload: Vec<u8> = vec![0x00, b'\n', 0xff, b'\t', 0x80, b'a'];
    let file = pki.dir.path().join("payload.bin");
    std::fs::write(&file, &payload).expect("write payload");
    let status = Command::new(common::tool_path("mosquitto_pub").expect("mosquitto_pub"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.plain_port.to_string(),
            "-q",
            "1",
            "-t",
            "harness/bin",
            "-f",
        ])
        .arg(&file)
        .status()
        .expect("run mosquitto_pub");
    assert!(status.success());
    let got = subscriber.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, payload);
}

#[test]
fn runner_captures_output_and_enforces_timeouts() {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
    let run = common::run_with_timeout(cmd, Duration::from_secs(5));
    assert_eq!(run.code, Some(3), "{}", run.describe());
    assert_eq!(run.stdout, "out\n");
    assert_eq!(run.stderr, "err\n");
    assert!(!run.timed_out);

    let mut cmd = Command::new("sleep");
    cmd.arg("10");
    let run = common::run_with_timeout(cmd, Duration::from_millis(200));
    assert!(run.timed_out, "{}", run.describe());
    assert_eq!(run.code, None);
    assert!(run.elapsed < Duration::from_secs(5));
}

#[test]
fn mqload_binary_runs() {
    assert!(common::mqload_bin().is_file());
    let run = common::run_mqload(
        &["--help"],
        &[("LOCUST_MQTT_QOS", "1")],
        Duration::from_secs(30),
    );
    assert!(!run.timed_out, "{}", run.describe());
    assert_eq!(run.code, Some(0), "{}", run.describe());
}

/// An MQTT 3.1.1 CONNECT (clean session, keepalive 60 s) for `client_id`.
fn connect_packet(client_id: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60];
    body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
    body.extend_from_slice(client_id.as_bytes());
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend(body);
    packet
}

/// webpki is stricter than openssl (v3 only, SAN required, EKU checked):
/// load the local PKI into rustls exactly as mqload will, handshake with the
/// broker by name and by IP, and get a CONNACK back.
#[test]
fn rustls_accepts_the_local_pki() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use std::io::{Read, Write};
    use std::sync::Arc;

    if !common::require_broker_tools() {
        return;
    }
    for ecdsa in [false, true] {
        let pki = Pki::new(ecdsa);
        let broker = Broker::start(&pki);
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&pki.ca).expect("read root_ca.pem") {
            roots
                .add(cert.expect("parse root_ca.pem"))
                .expect("add CA to roots");
        }
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.cert)
            .expect("read certificate.pem.crt")
            .collect::<Result<_, _>>()
            .expect("parse certificate.pem.crt");
        let key = PrivateKeyDer::from_pem_file(&pki.key).expect("parse private.pem.key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .expect("client certificate and key accepted by rustls");
        let config = Arc::new(config);

        for name in ["localhost", "127.0.0.1"] {
            let server_name = ServerName::try_from(name).expect("server name").to_owned();
            let conn = rustls::ClientConnection::new(config.clone(), server_name)
                .expect("client connection");
            let sock = std::net::TcpStream::connect(("127.0.0.1", broker.port))
                .expect("connect to broker");
            sock.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("read timeout");
            let mut tls = rustls::StreamOwned::new(conn, sock);
            let context = format!("ecdsa={ecdsa} server name {name}");
            tls.write_all(&connect_packet("harness-rustls"))
                .unwrap_or_else(|e| {
                    panic!(
                        "{context}: TLS handshake or write failed: {e}\n{}",
                        broker.log()
                    )
                });
            let mut connack = [0u8; 4];
            tls.read_exact(&mut connack)
                .unwrap_or_else(|e| panic!("{context}: no CONNACK: {e}\n{}", broker.log()));
            assert_eq!(connack, [0x20, 2, 0, 0], "{context}: CONNACK refused");
        }
    }
}
