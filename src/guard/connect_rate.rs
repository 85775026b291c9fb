//! AWS IoT Core's connect quotas against a run's spawn rate and churn: 500 CONNECT/s per
//! account (adjustable) and 1 CONNECT/s per client id. AWS throttles connects past them, so a
//! run that passes them measures AWS's throttle, not the broker.

use std::fmt;
use std::time::Duration;

use crate::stages::Profile;

/// AWS IoT Core's default CONNECT requests per second per account (an adjustable quota).
pub const AWS_MAX_CONNECTS_PER_ACCOUNT: f64 = 500.0;
/// AWS IoT Core's CONNECT requests per second per client id (not adjustable).
pub const AWS_MAX_CONNECTS_PER_CLIENT_ID: f64 = 1.0;

/// How a run opens connections, as the connect quotas need it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectShape {
    /// Publishing users, started at `spawn_rate` per second.
    pub users: u64,
    /// Users started per second.
    pub spawn_rate: f64,
    /// Subscribers, all started in the first second.
    pub subscribers: u64,
    /// `--connection-lifetime`: each client reconnects this long after its CONNACK.
    pub lifetime: Option<Duration>,
}

/// Users started per second at the steepest: `--spawn-rate`, or with `--stages` the most
/// users the profile adds within one second (`--spawn-rate` is then only its ramp's pace).
pub fn peak_spawn_rate(spawn_rate: f64, stages: Option<&Profile>) -> f64 {
    stages.map_or(spawn_rate, Profile::peak_users_per_sec)
}

impl ConnectShape {
    /// The most CONNECTs in one second, connect times taken as zero (so it errs high): new
    /// users at the spawn rate, plus, with churn, the users started `k * lifetime` earlier
    /// that reconnect now. Near the ramp's end (`R = users / spawn_rate`) that is
    /// `spawn_rate * (1 + floor(R / lifetime))`, which is at least the steady churn of
    /// `users / lifetime`. Subscribers all connect in the first second.
    pub fn peak_connects_per_sec(&self) -> f64 {
        let spawning = self.spawn_rate.min(self.users as f64);
        let waves = match self.lifetime {
            Some(lifetime) if !lifetime.is_zero() && self.spawn_rate > 0.0 => {
                let ramp_secs = self.users as f64 / self.spawn_rate;
                1.0 + (ramp_secs / lifetime.as_secs_f64()).floor()
            }
            _ => 1.0,
        };
        let churned = spawning * waves;
        let first_second = spawning + self.subscribers as f64;
        churned.max(first_second)
    }

    /// CONNECTs per second of one client id: one per lifetime with churn (at most one per
    /// second otherwise, which the quota allows).
    pub fn connects_per_client_id(&self) -> f64 {
        match self.lifetime {
            Some(lifetime) if !lifetime.is_zero() => 1.0 / lifetime.as_secs_f64(),
            _ => 0.0,
        }
    }

    /// Every connect quota the run would pass.
    pub fn breaches(&self) -> Vec<ConnectBreach> {
        let mut breaches = Vec::new();
        let peak = self.peak_connects_per_sec();
        if peak > AWS_MAX_CONNECTS_PER_ACCOUNT {
            breaches.push(ConnectBreach::AccountRate(peak));
        }
        let per_id = self.connects_per_client_id();
        if per_id > AWS_MAX_CONNECTS_PER_CLIENT_ID {
            breaches.push(ConnectBreach::ClientIdRate(per_id));
        }
        breaches
    }
}

/// A connect quota the run would pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConnectBreach {
    /// More CONNECTs per second over the account than AWS's default quota.
    AccountRate(f64),
    /// One client id reconnecting more often than once a second.
    ClientIdRate(f64),
}

impl fmt::Display for ConnectBreach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectBreach::AccountRate(rate) => write!(
                f,
                "up to {} CONNECTs/s (spawn rate plus churn and subscribers) is over AWS IoT's {AWS_MAX_CONNECTS_PER_ACCOUNT} per account (adjustable in Service Quotas): the excess is throttled; lower --spawn-rate (or lengthen a --stages ramp), lengthen --connection-lifetime, or raise the quota first",
                rate_text(*rate)
            ),
            ConnectBreach::ClientIdRate(rate) => write!(
                f,
                "each client id reconnects {} times/s (--connection-lifetime) but AWS IoT takes 1 CONNECT/s per client id: give --connection-lifetime 1s or more",
                rate_text(*rate)
            ),
        }
    }
}

