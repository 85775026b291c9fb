//! The orders a controller (a Locust master) sends the worker threads, and how a total user
//! count is shared among them: user `i` lives on thread `i % threads`.

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
