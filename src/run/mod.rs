//! One wrapped run, step by step (spec section 3): identify the command, exec it at once when
//! there is nothing to do, else find its cache, lock, run attempts, classify each failure and
//! act on it (clean, mitigate, back off, retry), and report. The details of each step live in
//! their own modules; this one only sequences them.

mod done;
pub mod held;
mod hook;
pub mod report;
pub mod settings;
mod supervisor;

use done::Done;
use supervisor::Supervisor;

use std::cell::RefCell;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::attempt::input::Replay;
use crate::attempt::{self, AttemptSpec, Ending, Output, StopReason};
use crate::exit::Outcome;
use crate::installer::locate::{self, CacheLocation};
use crate::installer::{self, Class, Invocation};
use crate::lock::{self, LockError, LockRequest, RemoteFailure};
use crate::recovery::classify;
use crate::recovery::retry::{RetryPolicy, compile_patterns};
use crate::recovery::{Clean, Recovery, Step};
use crate::run::held::Held;
use crate::run::report::{AttemptRecord, Report};
use crate::run::settings::Settings;
use crate::sys::{self, SignalPipe};
use crate::ui;

/// What steady makes of a command line before doing anything.
pub struct Plan {
    pub inv: Option<Invocation>,
    /// The subcommand writes the cache or an environment: lock and supervise.
    pub writes: bool,
    /// Supervise (else exec at once).
    pub supervise: bool,
}

/// Identifies the command and decides between exec and supervision; `Err` is a usage error,
/// already reported.
pub fn plan(settings: &Settings) -> Result<Plan, Outcome> {
    if settings.command.is_empty() {
        ui::error("no command given; usage: steady [OPTIONS] [--] <COMMAND> [ARGS...]");
        return Err(Outcome::SteadyFailed);
    }
    let forced = match settings.installer.as_deref() {
        None => None,
        Some(name) => match installer::by_name(name) {
            Some(i) => Some(i),
            None => {
                let known: Vec<&str> = installer::INSTALLERS.iter().map(|i| i.name).collect();
                ui::error(&format!("unknown installer `{name}` for --installer"));
                ui::hint(&format!("steady knows {}", known.join(", ")));
                return Err(Outcome::SteadyFailed);
            }
        },
    };
    let inv = installer::identify(&settings.command, forced);
    let writes = inv.as_ref().is_some_and(|i| i.class == Class::Writes);
    let supervise = match &inv {
        Some(_) => writes || settings.supervise_flag_given,
        None => settings.supervise_requested || settings.cache.is_some(),
    };
    Ok(Plan {
        inv,
        writes,
        supervise,
    })
}

pub fn run(settings: Settings) -> Outcome {
    ui::set_verbosity(settings.verbosity);
    let plan = match plan(&settings) {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };
    if !plan.supervise {
        return exec(&settings);
    }
    let patterns = match retry_patterns(&settings) {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };
    // Before anything runs: a report that cannot be written is found now, not after a long
    // install.
    let report_file = match open_report(&settings) {
        Ok(f) => f,
        Err(outcome) => return outcome,
    };
    let held = hold_output(&settings);
    match sys::install_signal_handlers() {
        Ok(signals) => {
            let sup = Supervisor {
                settings: &settings,
                inv: plan.inv.as_ref(),
                writes: plan.writes,
                signals: &signals,
                record: RefCell::new(None),
                held: held.as_ref(),
                patterns,
            };
            let mut report = Report {
                command: settings
                    .command
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
                installer: plan.inv.as_ref().map(|i| i.installer.name.to_owned()),
                ..Report::default()
            };
            let outcome = sup.run(&mut report);
            if let Some(h) = &held {
                if outcome == Outcome::Success {
                    h.discard();
                } else {
                    h.show(settings.retries + 1);
                }
            }
            if let (Some(file), Some(path)) = (&report_file, &settings.report) {
                write_report(&mut report, outcome, file, path);
            }
            outcome
        }
        Err(e) => {
            ui::error(&format!("cannot set up signal handling: {e}"));
            Outcome::SteadyFailed
        }
    }
}

/// The `--retry-on-output` patterns, compiled; `Err` (said why) when one is not a regular
/// expression.
fn retry_patterns(settings: &Settings) -> Result<Vec<regex::Regex>, Outcome> {
    let named = if settings.retry_on_output_from_env {
        format!("in {}", crate::env::RETRY_ON_OUTPUT)
    } else {
        "for --retry-on-output".to_owned()
    };
    match compile_patterns(&settings.retry_on_output, &named) {
        Ok(p) => Ok(p),
        Err(e) => {
            ui::error(&e);
            ui::hint(
                "give a regular expression (Rust regex syntax), e.g. --retry-on-output 'Connection reset|timed out'",
            );
            Err(Outcome::SteadyFailed)
        }
    }
}

