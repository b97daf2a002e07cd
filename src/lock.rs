//! The cache lock. Everyone who shares a cache must meet at one lock, whatever their `TMPDIR`,
//! container or user, so the lock is an `flock` on the canonical cache directory itself: no
//! extra file to plant, squat or delete, and two spellings of one cache (a symlink and its
//! target) resolve to the same inode. Where the directory cannot be locked (NFS without lock
//! support, errno 524, a cache that cannot be created), a lock file keyed by the canonical path
//! goes in the first usable per-user directory of the fallback chain, checked before every use.
//!
//! Waiting blocks in the kernel (pollers starve against blocking waiters) and is cut off by an
//! interval timer; any other signal during the wait is looked at and the wait resumed. The
//! descriptor is close-on-exec, so the command and any daemon it leaves never hold the lock.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::sys;
use crate::ui;

/// Environment variable through which steady tells a nested steady which locks it holds.
pub const HELD_ENV: &str = "STEADY_HELD_LOCKS";

/// How often a waiting steady says it is still waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// errnos that mean "this filesystem cannot do flock here", not "someone holds it".
const UNSUPPORTED: [i32; 6] = [
    libc::ENOLCK,
    libc::EOPNOTSUPP,
    libc::ENOSYS,
    524,
    libc::EBADF,
    libc::EIO,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The lock is the cache directory: shared with everyone who uses this cache.
    Cache,
    /// A fallback lock file: shared only with this user on this node or container.
    Node { file: PathBuf },
}

impl Scope {
    pub fn describe(&self) -> String {
        match self {
            Scope::Cache => "on the cache directory, shared with everyone using this cache".into(),
            Scope::Node { file } => {
                format!(
                    "on `{}`, shared only with this user on this node or container",
                    file.display()
                )
            }
        }
    }
}

/// A held lock. Dropping it releases the lock.
#[derive(Debug)]
pub struct CacheLock {
    fd: OwnedFd,
    pub path: PathBuf,
    pub key: String,
    pub scope: Scope,
}

#[derive(Debug)]
pub enum Acquired {
    Locked(CacheLock),
    /// An enclosing steady already holds this lock for us.
    Nested {
        key: String,
    },
    /// No lock could be had anywhere; the run goes ahead unlocked.
    Unlocked {
        reason: String,
    },
}

#[derive(Debug)]
pub enum LockError {
    /// The wait ran past `--lock-timeout` or the deadline.
    TimedOut {
        path: PathBuf,
        holder: Option<Holder>,
        waited: Duration,
    },
    /// steady was told to stop while waiting.
    Interrupted(Signal),
    /// A lock path failed a safety check; steady will not use it.
    Unsafe(String),
    /// No lock at all, and `STEADY_REQUIRE_LOCK=1` asked for one.
    Unavailable(String),
}

pub struct LockRequest<'a> {
    pub cache: &'a Path,
    pub lock_dir: Option<&'a Path>,
    /// Longest wait: the smaller of `--lock-timeout` and what is left of `--deadline`.
    pub wait: Option<Duration>,
    pub require: bool,
}

/// Takes the exclusive lock for `req.cache`.
pub fn acquire(req: &LockRequest) -> Result<Acquired, LockError> {
    let canonical = match std::fs::create_dir_all(req.cache).and_then(|()| req.cache.canonicalize())
    {
        Ok(p) => p,
        Err(e) => {
            ui::detail(&format!(
                "cannot use the cache directory `{}` as the lock: {e}",
                req.cache.display()
            ));
            let key = std::path::absolute(req.cache).unwrap_or_else(|_| req.cache.to_path_buf());
            return fallback(req, &key, &format!("the cache directory is unusable ({e})"));
        }
    };
    let key = canonical.to_string_lossy().into_owned();
    if held_by_parent(&key) {
        ui::detail(&format!(
            "lock on `{key}` is already held by an enclosing steady; going ahead"
        ));
        return Ok(Acquired::Nested { key });
    }
    let fd = match sys::open_dir(&canonical) {
        Ok(fd) => fd,
        Err(e) => {
            return fallback(
                req,
                &canonical,
                &format!("cannot open the cache directory ({e})"),
            );
        }
    };
    match lock_fd(&fd, &canonical, req.wait) {
        Ok(()) => {
            if let Some(note) = network_filesystem(&canonical) {
                ui::detail(&format!(
                    "`{key}` is on {note}: the lock is only as strong as that mount's lock support"
                ));
            }
            ui::detail(&format!("locked {}", Scope::Cache.describe()));
            Ok(Acquired::Locked(CacheLock {
                fd,
                path: canonical,
                key,
                scope: Scope::Cache,
            }))
        }
        Err(Wait::Unsupported(errno)) => fallback(
            req,
            &canonical,
            &format!(
                "the cache's filesystem does not support flock ({})",
                errno_name(errno)
            ),
        ),
        Err(Wait::Failed(e)) => Err(e),
    }
}

