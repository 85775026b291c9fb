//! `--connect-only` and `--connection-lifetime` churn: whether a client publishes, when a
//! connected client retires (clean DISCONNECT, then an immediate reconnect), and how the
//! reconnect picks its plan up again.

use std::time::Instant;

use crate::scale::ScalePlan;

/// Whether a client publishes what is due now: never in connect-only runs, and not once its
/// lifetime is over (it waits for its acks, then retires).
#[inline]
pub fn may_publish(scale: &ScalePlan, retire_at: Option<Instant>, now: Instant) -> bool {
    !scale.connect_only && retire_at.is_none_or(|t| now < t)
}

/// Whether a client's lifetime is over with nothing in flight: time to disconnect cleanly.
#[inline]
pub fn should_retire(retire_at: Option<Instant>, inflight: usize, now: Instant) -> bool {
    inflight == 0 && retire_at.is_some_and(|t| now >= t)
}

/// A CONNACK arrived at `now`: sets the retirement time; returns whether this connection
/// replaced one that retired (its publish plan goes on without a gap being counted as lost:
/// what fell due meanwhile goes out at once, its latency counted from when it was due).
pub fn on_connected(
    scale: &ScalePlan,
    retire_at: &mut Option<Instant>,
    churned: &mut bool,
    now: Instant,
) -> bool {
    *retire_at = scale.lifetime.map(|d| now + d);
    std::mem::take(churned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_client_publishes_until_its_lifetime_ends_then_retires_once_acked() {
        let t0 = Instant::now();
        let (mut retire_at, mut churned) = (None, false);
        let churn = ScalePlan {
            lifetime: Some(Duration::from_secs(2)),
            ..ScalePlan::default()
        };
        assert!(
            !on_connected(&churn, &mut retire_at, &mut churned, t0),
            "a first connection"
        );
        assert!(may_publish(&churn, retire_at, t0 + Duration::from_secs(1)));
        let end = t0 + Duration::from_secs(2);
        assert!(!may_publish(&churn, retire_at, end));
        assert!(!should_retire(retire_at, 3, end), "acks still awaited");
        assert!(should_retire(retire_at, 0, end));
        // It retired: the reconnect replaces it.
        churned = true;
        assert!(
            on_connected(&churn, &mut retire_at, &mut churned, end),
            "the reconnect of a churn"
        );
        assert!(
            !on_connected(&churn, &mut retire_at, &mut churned, end),
            "counted once"
        );

        let hold = ScalePlan {
            connect_only: true,
            ..ScalePlan::default()
        };
        on_connected(&hold, &mut retire_at, &mut churned, t0);
        assert!(!may_publish(&hold, retire_at, t0));
        assert!(!should_retire(retire_at, 0, t0 + Duration::from_secs(3600)));
    }
}
