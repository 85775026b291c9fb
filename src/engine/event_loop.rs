//! One worker thread: a mio `Poll` over its devices' sockets, a timer wheel, and its statistics.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::{Events, Interest, Poll, Token};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::Epoch;
use super::churn;
use super::conn::{Conn, Phase, backoff};
use super::control::Control;
use super::gate::ConnectGate;
use super::subscriber::{self, DeliveryGate, GATE_POLL};
use super::wheel::TimerWheel;
use crate::delivery::{MIN_TRACKED_PUBLISHERS, STAMP_HEAD_LEN, StampReader, topic_matches};
use crate::mqtt::QoS;
use crate::net::{Transport, WakeClock, bind};
use crate::payload::{PayloadBuilder, json_head};
use crate::plan::{NAME_CONNECT, NAME_DISCONNECT, NAME_PUBLISH, RunPlan, expand_template};
use crate::session::{Event, Session, Unacked};
use crate::stats::{StatsMsg, WorkerStats};

mod live;

/// Longest sleep of the loop, so a stop request is seen promptly.
const MAX_SLEEP: Duration = Duration::from_millis(50);
/// Length of one timer-wheel tick: a due message is sent at most this late by the timer.
const TICK_NANOS: u64 = 250_000;
/// epoll's timeout resolution: shorter waits are slept precisely instead.
const EPOLL_RESOLUTION: Duration = Duration::from_millis(1);
/// Statistics go to the collector this often.
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// Why a worker thread could not run.
#[derive(Debug)]
pub enum WorkerError {
    /// The epoll instance could not be created or polled.
    Poll(io::Error),
    /// The thread could not be started.
    Spawn(String),
    /// The thread panicked (a bug: please report it).
    Panicked,
}

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerError::Poll(e) => write!(f, "event loop failed: {e}"),
            WorkerError::Spawn(e) => write!(f, "cannot start a worker thread: {e}"),
            WorkerError::Panicked => f.write_str("a worker thread panicked (a bug in mqload)"),
        }
    }
}

impl std::error::Error for WorkerError {}

/// What the devices of one thread share.
struct Shared<'a> {
    plan: &'a RunPlan,
    epoch: Epoch,
    poll: Poll,
    wheel: TimerWheel,
    stats: WorkerStats,
    payload: PayloadBuilder,
    body: Vec<u8>,
    scratch: Vec<u8>,
    rng: SmallRng,
    period: Duration,
    /// Both clocks as read at the start of this wakeup.
    clock: WakeClock,
    connected: u64,
    /// Devices finished for good.
    closed: usize,
    /// Set once the run is stopping: no more publishes or reconnects.
    stop_deadline: Option<Instant>,
    /// Subscribers' gate and drain counters, shared by every worker.
    delivery_gate: &'a DeliveryGate,
    /// Reads the stamps of received messages.
    stamps: StampReader,
    /// Bounds connection attempts in progress (`--max-connecting`).
    gate: ConnectGate,
    /// Which users are wanted, when a controller changes them live.
    live: live::Live,
}

