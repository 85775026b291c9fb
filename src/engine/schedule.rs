//! A publisher's absolute publish plan, on virtual time: when each message is due
//! (`anchor + k * period`, never sliding), which due messages were held back, and what a
//! reconnect skipped. Sans-IO: no sockets, and `now` is always passed in.

use std::time::{Duration, Instant};

/// The seed waits this long after a user's first CONNACK before its first publish.
pub const FIRST_PUBLISH_DELAY: Duration = Duration::from_secs(1);

/// One publisher's plan. The period is the run's, passed to each call, so a device does not
/// keep a copy of it.
#[derive(Debug, Clone, Copy)]
pub struct PublishSchedule {
    /// When the next message is due; moves by whole periods only.
    next_due: Instant,
    /// The plan has been anchored (the user's first CONNACK); a reconnect resumes it.
    anchored: bool,
    /// Due messages are waiting for the broker (socket, TLS buffer or in-flight window full).
    held_back: bool,
}

impl PublishSchedule {
    /// A plan not anchored yet: the user has not connected.
    pub fn new(start: Instant) -> PublishSchedule {
        PublishSchedule {
            next_due: start,
            anchored: false,
            held_back: false,
        }
    }

    /// When the next message is due.
    #[inline]
    pub fn next_due(&self) -> Instant {
        self.next_due
    }

    /// A CONNACK arrived at `now`. The user's first one anchors the plan at
    /// `now + FIRST_PUBLISH_DELAY`. A reconnect resumes the plan at its first slot not before
    /// `now`; returns how many slots fell due while the connection was down (missed, never sent).
    pub fn connected(&mut self, now: Instant, period: Duration) -> u64 {
        self.held_back = false;
        if !self.anchored {
            self.anchored = true;
            self.next_due = now + FIRST_PUBLISH_DELAY;
            return 0;
        }
        self.skip_to(now, period)
    }

    /// Moves the plan to its first slot not before `now`, without sending; returns how many
    /// slots were skipped. Used when a reconnect finds slots in the past, and when a removed
    /// user is wanted again before it disconnected.
    pub fn skip_to(&mut self, now: Instant, period: Duration) -> u64 {
        let Some(late) = now.checked_duration_since(self.next_due) else {
            return 0;
        };
        let period_nanos = period.as_nanos().max(1);
        let skipped = late.as_nanos().div_ceil(period_nanos);
        let skipped = u64::try_from(skipped).unwrap_or(u64::MAX);
        let step =
            u64::try_from(period_nanos.saturating_mul(u128::from(skipped))).unwrap_or(u64::MAX);
        self.next_due += Duration::from_nanos(step);
        skipped
    }

    /// The user stopped for good; if it is wanted again, it starts as a new user (with the
    /// first-publish delay), not as a reconnect.
    pub fn forget(&mut self) {
        self.anchored = false;
        self.held_back = false;
    }

    /// The due time of the message to send now, if one is due at `now`.
    #[inline]
    pub fn due(&self, now: Instant) -> Option<Instant> {
        (self.next_due <= now).then_some(self.next_due)
    }

    /// A due message could not go (the broker is not keeping up): it is held back.
    #[inline]
    pub fn hold_back(&mut self) {
        self.held_back = true;
    }

    /// The due message went; returns whether it had been held back.
    #[inline]
    pub fn sent(&mut self, period: Duration) -> bool {
        self.next_due += period;
        self.held_back
    }

    /// Messages due by `now` that wait on the broker (socket or in-flight window full); 0
    /// when nothing is held back.
    pub fn held_back_at(&self, now: Instant, period: Duration) -> u64 {
        match now.checked_duration_since(self.next_due) {
            Some(late) if self.held_back => {
                let late = late.as_nanos() / period.as_nanos().max(1);
                u64::try_from(late).unwrap_or(u64::MAX).saturating_add(1)
            }
            _ => 0,
        }
    }

