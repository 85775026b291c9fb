//! `mqload find-limit`: runs the capacity search's levels with the engine (a fresh run per
//! level, at the level's msg/s over the same users), prints each level and the verdict with
//! its evidence, and writes the JSON and HTML reports with one row per level.

mod level_run;

use std::sync::Arc;
use std::time::Duration;

use crate::broker::Embedded;
use crate::cli::Cli;
use crate::duration::parse_duration;
use crate::find_limit::{Judgement, Level, Limits, Search, SearchConfig, Step, Verdict};
use crate::find_limit::{breach_text, verdict_sentence};
use crate::guard::thousands;
use crate::plan::RunPlan;
use crate::report::find_limit::FindLimitReport;
use crate::report::json::{ReportData, RunParameters, StopReason};
use crate::report::output::ReportFiles;
use level_run::{LevelRun, run_level};

use super::EXIT_CONFIG;

/// Clap ids of the search's own options.
const SEARCH_OPTIONS: [&str; 5] = [
    "slo_p99",
    "slo_failures",
    "level_time",
    "max_rate",
    "precision",
];
/// Shortest `--level-time`: under a few seconds a p99 is a handful of messages.
const MIN_LEVEL_TIME: Duration = Duration::from_secs(1);

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

/// The search's settings from the options, or the line naming the fix.
fn settings(cli: &Cli, plan: &RunPlan) -> Result<(SearchConfig, Duration), String> {
    let refused = [
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
    ];
    if let Some((_, what)) = refused.iter().find(|(set, _)| *set) {
        return Err(format!("find-limit does not take {what}: drop it"));
    }
    if cli.aws || crate::guard::is_aws_iot_host(&plan.host) {
        return Err(
            "find-limit raises the load until the broker breaks, which AWS IoT Core \
             bills and throttles per account: test a broker of your own"
                .to_owned(),
        );
    }
    if plan.users == 0 || cli.connect_only {
        return Err("find-limit raises the publish rate: give publishers (-u 1 or more) and drop --connect-only".to_owned());
    }
    let p99 = parse_duration(&cli.slo_p99)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("--slo-p99 {:?}: give a duration such as 20ms", cli.slo_p99))?;
    let level_time = parse_duration(&cli.level_time)
        .filter(|d| *d >= MIN_LEVEL_TIME)
        .ok_or_else(|| {
            format!(
                "--level-time {:?}: give 1s or more, such as 10s",
                cli.level_time
            )
        })?;
    if !(0.0..=100.0).contains(&cli.slo_failures) {
        return Err(format!(
            "--slo-failures {}: give a percentage from 0 to 100",
            cli.slo_failures
        ));
    }
    if !(cli.precision > 0.0 && cli.precision <= 100.0) {
        return Err(format!(
            "--precision {}: give a percentage above 0, such as 5",
            cli.precision
        ));
    }
    let start = plan.users as f64 * plan.throughput;
    if let Some(max) = cli.max_rate
        && !(max.is_finite() && max >= start)
    {
        return Err(format!(
            "--max-rate {max}: give at least the starting load, {start} msg/s (-u x --throughput)"
        ));
    }
    let config = SearchConfig {
        start_per_s: start,
        max_per_s: cli.max_rate,
        precision: cli.precision / 100.0,
        limits: Limits {
            p99_us: u64::try_from(p99.as_micros()).unwrap_or(u64::MAX),
            failure_percent: cli.slo_failures,
        },
    };
    Ok((config, level_time))
}

