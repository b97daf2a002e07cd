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

mod fallback;
mod filesystem;
mod flock;
pub mod holders;
pub mod leftovers;
mod nesting;
#[cfg(feature = "postgres")]
pub mod remote;
mod stranded;

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::attempt::Watcher;
use crate::lock::holders::{Holder, holder_of};
use crate::sys;
use crate::ui;
use fallback::fallback;
pub use fallback::fallback_key;
pub use filesystem::network_filesystem;
use filesystem::strength;
use flock::{Wait, lock_current, marker, open_target, same_inode};
use nesting::{Proof, held_by_ancestor};
use stranded::wait_for_stranded;

/// Environment variable through which steady tells a nested steady which locks it holds: one
/// `<pid> <key>` line per lock, the pid being the steady that holds it.
pub const HELD_ENV: &str = crate::env::HELD_LOCKS;

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
    /// The same, every byte of it, for [`HELD_ENV`].
    id: Vec<u8>,
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
    remote_id: Option<Vec<u8>>,
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
struct Plan<'a> {
    give_up: Option<Instant>,
    progress_every: Duration,
    shared: bool,
    /// `--lock-dir`: where the fallback locks and the holders' records are.
    lock_dir: Option<&'a Path>,
}

/// A path to lock, resolved.
struct Target {
    /// The canonical path: the lock's identity and its order.
    key: PathBuf,
    /// The path to flock, or why it cannot be used.
    usable: Result<PathBuf, String>,
    /// This run created the directory (it was missing, or moved away).
    created: bool,
}

