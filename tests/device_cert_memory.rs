//! A certificate per device costs no memory per open connection: connections whose devices
//! each present their own certificate through `DeviceCertResolver` hold as many live heap
//! bytes, once connected, as connections sharing one certificate. Counted by a global
//! allocator wrapper, so this binary holds this one test only.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::{Broker, Pki};
use mqload::net::device_cert::DeviceCertResolver;
use mqload::net::resume::{self, ClientScope, TicketStore};
use mqload::pki::devices::{self, DeviceCa};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

struct Counting;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Devices connected per measurement.
const DEVICES: u64 = 40;
/// Slack per connection for allocator-visible noise (ticket sizes can differ by a few bytes).
const SLACK_PER_CONNECTION: i64 = 256;

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects `DEVICES` devices through `config` (each in its own device scope, CONNECT and
/// CONNACK done) and returns the live heap bytes per open connection.
fn live_bytes_per_connection(config: &Arc<rustls::ClientConfig>, port: u16) -> i64 {
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let mut open: Vec<Tls> = Vec::new();
    for device in 0..DEVICES {
        let _scope = ClientScope::enter(Some(device));
        let name = ServerName::try_from("localhost").expect("server name");
        let conn = rustls::ClientConnection::new(config.clone(), name).expect("TLS client");
        let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let id = format!("mem-{device}");
        let mut connect = vec![
            0x10,
            (12 + id.len()) as u8,
            0,
            4,
            b'M',
            b'Q',
            b'T',
            b'T',
            4,
            2,
        ];
        connect.extend_from_slice(&[0, 30, 0, id.len() as u8]);
        connect.extend_from_slice(id.as_bytes());
        tls.write_all(&connect).expect("TLS handshake and CONNECT");
        let mut connack = [0u8; 4];
        tls.read_exact(&mut connack).expect("CONNACK");
        assert_eq!(connack, [0x20, 2, 0, 0], "device {device} accepted");
        open.push(tls);
    }
    let per_connection = (LIVE_BYTES.load(Ordering::Relaxed) - before) / DEVICES as i64;
    drop(open);
    per_connection
}

#[test]
fn per_device_certificates_cost_nothing_per_open_connection() {
    if !common::require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    let work = tempfile::tempdir().expect("temp dir");
    let certs = work.path().join("certs");
    let ca = DeviceCa::generate("mqload memory test CA").expect("make a CA");
    devices::write_devices(&certs, DEVICES, &ca).expect("write the devices");

    // The broker's TLS listener trusts the device CA as well as the test CA.
    let mut broker = Broker::start(&pki);
    let bundle = work.path().join("client_cas.pem");
    let test_ca = std::fs::read_to_string(&pki.ca).expect("read root_ca.pem");
    std::fs::write(&bundle, format!("{}{test_ca}", ca.certificate_pem())).expect("bundle");
    let conf = std::fs::read_to_string(broker.conf_path()).expect("read mosquitto.conf");
    let cafile_line = format!("cafile {}", pki.ca.display());
    assert!(
        conf.contains(&cafile_line),
        "the harness config names its cafile"
    );
    let conf = conf.replacen(&cafile_line, &format!("cafile {}", bundle.display()), 1);
    std::fs::write(broker.conf_path(), conf).expect("write mosquitto.conf");
    broker.restart();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = || {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&pki.ca).expect("read root_ca.pem"))
            .expect("add the CA");
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
    };
    let with_store = |config: rustls::ClientConfig| {
        resume::with_store(
            Arc::new(config),
            Arc::new(TicketStore::new(DEVICES as usize)),
        )
    };
    let one_certificate = || {
        let chain =
            vec![CertificateDer::from_pem_file(certs.join("device-0.pem.crt")).expect("cert")];
        let key = PrivateKeyDer::from_pem_file(certs.join("device-0.pem.key")).expect("key");
        with_store(
            builder()
                .with_client_auth_cert(chain, key)
                .expect("key fits"),
        )
    };
    let per_device = || {
        let resolver = DeviceCertResolver::new(
            format!("{}/device-{{i}}.pem.crt", certs.display()),
            format!("{}/device-{{i}}.pem.key", certs.display()),
            provider.clone(),
        );
        with_store(builder().with_client_cert_resolver(Arc::new(resolver)))
    };

    // Alternate, so that neither kind pays for warming up alone.
    let mut shared = Vec::new();
    let mut own = Vec::new();
    for _ in 0..2 {
        own.push(live_bytes_per_connection(&per_device(), broker.port));
        shared.push(live_bytes_per_connection(&one_certificate(), broker.port));
    }
    eprintln!("live heap bytes per open connection: per-device {own:?}, one shared {shared:?}");
    for (own, shared) in own.iter().zip(&shared) {
        assert!(
            *own <= shared + SLACK_PER_CONNECTION,
            "a per-device certificate keeps {} more bytes per connection",
            own - shared
        );
    }
}
