//! The live status line: one line rewritten in place between tables (only when stdout is a
//! terminal), cleared before anything else is printed.

use std::io::Write;
use std::time::Duration;

use crate::stats::{RequestKind, SeriesPoint, Snapshot};

/// Publish requests per second in one time-series point (`kinds`: each name's kind).
pub fn publish_rate(point: &SeriesPoint, kinds: &[RequestKind]) -> f64 {
    let n: u64 = kinds
        .iter()
        .zip(&point.requests)
        .filter(|(kind, _)| **kind == RequestKind::Publish)
        .map(|(_, n)| n)
        .sum();
    n as f64 / f64::from(point.seconds.max(1))
}

/// Carriage return plus "erase the whole line" (ANSI), so a shorter line leaves no tail.
const CLEAR: &str = "\r\x1b[2K";

/// `h:mm:ss` under a day's worth of hours, `m:ss` under an hour.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, s % 3600 / 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// The text of the line: elapsed / run time, users connected of target, messages/s (`rate`:
/// the newest closed second's, else the publish rows' current rate), failures (total and
/// current rate).
pub fn format_status(
    elapsed: Duration,
    run_time: Option<Duration>,
    snapshot: &Snapshot,
    rate: Option<f64>,
) -> String {
    let of = run_time.map_or_else(|| "until Ctrl-C".to_owned(), clock);
    // fold from +0.0: an empty f64 sum is -0.0, which would print as "-0.0".
    let msgs = rate.unwrap_or_else(|| {
        snapshot
            .rows
            .iter()
            .filter(|r| r.kind == Some(RequestKind::Publish))
            .fold(0.0, |a, r| a + r.current_rps)
    });
    format!(
        "[mqload] {} / {} | users {} of {} | {:.1} msg/s | failures {} ({:.1}/s)",
        clock(elapsed),
        of,
        snapshot.users_connected,
        snapshot.target_users,
        msgs,
        snapshot.total.num_failures,
        snapshot.total.current_fail_per_sec,
    )
}

/// Draws and clears the line; does nothing at all when disabled (stdout not a terminal).
#[derive(Debug)]
pub struct StatusLine {
    enabled: bool,
    shown: bool,
    run_time: Option<Duration>,
}

impl StatusLine {
    /// `enabled` should be `std::io::stdout().is_terminal()`.
    pub fn new(enabled: bool, run_time: Option<Duration>) -> Self {
        StatusLine {
            enabled,
            shown: false,
            run_time,
        }
    }

    /// Redraws the line in place.
    pub fn show(&mut self, elapsed: Duration, snapshot: &Snapshot, rate: Option<f64>) {
        if !self.enabled {
            return;
        }
        let text = format_status(elapsed, self.run_time, snapshot, rate);
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{CLEAR}{text}");
        let _ = out.flush();
        self.shown = true;
    }

    /// Erases the line (before a table is printed, and at the end).
    pub fn clear(&mut self) {
        if !self.shown {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{CLEAR}");
        let _ = out.flush();
        self.shown = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::RowStats;

    fn snapshot() -> Snapshot {
        let mut s = Snapshot {
            users_connected: 7,
            target_users: 10,
            ..Snapshot::default()
        };
        for (name, rps) in [
            ("connect", 2.0),
            ("publish:1:t", 95.25),
            ("publish:1:u", 4.0),
        ] {
            s.rows.push(RowStats {
                name: name.into(),
                kind: Some(RequestKind::of_name(name)),
                current_rps: rps,
                ..RowStats::default()
            });
        }
        s.total.num_failures = 3;
        s.total.current_fail_per_sec = 0.5;
        s
    }

    #[test]
    fn line_shows_elapsed_users_messages_and_failures() {
        let line = format_status(
            Duration::from_secs(72),
            Some(Duration::from_secs(3600 + 5)),
            &snapshot(),
            None,
        );
        assert_eq!(
            line,
            "[mqload] 1:12 / 1:00:05 | users 7 of 10 | 99.2 msg/s | failures 3 (0.5/s)"
        );
    }

    #[test]
    fn without_run_time_the_line_says_how_it_ends() {
        let line = format_status(Duration::from_secs(5), None, &Snapshot::default(), None);
        assert!(
            line.starts_with("[mqload] 0:05 / until Ctrl-C | users 0 of 0 | 0.0 msg/s"),
            "{line}"
        );
        assert!(!line.contains('\n') && !line.contains('\r'));
    }

    #[test]
    fn the_newest_second_gives_the_live_rate() {
        let kinds = [RequestKind::Connect, RequestKind::Publish];
        let point = SeriesPoint {
            seconds: 2,
            requests: vec![7, 300],
            ..SeriesPoint::default()
        };
        let rate = publish_rate(&point, &kinds);
        assert_eq!(rate, 150.0);
        let line = format_status(Duration::ZERO, None, &snapshot(), Some(rate));
        assert!(line.contains("| 150.0 msg/s |"), "{line}");
    }

    #[test]
    fn disabled_line_never_marks_itself_shown() {
        let mut s = StatusLine::new(false, None);
        s.show(Duration::from_secs(1), &snapshot(), Some(1.0));
        assert!(!s.shown);
    }
}
