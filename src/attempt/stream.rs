//! The command's output streams: each read, its tail kept, and passed on to its sink (a pipe,
//! file, pty copy or held file), by copy or, once it has printed a lot, by zero-copy
//! `splice`/`tee`; and what is done with them when the attempt ends (final flush, hand-over
//! to the relay, the splice report).

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::outcome::TAIL_BYTES;
use super::relay;
use crate::sys;

pub(super) const READ_CHUNK: usize = 64 * 1024;

/// A forwarded stream moves by `splice` once it has printed this much: only a command that
/// prints a lot gains from it, and only those then hold the larger pipes it needs (pipe
/// buffers count against a per-user quota; past it, every new pipe of the user is tiny).
pub(super) const ZERO_COPY_AFTER: usize = 1 << 20;

/// The pipe a forwarded stream of the command writes to, once its output moves by `splice`:
/// larger than the kernel's 64 KiB, so that each wake-up of steady moves more. Any user may
/// ask for up to 1 MiB (`/proc/sys/fs/pipe-max-size`).
pub(super) const COMMAND_PIPE_BYTES: usize = 1 << 20;

/// The least buffer a pipe that steady writes to gets, once the output moves by `splice`: with
/// the kernel's 64 KiB, a reader that takes 128 KiB at a time (cat) empties it at each read
/// and sleeps until steady wakes up again, and the three processes of `cmd | cat` ping-pong
/// on the CPUs (half the throughput on two cores). Only ever grown, never shrunk.
pub(super) const SINK_PIPE_BYTES: usize = 256 * 1024;

/// The private pipe that holds a zero-copy stream's tail: the tail plus room for the pieces
/// one `tee` adds before the oldest are dropped.
pub(super) const TAIL_PIPE_BYTES: usize = 4 * TAIL_BYTES;

/// Asked of each `splice` or `tee`: more than any pipe holds, so each call takes all it can.
pub(super) const SPLICE_MAX: usize = 1 << 30;

/// The most one zero-copy read moves before the watchdog looks at its clocks again.
pub(super) const TAKE_MAX: usize = COMMAND_PIPE_BYTES;

/// steady copies output to a pipe or socket in pieces no larger than this, each after `poll`
/// said the sink is writable: a pipe that polls writable has room for at least `PIPE_BUF`
/// bytes, so a write never blocks.
pub(super) const WRITE_CHUNK: usize = libc::PIPE_BUF;

/// At the end of an attempt, how long steady waits for a reader that takes none of the output
/// still buffered before it drops the rest.
pub(super) const FINAL_FLUSH_PATIENCE: Duration = Duration::from_secs(5);

/// The most output steady still copies once the attempt is over (leftover daemons of a
/// successful install may keep writing).
pub(super) const FINAL_READ_MAX: usize = 1 << 20;

/// Which of the command's streams a `Stream` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Stdout,
    Stderr,
    /// Both, through one pty.
    Both,
}

/// One output channel: the command's end is read, steady's own stream is written.
pub(super) struct Stream {
    pub(super) role: Role,
    pub(super) source: Option<OwnedFd>,
    pub(super) sink: Option<File>,
    /// The sink is a regular file or `/dev/null`: a write never waits for a reader, so it
    /// needs no `poll` first and may be as large as what is pending.
    pub(super) sink_is_file: bool,
    /// The output may move by `splice` (the source is a pipe, the sink takes it).
    pub(super) splice_ok: bool,
    /// Bytes copied through `pending` so far.
    pub(super) copied: usize,
    /// Bytes moved by `splice` so far.
    pub(super) spliced: u64,
    /// Why `splice` was given up, when it was.
    pub(super) splice_refused: Option<io::Error>,
    /// The reader took nothing for `FINAL_FLUSH_PATIENCE`: the rest is dropped at once.
    pub(super) gave_up: bool,
    /// Read but not yet written to the sink; at most one read's worth.
    pub(super) pending: Vec<u8>,
    pub(super) sent: usize,
    /// The last output. While `zero_copy` is on, the part before the tail pipe's contents (at
    /// first what the copy kept; later only when the tail pipe had to be emptied early).
    pub(super) tail: Vec<u8>,
    /// Set while the output moves by `splice` instead of through `pending`.
    pub(super) zero_copy: Option<ZeroCopy>,
    /// The sink is the file that holds the output (`Output::Hold`), not steady's own stream.
    pub(super) held: bool,
}

