//! One simulated device, sans-IO, in the shape of `session.rs`: it owns its MQTT session, its
//! publish plan and its connection lifecycle (spawn, connect, backoff, churn, drain), and the
//! event loop only moves bytes, timers and control orders to it. No sockets, no clock reads:
//! `now` is always passed in, so every sequence is testable on virtual time.
//!
//! The loop's side of the contract, per wakeup of a device:
//! - `Idle`: [`Device::poll_start`] says whether to open a socket now; if so the loop calls
//!   [`Device::begin_attempt`] (CONNECT queued) and opens the socket for [`Device::user`].
//! - with a socket: bytes in through [`Device::handle_input`], then [`Device::handle_events`],
//!   [`Device::publish_due`] (batch by batch), [`Device::handle_timeout`]; bytes out through
//!   [`Device::poll_transmit`] and [`Device::transmitted`]; then [`Device::settle`].
//! - any transport or protocol error: [`Device::failed`].
//! - after each call: [`Device::poll_close`] says whether to drop the socket (and how), and
//!   [`Device::poll_timeout`] when to wake the device again.

mod env;
mod events;
mod lifecycle;
mod publish;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use env::{Env, StatsSink};
pub use publish::Batch;

use super::churn;
use super::schedule::PublishSchedule;
use super::subscriber::{GATE_POLL, SubscriberState};
use crate::delivery::{STAMP_HEAD_LEN, SubscriberTracker};
use crate::plan::{NAME_PUBLISH, expand_template};
use crate::session::{Mqtt5Options, Session, SessionError, Unacked};

/// Where a device is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started yet (spawn schedule) or waiting out a reconnect backoff.
    Idle,
    /// TCP, TLS and CONNECT under way.
    Connecting,
    /// CONNACK accepted; publishing.
    Connected,
    /// Stopping: waiting for outstanding acks before DISCONNECT.
    Draining,
    /// Finished for good.
    Closed,
}

/// How the loop must drop a device's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// Politely: TLS close_notify, after writing what is pending.
    Polite,
    /// At once: the connection failed.
    Abrupt,
}

/// Whether an idle device opens a connection now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Open a socket now (subject to the loop's `--max-connecting` gate).
    Now,
    /// Not before this instant.
    At(Instant),
    /// Never: the device closed for good (stopping or no longer wanted).
    Closed,
}

/// How far a connection attempt got when the run ended (for the failure's reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptStep {
    /// The TCP connect had not finished.
    Tcp,
    /// The TLS handshake had not finished.
    Tls,
    /// The server had not answered the WebSocket upgrade.
    WebSocket,
    /// CONNECT was sent; no CONNACK yet.
    ConnAck,
}

/// A simulated publisher or subscriber.
#[derive(Debug)]
pub struct Device {
    /// Global user index (`{i}`).
    user: u64,
    /// MQTT client id.
    client_id: String,
    /// Topic its messages go to.
    topic: String,
    phase: Phase,
    /// MQTT state while connecting or connected.
    session: Option<Session>,
    /// When the current connection attempt started.
    attempt_started: Instant,
    /// When the Idle phase ends (spawn time or end of backoff).
    idle_until: Instant,
    /// The absolute publish plan.
    schedule: PublishSchedule,
    /// Messages built for this client so far (`info.seq`).
    seq: u64,
    /// CONNACK was accepted at least once (a reconnect has missed messages to count).
    ever_connected: bool,
    /// Packet id the next session starts from (carried across reconnects).
    next_packet_id: u16,
    /// Publishes a dropped connection left unacknowledged (clean session off).
    carried: Option<Unacked>,
    /// Failed connection attempts in a row (for the backoff).
    failures_in_row: u32,
    /// `--connection-lifetime`: when this connection retires.
    retire_at: Option<Instant>,
    /// The connection under way replaces one that retired (churn), not one that failed.
    churned: bool,
    /// When a controller removed this user: how long it may wait for its acks.
    drain_until: Option<Instant>,
    /// Subscriber copies each message should reach.
    expected_copies: u64,
    /// Wanted by the plan or the controller; an unwanted device does not reconnect.
    wanted: bool,
    /// The socket must be dropped, and how (see [`Device::poll_close`]).
    close: Option<Close>,
    /// Decided in [`Device::handle_timeout`], done in [`Device::settle`] after the write.
    leaving: Option<Leaving>,
    /// A CONNACK was accepted since [`Device::take_connected`] was last asked.
    just_connected: bool,
    /// Set for a subscriber (`--subscribers`): it subscribes, checks, never publishes.
    subscriber: Option<Box<SubscriberState>>,
    /// MQTT 5 options with this device's templates expanded (content type, user properties);
    /// `None` while it shares the run's.
    own_mqtt5: Option<Arc<Mqtt5Options>>,
}