/// The `--report` file, opened; `Err` (said why) when it cannot be written.
fn open_report(settings: &Settings) -> Result<Option<std::fs::File>, Outcome> {
    match settings.report.as_deref().map(report::open).transpose() {
        Ok(f) => Ok(f),
        Err(e) => {
            let path = settings.report.as_deref().unwrap_or(Path::new(""));
            ui::error(&format!(
                "cannot write the report to `{}`: {e}; the command was not run",
                path.display()
            ));
            ui::hint("give --report (or STEADY_REPORT) a file in a directory you can write to");
            Err(Outcome::SteadyFailed)
        }
    }
}

/// Appends the run's report, with its exit status, to `file` (at `path`).
fn write_report(report: &mut Report, outcome: Outcome, file: &std::fs::File, path: &Path) {
    report.exit_code = outcome.code();
    if let Err(e) = report.append(file) {
        ui::warn(&format!(
            "cannot write the report to `{}`: {e}",
            path.display()
        ));
    }
}

/// Says that failed attempt `attempt_no` is not retried, and `why`.
fn say_not_retried(attempt_no: u32, done: &Done, why: &str) {
    ui::status(&format!(
        "attempt {attempt_no} failed ({}); {why}",
        done.result.ending.describe()
    ));
}

/// The run's outcome when steady was told to stop by `sig` between attempts.
fn stopped_by(sig: nix::sys::signal::Signal) -> Outcome {
    Outcome::Signaled {
        signal: sig as i32,
        reraise: true,
    }
}

/// A retried attempt's action in the summary: what was done before the retry, then `retry`.
fn retry_action(actions: &[String]) -> String {
    if actions.is_empty() {
        "retry".into()
    } else {
        format!("{}; retry", actions.join(", "))
    }
}

/// Removes the trash directories a killed run left in the cache `dir`.
fn sweep_trash(dir: &Path) {
    let swept = crate::recovery::clean::remove::sweep_trash(dir);
    if swept > 0 {
        ui::detail(&format!(
            "removed {swept} trash director(ies) a killed run left at `{}`",
            dir.display()
        ));
    }
}

/// The file that holds the command's output for `--output on-failure`, when it is asked for
/// and steady's stdout or stderr is not a terminal (a terminal stays a terminal: someone is
/// watching, and a prompt must be seen). Without one the output is shown live.
fn hold_output(settings: &Settings) -> Option<Held> {
    if !settings.hold_output {
        return None;
    }
    if sys::is_terminal(1) && sys::is_terminal(2) {
        ui::detail(
            "--output on-failure: stdout and stderr are a terminal, so the output is shown live",
        );
        return None;
    }
    match Held::new() {
        Ok(h) => Some(h),
        Err(e) => {
            ui::warn(&format!(
                "cannot make a private temp file to hold the output ({e}); it is shown live"
            ));
            None
        }
    }
}

/// Replaces steady with the command: same pid, no lock, nothing in between.
fn exec(settings: &Settings) -> Outcome {
    let argv = &settings.command;
    let envs: Vec<(OsString, OsString)> = (settings.envs.iter())
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let err = sys::exec(argv, &envs, &sys::HANDLED);
    report_spawn_failure(argv, &Ending::from_spawn_error(&err))
}

fn report_spawn_failure(argv: &[OsString], ending: &Ending) -> Outcome {
    let program = argv[0].to_string_lossy();
    match ending {
        Ending::NotFound => {
            ui::error(&format!("`{program}`: command not found"));
            Outcome::NotFound
        }
        Ending::NotExecutable(e) => {
            ui::error(&format!("cannot run `{program}`: {e}"));
            Outcome::NotExecutable
        }
        Ending::NoProcesses => {
            ui::error(&format!(
                "cannot start `{program}`: the process limit is reached (ulimit -u)"
            ));
            Outcome::SteadyFailed
        }
        other => {
            ui::error(&format!("cannot start `{program}`: {}", other.describe()));
            Outcome::SteadyFailed
        }
    }
}

/// The cache the run locks and may clear: `--cache`, else the installer's own, for commands
/// that write it.
pub fn locate_cache(
    settings: &Settings,
    inv: Option<&Invocation>,
    writes: bool,
    signals: &SignalPipe,
) -> Option<CacheLocation> {
    if let Some(path) = &settings.cache {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        return Some(CacheLocation::Dir {
            path,
            source: "--cache".into(),
        });
    }
    // A --shared reader of a read-only subcommand locks the cache too: that keeps writers out.
    let inv = inv.filter(|_| writes || settings.shared)?;
    let mut ask = |argv: &[OsString], timeout| {
        let r = attempt::run_helper(argv, timeout, signals);
        if r.ending.succeeded() {
            Some(String::from_utf8_lossy(&r.stdout_tail).into_owned())
        } else {
            ui::detail(&format!(
                "`{}` failed ({}); using the default cache",
                ui::command_line(argv),
                r.ending.describe()
            ));
            None
        }
    };
    Some(locate::locate(inv, &mut ask))
}

/// Used by `doctor`: the path of the cache dir for a plan, without locking.
pub fn cache_dir_of(loc: &Option<CacheLocation>) -> Option<PathBuf> {
    match loc {
        Some(CacheLocation::Dir { path, .. }) => Some(path.clone()),
        _ => None,
    }
}
