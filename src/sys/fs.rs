//! Files steady locks and inspects: opening lock targets and lock files without following
//! symlinks, `flock`, `stat`/`fstat`, `statfs`, and the memfd marker other processes read.

use std::io;
use std::os::fd::{OwnedFd, RawFd};

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

/// `f_type` of the filesystem holding `path` (statfs magic), to tell NFS and friends apart.
pub fn filesystem_magic(path: &std::path::Path) -> Option<i64> {
    nix::sys::statfs::statfs(path)
        .ok()
        .map(|s| s.filesystem_type().0)
}
