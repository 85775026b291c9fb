//! The `mqload` binary: parse options, plan, run, report, and exit with Locust's exit codes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = mqload::cli::Cli::parse();
    ExitCode::from(mqload::app::run(&cli))
}
