//! What a holder killed with SIGKILL leaves behind. Nothing can catch SIGKILL: the kernel
//! frees the holder's lock at once, while the processes of its attempt (grandchildren, now
//! children of init) keep writing into the cache the next holder is about to use. So each
//! holder records its attempt's processes beside its lock, and the next holder of that lock
//! stops a dead holder's leftovers before its own command runs, and says so.
//!
//! The record: one small file per holder and lock, `<lock file name>.<pid>.left`, in a
//! per-user private directory beside the fallback lock directory
//! (`<tmp>/steady-<uid>-leftovers`, 0700, found and checked like that one). Not in the cache: pids mean something only on this machine (or
//! in this container), a cache may be shared by several, and a cache directory is the
//! installer's. It holds the holder's pid and start time, a token, and the attempt's processes
//! as `pid start-time`, rewritten while the attempt runs. The token is also in the command's
//! environment (`STEADY_RUN`, which every descendant inherits unless it clears its
//! environment), so processes forked after the last rewrite are found too.
//!
//! A record is acted on only when its holder is dead (its pid is gone, or names a process that
//! started at another time), and a process is stopped only when it belongs to this user and
//! either carries the token or is listed with the same start time (a pid reused since is
//! another process). Stopping is the tree kill's: freeze (SIGSTOP) until nothing new turns up,
//! then SIGKILL. A holder that ends normally removes its record, so daemons a successful
//! command meant to leave are never touched.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::Locks;
use super::fallback::{fallback_dirs, lock_file_name};
use crate::attempt::tree;
use crate::sys;
use crate::ui;

/// The variable that carries the run tokens to the command's processes (`:`-separated: a
/// nested steady adds its own).
pub const ENV: &str = crate::env::RUN_TOKENS;

const SUFFIX: &str = ".left";

/// Rounds of freezing before the leftovers are killed as they are.
const FREEZE_ROUNDS: usize = 100;

/// How long to wait for killed leftovers to be gone (init reaps them).
const GONE_WITHIN: Duration = Duration::from_secs(10);

/// This run's record, removed when dropped (a normal end).
pub struct Record {
    files: Vec<PathBuf>,
    head: String,
    token: String,
}

/// A record read back.
struct Found {
    holder: (i32, u64),
    token: String,
    procs: Vec<(i32, u64)>,
}

impl Record {
    /// Stops what dead holders of `locks` left running, then starts this run's record. `None`
    /// when no lock is held here or no private directory can be had.
    pub fn begin(locks: &Locks, lock_dir: Option<&Path>) -> Option<Record> {
        if locks.held.is_empty() {
            return None;
        }
        let dir = records_dir(lock_dir)?;
        let me = std::process::id() as i32;
        let start = tree::start_time(me)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let token = format!("{me}-{start}-{nanos:x}");
        let mut files = Vec::new();
        for lock in &locks.held {
            let stem = lock_file_name(Path::new(&lock.key));
            sweep(&dir, &stem, &lock.key);
            files.push(dir.join(format!("{stem}.{me}{SUFFIX}")));
        }
        let record = Record {
            files,
            head: format!("steady-leftovers 1\nholder {me} {start}\ntoken {token}\n"),
            token,
        };
        record.write(&[]);
        Some(record)
    }

    /// The command's `STEADY_RUN`: the inherited tokens and this run's.
    pub fn env(&self) -> (OsString, OsString) {
        let mut v = std::env::var_os(ENV).unwrap_or_default();
        if !v.is_empty() {
            v.push(":");
        }
        v.push(&self.token);
        (ENV.into(), v)
    }

