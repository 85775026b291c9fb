//! Locust's four `--csv PREFIX` files, with Locust's exact headers, row order, value formats
//! and Python's csv dialect (minimal quoting, `\r\n` line ends), so existing dashboards and
//! scripts parse them as they parse Locust's (Locust 2.47's `StatsCSV`, read line by line).
//!
//! Value formats, as Locust writes them:
//! - Median and the eleven percentile columns are integers of Locust's bucketed milliseconds
//!   (below 100 ms to the millisecond, then two significant digits, ties to even as Python's
//!   `round`). Locust keeps its median inside the exact [min, max], and then writes that
//!   min or max as a float: so does mqload. A row without requests has `N/A` percentiles.
//! - Average, Min, Max and Average Content Size are floats as Python prints them (`repr`:
//!   `12.0`, `0.4213333333333333`, `1e-05`); Min and Max are an integer `0` when zero or
//!   when the row has no timed request, Average Content Size `0` without requests.
//! - `Requests/s` and `Failures/s` are Python floats in `_stats.csv`, six decimals in
//!   `_stats_history.csv`.
//!
//! Sub-millisecond precision is in the JSON and HTML reports, not here.

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::stages::Profile;
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

/// What shapes the history file: Locust's `--csv-full-history`, and the spawn schedule that
/// gives its "User Count".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CsvLayout {
    /// `--csv-full-history`: a row per name before each Aggregated row, with the last ~10 s
    /// percentiles (Locust's meaning); without it one Aggregated row with whole-run ones.
    pub full_history: bool,
    /// Users the run starts.
    pub users: u64,
    /// Users started per second (0: all at once).
    pub spawn_rate: f64,
    /// `--stages`: "User Count" is the users the profile orders, and each history row ends
    /// with a `Stage` column (the segment's number, from 1). Without it the file is Locust's.
    pub stages: Option<Profile>,
}

impl CsvLayout {
    /// Users spawned `elapsed_secs` after the start, as Locust's `runner.user_count` counts
    /// them: user `i` starts at `i / spawn_rate`, whether or not it has connected yet.
    pub fn users_spawned(&self, elapsed_secs: f64) -> u64 {
        if let Some(profile) = &self.stages {
            let elapsed = std::time::Duration::from_secs_f64(elapsed_secs.max(0.0));
            return (profile.at(elapsed).users + 1e-6).floor() as u64;
        }
        if self.spawn_rate <= 0.0 || !self.spawn_rate.is_finite() {
            return self.users;
        }
        let started = (elapsed_secs.max(0.0) * self.spawn_rate).floor() + 1.0;
        (started.min(self.users as f64)) as u64
    }
}

/// The open CSV set of a run: the history file is appended to, the others rewritten whole.
#[derive(Debug)]
pub struct CsvFiles {
    prefix: PathBuf,
    history_path: PathBuf,
    history: BufWriter<File>,
    layout: CsvLayout,
    started: std::time::Instant,
}

impl CsvFiles {
    /// Creates all four files with their headers (as Locust does at start).
    pub fn create(prefix: &Path, layout: CsvLayout) -> Result<Self, CsvError> {
        let history_path = csv_path(prefix, "_stats_history.csv");
        let file = File::create(&history_path).map_err(|source| CsvError::Create {
            path: history_path.clone(),
            source,
        })?;
        let mut files = CsvFiles {
            prefix: prefix.to_owned(),
            history_path,
            history: BufWriter::new(file),
            layout,
            started: std::time::Instant::now(),
        };
        let stage_column = if files.layout.stages.is_some() {
            ",Stage"
        } else {
            ""
        };
        files.append_history(&format!("{HISTORY_HEADER}{stage_column}{EOL}"))?;
        let empty = Snapshot::default();
        files.rewrite(&empty)?;
        Ok(files)
    }

