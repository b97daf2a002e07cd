//! The only module with `unsafe` code: signal handlers, the wake-up pipe, the interval timer,
//! `flock`, `prctl`, the pipe calls of zero-copy output (`splice`, `tee`, pipe sizes) and the
//! few other calls `nix` does not wrap. Everything above it sees safe functions. steady is
//! single-threaded on purpose (a fork from a multi-threaded process can deadlock under
//! qemu-user), so all waiting is done here with signals, a self-pipe and `poll`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;

/// Signals steady handles. Handlers are installed without `SA_RESTART`, so a signal interrupts a
/// blocking `flock` or `poll` with `EINTR` and the caller looks at what arrived.
const HANDLED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGCHLD,
    Signal::SIGALRM,
    Signal::SIGWINCH,
];

/// The signals that tell steady to stop: forwarded to the command, then no more retries.
pub const STOP_SIGNALS: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// One bit per signal number that arrived and was not yet taken.
static PENDING: AtomicU64 = AtomicU64::new(0);
/// One bit per signal number that was sent by a process (`kill`) rather than by the kernel
/// (a terminal's Ctrl-C reaches the whole foreground group, so it need not be forwarded).
static FROM_PROCESS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let bit = 1u64 << (sig as u64 & 63);
    // SAFETY: the kernel hands a valid siginfo to an SA_SIGINFO handler.
    let code = unsafe { info.as_ref().map_or(0, |i| i.si_code) };
    if code == libc::SI_USER || code == libc::SI_QUEUE {
        FROM_PROCESS.fetch_or(bit, Ordering::SeqCst);
    }
    PENDING.fetch_or(bit, Ordering::SeqCst);
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; errno is saved and restored around it.
        unsafe {
            let saved = *libc::__errno_location();
            libc::write(fd, [0u8].as_ptr().cast(), 1);
            *libc::__errno_location() = saved;
        }
    }
}

/// The read end of the self-pipe every handled signal writes a byte to.
pub struct SignalPipe {
    read: OwnedFd,
    _write: OwnedFd,
}

impl SignalPipe {
    pub fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd is owned by self and stays open while the borrow lives.
        unsafe { BorrowedFd::borrow_raw(self.read.as_raw_fd()) }
    }

    /// Empties the pipe; the signals themselves are read with [`take_signals`].
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!(nix::unistd::read(&self.read, &mut buf), Ok(n) if n > 0) {}
    }
}

/// Installs steady's handlers. Called once, before any child exists.
pub fn install_signal_handlers() -> io::Result<SignalPipe> {
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
    WAKE_FD.store(write.as_raw_fd(), Ordering::SeqCst);
    let action = SigAction::new(
        SigHandler::SigAction(on_signal),
        SaFlags::SA_SIGINFO,
        SigSet::empty(),
    );
    for sig in HANDLED {
        // SAFETY: the handler only touches atomics and calls write(2).
        unsafe { signal::sigaction(sig, &action) }?;
    }
    Ok(SignalPipe {
        read,
        _write: write,
    })
}

/// A signal that arrived since the last call, and whether a process (not a terminal) sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrived {
    pub signal: Signal,
    pub from_process: bool,
}

/// Marks a stop signal as arrived again, so that whoever looks next (the back-off sleep, the
/// next helper) also sees that steady was told to stop.
pub fn repost(arrived: Arrived) {
    let bit = 1u64 << (arrived.signal as i32 as u64 & 63);
    if arrived.from_process {
        FROM_PROCESS.fetch_or(bit, Ordering::SeqCst);
    }
    PENDING.fetch_or(bit, Ordering::SeqCst);
}

/// True when one of `sigs` arrived and was not yet taken; leaves it pending.
pub fn is_pending(sigs: &[Signal]) -> bool {
    let bits = PENDING.load(Ordering::SeqCst);
    sigs.iter().any(|s| bits & (1 << (*s as i32)) != 0)
}

pub fn take_signals() -> Vec<Arrived> {
    let bits = PENDING.swap(0, Ordering::SeqCst);
    let from = FROM_PROCESS.swap(0, Ordering::SeqCst);
    HANDLED
        .iter()
        .filter(|s| bits & (1 << (**s as i32)) != 0)
        .map(|&signal| Arrived {
            signal,
            from_process: from & (1 << (signal as i32)) != 0,
        })
        .collect()
}

