//! Reconnect backoff: exponential, capped, with jitter so a fleet does not retry in step.

use std::time::Duration;

/// Exponential backoff with jitter: 100 ms doubling to 10 s, times a factor in [0.5, 1.5).
pub fn backoff(failures_in_row: u32, jitter: f64) -> Duration {
    let base = Duration::from_millis(100)
        .saturating_mul(1u32 << failures_in_row.min(7))
        .min(Duration::from_secs(10));
    base.mul_f64(0.5 + jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0, 0.5), Duration::from_millis(100));
        assert_eq!(backoff(3, 0.5), Duration::from_millis(800));
        assert_eq!(backoff(30, 0.5), Duration::from_secs(10));
        assert_eq!(backoff(0, 0.0), Duration::from_millis(50));
        assert!(backoff(0, 0.999) < Duration::from_millis(150));
    }

    #[test]
    fn backoff_with_random_jitter_stays_inside_half_to_one_and_a_half_of_its_base() {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        let mut rng = SmallRng::seed_from_u64(7);
        for failures in 0..12u32 {
            let base = backoff(failures, 0.5);
            let (mut shortest, mut longest) = (Duration::MAX, Duration::ZERO);
            for _ in 0..2000 {
                let wait = backoff(failures, rng.random::<f64>());
                assert!(
                    wait >= base / 2 && wait < base * 3 / 2,
                    "{failures}: {wait:?}"
                );
                shortest = shortest.min(wait);
                longest = longest.max(wait);
            }
            // The jitter spreads retries over most of the range, so clients do not retry in step.
            assert!(
                shortest < base * 6 / 10 && longest > base * 14 / 10,
                "{failures}"
            );
        }
        // Out-of-range jitter is clamped, never outside the bounds.
        assert_eq!(backoff(2, -1.0), Duration::from_millis(200));
        assert_eq!(backoff(2, 7.0), Duration::from_millis(600));
    }
}
