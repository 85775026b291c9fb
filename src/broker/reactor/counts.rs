//! The thread's counters: stored into the hub's shared atomics, and (thread 0) the received
//! count as the retained `$SYS` message.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{SYS_RECEIVED, Worker};
use crate::broker::ingest::{Outgoing, route};
use crate::mqtt::QoS;

impl Worker {
    /// Thread 0, once a second: the received count as a retained `$SYS` message.
    pub(super) fn publish_sys(&mut self) {
        let hub = Arc::clone(&self.ctx.hub);
        let received = hub.total(|c| &c.received) + self.ctx.counts.received
            - hub.counters[0].received.load(Ordering::Relaxed);
        let text = received.to_string();
        let message = Outgoing {
            topic: SYS_RECEIVED,
            payload: text.as_bytes(),
            qos: QoS::AtMostOnce,
            retain: true,
            properties: None,
        };
        route(&mut self.ctx, &message, None);
    }

    pub(super) fn publish_counts(&self) {
        let c = &self.ctx.counts;
        let shared = &self.ctx.hub.counters[self.ctx.thread];
        for (atomic, value) in [
            (&shared.accepted, c.accepted),
            (&shared.bad_packets, c.bad_packets),
            (&shared.received, c.received),
            (&shared.sent, c.sent),
            (&shared.dropped, c.dropped),
            (&shared.slow_disconnects, c.slow),
            (&shared.expired, c.expired),
            (&shared.taken_over, c.taken_over),
            (&shared.open, c.open),
        ] {
            atomic.store(value, Ordering::Relaxed);
        }
    }
}
