//! One whole run as the binary performs it: plan, engine, collector, exit code.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::Duration;

use crate::broker::Embedded;
use crate::cli::{Cli, Command, TransportArg};
use crate::engine::{self, Epoch};
use crate::guard::{self, GuardError, LoadShape};
use crate::metrics::{
    LoadSnapshot, MetricsResponder, ResponderOptions, SnapshotPublisher, snapshot_handoff,
};
use crate::plan::{PlanError, RunPlan, Target};
use crate::report::json::{ReportData, RunParameters, StopReason};
use crate::report::output::ReportFiles;
use crate::reporter::{self, ReportOptions};
use crate::stats::{RequestKind, Snapshot};
use crate::unix_time::unix_now;

pub use crate::exit_code::EXIT_CONFIG;

mod find_limit;

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
        if matches!(cli.command, Some(Command::FindLimit)) {
            eprintln!("mqload: error: find-limit runs standalone: drop --worker");
            return EXIT_CONFIG;
        }
        if cli.report_json.is_some() || cli.html.is_some() || cli.json || cli.json_file.is_some() {
            eprintln!(
                "mqload: error: --json, --json-file, --report-json and --html are not written by a \
                 --worker (its Locust master reports the run): drop them, or run mqload without --worker"
            );
            return EXIT_CONFIG;
        }
        if cli.prometheus.is_some() {
            eprintln!(
                "mqload: error: --prometheus is not served by a --worker yet (its Locust master's \
                 web UI shows the run live): drop --prometheus, or run mqload without --worker"
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
            cli.transport == TransportArg::Websockets,
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
        run_plan(cli, plan, embedded.as_ref())
    };
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

/// Runs a validated plan: engine, collector, exit code.
fn run_plan(cli: &Cli, plan: Arc<RunPlan>, embedded: Option<&Embedded>) -> u8 {
    let report_files = ReportFiles {
        json: cli.report_json.clone(),
        html: cli.html.clone(),
        csv: cli.csv.clone(),
        csv_full_history: cli.csv_full_history,
    };
    if let Err(e) = report_files.check() {
        eprintln!("mqload: error: {e}");
        return EXIT_CONFIG;
    }
    if let Err(line) = crate::report::locust_json::check(cli) {
        eprintln!("mqload: error: {line}");
        return EXIT_CONFIG;
    }
    eprintln!("{}", plan_line(&plan));
    if let Err(e) = guard_run(cli, &plan) {
        eprintln!("mqload: error: {e}");
        return EXIT_CONFIG;
    }
    if cli.dry_run {
        eprintln!("mqload: --dry-run: the run would go ahead; nothing was connected");
        return 0;
    }
    let (responder, live_metrics) = match start_metrics(cli.prometheus) {
        Ok(started) => started.unzip(),
        Err(line) => {
            eprintln!("mqload: error: {line}");
            return EXIT_CONFIG;
        }
    };
    let (stats_tx, stats_rx) = crossbeam_channel::unbounded();
    let (stats_rx, locust_json) = crate::report::locust_json::tee(cli, &plan, stats_rx);
    // Before the reporter: a profile's stages are placed in time from it.
    let epoch = Epoch::now();
    let collector = reporter::spawn_reporter(
        plan.request_names.clone(),
        stats_rx,
        ReportOptions {
            csv_prefix: cli.csv.clone(),
            only_summary: cli.only_summary,
            print_interval: Duration::from_secs(2),
            target_users: plan.users,
            csv_layout: crate::report::csv::CsvLayout {
                full_history: cli.csv_full_history,
                users: plan.users,
                spawn_rate: plan.spawn_rate,
                stages: plan.stages.clone(),
            },
            status_line: std::io::stdout().is_terminal(),
            run_time: plan.run_time,
            subscribers: plan.subscribe.as_ref().map_or(0, |s| s.subscribers),
            live_metrics,
            stage_spans: plan
                .stages
                .as_ref()
                .map(|p| crate::report::stages::stage_spans(p, epoch.unix)),
        },
    );
    let start_unix = unix_now();
    let stop = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let timer = {
        let (stop, finished, run_time) = (Arc::clone(&stop), Arc::clone(&finished), plan.run_time);
        thread::spawn(move || engine::stop_after(run_time, &stop, &finished))
    };
    let reset = cli
        .reset_stats
        .then(|| reset_when_spawned(&plan, &epoch, &stats_tx, &finished));
    let errors = match &plan.stages {
        Some(profile) => engine::control::run_profile(&plan, &stats_tx, &stop, epoch, profile),
        None => engine::run(&plan, &stats_tx, &stop, epoch),
    };
    finished.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(stats_tx);
    let _ = timer.join();
    if let Some(reset) = reset {
        let _ = reset.join();
    }
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
    if let Some(responder) = responder {
        responder.stop();
    }
    if let Err(e) = locust_json.finish() {
        eprintln!("mqload: error: {e}");
        return 1;
    }
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
            .chain([crate::report::sections::ack_timing(
                &plan,
                &summary.final_stats,
            )])
            .chain(embedded.map(|e| crate::report::sections::built_in_broker(&e.broker)))
            .chain(plan.stages.iter().flat_map(|profile| {
                crate::report::stages::stage_sections(profile, &summary.stages)
            }))
            .collect(),
            find_limit: None,
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

/// `--prometheus ADDR`: the `/metrics` responder on its own small thread, and the end the
/// reporter feeds it through; a port that cannot be listened on is the user's to fix.
fn start_metrics(
    addr: Option<std::net::SocketAddr>,
) -> Result<Option<(MetricsResponder, SnapshotPublisher<LoadSnapshot>)>, String> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let (publisher, reader) = snapshot_handoff::<LoadSnapshot>();
    let responder = MetricsResponder::start(addr, reader, ResponderOptions::default())
        .map_err(|e| format!("--prometheus: {e}"))?;
    eprintln!(
        "mqload: serving live metrics at http://{}/metrics",
        responder.local_addr()
    );
    Ok(Some((responder, publisher)))
}

/// `--reset-stats`: once the last user has been started (user `i` starts at `i / spawn-rate`),
/// tells the collector to forget the request statistics, as Locust does when spawning
/// completes. Deltas cover about a second, so the cut is that precise.
fn reset_when_spawned(
    plan: &RunPlan,
    epoch: &Epoch,
    stats: &crossbeam_channel::Sender<crate::stats::StatsMsg>,
    finished: &Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    let last_start = plan.users.saturating_sub(1) as f64 / plan.spawn_rate;
    let at = Duration::try_from_secs_f64(last_start)
        .ok()
        .and_then(|d| epoch.instant.checked_add(d));
    let (stats, finished) = (stats.clone(), Arc::clone(finished));
    thread::spawn(move || {
        loop {
            if finished.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            let left = at.map_or(Duration::MAX, |at| {
                at.saturating_duration_since(std::time::Instant::now())
            });
            if left.is_zero() {
                break;
            }
            thread::sleep(left.min(Duration::from_millis(50)));
        }
        eprintln!("mqload: all users started: resetting the statistics (--reset-stats)");
        let _ = stats.send(crate::stats::StatsMsg::ResetRequests);
    })
}

/// When subscribers missed messages, one line saying how many: a script reading only the exit
/// code must not take a lossy run for a clean one.
fn lost_line(stats: &Snapshot) -> Option<String> {
    let sentence = stats.delivery.as_ref()?.loss_sentence()?;
    Some(format!(
        "mqload: {sentence} (see the Delivery line); exiting with --exit-code-on-error"
    ))
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
