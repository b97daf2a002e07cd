//! Signals: steady's handlers, the self-pipe they wake the poll loop with, and the record of
//! which signals arrived and who sent them. Needs `unsafe` in three places: installing a
//! handler (`sigaction` cannot check that the handler is async-signal-safe), reading the
//! kernel's `siginfo` in it, and its `write(2)` to a pipe known only by its number (an atomic
//! is all a handler may read, so there is no `OwnedFd` to borrow).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// Signals steady handles. Handlers are installed without `SA_RESTART`, so a signal interrupts a
/// blocking `flock` or `poll` with `EINTR` and the caller looks at what arrived.
pub const HANDLED: [Signal; 7] = [
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

/// Whether a signal number is one of the stop signals.
pub fn is_stop_signal(sig: i32) -> bool {
    Signal::try_from(sig).is_ok_and(|s| STOP_SIGNALS.contains(&s))
}

/// A stop signal that arrived and was not yet acted on. Everything taken to look is put back,
/// so the signal stays pending for whoever acts on it, and no other signal is lost.
pub fn stop_signal_pending() -> Option<Signal> {
    if !is_pending(&STOP_SIGNALS) {
        return None;
    }
    let arrived = take_signals();
    let stop = arrived
        .iter()
        .find(|a| STOP_SIGNALS.contains(&a.signal))
        .map(|a| a.signal);
    for a in arrived {
        repost(a);
    }
    stop
}

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
        // The write may fail (pipe full: a wake-up is already pending) and set errno, which
        // the interrupted code may be about to read; it gets its value back.
        let saved = nix::errno::Errno::last_raw();
        // SAFETY: write(2) is async-signal-safe; `fd` is the pipe's write end, which
        // SignalPipe keeps open for as long as WAKE_FD names it, and the buffer is one byte.
        unsafe { libc::write(fd, [0u8].as_ptr().cast(), 1) };
        nix::errno::Errno::set_raw(saved);
    }
}

/// The read end of the self-pipe every handled signal writes a byte to.
pub struct SignalPipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl SignalPipe {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Empties the pipe; the signals themselves are read with [`take_signals`].
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!(nix::unistd::read(&self.read, &mut buf), Ok(n) if n > 0) {}
    }
}

impl Drop for SignalPipe {
    /// Stops the handler writing to the pipe before its descriptors close (and their numbers
    /// are reused), unless a later `install_signal_handlers` already points it elsewhere.
    fn drop(&mut self) {
        let _ = WAKE_FD.compare_exchange(
            self.write.as_raw_fd(),
            -1,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
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
        // SAFETY: the handler only touches atomics, errno and write(2), all
        // async-signal-safe.
        unsafe { signal::sigaction(sig, &action) }?;
    }
    Ok(SignalPipe { read, write })
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