    /// Rewrites the record (a new file renamed over the old, so a reader never sees half).
    fn write(&self, procs: &[(i32, u64)]) {
        let mut text = self.head.clone();
        for (pid, start) in procs {
            text.push_str(&format!("proc {pid} {start}\n"));
        }
        for file in &self.files {
            // The first write makes a file no one can have half-read yet: no rename, which on
            // ext4 would also flush the data of the file it replaces.
            if procs.is_empty() && create_new(file, &text) {
                continue;
            }
            let mut tmp = file.clone().into_os_string();
            tmp.push(".new");
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)
                .and_then(|mut f| f.write_all(text.as_bytes()));
            if written.is_ok() {
                let _ = std::fs::rename(&tmp, file);
            }
        }
    }
}

/// Creates `file` with `text`, if it does not exist yet.
fn create_new(file: &Path, text: &str) -> bool {
    let made = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file);
    match made {
        Ok(mut f) => f.write_all(text.as_bytes()).is_ok(),
        Err(_) => false,
    }
}

impl crate::attempt::Recorder for Record {
    fn note(&mut self, procs: &[(i32, u64)]) {
        self.write(procs);
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// The other steady processes, still running, that keep a record of the lock `key` (the
/// canonical path's bytes): they took that lock and have not ended. Costs a listing of one
/// small private directory, no `/proc/locks` read.
pub(super) fn recorded_pids(key: &[u8], lock_dir: Option<&Path>) -> Vec<i32> {
    let Some(dir) = records_dir(lock_dir) else {
        return Vec::new();
    };
    let stem = lock_file_name(Path::new(&*String::from_utf8_lossy(key)));
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let pid = name.to_str()?.strip_prefix(&stem)?.strip_prefix('.')?;
            pid.strip_suffix(SUFFIX)?.parse::<i32>().ok()
        })
        .filter(|&pid| pid != me && sys::pid_exists(pid))
        .collect()
}

/// The private directory of this user's records, made if missing. Found and checked once per
/// run: the lock, the stranded-holder check and the record all ask for it.
fn records_dir(lock_dir: Option<&Path>) -> Option<PathBuf> {
    use std::sync::Mutex;
    type Found = (Option<PathBuf>, Option<PathBuf>);
    static FOUND: Mutex<Option<Found>> = Mutex::new(None);
    let mut found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((asked, dir)) = found.as_ref()
        && asked.as_deref() == lock_dir
    {
        return dir.clone();
    }
    // Beside the fallback lock directory, not in it: that one holds only locks.
    let dir = fallback_dirs(lock_dir)
        .into_iter()
        .find_map(|c| {
            let mut c = c.ok()?;
            c.sub.push_str("-leftovers");
            c.open().ok()
        })
        .map(|(_, path)| path);
    *found = Some((lock_dir.map(Path::to_path_buf), dir.clone()));
    dir
}

/// Looks at every record of the lock `stem` in `dir` and stops the leftovers of dead holders.
fn sweep(dir: &Path, stem: &str, key: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{stem}.");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(&prefix) || !name.ends_with(SUFFIX) {
            continue;
        }
        let path = entry.path();
        let Some(found) = std::fs::read_to_string(&path).ok().and_then(|t| parse(&t)) else {
            continue;
        };
        if is_alive(found.holder) {
            continue;
        }
        let stopped = stop(&found);
        if stopped > 0 {
            ui::status(&format!(
                "stopped {stopped} process(es) that an earlier steady (pid {}) left running on `{key}` when it was killed",
                found.holder.0
            ));
        }
        let _ = std::fs::remove_file(&path);
    }
}

