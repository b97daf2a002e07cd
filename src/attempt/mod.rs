//! One attempt: spawn the command, pass its output through unchanged while keeping a bounded
//! tail, and watch it with a single-threaded loop (`poll` on the output, steady's own stdout and
//! stderr, and the signal pipe) until it ends, its time is up, it stalls, or steady is told to
//! stop. A stopped attempt gets TERM, then KILL after the grace, and no process of its tree
//! outlives it. No thread is ever started, so every child is forked from a single-threaded
//! process (a fork from a multi-threaded one can deadlock under qemu-user).
//!
//! Process groups: in CI, Docker and scripts the command gets its own process group, so one
//! `killpg` reaches it all and signals steady receives are forwarded to that group. When a
//! developer runs steady in the foreground of a terminal, the command stays in steady's group
//! instead: it keeps the terminal (prompts read the keyboard, Ctrl-C and Ctrl-Z reach it as
//! without steady), and the subreaper tree walk still finds every process to kill. The leader
//! is reaped only after its group was signalled for the last time, so its pid (the group id)
//! cannot have been reused by an unrelated process.
//!
//! Output: to a pipe or file it is passed on byte for byte, each stream in order; once a stream
//! has printed a lot, its bytes move by `splice` without passing through steady (see
//! `ZeroCopy`). When steady's stdout or stderr is a terminal, the command writes to a
//! pseudo-terminal instead (see `pty`), so it still sees a terminal while steady sees its
//! output. steady writes to its own stdout and stderr only as far as they take it without
//! blocking, and takes more from the command only when that is written, so a reader that
//! stops reading holds the command back (as it would without steady) but never freezes the
//! watchdog, and memory stays bounded.

pub mod cgroup;
pub mod input;
pub mod progress;
pub mod pty;
pub mod relay;
pub mod tree;

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;

use crate::sys::{self, Arrived, Ended, SignalPipe};
use cgroup::Cgroup;
use input::{Feed, Replay};
use pty::Pty;

/// How much of each output stream is kept for classification, whatever the command prints.
pub const TAIL_BYTES: usize = 64 * 1024;

/// After the command exits, how long steady keeps copying output that its leftover children
/// still write to the inherited pipes.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);

const READ_CHUNK: usize = 64 * 1024;

/// A forwarded stream moves by `splice` once it has printed this much: only a command that
/// prints a lot gains from it, and only those then hold the larger pipes it needs (pipe
/// buffers count against a per-user quota; past it, every new pipe of the user is tiny).
const ZERO_COPY_AFTER: usize = 1 << 20;

/// The pipe a forwarded stream of the command writes to, once its output moves by `splice`:
/// larger than the kernel's 64 KiB, so that each wake-up of steady moves more. Any user may
/// ask for up to 1 MiB (`/proc/sys/fs/pipe-max-size`).
const COMMAND_PIPE_BYTES: usize = 1 << 20;

/// The least buffer a pipe that steady writes to gets, once the output moves by `splice`: with
/// the kernel's 64 KiB, a reader that takes 128 KiB at a time (cat) empties it at each read
/// and sleeps until steady wakes up again, and the three processes of `cmd | cat` ping-pong
/// on the CPUs (half the throughput on two cores). Only ever grown, never shrunk.
const SINK_PIPE_BYTES: usize = 256 * 1024;

/// The private pipe that holds a zero-copy stream's tail: the tail plus room for the pieces
/// one `tee` adds before the oldest are dropped.
const TAIL_PIPE_BYTES: usize = 4 * TAIL_BYTES;

/// Asked of each `splice` or `tee`: more than any pipe holds, so each call takes all it can.
const SPLICE_MAX: usize = 1 << 30;

/// The most one zero-copy read moves before the watchdog looks at its clocks again.
const TAKE_MAX: usize = COMMAND_PIPE_BYTES;

/// steady copies output to a pipe or socket in pieces no larger than this, each after `poll`
/// said the sink is writable: a pipe that polls writable has room for at least `PIPE_BUF`
/// bytes, so a write never blocks.
const WRITE_CHUNK: usize = libc::PIPE_BUF;

/// At the end of an attempt, how long steady waits for a reader that takes none of the output
/// still buffered before it drops the rest.
const FINAL_FLUSH_PATIENCE: Duration = Duration::from_secs(5);

/// The most output steady still copies once the attempt is over (leftover daemons of a
/// successful install may keep writing).
const FINAL_READ_MAX: usize = 1 << 20;

/// How often, at most, the stall detector samples a silent tree (an eighth of the window when
/// that is shorter): a stall is found within this much after the window.
const STALL_SAMPLE: Duration = Duration::from_secs(2);

/// A tree using less than this share of one core (in percent) over the whole stall window,
/// while printing nothing, is stalled. Not zero: a real qemu-user hang with pipes attached
/// still gained a clock tick every few seconds.
const STALL_CPU_PERCENT: u64 = 2;

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

/// Which of the command's streams a `Stream` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Stdout,
    Stderr,
    /// Both, through one pty.
    Both,
}

/// One output channel: the command's end is read, steady's own stream is written.
struct Stream {
    role: Role,
    source: Option<OwnedFd>,
    sink: Option<File>,
    /// The sink is a regular file or `/dev/null`: a write never waits for a reader, so it
    /// needs no `poll` first and may be as large as what is pending.
    sink_is_file: bool,
    /// The output may move by `splice` (the source is a pipe, the sink takes it).
    splice_ok: bool,
    /// Bytes copied through `pending` so far.
    copied: usize,
    /// Bytes moved by `splice` so far.
    spliced: u64,
    /// Why `splice` was given up, when it was.
    splice_refused: Option<io::Error>,
    /// The reader took nothing for `FINAL_FLUSH_PATIENCE`: the rest is dropped at once.
    gave_up: bool,
    /// Read but not yet written to the sink; at most one read's worth.
    pending: Vec<u8>,
    sent: usize,
    /// The last output. While `zero_copy` is on, the part before the tail pipe's contents (at
    /// first what the copy kept; later only when the tail pipe had to be emptied early).
    tail: Vec<u8>,
    /// Set while the output moves by `splice` instead of through `pending`.
    zero_copy: Option<ZeroCopy>,
    /// The sink is the file that holds the output (`Output::Hold`), not steady's own stream.
    held: bool,
}

