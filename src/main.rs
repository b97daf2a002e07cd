//! steady: run a package installer under a cache lock, a watchdog and a retry policy.
//! `main` parses the command line, runs, and turns the outcome into an exit status, in one
//! place; nothing deeper exits the process.

mod attempt;
mod duration;
mod env;
mod exit;
mod failure;
mod installer;
mod lock;
mod recovery;
mod run;
mod surface;
mod sys;
mod ui;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::exit::Outcome;
use crate::surface::cli::{Cli, Sub};

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
        Some(Sub::Init(args)) => surface::init::run(&args),
        Some(Sub::Doctor(args)) if args.explain_output.is_some() => surface::explain::run(
            args.explain_output
                .as_deref()
                .unwrap_or(std::path::Path::new("-")),
            args.ending.as_deref(),
            args.run.installer.as_deref(),
            &args.run.command,
        ),
        Some(Sub::Doctor(args)) => {
            let sub = matches.subcommand_matches("doctor").unwrap_or(&matches);
            match surface::settings::from_cli(args.run, sub) {
                Ok(s) => surface::doctor::run(&s),
                Err(e) => {
                    ui::error(&format!("{e:#}"));
                    Outcome::SteadyFailed
                }
            }
        }
        Some(Sub::Status) => surface::status::run(),
        Some(Sub::Completions { shell }) => match surface::completions::print(shell) {
            Ok(()) => Outcome::Success,
            Err(e) => {
                ui::error(&format!("cannot write completions: {e}"));
                Outcome::SteadyFailed
            }
        },
        None => match surface::settings::from_cli(cli.run, &matches) {
            Ok(s) => run::run(s),
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
