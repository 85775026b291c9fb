//! `--stages`: a load profile as segments, each a duration and a target (users, and optionally
//! msg/s per user), and the orders that carry it out. Sans-IO: a pure function from elapsed
//! time to target users and rate, and a driver that turns it into user and rate orders;
//! the caller passes the elapsed time, so both are tested on virtual time.
//!
//! Between targets the load ramps linearly over the segment; with `--spawn-rate` the user count
//! moves at that rate instead (and may reach its target early, or not within the segment).
//! A segment without `@rate` keeps the rate the previous one reached (at first `--throughput`).

use std::fmt;
use std::time::Duration;

use crate::duration::parse_duration;

/// The driver looks at the profile this often: a ramp's users start spread within each step.
pub const TICK: Duration = Duration::from_millis(100);

/// One segment as written: `2m:1000u` or `1m:5000u@2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// How long the segment lasts.
    pub duration: Duration,
    /// Users wanted at its end.
    pub users: u64,
    /// Messages per second per user wanted at its end; `None` keeps the previous rate.
    pub rate: Option<f64>,
}

/// Why a `--stages` value is not a profile.
#[derive(Debug, Clone, PartialEq)]
pub enum StagesError {
    /// No segment at all.
    Empty,
    /// A segment is not `DURATION:USERSu[@RATE]`.
    BadSegment(String),
    /// A segment's rate is zero, negative, or out of mqload's range.
    BadRate(String),
    /// The segments last zero seconds in all.
    ZeroLength,
    /// No segment asks for any user.
    NoUsers,
}

impl fmt::Display for StagesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const FORM: &str = "write segments as DURATION:USERSu[@MSG/S PER USER], comma-separated, e.g. 2m:1000u,5m:1000u,1m:5000u@2,2m:0u";
        match self {
            StagesError::Empty => write!(f, "--stages is empty: {FORM}"),
            StagesError::BadSegment(s) => write!(f, "--stages segment {s:?} is not valid: {FORM}"),
            StagesError::BadRate(s) => write!(
                f,
                "--stages segment {s:?}: the rate after @ must be a number from 0.0001 to 10000000 msg/s per user"
            ),
            StagesError::ZeroLength => {
                write!(f, "--stages lasts 0 s in all: give the segments durations")
            }
            StagesError::NoUsers => {
                write!(
                    f,
                    "--stages never asks for a user: give a segment a target above 0u"
                )
            }
        }
    }
}

impl std::error::Error for StagesError {}

/// Parses `2m:1000u,5m:1000u,1m:5000u@2,2m:0u`.
pub fn parse(text: &str) -> Result<Vec<Stage>, StagesError> {
    let stages = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_segment)
        .collect::<Result<Vec<_>, _>>()?;
    if stages.is_empty() {
        return Err(StagesError::Empty);
    }
    if stages.iter().all(|s| s.duration.is_zero()) {
        return Err(StagesError::ZeroLength);
    }
    if stages.iter().all(|s| s.users == 0) {
        return Err(StagesError::NoUsers);
    }
    Ok(stages)
}

fn parse_segment(segment: &str) -> Result<Stage, StagesError> {
    let bad = || StagesError::BadSegment(segment.to_owned());
    let (duration, target) = segment.split_once(':').ok_or_else(bad)?;
    let duration = parse_duration(duration).ok_or_else(bad)?;
    let (users, rate) = match target.split_once('@') {
        Some((users, rate)) => (users, Some(rate)),
        None => (target, None),
    };
    let users = users.trim().strip_suffix('u').ok_or_else(bad)?;
    let users: u64 = users.trim().parse().map_err(|_| bad())?;
    let rate = match rate {
        None => None,
        Some(rate) => {
            let rate: f64 = rate
                .trim()
                .parse()
                .map_err(|_| StagesError::BadRate(segment.to_owned()))?;
            if !(1e-4..=1e7).contains(&rate) {
                return Err(StagesError::BadRate(segment.to_owned()));
            }
            Some(rate)
        }
    };
    Ok(Stage {
        duration,
        users,
        rate,
    })
}

/// What the profile asks for at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// Users (fractional on a ramp; the driver orders whole ones).
    pub users: f64,
    /// Messages per second per user.
    pub rate: f64,
}

