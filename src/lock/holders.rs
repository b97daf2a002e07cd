//! Who holds a lock, read from the kernel: the FLOCK lines of `/proc/locks`, the open
//! descriptors and command lines of `/proc/<pid>`, and the in-memory markers steady keeps for
//! each lock it holds or waits on (how long, and since when). `lock` uses it to name a holder
//! on contention, `status` and `doctor` to list locks; nothing here takes or changes a lock.

use std::ffi::OsStr;
use std::os::fd::RawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::sys;
use crate::ui;

/// Name prefix of the memfd markers a steady process keeps open for each of its locks.
pub const MARKER_PREFIX: &str = "steady-lock:";

/// The process holding a lock, from `/proc/locks` and `/proc/<pid>`.
#[derive(Debug, Clone)]
pub struct Holder {
    pub pid: i32,
    pub command: Option<String>,
    pub running_for: Option<Duration>,
    /// How long it has held this lock, when it is a steady that says so.
    pub held_for: Option<Duration>,
    /// Further holders of a shared lock.
    pub others: usize,
}

impl Holder {
    pub fn describe(&self) -> String {
        let mut s = format!("pid {}", self.pid);
        if let Some(c) = &self.command {
            s.push_str(&format!(" (`{c}`)"));
        }
        match (self.held_for, self.running_for) {
            (Some(d), _) => s.push_str(&format!(", holding it for {}", ui::human(d))),
            (None, Some(d)) => s.push_str(&format!(", running for {}", ui::human(d))),
            (None, None) => {}
        }
        if self.others > 0 {
            s.push_str(&format!(", and {} other holder(s)", self.others));
        }
        s
    }
}

/// The holder of the flock on the file behind `fd`, if the kernel says.
pub fn holder_of(fd: RawFd) -> Option<Holder> {
    let st = sys::fstat(fd).ok()?;
    let holders: Vec<LockEntry> = proc_locks_entries(st.st_dev, st.st_ino)
        .into_iter()
        .filter(|e| !e.waiting && e.pid > 0)
        .collect();
    let first = holders.first()?;
    let mut h = describe_pid(first.pid);
    h.held_for = markers_of(first.pid)
        .into_iter()
        .find(|m| m.held && m.dev == st.st_dev && m.ino == st.st_ino)
        .and_then(|m| m.since.elapsed().ok());
    h.others = holders.len() - 1;
    Some(h)
}

/// The holder of the lock on `fd` among `pids`, by the steady marker that says it holds that
/// very file: no `/proc/locks` read. `None` when none of them says so.
pub fn holder_among(fd: RawFd, pids: &[i32]) -> Option<Holder> {
    let st = sys::fstat(fd).ok()?;
    let mut holders = pids.iter().filter_map(|&pid| {
        markers_of(pid)
            .into_iter()
            .find(|m| m.held && m.dev == st.st_dev && m.ino == st.st_ino)
            .map(|m| (pid, m.since))
    });
    let (pid, since) = holders.next()?;
    let mut h = describe_pid(pid);
    h.held_for = since.elapsed().ok();
    h.others = holders.count();
    Some(h)
}

/// One line of `/proc/locks` about a given inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockEntry {
    pub pid: i32,
    pub waiting: bool,
    pub exclusive: bool,
}

/// One FLOCK line of `/proc/locks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcLock {
    pub pid: i32,
    pub waiting: bool,
    pub exclusive: bool,
    pub major: u32,
    pub minor: u32,
    pub ino: u64,
}

impl ProcLock {
    pub fn is_on(&self, dev: u64, ino: u64) -> bool {
        (self.major, self.minor, self.ino) == (libc::major(dev), libc::minor(dev), ino)
    }
}

/// Every flock the kernel knows of (POSIX, OFD and lease lines are left out).
pub fn proc_locks() -> Vec<ProcLock> {
    parse_proc_locks(&std::fs::read_to_string("/proc/locks").unwrap_or_default())
}

pub fn proc_locks_entries(dev: u64, ino: u64) -> Vec<LockEntry> {
    proc_locks()
        .into_iter()
        .filter(|l| l.is_on(dev, ino))
        .map(|l| LockEntry {
            pid: l.pid,
            waiting: l.waiting,
            exclusive: l.exclusive,
        })
        .collect()
}

fn parse_proc_locks(text: &str) -> Vec<ProcLock> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace().skip(1).peekable();
            let waiting = words.peek() == Some(&"->");
            if waiting {
                words.next();
            }
            if words.next()? != "FLOCK" {
                return None;
            }
            let _advisory = words.next()?;
            let mode = words.next()?;
            let pid: i32 = words.next()?.parse().ok()?;
            let mut id = words.next()?.split(':');
            let major = u32::from_str_radix(id.next()?, 16).ok()?;
            let minor = u32::from_str_radix(id.next()?, 16).ok()?;
            let ino: u64 = id.next()?.parse().ok()?;
            Some(ProcLock {
                pid,
                waiting,
                exclusive: mode == "WRITE",
                major,
                minor,
                ino,
            })
        })
        .collect()
}