/// A stream whose bytes go from the command's pipe to steady's own stream by `splice`, never
/// through steady's memory: a relay through user space copies every byte twice more, and a
/// command that prints a lot ran at less than half its speed through it. The tail is kept by `tee`-ing the
/// same bytes (page references, not copies) into a private pipe whose oldest bytes are
/// dropped into `/dev/null`; it is read only when the attempt is over.
struct ZeroCopy {
    tail_read: OwnedFd,
    tail_write: OwnedFd,
    null: File,
    /// Bytes in the tail pipe.
    held: usize,
    /// Bytes at the head of the command's pipe that are already in the tail pipe but not yet
    /// at the sink: `tee` always starts at the head, so nothing is teed while there are any.
    ahead: usize,
}

/// What one `splice` or `tee` that steady did not expect means for the stream.
enum Refusal {
    /// The sink (or this kernel) does not take `splice`: copy through `pending` instead.
    Unsupported(io::Error),
    /// The reader is gone, or the sink failed.
    Broken(io::Error),
}

fn refusal(e: io::Error) -> Refusal {
    match e.raw_os_error() {
        // EINVAL: a sink splice cannot write (an appending file, some devices); ENOSYS and
        // EPERM: a kernel, emulator or seccomp filter without splice.
        Some(libc::EINVAL | libc::ENOSYS | libc::EPERM | libc::EOPNOTSUPP) => {
            Refusal::Unsupported(e)
        }
        _ => Refusal::Broken(e),
    }
}

/// Whether `splice` can write to `sink` without ever waiting on it: a pipe (SPLICE_F_NONBLOCK
/// then covers it, whatever the sink's own flags), a regular file not opened for appending
/// (splice refuses those), or `/dev/null`. Sockets and other devices are copied instead.
fn splice_target(sink: &File) -> bool {
    let Ok(st) = sys::fstat(sink.as_raw_fd()) else {
        return false;
    };
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => true,
        libc::S_IFREG => sys::status_flags(sink.as_fd()).is_ok_and(|f| f & libc::O_APPEND == 0),
        libc::S_IFCHR => is_dev_null(&st),
        _ => false,
    }
}

fn is_dev_null(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == libc::makedev(1, 3)
}

/// Reads everything `pipe` holds now into `into`.
fn read_all(pipe: &OwnedFd, into: &mut Vec<u8>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match nix::unistd::read(pipe, &mut buf) {
            Ok(0) => break,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break,
        }
    }
}

/// Keeps the last `TAIL_BYTES` of `tail`.
fn keep_tail(tail: &mut Vec<u8>) {
    if tail.len() > TAIL_BYTES {
        tail.drain(..tail.len() - TAIL_BYTES);
    }
}

impl ZeroCopy {
    /// Drops the tail pipe's oldest bytes beyond `TAIL_BYTES`, and from `older` whatever the
    /// pipe now covers.
    fn trim(&mut self, older: &mut Vec<u8>) -> Result<(), Refusal> {
        if self.held > TAIL_BYTES {
            let extra = self.held - TAIL_BYTES;
            match sys::splice(self.tail_read.as_fd(), self.null.as_fd(), extra) {
                Ok(n) if n > 0 => self.held -= n,
                Ok(_) => {
                    let e = io::Error::other("splice to /dev/null moved nothing");
                    return Err(Refusal::Unsupported(e));
                }
                Err(e) => return Err(refusal(e)),
            }
            // Everything in `older` came before what was just dropped.
            older.clear();
        }
        // Trimmed only now and then: each trim moves the rest of the buffer.
        let room = TAIL_BYTES.saturating_sub(self.held);
        if older.len() > room + TAIL_BYTES {
            older.drain(..older.len() - room);
        }
        Ok(())
    }

    /// Moves the tail pipe's contents to the end of `older`.
    fn empty_into(&mut self, older: &mut Vec<u8>) {
        read_all(&self.tail_read, older);
        self.held = 0;
    }
}