/// Runs the search; the exit code is 0 when it found the limit (or held `--max-rate`), 1
/// when it could not (mqload the bottleneck, nothing held, unsteady, interrupted, an error).
pub(super) fn run(cli: &Cli, plan: &RunPlan, embedded: Option<&Embedded>) -> u8 {
    let (config, level_time) = match settings(cli, plan) {
        Ok(settings) => settings,
        Err(line) => {
            eprintln!("mqload: error: {line}");
            return EXIT_CONFIG;
        }
    };
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
    crate::signals::install();
    let mut search = Search::new(config);
    let mut runs: Vec<LevelRun> = Vec::new();
    let verdict = loop {
        let rate = match search.step() {
            Step::Done(verdict) => break verdict,
            Step::Run(rate) => rate,
        };
        let run = run_level(&Arc::new(plan_at(plan, rate)), rate, level_time);
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
            eprintln!("{}", level_line(search.levels().len(), level));
        }
        runs.push(run);
    };
    println!(
        "mqload: find-limit: {}",
        verdict_sentence(&verdict, search.levels())
    );
    let report = FindLimitReport {
        levels: search.levels(),
        verdict,
        limits: config.limits,
    };
    if !write_reports(&files, plan, &runs, &report, embedded) {
        return 1;
    }
    match verdict {
        Verdict::Found { .. } | Verdict::HeldMax { .. } => 0,
        _ => 1,
    }
}

/// The search's plan in two lines at most: target, start, level time, limits.
fn print_header(plan: &RunPlan, config: &SearchConfig, level_time: Duration) {
    eprintln!(
        "mqload: find-limit: {} users on {} threads -> {}:{} ({}), QoS {}, run id {}; from {} \
         msg/s, {} s a level; a level holds while publish p99 <= {} ms, failures <= {} %, \
         nothing is lost and at most 0.1 % is held back",
        plan.users,
        plan.threads,
        plan.host,
        plan.addrs.first().map_or(0, |a| a.port()),
        if plan.tls.is_some() {
            "TLS"
        } else {
            "plain TCP"
        },
        plan.qos as u8,
        plan.run_id,
        thousands(config.start_per_s.round() as i128),
        level_time.as_secs_f64(),
        config.limits.p99_us as f64 / 1000.0,
        config.limits.failure_percent,
    );
    if plan.qos == crate::mqtt::QoS::AtMostOnce {
        eprintln!(
            "mqload: find-limit: note: at QoS 0 the broker acks nothing, so only held-back \
             messages, failures and (with --subscribers) loss can show its limit; --qos 1 \
             also times its acks"
        );
    }
}

/// The plan of one level: the same users at `rate` msg/s over all of them.
fn plan_at(plan: &RunPlan, rate: f64) -> RunPlan {
    let mut level = plan.clone();
    level.throughput = rate / plan.users as f64;
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
fn level_line(number: usize, level: &Level) -> String {
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
        Judgement::MqloadBound { send_lag_p99_us } => format!(
            "mqload's own limit: send-lag p99 {:.1} ms",
            *send_lag_p99_us as f64 / 1000.0
        ),
    };
    format!(
        "mqload: find-limit: level {number}{}: {} msg/s for {:.1} s: {outcome} (acked {} msg/s, \
         p50 {:.1} ms, p99 {:.1} ms, failures {:.2} %, held back {}, send-lag p99 {:.1} ms)",
        if level.confirmation {
            " (confirming)"
        } else {
            ""
        },
        thousands(r.offered_per_s.round() as i128),
        r.seconds,
        thousands(r.acked_per_s.round() as i128),
        r.p50_us as f64 / 1000.0,
        r.p99_us as f64 / 1000.0,
        r.failure_percent(),
        r.held_back,
        r.send_lag_p99_us as f64 / 1000.0,
    )
}

/// Writes `--report-json`/`--html`: the answer level's steady window (the last level when
/// there is no answer) as the run (its tables, series and times), and every level as the
/// find-limit rows. False on an error.
fn write_reports(
    files: &ReportFiles,
    plan: &RunPlan,
    runs: &[LevelRun],
    report: &FindLimitReport,
    embedded: Option<&Embedded>,
) -> bool {
    let shown = report.verdict.held().or(runs.len().checked_sub(1));
    let (Some(run), true) = (shown.and_then(|i| runs.get(i)), files.any()) else {
        return true;
    };
    let mut parameters = RunParameters::from_plan(&plan_at(plan, run.result.offered_per_s));
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