/// Runs the users `index, index + threads, ...` until stopped and drained: the plan's
/// schedule, or with `control` no users until its messages say how many.
pub fn run_worker(
    index: usize,
    plan: &RunPlan,
    stats_tx: Sender<StatsMsg>,
    stop: &AtomicBool,
    epoch: Epoch,
    control: Option<&Receiver<Control>>,
    gate: &DeliveryGate,
) -> Result<(), WorkerError> {
    let poll = Poll::new().map_err(WorkerError::Poll)?;
    let seed = epoch.unix.to_bits() ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut shared = Shared {
        plan,
        epoch,
        poll,
        wheel: TimerWheel::new(),
        stats: WorkerStats::new(index, plan.request_names.len()),
        payload: PayloadBuilder::new(&plan.payload, seed),
        body: Vec::new(),
        scratch: vec![0u8; 64 * 1024],
        rng: SmallRng::seed_from_u64(seed),
        period: Duration::from_nanos((1e9 / plan.throughput).round().max(1.0) as u64),
        clock: WakeClock::now(),
        connected: 0,
        closed: 0,
        stop_deadline: None,
        delivery_gate: gate,
        stamps: StampReader::new(&plan.run_id, json_head(&plan.run_id)),
        gate: ConnectGate::new(plan.scale.max_connecting.div_ceil(plan.threads)),
        live: live::Live::new(index, 0),
    };
    shared.body.reserve(shared.payload.body_len_hint());
    let mut conns = match control {
        Some(_) => Vec::new(),
        None => make_users(index, plan, epoch.instant),
    };
    shared.live.active = conns.len();
    for (slot, conn) in conns.iter_mut().enumerate() {
        shared.schedule(slot, conn, conn.idle_until);
    }
    let mut events = Events::with_capacity(1024);
    let mut fired = Vec::new();
    let mut next_stats = epoch.instant + STATS_INTERVAL;
    let mut now = Instant::now();
    let mut pacer = WakePacer::new(plan.wake_interval);
    loop {
        if shared.stop_deadline.is_none() && stop.load(Ordering::Relaxed) {
            shared.begin_stop(&mut conns, now);
        }
        if shared.stop_deadline.is_some() && shared.closed == conns.len() {
            break;
        }
        if let Some(pause) = pacer.pause(now) {
            // Bound wakeups per second: what arrives meanwhile keeps its kernel timestamp.
            std::thread::sleep(pause);
        }
        let deadline = shared.wheel.next_tick().map(|tick| shared.instant_of(tick));
        let before_poll = Instant::now();
        let wait = deadline
            .map_or(MAX_SLEEP, |d| d.saturating_duration_since(before_poll))
            .min(MAX_SLEEP);
        // epoll rounds timeouts up to whole milliseconds: wait the whole ones there, and
        // sleep the last fraction precisely, so a timer fires on its tick, not up to 2 ms late.
        let coarse = Duration::from_millis(wait.as_millis() as u64);
        if let Err(e) = shared.poll.poll(&mut events, Some(coarse))
            && e.kind() != io::ErrorKind::Interrupted
        {
            return Err(WorkerError::Poll(e));
        }
        if events.is_empty()
            && wait < EPOLL_RESOLUTION
            && let Some(deadline) = deadline
        {
            let left = deadline.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                std::thread::sleep(left);
            }
        }
        shared.clock = WakeClock::now();
        now = shared.clock.instant;
        pacer.woke(now);
        if let Some(rx) = control {
            while let Ok(order) = rx.try_recv() {
                shared.apply_control(&mut conns, order, now);
            }
        }
        for event in events.iter() {
            let slot = event.token().0;
            if let Some(conn) = conns.get_mut(slot) {
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    conn.readable = true;
                }
                shared.drive(slot, conn, now);
            }
        }
        fired.clear();
        shared.wheel.advance(shared.tick_of(now), &mut fired);
        for &(tick, slot) in &fired {
            let slot = slot as usize;
            if let Some(conn) = conns.get_mut(slot)
                && conn.scheduled_tick == Some(tick)
            {
                conn.scheduled_tick = None;
                shared.drive(slot, conn, now);
            }
        }
        // Devices that waited for a connect turn go now, oldest first.
        while let Some(slot) = shared.gate.admit() {
            if let Some(conn) = conns.get_mut(slot) {
                conn.admitted = true;
                shared.drive(slot, conn, now);
            }
        }
        if now >= next_stats {
            shared.send_stats(&stats_tx, now);
            // After a stall, carry on from now rather than sending a burst of empty deltas.
            next_stats += STATS_INTERVAL;
            if next_stats <= now {
                next_stats = now + STATS_INTERVAL;
            }
        }
    }
    shared.send_stats(&stats_tx, now);
    Ok(())
}

