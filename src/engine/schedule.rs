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
    /// The rate changed at this instant while the plan was behind it: slots before it still
    /// follow the old period (given here); the first one past it starts the new plan.
    rebase: Option<(Instant, Duration)>,
}

impl PublishSchedule {
    /// A plan not anchored yet: the user has not connected.
    pub fn new(start: Instant) -> PublishSchedule {
        PublishSchedule {
            next_due: start,
            anchored: false,
            held_back: false,
            rebase: None,
        }
    }

    /// When the next message is due.
    #[inline]
    pub fn next_due(&self) -> Instant {
        self.next_due
    }

    /// Whether a due message is known to wait on the broker (see [`PublishSchedule::hold_back`]).
    #[inline]
    pub fn is_held_back(&self) -> bool {
        self.held_back
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
        let Some((at, old)) = self.rebase else {
            return advance(&mut self.next_due, now, period);
        };
        let skipped = advance(&mut self.next_due, now.min(at), old);
        if self.next_due < at {
            return skipped;
        }
        self.cross(at, old, period);
        skipped + advance(&mut self.next_due, now, period)
    }

    /// The rate changed at `at` from one message per `old` to one per `new`: a new absolute
    /// plan from that instant, never a slide. A slot at or after `at` keeps its place within
    /// the period (scaled to the new one), so users stay spread as they were; a plan behind
    /// `at` first sends what fell due before it, at the old period. (A plan still behind a
    /// first change at a second one plans the time between them at the newer rate.)
    pub fn rebase(&mut self, at: Instant, old: Duration, new: Duration) {
        if !self.anchored || self.rebase.is_some() {
            return;
        }
        match self.next_due.checked_duration_since(at) {
            Some(ahead) if ahead < old => {
                self.next_due = at + ahead.mul_f64(new.as_secs_f64() / old.as_secs_f64());
            }
            // The first publish delay is still running: it keeps its end.
            Some(_) => {}
            None => self.rebase = Some((at, old)),
        }
    }

    /// The plan passed the instant of a rate change: its first slot past it, as
    /// [`PublishSchedule::rebase`] places it.
    fn cross(&mut self, at: Instant, old: Duration, new: Duration) {
        self.rebase = None;
        let ahead = self.next_due.saturating_duration_since(at);
        self.next_due = at + ahead.mul_f64(new.as_secs_f64() / old.as_secs_f64().max(1e-9));
    }

    /// The user stopped for good; if it is wanted again, it starts as a new user (with the
    /// first-publish delay), not as a reconnect.
    pub fn forget(&mut self) {
        self.anchored = false;
        self.held_back = false;
        self.rebase = None;
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
        match self.rebase {
            None => self.next_due += period,
            Some((at, old)) => {
                self.next_due += old;
                if self.next_due >= at {
                    self.cross(at, old, period);
                }
            }
        }
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

/// Moves `next_due` by whole periods to its first slot not before `until`; returns how many
/// slots it passed.
fn advance(next_due: &mut Instant, until: Instant, period: Duration) -> u64 {
    let Some(late) = until.checked_duration_since(*next_due) else {
        return 0;
    };
    let period_nanos = period.as_nanos().max(1);
    let skipped = late.as_nanos().div_ceil(period_nanos);
    let skipped = u64::try_from(skipped).unwrap_or(u64::MAX);
    let step = u64::try_from(period_nanos.saturating_mul(u128::from(skipped))).unwrap_or(u64::MAX);
    *next_due += Duration::from_nanos(step);
    skipped
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
        wake_at_period(plan, now, blocked, PERIOD)
    }

    /// As `wake`, with the run's period now `period`.
    fn wake_at_period(
        plan: &mut PublishSchedule,
        now: Instant,
        blocked: bool,
        period: Duration,
    ) -> Vec<(Instant, Duration, bool)> {
        let mut sent = Vec::new();
        while let Some(due) = plan.due(now) {
            if blocked {
                plan.hold_back();
                return sent;
            }
            let held = plan.sent(period);
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

    #[test]
    fn a_rate_change_starts_a_new_plan_at_its_instant_keeping_each_users_phase() {
        let t0 = Instant::now();
        let mut plan = connected_at(t0);
        let first = t0 + FIRST_PUBLISH_DELAY;
        assert_eq!(wake(&mut plan, first, false).len(), 1);
        // At first + 3 ms the rate doubles: the slot due at 10 ms (7 ms ahead of the change,
        // 70 % of a period) moves to 70 % of the new period after the change.
        let change = first + 3 * MS;
        plan.rebase(change, PERIOD, PERIOD / 2);
        let half = PERIOD / 2;
        assert_eq!(plan.next_due(), change + 3500 * MS / 1000);
        let mut at = plan.next_due();
        for _ in 0..4 {
            assert_eq!(wake_at_period(&mut plan, at, false, half).len(), 1);
            assert_eq!(plan.due(at), None);
            at += half;
        }
        assert_eq!(plan.next_due(), change + 3500 * MS / 1000 + 4 * half);
        // A change while the first publish delay runs keeps the delay.
        let mut fresh = connected_at(t0);
        fresh.rebase(t0 + 100 * MS, PERIOD, 3 * PERIOD);
        assert_eq!(fresh.next_due(), first);
    }

    #[test]
    fn a_plan_behind_a_rate_change_sends_the_old_slots_then_the_new_plan() {
        let t0 = Instant::now();
        let mut plan = connected_at(t0);
        let first = t0 + FIRST_PUBLISH_DELAY;
        assert_eq!(wake(&mut plan, first, false).len(), 1);
        // Blocked from 10 ms on; the rate halves at 25 ms (one message per 20 ms).
        assert!(wake(&mut plan, first + 25 * MS, true).is_empty());
        let change = first + 25 * MS;
        plan.rebase(change, PERIOD, 2 * PERIOD);
        // Unblocked at 31 ms: the old plan's 10 and 20 ms slots go (late, from their own due
        // times), then the slot that would have been at 30 ms (5 ms past the change, half a
        // period) sits half a new period past the change: 35 ms; then every 20 ms.
        let slow = 2 * PERIOD;
        let sent = wake_at_period(&mut plan, first + 31 * MS, false, slow);
        let dues: Vec<Instant> = sent.iter().map(|s| s.0).collect();
        assert_eq!(dues, vec![first + 10 * MS, first + 20 * MS]);
        assert_eq!(plan.next_due(), first + 35 * MS);
        let next = wake_at_period(&mut plan, first + 35 * MS, false, slow);
        assert_eq!(next, vec![(first + 35 * MS, Duration::ZERO, false)]);
        assert_eq!(plan.next_due(), first + 55 * MS);
        // A reconnect across a change counts old slots before it and new ones after it.
        let mut down = connected_at(t0);
        assert_eq!(wake(&mut down, first, false).len(), 1);
        assert!(wake(&mut down, first + 10 * MS, true).is_empty());
        down.rebase(first + 25 * MS, PERIOD, 2 * PERIOD);
        // Missed: 10, 20 (old plan), 35, 55 (new plan); back at 60 ms, next at 75 ms.
        assert_eq!(down.connected(first + 60 * MS, 2 * PERIOD), 4);
        assert_eq!(down.next_due(), first + 75 * MS);
    }
}
