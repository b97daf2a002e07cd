//! The locks of one run. Everyone who shares a cache must meet at one lock, whatever their
//! `TMPDIR`, container or user, so a lock is an `flock` on the canonical path itself (the cache
//! directory, or an environment named with `--lock`): no extra file to plant, squat or delete,
//! and two spellings of one path (a symlink and its target, relative and absolute) resolve to
//! the same inode. Where a path cannot be locked (NFS without lock support, errno 524, a cache
//! that cannot be created), a lock file keyed by the canonical path goes in the first usable
//! per-user directory of the fallback chain, checked before every use; where nothing can be
//! locked the run goes ahead unlocked with a warning, or fails under `STEADY_REQUIRE_LOCK=1`.
//!
//! Several locks are always taken in one global order (by canonical path), so that two runs
//! can never deadlock each other. Waiting blocks in the kernel (pollers starve against blocking
//! waiters) and is cut off by an interval timer; other signals during the wait are left for
//! later and the wait resumed. Descriptors are close-on-exec, so the command and any daemon it
//! leaves never hold a lock. The module also reads `/proc/locks` and `/proc/<pid>/fd` to name
//! holders, for the contention line, `doctor` and `steady status`.

pub mod holders;
pub mod leftovers;
#[cfg(feature = "postgres")]
pub mod remote;

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;

use crate::attempt::Watcher;
use crate::lock::holders::{Holder, MARKER_PREFIX, holder_of, open_files, proc_locks};
use crate::sys;
use crate::ui;

/// Environment variable through which steady tells a nested steady which locks it holds: one
/// `<pid> <key>` line per lock, the pid being the steady that holds it.
pub const HELD_ENV: &str = crate::env::HELD_LOCKS;

/// Longest single blocking `flock` call. A stop signal that lands between the check for one
/// and the call itself does not interrupt the call, so the wait is re-entered at least this
/// often to notice it; re-entering costs nothing against blocking waiters (the kernel wakes
/// every waiter on release anyway).
const MAX_BLOCK: Duration = Duration::from_secs(1);

/// How often a lock path may be replaced under a waiter before steady gives up on it.
const REOPEN_LIMIT: usize = 5;

/// errnos that mean "this filesystem cannot do flock here", not "someone holds it". EBADF and
/// EIO are what NFS gives for an exclusive lock through a read-only descriptor (a directory
/// cannot be opened for writing); the fallback lock file is opened read-write.
const UNSUPPORTED: [i32; 6] = [
    libc::ENOLCK,
    libc::EOPNOTSUPP,
    libc::ENOSYS,
    524,
    libc::EBADF,
    libc::EIO,
];

/// Names of the in-memory marker files through which a steady process tells `status` and
/// contenders since when it holds or waits for a lock (see `sys::named_marker`).

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The lock is on the path itself: shared with everyone who uses it.
    OnPath,
    /// A fallback lock file: shared only with this user on this node or container.
    Node { file: PathBuf },
}

impl Scope {
    pub fn describe(&self) -> String {
        match self {
            Scope::OnPath => {
                "on the path itself, shared with everyone who uses it (any user, container or node that sees it)"
                    .into()
            }
            Scope::Node { file } => format!(
                "with the lock file `{}`, shared only with this user on this node or container",
                file.display()
            ),
        }
    }
}

/// One held lock. Dropping it releases the lock.
#[derive(Debug)]
pub struct HeldLock {
    fd: OwnedFd,
    _marker: Option<OwnedFd>,
    /// What is locked: the canonical path itself, or the fallback lock file.
    pub path: PathBuf,
    /// The canonical path the lock protects.
    pub key: String,
    pub scope: Scope,
    pub shared: bool,
    was_dir: bool,
}

/// Every lock of one run, taken in global order.
#[derive(Debug, Default)]
pub struct Locks {
    pub held: Vec<HeldLock>,
    /// Keys an enclosing steady already holds for us.
    pub nested: Vec<String>,
    /// Keys that could not be locked anywhere, with the reason; the run goes ahead anyway.
    pub unlocked: Vec<(String, String)>,
    /// The cache's lock beyond this machine (`--lock-url`), taken after the local ones.
    pub remote: Option<Box<dyn Remote>>,
    /// Its entry for [`HELD_ENV`], so that a nested steady does not wait for it.
    remote_id: Option<String>,
}

/// Where the locks of several machines sharing one cache meet (`--lock-url`; `pglock` is the
/// one backend). It is asked last, after the local locks, so that processes on one machine
/// queue in the kernel instead of each holding a connection while they wait.
pub trait Backend {
    /// Takes the lock on `key`, waiting until `give_up` (forever without one), saying who
    /// holds it when it must wait and every `progress_every` after.
    fn acquire(
        &self,
        key: &RemoteKey,
        shared: bool,
        give_up: Option<Instant>,
        progress_every: Duration,
    ) -> Result<Box<dyn Remote>, LockError>;
}

