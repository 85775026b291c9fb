//! mqload's `--csv` files against real Locust's, column by column: a small locustfile (MQTT
//! 3.1.1 over a plain socket, timed as mqload times it) runs in the pinned Locust
//! (`target/locust-venv`) against the same mosquitto as mqload, both with Locust's default
//! history and with `--csv-full-history`. The files must have the same headers, Locust's row
//! names, and in every cell the same kind of value written the same way: an integer, a float
//! as Python's `repr` prints it, a rate with six decimals, `N/A` or empty.
//!
//! Three columns hold an integer or a float depending on the data, in Locust's own files too
//! (its history shows `0` and `0.0546729997950024` in one Min column): Min and Max are the
//! integer `0` when zero, and the Median is a bucketed integer unless it was kept inside
//! [min, max], where it is that min or max. Those cells are checked against that rule on both
//! sides rather than against each other.
//!
//! Under `CI=true` a missing Locust or mosquitto is a failure; elsewhere these tests skip.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Broker, Pki, broker_args, in_ci, mqload_command, repo_root, run_with_timeout};
use mqload::report::csv::python_float;

/// The locustfile both Locust runs use.
const LOCUSTFILE: &str = include_str!("locust/csv_locustfile.py");
/// Users, spawn rate, run time and messages per second per user, the same for both tools.
const USERS: &str = "2";
const RUN_TIME: &str = "4s";
/// Messages per second per user (the locustfile's `constant_throughput(5)`).
const THROUGHPUT: &str = "5";
const TIMEOUT: Duration = Duration::from_secs(60);
/// The `_stats_history.csv` columns written with six decimals (Python's `f"{x:2f}"`).
const SIX_DECIMAL_COLUMNS: [&str; 2] = ["Requests/s", "Failures/s"];
/// Columns whose kind follows the data (see the module's doc).
const MIN_COLUMNS: [&str; 2] = ["Min Response Time", "Total Min Response Time"];
const MAX_COLUMNS: [&str; 2] = ["Max Response Time", "Total Max Response Time"];
const MEDIAN_COLUMNS: [&str; 2] = ["Median Response Time", "Total Median Response Time"];
/// Locust writes its files for the last time before its users' `on_stop`, so its files never
/// have the disconnect row mqload's final write has.
const ONLY_MQLOAD_ROWS: [&str; 1] = ["disconnect"];

/// The venv's `locust`, or None (a skip) outside CI when it is missing.
fn require_locust() -> Option<PathBuf> {
    let bin = repo_root().join("target/locust-venv/bin/locust");
    if bin.exists() {
        return Some(bin);
    }
    assert!(
        !in_ci(),
        "{} is missing, and under CI=true that is a failure: run scripts/test.sh, which \
         installs the pinned Locust into target/locust-venv",
        bin.display()
    );
    eprintln!("skipping: {} is missing", bin.display());
    None
}

/// One CSV file: its header and rows, split on commas (no name here holds one).
struct Table {
    path: PathBuf,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn read(path: &Path) -> Table {
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut lines = text
            .lines()
            .map(|l| l.split(',').map(str::to_owned).collect());
        Table {
            path: path.to_owned(),
            header: lines.next().unwrap_or_default(),
            rows: lines.collect(),
        }
    }

    fn column(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {}", self.path.display()))
    }

    fn name(&self, row: &[String]) -> String {
        row[self.column("Name")].clone()
    }

    fn names(&self) -> BTreeSet<String> {
        self.rows.iter().map(|r| self.name(r)).collect()
    }

    fn text(&self) -> String {
        fs::read_to_string(&self.path).unwrap_or_default()
    }
}

/// The kind of value a cell holds, as a reader parsing Locust's files sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Empty,
    NotAvailable,
    Integer,
    /// A float exactly as Python's `repr` prints it.
    PythonFloat,
    /// A number with exactly six decimals (Python's `f"{x:2f}"`).
    SixDecimals,
    /// Anything else: a name, or a number in a form Locust never writes.
    Other,
}

