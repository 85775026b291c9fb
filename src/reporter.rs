//! The reporting thread: drains the workers' stats deltas into a [`Collector`] and, on its own
//! schedule, hands snapshots to the report writers (console table, CSV history, status line).
//!
//! It sits above both `stats` and `report`, so neither has to know the other's loop: `stats`
//! returns data, `report` formats it, and this module decides when.

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::metrics::{LoadSnapshot, SnapshotPublisher};
use crate::report;
use crate::stats::{Collector, Snapshot, StageFigures, StageSpans, StatsMsg, TimeSeries};

mod live;
use live::LiveMetrics;

/// Locust writes a history row every second.
const HISTORY_INTERVAL: Duration = Duration::from_secs(1);
/// The live status line (when stdout is a terminal) is redrawn this often.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest console interval accepted, so a zero option cannot spin the thread.
const MIN_PRINT_INTERVAL: Duration = Duration::from_millis(100);

/// How and where the reporting thread reports.
#[derive(Debug)]
pub struct ReportOptions {
    /// `--csv PREFIX`: write Locust's four CSV files.
    pub csv_prefix: Option<PathBuf>,
    /// `--only-summary`: no periodic tables, only the final one.
    pub only_summary: bool,
    /// Time between console tables (Locust: 2 s).
    pub print_interval: Duration,
    /// Target number of users, for the summary.
    pub target_users: u64,
    /// `--csv-full-history` and the spawn schedule behind the history's "User Count".
    pub csv_layout: report::csv::CsvLayout,
    /// Redraw a live status line between tables (only when stdout is a terminal).
    pub status_line: bool,
    /// The planned run time, for the status line's "elapsed / run time".
    pub run_time: Option<Duration>,
    /// Subscriber connections (`--subscribers`); 0 leaves the delivery line out.
    pub subscribers: u64,
    /// `--prometheus`: where to hand live snapshots for `/metrics`.
    pub live_metrics: Option<SnapshotPublisher<LoadSnapshot>>,
    /// `--stages`: where the stages lie in time, for per-stage figures.
    pub stage_spans: Option<StageSpans>,
}

/// The end of a run, as the exit code and later reports need it.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// All requests, failures included.
    pub total_requests: u64,
    /// Failed requests.
    pub total_failures: u64,
    /// 99th percentile of send lag in microseconds.
    pub send_lag_p99_us: u64,
    /// Everything the final report showed, per name and Aggregated (for JSON/HTML reports).
    pub final_stats: Snapshot,
    /// One point per second over the run (downsampled on long runs), for JSON/HTML reports.
    pub series: TimeSeries,
    /// `--stages`: each stage's figures, in profile order (empty without).
    pub stages: Vec<StageFigures>,
}

/// Starts the reporting thread: it merges deltas, prints a table every `print_interval`, and
/// when every sender is dropped prints the final report, writes the CSVs and returns.
///
/// # Panics
/// When the OS cannot start a thread, as [`std::thread::spawn`] does.
pub fn spawn_reporter(
    names: Vec<String>,
    rx: Receiver<StatsMsg>,
    options: ReportOptions,
) -> JoinHandle<RunSummary> {
    std::thread::Builder::new()
        .name("mqload-stats".to_owned())
        .spawn(move || run(names, rx, options))
        .expect("the OS could not start the statistics thread")
}

