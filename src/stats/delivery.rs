//! Delivery counters (sent, expected, received, duplicates, ...) summed over threads, and the
//! end-of-run figures the reports print: lost is what was expected but never arrived.

use std::ops::AddAssign;

/// Plain counters a worker adds to and sends with each delta; the collector sums them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Messages publishers wrote (the sum of their last seq).
    pub sent: u64,
    /// Copies subscribers should get: each sent message once per subscriber whose filter
    /// matches its topic.
    pub expected: u64,
    /// Messages of this run that subscribers received, every copy counted.
    pub received: u64,
    /// Copies of a (publisher, seq) a subscriber had already received.
    pub duplicates: u64,
    /// First copies that arrived after a higher seq of the same publisher.
    pub reordered: u64,
    /// Copies older than the tracking window (late or duplicate, cannot tell): not delivered.
    pub stale: u64,
    /// Copies from publishers beyond the tracking limit: counted, not checked.
    pub untracked: u64,
    /// Well-formed messages of another run (another run id).
    pub foreign: u64,
    /// Payloads without a stamp mqload can read.
    pub unparseable: u64,
}

impl AddAssign for DeliveryCounts {
    fn add_assign(&mut self, o: DeliveryCounts) {
        self.sent += o.sent;
        self.expected += o.expected;
        self.received += o.received;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        self.stale += o.stale;
        self.untracked += o.untracked;
        self.foreign += o.foreign;
        self.unparseable += o.unparseable;
    }
}

impl DeliveryCounts {
    /// Copies delivered once each: received minus duplicates and stale copies.
    pub fn delivered(&self) -> u64 {
        self.received
            .saturating_sub(self.duplicates)
            .saturating_sub(self.stale)
    }

    /// Expected copies that never arrived (meaningful once the run has drained).
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.delivered())
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        *self == DeliveryCounts::default()
    }
}

/// The delivery line of the final report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryStats {
    /// Subscriber connections of the run.
    pub subscribers: u64,
    /// The summed counters.
    pub counts: DeliveryCounts,
    /// Expected copies that never arrived ([`DeliveryCounts::lost`]).
    pub lost: u64,
}

impl DeliveryStats {
    /// The figures for `subscribers` subscribers and the summed `counts`.
    pub fn new(subscribers: u64, counts: DeliveryCounts) -> DeliveryStats {
        DeliveryStats {
            subscribers,
            counts,
            lost: counts.lost(),
        }
    }

    /// "N of E expected messages never reached a subscriber", when any was lost.
    pub fn loss_sentence(&self) -> Option<String> {
        (self.lost > 0).then(|| {
            format!(
                "{} of {} expected messages never reached a subscriber",
                self.lost, self.counts.expected
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_is_expected_minus_first_copies() {
        let mut a = DeliveryCounts {
            sent: 10,
            expected: 20,
            received: 19,
            duplicates: 2,
            ..DeliveryCounts::default()
        };
        a += DeliveryCounts {
            stale: 1,
            ..DeliveryCounts::default()
        };
        assert_eq!(a.delivered(), 16);
        assert_eq!(a.lost(), 4);
        assert_eq!(DeliveryStats::new(2, a).lost, 4);
        let over = DeliveryCounts {
            expected: 1,
            received: 5,
            ..DeliveryCounts::default()
        };
        assert_eq!(over.lost(), 0, "more than expected never underflows");
    }
}
