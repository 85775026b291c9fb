//! The built-in MQTT broker (3.1.1 and 5, as each CONNECT says): the target of a run when no
//! `--host` is given, and `mqload broker` on its own. It exists for calibration, so it must never be what limits a
//! run on the same host.
//!
//! Layout: `session` (server-side MQTT state, sans IO; its MQTT 5 side in `session_v5`,
//! `v5_state`, and `violation` for what closes a connection), `message` (a published message),
//! `hub` (subscriptions matched with [`crate::mqtt::topic`], retained store, client ids,
//! mailboxes, counters), `conn` (socket + rustls server side + bounded buffers), `ingest`
//! (packets in, events acted on), `throttle` (`--max-msg-rate`, `--max-connect-rate`), `reactor` (the mio loop per
//! thread), `pki` (in-memory CA and certificates with rcgen, or PEM files), `command` (the
//! subcommand and the embedded mode), `ws` (WebSocket framing for `--ws-port`).
//!
//! Throttle: with `--max-msg-rate N`, at most N PUBLISH packets a second are taken in (acked,
//! routed, counted), paced evenly over the whole broker. A PUBLISH past the rate waits, with
//! everything its connection sent after it, and the socket is not read meanwhile (TCP pushes
//! back on the client); nothing is dropped or reordered. `--max-connect-rate N` does the same
//! for CONNECT (a second, separate pace): a CONNECT past the rate waits, unanswered, in order.
//!
//! WebSocket: with `--ws-port`, a second listener on the same threads takes MQTT over
//! WebSocket (RFC 6455, subprotocol `mqtt`; TLS when the broker has it), framed by `ws`.
//!
//! Bounds: a packet larger than [`BrokerConfig::max_packet`] closes its connection (counted
//! as a bad packet); a connection's unsent plaintext is capped at 1 MiB, past which QoS 0
//! deliveries to it are dropped (counted) and a QoS 1/2 delivery disconnects it (counted as
//! slow); mailboxes between threads hold 65,536 messages (more are dropped, counted); at
//! most 100,000 retained topics and 256 MiB of retained payload; 1,000 subscriptions per
//! connection (more get SUBACK failure); 1,024 unreleased inbound QoS 2 messages per client;
//! 100,000 stored sessions (clean session off), each keeping at most 1,000 QoS 1/2 messages
//! while its client is away (more are dropped, counted); on its return they go out as the
//! client reads, under the 1 MiB cap, live deliveries waiting behind them in order.
//!
//! Sessions: with clean session off, a client's subscriptions outlive its connection and
//! QoS 1/2 messages matching them are kept until it returns (CONNACK then says session
//! present); they live in memory only, for the broker's lifetime.
//!
//! A QoS 1/2 delivery is kept until acknowledged (at most 10,000 per connection; a client
//! that reads but does not acknowledge is disconnected as slow, counted). When a client with a
//! stored session goes, what it had in flight is kept and, when it returns, re-sent first with
//! DUP and the original packet ids (PUBREL for QoS 2 messages it had received), as MQTT-4.4.0-1
//! asks; there is no redelivery within one connection, and a takeover (the new connection
//! arrives while the old one is still open) does not carry the old one's in-flight messages.
//!
//! Inbound QoS 2 ids awaiting PUBREL are kept with a stored session too.
//!
//! MQTT 5 (`session_v5`, `v5_state`): properties forwarded, reason codes, inbound topic
//! aliases, message and session expiry, the client's Receive Maximum, shared subscriptions,
//! subscription options, and DISCONNECT with a reason before the broker closes.
//!
//! Not implemented (documented gap): user name / password checks; MQTT 5 enhanced
//! authentication, subscription identifiers, will properties, aliases towards clients.

mod command;
mod conn;
mod error;
mod hub;
mod ingest;
mod message;
mod pki;
mod reactor;
mod session;
mod session_v5;
mod throttle;
mod v5_state;
mod violation;
mod ws;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use mio::{Poll, Token, Waker};
use rustls::ServerConfig;

pub use command::{BrokerArgs, Embedded, embedded_threads, run_command};
pub use error::BrokerError;
pub use pki::{MemoryPki, server_config_from_files};
pub use reactor::SYS_RECEIVED;
pub use session::{Event, ServerSession, Violation};

use hub::Hub;

use crate::threads;

/// Largest packet the broker accepts by default (mqload's own largest message fits).
pub const DEFAULT_MAX_PACKET: usize = 8 << 20;

/// How to run a broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Where to listen (port 0: a free one).
    pub addr: SocketAddr,
    /// TLS server configuration; `None` for plain TCP.
    pub tls: Option<Arc<ServerConfig>>,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Largest packet accepted.
    pub max_packet: usize,
    /// Most PUBLISH packets taken in per second, whole broker (`None`: no limit). Past it,
    /// publishes wait their turn in order (see [`throttle`]).
    pub max_msg_rate: Option<u64>,
    /// Most CONNECT packets answered per second, whole broker (`None`: no limit). Past it,
    /// connects wait their turn in order (see [`throttle`]).
    pub max_connect_rate: Option<u64>,
    /// Where to listen for MQTT over WebSocket (subprotocol `mqtt`, TLS as `tls` says), if
    /// anywhere (port 0: a free one).
    pub ws_addr: Option<SocketAddr>,
}