/// A validated profile: the segments, where each starts from, and how users move.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    stages: Vec<Stage>,
    /// Users and rate at the start of each segment (the end of the previous one).
    starts: Vec<Target>,
    /// `--spawn-rate` when given: users move at this many per second.
    spawn_rate: Option<f64>,
}

impl Profile {
    /// The profile of `stages`, starting from no users at `start_rate` msg/s per user.
    pub fn new(stages: Vec<Stage>, start_rate: f64, spawn_rate: Option<f64>) -> Profile {
        let mut profile = Profile {
            stages,
            starts: Vec::new(),
            spawn_rate: spawn_rate.filter(|r| r.is_finite() && *r > 0.0),
        };
        let mut from = Target {
            users: 0.0,
            rate: start_rate,
        };
        for i in 0..profile.stages.len() {
            profile.starts.push(from);
            from = profile.within(i, profile.stages[i].duration);
        }
        profile
    }

    /// The segments as given.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// How long the whole profile lasts.
    pub fn total(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The most users any moment asks for.
    pub fn peak_users(&self) -> u64 {
        self.stages.iter().map(|s| s.users).max().unwrap_or(0)
    }

    /// The highest msg/s per user any moment asks for.
    pub fn peak_rate(&self) -> f64 {
        let first = self.starts.first().map_or(0.0, |t| t.rate);
        self.stages
            .iter()
            .filter_map(|s| s.rate)
            .fold(first, f64::max)
    }

    /// The most users the profile adds within any one second: its steepest ramp (capped by
    /// what that ramp adds in all), a step (a zero-length segment) counted whole, and ramps
    /// that follow each other within the second summed. What a connect quota must allow.
    pub fn peak_users_per_sec(&self) -> f64 {
        // Rising pieces (start, end, users/s) and steps (when, users), seconds from the start.
        let mut ramps = Vec::new();
        let mut steps = Vec::new();
        for (i, stage) in self.stages.iter().enumerate() {
            let start = self.bounds(i).0.as_secs_f64();
            let from = self.starts[i].users;
            let rise = self.within(i, stage.duration).users - from;
            if rise <= 0.0 {
                continue;
            }
            let reach = match self.spawn_rate {
                Some(rate) => rise / rate,
                None => stage.duration.as_secs_f64(),
            };
            if reach > 0.0 {
                ramps.push((start, start + reach, rise / reach));
            } else {
                steps.push((start, rise));
            }
        }
        // Users added in [t, t + 1] is piecewise linear in t: its peak is at a window
        // whose start or end meets a piece's start or end, or a step.
        let added = |t: f64| {
            let ramped: f64 = ramps
                .iter()
                .map(|&(a, b, slope)| (b.min(t + 1.0) - a.max(t)).max(0.0) * slope)
                .sum();
            let stepped: f64 = steps
                .iter()
                .filter(|(at, _)| (t..=t + 1.0).contains(at))
                .map(|(_, rise)| rise)
                .sum();
            ramped + stepped
        };
        ramps
            .iter()
            .flat_map(|&(a, b, _)| [a, b])
            .chain(steps.iter().map(|&(at, _)| at))
            .flat_map(|edge| [edge, edge - 1.0])
            .map(added)
            .fold(0.0, f64::max)
    }

    /// Start and end of segment `i`, from the start of the run.
    pub fn bounds(&self, i: usize) -> (Duration, Duration) {
        let start: Duration = self.stages.iter().take(i).map(|s| s.duration).sum();
        let length = self.stages.get(i).map_or(Duration::ZERO, |s| s.duration);
        (start, start + length)
    }

    /// The segment `elapsed` falls in (the last one past the end).
    pub fn stage_at(&self, elapsed: Duration) -> usize {
        let mut end = Duration::ZERO;
        for (i, stage) in self.stages.iter().enumerate() {
            end += stage.duration;
            if elapsed < end {
                return i;
            }
        }
        self.stages.len().saturating_sub(1)
    }

    /// What the profile asks for `elapsed` after the start (past the end: the last target).
    pub fn at(&self, elapsed: Duration) -> Target {
        let i = self.stage_at(elapsed);
        let (start, _) = self.bounds(i);
        self.within(i, elapsed.saturating_sub(start))
    }

    /// The target `into` after the start of segment `i`.
    fn within(&self, i: usize, into: Duration) -> Target {
        let (Some(stage), Some(from)) = (self.stages.get(i), self.starts.get(i)) else {
            return Target {
                users: 0.0,
                rate: 0.0,
            };
        };
        let length = stage.duration.as_secs_f64();
        let t = into.as_secs_f64().min(length);
        let fraction = if length > 0.0 { t / length } else { 1.0 };
        let goal = stage.users as f64;
        let users = match self.spawn_rate {
            Some(rate) if goal >= from.users => (from.users + rate * t).min(goal),
            Some(rate) => (from.users - rate * t).max(goal),
            None => from.users + (goal - from.users) * fraction,
        };
        let rate = match stage.rate {
            Some(goal) => from.rate + (goal - from.rate) * fraction,
            None => from.rate,
        };
        Target { users, rate }
    }

    /// Users per second the user count moves at `elapsed` (0 when it holds).
    pub fn users_slope(&self, elapsed: Duration) -> f64 {
        let i = self.stage_at(elapsed);
        let (Some(stage), Some(from)) = (self.stages.get(i), self.starts.get(i)) else {
            return 0.0;
        };
        let now = self.at(elapsed).users;
        if (now - stage.users as f64).abs() < 1e-9 {
            return 0.0;
        }
        match self.spawn_rate {
            Some(rate) => rate,
            None => (stage.users as f64 - from.users).abs() / stage.duration.as_secs_f64(),
        }
    }

    /// Messages a run of `run` offers under this profile: the integral of users x rate
    /// (cut where the run ends; past the profile's end its last target holds). The first
    /// publish delay is taken as zero, so the estimate errs high.
    pub fn messages_over(&self, run: Duration) -> f64 {
        let run = run.as_secs_f64();
        let mut total = 0.0;
        for (i, stage) in self.stages.iter().enumerate() {
            let start = self.bounds(i).0.as_secs_f64();
            // Users are linear until they reach the target (with --spawn-rate), the rate linear
            // throughout: on each piece users x rate is quadratic, so Simpson's rule is exact.
            let length = stage.duration.as_secs_f64().min(run - start);
            let reach = match self.spawn_rate {
                Some(rate) => (stage.users as f64 - self.starts[i].users).abs() / rate,
                None => length,
            };
            for (a, b) in [(0.0, reach.min(length)), (reach.min(length), length)] {
                if b > a {
                    let f = |s: f64| {
                        let t = self.within(i, Duration::from_secs_f64(s));
                        t.users * t.rate
                    };
                    total += (b - a) / 6.0 * (f(a) + 4.0 * f((a + b) / 2.0) + f(b));
                }
            }
        }
        let end = self.at(self.total());
        total + (run - self.total().as_secs_f64()).max(0.0) * end.users * end.rate
    }
}

/// An order for the engine, as [`Driver::poll`] gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Order {
    /// Run `count` users; new ones start `spawn_rate` per second from now.
    Users {
        /// Users wanted in all.
        count: u64,
        /// Users started per second (infinite: at once).
        spawn_rate: f64,
    },
    /// Every user publishes at this many msg/s from now (a new absolute plan).
    Rate(f64),
}

