//! What every device of one worker thread shares, passed to each device call: the run's plan,
//! the statistics sink, the payload builder, the jitter RNG and the stop state.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::delivery::StampReader;
use crate::engine::Epoch;
pub use crate::engine::sink::StatsSink;
use crate::engine::subscriber::DeliveryGate;
use crate::payload::{PayloadBuilder, json_head};
use crate::plan::RunPlan;

/// The devices' shared surroundings on one worker thread.
pub struct Env<'a, S> {
    /// The run's plan.
    pub plan: &'a RunPlan,
    /// The run's clock origin (for unix times in payloads and latencies).
    pub epoch: Epoch,
    /// Time between two messages of one publisher.
    pub period: Duration,
    /// Where devices record what happened.
    pub stats: S,
    /// Builds message bodies.
    pub payload: PayloadBuilder,
    /// The body being built (reused: no allocation per message).
    pub body: Vec<u8>,
    /// Reconnect backoff jitter.
    pub rng: SmallRng,
    /// Reads the stamps of received messages.
    pub stamps: StampReader,
    /// Subscribers' gate and drain counters, shared by every worker.
    pub delivery_gate: &'a DeliveryGate,
    /// Set once the run is stopping: no more publishes or reconnects after it.
    pub stop_deadline: Option<Instant>,
    /// Publishers connected now.
    pub connected: u64,
}

impl<'a, S> Env<'a, S> {
    /// Surroundings for `plan`'s devices; `seed` seeds the payloads and the backoff jitter.
    pub fn new(
        plan: &'a RunPlan,
        epoch: Epoch,
        stats: S,
        delivery_gate: &'a DeliveryGate,
        seed: u64,
    ) -> Env<'a, S> {
        let payload = PayloadBuilder::new(&plan.payload, seed);
        let body = Vec::with_capacity(payload.body_len_hint());
        Env {
            plan,
            epoch,
            period: Duration::from_nanos((1e9 / plan.throughput).round().max(1.0) as u64),
            stats,
            payload,
            body,
            rng: SmallRng::seed_from_u64(seed),
            stamps: StampReader::new(&plan.run_id, json_head(&plan.run_id)),
            delivery_gate,
            stop_deadline: None,
            connected: 0,
        }
    }
}
