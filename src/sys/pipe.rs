//! The output path of `attempt`: `splice`, `tee`, pipe sizes, reads into spare capacity, and
//! the duplicate of steady's stdout or stderr the command's output is written to.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, RawFd};

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
