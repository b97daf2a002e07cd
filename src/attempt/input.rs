//! The command's stdin, the same for every attempt. A retry must see the bytes the first
//! attempt saw: `printf 'alpha==1.0\n' | steady -- uv pip install -r -` whose second attempt
//! read an empty pipe installed nothing and succeeded.
//!
//! - A terminal, `/dev/null` or another device is inherited unchanged (a terminal stays a
//!   terminal; reading a device again gives what it gives without steady).
//! - A regular file is inherited and rewound to where it started before each attempt (the
//!   command shares steady's file offset).
//! - Anything else (a pipe, a socket) cannot be read twice, so steady passes it on through a
//!   pipe of its own and keeps every byte it passed: in memory up to `MEMORY_MAX`, beyond that
//!   in an unnamed temp file (`O_TMPFILE`, or a file unlinked at once in a private directory),
//!   up to `FILE_MAX`. A retry is fed what was kept, then the rest of the live input. Input is
//!   read only as fast as the command takes it (`yes | steady -- …` stays bounded), and only
//!   when `poll` says it is readable, so the watchdog never blocks on it. When it cannot be
//!   kept, the attempt still gets all of it, but no retry follows (see `lost`).

use crate::sys::ChildIo;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::PollFlags;

/// Input kept in memory; more moves to a temp file.
const MEMORY_MAX: usize = 1 << 20;

/// Input kept at all; past it a retry cannot be fed the same bytes.
const FILE_MAX: u64 = 1 << 30;

const CHUNK: usize = 64 * 1024;

/// How steady's stdin is given to each attempt.
pub struct Replay {
    how: How,
}

enum How {
    Inherit,
    /// A regular file, rewound to this offset before each attempt.
    Rewind(u64),
    Pump(Kept),
}

/// What was read from steady's stdin so far.
struct Kept {
    memory: Vec<u8>,
    file: Option<(File, u64)>,
    eof: bool,
    /// Why the input cannot be replayed, once it cannot.
    lost: Option<String>,
}

impl Kept {
    fn len(&self) -> u64 {
        match &self.file {
            Some((_, len)) => *len,
            None => self.memory.len() as u64,
        }
    }

    /// Appends `bytes`, moving to a temp file past `MEMORY_MAX`; on failure the input is lost
    /// for replays (the current attempt still gets it).
    fn keep(&mut self, bytes: &[u8]) {
        if self.lost.is_some() {
            return;
        }
        if let Err(e) = self.try_keep(bytes) {
            self.lost = Some(e);
            self.memory = Vec::new();
            self.file = None;
        }
    }

    fn try_keep(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.file.is_none() && self.memory.len() + bytes.len() <= MEMORY_MAX {
            self.memory.extend_from_slice(bytes);
            return Ok(());
        }
        if self.file.is_none() {
            let mut f = private_temp_file("stdin").map_err(|e| {
                format!("no private temp file for more than {MEMORY_MAX} bytes ({e})")
            })?;
            f.write_all(&self.memory)
                .map_err(|e| format!("cannot write the temp file ({e})"))?;
            self.file = Some((f, self.memory.len() as u64));
            self.memory = Vec::new();
        }
        let Some((f, len)) = &mut self.file else {
            return Ok(());
        };
        if *len + bytes.len() as u64 > FILE_MAX {
            return Err(format!("it is larger than {FILE_MAX} bytes"));
        }
        f.write_all_at(bytes, *len)
            .map_err(|e| format!("cannot write the temp file ({e})"))?;
        *len += bytes.len() as u64;
        Ok(())
    }

    /// Up to `CHUNK` kept bytes from `pos` into `into`.
    fn read_at(&self, pos: u64, into: &mut Vec<u8>) -> io::Result<usize> {
        let end = (pos + CHUNK as u64).min(self.len());
        let n = (end - pos) as usize;
        match &self.file {
            None => into.extend_from_slice(&self.memory[pos as usize..end as usize]),
            Some((f, _)) => {
                let start = into.len();
                into.resize(start + n, 0);
                f.read_exact_at(&mut into[start..], pos)?;
            }
        }
        Ok(n)
    }
}

/// An unnamed file only this process can reach: `O_TMPFILE` in the temp directory, else a
/// file created in a fresh 0700 directory and unlinked with it at once. `what` names that
/// directory (`steady-stdin-…`) for the moment it exists.
pub fn private_temp_file(what: &str) -> io::Result<File> {
    let dir = std::env::temp_dir();
    let open = |path: &std::path::Path, flags: i32| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(flags)
            .open(path)
    };
    match open(&dir, libc::O_TMPFILE) {
        Ok(f) => return Ok(f),
        // Not every filesystem has O_TMPFILE; anything else (no such directory) is final.
        Err(e) if !matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR)) => {
            return Err(e);
        }
        Err(_) => {}
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let private = dir.join(format!("steady-{what}-{}-{nanos}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let file = private.join("input");
    let made = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&file);
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir(&private);
    made
}

