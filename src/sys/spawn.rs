//! Starting an attempt's command: one `clone3` that puts the child straight into the attempt's
//! cgroup (`CLONE_INTO_CGROUP`, Linux 5.7+), then exec. std's `Command` cannot do that; the
//! alternative, moving steady into the cgroup around the fork and back out, writes
//! `cgroup.procs`, and each such write waits for an RCU grace period (15-35 ms measured here,
//! longer than a whole `flock … timeout … true`). A child born inside costs nothing extra.
//!
//! Needs `unsafe` for the raw `clone3` and for the child's side of it: between the clone and
//! the exec the child runs on a copy of steady's memory and may only make async-signal-safe
//! system calls, so everything it uses (argument and environment vectors, the PATH
//! candidates, `/dev/null`) is prepared beforehand. steady is single-threaded (see
//! `sys/mod.rs`), so no lock can be held by a thread that does not exist in the child.
//!
//! What the child sees matches std's `Command`: an empty signal mask, SIGPIPE and steady's
//! caught signals at their defaults, stdio in place, its own process group when asked, and an
//! exec error (errno) reported back through a close-on-exec pipe. It also gets
//! `PR_SET_PDEATHSIG`, so the direct child dies with steady.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

/// Where one of the command's standard descriptors comes from.
pub enum ChildIo {
    /// steady's own descriptor, as it is.
    Inherit,
    /// `/dev/null`.
    Null,
    /// This descriptor (steady's copy is closed when the spawn returns).
    Fd(OwnedFd),
}

/// What to start.
pub struct SpawnSpec<'a> {
    pub argv: &'a [OsString],
    /// Set on top of steady's own environment.
    pub env: &'a [(OsString, OsString)],
    pub stdin: ChildIo,
    pub stdout: ChildIo,
    pub stderr: ChildIo,
    /// A process group of its own, led by the child.
    pub new_group: bool,
    /// The cgroup directory to start the child in.
    pub cgroup: Option<BorrowedFd<'a>>,
    /// Signals steady catches: reset to their defaults in the child before it unblocks them,
    /// so that none runs steady's handler in the child.
    pub caught: &'a [Signal],
}

/// A started command.
pub struct Spawned {
    pub pid: i32,
    /// The child was born in the requested cgroup.
    pub in_cgroup: bool,
}

/// The kernel's `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2); its layout is ABI.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Everything the child touches, built before the clone.
struct Prepared {
    /// Paths to try in order, as `execvp` would (PATH search done here, with the child's PATH).
    candidates: Vec<CString>,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// `/bin/sh` followed by the candidate and the arguments, for a file without a `#!` line
    /// (ENOEXEC), as `execvp` does it; the candidate slot is filled in by the child.
    sh_argv: Vec<*const libc::c_char>,
    /// (source, target) descriptor pairs for `dup2`.
    dups: [(RawFd, RawFd); 3],
    null: Option<OwnedFd>,
    held: Vec<OwnedFd>,
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The environment the child gets: steady's, with `env` set on top (later entries win).
fn environment(env: &[(OsString, OsString)]) -> io::Result<(Vec<CString>, Option<OsString>)> {
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| !env.iter().any(|(o, _)| o == k))
        .collect();
    for (k, v) in env {
        vars.retain(|(o, _)| o != k);
        vars.push((k.clone(), v.clone()));
    }
    let path = vars
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone());
    let mut envp = Vec::with_capacity(vars.len());
    for (k, v) in vars {
        let mut entry = k.as_bytes().to_vec();
        entry.push(b'=');
        entry.extend_from_slice(v.as_bytes());
        envp.push(cstring(&entry)?);
    }
    Ok((envp, path))
}