impl Target {
    fn resolve(path: &Path) -> Target {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let exists = std::fs::symlink_metadata(&abs).is_ok();
        let made = if exists {
            Ok(())
        } else {
            std::fs::create_dir_all(&abs)
        };
        match made.and_then(|()| abs.canonicalize()) {
            Ok(c) => Target {
                key: c.clone(),
                usable: Ok(c),
                created: !exists,
            },
            Err(e) => Target {
                key: canonical_key(&abs),
                usable: Err(format!("cannot use `{}` as the lock: {e}", abs.display())),
                created: false,
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
        lock_dir: req.lock_dir,
    };
    let targets = in_lock_order(req.paths);
    // Dropping `locks` on an early return is what releases those already taken.
    let mut locks = Locks::default();
    for t in &targets {
        locks.take_local(t, req, &plan)?;
    }
    if let Some(r) = &req.remote {
        locks.take_remote(r, &plan)?;
    }
    Ok(locks)
}

/// The paths resolved, one per lock, in the one order every run takes them in.
fn in_lock_order(paths: &[PathBuf]) -> Vec<Target> {
    let mut targets: Vec<Target> = paths.iter().map(|p| Target::resolve(p)).collect();
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
    targets
}

impl Locks {
    /// The lock on one path, unless an enclosing steady holds it already; a path that
    /// cannot be locked anywhere fails the run only under `require`.
    fn take_local(&mut self, t: &Target, req: &LockRequest, plan: &Plan) -> Result<(), LockError> {
        let key = t.key.to_string_lossy().into_owned();
        if let Some(pid) = held_by_ancestor(t.key.as_os_str().as_bytes(), Proof::Local(&t.key)) {
            ui::detail(&format!(
                "the lock on `{key}` is held by an enclosing steady (pid {pid}); going ahead without taking it again"
            ));
            self.nested.push(key);
            return Ok(());
        }
        match acquire_one(t, &key, req, plan)? {
            Ok(l) => self.held.push(l),
            Err(reason) if req.require => return Err(LockError::Unavailable(reason)),
            Err(reason) => self.unlocked.push((key, reason)),
        }
        Ok(())
    }

    /// The cache's lock beyond this machine, unless an enclosing steady holds it already.
    fn take_remote(&mut self, r: &RemoteRequest, plan: &Plan) -> Result<(), LockError> {
        let key = remote_key(r);
        let id = remote_id(r, &key);
        if let Some(pid) = held_by_ancestor(&id, Proof::Remote) {
            // Taking it again on a second connection would wait for our own ancestor forever.
            ui::detail(&format!(
                "the lock on {} is held by an enclosing steady (pid {pid}); going ahead without taking it again",
                key.label
            ));
            self.nested.push(String::from_utf8_lossy(&id).into_owned());
        } else {
            let held = r
                .backend
                .acquire(&key, plan.shared, plan.give_up, plan.progress_every)?;
            self.remote = Some(held);
            self.remote_id = Some(id);
        }
        Ok(())
    }
}

/// The name every machine gives the cache's remote lock: the namespace where one is given
/// (cache paths that differ per machine), else the canonical cache path (the same NFS path
/// everywhere).
fn remote_key(r: &RemoteRequest) -> RemoteKey {
    match r.namespace {
        Some(_) => remote_key_of(r.cache, r.namespace),
        None => remote_key_of(&Target::resolve(r.cache).key, None),
    }
}

/// The name of the remote lock a run on `cache` takes (see [`remote_key`]), for `doctor` and
/// `status` to find it on the server. It creates nothing: a cache that does not exist yet is
/// named by the canonical path it will have.
pub fn remote_key_of(cache: &Path, namespace: Option<&str>) -> RemoteKey {
    match namespace {
        Some(ns) => RemoteKey {
            identity: format!("namespace:{ns}"),
            label: format!("namespace `{ns}`"),
        },
        None => {
            let abs = std::path::absolute(cache).unwrap_or_else(|_| cache.to_path_buf());
            let key = abs.canonicalize().unwrap_or_else(|_| canonical_key(&abs));
            RemoteKey {
                identity: format!("path:{}", key.to_string_lossy()),
                label: format!("`{}`", key.display()),
            }
        }
    }
}

/// The [`HELD_ENV`] entry of a remote lock: its identity, with the cache path's own bytes.
fn remote_id(r: &RemoteRequest, key: &RemoteKey) -> Vec<u8> {
    match r.namespace {
        Some(_) => format!("remote {}", key.identity).into_bytes(),
        None => {
            let mut id = b"remote path:".to_vec();
            id.extend_from_slice(Target::resolve(r.cache).key.as_os_str().as_bytes());
            id
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
        Ok(path) => match lock_on_path(path, t, plan) {
            Ok((fd, was_dir)) => {
                let lock = HeldLock::new(
                    fd,
                    path.clone(),
                    &t.key,
                    Scope::OnPath,
                    plan.shared,
                    was_dir,
                );
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
fn lock_on_path(path: &Path, t: &Target, plan: &Plan) -> Result<(OwnedFd, bool), Wait> {
    let open = || -> Result<OwnedFd, Wait> { open_target(path).map_err(Wait::Cannot) };
    let is_current = |fd: &OwnedFd| {
        same_inode(
            std::fs::symlink_metadata(path)
                .ok()
                .map(|m| (m.dev(), m.ino())),
            fd,
        )
    };
    let id = t.key.as_os_str().as_bytes();
    let fd = lock_current(path, id, &open, &is_current, plan)?;
    wait_for_stranded(path, id, &fd, t.created, plan).map_err(Wait::Failed)?;
    let was_dir =
        sys::fstat(fd.as_raw_fd()).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
    Ok((fd, was_dir))
}

impl HeldLock {
    fn new(
        fd: OwnedFd,
        path: PathBuf,
        key: &Path,
        scope: Scope,
        shared: bool,
        was_dir: bool,
    ) -> HeldLock {
        let marker = marker("held", &fd, Some(key.as_os_str().as_bytes()));
        HeldLock {
            fd,
            _marker: marker,
            path,
            key: key.to_string_lossy().into_owned(),
            id: key.as_os_str().as_bytes().to_vec(),
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
        let fd = match open_target(&self.path) {
            Ok(fd) => fd,
            Err(_) => return,
        };
        match sys::flock(&fd, !self.shared, false) {
            Ok(()) => {
                ui::detail(&format!(
                    "`{}` was recreated; moved the lock to it",
                    self.path.display()
                ));
                self._marker = marker("held", &fd, Some(&self.id));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_missing_paths_are_canonical() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().canonicalize().unwrap();
        std::os::unix::fs::symlink(&real, real.join("link")).unwrap();
        assert_eq!(canonical_key(&real.join("link/x/../y")), real.join("y"));
        assert_eq!(canonical_key(&real.join("missing")), real.join("missing"));
    }
}
