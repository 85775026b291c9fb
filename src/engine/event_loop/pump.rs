//! One pump of a connected (or connecting) device: read, handle the session's events, publish
//! what the plan says is due, run the session's timers, drain or retire, and write.

use std::time::Instant;

use super::drive::DeviceError;
use super::{Shared, micros};
use crate::engine::conn::{Conn, Phase};
use crate::engine::subscriber;
use crate::engine::{churn, drain};
use crate::mqtt::QoS;
use crate::net::Transport;
use crate::plan::{NAME_DISCONNECT, NAME_PUBLISH};
use crate::session::Session;

/// Pending output this large is written at once, in the middle of a batch of publishes.
const EARLY_FLUSH_BYTES: usize = 64 * 1024;

impl Shared<'_> {
    /// Reads, handles events, publishes what is due, handles timers, writes.
    pub(super) fn pump(&mut self, conn: &mut Conn, now: Instant) -> Result<(), DeviceError> {
        let Some(transport) = conn.transport.as_mut() else {
            return Ok(());
        };
        if conn.phase == Phase::Connecting {
            if now >= conn.attempt_started + self.plan.connect_timeout {
                return Err(DeviceError::ConnectTimeout);
            }
            if !transport.check_connected()? {
                return Ok(());
            }
        }
        let read = self.read_input(conn);
        // Events first: acks that arrived with a close still count.
        self.handle_session_events(conn, now)?;
        read?;
        if conn.phase == Phase::Connected
            && self.stop_deadline.is_none()
            && conn.subscriber.is_none()
            && churn::may_publish(&self.plan.scale, conn.retire_at, now)
        {
            // A writable edge after back-pressure: drain first, so held-back messages go now.
            if let Some(transport) = conn.transport.as_mut()
                && transport.has_backlog()
            {
                transport.flush()?;
            }
            self.publish_due(conn, now)?;
        }
        self.finish_pump(conn, now)
    }

    /// Hands what the socket has to the session. Timer-only wakes skip the read: it would be
    /// a recvmsg returning EAGAIN.
    fn read_input(&mut self, conn: &mut Conn) -> Result<(), DeviceError> {
        let (Some(transport), Some(session)) = (conn.transport.as_mut(), conn.session.as_mut())
        else {
            return Ok(());
        };
        if !conn.readable {
            return Ok(());
        }
        let read = transport.read(&mut self.scratch, &self.clock, |data, at| {
            session.handle_input(data, at)
        });
        // Ok(Ok(())) means drained: wait for the next readable edge.
        conn.readable = !matches!(read, Ok(Ok(())));
        read??;
        Ok(())
    }

    /// Publishes every message the plan says is due, while the socket and window allow.
    fn publish_due(&mut self, conn: &mut Conn, now: Instant) -> Result<(), DeviceError> {
        let qos = self.plan.qos;
        let (Some(transport), Some(session)) = (conn.transport.as_mut(), conn.session.as_mut())
        else {
            return Ok(());
        };
        while let Some(due) = conn.schedule.due(now) {
            if transport.has_backlog() || !session.can_publish(qos) {
                conn.schedule.hold_back();
                return Ok(());
            }
            self.payload.build(
                conn.user,
                &conn.client_id,
                conn.seq,
                self.epoch.unix_at(due),
                &mut self.body,
            );
            session.publish(&conn.topic, &self.body, qos, due, now)?;
            conn.seq += 1;
            let held_back = conn.schedule.sent(self.period);
            let delivery = self.stats.delivery();
            delivery.sent += 1;
            delivery.expected += conn.expected_copies;
            let lag = micros(now.saturating_duration_since(due));
            if held_back {
                self.stats.record_held_back(lag);
            } else {
                self.stats.record_send_lag(lag);
            }
            if qos == QoS::AtMostOnce {
                self.stats
                    .record_success(NAME_PUBLISH, lag, self.body.len() as u64);
            }
            // One TLS write per batch: flush early only when the batch is large.
            if session.pending_output().len() >= EARLY_FLUSH_BYTES {
                send_pending(transport, session, now)?;
            }
        }
        conn.schedule.caught_up();
        Ok(())
    }

    /// After the publishes: the session's timers, the end of a drain or a lifetime, and the
    /// write of everything pending.
    fn finish_pump(&mut self, conn: &mut Conn, now: Instant) -> Result<(), DeviceError> {
        if conn.transport.is_none() {
            return Ok(());
        }
        if let Some(session) = conn.session.as_mut()
            && session.poll_timeout().is_some_and(|t| t <= now)
        {
            session.handle_timeout(now)?;
        }
        let done_draining = conn.phase == Phase::Draining && self.drain_done(conn, now);
        let (Some(transport), Some(session)) = (conn.transport.as_mut(), conn.session.as_mut())
        else {
            return Ok(());
        };
        if done_draining {
            for due in session.take_unacked() {
                self.stats.record_failure(
                    NAME_PUBLISH,
                    micros(now.saturating_duration_since(due)),
                    "no ack before the stop timeout",
                );
            }
            session.disconnect();
        }
        let retire = conn.phase == Phase::Connected
            && self.stop_deadline.is_none()
            && churn::should_retire(conn.retire_at, session.inflight_len(), now);
        if retire {
            session.disconnect();
        }
        send_pending(transport, session, now)?;
        if conn.phase == Phase::Draining && !session.is_connected() {
            self.stats.record_success(NAME_DISCONNECT, 0, 0);
            self.close(conn);
        }
        if retire {
            // Lifetime over: a clean DISCONNECT, then a new connection at once.
            self.stats.record_success(NAME_DISCONNECT, 0, 0);
            self.release(conn, true);
            conn.phase = Phase::Idle;
            churn::retired(conn, now);
        }
        Ok(())
    }

    /// Whether a draining device may disconnect: a publisher once its acks are in or its
    /// deadline passed; a subscriber after the publishers, with a grace, or a hard limit.
    fn drain_done(&mut self, conn: &mut Conn, now: Instant) -> bool {
        match (conn.subscriber.as_mut(), self.stop_deadline) {
            (Some(state), Some(deadline)) => subscriber::may_leave(
                state,
                self.delivery_gate,
                now,
                deadline + subscriber::DRAIN_GRACE,
            ),
            _ => {
                let inflight = conn.session.as_ref().map_or(0, Session::inflight_len);
                drain::publisher_done(inflight, self.stop_deadline.or(conn.drain_until), now)
            }
        }
    }
}

/// Hands the session's pending bytes to the transport and pushes them to the socket.
fn send_pending(
    transport: &mut Transport,
    session: &mut Session,
    now: Instant,
) -> Result<(), DeviceError> {
    if !session.pending_output().is_empty() {
        transport.queue(session.pending_output())?;
        session.output_sent(now);
    }
    transport.flush()?;
    Ok(())
}
