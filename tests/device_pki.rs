//! A certificate per device, against a real broker: mosquitto with `require_certificate
//! true`, `use_identity_as_username true` and the ACL `pattern write devices/%u/#`. Devices
//! whose certificates `mqload::pki` made (under a CA it made, under a given CA, and for an
//! RSA-2048 key made by openssl) publish to their own topics; a device using its
//! certificate on another device's topic is refused (PUBACK 0x87 over MQTT 5), and a
//! certificate from a CA the broker does not trust cannot connect.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{Broker, Pki, Subscriber};
use mqload::pki::devices::{self, DeviceCa};

const WAIT: Duration = Duration::from_secs(5);

/// Rewrites the broker's config for per-device identities and restarts it (`user root`,
/// as scripts/mosquitto-conf.sh has, so it can read the temp files). The TLS
/// listener trusts `client_cas`; the plain one serves the test's observer.
fn configure_identity_broker(broker: &mut Broker, pki: &Pki, client_cas: &Path, dir: &Path) {
    let acl = dir.join("acl");
    fs::write(
        &acl,
        "# anonymous observers read everything under devices/\n\
         topic read devices/#\n\
         # a device writes only under its own certificate's CN\n\
         pattern write devices/%u/#\n",
    )
    .expect("write the ACL");
    let pki_dir = pki.dir.path();
    let conf = format!(
        "per_listener_settings false\n\
         allow_anonymous true\n\
         user root\n\
         persistence false\n\
         acl_file {acl}\n\
         log_dest file {log}\n\
         log_type error\nlog_type warning\nlog_type notice\nlog_type information\nlog_type subscribe\n\
         listener {tls_port} 127.0.0.1\n\
         cafile {cas}\n\
         certfile {server_cert}\n\
         keyfile {server_key}\n\
         require_certificate true\n\
         use_identity_as_username true\n\
         listener {plain_port} 127.0.0.1\n",
        acl = acl.display(),
        log = broker.log_path().display(),
        tls_port = broker.port,
        cas = client_cas.display(),
        server_cert = pki_dir.join("broker.crt").display(),
        server_key = pki_dir.join("broker.key").display(),
        plain_port = broker.plain_port,
    );
    fs::write(broker.conf_path(), conf).expect("write mosquitto.conf");
    broker.restart();
}

/// `mosquitto_pub` over MQTT 5 at QoS 1 with a device's certificate and key.
fn publish_as(
    pki: &Pki,
    broker: &Broker,
    cert: &Path,
    key: &Path,
    topic: &str,
    msg: &str,
) -> Output {
    Command::new(common::tool_path("mosquitto_pub").expect("mosquitto_pub"))
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
        .arg("--cafile")
        .arg(&pki.ca)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .args(["-V", "mqttv5", "-q", "1", "-t", topic, "-m", msg])
        .output()
        .expect("run mosquitto_pub")
}

fn expect_published(out: &Output, what: &str, broker: &Broker) {
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{what}: mosquitto_pub failed ({}): {}\nbroker log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        broker.log()
    );
}

fn write_pem(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).expect("write PEM");
    path
}

