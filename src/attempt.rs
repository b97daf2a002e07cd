//! One attempt: spawn the command, pass its output through unchanged while keeping a bounded
//! tail, and watch it with a single-threaded loop (`poll` on the output pipes and the signal
//! pipe) until it ends, its time is up, or steady is told to stop. A stopped attempt gets TERM,
//! then KILL after the grace, and no process of its tree outlives it.
//!
//! Process groups: in CI, Docker and scripts the command gets its own process group, so one
//! `killpg` reaches it all and signals steady receives are forwarded to that group. When a
//! developer runs steady in the foreground of a terminal, the command stays in steady's group
//! instead: it keeps the terminal (prompts read the keyboard, Ctrl-C and Ctrl-Z reach it as
//! without steady), and the subreaper tree walk still finds every process to kill.

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;

use crate::lock::is_stop_signal;
use crate::sys::{self, Ended, SignalPipe};
use crate::tree;

/// How much of each output stream is kept for classification, whatever the command prints.
pub const TAIL_BYTES: usize = 64 * 1024;

/// After the command exits, how long steady keeps copying output that its leftover children
/// still write to the inherited pipes.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);

/// Why the watchdog stopped an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Timeout,
    Deadline,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The command writes to steady's own stream directly (a terminal stays a terminal).
    Inherit,
    /// Through a pipe that steady copies to its own stream, keeping a tail.
    Forward,
    /// Kept for steady only (the installer's own cache queries and cleans).
    Capture,
}

pub struct AttemptSpec<'a> {
    pub argv: &'a [OsString],
    pub env: &'a [(OsString, OsString)],
    /// When the watchdog stops the attempt, and why.
    pub limit: Option<(Instant, StopReason)>,
    pub kill_after: Duration,
    pub stdout: Output,
    pub stderr: Output,
    /// Keep the command in steady's process group (steady owns the terminal's foreground).
    pub same_group: bool,
}

pub struct AttemptResult {
    pub ending: Ending,
    pub duration: Duration,
    pub stdout_tail: Vec<u8>,
    pub stderr_tail: Vec<u8>,
}

struct Stream {
    source: Option<OwnedFd>,
    sink: Option<std::fs::File>,
    tail: Vec<u8>,
}

impl Stream {
    fn new(source: Option<OwnedFd>, output: Output, our_fd: i32) -> io::Result<Stream> {
        if let Some(fd) = &source {
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            )?;
        }
        let sink = if output == Output::Forward {
            Some(sys::dup_stdio(our_fd)?)
        } else {
            None
        };
        Ok(Stream {
            source,
            sink,
            tail: Vec::new(),
        })
    }

    /// Copies what is readable now; returns false when the stream is finished.
    fn pump(&mut self) -> bool {
        let Some(fd) = &self.source else { return false };
        let mut buf = [0u8; 64 * 1024];
        loop {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => {
                    self.source = None;
                    return false;
                }
                Ok(n) => {
                    let chunk = &buf[..n];
                    if let Some(sink) = &mut self.sink
                        && sink.write_all(chunk).is_err()
                    {
                        // Our reader went away: close the pipe so the command sees EPIPE, as
                        // it would have without steady in between.
                        self.sink = None;
                        self.source = None;
                        return false;
                    }
                    self.tail.extend_from_slice(chunk);
                    if self.tail.len() > 2 * TAIL_BYTES {
                        self.tail.drain(..self.tail.len() - TAIL_BYTES);
                    }
                }
                Err(nix::errno::Errno::EAGAIN) => return true,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => {
                    self.source = None;
                    return false;
                }
            }
        }
    }

    fn into_tail(mut self) -> Vec<u8> {
        if self.tail.len() > TAIL_BYTES {
            self.tail.drain(..self.tail.len() - TAIL_BYTES);
        }
        self.tail
    }
}

fn stdio_for(output: Output) -> Stdio {
    match output {
        Output::Inherit => Stdio::inherit(),
        Output::Forward | Output::Capture => Stdio::piped(),
    }
}

