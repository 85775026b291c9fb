//! The `/metrics` responder: one thread with its own mio loop that accepts scrapes on the
//! address it is given, renders the latest snapshot, and closes each connection after one
//! answer. Every connection has its own deadline, so a slow or silent client (slowloris) costs
//! a slot until then and never delays anyone else.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::exposition::Exposition;
use super::handoff::SnapshotReader;
use super::http::{self, Answer};
use super::snapshot::Snapshot;

/// Limits on what a client may cost the responder.
#[derive(Debug, Clone, Copy)]
pub struct ResponderOptions {
    /// How long a connection may take, from accept to the last byte of its answer.
    pub connection_timeout: Duration,
    /// The longest request head read; longer ones get `431`.
    pub max_request_head: usize,
    /// Connections open at once; more are closed at accept.
    pub max_connections: usize,
}

impl Default for ResponderOptions {
    fn default() -> Self {
        ResponderOptions {
            connection_timeout: Duration::from_secs(5),
            max_request_head: 8 * 1024,
            max_connections: 32,
        }
    }
}

/// Why the responder could not start.
#[derive(Debug)]
pub enum ResponderError {
    /// The address could not be listened on (in use, not local, no permission).
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        source: io::Error,
    },
    /// The poller or its thread could not be set up.
    Setup(io::Error),
}

impl fmt::Display for ResponderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponderError::Bind { addr, source } => write!(
                f,
                "cannot serve metrics on {addr}: {source}; give a free local address such as 127.0.0.1:9273"
            ),
            ResponderError::Setup(source) => {
                write!(f, "cannot start the metrics responder: {source}")
            }
        }
    }
}

impl std::error::Error for ResponderError {}

/// How long a connection may stay open after its answer was written, waiting for the client
/// to close its side.
const DRAIN_LINGER: Duration = Duration::from_secs(1);

const LISTENER: Token = Token(usize::MAX - 1);
const STOP: Token = Token(usize::MAX);