/// A lock held beyond this machine. Unlike an flock it can be lost while held (the server or
/// the network goes away), so the attempt watches it as a [`Watcher`], and a retry first takes
/// it again.
pub trait Remote: Watcher + std::fmt::Debug {
    /// What is locked, where and how, for -v and the report.
    fn describe(&self) -> String;
    /// Why it was lost, once it was.
    fn lost(&self) -> Option<String>;
    /// Takes it again after a loss, waiting until `give_up`.
    fn reacquire(&mut self, give_up: Option<Instant>) -> Result<(), LockError>;
}

/// The name of a remote lock: what every machine must agree on, and words for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteKey {
    /// `namespace:<name>` where the user named the lock, else `path:<canonical cache path>`.
    pub identity: String,
    pub label: String,
}

pub struct RemoteRequest<'a> {
    pub backend: &'a dyn Backend,
    /// The cache whose lock is also taken remotely.
    pub cache: &'a Path,
    /// Names the lock instead of the cache's path, for machines whose cache paths differ.
    pub namespace: Option<&'a str>,
}

/// Why a remote lock could not be had.
// Made only by a backend, and the one backend comes with the `postgres` feature.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteFailure {
    /// Held by someone else past the wait allowed.
    TimedOut,
    /// The server cannot be reached or stopped answering: a later run may get it.
    Unreachable,
    /// The server refused steady (login, database, permissions): the user must fix it.
    Refused,
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
    /// The lock beyond this machine could not be had; `message` says what happened.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Remote {
        failure: RemoteFailure,
        message: String,
    },
}

pub struct LockRequest<'a> {
    /// What to lock: the cache and every `--lock` path, in any order.
    pub paths: &'a [PathBuf],
    pub lock_dir: Option<&'a Path>,
    /// Longest wait for all locks together: the smaller of `--lock-timeout` and what is left
    /// of `--deadline`.
    pub wait: Option<Duration>,
    /// `--shared`: readers together, writers alone.
    pub shared: bool,
    pub require: bool,
    pub progress_every: Duration,
    /// Also lock the cache beyond this machine, last.
    pub remote: Option<RemoteRequest<'a>>,
}

/// How one wait goes; shared by all locks of a run so that `--lock-timeout` bounds the total.
struct Plan {
    give_up: Option<Instant>,
    progress_every: Duration,
    shared: bool,
}

/// A path to lock, resolved.
struct Target {
    /// The canonical path: the lock's identity and its order.
    key: PathBuf,
    /// The path to flock, or why it cannot be used.
    usable: Result<PathBuf, String>,
}

impl Target {
    fn resolve(path: &Path) -> Target {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let made = if std::fs::symlink_metadata(&abs).is_ok() {
            Ok(())
        } else {
            std::fs::create_dir_all(&abs)
        };
        match made.and_then(|()| abs.canonicalize()) {
            Ok(c) => Target {
                key: c.clone(),
                usable: Ok(c),
            },
            Err(e) => Target {
                key: canonical_key(&abs),
                usable: Err(format!("cannot use `{}` as the lock: {e}", abs.display())),
            },
        }
    }
}

/// The canonical form of a path that may not exist: its deepest existing ancestor resolved,
/// the rest applied by name (missing components cannot be symlinks).
fn canonical_key(abs: &Path) -> PathBuf {
    let comps: Vec<Component> = abs.components().collect();
    for i in (0..=comps.len()).rev() {
        let prefix: PathBuf = comps[..i].iter().collect();
        let Ok(mut key) = prefix.canonicalize() else {
            continue;
        };
        for c in &comps[i..] {
            match c {
                Component::ParentDir => {
                    key.pop();
                }
                Component::Normal(n) => key.push(n),
                _ => {}
            }
        }
        return key;
    }
    abs.to_path_buf()
}

/// Takes every lock of the request, in global path order; on any error the locks already
/// taken are released.
pub fn acquire(req: &LockRequest) -> Result<Locks, LockError> {
    let plan = Plan {
        give_up: req.wait.map(|w| Instant::now() + w),
        progress_every: req.progress_every.max(Duration::from_millis(10)),
        shared: req.shared,
    };
    let mut targets: Vec<Target> = req.paths.iter().map(|p| Target::resolve(p)).collect();
    targets.sort_by(|a, b| a.key.cmp(&b.key));
    targets.dedup_by(|a, b| a.key == b.key);
    if targets.len() > 1 {
        let order: Vec<String> = targets
            .iter()
            .map(|t| format!("`{}`", t.key.display()))
            .collect();
        ui::detail(&format!(
            "taking {} locks in path order (so that runs cannot deadlock each other): {}",
            targets.len(),
            order.join(", ")
        ));
    }
    let mut locks = Locks::default();
    for t in &targets {
        let key = t.key.to_string_lossy().into_owned();
        if let Some(pid) = held_by_ancestor(&key) {
            ui::detail(&format!(
                "the lock on `{key}` is held by an enclosing steady (pid {pid}); going ahead without taking it again"
            ));
            locks.nested.push(key);
            continue;
        }
        match acquire_one(t, &key, req, &plan)? {
            Ok(l) => locks.held.push(l),
            Err(reason) if req.require => return Err(LockError::Unavailable(reason)),
            Err(reason) => locks.unlocked.push((key, reason)),
        }
    }
    if let Some(r) = &req.remote {
        let key = remote_key(r);
        let id = format!("remote {}", key.identity);
        if let Some(pid) = held_by_ancestor(&id) {
            // Taking it again on a second connection would wait for our own ancestor forever.
            ui::detail(&format!(
                "the lock on {} is held by an enclosing steady (pid {pid}); going ahead without taking it again",
                key.label
            ));
            locks.nested.push(id);
        } else {
            let held = r
                .backend
                .acquire(&key, plan.shared, plan.give_up, plan.progress_every)?;
            locks.remote = Some(held);
            locks.remote_id = Some(id);
        }
    }
    Ok(locks)
}

