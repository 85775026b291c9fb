//! Connection counts beside the `connect` row: TLS handshakes by kind (full ones with
//! certificates and signatures, resumed ones with a session ticket), so a reconnect storm's
//! report shows whether resumption spared the broker; and the attempts that queued in mqload
//! for a turn (`--max-connecting`), whose wait the connect times do not include.

/// Completed TLS handshakes by kind, and connect attempts that waited for a turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectCounts {
    /// Full handshakes (including those after a HelloRetryRequest).
    pub full: u64,
    /// Handshakes that resumed an earlier session.
    pub resumed: u64,
    /// Connect attempts that waited in mqload for a turn (`--max-connecting`).
    pub queued: u64,
    /// Longest such wait, microseconds.
    pub queued_max_us: u64,
}

impl ConnectCounts {
    /// Counts one completed handshake.
    #[inline]
    pub fn record(&mut self, resumed: bool) {
        if resumed {
            self.resumed += 1;
        } else {
            self.full += 1;
        }
    }

    /// Counts one attempt that waited `wait_us` for its turn.
    pub fn record_queued(&mut self, wait_us: u64) {
        self.queued += 1;
        self.queued_max_us = self.queued_max_us.max(wait_us);
    }

    /// Adds another count to this one.
    pub fn add(&mut self, other: ConnectCounts) {
        self.full += other.full;
        self.resumed += other.resumed;
        self.queued += other.queued;
        self.queued_max_us = self.queued_max_us.max(other.queued_max_us);
    }

    /// All handshakes counted.
    pub fn total(&self) -> u64 {
        self.full + self.resumed
    }

    /// The report's lines: handshakes (when TLS completed any) and the connect queue (when
    /// any attempt waited); `None` when there is nothing to say.
    pub fn report_line(&self) -> Option<String> {
        let mut out = String::new();
        if self.total() > 0 {
            out.push_str(&format!(
                "TLS handshakes: {} full, {} resumed ({:.1} % resumed)\n",
                self.full,
                self.resumed,
                self.resumed as f64 * 100.0 / self.total() as f64
            ));
        }
        if self.queued > 0 {
            out.push_str(&format!(
                "Connect queue: {} attempts waited for a turn (--max-connecting), up to {:.2} s; connect times start after the wait\n",
                self.queued,
                self.queued_max_us as f64 / 1e6
            ));
        }
        (!out.is_empty()).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_and_report() {
        let mut a = ConnectCounts::default();
        assert_eq!(a.report_line(), None);
        a.record(false);
        a.record(true);
        let mut b = ConnectCounts::default();
        b.record(true);
        b.record(true);
        a.add(b);
        assert_eq!((a.full, a.resumed, a.total()), (1, 3, 4));
        assert_eq!(
            a.report_line().as_deref(),
            Some("TLS handshakes: 1 full, 3 resumed (75.0 % resumed)\n")
        );
        let mut q = ConnectCounts::default();
        q.record_queued(2_500_000);
        q.record_queued(1_000);
        a.add(q);
        assert_eq!((a.queued, a.queued_max_us), (2, 2_500_000));
        assert!(
            a.report_line()
                .is_some_and(|l| l.ends_with("Connect queue: 2 attempts waited for a turn (--max-connecting), up to 2.50 s; connect times start after the wait\n")),
            "{:?}",
            a.report_line()
        );
    }
}