    /// Everything due went: later messages are on time again.
    #[inline]
    pub fn caught_up(&mut self) {
        self.held_back = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const PERIOD: Duration = Duration::from_millis(10);

    #[test]
    fn held_back_counts_every_due_message_and_only_while_held() {
        let t0 = Instant::now();
        let mut plan = connected_at(t0);
        let due = plan.next_due();
        assert_eq!(
            plan.held_back_at(due + 35 * MS, PERIOD),
            0,
            "late, not held"
        );
        plan.hold_back();
        assert_eq!(plan.held_back_at(due - MS, PERIOD), 0, "nothing due yet");
        assert_eq!(plan.held_back_at(due, PERIOD), 1);
        assert_eq!(
            plan.held_back_at(due + 35 * MS, PERIOD),
            4,
            "due at +0, 10, 20, 30 ms"
        );
        plan.sent(PERIOD);
        plan.caught_up();
        assert_eq!(plan.held_back_at(due + 35 * MS, PERIOD), 0, "caught up");
    }

    /// A schedule whose first CONNACK came at `t0`: its first message is due at `t0 + 1 s`.
    fn connected_at(t0: Instant) -> PublishSchedule {
        let mut plan = PublishSchedule::new(t0);
        assert_eq!(
            plan.connected(t0, PERIOD),
            0,
            "a first connect misses nothing"
        );
        assert_eq!(plan.next_due(), t0 + FIRST_PUBLISH_DELAY);
        plan
    }

    /// Sends everything due at `now` unless `blocked`; returns (due, lag, held back) per send.
    fn wake(
        plan: &mut PublishSchedule,
        now: Instant,
        blocked: bool,
    ) -> Vec<(Instant, Duration, bool)> {
        let mut sent = Vec::new();
        while let Some(due) = plan.due(now) {
            if blocked {
                plan.hold_back();
                return sent;
            }
            let held = plan.sent(PERIOD);
            sent.push((due, now - due, held));
        }
        plan.caught_up();
        sent
    }

    #[test]
    fn a_stall_holds_messages_back_without_sliding_the_plan() {
        let t0 = Instant::now();
        let mut plan = connected_at(t0);
        let first = t0 + FIRST_PUBLISH_DELAY;
        assert_eq!(
            wake(&mut plan, first, false),
            vec![(first, Duration::ZERO, false)]
        );
        // The broker's window is full for 250 ms: every wake finds it blocked.
        for k in 1..=25 {
            assert!(wake(&mut plan, first + PERIOD * k, true).is_empty());
        }
        let unblocked = first + 250 * MS + 3 * MS;
        let sent = wake(&mut plan, unblocked, false);
        // Due at 10, 20, ..., 250 ms: exactly 25 held back, each late from its own due time.
        assert_eq!(sent.len(), 25);
        for (k, &(due, lag, held)) in sent.iter().enumerate() {
            let due_at = first + PERIOD * (k as u32 + 1);
            assert_eq!((due, lag, held), (due_at, unblocked - due_at, true));
        }
        // The plan did not slide: the next one is due at 260 ms and goes on time.
        assert_eq!(plan.next_due(), first + 260 * MS);
        let next = wake(&mut plan, first + 260 * MS, false);
        assert_eq!(next, vec![(first + 260 * MS, Duration::ZERO, false)]);
    }

    #[test]
    fn a_reconnect_resumes_at_the_next_slot_and_counts_only_the_outage() {
        let t0 = Instant::now();
        let mut plan = connected_at(t0);
        let first = t0 + FIRST_PUBLISH_DELAY;
        // Sent on time up to 5 s, then the connection drops just after the 5 s message.
        let mut at = first;
        while at <= first + 5000 * MS {
            assert_eq!(wake(&mut plan, at, false).len(), 1);
            at += PERIOD;
        }
        // A 100 ms outage at 100 msg/s: slots 5.01 .. 5.10 s fell due while down.
        let back = first + 5000 * MS + 104 * MS;
        assert_eq!(plan.connected(back, PERIOD), 10);
        // Publishing resumes at the next slot of the absolute plan, not CONNACK + 1 s.
        assert_eq!(plan.next_due(), first + 5110 * MS);
        assert!(wake(&mut plan, back, false).is_empty());
        let resumed = wake(&mut plan, first + 5110 * MS, false);
        assert_eq!(resumed, vec![(first + 5110 * MS, Duration::ZERO, false)]);
    }

    #[test]
    fn a_reconnect_exactly_on_a_slot_sends_that_slot() {
        let t0 = Instant::now();
        let mut plan = connected_at(t0);
        let first = t0 + FIRST_PUBLISH_DELAY;
        assert_eq!(wake(&mut plan, first, false).len(), 1);
        // Down from just after `first` until exactly `first + 30 ms`: 10 and 20 ms were missed.
        assert_eq!(plan.connected(first + 30 * MS, PERIOD), 2);
        assert_eq!(plan.due(first + 30 * MS), Some(first + 30 * MS));
        // A reconnect before anything fell due misses nothing.
        let mut early = connected_at(t0);
        assert_eq!(early.connected(t0 + 500 * MS, PERIOD), 0);
        assert_eq!(early.next_due(), first, "the first-publish delay stays");
    }

    #[test]
    fn held_back_messages_lost_with_the_connection_count_as_missed_once() {
        let t0 = Instant::now();
        let mut plan = connected_at(t0);
        let first = t0 + FIRST_PUBLISH_DELAY;
        assert_eq!(wake(&mut plan, first, false).len(), 1);
        // Blocked at 10 and 20 ms, then the connection drops; it is back at 45 ms.
        assert!(wake(&mut plan, first + 20 * MS, true).is_empty());
        assert_eq!(
            plan.connected(first + 45 * MS, PERIOD),
            4,
            "10, 20, 30, 40 ms"
        );
        let next = wake(&mut plan, first + 50 * MS, false);
        assert_eq!(
            next,
            vec![(first + 50 * MS, Duration::ZERO, false)],
            "not held back"
        );
    }

    #[test]
    fn a_user_started_again_waits_the_first_publish_delay() {
        let t0 = Instant::now();
        let mut plan = connected_at(t0);
        plan.forget();
        let again = t0 + 60_000 * MS;
        assert_eq!(
            plan.connected(again, PERIOD),
            0,
            "a minute away is not missed"
        );
        assert_eq!(plan.next_due(), again + FIRST_PUBLISH_DELAY);
    }

    #[test]
    fn a_removed_user_wanted_again_skips_to_the_next_slot() {
        let t0 = Instant::now();
        let mut plan = connected_at(t0);
        let first = t0 + FIRST_PUBLISH_DELAY;
        assert_eq!(plan.skip_to(first + 25 * MS, PERIOD), 3);
        assert_eq!(plan.next_due(), first + 30 * MS);
        assert_eq!(plan.skip_to(first + 30 * MS, PERIOD), 0);
    }
}
