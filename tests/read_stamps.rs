//! How wrong an ack's time can be when one read takes several segments: the kernel gives one
//! receive stamp per `recvmsg` (the newest segment's), and `Transport::read` applies it to
//! everything that read returned. These tests measure that error on a real loopback pair,
//! plain and TLS: an ack that waited in the socket behind a later one is stamped with the
//! later one's arrival, so it looks late by the gap between the two arrivals, never more, and
//! a stamp is never later than the read's own clock.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use mqload::broker::MemoryPki;
use mqload::net::{Transport, WakeClock, client_config_from_memory};
use rustls::{ServerConnection, StreamOwned};
use rustls_pki_types::{PrivateKeyDer, ServerName};

/// Time between the two acks' sends.
const GAP: Duration = Duration::from_millis(100);
/// Loopback delivery plus scheduling noise on a shared machine.
const SLACK: Duration = Duration::from_millis(40);

/// The peer: once the client says go, sends ack 1, then ack 2 after `GAP`, reporting both
/// send instants; then holds the connection open until told the client is done.
fn send_two_acks(
    out: &mut impl Write,
    go: &mpsc::Receiver<()>,
    sent: &mpsc::Sender<Instant>,
    done: &mpsc::Receiver<()>,
) {
    go.recv_timeout(Duration::from_secs(20))
        .expect("client says go");
    for (i, ack) in [[0x40u8, 2, 0, 1], [0x40, 2, 0, 2]].iter().enumerate() {
        if i == 1 {
            thread::sleep(GAP);
        }
        let at = Instant::now();
        out.write_all(ack).expect("peer write");
        out.flush().expect("peer flush");
        sent.send(at).expect("client listens");
    }
    let _ = done.recv_timeout(Duration::from_secs(30));
}

/// Completes the connect (and TLS handshake), lets the peer send both acks, waits until
/// they have surely arrived, then reads once; returns each ack's (send instant, stamp).
fn read_late(
    mut transport: Transport,
    tls: bool,
    go: &mpsc::Sender<()>,
    sent: &mpsc::Receiver<Instant>,
) -> Vec<(Instant, Instant)> {
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
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "no connection");
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .expect("poll wait");
        if !transport.check_connected().expect("connect") {
            continue;
        }
        transport.flush().expect("flush");
        if !tls || transport.resumed().is_some() {
            break;
        }
        let clock = WakeClock::now();
        transport
            .read(&mut scratch, &clock, |_, _| Ok::<(), ()>(()))
            .expect("handshake read")
            .expect("handler");
        transport.flush().expect("flush");
    }
    go.send(()).expect("peer waits");
    let sends: Vec<Instant> = (0..2)
        .map(|_| {
            sent.recv_timeout(Duration::from_secs(20))
                .expect("ack sent")
        })
        .collect();
    thread::sleep(SLACK);
    let clock = WakeClock::now();
    let mut stamped = Vec::new();
    transport
        .read(&mut scratch, &clock, |data, at| {
            for _ack in data.chunks_exact(4) {
                assert!(at <= clock.instant, "a stamp after the read's own clock");
                stamped.push(at);
            }
            Ok::<(), ()>(())
        })
        .expect("read")
        .expect("handler");
    sends.into_iter().zip(stamped).collect()
}

fn check(acks: &[(Instant, Instant)]) {
    let [(sent_1, stamped_1), (sent_2, stamped_2)] = acks else {
        panic!("two acks expected, got {}", acks.len());
    };
    let error_1 = stamped_1.saturating_duration_since(*sent_1);
    let error_2 = stamped_2.saturating_duration_since(*sent_2);
    eprintln!(
        "ack 1 stamped {:.3} ms after its send, ack 2 {:.3} ms after its send (gap {} ms)",
        error_1.as_secs_f64() * 1e3,
        error_2.as_secs_f64() * 1e3,
        GAP.as_millis()
    );
    // Both came in one read, so both carry the newest segment's stamp: ack 1 looks late by
    // the gap between the arrivals...
    assert_eq!(stamped_1, stamped_2, "one read, one stamp");
    assert!(
        error_1 >= GAP - Duration::from_millis(2),
        "ack 1 is stamped with ack 2's arrival"
    );
    // ...and never by more than that gap: the newest segment's own stamp is right.
    assert!(error_2 < SLACK, "ack 2's stamp is its own arrival");
    let arrivals_apart = sent_2.saturating_duration_since(*sent_1);
    assert!(
        error_1 <= arrivals_apart + SLACK,
        "error bounded by the gap"
    );
}

#[test]
fn plain_tcp_stamps_every_ack_of_a_read_with_the_newest_arrival() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let (go_tx, go_rx) = mpsc::channel();
    let (sent_tx, sent_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let server = thread::spawn(move || {
        let (mut tcp, _): (TcpStream, _) = listener.accept().expect("accept");
        send_two_acks(&mut tcp, &go_rx, &sent_tx, &done_rx);
    });
    let transport = Transport::connect(addr, None).expect("connect");
    let acks = read_late(transport, false, &go_tx, &sent_rx);
    done_tx.send(()).expect("server waits");
    server.join().expect("server");
    check(&acks);
}

#[test]
fn tls_stamps_every_ack_of_a_read_with_the_newest_arrival() {
    let pki = MemoryPki::generate().expect("pki");
    let server_config = pki.server_config().expect("server config");
    let client_config = client_config_from_memory(
        pki.ca.clone(),
        vec![pki.client_cert.clone()],
        PrivateKeyDer::Pkcs8(pki.client_key.clone().into()),
        &[],
    )
    .expect("client config");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let (go_tx, go_rx) = mpsc::channel();
    let (sent_tx, sent_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let server = thread::spawn(move || {
        let (mut tcp, _) = listener.accept().expect("accept");
        let mut conn = ServerConnection::new(Arc::clone(&server_config)).expect("server conn");
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).expect("server handshake");
        }
        let mut stream = StreamOwned::new(conn, tcp);
        send_two_acks(&mut stream, &go_rx, &sent_tx, &done_rx);
    });
    let name = ServerName::try_from("localhost").expect("name");
    let transport = Transport::connect(addr, Some((&client_config, &name))).expect("connect");
    let acks = read_late(transport, true, &go_tx, &sent_rx);
    done_tx.send(()).expect("server waits");
    server.join().expect("server");
    check(&acks);
}
