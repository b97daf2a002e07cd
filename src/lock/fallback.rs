//! Fallback lock files, for paths that cannot be locked themselves (NFS without lock
//! support, errno 524, a cache that cannot be created): a file keyed by the canonical path in
//! the first usable per-user directory of the chain, every directory checked before use and
//! every file opened without following symlinks, never truncated, never deleted (R2-R5).

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::flock::{Wait, lock_current, same_inode};
use super::stranded::wait_for_stranded;
use super::{HeldLock, LockError, LockRequest, Plan, Scope, Target};
use crate::sys;
use crate::ui;

/// Lock files where the path cannot be locked: the first usable per-user directory.
pub(super) fn fallback(
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
        let created = std::cell::Cell::new(false);
        let open = || {
            let (fd, made) = open_checked(&dir_fd, &name, key).map_err(|e| {
                Wait::Failed(LockError::Unsafe(format!(
                    "unsafe lock path `{}`: {e}",
                    file.display()
                )))
            })?;
            created.set(created.get() || made);
            Ok(fd)
        };
        let is_current = |fd: &OwnedFd| {
            same_inode(
                sys::stat_at(&dir_fd, &name)
                    .ok()
                    .map(|st| (st.st_dev, st.st_ino)),
                fd,
            )
        };
        match lock_current(
            &file,
            t.key.as_os_str().as_encoded_bytes(),
            &open,
            &is_current,
            plan,
        ) {
            Ok(fd) => {
                let id = t.key.as_os_str().as_encoded_bytes();
                wait_for_stranded(&file, id, &fd, created.get(), plan)?;
                let scope = Scope::Node { file: file.clone() };
                let lock = HeldLock::new(fd, file, &t.key, scope, plan.shared, false);
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
pub(super) fn open_checked(
    dir: &OwnedFd,
    name: &str,
    key: &str,
) -> Result<(OwnedFd, bool), String> {
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
        return Ok((OwnedFd::from(f), true));
    }
    Ok((fd, created))
}

/// `<basename>-<hash of the canonical path>.lock`: readable, and unique per key.
pub(super) fn lock_file_name(key: &Path) -> String {
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

pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// True for a name [`lock_file_name`] makes.
pub(super) fn is_lock_file_name(name: &str) -> bool {
    name.strip_suffix(".lock")
        .and_then(|s| s.rsplit_once('-'))
        .is_some_and(|(_, h)| h.len() == 16 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// One directory of the fallback chain, before it is opened and checked.
pub(super) struct Candidate {
    base: PathBuf,
    pub(super) sub: String,
    /// The base itself must be private too (`$XDG_RUNTIME_DIR`).
    check_base: bool,
    /// The user named the base (`--lock-dir`): create it if missing.
    create_base: bool,
}

impl Candidate {
    /// Creates the per-user subdirectory (0700) if needed, opens it without following a
    /// symlink and checks the open directory itself, so that what is checked is what is used.
    pub(super) fn open(self) -> Result<(OwnedFd, PathBuf), String> {
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
        check_chain(&self.base).map_err(|e| skip(&self.base, e))?;
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

pub(super) fn open_dir_checked(dir: &Path) -> Result<OwnedFd, String> {
    sys::open_lock_target(dir).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => "it is a symlink".to_owned(),
        _ => e.to_string(),
    })
}

/// A directory is private when it is a real directory, owned by us, and neither group nor
/// others can get in (the tmux rule).
pub(super) fn check_private(fd: &OwnedFd) -> Result<(), String> {
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

/// Only this user and root may rename the per-user directory away (and so let a second run
/// in, issue 14 case 11): every directory from `base` up to `/` must be owned by this user or
/// root, and where group or others may write to it, it must be sticky (so that only an
/// entry's owner, the directory's owner or root may rename the entry).
fn check_chain(base: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let real = base.canonicalize().map_err(|e| e.to_string())?;
    let me = sys::euid();
    for dir in real.ancestors() {
        let m = std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
        if m.uid() != me && m.uid() != 0 {
            return Err(format!(
                "`{}` is owned by uid {}, who could move steady's directory away",
                dir.display(),
                m.uid()
            ));
        }
        if m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0 {
            return Err(format!(
                "`{}` (mode {:o}) lets other users move steady's directory away (no sticky bit)",
                dir.display(),
                m.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

/// The fallback directories in order; an `Err` is a skipped candidate with the reason.
///
/// The spec's order puts `$XDG_RUNTIME_DIR` second; here the directories every process of the
/// user sees whatever its environment (`/tmp`, `/var/tmp`) come first, so that a login shell
/// (which has `XDG_RUNTIME_DIR`) and a cron job or CI runner (which does not) meet at the same
/// lock file, as processes with different `TMPDIR` do.
pub(super) fn fallback_dirs(lock_dir: Option<&Path>) -> Vec<Result<Candidate, String>> {
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
}