    /// Once a second while running: appends history rows, rewrites the other files.
    pub fn write_interval(&mut self, snapshot: &Snapshot) -> Result<(), CsvError> {
        let elapsed = self.started.elapsed();
        let users = self.layout.users_spawned(elapsed.as_secs_f64());
        let stage = self.layout.stages.as_ref().map(|p| p.stage_at(elapsed) + 1);
        let full = self.layout.full_history;
        self.append_history(&history_rows_in_stage(snapshot, users, full, stage))?;
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
        fields.extend([
            python_float(row.total_rps),
            python_float(row.total_fail_per_sec),
        ]);
        fields.extend(percentile_fields(row, &row.percentiles_us));
        push_row(&mut out, &fields);
    }
    out
}

/// Rows appended to `PREFIX_stats_history.csv` at one moment, `users` spawned. Locust's
/// default is one Aggregated row with whole-run percentiles; `full_history` adds a row per
/// name before it, and every row then has the last ~10 s percentiles (`0` when that window
/// is empty). Rates are always the last ~10 s ones; the Total columns whole-run.
pub fn history_rows(snapshot: &Snapshot, users: u64, full_history: bool) -> String {
    history_rows_in_stage(snapshot, users, full_history, None)
}

/// As [`history_rows`], each row ending with the `Stage` column when a profile runs.
pub fn history_rows_in_stage(
    snapshot: &Snapshot,
    users: u64,
    full_history: bool,
    stage: Option<usize>,
) -> String {
    let timestamp = snapshot.timestamp_unix.max(0.0).floor() as u64;
    let per_name: &[RowStats] = if full_history { &snapshot.rows } else { &[] };
    let mut out = String::new();
    for row in per_name.iter().chain([&snapshot.total]) {
        let mut fields = vec![
            timestamp.to_string(),
            users.to_string(),
            quote(&row.method),
            quote(&row.name),
            format!("{:.6}", row.current_rps),
            format!("{:.6}", row.current_fail_per_sec),
        ];
        let percentiles = if full_history {
            row.current_percentiles_us.unwrap_or([0; 11])
        } else {
            row.percentiles_us
        };
        fields.extend(percentile_fields(row, &percentiles));
        fields.extend(totals_fields(row));
        fields.extend(stage.map(|s| s.to_string()));
        push_row(&mut out, &fields);
    }
    out
}

/// The whole-run columns both files share: count, failures, median, average, min, max, size.
fn totals_fields(row: &RowStats) -> [String; 7] {
    [
        row.num_requests.to_string(),
        row.num_failures.to_string(),
        median_field(row),
        python_float(row.avg_us / 1000.0),
        zero_or_ms(row.min_us),
        zero_or_ms(row.max_us),
        if row.num_requests == 0 {
            "0".to_owned()
        } else {
            python_float(row.avg_content_length)
        },
    ]
}

/// Locust's `median_response_time`: `0` without timed requests, else the bucketed median
/// kept inside [min, max], where a clamped value is the exact min or max (a float).
fn median_field(row: &RowStats) -> String {
    if row.max_us == 0 {
        return "0".to_owned();
    }
    let median = locust_bucket_ms(row.median_us);
    let (min_ms, max_ms) = (row.min_us as f64 / 1000.0, row.max_us as f64 / 1000.0);
    if median as f64 > max_ms {
        python_float(max_ms)
    } else if (median as f64) < min_ms {
        python_float(min_ms)
    } else {
        median.to_string()
    }
}

