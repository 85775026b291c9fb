//! The load engine: one mio event loop per worker thread, a collector thread, and the stop signal.

mod backoff;
mod churn;
mod conn;
pub mod control;
mod device;
mod drain;
mod event_loop;
mod gate;
mod order;
mod pacer;
mod schedule;
mod sink;
mod subscriber;
pub mod wheel;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Sender;

use crate::plan::RunPlan;
use crate::stats::StatsMsg;

pub use event_loop::WorkerError;

/// The clock origin every worker shares: instants are converted to unix time through it.
#[derive(Debug, Clone, Copy)]
pub struct Epoch {
    /// When the run started.
    pub instant: Instant,
    /// The same moment as unix seconds.
    pub unix: f64,
}

impl Epoch {
    /// Now.
    pub fn now() -> Epoch {
        let unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Epoch {
            instant: Instant::now(),
            unix,
        }
    }

    /// Unix seconds of an instant of this run.
    pub fn unix_at(&self, at: Instant) -> f64 {
        self.unix + at.saturating_duration_since(self.instant).as_secs_f64()
    }
}

/// Runs the plan's users on `plan.threads` workers until `stop` is set, then drains and
/// returns. Each worker sends its statistics to `stats` every second and once at the end.
pub fn run(
    plan: &Arc<RunPlan>,
    stats: &Sender<StatsMsg>,
    stop: &Arc<AtomicBool>,
    epoch: Epoch,
) -> Vec<WorkerError> {
    let subscribers = plan.subscribe.as_ref().map_or(0, |s| s.subscribers);
    let gate = Arc::new(subscriber::DeliveryGate::new(subscribers, plan.users));
    let handles = (0..plan.threads)
        .map(|index| {
            let plan = Arc::clone(plan);
            let gate = Arc::clone(&gate);
            let stats = stats.clone();
            let stop = Arc::clone(stop);
            spawn_worker(index, move || {
                event_loop::run_worker(index, &plan, stats, &stop, epoch, None, &gate)
            })
        })
        .collect();
    join_workers(handles)
}

/// A worker thread of a worker-thread result, or why it could not start.
type WorkerHandle = std::io::Result<thread::JoinHandle<Result<(), WorkerError>>>;

/// Starts worker thread `index` (named so in `top` and panics) running `body`.
fn spawn_worker(
    index: usize,
    body: impl FnOnce() -> Result<(), WorkerError> + Send + 'static,
) -> WorkerHandle {
    thread::Builder::new()
        .name(format!("mqload-worker-{index}"))
        .spawn(body)
}

/// Waits for every worker thread and collects why any could not run.
fn join_workers(handles: Vec<WorkerHandle>) -> Vec<WorkerError> {
    let mut errors = Vec::new();
    for handle in handles {
        match handle.map(thread::JoinHandle::join) {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => errors.push(e),
            Ok(Err(_)) => errors.push(WorkerError::Panicked),
            Err(e) => errors.push(WorkerError::Spawn(e)),
        }
    }
    errors
}

/// Sets `stop` after `run_time` (if any) or when SIGINT/SIGTERM arrives, whichever is first.
pub fn stop_after(run_time: Option<Duration>, stop: &Arc<AtomicBool>, done: &Arc<AtomicBool>) {
    crate::signals::install();
    let deadline = run_time.map(|t| Instant::now() + t);
    while !done.load(Ordering::Relaxed) {
        if crate::signals::received() || deadline.is_some_and(|d| Instant::now() >= d) {
            stop.store(true, Ordering::Relaxed);
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
}