/// What a broker did, summed over its threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed for a malformed or forbidden packet, or a failed TLS handshake.
    pub bad_packets: u64,
    /// PUBLISH packets received.
    pub received: u64,
    /// PUBLISH packets sent to subscribers.
    pub sent: u64,
    /// QoS 0 deliveries dropped for a full subscriber buffer or mailbox.
    pub dropped: u64,
    /// Subscribers disconnected for not reading their QoS 1/2 deliveries.
    pub slow_disconnects: u64,
    /// Connections closed for silence (1.5 x keep alive) or no CONNECT within 10 s.
    pub expired: u64,
    /// Connections closed because their client id connected again.
    pub taken_over: u64,
}

impl fmt::Display for BrokerStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "connections accepted {}, bad packets {}, messages received {}, messages sent {}, dropped {}, slow subscribers disconnected {}, keepalive expired {}, taken over {}",
            self.accepted,
            self.bad_packets,
            self.received,
            self.sent,
            self.dropped,
            self.slow_disconnects,
            self.expired,
            self.taken_over
        )
    }
}

/// A broker running on its own threads; [`RunningBroker::stop`] ends it.
#[derive(Debug)]
pub struct RunningBroker {
    /// The address it listens on (with the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// The WebSocket listener's address, when there is one.
    pub ws_addr: Option<SocketAddr>,
    stop: Arc<AtomicBool>,
    hub: Arc<Hub>,
    threads: Vec<JoinHandle<()>>,
}

impl RunningBroker {
    /// Binds the listener and starts the worker threads.
    pub fn start(config: &BrokerConfig) -> Result<RunningBroker, BrokerError> {
        if config.threads == 0 {
            return Err(BrokerError::ZeroThreads);
        }
        let (listener, addr) = bind(config.addr)?;
        let ws = config.ws_addr.map(bind).transpose()?;
        let ws_addr = ws.as_ref().map(|(_, addr)| *addr);
        let throttle = config
            .max_msg_rate
            .map(|rate| Arc::new(throttle::Throttle::new(rate, std::time::Instant::now())));
        let connect_throttle = config
            .max_connect_rate
            .map(|rate| Arc::new(throttle::Throttle::new(rate, std::time::Instant::now())));
        let mut setups = Vec::new();
        let mut mailboxes = Vec::new();
        for index in 0..config.threads {
            let poll = Poll::new().map_err(BrokerError::Io)?;
            let waker = Arc::new(Waker::new(poll.registry(), Token(1)).map_err(BrokerError::Io)?);
            let (tx, rx) = crossbeam_channel::bounded(hub::MAILBOX_CAPACITY);
            mailboxes.push((tx, waker));
            let clone = listener.try_clone().map_err(BrokerError::Io)?;
            let ws_listener = match &ws {
                Some((ws, _)) => Some(ws.try_clone().map_err(BrokerError::Io)?),
                None => None,
            };
            setups.push(reactor::WorkerSetup {
                index,
                poll,
                listener: mio::net::TcpListener::from_std(clone),
                ws_listener: ws_listener.map(mio::net::TcpListener::from_std),
                mailbox: rx,
                tls: config.tls.clone(),
                max_packet: config.max_packet,
                throttle: throttle.clone(),
                connect_throttle: connect_throttle.clone(),
            });
        }
        let hub = Arc::new(Hub::new(mailboxes));
        let stop = Arc::new(AtomicBool::new(false));
        let reactors = setups.into_iter().map(|setup| {
            let (thread_hub, thread_stop) = (Arc::clone(&hub), Arc::clone(&stop));
            move || reactor::run(setup, thread_hub, &thread_stop)
        });
        let threads = match threads::spawn_each("mqload-broker", reactors) {
            Ok(threads) => threads,
            Err(failed) => {
                stop.store(true, Ordering::Relaxed);
                hub.wake_all();
                threads::join_all(failed.started);
                return Err(BrokerError::Io(failed.error));
            }
        };
        Ok(RunningBroker {
            addr,
            ws_addr,
            stop,
            hub,
            threads,
        })
    }

    /// The counters so far (each thread publishes its own after every wakeup).
    pub fn stats(&self) -> BrokerStats {
        let hub = &self.hub;
        BrokerStats {
            accepted: hub.total(|c| &c.accepted),
            bad_packets: hub.total(|c| &c.bad_packets),
            received: hub.total(|c| &c.received),
            sent: hub.total(|c| &c.sent),
            dropped: hub.total(|c| &c.dropped),
            slow_disconnects: hub.total(|c| &c.slow_disconnects),
            expired: hub.total(|c| &c.expired),
            taken_over: hub.total(|c| &c.taken_over),
        }
    }

    /// Connections open now.
    pub fn open_connections(&self) -> u64 {
        self.hub.total(|c| &c.open)
    }

    /// Waits until every client has gone (so what they sent before leaving is counted), at
    /// most `timeout`, then stops; returns the final counters.
    pub fn stop_when_idle(self, timeout: std::time::Duration) -> BrokerStats {
        let deadline = std::time::Instant::now() + timeout;
        while self.open_connections() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        self.stop()
    }

    /// Stops every thread (closing every connection) and returns the final counters.
    pub fn stop(mut self) -> BrokerStats {
        self.shut_down();
        self.stats()
    }

    fn shut_down(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.hub.wake_all();
        threads::join_all(self.threads.drain(..));
    }
}

/// A non-blocking listening socket on `addr`, and the address it got.
fn bind(addr: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), BrokerError> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, source })?;
    listener.set_nonblocking(true).map_err(BrokerError::Io)?;
    let bound = listener.local_addr().map_err(BrokerError::Io)?;
    Ok((listener, bound))
}

impl Drop for RunningBroker {
    fn drop(&mut self) {
        self.shut_down();
    }
}
