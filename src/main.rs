//! The `mqload` binary: parse options, plan, run, report, and exit with Locust's exit codes.

use std::process::ExitCode;

use mqload::cli::{self, LoadError};

fn main() -> ExitCode {
    let (cli, notes) = match cli::load() {
        Ok(loaded) => loaded,
        Err(LoadError::Display(help)) => help.exit(),
        Err(LoadError::Usage(line)) => {
            eprintln!("mqload: error: {line}");
            return ExitCode::from(mqload::app::EXIT_CONFIG);
        }
    };
    if let Some(path) = &cli.logfile
        && let Err(line) = cli::load::redirect_stderr(path)
    {
        eprintln!("mqload: error: {line}");
        return ExitCode::from(mqload::app::EXIT_CONFIG);
    }
    for note in notes {
        eprintln!("mqload: note: {note}");
    }
    ExitCode::from(mqload::app::run(&cli))
}