/// A stream whose bytes go from the command's pipe to steady's own stream by `splice`, never
/// through steady's memory: a relay through user space copies every byte twice more, and a
/// command that prints a lot ran at less than half its speed through it. The tail is kept by `tee`-ing the
/// same bytes (page references, not copies) into a private pipe whose oldest bytes are
/// dropped into `/dev/null`; it is read only when the attempt is over.
pub(super) struct ZeroCopy {
    tail_read: OwnedFd,
    tail_write: OwnedFd,
    null: File,
    /// Bytes in the tail pipe.
    held: usize,
    /// Bytes at the head of the command's pipe that are already in the tail pipe but not yet
    /// at the sink: `tee` always starts at the head, so nothing is teed while there are any.
    ahead: usize,
}

/// What one `splice` or `tee` that steady did not expect means for the stream.
pub(super) enum Refusal {
    /// The sink (or this kernel) does not take `splice`: copy through `pending` instead.
    Unsupported(io::Error),
    /// The reader is gone, or the sink failed.
    Broken(io::Error),
}

pub(super) fn refusal(e: io::Error) -> Refusal {
    match e.raw_os_error() {
        // EINVAL: a sink splice cannot write (an appending file, some devices); ENOSYS and
        // EPERM: a kernel, emulator or seccomp filter without splice.
        Some(libc::EINVAL | libc::ENOSYS | libc::EPERM | libc::EOPNOTSUPP) => {
            Refusal::Unsupported(e)
        }
        _ => Refusal::Broken(e),
    }
}

/// Whether `splice` can write to `sink` without ever waiting on it: a pipe (SPLICE_F_NONBLOCK
/// then covers it, whatever the sink's own flags), a regular file not opened for appending
/// (splice refuses those), or `/dev/null`. Sockets and other devices are copied instead.
pub(super) fn splice_target(sink: &File) -> bool {
    let Ok(st) = sys::fstat(sink.as_raw_fd()) else {
        return false;
    };
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => true,
        libc::S_IFREG => sys::status_flags(sink.as_fd()).is_ok_and(|f| f & libc::O_APPEND == 0),
        libc::S_IFCHR => is_dev_null(&st),
        _ => false,
    }
}

pub(super) fn is_dev_null(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == libc::makedev(1, 3)
}

/// Reads everything `pipe` holds now into `into`.
pub(super) fn read_all(pipe: &OwnedFd, into: &mut Vec<u8>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match nix::unistd::read(pipe, &mut buf) {
            Ok(0) => break,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break,
        }
    }
}

/// Keeps the last `TAIL_BYTES` of `tail`.
pub(super) fn keep_tail(tail: &mut Vec<u8>) {
    if tail.len() > TAIL_BYTES {
        tail.drain(..tail.len() - TAIL_BYTES);
    }
}

impl ZeroCopy {
    /// Drops the tail pipe's oldest bytes beyond `TAIL_BYTES`, and from `older` whatever the
    /// pipe now covers.
    fn trim(&mut self, older: &mut Vec<u8>) -> Result<(), Refusal> {
        if self.held > TAIL_BYTES {
            let extra = self.held - TAIL_BYTES;
            match sys::splice(self.tail_read.as_fd(), self.null.as_fd(), extra) {
                Ok(n) if n > 0 => self.held -= n,
                Ok(_) => {
                    let e = io::Error::other("splice to /dev/null moved nothing");
                    return Err(Refusal::Unsupported(e));
                }
                Err(e) => return Err(refusal(e)),
            }
            // Everything in `older` came before what was just dropped.
            older.clear();
        }
        // Trimmed only now and then: each trim moves the rest of the buffer.
        let room = TAIL_BYTES.saturating_sub(self.held);
        if older.len() > room + TAIL_BYTES {
            older.drain(..older.len() - room);
        }
        Ok(())
    }

