//! The output path of `attempt`: `splice`, `tee`, pipe sizes, reads into spare capacity, and
//! the duplicate of steady's stdout or stderr the command's output is written to. Needs
//! `unsafe` for the read into a `Vec`'s spare capacity (std's safe reads want initialized
//! bytes) and for `FIONREAD`, which neither `nix` nor std wraps.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, SpliceFFlags, fcntl};

/// Duplicates steady's stdout (1) or stderr (2) into an owned descriptor, for writing the
/// command's output unbuffered. The copy is close-on-exec and numbered 3 or above, so the
/// command never inherits it as a stray descriptor.
pub fn dup_stdio(fd: RawFd) -> io::Result<std::fs::File> {
    let copy = match fd {
        1 => io::stdout().as_fd().try_clone_to_owned()?,
        2 => io::stderr().as_fd().try_clone_to_owned()?,
        _ => return Err(io::Error::from_raw_os_error(libc::EBADF)),
    };
    Ok(copy.into())
}

// Zero-copy output for `attempt`: the command's pipe is moved to steady's stdout or stderr by
// `splice` and its tail kept by `tee`, so the bytes never pass through steady's memory. Both
// calls are made with SPLICE_F_NONBLOCK: a full or empty pipe gives EAGAIN instead of
// blocking the watchdog, even when the other end's file description is in blocking mode (it
// is shared with whoever started steady, so steady must not change its flags).

/// Retries `call` while a signal interrupts it (the watchdog looks at signals in its poll
/// loop, not here).
fn retry_eintr<T>(mut call: impl FnMut() -> nix::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(Errno::EINTR) => continue,
            other => return Ok(other?),
        }
    }
}

/// `splice(2)` from the pipe `from` to `to` (a pipe or a file), up to `len` bytes, without
/// waiting. `Ok(0)` is end of file (`from` empty, no writer left).
pub fn splice(from: BorrowedFd, to: BorrowedFd, len: usize) -> io::Result<usize> {
    // No offsets: both ends use (and advance) their file positions.
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    retry_eintr(|| nix::fcntl::splice(from, None, to, None, len, flags))
}

/// `tee(2)`: copies up to `len` bytes from the head of the pipe `from` into the pipe `to`
/// (page references, not bytes), leaving them in `from`. Never waits; `Ok(0)` is end of file.
pub fn tee(from: BorrowedFd, to: BorrowedFd, len: usize) -> io::Result<usize> {
    retry_eintr(|| nix::fcntl::tee(from, to, len, SpliceFFlags::SPLICE_F_NONBLOCK))
}

/// Asks for a pipe buffer of `bytes` (`F_SETPIPE_SZ`); returns the size the kernel gave.
pub fn set_pipe_size(pipe: BorrowedFd, bytes: usize) -> io::Result<usize> {
    let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    Ok(fcntl(pipe, FcntlArg::F_SETPIPE_SZ(bytes))? as usize)
}

/// The size of a pipe's buffer (`F_GETPIPE_SZ`).
pub fn pipe_size(pipe: BorrowedFd) -> io::Result<usize> {
    Ok(fcntl(pipe, FcntlArg::F_GETPIPE_SZ)? as usize)
}

/// `read(2)` into the unused capacity of `buf`, appending what came. Unlike a read into a
/// slice, the buffer need not be zeroed first: steady reuses one for every piece it copies.
pub fn read_into(fd: BorrowedFd, buf: &mut Vec<u8>) -> nix::Result<usize> {
    let spare = buf.spare_capacity_mut();
    // SAFETY: the kernel writes at most `spare.len()` bytes into the spare capacity.
    let r = unsafe { libc::read(fd.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
    if r < 0 {
        return Err(Errno::last());
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
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n.max(0) as usize)
}

/// The status flags of an open file description (`F_GETFL`).
pub fn status_flags(fd: BorrowedFd) -> io::Result<i32> {
    Ok(fcntl(fd, FcntlArg::F_GETFL)?)
}
