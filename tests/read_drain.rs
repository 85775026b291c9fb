//! `Transport::read` stops at a read shorter than its buffer instead of reading on to EAGAIN;
//! these tests prove no byte is left unread by that: a real peer (rustls server or plain TCP
//! on loopback) sends numbered 4-byte "acks" in bursts of awkward sizes, some back to back,
//! some apart, and the client reads only when mio reports a readable edge, as the engine does.
//! One more test runs TLS 1.2 and 1.3 with ALPN, a client certificate and a resumed session.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use mqload::broker::MemoryPki;
use mqload::net::{Transport, TransportError, WakeClock, client_config_from_memory};
use rustls::{ServerConnection, StreamOwned};
use rustls_pki_types::{PrivateKeyDer, ServerName};

const ACK_LEN: usize = 4;

/// Burst sizes in acks: around 4096 bytes (rustls' buffered read size), its 16 KiB records, the
/// client's 64 KiB scratch, single acks, and a large run.
const BURSTS: &[usize] = &[
    1, 1, 2, 1023, 1024, 1025, 4095, 4096, 4097, 16_383, 16_384, 16_385, 3, 50_000, 1, 7,
];

fn total_acks() -> usize {
    BURSTS.iter().sum()
}

/// Writes every burst as one `write_all` of consecutive little-endian ack numbers; every
/// other burst follows the previous one at once, the rest after a pause.
fn send_bursts(out: &mut impl Write) {
    let mut next = 0u32;
    for (i, &acks) in BURSTS.iter().enumerate() {
        let mut bytes = Vec::with_capacity(acks * ACK_LEN);
        for _ in 0..acks {
            bytes.extend_from_slice(&next.to_le_bytes());
            next += 1;
        }
        out.write_all(&bytes).expect("peer write");
        out.flush().expect("peer flush");
        if i % 2 == 1 {
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Drives `transport` by readiness edges only, checking every ack's number, until all acks
/// arrived; fails when one is missing after the deadline (a byte left unread raises no edge).
fn receive_all(mut transport: Transport) {
    let mut poll = Poll::new().expect("poll");
    poll.registry()
        .register(
            transport.socket(),
            Token(0),
            Interest::READABLE | Interest::WRITABLE,
        )
        .expect("register");
    let mut events = Events::with_capacity(8);
    let mut scratch = vec![0u8; 64 * 1024];
    let mut expected = 0u32;
    let mut partial = Vec::new();
    let total = total_acks();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut reads = 0u64;
    while (expected as usize) < total {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "only {expected} of {total} acks read before the deadline: bytes left unread"
        );
        poll.poll(&mut events, Some(left)).expect("poll wait");
        for event in &events {
            if !transport.check_connected().expect("connect") {
                continue;
            }
            transport.flush().expect("flush");
            if !event.is_readable() {
                continue;
            }
            reads += 1;
            let clock = WakeClock::now();
            let outcome = transport.read(&mut scratch, &clock, |data, _at| {
                partial.extend_from_slice(data);
                let whole = partial.len() / ACK_LEN * ACK_LEN;
                for ack in partial[..whole].chunks_exact(ACK_LEN) {
                    let n = u32::from_le_bytes(ack.try_into().expect("4 bytes"));
                    if n != expected {
                        return Err(format!("ack {n} arrived where {expected} was due"));
                    }
                    expected += 1;
                }
                partial.drain(..whole);
                Ok(())
            });
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(wrong)) => panic!("{wrong}"),
                Err(TransportError::Closed) => break,
                Err(e) => panic!("read failed: {e}"),
            }
            transport.flush().expect("flush");
        }
    }
    assert_eq!(expected as usize, total, "every ack read, in order");
    assert!(partial.is_empty(), "no partial ack left over");
    assert!(reads > 0);
}

fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

#[test]
fn tls_reads_every_ack_sent_in_bursts() {
    let pki = MemoryPki::generate().expect("pki");
    let server_config = pki.server_config().expect("server config");
    let client_config = client_config_from_memory(
        pki.ca.clone(),
        vec![pki.client_cert.clone()],
        PrivateKeyDer::Pkcs8(pki.client_key.clone().into()),
        &[],
    )
    .expect("client config");
    let (listener, addr) = listener();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().expect("accept");
        let conn = ServerConnection::new(Arc::clone(&server_config)).expect("server conn");
        let mut stream = StreamOwned::new(conn, tcp);
        send_bursts(&mut stream);
        // Hold the connection open until the client is done, so no close raises an edge.
        let _ = done_rx.recv_timeout(Duration::from_secs(30));
    });
    let name = ServerName::try_from("localhost").expect("name");
    let transport = Transport::connect(addr, Some((&client_config, &name))).expect("connect");
    receive_all(transport);
    done_tx.send(()).expect("server waits");
    server.join().expect("server thread");
}

