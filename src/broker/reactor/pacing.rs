//! Connections held by a throttle (`--max-msg-rate`, `--max-connect-rate`): which queue,
//! taking them up in order as turns come, and how long the loop may sleep meanwhile.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{TICK, Worker};
use crate::broker::throttle::Throttle;

/// Which throttle holds a connection: a PUBLISH waits for the publish rate, a CONNECT for the
/// connect rate. Each has its own queue, in the order its connections were held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pace {
    Publish,
    Connect,
}

impl Worker {
    pub(super) fn queue(&mut self, pace: Pace) -> &mut VecDeque<(usize, u64)> {
        match pace {
            Pace::Publish => &mut self.held,
            Pace::Connect => &mut self.held_connects,
        }
    }

    pub(super) fn throttle(&self, pace: Pace) -> Option<&Arc<Throttle>> {
        match pace {
            Pace::Publish => self.ctx.throttle.as_ref(),
            Pace::Connect => self.ctx.connect_throttle.as_ref(),
        }
    }

    /// Takes up connections held for `pace` in order while its throttle gives turns.
    pub(super) fn release_held(&mut self, now: Instant, pace: Pace) {
        let Some(throttle) = self.throttle(pace) else {
            return;
        };
        if throttle.wait(now) > Duration::ZERO {
            return;
        }
        let queued = self.queue(pace).len();
        for _ in 0..queued {
            let Some((slot, generation)) = self.queue(pace).pop_front() else {
                break;
            };
            let Some(Some(conn)) = self.conns.get_mut(slot) else {
                continue;
            };
            if conn.generation != generation {
                continue;
            }
            conn.held = false;
            conn.last_heard = now;
            self.read(slot, now);
            // Out of turns: it went back at the end of this queue; it goes first again and the
            // rest keep their places. (A CONNECT let through may be held at a PUBLISH that
            // followed it: that is the other queue, and this one goes on.)
            if self.queue(pace).back() == Some(&(slot, generation)) {
                if let Some(again) = self.queue(pace).pop_back() {
                    self.queue(pace).push_front(again);
                }
                break;
            }
        }
    }

    /// How long to sleep: until a throttle's next turn when a connection waits for it.
    pub(super) fn sleep(&self) -> Duration {
        let wait = |queue: &VecDeque<(usize, u64)>, throttle: Option<&Arc<Throttle>>| match throttle
        {
            Some(throttle) if !queue.is_empty() => throttle.wait(self.ctx.now),
            _ => TICK,
        };
        let publish = wait(&self.held, self.ctx.throttle.as_ref());
        let connect = wait(&self.held_connects, self.ctx.connect_throttle.as_ref());
        publish.min(connect).min(TICK)
    }
}
