//! Locust's four `--csv PREFIX` files, with Locust's exact headers, row order and Python's
//! csv dialect (minimal quoting, `\r\n` line ends), so existing dashboards keep reading them.
//!
//! Number formats (a deliberate choice): every time column, percentiles included, is
//! milliseconds with two decimals (`0.42`). Locust writes integer percentiles, which would turn
//! every sub-millisecond MQTT latency into `0`; Locust's own Min/Max/Average/Median columns
//! are already floats, so readers of its CSVs parse floats there anyway. Rates have six
//! decimals (Locust's history format), average content size two, counts are integers, and a
//! row without requests has `N/A` percentiles, as in Locust.

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::stats::{PERCENTILE_LABELS, RowStats, Snapshot};

/// Header of `PREFIX_stats.csv`.
pub const STATS_HEADER: &str = "Type,Name,Request Count,Failure Count,Median Response Time,\
Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,\
Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%";

/// Header of `PREFIX_stats_history.csv`.
pub const HISTORY_HEADER: &str = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,\
50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,\
Total Median Response Time,Total Average Response Time,Total Min Response Time,\
Total Max Response Time,Total Average Content Size";

/// Header of `PREFIX_failures.csv`.
pub const FAILURES_HEADER: &str = "Method,Name,Error,Occurrences,First Seen,Last Seen";

/// Header of `PREFIX_exceptions.csv` (mqload has no exceptions; the file keeps the set whole).
pub const EXCEPTIONS_HEADER: &str = "Count,Message,Traceback,Nodes";

const EOL: &str = "\r\n";

