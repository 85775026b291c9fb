//! `--max-msg-rate` and `--max-connect-rate`: one pace for the whole broker, shared by its
//! threads (one `Throttle` per limit). A generic cell
//! rate algorithm (a token bucket kept as one "theoretical arrival time"), so publishes are
//! let through evenly within each second, with a burst of at most [`BURST`] of the rate.
//!
//! Sans IO: the caller passes the time of its wakeup; the state is one atomic, so taking a
//! turn is one compare-and-swap and never a lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Picoseconds per second: the unit of the schedule (exact enough for any rate up to
/// millions a second, and 213 days of run time in a `u64`).
const PS_PER_SECOND: u64 = 1_000_000_000_000;
/// How far ahead of the even schedule a turn may be taken: the largest burst is this much of
/// a second's rate (10 ms worth), so the pace is smooth within the second.
pub const BURST: Duration = Duration::from_millis(10);

/// A broker-wide rate limit (of publishes, or of connects).
#[derive(Debug)]
pub struct Throttle {
    start: Instant,
    /// Picoseconds between two turns at the rate.
    interval_ps: u64,
    /// How far ahead of now the next turn may be, in picoseconds.
    tolerance_ps: u64,
    /// When the next turn is due on the even schedule, in picoseconds from `start`.
    next_due_ps: AtomicU64,
}

impl Throttle {
    /// A limit of `per_second` turns a second (at least 1), starting at `start`.
    pub fn new(per_second: u64, start: Instant) -> Throttle {
        let interval_ps = PS_PER_SECOND / per_second.max(1);
        Throttle {
            start,
            interval_ps: interval_ps.max(1),
            tolerance_ps: duration_ps(BURST),
            next_due_ps: AtomicU64::new(0),
        }
    }

    /// Takes one turn at `now` (the caller's wakeup time); `false` when the rate is used up
    /// and the packet must wait (see [`Throttle::wait`]).
    pub fn try_take(&self, now: Instant) -> bool {
        let at = duration_ps(now.saturating_duration_since(self.start));
        let mut due = self.next_due_ps.load(Ordering::Relaxed);
        loop {
            // An idle spell does not bank turns: the schedule restarts from now.
            let from = due.max(at);
            if from - at > self.tolerance_ps {
                return false;
            }
            match self.next_due_ps.compare_exchange_weak(
                due,
                from + self.interval_ps,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => due = seen,
            }
        }
    }

    /// How long after `now` the next turn can be taken (zero when one can be now).
    pub fn wait(&self, now: Instant) -> Duration {
        let at = duration_ps(now.saturating_duration_since(self.start));
        let due = self.next_due_ps.load(Ordering::Relaxed);
        let ready_at = due.saturating_sub(self.tolerance_ps);
        Duration::from_nanos(ready_at.saturating_sub(at).div_ceil(1000))
    }
}

fn duration_ps(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().saturating_mul(1000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes turns greedily every `step` for `span`; returns the count.
    fn greedy(throttle: &Throttle, start: Instant, step: Duration, span: Duration) -> u64 {
        let mut taken = 0;
        let mut t = start;
        while t < start + span {
            while throttle.try_take(t) {
                taken += 1;
            }
            t += step;
        }
        taken
    }

    #[test]
    fn a_greedy_taker_gets_the_rate_plus_one_burst_at_most() {
        let start = Instant::now();
        for rate in [1_u64, 250, 30_000, 1_000_000] {
            let throttle = Throttle::new(rate, start);
            let taken = greedy(
                &throttle,
                start,
                Duration::from_micros(700),
                Duration::from_secs(3),
            );
            let burst = rate / 100 + 1;
            assert!(
                (3 * rate..=3 * rate + burst).contains(&taken),
                "rate {rate}: {taken} in 3 s"
            );
        }
    }

    #[test]
    fn turns_are_even_within_a_second_not_bunched() {
        let start = Instant::now();
        let throttle = Throttle::new(10_000, start);
        let step = Duration::from_millis(1);
        // After the first burst, every 100 ms holds 1,000 turns within 1 %.
        greedy(&throttle, start, step, Duration::from_millis(20));
        let mut t = start + Duration::from_millis(20);
        for _ in 0..10 {
            let slice = greedy(&throttle, t, step, Duration::from_millis(100));
            assert!((990..=1010).contains(&slice), "{slice} in 100 ms");
            t += Duration::from_millis(100);
        }
    }

    #[test]
    fn an_idle_spell_banks_no_turns_and_wait_says_when() {
        let start = Instant::now();
        let throttle = Throttle::new(100, start);
        let later = start + Duration::from_secs(60);
        let burst = greedy(
            &throttle,
            later,
            Duration::from_micros(1),
            Duration::from_micros(2),
        );
        assert_eq!(
            burst, 2,
            "10 ms of a 100/s rate is one turn ahead, plus now's"
        );
        let wait = throttle.wait(later);
        assert!(
            wait > Duration::from_millis(9) && wait <= Duration::from_millis(10),
            "{wait:?}"
        );
        assert!(!throttle.try_take(later + wait - Duration::from_micros(10)));
        assert!(throttle.try_take(later + wait));
        assert_eq!(
            throttle.wait(later + Duration::from_secs(1)),
            Duration::ZERO
        );
    }
}
