//! The capacity search's settings from the options: what it raises, where it starts, the
//! limits, the level time, and for a connect-rate search the most connections this host can
//! hold open over a level. Every mistake is a [`SettingsError`] whose line names the fix.

use std::fmt;
use std::time::Duration;

use crate::cli::{Cli, SearchArg};
use crate::duration::parse_duration;
use crate::find_limit::{Limits, SearchConfig, SearchMode};
use crate::plan::RunPlan;

/// Shortest `--level-time`: under a few seconds a p99 is a handful of messages.
const MIN_LEVEL_TIME: Duration = Duration::from_secs(1);
/// A connect-rate level before its window opens: the first second's connects are not judged.
pub const CONNECT_LEAD: Duration = Duration::from_secs(1);
/// A connect-rate level after its window closes: one stats interval, so the window's last
/// second arrives, and one more second during which connects still fall due.
pub const CONNECT_TAIL: Duration = Duration::from_secs(2);
/// File descriptors kept free for everything but the level's connections (listeners, pollers,
/// report files, the built-in broker's own).
const RESERVED_FDS: u64 = 256;

/// A find-limit option that cannot work; each names the fix.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingsError {
    /// An option of a single run that the search sets itself or cannot report.
    Refused(&'static str),
    /// The target is AWS IoT Core, which bills and throttles per account.
    AwsIot,
    /// A msg-rate search with no publishers, or with `--connect-only`.
    NoPublishers,
    /// An option a connect-rate search cannot honour.
    RefusedForConnects(&'static str),
    /// `--slo-p99` or `--slo-connect-p99` is not a positive duration.
    BadP99 {
        /// The option's name.
        option: &'static str,
        /// What was given.
        value: String,
    },
    /// `--level-time` is not a duration of at least [`MIN_LEVEL_TIME`].
    BadLevelTime(String),
    /// `--slo-failures` is not a percentage.
    BadFailures(f64),
    /// `--precision` is not a positive percentage.
    BadPrecision(f64),
    /// `--max-rate` is below the starting load.
    MaxBelowStart {
        /// `--max-rate`.
        max: f64,
        /// The first level.
        start: f64,
        /// Its unit.
        unit: &'static str,
    },
    /// The open-file limit cannot hold the first connect-rate level's connections open.
    TooFewFiles {
        /// The first level, connections a second.
        start: f64,
        /// The highest rate the limit allows.
        cap: f64,
        /// The open-file limit.
        limit: u64,
    },
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::Refused(what) => write!(f, "find-limit does not take {what}: drop it"),
            SettingsError::AwsIot => f.write_str(
                "find-limit raises the load until the broker breaks, which AWS IoT Core bills \
                 and throttles per account: test a broker of your own",
            ),
            SettingsError::NoPublishers => f.write_str(
                "find-limit raises the publish rate: give publishers (-u 1 or more) and drop \
                 --connect-only, or raise connects with --search connect-rate",
            ),
            SettingsError::RefusedForConnects(what) => {
                write!(
                    f,
                    "find-limit --search connect-rate does not take {what}: drop it"
                )
            }
            SettingsError::BadP99 { option, value } => {
                write!(f, "--{option} {value:?}: give a duration such as 20ms")
            }
            SettingsError::BadLevelTime(value) => {
                write!(f, "--level-time {value:?}: give 1s or more, such as 10s")
            }
            SettingsError::BadFailures(value) => {
                write!(f, "--slo-failures {value}: give a percentage from 0 to 100")
            }
            SettingsError::BadPrecision(value) => {
                write!(
                    f,
                    "--precision {value}: give a percentage above 0, such as 5"
                )
            }
            SettingsError::MaxBelowStart { max, start, unit } => write!(
                f,
                "--max-rate {max}: give at least the starting load, {start} {unit} (-u x \
                 --throughput, or --spawn-rate with --search connect-rate)"
            ),
            SettingsError::TooFewFiles { start, cap, limit } => write!(
                f,
                "--spawn-rate {start}: each connect-rate level holds its connections open, and \
                 the open-file limit ({limit}) allows at most {cap:.0} connections/s over a \
                 level: lower --spawn-rate or --level-time, or raise the limit (ulimit -n)"
            ),
        }
    }
}