impl CacheLock {
    /// After a clean that may have removed and recreated the cache directory, makes sure the
    /// lock is on the directory now at the path, so later arrivals meet this holder.
    pub fn follow_recreated_dir(&mut self) {
        if self.scope != Scope::Cache {
            return;
        }
        let _ = std::fs::create_dir_all(&self.path);
        let same = match (
            std::fs::metadata(&self.path),
            sys::fstat(self.fd.as_raw_fd()),
        ) {
            (Ok(m), Ok(st)) => m.dev() == st.st_dev && m.ino() == st.st_ino,
            _ => false,
        };
        if same {
            return;
        }
        match sys::open_dir(&self.path) {
            Ok(fd) if sys::flock(fd.as_raw_fd(), true, false).is_ok() => {
                ui::detail(&format!(
                    "cache directory `{}` was recreated; moved the lock to it",
                    self.path.display()
                ));
                self.fd = fd;
            }
            _ => ui::warn(&format!(
                "cache directory `{}` was recreated and its new lock is taken by another process",
                self.path.display()
            )),
        }
    }
}

enum Wait {
    Unsupported(i32),
    Failed(LockError),
}

/// Locks `fd` exclusively, waiting up to `wait` (forever when `None`).
fn lock_fd(fd: &OwnedFd, path: &Path, wait: Option<Duration>) -> Result<(), Wait> {
    let raw = fd.as_raw_fd();
    match sys::flock(raw, true, false) {
        Ok(()) => return Ok(()),
        Err(e) if e == libc::EWOULDBLOCK => {}
        Err(e) if UNSUPPORTED.contains(&e) => return Err(Wait::Unsupported(e)),
        Err(e) => return Err(Wait::Unsupported(e)),
    }
    let started = Instant::now();
    let holder = holder_of(raw);
    let who = holder
        .as_ref()
        .map_or_else(|| "another process".to_owned(), Holder::describe);
    if wait == Some(Duration::ZERO) {
        return Err(Wait::Failed(LockError::TimedOut {
            path: path.to_path_buf(),
            holder,
            waited: Duration::ZERO,
        }));
    }
    ui::status(&format!(
        "waiting for the lock on `{}`, held by {who}",
        path.display()
    ));
    let give_up = wait.map(|w| started + w);
    let mut next_progress = started + PROGRESS_EVERY;
    let result = loop {
        let now = Instant::now();
        if give_up.is_some_and(|g| now >= g) {
            break Err(Wait::Failed(LockError::TimedOut {
                path: path.to_path_buf(),
                holder: holder_of(raw),
                waited: now - started,
            }));
        }
        if now >= next_progress {
            let who = holder_of(raw).map_or_else(|| "another process".to_owned(), |h| h.describe());
            ui::status(&format!(
                "still waiting for the lock on `{}` after {}, held by {who}",
                path.display(),
                ui::human(now - started)
            ));
            next_progress += PROGRESS_EVERY;
        }
        let wake = give_up.map_or(next_progress, |g| g.min(next_progress));
        sys::set_alarm(Some(wake.saturating_duration_since(now)));
        match sys::flock(raw, true, true) {
            Ok(()) => break Ok(()),
            Err(e) if e == libc::EINTR => {
                if let Some(a) = sys::take_signals()
                    .into_iter()
                    .find(|a| is_stop_signal(a.signal))
                {
                    break Err(Wait::Failed(LockError::Interrupted(a.signal)));
                }
            }
            Err(e) if UNSUPPORTED.contains(&e) => break Err(Wait::Unsupported(e)),
            Err(e) => break Err(Wait::Unsupported(e)),
        }
    };
    sys::set_alarm(None);
    if result.is_ok() {
        ui::detail(&format!(
            "got the lock after {}",
            ui::human(started.elapsed())
        ));
    }
    result
}

