//! One whole run as the binary performs it: the subcommands, a Locust worker, or a plan run
//! standalone (`standalone`) or as a find-limit search, aimed at `--host` or the built-in broker.

use std::sync::Arc;
use std::time::Duration;

use crate::broker::Embedded;
use crate::cli::{Cli, Command, TransportArg};
use crate::guard::{self, GuardError, LoadShape};
use crate::plan::{PlanError, RunPlan, Target};

pub use crate::exit_code::EXIT_CONFIG;

mod find_limit;
mod standalone;

/// Runs what the options say; returns the process exit code (0 clean, 1 failures, 2 config).
pub fn run(cli: &Cli) -> u8 {
    if let Some(Command::Broker(args)) = &cli.command {
        return crate::broker::run_command(args);
    }
    if let Some(Command::Pki(args)) = &cli.command {
        return crate::cli::pki::run(args);
    }
    if let Some(line) = (cli.command.is_none())
        .then(|| find_limit::misplaced_option(cli))
        .flatten()
    {
        eprintln!("mqload: error: {line}");
        return EXIT_CONFIG;
    }
    if cli.worker {
        if let Some(line) = worker_conflict(cli) {
            eprintln!("mqload: error: {line}");
            return EXIT_CONFIG;
        }
        return crate::locust::run(cli);
    }
    if let Some(file) = &cli.locustfile {
        eprintln!("mqload: ignoring -f {file}: mqload's engine replaces the locustfile");
    }
    let embedded = match start_embedded(cli) {
        Ok(embedded) => embedded,
        Err(line) => {
            eprintln!("mqload: error: {line}");
            return EXIT_CONFIG;
        }
    };
    let plan = match plan_for(cli, embedded.as_ref()) {
        Ok(plan) => Arc::new(plan),
        Err(e @ PlanError::Unresolvable { .. }) if cli.dry_run => {
            return dry_run_unresolved(cli, &e);
        }
        Err(e) => {
            eprintln!("mqload: error: {e}");
            return EXIT_CONFIG;
        }
    };
    if let Some(embedded) = &embedded {
        let over = match embedded.broker.ws_addr {
            Some(_) => " (WebSocket)",
            None => "",
        };
        eprintln!(
            "no --host given: testing the built-in broker on {}{over}",
            embedded.run_addr()
        );
    }
    let code = if matches!(cli.command, Some(Command::FindLimit)) {
        find_limit::run(cli, &plan, embedded.as_ref())
    } else {
        standalone::run_plan(cli, plan, embedded.as_ref())
    };
    if let Some(embedded) = embedded {
        // The run has disconnected; let the broker read what is still in its sockets.
        let stats = embedded.broker.stop_when_idle(Duration::from_secs(5));
        eprintln!("mqload: built-in broker: {stats}");
    }
    code
}

/// Why a `--worker` cannot run with the other options given, as one line naming the fix.
fn worker_conflict(cli: &Cli) -> Option<&'static str> {
    if matches!(cli.command, Some(Command::FindLimit)) {
        return Some("find-limit runs standalone: drop --worker");
    }
    if cli.report_json.is_some() || cli.html.is_some() || cli.json || cli.json_file.is_some() {
        return Some(
            "--json, --json-file, --report-json and --html are not written by a \
             --worker (its Locust master reports the run): drop them, or run mqload without --worker",
        );
    }
    if cli.prometheus.is_some() {
        return Some(
            "--prometheus is not served by a --worker yet (its Locust master's \
             web UI shows the run live): drop --prometheus, or run mqload without --worker",
        );
    }
    if cli.dry_run {
        return Some(
            "--dry-run checks a standalone run, but a --worker's run comes from \
             its Locust master: drop --dry-run or --worker",
        );
    }
    None
}

/// No host: the built-in broker, started here, for the run to aim at (see `broker::command`);
/// `None` when `--host` is given.
fn start_embedded(cli: &Cli) -> Result<Option<Embedded>, String> {
    if cli.host.is_some() {
        return Ok(None);
    }
    Embedded::start(
        crate::broker::embedded_threads(cli.broker_threads),
        cli.no_tls,
        cli.transport == TransportArg::Websockets,
    )
    .map(Some)
    .map_err(|e| format!("the built-in broker (used when no --host is given) did not start: {e}"))
}

/// The plan, aimed at the built-in broker when one was started.
fn plan_for(cli: &Cli, embedded: Option<&Embedded>) -> Result<RunPlan, PlanError> {
    let Some(embedded) = embedded else {
        return RunPlan::from_cli(cli);
    };
    let addr = embedded.run_addr();
    let target = Target {
        host: addr.ip().to_string(),
        port: addr.port(),
        tls: embedded
            .client_config(&cli.alpn)
            .transpose()
            .map_err(PlanError::Tls)?,
    };
    RunPlan::from_cli_with_target(cli, Some(&target))
}

/// The run in one line: users, spawn rate, threads, broker, QoS, rate, run id and end.
fn plan_line(plan: &RunPlan) -> String {
    let users = match &plan.stages {
        Some(p) => format!(
            "stages: {} segments over {}, up to {} users",
            p.stages().len(),
            humanize(p.total()),
            p.peak_users()
        ),
        None => format!("{} users at {}/s", plan.users, plan.spawn_rate),
    };
    format!(
        "mqload: {users} on {} threads -> {}:{} ({}), QoS {}, {} msg/s per user, run id {}{}",
        plan.threads,
        plan.host,
        plan.addrs[0].port(),
        plan.transport_label(),
        plan.qos as u8,
        plan.throughput,
        plan.run_id,
        plan.run_time
            .map(|t| format!(", stopping after {}", humanize(t)))
            .unwrap_or_else(|| ", until Ctrl-C".into()),
    )
}

/// `--dry-run` when the broker host does not resolve here (no DNS, or a name only the
/// target network knows): the plan, offered load and estimate need no address, so they are
/// printed first, planned against a stand-in loopback address that is never connected to;
/// then the resolution failure, and exit 2.
fn dry_run_unresolved(cli: &Cli, unresolved: &PlanError) -> u8 {
    let mut stand_in = cli.clone();
    stand_in.host = Some("127.0.0.1".to_owned());
    stand_in.server_name = cli.server_name.clone().or_else(|| cli.host.clone());
    match RunPlan::from_cli(&stand_in) {
        Ok(mut plan) => {
            plan.host = cli.host.clone().unwrap_or_default();
            eprintln!("{}", plan_line(&plan));
            if let Err(e) = guard_run(cli, &plan) {
                eprintln!("mqload: error: {e}");
            }
        }
        Err(e) => eprintln!("mqload: error: {e}"),
    }
    eprintln!("mqload: error: {unresolved}");
    EXIT_CONFIG
}

/// Prints the offered load; for AWS IoT Core also the cost estimate and quota warnings, and
/// refuses a run over budget (before any connection is opened).
fn guard_run(cli: &Cli, plan: &RunPlan) -> Result<(), GuardError> {
    let (lines, verdict) = guard::assess(cli, &LoadShape::from_plan(plan), &plan.host);
    for line in lines {
        eprintln!("mqload: {line}");
    }
    verdict
}

fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}
