//! Taking one flock: a wait that blocks in the kernel and is cut off by an interval timer
//! (stop signals end it, other signals are left pending), errors classified by errno (never by
//! `ErrorKind`), a check after locking that the path still names what was locked, and the
//! in-memory marker through which `status` and contenders see since when a lock is held.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::holders::{Holder, MARKER_PREFIX, holder_among, holder_of};
use super::{LockError, Plan};
use crate::sys;
use crate::ui;

/// Longest single blocking `flock` call. A stop signal that lands between the check for one
/// and the call itself does not interrupt the call, so the wait is re-entered at least this
/// often to notice it; re-entering costs nothing against blocking waiters (the kernel wakes
/// every waiter on release anyway).
pub(super) const MAX_BLOCK: Duration = Duration::from_secs(1);

/// How often a lock path may be replaced under a waiter before steady gives up on it.
pub(super) const REOPEN_LIMIT: usize = 5;

/// errnos that mean "this filesystem cannot do flock here", not "someone holds it". EBADF and
/// EIO are what NFS gives for an exclusive lock through a read-only descriptor (a directory
/// cannot be opened for writing); the fallback lock file is opened read-write.
pub(super) const UNSUPPORTED: [i32; 6] = [
    libc::ENOLCK,
    libc::EOPNOTSUPP,
    libc::ENOSYS,
    524,
    libc::EBADF,
    libc::EIO,
];

pub(super) fn same_inode(at_path: Option<(u64, u64)>, fd: &OwnedFd) -> bool {
    match (at_path, sys::fstat(fd.as_raw_fd())) {
        (Some((dev, ino)), Ok(st)) => dev == st.st_dev && ino == st.st_ino,
        _ => false,
    }
}

/// Locks what `open` gives and checks afterwards that the path still names it (R6): a waiter
/// on a file or directory that was deleted or replaced while it waited would otherwise hold
/// "the" lock beside whoever locked the new one.
pub(super) fn lock_current(
    path: &Path,
    key: &[u8],
    open: &dyn Fn() -> Result<OwnedFd, Wait>,
    is_current: &dyn Fn(&OwnedFd) -> bool,
    plan: &Plan,
) -> Result<OwnedFd, Wait> {
    for _ in 0..REOPEN_LIMIT {
        let fd = open()?;
        lock_fd(&fd, path, key, plan)?;
        if is_current(&fd) {
            return Ok(fd);
        }
        ui::detail(&format!(
            "`{}` was replaced while we waited for its lock; locking the one there now",
            path.display()
        ));
        // The stale lock goes before the wait for the new one: whoever holds the new one may
        // be waiting for the stale one (see wait_for_stranded), and holding both would
        // deadlock.
        drop(fd);
    }
    Err(Wait::Failed(LockError::Unsafe(format!(
        "unsafe lock path `{}`: it keeps being replaced while steady locks it",
        path.display()
    ))))
}

pub(super) enum Wait {
    /// flock cannot be had on this object: fall back, with the reason.
    Cannot(String),
    Failed(LockError),
}

/// What one `flock` call said, by errno (Rust maps 524 and ENOLCK to an `ErrorKind` that
/// cannot be matched, so `ErrorKind` is never looked at).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flock {
    Locked,
    Contended,
    Interrupted,
    Unsupported(i32),
    Failed(i32),
}

pub(super) fn classify(r: Result<(), i32>) -> Flock {
    match r {
        Ok(()) => Flock::Locked,
        Err(e) if e == libc::EWOULDBLOCK => Flock::Contended,
        Err(e) if e == libc::EINTR => Flock::Interrupted,
        Err(e) if UNSUPPORTED.contains(&e) => Flock::Unsupported(e),
        Err(e) => Flock::Failed(e),
    }
}

pub(super) fn cannot(f: Flock) -> Wait {
    match f {
        Flock::Unsupported(e) => Wait::Cannot(format!(
            "its filesystem does not support flock ({})",
            errno_name(e)
        )),
        Flock::Failed(e) => Wait::Cannot(format!("flock failed ({})", errno_name(e))),
        _ => Wait::Cannot("flock failed".into()),
    }
}

/// How long a waiter that cannot name the holder from the records waits before it asks
/// `/proc/locks` (see [`name_holder`]).
const QUIET_WAIT: Duration = Duration::from_millis(200);