impl Replay {
    /// Looks at steady's stdin once, before the first attempt.
    pub fn new() -> Replay {
        let stdin = io::stdin();
        let how = match nix::sys::stat::fstat(stdin.as_fd()) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => {
                match nix::unistd::lseek(stdin.as_fd(), 0, nix::unistd::Whence::SeekCur) {
                    Ok(at) => How::Rewind(at as u64),
                    Err(_) => How::Inherit,
                }
            }
            Ok(st) if matches!(st.st_mode & libc::S_IFMT, libc::S_IFIFO | libc::S_IFSOCK) => {
                How::Pump(Kept {
                    memory: Vec::new(),
                    file: None,
                    eof: false,
                    lost: None,
                })
            }
            _ => How::Inherit,
        };
        Replay { how }
    }

    /// Why the input an attempt read cannot be given again to a retry, if it cannot.
    pub fn lost(&self) -> Option<&str> {
        match &self.how {
            How::Pump(k) => k.lost.as_deref(),
            _ => None,
        }
    }

    /// The next attempt's stdin, and the feed that fills it when steady pumps it.
    pub fn for_attempt(&mut self) -> io::Result<(ChildIo, Option<Feed>)> {
        match &self.how {
            How::Inherit => Ok((ChildIo::Inherit, None)),
            How::Rewind(at) => {
                nix::unistd::lseek(
                    io::stdin().as_fd(),
                    *at as libc::off_t,
                    nix::unistd::Whence::SeekSet,
                )?;
                Ok((ChildIo::Inherit, None))
            }
            How::Pump(_) => {
                let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
                // Only steady's end: the command reads as it would from any pipe.
                fcntl(&write, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
                let feed = Feed {
                    pipe: Some(write),
                    pos: 0,
                    pending: Vec::new(),
                    sent: 0,
                };
                Ok((ChildIo::Fd(read), Some(feed)))
            }
        }
    }

    fn kept(&mut self) -> Option<&mut Kept> {
        match &mut self.how {
            How::Pump(k) => Some(k),
            _ => None,
        }
    }
}

/// Fills one attempt's stdin pipe: first what was kept, then live input.
pub struct Feed {
    pipe: Option<OwnedFd>,
    /// How far into the kept input this attempt has been fed.
    pos: u64,
    pending: Vec<u8>,
    sent: usize,
}

impl Feed {
    /// What to wait for: the pipe to take more, or steady's stdin to have more; `None` when
    /// the feed is done.
    pub fn wants(&self, replay: &Replay) -> Option<(BorrowedFd<'_>, PollFlags)> {
        let pipe = self.pipe.as_ref()?;
        if self.sent < self.pending.len() {
            return Some((pipe.as_fd(), PollFlags::POLLOUT));
        }
        match &replay.how {
            How::Pump(k) if !k.eof => Some((stdin_fd(), PollFlags::POLLIN)),
            _ => None,
        }
    }

    /// Moves what it can without waiting. `readable`: `poll` said steady's stdin has input
    /// (or its end).
    pub fn step(&mut self, replay: &mut Replay, readable: bool) {
        let Some(kept) = replay.kept() else { return };
        let mut readable = readable;
        while self.pipe.is_some() {
            if self.sent < self.pending.len() {
                if !self.write() {
                    return;
                }
                continue;
            }
            self.pending.clear();
            self.sent = 0;
            if kept.lost.is_none() && self.pos < kept.len() {
                match kept.read_at(self.pos, &mut self.pending) {
                    Ok(n) => self.pos += n as u64,
                    Err(_) => self.pipe = None,
                }
                continue;
            }
            if kept.eof {
                // All of it is in the pipe: the command sees its end of file.
                self.pipe = None;
                return;
            }
            if !std::mem::take(&mut readable) {
                return;
            }
            self.read_live(kept);
        }
    }

    /// Reads one chunk of live input (`poll` said there is some), keeping it for retries.
    fn read_live(&mut self, kept: &mut Kept) {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match nix::unistd::read(stdin_fd(), &mut buf) {
                Ok(0) => kept.eof = true,
                Ok(n) => {
                    buf.truncate(n);
                    kept.keep(&buf);
                    self.pos = kept.len();
                    self.pending = buf;
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {}
                Err(e) => {
                    kept.eof = true;
                    kept.lost
                        .get_or_insert_with(|| format!("reading it failed ({e})"));
                }
            }
            return;
        }
    }

    /// Writes pending input; false when the pipe takes no more now.
    fn write(&mut self) -> bool {
        let Some(pipe) = &self.pipe else { return false };
        match nix::unistd::write(pipe, &self.pending[self.sent..]) {
            Ok(n) => {
                self.sent += n;
                true
            }
            Err(Errno::EINTR) => true,
            Err(Errno::EAGAIN) => false,
            // The command closed its stdin (EPIPE): it wants no more, as without steady.
            Err(_) => {
                self.pipe = None;
                false
            }
        }
    }
}

/// steady's stdin, borrowed for as long as the process lives.
fn stdin_fd() -> BorrowedFd<'static> {
    static STDIN: std::sync::LazyLock<io::Stdin> = std::sync::LazyLock::new(io::stdin);
    STDIN.as_fd()
}
