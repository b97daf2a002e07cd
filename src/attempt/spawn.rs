//! Starting an attempt: its stdout and stderr set up ([`Plumbing`]: pipes, ptys, held
//! files), the command spawned in its process group and cgroup, and handed to [`Watch`]; and
//! the entry points [`run`], [`run_watched`], [`run_helper`], [`run_helper_watched`].

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use super::cgroup::Cgroup;
use super::input::Replay;
use super::outcome::{AttemptResult, AttemptSpec, Ending, Hooks, Output, Watcher};
use super::pty::{self, Pty};
use super::stream::{Role, Stream};
use super::watch::Watch;
use crate::sys::{self, ChildIo, SignalPipe, SpawnSpec};

/// The command's stdout and stderr, set up before it is spawned.
pub(super) struct Plumbing {
    child_out: ChildIo,
    child_err: ChildIo,
    streams: Vec<Stream>,
    ptys: Vec<Pty>,
    /// Some output goes to steady's terminal directly (no pty could be had): steady cannot
    /// see it.
    blind: bool,
}

impl Plumbing {
    fn new(spec: &AttemptSpec) -> io::Result<Plumbing> {
        let mut p = Plumbing {
            child_out: ChildIo::Null,
            child_err: ChildIo::Null,
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
                    p.child_err = ChildIo::Fd(slave.try_clone()?);
                    p.child_out = ChildIo::Fd(slave);
                }
                None => {
                    p.child_out = ChildIo::Inherit;
                    p.child_err = ChildIo::Inherit;
                }
            }
            return Ok(p);
        }
        p.child_out = p.stdio(spec.stdout, 1, Role::Stdout)?;
        p.child_err = p.stdio(spec.stderr, 2, Role::Stderr)?;
        Ok(p)
    }

    fn stdio(&mut self, output: Output, fd: i32, role: Role) -> io::Result<ChildIo> {
        if matches!(output, Output::Terminal) {
            return Ok(match self.pty(fd, role)? {
                Some(slave) => ChildIo::Fd(slave),
                None => ChildIo::Inherit,
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
        Ok(ChildIo::Fd(write))
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
        None => (ChildIo::Null, None),
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
    let mut cgroup = Cgroup::create();
    let spawned = sys::spawn(SpawnSpec {
        argv: spec.argv,
        env: spec.env,
        stdin,
        stdout: child_out,
        stderr: child_err,
        new_group: !spec.same_group,
        cgroup: cgroup.as_ref().map(Cgroup::fd),
        caught: &sys::HANDLED,
    });
    // The spawn closed steady's copies of the command's ends of the pipes and ptys, so that
    // end of file arrives when the command's tree is done with them.
    let pid = match spawned {
        Ok(child) => {
            if let Some(cg) = cgroup.as_mut() {
                cg.started(child.in_cgroup);
            }
            child.pid
        }
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