fn kind(cell: &str, six_decimal_column: bool) -> Kind {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if cell.is_empty() {
        Kind::Empty
    } else if cell == "N/A" {
        Kind::NotAvailable
    } else if digits(cell.strip_prefix('-').unwrap_or(cell)) {
        Kind::Integer
    } else if six_decimal_column
        && cell.split_once('.').is_some_and(|(whole, fraction)| {
            digits(whole) && fraction.len() == 6 && digits(fraction)
        })
    {
        Kind::SixDecimals
    } else if cell.parse::<f64>().is_ok_and(|x| python_float(x) == cell) {
        Kind::PythonFloat
    } else {
        Kind::Other
    }
}

/// Checks a data-dependent cell against Locust's rule; `Err` says why not.
fn check_rule(table: &Table, row: &[String], column: &str) -> Result<(), String> {
    let cell = &row[table.column(column)];
    let k = kind(cell, false);
    let ok = if MIN_COLUMNS.contains(&column) || MAX_COLUMNS.contains(&column) {
        matches!(k, Kind::PythonFloat) || cell == "0"
    } else {
        // Median: a bucketed integer, or the row's exact min or max when kept inside them.
        let (min, max) = if column.starts_with("Total") {
            (MIN_COLUMNS[1], MAX_COLUMNS[1])
        } else {
            (MIN_COLUMNS[0], MAX_COLUMNS[0])
        };
        k == Kind::Integer
            || (k == Kind::PythonFloat
                && (cell == &row[table.column(min)] || cell == &row[table.column(max)]))
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{}: {column} = {cell:?} in row {:?} breaks Locust's rule",
            table.path.display(),
            table.name(row)
        ))
    }
}

/// Every difference in kind between `ours` and `locusts` (rows of the same name and state).
fn compare_rows(
    ours: &Table,
    our_row: &[String],
    locust: &Table,
    locust_row: &[String],
    problems: &mut Vec<String>,
) {
    for (i, column) in ours.header.iter().enumerate() {
        let column = column.as_str();
        if MIN_COLUMNS.contains(&column)
            || MAX_COLUMNS.contains(&column)
            || MEDIAN_COLUMNS.contains(&column)
        {
            problems.extend(check_rule(ours, our_row, column).err());
            problems.extend(check_rule(locust, locust_row, column).err());
            continue;
        }
        let six = SIX_DECIMAL_COLUMNS.contains(&column) && ours.header[0] == "Timestamp";
        let (a, b) = (&our_row[i], &locust_row[locust.column(column)]);
        let (ka, kb) = (kind(a, six), kind(b, six));
        let names_or_text = ka == Kind::Other && kb == Kind::Other;
        if ka != kb || (names_or_text && column == "Type" && a != b) {
            problems.push(format!(
                "row {:?}, column {column:?}: mqload wrote {a:?} ({ka:?}), Locust {b:?} ({kb:?})",
                ours.name(our_row)
            ));
        }
    }
}

/// A row's state: its name, and whether it has requests (Locust writes N/A and integer zeros
/// before the first request).
fn state(table: &Table, row: &[String]) -> (String, bool) {
    let count = ["Request Count", "Total Request Count"]
        .into_iter()
        .find(|c| table.header.iter().any(|h| h == c))
        .map(|c| row[table.column(c)].clone())
        .unwrap_or_default();
    (table.name(row), count != "0")
}

/// Compares one file of mqload's with Locust's; returns every problem found.
fn compare(ours: &Table, locust: &Table) -> Vec<String> {
    let mut problems = Vec::new();
    if ours.header != locust.header {
        problems.push(format!(
            "{} header differs from Locust's:\n  {:?}\n  {:?}",
            ours.path.display(),
            ours.header,
            locust.header
        ));
        return problems;
    }
    let (our_names, locust_names) = (ours.names(), locust.names());
    for name in locust_names.difference(&our_names) {
        problems.push(format!(
            "{}: no row {name:?}, which Locust has",
            ours.path.display()
        ));
    }
    for name in our_names.difference(&locust_names) {
        if !ONLY_MQLOAD_ROWS.contains(&name.as_str()) {
            problems.push(format!(
                "{}: row {name:?}, which Locust's file does not have",
                ours.path.display()
            ));
        }
    }
    for our_row in &ours.rows {
        if our_row.len() != ours.header.len() {
            problems.push(format!("{}: short row {our_row:?}", ours.path.display()));
            continue;
        }
        let key = state(ours, our_row);
        if let Some(locust_row) = locust.rows.iter().rev().find(|r| state(locust, r) == key) {
            compare_rows(ours, our_row, locust, locust_row, &mut problems);
        }
    }
    problems
}

