//! What a device does with its session's events: CONNACK (the plan anchored or resumed),
//! acks, lost messages, and a subscriber's SUBACK and deliveries.

use std::time::Instant;

use super::drive::DeviceError;
use super::{Shared, micros};
use crate::engine::churn;
use crate::engine::conn::{Conn, Phase};
use crate::engine::subscriber;
use crate::plan::{NAME_CONNECT, NAME_PUBLISH};
use crate::session::{Event, Session};

impl Shared<'_> {
    /// Handles every event the session has for `conn`.
    pub(super) fn handle_session_events(
        &mut self,
        conn: &mut Conn,
        now: Instant,
    ) -> Result<(), DeviceError> {
        while let Some(event) = conn.session.as_mut().and_then(Session::poll_event) {
            match event {
                Event::Connected { at, .. } => self.on_connected(conn, at, now)?,
                Event::Acked(done) => {
                    let latency = done.acked.saturating_duration_since(done.due);
                    self.stats.record_success(
                        NAME_PUBLISH,
                        micros(latency),
                        u64::from(done.payload_len),
                    );
                }
                Event::Lost { due } => self.stats.record_failure(
                    NAME_PUBLISH,
                    micros(now.saturating_duration_since(due)),
                    "broker lost the session before the ack",
                ),
                Event::Subscribed { granted, sent, at } => {
                    if let (Some(state), Some(sub)) =
                        (conn.subscriber.as_mut(), &self.plan.subscribe)
                    {
                        let took = micros(at.saturating_duration_since(sent));
                        let granted = granted.is_some();
                        let gate = self.delivery_gate;
                        subscriber::on_subscribed(state, granted, took, sub, gate, &mut self.stats);
                    }
                }
                Event::Received {
                    payload_len,
                    head,
                    at,
                    ..
                } => {
                    if let (Some(state), Some(sub), Some(session)) = (
                        conn.subscriber.as_mut(),
                        &self.plan.subscribe,
                        conn.session.as_ref(),
                    ) {
                        subscriber::on_received(
                            state,
                            session.received_head(head),
                            payload_len,
                            at,
                            &self.epoch,
                            &self.stamps,
                            sub,
                            &mut self.stats,
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// CONNACK accepted at `at` (handled at `now`): counts the connect; a subscriber
    /// subscribes, a publisher anchors or resumes its plan.
    fn on_connected(
        &mut self,
        conn: &mut Conn,
        at: Instant,
        now: Instant,
    ) -> Result<(), DeviceError> {
        let took = at.saturating_duration_since(conn.attempt_started);
        self.stats.record_success(NAME_CONNECT, micros(took), 0);
        let resent = conn.session.as_ref().map_or(0, Session::resent_on_connect);
        let counts = self.stats.connections();
        counts.connects += 1;
        counts.reconnects += u64::from(conn.ever_connected);
        conn.ever_connected = true;
        conn.failures_in_row = 0;
        conn.phase = Phase::Connected;
        self.gate.ended();
        if let Some(resumed) = conn.transport.as_ref().and_then(|t| t.resumed()) {
            self.stats.record_handshake(resumed);
        }
        if conn.subscriber.is_some() {
            // Subscribers measure: they never churn (no retire time is set).
            if let (Some(sub), Some(session)) = (&self.plan.subscribe, conn.session.as_mut()) {
                session.subscribe(&sub.filter, sub.qos, now)?;
            }
            return Ok(());
        }
        self.stats.connections().resent += resent as u64;
        self.connected += 1;
        if churn::on_connected(
            &self.plan.scale,
            &mut conn.retire_at,
            &mut conn.churned,
            now,
        ) {
            return Ok(());
        }
        // The first CONNACK anchors the plan; a reconnect resumes it at its next slot, and
        // what fell due while the connection was down was never sent.
        let missed = conn.schedule.connected(now, self.period);
        if missed > 0 && !self.plan.scale.connect_only {
            self.stats
                .record_untimed_failures(NAME_PUBLISH, missed, "not connected when due");
        }
        Ok(())
    }
}
