//! Every environment variable steady itself reads, by name, and the readers that several layers
//! share (home and XDG directories, boolean flags). The `STEADY_*` names are the twins of the
//! options in `surface::cli`; the variables of one installer (`UV_CACHE_DIR`, `npm_config_cache`,
//! …) are data of that installer's row in `installer/`, so that adding an installer stays one
//! file. Nothing here decides anything; it only names and reads.

use std::path::PathBuf;

pub const TIMEOUT: &str = "STEADY_TIMEOUT";
pub const KILL_AFTER: &str = "STEADY_KILL_AFTER";
pub const STALL: &str = "STEADY_STALL";
pub const RETRIES: &str = "STEADY_RETRIES";
pub const BACKOFF: &str = "STEADY_BACKOFF";
pub const DEADLINE: &str = "STEADY_DEADLINE";
pub const LOCK_TIMEOUT: &str = "STEADY_LOCK_TIMEOUT";
pub const NO_LOCK: &str = "STEADY_NO_LOCK";
pub const LOCK_DIR: &str = "STEADY_LOCK_DIR";
pub const SHARED: &str = "STEADY_SHARED";
pub const LOCK: &str = "STEADY_LOCK";
pub const LOCK_URL: &str = "STEADY_LOCK_URL";
pub const LOCK_NAMESPACE: &str = "STEADY_LOCK_NAMESPACE";
pub const LOCK_PING: &str = "STEADY_LOCK_PING";
pub const LOCK_PROGRESS: &str = "STEADY_LOCK_PROGRESS";
pub const CACHE: &str = "STEADY_CACHE";
pub const INSTALLER: &str = "STEADY_INSTALLER";
pub const CLEAN: &str = "STEADY_CLEAN";
pub const MITIGATE: &str = "STEADY_MITIGATE";
pub const REPORT: &str = "STEADY_REPORT";
pub const RETRY_ON_EXIT: &str = "STEADY_RETRY_ON_EXIT";
pub const RETRY_ON_OUTPUT: &str = "STEADY_RETRY_ON_OUTPUT";
pub const ON_RETRY: &str = "STEADY_ON_RETRY";
pub const BACKOFF_MAX: &str = "STEADY_BACKOFF_MAX";
pub const OUTPUT: &str = "STEADY_OUTPUT";
pub const QUIET: &str = "STEADY_QUIET";
pub const VERBOSE: &str = "STEADY_VERBOSE";
/// `1`: fail instead of running unlocked when no lock can be had.
pub const REQUIRE_LOCK: &str = "STEADY_REQUIRE_LOCK";
/// Set by steady for its command: the locks this run holds, so that a nested steady on the
/// same cache does not wait on its own ancestor.
pub const HELD_LOCKS: &str = "STEADY_HELD_LOCKS";
/// Set by steady for its command: tokens naming the runs the command's processes belong to, so
/// that if a run is killed with SIGKILL the next holder of its lock finds its leftovers.
pub const RUN_TOKENS: &str = "STEADY_RUN";
/// Set by steady for each attempt and for `--on-retry`: the attempt's number, from 1 (for
/// `--on-retry`, the attempt that just failed).
pub const ATTEMPT: &str = "STEADY_ATTEMPT";
/// Set by steady for each attempt and for `--on-retry`: the most attempts the run will make.
pub const ATTEMPTS: &str = "STEADY_ATTEMPTS";
/// Set by steady for `--on-retry`: the failed attempt's class (`network`, `unknown`, …).
pub const CLASS: &str = "STEADY_CLASS";
/// Set by steady for `--on-retry`: the failed attempt's exit status, as steady would exit
/// with it (the code, 128+N for a signal, 124 for the watchdog).
pub const EXIT: &str = "STEADY_EXIT";

pub const HOME: &str = "HOME";
pub const TMPDIR: &str = "TMPDIR";
pub const PATH: &str = "PATH";
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
pub const XDG_RUNTIME_DIR: &str = "XDG_RUNTIME_DIR";
/// `true` under GitHub Actions: warnings are also written as annotations.
pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
/// The PostgreSQL password when `--lock-url` carries none, as libpq reads it.
#[cfg(feature = "postgres")]
pub const PGPASSWORD: &str = "PGPASSWORD";

/// A boolean variable: unset, empty, `0`, `false`, `no`, `off` are false; `1`, `true`, `yes`,
/// `on` are true; anything else is an error naming the variable.
pub fn flag(name: &str) -> Result<bool, String> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(false),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("invalid unicode in {name}")),
        Ok(v) => flag_value(&v).ok_or_else(|| format!("{name} must be 1 or 0, got `{v}`")),
    }
}

/// The words a boolean variable may hold, as [`flag`] reads them; `None` for anything else.
pub fn flag_value(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" | "off" => Some(false),
        "1" | "true" | "yes" | "on" => Some(true),
        _ => None,
    }
}

/// The user's home directory from `HOME`, else the password database.
pub fn home_dir() -> Option<PathBuf> {
    match std::env::var_os(HOME) {
        Some(h) if !h.is_empty() => Some(PathBuf::from(h)),
        _ => nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|u| u.dir),
    }
}

/// An absolute path from an environment variable; relative or empty values are ignored, as the
/// XDG base directory spec requires.
pub fn abs_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// `$XDG_CACHE_HOME`, else `~/.cache`.
pub fn user_cache_dir() -> Option<PathBuf> {
    abs_path(XDG_CACHE_HOME).or_else(|| home_dir().map(|h| h.join(".cache")))
}

/// `$XDG_CONFIG_HOME`, else `~/.config`.
pub fn user_config_dir() -> Option<PathBuf> {
    abs_path(XDG_CONFIG_HOME).or_else(|| home_dir().map(|h| h.join(".config")))
}
