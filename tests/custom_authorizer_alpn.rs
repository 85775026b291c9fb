//! A custom authorizer over MQTT on a TLS server scripted here (rustls, a test-made
//! certificate): the ALPN protocols mqload offers and the CONNECT user name it sends. On port
//! 443 it offers `mqtt` by itself, as AWS IoT wants there; on another port only with `--alpn`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use common::{Pki, run_mqload, serial, utf8};
use rustls::server::{Acceptor, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// What the scripted server saw from the one client it served.
#[derive(Debug)]
struct Seen {
    /// The ALPN protocols of the ClientHello, in order (empty when none was offered).
    alpn: Vec<String>,
    /// The CONNECT packet.
    connect: Vec<u8>,
}

/// The broker's certificate chain and key from `pki`, offering ALPN `mqtt` like AWS IoT.
fn server_config(pki: &Pki) -> Arc<ServerConfig> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.broker_cert)
        .expect("broker.crt")
        .collect::<Result<_, _>>()
        .expect("broker.crt PEM");
    let key = PrivateKeyDer::from_pem_file(&pki.broker_key).expect("broker.key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate");
    config.alpn_protocols = vec![b"mqtt".to_vec()];
    Arc::new(config)
}

/// Serves one TLS client on `listener`: records its ALPN offer and CONNECT, accepts the
/// CONNECT, and holds the connection until the client leaves.
fn serve_one(listener: TcpListener, config: Arc<ServerConfig>) -> Receiver<Seen> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut acceptor = Acceptor::default();
        let accepted = loop {
            match acceptor.read_tls(&mut stream) {
                Ok(n) if n > 0 => {}
                _ => return,
            }
            match acceptor.accept() {
                Ok(Some(accepted)) => break accepted,
                Ok(None) => {}
                Err(_) => return,
            }
        };
        let alpn = accepted
            .client_hello()
            .alpn()
            .map_or_else(Vec::new, |offer| {
                offer
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect()
            });
        let Ok(connection) = accepted.into_connection(config) else {
            return;
        };
        let mut tls = rustls::StreamOwned::new(connection, stream);
        let connect = read_packet(&mut tls).unwrap_or_default();
        let _ = tls.write_all(&[0x20, 2, 0, 0]);
        let _ = tx.send(Seen { alpn, connect });
        let mut rest = [0u8; 1024];
        while matches!(tls.read(&mut rest), Ok(n) if n > 0) {}
    });
    rx
}

/// One whole MQTT packet from `tls` (fixed header, remaining length, body).
fn read_packet(tls: &mut impl Read) -> Option<Vec<u8>> {
    let mut packet = Vec::new();
    let mut byte = [0u8; 1];
    let (mut remaining, mut shift) = (0usize, 0);
    tls.read_exact(&mut byte).ok()?;
    packet.push(byte[0]);
    loop {
        tls.read_exact(&mut byte).ok()?;
        packet.push(byte[0]);
        remaining |= usize::from(byte[0] & 0x7f) << shift;
        shift += 7;
        if byte[0] & 0x80 == 0 || shift > 21 {
            break;
        }
    }
    let start = packet.len();
    packet.resize(start + remaining, 0);
    tls.read_exact(&mut packet[start..]).ok()?;
    Some(packet)
}

/// A one-second connect-only run with a custom authorizer to `addr`, plus `extra`; returns
/// what the server saw.
fn run_with_authorizer(pki: &Pki, listener: TcpListener, extra: &[&str]) -> Seen {
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let seen = serve_one(listener, server_config(pki));
    let host = format!("mqtts://{addr}");
    let mut args = vec![
        "-H",
        &host,
        "--server-name",
        "localhost",
        "--cafile",
        utf8(&pki.ca),
        "--username",
        "device-7",
        "--authorizer-name",
        "fleet-auth",
        "-u",
        "1",
        "-t",
        "1s",
        "--connect-only",
        "--only-summary",
    ];
    args.extend_from_slice(extra);
    let out = run_mqload(&args, &[], Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{addr} {extra:?}: {}", out.describe());
    seen.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{addr}: no TLS client seen: {}", out.describe()))
}

fn assert_authorizer_in_user_name(seen: &Seen) {
    let expected = b"device-7?x-amz-customauthorizer-name=fleet-auth";
    assert!(
        seen.connect.windows(expected.len()).any(|w| w == expected),
        "CONNECT user name: {:?}",
        String::from_utf8_lossy(&seen.connect)
    );
}

/// Port 443 on a loopback address of its own, when this process may bind it.
fn port_443() -> Option<TcpListener> {
    match TcpListener::bind("127.77.0.1:443") {
        Ok(listener) => Some(listener),
        Err(e) if common::in_ci() => {
            panic!("cannot bind 127.77.0.1:443 ({e}): under CI=true the 443 case must run")
        }
        Err(e) => {
            eprintln!("skipping the port-443 case: cannot bind 127.77.0.1:443 ({e})");
            None
        }
    }
}

#[test]
fn on_443_a_custom_authorizer_offers_alpn_mqtt_and_names_itself_in_the_user_name() {
    let _guard = serial();
    let pki = Pki::new(true);
    let Some(listener) = port_443() else {
        return;
    };
    let seen = run_with_authorizer(&pki, listener, &[]);
    assert_eq!(seen.alpn, ["mqtt"], "{seen:?}");
    assert_authorizer_in_user_name(&seen);
}

#[test]
fn off_443_alpn_is_offered_only_when_asked_for() {
    let _guard = serial();
    let pki = Pki::new(true);
    let bind = || TcpListener::bind("127.0.0.1:0").expect("bind");
    let seen = run_with_authorizer(&pki, bind(), &[]);
    assert!(seen.alpn.is_empty(), "{seen:?}");
    assert_authorizer_in_user_name(&seen);
    let seen = run_with_authorizer(&pki, bind(), &["--alpn", "mqtt"]);
    assert_eq!(seen.alpn, ["mqtt"], "{seen:?}");
    assert_authorizer_in_user_name(&seen);
}
