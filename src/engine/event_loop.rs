//! The event loop of one worker thread: a mio `Poll` over its devices' sockets, a timer
//! wheel, and its statistics. It moves bytes, timers and control orders to the devices; what a
//! device does with them lives in the submodules.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::{Events, Poll};

use super::Epoch;
use super::conn::Conn;
use super::device::{Device, Env, Phase};
use super::gate::ConnectGate;
use super::order::Control;
use super::pacer::WakePacer;
use super::subscriber::DeliveryGate;
use super::wheel::TimerWheel;
use crate::delivery::{MIN_TRACKED_PUBLISHERS, expected_copies};
use crate::net::WakeClock;
use crate::plan::{RunPlan, expand_template};
use crate::stats::{FlowGauges, StatsMsg, WorkerStats};

use drive::{Wake, attempt_step};

mod drive;
mod live;
mod pump;

/// Longest sleep of the loop, so a stop request is seen promptly.
const MAX_SLEEP: Duration = Duration::from_millis(50);
/// Length of one timer-wheel tick: a due message is sent at most this late by the timer.
const TICK_NANOS: u64 = 250_000;
/// epoll's timeout resolution: shorter waits are slept precisely instead.
const EPOLL_RESOLUTION: Duration = Duration::from_millis(1);
/// Statistics go to the collector this often.
const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// Readiness events taken per wakeup.
const EVENTS_PER_WAKE: usize = 1024;
/// Bytes read from a socket at once.
const SCRATCH_BYTES: usize = 64 * 1024;

/// Why a worker thread could not run.
#[derive(Debug)]
pub enum WorkerError {
    /// The epoll instance could not be created or polled.
    Poll(io::Error),
    /// The thread could not be started.
    Spawn(io::Error),
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

/// What the devices of one thread share: the devices' surroundings, and the loop's own IO state.
struct Shared<'a> {
    /// What every device call gets: plan, statistics, payloads, jitter RNG, stop state.
    env: Env<'a, WorkerStats>,
    poll: Poll,
    wheel: TimerWheel,
    scratch: Vec<u8>,
    /// WebSocket work space, empty between uses: MQTT bytes unframed from one read, or the
    /// frame one write of MQTT bytes becomes (so no connection keeps a buffer that large).
    ws_scratch: Vec<u8>,
    /// Both clocks as read at the start of this wakeup.
    clock: WakeClock,
    /// Devices finished for good.
    closed: usize,
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
    let mut shared = Shared::new(index, plan, epoch, gate)?;
    let mut conns = match control {
        Some(_) => Vec::new(),
        None => make_users(index, plan, epoch.instant),
    };
    for (slot, conn) in conns.iter_mut().enumerate() {
        shared.schedule(slot, conn, conn.device.idle_until());
    }
    let mut events = Events::with_capacity(EVENTS_PER_WAKE);
    let mut fired = Vec::new();
    let mut next_stats = epoch.instant + STATS_INTERVAL;
    let mut now = Instant::now();
    let mut pacer = WakePacer::new(plan.wake_interval, MAX_SLEEP);
    loop {
        if shared.env.stop_deadline.is_none() && stop.load(Ordering::Relaxed) {
            shared.begin_stop(&mut conns, now);
        }
        if shared.env.stop_deadline.is_some() && shared.closed == conns.len() {
            break;
        }
        if let Some(pause) = pacer.pause(now) {
            // Bound wakeups per second: what arrives meanwhile keeps its kernel timestamp.
            std::thread::sleep(pause);
        }
        shared.wait(&mut events)?;
        // The one clock read of this wakeup.
        shared.clock = WakeClock::now();
        now = shared.clock.instant;
        pacer.woke(now);
        if let Some(rx) = control {
            while let Ok(order) = rx.try_recv() {
                shared.apply_control(&mut conns, order, now);
            }
        }
        shared.dispatch(&mut conns, &events, &mut fired, now);
        if now >= next_stats {
            shared.send_stats(&stats_tx, &conns, now);
            // After a stall, carry on from now rather than sending a burst of empty deltas.
            next_stats += STATS_INTERVAL;
            if next_stats <= now {
                next_stats = now + STATS_INTERVAL;
            }
        }
    }
    shared.send_stats(&stats_tx, &conns, now);
    Ok(())
}

/// This thread's devices of a standalone run: publishers `index, index + threads, ...` spawned at
/// the plan's rate, then its share of the subscribers, started at once.
fn make_users(index: usize, plan: &RunPlan, start: Instant) -> Vec<Conn> {
    let threads = plan.threads as u64;
    let mut conns: Vec<Conn> = (index as u64..plan.users)
        .step_by(plan.threads)
        .map(|user| {
            debug_assert_eq!(user % threads, index as u64);
            let client_id = expand_template(&plan.client_id_template, user, &plan.run_id, "");
            let topic = expand_template(&plan.topic_template, user, &plan.run_id, &client_id);
            let at = start + Duration::from_secs_f64(user as f64 / plan.spawn_rate);
            let copies = plan.subscribe.as_ref().map_or(0, |sub| {
                expected_copies(&sub.filter, &topic, sub.subscribers)
            });
            let mut device = Device::new(user, client_id, topic, at);
            device.set_expected_copies(copies);
            Conn::new(device)
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
        conns.push(Conn::new(Device::subscriber(
            user,
            client_id,
            start,
            max_publishers,
        )));
    }
    conns
}

impl<'a> Shared<'a> {
    fn new(
        index: usize,
        plan: &'a RunPlan,
        epoch: Epoch,
        delivery_gate: &'a DeliveryGate,
    ) -> Result<Shared<'a>, WorkerError> {
        let poll = Poll::new().map_err(WorkerError::Poll)?;
        let seed = epoch.unix.to_bits() ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let stats = WorkerStats::new(index, plan.request_names.len());
        Ok(Shared {
            env: Env::new(plan, epoch, stats, delivery_gate, seed),
            poll,
            wheel: TimerWheel::new(),
            scratch: vec![0u8; SCRATCH_BYTES],
            ws_scratch: Vec::new(),
            clock: WakeClock::now(),
            closed: 0,
            gate: ConnectGate::new(plan.scale.max_connecting.div_ceil(plan.threads)),
            live: live::Live::new(index),
        })
    }
}