/// The holder of the lock on `fd` (the lock of `key`), named cheaply where it can be: a steady
/// holder keeps a leftovers record of the lock, and its marker confirms it holds this very
/// file. Reading `/proc/locks` instead takes the kernel's file-lock lock for writing, which
/// waits for an RCU grace period (8-16 ms) and stalls every flock on the machine meanwhile:
/// a queue of waiters that each read it slows the very hand-off they wait for (issue 18).
fn name_holder(fd: &OwnedFd, key: &[u8], plan: &Plan, proc_locks: bool) -> Option<Holder> {
    let recorded = super::leftovers::recorded_pids(key, plan.lock_dir);
    holder_among(fd.as_raw_fd(), &recorded).or_else(|| {
        if proc_locks {
            holder_of(fd.as_raw_fd())
        } else {
            None
        }
    })
}

/// One blocking flock until `until` at the latest: `Ok(true)` when locked, `Ok(false)` when the
/// time ran out.
fn block_until(fd: &OwnedFd, exclusive: bool, until: Instant) -> Result<bool, Wait> {
    loop {
        if let Some(sig) = sys::stop_signal_pending() {
            return Err(Wait::Failed(LockError::Interrupted(sig)));
        }
        let now = Instant::now();
        if now >= until {
            return Ok(false);
        }
        sys::set_alarm(Some((until - now).min(MAX_BLOCK)));
        let r = classify(sys::flock(fd, exclusive, true));
        sys::set_alarm(None);
        match r {
            Flock::Locked => return Ok(true),
            Flock::Interrupted | Flock::Contended => {}
            other => return Err(cannot(other)),
        }
    }
}

/// Locks `fd` (exclusive, or shared with `--shared`), waiting until `plan.give_up`.
pub(super) fn lock_fd(fd: &OwnedFd, path: &Path, key: &[u8], plan: &Plan) -> Result<(), Wait> {
    let exclusive = !plan.shared;
    loop {
        match classify(sys::flock(fd, exclusive, false)) {
            Flock::Locked => return Ok(()),
            Flock::Contended => break,
            Flock::Interrupted => {
                if let Some(sig) = sys::stop_signal_pending() {
                    return Err(Wait::Failed(LockError::Interrupted(sig)));
                }
            }
            other => return Err(cannot(other)),
        }
    }
    let started = Instant::now();
    if plan.give_up.is_some_and(|g| started >= g) {
        return Err(Wait::Failed(LockError::TimedOut {
            path: path.to_path_buf(),
            holder: name_holder(fd, key, plan, true),
            waited: Duration::ZERO,
        }));
    }
    // A holder that is not named by its record yet (it has just taken the lock, or it is not
    // a steady of this user) gets a short quiet wait first: most waits in a queue of short
    // installs end within it, without a /proc/locks read.
    let mut holder = name_holder(fd, key, plan, false);
    if holder.is_none() {
        let quiet = started + QUIET_WAIT;
        if block_until(fd, exclusive, plan.give_up.map_or(quiet, |g| g.min(quiet)))? {
            say_got(path, started);
            return Ok(());
        }
        holder = name_holder(fd, key, plan, true);
    }
    let who = holder
        .as_ref()
        .map_or_else(|| "another process".to_owned(), Holder::describe);
    let how = if plan.shared { " (shared)" } else { "" };
    ui::status(&format!(
        "waiting for the lock{how} on `{}`, held by {who}",
        path.display()
    ));
    let _marker = marker("wait", fd, None);
    let mut next_progress = started + plan.progress_every;
    let result = loop {
        if let Some(sig) = sys::stop_signal_pending() {
            break Err(Wait::Failed(LockError::Interrupted(sig)));
        }
        let now = Instant::now();
        if plan.give_up.is_some_and(|g| now >= g) {
            break Err(Wait::Failed(LockError::TimedOut {
                path: path.to_path_buf(),
                holder: name_holder(fd, key, plan, true),
                waited: now - started,
            }));
        }
        if now >= next_progress {
            let who = name_holder(fd, key, plan, true)
                .map_or_else(|| "another process".to_owned(), |h| h.describe());
            ui::status(&format!(
                "still waiting for the lock on `{}` after {}, held by {who}",
                path.display(),
                ui::human(now - started)
            ));
            next_progress += plan.progress_every;
        }
        let mut wake = next_progress.min(now + MAX_BLOCK);
        if let Some(g) = plan.give_up {
            wake = wake.min(g);
        }
        sys::set_alarm(Some(wake.saturating_duration_since(now)));
        match classify(sys::flock(fd, exclusive, true)) {
            Flock::Locked => break Ok(()),
            Flock::Interrupted | Flock::Contended => {}
            other => break Err(cannot(other)),
        }
    };
    sys::set_alarm(None);
    if result.is_ok() {
        say_got(path, started);
    }
    result
}

