//! What an attempt is asked to do and what it comes back with: the spec ([`AttemptSpec`],
//! [`Output`], [`Hooks`]), the result ([`AttemptResult`], [`Ending`], [`StopReason`]), and the
//! traits a caller plugs in ([`Watcher`], [`Recorder`], [`FindAwaited`]).

use std::ffi::OsString;
use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::input::Replay;
use crate::sys::Ended;

/// How much of each output stream is kept for classification, whatever the command prints.
pub const TAIL_BYTES: usize = 64 * 1024;

/// Why the watchdog stopped an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Timeout,
    Deadline,
    /// No output, almost no CPU and no byte moved for the whole `--stall` window.
    Stall,
    /// The lock beyond this machine was lost: it no longer keeps others out.
    LockLost,
    /// The installer waited for a lock of its own, held outside the attempt, for longer than
    /// `--lock-timeout`.
    LockWait,
}

/// Something besides the command that an attempt must keep an eye on: a lock held on a
/// database connection, which can be lost while the command runs. The attempt's poll loop
/// waits on its descriptor and its next check time with everything else (no thread), calls
/// `check` when either comes, and kills the attempt when it fails.
pub trait Watcher {
    /// A descriptor that becomes readable when something may have changed.
    fn fd(&self) -> Option<BorrowedFd<'_>>;
    /// When `check` must run even if the descriptor stays quiet.
    fn next_check(&self) -> Option<Instant>;
    /// Looks; `Err` says why the attempt may not go on.
    fn check(&mut self, now: Instant) -> Result<(), String>;
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    /// Died of a signal steady did not send.
    Signaled(i32),
    /// Killed by the watchdog.
    Stopped(StopReason),
    /// steady received a stop signal and passed it on; the command then ended like this.
    Interrupted {
        signal: Signal,
        ended: Ended,
    },
    NotFound,
    NotExecutable(String),
    /// The process limit was reached (`EAGAIN` from fork).
    NoProcesses,
    SpawnFailed(String),
}

impl Ending {
    pub fn succeeded(&self) -> bool {
        *self == Ending::Exited(0)
    }

    pub fn describe(&self) -> String {
        match self {
            Ending::Exited(c) => format!("exit {c}"),
            Ending::Signaled(s) => format!("killed by {}", signal_name(*s)),
            Ending::Stopped(StopReason::Timeout) => "timed out".into(),
            Ending::Stopped(StopReason::Deadline) => "stopped at the deadline".into(),
            Ending::Stopped(StopReason::Stall) => "stalled (no output, no CPU, no I/O)".into(),
            Ending::Stopped(StopReason::LockLost) => "killed: the lock was lost".into(),
            Ending::Stopped(StopReason::LockWait) => "waited too long for its own lock".into(),
            Ending::Interrupted { signal, .. } => format!("interrupted by {signal}"),
            Ending::NotFound => "command not found".into(),
            Ending::NotExecutable(e) => format!("not executable: {e}"),
            Ending::NoProcesses => "process limit reached (ulimit -u)".into(),
            Ending::SpawnFailed(e) => format!("could not start: {e}"),
        }
    }
}

pub fn signal_name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_owned())
}

/// Where one output stream of the command goes.
#[derive(Debug, Clone, Copy)]
pub enum Output<'a> {
    /// steady's own stream is a terminal: the command gets a pseudo-terminal, which steady
    /// copies to it.
    Terminal,
    /// Through a pipe that steady copies to its own stream, keeping a tail.
    Forward,
    /// Kept for steady only (the installer's own cache queries and cleans).
    Capture,
    /// Through a pipe that steady copies to its own stderr: the stdout of a command of the
    /// user's that is not the wrapped one (`--on-retry`), kept off the command's stdout.
    Stderr,
    /// Written to this file instead of steady's stream (`--output on-failure`), which steady
    /// shows only if the run fails. Both streams may share one file: they then land in it in
    /// the order steady read them. A file that stops taking output (a full disk) is given up,
    /// never the command: the rest is read and dropped, as with `Capture`.
    Hold(BorrowedFd<'a>),
}

