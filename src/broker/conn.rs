//! One accepted connection's IO: socket, optional rustls server side, input and output
//! buffers with a cap, and the MQTT session over them.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};

use super::message::Message;
use super::session::ServerSession;
use super::ws::WsLink;
use crate::mqtt::QoS;
use crate::net::flush;

/// Plaintext a connection may have waiting to be sent (beyond this, QoS 0 deliveries are
/// dropped and QoS 1/2 deliveries disconnect the subscriber).
pub const MAX_OUTGOING: usize = 1 << 20;
/// Most deliveries waiting in [`Conn::backlog`] besides what a resumed session brought
/// (the same bound as an absent client's queue); beyond, a live delivery is refused.
pub const MAX_BACKLOG: usize = super::hub::MAX_OFFLINE_QUEUE;
/// Encrypted bytes rustls may hold for a slow socket.
const MAX_TLS_BUFFER: usize = 1 << 20;

/// Why a connection closes.
#[derive(Debug)]
pub enum Close {
    /// The client sent DISCONNECT.
    Goodbye,
    /// The peer closed the socket or it failed.
    Gone,
    /// A protocol violation or TLS failure (counted as a bad packet).
    Bad(String),
    /// The subscriber could not keep up with QoS 1/2 deliveries.
    Slow,
    /// Its client id connected again elsewhere.
    TakenOver,
    /// Silent past 1.5 x its keep alive, or no CONNECT in time.
    KeepAlive,
}

/// A connection in a worker's table.
pub struct Conn {
    /// The socket.
    pub tcp: TcpStream,
    /// TLS state (server side), unless the broker runs plain TCP.
    pub tls: Option<Box<ServerConnection>>,
    /// Bytes of an incomplete packet.
    pub inbuf: Vec<u8>,
    /// Plaintext replies and deliveries not yet handed to TLS / the socket (MQTT bytes; on a
    /// WebSocket connection they are framed into [`WsLink::wire`] at the flush).
    pub out: Vec<u8>,
    /// WebSocket framing, for a connection accepted on `--ws-port`.
    pub ws: Option<Box<WsLink>>,
    /// MQTT state.
    pub session: ServerSession,
    /// Slot generation (see `ConnRef`).
    pub generation: u64,
    /// When the connection was accepted.
    pub opened: Instant,
    /// Last wakeup that brought bytes from this client.
    pub last_heard: Instant,
    /// It is queued for a flush at the end of this wakeup.
    pub dirty: bool,
    /// A PUBLISH waits for its turn under `--max-msg-rate`: what follows it waits in `inbuf`
    /// and the socket is not read until it has gone through.
    pub held: bool,
    /// Deliveries waiting for room under [`MAX_OUTGOING`], oldest first (message, QoS,
    /// retain): what a resumed session had queued, and live deliveries behind them, so
    /// that order holds. Taken into `out` as the socket drains ([`Conn::refill`]).
    pub backlog: VecDeque<(Arc<Message>, QoS, bool)>,
}

/// What [`Conn::refill`] did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Refilled {
    /// Deliveries written (or, MQTT 5, handed to the Receive Maximum's queue).
    pub sent: u64,
    /// Deliveries the session refused (too many unacknowledged, or one that does not encode).
    pub refused: u64,
}

impl Conn {
    /// Wraps an accepted socket.
    pub fn new(
        tcp: TcpStream,
        tls: Option<&Arc<ServerConfig>>,
        ws: Option<Box<WsLink>>,
        generation: u64,
        now: Instant,
    ) -> Result<Conn, rustls::Error> {
        let tls = match tls {
            Some(config) => {
                let mut conn = ServerConnection::new(Arc::clone(config))?;
                conn.set_buffer_limit(Some(MAX_TLS_BUFFER));
                Some(Box::new(conn))
            }
            None => None,
        };
        Ok(Conn {
            tcp,
            tls,
            inbuf: Vec::new(),
            out: Vec::new(),
            ws,
            session: ServerSession::new(),
            generation,
            opened: now,
            last_heard: now,
            dirty: false,
            held: false,
            backlog: VecDeque::new(),
        })
    }

