//! A pseudo-terminal for the command's output, used when steady's own stdout or stderr is a
//! terminal. The command writes to the pty's slave, so `isatty` is true and colours, progress
//! bars and the window size work as without steady; steady reads the master, copies every byte
//! to its real terminal and keeps the tail it classifies.
//!
//! Why only the output: stdin stays the real terminal, so prompts read the keyboard and, when
//! steady runs in the terminal's foreground, the command shares steady's foreground process
//! group: Ctrl-C, Ctrl-Z and SIGWINCH reach it from the real terminal as without steady, and
//! steady never has to put the user's terminal in raw mode (which a `script`-style full relay
//! needs, and which a killed steady would leave behind). The pty is nobody's controlling
//! terminal, so the kernel sends no signals through it; steady copies size changes itself.
//!
//! The pty's termios is the real terminal's with output processing (`OPOST`) off: the bytes
//! the command writes reach the real terminal unchanged, which then applies its own output
//! processing exactly once (`\n` is not turned into `\r\r\n`).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::sys::termios::{OutputFlags, tcgetattr};

use crate::sys;

/// steady's end of a pty: what the command writes is read from `master`.
pub struct Pty {
    pub master: OwnedFd,
    /// steady's own stream (1 or 2) that is the real terminal.
    terminal: i32,
    size: Option<libc::winsize>,
}

/// Runs `f` on steady's own stdout (1) or stderr (2).
fn with_own_stream<R>(fd: i32, f: impl FnOnce(BorrowedFd) -> R) -> R {
    if fd == 2 {
        f(io::stderr().as_fd())
    } else {
        f(io::stdout().as_fd())
    }
}

impl Pty {
    /// Opens a pty that looks like steady's terminal on `terminal` (1 or 2): same settings
    /// (output processing off) and window size. Returns steady's end and the command's (the
    /// slave, to give it as stdout and/or stderr).
    pub fn like(terminal: i32) -> io::Result<(Pty, OwnedFd)> {
        let (termios, size) = with_own_stream(terminal, |real| {
            tcgetattr(real).map(|t| (t, sys::window_size(real)))
        })?;
        let mut termios = termios;
        termios.output_flags.remove(OutputFlags::OPOST);
        let pty = nix::pty::openpty(size.as_ref(), &termios)?;
        for fd in [&pty.master, &pty.slave] {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
        }
        fcntl(&pty.master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        Ok((
            Pty {
                master: pty.master,
                terminal,
                size,
            },
            pty.slave,
        ))
    }

    /// Copies the real terminal's current window size onto the pty; true when it changed.
    pub fn sync_size(&mut self) -> bool {
        let Some(now) = with_own_stream(self.terminal, sys::window_size) else {
            return false;
        };
        let same = self.size.is_some_and(|s| {
            (s.ws_row, s.ws_col, s.ws_xpixel, s.ws_ypixel)
                == (now.ws_row, now.ws_col, now.ws_xpixel, now.ws_ypixel)
        });
        if same || sys::set_window_size(self.master.as_fd(), &now).is_err() {
            return false;
        }
        self.size = Some(now);
        true
    }
}

/// True when steady's stdout and stderr are the same terminal device, so the command gets one
/// pty for both and its two streams stay interleaved as on the real terminal.
pub fn stdout_and_stderr_same_terminal() -> bool {
    match (sys::fstat(1), sys::fstat(2)) {
        (Ok(a), Ok(b)) => a.st_rdev == b.st_rdev && a.st_dev == b.st_dev,
        _ => false,
    }
}
