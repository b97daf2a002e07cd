//! Whether a path may be cleared as an installer's cache at all (reliability.md R23, issue 14
//! cases 2, 3 and 12). This decides once, on the resolved path, and hands back an open handle
//! to what it checked, so that the removal acts on exactly that directory; `remove` acts.
//! Nothing here deletes.
//!
//! The rules, in order: the path is absolute and has no `..`; every component but the last is
//! resolved, and the last (after trailing slashes and `.` are dropped) is opened without
//! following a symlink, so `/x/link/` is the symlink `link`, refused as `/x/link` is. What is
//! open must be a directory owned by steady's user (root: by root), not in a system tree, not
//! a home directory, nor the working directory or one of their parents. And it must be
//! positively this installer's cache: its default place, an entry only that installer makes
//! (a marker that ordinary directories do not have), two of its markers, or nothing but its
//! kinds of entries. An empty directory is nobody's cache yet (`/dev/shm` was taken for one).

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use crate::installer::{Installer, locate};
use crate::recovery::clean::remove;
use crate::sys;

/// Directories no cache is ever cleared at (exactly these).
const SYSTEM_DIRS: &[&str] = &[
    "/",
    "/home",
    "/media",
    "/mnt",
    "/root",
    "/srv",
    "/tmp",
    "/var",
    "/var/tmp",
    "/var/cache",
];

/// System trees: nothing at or below them is ever cleared, for any installer.
const SYSTEM_TREES: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/var/lib", "/opt",
    "/boot", "/dev", "/proc", "/sys", "/run",
];

/// Marker names that ordinary directories have too (a project's `git`, a `cache`, a `tmp`, a
/// downloaded `.zip`): one of them alone does not make a directory an installer's cache.
const COMMON_NAMES: &[&str] = &[
    "git",
    "gems",
    "compact_index",
    "cache",
    "files",
    "index",
    "tmp",
    "links",
    "projects",
    "lock",
    "partial",
    "logs",
    "http",
    "wheels",
    "repo",
    "vcs",
    "shared",
    "venvs",
    "artifacts",
    "registry",
    "urls",
    "urls.txt",
    "virtualenvs",
    ".cache",
    ".gitignore",
    ".tmp",
    ".htaccess",
    "CACHEDIR.TAG",
    "*.gem",
    "*.zip",
    "*@*",
    "*.npm",
    "npm-*",
];

/// A directory that passed [`check_cleanable`]: open, and its resolved path.
#[derive(Debug)]
pub struct Cleanable {
    /// The directory that was checked, opened without following a symlink.
    pub dir: OwnedFd,
    /// Its resolved path (no symlink, no trailing slash, no `.` or `..`), for the installer's
    /// own clean command and for messages.
    pub path: PathBuf,
}