/// The name every machine gives the cache's remote lock: the namespace where one is given
/// (cache paths that differ per machine), else the canonical cache path (the same NFS path
/// everywhere).
fn remote_key(r: &RemoteRequest) -> RemoteKey {
    match r.namespace {
        Some(ns) => RemoteKey {
            identity: format!("namespace:{ns}"),
            label: format!("namespace `{ns}`"),
        },
        None => {
            let key = Target::resolve(r.cache).key;
            RemoteKey {
                identity: format!("path:{}", key.to_string_lossy()),
                label: format!("`{}`", key.display()),
            }
        }
    }
}

/// The lock on one target: on the path itself, else a fallback lock file; `Ok(Err(reason))`
/// when no lock could be had anywhere.
fn acquire_one(
    t: &Target,
    key: &str,
    req: &LockRequest,
    plan: &Plan,
) -> Result<Result<HeldLock, String>, LockError> {
    let why = match &t.usable {
        Err(why) => why.clone(),
        Ok(path) => match lock_on_path(path, plan) {
            Ok((fd, was_dir)) => {
                let lock =
                    HeldLock::new(fd, path.clone(), key, Scope::OnPath, plan.shared, was_dir);
                lock.say_locked();
                return Ok(Ok(lock));
            }
            Err(Wait::Cannot(e)) => format!("`{}` cannot be locked: {e}", path.display()),
            Err(Wait::Failed(e)) => return Err(e),
        },
    };
    fallback(t, key, req, plan, &why)
}

/// Locks the path itself (a directory, or a file the user named with `--lock`).
fn lock_on_path(path: &Path, plan: &Plan) -> Result<(OwnedFd, bool), Wait> {
    let open = || -> Result<OwnedFd, Wait> {
        let fd = sys::open_lock_target(path).map_err(|e| Wait::Cannot(e.to_string()))?;
        let st = sys::fstat(fd.as_raw_fd()).map_err(|e| Wait::Cannot(e.to_string()))?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR | libc::S_IFREG => Ok(fd),
            _ => Err(Wait::Cannot(
                "it is neither a directory nor a regular file".into(),
            )),
        }
    };
    let is_current = |fd: &OwnedFd| {
        same_inode(
            std::fs::symlink_metadata(path)
                .ok()
                .map(|m| (m.dev(), m.ino())),
            fd,
        )
    };
    let fd = lock_current(path, &open, &is_current, plan)?;
    wait_for_stranded(path, &fd, plan).map_err(Wait::Failed)?;
    let was_dir =
        sys::fstat(fd.as_raw_fd()).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
    Ok((fd, was_dir))
}

fn same_inode(at_path: Option<(u64, u64)>, fd: &OwnedFd) -> bool {
    match (at_path, sys::fstat(fd.as_raw_fd())) {
        (Some((dev, ino)), Ok(st)) => dev == st.st_dev && ino == st.st_ino,
        _ => false,
    }
}

/// Locks what `open` gives and checks afterwards that the path still names it (R6): a waiter
/// on a file or directory that was deleted or replaced while it waited would otherwise hold
/// "the" lock beside whoever locked the new one.
fn lock_current(
    path: &Path,
    open: &dyn Fn() -> Result<OwnedFd, Wait>,
    is_current: &dyn Fn(&OwnedFd) -> bool,
    plan: &Plan,
) -> Result<OwnedFd, Wait> {
    for _ in 0..REOPEN_LIMIT {
        let fd = open()?;
        lock_fd(&fd, path, plan)?;
        if is_current(&fd) {
            return Ok(fd);
        }
        ui::detail(&format!(
            "`{}` was replaced while we waited for its lock; locking the one there now",
            path.display()
        ));
        // The stale lock goes before the wait for the new one: whoever holds the new one may
        // be waiting for the stale one (see wait_for_stranded), and holding both would
        // deadlock.
        drop(fd);
    }
    Err(Wait::Failed(LockError::Unsafe(format!(
        "unsafe lock path `{}`: it keeps being replaced while steady locks it",
        path.display()
    ))))
}