pub fn is_stop_signal(s: Signal) -> bool {
    matches!(
        s,
        Signal::SIGINT | Signal::SIGTERM | Signal::SIGHUP | Signal::SIGQUIT
    )
}

/// Lock files where the cache cannot be locked: the first usable per-user directory.
fn fallback(req: &LockRequest, key_path: &Path, why: &str) -> Result<Acquired, LockError> {
    let key = key_path.to_string_lossy().into_owned();
    if held_by_parent(&key) {
        return Ok(Acquired::Nested { key });
    }
    ui::detail(&format!("{why}; using a per-user lock file instead"));
    let name = lock_file_name(key_path);
    for dir in fallback_dirs(req.lock_dir) {
        let dir = match dir {
            Ok(d) => d,
            Err(skip) => {
                ui::detail(&skip);
                continue;
            }
        };
        let file = dir.join(&name);
        let fd = match open_checked(&dir, &name) {
            Ok(fd) => fd,
            Err(e) => {
                return Err(LockError::Unsafe(format!(
                    "unsafe lock path `{}`: {e}",
                    file.display()
                )));
            }
        };
        match lock_fd(&fd, &file, req.wait) {
            Ok(()) => {
                let fd = relock_if_replaced(fd, &dir, &name, req.wait)?;
                let scope = Scope::Node { file: file.clone() };
                ui::detail(&format!("locked {}", scope.describe()));
                return Ok(Acquired::Locked(CacheLock {
                    fd,
                    path: file,
                    key,
                    scope,
                }));
            }
            Err(Wait::Unsupported(errno)) => {
                ui::detail(&format!(
                    "cannot lock `{}`: {}",
                    file.display(),
                    errno_name(errno)
                ));
            }
            Err(Wait::Failed(e)) => return Err(e),
        }
    }
    let reason = format!("{why}, and no fallback lock directory could be locked");
    if req.require {
        return Err(LockError::Unavailable(reason));
    }
    Ok(Acquired::Unlocked { reason })
}

/// R6: after locking, the path must still name the locked file; if it was deleted or replaced,
/// lock the file now at the path instead, so two holders can never hold "the" lock.
fn relock_if_replaced(
    mut fd: OwnedFd,
    dir: &Path,
    name: &str,
    wait: Option<Duration>,
) -> Result<OwnedFd, LockError> {
    for _ in 0..5 {
        let path = dir.join(name);
        let same = match (std::fs::symlink_metadata(&path), sys::fstat(fd.as_raw_fd())) {
            (Ok(m), Ok(st)) => m.dev() == st.st_dev && m.ino() == st.st_ino,
            _ => false,
        };
        if same {
            return Ok(fd);
        }
        ui::detail(&format!(
            "lock file `{}` was replaced while we waited; locking the new one",
            path.display()
        ));
        let new = open_checked(dir, name).map_err(|e| {
            LockError::Unsafe(format!("unsafe lock path `{}`: {e}", path.display()))
        })?;
        match lock_fd(&new, &path, wait) {
            Ok(()) => fd = new,
            Err(Wait::Failed(e)) => return Err(e),
            Err(Wait::Unsupported(e)) => {
                return Err(LockError::Unavailable(format!(
                    "cannot lock `{}`: {}",
                    path.display(),
                    errno_name(e)
                )));
            }
        }
    }
    Err(LockError::Unsafe(format!(
        "lock file `{}` keeps being replaced",
        dir.join(name).display()
    )))
}