/// Min and max as Locust writes them: an integer `0` when zero (Python's `min or 0`, and
/// `max` starting from the integer 0), else milliseconds as a Python float.
fn zero_or_ms(us: u64) -> String {
    if us == 0 {
        "0".to_owned()
    } else {
        python_float(us as f64 / 1000.0)
    }
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

/// The eleven percentile columns: `N/A` without requests, else bucketed whole milliseconds.
fn percentile_fields(row: &RowStats, values_us: &[u64; 11]) -> Vec<String> {
    if row.num_requests == 0 {
        return vec!["N/A".to_owned(); PERCENTILE_LABELS.len()];
    }
    values_us
        .iter()
        .map(|us| locust_bucket_ms(*us).to_string())
        .collect()
}

/// Locust's `bucket_response_time` of a time in microseconds (the one the Locust worker
/// reports with).
fn locust_bucket_ms(us: u64) -> u64 {
    crate::locust::stats::locust_bucket(us as f64 / 1_000.0)
}

/// `x` as Python's `repr(float)` writes it: the shortest digits that read back the same,
/// with `.0` on whole numbers and an exponent (`1e-05`, `1e+16`) below 1e-4 or from 1e16.
pub fn python_float(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".to_owned()
        } else if x > 0.0 {
            "inf".to_owned()
        } else {
            "-inf".to_owned()
        };
    }
    // Rust's `{:e}` gives the same shortest round-trip digits; only the layout differs.
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..16).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{rest}e{esign}{:02}", exponent.abs());
    }
    let point = exponent + 1;
    if point <= 0 {
        let zeros = "0".repeat(point.unsigned_abs() as usize);
        format!("{sign}0.{zeros}{digits}")
    } else {
        let point = point as usize;
        if digits.len() <= point {
            format!("{sign}{digits}{}.0", "0".repeat(point - digits.len()))
        } else {
            format!("{sign}{}.{}", &digits[..point], &digits[point..])
        }
    }
}

