//! `--max-connecting`: a bound on connection attempts in progress per worker, so a connect
//! storm larger than the broker can take queues inside mqload (each attempt then gets its
//! whole `--connect-timeout`) instead of overflowing the broker's listen backlog, where
//! dropped SYNs come back only after the kernel's 1, 3, 7, 15 s retransmit backoff.

use std::collections::VecDeque;

/// Connection attempts in progress on one worker, and the devices waiting for a turn.
#[derive(Debug)]
pub struct ConnectGate {
    /// Most attempts in progress at once (`usize::MAX`: no bound).
    limit: usize,
    /// Attempts in progress.
    connecting: usize,
    /// Slots of devices due to connect, oldest first.
    waiting: VecDeque<usize>,
    /// Devices that ever had to wait, for the report.
    pub waited: u64,
}

impl ConnectGate {
    /// A gate letting `limit` attempts through at once (0: unbounded).
    pub fn new(limit: usize) -> ConnectGate {
        ConnectGate {
            limit: if limit == 0 { usize::MAX } else { limit },
            connecting: 0,
            waiting: VecDeque::new(),
            waited: 0,
        }
    }

    /// Whether an attempt may start now (devices that queued earlier go first).
    pub fn may_start(&self) -> bool {
        self.connecting < self.limit && self.waiting.is_empty()
    }

    /// An attempt started.
    pub fn started(&mut self) {
        self.connecting += 1;
    }

    /// An attempt ended (connected, failed or abandoned).
    pub fn ended(&mut self) {
        self.connecting = self.connecting.saturating_sub(1);
    }

    /// Device `slot` is due but must wait for a turn.
    pub fn wait(&mut self, slot: usize) {
        self.waiting.push_back(slot);
        self.waited += 1;
    }

    /// The next waiting device whose turn has come, if any; it is expected to start at once.
    pub fn admit(&mut self) -> Option<usize> {
        if self.connecting < self.limit {
            self.waiting.pop_front()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_queue_in_order_and_enter_as_attempts_end() {
        let mut gate = ConnectGate::new(2);
        assert!(gate.may_start());
        gate.started();
        gate.started();
        assert!(!gate.may_start());
        gate.wait(7);
        gate.wait(3);
        assert_eq!(gate.admit(), None, "no attempt ended yet");
        gate.ended();
        assert!(!gate.may_start(), "the queue goes first");
        assert_eq!(gate.admit(), Some(7));
        gate.started();
        assert_eq!(gate.admit(), None);
        gate.ended();
        assert_eq!(gate.admit(), Some(3));
        gate.started();
        assert_eq!(gate.waited, 2);
        let unbounded = ConnectGate::new(0);
        assert!(unbounded.may_start());
    }
}
