//! Locust's console tables (stats, response time percentiles, error report) plus mqload's
//! send-lag verdict, laid out as Locust lays them out so Locust users read them at a glance.
//!
//! One deliberate difference: times are milliseconds with two decimals (`0.42`), since MQTT
//! latencies are often below a millisecond. To keep Locust's column widths and still leave a
//! space between numbers, slower times drop decimals: `999.99`, `1234.6`, `12346`.

use std::io::Write;

use crate::stats::{LagStats, PERCENTILE_LABELS, RowStats, SEND_LAG_BOTTLENECK_US, Snapshot};

/// Width of the Type column (Locust's `STATS_TYPE_WIDTH`).
const TYPE_WIDTH: usize = 8;
/// Locust's name width when stdout is not a terminal.
pub const DEFAULT_NAME_WIDTH: usize = 80;
/// Narrowest name width used, whatever the terminal.
const MIN_NAME_WIDTH: usize = 20;

/// Locust's `STATS_NAME_WIDTH`: the terminal width minus 80, at most 80; 80 when stdout is
/// not a terminal.
pub fn name_width() -> usize {
    terminal_columns().map_or(DEFAULT_NAME_WIDTH, |cols| {
        cols.saturating_sub(80)
            .clamp(MIN_NAME_WIDTH, DEFAULT_NAME_WIDTH)
    })
}

fn terminal_columns() -> Option<usize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the valid, exclusively borrowed `size`.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// Microseconds as milliseconds in at most six characters: two decimals below 1 s, one below
/// 10 s, none above.
pub fn ms(us: u64) -> String {
    ms_f64(us as f64)
}

