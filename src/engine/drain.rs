//! Drain on stop, on virtual time: a stopping publisher publishes nothing more and waits for
//! the acks of what it sent, until its deadline (the run's `--stop-timeout`, or a controller's
//! removal); then it disconnects, and what is still unacked counts as failed.

use std::time::Instant;

/// Whether a draining publisher may disconnect at `now`: every ack is in, or its deadline
/// (if any) has passed.
#[inline]
pub fn publisher_done(inflight: usize, deadline: Option<Instant>, now: Instant) -> bool {
    inflight == 0 || deadline.is_some_and(|d| now >= d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_draining_publisher_waits_for_its_acks_until_the_deadline() {
        let stop = Instant::now();
        let deadline = Some(stop + Duration::from_secs(5));
        // Three acks outstanding: it waits, right up to the deadline.
        assert!(!publisher_done(3, deadline, stop));
        assert!(!publisher_done(
            1,
            deadline,
            stop + Duration::from_millis(4999)
        ));
        // The last ack arrives: it leaves at once, well before the deadline.
        assert!(publisher_done(
            0,
            deadline,
            stop + Duration::from_millis(20)
        ));
        // The deadline passes with acks outstanding: it leaves (they count as failed).
        assert!(publisher_done(2, deadline, stop + Duration::from_secs(5)));
        // Without a deadline only the acks end it.
        assert!(!publisher_done(1, None, stop + Duration::from_secs(3600)));
    }
}