fn say_got(path: &Path, started: Instant) {
    ui::detail(&format!(
        "got the lock on `{}` after {}",
        path.display(),
        ui::human(started.elapsed())
    ));
}

/// A marker naming the lock behind `fd` and the time, readable by others in this process's
/// `/proc/<pid>/fd` (the kernel records no time for a lock).
/// A held lock's marker also names its key (a hash of the canonical path), so that a run
/// that finds the path replaced can still find who holds the key's lock (see `stranded`).
pub(super) fn marker(state: &str, fd: &OwnedFd, key: Option<&[u8]>) -> Option<OwnedFd> {
    let st = sys::fstat(fd.as_raw_fd()).ok()?;
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis();
    let key = key.map_or_else(String::new, |k| {
        format!(":{:016x}", super::fallback::fnv1a(k))
    });
    sys::named_marker(&format!(
        "{MARKER_PREFIX}{state}:{ms}:{}:{}{key}",
        st.st_dev, st.st_ino
    ))
}

pub(super) fn errno_name(errno: i32) -> String {
    match errno {
        524 => "ENOTSUPP, os error 524".into(),
        e => {
            let n = nix::errno::Errno::from_raw(e);
            format!("{n:?}: {}, os error {e}", n.desc())
        }
    }
}

/// Opens a directory or regular file to lock it, checking its type before opening it for
/// real: a device (`--lock /dev/tty0`), FIFO or socket found there is never opened (opening
/// one runs its driver, completes a FIFO writer's open, or hangs). The path is first opened
/// `O_PATH` without following a symlink, which touches nothing; the type is read from that
/// handle; then the same inode is opened through it (a directory as `.` below it, a file
/// through `/proc/self/fd`), so that what was checked is what gets locked. Read-only, which
/// flock needs no more than; close-on-exec, so the command never inherits the lock.
pub(super) fn open_target(path: &Path) -> Result<OwnedFd, String> {
    use nix::fcntl::{OFlag, open, openat};
    use nix::sys::stat::Mode;
    let handle = open(
        path,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| std::io::Error::from(e).to_string())?;
    let st = sys::fstat(handle.as_raw_fd()).map_err(|e| e.to_string())?;
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
    let fd = match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => openat(&handle, ".", flags | OFlag::O_DIRECTORY, Mode::empty()),
        libc::S_IFREG => open(
            format!("/proc/self/fd/{}", handle.as_raw_fd()).as_str(),
            flags,
            Mode::empty(),
        )
        .or_else(|_| open(path, flags | OFlag::O_NOFOLLOW, Mode::empty())),
        libc::S_IFLNK => return Err("it is a symlink".into()),
        _ => return Err("it is neither a directory nor a regular file".into()),
    }
    .map_err(|e| std::io::Error::from(e).to_string())?;
    if !same_inode(Some((st.st_dev, st.st_ino)), &fd) {
        return Err("it changed while steady opened it".into());
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_by_errno_not_kind() {
        // Rust maps 524 and ENOLCK to ErrorKind::Uncategorized, which cannot be matched on.
        assert_ne!(
            std::io::Error::from_raw_os_error(524).kind(),
            std::io::ErrorKind::Unsupported
        );
        assert_eq!(classify(Err(524)), Flock::Unsupported(524));
        assert_eq!(
            classify(Err(libc::ENOLCK)),
            Flock::Unsupported(libc::ENOLCK)
        );
        assert_eq!(
            classify(Err(libc::EOPNOTSUPP)),
            Flock::Unsupported(libc::EOPNOTSUPP)
        );
        assert_eq!(
            classify(Err(libc::ENOSYS)),
            Flock::Unsupported(libc::ENOSYS)
        );
        assert_eq!(classify(Err(libc::EWOULDBLOCK)), Flock::Contended);
        assert_eq!(classify(Err(libc::EINTR)), Flock::Interrupted);
        assert_eq!(classify(Err(libc::EINVAL)), Flock::Failed(libc::EINVAL));
        assert_eq!(classify(Ok(())), Flock::Locked);
    }
}