fn run(names: Vec<String>, rx: Receiver<StatsMsg>, options: ReportOptions) -> RunSummary {
    let mut live = options
        .live_metrics
        .map(|publisher| LiveMetrics::new(publisher, &options.csv_layout));
    let mut collector = Collector::new(names, options.target_users);
    collector.subscribers = options.subscribers;
    if let Some(spans) = options.stage_spans {
        collector.track_stages(spans);
    }
    let mut csv = options.csv_prefix.as_deref().and_then(|prefix| {
        report::csv::CsvFiles::create(prefix, options.csv_layout)
            .map_err(report_csv_error)
            .ok()
    });
    let print_interval = options.print_interval.max(MIN_PRINT_INTERVAL);
    let name_width = report::console::name_width();
    let started = Instant::now();
    let mut next_print = (!options.only_summary).then(|| started + print_interval);
    let mut next_history = csv.is_some().then(|| started + HISTORY_INTERVAL);
    let mut status = report::status::StatusLine::new(options.status_line, options.run_time);
    let mut next_status = options.status_line.then(|| started + STATUS_INTERVAL);
    loop {
        let deadline = [next_print, next_history, next_status]
            .into_iter()
            .flatten()
            .min();
        let received = match deadline {
            Some(d) => rx.recv_deadline(d),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(StatsMsg::Delta(delta)) => collector.merge(delta),
            Ok(StatsMsg::ResetRequests) => collector.reset_requests(),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now = Instant::now();
        // After a burst of deltas (one per thread each second), not on a clock of its own.
        if let Some(live) = live.as_mut().filter(|_| rx.is_empty()) {
            live.publish(&collector, now, false);
        }
        if let Some(due) = next_print.filter(|due| *due <= now) {
            status.clear();
            report::console::print(&report::console::stats_table(
                &collector.snapshot(),
                true,
                name_width,
            ));
            next_print = Some(next_due(due, print_interval, now));
        }
        if let (Some(due), Some(files)) = (next_history.filter(|due| *due <= now), csv.as_mut()) {
            if let Err(e) = files.write_interval(&collector.snapshot()) {
                report_csv_error(e);
            }
            next_history = Some(next_due(due, HISTORY_INTERVAL, now));
        }
        if let Some(due) = next_status.filter(|due| *due <= now) {
            let rate = collector
                .latest_point()
                .map(|(point, kinds)| report::status::publish_rate(point, kinds));
            status.show(now.duration_since(started), &collector.snapshot(), rate);
            next_status = Some(next_due(due, STATUS_INTERVAL, now));
        }
    }
    status.clear();
    if let Some(live) = live.as_mut() {
        live.publish(&collector, Instant::now(), true);
    }
    let last = collector.snapshot();
    report::console::print(&report::console::final_report(&last, name_width));
    if let Some(files) = csv.as_mut()
        && let Err(e) = files.write_final(&last)
    {
        report_csv_error(e);
    }
    let (series, stages) = collector.finish();
    RunSummary {
        total_requests: last.total.num_requests,
        total_failures: last.total.num_failures,
        send_lag_p99_us: last.send_lag.p99_us,
        final_stats: last,
        series,
        stages,
    }
}

/// The next tick after `due`, skipping ticks missed while busy rather than bunching them.
fn next_due(due: Instant, interval: Duration, now: Instant) -> Instant {
    let next = due + interval;
    if next <= now { now + interval } else { next }
}

fn report_csv_error(e: report::csv::CsvError) {
    eprintln!("mqload: {e}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{NAMES, two_thread_deltas};

    /// A collector writing CSVs under `prefix` and printing only its final report.
    fn spawn_quiet_collector(
        prefix: &std::path::Path,
        target_users: u64,
    ) -> (
        crossbeam_channel::Sender<StatsMsg>,
        std::thread::JoinHandle<RunSummary>,
    ) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = spawn_reporter(
            NAMES.iter().map(|s| s.to_string()).collect(),
            rx,
            ReportOptions {
                csv_prefix: Some(prefix.to_path_buf()),
                only_summary: true,
                print_interval: Duration::from_secs(2),
                status_line: false,
                run_time: None,
                target_users,
                csv_layout: report::csv::CsvLayout {
                    full_history: true,
                    users: target_users,
                    spawn_rate: 0.0,
                    stages: None,
                },
                subscribers: 0,
                live_metrics: None,
                stage_spans: None,
            },
        );
        (tx, handle)
    }

    #[test]
    fn collector_thread_reports_and_writes_csvs_when_senders_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let prefix = dir.path().join("run");
        let (tx, handle) = spawn_quiet_collector(&prefix, 10);
        let (a, b) = two_thread_deltas();
        let tx2 = tx.clone();
        tx.send(StatsMsg::Delta(a)).expect("collector alive");
        tx2.send(StatsMsg::Delta(b)).expect("collector alive");
        drop(tx);
        drop(tx2);
        let summary = handle.join().expect("collector thread");

        assert_eq!(summary.total_requests, 1002);
        assert_eq!(summary.total_failures, 2);
        assert_eq!(summary.send_lag_p99_us, 20_000);
        assert_eq!(summary.final_stats.rows.len(), 2);

        let read = |suffix: &str| {
            std::fs::read_to_string(report::csv::csv_path(&prefix, suffix)).expect("csv written")
        };
        let stats = read("_stats.csv");
        let lines: Vec<&str> = stats.split("\r\n").collect();
        assert_eq!(lines[0], report::csv::STATS_HEADER);
        assert!(lines[1].starts_with("MQTT,connect,2,1,"), "{}", lines[1]);
        assert!(
            lines[2].starts_with("MQTT,publish:1:t,1000,1,"),
            "{}",
            lines[2]
        );
        assert!(lines[3].starts_with(",Aggregated,1002,2,"), "{}", lines[3]);
        let history = read("_stats_history.csv");
        let history: Vec<&str> = history.split("\r\n").collect();
        assert_eq!(history[0], report::csv::HISTORY_HEADER);
        assert!(
            history[1].contains(",10,MQTT,connect,"),
            "users spawned: {}",
            history[1]
        );
        assert!(history[3].contains(",10,,Aggregated,"), "{}", history[3]);
        let failures = read("_failures.csv");
        assert!(
            failures.contains("MQTT,publish:1:t,timeout,1,"),
            "{failures}"
        );
        assert_eq!(read("_exceptions.csv"), "Count,Message,Traceback,Nodes\r\n");
    }

    #[test]
    fn missed_ticks_are_skipped_not_bunched() {
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        assert_eq!(next_due(t0, second, t0), t0 + second);
        assert_eq!(next_due(t0, second, t0 + 5 * second), t0 + 6 * second);
    }

    #[test]
    fn history_gets_a_row_set_every_second_while_running() {
        let dir = tempfile::tempdir().expect("tempdir");
        let prefix = dir.path().join("h");
        let history_path = report::csv::csv_path(&prefix, "_stats_history.csv");
        let aggregated_rows = || {
            std::fs::read_to_string(&history_path)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(",Aggregated,"))
                .count()
        };
        let spawned = Instant::now();
        let (tx, handle) = spawn_quiet_collector(&prefix, 1);
        let (a, _) = two_thread_deltas();
        tx.send(StatsMsg::Delta(a)).expect("collector alive");
        // The file is flushed at every row set: wait (however loaded the machine) for the first
        // one, written while the sender is still alive, so it is an interval row set, not the
        // final one.
        let deadline = spawned + Duration::from_secs(30);
        let mut while_running = aggregated_rows();
        while while_running == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            while_running = aggregated_rows();
        }
        let seen_at = spawned.elapsed();
        assert!(while_running >= 1, "no history row set within 30 s");
        assert!(
            seen_at >= HISTORY_INTERVAL,
            "the first row set is due {HISTORY_INTERVAL:?} after the start, seen at {seen_at:?}"
        );
        drop(tx);
        let summary = handle.join().expect("collector thread");
        assert_eq!(summary.total_requests, 501);
        // The end adds exactly one row set to what was written while running. How many interval
        // row sets came between our look and the disconnect depends on scheduling, so the
        // count is bounded by the seconds that passed, not pinned.
        let interval_sets_max = spawned.elapsed().as_secs() as usize;
        let total = aggregated_rows();
        let history = std::fs::read_to_string(&history_path).expect("history written");
        assert!(
            (while_running + 1..=interval_sets_max + 1).contains(&total),
            "{while_running} row set(s) while running, at most {interval_sets_max} interval ones, \
             then one at the end; got {total}:\n{history}"
        );
        // Every row set is complete: one row per name that has requests, and Aggregated.
        let rows = history.lines().skip(1).count();
        assert_eq!(
            rows,
            total * 3,
            "connect, publish:1:t, Aggregated:\n{history}"
        );
    }
}