/// Waits for processes that still hold a lock on an earlier file or directory at `path`, one
/// deleted while they held it (a cleaner, `rm -rf`, tmpfiles ageing, npm recreating
/// `node_modules`). The kernel still shows the old one in the holder's `/proc/<pid>/fd` as
/// "`path` (deleted)", and steady can open it there and wait on it; without this, the new
/// inode would admit a second holder. Only holders whose descriptors this user may read are
/// found (the same user, or anyone for root).
fn wait_for_stranded(path: &Path, ours: &OwnedFd, plan: &Plan) -> Result<(), LockError> {
    let Ok(st) = sys::fstat(ours.as_raw_fd()) else {
        return Ok(());
    };
    let me = std::process::id() as i32;
    let (major, minor) = (libc::major(st.st_dev), libc::minor(st.st_dev));
    let mut deleted = path.as_os_str().to_owned();
    deleted.push(" (deleted)");
    let entries = proc_locks();
    let mut pids: Vec<i32> = entries
        .iter()
        .filter(|e| {
            !e.waiting
                && e.pid > 0
                && e.pid != me
                && (e.major, e.minor) == (major, minor)
                && e.ino != st.st_ino
        })
        .map(|e| e.pid)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    for pid in pids {
        // A holder that waits for our inode would wait for us while we wait for it.
        if entries.iter().any(|e| {
            e.pid == pid && e.waiting && (e.major, e.minor, e.ino) == (major, minor, st.st_ino)
        }) {
            continue;
        }
        for f in open_files(pid) {
            if f.target.as_os_str() != deleted {
                continue;
            }
            let holds = entries.iter().any(|e| {
                e.pid == pid
                    && !e.waiting
                    && (e.major, e.minor) == (libc::major(f.dev), libc::minor(f.dev))
                    && e.ino == f.ino
            });
            if !holds {
                continue;
            }
            let Ok(file) = std::fs::File::open(format!("/proc/{pid}/fd/{}", f.fd)) else {
                continue;
            };
            let fd = OwnedFd::from(file);
            if !same_inode(Some((f.dev, f.ino)), &fd) {
                continue;
            }
            ui::detail(&format!(
                "`{}` was deleted while pid {pid} held its lock; waiting for that holder too",
                path.display()
            ));
            match lock_fd(&fd, path, plan) {
                Ok(()) | Err(Wait::Cannot(_)) => {}
                Err(Wait::Failed(e)) => return Err(e),
            }
            // Dropped at once: its holder is gone, and nobody reaches that inode by its path
            // any more; a waiter that opened it earlier re-checks the path and meets us there.
        }
    }
    Ok(())
}

enum Wait {
    /// flock cannot be had on this object: fall back, with the reason.
    Cannot(String),
    Failed(LockError),
}

/// What one `flock` call said, by errno (Rust maps 524 and ENOLCK to an `ErrorKind` that
/// cannot be matched, so `ErrorKind` is never looked at).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flock {
    Locked,
    Contended,
    Interrupted,
    Unsupported(i32),
    Failed(i32),
}

fn classify(r: Result<(), i32>) -> Flock {
    match r {
        Ok(()) => Flock::Locked,
        Err(e) if e == libc::EWOULDBLOCK => Flock::Contended,
        Err(e) if e == libc::EINTR => Flock::Interrupted,
        Err(e) if UNSUPPORTED.contains(&e) => Flock::Unsupported(e),
        Err(e) => Flock::Failed(e),
    }
}

fn cannot(f: Flock) -> Wait {
    match f {
        Flock::Unsupported(e) => Wait::Cannot(format!(
            "its filesystem does not support flock ({})",
            errno_name(e)
        )),
        Flock::Failed(e) => Wait::Cannot(format!("flock failed ({})", errno_name(e))),
        _ => Wait::Cannot("flock failed".into()),
    }
}

const STOP_SIGNALS: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// A stop signal that arrived, if any; other signals stay pending for whoever handles them.
pub fn stop_signal_arrived() -> Option<Signal> {
    if !sys::is_pending(&STOP_SIGNALS) {
        return None;
    }
    let arrived = sys::take_signals();
    let stop = arrived
        .iter()
        .find(|a| is_stop_signal(a.signal))
        .map(|a| a.signal);
    for a in arrived {
        sys::repost(a);
    }
    stop
}

/// Locks `fd` (exclusive, or shared with `--shared`), waiting until `plan.give_up`.
fn lock_fd(fd: &OwnedFd, path: &Path, plan: &Plan) -> Result<(), Wait> {
    let raw = fd.as_raw_fd();
    let exclusive = !plan.shared;
    loop {
        match classify(sys::flock(fd, exclusive, false)) {
            Flock::Locked => return Ok(()),
            Flock::Contended => break,
            Flock::Interrupted => {
                if let Some(sig) = stop_signal_arrived() {
                    return Err(Wait::Failed(LockError::Interrupted(sig)));
                }
            }
            other => return Err(cannot(other)),
        }
    }
    let started = Instant::now();
    let holder = holder_of(raw);
    let who = holder
        .as_ref()
        .map_or_else(|| "another process".to_owned(), Holder::describe);
    if plan.give_up.is_some_and(|g| started >= g) {
        return Err(Wait::Failed(LockError::TimedOut {
            path: path.to_path_buf(),
            holder,
            waited: Duration::ZERO,
        }));
    }
    let how = if plan.shared { " (shared)" } else { "" };
    ui::status(&format!(
        "waiting for the lock{how} on `{}`, held by {who}",
        path.display()
    ));
    let _marker = marker("wait", fd);
    let mut next_progress = started + plan.progress_every;
    let result = loop {
        if let Some(sig) = stop_signal_arrived() {
            break Err(Wait::Failed(LockError::Interrupted(sig)));
        }
        let now = Instant::now();
        if plan.give_up.is_some_and(|g| now >= g) {
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
            next_progress += plan.progress_every;
        }
        let mut wake = next_progress.min(now + MAX_BLOCK);
        if let Some(g) = plan.give_up {
            wake = wake.min(g);
        }
        sys::set_alarm(Some(wake.saturating_duration_since(now)));
        match classify(sys::flock(fd, exclusive, true)) {
            Flock::Locked => break Ok(()),
            Flock::Interrupted | Flock::Contended => {}
            other => break Err(cannot(other)),
        }
    };
    sys::set_alarm(None);
    if result.is_ok() {
        ui::detail(&format!(
            "got the lock on `{}` after {}",
            path.display(),
            ui::human(started.elapsed())
        ));
    }
    result
}

