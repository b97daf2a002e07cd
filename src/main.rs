//! steady: run a package installer under a cache lock, a watchdog and a retry policy.
//! `main` parses the command line, runs, and turns the outcome into an exit status, in one
//! place; nothing deeper exits the process.

mod app;
mod attempt;
mod cache;
mod classify;
mod cli;
mod completions;
mod doctor;
mod exit;
mod holders;
mod init;
mod installer;
mod lock;
mod mitigate;
#[cfg(feature = "postgres")]
mod pglock;
mod pty;
mod recover;
mod remove;
mod report;
mod retry;
mod settings;
mod status;
mod sys;
mod tree;
mod ui;
mod verify;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, Sub};
use crate::exit::Outcome;

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return usage_error(&e),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    let outcome = match cli.subcommand {
        Some(Sub::Init(args)) => init::run(&args),
        Some(Sub::Doctor(args)) => {
            let sub = matches.subcommand_matches("doctor").unwrap_or(&matches);
            match settings::Settings::new(*args, sub) {
                Ok(s) => doctor::run(&s),
                Err(e) => {
                    ui::error(&format!("{e:#}"));
                    Outcome::SteadyFailed
                }
            }
        }
        Some(Sub::Status) => status::run(),
        Some(Sub::Completions { shell }) => match completions::print(shell) {
            Ok(()) => Outcome::Success,
            Err(e) => {
                ui::error(&format!("cannot write completions: {e}"));
                Outcome::SteadyFailed
            }
        },
        None => match settings::Settings::new(cli.run, &matches) {
            Ok(s) => app::run(s),
            Err(e) => {
                ui::error(&format!("{e:#}"));
                Outcome::SteadyFailed
            }
        },
    };
    if let Outcome::Signaled {
        signal,
        reraise: true,
    } = outcome
    {
        sys::reraise(signal);
    }
    ExitCode::from(outcome.code())
}

/// clap's errors, as one `steady:` line and a hint, exit 125; `--help` and `--version` print
/// normally and exit 0.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid arguments");
    ui::error(first.strip_prefix("error: ").unwrap_or(first));
    if let Some(tip) = rendered
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("tip:"))
    {
        ui::error(tip);
    }
    ui::error("see `steady --help`");
    ExitCode::from(exit::STEADY_FAILED)
}
