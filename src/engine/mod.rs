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
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::plan::RunPlan;
use crate::stats::StatsMsg;
use crate::threads;

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
        Epoch {
            instant: Instant::now(),
            unix: crate::unix_time::unix_now(),
        }
    }

    /// Unix seconds of an instant of this run.
    #[inline]
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
    run_threads((0..plan.threads).map(|index| {
        let plan = Arc::clone(plan);
        let gate = Arc::clone(&gate);
        let stats = stats.clone();
        let stop = Arc::clone(stop);
        move || event_loop::run_worker(index, &plan, stats, &stop, epoch, None, &gate)
    }))
}

/// Runs each job on its own thread (named `mqload-worker-<i>` in `top` and panics) and waits
/// for all of them: why any could not run. The spawn and join are the crate's one
/// ([`crate::threads`]).
fn run_threads<F>(jobs: impl IntoIterator<Item = F>) -> Vec<WorkerError>
where
    F: FnOnce() -> Result<(), WorkerError> + Send + 'static,
{
    let (handles, spawn_error) = match threads::spawn_each("mqload-worker", jobs) {
        Ok(handles) => (handles, None),
        Err(failed) => (failed.started, Some(WorkerError::Spawn(failed.error))),
    };
    threads::join_all(handles)
        .into_iter()
        .filter_map(|joined| match joined {
            Some(Ok(())) => None,
            Some(Err(e)) => Some(e),
            None => Some(WorkerError::Panicked),
        })
        .chain(spawn_error)
        .collect()
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