impl Stream {
    fn new(role: Role, source: OwnedFd, sink: Option<File>) -> io::Result<Stream> {
        nix::fcntl::fcntl(
            &source,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )?;
        let sink_is_file = sink.as_ref().is_some_and(|s| {
            sys::fstat(s.as_raw_fd())
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG || is_dev_null(&st))
        });
        Ok(Stream {
            role,
            source: Some(source),
            sink,
            sink_is_file,
            splice_ok: false,
            copied: 0,
            spliced: 0,
            splice_refused: None,
            gave_up: false,
            pending: Vec::new(),
            sent: 0,
            tail: Vec::new(),
            zero_copy: None,
            held: false,
        })
    }

    /// Lets the output move by `splice` once it proves plentiful, when the sink takes it. Only
    /// for a source that is a pipe (not a pty).
    fn allow_zero_copy(&mut self) {
        self.splice_ok = self.sink.as_ref().is_some_and(splice_target);
    }

    /// Moves the output by `splice` from here on. Called with nothing pending: what the copy
    /// kept of the tail stays as the part before the tail pipe's. Where anything is missing,
    /// the stream goes on copying.
    fn start_zero_copy(&mut self) {
        self.splice_ok = false;
        let (Some(source), Some(sink)) = (&self.source, &self.sink) else {
            return;
        };
        let flags = nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK;
        let Ok((tail_read, tail_write)) = nix::unistd::pipe2(flags) else {
            return;
        };
        // Each teed piece takes a slot of its own, so the tail pipe needs room beyond the tail.
        // Without it (the user's pipe quota is spent) the tail would have to be copied out
        // again and again: plain copying is better then.
        if !sys::set_pipe_size(tail_write.as_fd(), TAIL_PIPE_BYTES)
            .is_ok_and(|n| n >= TAIL_PIPE_BYTES)
        {
            return;
        }
        let Ok(null) = File::options().write(true).open("/dev/null") else {
            return;
        };
        // Only hints: fewer, larger moves, and fewer wake-ups for everyone.
        let _ = sys::set_pipe_size(source.as_fd(), COMMAND_PIPE_BYTES);
        if sys::pipe_size(sink.as_fd()).is_ok_and(|n| n < SINK_PIPE_BYTES) {
            let _ = sys::set_pipe_size(sink.as_fd(), SINK_PIPE_BYTES);
        }
        self.pending = Vec::new();
        self.sent = 0;
        self.zero_copy = Some(ZeroCopy {
            tail_read,
            tail_write,
            null,
            held: 0,
            ahead: 0,
        });
    }

    fn wants_read(&self) -> bool {
        self.source.is_some()
            && match &self.zero_copy {
                Some(z) => z.ahead == 0,
                None => self.sent == self.pending.len(),
            }
    }

    fn wants_write(&self) -> bool {
        self.sink.is_some()
            && match &self.zero_copy {
                Some(z) => z.ahead > 0,
                None => self.sent < self.pending.len(),
            }
    }

    /// Closes both ends: the reader went away, so the command's end closes too and the command
    /// sees EPIPE (or EIO on a pty) as it would have without steady in between.
    fn break_off(&mut self) {
        self.sink = None;
        self.source = None;
        self.pending.clear();
        self.sent = 0;
        if let Some(z) = &mut self.zero_copy {
            z.ahead = 0;
        }
    }

    /// The sink failed. steady's own stream: the reader is gone, so the command's end closes
    /// too (`break_off`). The file holding the output: it is given up, and the stream goes on
    /// reading and dropping, so a full disk never stops the command.
    fn sink_failed(&mut self, why: &io::Error) {
        if !self.held {
            return self.break_off();
        }
        crate::ui::warn(&format!(
            "cannot keep the command's output for --output on-failure ({why}); the rest of it is dropped"
        ));
        self.sink = None;
        self.held = false;
        self.pending.clear();
        self.sent = 0;
        if let Some(mut z) = self.zero_copy.take() {
            // The bytes teed ahead are still in the command's pipe: the copy reads them again.
            z.empty_into(&mut self.tail);
            self.tail.truncate(self.tail.len().saturating_sub(z.ahead));
            keep_tail(&mut self.tail);
        }
    }

    /// Stops splicing and copies from here on; the bytes teed ahead are still in the command's
    /// pipe, where the copy reads them again, so they leave the tail now.
    fn stop_zero_copy(&mut self, why: io::Error) {
        self.splice_refused = Some(why);
        self.splice_ok = false;
        let Some(mut z) = self.zero_copy.take() else {
            return;
        };
        z.empty_into(&mut self.tail);
        self.tail.truncate(self.tail.len().saturating_sub(z.ahead));
        keep_tail(&mut self.tail);
    }

    /// The last `n` bytes read, as far as the tail holds them (none while the output moves
    /// by `splice`, which steady does not read).
    fn recent(&self, n: usize) -> &[u8] {
        if self.zero_copy.is_some() {
            return &[];
        }
        &self.tail[self.tail.len().saturating_sub(n)..]
    }

    /// Takes what the command wrote: one chunk when it is to be forwarded (so memory stays
    /// bounded), else all there is. Returns how many new bytes came.
    fn read(&mut self) -> usize {
        if self.splice_ok && self.copied >= ZERO_COPY_AFTER && self.sent == self.pending.len() {
            self.start_zero_copy();
        }
        if self.zero_copy.is_some() {
            return self.take();
        }
        let Some(fd) = &self.source else { return 0 };
        if self.sent < self.pending.len() {
            return 0;
        }
        // The pending buffer is reused for every chunk (once written, its bytes are done).
        let mut buf = std::mem::take(&mut self.pending);
        buf.clear();
        buf.reserve_exact(READ_CHUNK);
        let mut total = 0;
        loop {
            match sys::read_into(fd.as_fd(), &mut buf) {
                Ok(0) => {
                    self.source = None;
                    break;
                }
                Ok(n) => {
                    total += n;
                    self.tail.extend_from_slice(&buf);
                    if self.tail.len() > 2 * TAIL_BYTES {
                        self.tail.drain(..self.tail.len() - TAIL_BYTES);
                    }
                    if self.sink.is_some() {
                        self.pending = buf;
                        self.sent = 0;
                        self.copied += n;
                        self.write();
                        return total;
                    }
                    buf.clear();
                }
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                // EIO: a pty whose slave nobody holds any more, the pty's end of file.
                Err(_) => {
                    self.source = None;
                    break;
                }
            }
        }
        buf.clear();
        self.pending = buf;
        self.sent = 0;
        total
    }

    /// The zero-copy `read`: tees what the command's pipe holds into the tail pipe, then
    /// splices the same bytes to the sink, until the pipe is empty or the sink full.
    fn take(&mut self) -> usize {
        let mut total = 0;
        let mut emptied = false;
        while total < TAKE_MAX && self.wants_read() && self.sink.is_some() {
            let (Some(source), Some(z)) = (&self.source, &mut self.zero_copy) else {
                break;
            };
            if let Err(r) = z.trim(&mut self.tail) {
                return total + self.refused(r);
            }
            match sys::tee(source.as_fd(), z.tail_write.as_fd(), SPLICE_MAX) {
                Ok(0) => self.source = None,
                Ok(n) => {
                    z.held += n;
                    z.ahead = n;
                    total += n;
                    self.write();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Nothing to take, or no free slot in the tail pipe: a command that
                    // prints a line at a time fills the slots with far fewer bytes than the
                    // tail. Then the tail moves into memory and the pipe starts over. (After
                    // a take, the pipe is most likely just empty; if not, it polls readable
                    // again at once and this is looked into then.)
                    if total > 0
                        || emptied
                        || z.held == 0
                        || !sys::bytes_readable(source.as_fd()).is_ok_and(|n| n > 0)
                    {
                        break;
                    }
                    z.empty_into(&mut self.tail);
                    keep_tail(&mut self.tail);
                    emptied = true;
                }
                Err(e) => return total + self.refused(refusal(e)),
            }
        }
        total
    }

    /// Handles a `splice` or `tee` that failed; returns what a copy then read at once.
    fn refused(&mut self, why: Refusal) -> usize {
        match why {
            Refusal::Unsupported(e) => {
                self.stop_zero_copy(e);
                self.read()
            }
            Refusal::Broken(e) => {
                self.sink_failed(&e);
                // A held stream goes on, reading and dropping.
                if self.source.is_some() {
                    self.read()
                } else {
                    0
                }
            }
        }
    }

    /// Writes pending output while the sink takes it without blocking.
    fn write(&mut self) {
        if self.zero_copy.is_some() {
            return self.push();
        }
        while self.wants_write() {
            let Some(sink) = &mut self.sink else { return };
            let end = if self.sink_is_file {
                self.pending.len()
            } else {
                let mut fds = [PollFd::new(sink.as_fd(), PollFlags::POLLOUT)];
                if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
                    return;
                }
                (self.sent + WRITE_CHUNK).min(self.pending.len())
            };
            match sink.write(&self.pending[self.sent..end]) {
                Ok(n) if n > 0 => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => self.sink_failed(&e),
                Ok(_) => self.sink_failed(&io::Error::other("the output file took nothing")),
            }
        }
    }

    /// The zero-copy `write`: splices the bytes teed ahead to the sink.
    fn push(&mut self) {
        while self.wants_write() {
            let (Some(source), Some(sink), Some(z)) =
                (&self.source, &self.sink, &mut self.zero_copy)
            else {
                return;
            };
            match sys::splice(source.as_fd(), sink.as_fd(), z.ahead) {
                Ok(n) if n > 0 => {
                    z.ahead -= n;
                    self.spliced += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Ok(_) => self.sink_failed(&io::Error::other("splice moved nothing")),
                // The copy reads the bytes again when the loop next polls the command's pipe.
                Err(e) => match refusal(e) {
                    Refusal::Unsupported(e) => self.stop_zero_copy(e),
                    Refusal::Broken(e) => self.sink_failed(&e),
                },
            }
        }
    }

    /// Gives up on what is pending: it is dropped, as if written.
    fn drop_pending(&mut self) -> usize {
        let Some(z) = &mut self.zero_copy else {
            let dropped = self.pending.len() - self.sent;
            self.pending.clear();
            self.sent = 0;
            return dropped;
        };
        let dropped = std::mem::take(&mut z.ahead);
        let Some(source) = &self.source else {
            return dropped;
        };
        // The bytes still sit at the head of the command's pipe (and in the tail already).
        let mut left = dropped;
        while left > 0 {
            match sys::splice(source.as_fd(), z.null.as_fd(), left) {
                Ok(m) if m > 0 => left -= m,
                _ => break,
            }
        }
        let mut scratch = [0u8; 4096];
        while left > 0 {
            let want = left.min(scratch.len());
            match nix::unistd::read(source, &mut scratch[..want]) {
                Ok(m) if m > 0 => left -= m,
                _ => break,
            }
        }
        dropped
    }

    /// Writes what is pending, waiting for a slow reader, but not for one that takes nothing
    /// for `FINAL_FLUSH_PATIENCE` or when steady is told to stop: then this and all that
    /// follows is dropped. Returns bytes dropped.
    fn flush(&mut self) -> usize {
        let mut progress_at = Instant::now();
        while self.wants_write() {
            if self.gave_up {
                return self.drop_pending();
            }
            let before = self.backlog();
            self.write();
            if self.backlog() != before {
                progress_at = Instant::now();
                continue;
            }
            let waited = progress_at.elapsed();
            if !self.wants_write() {
                break;
            }
            if waited >= FINAL_FLUSH_PATIENCE || sys::is_pending(&sys::STOP_SIGNALS) {
                // Once, not for each piece still to come (a full 1 MiB pipe is many).
                self.gave_up = true;
                return self.drop_pending();
            }
            if let Some(sink) = &self.sink {
                let _ = poll(
                    &mut [PollFd::new(sink.as_fd(), PollFlags::POLLOUT)],
                    timeout_until(Instant::now(), progress_at + FINAL_FLUSH_PATIENCE),
                );
            }
        }
        0
    }

    /// Bytes taken from the command but not yet at the sink.
    fn backlog(&self) -> usize {
        match &self.zero_copy {
            Some(z) => z.ahead,
            None => self.pending.len() - self.sent,
        }
    }

    fn into_tail(mut self) -> Vec<u8> {
        if let Some(mut z) = self.zero_copy.take() {
            z.empty_into(&mut self.tail);
        }
        keep_tail(&mut self.tail);
        self.tail
    }
}