fn make_users(index: usize, plan: &RunPlan, start: Instant) -> Vec<Conn> {
    let threads = plan.threads as u64;
    let mut conns: Vec<Conn> = (index as u64..plan.users)
        .step_by(plan.threads)
        .map(|user| {
            debug_assert_eq!(user % threads, index as u64);
            let client_id = expand_template(&plan.client_id_template, user, &plan.run_id, "");
            let topic = expand_template(&plan.topic_template, user, &plan.run_id, &client_id);
            let at = start + Duration::from_secs_f64(user as f64 / plan.spawn_rate);
            let mut conn = Conn::new(user, client_id, topic, at);
            if let Some(sub) = &plan.subscribe
                && topic_matches(&sub.filter, &conn.topic)
            {
                conn.expected_copies = sub.subscribers;
            }
            conn
        })
        .collect();
    // Subscribers take user indexes after the publishers' and start at once.
    let subscribers = plan.subscribe.as_ref().map_or(0, |s| s.subscribers);
    // Publishers of another process (same --run-id) are tracked too, up to a limit.
    let max_publishers = usize::try_from(plan.users)
        .unwrap_or(usize::MAX)
        .max(MIN_TRACKED_PUBLISHERS);
    for j in (index as u64..subscribers).step_by(plan.threads) {
        let user = plan.users + j;
        let client_id = expand_template(&plan.client_id_template, user, &plan.run_id, "");
        let mut conn = Conn::new(user, client_id, String::new(), start);
        conn.subscriber = Some(subscriber::new_state(max_publishers));
        conns.push(conn);
    }
    conns
}

