//! Turns what the user typed (flags, and their `STEADY_*` twins through clap) into the run's
//! validated `Settings`. The only place that reads steady's own environment besides `env`.
//! An error's text is `what happened`, optionally followed by `\nhint: what to do`, which
//! `main` prints as two lines.

use std::time::Duration;

use clap::parser::ValueSource;

use crate::env;
use crate::run::settings::{self, Settings};
use crate::surface::cli::{MitigateMode, OutputMode, RunArgs, SUPERVISING_OPTIONS};
use crate::ui::Verbosity;

/// Builds the run's settings from the parsed command line: values from flags or their
/// `STEADY_*` twins, checked, and the options that ask for supervision noted.
pub fn from_cli(args: RunArgs, matches: &clap::ArgMatches) -> anyhow::Result<Settings> {
    let supervise_requested = supervise_requested(matches);
    let supervise_flag_given = supervise_flag_given(matches);
    let verbosity = verbosity(&args)?;
    check_paths(&args)?;
    #[cfg(feature = "postgres")]
    let lock_server = lock_server(&args)?;
    #[cfg(not(feature = "postgres"))]
    refuse_lock_url(&args)?;
    check_lock_namespace(&args)?;
    let retry_on_output_from_env = matches!(
        matches.value_source("retry_on_output"),
        Some(ValueSource::EnvVariable)
    );
    let nonzero = |d: Option<Duration>| d.filter(|d| !d.is_zero());
    Ok(Settings {
        command: args.command,
        timeout: nonzero(args.timeout),
        stall: settings::stall_window(args.stall, crate::sys::is_terminal(0)),
        kill_after: args.kill_after,
        retries: args.retries,
        backoff: args.backoff,
        backoff_max: args.backoff_max,
        retry_on_exit: args.retry_on_exit,
        retry_on_output_from_env,
        retry_on_output: args.retry_on_output,
        on_retry: args.on_retry.filter(|c| !c.trim().is_empty()),
        hold_output: args.output == OutputMode::OnFailure,
        deadline: nonzero(args.deadline),
        lock_timeout: args.lock_timeout,
        no_lock: args.no_lock,
        lock_dir: args.lock_dir,
        shared: args.shared,
        locks: args.locks,
        lock_progress: args.lock_progress,
        cache: args.cache,
        installer: args.installer,
        clean: args.clean,
        envs: args.envs,
        mitigate: args.mitigate == MitigateMode::Auto,
        report: args.report,
        verbosity,
        supervise_requested,
        supervise_flag_given,
        require_lock: env::flag(env::REQUIRE_LOCK).map_err(anyhow::Error::msg)?,
        #[cfg(feature = "postgres")]
        lock_server,
        #[cfg(feature = "postgres")]
        lock_namespace: args.lock_namespace,
    })
}

/// A supervising option was set, on the command line or through its `STEADY_*` twin.
fn supervise_requested(matches: &clap::ArgMatches) -> bool {
    SUPERVISING_OPTIONS.iter().any(|id| {
        matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    })
}

/// A supervising option was typed on the command line itself, not inherited from the
/// environment.
fn supervise_flag_given(matches: &clap::ArgMatches) -> bool {
    SUPERVISING_OPTIONS
        .iter()
        .any(|id| matches.value_source(id) == Some(ValueSource::CommandLine))
}

/// `-q` wins over everything; a `-v` on the command line outranks `STEADY_QUIET`.
fn verbosity(args: &RunArgs) -> anyhow::Result<Verbosity> {
    Ok(
        if args.quiet || (args.verbose == 0 && env::flag(env::QUIET).map_err(anyhow::Error::msg)?) {
            Verbosity::Quiet
        } else if args.verbose > 0 || env::flag(env::VERBOSE).map_err(anyhow::Error::msg)? {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        },
    )
}

/// Refuses lock and cache paths that name no definite place: a relative `--lock-dir`, an
/// empty `--lock` or `--cache`.
fn check_paths(args: &RunArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.lock_dir
        && !dir.is_absolute()
    {
        anyhow::bail!(
            "--lock-dir must be an absolute path, got `{}`",
            dir.display()
        );
    }
    if args.locks.iter().any(|l| l.as_os_str().is_empty()) {
        anyhow::bail!(
            "--lock must not be empty\nhint: STEADY_LOCK takes paths separated by `:`, e.g. \
             STEADY_LOCK=.venv:node_modules"
        );
    }
    if args
        .cache
        .as_ref()
        .is_some_and(|c| c.as_os_str().is_empty())
    {
        anyhow::bail!("--cache must not be empty");
    }
    Ok(())
}

/// An empty `--lock-url` (a `STEADY_LOCK_URL=` left blank) means none.
fn lock_url(args: &RunArgs) -> Option<&str> {
    args.lock_url.as_deref().filter(|u| !u.is_empty())
}

/// The PostgreSQL server of `--lock-url`, with the lock named for this command.
#[cfg(feature = "postgres")]
fn lock_server(args: &RunArgs) -> anyhow::Result<Option<crate::lock::remote::postgres::Server>> {
    Ok(lock_url(args)
        .map(|u| crate::lock::remote::postgres::Server::parse(u, args.lock_ping))
        .transpose()
        .map_err(anyhow::Error::msg)?
        .map(|s| s.for_command(&args.command)))
}

/// A `--lock-url` this build cannot honour is refused, not ignored.
#[cfg(not(feature = "postgres"))]
fn refuse_lock_url(args: &RunArgs) -> anyhow::Result<()> {
    let _ = args.lock_ping;
    if lock_url(args).is_some() {
        anyhow::bail!(
            "--lock-url needs PostgreSQL support, which this steady was built without \
             (cargo feature `postgres`)\nhint: rebuild with the default features, or drop --lock-url"
        );
    }
    Ok(())
}

/// The namespace becomes the remote lock's name, so it means nothing without `--lock-url`.
fn check_lock_namespace(args: &RunArgs) -> anyhow::Result<()> {
    if let Some(ns) = &args.lock_namespace {
        if ns.is_empty() || ns.chars().any(char::is_control) {
            anyhow::bail!("--lock-namespace must be a non-empty name on one line");
        }
        if lock_url(args).is_none() {
            anyhow::bail!(
                "--lock-namespace names the lock in the --lock-url database; give --lock-url too"
            );
        }
    }
    Ok(())
}