/// Decides when an attempt has stalled: for the whole window, nothing read from it, its
/// tree's CPU time below the threshold, and no byte moved by any of its processes (read or
/// written, sockets included). The tree is looked at only while its output is silent: a
/// command that prints needs no sampling at all. Each sample walks the tree (one `stat` per
/// process) and reads what each process read and wrote (one `io` per process), the latter
/// only when the CPU alone does not already keep the window busy; the tree's sockets are
/// asked last, only when everything else was still for the whole window.
struct StallWatch {
    window: Duration,
    threshold: u64,
    every: Duration,
    next_sample: Instant,
    last_sample: Instant,
    last_output: Instant,
    /// When a sample last saw a byte moved.
    last_io: Instant,
    /// Bytes read and written by each live process `(pid, start time)` at the sample that
    /// last read them; empty when the next reading is a new baseline.
    io: HashMap<(i32, u64), u64>,
    /// The tree's CPU ticks at the last sample; `None` when the next is a new baseline.
    last_raw: Option<u64>,
    /// CPU ticks seen in the samples so far; only grows.
    total: u64,
    /// (when, total), oldest first, reaching back to just before the window.
    samples: VecDeque<(Instant, u64)>,
}

impl StallWatch {
    fn new(window: Duration, now: Instant) -> StallWatch {
        let per_window = window.as_millis() as u64 * sys::clock_ticks() * STALL_CPU_PERCENT;
        let every = STALL_SAMPLE.min(window / 8).max(Duration::from_millis(50));
        StallWatch {
            window,
            threshold: (per_window / 100_000).max(2),
            every,
            next_sample: now + every,
            last_sample: now,
            last_output: now,
            last_io: now,
            io: HashMap::new(),
            last_raw: None,
            total: 0,
            samples: VecDeque::new(),
        }
    }

    /// Samples the tree when a sample is due; true when it has stalled.
    fn check(&mut self, now: Instant) -> bool {
        if now < self.next_sample {
            return false;
        }
        self.next_sample = now + self.every;
        // A gap far longer than the sampling interval means steady itself was stopped
        // (Ctrl-Z) or the machine slept: that silence was not the command's.
        if now.duration_since(self.last_sample) > self.every * 5 {
            self.last_output = now;
        }
        self.last_sample = now;
        if now.duration_since(self.last_output) < self.every {
            // It prints: no need to look. Sampling starts afresh once it is silent.
            self.samples.clear();
            self.io.clear();
            self.last_raw = None;
            return false;
        }
        let (raw, live) = tree::activity();
        // A reading lower than the last (a process reaped between two reads of /proc) is
        // not negative work.
        let busy = self.last_raw.map_or(0, |last| raw.saturating_sub(last));
        self.last_raw = Some(raw);
        self.total += busy;
        self.samples.push_back((now, self.total));
        if busy >= self.threshold {
            // This interval alone keeps the window busy for a whole window more, whatever
            // was read or written: so that is not read.
            self.io.clear();
            self.last_io = now;
        } else {
            self.read_io(now, &live);
        }
        let Some(start) = now.checked_sub(self.window) else {
            return false;
        };
        while self.samples.len() >= 2 && self.samples[1].0 <= start {
            self.samples.pop_front();
        }
        let (first_at, first_total) = self.samples[0];
        let still = first_at <= start
            && self.last_output <= start
            && self.last_io <= start
            && self.total - first_total < self.threshold;
        if !still {
            return false;
        }
        // Last, and only now: the sockets, whose `recv` and `send` the counters above miss.
        let pids: Vec<i32> = live.iter().map(|(pid, _)| *pid).collect();
        if let Some(at) = progress::last_socket_traffic(&pids).and_then(|ago| now.checked_sub(ago))
            && at > start
        {
            self.last_io = self.last_io.max(at);
            return false;
        }
        true
    }

