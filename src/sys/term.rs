//! Terminals: whether steady's stdio is one, whether steady owns the foreground, and window
//! sizes for the pty a command may get. Needs `unsafe` only for the window-size ioctls
//! (`TIOCGWINSZ`, `TIOCSWINSZ`), which neither `nix` nor std wraps.

use std::io::{self, IsTerminal};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// True when stdin is a terminal whose foreground process group is steady's own: a developer
/// typing in front of a command. The command then stays in steady's group so the terminal
/// keeps working for it (prompts, Ctrl-C, Ctrl-Z).
pub fn owns_foreground_terminal() -> bool {
    let stdin = io::stdin();
    nix::unistd::isatty(&stdin).unwrap_or(false)
        && nix::unistd::tcgetpgrp(&stdin).is_ok_and(|pg| pg == nix::unistd::getpgrp())
}

/// Whether steady's stdin (0), stdout (1) or stderr (2) is a terminal; any other number is
/// not asked about (std's `IsTerminal` needs a descriptor it can borrow, and only the standard
/// streams are always open).
pub fn is_terminal(fd: RawFd) -> bool {
    match fd {
        0 => io::stdin().is_terminal(),
        1 => io::stdout().is_terminal(),
        2 => io::stderr().is_terminal(),
        _ => false,
    }
}

/// The window size of a terminal (`TIOCGWINSZ`), or `None` when `fd` is not one.
pub fn window_size(fd: BorrowedFd) -> Option<libc::winsize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
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