pub fn is_stop_signal(s: Signal) -> bool {
    STOP_SIGNALS.contains(&s)
}

/// A marker naming the lock behind `fd` and the time, readable by others in this process's
/// `/proc/<pid>/fd` (the kernel records no time for a lock).
fn marker(state: &str, fd: &OwnedFd) -> Option<OwnedFd> {
    let st = sys::fstat(fd.as_raw_fd()).ok()?;
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis();
    sys::named_marker(&format!(
        "{MARKER_PREFIX}{state}:{ms}:{}:{}",
        st.st_dev, st.st_ino
    ))
}

/// Lock files where the path cannot be locked: the first usable per-user directory.
fn fallback(
    t: &Target,
    key: &str,
    req: &LockRequest,
    plan: &Plan,
    why: &str,
) -> Result<Result<HeldLock, String>, LockError> {
    ui::detail(&format!("{why}; using a per-user lock file instead"));
    let name = lock_file_name(&t.key);
    for candidate in fallback_dirs(req.lock_dir) {
        let (dir_fd, dir) = match candidate.and_then(|c| c.open()) {
            Ok(d) => d,
            Err(skip) => {
                ui::detail(&skip);
                continue;
            }
        };
        let file = dir.join(&name);
        let open = || {
            open_checked(&dir_fd, &name, key).map_err(|e| {
                Wait::Failed(LockError::Unsafe(format!(
                    "unsafe lock path `{}`: {e}",
                    file.display()
                )))
            })
        };
        let is_current = |fd: &OwnedFd| {
            same_inode(
                sys::stat_at(&dir_fd, &name)
                    .ok()
                    .map(|st| (st.st_dev, st.st_ino)),
                fd,
            )
        };
        match lock_current(&file, &open, &is_current, plan) {
            Ok(fd) => {
                wait_for_stranded(&file, &fd, plan)?;
                let scope = Scope::Node { file: file.clone() };
                let lock = HeldLock::new(fd, file, key, scope, plan.shared, false);
                lock.say_locked();
                return Ok(Ok(lock));
            }
            Err(Wait::Cannot(e)) => {
                ui::detail(&format!(
                    "cannot lock `{}`: {e}; trying the next directory",
                    file.display()
                ));
            }
            Err(Wait::Failed(e)) => return Err(e),
        }
    }
    Ok(Err(format!(
        "{why}, and no fallback lock directory could be locked"
    )))
}

/// Opens a fallback lock file and checks it is a plain file of ours with one link (R4, R5).
/// A file this call creates gets the key it stands for as its content, for `steady status`
/// (its name is only a hash); an existing file is never written.
fn open_checked(dir: &OwnedFd, name: &str, key: &str) -> Result<OwnedFd, String> {
    let (fd, created) = sys::open_lock_file_at(dir, name).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => "it is a symlink".to_owned(),
        Some(libc::EISDIR) => "it is a directory".to_owned(),
        _ => e.to_string(),
    })?;
    let st = sys::fstat(fd.as_raw_fd()).map_err(|e| e.to_string())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err("it is not a regular file".into());
    }
    if st.st_nlink != 1 {
        return Err(format!(
            "it has {} hard links (a hard link can make steady lock someone else's file)",
            st.st_nlink
        ));
    }
    if st.st_uid != sys::euid() {
        return Err(format!(
            "it is owned by uid {}, not {}",
            st.st_uid,
            sys::euid()
        ));
    }
    if created && !key.contains('\n') {
        let mut f = std::fs::File::from(fd);
        let _ = f.write_all(format!("{key}\n").as_bytes());
        return Ok(OwnedFd::from(f));
    }
    Ok(fd)
}

/// `<basename>-<hash of the canonical path>.lock`: readable, and unique per key.
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

