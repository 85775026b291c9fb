//! Driving one device from the event loop: start its connection attempt when its turn comes,
//! pump it, and plan when it must be woken next.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use mio::{Interest, Token};

use super::{Shared, micros};
use crate::delivery::STAMP_HEAD_LEN;
use crate::engine::conn::{Conn, Phase};
use crate::engine::subscriber::GATE_POLL;
use crate::net::{Transport, TransportError, bind};
use crate::session::{Session, SessionError};

/// Why a device's connection attempt or connection failed.
#[derive(Debug)]
pub(super) enum DeviceError {
    /// The MQTT session refused an operation, or the broker broke the protocol.
    Session(SessionError),
    /// The socket or TLS failed, or the broker closed the connection.
    Transport(TransportError),
    /// The socket could not be registered with the event loop.
    Register(io::Error),
    /// TCP, TLS and CONNACK together took longer than `--connect-timeout`.
    ConnectTimeout,
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::Session(e) => write!(f, "{e}"),
            DeviceError::Transport(e) => write!(f, "{e}"),
            DeviceError::Register(e) => write!(f, "{e}"),
            DeviceError::ConnectTimeout => f.write_str("connect timeout (TCP + TLS + CONNACK)"),
        }
    }
}

impl From<SessionError> for DeviceError {
    fn from(e: SessionError) -> DeviceError {
        DeviceError::Session(e)
    }
}

impl From<TransportError> for DeviceError {
    fn from(e: TransportError) -> DeviceError {
        DeviceError::Transport(e)
    }
}

impl Shared<'_> {
    /// Everything a device has to do now: socket IO, session events, publishes, timers.
    pub(super) fn drive(&mut self, slot: usize, conn: &mut Conn, now: Instant) {
        let started = match conn.phase {
            Phase::Closed => false,
            Phase::Idle => self.try_start(slot, conn, now),
            _ => true,
        };
        if !started {
            return;
        }
        if let Err(e) = self.pump(conn, now) {
            match conn.phase {
                Phase::Connecting => self.fail_connect(slot, conn, now, &e.to_string()),
                _ => self.fail_connection(slot, conn, now, &e.to_string()),
            }
            return;
        }
        if conn.phase != Phase::Closed {
            let wake = self.next_wake(conn, now);
            self.schedule(slot, conn, wake);
        }
    }

    /// An idle device whose time has come starts a connection attempt, unless the run is
    /// stopping, it is not wanted, subscribers are not ready or the connect gate is full.
    /// Returns whether an attempt is under way.
    fn try_start(&mut self, slot: usize, conn: &mut Conn, now: Instant) -> bool {
        if self.stop_deadline.is_some() || slot >= self.live.active {
            self.close(conn);
            return false;
        }
        if now < conn.idle_until {
            self.schedule(slot, conn, conn.idle_until);
            return false;
        }
        if conn.subscriber.is_none()
            && !self.delivery_gate.open()
            && now < self.epoch.instant + self.plan.connect_timeout
        {
            // Publishers start once every subscriber is subscribed (or, when one
            // cannot, after the connect timeout: what it misses then counts as lost).
            self.schedule(slot, conn, now + GATE_POLL);
            return false;
        }
        if std::mem::take(&mut conn.admitted) {
            let waited = now.saturating_duration_since(conn.idle_until);
            self.stats.record_connect_queued(micros(waited));
        } else if !self.gate.may_start() {
            self.gate.wait(slot);
            return false;
        }
        if let Err(e) = self.start_connect(slot, conn, now) {
            self.fail_connect(slot, conn, now, &e.to_string());
            return false;
        }
        self.gate.started();
        true
    }

    /// When `conn` must be woken again: the next due publish, the session's timers, the
    /// connect deadline, its retirement or the end of its drain.
    fn next_wake(&self, conn: &Conn, now: Instant) -> Instant {
        let mut wake = conn
            .session
            .as_ref()
            .and_then(Session::poll_timeout)
            .unwrap_or(now + Duration::from_secs(3600));
        match conn.phase {
            Phase::Connecting => wake = wake.min(conn.attempt_started + self.plan.connect_timeout),
            Phase::Connected if conn.subscriber.is_some() => {}
            Phase::Connected => {
                let blocked = conn.transport.as_ref().is_some_and(Transport::has_backlog)
                    || !conn
                        .session
                        .as_ref()
                        .is_some_and(|s| s.can_publish(self.plan.qos));
                if !blocked && !self.plan.scale.connect_only {
                    wake = wake.min(conn.schedule.next_due());
                }
                // Once past, acks (readable events) wake it to retire.
                if let Some(retire) = conn.retire_at.filter(|&t| t > now) {
                    wake = wake.min(retire);
                }
            }
            Phase::Draining if conn.subscriber.is_some() => wake = wake.min(now + GATE_POLL),
            Phase::Draining => {
                if let Some(deadline) = self.stop_deadline.or(conn.drain_until) {
                    wake = wake.min(deadline);
                }
            }
            Phase::Idle => wake = wake.min(conn.idle_until),
            Phase::Closed => {}
        }
        wake
    }

    /// Opens the socket (and TLS) and queues CONNECT.
    fn start_connect(
        &mut self,
        slot: usize,
        conn: &mut Conn,
        now: Instant,
    ) -> Result<(), DeviceError> {
        conn.attempt_started = now;
        let (addr, source) = bind::route(conn.user, &self.plan.addrs, &self.plan.scale.bind);
        let tls = self.plan.tls.as_ref().map(|(config, name)| (config, name));
        // The plan checked what CONNECT carries, so this fails only on a bug; no socket is
        // opened for an attempt that could not speak MQTT.
        let mut session = Session::new(&self.plan.session, &conn.client_id, now)?;
        if conn.subscriber.is_some() {
            session.keep_received_head(STAMP_HEAD_LEN);
        }
        session.resume_packet_ids(conn.next_packet_id);
        let mut transport = Transport::connect_from(addr, source, Some(conn.user), tls)?;
        self.poll
            .registry()
            .register(
                transport.socket(),
                Token(slot),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(DeviceError::Register)?;
        if let Some(carried) = conn.carried.take() {
            session.adopt(carried);
        }
        conn.transport = Some(transport);
        conn.session = Some(session);
        conn.readable = false;
        conn.phase = Phase::Connecting;
        Ok(())
    }

    /// The run ended during a connection attempt: a failed connect, with the step it was at.
    pub(super) fn unfinished_connect(&mut self, conn: &mut Conn, now: Instant) {
        let tcp_done = conn
            .transport
            .as_mut()
            .is_some_and(|t| matches!(t.check_connected(), Ok(true)));
        let tls_done = !conn
            .transport
            .as_ref()
            .is_some_and(Transport::tls_handshaking);
        let reason = match (tcp_done, tls_done) {
            (false, _) => "TCP connect not finished before the run ended",
            (true, false) => "TLS handshake not finished before the run ended",
            (true, true) => "no CONNACK before the run ended",
        };
        let took = now.saturating_duration_since(conn.attempt_started);
        self.stats
            .record_failure(crate::plan::NAME_CONNECT, micros(took), reason);
        self.stats.connections().failed_attempts += 1;
    }
}
