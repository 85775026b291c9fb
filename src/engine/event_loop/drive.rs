//! Driving one device from the event loop: open its socket when the device says so (and the
//! connect gate allows), pump it, and carry out what it decided: drop the socket, count the
//! loop's own tallies, and plan when it must be woken next.

use std::fmt;
use std::io;
use std::time::Instant;

use mio::{Interest, Token};

use super::{Shared, micros};
use crate::engine::conn::Conn;
use crate::engine::device::{AttemptStep, Close, Phase, Start};
use crate::net::{Link, LinkError, WsOpen, bind};
use crate::plan::MAX_INCOMING_PACKET;
use crate::plan::transport::SigningError;
use crate::session::SessionError;

/// Why a device's connection attempt or connection failed.
#[derive(Debug)]
pub(super) enum DeviceError {
    /// The MQTT session refused an operation, or the broker broke the protocol.
    Session(SessionError),
    /// The socket, TLS or the WebSocket upgrade failed, or the broker closed the connection.
    Transport(LinkError),
    /// The socket could not be registered with the event loop.
    Register(io::Error),
    /// TCP, TLS (the WebSocket upgrade) and CONNACK together took longer than
    /// `--connect-timeout`.
    ConnectTimeout {
        /// The attempt included a WebSocket upgrade.
        websocket: bool,
    },
    /// The WebSocket upgrade could not be signed at connect time (SigV4).
    Signing(SigningError),
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::Session(e) => write!(f, "{e}"),
            DeviceError::Transport(e) => write!(f, "{e}"),
            DeviceError::Register(e) => write!(f, "{e}"),
            DeviceError::Signing(e) => write!(f, "WebSocket upgrade: signing failed: {e}"),
            DeviceError::ConnectTimeout { websocket: false } => {
                f.write_str("connect timeout (TCP + TLS + CONNACK)")
            }
            DeviceError::ConnectTimeout { websocket: true } => {
                f.write_str("connect timeout (TCP + TLS + WebSocket upgrade + CONNACK)")
            }
        }
    }
}

impl From<SessionError> for DeviceError {
    fn from(e: SessionError) -> DeviceError {
        DeviceError::Session(e)
    }
}

impl From<LinkError> for DeviceError {
    fn from(e: LinkError) -> DeviceError {
        DeviceError::Transport(e)
    }
}

/// When a device is woken next, after the loop drove it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Wake {
    /// When the device asks ([`crate::engine::device::Device::poll_timeout`]).
    Planned,
    /// At this instant.
    At(Instant),
    /// Not by a timer: the connect gate admits it, or it is closed.
    Never,
}

/// How far a device's connection attempt got (for a failed connect when the run ends).
pub(super) fn attempt_step(conn: &mut Conn) -> AttemptStep {
    let Some(transport) = conn.transport.as_mut() else {
        return AttemptStep::Tcp;
    };
    if !matches!(transport.check_connected(), Ok(true)) {
        AttemptStep::Tcp
    } else if transport.tls_handshaking() {
        AttemptStep::Tls
    } else if transport.upgrading() {
        AttemptStep::WebSocket
    } else {
        AttemptStep::ConnAck
    }
}

