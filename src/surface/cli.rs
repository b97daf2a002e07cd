//! The command line, as clap derive structs and nothing else. Values are checked and combined
//! with the environment in `settings`; every option has a `STEADY_*` twin declared here.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::parse as parse_duration;
use crate::env;
use crate::recovery::CleanMode;

/// The forms of the command line. `--` ends steady's options: what follows is the command, even
/// when it is named like a subcommand or starts with `-`.
pub const USAGE: &str = "steady [OPTIONS] [--] <COMMAND> [ARGS]...
       steady init <bash|zsh|fish> [--wrap LIST]
       steady completions <SHELL>
       steady doctor [OPTIONS] [--] <COMMAND> [ARGS]...
       steady status";

/// Below the options in `--help`: the environment twins, durations, examples and the exit
/// status table (spec section 7). Every example here is also run by the tests.
pub const AFTER_HELP: &str = "\
Every option has a STEADY_* environment twin (e.g. STEADY_TIMEOUT=10m); the flag wins.
Durations: 500ms, 30s, 5m, 1h (a bare number is seconds).

Examples:
  steady -- uv pip install -r requirements.txt
  steady --timeout 10m --deadline 30m -- uv sync
  steady --lock .venv -- ./build.sh
  eval \"$(steady init bash)\"
  steady doctor -- pip install requests

Exit status:
  0        the command succeeded, possibly after retries
  N        the command's own exit code, from its last attempt
  124      the watchdog killed the last attempt (timeout, stall, deadline)
  125      steady itself failed: bad option or value, unsafe path, I/O error
  126/127  the command is not executable / not found
  128+N    the command died of signal N
  75       the lock could not be had within --lock-timeout";

#[derive(Debug, Parser)]
#[command(
    name = "steady",
    version = env!("STEADY_VERSION"),
    about = "Run a package installer under a cache lock, a watchdog and a retry policy",
    long_about = "Run a package installer under a cache lock, a watchdog and a retry policy.\n\n\
        steady serializes installs that share a cache, kills hung attempts with their whole \
        process tree, clears the cache after a failure and retries. Commands it does not \
        recognise, and read-only subcommands, are exec'd unchanged.",
    override_usage = USAGE,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = AFTER_HELP
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
    /// its scope, the mitigations that would apply and the facts behind them. With
    /// --explain-output, explains instead how a failed command's output is classified.
    Doctor(Box<DoctorArgs>),
    /// List the locks steady holds or waits on for this user, with holders and waiters
    ///
    /// For each lock: the cache or environment it protects, its scope (the path itself, or a
    /// per-user fallback lock file), the holder's pid and command, since when, and who waits.
    /// With --lock-url (STEADY_LOCK_URL), then the locks steady holds or waits for in that
    /// PostgreSQL server, from every machine.
    Status(StatusArgs),
    /// Print a completion script for steady itself
    Completions {
        /// The shell to generate completions for
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Also list the locks in this PostgreSQL server (postgres://user@host:port/db); the
    /// password may also come from PGPASSWORD
    #[arg(
        long,
        env = env::LOCK_URL,
        value_name = "URL",
        hide_env_values = true
    )]
    pub lock_url: Option<String>,

    /// Name the lock of this namespace in the server's list (a key is a hash: only the
    /// namespaces and caches this machine knows are shown by name)
    #[arg(long, env = env::LOCK_NAMESPACE, value_name = "NAME")]
    pub lock_namespace: Option<String>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Explain how steady classifies this failed command's output (`-` for stdin): each line a
    /// signature matches, which one wins and why, the class and the action. The command after
    /// `--` (or --installer) says whose signatures apply
    #[arg(long, value_name = "FILE")]
    pub explain_output: Option<PathBuf>,

    /// With --explain-output: how the command ended (an exit status, signal:NAME, stall or
    /// timeout) [default: 1]
    #[arg(long, value_name = "ENDING", requires = "explain_output")]
    pub ending: Option<String>,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The shell to print functions for
    pub shell: InitShell,

    /// Commands to wrap, comma-separated; `default` stands for every installer's own commands.
    /// Opt-in: versioned names (pip3.12), run launchers (uvx, npx) and Python interpreters:
    /// `--wrap default,python3` sends `python3 -m pip …` through steady and nothing else
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        value_hint = clap::ValueHint::CommandName,
        default_value = "default"
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

