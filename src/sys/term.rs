//! Terminals: whether steady's stdio is one, whether steady owns the foreground, and window
//! sizes for the pty a command may get.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

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