fn parse(text: &str) -> Option<Found> {
    let mut lines = text.lines();
    if lines.next()? != "steady-leftovers 1" {
        return None;
    }
    let pair = |rest: &str| -> Option<(i32, u64)> {
        let (a, b) = rest.split_once(' ')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    let holder = pair(lines.next()?.strip_prefix("holder ")?)?;
    let token = lines.next()?.strip_prefix("token ")?.to_owned();
    let procs = lines
        .filter_map(|l| pair(l.strip_prefix("proc ")?))
        .collect();
    Some(Found {
        holder,
        token,
        procs,
    })
}

/// True while `(pid, start)` names a live process (a reused pid names another).
fn is_alive((pid, start): (i32, u64)) -> bool {
    tree::start_time(pid) == Some(start)
}

/// This user's live processes that belong to the dead holder's attempt: listed with the same
/// start time, or carrying its token. Never steady itself or its ancestors.
fn leftovers(found: &Found, spare: &HashSet<i32>) -> Vec<i32> {
    let me = sys::euid();
    let ours = |pid: i32| {
        std::fs::metadata(format!("/proc/{pid}")).is_ok_and(|m| m.uid() == me)
            && !spare.contains(&pid)
    };
    let mut out: Vec<i32> = found
        .procs
        .iter()
        .filter(|p| ours(p.0) && is_alive(**p))
        .map(|p| p.0)
        .collect();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    let needle = format!("{ENV}=");
    for pid in dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        if out.contains(&pid) || !ours(pid) {
            continue;
        }
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let carries = environ
            .split(|b| *b == 0)
            .filter_map(|v| std::str::from_utf8(v).ok()?.strip_prefix(needle.as_str()))
            .any(|v| v.split(':').any(|t| t == found.token));
        if carries {
            out.push(pid);
        }
    }
    out
}

/// steady and its ancestors: never stopped, even if they carry the token (a nested steady).
fn self_and_ancestors() -> HashSet<i32> {
    let mut set = HashSet::new();
    let mut pid = std::process::id() as i32;
    while pid > 1 && set.insert(pid) {
        pid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                let rest = s.get(s.rfind(')')? + 2..)?.to_owned();
                rest.split_whitespace().nth(1)?.parse().ok()
            })
            .unwrap_or(0);
    }
    set
}

/// Freezes the leftovers until no new one turns up, kills them, and waits (bounded) until
/// they are gone; returns how many were stopped.
fn stop(found: &Found) -> usize {
    let spare = self_and_ancestors();
    let mut frozen: Vec<i32> = Vec::new();
    for _ in 0..FREEZE_ROUNDS {
        let new: Vec<i32> = leftovers(found, &spare)
            .into_iter()
            .filter(|p| !frozen.contains(p))
            .collect();
        if new.is_empty() {
            break;
        }
        for &pid in &new {
            sys::kill(pid, Signal::SIGSTOP);
        }
        frozen.extend(new);
        std::thread::sleep(Duration::from_millis(1));
    }
    for &pid in &frozen {
        sys::kill(pid, Signal::SIGKILL);
    }
    let until = Instant::now() + GONE_WITHIN;
    while frozen.iter().any(|p| live(*p)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    frozen.len()
}

/// Exists and is not a zombie.
fn live(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rfind(')')
            .and_then(|i| s[i + 2..].chars().next())
            .is_some_and(|c| c != 'Z' && c != 'X')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_and_a_reused_pid_is_not_the_holder() {
        let me = std::process::id() as i32;
        let start = tree::start_time(me).unwrap();
        let text = format!("steady-leftovers 1\nholder {me} {start}\ntoken t1\nproc 5 77\n");
        let found = parse(&text).unwrap();
        assert_eq!(found.holder, (me, start));
        assert_eq!(found.token, "t1");
        assert_eq!(found.procs, vec![(5, 77)]);
        assert!(is_alive(found.holder));
        // The same pid with another start time is another process.
        assert!(!is_alive((me, start + 1)));
        assert!(parse("something else\n").is_none());
    }

    #[test]
    fn a_listed_pid_with_another_start_time_is_never_a_leftover() {
        let me = std::process::id() as i32;
        let start = tree::start_time(me).unwrap();
        let found = Found {
            holder: (1, 0),
            token: "no-such-token".into(),
            procs: vec![(me, start + 1)],
        };
        assert!(leftovers(&found, &HashSet::new()).is_empty());
        let found = Found {
            procs: vec![(me, start)],
            ..found
        };
        assert_eq!(leftovers(&found, &HashSet::new()), vec![me]);
        assert!(leftovers(&found, &self_and_ancestors()).is_empty());
    }
}