/// Arms (or with `None` disarms) the process interval timer: SIGALRM after `after`, then every
/// 10 ms, so that a blocking call entered just after a tick is still interrupted (flock(1) does
/// the same).
pub fn set_alarm(after: Option<Duration>) {
    let to_tv = |d: Duration| libc::timeval {
        // `as _`: libc deprecates naming `time_t`/`suseconds_t` on musl (their width changed).
        tv_sec: d.as_secs() as _,
        tv_usec: d.subsec_micros() as _,
    };
    let (value, interval) = match after {
        Some(d) => (
            to_tv(d.max(Duration::from_micros(1))),
            to_tv(Duration::from_millis(10)),
        ),
        None => (to_tv(Duration::ZERO), to_tv(Duration::ZERO)),
    };
    let timer = libc::itimerval {
        it_interval: interval,
        it_value: value,
    };
    // SAFETY: plain syscall with a valid struct; the old value is not wanted.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) };
}

/// `flock(2)`. Returns the raw OS error so callers can classify by errno (ENOTSUPP 524 has no
/// `ErrorKind`).
pub fn flock(fd: RawFd, exclusive: bool, block: bool) -> Result<(), i32> {
    let mut op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    if !block {
        op |= libc::LOCK_NB;
    }
    // SAFETY: flock on a caller-owned fd.
    if unsafe { libc::flock(fd, op) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// Makes orphaned descendants re-parent to steady, so escapees (`setsid`, double fork) can be
/// found and killed.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes the command's direct child die with steady (`PR_SET_PDEATHSIG`). Grandchildren are
/// not covered: if steady is SIGKILLed they live on (only a cgroup or container ends them).
pub fn die_with_parent(cmd: &mut std::process::Command) {
    let parent = std::process::id() as i32;
    // SAFETY: the closure runs between fork and exec and makes only async-signal-safe calls.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, move || child_die_with_parent(parent));
    }
}

/// Runs in the forked child before exec; if steady already died between fork and prctl, the
/// child exits at once.
fn child_die_with_parent(parent: i32) -> io::Result<()> {
    // SAFETY: async-signal-safe calls only (prctl, getppid).
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::getppid() != parent {
            libc::_exit(125);
        }
    }
    Ok(())
}

/// Sends `sig` to one process; a process already gone is not an error.
pub fn kill(pid: i32, sig: Signal) {
    let _ = signal::kill(Pid::from_raw(pid), sig);
}

/// Sends `sig` to a process group; a group already gone is not an error.
pub fn kill_group(pgid: i32, sig: Signal) {
    let _ = signal::killpg(Pid::from_raw(pgid), sig);
}

/// How a reaped process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
}

/// How `pid` (a child of steady) ended, if it has, without reaping it: while the command's
/// leader stays an unreaped zombie its pid, and so its process-group id, cannot be reused, so
/// steady may still signal the group safely.
pub fn exit_status_keep(pid: i32) -> Option<Ended> {
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    loop {
        match waitid(Id::Pid(Pid::from_raw(pid)), flags) {
            Ok(WaitStatus::Exited(_, code)) => return Some(Ended::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Some(Ended::Signaled(sig as i32)),
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return None,
        }
    }
}

/// Reaps `pid` if it has finished, without blocking.
pub fn reap(pid: i32) -> Option<Ended> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Some(Ended::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Some(Ended::Signaled(sig as i32)),
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return None,
        }
    }
}

/// Reaps one finished child of steady (its own or an adopted orphan) without blocking.
pub fn reap_any() -> Option<(i32, Ended)> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => return Some((pid.as_raw(), Ended::Exited(code))),
            Ok(WaitStatus::Signaled(pid, sig, _)) => {
                return Some((pid.as_raw(), Ended::Signaled(sig as i32)));
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// True when stdin is a terminal whose foreground process group is steady's own: a developer
/// typing in front of a command. The command then stays in steady's group so the terminal
/// keeps working for it (prompts, Ctrl-C, Ctrl-Z).
pub fn owns_foreground_terminal() -> bool {
    let stdin = io::stdin();
    nix::unistd::isatty(&stdin).unwrap_or(false)
        && nix::unistd::tcgetpgrp(&stdin).is_ok_and(|pg| pg == nix::unistd::getpgrp())
}

pub fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// Ends steady by the signal its command died of, so that a calling shell sees a real signal
/// death (bash stops a loop on SIGINT). Core dumps are off so the re-raise leaves no core.
pub fn reraise(sig: i32) -> ! {
    // SAFETY: resetting a disposition and raising a signal on ourselves.
    unsafe {
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
    }
    std::process::exit(128 + sig)
}

/// Opens an existing directory or file to lock it: read-only (a directory cannot be opened for
/// writing, and flock needs no more), no symlink at the last component, non-blocking so that a
/// FIFO found there cannot hang the open, close-on-exec so the command never inherits the lock.
pub fn open_lock_target(path: &std::path::Path) -> io::Result<OwnedFd> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    let flags = OFlag::O_RDONLY
        | OFlag::O_CLOEXEC
        | OFlag::O_NOFOLLOW
        | OFlag::O_NOCTTY
        | OFlag::O_NONBLOCK;
    Ok(open(path, flags, Mode::empty())?)
}