impl Shared<'_> {
    /// Waits for socket readiness or the next timer. epoll rounds timeouts up to whole
    /// milliseconds: wait the whole ones there, and sleep the last fraction precisely, so a
    /// timer fires on its tick, not up to 2 ms late.
    fn wait(&mut self, events: &mut Events) -> Result<(), WorkerError> {
        let deadline = self.wheel.next_tick().map(|tick| self.instant_of(tick));
        let before_poll = Instant::now();
        let wait = deadline
            .map_or(MAX_SLEEP, |d| d.saturating_duration_since(before_poll))
            .min(MAX_SLEEP);
        let coarse = Duration::from_millis(wait.as_millis() as u64);
        if let Err(e) = self.poll.poll(events, Some(coarse))
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
        Ok(())
    }

    /// Drives every device a socket event, a timer or a connect turn is for.
    fn dispatch(
        &mut self,
        conns: &mut [Conn],
        events: &Events,
        fired: &mut Vec<(u64, u32)>,
        now: Instant,
    ) {
        for event in events.iter() {
            let slot = event.token().0;
            if let Some(conn) = conns.get_mut(slot) {
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    conn.readable = true;
                }
                self.drive(slot, conn, now);
            }
        }
        fired.clear();
        self.wheel.advance(self.tick_of(now), fired);
        for &(tick, slot) in fired.iter() {
            let slot = slot as usize;
            if let Some(conn) = conns.get_mut(slot)
                && conn.scheduled_tick == Some(tick)
            {
                conn.scheduled_tick = None;
                self.drive(slot, conn, now);
            }
        }
        // Devices that waited for a connect turn go now, oldest first.
        while let Some(slot) = self.gate.admit() {
            if let Some(conn) = conns.get_mut(slot) {
                conn.admitted = true;
                self.drive(slot, conn, now);
            }
        }
    }

    #[inline]
    fn tick_of(&self, at: Instant) -> u64 {
        self.nanos_since_epoch(at) / TICK_NANOS
    }

    /// Nanoseconds from the run's start to `at` (0 before it), saturating after 584 years:
    /// u64 arithmetic, so the per-wakeup tick maths needs no 128-bit division.
    #[inline]
    fn nanos_since_epoch(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.env.epoch.instant);
        since
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(since.subsec_nanos()))
    }

    fn instant_of(&self, tick: u64) -> Instant {
        self.env.epoch.instant + Duration::from_nanos(tick.saturating_mul(TICK_NANOS))
    }

    /// Makes sure `conn` is woken at `at` (rounded up to the next tick).
    #[inline]
    fn schedule(&mut self, slot: usize, conn: &mut Conn, at: Instant) {
        let tick = self.nanos_since_epoch(at).div_ceil(TICK_NANOS);
        if conn.scheduled_tick.is_some_and(|t| t <= tick) {
            return;
        }
        conn.scheduled_tick = Some(self.wheel.schedule(tick, slot as u32));
    }

    /// Sends this thread's statistics since the last call to the collector.
    fn send_stats(&mut self, tx: &Sender<StatsMsg>, conns: &[Conn], now: Instant) {
        let connected = self.env.connected;
        self.env.stats.set_users_connected(connected);
        let mut flow = FlowGauges::default();
        let period = self.env.period;
        for (in_flight, held_back) in conns.iter().map(|c| c.device.flow(now, period)) {
            flow.in_flight += in_flight as u64;
            flow.held_back = flow.held_back.saturating_add(held_back);
        }
        self.env.stats.set_flow(flow);
        let delta = self.env.stats.take_delta(self.env.epoch.unix_at(now));
        let _ = tx.send(StatsMsg::Delta(delta));
    }

    /// The run is stopping: connected devices drain, the others end now.
    fn begin_stop(&mut self, conns: &mut [Conn], now: Instant) {
        self.env.stop_deadline = Some(now + self.env.plan.stop_timeout);
        for (slot, conn) in conns.iter_mut().enumerate() {
            let before = conn.device.phase();
            let step = attempt_step(conn);
            conn.device.stop(now, &mut self.env, step);
            if conn.device.phase() == Phase::Draining && before == Phase::Connected {
                self.drive(slot, conn, now);
            } else {
                self.settle(slot, conn, before, now, Wake::Planned);
            }
        }
    }
}

/// A duration in whole microseconds, as the statistics keep them.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