/// When the command's output is shown (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputMode {
    /// As the command writes it
    Live,
    /// Held, and shown only if the run finally fails (every attempt's output, in order)
    OnFailure,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Wall-clock limit of one attempt (0 = none)
    #[arg(long, env = env::TIMEOUT, value_name = "DUR", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Grace between TERM and KILL when an attempt is stopped (2s fits GitHub Actions, which
    /// kills everything 2.5s after its TERM)
    #[arg(long, env = env::KILL_AFTER, value_name = "DUR", value_parser = parse_duration, default_value = "2s")]
    pub kill_after: Duration,

    /// Kill an attempt whose whole process tree printed nothing, used almost no CPU and moved
    /// no byte (reads, writes, network) for DUR (0 = off) [default: 45s when stdin is not a
    /// terminal, else off]
    #[arg(long, env = env::STALL, value_name = "DUR", value_parser = parse_duration)]
    pub stall: Option<Duration>,

    /// Retries after a retryable failure (0 to 100)
    #[arg(
        long,
        env = env::RETRIES,
        value_name = "N",
        default_value_t = 2,
        allow_negative_numbers = true,
        value_parser = parse_retries
    )]
    pub retries: u32,

    /// First back-off delay before a retry; doubles each retry, capped at --backoff-max, with
    /// jitter
    #[arg(long, env = env::BACKOFF, value_name = "DUR", value_parser = parse_duration, default_value = "1s")]
    pub backoff: Duration,

    /// The longest back-off delay between two attempts
    #[arg(long, env = env::BACKOFF_MAX, value_name = "DUR", value_parser = parse_duration, default_value = "30s")]
    pub backoff_max: Duration,

    /// Also retry when the command exits with one of these codes, even where steady would stop
    /// (comma-separated, e.g. 3,75; 128+N for a death by signal N)
    #[arg(
        long,
        env = env::RETRY_ON_EXIT,
        value_name = "CODES",
        value_delimiter = ',',
        value_parser = parse_exit_code
    )]
    pub retry_on_exit: Vec<i32>,

    /// Also retry a failed attempt whose output matches this regular expression, even where
    /// steady would stop (repeatable; matched against the last 64 KiB of each stream, `^` and
    /// `$` at line ends)
    #[arg(long, env = env::RETRY_ON_OUTPUT, value_name = "REGEX")]
    pub retry_on_output: Vec<String>,

    /// A shell command run before each retry, after the clean, with STEADY_ATTEMPT (the failed
    /// attempt), STEADY_CLASS and STEADY_EXIT set; its failure is reported, not fatal
    #[arg(long, env = env::ON_RETRY, value_name = "CMD", value_hint = clap::ValueHint::CommandString)]
    pub on_retry: Option<String>,

    /// Budget for the whole run: lock wait, attempts and back-off (0 = none)
    #[arg(long, env = env::DEADLINE, value_name = "DUR", value_parser = parse_duration)]
    pub deadline: Option<Duration>,

    /// Longest wait for the lock; 0 fails at once if it is held [default: wait]
    #[arg(long, env = env::LOCK_TIMEOUT, value_name = "DUR", value_parser = parse_duration)]
    pub lock_timeout: Option<Duration>,

    /// Do not lock
    #[arg(long, env = env::NO_LOCK, value_parser = parse_flag)]
    pub no_lock: bool,

    /// Where fallback lock files go when the cache itself cannot be locked
    #[arg(long, env = env::LOCK_DIR, value_name = "DIR")]
    pub lock_dir: Option<PathBuf>,

    /// Take the locks shared (readers of an environment together), not exclusive
    #[arg(long, env = env::SHARED, value_parser = parse_flag)]
    pub shared: bool,

    /// Also lock this path, e.g. a venv or node_modules (repeatable; STEADY_LOCK takes a
    /// colon-separated list). All locks are taken in one order, so runs cannot deadlock
    #[arg(
        long = "lock",
        env = env::LOCK,
        value_name = "PATH",
        value_delimiter = ':'
    )]
    pub locks: Vec<PathBuf>,

    /// Also take the cache's lock in PostgreSQL, for several machines sharing one cache:
    /// postgres://user[:password]@host[:port]/db (?host=/dir for a Unix socket; no TLS). The
    /// password may also come from PGPASSWORD
    #[arg(
        long,
        env = env::LOCK_URL,
        value_name = "URL",
        hide_env_values = true
    )]
    pub lock_url: Option<String>,

    /// Name of the cache's lock in the --lock-url database, for machines whose cache paths
    /// differ [default: the cache's path]
    #[arg(long, env = env::LOCK_NAMESPACE, value_name = "NAME")]
    pub lock_namespace: Option<String>,

    /// How often a held --lock-url lock is checked with a query (for tests)
    #[arg(long, env = env::LOCK_PING, value_name = "DUR", value_parser = parse_duration, default_value = "5s", hide = true)]
    pub lock_ping: Duration,

    /// How often a waiting steady says it still waits (for tests)
    #[arg(long, env = env::LOCK_PROGRESS, value_name = "DUR", value_parser = parse_duration, default_value = "30s", hide = true)]
    pub lock_progress: Duration,

    /// The cache directory to lock and clear [default: detected]
    #[arg(long, env = env::CACHE, value_name = "DIR")]
    pub cache: Option<PathBuf>,

    /// Treat the command as this installer [default: detected]
    #[arg(long, env = env::INSTALLER, value_name = "NAME")]
    pub installer: Option<String>,

    /// When to clear the cache before a retry
    #[arg(long, env = env::CLEAN, value_enum, default_value = "auto")]
    pub clean: CleanMode,

    /// Known environment workarounds (qemu emulation, low process limits, after a hang)
    #[arg(long, env = env::MITIGATE, value_enum, default_value = "auto")]
    pub mitigate: MitigateMode,

    /// Append a JSON record of the run (every attempt, class, action) to FILE, one line per run
    #[arg(long, env = env::REPORT, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub report: Option<PathBuf>,

    /// When the command's output is shown: as it comes, or only if the run finally fails
    /// (as chronic does; a stream that is a terminal stays live)
    #[arg(long, env = env::OUTPUT, value_enum, value_name = "WHEN", default_value = "live")]
    pub output: OutputMode,

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