/// Opens the lock file `name` inside the already checked directory `dir` without following
/// symlinks: first without `O_CREAT` (so a file another user made in a sticky directory still
/// opens), then creating it exclusively, mode 0600. Never truncates. The flag is true when
/// this call created the file.
pub fn open_lock_file_at(dir: &OwnedFd, name: &str) -> io::Result<(OwnedFd, bool)> {
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::Mode;
    let base = OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
    for _ in 0..3 {
        match openat(dir, name, base | OFlag::O_NONBLOCK, Mode::empty()) {
            Ok(fd) => return Ok((fd, false)),
            Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
        match openat(
            dir,
            name,
            base | OFlag::O_CREAT | OFlag::O_EXCL,
            Mode::from_bits_truncate(0o600),
        ) {
            Ok(fd) => return Ok((fd, true)),
            Err(nix::errno::Errno::EEXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::other(
        "the lock file keeps appearing and disappearing",
    ))
}

/// `lstat` of `name` inside the directory `dir` (no symlink followed).
pub fn stat_at(dir: &OwnedFd, name: &str) -> io::Result<libc::stat> {
    Ok(nix::sys::stat::fstatat(
        dir,
        name,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )?)
}

/// An anonymous in-memory file whose only purpose is its name, which other processes can read
/// in `/proc/<pid>/fd` for as long as steady lives (a note that needs no cleaning up after a
/// crash). `None` where memfd is unavailable.
pub fn named_marker(name: &str) -> Option<OwnedFd> {
    use nix::sys::memfd::{MFdFlags, memfd_create};
    memfd_create(name, MFdFlags::MFD_CLOEXEC).ok()
}

pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: a zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on a caller-owned fd.
    if unsafe { libc::fstat(fd, &mut st) } == 0 {
        Ok(st)
    } else {
        Err(io::Error::last_os_error())
    }
}

pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// `f_type` of the filesystem holding `path` (statfs magic), to tell NFS and friends apart.
pub fn filesystem_magic(path: &std::path::Path) -> Option<i64> {
    // `f_type` is `__fsword_t` (i64) on glibc and `c_ulong` (u64) on musl; magics fit both.
    #[allow(clippy::unnecessary_cast)]
    nix::sys::statfs::statfs(path)
        .ok()
        .map(|s| s.filesystem_type().0 as i64)
}

/// Clock ticks per second, for `/proc/<pid>/stat` start times.
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// Duplicates steady's stdout or stderr into an owned descriptor, for writing the command's
/// output unbuffered.
pub fn dup_stdio(fd: RawFd) -> io::Result<std::fs::File> {
    // SAFETY: fd 1 and 2 are open for the life of the process; dup gives an owned copy.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor we own.
    Ok(unsafe { std::fs::File::from_raw_fd(new) })
}

// Zero-copy output for `attempt`: the command's pipe is moved to steady's stdout or stderr by
// `splice` and its tail kept by `tee`, so the bytes never pass through steady's memory. Both
// calls are made with SPLICE_F_NONBLOCK: a full or empty pipe gives EAGAIN instead of
// blocking the watchdog, even when the other end's file description is in blocking mode (it
// is shared with whoever started steady, so steady must not change its flags).

/// Turns a syscall's `ssize_t` into a byte count or the errno it set.
fn byte_count(r: isize) -> io::Result<usize> {
    if r >= 0 {
        Ok(r as usize)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `splice(2)` from the pipe `from` to `to` (a pipe or a file), up to `len` bytes, without
/// waiting. `Ok(0)` is end of file (`from` empty, no writer left).
pub fn splice(from: BorrowedFd, to: BorrowedFd, len: usize) -> io::Result<usize> {
    loop {
        // SAFETY: two descriptors the caller keeps open; null offsets use the file positions.
        let r = unsafe {
            libc::splice(
                from.as_raw_fd(),
                std::ptr::null_mut(),
                to.as_raw_fd(),
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        };
        match byte_count(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `tee(2)`: copies up to `len` bytes from the head of the pipe `from` into the pipe `to`
/// (page references, not bytes), leaving them in `from`. Never waits; `Ok(0)` is end of file.
pub fn tee(from: BorrowedFd, to: BorrowedFd, len: usize) -> io::Result<usize> {
    loop {
        // SAFETY: two pipe descriptors the caller keeps open.
        let r = unsafe {
            libc::tee(
                from.as_raw_fd(),
                to.as_raw_fd(),
                len,
                libc::SPLICE_F_NONBLOCK,
            )
        };
        match byte_count(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Asks for a pipe buffer of `bytes` (`F_SETPIPE_SZ`); returns the size the kernel gave.
pub fn set_pipe_size(pipe: BorrowedFd, bytes: usize) -> io::Result<usize> {
    let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: fcntl with an integer argument on a descriptor the caller keeps open.
    let r = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, bytes) };
    byte_count(r as isize)
}

/// The size of a pipe's buffer (`F_GETPIPE_SZ`).
pub fn pipe_size(pipe: BorrowedFd) -> io::Result<usize> {
    // SAFETY: F_GETPIPE_SZ only reads the pipe's size.
    let r = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_GETPIPE_SZ) };
    byte_count(r as isize)
}

/// `read(2)` into the unused capacity of `buf`, appending what came. Unlike a read into a
/// slice, the buffer need not be zeroed first: steady reuses one for every piece it copies.
pub fn read_into(fd: BorrowedFd, buf: &mut Vec<u8>) -> nix::Result<usize> {
    let spare = buf.spare_capacity_mut();
    // SAFETY: the kernel writes at most `spare.len()` bytes into the spare capacity.
    let r = unsafe { libc::read(fd.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
    if r < 0 {
        return Err(nix::errno::Errno::last());
    }
    let n = r as usize;
    // SAFETY: the first `n` bytes of the spare capacity were just written by read(2).
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Bytes waiting to be read from a pipe (`FIONREAD`).
pub fn bytes_readable(pipe: BorrowedFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into the valid pointer.
    let r = unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut n) };
    byte_count(r as isize).map(|_| n.max(0) as usize)
}

/// The status flags of an open file description (`F_GETFL`).
pub fn status_flags(fd: BorrowedFd) -> io::Result<i32> {
    // SAFETY: F_GETFL only reads the descriptor's flags.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    byte_count(r as isize).map(|f| f as i32)
}

/// The window size of a terminal (`TIOCGWINSZ`), or `None` when `fd` is not one.
pub fn window_size(fd: BorrowedFd) -> Option<libc::winsize> {
    // SAFETY: a zeroed winsize is a valid out-parameter for TIOCGWINSZ.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into the valid pointer.
    let ok = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } == 0;
    ok.then_some(ws)
}

/// Sets a terminal's window size (`TIOCSWINSZ`).
pub fn set_window_size(fd: BorrowedFd, ws: &libc::winsize) -> io::Result<()> {
    // SAFETY: TIOCSWINSZ reads one winsize from the valid pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

// Directory operations for `remove.rs`: every one works relative to an open directory and
// never follows a symlink, so a path component swapped for a symlink mid-walk cannot redirect
// a deletion.

/// Opens the directory at `path`, refusing a symlink at its last component.
pub fn open_dir_nofollow(path: &std::path::Path) -> io::Result<OwnedFd> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    Ok(open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens the directory `name` inside `dir`, refusing a symlink.
pub fn open_dir_at(dir: BorrowedFd, name: &std::ffi::OsStr) -> io::Result<OwnedFd> {
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::Mode;
    Ok(openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

/// `lstat` of `name` inside `dir`.
pub fn lstat_at(dir: BorrowedFd, name: &std::ffi::OsStr) -> io::Result<libc::stat> {
    Ok(nix::sys::stat::fstatat(
        dir,
        name,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )?)
}

/// Removes `name` inside `dir`: an empty directory when `is_dir`, else a file or symlink
/// (the link itself).
pub fn unlink_at(dir: BorrowedFd, name: &std::ffi::OsStr, is_dir: bool) -> io::Result<()> {
    use nix::unistd::{UnlinkatFlags, unlinkat};
    let flag = if is_dir {
        UnlinkatFlags::RemoveDir
    } else {
        UnlinkatFlags::NoRemoveDir
    };
    Ok(unlinkat(dir, name, flag)?)
}

/// `renameat2(RENAME_NOREPLACE)`: moves `old` in `old_dir` to `new` in `new_dir`, failing
/// with `EEXIST` rather than replacing anything there.
pub fn rename_noreplace(
    old_dir: BorrowedFd,
    old: &std::ffi::OsStr,
    new_dir: BorrowedFd,
    new: &std::ffi::OsStr,
) -> io::Result<()> {
    // nix wraps renameat2 for glibc only, and the musl Rust links has no renameat2():
    // the raw system call works with both.
    use std::os::unix::ffi::OsStrExt;
    let old = std::ffi::CString::new(old.as_bytes())?;
    let new = std::ffi::CString::new(new.as_bytes())?;
    // SAFETY: both names are NUL-terminated and outlive the call; both fds are open.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            old_dir.as_raw_fd(),
            old.as_ptr(),
            new_dir.as_raw_fd(),
            new.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates the directory `name` inside `dir` with `mode`.
pub fn mkdir_at(dir: BorrowedFd, name: &std::ffi::OsStr, mode: u32) -> io::Result<()> {
    Ok(nix::sys::stat::mkdirat(
        dir,
        name,
        nix::sys::stat::Mode::from_bits_truncate(mode),
    )?)
}

/// Adds owner write and search permission to the directory `dir` (Go's module cache is
/// read-only; its entries cannot be unlinked otherwise).
pub fn make_dir_writable(dir: BorrowedFd) -> io::Result<()> {
    let st = nix::sys::stat::fstat(dir)?;
    let mode = nix::sys::stat::Mode::from_bits_truncate((st.st_mode & 0o7777) | 0o300);
    Ok(nix::sys::stat::fchmod(dir, mode)?)
}

/// The names in the directory `dir`, without `.` and `..`.
pub fn list_dir(dir: BorrowedFd) -> io::Result<Vec<std::ffi::OsString>> {
    use std::os::unix::ffi::OsStrExt;
    // fdopendir takes ownership of its descriptor, so it gets a duplicate.
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor the caller keeps open.
    let dup = unsafe { libc::fcntl(dir.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is a fresh descriptor; on success the DIR owns it.
    let stream = unsafe { libc::fdopendir(dup) };
    if stream.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `dup` is still ours to close.
        unsafe { libc::close(dup) };
        return Err(e);
    }
    // The duplicate shares the offset of `dir`: start from the beginning.
    // SAFETY: `stream` is a valid DIR.
    unsafe { libc::rewinddir(stream) };
    let mut names = Vec::new();
    let result = loop {
        // SAFETY: errno is cleared to tell the end from an error, as readdir(3) says.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `stream` is a valid DIR; the entry stays valid until the next readdir.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            let errno = io::Error::last_os_error();
            break if errno.raw_os_error() == Some(0) {
                Ok(())
            } else {
                Err(errno)
            };
        }
        // SAFETY: d_name is a NUL-terminated name inside the valid entry.
        let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) };
        let bytes = name.to_bytes();
        if bytes != b"." && bytes != b".." {
            names.push(std::ffi::OsStr::from_bytes(bytes).to_owned());
        }
    };
    // SAFETY: closes the DIR and its descriptor exactly once.
    unsafe { libc::closedir(stream) };
    result.map(|()| names)
}

/// Whether a process with this pid exists (it may belong to another user).
pub fn pid_exists(pid: i32) -> bool {
    match nix::sys::signal::kill(Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e != nix::errno::Errno::ESRCH,
    }
}

/// Turns on TCP keep-alive with short timers on a connected socket (`idle` before the first
/// probe, then every `interval`, `count` probes) and bounds how long sent data may go
/// unacknowledged (`TCP_USER_TIMEOUT`): a peer that vanished without closing the connection (a
/// host down, a cut network) then fails the socket within a known time instead of the kernel's
/// default of two hours or more.
#[cfg(feature = "postgres")]
pub fn tcp_keepalive(
    fd: BorrowedFd,
    idle: Duration,
    interval: Duration,
    count: u32,
    user_timeout: Duration,
) -> io::Result<()> {
    let set = |level: libc::c_int, name: libc::c_int, value: libc::c_int| -> io::Result<()> {
        // SAFETY: setsockopt reads one int from a valid pointer, on a socket the caller owns.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    let secs = |d: Duration| d.as_secs().clamp(1, i32::MAX as u64) as libc::c_int;
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs(idle))?;
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, secs(interval))?;
    set(
        libc::IPPROTO_TCP,
        libc::TCP_KEEPCNT,
        count.clamp(1, 127) as libc::c_int,
    )?;
    set(
        libc::IPPROTO_TCP,
        libc::TCP_USER_TIMEOUT,
        user_timeout.as_millis().clamp(1, i32::MAX as u128) as libc::c_int,
    )
}
