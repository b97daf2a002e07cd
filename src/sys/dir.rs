//! Directory operations for `recovery/clean/remove.rs`: every one works relative to an open
//! directory and never follows a symlink, so a path component swapped for a symlink mid-walk
//! cannot redirect a deletion. Needs `unsafe` only for `renameat2`, which `nix` wraps for
//! glibc targets alone (see `rename_noreplace`).

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

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
///
/// Made as a raw syscall: `nix::fcntl::renameat2` exists only for glibc targets (it calls
/// glibc's wrapper, which musl lacks), and one path for every libc keeps the static musl
/// build doing exactly what the tested glibc build does.
pub fn rename_noreplace(
    old_dir: BorrowedFd,
    old: &std::ffi::OsStr,
    new_dir: BorrowedFd,
    new: &std::ffi::OsStr,
) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let c_name = |name: &std::ffi::OsStr| {
        CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
    };
    let (old, new) = (c_name(old)?, c_name(new)?);
    // SAFETY: renameat2 reads two NUL-terminated names that outlive the call and two
    // descriptors the caller keeps open; it writes nothing of ours.
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
    use nix::unistd::{Whence, lseek};
    use std::os::unix::ffi::OsStrExt;
    // fdopendir takes ownership of its descriptor, so it gets a duplicate. The duplicate
    // shares the offset of `dir`, which an earlier listing may have moved: start from the
    // beginning.
    let dup = dir.try_clone_to_owned()?;
    lseek(&dup, 0, Whence::SeekSet)?;
    let mut stream = nix::dir::Dir::from_fd(dup)?;
    let mut names = Vec::new();
    for entry in stream.iter() {
        let entry = entry?;
        let bytes = entry.file_name().to_bytes();
        if bytes != b"." && bytes != b".." {
            names.push(std::ffi::OsStr::from_bytes(bytes).to_owned());
        }
    }
    Ok(names)
}
