//! One whole run as the binary performs it: plan, engine, collector, exit code.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::Duration;

use crate::broker::Embedded;
use crate::cli::{Cli, Command};
use crate::engine::{self, Epoch};
use crate::guard::{self, GuardError, LoadShape};
use crate::plan::{PlanError, RunPlan, Target};
use crate::report::json::{ReportData, RunParameters, StopReason};
use crate::report::output::ReportFiles;
use crate::reporter::{self, ReportOptions};
use crate::stats::{RequestKind, Snapshot};
use crate::unix_time::unix_now;

pub use crate::exit_code::EXIT_CONFIG;

/// Runs what the options say; returns the process exit code (0 clean, 1 failures, 2 config).
pub fn run(cli: &Cli) -> u8 {
    if let Some(Command::Broker(args)) = &cli.command {
        return crate::broker::run_command(args);
    }
    if cli.worker {
        if cli.json.is_some() || cli.html.is_some() {
            eprintln!(
                "mqload: error: --json and --html are not written by a --worker (its Locust master \
                 reports the run): drop them, or run mqload without --worker"
            );
            return EXIT_CONFIG;
        }
        if cli.dry_run {
            eprintln!(
                "mqload: error: --dry-run checks a standalone run, but a --worker's run comes from \
                 its Locust master: drop --dry-run or --worker"
            );
            return EXIT_CONFIG;
        }
        return crate::locust::run(cli);
    }
    if let Some(file) = &cli.locustfile {
        eprintln!("mqload: ignoring -f {file}: mqload's engine replaces the locustfile");
    }
    // No host: aim the run at the built-in broker, started here (see `broker::command`).
    let embedded = match cli.host {
        Some(_) => None,
        None => match Embedded::start(
            crate::broker::embedded_threads(cli.broker_threads),
            cli.no_tls,
        ) {
            Ok(embedded) => Some(embedded),
            Err(e) => {
                eprintln!(
                    "mqload: error: the built-in broker (used when no --host is given) did not start: {e}"
                );
                return EXIT_CONFIG;
            }
        },
    };
    let plan = match plan_for(cli, embedded.as_ref()) {
        Ok(plan) => Arc::new(plan),
        Err(e) => {
            eprintln!("mqload: error: {e}");
            return EXIT_CONFIG;
        }
    };
    if let Some(embedded) = &embedded {
        eprintln!(
            "no --host given: testing the built-in broker on {}",
            embedded.broker.addr
        );
    }
    let code = run_plan(cli, plan, embedded.as_ref());
    if let Some(embedded) = embedded {
        // The run has disconnected; let the broker read what is still in its sockets.
        let stats = embedded.broker.stop_when_idle(Duration::from_secs(5));
        eprintln!("mqload: built-in broker: {stats}");
    }
    code
}

/// The plan, aimed at the built-in broker when one was started.
fn plan_for(cli: &Cli, embedded: Option<&Embedded>) -> Result<RunPlan, PlanError> {
    let Some(embedded) = embedded else {
        return RunPlan::from_cli(cli);
    };
    let target = Target {
        host: embedded.broker.addr.ip().to_string(),
        port: embedded.broker.addr.port(),
        tls: embedded
            .client_config(&cli.alpn)
            .transpose()
            .map_err(PlanError::Tls)?,
    };
    RunPlan::from_cli_with_target(cli, Some(&target))
}

