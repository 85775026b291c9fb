//! Bounds how often an event loop wakes, so a busy loop batches its work.

use std::time::{Duration, Instant};

/// Limits a loop to one wakeup per `interval` on average, with a burst of a few allowed
/// (a generic cell rate algorithm): a quiet loop wakes at once, a busy one sleeps to batch.
#[derive(Debug)]
pub struct WakePacer {
    interval: Duration,
    burst: Duration,
    /// Longest single pause, so a stop request is still seen promptly.
    max_pause: Duration,
    /// Theoretical time of the next wakeup at exactly the allowed rate.
    next: Option<Instant>,
}

impl WakePacer {
    /// At most one wakeup per `interval` on average (none paused when zero); no pause longer
    /// than `max_pause`.
    pub fn new(interval: Duration, max_pause: Duration) -> WakePacer {
        WakePacer {
            interval,
            burst: interval * 4,
            max_pause,
            next: None,
        }
    }

    /// How long to sleep before polling again, if at all.
    pub fn pause(&self, now: Instant) -> Option<Duration> {
        let allowed = self.next?.checked_sub(self.burst)?;
        (allowed > now).then(|| (allowed - now).min(self.max_pause))
    }

    /// The loop woke at `now`.
    pub fn woke(&mut self, now: Instant) {
        if !self.interval.is_zero() {
            self.next = Some(self.next.map_or(now, |next| next.max(now)) + self.interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_loop_never_waits_and_a_busy_one_is_held_to_the_rate() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let mut pacer = WakePacer::new(ms(1), ms(50));
        // Wakes 10 ms apart: never paused.
        for k in 0..10 {
            let at = t0 + ms(10 * k);
            assert_eq!(pacer.pause(at), None);
            pacer.woke(at);
        }
        // Back-to-back wakes: a burst of a few passes, then each waits for its 1 ms slot.
        let busy = t0 + ms(200);
        let mut paused = Vec::new();
        let mut now = busy;
        for _ in 0..10 {
            if let Some(p) = pacer.pause(now) {
                paused.push(p);
                now += p;
            }
            pacer.woke(now);
        }
        assert_eq!(paused.len(), 5, "{paused:?}");
        assert!(
            now >= busy + ms(5) && now <= busy + ms(6),
            "{:?}",
            now - busy
        );
        // Disabled: never pauses.
        let mut off = WakePacer::new(Duration::ZERO, ms(50));
        off.woke(t0);
        assert_eq!(off.pause(t0), None);
    }
}