#[test]
fn plain_tcp_reads_every_ack_sent_in_bursts() {
    let (listener, addr) = listener();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (mut tcp, _): (TcpStream, _) = listener.accept().expect("accept");
        send_bursts(&mut tcp);
        let _ = done_rx.recv_timeout(Duration::from_secs(30));
    });
    let transport = Transport::connect(addr, None).expect("connect");
    receive_all(transport);
    done_tx.send(()).expect("server waits");
    server.join().expect("server thread");
}

/// A client config for `versions` only, with the test PKI's client certificate and ALPN
/// "mqtt", and rustls' in-memory resumption.
fn client_config_for(
    pki: &MemoryPki,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).expect("ca");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![pki.client_cert.clone()],
            PrivateKeyDer::Pkcs8(pki.client_key.clone().into()),
        )
        .expect("client cert");
    config.alpn_protocols = vec![b"mqtt".to_vec()];
    Arc::new(config)
}

/// Queues "ping" before the handshake is done, then reads until the server's 4-byte answer;
/// returns the answer and whether the session was resumed.
fn ping(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> (Vec<u8>, Option<bool>) {
    let name = ServerName::try_from("localhost").expect("name");
    let mut transport = Transport::connect(addr, Some((config, &name))).expect("connect");
    transport
        .queue(b"ping")
        .expect("queue before the handshake");
    let mut poll = Poll::new().expect("poll");
    let interest = Interest::READABLE | Interest::WRITABLE;
    poll.registry()
        .register(transport.socket(), Token(0), interest)
        .expect("register");
    let mut events = Events::with_capacity(8);
    let mut scratch = vec![0u8; 64 * 1024];
    let mut answer = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while answer.len() < 4 {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no answer before the deadline: {answer:?}");
        poll.poll(&mut events, Some(left)).expect("poll wait");
        if events.is_empty() || !transport.check_connected().expect("connect") {
            continue;
        }
        transport.flush().expect("flush");
        let clock = WakeClock::now();
        let read = transport.read(&mut scratch, &clock, |data, _| {
            answer.extend_from_slice(data);
            Ok::<(), ()>(())
        });
        assert!(matches!(read, Ok(Ok(()))), "read: {read:?}");
        transport.flush().expect("flush");
    }
    let resumed = transport.resumed();
    transport.close();
    (answer, resumed)
}

#[test]
fn tls12_and_tls13_carry_alpn_client_certificates_and_resume_sessions() {
    let pki = MemoryPki::generate().expect("pki");
    let mut server_config = (*pki.server_config().expect("server config")).clone();
    server_config.alpn_protocols = vec![b"mqtt".to_vec()];
    let server_config = Arc::new(server_config);
    for versions in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let (listener, addr) = listener();
        let config = Arc::clone(&server_config);
        // Answers "pong" to "ping" when ALPN and the client certificate arrived, else "fail".
        let server = thread::spawn(move || {
            for _ in 0..2 {
                let (tcp, _) = listener.accept().expect("accept");
                let conn = ServerConnection::new(Arc::clone(&config)).expect("server conn");
                let mut stream = StreamOwned::new(conn, tcp);
                let mut asked = [0u8; 4];
                std::io::Read::read_exact(&mut stream, &mut asked).expect("server read");
                let good = &asked == b"ping"
                    && stream.conn.alpn_protocol() == Some(&b"mqtt"[..])
                    && stream
                        .conn
                        .peer_certificates()
                        .is_some_and(|c| !c.is_empty());
                stream
                    .write_all(if good { b"pong" } else { b"fail" })
                    .expect("server write");
                stream.flush().expect("server flush");
                let mut rest = Vec::new();
                let _ = std::io::Read::read_to_end(&mut stream, &mut rest);
            }
        });
        let client_config = client_config_for(&pki, &[versions]);
        let first = ping(addr, &client_config);
        let second = ping(addr, &client_config);
        server.join().expect("server thread");
        let version = format!("{:?}", versions.version);
        assert_eq!(first, (b"pong".to_vec(), Some(false)), "{version}, first");
        assert_eq!(second, (b"pong".to_vec(), Some(true)), "{version}, resumed");
    }
}