/// Opens a fallback lock file and checks it is a plain file of ours with one link (R4, R5).
fn open_checked(dir: &Path, name: &str) -> Result<OwnedFd, String> {
    let fd = sys::open_lock_file(dir, name).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => "it is a symlink".to_owned(),
        _ => e.to_string(),
    })?;
    let st = sys::fstat(fd.as_raw_fd()).map_err(|e| e.to_string())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err("not a regular file".into());
    }
    if st.st_nlink != 1 {
        return Err(format!("it has {} hard links", st.st_nlink));
    }
    if st.st_uid != sys::euid() {
        return Err(format!("owned by uid {}, not {}", st.st_uid, sys::euid()));
    }
    Ok(fd)
}

/// `<basename>-<hash of the canonical path>.lock`: readable, and unique per cache.
fn lock_file_name(key: &Path) -> String {
    let base: String = key
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                        c
                    } else {
                        '-'
                    }
                })
                .take(40)
                .collect()
        })
        .unwrap_or_else(|| "root".into());
    format!(
        "{base}-{:016x}.lock",
        fnv1a(key.as_os_str().as_encoded_bytes())
    )
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The fallback directories in order, each made per-user and checked; an `Err` is a skipped
/// candidate with the reason.
fn fallback_dirs(lock_dir: Option<&Path>) -> Vec<Result<PathBuf, String>> {
    let uid = sys::euid();
    let per_user = format!("steady-{uid}");
    let mut out: Vec<Result<PathBuf, String>> = Vec::new();
    let mut seen = Vec::new();
    let mut push = |base: PathBuf, sub: &str, check_base: bool| {
        if seen.contains(&base) {
            return;
        }
        seen.push(base.clone());
        if check_base && let Err(e) = check_private(&base) {
            out.push(Err(format!("skipping `{}`: {e}", base.display())));
            return;
        }
        out.push(private_subdir(&base, sub));
    };
    if let Some(d) = lock_dir {
        push(d.to_path_buf(), &per_user, false);
    }
    if let Some(d) = crate::settings::env_abs_path("XDG_RUNTIME_DIR") {
        push(d, "steady", true);
    }
    for d in ["/tmp", "/var/tmp"] {
        push(PathBuf::from(d), &per_user, false);
    }
    if let Some(d) = crate::settings::env_abs_path("TMPDIR") {
        push(d, &per_user, false);
    }
    if let Some(d) = crate::settings::user_cache_dir() {
        push(d, "steady", false);
    }
    out
}

/// A directory is private when it is a real directory (not a symlink), owned by us, and
/// neither group nor others can get in (the tmux rule).
fn check_private(dir: &Path) -> Result<(), String> {
    let m = std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
    if m.file_type().is_symlink() {
        return Err("it is a symlink".into());
    }
    if !m.is_dir() {
        return Err("not a directory".into());
    }
    if m.uid() != sys::euid() {
        return Err(format!("owned by uid {}, not {}", m.uid(), sys::euid()));
    }
    if m.mode() & 0o077 != 0 {
        return Err(format!("mode {:o} lets other users in", m.mode() & 0o777));
    }
    Ok(())
}

fn private_subdir(base: &Path, sub: &str) -> Result<PathBuf, String> {
    if !base.is_dir() {
        return Err(format!("skipping `{}`: not a directory", base.display()));
    }
    let dir = base.join(sub);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("skipping `{}`: {e}", dir.display())),
    }
    check_private(&dir)
        .map(|()| dir.clone())
        .map_err(|e| format!("skipping `{}`: {e}", dir.display()))
}

fn held_by_parent(key: &str) -> bool {
    std::env::var_os(HELD_ENV).is_some_and(|v| v.to_string_lossy().split('\n').any(|k| k == key))
}

