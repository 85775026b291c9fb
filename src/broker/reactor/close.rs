//! Ending connections: the keep-alive and CONNECT deadlines, and closing one (its goodbye,
//! stored session, will, socket and slot).

use std::time::Instant;

use super::{CONNECT_DEADLINE, REPORTED_BAD_PACKETS, Worker};
use crate::broker::conn::Close;
use crate::broker::hub::ConnRef;
use crate::broker::ingest::{Outgoing, route};
use crate::mqtt::v5::ReasonCode;

impl Worker {
    /// Closes connections silent past 1.5 x keep alive, or without CONNECT in time.
    pub(super) fn expire(&mut self, now: Instant) {
        for slot in 0..self.conns.len() {
            let Some(Some(conn)) = self.conns.get(slot) else {
                continue;
            };
            let silent = now.saturating_duration_since(conn.last_heard);
            let keep_alive = u64::from(conn.session.keep_alive);
            let expired = if conn.held {
                // It talks; the broker is the one not listening.
                false
            } else if conn.session.is_connected() {
                keep_alive > 0 && silent.as_millis() > u128::from(keep_alive) * 1500
            } else {
                now.saturating_duration_since(conn.opened) > CONNECT_DEADLINE
            };
            if expired {
                self.ctx.counts.expired += 1;
                self.close(slot, Some(Close::KeepAlive));
            }
        }
    }

    /// Removes a connection; `why` says whether it counts as a bad packet.
    pub(super) fn close(&mut self, slot: usize, why: Option<Close>) {
        let Some(entry) = self.conns.get_mut(slot) else {
            return;
        };
        let Some(mut conn) = entry.take() else {
            return;
        };
        if let Some(Close::Bad(reason)) = &why {
            self.ctx.counts.bad_packets += 1;
            if self.ctx.counts.bad_packets <= REPORTED_BAD_PACKETS {
                eprintln!("mqload broker: closing a connection: {reason}");
            }
        }
        let me = ConnRef {
            thread: self.ctx.thread,
            slot,
            generation: conn.generation,
        };
        let goodbye = match &why {
            _ if self.stopping => Some(ReasonCode::ServerShuttingDown),
            Some(Close::Slow) => Some(ReasonCode::QuotaExceeded),
            Some(Close::TakenOver) => Some(ReasonCode::SessionTakenOver),
            Some(Close::KeepAlive) => Some(ReasonCode::KeepAliveTimeout),
            _ => None,
        };
        if let Some(reason) = goodbye {
            conn.session.goodbye(reason, &mut conn.out);
        }
        if conn.session.is_connected() {
            let keep_for = conn.session.keep_for();
            let suspended = keep_for.map(|_| {
                let mut suspended = conn.session.suspend();
                // Never sent: kept, in order, behind what the Receive Maximum held back.
                suspended.waiting.extend(conn.backlog.drain(..));
                suspended
            });
            let id = &conn.session.client_id;
            let now = self.ctx.now;
            self.ctx.hub.disconnect(id, me, suspended, keep_for, now);
        }
        // Gone without DISCONNECT (a DISCONNECT discarded it): publish the will, unless the
        // whole broker is stopping.
        if let Some(will) = conn.session.will.take()
            && !self.stopping
        {
            let message = Outgoing {
                topic: &will.topic,
                payload: &will.payload,
                qos: will.qos,
                retain: will.retain,
                properties: None,
            };
            route(&mut self.ctx, &message, None);
        }
        conn.shutdown();
        let _ = self.setup.poll.registry().deregister(&mut conn.tcp);
        self.ctx.counts.open = self.ctx.counts.open.saturating_sub(1);
        self.free.push(slot);
    }
}
