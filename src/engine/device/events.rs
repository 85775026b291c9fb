//! What a device does with its session's events: CONNACK (the plan anchored or resumed, churn
//! timed), acks, lost messages, and a subscriber's SUBACK and deliveries.

use std::time::Instant;

use super::{Device, Env, Phase, StatsSink, churn, lost, micros};
use crate::engine::subscriber;
use crate::mqtt::Answer;
use crate::plan::{NAME_CONNECT, NAME_PUBLISH};
use crate::session::{Event, SUBSCRIBE_REFUSED, Session, SessionError};

impl Device {
    /// Handles every event the session has, at `now`.
    #[inline]
    pub fn handle_events<S: StatsSink>(
        &mut self,
        now: Instant,
        env: &mut Env<'_, S>,
    ) -> Result<(), SessionError> {
        while let Some(event) = self.session.as_mut().and_then(Session::poll_event) {
            match event {
                Event::Connected { at, .. } => self.on_connected(at, now, env)?,
                Event::Acked(done) => {
                    let latency = done.acked.saturating_duration_since(done.due);
                    let bytes = u64::from(done.payload_len);
                    env.stats
                        .record_success(NAME_PUBLISH, micros(latency), bytes);
                }
                Event::Rejected { done, reason } => {
                    // Refused by the broker (MQTT 5 reason code): never delivered.
                    let latency = done.acked.saturating_duration_since(done.due);
                    env.stats
                        .record_failure(NAME_PUBLISH, micros(latency), reason);
                    let delivery = env.stats.delivery();
                    delivery.expected = delivery.expected.saturating_sub(self.expected_copies);
                }
                Event::Lost { due } => {
                    lost(env, now, due, "broker lost the session before the ack");
                }
                Event::Subscribed {
                    granted,
                    refusal,
                    sent,
                    at,
                } => {
                    if let (Some(state), Some(sub)) =
                        (self.subscriber.as_mut(), &env.plan.subscribe)
                    {
                        let took = micros(at.saturating_duration_since(sent));
                        let gate = env.delivery_gate;
                        let outcome = match (granted, refusal) {
                            (Some(_), _) => Ok(()),
                            (None, Some(reason)) => Err(reason.failure_text(Answer::SubAck)),
                            (None, None) => Err(SUBSCRIBE_REFUSED),
                        };
                        subscriber::on_subscribed(state, outcome, took, sub, gate, &mut env.stats);
                    }
                }
                Event::Received {
                    payload_len,
                    head,
                    at,
                    ..
                } => {
                    if let (Some(state), Some(sub), Some(session)) = (
                        self.subscriber.as_mut(),
                        &env.plan.subscribe,
                        self.session.as_ref(),
                    ) {
                        subscriber::on_received(
                            state,
                            session.received_head(head),
                            payload_len,
                            at,
                            &env.epoch,
                            &env.stamps,
                            sub,
                            &mut env.stats,
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// CONNACK accepted at `at` (handled at `now`): counts the connect; a subscriber
    /// subscribes, a publisher anchors or resumes its plan.
    fn on_connected<S: StatsSink>(
        &mut self,
        at: Instant,
        now: Instant,
        env: &mut Env<'_, S>,
    ) -> Result<(), SessionError> {
        let took = at.saturating_duration_since(self.attempt_started);
        env.stats.record_success(NAME_CONNECT, micros(took), 0);
        let resent = self.session.as_ref().map_or(0, Session::resent_on_connect);
        let counts = env.stats.connections();
        counts.connects += 1;
        counts.reconnects += u64::from(self.ever_connected);
        self.ever_connected = true;
        self.just_connected = true;
        self.failures_in_row = 0;
        self.phase = Phase::Connected;
        if self.subscriber.is_some() {
            // Subscribers measure: they never churn (no retire time is set).
            if let (Some(sub), Some(session)) = (&env.plan.subscribe, self.session.as_mut()) {
                session.subscribe_with(&sub.filter, sub.options, now)?;
            }
            return Ok(());
        }
        env.stats.connections().resent += resent as u64;
        env.connected += 1;
        let scale = &env.plan.scale;
        if churn::on_connected(scale, &mut self.retire_at, &mut self.churned, now) {
            return Ok(());
        }
        // The first CONNACK anchors the plan; a reconnect resumes it at its next slot, and
        // what fell due while the connection was down was never sent.
        let missed = self.schedule.connected(now, env.period);
        if missed > 0 && !scale.connect_only {
            env.stats
                .record_untimed_failures(NAME_PUBLISH, missed, "not connected when due");
        }
        Ok(())
    }
}
