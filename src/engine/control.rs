//! The engine's control channel: a remote controller (a Locust master) changes the number of
//! users live and stops the run, through one crossbeam channel per worker thread.
//!
//! Each worker thread drains its channel once per wakeup. User `i` still lives on thread
//! `i % threads`, so every thread derives its own share of a new count without coordination.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender};

use super::subscriber::{CONTROLLED_DRAIN_GRACE, DeliveryGate};
use super::{Epoch, WorkerError, worker};
use crate::plan::RunPlan;
use crate::stats::StatsMsg;

/// An order for the worker threads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Control {
    /// Run exactly `count` users in total (over all threads): users `0..count`. New ones
    /// start `spawn_rate` per second from now; removed ones (the highest indices) drain
    /// their acks and disconnect; re-added ones connect again.
    SetUsers {
        /// Total users wanted.
        count: u64,
        /// Users started per second (over all threads).
        spawn_rate: f64,
    },
    /// Run exactly `count` subscribers in total (over all threads), added and removed like
    /// [`Control::SetUsers`] but all at once. An engine runs one kind: an engine given this
    /// runs subscribers only (the plan's `subscribe` must be set), never publishers.
    SetSubscribers {
        /// Total subscribers wanted.
        count: u64,
    },
    /// Stop every user (drain, disconnect) and end the threads.
    Stop,
}

/// Users of a total of `count` that live on thread `index` of `threads`.
pub fn share(count: u64, index: usize, threads: usize) -> usize {
    let threads = threads.max(1) as u64;
    let index = index as u64;
    usize::try_from(count / threads + u64::from(index < count % threads)).unwrap_or(usize::MAX)
}

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

fn run_controlled(
    plan: &Arc<RunPlan>,
    stats: &Sender<StatsMsg>,
    stop: &Arc<AtomicBool>,
    epoch: Epoch,
    receivers: Vec<Receiver<Control>>,
) -> Vec<WorkerError> {
    let handles: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(index, rx)| {
            let (plan, stats, stop) = (Arc::clone(plan), stats.clone(), Arc::clone(stop));
            thread::Builder::new()
                .name(format!("mqload-worker-{index}"))
                .spawn(move || {
                    // Publishers never wait for subscribers here: a controlled run's
                    // subscribers (a Locust subscriber class) live in an engine of their own.
                    let gate = DeliveryGate::new(0, 0).with_grace(CONTROLLED_DRAIN_GRACE);
                    worker::run_worker(index, &plan, stats, &stop, epoch, Some(&rx), &gate)
                })
        })
        .collect();
    let mut errors = Vec::new();
    for handle in handles {
        match handle.map(thread::JoinHandle::join) {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => errors.push(e),
            Ok(Err(_)) => errors.push(WorkerError::Panicked),
            Err(e) => errors.push(WorkerError::Spawn(e.to_string())),
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_follow_i_mod_threads() {
        for count in [0, 1, 5, 99, 100, 101] {
            for threads in [1, 2, 3, 8] {
                let shares: Vec<usize> = (0..threads).map(|i| share(count, i, threads)).collect();
                assert_eq!(shares.iter().sum::<usize>() as u64, count);
                for (i, &n) in shares.iter().enumerate() {
                    let by_rule = (0..count)
                        .filter(|u| u % threads as u64 == i as u64)
                        .count();
                    assert_eq!(n, by_rule, "count {count} threads {threads} thread {i}");
                }
            }
        }
    }
}