/// One open descriptor of a process, as `/proc/<pid>/fd` shows it.
#[derive(Debug, Clone)]
pub struct OpenFile {
    pub fd: i32,
    /// The kernel's name for it; ends in " (deleted)" once unlinked.
    pub target: PathBuf,
    pub dev: u64,
    pub ino: u64,
}

/// The open descriptors of `pid` that this user may look at (none for another user's
/// process, unless root).
pub fn open_files(pid: i32) -> Vec<OpenFile> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let fd: i32 = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            let meta = std::fs::metadata(e.path()).ok()?;
            Some(OpenFile {
                fd,
                target,
                dev: meta.dev(),
                ino: meta.ino(),
            })
        })
        .collect()
}

/// A steady process's note about one of its locks (see [`marker`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// Held, else waited for.
    pub held: bool,
    pub since: SystemTime,
    pub dev: u64,
    pub ino: u64,
    /// A hash of the key it stands for (held locks of newer steady processes).
    pub key_hash: Option<u64>,
}

pub fn markers_of(pid: i32) -> Vec<Marker> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| parse_marker(std::fs::read_link(e.path()).ok()?.as_os_str()))
        .collect()
}

fn parse_marker(target: &OsStr) -> Option<Marker> {
    let t = target.to_str()?;
    let rest = t.strip_prefix("/memfd:")?.strip_prefix(MARKER_PREFIX)?;
    let rest = rest.strip_suffix(" (deleted)").unwrap_or(rest);
    let mut parts = rest.split(':');
    let held = match parts.next()? {
        "held" => true,
        "wait" => false,
        _ => return None,
    };
    let ms: u64 = parts.next()?.parse().ok()?;
    Some(Marker {
        held,
        since: UNIX_EPOCH + Duration::from_millis(ms),
        dev: parts.next()?.parse().ok()?,
        ino: parts.next()?.parse().ok()?,
        key_hash: parts.next().and_then(|h| u64::from_str_radix(h, 16).ok()),
    })
}

pub fn describe_pid(pid: i32) -> Holder {
    let command = std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .filter(|c| !c.is_empty())
        .map(|c| {
            let words: Vec<String> = c
                .split(|b| *b == 0)
                .filter(|w| !w.is_empty())
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            hide_url_passwords(&shell_words::join(words))
        });
    Holder {
        pid,
        command,
        running_for: process_age(pid),
        held_for: None,
        others: 0,
    }
}

/// `text` with the password of every URL in it (`scheme://user:password@host`) replaced by
/// `***`: holder lines end up in CI logs, and a command line may carry a `--lock-url` or an
/// index URL with a token.
pub fn hide_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority
            .rfind('@')
            .and_then(|at| Some((at, authority[..at].find(':')?)))
        {
            Some((at, colon)) => {
                out.push_str(&authority[..=colon]);
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

pub fn process_age(pid: i32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    // Field 22 (starttime) is the 20th after the command name.
    let start_ticks: u64 = after_comm.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let started = start_ticks as f64 / sys::clock_ticks() as f64;
    Some(Duration::from_secs_f64((uptime - started).max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_locks_lines() {
        let text = "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF\n\
                    1: -> FLOCK  ADVISORY  WRITE 4343 fd:01:1234 0 EOF\n\
                    2: POSIX  ADVISORY  WRITE 99 fd:01:1234 0 EOF\n\
                    3: FLOCK  ADVISORY  READ 77 103:1a:99 0 EOF\n";
        let all = parse_proc_locks(text);
        assert_eq!(
            all,
            vec![
                ProcLock {
                    pid: 4242,
                    waiting: false,
                    exclusive: true,
                    major: 0xfd,
                    minor: 1,
                    ino: 1234
                },
                ProcLock {
                    pid: 4343,
                    waiting: true,
                    exclusive: true,
                    major: 0xfd,
                    minor: 1,
                    ino: 1234
                },
                ProcLock {
                    pid: 77,
                    waiting: false,
                    exclusive: false,
                    major: 0x103,
                    minor: 0x1a,
                    ino: 99
                },
            ]
        );
        assert!(all[2].is_on(libc::makedev(0x103, 0x1a), 99));
        assert!(!all[2].is_on(libc::makedev(0x103, 0x1b), 99));
    }

    #[test]
    fn markers_parse() {
        let m = parse_marker(OsStr::new(
            "/memfd:steady-lock:held:1700000000123:2049:77 (deleted)",
        ))
        .unwrap();
        assert!(m.held);
        assert_eq!((m.dev, m.ino), (2049, 77));
        assert_eq!(
            m.since,
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
        );
        assert_eq!(parse_marker(OsStr::new("/memfd:other (deleted)")), None);
    }

    #[test]
    fn url_passwords_are_hidden() {
        assert_eq!(
            hide_url_passwords(
                "steady --lock-url postgres://u:p@ss@db:5/x -- pip install -i https://__token__:abc@pypi.example/simple x"
            ),
            "steady --lock-url postgres://u:***@db:5/x -- pip install -i https://__token__:***@pypi.example/simple x"
        );
        assert_eq!(
            hide_url_passwords("uv sync http://host/a://b u@h:1"),
            "uv sync http://host/a://b u@h:1"
        );
    }
}