pub struct AttemptSpec<'a> {
    pub argv: &'a [OsString],
    pub env: &'a [(OsString, OsString)],
    /// The longest one attempt may run, counted from the command's start.
    pub timeout: Option<Duration>,
    /// When the whole run must be over (`--deadline`).
    pub deadline: Option<Instant>,
    /// Stop the attempt when its whole tree printed nothing, used almost no CPU and moved no
    /// byte for this long.
    pub stall: Option<Duration>,
    /// Texts in the output that say the installer waits for a lock of its own (its row's
    /// `lock_wait`).
    pub lock_wait: &'a [&'static str],
    /// The longest such a wait may last (`--lock-timeout`); `None`: as long as it takes.
    pub lock_wait_limit: Option<Duration>,
    pub kill_after: Duration,
    pub stdout: Output<'a>,
    pub stderr: Output<'a>,
    /// Keep the command in steady's process group (steady owns the terminal's foreground).
    pub same_group: bool,
}

pub struct AttemptResult {
    pub ending: Ending,
    pub duration: Duration,
    /// The last output, at most `TAIL_BYTES` per stream. When stdout and stderr share one
    /// terminal they are one interleaved stream, as on the terminal itself; its tail is in
    /// `stderr_tail` (where installers write their errors) and `stdout_tail` is empty.
    pub stdout_tail: Vec<u8>,
    pub stderr_tail: Vec<u8>,
    /// Who held the lock the installer last waited for: pid, command, since.
    pub lock_holder: Option<String>,
}

/// Told the processes of a running attempt from time to time, so that if steady is killed
/// with SIGKILL the next holder of the lock can stop them (see `lock::leftovers`).
pub trait Recorder {
    /// The attempt's live processes now, as `(pid, start time)`.
    fn note(&mut self, procs: &[(i32, u64)]);
}

/// What an attempt looks after besides its command; all optional.
#[derive(Default)]
pub struct Hooks<'a> {
    /// A lock that can be lost while the command runs.
    pub watcher: Option<&'a mut dyn Watcher>,
    /// steady's stdin, replayed to each attempt; without it the command's stdin is
    /// `/dev/null`.
    pub stdin: Option<&'a mut Replay>,
    pub record: Option<&'a mut dyn Recorder>,
    /// Finds the lock that one of the given processes waits for, and its holder (the
    /// kernel's `/proc/locks`, read by `lock`): asked only after the installer said it waits.
    pub awaited: Option<FindAwaited>,
}

/// Given the live processes of an attempt, the lock one of them waits for, if any.
pub type FindAwaited = fn(&[i32]) -> Option<Awaited>;

/// A lock that a process of the attempt waits for.
#[derive(Debug, Clone)]
pub struct Awaited {
    /// Its holder's pid, when this steady can see it (another PID namespace shows none).
    pub holder: Option<i32>,
    /// The holder, for a person: pid, command, since when.
    pub holder_words: String,
    /// The lock file, when it can be named.
    pub path: Option<String>,
}

impl Ending {
    /// Why a command could not be started, from the error of its `exec` (in steady's child, or
    /// in steady itself on the pass-through path): one mapping for both.
    pub fn from_spawn_error(e: &io::Error) -> Ending {
        match (e.kind(), e.raw_os_error()) {
            (io::ErrorKind::NotFound, _) => Ending::NotFound,
            (io::ErrorKind::PermissionDenied, _) => Ending::NotExecutable(e.to_string()),
            (_, Some(libc::ENOEXEC | libc::EISDIR | libc::ENOTDIR)) => {
                Ending::NotExecutable(e.to_string())
            }
            (_, Some(libc::EAGAIN)) => Ending::NoProcesses,
            _ => Ending::SpawnFailed(e.to_string()),
        }
    }
}
