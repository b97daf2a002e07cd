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
    if std::env::args_os()
        .next()
        .is_some_and(|a| a == attempt::relay::NAME)
    {
        return attempt::relay::run();
    }
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
        Some(Sub::Doctor(args)) if args.run.command.is_empty() => {
            ui::error("`steady doctor` needs the command to explain");
            ui::hint("for example `steady doctor -- uv pip install requests`");
            Outcome::SteadyFailed
        }
        Some(Sub::Doctor(args)) => {
            let sub = matches.subcommand_matches("doctor").unwrap_or(&matches);
            match surface::settings::from_cli(args.run, sub) {
                Ok(s) => surface::doctor::run(&s),
                Err(e) => settings_error(&e),
            }
        }
        Some(Sub::Status(args)) => surface::status::run(&args),
        Some(Sub::Completions { shell }) => match surface::completions::print(shell) {
            Ok(()) => Outcome::Success,
            Err(e) => {
                ui::error(&format!("cannot write completions: {e}"));
                Outcome::SteadyFailed
            }
        },
        None => match surface::settings::from_cli(cli.run, &matches) {
            Ok(s) if s.command.is_empty() => {
                ui::error("no command given");
                ui::hint("steady [OPTIONS] [--] <COMMAND> [ARGS]...; see `steady --help`");
                Outcome::SteadyFailed
            }
            Ok(s) => match surface::usage::mistyped_subcommand(&s.command) {
                Some((typed, meant)) => {
                    ui::error(&format!("`{typed}`: command not found"));
                    ui::hint(&format!("did you mean `steady {meant}`?"));
                    Outcome::NotFound
                }
                None => run::run(s),
            },
            Err(e) => settings_error(&e),
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

/// A value that clap accepted but `settings` refused: one `steady:` line, and the hint where
/// the error carries one (`what happened; hint: what to do` is split at `\nhint: `).
fn settings_error(e: &anyhow::Error) -> Outcome {
    let text = format!("{e:#}");
    match text.split_once("\nhint: ") {
        Some((what, hint)) => {
            ui::error(what);
            ui::hint(hint);
        }
        None => ui::error(&text),
    }
    Outcome::SteadyFailed
}

/// clap's errors, as one `steady:` line and a `hint:` line, exit 125, naming what the user
/// typed: the `STEADY_*` variable when a bad value came from one, the subcommand and its
/// choices when an argument is missing. `--help` and `--version` print normally and exit 0.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let (what, hint) = surface::usage::explain(e, &argv);
    ui::error(&what);
    ui::hint(&hint);
    ExitCode::from(exit::STEADY_FAILED)
}
