//! One whole run as the binary performs it: plan, engine, collector, exit code.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::Duration;

use crate::cli::Cli;
use crate::engine::{self, Epoch};
use crate::plan::RunPlan;
use crate::stats::{self, ReportOptions, Snapshot};

/// Exit code of a configuration mistake.
pub const EXIT_CONFIG: u8 = 2;

/// Runs what the options say; returns the process exit code (0 clean, 1 failures, 2 config).
pub fn run(cli: &Cli) -> u8 {
    if let Some(file) = &cli.locustfile {
        eprintln!("mqload: ignoring -f {file}: mqload's engine replaces the locustfile");
    }
    let plan = match RunPlan::from_cli(cli) {
        Ok(plan) => Arc::new(plan),
        Err(e) => {
            eprintln!("mqload: error: {e}");
            return EXIT_CONFIG;
        }
    };
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
    let (stats_tx, stats_rx) = crossbeam_channel::unbounded();
    let collector = stats::spawn_collector(
        plan.request_names.clone(),
        stats_rx,
        ReportOptions {
            csv_prefix: cli.csv.clone(),
            only_summary: cli.only_summary,
            print_interval: Duration::from_secs(2),
            target_users: plan.users,
        },
    );
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
    if !errors.is_empty() {
        return 1;
    }
    if let Some(line) = never_connected(&summary.final_stats) {
        eprintln!("{line}");
    }
    if summary.total_failures > 0 {
        return u8::try_from(cli.exit_code_on_error).unwrap_or(1);
    }
    0
}

/// When no connection ever succeeded, one line with the first reason, so the fix is obvious
/// (a wrong port, an unknown CA, a refused certificate) without reading the error table.
fn never_connected(stats: &Snapshot) -> Option<String> {
    let connect = stats.rows.iter().find(|r| r.name == "connect")?;
    if connect.num_requests == 0 || connect.num_failures < connect.num_requests {
        return None;
    }
    let first = stats
        .errors
        .iter()
        .filter(|e| e.name == "connect")
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
