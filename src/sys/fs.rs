//! Files steady locks and inspects: opening lock targets and lock files without following
//! symlinks, `flock`, `stat`/`fstat`, `statfs`, and the memfd marker other processes read.
//! Needs `unsafe` only for `fstat` on a raw descriptor number (see there); `flock` goes
//! through std's `File::lock` family, everything else through `nix`.

use std::fs::{File, TryLockError};
use std::io;
use std::os::fd::{AsFd, OwnedFd, RawFd};

/// `flock(2)` on `fd` (a directory or a file), blocking or not. Returns the raw OS error so
/// callers can classify by errno (ENOTSUPP 524 has no `ErrorKind`): contention without
/// blocking is `EWOULDBLOCK`, and a blocking call cut short by a signal (the SIGALRM of
/// [`set_alarm`](super::set_alarm), which bounds lock waits) is `EINTR`, never retried here.
pub fn flock(fd: impl AsFd, exclusive: bool, block: bool) -> Result<(), i32> {
    let errno = |e: io::Error| e.raw_os_error().unwrap_or(0);
    // std's locks (flock(2) on Linux) are methods of `File`, which owns its descriptor. A
    // duplicate shares the open file description, and that is what flock locks: the lock
    // stays with `fd` after the duplicate closes, and is released when `fd`'s last copy does.
    let file = File::from(fd.as_fd().try_clone_to_owned().map_err(errno)?);
    let tried = |r: Result<(), TryLockError>| {
        r.map_err(|e| match e {
            TryLockError::WouldBlock => libc::EWOULDBLOCK,
            TryLockError::Error(e) => errno(e),
        })
    };
    match (exclusive, block) {
        (true, true) => file.lock().map_err(errno),
        (false, true) => file.lock_shared().map_err(errno),
        (true, false) => tried(file.try_lock()),
        (false, false) => tried(file.try_lock_shared()),
    }
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

/// `fstat(2)` of a descriptor number. It takes a `RawFd`, not a borrowed descriptor, because
/// its callers hold numbers (stdout and stderr, a lock's descriptor handed down as a number);
/// `nix::sys::stat::fstat` would need `BorrowedFd::borrow_raw`, whose contract (the number
/// stays open) a number cannot promise. A closed number only gives `EBADF`.
pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a whole stat into the valid out-pointer when it returns 0, and
    // only then is it read.
    unsafe {
        if libc::fstat(fd, st.as_mut_ptr()) == 0 {
            Ok(st.assume_init())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// `f_type` of the filesystem holding `path` (statfs magic), to tell NFS and friends apart.
pub fn filesystem_magic(path: &std::path::Path) -> Option<i64> {
    // `f_type` is a signed long on glibc and an unsigned long on musl; the magic numbers are
    // 32-bit values, so both become the same i64.
    nix::sys::statfs::statfs(path)
        .ok()
        .map(|s| i64::from(s.filesystem_type().0 as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

    fn open_dir(path: &std::path::Path) -> OwnedFd {
        open_lock_target(path).expect("open the directory")
    }

    /// What `lock/` relies on: a directory can be locked, contention is EWOULDBLOCK, and the
    /// lock stays on the descriptor after the duplicate `flock` locks through is closed.
    #[test]
    fn flock_locks_a_directory_and_reports_contention_as_ewouldblock() {
        let dir = tempfile::tempdir().unwrap();
        let holder = open_dir(dir.path());
        let other = open_dir(dir.path());
        assert_eq!(flock(&holder, true, false), Ok(()));
        assert_eq!(flock(&other, true, false), Err(libc::EWOULDBLOCK));
        assert_eq!(flock(&other, false, false), Err(libc::EWOULDBLOCK));
        drop(holder);
        assert_eq!(flock(&other, false, false), Ok(()));
        let third = open_dir(dir.path());
        assert_eq!(flock(&third, false, false), Ok(()), "shared locks share");
    }

    extern "C" fn ignore(_: libc::c_int) {}

    /// Lock timeouts depend on a blocking `flock` returning EINTR when a signal arrives (the
    /// SIGALRM of `set_alarm`); std's `File::lock` must not retry it. The signal here is
    /// SIGUSR2 sent to this thread alone, so other tests running in parallel are not hit.
    #[test]
    fn blocking_flock_returns_eintr_when_a_signal_arrives() {
        let dir = tempfile::tempdir().unwrap();
        let holder = open_dir(dir.path());
        let waiter = open_dir(dir.path());
        assert_eq!(flock(&holder, true, false), Ok(()));
        // No SA_RESTART, like steady's own handlers.
        let action = SigAction::new(
            SigHandler::Handler(ignore),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler does nothing.
        unsafe { sigaction(Signal::SIGUSR2, &action) }.unwrap();
        // As a number: musl's pthread_t is a pointer, which may not cross threads.
        let me = nix::sys::pthread::pthread_self() as usize;
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let ticker = {
            let done = done.clone();
            // Keeps signalling, like the 10 ms interval of `set_alarm`, so a signal that lands
            // just before the call blocks does not leave the test hanging.
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                    let _ = nix::sys::pthread::pthread_kill(me as libc::pthread_t, Signal::SIGUSR2);
                }
            })
        };
        let result = flock(&waiter, true, true);
        done.store(true, Ordering::SeqCst);
        ticker.join().unwrap();
        assert_eq!(result, Err(libc::EINTR));
    }
}
