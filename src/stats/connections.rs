//! Connection life counts (connects, reconnects, failed attempts, drops, DUP re-sends), kept
//! apart from the per-request rows so the final report can say in one line how the links held.

use std::fmt;

/// Counts over a run or an interval; workers record, the collector adds them up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// CONNACKs accepted, first connects and reconnects alike.
    pub connects: u64,
    /// Of those, connects of a device that had been connected before (after a drop).
    pub reconnects: u64,
    /// Connection attempts that failed (TCP, TLS, CONNACK refused, connect timeout).
    pub failed_attempts: u64,
    /// Established connections lost; their causes are in the error report's `disconnect` rows.
    pub drops: u64,
    /// Unacknowledged publishes re-sent with DUP after a reconnect (clean session off).
    pub resent: u64,
}

impl ConnectionCounts {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &ConnectionCounts) {
        self.connects += other.connects;
        self.reconnects += other.reconnects;
        self.failed_attempts += other.failed_attempts;
        self.drops += other.drops;
        self.resent += other.resent;
    }

    /// Nothing was counted.
    pub fn is_empty(&self) -> bool {
        *self == ConnectionCounts::default()
    }
}

/// The final report's line: `Connections: 12 connects (2 reconnects), 3 failed attempts, ...`.
impl fmt::Display for ConnectionCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Connections: {} connects ({} reconnects), {} failed attempts, {} dropped",
            self.connects, self.reconnects, self.failed_attempts, self.drops
        )?;
        if self.drops > 0 {
            f.write_str(" (causes: disconnect rows of the error report)")?;
        }
        if self.resent > 0 {
            write!(f, ", {} publishes re-sent with DUP", self.resent)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_read_as_one_line() {
        let mut total = ConnectionCounts::default();
        assert!(total.is_empty());
        let one = ConnectionCounts {
            connects: 3,
            reconnects: 1,
            failed_attempts: 2,
            drops: 1,
            resent: 4,
        };
        total.add(&one);
        total.add(&one);
        assert_eq!(total.connects, 6);
        assert_eq!(
            total.to_string(),
            "Connections: 6 connects (2 reconnects), 4 failed attempts, 2 dropped (causes: \
             disconnect rows of the error report), 8 publishes re-sent with DUP"
        );
        let quiet = ConnectionCounts {
            connects: 1,
            ..ConnectionCounts::default()
        };
        assert_eq!(
            quiet.to_string(),
            "Connections: 1 connects (0 reconnects), 0 failed attempts, 0 dropped"
        );
    }
}