#[test]
fn each_device_publishes_only_as_itself() {
    if !common::require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    let work = tempfile::tempdir().expect("temp dir");
    let certs = work.path().join("certs");

    // Two devices under a CA made here, written as `mqload pki devices 2 --out certs` would.
    let made_ca = DeviceCa::generate("mqload test device CA").expect("make a CA");
    devices::write_devices(&certs, 2, &made_ca).expect("write the devices");
    let device = |index: u64| {
        let (cert, key) = devices::device_file_names(index);
        (certs.join(cert), certs.join(key))
    };

    // One device under a given CA: local-ca.sh's, whose key is PKCS#8 PEM.
    let given_ca = DeviceCa::from_pem(
        &fs::read(&pki.ca).expect("read root_ca.pem"),
        &fs::read(pki.dir.path().join("ca.key")).expect("read ca.key"),
    )
    .expect("load the given CA");
    let given = given_ca
        .issue("device-given")
        .expect("issue under the given CA");
    let given_cert = write_pem(work.path(), "given.pem.crt", &given.cert_pem);
    let given_key = write_pem(work.path(), "given.pem.key", &given.key_pem);

    // One RSA-2048 device: ring cannot make RSA keys, so openssl makes the key.
    let rsa_key = work.path().join("rsa.pem.key");
    let genpkey = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&rsa_key)
        .output()
        .expect("run openssl genpkey");
    assert!(genpkey.status.success(), "openssl genpkey failed");
    let rsa = made_ca
        .issue_for_key("device-rsa", &fs::read(&rsa_key).expect("read the RSA key"))
        .expect("issue for an RSA key");
    let rsa_cert = write_pem(work.path(), "rsa.pem.crt", &rsa.cert_pem);

    // A device whose CA the broker does not trust.
    let stranger = DeviceCa::generate("untrusted CA")
        .and_then(|ca| ca.issue("device-0"))
        .expect("issue under an untrusted CA");
    let stranger_cert = write_pem(work.path(), "stranger.pem.crt", &stranger.cert_pem);
    let stranger_key = write_pem(work.path(), "stranger.pem.key", &stranger.key_pem);

    let client_cas = work.path().join("client_cas.pem");
    let both = format!(
        "{}{}",
        made_ca.certificate_pem(),
        fs::read_to_string(&pki.ca).expect("read root_ca.pem")
    );
    fs::write(&client_cas, both).expect("write the client CA bundle");
    assert_eq!(
        fs::read_to_string(certs.join(devices::CA_CERT_FILE)).expect("device_ca.pem written"),
        made_ca.certificate_pem()
    );

    let mut broker = Broker::start(&pki);
    configure_identity_broker(&mut broker, &pki, &client_cas, work.path());
    let subscriber = Subscriber::start(&broker, "devices/#");

    let (cert0, key0) = device(0);
    let (cert1, key1) = device(1);
    let out = publish_as(
        &pki,
        &broker,
        &cert0,
        &key0,
        "devices/device-0/telemetry",
        "zero",
    );
    expect_published(&out, "device-0 on its own topic", &broker);

    let spoof = publish_as(
        &pki,
        &broker,
        &cert0,
        &key0,
        "devices/device-1/telemetry",
        "spoof",
    );
    let spoof_err = String::from_utf8_lossy(&spoof.stderr);
    assert!(
        spoof_err.contains("Not authorized"),
        "device-0's certificate on device-1's topic must get PUBACK 0x87, got ({}): {spoof_err}",
        spoof.status
    );

    let untrusted = publish_as(
        &pki,
        &broker,
        &stranger_cert,
        &stranger_key,
        "devices/device-0/telemetry",
        "stranger",
    );
    assert!(
        !untrusted.status.success(),
        "a certificate from an untrusted CA must not connect"
    );

    let out = publish_as(
        &pki,
        &broker,
        &given_cert,
        &given_key,
        "devices/device-given/t",
        "given",
    );
    expect_published(&out, "the given CA's device", &broker);
    let out = publish_as(
        &pki,
        &broker,
        &rsa_cert,
        &rsa_key,
        "devices/device-rsa/t",
        "rsa",
    );
    expect_published(&out, "the RSA device", &broker);
    let out = publish_as(
        &pki,
        &broker,
        &cert1,
        &key1,
        "devices/device-1/telemetry",
        "one",
    );
    expect_published(&out, "device-1 on its own topic", &broker);

    let messages = subscriber.wait_for(4, WAIT);
    let seen: Vec<(String, String)> = messages
        .iter()
        .map(|m| {
            (
                m.topic.clone(),
                String::from_utf8_lossy(&m.payload).into_owned(),
            )
        })
        .collect();
    let expected = [
        ("devices/device-0/telemetry", "zero"),
        ("devices/device-given/t", "given"),
        ("devices/device-rsa/t", "rsa"),
        ("devices/device-1/telemetry", "one"),
    ]
    .map(|(t, p)| (t.to_owned(), p.to_owned()));
    assert_eq!(
        seen, expected,
        "only each device's own publishes arrive, in order"
    );
}

