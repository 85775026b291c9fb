//! Where `--report-json`, `--html` and `--csv` go: checked before the run starts (a typo costs
//! seconds, not a whole load test), and each failure is one line naming the fix. JSON and
//! HTML are written here at the end; the CSV files by the collector while the run goes.

use std::fmt;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use super::json::ReportData;

/// A report file that cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportError {
    /// The file's directory does not exist.
    NoDirectory {
        /// `report-json`, `html` or `csv`.
        option: &'static str,
        /// The file asked for.
        path: PathBuf,
    },
    /// The path names a directory, not a file.
    IsDirectory {
        /// `report-json`, `html` or `csv`.
        option: &'static str,
        /// The file asked for.
        path: PathBuf,
    },
    /// `--csv-full-history` without `--csv` (Locust refuses it too).
    FullHistoryWithoutCsv,
    /// Opening or writing the file failed (permissions, full disk...).
    Write {
        /// `report-json`, `html` or `csv`.
        option: &'static str,
        /// The file asked for.
        path: PathBuf,
        /// The OS's reason.
        reason: String,
    },
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::NoDirectory { option, path } => write!(
                f,
                "--{option} {}: its directory does not exist; create it or fix --{option}",
                path.display()
            ),
            ReportError::IsDirectory { option, path } => write!(
                f,
                "--{option} {} is a directory; give a file name to --{option}",
                path.display()
            ),
            ReportError::FullHistoryWithoutCsv => f.write_str(
                "--csv-full-history requires --csv: add --csv PREFIX or drop --csv-full-history",
            ),
            ReportError::Write {
                option,
                path,
                reason,
            } => write!(
                f,
                "--{option} {}: cannot write it ({reason}); fix --{option} or the file's permissions",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ReportError {}

/// The report files a run writes.
#[derive(Debug, Clone, Default)]
pub struct ReportFiles {
    /// `--report-json FILE`.
    pub json: Option<PathBuf>,
    /// `--html FILE`.
    pub html: Option<PathBuf>,
    /// `--csv PREFIX`.
    pub csv: Option<PathBuf>,
    /// `--csv-full-history`.
    pub csv_full_history: bool,
}

fn targets(files: &ReportFiles) -> impl Iterator<Item = (&'static str, &Path)> {
    [
        ("report-json", files.json.as_deref()),
        ("html", files.html.as_deref()),
    ]
    .into_iter()
    .filter_map(|(o, p)| p.map(|p| (o, p)))
}

fn check_one(option: &'static str, path: &Path) -> Result<(), ReportError> {
    if path.is_dir() {
        return Err(ReportError::IsDirectory {
            option,
            path: path.to_owned(),
        });
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(ReportError::NoDirectory {
            option,
            path: path.to_owned(),
        });
    }
    // Opening for append creates the file when missing and leaves an old report intact
    // until the run replaces it.
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map(drop)
        .map_err(|e| ReportError::Write {
            option,
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

/// `--csv PREFIX`: as Locust, creates the prefix's directory when missing, then checks that
/// each of the four files can be written.
fn check_csv(prefix: &Path) -> Result<(), ReportError> {
    if let Some(dir) = prefix.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| ReportError::Write {
            option: "csv",
            path: prefix.to_owned(),
            reason: format!("cannot create its directory: {e}"),
        })?;
    }
    [
        "_stats.csv",
        "_stats_history.csv",
        "_failures.csv",
        "_exceptions.csv",
    ]
    .into_iter()
    .try_for_each(|suffix| check_one("csv", &super::csv::csv_path(prefix, suffix)))
}

impl ReportFiles {
    /// Whether a JSON or HTML report was asked for (the CSV files are the collector's).
    pub fn any(&self) -> bool {
        self.json.is_some() || self.html.is_some()
    }

    /// Fails when a file could not be written (before the run starts).
    pub fn check(&self) -> Result<(), ReportError> {
        targets(self).try_for_each(|(o, p)| check_one(o, p))?;
        match &self.csv {
            Some(prefix) => check_csv(prefix),
            None if self.csv_full_history => Err(ReportError::FullHistoryWithoutCsv),
            None => Ok(()),
        }
    }

    /// Writes every report asked for; returns one error per file that failed.
    pub fn write(&self, data: &ReportData) -> Vec<ReportError> {
        targets(self)
            .filter_map(|(option, path)| {
                let text = match option {
                    "report-json" => super::json::render(data),
                    _ => super::html::render(data),
                };
                std::fs::write(path, text)
                    .err()
                    .map(|e| ReportError::Write {
                        option,
                        path: path.to_owned(),
                        reason: e.to_string(),
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json::tests::{data, sample};

    #[test]
    fn a_missing_directory_or_a_directory_is_refused_before_the_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = ReportFiles {
            json: Some(dir.path().join("nope/r.json")),
            ..ReportFiles::default()
        };
        let e = missing.check().expect_err("missing dir");
        assert!(matches!(
            e,
            ReportError::NoDirectory {
                option: "report-json",
                ..
            }
        ));
        assert!(
            e.to_string().contains("create it or fix --report-json"),
            "{e}"
        );
        let is_dir = ReportFiles {
            html: Some(dir.path().to_owned()),
            ..ReportFiles::default()
        };
        assert!(matches!(
            is_dir.check(),
            Err(ReportError::IsDirectory { option: "html", .. })
        ));
    }

    #[test]
    fn a_csv_prefix_that_cannot_be_written_is_refused_before_the_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").expect("write");
        // A prefix under a regular file: its directory can never be made, even by root.
        let under_file = ReportFiles {
            csv: Some(file.join("run")),
            ..ReportFiles::default()
        };
        let e = under_file.check().expect_err("unwritable prefix");
        assert!(matches!(e, ReportError::Write { option: "csv", .. }), "{e}");
        assert!(e.to_string().starts_with("--csv "), "{e}");
        // A missing directory is made, as Locust makes it.
        let nested = ReportFiles {
            csv: Some(dir.path().join("new/dir/run")),
            ..ReportFiles::default()
        };
        nested.check().expect("directory created");
        assert!(dir.path().join("new/dir/run_stats.csv").exists());
        let full_alone = ReportFiles {
            csv_full_history: true,
            ..ReportFiles::default()
        };
        assert_eq!(full_alone.check(), Err(ReportError::FullHistoryWithoutCsv));
    }

    #[test]
    fn both_files_are_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = ReportFiles {
            json: Some(dir.path().join("r.json")),
            html: Some(dir.path().join("r.html")),
            ..ReportFiles::default()
        };
        files.check().expect("writable");
        let (stats, series) = sample();
        assert!(files.write(&data(&stats, &series)).is_empty());
        let json = std::fs::read_to_string(dir.path().join("r.json")).expect("json");
        assert!(json.contains(super::super::json::SCHEMA));
        let html = std::fs::read_to_string(dir.path().join("r.html")).expect("html");
        assert!(html.starts_with("<!DOCTYPE html>"));
    }
}
