//! One simulated device: its connection phase, its publish plan, and its reconnect backoff.

use std::time::{Duration, Instant};

use super::schedule::PublishSchedule;
use crate::delivery::SubscriberTracker;
use crate::net::Transport;
use crate::session::{Session, Unacked};

/// Where a device is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started yet (spawn schedule) or waiting out a reconnect backoff.
    Idle,
    /// TCP, TLS and CONNECT under way.
    Connecting,
    /// CONNACK accepted; publishing.
    Connected,
    /// Stopping: waiting for outstanding acks before DISCONNECT.
    Draining,
    /// Finished for good.
    Closed,
}

/// A device and its connection.
#[derive(Debug)]
pub struct Conn {
    /// Global user index (`{i}`).
    pub user: u64,
    /// MQTT client id.
    pub client_id: String,
    /// Topic its messages go to.
    pub topic: String,
    /// Life phase.
    pub phase: Phase,
    /// Socket (with TLS) while connecting or connected.
    pub transport: Option<Transport>,
    /// MQTT state while connecting or connected.
    pub session: Option<Session>,
    /// When the current connection attempt started.
    pub attempt_started: Instant,
    /// When the next Idle phase ends (spawn time or end of backoff).
    pub idle_until: Instant,
    /// The absolute publish plan: when the next message is due, and what was held back.
    pub schedule: PublishSchedule,
    /// Messages built for this client so far (`info.seq`).
    pub seq: u64,
    /// The socket reported readable and has not been drained to `WouldBlock` since.
    pub readable: bool,
    /// CONNACK was accepted at least once (so a reconnect has missed messages to count).
    pub ever_connected: bool,
    /// Packet id the next session starts from (carried across reconnects).
    pub next_packet_id: u16,
    /// Publishes a dropped connection left unacknowledged, for the next one (clean session off).
    pub carried: Option<Unacked>,
    /// Failed connection attempts in a row (for the backoff).
    pub failures_in_row: u32,
    /// Tick of the wheel entry that is current for this device.
    pub scheduled_tick: Option<u64>,
    /// `--connection-lifetime`: when this connection retires.
    pub retire_at: Option<Instant>,
    /// The connection under way replaces one that retired (churn), not one that failed.
    pub churned: bool,
    /// Its turn to connect came after waiting at the gate (`--max-connecting`).
    pub admitted: bool,
    /// When a controller removed this user: how long it may wait for its acks.
    pub drain_until: Option<Instant>,
    /// Subscriber copies each message of this publisher should reach (subscribers whose
    /// filter matches its topic).
    pub expected_copies: u64,
    /// Set for a subscriber (`--subscribers`): it subscribes, checks, never publishes.
    pub subscriber: Option<Box<SubscriberState>>,
}

/// What a subscriber keeps across its reconnects.
#[derive(Debug)]
pub struct SubscriberState {
    /// Per-publisher sequence windows.
    pub tracker: SubscriberTracker,
    /// A SUBACK granted the current connection's subscription.
    pub subscribed: bool,
    /// A SUBACK (granted or refused) arrived at least once.
    pub ever_answered: bool,
    /// When the run stopped and every publisher had closed, as this subscriber first saw it.
    pub quiet_since: Option<Instant>,
}

impl Conn {
    /// A device that first connects at `start`.
    pub fn new(user: u64, client_id: String, topic: String, start: Instant) -> Conn {
        Conn {
            user,
            client_id,
            topic,
            phase: Phase::Idle,
            transport: None,
            session: None,
            attempt_started: start,
            idle_until: start,
            schedule: PublishSchedule::new(start),
            seq: 0,
            readable: false,
            ever_connected: false,
            next_packet_id: 1,
            carried: None,
            failures_in_row: 0,
            scheduled_tick: None,
            expected_copies: 0,
            subscriber: None,
            retire_at: None,
            churned: false,
            admitted: false,
            drain_until: None,
        }
    }
}

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