/// Why a connected device queued its DISCONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaving {
    /// Drained on stop (or removal): closed for good.
    Drained,
    /// Lifetime over: reconnects at once.
    Retired,
}

impl Device {
    /// A publisher that first connects at `start`.
    pub fn new(user: u64, client_id: String, topic: String, start: Instant) -> Device {
        Device {
            user,
            client_id,
            topic,
            phase: Phase::Idle,
            session: None,
            attempt_started: start,
            idle_until: start,
            schedule: PublishSchedule::new(start),
            seq: 0,
            ever_connected: false,
            next_packet_id: 1,
            carried: None,
            failures_in_row: 0,
            retire_at: None,
            churned: false,
            drain_until: None,
            expected_copies: 0,
            wanted: true,
            close: None,
            leaving: None,
            just_connected: false,
            subscriber: None,
            own_mqtt5: None,
        }
    }

    /// A subscriber that connects at `start`, tracking at most `max_publishers` publishers.
    pub fn subscriber(
        user: u64,
        client_id: String,
        start: Instant,
        max_publishers: usize,
    ) -> Device {
        let mut device = Device::new(user, client_id, String::new(), start);
        device.subscriber = Some(Box::new(SubscriberState {
            tracker: SubscriberTracker::new(max_publishers),
            subscribed: false,
            ever_answered: false,
            quiet_since: None,
        }));
        device
    }

    /// Each message should reach this many subscribers.
    pub fn set_expected_copies(&mut self, copies: u64) {
        self.expected_copies = copies;
    }

    /// The run's rate changed at `at` from one message per `old` to one per `new`: the
    /// publish plan starts anew from that instant (see [`PublishSchedule::rebase`]).
    pub fn rate_changed(&mut self, at: Instant, old: Duration, new: Duration) {
        if self.subscriber.is_none() {
            self.schedule.rebase(at, old, new);
        }
    }

    /// Global user index: the loop routes its socket by it.
    pub fn user(&self) -> u64 {
        self.user
    }

    /// Where it is in its life.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Publishes awaiting their ack, and those due by `now` that the broker holds back (for
    /// the gauges).
    pub fn flow(&self, now: Instant, period: Duration) -> (usize, u64) {
        let in_flight = self.session.as_ref().map_or(0, Session::inflight_len);
        (in_flight, self.schedule.held_back_at(now, period))
    }

    /// When the idle phase ends (spawn time or end of backoff).
    pub fn idle_until(&self) -> Instant {
        self.idle_until
    }

    /// Whether a CONNACK was accepted since the last call (the loop then records how its
    /// TLS handshake went).
    #[inline]
    pub fn take_connected(&mut self) -> bool {
        std::mem::take(&mut self.just_connected)
    }

    /// The socket must be dropped now, and how. Taken once.
    #[inline]
    pub fn poll_close(&mut self) -> Option<Close> {
        self.close.take()
    }

    /// An idle device: whether to open a connection at `now`. A device that is not idle
    /// opens none: `Start::Closed` when it ended, else `Start::At(now)` (its attempt or
    /// connection is under way).
    pub fn poll_start<S: StatsSink>(&mut self, now: Instant, env: &mut Env<'_, S>) -> Start {
        match self.phase {
            Phase::Idle => {}
            Phase::Closed => return Start::Closed,
            Phase::Connecting | Phase::Connected | Phase::Draining => return Start::At(now),
        }
        if env.stop_deadline.is_some() || !self.wanted {
            self.close(now, env);
            return Start::Closed;
        }
        if now < self.idle_until {
            return Start::At(self.idle_until);
        }
        if self.subscriber.is_none()
            && !env.delivery_gate.open()
            && now < env.epoch.instant + env.plan.connect_timeout
        {
            // Publishers start once every subscriber is subscribed (or, when one cannot,
            // after the connect timeout: what it misses then counts as lost).
            return Start::At(now + GATE_POLL);
        }
        Start::Now
    }

