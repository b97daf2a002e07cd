//! Turns the parsed command line and the `STEADY_*` environment into one validated `Settings`
//! value. Durations are parsed here; nothing below this module reads steady's own environment.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;

use crate::cli::{CleanMode, MitigateMode, RunArgs, SUPERVISING_OPTIONS};

/// How much steady says on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

#[derive(Debug)]
pub struct Settings {
    pub command: Vec<OsString>,
    pub timeout: Option<Duration>,
    /// The stall window, resolved: `--stall`, else the default when stdin is not a terminal.
    pub stall: Option<Duration>,
    pub kill_after: Duration,
    pub retries: u32,
    pub backoff: Duration,
    pub deadline: Option<Duration>,
    pub lock_timeout: Option<Duration>,
    pub no_lock: bool,
    pub lock_dir: Option<PathBuf>,
    /// `--shared`: the locks are taken shared (readers together, writers alone).
    pub shared: bool,
    /// `--lock` paths, locked beside the cache.
    pub locks: Vec<PathBuf>,
    /// How often a waiting steady says it still waits.
    pub lock_progress: Duration,
    pub cache: Option<PathBuf>,
    pub installer: Option<String>,
    pub clean: CleanMode,
    pub envs: Vec<(String, String)>,
    pub mitigate: bool,
    pub report: Option<PathBuf>,
    pub verbosity: Verbosity,
    /// An option that asks for supervision was given (flag or environment): an unknown command
    /// is then supervised instead of exec'd.
    pub supervise_requested: bool,
    /// Such an option was given as a flag: then even a read-only subcommand is supervised.
    pub supervise_flag_given: bool,
    /// `STEADY_REQUIRE_LOCK=1`: fail instead of running unlocked when no lock can be had.
    pub require_lock: bool,
    /// `--lock-url`: the server that also holds the cache's lock, for several machines.
    #[cfg(feature = "postgres")]
    pub lock_server: Option<crate::pglock::Server>,
    /// `--lock-namespace`: the remote lock's name instead of the cache's path.
    #[cfg(feature = "postgres")]
    pub lock_namespace: Option<String>,
}

impl Settings {
    pub fn new(args: RunArgs, matches: &clap::ArgMatches) -> anyhow::Result<Settings> {
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
        let verbosity = if args.quiet || (args.verbose == 0 && env_flag("STEADY_QUIET")?) {
            Verbosity::Quiet
        } else if args.verbose > 0 || env_flag("STEADY_VERBOSE")? {
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
            anyhow::bail!("--lock must not be empty (STEADY_LOCK takes paths separated by `:`)");
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
            .map(|u| crate::pglock::Server::parse(u, args.lock_ping))
            .transpose()
            .map_err(anyhow::Error::msg)?
            .map(|s| s.for_command(&args.command));
        #[cfg(not(feature = "postgres"))]
        if lock_url.is_some() {
            let _ = args.lock_ping;
            anyhow::bail!(
                "--lock-url needs PostgreSQL support, which this steady was built without \
                 (cargo feature `postgres`); rebuild with the default features, or drop --lock-url"
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
            stall: stall_window(args.stall, crate::sys::is_terminal(0)),
            kill_after: args.kill_after,
            retries: args.retries,
            backoff: args.backoff,
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
            require_lock: env_flag("STEADY_REQUIRE_LOCK")?,
            #[cfg(feature = "postgres")]
            lock_server,
            #[cfg(feature = "postgres")]
            lock_namespace: args.lock_namespace,
        })
    }
}

/// The stall window when `--stall` is not given and stdin is not a terminal (CI, Docker): longer
/// than installers' own network timeouts, so a slow download is never taken for a hang.
pub const DEFAULT_STALL: Duration = Duration::from_secs(120);

/// `--stall` (`0` = off) if given; else on by default only without a terminal on stdin, since
/// someone typing may leave a prompt unanswered for any time.
fn stall_window(given: Option<Duration>, stdin_is_terminal: bool) -> Option<Duration> {
    match given {
        Some(d) => Some(d).filter(|d| !d.is_zero()),
        None if stdin_is_terminal => None,
        None => Some(DEFAULT_STALL),
    }
}

/// A boolean environment variable: unset, empty, `0`, `false`, `no`, `off` are false.
fn env_flag(name: &str) -> anyhow::Result<bool> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(false),
        Err(std::env::VarError::NotUnicode(_)) => anyhow::bail!("invalid unicode in {name}"),
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "" | "0" | "false" | "no" | "off" => Ok(false),
            "1" | "true" | "yes" | "on" => Ok(true),
            _ => anyhow::bail!("{name} must be 1 or 0, got `{v}`"),
        },
    }
}

/// Parses `500ms`, `30s`, `5m`, `1h`, `1.5s`; a bare number is seconds, as with timeout(1).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (try 500ms, 30s, 5m, 1h)"))?;
    let scale = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => {
            return Err(format!(
                "`{s}` has an unknown unit `{unit}` (use ms, s, m, h)"
            ));
        }
    };
    let secs = value * scale;
    if !secs.is_finite() || secs > 1e9 {
        return Err(format!("`{s}` is too long"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The user's home directory from `HOME`, else the password database.
pub fn home_dir() -> Option<PathBuf> {
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => Some(PathBuf::from(h)),
        _ => nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|u| u.dir),
    }
}

/// An absolute path from an environment variable; relative or empty values are ignored, as the
/// XDG base directory spec requires.
pub fn env_abs_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// `$XDG_CACHE_HOME`, else `~/.cache`.
pub fn user_cache_dir() -> Option<PathBuf> {
    env_abs_path("XDG_CACHE_HOME").or_else(|| home_dir().map(|h| h.join(".cache")))
}

/// `$XDG_CONFIG_HOME`, else `~/.config`.
pub fn user_config_dir() -> Option<PathBuf> {
    env_abs_path("XDG_CONFIG_HOME").or_else(|| home_dir().map(|h| h.join(".config")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_default_depends_on_the_terminal() {
        let two = Some(Duration::from_secs(2));
        assert_eq!(stall_window(None, false), Some(DEFAULT_STALL));
        assert_eq!(stall_window(None, true), None);
        assert_eq!(stall_window(two, true), two);
        assert_eq!(stall_window(Some(Duration::ZERO), false), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "s", "5x", "-1s", "1e9h", "ms5"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }
}
