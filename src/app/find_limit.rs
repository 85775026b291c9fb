//! `mqload find-limit`: runs the capacity search's levels with the engine (a fresh run per
//! level, at the level's msg/s over the same users), prints each level and the verdict with
//! its evidence, and writes the JSON and HTML reports with one row per level.

mod level_run;
mod settings;

use std::sync::Arc;
use std::time::Duration;

use crate::broker::Embedded;
use crate::cli::Cli;
use crate::find_limit::{Judgement, Level, Search, SearchConfig, SearchMode, Step, Verdict};
use crate::find_limit::{breach_text, mqload_bound_text, verdict_sentence};
use crate::guard::thousands;
use crate::plan::RunPlan;
use crate::report::find_limit::FindLimitReport;
use crate::report::json::{ReportData, RunParameters, StopReason};
use crate::report::output::ReportFiles;
use level_run::{LevelRun, run_level};
use settings::{CONNECT_LEAD, CONNECT_TAIL, Settings, settings};

use super::EXIT_CONFIG;

/// Clap ids of the search's own options.
const SEARCH_OPTIONS: [&str; 7] = [
    "search",
    "slo_p99",
    "slo_connect_p99",
    "slo_failures",
    "level_time",
    "max_rate",
    "precision",
];

/// For a run that is not `find-limit`: the line refusing a search option it was given.
pub(super) fn misplaced_option(cli: &Cli) -> Option<String> {
    let id = SEARCH_OPTIONS
        .iter()
        .find(|id| cli.given.iter().any(|g| g == *id))?;
    Some(format!(
        "--{} is an option of the capacity search: run `mqload find-limit [options]`, or drop it",
        id.replace('_', "-")
    ))
}

/// Runs the search; the exit code is 0 when it found the limit (or held `--max-rate`), 1
/// when it could not (mqload the bottleneck, nothing held, unsteady, interrupted, an error).
pub(super) fn run(cli: &Cli, plan: &RunPlan, embedded: Option<&Embedded>) -> u8 {
    let settings = match settings(cli, plan, embedded.is_some()) {
        Ok(settings) => settings,
        Err(mistake) => {
            eprintln!("mqload: error: {mistake}");
            return EXIT_CONFIG;
        }
    };
    let Settings {
        config,
        level_time,
        open_file_cap,
    } = settings;
    let mode = config.limits.mode;
    let files = ReportFiles {
        json: cli.report_json.clone(),
        html: cli.html.clone(),
        csv: None,
        csv_full_history: false,
    };
    if let Err(e) = files.check() {
        eprintln!("mqload: error: {e}");
        return EXIT_CONFIG;
    }
    print_header(plan, &config, level_time);
    if let Some((cap, limit)) = open_file_cap {
        eprintln!(
            "mqload: find-limit: at most {} connections/s: each level holds its connections \
             open, and the open-file limit is {limit}",
            thousands(cap as i128)
        );
    }
    crate::signals::install();
    let mut search = Search::new(config);
    let mut runs: Vec<LevelRun> = Vec::new();
    let verdict = loop {
        let rate = match search.step() {
            Step::Done(verdict) => break verdict,
            Step::Run(rate) => rate,
        };
        let level = Arc::new(plan_at(plan, mode, rate, level_time));
        let run = run_level(&level, mode, rate, level_time, CONNECT_LEAD);
        if let Some(line) = level_error(&run) {
            eprintln!("mqload: error: {line}");
            return 1;
        }
        if run.interrupted {
            search.interrupt();
            continue;
        }
        search.record(run.result);
        if let Some(level) = search.levels().last() {
            eprintln!("{}", level_line(search.levels().len(), level, mode));
        }
        runs.push(run);
    };
    println!(
        "mqload: find-limit: {}",
        verdict_sentence(&verdict, search.levels(), mode)
    );
    let report = FindLimitReport {
        levels: search.levels(),
        verdict,
        limits: config.limits,
    };
    let shown = Shown {
        plan,
        level_time,
        runs: &runs,
    };
    if !write_reports(&files, &shown, &report, embedded) {
        return 1;
    }
    match verdict {
        Verdict::Found { .. } | Verdict::HeldMax { .. } => 0,
        _ => 1,
    }
}

/// The search's plan in two lines at most: target, start, level time, limits.
fn print_header(plan: &RunPlan, config: &SearchConfig, level_time: Duration) {
    let target = format!(
        "{}:{} ({})",
        plan.host,
        plan.addrs.first().map_or(0, |a| a.port()),
        if plan.tls.is_some() {
            "TLS"
        } else {
            "plain TCP"
        },
    );
    let limits = &config.limits;
    let start = thousands(config.start_per_s.round() as i128);
    let (p99_ms, level_s) = (limits.p99_us as f64 / 1000.0, level_time.as_secs_f64());
    if limits.mode == SearchMode::Connects {
        eprintln!(
            "mqload: find-limit: new connections on {} threads -> {target}, run id {}; from \
             {start} connections/s, {level_s} s a level (after 1 s), each connection held to \
             the level's end; a level holds while connect p99 <= {p99_ms} ms, failures <= {} \
             %, and at most 2 % of its connects go unanswered",
            plan.threads, plan.run_id, limits.failure_percent,
        );
        return;
    }
    eprintln!(
        "mqload: find-limit: {} users on {} threads -> {target}, QoS {}, run id {}; from {start} \
         msg/s, {level_s} s a level; a level holds while publish p99 <= {p99_ms} ms, failures \
         <= {} %, nothing is lost and at most 0.1 % is held back",
        plan.users, plan.threads, plan.qos as u8, plan.run_id, limits.failure_percent,
    );
    if plan.qos == crate::mqtt::QoS::AtMostOnce {
        eprintln!(
            "mqload: find-limit: note: at QoS 0 the broker acks nothing, so only held-back \
             messages, failures and (with --subscribers) loss can show its limit; --qos 1 \
             also times its acks"
        );
    }
}

