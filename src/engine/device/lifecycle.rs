//! A device's life between connections: a failed attempt or a dropped connection (counted,
//! then a reconnect after a backoff with jitter), the run's stop, a controller's want and
//! unwant, and the end of the device for good.

use std::time::Instant;

use rand::Rng;

use super::{AttemptStep, Close, Device, Env, Phase, StatsSink, lost, micros};
use crate::engine::backoff::backoff;
use crate::plan::{NAME_CONNECT, NAME_DISCONNECT};
use crate::session::{Session, Unacked};

impl Device {
    /// The connection attempt or the connection failed (transport or protocol) at `now`:
    /// counted, then a reconnect after a backoff with jitter, or the end when not wanted.
    pub fn failed<S: StatsSink>(&mut self, now: Instant, env: &mut Env<'_, S>, reason: &str) {
        if self.phase == Phase::Connecting || self.phase == Phase::Idle {
            let took = micros(now.saturating_duration_since(self.attempt_started));
            env.stats.record_failure(NAME_CONNECT, took, reason);
            env.stats.connections().failed_attempts += 1;
        } else {
            env.stats.record_failure(NAME_DISCONNECT, 0, reason);
            env.stats.connections().drops += 1;
        }
        let reconnects = env.stop_deadline.is_none() && self.wanted;
        if let Some(session) = self.session.as_mut() {
            if !env.plan.session.clean_session && reconnects {
                // The broker may hold the session: re-send them with DUP after the reconnect.
                self.carried = Some(session.carry_over());
            }
            for due in session.take_unacked() {
                lost(env, now, due, "connection lost before the ack");
            }
        }
        self.release(env, Close::Abrupt);
        if !reconnects {
            self.mark_closed(env);
            return;
        }
        self.failures_in_row = self.failures_in_row.saturating_add(1);
        self.phase = Phase::Idle;
        self.idle_until = now + backoff(self.failures_in_row - 1, env.rng.random::<f64>());
    }

    /// Ends the device for good, closing its connection politely; what is unacked counts as
    /// failed.
    pub fn close<S: StatsSink>(&mut self, now: Instant, env: &mut Env<'_, S>) {
        let session = self.session.as_mut().map(Session::carry_over);
        for due in session
            .into_iter()
            .chain(self.carried.take())
            .flat_map(Unacked::into_dues)
        {
            lost(env, now, due, "connection lost before the ack");
        }
        self.release(env, Close::Polite);
        self.mark_closed(env);
    }

    /// The run stops at `now` (`env.stop_deadline` is set): a connected device drains, an
    /// attempt under way is a failed connect (`step` says how far it got), the rest end now.
    pub fn stop<S: StatsSink>(&mut self, now: Instant, env: &mut Env<'_, S>, step: AttemptStep) {
        match self.phase {
            Phase::Connected => self.phase = Phase::Draining,
            Phase::Connecting => {
                let reason = match step {
                    AttemptStep::Tcp => "TCP connect not finished before the run ended",
                    AttemptStep::Tls => "TLS handshake not finished before the run ended",
                    AttemptStep::WebSocket => "WebSocket upgrade not answered before the run ended",
                    AttemptStep::ConnAck => "no CONNACK before the run ended",
                };
                let took = micros(now.saturating_duration_since(self.attempt_started));
                env.stats.record_failure(NAME_CONNECT, took, reason);
                env.stats.connections().failed_attempts += 1;
                self.close(now, env);
            }
            Phase::Idle => self.close(now, env),
            Phase::Draining | Phase::Closed => {}
        }
    }

    /// A controller wants this user again, starting at `at`. Returns whether it must be
    /// driven now (it was draining and carries on publishing at the plan's next slot).
    pub fn want<S>(&mut self, at: Instant, now: Instant, env: &mut Env<'_, S>) -> bool {
        self.wanted = true;
        match self.phase {
            Phase::Closed => {
                self.phase = Phase::Idle;
                self.idle_until = at;
                self.failures_in_row = 0;
                self.drain_until = None;
                false
            }
            Phase::Draining => {
                // Not disconnected yet: carry on publishing at the plan's next slot.
                self.phase = Phase::Connected;
                self.drain_until = None;
                self.schedule.skip_to(now, env.period);
                true
            }
            Phase::Idle | Phase::Connecting | Phase::Connected => false,
        }
    }

    /// A controller no longer wants this user: a connected one drains (for at most the stop
    /// timeout), the others end now. Returns whether it must be driven now.
    pub fn unwant<S: StatsSink>(&mut self, now: Instant, env: &mut Env<'_, S>) -> bool {
        self.wanted = false;
        match self.phase {
            Phase::Connected => {
                self.phase = Phase::Draining;
                self.drain_until = Some(now + env.plan.stop_timeout);
                true
            }
            Phase::Idle | Phase::Connecting => {
                self.close(now, env);
                false
            }
            Phase::Draining | Phase::Closed => false,
        }
    }

    /// Drops the session, asking the loop to drop the socket `how`; keeps the count of
    /// connected publishers right.
    pub(super) fn release<S>(&mut self, env: &mut Env<'_, S>, how: Close) {
        if let Some(session) = self.session.take() {
            self.next_packet_id = session.next_packet_id();
            self.close = Some(how);
        }
        if matches!(self.phase, Phase::Connected | Phase::Draining) && self.subscriber.is_none() {
            env.connected = env.connected.saturating_sub(1);
        }
        self.leaving = None;
    }

    /// Marks the device finished; a controller may revive it later as a new device.
    fn mark_closed<S>(&mut self, env: &mut Env<'_, S>) {
        if self.phase != Phase::Closed {
            self.phase = Phase::Closed;
            if self.subscriber.is_none() {
                env.delivery_gate.publisher_closed();
            }
        }
        self.churned = false;
        self.retire_at = None;
        self.schedule.forget();
    }
}