impl std::error::Error for SettingsError {}

/// What the search needs besides its [`SearchConfig`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// How the search moves and what a level must keep.
    pub config: SearchConfig,
    /// How long each level is measured.
    pub level_time: Duration,
    /// Connect-rate search: the highest rate the open-file limit allows, when it is lower than
    /// `--max-rate` (then it is the search's maximum).
    pub open_file_cap: Option<(f64, u64)>,
}

/// Options no search takes.
fn refused(cli: &Cli) -> Option<&'static str> {
    [
        (
            cli.run_time.is_some(),
            "--run-time (each level lasts --level-time)",
        ),
        (cli.csv.is_some(), "--csv (use --report-json or --html)"),
        (
            cli.json || cli.json_file.is_some(),
            "--json/--json-file (use --report-json)",
        ),
        (
            cli.reset_stats,
            "--reset-stats (levels are measured after their warm-up)",
        ),
        (cli.dry_run, "--dry-run"),
        (
            cli.stages.is_some(),
            "--stages (the search sets each level's load itself)",
        ),
    ]
    .iter()
    .find(|(set, _)| *set)
    .map(|(_, what)| *what)
}

/// Options a connect-rate search does not take, and why.
fn refused_for_connects(cli: &Cli) -> Option<&'static str> {
    let given = |id: &str| cli.given.iter().any(|g| g == id);
    [
        (
            given("users"),
            "-u (each level makes rate x (level time + 3 s) users)",
        ),
        (
            cli.connection_lifetime.is_some(),
            "--connection-lifetime (a reconnect follows its answer, so the broker would pace \
             the connects; each level offers new connections on a fixed schedule instead)",
        ),
        (
            given("max_connecting"),
            "--max-connecting (connects queued inside mqload would be timed from after the \
             wait, hiding the broker's backlog)",
        ),
        (
            cli.subscribers > 0,
            "--subscribers (a level only opens connections)",
        ),
    ]
    .iter()
    .find(|(set, _)| *set)
    .map(|(_, what)| *what)
}

fn p99(option: &'static str, value: &str) -> Result<u64, SettingsError> {
    parse_duration(value)
        .filter(|d| !d.is_zero())
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .ok_or_else(|| SettingsError::BadP99 {
            option,
            value: value.to_owned(),
        })
}

/// The highest connect rate whose level this process can hold open: every connection is one
/// descriptor (two when the built-in broker runs in this process), for the whole level.
pub fn connect_rate_cap(level_time: Duration, embedded_broker: bool) -> (f64, u64) {
    let limit = crate::plan::raise_open_file_limit();
    let per_connection = if embedded_broker { 2 } else { 1 };
    let span = (CONNECT_LEAD + level_time + CONNECT_TAIL).as_secs_f64();
    let usable = limit.saturating_sub(RESERVED_FDS) / per_connection;
    ((usable as f64 / span).floor(), limit)
}

