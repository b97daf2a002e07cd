//! Everything one run was asked to do, validated: the `Settings` value that `surface::settings`
//! builds from the command line and the `STEADY_*` environment, and that the run, the lock and
//! recovery read. Nothing below `surface` reads steady's own environment.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::recovery::CleanMode;
use crate::ui::Verbosity;

#[derive(Debug)]
pub struct Settings {
    pub command: Vec<OsString>,
    pub timeout: Option<Duration>,
    /// The stall window, resolved: `--stall`, else the default when stdin is not a terminal.
    pub stall: Option<Duration>,
    pub kill_after: Duration,
    pub retries: u32,
    pub backoff: Duration,
    /// `--backoff-max`: the longest pause between two attempts.
    pub backoff_max: Duration,
    /// `--retry-on-exit`: exit codes retried even where steady would stop.
    pub retry_on_exit: Vec<i32>,
    /// `--retry-on-output`: patterns whose match in a failed attempt's output makes it
    /// retried even where steady would stop. Compiled only for a supervised run (see
    /// `recovery::retry::compile_patterns`): a regex costs milliseconds to build, which a
    /// command exec'd unchanged must not pay.
    pub retry_on_output: Vec<String>,
    /// They came from `STEADY_RETRY_ON_OUTPUT`, not the flag: an error names the variable.
    pub retry_on_output_from_env: bool,
    /// `--on-retry`: a shell command run before each retry.
    pub on_retry: Option<String>,
    /// `--output on-failure`: the command's output is held and shown only if the run fails.
    pub hold_output: bool,
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
    pub lock_server: Option<crate::lock::remote::postgres::Server>,
    /// `--lock-namespace`: the remote lock's name instead of the cache's path.
    #[cfg(feature = "postgres")]
    pub lock_namespace: Option<String>,
}

/// The stall window when `--stall` is not given and stdin is not a terminal (CI, Docker). A
/// slow download is never taken for a hang whatever the window (bytes still move), so it is
/// chosen for the hangs: longer than installers' own network timeouts (uv 30s, pip 15s), so
/// that their own message says what went wrong, and short enough that a deadlock is stopped
/// within a minute (window, a sample, the TERM grace).
pub const DEFAULT_STALL: Duration = Duration::from_secs(45);

/// `--stall` (`0` = off) if given; else on by default only without a terminal on stdin, since
/// someone typing may leave a prompt unanswered for any time.
pub fn stall_window(given: Option<Duration>, stdin_is_terminal: bool) -> Option<Duration> {
    match given {
        Some(d) => Some(d).filter(|d| !d.is_zero()),
        None if stdin_is_terminal => None,
        None => Some(DEFAULT_STALL),
    }
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
}
