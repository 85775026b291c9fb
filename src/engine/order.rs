//! The orders a controller (a Locust master) sends the worker threads, and how a total user
//! count is shared among them: user `i` lives on thread `i % threads`.

use std::time::{Duration, Instant};

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
    /// Every publisher publishes `per_user` messages per second from now on: each starts a
    /// new absolute plan at the instant the order is carried out (never a slide).
    SetRate {
        /// Messages per second per user.
        per_user: f64,
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

/// When user `user` starts after a controller raised the total from `previous` users at
/// `spawn_rate` per second, at `now`: new users start in global index order, and all at
/// once when the rate is not a positive number. Users already running are not restarted.
pub fn start_time(user: u64, previous: u64, spawn_rate: f64, now: Instant) -> Instant {
    if !(spawn_rate.is_finite() && spawn_rate > 0.0) {
        return now;
    }
    let delay = user.saturating_sub(previous) as f64 / spawn_rate;
    now + Duration::try_from_secs_f64(delay).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masters_ramp_starts_each_threads_users_in_global_order_at_the_rate() {
        let now = Instant::now();
        let secs = Duration::from_secs;
        // A master asks for 10 users at 2/s on 2 threads: thread 1 runs users 1, 3, 5, 7, 9.
        assert_eq!(share(10, 1, 2), 5);
        let thread1: Vec<Instant> = (0..5)
            .map(|slot| start_time(1 + 2 * slot, 0, 2.0, now))
            .collect();
        let expected: Vec<Instant> = [0.5, 1.5, 2.5, 3.5, 4.5]
            .iter()
            .map(|&s| now + Duration::from_secs_f64(s))
            .collect();
        assert_eq!(thread1, expected);
        // Then it raises the total from 10 to 14 at 4/s: user 10 at once, user 13 after 0.75 s.
        assert_eq!(start_time(10, 10, 4.0, now), now);
        assert_eq!(
            start_time(13, 10, 4.0, now),
            now + Duration::from_millis(750)
        );
        // A rate of zero (or none) starts everyone at once.
        assert_eq!(start_time(13, 10, 0.0, now + secs(1)), now + secs(1));
        assert_eq!(start_time(13, 10, f64::INFINITY, now), now);
        assert_eq!(start_time(13, 10, f64::NAN, now), now);
    }

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