    /// Reads the socket until it would block, handing each plaintext chunk to `on_plain`.
    /// `net` is the worker's read buffer, `plain` its decrypted-bytes buffer. Stops after the
    /// chunk in which `on_plain` set [`Conn::held`] (the rest is read when it is released).
    pub fn read(
        &mut self,
        net: &mut [u8],
        plain: &mut [u8],
        mut on_plain: impl FnMut(&mut Conn, &[u8]) -> Result<(), Close>,
    ) -> Result<(), Close> {
        loop {
            let n = match self.tcp.read(net) {
                Ok(0) => return Err(Close::Gone),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(Close::Gone),
            };
            if self.tls.is_none() {
                on_plain(self, &net[..n])?;
                if self.held {
                    return Ok(());
                }
                continue;
            }
            let mut input = &net[..n];
            while !input.is_empty() {
                let tls = self.tls.as_mut().ok_or(Close::Gone)?;
                if tls.read_tls(&mut input).is_err() {
                    return Err(Close::Bad("TLS input buffer full".into()));
                }
                let state = match tls.process_new_packets() {
                    Ok(state) => state,
                    Err(e) => {
                        let _ = tls.write_tls(&mut self.tcp);
                        return Err(Close::Bad(format!("TLS: {e}")));
                    }
                };
                let mut available = state.plaintext_bytes_to_read();
                let peer_closed = state.peer_has_closed();
                while available > 0 {
                    let tls = self.tls.as_mut().ok_or(Close::Gone)?;
                    let k = match tls.reader().read(plain) {
                        Ok(0) => break,
                        Ok(k) => k,
                        Err(_) => break,
                    };
                    available = available.saturating_sub(k);
                    on_plain(self, &plain[..k])?;
                }
                if peer_closed && !self.held {
                    return Err(Close::Gone);
                }
            }
            if self.held {
                return Ok(());
            }
        }
    }

    /// Hands queued plaintext to TLS and writes what the socket takes; `Ok(true)` when
    /// everything went out.
    pub fn flush(&mut self) -> Result<bool, Close> {
        let out = match &mut self.ws {
            Some(ws) => {
                ws.wrap(&mut self.out);
                &mut ws.wire
            }
            None => &mut self.out,
        };
        let flushed = match &mut self.tls {
            // rustls' buffer is bounded: offer it the rest of `out` after every write.
            Some(tls) => flush::flush_tls(&mut ***tls, &mut self.tcp, |tls| {
                if !out.is_empty() && !tls.is_handshaking() {
                    let n = tls.writer().write(out)?;
                    out.drain(..n);
                }
                Ok(())
            }),
            None => flush::flush_plain(&mut self.tcp, out),
        };
        match flushed {
            Ok(done) => Ok(done && self.pending() == 0),
            Err(_) => Err(Close::Gone),
        }
    }

    /// Whether deliveries wait for room: a resumed session's unacknowledged ones to send
    /// again, (MQTT 5) held ones whose turn has come, or [`Conn::backlog`]. A live delivery then queues behind them.
    pub fn has_backlog(&self) -> bool {
        self.session.resending() || self.session.may_release_held() || !self.backlog.is_empty()
    }

    /// Moves a resumed session's unacknowledged deliveries, then (MQTT 5) held ones whose
    /// turn has come, then those in [`Conn::backlog`], into `out`, in order, while at most [`MAX_OUTGOING`] bytes wait to be sent.
    pub fn refill(&mut self, now: Instant) -> Refilled {
        let mut done = Refilled::default();
        while self.pending() <= MAX_OUTGOING && self.session.resend_next(&mut self.out, now) {}
        // MQTT 5: held back by the Receive Maximum, they are older than the backlog.
        // (Counted as sent when they were held.)
        while self.pending() <= MAX_OUTGOING && self.session.release_held(&mut self.out, now) {}
        while self.pending() <= MAX_OUTGOING {
            let Some((message, qos, retain)) = self.backlog.pop_front() else {
                break;
            };
            match self
                .session
                .deliver(&message, qos, retain, &mut self.out, now)
            {
                true => done.sent += 1,
                false => done.refused += 1,
            }
        }
        done
    }

    /// Bytes waiting to go out (before TLS): MQTT bytes, and frames on a WebSocket.
    pub fn pending(&self) -> usize {
        self.out.len() + self.ws.as_ref().map_or(0, |ws| ws.wire.len())
    }

    /// Best-effort goodbye: pending bytes (a refusing CONNACK, say), TLS close_notify, shutdown.
    pub fn shutdown(&mut self) {
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
        }
        let _ = self.flush();
        let _ = self.tcp.shutdown(std::net::Shutdown::Both);
    }
}