    /// Reads each live process's bytes read and written; any growth since the last reading
    /// is progress. A process new since then is only a baseline: what it moved shows in its
    /// parent's counters when it is reaped, and in its own from the next sample on.
    fn read_io(&mut self, now: Instant, live: &[(i32, u64)]) {
        let mut moved = false;
        let mut next = HashMap::with_capacity(live.len());
        for &id in live {
            let Some(bytes) = progress::io_bytes(id.0) else {
                continue;
            };
            moved |= self.io.get(&id).is_some_and(|before| bytes > *before);
            next.insert(id, bytes);
        }
        if moved {
            self.last_io = now;
        }
        self.io = next;
    }
}

/// The command's stdout and stderr, set up before it is spawned.
struct Plumbing {
    child_out: Stdio,
    child_err: Stdio,
    streams: Vec<Stream>,
    ptys: Vec<Pty>,
    /// Some output goes to steady's terminal directly (no pty could be had): steady cannot
    /// see it.
    blind: bool,
}

impl Plumbing {
    fn new(spec: &AttemptSpec) -> io::Result<Plumbing> {
        let mut p = Plumbing {
            child_out: Stdio::null(),
            child_err: Stdio::null(),
            streams: Vec::new(),
            ptys: Vec::new(),
            blind: false,
        };
        let shared = matches!(spec.stdout, Output::Terminal)
            && matches!(spec.stderr, Output::Terminal)
            && pty::stdout_and_stderr_same_terminal();
        if shared {
            match p.pty(1, Role::Both)? {
                Some(slave) => {
                    p.child_err = Stdio::from(slave.try_clone()?);
                    p.child_out = Stdio::from(slave);
                }
                None => {
                    p.child_out = Stdio::inherit();
                    p.child_err = Stdio::inherit();
                }
            }
            return Ok(p);
        }
        p.child_out = p.stdio(spec.stdout, 1, Role::Stdout)?;
        p.child_err = p.stdio(spec.stderr, 2, Role::Stderr)?;
        Ok(p)
    }

    fn stdio(&mut self, output: Output, fd: i32, role: Role) -> io::Result<Stdio> {
        if matches!(output, Output::Terminal) {
            return Ok(match self.pty(fd, role)? {
                Some(slave) => Stdio::from(slave),
                None => Stdio::inherit(),
            });
        }
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let sink = match output {
            Output::Forward => Some(sys::dup_stdio(fd)?),
            Output::Stderr => Some(sys::dup_stdio(2)?),
            Output::Hold(file) => Some(File::from(file.try_clone_to_owned()?)),
            Output::Terminal | Output::Capture => None,
        };
        let mut stream = Stream::new(role, read, sink)?;
        stream.held = matches!(output, Output::Hold(_));
        stream.allow_zero_copy();
        self.streams.push(stream);
        Ok(Stdio::from(write))
    }

    /// A pty copied to steady's `fd`; `None` (the command then writes to the terminal
    /// directly) when none can be had.
    fn pty(&mut self, fd: i32, role: Role) -> io::Result<Option<OwnedFd>> {
        match Pty::like(fd) {
            Ok((pty, slave)) => {
                let source = pty.master.try_clone()?;
                let sink = sys::dup_stdio(fd)?;
                self.streams.push(Stream::new(role, source, Some(sink))?);
                self.ptys.push(pty);
                Ok(Some(slave))
            }
            Err(e) => {
                crate::ui::detail(&format!(
                    "no pseudo-terminal for the command ({e}); it writes to the terminal directly, unseen by steady"
                ));
                self.blind = true;
                Ok(None)
            }
        }
    }
}

fn timeout_until(now: Instant, at: Instant) -> PollTimeout {
    let ms = at
        .saturating_duration_since(now)
        .as_millis()
        .clamp(1, i32::MAX as u128) as i32;
    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
}

/// Told the processes of a running attempt from time to time, so that if steady is killed
/// with SIGKILL the next holder of the lock can stop them (see `lock::leftovers`).
pub trait Recorder {
    /// The attempt's live processes now, as `(pid, start time)`.
    fn note(&mut self, procs: &[(i32, u64)]);
}

/// How often a running attempt's processes are recorded.
const RECORD_EVERY: Duration = Duration::from_millis(500);

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

/// The installer said it waits for a lock of its own ([`AttemptSpec::lock_wait`]).
#[derive(Debug, Clone)]
struct LockWait {
    /// When it said so.
    since: Instant,
    /// When its tree was last seen waiting on a lock held outside it.
    seen: Option<Instant>,
    next_look: Instant,
}

/// How long after the installer said it waits steady looks for the waiting process before it
/// takes the words back (the installer may not use a kernel lock steady can see).
const LOCK_WAIT_CONFIRM: Duration = Duration::from_secs(5);

/// How often a lock wait is looked at: often at first, to find the waiter before a short
/// stall window ends, then once a second.
const LOCK_LOOK_FIRST: Duration = Duration::from_millis(200);
const LOCK_LOOK_EVERY: Duration = Duration::from_secs(1);

/// The part of a read that a text split across two reads needs from before it.
const TEXT_OVERLAP: usize = 256;

/// Runs one of steady's own helper commands to its end, without a watcher or stdin.
/// Leftover processes of a failed attempt are ended before this returns; those of a
/// successful one (daemons the installer meant to start) are left alone.
pub fn run(spec: &AttemptSpec, signals: &SignalPipe) -> AttemptResult {
    run_watched(spec, Hooks::default(), signals)
}

/// [`run`], with `hooks`: when the watcher's check fails, the attempt ends as
/// [`StopReason::LockLost`].
pub fn run_watched(spec: &AttemptSpec, hooks: Hooks, signals: &SignalPipe) -> AttemptResult {
    let started = Instant::now();
    let failed = |e: &io::Error| AttemptResult {
        ending: Ending::from_spawn_error(e),
        duration: started.elapsed(),
        stdout_tail: Vec::new(),
        stderr_tail: Vec::new(),
        lock_holder: None,
    };
    let mut hooks = hooks;
    let (stdin, feed) = match hooks.stdin.as_deref_mut().map(Replay::for_attempt) {
        None => (Stdio::null(), None),
        Some(Ok(pair)) => pair,
        Some(Err(e)) => return failed(&e),
    };
    let plumbing = match Plumbing::new(spec) {
        Ok(p) => p,
        Err(e) => return failed(&e),
    };
    let Plumbing {
        child_out,
        child_err,
        streams,
        ptys,
        blind,
    } = plumbing;
    let mut cmd = Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..])
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(stdin)
        .stdout(child_out)
        .stderr(child_err);
    if !spec.same_group {
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    }
    sys::die_with_parent(&mut cmd);
    let mut cgroup = Cgroup::create();
    let spawned = match cgroup.as_mut() {
        Some(cg) => cg.spawn_inside(|| cmd.spawn()),
        None => cmd.spawn(),
    };
    // Close steady's copies of the command's ends of the pipes and ptys, so that end of file
    // arrives when the command's tree is done with them.
    drop(cmd);
    let pid = match spawned {
        Ok(child) => child.id() as i32,
        Err(e) => return failed(&e),
    };
    let mut watch = Watch::new(spec, hooks, signals, pid, started, streams, ptys, feed);
    watch.cgroup = cgroup;
    if blind && watch.stall.take().is_some() {
        crate::ui::detail("stall detection is off: steady cannot see the command's output");
    }
    watch.watch();
    watch.end()
}

