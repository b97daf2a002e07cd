//! `--output on-failure`: the command's output, held instead of shown, and shown only if the
//! run finally fails (as `chronic` does, for quiet CI logs).
//!
//! Where it is kept: one unnamed file per run (`O_TMPFILE`, else a file unlinked at once in a
//! fresh 0700 directory), readable by nobody else and gone when steady exits, however it
//! exits. The attempt writes to it as it would to steady's own stream, so memory stays
//! bounded whatever the command prints (the page cache holds it, not steady) and a command
//! that prints a lot still moves its bytes by `splice`. Both streams share the file, so they
//! are kept in the order steady read them, as a CI log that merges them would show them.
//!
//! What "finally fails" means: the run's outcome is not success (the last attempt failed, the
//! watchdog killed it, steady was interrupted). Then every attempt's output is shown, in order,
//! each after a `steady:` line naming the attempt and how it ended, on steady's stderr (the
//! merged streams cannot be split again; stdout of a failed run is no result to keep). A run
//! that succeeds, also after retries, shows nothing of the command's: the retry lines say what
//! happened, and `--report` keeps the details.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{self, Seek, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;

use crate::attempt::input::private_temp_file;
use crate::ui;

/// One attempt's part of the file.
struct Segment {
    attempt: u32,
    /// How it ended, in words: `exit 3, unknown`.
    ending: String,
    start: u64,
    end: u64,
}

pub struct Held {
    file: File,
    segments: RefCell<Vec<Segment>>,
    /// Shown already (or given up): nothing more to do.
    done: Cell<bool>,
}

impl Held {
    pub fn new() -> io::Result<Held> {
        Ok(Held {
            file: private_temp_file("output")?,
            segments: RefCell::new(Vec::new()),
            done: Cell::new(false),
        })
    }

    /// Where an attempt writes the output it holds.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Marks the end of attempt `attempt`'s output: everything written since the last mark.
    pub fn end_attempt(&self, attempt: u32, ending: String) {
        let mut segments = self.segments.borrow_mut();
        let start = segments.last().map_or(0, |s| s.end);
        // The attempt's copies of the file share its offset, so it is where they stopped.
        let end = (&self.file).stream_position().unwrap_or(start).max(start);
        segments.push(Segment {
            attempt,
            ending,
            start,
            end,
        });
    }

    /// Drops what is held: the run succeeded.
    pub fn discard(&self) {
        self.done.set(true);
    }

    /// Shows every attempt's output on stderr, once, each after a line naming the attempt.
    pub fn show(&self, attempts: u32) {
        if self.done.replace(true) {
            return;
        }
        let segments = self.segments.borrow();
        let any = segments.iter().any(|s| s.end > s.start);
        if !any {
            if !segments.is_empty() {
                ui::always("the command printed nothing (--output on-failure)");
            }
            return;
        }
        for s in segments.iter() {
            if s.end == s.start {
                ui::always(&format!(
                    "attempt {} of {attempts} ({}) printed nothing",
                    s.attempt, s.ending
                ));
                continue;
            }
            ui::always(&format!(
                "output of attempt {} of {attempts} ({}), held by --output on-failure:",
                s.attempt, s.ending
            ));
            if let Err(e) = self.copy(s.start, s.end) {
                ui::warn(&format!("cannot show the held output: {e}"));
                return;
            }
        }
    }

    /// Copies bytes `start..end` of the file to stderr, waiting for a slow reader.
    fn copy(&self, start: u64, end: u64) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut at = start;
        let stderr = io::stderr();
        let mut out = stderr.lock();
        let mut last_newline = true;
        while at < end {
            let want = ((end - at) as usize).min(buf.len());
            let n = self.file.read_at(&mut buf[..want], at)?;
            if n == 0 {
                break;
            }
            write_waiting(&mut out, &buf[..n])?;
            last_newline = buf[n - 1] == b'\n';
            at += n as u64;
        }
        // The next `steady:` line starts on a line of its own.
        if !last_newline {
            write_waiting(&mut out, b"\n")?;
        }
        out.flush()
    }
}

/// `write_all`, also to a stderr someone else made non-blocking: waits in `poll` for room.
fn write_waiting(out: &mut impl Write, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match out.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let stderr = io::stderr();
                let _ = nix::poll::poll(
                    &mut [nix::poll::PollFd::new(
                        stderr.as_fd(),
                        nix::poll::PollFlags::POLLOUT,
                    )],
                    nix::poll::PollTimeout::from(1000u16),
                );
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