impl Shared<'_> {
    /// Everything a device has to do now: start, socket IO, events, publishes, timers.
    pub(super) fn drive(&mut self, slot: usize, conn: &mut Conn, now: Instant) {
        let before = conn.device.phase();
        match before {
            Phase::Closed => return,
            Phase::Idle => {
                let wake = self.try_start(slot, conn, now);
                if !matches!(wake, Wake::Planned) {
                    self.settle(slot, conn, before, now, wake);
                    return;
                }
            }
            _ => {}
        }
        if let Err(e) = self.pump(conn, now) {
            conn.device.failed(now, &mut self.env, &e.to_string());
        }
        self.settle(slot, conn, before, now, Wake::Planned);
    }

    /// An idle device whose time has come opens its socket, unless the device says not yet
    /// (or never) or the connect gate is full. `Wake::Planned` means an attempt is under way.
    fn try_start(&mut self, slot: usize, conn: &mut Conn, now: Instant) -> Wake {
        match conn.device.poll_start(now, &mut self.env) {
            Start::Now => {}
            Start::At(at) => return Wake::At(at),
            Start::Closed => return Wake::Never,
        }
        if std::mem::take(&mut conn.admitted) {
            let waited = now.saturating_duration_since(conn.device.idle_until());
            self.env.stats.record_connect_queued(micros(waited));
        } else if !self.gate.may_start() {
            self.gate.wait(slot);
            return Wake::Never;
        }
        if let Err(e) = self.start_connect(slot, conn, now) {
            conn.device.failed(now, &mut self.env, &e.to_string());
            return Wake::Planned;
        }
        self.gate.started();
        Wake::Planned
    }

    /// Opens the socket (and TLS) for the device's CONNECT.
    fn start_connect(
        &mut self,
        slot: usize,
        conn: &mut Conn,
        now: Instant,
    ) -> Result<(), DeviceError> {
        conn.device.begin_attempt(now, &mut self.env)?;
        let plan = self.env.plan;
        let (addr, source) = bind::route(conn.device.user(), &plan.addrs, &plan.scale.bind);
        let tls = plan.tls.as_ref().map(|(config, name)| (config, name));
        let user = Some(conn.device.user());
        let mut transport = match &plan.websocket {
            None => Link::connect(addr, source, user, tls, None)?,
            Some(ws) => {
                // Signed (SigV4) for this second: each connection at its own connect time.
                let unix_secs = self.env.epoch.unix_at(now) as u64;
                let target = ws.request_target(unix_secs).map_err(DeviceError::Signing)?;
                let headers: Vec<(&str, &str)> = (ws.headers.iter())
                    .map(|(name, value)| (name.as_str(), value.as_str()))
                    .collect();
                let open = WsOpen {
                    host: &ws.host,
                    path_and_query: &target,
                    headers: &headers,
                    max_frame: MAX_INCOMING_PACKET as u64 + 16,
                };
                Link::connect(addr, source, user, tls, Some(&open))?
            }
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        self.poll
            .registry()
            .register(transport.socket(), Token(slot), interest)
            .map_err(DeviceError::Register)?;
        conn.transport = Some(transport);
        conn.readable = false;
        Ok(())
    }

    /// Carries out what the device decided since `before`: drops its socket, counts the
    /// loop's tallies (connect gate, handshakes, closed devices), and plans its next wake.
    /// Inlined into `drive` (twice per message): the call's register saves cost more than the
    /// checks themselves.
    #[inline(always)]
    pub(super) fn settle(
        &mut self,
        slot: usize,
        conn: &mut Conn,
        before: Phase,
        now: Instant,
        wake: Wake,
    ) {
        let after = conn.device.phase();
        if before == Phase::Connecting && after != Phase::Connecting {
            self.gate.ended();
        }
        if conn.device.take_connected()
            && let Some(resumed) = conn.transport.as_ref().and_then(Link::resumed)
        {
            self.env.stats.record_handshake(resumed);
        }
        if let Some(how) = conn.device.poll_close()
            && let Some(mut transport) = conn.transport.take()
        {
            if how == Close::Polite {
                transport.close();
            }
            let _ = self.poll.registry().deregister(transport.socket());
        }
        if before != Phase::Closed && after == Phase::Closed {
            self.closed += 1;
            // A controller may revive it later: as a new device, not mid-churn.
            conn.admitted = false;
            return;
        }
        if before == Phase::Closed && after != Phase::Closed {
            self.closed = self.closed.saturating_sub(1);
        }
        let at = match wake {
            Wake::Planned => {
                let backlog = conn.transport.as_ref().is_some_and(Link::has_backlog);
                conn.device.poll_timeout(now, &self.env, backlog)
            }
            Wake::At(at) => at,
            Wake::Never => return,
        };
        if after != Phase::Closed {
            self.schedule(slot, conn, at);
        }
    }
}
