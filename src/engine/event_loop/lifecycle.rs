//! The end of a device's connection: a failed attempt or a dropped connection (counted, then a
//! reconnect after a backoff with jitter), or the end of the device for good.

use std::time::Instant;

use rand::Rng;

use super::{Shared, micros};
use crate::engine::churn;
use crate::engine::conn::{Conn, Phase, backoff};
use crate::plan::{NAME_CONNECT, NAME_DISCONNECT, NAME_PUBLISH};
use crate::session::{Session, Unacked};

impl Shared<'_> {
    /// A connection attempt failed: counted, then a retry after a backoff.
    pub(super) fn fail_connect(
        &mut self,
        slot: usize,
        conn: &mut Conn,
        now: Instant,
        reason: &str,
    ) {
        let took = now.saturating_duration_since(conn.attempt_started);
        self.stats
            .record_failure(NAME_CONNECT, micros(took), reason);
        self.stats.connections().failed_attempts += 1;
        self.retry_later(slot, conn, now);
    }

    /// An established connection broke: counted, then a reconnect after a backoff.
    pub(super) fn fail_connection(
        &mut self,
        slot: usize,
        conn: &mut Conn,
        now: Instant,
        reason: &str,
    ) {
        self.stats.record_failure(NAME_DISCONNECT, 0, reason);
        self.stats.connections().drops += 1;
        self.retry_later(slot, conn, now);
    }

    /// Drops the connection, counts what it loses, and plans a reconnect after a backoff.
    fn retry_later(&mut self, slot: usize, conn: &mut Conn, now: Instant) {
        if let Some(session) = conn.session.as_mut() {
            let reconnects = self.stop_deadline.is_none() && slot < self.live.active;
            if !self.plan.session.clean_session && reconnects {
                // The broker may hold the session: re-send them with DUP after the reconnect.
                conn.carried = Some(session.carry_over());
            }
            for due in session.take_unacked() {
                self.stats.record_failure(
                    NAME_PUBLISH,
                    micros(now.saturating_duration_since(due)),
                    "connection lost before the ack",
                );
            }
        }
        self.release(conn, false);
        if self.stop_deadline.is_some() || slot >= self.live.active {
            self.mark_closed(conn);
            return;
        }
        conn.failures_in_row = conn.failures_in_row.saturating_add(1);
        conn.phase = Phase::Idle;
        conn.idle_until = now + backoff(conn.failures_in_row - 1, self.rng.random::<f64>());
        self.schedule(slot, conn, conn.idle_until);
    }

    /// Ends a device for good, closing its connection politely (TLS close_notify).
    pub(super) fn close(&mut self, conn: &mut Conn) {
        let now = self.clock.instant;
        let session = conn.session.as_mut().map(Session::carry_over);
        for due in session
            .into_iter()
            .chain(conn.carried.take())
            .flat_map(Unacked::into_dues)
        {
            self.stats.record_failure(
                NAME_PUBLISH,
                micros(now.saturating_duration_since(due)),
                "connection lost before the ack",
            );
        }
        self.release(conn, true);
        self.mark_closed(conn);
    }

    /// Drops socket and session, closing politely when `graceful`; keeps the count of
    /// connected users right.
    pub(super) fn release(&mut self, conn: &mut Conn, graceful: bool) {
        if let Some(session) = &conn.session {
            conn.next_packet_id = session.next_packet_id();
        }
        if matches!(conn.phase, Phase::Connected | Phase::Draining) && conn.subscriber.is_none() {
            self.connected = self.connected.saturating_sub(1);
        }
        if conn.phase == Phase::Connecting {
            self.gate.ended();
        }
        if let Some(mut transport) = conn.transport.take() {
            if graceful {
                transport.close();
            }
            let _ = self.poll.registry().deregister(transport.socket());
        }
        conn.session = None;
    }

    /// Marks the device finished (once), so the loop knows when every device is done.
    fn mark_closed(&mut self, conn: &mut Conn) {
        if conn.phase != Phase::Closed {
            conn.phase = Phase::Closed;
            self.closed += 1;
            if conn.subscriber.is_none() {
                self.delivery_gate.publisher_closed();
            }
        }
        // A controller may revive it later: as a new device, not mid-churn.
        churn::forget(conn);
    }
}
