//! The AWS IoT cost guard applied to what a master orders: this worker's share of the load
//! is priced before its users start, and a share over `--max-cost` is refused.

use std::fmt;
use std::time::Duration;

use super::msgpack::Value;
use crate::cli::Cli;
use crate::guard::{self, GuardError, LoadShape};
use crate::plan::RunPlan;

/// The master's `--run-time` from its forwarded options (Locust sends whole seconds).
pub fn master_run_time(parsed_options: &[(String, Value)]) -> Option<Duration> {
    parsed_options
        .iter()
        .find(|(k, _)| k == "run_time")
        .and_then(|(_, v)| v.as_f64())
        .filter(|s| s.is_finite() && *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// Why this worker refuses its share of what the master ordered.
#[derive(Debug)]
pub enum ShareRefused {
    /// The cost guard's verdict: over `--max-cost`, or an unbounded run against AWS.
    Guard(GuardError),
    /// More sockets than this worker's open-file limit allows.
    OpenFileLimit {
        /// Publishing users ordered.
        users: u64,
        /// Subscribers ordered.
        subscribers: u64,
        /// The limit after raising the soft limit to the hard one.
        limit: u64,
    },
}

impl fmt::Display for ShareRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShareRefused::Guard(e) => write!(f, "{e}"),
            ShareRefused::OpenFileLimit {
                users,
                subscribers,
                limit,
            } => write!(
                f,
                "{users} users and {subscribers} subscribers need as many sockets but this worker's open-file limit is {limit}: raise `ulimit -Hn` or add workers"
            ),
        }
    }
}

impl std::error::Error for ShareRefused {}

/// The guard's lines for `users` users of `plan` over `run_time`, and its verdict.
pub fn check(
    cli: &Cli,
    plan: &RunPlan,
    users: u64,
    run_time: Option<Duration>,
) -> (Vec<String>, Result<(), ShareRefused>) {
    let mut shape = LoadShape::from_plan(plan);
    shape.users = users;
    shape.run_time = run_time;
    let (lines, verdict) = guard::assess(cli, &shape, &plan.host);
    (lines, verdict.map_err(ShareRefused::Guard))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn a_share_over_budget_is_refused_and_the_run_time_comes_from_the_master() {
        let opts = vec![("run_time".to_owned(), Value::Int(3_600))];
        let run_time = master_run_time(&opts);
        assert_eq!(run_time, Some(Duration::from_secs(3_600)));
        let cli = Cli::parse_from([
            "mqload",
            "--worker",
            "--host",
            "127.0.0.1",
            "--no-tls",
            "--aws",
            "--max-cost",
            "1",
            "-u",
            "2",
        ]);
        let plan = RunPlan::from_cli(&cli).expect("plan");
        let (lines, ok) = check(&cli, &plan, 10, run_time);
        assert!(ok.is_ok(), "{lines:?}");
        let (_, refused) = check(&cli, &plan, 100_000, run_time);
        assert!(refused.is_err());
        let (_, unbounded) = check(&cli, &plan, 10, None);
        assert!(unbounded.is_err(), "no run time against AWS needs --yes");
    }
}