/// One running attempt, watched by a single-threaded loop: [`Watch::look`] decides (ended,
/// time up, stalled, lock lost), [`Watch::wait`] sleeps in `poll` and moves output and input,
/// [`Watch::on_signals`] acts on what steady was sent, and [`Watch::end`] ends the tree and
/// collects the result.
struct Watch<'s, 'h> {
    spec: &'s AttemptSpec<'s>,
    hooks: Hooks<'h>,
    signals: &'s SignalPipe,
    started: Instant,
    pid: i32,
    /// The command's own process group, when it has one.
    pgid: Option<i32>,
    /// The attempt's own cgroup, where steady could make one.
    cgroup: Option<Cgroup>,
    /// When the watchdog stops the attempt, and why: counted from the command's start.
    limit: Option<(Instant, StopReason)>,
    streams: Vec<Stream>,
    ptys: Vec<Pty>,
    feed: Option<Feed>,
    stall: Option<StallWatch>,
    lock_wait: Option<LockWait>,
    /// Who held the lock the installer last waited for.
    lock_holder: Option<String>,
    exit: Option<(Ended, Instant)>,
    stopped: Option<StopReason>,
    interrupted: Option<Arrived>,
    kill_at: Option<Instant>,
    killed: bool,
    check_children: bool,
    watcher_ready: bool,
    next_record: Instant,
}