/// Like [`ms`] for a fractional number of microseconds (averages).
pub fn ms_f64(us: f64) -> String {
    let ms = us / 1000.0;
    if ms < 999.995 {
        format!("{ms:.2}")
    } else if ms < 9_999.95 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// Writes `text` to stdout; a closed stdout (a pager quit early) is not worth a panic.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Pushes `line` without trailing spaces (Locust pads the last column; we don't).
fn push_line(out: &mut String, line: &str) {
    out.push_str(line.trim_end());
    out.push('\n');
}

/// The stats table: one row per name, then Aggregated. `current` shows the last ~10 s rates
/// (as while running); otherwise whole-run rates (as in the final table). Ends with a blank line.
pub fn stats_table(snapshot: &Snapshot, current: bool, name_width: usize) -> String {
    let nw = name_width.max(MIN_NAME_WIDTH) - TYPE_WIDTH + 4;
    let mut out = String::new();
    push_line(
        &mut out,
        &format!(
            "{:<TYPE_WIDTH$} {:<nw$} {:>7} {:>12} |{:>7} {:>7} {:>7}{:>7} | {:>7} {:>11}",
            "Type", "Name", "# reqs", "# fails", "Avg", "Min", "Max", "Med", "req/s", "failures/s"
        ),
    );
    let separator = format!(
        "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
        "-".repeat(TYPE_WIDTH),
        "-".repeat(nw),
        "-".repeat(7),
        "-".repeat(13),
        "-".repeat(7),
        "-".repeat(7),
        "-".repeat(7),
        "-".repeat(7),
        "-".repeat(8),
        "-".repeat(11),
    );
    push_line(&mut out, &separator);
    for row in &snapshot.rows {
        push_line(&mut out, &stats_row(row, current, nw));
    }
    push_line(&mut out, &separator);
    push_line(&mut out, &stats_row(&snapshot.total, current, nw));
    out.push('\n');
    out
}

fn stats_row(row: &RowStats, current: bool, nw: usize) -> String {
    let (rps, fps) = if current {
        (row.current_rps, row.current_fail_per_sec)
    } else {
        (row.total_rps, row.total_fail_per_sec)
    };
    let method = if row.method.is_empty() {
        String::new()
    } else {
        format!("{} ", row.method)
    };
    let fails = format!("{}({:.2}%)", row.num_failures, row.fail_ratio() * 100.0);
    format!(
        "{:<TYPE_WIDTH$} {:<nw$} {:>7} {:>12} |{:>7} {:>7} {:>7}{:>7} | {:>7.2} {:>11.2}",
        method,
        row.name,
        row.num_requests,
        fails,
        ms_f64(row.avg_us),
        ms(row.min_us),
        ms(row.max_us),
        ms(row.median_us),
        rps,
        fps,
    )
}

/// "Response time percentiles (approximated)": whole-run percentiles per name and Aggregated.
pub fn percentile_table(snapshot: &Snapshot, name_width: usize) -> String {
    let nw = name_width.max(MIN_NAME_WIDTH);
    let mut out = String::new();
    push_line(&mut out, "Response time percentiles (approximated)");
    let mut header = format!(
        "{:<TYPE_WIDTH$} {:<nw$} {:>8}",
        "Type", "Name", PERCENTILE_LABELS[0]
    );
    for label in &PERCENTILE_LABELS[1..] {
        header.push_str(&format!(" {label:>6}"));
    }
    header.push_str(&format!(" {:>6}", "# reqs"));
    push_line(&mut out, &header);
    let separator = format!(
        "{}|{}|{}|{}",
        "-".repeat(TYPE_WIDTH),
        "-".repeat(nw),
        "-".repeat(8),
        vec!["-".repeat(6); PERCENTILE_LABELS.len()].join("|"),
    );
    push_line(&mut out, &separator);
    for row in snapshot.rows.iter().filter(|r| r.num_requests > 0) {
        push_line(&mut out, &percentile_row(row, nw));
    }
    push_line(&mut out, &separator);
    if snapshot.total.num_requests > 0 {
        push_line(&mut out, &percentile_row(&snapshot.total, nw));
    }
    out.push('\n');
    out
}

fn percentile_row(row: &RowStats, nw: usize) -> String {
    let mut line = format!(
        "{:<TYPE_WIDTH$} {:<nw$} {:>8}",
        row.method,
        row.name,
        ms(row.percentiles_us[0])
    );
    for p in &row.percentiles_us[1..] {
        line.push_str(&format!(" {:>6}", ms(*p)));
    }
    line.push_str(&format!(" {:>6}", row.num_requests));
    line
}

/// "Error report": occurrences and `TYPE name: error` per distinct failure; empty without
/// failures (Locust prints nothing then).
pub fn error_report(snapshot: &Snapshot, name_width: usize) -> String {
    if snapshot.errors.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    push_line(&mut out, "Error report");
    push_line(
        &mut out,
        &format!("{:<18} {:<100}", "# occurrences", "Error"),
    );
    let separator = format!(
        "{}|{}",
        "-".repeat(18),
        "-".repeat(80 + name_width.max(MIN_NAME_WIDTH) - 19)
    );
    push_line(&mut out, &separator);
    for e in &snapshot.errors {
        let text = format!("{} {}: {}", e.method, e.name, e.error);
        push_line(&mut out, &format!("{:<18} {:<100}", e.occurrences, text));
    }
    push_line(&mut out, &separator);
    out.push('\n');
    out
}

/// mqload's own timeliness: p50/p99/max send lag, and a verdict when mqload was the bottleneck.
pub fn send_lag_report(lag: &LagStats) -> String {
    let mut out = String::new();
    if lag.held_back > 0 {
        out.push_str(&format!(
            "Held back by the broker: {} messages waited for a full socket or in-flight window, \
             up to {} ms (the broker, not mqload, set the pace)\n",
            lag.held_back,
            ms(lag.held_back_max_us)
        ));
    }
    if lag.count == 0 {
        out.push_str("Send lag (due -> written): no messages sent on their own schedule\n");
        return out;
    }
    out.push_str(&format!(
        "Send lag (due -> written): p50 {} ms, p99 {} ms, max {} ms over {} messages\n",
        ms(lag.p50_us),
        ms(lag.p99_us),
        ms(lag.max_us),
        lag.count
    ));
    if lag.is_bottleneck() {
        out.push_str(&format!(
            "mqload was the bottleneck: send-lag p99 {} ms > {} ms; response times include \
             mqload's own delay. Its CPUs were short: use more threads or hosts, fewer users per \
             host, or keep a local broker off the cores mqload uses\n",
            ms(lag.p99_us),
            SEND_LAG_BOTTLENECK_US / 1000
        ));
    }
    out
}

/// Everything printed when the run ends: whole-run stats table, percentiles, error report,
/// send lag, and the connections line (connects, reconnects, failed attempts, drops).
pub fn final_report(snapshot: &Snapshot, name_width: usize) -> String {
    let mut out = stats_table(snapshot, false, name_width);
    out.push_str(&percentile_table(snapshot, name_width));
    out.push_str(&error_report(snapshot, name_width));
    out.push_str(&send_lag_report(&snapshot.send_lag));
    if !snapshot.connections.is_empty() {
        out.push_str(&format!("{}\n", snapshot.connections));
    }
    if let Some(delivery) = &snapshot.delivery {
        out.push_str(&super::delivery::delivery_report(delivery));
    }
    if let Some(line) = snapshot.connects.report_line() {
        out.push_str(&line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ErrorRow;

    fn row(name: &str, reqs: u64, fails: u64, us: [u64; 4], rates: [f64; 4]) -> RowStats {
        let [avg, min, max, med] = us;
        RowStats {
            method: "MQTT".to_owned(),
            name: name.to_owned(),
            kind: Some(crate::stats::RequestKind::of_name(name)),
            num_requests: reqs,
            num_failures: fails,
            avg_us: avg as f64,
            min_us: min,
            max_us: max,
            median_us: med,
            avg_content_length: 0.0,
            current_rps: rates[0],
            current_fail_per_sec: rates[1],
            total_rps: rates[2],
            total_fail_per_sec: rates[3],
            percentiles_us: [420, 450, 500, 510, 600, 700, 800, 900, 1_000, 20_000, max],
            current_percentiles_us: None,
        }
    }

    fn sample() -> Snapshot {
        let mut total = row(
            "Aggregated",
            12_355,
            3,
            [420, 0, 1_234_567, 420],
            [618.25, 0.15, 600.0, 0.1],
        );
        total.method = String::new();
        Snapshot {
            rows: vec![
                row("connect", 10, 0, [0, 0, 0, 0], [1.0, 0.0, 0.5, 0.0]),
                row(
                    "publish:1:locust/test/topic",
                    12_345,
                    3,
                    [420, 120, 1_234_567, 420],
                    [617.25, 0.15, 599.5, 0.1],
                ),
            ],
            total,
            errors: vec![ErrorRow {
                method: "MQTT".to_owned(),
                name: "connect".to_owned(),
                error: "CONNACK refused: not authorized (5)".to_owned(),
                occurrences: 3,
                first_seen_unix: 0.0,
                last_seen_unix: 0.0,
            }],
            ..Snapshot::default()
        }
    }

    #[test]
    fn milliseconds_keep_two_decimals_and_fit_six_characters() {
        assert_eq!(ms(420), "0.42");
        assert_eq!(ms(0), "0.00");
        assert_eq!(ms(999_994), "999.99");
        assert_eq!(ms(999_996), "1000.0");
        assert_eq!(ms(1_234_567), "1234.6");
        assert_eq!(ms(12_345_678), "12346");
        assert_eq!(ms_f64(1_500.4), "1.50");
    }

    #[test]
    fn stats_table_has_locust_layout_with_ms() {
        let table = stats_table(&sample(), true, 40);
        let lines: Vec<&str> = table.lines().collect();
        let expected_header = concat!(
            "Type     Name                                  # reqs      # fails |",
            "    Avg     Min     Max    Med |   req/s  failures/s"
        );
        assert_eq!(lines[0], expected_header);
        assert_eq!(
            lines[1],
            concat!(
                "--------|------------------------------------|-------|-------------|",
                "-------|-------|-------|-------|--------|-----------"
            )
        );
        assert_eq!(
            lines[2],
            concat!(
                "MQTT     connect                                   10     0(0.00%) |",
                "   0.00    0.00    0.00   0.00 |    1.00        0.00"
            )
        );
        assert_eq!(
            lines[3],
            concat!(
                "MQTT     publish:1:locust/test/topic            12345     3(0.02%) |",
                "   0.42    0.12  1234.6   0.42 |  617.25        0.15"
            )
        );
        assert_eq!(lines[4], lines[1]);
        assert_eq!(
            lines[5],
            concat!(
                "         Aggregated                             12355     3(0.02%) |",
                "   0.42    0.00  1234.6   0.42 |  618.25        0.15"
            )
        );
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[6], "", "a blank line follows the table");
        // Every row is as wide as the separator, so the pipes line up.
        assert!(
            lines[..6].iter().all(|l| l.len() == lines[1].len()),
            "{table}"
        );
    }

    #[test]
    fn final_table_shows_whole_run_rates() {
        let table = stats_table(&sample(), false, 40);
        let publish = table.lines().nth(3).unwrap_or_default();
        assert!(publish.ends_with("|  599.50        0.10"), "{publish}");
    }

    #[test]
    fn percentile_table_lines_up_under_its_separator() {
        let table = percentile_table(&sample(), 40);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "Response time percentiles (approximated)");
        assert_eq!(
            lines[1],
            concat!(
                "Type     Name                                          50%    66%    75%    80%",
                "    90%    95%    98%    99%  99.9% 99.99%   100% # reqs"
            )
        );
        assert_eq!(
            lines[4],
            concat!(
                "MQTT     publish:1:locust/test/topic                  0.42   0.45   0.50   0.51",
                "   0.60   0.70   0.80   0.90   1.00  20.00 1234.6  12345"
            )
        );
        assert_eq!(lines[6].split_whitespace().next(), Some("Aggregated"));
        assert!(
            lines[1..=6].iter().all(|l| l.len() == lines[2].len()),
            "{table}"
        );
    }

    #[test]
    fn error_report_lists_type_name_and_text() {
        let report = error_report(&sample(), 40);
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines[0], "Error report");
        assert_eq!(lines[1], "# occurrences      Error");
        assert_eq!(lines[2], format!("{}|{}", "-".repeat(18), "-".repeat(101)));
        assert_eq!(
            lines[3],
            "3                  MQTT connect: CONNACK refused: not authorized (5)"
        );
        assert_eq!(lines[4], lines[2]);
        assert!(error_report(&Snapshot::default(), 40).is_empty());
    }

    #[test]
    fn send_lag_names_mqload_as_bottleneck_only_above_10_ms() {
        let mut lag = LagStats {
            count: 100,
            p50_us: 50,
            p99_us: 10_000,
            max_us: 12_500,
            ..LagStats::default()
        };
        let ok = send_lag_report(&lag);
        assert_eq!(
            ok,
            "Send lag (due -> written): p50 0.05 ms, p99 10.00 ms, max 12.50 ms over 100 messages\n"
        );
        lag.p99_us = 10_010;
        let slow = send_lag_report(&lag);
        assert!(
            slow.contains("\nmqload was the bottleneck: send-lag p99 10.01 ms > 10 ms"),
            "{slow}"
        );
        assert!(send_lag_report(&LagStats::default()).contains("no messages sent"));
    }

    #[test]
    fn messages_held_back_by_the_broker_are_named_apart_from_mqloads_lag() {
        let lag = LagStats {
            count: 10,
            p50_us: 50,
            p99_us: 90,
            max_us: 100,
            held_back: 7,
            held_back_max_us: 2_500_000,
        };
        let report = send_lag_report(&lag);
        assert!(
            report.starts_with(
                "Held back by the broker: 7 messages waited for a full socket or in-flight window, up to 2500.0 ms"
            ),
            "{report}"
        );
        assert!(!report.contains("mqload was the bottleneck"), "{report}");
    }

    #[test]
    fn final_report_puts_the_sections_in_locust_order() {
        let report = final_report(&sample(), 40);
        let at = |needle: &str| report.find(needle).unwrap_or(usize::MAX);
        assert!(at("Type     Name") < at("Response time percentiles"));
        assert!(at("Response time percentiles") < at("Error report"));
        assert!(at("Error report") < at("Send lag"));
        assert!(at("Send lag") < report.len());
    }
}
