//! Holders stranded on an earlier file or directory at a lock's path (deleted or replaced
//! while they held it): found through `/proc/locks` and their descriptors, and waited for, so
//! that the new inode does not admit a second holder.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use super::LockError;
use super::Plan;
use super::flock::{Wait, lock_fd, same_inode};
use super::holders::{open_files, proc_locks};
use crate::sys;
use crate::ui;

/// Waits for processes that still hold a lock on an earlier file or directory at `path`, one
/// deleted while they held it (a cleaner, `rm -rf`, tmpfiles ageing, npm recreating
/// `node_modules`). The kernel still shows the old one in the holder's `/proc/<pid>/fd` as
/// "`path` (deleted)", and steady can open it there and wait on it; without this, the new
/// inode would admit a second holder. Only holders whose descriptors this user may read are
/// found (the same user, or anyone for root).
pub(super) fn wait_for_stranded(path: &Path, ours: &OwnedFd, plan: &Plan) -> Result<(), LockError> {
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