/// R23: see the module's rules. `Err` says why not, in words for `steady: will not clear`.
pub fn check_cleanable(installer: &Installer, path: &Path) -> Result<Cleanable, String> {
    use std::os::unix::ffi::OsStrExt;
    if path.as_os_str().is_empty() {
        return Err("the path is empty".into());
    }
    if !path.is_absolute() {
        return Err("the path is not absolute".into());
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err("the path contains `..`; name the directory itself".into());
    }
    let Some(last) = path.components().next_back().and_then(|c| match c {
        Component::Normal(n) => Some(n.to_owned()),
        _ => None,
    }) else {
        return Err("it is a system directory".into());
    };
    let parent: PathBuf = {
        let mut comps: Vec<Component> = path.components().collect();
        comps.pop();
        comps.iter().collect()
    };
    let parent = parent.canonicalize().map_err(|e| e.to_string())?;
    let parent_fd = sys::open_dir_nofollow(&parent).map_err(|e| e.to_string())?;
    let dir = match sys::open_dir_at(parent_fd.as_fd(), &last) {
        Ok(d) => d,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err("it is a symlink".into());
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            // A symlink to a file, or a file.
            return Err(match sys::lstat_at(parent_fd.as_fd(), &last) {
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => "it is a symlink",
                _ => "it is not a directory",
            }
            .into());
        }
        Err(e) => return Err(e.to_string()),
    };
    let canonical = parent.join(&last);
    refuse_special(&canonical)?;
    let st = sys::fstat(dir.as_raw_fd()).map_err(|e| e.to_string())?;
    let euid = sys::euid();
    if st.st_uid != euid {
        return Err(format!("it is owned by uid {}, not {euid}", st.st_uid));
    }
    let names: Vec<String> = sys::list_dir(dir.as_fd())
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|n: OsString| String::from_utf8_lossy(n.as_bytes()).into_owned())
        .filter(|n| !n.starts_with(".steady-trash-"))
        .collect();
    let default = locate::default_dir(&installer.cache).and_then(|d| d.canonicalize().ok());
    let nested = |m: &str| sys::lstat_at(dir.as_fd(), std::ffi::OsStr::new(m)).is_ok();
    if default.as_deref() == Some(canonical.as_path()) || is_positively(installer, &names, &nested)
    {
        Ok(Cleanable {
            dir,
            path: canonical,
        })
    } else if names.is_empty() {
        Err(format!(
            "it is empty, so nothing shows it is a {} cache",
            installer.name
        ))
    } else {
        Err(format!(
            "nothing in it shows it is a {} cache (it needs one of {}, or two of {}, or nothing but them)",
            installer.name,
            distinctive(installer).join(", "),
            installer.cache.markers.join(", ")
        ))
    }
}

/// Whether `path`'s place alone rules out a clean, for a cache that does not exist yet (what
/// `doctor` says then): the refusals of [`check_cleanable`] that need no directory.
pub fn refused_place(path: &Path) -> Result<(), String> {
    if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return Ok(());
    }
    let comps: Vec<Component> = path.components().collect();
    for i in (1..=comps.len()).rev() {
        let prefix: PathBuf = comps[..i].iter().collect();
        if let Ok(mut real) = prefix.canonicalize() {
            real.extend(&comps[i..]);
            return refuse_special(&real);
        }
    }
    Ok(())
}

/// System trees, home directories, and the working directory or a parent of it.
fn refuse_special(canonical: &Path) -> Result<(), String> {
    if SYSTEM_DIRS.iter().any(|d| canonical == Path::new(d)) {
        return Err("it is a system directory".into());
    }
    // A service account's home may be in a system tree (Jenkins in /var/lib/jenkins): what is
    // inside the account's own home (from the user database, not $HOME, which anyone can set)
    // is the user's.
    let home = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .and_then(|u| u.dir.canonicalize().ok());
    let in_own_home = home.as_deref().is_some_and(|h| {
        canonical.starts_with(h)
            && canonical != h
            && !SYSTEM_TREES.iter().any(|t| h == Path::new(t))
            && !SYSTEM_DIRS
                .iter()
                .any(|t| h == Path::new(t) && *t != "/root")
    });
    if let Some(tree) = SYSTEM_TREES.iter().find(|d| canonical.starts_with(d))
        && !in_own_home
    {
        return Err(format!(
            "it is inside the system tree `{tree}`, where steady clears nothing; point the cache elsewhere to have steady clear it"
        ));
    }
    let is_ancestor_of = |other: Option<PathBuf>| {
        other
            .and_then(|o| o.canonicalize().ok())
            .is_some_and(|o| o.starts_with(canonical))
    };
    if is_ancestor_of(crate::env::home_dir()) {
        return Err("it is your home directory or one of its parents".into());
    }
    if home_dirs().iter().any(|h| h == canonical) {
        return Err("it is a user's home directory".into());
    }
    if is_ancestor_of(std::env::current_dir().ok()) {
        return Err("it is the working directory or one of its parents".into());
    }
    Ok(())
}

/// Every home directory in `/etc/passwd`, resolved.
fn home_dirs() -> Vec<PathBuf> {
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(':').nth(5))
        .filter(|h| h.len() > 1)
        .filter_map(|h| Path::new(h).canonicalize().ok())
        .collect()
}