    /// The loop opens a socket now: the session starts with CONNECT queued. Fails only on a
    /// bug (the plan checked what CONNECT carries); then no socket must be opened.
    pub fn begin_attempt<S>(
        &mut self,
        now: Instant,
        env: &mut Env<'_, S>,
    ) -> Result<(), SessionError> {
        self.attempt_started = now;
        let run_options = env.plan.session.mqtt5.as_ref();
        if self.own_mqtt5.is_none()
            && let Some(personal) = run_options.and_then(|options| {
                options.for_device(|text| {
                    expand_template(text, self.user, &env.plan.run_id, &self.client_id)
                })
            })
        {
            self.own_mqtt5 = Some(Arc::new(personal));
        }
        let mqtt5 = self.own_mqtt5.as_ref().or(run_options);
        let mut session = Session::with_mqtt5(&env.plan.session, mqtt5, &self.client_id, now)?;
        if self.subscriber.is_some() {
            session.keep_received_head(STAMP_HEAD_LEN);
        }
        session.resume_packet_ids(self.next_packet_id);
        if let Some(carried) = self.carried.take() {
            session.adopt(carried);
        }
        self.session = Some(session);
        self.phase = Phase::Connecting;
        Ok(())
    }

    /// When a connection attempt under way times out (TCP + TLS + CONNACK).
    #[inline]
    pub fn connect_deadline<S>(&self, env: &Env<'_, S>) -> Option<Instant> {
        (self.phase == Phase::Connecting).then(|| self.attempt_started + env.plan.connect_timeout)
    }

    /// Plaintext the broker sent, received at `at`.
    #[inline]
    pub fn handle_input(&mut self, data: &[u8], at: Instant) -> Result<(), SessionError> {
        match self.session.as_mut() {
            Some(session) => session.handle_input(data, at),
            None => Ok(()),
        }
    }

    /// Bytes to write to the socket now.
    #[inline]
    pub fn poll_transmit(&self) -> &[u8] {
        self.session.as_ref().map_or(&[], Session::pending_output)
    }

    /// What [`Device::poll_transmit`] gave was handed to the socket at `now`.
    #[inline]
    pub fn transmitted(&mut self, now: Instant) {
        if let Some(session) = self.session.as_mut() {
            session.output_sent(now);
        }
    }

    /// When the device must be woken again: the next due publish (unless `backlog`: the
    /// socket's writable edge wakes it), the session's timers, the connect deadline, its
    /// retirement, the end of its drain, or the end of its idle time.
    #[inline(always)]
    pub fn poll_timeout<S>(&self, now: Instant, env: &Env<'_, S>, backlog: bool) -> Instant {
        let mut wake = self
            .session
            .as_ref()
            .and_then(Session::poll_timeout)
            .unwrap_or_else(|| now + Duration::from_secs(3600));
        match self.phase {
            Phase::Connecting => wake = wake.min(self.attempt_started + env.plan.connect_timeout),
            Phase::Connected if self.subscriber.is_some() => {}
            Phase::Connected => {
                let blocked = backlog
                    || !self
                        .session
                        .as_ref()
                        .is_some_and(|s| s.can_publish(env.plan.qos));
                // Blocked, it still wakes once at the next due time, to mark that message
                // held back: sent later when the window opens, it is the broker's delay, not
                // mqload's send lag. Once marked, the ack or writable edge wakes it.
                if !(env.plan.scale.connect_only || blocked && self.schedule.is_held_back()) {
                    wake = wake.min(self.schedule.next_due());
                }
                // Once past, acks (readable events) wake it to retire.
                if let Some(retire) = self.retire_at.filter(|&t| t > now) {
                    wake = wake.min(retire);
                }
            }
            Phase::Draining if self.subscriber.is_some() => wake = wake.min(now + GATE_POLL),
            Phase::Draining => {
                if let Some(deadline) = env.stop_deadline.or(self.drain_until) {
                    wake = wake.min(deadline);
                }
            }
            Phase::Idle => wake = wake.min(self.idle_until),
            Phase::Closed => {}
        }
        wake
    }
}

/// A publish that will never be acknowledged, due at `due`, counted failed at `now`.
fn lost<S: StatsSink>(env: &mut Env<'_, S>, now: Instant, due: Instant, reason: &str) {
    let lag = micros(now.saturating_duration_since(due));
    env.stats.record_failure(NAME_PUBLISH, lag, reason);
}

/// A duration in whole microseconds, as the statistics keep them.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
