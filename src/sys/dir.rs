//! Directory operations for `recovery/clean/remove.rs`, all relative to an open directory and
//! never following a symlink.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

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
    use nix::fcntl::{RenameFlags, renameat2};
    Ok(renameat2(
        old_dir,
        old,
        new_dir,
        new,
        RenameFlags::RENAME_NOREPLACE,
    )?)
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