/// MQTT 3.1.1 CONNECT (clean session, keep-alive 30 s) then a QoS 1 PUBLISH per topic.
fn connect_and_publish(client_id: &str, publishes: &[(&str, u16, &str)]) -> Vec<u8> {
    fn packet(first_byte: u8, body: Vec<u8>) -> Vec<u8> {
        assert!(
            body.len() < 128,
            "test packets fit a one-byte remaining length"
        );
        let mut packet = vec![first_byte, body.len() as u8];
        packet.extend(body);
        packet
    }
    let field = |text: &str| {
        let mut out = (text.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(text.as_bytes());
        out
    };
    let mut connect = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30];
    connect.extend(field(client_id));
    let mut out = packet(0x10, connect);
    for (topic, packet_id, payload) in publishes {
        let mut body = field(topic);
        body.extend_from_slice(&packet_id.to_be_bytes());
        body.extend_from_slice(payload.as_bytes());
        out.extend(packet(0x32, body));
    }
    out
}

#[test]
fn one_shared_tls_config_presents_each_devices_own_certificate() {
    use mqload::net::device_cert::{DeviceCertError, DeviceCertResolver};
    use mqload::net::resume::{self, ClientScope, TicketStore};
    use rustls::pki_types::ServerName;
    use rustls::pki_types::pem::PemObject;
    use std::io::{Read, Write};
    use std::sync::Arc;

    if !common::require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    let work = tempfile::tempdir().expect("temp dir");
    let certs = work.path().join("certs");
    let ca = DeviceCa::generate("mqload resolver test CA").expect("make a CA");
    devices::write_devices(&certs, 3, &ca).expect("write the devices");
    let client_cas = certs.join(devices::CA_CERT_FILE);

    let mut broker = Broker::start(&pki);
    configure_identity_broker(&mut broker, &pki, &client_cas, work.path());
    let subscriber = Subscriber::start(&broker, "devices/#");

    // One configuration for every device: shared roots and verifier, and the resolver.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_file(&pki.ca).expect("read root_ca.pem"))
        .expect("add the CA");
    let resolver = DeviceCertResolver::new(
        format!("{}/device-{{i}}.pem.crt", certs.display()),
        format!("{}/device-{{i}}.pem.key", certs.display()),
        provider.clone(),
    );
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_client_cert_resolver(Arc::new(resolver)),
    );
    // Resumption must be per device too: with rustls' shared store, a second device would
    // resume the first one's TLS session and the broker would take it for that device.
    let tickets = Arc::new(TicketStore::new(16));
    let config = resume::with_store(config, tickets.clone());
    let connect = || {
        let name = ServerName::try_from("localhost").expect("server name");
        let conn = rustls::ClientConnection::new(config.clone(), name).expect("TLS client");
        let tcp = std::net::TcpStream::connect(("127.0.0.1", broker.port)).expect("connect");
        tcp.set_read_timeout(Some(WAIT)).expect("timeout");
        rustls::StreamOwned::new(conn, tcp)
    };

    // Devices 0, 1, 2, then 0, 1, 2 again: the second round resumes each device's session.
    for (round, device) in (0..2).flat_map(|round| (0..3u64).map(move |d| (round, d))) {
        // The engine names the device around a connection's TLS calls; so does this test.
        let _scope = ClientScope::enter(Some(device));
        let own = format!("devices/device-{device}/t");
        let other = format!("devices/device-{}/t", (device + 1) % 3);
        let payload = format!("from device-{device}, round {round}");
        let mut tls = connect();
        let bytes = connect_and_publish(
            &format!("resolver-{device}-{round}"),
            &[(&own, 1, &payload), (&other, 2, "spoof")],
        );
        tls.write_all(&bytes).expect("TLS handshake and write");
        let mut answers = [0u8; 12];
        tls.read_exact(&mut answers).unwrap_or_else(|e| {
            panic!(
                "device {device}: no CONNACK and PUBACKs: {e}\n{}",
                broker.log()
            )
        });
        assert_eq!(
            answers[..4],
            [0x20, 2, 0, 0],
            "device {device}: CONNACK accepted"
        );
        assert_eq!(
            answers[4..],
            [0x40, 2, 0, 1, 0x40, 2, 0, 2],
            "device {device}: PUBACKs"
        );
        assert_eq!(DeviceCertResolver::take_error(), None);
    }
    let counts = tickets.counts();
    assert!(counts.taken >= 3, "the second round resumed: {counts:?}");
    let log = broker.log();
    for round in 0..2 {
        for device in 0..3 {
            let connected =
                format!("as resolver-{device}-{round} (p2, c1, k30, u'device-{device}')");
            assert!(
                log.contains(&connected),
                "{connected} in the broker log:\n{log}"
            );
        }
    }
    let messages = subscriber.wait_for(6, WAIT);
    // Give a wrongly delivered spoof the time to show up before judging.
    std::thread::sleep(Duration::from_millis(300));
    let seen: Vec<(String, String)> = subscriber
        .messages()
        .iter()
        .map(|m| {
            (
                m.topic.clone(),
                String::from_utf8_lossy(&m.payload).into_owned(),
            )
        })
        .collect();
    assert_eq!(messages.len(), 6, "{log}");
    let expected: Vec<(String, String)> = (0..2)
        .flat_map(|r| (0..3).map(move |d| (r, d)))
        .map(|(r, d)| {
            (
                format!("devices/device-{d}/t"),
                format!("from device-{d}, round {r}"),
            )
        })
        .collect();
    assert_eq!(seen, expected, "each device wrote as itself only");

    // A device without files sends no certificate: the broker refuses, the cause is named.
    let _scope = ClientScope::enter(Some(9));
    let mut tls = connect();
    let refused = tls
        .write_all(&connect_and_publish("resolver-9", &[]))
        .and_then(|()| tls.read_exact(&mut [0u8; 4]));
    assert!(
        refused.is_err(),
        "a device without a certificate must not connect"
    );
    assert!(matches!(
        DeviceCertResolver::take_error(),
        Some(DeviceCertError::Unreadable { path, .. }) if path.ends_with("device-9.pem.crt")
    ));
}