/// The files `execvp` would try for `program`, in order.
fn candidates(program: &OsStr, path: Option<&OsStr>) -> io::Result<Vec<CString>> {
    let bytes = program.as_bytes();
    if bytes.is_empty() {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    if bytes.contains(&b'/') {
        return Ok(vec![cstring(bytes)?]);
    }
    // execvp's default search path when PATH is unset.
    let search = path.map_or(&b"/bin:/usr/bin"[..], |p| p.as_bytes());
    let mut out = Vec::new();
    for dir in search.split(|b| *b == b':') {
        // An empty entry means the current directory.
        let full = if dir.is_empty() {
            Path::new(program).to_path_buf()
        } else {
            Path::new(OsStr::from_bytes(dir)).join(program)
        };
        out.push(cstring(full.as_os_str().as_bytes())?);
    }
    Ok(out)
}

impl Prepared {
    fn new(spec: SpawnSpec<'_>) -> io::Result<Prepared> {
        let (envp, path) = environment(spec.env)?;
        let candidates = candidates(&spec.argv[0], path.as_deref())?;
        let argv = spec
            .argv
            .iter()
            .map(|a| cstring(a.as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        let mut p = Prepared {
            candidates,
            argv,
            envp,
            sh_argv: Vec::new(),
            dups: [(-1, -1); 3],
            null: None,
            held: Vec::new(),
        };
        for (slot, io) in [spec.stdin, spec.stdout, spec.stderr]
            .into_iter()
            .enumerate()
        {
            let target = slot as RawFd;
            let source = match io {
                ChildIo::Inherit => continue,
                ChildIo::Null => {
                    if p.null.is_none() {
                        p.null = Some(std::fs::File::open("/dev/null")?.into());
                    }
                    p.null.as_ref().map(|f| f.as_raw_fd())
                }
                ChildIo::Fd(fd) => {
                    // A source among 0-2 could be overwritten by an earlier dup2: move it up.
                    let fd = if fd.as_raw_fd() < 3 {
                        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
                            // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor we own.
                            .map(|n| unsafe { OwnedFd::from_raw_fd(n) })?
                    } else {
                        fd
                    };
                    let raw = fd.as_raw_fd();
                    p.held.push(fd);
                    Some(raw)
                }
            };
            if let Some(source) = source {
                p.dups[slot] = (source, target);
            }
        }
        Ok(p)
    }

    fn pointers(v: &[CString]) -> Vec<*const libc::c_char> {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    }
}

/// Starts the command; `in_cgroup` says whether the cgroup was honoured (a kernel or sandbox
/// without `clone3` gets a plain fork, and the caller must not use the cgroup to kill).
pub fn spawn(spec: SpawnSpec<'_>) -> io::Result<Spawned> {
    let cgroup = spec.cgroup.map(|fd| fd.as_raw_fd());
    let new_group = spec.new_group;
    let caught = spec.caught;
    let mut p = Prepared::new(spec)?;
    let argv = Prepared::pointers(&p.argv);
    let envp = Prepared::pointers(&p.envp);
    let candidates = Prepared::pointers(&p.candidates);
    p.sh_argv = sh_argv(&argv);
    let (err_read, err_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let parent = std::process::id() as i32;

    // No signal may run steady's handler in the child: block them all around the clone; the
    // child resets the dispositions before it unblocks.
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), Some(&mut old))?;
    let child = Child {
        candidates: &candidates,
        argv: &argv,
        envp: &envp,
        sh_argv: &mut p.sh_argv,
        dups: p.dups,
        new_group,
        parent,
        caught,
        err: err_write.as_raw_fd(),
    };
    let mut in_cgroup = false;
    let mut pid = -1;
    if let Some(cg) = cgroup {
        let args = CloneArgs {
            flags: CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: cg as u64,
            ..CloneArgs::default()
        };
        // SAFETY: clone3 without CLONE_VM or a stack is fork: the child gets a copy of this
        // address space and returns here with 0; it then only runs `Child::exec`, which makes
        // async-signal-safe calls on memory prepared above, and never returns.
        let r = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        if r == 0 {
            child.exec();
        }
        if r > 0 {
            pid = r as i32;
            in_cgroup = true;
        }
        // Otherwise (no clone3 under this kernel or seccomp filter, no right to the cgroup):
        // a plain fork below, without the cgroup.
    }
    let forked = if pid > 0 {
        Ok(())
    } else {
        // SAFETY: as for clone3 above: the child only runs `Child::exec`.
        match unsafe { libc::fork() } {
            0 => child.exec(),
            -1 => Err(io::Error::last_os_error()),
            r => {
                pid = r;
                Ok(())
            }
        }
    };
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    forked?;
    drop(err_write);
    drop(p);

    // The child closes its end by exec (close-on-exec) or writes errno and exits.
    let mut buf = [0u8; 4];
    let mut got = 0;
    loop {
        match nix::unistd::read(&err_read, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if got == buf.len() {
                    break;
                }
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    if got == buf.len() {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        return Err(io::Error::from_raw_os_error(i32::from_ne_bytes(buf)));
    }
    Ok(Spawned { pid, in_cgroup })
}

/// The child's half: references into memory the parent prepared.
struct Child<'a> {
    candidates: &'a [*const libc::c_char],
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
    sh_argv: &'a mut Vec<*const libc::c_char>,
    dups: [(RawFd, RawFd); 3],
    new_group: bool,
    parent: i32,
    caught: &'a [Signal],
    err: RawFd,
}

impl Child<'_> {
    /// Runs in the child between clone and exec: async-signal-safe system calls only, no
    /// allocation, no locks. Never returns.
    fn exec(mut self) -> ! {
        // SAFETY: each call below is a plain system call on values prepared by the parent.
        unsafe {
            for sig in self.caught.iter().chain(&[Signal::SIGPIPE]) {
                libc::signal(*sig as libc::c_int, libc::SIG_DFL);
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            for (source, target) in self.dups {
                if source >= 0 && libc::dup2(source, target) < 0 {
                    self.fail();
                }
            }
            if self.new_group && libc::setpgid(0, 0) < 0 {
                self.fail();
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                self.fail();
            }
            // steady died between the clone and the prctl: do not run an orphan.
            if libc::getppid() != self.parent {
                *libc_errno() = libc::ESRCH;
                self.fail();
            }
            *libc_errno() = try_exec(self.candidates, self.argv, self.envp, self.sh_argv);
            self.fail()
        }
    }

    /// Sends errno to the parent and ends the child.
    fn fail(&mut self) -> ! {
        // SAFETY: write and _exit are async-signal-safe.
        unsafe {
            let code = (*libc_errno()).to_ne_bytes();
            libc::write(self.err, code.as_ptr().cast(), code.len());
            libc::_exit(127)
        }
    }
}

/// Tries each candidate as `execvp` would: keep searching past a file that is missing or not
/// allowed, report EACCES if any was found, run a file without `#!` with /bin/sh. Returns the
/// errno to report (only returns when nothing could be run). Async-signal-safe.
///
/// # Safety
/// Every pointer vector must be null-terminated and point at live C strings.
unsafe fn try_exec(
    candidates: &[*const libc::c_char],
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    sh_argv: &mut [*const libc::c_char],
) -> libc::c_int {
    let mut denied = false;
    // SAFETY: the caller's promise: valid, null-terminated vectors of C strings.
    unsafe {
        for &path in candidates.iter().take_while(|p| !p.is_null()) {
            libc::execve(path, argv.as_ptr(), envp.as_ptr());
            match *libc_errno() {
                libc::ENOEXEC => {
                    sh_argv[1] = path;
                    libc::execve(c"/bin/sh".as_ptr(), sh_argv.as_ptr(), envp.as_ptr());
                    return libc::ENOEXEC;
                }
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                e => return e,
            }
        }
        if denied { libc::EACCES } else { *libc_errno() }
    }
}

/// Replaces steady with the command (same pid), by the same rules as [`spawn`]'s child: the
/// caller's environment with `env` on top, SIGPIPE and `caught` at their defaults, an empty
/// signal mask. Returns only on failure.
pub fn exec(argv: &[OsString], env: &[(OsString, OsString)], caught: &[Signal]) -> io::Error {
    let p = match Prepared::new(SpawnSpec {
        argv,
        env,
        stdin: ChildIo::Inherit,
        stdout: ChildIo::Inherit,
        stderr: ChildIo::Inherit,
        new_group: false,
        cgroup: None,
        caught,
    }) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let argv_p = Prepared::pointers(&p.argv);
    let envp = Prepared::pointers(&p.envp);
    let candidates = Prepared::pointers(&p.candidates);
    let mut sh_argv = sh_argv(&argv_p);
    // SAFETY: dispositions set to SIG_DFL install no handler code; steady is single-threaded;
    // the vectors were built just above and outlive the call.
    unsafe {
        for sig in caught.iter().chain(&[Signal::SIGPIPE]) {
            libc::signal(*sig as libc::c_int, libc::SIG_DFL);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        io::Error::from_raw_os_error(try_exec(&candidates, &argv_p, &envp, &mut sh_argv))
    }
}

/// `/bin/sh`, a slot for the script, then the command's arguments: the fallback argv.
fn sh_argv(argv: &[*const libc::c_char]) -> Vec<*const libc::c_char> {
    std::iter::once(c"/bin/sh".as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .chain(argv.iter().skip(1).copied())
        .collect()
}

/// The calling thread's errno.
unsafe fn libc_errno() -> *mut libc::c_int {
    // SAFETY: errno is thread-local storage that libc always provides.
    unsafe { libc::__errno_location() }
}