/// True for a name [`lock_file_name`] makes.
fn is_lock_file_name(name: &str) -> bool {
    name.strip_suffix(".lock")
        .and_then(|s| s.rsplit_once('-'))
        .is_some_and(|(_, h)| h.len() == 16 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// One directory of the fallback chain, before it is opened and checked.
struct Candidate {
    base: PathBuf,
    sub: String,
    /// The base itself must be private too (`$XDG_RUNTIME_DIR`).
    check_base: bool,
    /// The user named the base (`--lock-dir`): create it if missing.
    create_base: bool,
}

impl Candidate {
    /// Creates the per-user subdirectory (0700) if needed, opens it without following a
    /// symlink and checks the open directory itself, so that what is checked is what is used.
    fn open(self) -> Result<(OwnedFd, PathBuf), String> {
        let skip = |p: &Path, e: String| format!("skipping `{}`: {e}", p.display());
        if self.create_base {
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.base);
        }
        if self.check_base {
            let fd = open_dir_checked(&self.base).map_err(|e| skip(&self.base, e))?;
            check_private(&fd).map_err(|e| skip(&self.base, e))?;
        } else if !self.base.is_dir() {
            return Err(skip(&self.base, "not a directory".into()));
        }
        let dir = self.base.join(&self.sub);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(skip(&dir, e.to_string())),
        }
        let fd = open_dir_checked(&dir).map_err(|e| skip(&dir, e))?;
        check_private(&fd).map_err(|e| skip(&dir, e))?;
        // The kernel's name for it, as other processes' /proc/<pid>/fd will show it.
        let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or(dir);
        Ok((fd, real))
    }
}

fn open_dir_checked(dir: &Path) -> Result<OwnedFd, String> {
    sys::open_lock_target(dir).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => "it is a symlink".to_owned(),
        _ => e.to_string(),
    })
}

/// A directory is private when it is a real directory, owned by us, and neither group nor
/// others can get in (the tmux rule).
fn check_private(fd: &OwnedFd) -> Result<(), String> {
    let st = sys::fstat(fd.as_raw_fd()).map_err(|e| e.to_string())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err("not a directory".into());
    }
    if st.st_uid != sys::euid() {
        return Err(format!("owned by uid {}, not {}", st.st_uid, sys::euid()));
    }
    if st.st_mode & 0o077 != 0 {
        return Err(format!("mode {:o} lets other users in", st.st_mode & 0o777));
    }
    Ok(())
}

/// The fallback directories in order; an `Err` is a skipped candidate with the reason.
///
/// The spec's order puts `$XDG_RUNTIME_DIR` second; here the directories every process of the
/// user sees whatever its environment (`/tmp`, `/var/tmp`) come first, so that a login shell
/// (which has `XDG_RUNTIME_DIR`) and a cron job or CI runner (which does not) meet at the same
/// lock file, as processes with different `TMPDIR` do.
fn fallback_dirs(lock_dir: Option<&Path>) -> Vec<Result<Candidate, String>> {
    let per_user = format!("steady-{}", sys::euid());
    let mut out: Vec<Result<Candidate, String>> = Vec::new();
    let xdg = std::env::var_os(crate::env::XDG_RUNTIME_DIR).filter(|d| !d.is_empty());
    if let Some(d) = xdg.as_ref().filter(|d| !Path::new(d).is_absolute()) {
        out.push(Err(format!(
            "skipping XDG_RUNTIME_DIR `{}`: not an absolute path",
            Path::new(d).display()
        )));
    }
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut push = |base: PathBuf, sub: &str, check_base: bool, create_base: bool| {
        if seen.contains(&base) {
            return;
        }
        seen.push(base.clone());
        out.push(Ok(Candidate {
            base,
            sub: sub.to_owned(),
            check_base,
            create_base,
        }));
    };
    if let Some(d) = lock_dir {
        push(d.to_path_buf(), &per_user, false, true);
    }
    for d in ["/tmp", "/var/tmp"] {
        push(PathBuf::from(d), &per_user, false, false);
    }
    if let Some(d) = xdg.filter(|d| Path::new(d).is_absolute()) {
        push(PathBuf::from(d), "steady", true, false);
    }
    if let Some(d) = crate::env::abs_path(crate::env::TMPDIR) {
        push(d, &per_user, false, false);
    }
    if let Some(d) = crate::env::user_cache_dir() {
        push(d, "steady", false, true);
    }
    out
}

impl HeldLock {
    fn new(
        fd: OwnedFd,
        path: PathBuf,
        key: &str,
        scope: Scope,
        shared: bool,
        was_dir: bool,
    ) -> HeldLock {
        let marker = marker("held", &fd);
        HeldLock {
            fd,
            _marker: marker,
            path,
            key: key.to_owned(),
            scope,
            shared,
            was_dir,
        }
    }

    fn say_locked(&self) {
        let mode = if self.shared { "shared" } else { "exclusive" };
        ui::detail(&format!(
            "locked `{}` ({mode}) {}",
            self.key,
            self.scope.describe()
        ));
        ui::detail(&strength(&self.path));
    }

    /// After a clean that may have removed and recreated the directory, moves the lock to the
    /// one now at the path, so that later arrivals meet this holder there.
    fn follow_recreated(&mut self) {
        if self.scope != Scope::OnPath {
            return;
        }
        if self.was_dir {
            let _ = std::fs::create_dir_all(&self.path);
        }
        let now = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if now.is_none() || same_inode(now, &self.fd) {
            return;
        }
        let fd = match sys::open_lock_target(&self.path) {
            Ok(fd) => fd,
            Err(_) => return,
        };
        match sys::flock(&fd, !self.shared, false) {
            Ok(()) => {
                ui::detail(&format!(
                    "`{}` was recreated; moved the lock to it",
                    self.path.display()
                ));
                self._marker = marker("held", &fd);
                self.fd = fd;
            }
            Err(_) => {
                let who = holder_of(fd.as_raw_fd())
                    .map_or_else(|| "another process".to_owned(), |h| h.describe());
                ui::warn(&format!(
                    "`{}` was recreated and its new lock is taken by {who}; steady keeps the old one",
                    self.path.display()
                ));
            }
        }
    }
}