/// The value of [`HELD_ENV`] for a child of a steady that holds `key`.
pub fn held_env_with(key: &str) -> OsString {
    let mut keys: Vec<String> = std::env::var_os(HELD_ENV)
        .map(|v| {
            v.to_string_lossy()
                .split('\n')
                .filter(|k| !k.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if !keys.iter().any(|k| k == key) {
        keys.push(key.to_owned());
    }
    keys.join("\n").into()
}

fn errno_name(errno: i32) -> String {
    match errno {
        524 => "ENOTSUPP (os error 524)".into(),
        e => format!("{} (os error {e})", nix::errno::Errno::from_raw(e).desc()),
    }
}

/// A network filesystem under `path`, by statfs magic (values from linux/magic.h and
/// coreutils' list of remote filesystems).
pub fn network_filesystem(path: &Path) -> Option<&'static str> {
    let magic = sys::filesystem_magic(path)? as u32;
    Some(match magic {
        0x6969 => "NFS",
        0x517B | 0xFF53_4D42 | 0xFE53_4D42 => "SMB/CIFS",
        0x00C3_6400 => "CephFS",
        0x6573_5546 => "a FUSE filesystem",
        0x5346_414F | 0x6B41_4653 => "AFS",
        0x0102_1997 => "9P",
        0x4750_4653 => "GPFS",
        0x0BD0_0BD0 => "Lustre",
        0x0116_1970 => "GFS",
        0x1983_0326 => "BeeGFS",
        _ => return None,
    })
}

/// The process holding a lock, from `/proc/locks` and `/proc/<pid>`.
#[derive(Debug, Clone)]
pub struct Holder {
    pub pid: i32,
    pub command: Option<String>,
    pub running_for: Option<Duration>,
}

impl Holder {
    pub fn describe(&self) -> String {
        let mut s = format!("pid {}", self.pid);
        if let Some(c) = &self.command {
            s.push_str(&format!(" (`{c}`)"));
        }
        if let Some(d) = self.running_for {
            s.push_str(&format!(", running for {}", ui::human(d)));
        }
        s
    }
}

/// The holder of the flock on the file behind `fd`, if the kernel says.
pub fn holder_of(fd: i32) -> Option<Holder> {
    let st = sys::fstat(fd).ok()?;
    let pid = proc_locks_entries(st.st_dev, st.st_ino)
        .into_iter()
        .find(|e| !e.waiting)?
        .pid;
    Some(describe_pid(pid))
}

/// One line of `/proc/locks` about a given inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockEntry {
    pub pid: i32,
    pub waiting: bool,
    pub exclusive: bool,
}

pub fn proc_locks_entries(dev: u64, ino: u64) -> Vec<LockEntry> {
    let text = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    parse_proc_locks(&text, libc::major(dev), libc::minor(dev), ino)
}

fn parse_proc_locks(text: &str, major: u32, minor: u32, ino: u64) -> Vec<LockEntry> {
    let want = format!("{major:02x}:{minor:02x}:{ino}");
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace().skip(1).peekable();
            let waiting = words.peek() == Some(&"->");
            if waiting {
                words.next();
            }
            let kind = words.next()?;
            let _advisory = words.next()?;
            let mode = words.next()?;
            let pid: i32 = words.next()?.parse().ok()?;
            let id = words.next()?;
            (kind == "FLOCK" && id == want).then_some(LockEntry {
                pid,
                waiting,
                exclusive: mode == "WRITE",
            })
        })
        .collect()
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
            shell_words::join(words)
        });
    Holder {
        pid,
        command,
        running_for: process_age(pid),
    }
}

fn process_age(pid: i32) -> Option<Duration> {
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
                    3: FLOCK  ADVISORY  READ 77 fd:01:99 0 EOF\n";
        assert_eq!(
            parse_proc_locks(text, 0xfd, 1, 1234),
            vec![
                LockEntry {
                    pid: 4242,
                    waiting: false,
                    exclusive: true
                },
                LockEntry {
                    pid: 4343,
                    waiting: true,
                    exclusive: true
                }
            ]
        );
    }

    #[test]
    fn lock_file_names_differ_per_cache() {
        let a = lock_file_name(Path::new("/home/u/.cache/uv"));
        let b = lock_file_name(Path::new("/srv/cache/uv"));
        assert!(a.starts_with("uv-") && a.ends_with(".lock"));
        assert_ne!(a, b);
    }

    #[test]
    fn enotsupp_is_classified_by_errno_not_kind() {
        // Rust maps 524 to ErrorKind::Uncategorized, which cannot be matched on.
        assert!(UNSUPPORTED.contains(&524));
        assert_ne!(
            std::io::Error::from_raw_os_error(524).kind(),
            std::io::ErrorKind::Unsupported
        );
    }
}