/// Runs one attempt to its end. Leftover processes of a failed attempt are ended before this
/// returns; those of a successful one (daemons the installer meant to start) are left alone.
pub fn run(spec: &AttemptSpec, signals: &SignalPipe) -> AttemptResult {
    let started = Instant::now();
    let result = |ending, out: Option<Stream>, err: Option<Stream>| AttemptResult {
        ending,
        duration: started.elapsed(),
        stdout_tail: out.map(Stream::into_tail).unwrap_or_default(),
        stderr_tail: err.map(Stream::into_tail).unwrap_or_default(),
    };
    let mut cmd = Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..])
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::inherit())
        .stdout(stdio_for(spec.stdout))
        .stderr(stdio_for(spec.stderr));
    if !spec.same_group {
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    }
    sys::die_with_parent(&mut cmd);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return result(spawn_error(&e), None, None),
    };
    let pid = child.id() as i32;
    let pgid = (!spec.same_group).then_some(pid);
    let streams = (|| -> io::Result<(Stream, Stream)> {
        Ok((
            Stream::new(child.stdout.take().map(OwnedFd::from), spec.stdout, 1)?,
            Stream::new(child.stderr.take().map(OwnedFd::from), spec.stderr, 2)?,
        ))
    })();
    let (mut out, mut err) = match streams {
        Ok(s) => s,
        Err(e) => {
            tree::end_all(signals, pgid, Duration::ZERO, false);
            return result(Ending::SpawnFailed(e.to_string()), None, None);
        }
    };

    let mut status: Option<Ended> = None;
    let mut exited_at: Option<Instant> = None;
    let mut stopped: Option<StopReason> = None;
    let mut interrupted: Option<Signal> = None;
    let mut kill_at: Option<Instant> = None;
    loop {
        while let Some((p, e)) = sys::reap_any() {
            if p == pid {
                status = Some(e);
                exited_at = Some(Instant::now());
            }
        }
        let now = Instant::now();
        if let Some(at) = exited_at {
            let pipes_open = out.source.is_some() || err.source.is_some();
            if !pipes_open || now >= at + DRAIN_AFTER_EXIT {
                break;
            }
        }
        if stopped.is_none()
            && status.is_none()
            && let Some((limit, reason)) = spec.limit
            && now >= limit
        {
            stopped = Some(reason);
            tree::signal_tree(pgid, Signal::SIGTERM);
            kill_at = Some(now + spec.kill_after);
        }
        if status.is_none()
            && let Some(at) = kill_at
            && now >= at
        {
            tree::signal_tree(pgid, Signal::SIGKILL);
            kill_at = None;
        }
        let mut wake = Vec::new();
        if status.is_none() {
            wake.extend(spec.limit.filter(|_| stopped.is_none()).map(|(l, _)| l));
            wake.extend(kill_at);
        }
        wake.extend(exited_at.map(|at| at + DRAIN_AFTER_EXIT));
        let timeout = wake.iter().min().map_or(PollTimeout::NONE, |w| {
            let ms = w
                .saturating_duration_since(now)
                .as_millis()
                .clamp(1, i32::MAX as u128) as i32;
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
        });

        let mut fds = vec![PollFd::new(signals.fd(), PollFlags::POLLIN)];
        let out_idx = out.source.as_ref().map(|fd| {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let err_idx = err.source.as_ref().map(|fd| {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
        let ready = |i: Option<usize>| i.is_some_and(|i| fds[i].any().unwrap_or(false));
        let (out_ready, err_ready) = (ready(out_idx), ready(err_idx));
        drop(fds);
        if out_ready {
            out.pump();
        }
        if err_ready {
            err.pump();
        }
        signals.drain();
        for arrived in sys::take_signals() {
            if !is_stop_signal(arrived.signal) {
                continue;
            }
            interrupted = Some(arrived.signal);
            if status.is_some() {
                continue;
            }
            match pgid {
                Some(pg) => sys::kill_group(pg, arrived.signal),
                // In steady's own group a terminal's signal already reached the command.
                None if arrived.from_process => sys::kill(pid, arrived.signal),
                None => {}
            }
            kill_at.get_or_insert(Instant::now() + spec.kill_after);
        }
    }
    let status = status.expect("loop ends only after the command is reaped");
    let ending = match (stopped, interrupted, status) {
        (Some(reason), _, _) => Ending::Stopped(reason),
        (None, Some(signal), ended) => Ending::Interrupted { signal, ended },
        (None, None, Ended::Exited(c)) => Ending::Exited(c),
        (None, None, Ended::Signaled(s)) => Ending::Signaled(s),
    };
    if !ending.succeeded() {
        let left = tree::end_all(signals, pgid, spec.kill_after, stopped.is_some());
        if left > 0 {
            crate::ui::warn(&format!(
                "{left} process(es) of the attempt would not die (uninterruptible sleep?)"
            ));
        }
    }
    // Copy what is still buffered in the pipes, without waiting for leftover writers.
    out.pump();
    err.pump();
    result(ending, Some(out), Some(err))
}

fn spawn_error(e: &io::Error) -> Ending {
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

/// Runs one of the installer's own helper commands (a cache query or clean), capturing its
/// output, bounded by `timeout`.
pub fn run_helper(argv: &[OsString], timeout: Duration, signals: &SignalPipe) -> AttemptResult {
    let spec = AttemptSpec {
        argv,
        env: &[],
        limit: Some((Instant::now() + timeout, StopReason::Timeout)),
        kill_after: Duration::from_secs(2),
        stdout: Output::Capture,
        stderr: Output::Capture,
        same_group: false,
    };
    run(&spec, signals)
}