/// Carries a profile out: at each [`TICK`] it orders the whole users the profile asks for,
/// and the rate when it changed.
#[derive(Debug, Clone)]
pub struct Driver {
    profile: Profile,
    users: Option<u64>,
    rate: f64,
}

impl Driver {
    /// A driver for `profile`; the engine starts at `start_rate` msg/s per user.
    pub fn new(profile: Profile, start_rate: f64) -> Driver {
        Driver {
            profile,
            users: None,
            rate: start_rate,
        }
    }

    /// The orders due `elapsed` after the start (at most one of each kind).
    pub fn poll(&mut self, elapsed: Duration) -> Vec<Order> {
        let target = self.profile.at(elapsed);
        let mut orders = Vec::new();
        if (target.rate - self.rate).abs() > self.rate * 1e-9 {
            self.rate = target.rate;
            orders.push(Order::Rate(target.rate));
        }
        // Rounded a hair up, so float noise at a whole target does not drop a user.
        let count = (target.users + 1e-6).floor() as u64;
        if self.users != Some(count) {
            let slope = self.profile.users_slope(elapsed);
            let spawn_rate = if slope > 0.0 { slope } else { f64::INFINITY };
            self.users = Some(count);
            orders.push(Order::Users { count, spawn_rate });
        }
        orders
    }
}

#[cfg(test)]
mod tests;
