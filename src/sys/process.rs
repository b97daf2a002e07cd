//! Processes: the subreaper setting, signalling, reaping, the re-raise
//! that ends steady by its command's signal, and facts about processes (`euid`, clock ticks).
//! Needs `unsafe` once: resetting a signal disposition in `reraise` (`nix` marks every
//! disposition change unsafe). Starting a command is `spawn.rs`'s.

use std::io;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// Makes orphaned descendants re-parent to steady, so escapees (`setsid`, double fork) can be
/// found and killed.
pub fn become_subreaper() -> io::Result<()> {
    Ok(nix::sys::prctl::set_child_subreaper(true)?)
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

/// Ends steady by the signal its command died of, so that a calling shell sees a real signal
/// death (bash stops a loop on SIGINT). Core dumps are off so the re-raise leaves no core.
pub fn reraise(sig: i32) -> ! {
    // Each step may fail; the exit below is the fallback either way.
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
    if let Ok(signal) = Signal::try_from(sig) {
        // SAFETY: SIG_DFL installs no handler code; steady is single-threaded, so no other
        // thread relies on the handler being there.
        let _ = unsafe { signal::signal(signal, signal::SigHandler::SigDfl) };
        let mut set = signal::SigSet::empty();
        set.add(signal);
        let _ = set.thread_unblock();
        let _ = signal::raise(signal);
    }
    std::process::exit(128 + sig)
}

pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Clock ticks per second, for `/proc/<pid>/stat` start times.
pub fn clock_ticks() -> u64 {
    use nix::unistd::{SysconfVar, sysconf};
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100,
    }
}

/// Whether a process with this pid exists (it may belong to another user).
pub fn pid_exists(pid: i32) -> bool {
    match nix::sys::signal::kill(Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e != nix::errno::Errno::ESRCH,
    }
}