/// The plan of one level. Raising msg/s: the same users at `rate` msg/s over all of them.
/// Raising connects: `rate` new connections a second, open-loop (user `i` connects at
/// `i / rate` whatever the broker answered), each held to the level's end, for the whole
/// level (lead, window and tail), with no `--max-connecting` queue inside mqload.
fn plan_at(plan: &RunPlan, mode: SearchMode, rate: f64, level_time: Duration) -> RunPlan {
    let mut level = plan.clone();
    match mode {
        SearchMode::Messages => level.throughput = rate / plan.users as f64,
        SearchMode::Connects => {
            let span = (CONNECT_LEAD + level_time + CONNECT_TAIL).as_secs_f64();
            level.users = (rate * span).ceil() as u64;
            level.spawn_rate = rate;
            level.scale.connect_only = true;
            level.scale.max_connecting = 0;
            level.scale.lifetime = None;
        }
    }
    level
}

/// Why the search cannot go on after this level, if it cannot.
fn level_error(run: &LevelRun) -> Option<String> {
    if !run.worker_errors.is_empty() {
        return Some(run.worker_errors.join("; "));
    }
    if run.connects == 0 && !run.interrupted {
        return Some(format!(
            "no connection to the broker succeeded; first error: {}",
            run.first_connect_error
                .as_deref()
                .unwrap_or("none reported")
        ));
    }
    None
}

/// One line per level: rate, outcome, and the figures behind it.
fn level_line(number: usize, level: &Level, mode: SearchMode) -> String {
    let r = &level.result;
    let outcome = match &level.judgement {
        Judgement::Held => "held".to_owned(),
        Judgement::Broke(breaches) => format!(
            "broke: {}",
            breaches
                .iter()
                .map(breach_text)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => format!(
            "mqload's own limit: {}",
            mqload_bound_text(other).unwrap_or_default()
        ),
    };
    let figures = match mode {
        SearchMode::Messages => format!(
            "acked {} msg/s, p50 {:.1} ms, p99 {:.1} ms, failures {:.2} %, held back {}, \
             send-lag p99 {:.1} ms",
            thousands(r.acked_per_s.round() as i128),
            r.p50_us as f64 / 1000.0,
            r.p99_us as f64 / 1000.0,
            r.failure_percent(),
            r.held_back,
            r.send_lag_p99_us as f64 / 1000.0,
        ),
        SearchMode::Connects => format!(
            "connected {} connections/s, connect p50 {:.1} ms, p99 {:.1} ms, failures {:.2} \
             %, unanswered {}, not started by mqload {} of {}",
            thousands(r.acked_per_s.round() as i128),
            r.p50_us as f64 / 1000.0,
            r.p99_us as f64 / 1000.0,
            r.failure_percent(),
            r.unanswered,
            r.not_started,
            r.due_in_level,
        ),
    };
    format!(
        "mqload: find-limit: level {number}{}: {} {} for {:.1} s: {outcome} ({figures})",
        if level.confirmation {
            " (confirming)"
        } else {
            ""
        },
        thousands(r.offered_per_s.round() as i128),
        mode.unit(),
        r.seconds,
    )
}

/// What the report shows of the search's runs.
struct Shown<'a> {
    plan: &'a RunPlan,
    level_time: Duration,
    runs: &'a [LevelRun],
}

/// Writes `--report-json`/`--html`: the answer level's steady window (the last level when
/// there is no answer) as the run (its tables, series and times), and every level as the
/// find-limit rows. False on an error.
fn write_reports(
    files: &ReportFiles,
    shown: &Shown,
    report: &FindLimitReport,
    embedded: Option<&Embedded>,
) -> bool {
    let runs = shown.runs;
    let answer = report.verdict.held().or(runs.len().checked_sub(1));
    let (Some(run), true) = (answer.and_then(|i| runs.get(i)), files.any()) else {
        return true;
    };
    let level = plan_at(
        shown.plan,
        report.limits.mode,
        run.result.offered_per_s,
        shown.level_time,
    );
    let mut parameters = RunParameters::from_plan(&level);
    parameters.run_time_s = Some(run.result.seconds);
    let data = ReportData {
        parameters,
        stats: &run.steady,
        series: &run.series,
        start_unix: run.window_unix.0,
        end_unix: run.window_unix.1,
        stopped_by: if crate::signals::received() {
            StopReason::Signal
        } else {
            StopReason::RunTime
        },
        sections: embedded
            .map(|e| crate::report::sections::built_in_broker(&e.broker))
            .into_iter()
            .collect(),
        find_limit: Some(*report),
    };
    let failed = files.write(&data);
    for e in &failed {
        eprintln!("mqload: error: {e}");
    }
    failed.is_empty()
}
