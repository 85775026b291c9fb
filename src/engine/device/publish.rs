//! A connected device's work at each wakeup: publish what the plan says is due (held back while
//! the socket or the in-flight window is full), run the session's timers, and leave when its
//! drain or its lifetime is over.

use std::time::Instant;

use super::{Device, Env, Leaving, Phase, StatsSink, lost, micros};
use crate::engine::{churn, drain, subscriber};
use crate::mqtt::QoS;
use crate::plan::{NAME_DISCONNECT, NAME_PUBLISH};
use crate::session::{OVER_BROKER_MAXIMUM, Session, SessionError};

/// Pending output this large is written at once, in the middle of a batch of publishes.
pub const EARLY_FLUSH_BYTES: usize = 64 * 1024;

/// How a batch of publishes ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// Everything due went, or the rest is held back: nothing more to publish now.
    Done,
    /// The output is large: write it, then call [`Device::publish_due`] again.
    Full,
}

impl Device {
    /// Whether the device publishes what is due at `now`: connected, the run not stopping,
    /// a publisher, not connect-only, and its lifetime not over.
    #[inline]
    pub fn may_publish<S>(&self, now: Instant, env: &Env<'_, S>) -> bool {
        self.phase == Phase::Connected
            && env.stop_deadline.is_none()
            && self.subscriber.is_none()
            && churn::may_publish(&env.plan.scale, self.retire_at, now)
    }

    /// Publishes every message the plan says is due at `now`, while the socket (`backlog`:
    /// it still holds unwritten bytes) and the in-flight window allow. Latency and lag count
    /// from each message's due time.
    pub fn publish_due<S: StatsSink>(
        &mut self,
        now: Instant,
        backlog: bool,
        env: &mut Env<'_, S>,
    ) -> Result<Batch, SessionError> {
        let qos = env.plan.qos;
        let Some(session) = self.session.as_mut() else {
            return Ok(Batch::Done);
        };
        while let Some(due) = self.schedule.due(now) {
            if backlog || !session.can_publish(qos) {
                self.schedule.hold_back();
                return Ok(Batch::Done);
            }
            let due_unix = env.epoch.unix_at(due);
            let body = &mut env.body;
            env.payload
                .build(self.user, &self.client_id, self.seq, due_unix, body);
            if let Err(error) = session.publish(&self.topic, body, qos, due, now) {
                if error != SessionError::OverBrokerMaximum {
                    return Err(error);
                }
                // Too large for this broker (MQTT 5): its slot passes, counted as failed.
                self.schedule.sent(env.period);
                let lag = micros(now.saturating_duration_since(due));
                env.stats
                    .record_failure(NAME_PUBLISH, lag, OVER_BROKER_MAXIMUM);
                continue;
            }
            self.seq += 1;
            let held_back = self.schedule.sent(env.period);
            let delivery = env.stats.delivery();
            delivery.sent += 1;
            delivery.expected += self.expected_copies;
            let lag = micros(now.saturating_duration_since(due));
            if held_back {
                env.stats.record_held_back(lag);
            } else {
                env.stats.record_send_lag(lag);
            }
            if qos == QoS::AtMostOnce {
                let bytes = env.body.len() as u64;
                env.stats.record_success(NAME_PUBLISH, lag, bytes);
            }
            // One TLS write per batch: flush early only when the batch is large.
            if session.pending_output().len() >= EARLY_FLUSH_BYTES {
                return Ok(Batch::Full);
            }
        }
        self.schedule.caught_up();
        Ok(Batch::Done)
    }

    /// The session's timers (keep alive, ack timeouts) at `now`, and whether the device leaves:
    /// a drain or a lifetime over queues the DISCONNECT, done in [`Device::settle`] once written.
    #[inline]
    pub fn handle_timeout<S: StatsSink>(
        &mut self,
        now: Instant,
        env: &mut Env<'_, S>,
    ) -> Result<(), SessionError> {
        if let Some(session) = self.session.as_mut()
            && session.poll_timeout().is_some_and(|t| t <= now)
        {
            session.handle_timeout(now)?;
        }
        let drained = self.phase == Phase::Draining && self.drain_done(now, env);
        let Some(session) = self.session.as_mut() else {
            return Ok(());
        };
        if drained {
            for due in session.take_unacked() {
                lost(env, now, due, "no ack before the stop timeout");
            }
            session.disconnect();
        }
        let retire = self.phase == Phase::Connected
            && env.stop_deadline.is_none()
            && churn::should_retire(self.retire_at, session.inflight_len(), now);
        if retire {
            session.disconnect();
            self.leaving = Some(Leaving::Retired);
        } else if self.phase == Phase::Draining && !session.is_connected() {
            self.leaving = Some(Leaving::Drained);
        }
        Ok(())
    }

    /// After the write at `now`: a drained device closes for good; a retired one (lifetime
    /// over) reconnects at once, not after a failure's backoff.
    #[inline(always)]
    pub fn settle<S: StatsSink>(&mut self, now: Instant, env: &mut Env<'_, S>) {
        // Called after every pump; leaving is rare, so only the check is inlined.
        if self.leaving.is_some() {
            self.leave(now, env);
        }
    }

    /// The cold half of [`Device::settle`]: carries out the decided leave.
    #[cold]
    fn leave<S: StatsSink>(&mut self, now: Instant, env: &mut Env<'_, S>) {
        match self.leaving.take() {
            Some(Leaving::Drained) => {
                env.stats.record_success(NAME_DISCONNECT, 0, 0);
                self.close(now, env);
            }
            Some(Leaving::Retired) => {
                env.stats.record_success(NAME_DISCONNECT, 0, 0);
                self.release(env, super::Close::Polite);
                self.phase = Phase::Idle;
                self.churned = true;
                self.retire_at = None;
                self.failures_in_row = 0;
                self.idle_until = now;
            }
            None => {}
        }
    }

    /// Whether a draining device may disconnect: a publisher once its acks are in or its
    /// deadline passed; a subscriber after the publishers, with a grace, or a hard limit.
    fn drain_done<S>(&mut self, now: Instant, env: &Env<'_, S>) -> bool {
        match (self.subscriber.as_mut(), env.stop_deadline) {
            (Some(state), Some(deadline)) => subscriber::may_leave(
                state,
                env.delivery_gate,
                now,
                deadline + subscriber::DRAIN_GRACE,
            ),
            _ => {
                let inflight = self.session.as_ref().map_or(0, Session::inflight_len);
                drain::publisher_done(inflight, env.stop_deadline.or(self.drain_until), now)
            }
        }
    }
}