impl Locks {
    /// The value of [`HELD_ENV`] for the command: the entries inherited from enclosing steady
    /// processes that are still our ancestors, plus ours. `None` when there is nothing to say.
    pub fn held_env(&self) -> Option<OsString> {
        if self.held.is_empty() && self.nested.is_empty() && self.remote_id.is_none() {
            return None;
        }
        let ancestors = ancestors();
        let mut entries: Vec<(i32, String)> = std::env::var_os(HELD_ENV)
            .map(|v| parse_held(&v))
            .unwrap_or_default()
            .into_iter()
            .filter(|(pid, _)| ancestors.contains(pid))
            .collect();
        let me = std::process::id() as i32;
        for key in self.held.iter().map(|l| &l.key).chain(&self.remote_id) {
            if !key.contains('\n') && !entries.iter().any(|(_, k)| k == key) {
                entries.push((me, key.clone()));
            }
        }
        let lines: Vec<String> = entries.iter().map(|(p, k)| format!("{p} {k}")).collect();
        Some(lines.join("\n").into())
    }

    /// See [`HeldLock::follow_recreated`].
    pub fn follow_recreated_dir(&mut self) {
        for l in &mut self.held {
            l.follow_recreated();
        }
    }

    /// One phrase for the run's report.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .held
            .iter()
            .map(|l| {
                let mode = if l.shared { "shared" } else { "exclusive" };
                format!("`{}` ({mode}) {}", l.key, l.scope.describe())
            })
            .collect();
        parts.extend(self.remote.iter().map(|r| r.describe()));
        parts.extend(
            self.nested
                .iter()
                .map(|k| format!("`{k}` held by an enclosing steady")),
        );
        parts.extend(
            self.unlocked
                .iter()
                .map(|(k, why)| format!("`{k}` unlocked: {why}")),
        );
        parts.join("; ")
    }
}

/// `<pid> <key>` lines of [`HELD_ENV`].
fn parse_held(v: &OsStr) -> Vec<(i32, String)> {
    v.to_string_lossy()
        .lines()
        .filter_map(|l| {
            let (pid, key) = l.split_once(' ')?;
            Some((pid.parse().ok()?, key.to_owned()))
        })
        .collect()
}

/// The pid of an enclosing steady that holds `key`. An inherited entry counts only while that
/// steady is still one of our ancestors: a daemon the command left behind, or a process that
/// copied the environment, must not skip the lock once that steady is gone.
fn held_by_ancestor(key: &str) -> Option<i32> {
    let v = std::env::var_os(HELD_ENV)?;
    let ancestors = ancestors();
    parse_held(&v)
        .into_iter()
        .find(|(pid, k)| k == key && ancestors.contains(pid))
        .map(|(pid, _)| pid)
}

/// Our parent, its parent, and so on up to (not including) pid 1.
fn ancestors() -> Vec<i32> {
    let mut out = Vec::new();
    let mut pid = std::os::unix::process::parent_id() as i32;
    while pid > 1 && out.len() < 4096 && !out.contains(&pid) {
        out.push(pid);
        match parent_of(pid) {
            Some(p) => pid = p,
            None => break,
        }
    }
    out
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.get(stat.rfind(')')? + 2..)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn errno_name(errno: i32) -> String {
    match errno {
        524 => "ENOTSUPP, os error 524".into(),
        e => {
            let n = nix::errno::Errno::from_raw(e);
            format!("{n:?}: {}, os error {e}", n.desc())
        }
    }
}

/// What steady knows about a filesystem type, by statfs magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filesystem {
    pub name: &'static str,
    /// Shared between nodes: flock there is only as strong as the mount's lock support.
    pub network: bool,
}

/// Classifies a statfs magic (values from linux/magic.h and coreutils' list of remote
/// filesystems); `None` for one steady does not know.
pub fn classify_filesystem(magic: u32) -> Option<Filesystem> {
    let (name, network) = match magic {
        0x6969 => ("NFS", true),
        0x517B | 0xFF53_4D42 | 0xFE53_4D42 => ("SMB/CIFS", true),
        0x00C3_6400 => ("CephFS", true),
        0x6573_5546 => ("a FUSE filesystem", true),
        0x5346_414F | 0x6B41_4653 => ("AFS", true),
        0x0102_1997 => ("9P", true),
        0x4750_4653 => ("GPFS", true),
        0x0BD0_0BD0 => ("Lustre", true),
        0x0116_1970 => ("GFS2", true),
        0x1983_0326 => ("BeeGFS", true),
        0x7461_636F => ("OCFS2", true),
        0xEF53 => ("ext2/3/4", false),
        0x5846_5342 => ("XFS", false),
        0x9123_683E => ("Btrfs", false),
        0x0102_1994 => ("tmpfs", false),
        0x794C_7630 => ("overlayfs", false),
        0x2FC1_2FC1 => ("ZFS", false),
        0xF2F5_2010 => ("F2FS", false),
        0x8584_58F6 => ("ramfs", false),
        0xCA45_1A4E => ("bcachefs", false),
        0x3153_464A => ("JFS", false),
        0x4D44 => ("FAT", false),
        0x7366_746E | 0x5346_544E => ("NTFS", false),
        _ => return None,
    };
    Some(Filesystem { name, network })
}