/// Why a CSV file could not be written.
#[derive(Debug)]
pub enum CsvError {
    /// The file could not be created (missing directory, no permission, ...).
    Create {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Writing or flushing the file failed (disk full, ...).
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CsvError::Create { path, source } => {
                write!(f, "cannot create CSV file {}: {source}", path.display())
            }
            CsvError::Write { path, source } => {
                write!(f, "cannot write CSV file {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for CsvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CsvError::Create { source, .. } | CsvError::Write { source, .. } => Some(source),
        }
    }
}

/// `PREFIX` + `suffix`, e.g. `out/run1` + `_stats.csv`.
pub fn csv_path(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The open CSV set of a run: the history file is appended to, the others rewritten whole.
#[derive(Debug)]
pub struct CsvFiles {
    prefix: PathBuf,
    history_path: PathBuf,
    history: BufWriter<File>,
}

impl CsvFiles {
    /// Creates all four files with their headers (as Locust does at start).
    pub fn create(prefix: &Path) -> Result<Self, CsvError> {
        let history_path = csv_path(prefix, "_stats_history.csv");
        let file = File::create(&history_path).map_err(|source| CsvError::Create {
            path: history_path.clone(),
            source,
        })?;
        let mut files = CsvFiles {
            prefix: prefix.to_owned(),
            history_path,
            history: BufWriter::new(file),
        };
        files.append_history(&format!("{HISTORY_HEADER}{EOL}"))?;
        let empty = Snapshot::default();
        files.rewrite(&empty)?;
        Ok(files)
    }

    /// Once a second while running: appends history rows, rewrites the other files.
    pub fn write_interval(&mut self, snapshot: &Snapshot) -> Result<(), CsvError> {
        self.append_history(&history_rows(snapshot))?;
        self.rewrite(snapshot)
    }

    /// At the end: a last history row set and the final totals.
    pub fn write_final(&mut self, snapshot: &Snapshot) -> Result<(), CsvError> {
        self.write_interval(snapshot)?;
        if let Some(delivery) = &snapshot.delivery {
            write_file(
                &csv_path(&self.prefix, "_delivery.csv"),
                &super::delivery::delivery_csv(delivery),
            )?;
        }
        Ok(())
    }

    fn append_history(&mut self, text: &str) -> Result<(), CsvError> {
        self.history
            .write_all(text.as_bytes())
            .and_then(|()| self.history.flush())
            .map_err(|source| CsvError::Write {
                path: self.history_path.clone(),
                source,
            })
    }

    fn rewrite(&self, snapshot: &Snapshot) -> Result<(), CsvError> {
        write_file(&csv_path(&self.prefix, "_stats.csv"), &stats_csv(snapshot))?;
        write_file(
            &csv_path(&self.prefix, "_failures.csv"),
            &failures_csv(snapshot),
        )?;
        write_file(
            &csv_path(&self.prefix, "_exceptions.csv"),
            &exceptions_csv(),
        )
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), CsvError> {
    let mut file = File::create(path).map_err(|source| CsvError::Create {
        path: path.to_owned(),
        source,
    })?;
    file.write_all(text.as_bytes())
        .map_err(|source| CsvError::Write {
            path: path.to_owned(),
            source,
        })
}

/// `PREFIX_stats.csv`: a row per name (sorted), then Aggregated; whole-run figures.
pub fn stats_csv(snapshot: &Snapshot) -> String {
    let mut out = format!("{STATS_HEADER}{EOL}");
    for row in snapshot.rows.iter().chain([&snapshot.total]) {
        let mut fields = vec![quote(&row.method), quote(&row.name)];
        fields.extend(totals_fields(row));
        fields.extend([rate(row.total_rps), rate(row.total_fail_per_sec)]);
        fields.extend(percentile_fields(row, Some(row.percentiles_us)));
        push_row(&mut out, &fields);
    }
    out
}

/// Rows appended to `PREFIX_stats_history.csv` at one moment: a row per name and Aggregated,
/// with current (last ~10 s) rates and percentiles and whole-run totals (Locust's
/// `--csv-full-history` layout).
pub fn history_rows(snapshot: &Snapshot) -> String {
    let timestamp = snapshot.timestamp_unix.max(0.0).floor() as u64;
    let mut out = String::new();
    for row in snapshot.rows.iter().chain([&snapshot.total]) {
        let mut fields = vec![
            timestamp.to_string(),
            snapshot.users_connected.to_string(),
            quote(&row.method),
            quote(&row.name),
            rate(row.current_rps),
            rate(row.current_fail_per_sec),
        ];
        // Locust writes 0 when a name had requests but none in the window.
        fields.extend(percentile_fields(
            row,
            Some(row.current_percentiles_us.unwrap_or([0; 11])),
        ));
        fields.extend(totals_fields(row));
        push_row(&mut out, &fields);
    }
    out
}

/// The whole-run columns both files share: count, failures, median, average, min, max, size.
fn totals_fields(row: &RowStats) -> [String; 7] {
    [
        row.num_requests.to_string(),
        row.num_failures.to_string(),
        csv_ms(row.median_us as f64),
        csv_ms(row.avg_us),
        csv_ms(row.min_us as f64),
        csv_ms(row.max_us as f64),
        format!("{:.2}", row.avg_content_length),
    ]
}

/// `PREFIX_failures.csv`: one row per (name, error), sorted.
pub fn failures_csv(snapshot: &Snapshot) -> String {
    let mut out = format!("{FAILURES_HEADER}{EOL}");
    for e in &snapshot.errors {
        push_row(
            &mut out,
            &[
                quote(&e.method),
                quote(&e.name),
                quote(&e.error),
                e.occurrences.to_string(),
                utc_timestamp(e.first_seen_unix),
                utc_timestamp(e.last_seen_unix),
            ],
        );
    }
    out
}

/// `PREFIX_exceptions.csv`: the header only.
pub fn exceptions_csv() -> String {
    format!("{EXCEPTIONS_HEADER}{EOL}")
}

fn percentile_fields(row: &RowStats, values: Option<[u64; 11]>) -> Vec<String> {
    match values {
        Some(v) if row.num_requests > 0 => v.iter().map(|us| csv_ms(*us as f64)).collect(),
        _ => vec!["N/A".to_owned(); PERCENTILE_LABELS.len()],
    }
}

fn push_row(out: &mut String, fields: &[String]) {
    out.push_str(&fields.join(","));
    out.push_str(EOL);
}

fn csv_ms(us: f64) -> String {
    format!("{:.2}", us / 1000.0)
}

fn rate(per_second: f64) -> String {
    format!("{per_second:.6}")
}

/// Python csv's minimal quoting: quote a field holding a comma, a quote or a line break,
/// doubling its quotes.
pub fn quote(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// Unix seconds as Locust's `%Y-%m-%dT%H:%M:%SZ` (UTC, whole seconds).
pub fn utc_timestamp(unix: f64) -> String {
    let secs = unix.max(0.0).floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Proleptic Gregorian date of `days` since 1970-01-01 (the "civil from days" algorithm:
/// count in 400-year eras starting in March, so leap days fall at the end of a year).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ErrorRow;

    fn sample() -> Snapshot {
        let publish = RowStats {
            method: "MQTT".to_owned(),
            name: "publish:1:a,\"b\"".to_owned(),
            kind: Some(crate::stats::RequestKind::Publish),
            num_requests: 4,
            num_failures: 1,
            avg_us: 1_250.5,
            min_us: 420,
            max_us: 3_000,
            median_us: 1_000,
            avg_content_length: 6_900.0,
            current_rps: 2.5,
            current_fail_per_sec: 0.25,
            total_rps: 2.0,
            total_fail_per_sec: 0.5,
            percentiles_us: [
                1_000, 1_000, 1_500, 1_500, 3_000, 3_000, 3_000, 3_000, 3_000, 3_000, 3_000,
            ],
            current_percentiles_us: Some([420; 11]),
        };
        let total = RowStats {
            method: String::new(),
            name: "Aggregated".to_owned(),
            ..publish.clone()
        };
        let idle = RowStats {
            method: "MQTT".to_owned(),
            name: "connect".to_owned(),
            ..RowStats::default()
        };
        Snapshot {
            timestamp_unix: 1_700_000_000.9,
            users_connected: 42,
            target_users: 50,
            rows: vec![idle, publish],
            total,
            errors: vec![ErrorRow {
                method: "MQTT".to_owned(),
                name: "publish:1:a,\"b\"".to_owned(),
                error: "timeout, no PUBACK".to_owned(),
                occurrences: 1,
                first_seen_unix: 1_700_000_000.5,
                last_seen_unix: 1_700_000_061.0,
            }],
            ..Snapshot::default()
        }
    }

    #[test]
    fn headers_are_locusts() {
        let labels = PERCENTILE_LABELS.join(",");
        assert_eq!(
            STATS_HEADER,
            format!(
                "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,\
                 Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,{labels}"
            )
        );
        assert_eq!(
            HISTORY_HEADER,
            format!(
                "Timestamp,User Count,Type,Name,Requests/s,Failures/s,{labels},Total Request Count,\
                 Total Failure Count,Total Median Response Time,Total Average Response Time,\
                 Total Min Response Time,Total Max Response Time,Total Average Content Size"
            )
        );
    }

    #[test]
    fn stats_csv_rows_quote_names_and_keep_ms_decimals() {
        let csv = stats_csv(&sample());
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], STATS_HEADER);
        assert_eq!(
            lines[1],
            "MQTT,connect,0,0,0.00,0.00,0.00,0.00,0.00,0.000000,0.000000,\
             N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A"
        );
        assert_eq!(
            lines[2],
            "MQTT,\"publish:1:a,\"\"b\"\"\",4,1,1.00,1.25,0.42,3.00,6900.00,2.000000,0.500000,\
             1.00,1.00,1.50,1.50,3.00,3.00,3.00,3.00,3.00,3.00,3.00"
        );
        assert!(lines[3].starts_with(",Aggregated,4,1,"), "{}", lines[3]);
        assert_eq!(lines[4], "", "file ends with a line break");
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn history_rows_carry_timestamp_users_and_current_figures() {
        let rows = history_rows(&sample());
        let lines: Vec<&str> = rows.split("\r\n").collect();
        assert_eq!(
            lines.len(),
            4,
            "connect, publish, Aggregated, then the final break"
        );
        assert_eq!(
            lines[0],
            "1700000000,42,MQTT,connect,0.000000,0.000000,\
             N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0,0,0.00,0.00,0.00,0.00,0.00"
        );
        assert_eq!(
            lines[1],
            "1700000000,42,MQTT,\"publish:1:a,\"\"b\"\"\",2.500000,0.250000,\
             0.42,0.42,0.42,0.42,0.42,0.42,0.42,0.42,0.42,0.42,0.42,4,1,1.00,1.25,0.42,3.00,6900.00"
        );
        assert!(
            lines[2].starts_with("1700000000,42,,Aggregated,2.500000,"),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn failures_csv_has_utc_first_and_last_seen() {
        assert_eq!(
            failures_csv(&sample()),
            "Method,Name,Error,Occurrences,First Seen,Last Seen\r\n\
             MQTT,\"publish:1:a,\"\"b\"\"\",\"timeout, no PUBACK\",1,\
             2023-11-14T22:13:20Z,2023-11-14T22:14:21Z\r\n"
        );
    }

    #[test]
    fn utc_timestamps_cross_leap_days_and_epoch() {
        assert_eq!(utc_timestamp(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_709_251_199.0), "2024-02-29T23:59:59Z");
        assert_eq!(utc_timestamp(-5.0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn quoting_is_minimal() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn files_are_written_under_the_prefix() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let prefix = dir.path().join("out");
        let mut files = CsvFiles::create(&prefix)?;
        let history_path = csv_path(&prefix, "_stats_history.csv");
        assert_eq!(
            std::fs::read_to_string(&history_path)?,
            format!("{HISTORY_HEADER}\r\n")
        );
        assert_eq!(
            std::fs::read_to_string(csv_path(&prefix, "_stats.csv"))?,
            format!(
                "{STATS_HEADER}\r\n,Aggregated,0,0,0.00,0.00,0.00,0.00,0.00,0.000000,0.000000,\
                 N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A\r\n"
            ),
            "an empty run still has its Aggregated row"
        );

        let snapshot = sample();
        files.write_interval(&snapshot)?;
        files.write_final(&snapshot)?;
        let history = std::fs::read_to_string(&history_path)?;
        assert_eq!(
            history.matches("\r\n").count(),
            1 + 2 * 3,
            "header + two row sets"
        );
        assert_eq!(
            std::fs::read_to_string(csv_path(&prefix, "_stats.csv"))?,
            stats_csv(&snapshot)
        );
        assert_eq!(
            std::fs::read_to_string(csv_path(&prefix, "_failures.csv"))?,
            failures_csv(&snapshot)
        );
        assert_eq!(
            std::fs::read_to_string(csv_path(&prefix, "_exceptions.csv"))?,
            "Count,Message,Traceback,Nodes\r\n"
        );
        Ok(())
    }

    #[test]
    fn unwritable_prefix_is_an_error_naming_the_path() {
        let err = CsvFiles::create(Path::new("/nonexistent-dir/for/mqload/run"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with(
                "cannot create CSV file /nonexistent-dir/for/mqload/run_stats_history.csv: "
            ),
            "{err}"
        );
    }
}