    /// Moves the tail pipe's contents to the end of `older`.
    fn empty_into(&mut self, older: &mut Vec<u8>) {
        read_all(&self.tail_read, older);
        self.held = 0;
    }
}

impl Stream {
    pub(super) fn new(role: Role, source: OwnedFd, sink: Option<File>) -> io::Result<Stream> {
        nix::fcntl::fcntl(
            &source,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )?;
        let sink_is_file = sink.as_ref().is_some_and(|s| {
            sys::fstat(s.as_raw_fd())
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG || is_dev_null(&st))
        });
        Ok(Stream {
            role,
            source: Some(source),
            sink,
            sink_is_file,
            splice_ok: false,
            copied: 0,
            spliced: 0,
            splice_refused: None,
            gave_up: false,
            pending: Vec::new(),
            sent: 0,
            tail: Vec::new(),
            zero_copy: None,
            held: false,
        })
    }

    /// Lets the output move by `splice` once it proves plentiful, when the sink takes it. Only
    /// for a source that is a pipe (not a pty).
    pub(super) fn allow_zero_copy(&mut self) {
        self.splice_ok = self.sink.as_ref().is_some_and(splice_target);
    }

    /// Moves the output by `splice` from here on. Called with nothing pending: what the copy
    /// kept of the tail stays as the part before the tail pipe's. Where anything is missing,
    /// the stream goes on copying.
    pub(super) fn start_zero_copy(&mut self) {
        self.splice_ok = false;
        let (Some(source), Some(sink)) = (&self.source, &self.sink) else {
            return;
        };
        let flags = nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK;
        let Ok((tail_read, tail_write)) = nix::unistd::pipe2(flags) else {
            return;
        };
        // Each teed piece takes a slot of its own, so the tail pipe needs room beyond the tail.
        // Without it (the user's pipe quota is spent) the tail would have to be copied out
        // again and again: plain copying is better then.
        if !sys::set_pipe_size(tail_write.as_fd(), TAIL_PIPE_BYTES)
            .is_ok_and(|n| n >= TAIL_PIPE_BYTES)
        {
            return;
        }
        let Ok(null) = File::options().write(true).open("/dev/null") else {
            return;
        };
        // Only hints: fewer, larger moves, and fewer wake-ups for everyone.
        let _ = sys::set_pipe_size(source.as_fd(), COMMAND_PIPE_BYTES);
        if sys::pipe_size(sink.as_fd()).is_ok_and(|n| n < SINK_PIPE_BYTES) {
            let _ = sys::set_pipe_size(sink.as_fd(), SINK_PIPE_BYTES);
        }
        self.pending = Vec::new();
        self.sent = 0;
        self.zero_copy = Some(ZeroCopy {
            tail_read,
            tail_write,
            null,
            held: 0,
            ahead: 0,
        });
    }

    pub(super) fn wants_read(&self) -> bool {
        self.source.is_some()
            && match &self.zero_copy {
                Some(z) => z.ahead == 0,
                None => self.sent == self.pending.len(),
            }
    }

    pub(super) fn wants_write(&self) -> bool {
        self.sink.is_some()
            && match &self.zero_copy {
                Some(z) => z.ahead > 0,
                None => self.sent < self.pending.len(),
            }
    }

    /// Closes both ends: the reader went away, so the command's end closes too and the command
    /// sees EPIPE (or EIO on a pty) as it would have without steady in between.
    pub(super) fn break_off(&mut self) {
        self.sink = None;
        self.source = None;
        self.pending.clear();
        self.sent = 0;
        if let Some(z) = &mut self.zero_copy {
            z.ahead = 0;
        }
    }

    /// The sink failed. steady's own stream: the reader is gone, so the command's end closes
    /// too (`break_off`). The file holding the output: it is given up, and the stream goes on
    /// reading and dropping, so a full disk never stops the command.
    pub(super) fn sink_failed(&mut self, why: &io::Error) {
        if !self.held {
            return self.break_off();
        }
        crate::ui::warn(&format!(
            "cannot keep the command's output for --output on-failure ({why}); the rest of it is dropped"
        ));
        self.sink = None;
        self.held = false;
        self.pending.clear();
        self.sent = 0;
        if let Some(mut z) = self.zero_copy.take() {
            // The bytes teed ahead are still in the command's pipe: the copy reads them again.
            z.empty_into(&mut self.tail);
            self.tail.truncate(self.tail.len().saturating_sub(z.ahead));
            keep_tail(&mut self.tail);
        }
    }

    /// Stops splicing and copies from here on; the bytes teed ahead are still in the command's
    /// pipe, where the copy reads them again, so they leave the tail now.
    pub(super) fn stop_zero_copy(&mut self, why: io::Error) {
        self.splice_refused = Some(why);
        self.splice_ok = false;
        let Some(mut z) = self.zero_copy.take() else {
            return;
        };
        z.empty_into(&mut self.tail);
        self.tail.truncate(self.tail.len().saturating_sub(z.ahead));
        keep_tail(&mut self.tail);
    }

    /// The last `n` bytes read, as far as the tail holds them (none while the output moves
    /// by `splice`, which steady does not read).
    pub(super) fn recent(&self, n: usize) -> &[u8] {
        if self.zero_copy.is_some() {
            return &[];
        }
        &self.tail[self.tail.len().saturating_sub(n)..]
    }

    /// Takes what the command wrote: one chunk when it is to be forwarded (so memory stays
    /// bounded), else all there is. Returns how many new bytes came.
    pub(super) fn read(&mut self) -> usize {
        if self.splice_ok && self.copied >= ZERO_COPY_AFTER && self.sent == self.pending.len() {
            self.start_zero_copy();
        }
        if self.zero_copy.is_some() {
            return self.take();
        }
        let Some(fd) = &self.source else { return 0 };
        if self.sent < self.pending.len() {
            return 0;
        }
        // The pending buffer is reused for every chunk (once written, its bytes are done).
        let mut buf = std::mem::take(&mut self.pending);
        buf.clear();
        buf.reserve_exact(READ_CHUNK);
        let mut total = 0;
        loop {
            match sys::read_into(fd.as_fd(), &mut buf) {
                Ok(0) => {
                    self.source = None;
                    break;
                }
                Ok(n) => {
                    total += n;
                    self.tail.extend_from_slice(&buf);
                    if self.tail.len() > 2 * TAIL_BYTES {
                        self.tail.drain(..self.tail.len() - TAIL_BYTES);
                    }
                    if self.sink.is_some() {
                        self.pending = buf;
                        self.sent = 0;
                        self.copied += n;
                        self.write();
                        return total;
                    }
                    buf.clear();
                }
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                // EIO: a pty whose slave nobody holds any more, the pty's end of file.
                Err(_) => {
                    self.source = None;
                    break;
                }
            }
        }
        buf.clear();
        self.pending = buf;
        self.sent = 0;
        total
    }

    /// The zero-copy `read`: tees what the command's pipe holds into the tail pipe, then
    /// splices the same bytes to the sink, until the pipe is empty or the sink full.
    pub(super) fn take(&mut self) -> usize {
        let mut total = 0;
        let mut emptied = false;
        while total < TAKE_MAX && self.wants_read() && self.sink.is_some() {
            let (Some(source), Some(z)) = (&self.source, &mut self.zero_copy) else {
                break;
            };
            if let Err(r) = z.trim(&mut self.tail) {
                return total + self.refused(r);
            }
            match sys::tee(source.as_fd(), z.tail_write.as_fd(), SPLICE_MAX) {
                Ok(0) => self.source = None,
                Ok(n) => {
                    z.held += n;
                    z.ahead = n;
                    total += n;
                    self.write();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Nothing to take, or no free slot in the tail pipe: a command that
                    // prints a line at a time fills the slots with far fewer bytes than the
                    // tail. Then the tail moves into memory and the pipe starts over. (After
                    // a take, the pipe is most likely just empty; if not, it polls readable
                    // again at once and this is looked into then.)
                    if total > 0
                        || emptied
                        || z.held == 0
                        || !sys::bytes_readable(source.as_fd()).is_ok_and(|n| n > 0)
                    {
                        break;
                    }
                    z.empty_into(&mut self.tail);
                    keep_tail(&mut self.tail);
                    emptied = true;
                }
                Err(e) => return total + self.refused(refusal(e)),
            }
        }
        total
    }

    /// Handles a `splice` or `tee` that failed; returns what a copy then read at once.
    pub(super) fn refused(&mut self, why: Refusal) -> usize {
        match why {
            Refusal::Unsupported(e) => {
                self.stop_zero_copy(e);
                self.read()
            }
            Refusal::Broken(e) => {
                self.sink_failed(&e);
                // A held stream goes on, reading and dropping.
                if self.source.is_some() {
                    self.read()
                } else {
                    0
                }
            }
        }
    }

    /// Writes pending output while the sink takes it without blocking.
    pub(super) fn write(&mut self) {
        if self.zero_copy.is_some() {
            return self.push();
        }
        while self.wants_write() {
            let Some(sink) = &mut self.sink else { return };
            let end = if self.sink_is_file {
                self.pending.len()
            } else {
                let mut fds = [PollFd::new(sink.as_fd(), PollFlags::POLLOUT)];
                if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
                    return;
                }
                (self.sent + WRITE_CHUNK).min(self.pending.len())
            };
            match sink.write(&self.pending[self.sent..end]) {
                Ok(n) if n > 0 => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => self.sink_failed(&e),
                Ok(_) => self.sink_failed(&io::Error::other("the output file took nothing")),
            }
        }
    }

    /// The zero-copy `write`: splices the bytes teed ahead to the sink.
    pub(super) fn push(&mut self) {
        while self.wants_write() {
            let (Some(source), Some(sink), Some(z)) =
                (&self.source, &self.sink, &mut self.zero_copy)
            else {
                return;
            };
            match sys::splice(source.as_fd(), sink.as_fd(), z.ahead) {
                Ok(n) if n > 0 => {
                    z.ahead -= n;
                    self.spliced += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Ok(_) => self.sink_failed(&io::Error::other("splice moved nothing")),
                // The copy reads the bytes again when the loop next polls the command's pipe.
                Err(e) => match refusal(e) {
                    Refusal::Unsupported(e) => self.stop_zero_copy(e),
                    Refusal::Broken(e) => self.sink_failed(&e),
                },
            }
        }
    }

    /// Gives up on what is pending: it is dropped, as if written.
    pub(super) fn drop_pending(&mut self) -> usize {
        let Some(z) = &mut self.zero_copy else {
            let dropped = self.pending.len() - self.sent;
            self.pending.clear();
            self.sent = 0;
            return dropped;
        };
        let dropped = std::mem::take(&mut z.ahead);
        let Some(source) = &self.source else {
            return dropped;
        };
        // The bytes still sit at the head of the command's pipe (and in the tail already).
        let mut left = dropped;
        while left > 0 {
            match sys::splice(source.as_fd(), z.null.as_fd(), left) {
                Ok(m) if m > 0 => left -= m,
                _ => break,
            }
        }
        let mut scratch = [0u8; 4096];
        while left > 0 {
            let want = left.min(scratch.len());
            match nix::unistd::read(source, &mut scratch[..want]) {
                Ok(m) if m > 0 => left -= m,
                _ => break,
            }
        }
        dropped
    }

    /// Writes what is pending, waiting for a slow reader, but not for one that takes nothing
    /// for `FINAL_FLUSH_PATIENCE` or when steady is told to stop: then this and all that
    /// follows is dropped. Returns bytes dropped.
    pub(super) fn flush(&mut self) -> usize {
        let mut progress_at = Instant::now();
        while self.wants_write() {
            if self.gave_up {
                return self.drop_pending();
            }
            let before = self.backlog();
            self.write();
            if self.backlog() != before {
                progress_at = Instant::now();
                continue;
            }
            let waited = progress_at.elapsed();
            if !self.wants_write() {
                break;
            }
            if waited >= FINAL_FLUSH_PATIENCE || sys::is_pending(&sys::STOP_SIGNALS) {
                // Once, not for each piece still to come (a full 1 MiB pipe is many).
                self.gave_up = true;
                return self.drop_pending();
            }
            if let Some(sink) = &self.sink {
                let _ = poll(
                    &mut [PollFd::new(sink.as_fd(), PollFlags::POLLOUT)],
                    timeout_until(Instant::now(), progress_at + FINAL_FLUSH_PATIENCE),
                );
            }
        }
        0
    }

    /// Bytes taken from the command but not yet at the sink.
    pub(super) fn backlog(&self) -> usize {
        match &self.zero_copy {
            Some(z) => z.ahead,
            None => self.pending.len() - self.sent,
        }
    }

    pub(super) fn into_tail(mut self) -> Vec<u8> {
        if let Some(mut z) = self.zero_copy.take() {
            z.empty_into(&mut self.tail);
        }
        keep_tail(&mut self.tail);
        self.tail
    }
}