/// Runs Locust with the locustfile into `dir/locust_*`, `extra` added.
fn run_locust(locust: &Path, broker: &Broker, dir: &Path, extra: &[&str]) {
    fs::write(dir.join("locustfile.py"), LOCUSTFILE).expect("write the locustfile");
    let mut cmd = Command::new(locust);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LOCUST_") {
            cmd.env_remove(&name);
        }
    }
    cmd.current_dir(dir)
        .env("MQLOAD_TEST_MQTT_PORT", broker.plain_port.to_string())
        .args(["-f", "locustfile.py", "--headless", "--only-summary"])
        .args(["-u", USERS, "-r", USERS, "-t", RUN_TIME, "--csv", "locust"])
        .args(extra);
    let out = run_with_timeout(cmd, TIMEOUT);
    assert_eq!(out.code, Some(0), "Locust: {}", out.describe());
}

/// Runs mqload against the same broker into `dir/mqload_*`, `extra` added.
fn run_mqload(pki: &Pki, broker: &Broker, dir: &Path, extra: &[&str]) {
    let prefix = dir.join("mqload");
    let mut args = broker_args(pki, broker);
    args.extend(
        [
            "-u",
            USERS,
            "-r",
            USERS,
            "-t",
            RUN_TIME,
            "--throughput",
            THROUGHPUT,
            "--qos",
            "1",
            "--payload-format",
            "raw",
            "--payload-bytes",
            "100",
            "--only-summary",
            "--csv",
        ]
        .map(String::from),
    );
    args.push(prefix.to_string_lossy().into_owned());
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = run_with_timeout(mqload_command(&args, &[]), TIMEOUT);
    assert_eq!(out.code, Some(0), "mqload: {}", out.describe());
}

/// Both tools into one directory, then every file compared.
fn compare_with_locust(extra: &[&str]) -> Option<Vec<String>> {
    let locust = require_locust()?;
    if !common::require_broker_tools() {
        return None;
    }
    let _serial = common::serial();
    let pki = Pki::new(false);
    let broker = Broker::start(&pki);
    let dir = tempfile::tempdir().expect("tempdir");
    run_locust(&locust, &broker, dir.path(), extra);
    run_mqload(&pki, &broker, dir.path(), extra);
    let mut problems = Vec::new();
    for suffix in [
        "_stats.csv",
        "_stats_history.csv",
        "_failures.csv",
        "_exceptions.csv",
    ] {
        let ours = Table::read(&dir.path().join(format!("mqload{suffix}")));
        let theirs = Table::read(&dir.path().join(format!("locust{suffix}")));
        assert!(
            !theirs.rows.is_empty() || suffix != "_stats.csv",
            "Locust wrote no rows:\n{}",
            theirs.text()
        );
        let found = compare(&ours, &theirs);
        if !found.is_empty() {
            problems.push(format!(
                "{}\n--- mqload{suffix}:\n{}--- locust{suffix}:\n{}",
                found.join("\n"),
                ours.text(),
                theirs.text()
            ));
        }
    }
    Some(problems)
}

#[test]
fn csv_files_match_locusts_with_the_default_history() {
    let Some(problems) = compare_with_locust(&[]) else {
        return;
    };
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn csv_files_match_locusts_with_full_history() {
    let Some(problems) = compare_with_locust(&["--csv-full-history"]) else {
        return;
    };
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn value_kinds_are_told_apart() {
    // The classifier is what the comparison rests on: it must reject 28d35e8's `0.50`.
    assert_eq!(kind("0.50", false), Kind::Other);
    assert_eq!(kind("0.5", false), Kind::PythonFloat);
    assert_eq!(kind("1e-05", false), Kind::PythonFloat);
    assert_eq!(kind("12", false), Kind::Integer);
    assert_eq!(kind("2.500000", true), Kind::SixDecimals);
    assert_eq!(kind("2.5", true), Kind::PythonFloat);
    assert_eq!(kind("N/A", false), Kind::NotAvailable);
    assert_eq!(kind("", false), Kind::Empty);
}