impl Shared<'_> {
    fn tick_of(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.epoch.instant).as_nanos();
        u64::try_from(nanos / u128::from(TICK_NANOS)).unwrap_or(u64::MAX)
    }

    fn instant_of(&self, tick: u64) -> Instant {
        self.epoch.instant + Duration::from_nanos(tick.saturating_mul(TICK_NANOS))
    }

    /// Makes sure `conn` is woken at `at` (rounded up to the next tick).
    fn schedule(&mut self, slot: usize, conn: &mut Conn, at: Instant) {
        let nanos = at.saturating_duration_since(self.epoch.instant).as_nanos();
        let tick = u64::try_from(nanos.div_ceil(u128::from(TICK_NANOS))).unwrap_or(u64::MAX);
        if conn.scheduled_tick.is_some_and(|t| t <= tick) {
            return;
        }
        conn.scheduled_tick = Some(self.wheel.schedule(tick, slot as u32));
    }

    fn send_stats(&mut self, tx: &Sender<StatsMsg>, now: Instant) {
        self.stats.set_users_connected(self.connected);
        let delta = self.stats.take_delta(self.epoch.unix_at(now));
        let _ = tx.send(StatsMsg::Delta(delta));
    }

    fn begin_stop(&mut self, conns: &mut [Conn], now: Instant) {
        self.stop_deadline = Some(now + self.plan.stop_timeout);
        for (slot, conn) in conns.iter_mut().enumerate() {
            match conn.phase {
                Phase::Connected => {
                    conn.phase = Phase::Draining;
                    self.drive(slot, conn, now);
                }
                Phase::Connecting => {
                    self.unfinished_connect(conn, now);
                    self.close(conn);
                }
                Phase::Idle => self.close(conn),
                Phase::Draining | Phase::Closed => {}
            }
        }
    }

    /// The run ended during a connection attempt: a failed connect, with the step it was at.
    fn unfinished_connect(&mut self, conn: &mut Conn, now: Instant) {
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
            .record_failure(NAME_CONNECT, micros(took), reason);
        self.stats.connections().failed_attempts += 1;
    }

    /// Everything a device has to do now: socket IO, session events, publishes, timers.
    fn drive(&mut self, slot: usize, conn: &mut Conn, now: Instant) {
        match conn.phase {
            Phase::Closed => return,
            Phase::Idle => {
                if self.stop_deadline.is_some() || slot >= self.live.active {
                    self.close(conn);
                    return;
                }
                if now < conn.idle_until {
                    self.schedule(slot, conn, conn.idle_until);
                    return;
                }
                if conn.subscriber.is_none()
                    && !self.delivery_gate.open()
                    && now < self.epoch.instant + self.plan.connect_timeout
                {
                    // Publishers start once every subscriber is subscribed (or, when one
                    // cannot, after the connect timeout: what it misses then counts as lost).
                    self.schedule(slot, conn, now + GATE_POLL);
                    return;
                }
                if std::mem::take(&mut conn.admitted) {
                    let waited = now.saturating_duration_since(conn.idle_until);
                    self.stats.record_connect_queued(micros(waited));
                } else if !self.gate.may_start() {
                    self.gate.wait(slot);
                    return;
                }
                if let Err(reason) = self.start_connect(slot, conn, now) {
                    self.fail_connect(slot, conn, now, &reason);
                    return;
                }
                self.gate.started();
            }
            _ => {}
        }
        if let Err(reason) = self.pump(conn, now) {
            match conn.phase {
                Phase::Connecting => self.fail_connect(slot, conn, now, &reason),
                _ => self.fail_connection(slot, conn, now, &reason),
            }
            return;
        }
        if conn.phase == Phase::Closed {
            return;
        }
        // Wake again for the next due publish, the session's timers or the connect deadline.
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
        self.schedule(slot, conn, wake);
    }

    fn start_connect(&mut self, slot: usize, conn: &mut Conn, now: Instant) -> Result<(), String> {
        conn.attempt_started = now;
        let (addr, source) = bind::route(conn.user, &self.plan.addrs, &self.plan.scale.bind);
        let tls = self.plan.tls.as_ref().map(|(config, name)| (config, name));
        // The plan checked what CONNECT carries, so this fails only on a bug; no socket is
        // opened for an attempt that could not speak MQTT.
        let mut session =
            Session::new(&self.plan.session, &conn.client_id, now).map_err(|e| e.to_string())?;
        if conn.subscriber.is_some() {
            session.keep_received_head(STAMP_HEAD_LEN);
        }
        session.resume_packet_ids(conn.next_packet_id);
        let mut transport = Transport::connect_from(addr, source, Some(conn.user), tls)
            .map_err(|e| e.to_string())?;
        self.poll
            .registry()
            .register(
                transport.socket(),
                Token(slot),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        if let Some(carried) = conn.carried.take() {
            session.adopt(carried);
        }
        conn.transport = Some(transport);
        conn.session = Some(session);
        conn.readable = false;
        conn.phase = Phase::Connecting;
        Ok(())
    }

    /// Reads, handles events, publishes what is due, handles timers, writes.
    fn pump(&mut self, conn: &mut Conn, now: Instant) -> Result<(), String> {
        let (Some(transport), Some(session)) = (conn.transport.as_mut(), conn.session.as_mut())
        else {
            return Ok(());
        };
        if conn.phase == Phase::Connecting {
            if now >= conn.attempt_started + self.plan.connect_timeout {
                return Err("connect timeout (TCP + TLS + CONNACK)".into());
            }
            if !transport.check_connected().map_err(|e| e.to_string())? {
                return Ok(());
            }
        }
        // Timer-only wakes skip the read: it would be a recvmsg returning EAGAIN.
        let read = if conn.readable {
            let read = transport
                .read(&mut self.scratch, &self.clock, |data, at| {
                    session.handle_input(data, at)
                })
                .map_err(|e| e.to_string());
            // Ok(Ok(())) means drained to WouldBlock: wait for the next readable edge.
            conn.readable = !matches!(read, Ok(Ok(())));
            read
        } else {
            Ok(Ok(()))
        };
        // Events first: acks that arrived with a close still count.
        while let Some(event) = session.poll_event() {
            match event {
                Event::Connected { at, .. } if conn.subscriber.is_some() => {
                    let took = at.saturating_duration_since(conn.attempt_started);
                    self.stats.record_success(NAME_CONNECT, micros(took), 0);
                    let counts = self.stats.connections();
                    counts.connects += 1;
                    counts.reconnects += u64::from(conn.ever_connected);
                    conn.ever_connected = true;
                    conn.failures_in_row = 0;
                    conn.phase = Phase::Connected;
                    self.gate.ended();
                    if let Some(resumed) = transport.resumed() {
                        self.stats.record_handshake(resumed);
                    }
                    // Subscribers measure: they never churn (no retire time is set).
                    if let Some(sub) = &self.plan.subscribe {
                        session
                            .subscribe(&sub.filter, sub.qos, now)
                            .map_err(|e| e.to_string())?;
                    }
                }
                Event::Connected { at, .. } => {
                    let took = at.saturating_duration_since(conn.attempt_started);
                    self.stats.record_success(NAME_CONNECT, micros(took), 0);
                    let counts = self.stats.connections();
                    counts.connects += 1;
                    counts.reconnects += u64::from(conn.ever_connected);
                    counts.resent += session.resent_on_connect() as u64;
                    self.connected += 1;
                    conn.failures_in_row = 0;
                    conn.phase = Phase::Connected;
                    self.gate.ended();
                    if let Some(resumed) = transport.resumed() {
                        self.stats.record_handshake(resumed);
                    }
                    if churn::on_connected(
                        &self.plan.scale,
                        &mut conn.retire_at,
                        &mut conn.churned,
                        now,
                    ) {
                        continue;
                    }
                    // The first CONNACK anchors the plan; a reconnect resumes it at its next
                    // slot, and what fell due while the connection was down was never sent.
                    let missed = conn.schedule.connected(now, self.period);
                    if missed > 0 && !self.plan.scale.connect_only {
                        self.stats.record_untimed_failures(
                            NAME_PUBLISH,
                            missed,
                            "not connected when due",
                        );
                    }
                    conn.ever_connected = true;
                }
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
                        subscriber::on_subscribed(
                            state,
                            granted.is_some(),
                            took,
                            sub,
                            self.delivery_gate,
                            &mut self.stats,
                        );
                    }
                }
                Event::Received {
                    payload_len,
                    head,
                    at,
                    ..
                } => {
                    if let (Some(state), Some(sub)) =
                        (conn.subscriber.as_mut(), &self.plan.subscribe)
                    {
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
        read?.map_err(|e| e.to_string())?;
        if conn.phase == Phase::Connected
            && self.stop_deadline.is_none()
            && conn.subscriber.is_none()
            && churn::may_publish(&self.plan.scale, conn.retire_at, now)
        {
            // A writable edge after back-pressure: drain first, so held-back messages go now.
            if let Some(transport) = conn.transport.as_mut()
                && transport.has_backlog()
            {
                transport.flush().map_err(|e| e.to_string())?;
            }
            self.publish_due(conn, now)?;
        }
        let (Some(transport), Some(session)) = (conn.transport.as_mut(), conn.session.as_mut())
        else {
            return Ok(());
        };
        if session.poll_timeout().is_some_and(|t| t <= now) {
            session.handle_timeout(now).map_err(|e| e.to_string())?;
        }
        if conn.phase == Phase::Draining {
            let expired = self
                .stop_deadline
                .or(conn.drain_until)
                .is_some_and(|d| now >= d);
            let done = match (conn.subscriber.as_mut(), self.stop_deadline) {
                // Subscribers leave after the publishers, with a grace period, or a hard limit.
                (Some(state), Some(deadline)) => subscriber::may_leave(
                    state,
                    self.delivery_gate,
                    now,
                    deadline + subscriber::DRAIN_GRACE,
                ),
                _ => session.inflight_len() == 0 || expired,
            };
            if done {
                for due in session.take_unacked() {
                    self.stats.record_failure(
                        NAME_PUBLISH,
                        micros(now.saturating_duration_since(due)),
                        "no ack before the stop timeout",
                    );
                }
                session.disconnect();
            }
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

    /// Publishes every message the plan says is due, while the socket and window allow.
    fn publish_due(&mut self, conn: &mut Conn, now: Instant) -> Result<(), String> {
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
            session
                .publish(&conn.topic, &self.body, qos, due, now)
                .map_err(|e| e.to_string())?;
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
            if session.pending_output().len() >= 64 * 1024 {
                send_pending(transport, session, now)?;
            }
        }
        conn.schedule.caught_up();
        Ok(())
    }

    fn fail_connect(&mut self, slot: usize, conn: &mut Conn, now: Instant, reason: &str) {
        let took = now.saturating_duration_since(conn.attempt_started);
        self.stats
            .record_failure(NAME_CONNECT, micros(took), reason);
        self.stats.connections().failed_attempts += 1;
        self.retry_later(slot, conn, now);
    }

    fn fail_connection(&mut self, slot: usize, conn: &mut Conn, now: Instant, reason: &str) {
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
    fn close(&mut self, conn: &mut Conn) {
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
    fn release(&mut self, conn: &mut Conn, graceful: bool) {
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

/// Hands the session's pending bytes to the transport and pushes them to the socket.
fn send_pending(
    transport: &mut Transport,
    session: &mut Session,
    now: Instant,
) -> Result<(), String> {
    if !session.pending_output().is_empty() {
        transport
            .queue(session.pending_output())
            .map_err(|e| e.to_string())?;
        session.output_sent(now);
    }
    transport.flush().map_err(|e| e.to_string())?;
    Ok(())
}

/// Limits a loop to one wakeup per `interval` on average, with a burst of a few allowed
/// (a generic cell rate algorithm): a quiet loop wakes at once, a busy one sleeps to batch.
#[derive(Debug)]
struct WakePacer {
    interval: Duration,
    burst: Duration,
    /// Theoretical time of the next wakeup at exactly the allowed rate.
    next: Option<Instant>,
}

impl WakePacer {
    fn new(interval: Duration) -> WakePacer {
        WakePacer {
            interval,
            burst: interval * 4,
            next: None,
        }
    }

    /// How long to sleep before polling again, if at all.
    fn pause(&self, now: Instant) -> Option<Duration> {
        let allowed = self.next?.checked_sub(self.burst)?;
        // Capped, so a stop request is still seen promptly.
        (allowed > now).then(|| (allowed - now).min(MAX_SLEEP))
    }

    /// The loop woke at `now`.
    fn woke(&mut self, now: Instant) {
        if !self.interval.is_zero() {
            self.next = Some(self.next.map_or(now, |next| next.max(now)) + self.interval);
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_loop_never_waits_and_a_busy_one_is_held_to_the_rate() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let mut pacer = WakePacer::new(ms(1));
        // Wakes 10 ms apart: never paused.
        for k in 0..10 {
            let at = t0 + ms(10 * k);
            assert_eq!(pacer.pause(at), None);
            pacer.woke(at);
        }
        // Back-to-back wakes: a burst of a few passes, then each waits for its 1 ms slot.
        let busy = t0 + ms(200);
        let mut paused = Vec::new();
        let mut now = busy;
        for _ in 0..10 {
            if let Some(p) = pacer.pause(now) {
                paused.push(p);
                now += p;
            }
            pacer.woke(now);
        }
        assert_eq!(paused.len(), 5, "{paused:?}");
        assert!(
            now >= busy + ms(5) && now <= busy + ms(6),
            "{:?}",
            now - busy
        );
        // Disabled: never pauses.
        let mut off = WakePacer::new(Duration::ZERO);
        off.woke(t0);
        assert_eq!(off.pause(t0), None);
    }
}