impl<'s, 'h> Watch<'s, 'h> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        spec: &'s AttemptSpec<'s>,
        hooks: Hooks<'h>,
        signals: &'s SignalPipe,
        pid: i32,
        started: Instant,
        streams: Vec<Stream>,
        ptys: Vec<Pty>,
        feed: Option<Feed>,
    ) -> Self {
        // The timeout starts with the command: a wait for the lock before it is counted by
        // --deadline and --lock-timeout only.
        let spawned = Instant::now();
        let limit = match (spec.timeout, spec.deadline) {
            (Some(t), Some(d)) if d <= spawned + t => Some((d, StopReason::Deadline)),
            (Some(t), _) => Some((spawned + t, StopReason::Timeout)),
            (None, Some(d)) => Some((d, StopReason::Deadline)),
            (None, None) => None,
        };
        Watch {
            spec,
            hooks,
            signals,
            started,
            pid,
            pgid: (!spec.same_group).then_some(pid),
            cgroup: None,
            limit,
            streams,
            ptys,
            feed,
            stall: spec.stall.map(|w| StallWatch::new(w, started)),
            lock_wait: None,
            lock_holder: None,
            exit: None,
            stopped: None,
            interrupted: None,
            kill_at: None,
            killed: false,
            check_children: true,
            watcher_ready: false,
            next_record: spawned,
        }
    }

    /// Neither ended nor being stopped.
    fn running(&self) -> bool {
        self.exit.is_none() && self.stopped.is_none() && self.interrupted.is_none()
    }

    /// The loop: look, wait, act on signals, until the command has exited and its output is
    /// drained.
    fn watch(&mut self) {
        while self.look() {
            self.wait();
            self.on_signals();
        }
    }

    /// Checks everything due now; false when the loop is over.
    fn look(&mut self) -> bool {
        // Only after a SIGCHLD or a wake-up that was not output: a command printing fast
        // wakes the loop thousands of times a second, each not worth a syscall more.
        if self.check_children {
            if self.exit.is_none() {
                self.exit = sys::exit_status_keep(self.pid).map(|e| (e, Instant::now()));
            }
            tree::reap_orphans(Some(self.pid));
            self.check_children = false;
        }
        let now = Instant::now();
        if let Some((_, at)) = self.exit {
            let reading = self.streams.iter().any(|s| s.source.is_some());
            if !reading || now >= at + DRAIN_AFTER_EXIT {
                return false;
            }
            // Nobody reads the command's stdin any more.
            self.feed = None;
        }
        if self.running() {
            self.check_lock_wait(now);
        }
        if self.running() {
            self.check_limits(now);
        }
        self.check_watcher(now);
        if let Some(at) = self.kill_at
            && now >= at
            && !self.killed
        {
            tree::freeze_and_kill(self.pgid, self.cgroup.as_ref());
            self.killed = true;
        }
        if self.running() && now >= self.next_record {
            self.next_record = now + RECORD_EVERY;
            if let Some(r) = self.hooks.record.as_deref_mut() {
                r.note(&tree::snapshot());
            }
        }
        true
    }

    /// Time up or stalled: TERM now, KILL after the grace.
    fn check_limits(&mut self, now: Instant) {
        let reason = match self.limit {
            Some((limit, reason)) if now >= limit => Some(reason),
            _ => self
                .stall
                .as_mut()
                .and_then(|s| s.check(now).then_some(StopReason::Stall)),
        };
        if let Some(reason) = reason {
            self.stopped = Some(reason);
            tree::signal_tree(self.pgid, Signal::SIGTERM);
            self.kill_at = Some(now + self.spec.kill_after);
        }
    }

    /// While the installer says it waits for its own lock: whether one of its processes
    /// really waits on a kernel lock held outside the attempt. While it does, the attempt is
    /// waiting, not hung (the stall clock is held), and `--lock-timeout` bounds the wait. A
    /// lock held inside the tree is a deadlock of the tree itself, which stall detection
    /// stops as any other.
    fn check_lock_wait(&mut self, now: Instant) {
        let Some(w) = self.lock_wait.as_mut() else {
            return;
        };
        if now < w.next_look {
            return;
        }
        let Some(find) = self.hooks.awaited else {
            self.lock_wait = None;
            return;
        };
        let tree = tree::descendants();
        let outside = find(&tree).filter(|a| a.holder.is_none_or(|h| !tree.contains(&h)));
        let Some(a) = outside else {
            if w.seen.is_some() || now >= w.since + LOCK_WAIT_CONFIRM {
                // It has the lock now (or never waited on one steady can see): watched
                // as before, its silence counted from now.
                if w.seen.is_some()
                    && let Some(s) = self.stall.as_mut()
                {
                    s.last_output = now;
                }
                self.lock_wait = None;
            } else {
                w.next_look = now + LOCK_LOOK_FIRST;
            }
            return;
        };
        w.next_look = now + LOCK_LOOK_EVERY;
        if w.seen.is_none() {
            let on = a.path.map(|p| format!(" on `{p}`")).unwrap_or_default();
            let limit = match self.spec.lock_wait_limit {
                Some(d) => format!("up to --lock-timeout {}", crate::ui::human(d)),
                None => "as long as it takes (--lock-timeout bounds it)".to_owned(),
            };
            crate::ui::warn(&format!(
                "the command waits for its own lock{on}, held by {} (outside this run): a wait, not a hang; waiting {limit}",
                a.holder_words
            ));
        }
        w.seen = Some(now);
        self.lock_holder = Some(a.holder_words);
        if let Some(s) = self.stall.as_mut() {
            s.last_output = now;
        }
        if let Some(limit) = self.spec.lock_wait_limit
            && now >= w.since + limit
        {
            self.stopped = Some(StopReason::LockWait);
            tree::signal_tree(self.pgid, Signal::SIGTERM);
            self.kill_at = Some(now + self.spec.kill_after);
        }
    }

    /// Whether output just read from stream `i` (its last `n` bytes) says the installer
    /// waits for its own lock.
    fn says_lock_wait(&self, i: usize, n: usize) -> bool {
        if self.spec.lock_wait.is_empty() {
            return false;
        }
        let recent = self.streams[i].recent(n + TEXT_OVERLAP);
        self.spec
            .lock_wait
            .iter()
            .any(|t| recent.windows(t.len()).any(|w| w == t.as_bytes()))
    }

    /// The lock beyond this machine, when its check is due.
    fn check_watcher(&mut self, now: Instant) {
        if !self.running() {
            return;
        }
        let ready = std::mem::take(&mut self.watcher_ready);
        let Some(w) = self.hooks.watcher.as_deref_mut() else {
            return;
        };
        if (ready || w.next_check().is_some_and(|t| now >= t)) && w.check(now).is_err() {
            // No grace: while the command goes on, another machine may already be writing
            // beside it, and a TERM handler would only write more.
            self.stopped = Some(StopReason::LockLost);
            tree::freeze_and_kill(self.pgid, self.cgroup.as_ref());
            self.kill_at = Some(now);
            self.killed = true;
        }
    }

    /// When the loop must look again even if nothing happens.
    fn next_wake(&self, now: Instant) -> PollTimeout {
        let mut wake: Vec<Instant> = Vec::new();
        if self.running() {
            wake.extend(self.limit.map(|(l, _)| l));
            wake.extend(self.stall.as_ref().map(|s| s.next_sample));
            wake.extend(self.lock_wait.as_ref().map(|w| w.next_look));
            wake.extend(self.hooks.watcher.as_deref().and_then(|w| w.next_check()));
            if self.hooks.record.is_some() {
                wake.push(self.next_record);
            }
        }
        if !self.killed {
            wake.extend(self.kill_at);
        }
        wake.extend(self.exit.map(|(_, at)| at + DRAIN_AFTER_EXIT));
        wake.iter()
            .min()
            .map_or(PollTimeout::NONE, |w| timeout_until(now, *w))
    }

    /// Sleeps in `poll` until a signal, output, a writable sink, input for the command, the
    /// watcher's descriptor or the next wake time; then moves what is ready.
    fn wait(&mut self) {
        let timeout = self.next_wake(Instant::now());
        let mut fds = vec![PollFd::new(self.signals.fd(), PollFlags::POLLIN)];
        let watch_fd = self
            .running()
            .then(|| self.hooks.watcher.as_deref().and_then(|w| w.fd()))
            .flatten();
        let has_watch_fd = watch_fd.is_some();
        fds.extend(watch_fd.map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
        let feed_at = fds.len();
        let feed_fd = match (&self.feed, self.hooks.stdin.as_deref()) {
            (Some(f), Some(r)) => f.wants(r),
            _ => None,
        };
        let has_feed_fd = feed_fd.is_some();
        fds.extend(feed_fd.map(|(fd, flags)| PollFd::new(fd, flags)));
        let first_stream = fds.len();
        let mut watched = Vec::new();
        for (i, s) in self.streams.iter().enumerate() {
            if s.wants_read()
                && let Some(fd) = &s.source
            {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                watched.push(i);
            } else if s.wants_write()
                && let Some(sink) = &s.sink
            {
                fds.push(PollFd::new(sink.as_fd(), PollFlags::POLLOUT));
                watched.push(i);
            }
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
        let any = |fd: &PollFd| fd.any().unwrap_or(false);
        self.watcher_ready = has_watch_fd && any(&fds[1]);
        let feed_ready = has_feed_fd && any(&fds[feed_at]);
        if any(&fds[0]) {
            self.signals.drain();
        }
        let ready: Vec<usize> = watched
            .iter()
            .zip(&fds[first_stream..])
            .filter(|(_, fd)| any(fd))
            .map(|(i, _)| *i)
            .collect();
        drop(fds);
        self.check_children |= ready.is_empty() && !feed_ready;
        self.move_output(&ready);
        if let (Some(f), Some(r)) = (self.feed.as_mut(), self.hooks.stdin.as_deref_mut()) {
            f.step(r, feed_ready);
        }
    }

    fn move_output(&mut self, ready: &[usize]) {
        for &i in ready {
            let s = &mut self.streams[i];
            if s.wants_write() {
                s.write();
                continue;
            }
            let n = s.read();
            if n == 0 {
                continue;
            }
            let now = Instant::now();
            if let Some(w) = self.stall.as_mut() {
                w.last_output = now;
            }
            if self.lock_wait.is_none() && self.says_lock_wait(i, n) {
                self.lock_wait = Some(LockWait {
                    since: now,
                    seen: None,
                    next_look: now,
                });
            }
        }
    }

    /// Acts on the signals that arrived: a child ended, the window changed, or steady was
    /// told to stop.
    fn on_signals(&mut self) {
        for arrived in sys::take_signals() {
            match arrived.signal {
                Signal::SIGCHLD => self.check_children = true,
                Signal::SIGWINCH => self.resize(),
                sig if sys::STOP_SIGNALS.contains(&sig) => self.stop_signal(arrived),
                _ => {}
            }
        }
    }

    fn resize(&mut self) {
        let mut changed = false;
        for p in &mut self.ptys {
            changed |= p.sync_size();
        }
        // The pty is nobody's controlling terminal, so the kernel does not tell the command;
        // and in steady's group it may have read the size before steady updated it.
        if changed && self.exit.is_none() {
            match self.pgid {
                Some(pg) => sys::kill_group(pg, Signal::SIGWINCH),
                None => {
                    for p in tree::descendants() {
                        sys::kill(p, Signal::SIGWINCH);
                    }
                }
            }
        }
    }

    fn stop_signal(&mut self, arrived: Arrived) {
        let sig = arrived.signal;
        let again = self.interrupted.is_some();
        self.interrupted = Some(arrived);
        if self.exit.is_none() {
            match self.pgid {
                Some(pg) => sys::kill_group(pg, sig),
                // In steady's group a terminal's signal already reached the command.
                None if arrived.from_process => sys::kill(self.pid, sig),
                None => {}
            }
        }
        // A second stop signal (a second Ctrl-C, a CI runner's TERM after its INT) means: no
        // more grace.
        let now = Instant::now();
        if again {
            self.kill_at = Some(self.kill_at.map_or(now, |k| k.min(now)));
        } else {
            self.kill_at.get_or_insert(now + self.spec.kill_after);
        }
    }

    /// How the attempt ended, from what the loop saw.
    fn ending(&self) -> Ending {
        let (status, _) = self
            .exit
            .expect("the loop ends only after the command exited");
        match (self.interrupted, self.stopped, status) {
            (Some(a), _, ended) => Ending::Interrupted {
                signal: a.signal,
                ended,
            },
            (None, Some(reason), _) => Ending::Stopped(reason),
            (None, None, Ended::Exited(c)) => Ending::Exited(c),
            (None, None, Ended::Signaled(s)) => Ending::Signaled(s),
        }
    }

    /// Ends what is left of the tree (unless the command succeeded: its daemons stay, and
    /// keep their output through a relay), flushes the output and returns the result.
    fn end(mut self) -> AttemptResult {
        let ending = self.ending();
        if ending.succeeded() {
            sys::reap(self.pid);
        } else {
            let left = tree::end_all(
                self.signals,
                &tree::TreeKill {
                    pgid: self.pgid,
                    cgroup: self.cgroup.as_ref(),
                    leader: self.pid,
                    termed: self.stopped.is_some(),
                    kill_at: self
                        .kill_at
                        .unwrap_or_else(|| Instant::now() + self.spec.kill_after),
                },
            );
            if left > 0 {
                crate::ui::warn(&format!(
                    "{left} process(es) of the attempt would not die (uninterruptible sleep?)"
                ));
            }
        }
        // Whoever looks next (the back-off, a clean) must also see that steady was told to
        // stop.
        if let Some(a) = self.interrupted {
            sys::repost(a);
        }
        flush_all(&mut self.streams);
        if ending.succeeded() {
            hand_over_leftover_output(&mut self.streams);
        }
        say_splice(&self.streams);
        let mut r = AttemptResult {
            ending,
            duration: self.started.elapsed(),
            stdout_tail: Vec::new(),
            stderr_tail: Vec::new(),
            lock_holder: self.lock_holder.take(),
        };
        for s in self.streams {
            match s.role {
                Role::Stdout => r.stdout_tail = s.into_tail(),
                Role::Stderr | Role::Both => r.stderr_tail = s.into_tail(),
            }
        }
        r
    }
}

/// Copies what is still to come (bounded) and pending to the sinks.
fn flush_all(streams: &mut [Stream]) {
    let mut dropped = 0;
    for s in streams {
        let mut budget = FINAL_READ_MAX;
        loop {
            dropped += s.flush();
            let n = if budget > 0 { s.read() } else { 0 };
            if n == 0 {
                dropped += s.flush();
                break;
            }
            budget = budget.saturating_sub(n);
        }
    }
    if dropped > 0 {
        crate::ui::warn(&format!(
            "dropped the last {dropped} bytes of the command's output: nothing read them"
        ));
    }
}

/// A forwarded stream still open after a successful command has a writer left: a daemon it
/// started. Its reading end goes to a relay that outlives steady (see `relay`).
fn hand_over_leftover_output(streams: &mut [Stream]) {
    for s in streams {
        let fd = match s.role {
            Role::Stdout => 1,
            Role::Stderr | Role::Both => 2,
        };
        if s.sink.is_none() || s.backlog() > 0 {
            continue;
        }
        let Some(source) = s.source.take() else {
            continue;
        };
        if let Err(e) = relay::hand_over(source, fd) {
            crate::ui::detail(&format!(
                "cannot pass on the output of the command's leftover processes ({e}); their next write fails"
            ));
        }
    }
}

/// Said only at the end: a line in the middle would land inside the command's own stderr.
fn say_splice(streams: &[Stream]) {
    for s in streams {
        let name = match s.role {
            Role::Stdout => "stdout",
            Role::Stderr | Role::Both => "stderr",
        };
        if s.spliced > 0 {
            crate::ui::detail(&format!(
                "{} bytes of the command's {name} moved by splice, without a copy",
                s.spliced
            ));
        }
        if let Some(e) = &s.splice_refused {
            crate::ui::detail(&format!(
                "splice refused the command's {name} ({e}); it was copied instead"
            ));
        }
    }
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

/// Runs one of the installer's own helper commands (a cache query or clean), capturing its
/// output, bounded by `timeout`.
pub fn run_helper(argv: &[OsString], timeout: Duration, signals: &SignalPipe) -> AttemptResult {
    run_helper_watched(argv, timeout, None, signals)
}

/// [`run_helper`] under `watcher` (a clean under the lock beyond this machine): when its check
/// fails, the helper is killed at once and ends as [`StopReason::LockLost`].
pub fn run_helper_watched(
    argv: &[OsString],
    timeout: Duration,
    watcher: Option<&mut dyn Watcher>,
    signals: &SignalPipe,
) -> AttemptResult {
    let spec = AttemptSpec {
        argv,
        env: &[],
        timeout: Some(timeout),
        deadline: None,
        stall: None,
        lock_wait: &[],
        lock_wait_limit: None,
        kill_after: Duration::from_secs(2),
        stdout: Output::Capture,
        stderr: Output::Capture,
        same_group: false,
    };
    match watcher {
        Some(w) => run_watched(
            &spec,
            Hooks {
                watcher: Some(w),
                ..Hooks::default()
            },
            signals,
        ),
        None => run(&spec, signals),
    }
}
