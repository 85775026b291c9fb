//! Subscriber connections (`--subscribers`): what they do on CONNACK, SUBACK and each received
//! message, the gate that holds publishers back until every subscriber is subscribed, and when
//! a stopping subscriber may leave (after the publishers, plus a grace period).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::Epoch;
use super::sink::StatsSink;
use crate::delivery::{Reading, StampReader, SubscriberTracker, Verdict};
use crate::plan::SubscribePlan;

/// What a subscriber keeps across its reconnects.
#[derive(Debug)]
pub struct SubscriberState {
    /// Per-publisher sequence windows.
    pub tracker: SubscriberTracker,
    /// A SUBACK granted the current connection's subscription.
    pub subscribed: bool,
    /// A SUBACK (granted or refused) arrived at least once.
    pub ever_answered: bool,
    /// When the run stopped and every publisher had closed, as this subscriber first saw it.
    pub quiet_since: Option<Instant>,
}

/// How long subscribers stay after the last publisher of the process closed, for messages
/// still on their way through the broker.
pub const DRAIN_GRACE: Duration = Duration::from_millis(1000);
/// The same grace under a Locust master: its headless quit waits only 0.5 s for the workers'
/// last reports, which come after the subscribers leave.
pub const CONTROLLED_DRAIN_GRACE: Duration = Duration::from_millis(200);
/// How often a waiting publisher or a draining subscriber looks at the gate again.
pub const GATE_POLL: Duration = Duration::from_millis(20);

/// What every worker's subscribers and publishers share: two counters, no locks.
#[derive(Debug)]
pub struct DeliveryGate {
    subscribers: u64,
    /// Subscribers whose first SUBSCRIBE was answered (granted or refused).
    answered: AtomicU64,
    /// Publishers not yet closed for good.
    publishers_open: AtomicU64,
    /// How long subscribers stay after the last publisher closed.
    grace: Duration,
}

impl DeliveryGate {
    /// A gate for `subscribers` subscribers and `publishers` publishers.
    pub fn new(subscribers: u64, publishers: u64) -> DeliveryGate {
        DeliveryGate {
            subscribers,
            answered: AtomicU64::new(0),
            publishers_open: AtomicU64::new(publishers),
            grace: DRAIN_GRACE,
        }
    }

    /// The same gate with subscribers staying `grace` (not [`DRAIN_GRACE`]) after the last
    /// publisher closed.
    pub fn with_grace(mut self, grace: Duration) -> DeliveryGate {
        self.grace = grace;
        self
    }

    /// Publishers may start: every subscriber has had its SUBACK (so the first messages are
    /// not "lost" to a subscription that did not exist yet).
    pub fn open(&self) -> bool {
        self.answered.load(Ordering::Acquire) >= self.subscribers
    }

    pub(super) fn subscriber_answered(&self) {
        self.answered.fetch_add(1, Ordering::AcqRel);
    }

    /// A publisher finished for good.
    pub fn publisher_closed(&self) {
        // Saturating: a user a controller re-adds may close twice.
        let _ = self
            .publishers_open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    fn publishers_done(&self) -> bool {
        self.publishers_open.load(Ordering::Acquire) == 0
    }
}

/// The SUBACK arrived, `took_us` after the SUBSCRIBE was queued: granted, or refused with
/// the failure's name.
pub fn on_subscribed<S: StatsSink>(
    state: &mut SubscriberState,
    outcome: Result<(), &str>,
    took_us: u64,
    plan: &SubscribePlan,
    gate: &DeliveryGate,
    stats: &mut S,
) {
    match outcome {
        Ok(()) => stats.record_success(plan.subscribe_name, took_us, 0),
        Err(reason) => stats.record_failure(plan.subscribe_name, took_us, reason),
    }
    let granted = outcome.is_ok();
    state.subscribed = granted;
    if !state.ever_answered {
        state.ever_answered = true;
        gate.subscriber_answered();
    }
}

/// One message arrived at `at` (kernel time) with these first payload bytes.
#[allow(clippy::too_many_arguments)]
pub fn on_received<S: StatsSink>(
    state: &mut SubscriberState,
    head: &[u8],
    payload_len: usize,
    at: Instant,
    epoch: &Epoch,
    reader: &StampReader,
    plan: &SubscribePlan,
    stats: &mut S,
) {
    let stamp = match reader.read(head) {
        Reading::Ours(stamp) => stamp,
        Reading::Foreign => {
            stats.delivery().foreign += 1;
            return;
        }
        Reading::Unparseable => {
            stats.delivery().unparseable += 1;
            return;
        }
    };
    let verdict = state.tracker.observe(stamp, stats.delivery());
    if verdict == Verdict::Stale {
        return;
    }
    // Receive minus due: no coordinated omission, whatever the publisher's own lag was.
    let received_us = (epoch.unix_at(at) * 1e6) as u64;
    let latency = received_us.saturating_sub(stamp.due_unix_us);
    stats.record_success(plan.receive_name, latency, payload_len as u64);
}

/// Whether a draining subscriber may disconnect now: every publisher of the process closed
/// and the gate's grace ([`DRAIN_GRACE`] unless set) passed since, or the hard `deadline` passed.
pub fn may_leave(
    state: &mut SubscriberState,
    gate: &DeliveryGate,
    now: Instant,
    deadline: Instant,
) -> bool {
    if now >= deadline {
        return true;
    }
    if !gate.publishers_done() {
        return false;
    }
    let quiet_since = *state.quiet_since.get_or_insert(now);
    now >= quiet_since + gate.grace
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::SubscriberTracker;

    fn new_state(max_publishers: usize) -> SubscriberState {
        SubscriberState {
            tracker: SubscriberTracker::new(max_publishers),
            subscribed: false,
            ever_answered: false,
            quiet_since: None,
        }
    }

    #[test]
    fn the_gate_opens_when_every_subscriber_has_an_answer() {
        let gate = DeliveryGate::new(2, 1);
        assert!(!gate.open());
        gate.subscriber_answered();
        assert!(!gate.open());
        gate.subscriber_answered();
        assert!(gate.open());
        assert!(
            DeliveryGate::new(0, 5).open(),
            "no subscribers: open at once"
        );
    }

    #[test]
    fn subscribers_leave_a_grace_after_the_last_publisher_or_at_the_deadline() {
        let gate = DeliveryGate::new(1, 2);
        let mut state = new_state(10);
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(10);
        assert!(!may_leave(&mut state, &gate, t0, deadline));
        gate.publisher_closed();
        assert!(
            !may_leave(&mut state, &gate, t0, deadline),
            "one still open"
        );
        gate.publisher_closed();
        let t1 = t0 + Duration::from_secs(1);
        assert!(!may_leave(&mut state, &gate, t1, deadline), "grace starts");
        assert!(!may_leave(
            &mut state,
            &gate,
            t1 + DRAIN_GRACE / 2,
            deadline
        ));
        assert!(may_leave(&mut state, &gate, t1 + DRAIN_GRACE, deadline));
        let mut other = new_state(10);
        let busy = DeliveryGate::new(1, 1);
        assert!(
            may_leave(&mut other, &busy, deadline, deadline),
            "hard limit"
        );
    }
}