/// Runs a validated plan: engine, collector, exit code.
fn run_plan(cli: &Cli, plan: Arc<RunPlan>, embedded: Option<&Embedded>) -> u8 {
    let report_files = ReportFiles {
        json: cli.json.clone(),
        html: cli.html.clone(),
    };
    if let Err(e) = report_files.check() {
        eprintln!("mqload: error: {e}");
        return EXIT_CONFIG;
    }
    eprintln!(
        "mqload: {} users at {}/s on {} threads -> {}:{} ({}), QoS {}, {} msg/s per user, run id {}{}",
        plan.users,
        plan.spawn_rate,
        plan.threads,
        plan.host,
        plan.addrs[0].port(),
        if plan.tls.is_some() {
            "TLS"
        } else {
            "plain TCP"
        },
        plan.qos as u8,
        plan.throughput,
        plan.run_id,
        plan.run_time
            .map(|t| format!(", stopping after {}", humanize(t)))
            .unwrap_or_else(|| ", until Ctrl-C".into()),
    );
    if let Err(e) = guard_run(cli, &plan) {
        eprintln!("mqload: error: {e}");
        return EXIT_CONFIG;
    }
    if cli.dry_run {
        eprintln!("mqload: --dry-run: the run would go ahead; nothing was connected");
        return 0;
    }
    let (stats_tx, stats_rx) = crossbeam_channel::unbounded();
    let collector = reporter::spawn_reporter(
        plan.request_names.clone(),
        stats_rx,
        ReportOptions {
            csv_prefix: cli.csv.clone(),
            only_summary: cli.only_summary,
            print_interval: Duration::from_secs(2),
            target_users: plan.users,
            status_line: std::io::stdout().is_terminal(),
            run_time: plan.run_time,
            subscribers: plan.subscribe.as_ref().map_or(0, |s| s.subscribers),
        },
    );
    let start_unix = unix_now();
    let stop = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let timer = {
        let (stop, finished, run_time) = (Arc::clone(&stop), Arc::clone(&finished), plan.run_time);
        thread::spawn(move || engine::stop_after(run_time, &stop, &finished))
    };
    let errors = engine::run(&plan, &stats_tx, &stop, Epoch::now());
    finished.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(stats_tx);
    let _ = timer.join();
    for e in &errors {
        eprintln!("mqload: error: {e}");
    }
    let summary = match collector.join() {
        Ok(summary) => summary,
        Err(_) => {
            eprintln!("mqload: error: the statistics collector panicked (a bug in mqload)");
            return 1;
        }
    };
    if report_files.any() {
        let data = ReportData {
            parameters: RunParameters::from_plan(&plan),
            stats: &summary.final_stats,
            series: &summary.series,
            start_unix,
            end_unix: unix_now(),
            stopped_by: if crate::signals::received() {
                StopReason::Signal
            } else {
                StopReason::RunTime
            },
            sections: crate::report::sections::guard_sections(
                &plan,
                &summary.final_stats,
                cli.aws || guard::is_aws_iot_host(&plan.host),
                cli.price_per_million,
            )
            .into_iter()
            .chain(embedded.map(|e| crate::report::sections::built_in_broker(&e.broker)))
            .collect(),
        };
        let failed = report_files.write(&data);
        for e in &failed {
            eprintln!("mqload: error: {e}");
        }
        if !failed.is_empty() {
            return 1;
        }
    }
    if !errors.is_empty() {
        return 1;
    }
    if let Some(line) = never_connected(&summary.final_stats) {
        eprintln!("{line}");
    }
    let lost = lost_line(&summary.final_stats);
    if let Some(line) = &lost {
        eprintln!("{line}");
    }
    if summary.total_failures > 0 || lost.is_some() {
        return u8::try_from(cli.exit_code_on_error).unwrap_or(1);
    }
    0
}

/// When subscribers missed messages, one line saying how many: a script reading only the exit
/// code must not take a lossy run for a clean one.
fn lost_line(stats: &Snapshot) -> Option<String> {
    let sentence = stats.delivery.as_ref()?.loss_sentence()?;
    Some(format!(
        "mqload: {sentence} (see the Delivery line); exiting with --exit-code-on-error"
    ))
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

/// When no connection ever succeeded, one line with the first reason, so the fix is obvious
/// (a wrong port, an unknown CA, a refused certificate) without reading the error table.
fn never_connected(stats: &Snapshot) -> Option<String> {
    let connect = stats
        .rows
        .iter()
        .find(|r| r.kind == Some(RequestKind::Connect))?;
    if connect.num_requests == 0 || connect.num_failures < connect.num_requests {
        return None;
    }
    let first = stats
        .errors
        .iter()
        .filter(|e| e.name == connect.name)
        .min_by(|a, b| a.first_seen_unix.total_cmp(&b.first_seen_unix))?;
    Some(format!(
        "mqload: error: no connection to the broker succeeded ({} attempts); first error: {}",
        connect.num_requests, first.error
    ))
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