pub(super) fn timeout_until(now: Instant, at: Instant) -> PollTimeout {
    let ms = at
        .saturating_duration_since(now)
        .as_millis()
        .clamp(1, i32::MAX as u128) as i32;
    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
}

/// Copies what is still to come (bounded) and pending to the sinks.
pub(super) fn flush_all(streams: &mut [Stream]) {
    let mut dropped = 0;
    for s in streams {
        let mut budget = FINAL_READ_MAX;
        loop {
            dropped += s.flush();
            let n = if budget > 0 { s.read() } else { 0 };
            if n == 0 {
                dropped += s.flush();
                break;
            }
            budget = budget.saturating_sub(n);
        }
    }
    if dropped > 0 {
        crate::ui::warn(&format!(
            "dropped the last {dropped} bytes of the command's output: nothing read them"
        ));
    }
}

/// A forwarded stream still open after a successful command has a writer left: a daemon it
/// started. Its reading end goes to a relay that outlives steady (see `relay`).
pub(super) fn hand_over_leftover_output(streams: &mut [Stream]) {
    for s in streams {
        let fd = match s.role {
            Role::Stdout => 1,
            Role::Stderr | Role::Both => 2,
        };
        if s.sink.is_none() || s.backlog() > 0 {
            continue;
        }
        let Some(source) = s.source.take() else {
            continue;
        };
        if let Err(e) = relay::hand_over(source, fd) {
            crate::ui::detail(&format!(
                "cannot pass on the output of the command's leftover processes ({e}); their next write fails"
            ));
        }
    }
}

/// Said only at the end: a line in the middle would land inside the command's own stderr.
pub(super) fn say_splice(streams: &[Stream]) {
    for s in streams {
        let name = match s.role {
            Role::Stdout => "stdout",
            Role::Stderr | Role::Both => "stderr",
        };
        if s.spliced > 0 {
            crate::ui::detail(&format!(
                "{} bytes of the command's {name} moved by splice, without a copy",
                s.spliced
            ));
        }
        if let Some(e) = &s.splice_refused {
            crate::ui::detail(&format!(
                "splice refused the command's {name} ({e}); it was copied instead"
            ));
        }
    }
}