/// `523`, `1.5`.
fn rate_text(rate: f64) -> String {
    if rate >= 100.0 || rate.fract() == 0.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(users: u64, spawn_rate: f64, lifetime_ms: Option<u64>) -> ConnectShape {
        ConnectShape {
            users,
            spawn_rate,
            subscribers: 0,
            lifetime: lifetime_ms.map(Duration::from_millis),
        }
    }

    #[test]
    fn the_spawn_rate_alone_is_the_peak_without_churn() {
        assert_eq!(shape(10_000, 100.0, None).peak_connects_per_sec(), 100.0);
        // 10 users at 1000/s: 10 connects in the first 10 ms, 10 in that second.
        assert_eq!(shape(10, 1000.0, None).peak_connects_per_sec(), 10.0);
        assert_eq!(shape(10_000, 500.0, None).breaches(), []);
        assert_eq!(
            shape(10_000, 501.0, None).breaches(),
            [ConnectBreach::AccountRate(501.0)]
        );
    }

    #[test]
    fn churn_adds_the_reconnects_of_users_started_before() {
        // 10,000 users at 200/s ramp for 50 s; a 20 s lifetime: near the end of the ramp the
        // users started 20 s and 40 s earlier reconnect while new ones start.
        let churn = shape(10_000, 200.0, Some(20_000));
        assert_eq!(churn.peak_connects_per_sec(), 600.0);
        assert_eq!(churn.breaches(), [ConnectBreach::AccountRate(600.0)]);
        // Steady churn of 10,000 users every 10 s is 1,000/s, whatever the ramp.
        let steady = shape(10_000, 10_000.0, Some(10_000));
        assert_eq!(steady.peak_connects_per_sec(), 10_000.0);
        let slow = shape(10_000, 100.0, Some(10_000));
        assert!(slow.peak_connects_per_sec() >= 10_000.0 / 10.0);
        // A ramp shorter than the lifetime: reconnects repeat the ramp's own pace.
        assert_eq!(
            shape(1_000, 100.0, Some(60_000)).peak_connects_per_sec(),
            100.0
        );
    }

    #[test]
    fn a_lifetime_under_a_second_passes_the_per_client_id_quota() {
        assert_eq!(shape(10, 1.0, Some(1_000)).breaches(), []);
        let fast = shape(10, 1.0, Some(250));
        assert_eq!(fast.breaches(), [ConnectBreach::ClientIdRate(4.0)]);
        let text = fast.breaches()[0].to_string();
        assert!(text.contains("4 times/s"), "{text}");
        assert!(text.contains("--connection-lifetime 1s"), "{text}");
    }

    #[test]
    fn a_profile_is_checked_at_its_steepest_ramp_not_the_spawn_rate() {
        let profile =
            |text: &str| Profile::new(crate::stages::parse(text).expect("parses"), 1.0, None);
        // --spawn-rate's default of 1/s would pass; 0 -> 600 users in 1 s does not.
        let steep = profile("1s:600u,1m:600u");
        let rate = peak_spawn_rate(1.0, Some(&steep));
        assert_eq!(rate, 600.0);
        assert_eq!(
            shape(steep.peak_users(), rate, None).breaches(),
            [ConnectBreach::AccountRate(600.0)]
        );
        // The same users over 2 s: 300/s, within the quota.
        let gentle = profile("2s:600u,1m:600u");
        let rate = peak_spawn_rate(1.0, Some(&gentle));
        assert_eq!(shape(gentle.peak_users(), rate, None).breaches(), []);
        assert_eq!(
            peak_spawn_rate(700.0, None),
            700.0,
            "no profile: --spawn-rate"
        );
    }

    #[test]
    fn subscribers_connect_in_the_first_second() {
        let with_subscribers = ConnectShape {
            subscribers: 450,
            ..shape(1_000, 100.0, None)
        };
        assert_eq!(with_subscribers.peak_connects_per_sec(), 550.0);
        let text = with_subscribers.breaches()[0].to_string();
        assert!(text.contains("up to 550 CONNECTs/s"), "{text}");
        assert!(text.contains("adjustable"), "{text}");
    }
}
