//! What every device of one worker thread shares, passed to each device call: the run's plan,
//! the statistics sink, the payload builder, the jitter RNG and the stop state.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::delivery::StampReader;
use crate::engine::Epoch;
use crate::engine::subscriber::DeliveryGate;
use crate::payload::{PayloadBuilder, json_head};
use crate::plan::RunPlan;
use crate::stats::{ConnectionCounts, DeliveryCounts, NameId, WorkerStats};

/// Where a device records what happened. The loop passes its `WorkerStats`; tests pass a
/// recorder they can assert on. Every method is called at most once per message and must
/// not allocate.
pub trait StatsSink {
    /// A request (`NAME_*` row) succeeded after `response_us`.
    fn record_success(&mut self, name: NameId, response_us: u64, content_length: u64);
    /// A request failed after `response_us`, for `error`.
    fn record_failure(&mut self, name: NameId, response_us: u64, error: &str);
    /// `count` requests failed without a time (never sent).
    fn record_untimed_failures(&mut self, name: NameId, count: u64, error: &str);
    /// A publish went `lag_us` after its due time.
    fn record_send_lag(&mut self, lag_us: u64);
    /// A held-back publish went `lag_us` after its due time.
    fn record_held_back(&mut self, lag_us: u64);
    /// Sent/expected/received message counts.
    fn delivery(&mut self) -> &mut DeliveryCounts;
    /// Connects, reconnects, drops, failed attempts, resends.
    fn connections(&mut self) -> &mut ConnectionCounts;
}

impl StatsSink for WorkerStats {
    #[inline]
    fn record_success(&mut self, name: NameId, response_us: u64, content_length: u64) {
        WorkerStats::record_success(self, name, response_us, content_length);
    }
    #[inline]
    fn record_failure(&mut self, name: NameId, response_us: u64, error: &str) {
        WorkerStats::record_failure(self, name, response_us, error);
    }
    #[inline]
    fn record_untimed_failures(&mut self, name: NameId, count: u64, error: &str) {
        WorkerStats::record_untimed_failures(self, name, count, error);
    }
    #[inline]
    fn record_send_lag(&mut self, lag_us: u64) {
        WorkerStats::record_send_lag(self, lag_us);
    }
    #[inline]
    fn record_held_back(&mut self, lag_us: u64) {
        WorkerStats::record_held_back(self, lag_us);
    }
    #[inline]
    fn delivery(&mut self) -> &mut DeliveryCounts {
        WorkerStats::delivery(self)
    }
    #[inline]
    fn connections(&mut self) -> &mut ConnectionCounts {
        WorkerStats::connections(self)
    }
}

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
