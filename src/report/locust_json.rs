//! Locust's `--json` (final stats on stdout) and `--json-file PATH` (the same in `PATH.json`):
//! the run's statistics deltas, read on their way to the collector, in Locust's format.

use std::path::{Path, PathBuf};
use std::thread::{self, JoinHandle};

use crossbeam_channel::Receiver;

use crate::cli::Cli;
use crate::locust::stats::LocustStats;
use crate::plan::RunPlan;
use crate::stats::StatsMsg;

/// Where the Locust-format stats go, and the thread gathering them.
#[derive(Debug)]
pub struct LocustJson {
    gather: Option<JoinHandle<LocustStats>>,
    stdout: bool,
    file: Option<PathBuf>,
}

/// Puts a reader between the engine and the collector when `--json` or `--json-file` asks
/// for Locust's format; returns the collector's end of the channel.
pub fn tee(cli: &Cli, plan: &RunPlan, rx: Receiver<StatsMsg>) -> (Receiver<StatsMsg>, LocustJson) {
    let mut out = LocustJson {
        gather: None,
        stdout: cli.json,
        file: cli.json_file.clone(),
    };
    if !out.stdout && out.file.is_none() {
        return (rx, out);
    }
    let (tx, collector_rx) = crossbeam_channel::unbounded();
    let names = plan.request_names.clone();
    out.gather = Some(thread::spawn(move || {
        let mut stats = LocustStats::new(names.clone(), crate::unix_time::unix_now());
        for msg in rx {
            match &msg {
                StatsMsg::Delta(delta) => stats.add(delta),
                StatsMsg::ResetRequests => {
                    stats = LocustStats::new(names.clone(), crate::unix_time::unix_now())
                }
            }
            if tx.send(msg).is_err() {
                break;
            }
        }
        stats
    }));
    (collector_rx, out)
}

/// `--json-file PATH`'s file (`PATH.json`, as Locust names it).
fn file_of(path: &Path) -> PathBuf {
    let mut file = path.as_os_str().to_owned();
    file.push(".json");
    PathBuf::from(file)
}

/// Before the run: `--json-file`'s `PATH.json` must be a file mqload can create (its missing
/// folders are created at the end, as Locust does), so a typo costs seconds, not a run.
pub fn check(cli: &Cli) -> Result<(), String> {
    let Some(path) = &cli.json_file else {
        return Ok(());
    };
    let file = file_of(path);
    if file.is_dir() {
        return Err(format!(
            "--json-file {}: {} is a directory; give another path",
            path.display(),
            file.display()
        ));
    }
    let mut dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    while !dir.as_os_str().is_empty() && !dir.exists() {
        dir = dir.parent().map(Path::to_path_buf).unwrap_or_default();
    }
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let writable = dir.is_dir()
        && std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
            // SAFETY: access(2) only reads the NUL-terminated path.
            .is_ok_and(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0);
    if !writable {
        return Err(format!(
            "--json-file {}: {} is not a writable folder; fix the path or its permissions",
            path.display(),
            dir.display()
        ));
    }
    Ok(())
}

impl LocustJson {
    /// After the run: prints and writes what was asked for.
    pub fn finish(self) -> Result<(), String> {
        let Some(gather) = self.gather else {
            return Ok(());
        };
        let stats = gather
            .join()
            .map_err(|_| "the Locust JSON reader panicked (a bug in mqload)".to_owned())?;
        let text = stats.locust_json();
        if self.stdout {
            println!("{text}");
        }
        if let Some(file) = self.file {
            // Locust writes `{filename}.json` and creates the folders on the way.
            let path = file_of(&file);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("--json-file: cannot create {}: {e}", dir.display()))?;
            }
            std::fs::write(&path, text)
                .map_err(|e| format!("--json-file: cannot write {}: {e}", path.display()))?;
        }
        Ok(())
    }
}
