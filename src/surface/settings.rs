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
    let source = |id: &str| matches.value_source(id);
    let supervise_requested = SUPERVISING_OPTIONS.iter().any(|id| {
        matches!(
            source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    });
    let supervise_flag_given = SUPERVISING_OPTIONS
        .iter()
        .any(|id| source(id) == Some(ValueSource::CommandLine));
    let verbosity = if args.quiet
        || (args.verbose == 0 && env::flag(env::QUIET).map_err(anyhow::Error::msg)?)
    {
        Verbosity::Quiet
    } else if args.verbose > 0 || env::flag(env::VERBOSE).map_err(anyhow::Error::msg)? {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
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
    let lock_url = args.lock_url.filter(|u| !u.is_empty());
    #[cfg(feature = "postgres")]
    let lock_server = lock_url
        .as_deref()
        .map(|u| crate::lock::remote::postgres::Server::parse(u, args.lock_ping))
        .transpose()
        .map_err(anyhow::Error::msg)?
        .map(|s| s.for_command(&args.command));
    #[cfg(not(feature = "postgres"))]
    if lock_url.is_some() {
        let _ = args.lock_ping;
        anyhow::bail!(
            "--lock-url needs PostgreSQL support, which this steady was built without \
             (cargo feature `postgres`)\nhint: rebuild with the default features, or drop --lock-url"
        );
    }
    if let Some(ns) = &args.lock_namespace {
        if ns.is_empty() || ns.chars().any(char::is_control) {
            anyhow::bail!("--lock-namespace must be a non-empty name on one line");
        }
        if lock_url.is_none() {
            anyhow::bail!(
                "--lock-namespace names the lock in the --lock-url database; give --lock-url too"
            );
        }
    }
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
        retry_on_output_from_env: matches!(
            source("retry_on_output"),
            Some(ValueSource::EnvVariable)
        ),
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