/// The installer's markers that ordinary directories do not have.
fn distinctive(installer: &Installer) -> Vec<&'static str> {
    installer
        .cache
        .markers
        .iter()
        .copied()
        .filter(|m| !COMMON_NAMES.contains(m))
        .collect()
}

/// Whether the entries `names` of a directory show it is `installer`'s cache: one entry only
/// that installer makes, two of its markers, or nothing but entries of its kinds. A marker
/// with a `/` (`cache/download`) names a path below the root, which `exists` looks up.
fn is_positively(installer: &Installer, names: &[String], exists: &dyn Fn(&str) -> bool) -> bool {
    let markers = installer.cache.markers;
    let matches = |m: &str| {
        if m.contains('/') {
            exists(m)
        } else {
            names.iter().any(|n| remove::wildcard(m, n))
        }
    };
    if distinctive(installer).iter().any(|m| matches(m)) {
        return true;
    }
    if markers.iter().filter(|m| matches(m)).count() >= 2 {
        return true;
    }
    !names.is_empty()
        && names
            .iter()
            .all(|n| markers.iter().any(|m| remove::wildcard(m, n)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::installer::{BUNDLER, PIP, UV};

    #[test]
    fn hostile_cache_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let canary = dir.path().join("canary");
        std::fs::create_dir(&canary).unwrap();
        std::fs::write(canary.join("keep"), "x").unwrap();
        std::fs::create_dir(canary.join("archive-v0")).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&canary, &link).unwrap();
        let unmarked = dir.path().join("unmarked");
        std::fs::create_dir(&unmarked).unwrap();
        std::fs::write(unmarked.join("photo.jpg"), "x").unwrap();
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let trailing = PathBuf::from(format!("{}/", link.display()));
        let dotted = link.join(".");
        let up = canary.join("../link");
        for bad in [
            Path::new(""),
            Path::new("/"),
            Path::new("relative"),
            Path::new("/usr"),
            Path::new("/usr/local/bin"),
            Path::new("/var/lib"),
            Path::new("/dev/shm"),
            &link,
            &trailing,
            &dotted,
            &up,
            &unmarked,
            &empty,
            &canary.join("keep"),
        ] {
            assert!(
                check_cleanable(&UV, bad).is_err(),
                "{} should be refused",
                bad.display()
            );
        }
        if let Some(home) = crate::env::home_dir().filter(|h| h.is_dir()) {
            assert!(check_cleanable(&UV, &home).is_err());
            assert!(check_cleanable(&UV, home.parent().unwrap_or(Path::new("/"))).is_err());
        }
        let uv_cache = dir.path().join("uvc");
        std::fs::create_dir_all(uv_cache.join("archive-v0")).unwrap();
        let ok = check_cleanable(&UV, &uv_cache).unwrap();
        assert_eq!(ok.path, uv_cache.canonicalize().unwrap());
        assert!(
            check_cleanable(&UV, &PathBuf::from(format!("{}/", uv_cache.display()))).is_ok(),
            "a trailing slash on a real directory is that directory"
        );
        assert!(
            check_cleanable(&PIP, &uv_cache).is_err(),
            "a uv cache is not pip's"
        );
    }

    #[test]
    fn one_common_name_is_not_enough() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("p");
        std::fs::create_dir_all(project.join("git")).unwrap();
        std::fs::write(project.join("README"), "x").unwrap();
        assert!(check_cleanable(&BUNDLER, &project).is_err());
        let cache = dir.path().join("c");
        for e in ["compact_index", "gems"] {
            std::fs::create_dir_all(cache.join(e)).unwrap();
        }
        assert!(check_cleanable(&BUNDLER, &cache).is_ok());
        let only = dir.path().join("only");
        std::fs::create_dir_all(only.join("gems")).unwrap();
        assert!(
            check_cleanable(&BUNDLER, &only).is_ok(),
            "nothing but bundler's kinds"
        );
    }
}
