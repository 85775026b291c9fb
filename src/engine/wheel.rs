//! A hashed timer wheel: O(1) insert, firing in tick order, far deadlines lap. The tick's
//! length is the caller's (the worker uses 250 µs).

/// Slots in the wheel; deadlines further than this many ticks ahead wait extra laps.
const SLOTS: usize = 4096;

/// Timers for connection indices, keyed by absolute tick (milliseconds since the run's epoch).
#[derive(Debug)]
pub struct TimerWheel {
    slots: Vec<Vec<(u64, u32)>>,
    /// The last tick already fired.
    current: u64,
    len: usize,
}

impl TimerWheel {
    /// An empty wheel whose time starts at tick 0.
    pub fn new() -> Self {
        TimerWheel {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            current: 0,
            len: 0,
        }
    }

    /// Timers waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No timers waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fires `key` at `tick`; a tick already past fires at the next advance. Returns the tick
    /// the entry will fire with.
    pub fn schedule(&mut self, tick: u64, key: u32) -> u64 {
        let tick = tick.max(self.current + 1);
        self.slots[(tick % SLOTS as u64) as usize].push((tick, key));
        self.len += 1;
        tick
    }

    /// Moves time to `now` and appends every (tick, key) due by then to `fired`, earliest first.
    pub fn advance(&mut self, now: u64, fired: &mut Vec<(u64, u32)>) {
        if now <= self.current {
            return;
        }
        let steps = (now - self.current).min(SLOTS as u64);
        let start = fired.len();
        for step in 1..=steps {
            let slot = &mut self.slots[((self.current + step) % SLOTS as u64) as usize];
            let mut i = 0;
            while i < slot.len() {
                if slot[i].0 <= now {
                    fired.push(slot.swap_remove(i));
                } else {
                    i += 1;
                }
            }
        }
        self.len -= fired.len() - start;
        if steps == SLOTS as u64 {
            // A long jump visited every slot once; order what fired.
            fired[start..].sort_unstable();
        }
        self.current = now;
    }

    /// The earliest tick with a timer, looking at most one lap ahead; `None` when empty.
    pub fn next_tick(&self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let mut earliest = u64::MAX;
        for step in 1..=SLOTS as u64 {
            let tick = self.current + step;
            for &(at, _) in &self.slots[(tick % SLOTS as u64) as usize] {
                earliest = earliest.min(at);
            }
            if earliest <= tick {
                return Some(earliest);
            }
        }
        Some(earliest)
    }
}

impl Default for TimerWheel {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_order_at_their_tick() {
        let mut wheel = TimerWheel::new();
        wheel.schedule(5, 1);
        wheel.schedule(3, 2);
        wheel.schedule(5, 3);
        let mut fired = Vec::new();
        wheel.advance(2, &mut fired);
        assert!(fired.is_empty());
        assert_eq!(wheel.next_tick(), Some(3));
        wheel.advance(4, &mut fired);
        assert_eq!(fired, vec![(3, 2)]);
        fired.clear();
        wheel.advance(5, &mut fired);
        fired.sort_unstable();
        assert_eq!(fired, vec![(5, 1), (5, 3)]);
        assert!(wheel.is_empty());
        assert_eq!(wheel.next_tick(), None);
    }

    #[test]
    fn far_deadlines_wait_their_lap() {
        let mut wheel = TimerWheel::new();
        wheel.schedule(10 + SLOTS as u64, 7);
        let mut fired = Vec::new();
        wheel.advance(20, &mut fired);
        assert!(fired.is_empty());
        assert_eq!(wheel.next_tick(), Some(10 + SLOTS as u64));
        wheel.advance(9 + SLOTS as u64, &mut fired);
        assert!(fired.is_empty());
        wheel.advance(10 + SLOTS as u64, &mut fired);
        assert_eq!(fired, vec![(10 + SLOTS as u64, 7)]);
    }

    #[test]
    fn past_ticks_fire_next_advance_and_long_jumps_fire_all() {
        let mut wheel = TimerWheel::new();
        wheel.advance(100, &mut Vec::new());
        assert_eq!(wheel.schedule(50, 1), 101);
        for k in 0..10_000u64 {
            wheel.schedule(200 + k * 3, k as u32 + 2);
        }
        let mut fired = Vec::new();
        wheel.advance(101, &mut fired);
        assert_eq!(fired, vec![(101, 1)]);
        fired.clear();
        wheel.advance(1_000_000, &mut fired);
        assert_eq!(fired.len(), 10_000);
        assert!(fired.windows(2).all(|w| w[0] <= w[1]));
        assert!(wheel.is_empty());
    }
}
