//! Holders stranded on an earlier file or directory at a lock's path (deleted or replaced
//! while they held it): found through `/proc/locks` and their descriptors, and waited for, so
//! that the new inode does not admit a second holder.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use super::LockError;
use super::Plan;
use super::fallback::fnv1a;
use super::flock::{Wait, lock_fd, same_inode};
use super::holders::{markers_of, open_files, proc_locks};
use crate::sys;
use crate::ui;

/// Whether someone may still hold the lock on an earlier object at this path. Looking for
/// such a holder costs a read of `/proc/locks`, which takes the kernel's file-lock lock for
/// writing and waits for an RCU grace period (8-16 ms): far more than the lock itself, so it
/// is done only when there is a reason (issue 18). A replaced object leaves one of two marks:
/// this run had to create the object (someone deleted it, perhaps under a holder: `rm -rf`
/// of a cache, tmpfiles ageing), or another steady that is still running keeps a record of
/// this very lock (see `leftovers`) although this run got it, which it could not have on the
/// same object unless that run is a shared reader, a nested run, or stranded.
///
/// Not seen: a holder that is not a steady, or a steady of another user, still holding an
/// object that was renamed away (not deleted) while it ran; this run neither created the new
/// object nor finds their record.
fn may_be_replacement(key: &[u8], created: bool, plan: &Plan) -> bool {
    created || !super::leftovers::recorded_pids(key, plan.lock_dir).is_empty()
}

/// Waits for processes that still hold the lock of `key` on an earlier file or directory at
/// `path`: one deleted while they held it (a cleaner, `rm -rf`, tmpfiles ageing, npm
/// recreating `node_modules`), or renamed away (the cache or the lock file moved, the lock
/// directory moved). The kernel still shows a deleted one in the holder's `/proc/<pid>/fd` as
/// "`path` (deleted)"; a renamed one is found by the holder's marker, which names the key.
/// steady opens it there and waits on it; without this, the new inode would admit a second
/// holder. Only holders whose descriptors this user may read are found (the same user, or
/// anyone for root). Looked for only when the lock may be a replacement
/// ([`may_be_replacement`]).
pub(super) fn wait_for_stranded(
    path: &Path,
    key: &[u8],
    ours: &OwnedFd,
    created: bool,
    plan: &Plan,
) -> Result<(), LockError> {
    if !may_be_replacement(key, created, plan) {
        return Ok(());
    }
    let Ok(st) = sys::fstat(ours.as_raw_fd()) else {
        return Ok(());
    };
    let hash = fnv1a(key);
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
        let renamed: Vec<(u64, u64)> = markers_of(pid)
            .into_iter()
            .filter(|m| m.held && m.key_hash == Some(hash))
            .map(|m| (m.dev, m.ino))
            .collect();
        for f in open_files(pid) {
            if f.target.as_os_str() != deleted && !renamed.contains(&(f.dev, f.ino)) {
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
                "`{}` was deleted or replaced while pid {pid} held its lock; waiting for that holder too",
                path.display()
            ));
            match lock_fd(&fd, path, key, plan) {
                Ok(()) | Err(Wait::Cannot(_)) => {}
                Err(Wait::Failed(e)) => return Err(e),
            }
            // Dropped at once: its holder is gone, and nobody reaches that inode by its path
            // any more; a waiter that opened it earlier re-checks the path and meets us there.
        }
    }
    Ok(())
}
