//! The engine's control channel: a remote controller (a Locust master) changes the number of
//! users live and stops the run, through one crossbeam channel per worker thread.
//!
//! Each worker thread drains its channel once per wakeup. User `i` still lives on thread
//! `i % threads`, so every thread derives its own share of a new count without coordination.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

pub use super::order::{Control, share};
use super::subscriber::{CONTROLLED_DRAIN_GRACE, DeliveryGate};
use super::{Epoch, WorkerError, event_loop, run_threads};
use crate::plan::RunPlan;
use crate::stages::{self, Driver, Order, Profile};
use crate::stats::StatsMsg;

/// A running engine driven by [`Control`] messages instead of the plan's fixed schedule.
#[derive(Debug)]
pub struct Engine {
    senders: Vec<Sender<Control>>,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<WorkerError>>,
}

impl Engine {
    /// Starts `plan.threads` worker threads with no users; statistics go to `stats`.
    pub fn start(plan: Arc<RunPlan>, stats: Sender<StatsMsg>, epoch: Epoch) -> Engine {
        let stop = Arc::new(AtomicBool::new(false));
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..plan.threads)
            .map(|_| crossbeam_channel::unbounded::<Control>())
            .unzip();
        let handle = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || run_controlled(&plan, &stats, &stop, epoch, receivers))
        };
        Engine {
            senders,
            stop,
            handle,
        }
    }

    /// Sends `control` to every worker thread.
    pub fn send(&self, control: Control) {
        for tx in &self.senders {
            let _ = tx.send(control);
        }
    }

    /// Starts stopping every user (they drain their acks for at most the plan's stop
    /// timeout) without waiting; see [`Engine::is_finished`].
    pub fn begin_stop(&self) {
        self.send(Control::Stop);
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether every worker thread has ended (after [`Engine::begin_stop`]).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Stops every user, waits for the threads (they drain for at most the plan's stop
    /// timeout and send their last statistics), and returns their errors.
    pub fn stop(self) -> Vec<WorkerError> {
        self.begin_stop();
        self.handle
            .join()
            .unwrap_or_else(|_| vec![WorkerError::Panicked])
    }
}

/// Runs `profile` (`--stages`) on a controlled engine until `stop` is set: every
/// [`stages::TICK`] the profile's driver orders the users and the rate it asks for; then the
/// users drain and stop. Returns the threads' errors.
pub fn run_profile(
    plan: &Arc<RunPlan>,
    stats: &Sender<StatsMsg>,
    stop: &AtomicBool,
    epoch: Epoch,
    profile: &Profile,
) -> Vec<WorkerError> {
    let engine = Engine::start(Arc::clone(plan), stats.clone(), epoch);
    let mut driver = Driver::new(profile.clone(), plan.throughput);
    let mut tick: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        let elapsed = stages::TICK.saturating_mul(tick);
        let due = epoch.instant + elapsed;
        let left = due.saturating_duration_since(std::time::Instant::now());
        if !left.is_zero() {
            // Short sleeps, so a stop is seen promptly.
            thread::sleep(left.min(Duration::from_millis(20)));
            continue;
        }
        for order in driver.poll(elapsed) {
            engine.send(match order {
                Order::Users { count, spawn_rate } => Control::SetUsers { count, spawn_rate },
                Order::Rate(per_user) => Control::SetRate { per_user },
            });
        }
        tick = tick.saturating_add(1);
    }
    engine.stop()
}

fn run_controlled(
    plan: &Arc<RunPlan>,
    stats: &Sender<StatsMsg>,
    stop: &Arc<AtomicBool>,
    epoch: Epoch,
    receivers: Vec<Receiver<Control>>,
) -> Vec<WorkerError> {
    run_threads(receivers.into_iter().enumerate().map(|(index, rx)| {
        let (plan, stats, stop) = (Arc::clone(plan), stats.clone(), Arc::clone(stop));
        move || {
            // Publishers never wait for subscribers here: a controlled run's
            // subscribers (a Locust subscriber class) live in an engine of their own.
            let gate = DeliveryGate::new(0, 0).with_grace(CONTROLLED_DRAIN_GRACE);
            event_loop::run_worker(index, &plan, stats, &stop, epoch, Some(&rx), &gate)
        }
    }))
}