/// The search's settings from the options, or the mistake.
pub fn settings(cli: &Cli, plan: &RunPlan, embedded: bool) -> Result<Settings, SettingsError> {
    if let Some(what) = refused(cli) {
        return Err(SettingsError::Refused(what));
    }
    if cli.aws || crate::guard::is_aws_iot_host(&plan.host) {
        return Err(SettingsError::AwsIot);
    }
    let mode = match cli.search {
        SearchArg::MsgRate => SearchMode::Messages,
        SearchArg::ConnectRate => SearchMode::Connects,
    };
    let (p99_us, start) = match mode {
        SearchMode::Messages => {
            if plan.users == 0 || cli.connect_only {
                return Err(SettingsError::NoPublishers);
            }
            let start = plan.users as f64 * plan.throughput;
            (p99("slo-p99", &cli.slo_p99)?, start)
        }
        SearchMode::Connects => {
            if let Some(what) = refused_for_connects(cli) {
                return Err(SettingsError::RefusedForConnects(what));
            }
            (
                p99("slo-connect-p99", &cli.slo_connect_p99)?,
                plan.spawn_rate,
            )
        }
    };
    let level_time = parse_duration(&cli.level_time)
        .filter(|d| *d >= MIN_LEVEL_TIME)
        .ok_or_else(|| SettingsError::BadLevelTime(cli.level_time.clone()))?;
    if !(0.0..=100.0).contains(&cli.slo_failures) {
        return Err(SettingsError::BadFailures(cli.slo_failures));
    }
    if !(cli.precision > 0.0 && cli.precision <= 100.0) {
        return Err(SettingsError::BadPrecision(cli.precision));
    }
    if let Some(max) = cli.max_rate
        && !(max.is_finite() && max >= start)
    {
        return Err(SettingsError::MaxBelowStart {
            max,
            start,
            unit: mode.unit(),
        });
    }
    let mut max_per_s = cli.max_rate;
    let mut open_file_cap = None;
    if mode == SearchMode::Connects {
        let (cap, limit) = connect_rate_cap(level_time, embedded);
        if cap < start {
            return Err(SettingsError::TooFewFiles { start, cap, limit });
        }
        if max_per_s.is_none_or(|max| max > cap) {
            max_per_s = Some(cap);
            open_file_cap = Some((cap, limit));
        }
    }
    let config = SearchConfig {
        start_per_s: start,
        max_per_s,
        precision: cli.precision / 100.0,
        limits: Limits {
            p99_us,
            failure_percent: cli.slo_failures,
            mode,
        },
    };
    Ok(Settings {
        config,
        level_time,
        open_file_cap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mistake_is_one_line_naming_the_fix() {
        let mistakes = [
            SettingsError::Refused("--dry-run"),
            SettingsError::AwsIot,
            SettingsError::NoPublishers,
            SettingsError::RefusedForConnects("--subscribers (a level only opens connections)"),
            SettingsError::BadP99 {
                option: "slo-connect-p99",
                value: "soon".to_owned(),
            },
            SettingsError::BadLevelTime("0s".to_owned()),
            SettingsError::BadFailures(120.0),
            SettingsError::BadPrecision(0.0),
            SettingsError::MaxBelowStart {
                max: 10.0,
                start: 100.0,
                unit: "connections/s",
            },
            SettingsError::TooFewFiles {
                start: 5_000.0,
                cap: 3_290.0,
                limit: 20_000,
            },
        ];
        for mistake in mistakes {
            let line = mistake.to_string();
            assert!(!line.contains('\n'), "{line}");
            assert!(
                [
                    "drop it",
                    "give",
                    "test a broker",
                    "lower",
                    "--search connect-rate"
                ]
                .iter()
                .any(|fix| line.contains(fix)),
                "names no fix: {line}"
            );
        }
        assert_eq!(
            SettingsError::BadP99 {
                option: "slo-connect-p99",
                value: "soon".to_owned()
            }
            .to_string(),
            "--slo-connect-p99 \"soon\": give a duration such as 20ms"
        );
    }

    #[test]
    fn the_open_file_cap_leaves_room_for_the_whole_level() {
        let level = Duration::from_secs(5);
        let (alone, limit) = connect_rate_cap(level, false);
        let (embedded, _) = connect_rate_cap(level, true);
        let span = (CONNECT_LEAD + level + CONNECT_TAIL).as_secs_f64();
        assert!(
            alone * span <= (limit - RESERVED_FDS) as f64,
            "{alone} over {span} s"
        );
        assert!(
            (embedded - (alone / 2.0).floor()).abs() <= 1.0,
            "{embedded} vs {alone}"
        );
    }
}