/// The most retries steady accepts: with back-off capped at 30s, 100 retries already run for
/// most of an hour, and a number past that is a typo rather than a plan.
pub const MAX_RETRIES: u32 = 100;

fn parse_retries(s: &str) -> Result<u32, String> {
    match s.trim().parse::<i64>() {
        Ok(n) if n < 0 => Err("the number of retries must be 0 or more".into()),
        Ok(n) => u32::try_from(n)
            .ok()
            .filter(|n| *n <= MAX_RETRIES)
            .ok_or_else(|| format!("the number of retries must be at most {MAX_RETRIES}")),
        Err(_) => Err(format!("`{s}` is not a whole number (0 to {MAX_RETRIES})")),
    }
}

/// A boolean flag's environment twin (`STEADY_NO_LOCK=1`): the words `env::flag` accepts, and
/// an error for anything else, rather than taking a typo for "yes".
fn parse_flag(s: &str) -> Result<bool, String> {
    env::flag_value(s)
        .ok_or_else(|| format!("`{s}` is not 1 or 0 (nor true/false, yes/no, on/off)"))
}

/// An exit status for `--retry-on-exit`: 1 to 255 (0 is success, never retried).
fn parse_exit_code(s: &str) -> Result<i32, String> {
    match s.trim().parse::<i64>() {
        Ok(n) if (1..=255).contains(&n) => Ok(n as i32),
        Ok(_) => Err("an exit code to retry on must be 1 to 255".into()),
        Err(_) => Err(format!(
            "`{s}` is not an exit code; give codes from 1 to 255, separated by commas"
        )),
    }
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
pub const SUPERVISING_OPTIONS: [&str; 14] = [
    "timeout",
    "stall",
    "deadline",
    "retries",
    "cache",
    "installer",
    "lock_timeout",
    "locks",
    "shared",
    "retry_on_exit",
    "retry_on_output",
    "on_retry",
    "output",
    "report",
];
