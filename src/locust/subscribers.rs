//! The master's subscriber user classes (`MqttSubscriber`) as mqload subscriber connections,
//! in an engine of their own beside the publishers', added and removed live.

use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::cli::Cli;
use crate::engine::control::{Control, Engine};
use crate::engine::{Epoch, WorkerError};
use crate::plan::{PlanError, RunPlan};
use crate::stats::StatsMsg;

/// Whether a master's user class is a subscriber class (its name says so).
pub fn is_subscriber_class(class: &str) -> bool {
    class.to_ascii_lowercase().contains("subscriber")
}

/// The worker's plan: publishers, plus what subscribers subscribe to when a topic filter is
/// given (`--subscribe-topic` or the master's `--mqtt-subscribe-topic`). The master sets both
/// counts, so the plan's own subscriber count (one, to pass the checks) is never used.
pub fn plan(cli: &Cli) -> Result<RunPlan, PlanError> {
    let mut cli = cli.clone();
    if cli.subscribe_topic.is_some() && cli.subscribers == 0 {
        cli.worker = false;
        cli.subscribers = 1;
        // Two connections in all, as without subscribers: the client id check stays the same.
        cli.users = 1;
    }
    RunPlan::from_cli(&cli)
}

/// The subscriber side of one test: started at the first subscriber the master asks for.
#[derive(Debug)]
pub struct Subscribers {
    stats: Sender<StatsMsg>,
    epoch: Epoch,
    engine: Option<Engine>,
    /// Subscribers now wanted on this worker.
    pub count: u64,
}

impl Subscribers {
    /// No subscribers yet; their statistics will go to `stats`, timed from `epoch`.
    pub fn new(stats: Sender<StatsMsg>, epoch: Epoch) -> Subscribers {
        Subscribers {
            stats,
            epoch,
            engine: None,
            count: 0,
        }
    }

    /// Runs exactly `count` subscribers of `plan` (which must have a topic filter).
    pub fn set(&mut self, plan: &Arc<RunPlan>, count: u64) {
        if count == self.count || plan.subscribe.is_none() {
            return;
        }
        let engine = self
            .engine
            .get_or_insert_with(|| Engine::start(Arc::clone(plan), self.stats.clone(), self.epoch));
        engine.send(Control::SetSubscribers { count });
        self.count = count;
    }

    /// Starts stopping them (they stay a grace period for messages still on their way).
    pub fn begin_stop(&self) {
        if let Some(engine) = &self.engine {
            engine.begin_stop();
        }
    }

    /// Whether every subscriber thread has ended (or none ever started).
    pub fn is_finished(&self) -> bool {
        self.engine.as_ref().is_none_or(Engine::is_finished)
    }

    /// Stops them and waits; returns the threads' errors.
    pub fn stop(self) -> Vec<WorkerError> {
        self.engine.map(Engine::stop).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn a_worker_plan_gets_subscribe_and_receive_rows_only_with_a_filter() {
        let base = ["mqload", "--worker", "--host", "127.0.0.1", "--no-tls"];
        let plain = plan(&Cli::parse_from(base)).expect("plan");
        assert!(plain.subscribe.is_none());
        let with: Vec<&str> = base
            .iter()
            .copied()
            .chain(["--subscribe-topic", "t/#", "--subscribe-qos", "1"])
            .collect();
        let sub = plan(&Cli::parse_from(with)).expect("plan");
        assert!(sub.request_names.iter().any(|n| n == "receive:1:t/#"));
        assert!(sub.request_names.iter().any(|n| n == "subscribe:1:t/#"));
        assert!(is_subscriber_class("MqttSubscriber"));
        assert!(!is_subscriber_class("MqttPublisher"));
    }
}
