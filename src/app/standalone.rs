//! A standalone run of a validated plan: report checks, live metrics, engine, collector,
//! reports and the exit code.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::Sender;

use super::{EXIT_CONFIG, guard_run, plan_line};
use crate::broker::Embedded;
use crate::cli::Cli;
use crate::engine::{self, Epoch, WorkerError};
use crate::guard;
use crate::metrics::{
    LoadSnapshot, MetricsResponder, ResponderOptions, SnapshotPublisher, snapshot_handoff,
};
use crate::plan::RunPlan;
use crate::report::json::{ReportData, RunParameters, StopReason};
use crate::report::output::ReportFiles;
use crate::reporter::{self, ReportOptions, RunSummary};
use crate::stats::{RequestKind, Snapshot, StatsMsg};
use crate::unix_time::unix_now;

/// A report section: its key and its JSON.
type Section = (String, serde_json::Value);

/// Runs a validated plan: engine, collector, exit code.
pub(super) fn run_plan(cli: &Cli, plan: Arc<RunPlan>, embedded: Option<&Embedded>) -> u8 {
    let report_files = match check_outputs(cli, &plan) {
        Ok(files) => files,
        Err(line) => {
            eprintln!("mqload: error: {line}");
            return EXIT_CONFIG;
        }
    };
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
        report_options(cli, &plan, &epoch, live_metrics),
    );
    let start_unix = unix_now();
    let errors = drive_engine(cli, &plan, stats_tx, epoch);
    for e in &errors {
        eprintln!("mqload: error: {e}");
    }
    let Ok(summary) = collector.join() else {
        eprintln!("mqload: error: the statistics collector panicked (a bug in mqload)");
        return 1;
    };
    if let Some(responder) = responder {
        responder.stop();
    }
    if let Err(e) = locust_json.finish() {
        eprintln!("mqload: error: {e}");
        return 1;
    }
    if report_files.any() {
        let sections = report_sections(cli, &plan, &summary, embedded);
        if !write_reports(&report_files, &plan, &summary, start_unix, sections) {
            return 1;
        }
    }
    if !errors.is_empty() {
        return 1;
    }
    exit_code(cli, &summary)
}

/// Checks the report files and Locust JSON options, prints the plan and the offered load, and
/// refuses a run the guard stops; the line names the fix.
fn check_outputs(cli: &Cli, plan: &RunPlan) -> Result<ReportFiles, String> {
    let report_files = ReportFiles {
        json: cli.report_json.clone(),
        html: cli.html.clone(),
        csv: cli.csv.clone(),
        csv_full_history: cli.csv_full_history,
    };
    report_files.check().map_err(|e| e.to_string())?;
    crate::report::locust_json::check(cli)?;
    eprintln!("{}", plan_line(plan));
    guard_run(cli, plan).map_err(|e| e.to_string())?;
    Ok(report_files)
}

/// What the collector prints, writes and publishes while the run goes.
fn report_options(
    cli: &Cli,
    plan: &RunPlan,
    epoch: &Epoch,
    live_metrics: Option<SnapshotPublisher<LoadSnapshot>>,
) -> ReportOptions {
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
    }
}

/// Runs the engine (a constant load or the profile) until `--run-time` or Ctrl-C, with the
/// stop timer and `--reset-stats` beside it; returns the workers' errors once all have ended
/// and the statistics channel is closed.
fn drive_engine(
    cli: &Cli,
    plan: &Arc<RunPlan>,
    stats_tx: Sender<StatsMsg>,
    epoch: Epoch,
) -> Vec<WorkerError> {
    let stop = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let timer = {
        let (stop, finished, run_time) = (Arc::clone(&stop), Arc::clone(&finished), plan.run_time);
        thread::spawn(move || engine::stop_after(run_time, &stop, &finished))
    };
    let reset = cli
        .reset_stats
        .then(|| reset_when_spawned(plan, &epoch, &stats_tx, &finished));
    let errors = match &plan.stages {
        Some(profile) => engine::control::run_profile(plan, &stats_tx, &stop, epoch, profile),
        None => engine::run(plan, &stats_tx, &stop, epoch),
    };
    finished.store(true, Ordering::Relaxed);
    drop(stats_tx);
    let _ = timer.join();
    if let Some(reset) = reset {
        let _ = reset.join();
    }
    errors
}

/// The report's extra sections: guard (cost, quotas), ack timing, the built-in broker and
/// the stages.
fn report_sections(
    cli: &Cli,
    plan: &RunPlan,
    summary: &RunSummary,
    embedded: Option<&Embedded>,
) -> Vec<Section> {
    crate::report::sections::guard_sections(
        plan,
        &summary.final_stats,
        cli.aws || guard::is_aws_iot_host(&plan.host),
        cli.price_per_million,
    )
    .into_iter()
    .chain([crate::report::sections::ack_timing(
        plan,
        &summary.final_stats,
    )])
    .chain(embedded.map(|e| crate::report::sections::built_in_broker(&e.broker)))
    .chain(
        plan.stages
            .iter()
            .flat_map(|profile| crate::report::stages::stage_sections(profile, &summary.stages)),
    )
    .collect()
}

/// Writes the JSON, HTML and CSV reports asked for; false (each failure printed) when one
/// could not be written.
fn write_reports(
    report_files: &ReportFiles,
    plan: &RunPlan,
    summary: &RunSummary,
    start_unix: f64,
    sections: Vec<Section>,
) -> bool {
    let data = ReportData {
        parameters: RunParameters::from_plan(plan),
        stats: &summary.final_stats,
        series: &summary.series,
        start_unix,
        end_unix: unix_now(),
        stopped_by: if crate::signals::received() {
            StopReason::Signal
        } else {
            StopReason::RunTime
        },
        sections,
        find_limit: None,
    };
    let failed = report_files.write(&data);
    for e in &failed {
        eprintln!("mqload: error: {e}");
    }
    failed.is_empty()
}

/// After a run without worker errors: `--exit-code-on-error` when a request failed or a
/// subscriber missed messages (each said in one line), else 0.
fn exit_code(cli: &Cli, summary: &RunSummary) -> u8 {
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
