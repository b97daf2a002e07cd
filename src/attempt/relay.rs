//! Output of processes an attempt leaves behind. A successful command may start a daemon (a
//! build server, a cache daemon) that keeps writing to the stdout and stderr it inherited:
//! without steady that is steady's own stdout and stderr, which stay open after the command
//! returns. Through steady it is a pipe (or pty) that steady reads, and when steady exits the
//! daemon's next write would fail (SIGPIPE, EIO) and kill it. So when steady is done and such
//! a writer is still there, the reading end is handed to a relay: steady's own executable,
//! started again under the name `steady (relay)`, which copies the pipe to steady's stream
//! until the last writer closes it (or the reader of steady's stream goes away, which the
//! daemon then sees as it would have without steady). The relay is started by exec, so it
//! holds none of steady's descriptors (close-on-exec): no lock, no database session. It runs
//! in a process group of its own, so a terminal's Ctrl-C to steady's group does not reach it.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// The relay's `argv[0]`, by which `main` recognises it (and `ps` shows it).
pub const NAME: &str = "steady (relay)";

/// Starts a relay copying `source` to steady's own stream `fd` (1 or 2).
pub fn hand_over(source: OwnedFd, fd: i32) -> io::Result<()> {
    // steady read it without blocking; the relay waits in `read`.
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(&source, FcntlArg::F_GETFL)?);
    fcntl(&source, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
    let sink = if fd == 2 {
        io::stderr().as_fd().try_clone_to_owned()?
    } else {
        io::stdout().as_fd().try_clone_to_owned()?
    };
    Command::new("/proc/self/exe")
        .arg0(NAME)
        .stdin(Stdio::from(source))
        .stdout(Stdio::from(sink))
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
}

/// The relay itself: copies its stdin to its stdout unchanged and unbuffered until either
/// ends.
pub fn run() -> std::process::ExitCode {
    let from = io::stdin().as_fd().try_clone_to_owned();
    let to = io::stdout().as_fd().try_clone_to_owned();
    if let (Ok(from), Ok(to)) = (from, to) {
        let _ = io::copy(&mut File::from(from), &mut File::from(to));
    }
    std::process::ExitCode::SUCCESS
}