/// Devices the fleet test makes and runs.
const FLEET: u64 = 12;

/// `mqload pki devices FLEET --out DIR` through the binary; returns DIR.
fn make_fleet(work: &Path) -> PathBuf {
    let certs = work.join("fleet");
    let out = common::run_mqload(
        &[
            "pki",
            "devices",
            &FLEET.to_string(),
            "--out",
            common::utf8(&certs),
        ],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let last = FLEET - 1;
    assert!(
        out.stdout.contains(&format!(
            "wrote {FLEET} devices (ECDSA P-256, CN device-0 .. device-{last})"
        )),
        "{}",
        out.describe()
    );
    assert!(out.stdout.contains("made a CA"), "{}", out.describe());
    for index in 0..FLEET {
        let (cert, key) = devices::device_file_names(index);
        assert!(certs.join(cert).exists() && certs.join(key).exists());
    }
    certs
}

/// mqload's options for a fleet run against `broker`: each user presents its own device
/// certificate and publishes on `devices/<its client id = its CN>/telemetry`.
fn fleet_args(pki: &Pki, broker: &Broker, certs: &Path, users: u64) -> Vec<String> {
    let template = |suffix: &str| format!("{}/device-{{i}}.{suffix}", certs.display());
    [
        "--host",
        "127.0.0.1",
        "--port",
        &broker.port.to_string(),
        "--cafile",
        common::utf8(&pki.ca),
        "--cert",
        &template("pem.crt"),
        "--key",
        &template("pem.key"),
        "--client-id",
        "device-{i}",
        "--topic",
        "devices/{client_id}/telemetry",
        "-u",
        &users.to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

#[test]
fn a_fleet_with_a_certificate_per_device_publishes_each_on_its_own_topic() {
    if !common::require_broker_tools() {
        return;
    }
    let _serial = common::serial();
    let pki = Pki::new(true);
    let work = tempfile::tempdir().expect("temp dir");
    let certs = make_fleet(work.path());
    let mut broker = Broker::start(&pki);
    configure_identity_broker(
        &mut broker,
        &pki,
        &certs.join(devices::CA_CERT_FILE),
        work.path(),
    );
    let subscriber = Subscriber::start(&broker, "devices/#");
    let csv = work.path().join("run");
    let mut args = fleet_args(&pki, &broker, &certs, FLEET);
    // Churn: every device reconnects each second, resuming its own TLS session; a device
    // that resumed another's would publish as that other device and be refused.
    args.extend(
        [
            "-r",
            "50",
            "-t",
            "5s",
            "--qos",
            "1",
            "--throughput",
            "4",
            "--payload-bytes",
            "16",
            "--connection-lifetime",
            "1s",
            "--tls-tickets",
            "per-device",
            "--only-summary",
            "--csv",
            common::utf8(&csv),
        ]
        .map(str::to_owned),
    );
    let out = common::run_mqload(&args, &[], Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}\n{}", out.describe(), broker.log());
    let row = common::expect_stats_row(
        &work.path().join("run_stats.csv"),
        "publish:1:devices/{client_id}/telemetry",
    );
    let published = common::count(&row, "Request Count");
    assert_eq!(
        common::count(&row, "Failure Count"),
        0,
        "{}",
        out.describe()
    );
    assert!(
        published >= FLEET * 4,
        "every device published for seconds: {published}\n{}",
        out.describe()
    );
    let messages = subscriber.wait_for(published as usize, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(300));
    let messages_now = subscriber.messages();
    assert_eq!(
        messages_now.len() as u64,
        published,
        "every publish reported arrived once ({} after the wait)\n{}",
        messages.len(),
        broker.log()
    );
    let mut per_device = std::collections::BTreeMap::new();
    for message in &messages_now {
        *per_device.entry(message.topic.clone()).or_insert(0u64) += 1;
    }
    let expected: std::collections::BTreeSet<String> = (0..FLEET)
        .map(|i| format!("devices/device-{i}/telemetry"))
        .collect();
    assert_eq!(
        per_device
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        expected,
        "each device published on its own topic"
    );
    // Every connection, first or resumed, is the device its client id names.
    let log = broker.log();
    let mut connects = 0;
    for line in log.lines().filter(|l| l.contains("New client connected")) {
        let Some((_, rest)) = line.split_once(" as device-") else {
            continue;
        };
        let index = rest.split(' ').next().unwrap_or_default();
        assert!(
            line.contains(&format!("u'device-{index}')")),
            "device-{index} connected under another identity: {line}"
        );
        connects += 1;
    }
    assert!(
        connects > FLEET as usize,
        "the devices reconnected (churn): {connects} connects\n{log}"
    );
}

#[test]
fn missing_device_files_and_shared_tickets_stop_the_plan() {
    if !common::require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    let work = tempfile::tempdir().expect("temp dir");
    let certs = make_fleet(work.path());
    let broker = Broker::start(&pki);
    let run = |users: u64, extra: &[&str]| {
        let mut args = fleet_args(&pki, &broker, &certs, users);
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(["-t", "2s"].map(str::to_owned));
        common::run_mqload(&args, &[], Duration::from_secs(30))
    };
    let one_error_line = |out: &common::RunOutput| -> String {
        assert_eq!(out.code, Some(2), "{}", out.describe());
        let errors: Vec<&str> = out.stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(errors.len(), 1, "{}", out.describe());
        errors[0].to_owned()
    };
    // One user more than the files: the last user's certificate is missing.
    let line = one_error_line(&run(FLEET + 1, &[]));
    assert!(
        line.contains(&format!("device {FLEET}'s certificate"))
            && line.contains(&format!("device-{FLEET}.pem.crt"))
            && line.contains("mqload pki devices"),
        "{line}"
    );
    let line = one_error_line(&run(FLEET, &["--tls-tickets", "shared"]));
    assert!(line.contains("--tls-tickets per-device or off"), "{line}");
    // A device whose key is another device's.
    fs::copy(
        certs.join("device-1.pem.key"),
        certs.join("device-0.pem.key"),
    )
    .expect("swap a key");
    let line = one_error_line(&run(FLEET, &[]));
    assert!(
        line.contains("device 0's certificate") && line.contains("does not belong"),
        "{line}"
    );
}

#[test]
fn a_device_whose_file_is_missing_fails_with_the_cause_named() {
    if !common::require_broker_tools() {
        return;
    }
    let _serial = common::serial();
    let pki = Pki::new(true);
    let work = tempfile::tempdir().expect("temp dir");
    let certs = make_fleet(work.path());
    let mut broker = Broker::start(&pki);
    configure_identity_broker(
        &mut broker,
        &pki,
        &certs.join(devices::CA_CERT_FILE),
        work.path(),
    );
    // The plan checks the first and the last device; a gap in the middle shows at its connect.
    fs::remove_file(certs.join("device-5.pem.crt")).expect("remove a device's certificate");
    let mut args = fleet_args(&pki, &broker, &certs, FLEET);
    args.extend(["-r", "50", "-t", "3s", "--only-summary"].map(str::to_owned));
    let out = common::run_mqload(&args, &[], Duration::from_secs(60));
    assert_eq!(out.code, Some(1), "failures exit 1: {}", out.describe());
    let named: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("a device's file cannot be read (No such file"))
        .collect();
    assert!(
        !named.is_empty() && named.iter().all(|l| l.contains("mqload pki devices")),
        "the missing file is the failure's cause:\n{}",
        out.describe()
    );
    let log = broker.log();
    assert!(
        log.contains("u'device-4'") && log.contains("u'device-6'"),
        "{log}"
    );
    assert!(!log.contains("u'device-5'"), "{log}");
}

/// The occurrences of the failures CSV's row whose error holds `error` (0 without one).
fn failure_occurrences(failures_csv: &Path, error: &str) -> u64 {
    let text = fs::read_to_string(failures_csv).expect("failures csv");
    let header: Vec<&str> = text.lines().next().unwrap_or_default().split(',').collect();
    let column = header
        .iter()
        .position(|h| h.trim_matches('"') == "Occurrences")
        .unwrap_or_else(|| panic!("no Occurrences column:\n{text}"));
    text.lines()
        .filter(|l| l.contains(error))
        .map(|l| {
            l.split(',')
                .nth(column)
                .and_then(|n| n.trim().trim_matches('"').parse::<u64>().ok())
                .unwrap_or_else(|| panic!("occurrences in {l:?}"))
        })
        .sum()
}

#[test]
fn over_mqtt5_a_device_with_another_devices_certificate_gets_0x87() {
    if !common::require_broker_tools() {
        return;
    }
    let _serial = common::serial();
    let pki = Pki::new(true);
    let work = tempfile::tempdir().expect("temp dir");
    let certs = make_fleet(work.path());
    let mut broker = Broker::start(&pki);
    configure_identity_broker(
        &mut broker,
        &pki,
        &certs.join(devices::CA_CERT_FILE),
        work.path(),
    );
    let users = 4;
    // Each user publishes on devices/device-<i>/telemetry, with its own certificate (the
    // templates) or with device-0's (every user then is device-0 to the broker).
    let run = |name: &str, own: bool| {
        let mut args = fleet_args(&pki, &broker, &certs, users);
        if !own {
            for (flag, file) in [
                ("--cert", "device-0.pem.crt"),
                ("--key", "device-0.pem.key"),
            ] {
                let at = args.iter().position(|a| a == flag).expect("the flag") + 1;
                args[at] = common::utf8(&certs.join(file)).to_owned();
            }
        }
        let prefix = work.path().join(name);
        args.extend(
            [
                "--mqtt-version",
                "5",
                "-r",
                "50",
                "-t",
                "3s",
                "--qos",
                "1",
                "--throughput",
                "5",
                "--payload-bytes",
                "16",
                "--only-summary",
                "--csv",
                common::utf8(&prefix),
            ]
            .map(str::to_owned),
        );
        let out = common::run_mqload(&args, &[], Duration::from_secs(60));
        let row = common::expect_stats_row(
            &prefix.with_file_name(format!("{name}_stats.csv")),
            "publish:1:devices/{client_id}/telemetry",
        );
        let failures = prefix.with_file_name(format!("{name}_failures.csv"));
        (out, row, failures)
    };

    let subscriber = Subscriber::start(&broker, "devices/#");
    let (out, row, _) = run("own", true);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let published = common::count(&row, "Request Count");
    assert_eq!(
        common::count(&row, "Failure Count"),
        0,
        "{}",
        out.describe()
    );
    assert!(published >= users * 5, "{published}\n{}", out.describe());
    let delivered = subscriber.wait_for(published as usize, Duration::from_secs(15));
    assert_eq!(delivered.len() as u64, published, "{}", broker.log());
    let own_topics: std::collections::BTreeSet<&str> =
        delivered.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(own_topics.len(), users as usize, "{own_topics:?}");
    let before = delivered.len();

    let (out, row, failures) = run("borrowed", false);
    assert_eq!(
        out.code,
        Some(1),
        "refusals are failures: {}",
        out.describe()
    );
    let requests = common::count(&row, "Request Count");
    let refused = common::count(&row, "Failure Count");
    assert_eq!(
        failure_occurrences(&failures, "PUBACK 0x87 not authorized"),
        refused,
        "every failure is the broker's 0x87"
    );
    // Users 1..3 publish as device-0 on their own topics: refused; user 0 is device-0.
    assert!(
        refused >= (users - 1) * 5 && refused < requests,
        "{refused} of {requests} refused\n{}",
        out.describe()
    );
    std::thread::sleep(Duration::from_millis(500));
    let after: Vec<_> = subscriber.messages().into_iter().skip(before).collect();
    assert_eq!(
        after.len() as u64,
        requests - refused,
        "only accepted ones arrive"
    );
    assert!(
        after
            .iter()
            .all(|m| m.topic == "devices/device-0/telemetry"),
        "only device-0's own topic took publishes"
    );
}

#[test]
fn pki_devices_signs_with_a_given_ca_makes_rsa_keys_and_refuses_mistakes_in_one_line() {
    let work = tempfile::tempdir().expect("temp dir");
    let made = make_fleet(work.path());
    let pki = |args: &[&str]| common::run_mqload(args, &[], Duration::from_secs(60));
    let ca = common::utf8(&made.join(devices::CA_CERT_FILE)).to_owned();
    let ca_key = common::utf8(&made.join(devices::CA_KEY_FILE)).to_owned();
    let rsa_dir = work.path().join("rsa");
    let out = pki(&[
        "pki",
        "devices",
        "2",
        "--ca",
        &ca,
        "--ca-key",
        &ca_key,
        "--rsa",
        "--out",
        common::utf8(&rsa_dir),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(
        out.stdout.contains("wrote 2 devices (RSA-2048"),
        "{}",
        out.describe()
    );
    assert!(
        out.stdout.contains(&format!("signed by the CA in {ca}")),
        "{}",
        out.describe()
    );
    assert!(
        !rsa_dir.join(devices::CA_KEY_FILE).exists(),
        "a given CA's key is not copied"
    );
    let key = fs::read_to_string(rsa_dir.join("device-1.pem.key")).expect("RSA key");
    assert!(
        key.starts_with("-----BEGIN PRIVATE KEY-----") && key.len() > 1500,
        "{key}"
    );
    // The device verifies under the given CA.
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile", &ca])
        .arg(rsa_dir.join("device-1.pem.crt"))
        .output()
        .expect("run openssl verify");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    let device_cert = common::utf8(&made.join("device-0.pem.crt")).to_owned();
    let device_key = common::utf8(&made.join("device-0.pem.key")).to_owned();
    let out_dir = common::utf8(&work.path().join("x")).to_owned();
    for (args, says) in [
        (vec!["0"], "asked for 0 devices"),
        (vec!["1", "--ca", &ca], "--ca and --ca-key go together"),
        (
            vec!["1", "--ca", &device_cert, "--ca-key", &device_key],
            "is not a CA",
        ),
        (
            vec!["1", "--ca", &ca, "--ca-key", &device_key],
            "does not belong",
        ),
        (
            vec!["1", "--ca", "/nonexistent/ca.pem", "--ca-key", &ca_key],
            "cannot read the --ca file",
        ),
    ] {
        let mut all = vec!["pki", "devices"];
        all.extend(args);
        all.extend(["--out", &out_dir]);
        let out = pki(&all);
        assert_eq!(out.code, Some(2), "{}", out.describe());
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}", out.describe());
        assert!(lines[0].contains(says), "{says}: {}", lines[0]);
    }
}