/// A network filesystem under `path`, by statfs magic.
pub fn network_filesystem(path: &Path) -> Option<&'static str> {
    let magic = sys::filesystem_magic(path)? as u32;
    classify_filesystem(magic)
        .filter(|f| f.network)
        .map(|f| f.name)
}

/// How strong a lock on `path` is, for `-v` (R12).
fn strength(path: &Path) -> String {
    let Some(magic) = sys::filesystem_magic(path) else {
        return format!(
            "cannot tell the filesystem of `{}`; assuming local flock",
            path.display()
        );
    };
    match classify_filesystem(magic as u32) {
        Some(f) if f.network => format!(
            "`{}` is on {}: the lock is only as strong as that mount's lock support \
             (`nolock` or `local_lock` make it node-local)",
            path.display(),
            f.name
        ),
        Some(f) => format!(
            "`{}` is on {}, a local filesystem: the kernel's flock is exact there",
            path.display(),
            f.name
        ),
        None => format!(
            "`{}` is on a filesystem steady does not know (magic {:#x}); assuming local flock",
            path.display(),
            magic
        ),
    }
}

/// For a fallback lock file steady made (by its name and its per-user directory), the key it
/// stands for, from its first line.
pub fn fallback_key(open_path: &Path, name: &Path) -> Option<String> {
    let file = name.file_name()?.to_str()?;
    let parent = name.parent()?.file_name()?.to_str()?;
    if !is_lock_file_name(file) || !(parent == "steady" || parent.starts_with("steady-")) {
        return None;
    }
    let mut buf = [0u8; 4096];
    let n = std::fs::File::open(open_path).ok()?.read(&mut buf).ok()?;
    let first = buf[..n].split(|b| *b == b'\n').next()?;
    let key = OsStr::from_bytes(first);
    Path::new(key)
        .is_absolute()
        .then(|| key.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_names_differ_per_cache() {
        let a = lock_file_name(Path::new("/home/u/.cache/uv"));
        let b = lock_file_name(Path::new("/srv/cache/uv"));
        assert!(a.starts_with("uv-") && a.ends_with(".lock"));
        assert_ne!(a, b);
        assert!(is_lock_file_name(&a));
        assert!(!is_lock_file_name("uv.lock"));
    }

    #[test]
    fn errors_are_classified_by_errno_not_kind() {
        // Rust maps 524 and ENOLCK to ErrorKind::Uncategorized, which cannot be matched on.
        assert_ne!(
            std::io::Error::from_raw_os_error(524).kind(),
            std::io::ErrorKind::Unsupported
        );
        assert_eq!(classify(Err(524)), Flock::Unsupported(524));
        assert_eq!(
            classify(Err(libc::ENOLCK)),
            Flock::Unsupported(libc::ENOLCK)
        );
        assert_eq!(
            classify(Err(libc::EOPNOTSUPP)),
            Flock::Unsupported(libc::EOPNOTSUPP)
        );
        assert_eq!(
            classify(Err(libc::ENOSYS)),
            Flock::Unsupported(libc::ENOSYS)
        );
        assert_eq!(classify(Err(libc::EWOULDBLOCK)), Flock::Contended);
        assert_eq!(classify(Err(libc::EINTR)), Flock::Interrupted);
        assert_eq!(classify(Err(libc::EINVAL)), Flock::Failed(libc::EINVAL));
        assert_eq!(classify(Ok(())), Flock::Locked);
    }

    #[test]
    fn network_filesystems_are_recognised() {
        let nfs = classify_filesystem(0x6969).unwrap();
        assert_eq!(nfs.name, "NFS");
        assert!(nfs.network);
        for magic in [0xFF53_4D42, 0x4750_4653, 0x0BD0_0BD0, 0x00C3_6400] {
            assert!(classify_filesystem(magic).unwrap().network, "{magic:#x}");
        }
        assert!(!classify_filesystem(0xEF53).unwrap().network);
        assert!(!classify_filesystem(0x0102_1994).unwrap().network);
        assert_eq!(classify_filesystem(0x1234_5678), None);
    }

    #[test]
    fn held_entries_parse() {
        let v = OsStr::new("12 /a/b\nnot a line\n34 /c d/e\n");
        assert_eq!(
            parse_held(v),
            vec![(12, "/a/b".to_owned()), (34, "/c d/e".to_owned())]
        );
    }

    #[test]
    fn keys_of_missing_paths_are_canonical() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().canonicalize().unwrap();
        std::os::unix::fs::symlink(&real, real.join("link")).unwrap();
        assert_eq!(canonical_key(&real.join("link/x/../y")), real.join("y"));
        assert_eq!(canonical_key(&real.join("missing")), real.join("missing"));
    }
}
