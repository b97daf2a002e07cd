//! The command line, as clap derive structs and nothing else. Values are checked and combined
//! with the environment in `settings`; every option has a `STEADY_*` twin declared here.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::settings::parse_duration;

#[derive(Debug, Parser)]
#[command(
    name = "steady",
    version = env!("STEADY_VERSION"),
    about = "Run a package installer under a cache lock, a watchdog and a retry policy",
    long_about = "Run a package installer under a cache lock, a watchdog and a retry policy.\n\n\
        steady serializes installs that share a cache, kills hung attempts with their whole \
        process tree, clears the cache after a failure and retries. Commands it does not \
        recognise, and read-only subcommands, are exec'd unchanged.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Every option has a STEADY_* environment twin (e.g. STEADY_TIMEOUT=10m); the flag wins.\n\
        Durations: 500ms, 30s, 5m, 1h (a bare number is seconds)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub subcommand: Option<Sub>,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Print shell functions that run installers through steady
    ///
    /// Add `eval "$(steady init bash)"` to ~/.bashrc (zsh alike; fish: `steady init fish |
    /// source`). Then `uv pip install x` runs `steady -- uv pip install x`; read-only
    /// subcommands are exec'd unchanged, `command uv` bypasses the function and STEADY_DISABLE=1
    /// turns every function into a plain call.
    Init(InitArgs),
    /// Explain what steady would do with a command, and why, without running it
    ///
    /// Prints the installer and subcommand class, the cache and how it was found, the lock and
    /// its scope, the mitigations that would apply and the facts behind them.
    Doctor(Box<RunArgs>),
    /// List the locks steady holds or waits on for this user, with holders and waiters
    ///
    /// For each lock: the cache or environment it protects, its scope (the path itself, or a
    /// per-user fallback lock file), the holder's pid and command, since when, and who waits.
    Status,
    /// Print a completion script for steady itself
    Completions {
        /// The shell to generate completions for
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The shell to print functions for
    pub shell: InitShell,

    /// Commands to wrap, comma-separated; the default is every installer steady knows
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        value_hint = clap::ValueHint::CommandName,
        default_values_t = crate::init::default_wrap()
    )]
    pub wrap: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MitigateMode {
    /// Apply the known workarounds whose conditions hold
    Auto,
    /// Apply none
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CleanMode {
    /// Clear the cache once, after the first failure that a clean could fix
    Auto,
    /// Clear the cache before every retry
    Always,
    /// Never clear the cache
    Never,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Wall-clock limit of one attempt (0 = none)
    #[arg(long, env = "STEADY_TIMEOUT", value_name = "DUR", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Grace between TERM and KILL when an attempt is stopped (2s fits GitHub Actions, which
    /// kills everything 2.5s after its TERM)
    #[arg(long, env = "STEADY_KILL_AFTER", value_name = "DUR", value_parser = parse_duration, default_value = "2s")]
    pub kill_after: Duration,

    /// Kill an attempt whose whole process tree printed nothing and used almost no CPU for
    /// DUR (0 = off) [default: 2m when stdin is not a terminal, else off]
    #[arg(long, env = "STEADY_STALL", value_name = "DUR", value_parser = parse_duration)]
    pub stall: Option<Duration>,

    /// Retries after a retryable failure
    #[arg(long, env = "STEADY_RETRIES", value_name = "N", default_value_t = 2)]
    pub retries: u32,

    /// First back-off delay before a retry; doubles each retry, capped at 30s, with jitter
    #[arg(long, env = "STEADY_BACKOFF", value_name = "DUR", value_parser = parse_duration, default_value = "1s")]
    pub backoff: Duration,

    /// Budget for the whole run: lock wait, attempts and back-off (0 = none)
    #[arg(long, env = "STEADY_DEADLINE", value_name = "DUR", value_parser = parse_duration)]
    pub deadline: Option<Duration>,

    /// Longest wait for the lock; 0 fails at once if it is held [default: wait]
    #[arg(long, env = "STEADY_LOCK_TIMEOUT", value_name = "DUR", value_parser = parse_duration)]
    pub lock_timeout: Option<Duration>,

    /// Do not lock
    #[arg(long, env = "STEADY_NO_LOCK", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_lock: bool,

    /// Where fallback lock files go when the cache itself cannot be locked
    #[arg(long, env = "STEADY_LOCK_DIR", value_name = "DIR")]
    pub lock_dir: Option<PathBuf>,

    /// Take the locks shared (readers of an environment together), not exclusive
    #[arg(long, env = "STEADY_SHARED", value_parser = clap::builder::FalseyValueParser::new())]
    pub shared: bool,

    /// Also lock this path, e.g. a venv or node_modules (repeatable; STEADY_LOCK takes a
    /// colon-separated list). All locks are taken in one order, so runs cannot deadlock
    #[arg(
        long = "lock",
        env = "STEADY_LOCK",
        value_name = "PATH",
        value_delimiter = ':'
    )]
    pub locks: Vec<PathBuf>,

    /// Also take the cache's lock in PostgreSQL, for several machines sharing one cache:
    /// postgres://user[:password]@host[:port]/db (?host=/dir for a Unix socket; no TLS). The
    /// password may also come from PGPASSWORD
    #[arg(
        long,
        env = "STEADY_LOCK_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub lock_url: Option<String>,

    /// Name of the cache's lock in the --lock-url database, for machines whose cache paths
    /// differ [default: the cache's path]
    #[arg(long, env = "STEADY_LOCK_NAMESPACE", value_name = "NAME")]
    pub lock_namespace: Option<String>,

    /// How often a held --lock-url lock is checked with a query (for tests)
    #[arg(long, env = "STEADY_LOCK_PING", value_name = "DUR", value_parser = parse_duration, default_value = "5s", hide = true)]
    pub lock_ping: Duration,

    /// How often a waiting steady says it still waits (for tests)
    #[arg(long, env = "STEADY_LOCK_PROGRESS", value_name = "DUR", value_parser = parse_duration, default_value = "30s", hide = true)]
    pub lock_progress: Duration,

    /// The cache directory to lock and clear [default: detected]
    #[arg(long, env = "STEADY_CACHE", value_name = "DIR")]
    pub cache: Option<PathBuf>,

    /// Treat the command as this installer [default: detected]
    #[arg(long, env = "STEADY_INSTALLER", value_name = "NAME")]
    pub installer: Option<String>,

    /// When to clear the cache before a retry
    #[arg(long, env = "STEADY_CLEAN", value_enum, default_value = "auto")]
    pub clean: CleanMode,

    /// Known environment workarounds (qemu emulation, low process limits, after a hang)
    #[arg(long, env = "STEADY_MITIGATE", value_enum, default_value = "auto")]
    pub mitigate: MitigateMode,

    /// Write a JSON record of the run (every attempt, class, action) to FILE
    #[arg(long, env = "STEADY_REPORT", value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Extra environment for the command (repeatable)
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env_pair)]
    pub envs: Vec<(String, String)>,

    /// More steady: lines on stderr (STEADY_VERBOSE=1)
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors on stderr (STEADY_QUIET=1)
    #[arg(short, long)]
    pub quiet: bool,

    /// The command to run, with its arguments
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

fn parse_env_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains('\0') && !v.contains('\0') => {
            Ok((k.to_owned(), v.to_owned()))
        }
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

/// The names of options that make an unknown command supervised rather than exec'd.
pub const SUPERVISING_OPTIONS: [&str; 9] = [
    "timeout",
    "stall",
    "deadline",
    "retries",
    "cache",
    "installer",
    "lock_timeout",
    "locks",
    "shared",
];