/// A running responder; stopping it (or dropping it) closes the listener and joins the thread.
pub struct MetricsResponder {
    local_addr: SocketAddr,
    stop: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsResponder {
    /// Listens on exactly `addr` (port 0 picks a free one) and serves `reader`'s latest
    /// snapshot at `GET /metrics` until stopped.
    pub fn start<T: Snapshot>(
        addr: SocketAddr,
        reader: SnapshotReader<T>,
        options: ResponderOptions,
    ) -> Result<MetricsResponder, ResponderError> {
        let mut listener =
            TcpListener::bind(addr).map_err(|source| ResponderError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(ResponderError::Setup)?;
        let poll = Poll::new().map_err(ResponderError::Setup)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(ResponderError::Setup)?;
        let stop = Arc::new(Waker::new(poll.registry(), STOP).map_err(ResponderError::Setup)?);
        let responder = Responder {
            poll,
            listener,
            reader,
            options,
            slots: Vec::new(),
            free: Vec::new(),
            body: String::new(),
        };
        let thread = thread::Builder::new()
            .name("metrics".into())
            .spawn(move || responder.run())
            .map_err(ResponderError::Setup)?;
        Ok(MetricsResponder {
            local_addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address listened on (with the port chosen when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Closes the listener and every connection, and waits for the thread to end.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(thread) = self.thread.take() {
            // If waking fails the poller is gone, and so is the loop.
            let _ = self.stop.wake();
            let _ = thread.join();
        }
    }
}

impl Drop for MetricsResponder {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Where a connection is in its one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the request head.
    Reading,
    /// Writing `response[written..]`.
    Writing,
    /// Answer sent and write side shut; reading to EOF so closing does not reset the
    /// connection under unread request bytes (which could destroy the answer in flight).
    Draining,
}

/// One connection and its buffers; a closed slot keeps its buffers for the next connection.
struct Slot {
    stream: Option<TcpStream>,
    phase: Phase,
    deadline: Instant,
    request: Vec<u8>,
    response: Vec<u8>,
    written: usize,
}

struct Responder<T> {
    poll: Poll,
    listener: TcpListener,
    reader: SnapshotReader<T>,
    options: ResponderOptions,
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// The rendered metrics, reused scrape after scrape.
    body: String,
}

impl<T: Snapshot> Responder<T> {
    fn run(mut self) {
        let mut events = Events::with_capacity(64);
        loop {
            let timeout = self.next_deadline().map(|deadline| {
                // Round up so a wake never comes a hair before the deadline it is for.
                deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(1)
            });
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            for event in &events {
                match event.token() {
                    STOP => return,
                    LISTENER => self.accept_all(),
                    Token(index) => self.drive(index),
                }
            }
            self.close_expired(Instant::now());
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter(|slot| slot.stream.is_some())
            .map(|slot| slot.deadline)
            .min()
    }

    /// The open connection still reading its request that was accepted first.
    fn oldest_reading(&self) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.stream.is_some() && slot.phase == Phase::Reading)
            .min_by_key(|(_, slot)| slot.deadline)
            .map(|(index, _)| index)
    }

    fn accept_all(&mut self) {
        loop {
            let mut stream = match self.listener.accept() {
                Ok((stream, _peer)) => stream,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                // A connection reset before accept, or out of descriptors: skip it; the
                // listener stays registered and the next readiness brings us back.
                Err(_) => return,
            };
            let index = match self.free.pop() {
                Some(index) => index,
                None if self.slots.len() < self.options.max_connections => {
                    self.slots.push(Slot {
                        stream: None,
                        phase: Phase::Reading,
                        deadline: Instant::now(),
                        request: Vec::new(),
                        response: Vec::new(),
                        written: 0,
                    });
                    self.slots.len() - 1
                }
                None => match self.oldest_reading() {
                    // Full: the client that has sat longest without finishing its request
                    // makes room, so silent clients cannot lock scrapers out.
                    Some(index) => {
                        self.release(index);
                        index
                    }
                    // Full of answers being written: the newcomer is closed at once.
                    None => continue,
                },
            };
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(&mut stream, Token(index), interest)
                .is_err()
            {
                self.free.push(index);
                continue;
            }
            let slot = &mut self.slots[index];
            slot.stream = Some(stream);
            slot.phase = Phase::Reading;
            slot.deadline = Instant::now() + self.options.connection_timeout;
            slot.request.clear();
            slot.response.clear();
            slot.written = 0;
            // Edge-triggered: bytes may already be waiting.
            self.drive(index);
        }
    }

    /// Moves one connection as far as its socket allows.
    fn drive(&mut self, index: usize) {
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        let Some(stream) = slot.stream.as_mut() else {
            return;
        };
        if slot.phase == Phase::Reading {
            match read_available(stream, &mut slot.request, self.options.max_request_head) {
                Ok(open) => {
                    match http::read_request(&slot.request, self.options.max_request_head) {
                        Some(answer) => {
                            respond(answer, &mut self.reader, &mut self.body, &mut slot.response);
                            slot.phase = Phase::Writing;
                        }
                        None if !open => return self.close(index),
                        None => return,
                    }
                }
                Err(_) => return self.close(index),
            }
        }
        if slot.phase == Phase::Writing {
            match write_available(stream, &slot.response[slot.written..]) {
                Ok(written) => slot.written += written,
                Err(_) => return self.close(index),
            }
            if slot.written < slot.response.len() {
                return;
            }
            let _ = stream.shutdown(Shutdown::Write);
            slot.phase = Phase::Draining;
            slot.deadline = slot.deadline.min(Instant::now() + DRAIN_LINGER);
        }
        if slot.phase == Phase::Draining {
            let mut sink = [0_u8; 512];
            loop {
                match stream.read(&mut sink) {
                    Ok(0) => return self.close(index),
                    Ok(_) => {}
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return self.close(index),
                }
            }
        }
    }

    fn close_expired(&mut self, now: Instant) {
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            if slot.stream.is_some() && slot.deadline <= now {
                self.close(index);
            }
        }
    }

    /// Closes a connection and puts its slot on the free list.
    fn close(&mut self, index: usize) {
        if self.release(index) {
            self.free.push(index);
        }
    }

    /// Closes a connection, leaving its slot to the caller; false if it was not open.
    fn release(&mut self, index: usize) -> bool {
        let Some(mut stream) = self.slots[index].stream.take() else {
            return false;
        };
        let _ = self.poll.registry().deregister(&mut stream);
        true
    }
}

/// Puts the whole answer to `answer` in `response`, rendering the latest snapshot into the
/// shared `body` buffer first when it is a metrics answer.
fn respond<T: Snapshot>(
    answer: Answer,
    reader: &mut SnapshotReader<T>,
    body: &mut String,
    response: &mut Vec<u8>,
) {
    response.clear();
    let Answer::Metrics { format, with_body } = answer else {
        http::write_error_response(response, answer);
        return;
    };
    body.clear();
    let mut exposition = Exposition::new(body, format);
    reader.latest().render(&mut exposition);
    exposition.finish();
    http::write_metrics_head(response, format, body.len());
    if with_body {
        response.extend_from_slice(body.as_bytes());
    }
}

/// Reads what has arrived into `request`, never past `max` bytes; false once the peer has
/// closed its side.
fn read_available(stream: &mut TcpStream, request: &mut Vec<u8>, max: usize) -> io::Result<bool> {
    let mut chunk = [0_u8; 1024];
    while request.len() < max {
        let room = (max - request.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]) {
            Ok(0) => return Ok(false),
            Ok(read) => request.extend_from_slice(&chunk[..read]),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(true)
}

/// Writes as much of `bytes` as the socket takes now; how much that was.
fn write_available(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while written < bytes.len() {
        match stream.write(&bytes[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(count) => written += count,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream as StdStream;

    use super::*;
    use crate::metrics::handoff::snapshot_handoff;
    use crate::metrics::snapshot::LoadSnapshot;

    const LOOPBACK_ANY_PORT: &str = "127.0.0.1:0";

    fn start(
        options: ResponderOptions,
    ) -> (
        MetricsResponder,
        crate::metrics::SnapshotPublisher<LoadSnapshot>,
    ) {
        let (publisher, reader) = snapshot_handoff::<LoadSnapshot>();
        let addr = LOOPBACK_ANY_PORT.parse().expect("a socket address");
        let responder = MetricsResponder::start(addr, reader, options).expect("listen on loopback");
        (responder, publisher)
    }

    /// Sends `request` on a fresh connection and reads the answer to EOF.
    fn try_exchange(addr: SocketAddr, request: &[u8]) -> io::Result<String> {
        let mut stream = StdStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(request)?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        try_exchange(addr, request).expect("an answer read to EOF")
    }

    #[test]
    fn serves_the_latest_snapshot_and_refuses_the_rest() {
        let (responder, publisher) = start(ResponderOptions::default());
        let addr = responder.local_addr();
        let mut snapshot = publisher.blank();
        snapshot.users = 42;
        publisher.publish(snapshot);
        let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
        let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.contains("Content-Type: text/plain; version=0.0.4"),
            "{head}"
        );
        assert!(
            head.contains(&format!("Content-Length: {}\r\n", body.len())),
            "{head}"
        );
        assert!(body.lines().any(|line| line == "mqload_users 42"), "{body}");

        let open = exchange(
            addr,
            b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text\r\n\r\n",
        );
        assert!(open.contains("Content-Type: application/openmetrics-text; version=1.0.0"));
        assert!(open.ends_with("# EOF\n"));

        let head_only = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(head_only.starts_with("HTTP/1.1 200 OK\r\n") && head_only.ends_with("\r\n\r\n"));

        assert!(exchange(addr, b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        assert!(exchange(addr, b"DELETE /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
        assert!(exchange(addr, b"hello\r\n\r\n").starts_with("HTTP/1.1 400 "));
        let huge = vec![b'x'; 20_000];
        assert!(exchange(addr, &huge).starts_with("HTTP/1.1 431 "));
        responder.stop();
        assert!(
            StdStream::connect(addr).is_err(),
            "the listener is closed after stop"
        );
    }

    #[test]
    fn a_slow_client_neither_blocks_others_nor_stays_past_its_deadline() {
        let timeout = Duration::from_secs(1);
        let options = ResponderOptions {
            connection_timeout: timeout,
            ..ResponderOptions::default()
        };
        let (responder, _publisher) = start(options);
        let addr = responder.local_addr();
        let mut slow = StdStream::connect(addr).expect("connect");
        slow.write_all(b"GET /metr").expect("send a part");
        // Then a byte every 50 ms: trickling must not push the deadline back.
        let mut trickle = slow.try_clone().expect("a second handle");
        let trickler = thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(4);
            while Instant::now() < until && trickle.write_all(b"i").is_ok() {
                thread::sleep(Duration::from_millis(50));
            }
        });

        let began = Instant::now();
        let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 200 OK"));
        assert!(
            began.elapsed() < timeout / 2,
            "served in {:?} beside a stalled client",
            began.elapsed()
        );

        slow.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut rest = Vec::new();
        // Closed under unread trickled bytes, the connection may end in a reset.
        let closed = slow.read_to_end(&mut rest);
        let reset = matches!(&closed, Err(e) if e.kind() == io::ErrorKind::ConnectionReset);
        assert!(
            (closed.is_ok() || reset) && rest.is_empty(),
            "closed without an answer: {closed:?} {rest:?}"
        );
        let waited = began.elapsed();
        assert!(
            waited >= timeout - Duration::from_millis(50) && waited < timeout * 3,
            "closed after {waited:?}"
        );
        trickler.join().expect("the trickling thread ends");
    }

    #[test]
    fn over_the_limit_the_oldest_silent_client_makes_room() {
        let options = ResponderOptions {
            max_connections: 2,
            ..ResponderOptions::default()
        };
        let (responder, _publisher) = start(options);
        let addr = responder.local_addr();
        let mut oldest = StdStream::connect(addr).expect("connect");
        let mut younger = StdStream::connect(addr).expect("connect");
        let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert!(
            answer.starts_with("HTTP/1.1 200 OK"),
            "served while full: {answer}"
        );

        oldest
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut rest = Vec::new();
        assert_eq!(
            oldest.read_to_end(&mut rest).expect("closed"),
            0,
            "the oldest is evicted"
        );
        younger.set_nonblocking(true).expect("non-blocking");
        let still_open = younger.read(&mut [0_u8; 16]);
        assert!(
            matches!(&still_open, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            "the younger one keeps its slot: {still_open:?}"
        );
    }
}