fn push_row(out: &mut String, fields: &[String]) {
    out.push_str(&fields.join(","));
    out.push_str(EOL);
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
    let secs = unix.max(0.0).floor() as u64;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = crate::unix_time::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
    fn stats_csv_rows_write_each_column_as_locust_does() {
        let csv = stats_csv(&sample());
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], STATS_HEADER);
        assert_eq!(
            lines[1],
            "MQTT,connect,0,0,0,0.0,0,0,0,0.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A"
        );
        assert_eq!(
            lines[2],
            "MQTT,\"publish:1:a,\"\"b\"\"\",4,1,1,1.2505,0.42,3.0,6900.0,2.0,0.5,\
             1,1,2,2,3,3,3,3,3,3,3"
        );
        assert!(lines[3].starts_with(",Aggregated,4,1,"), "{}", lines[3]);
        assert_eq!(lines[4], "", "file ends with a line break");
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn default_history_is_one_aggregated_row_with_whole_run_percentiles() {
        let rows = history_rows(&sample(), 50, false);
        assert_eq!(
            rows,
            "1700000000,50,,Aggregated,2.500000,0.250000,1,1,2,2,3,3,3,3,3,3,3,\
             4,1,1,1.2505,0.42,3.0,6900.0\r\n"
        );
    }

    #[test]
    fn a_profile_adds_the_stage_column_and_counts_its_ordered_users() {
        let rows = history_rows_in_stage(&sample(), 50, false, Some(3));
        assert_eq!(
            rows,
            history_rows(&sample(), 50, false).replace("\r\n", ",3\r\n")
        );
        let stages = crate::stages::parse("10s:100u,10s:100u").expect("parses");
        let layout = CsvLayout {
            stages: Some(Profile::new(stages, 1.0, None)),
            ..CsvLayout::default()
        };
        assert_eq!(layout.users_spawned(2.5), 25);
        assert_eq!(layout.users_spawned(15.0), 100);
        let dir = tempfile::tempdir().expect("tempdir");
        let prefix = dir.path().join("s");
        let mut files = CsvFiles::create(&prefix, layout).expect("created");
        files.write_interval(&sample()).expect("written");
        let history =
            std::fs::read_to_string(csv_path(&prefix, "_stats_history.csv")).expect("history");
        let lines: Vec<&str> = history.split("\r\n").collect();
        assert_eq!(lines[0], format!("{HISTORY_HEADER},Stage"));
        assert!(lines[1].ends_with(",1"), "{}", lines[1]);
    }

    #[test]
    fn full_history_adds_a_row_per_name_with_current_percentiles() {
        let rows = history_rows(&sample(), 42, true);
        let lines: Vec<&str> = rows.split("\r\n").collect();
        assert_eq!(
            lines.len(),
            4,
            "connect, publish, Aggregated, then the final break"
        );
        assert_eq!(
            lines[0],
            "1700000000,42,MQTT,connect,0.000000,0.000000,\
             N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0,0,0,0.0,0,0,0"
        );
        assert_eq!(
            lines[1],
            "1700000000,42,MQTT,\"publish:1:a,\"\"b\"\"\",2.500000,0.250000,\
             0,0,0,0,0,0,0,0,0,0,0,4,1,1,1.2505,0.42,3.0,6900.0"
        );
        assert!(
            lines[2].starts_with("1700000000,42,,Aggregated,2.500000,0.250000,0,"),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn a_row_of_untimed_failures_reads_as_locust_writes_it() {
        // Locust's row for requests logged without a response time: counts, then zeros (the
        // entry's `min_or_zero` gives 0 there, see stats::entry's tests), no N/A.
        let row = RowStats {
            method: "MQTT".to_owned(),
            name: "publish:1:t".to_owned(),
            num_requests: 3,
            num_failures: 3,
            ..RowStats::default()
        };
        let snapshot = Snapshot {
            rows: vec![row],
            ..Snapshot::default()
        };
        let csv = stats_csv(&snapshot);
        assert_eq!(
            csv.split("\r\n").nth(1),
            Some("MQTT,publish:1:t,3,3,0,0.0,0,0,0.0,0.0,0.0,0,0,0,0,0,0,0,0,0,0,0")
        );
    }

    #[test]
    fn user_count_is_users_spawned_by_the_schedule() {
        let layout = CsvLayout {
            stages: None,
            full_history: false,
            users: 10,
            spawn_rate: 2.0,
        };
        assert_eq!(layout.users_spawned(0.0), 1, "user 0 starts at once");
        assert_eq!(layout.users_spawned(1.9), 4);
        assert_eq!(layout.users_spawned(60.0), 10);
        let at_once = CsvLayout {
            spawn_rate: 0.0,
            ..layout
        };
        assert_eq!(at_once.users_spawned(0.0), 10);
    }

    #[test]
    fn python_float_matches_pythons_repr() {
        // Expected texts are what CPython's repr() prints for the same doubles.
        for (x, text) in [
            (0.0, "0.0"),
            (12.0, "12.0"),
            (0.42, "0.42"),
            (1.2505, "1.2505"),
            (1.0 / 3.0, "0.3333333333333333"),
            (6900.0, "6900.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000012345, "1.2345e-05"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (123456.789, "123456.789"),
            (-2.5, "-2.5"),
        ] {
            assert_eq!(python_float(x), text, "{x}");
        }
    }

    #[test]
    fn buckets_round_as_locust_does() {
        // Locust: 147 ms -> 150, 3432 -> 3400, 58760 -> 59000; halves go to even.
        for (us, ms) in [
            (0, 0),
            (420, 0),
            (500, 0),
            (1_500, 2),
            (2_500, 2),
            (99_400, 99),
            (99_600, 100),
            (147_000, 150),
            (125_000, 120),
            (3_432_000, 3_400),
            (58_760_000, 59_000),
        ] {
            assert_eq!(locust_bucket_ms(us), ms, "{us} us");
        }
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
        let layout = CsvLayout {
            stages: None,
            full_history: true,
            users: 50,
            spawn_rate: 10.0,
        };
        let mut files = CsvFiles::create(&prefix, layout)?;
        let history_path = csv_path(&prefix, "_stats_history.csv");
        assert_eq!(
            std::fs::read_to_string(&history_path)?,
            format!("{HISTORY_HEADER}\r\n")
        );
        assert_eq!(
            std::fs::read_to_string(csv_path(&prefix, "_stats.csv"))?,
            format!(
                "{STATS_HEADER}\r\n,Aggregated,0,0,0,0.0,0,0,0,0.0,0.0,\
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
        let err = CsvFiles::create(
            Path::new("/nonexistent-dir/for/mqload/run"),
            CsvLayout::default(),
        )
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
