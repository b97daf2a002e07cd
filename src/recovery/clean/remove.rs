//! Clearing cache entries that no installer command clears (cargo's registry, pnpm's store,
//! gem's downloads, one Go module), safely (reliability.md R24): an entry is first renamed
//! to a trash directory beside it (`renameat2` with `RENAME_NOREPLACE`), so the installer
//! never sees it half-deleted, then deleted by a walk that works relative to open directories,
//! never follows a symlink (a link is removed as a link) and never crosses into another
//! filesystem. An entry that cannot be renamed because it is a mount point (`EBUSY`, or
//! `EXDEV` across filesystems) is emptied in place instead. The cache root itself keeps its
//! inode (its children move, it stays), so steady's flock on it and its owner and mode
//! survive. A trash directory left by a killed run is removed by the next run
//! (`sweep_trash`). Callers check the root with `recover::check_cleanable` (R23) first; there
//! is no `rm` anywhere.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::sys;

/// Names of trash directories: `.steady-trash-<pid>-<n>` inside the cache root, or
/// `.<root name>.steady-trash-<pid>-<n>` beside it.
const TRASH: &str = ".steady-trash-";

/// What a removal did, for the `-v` line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Entries removed (files, links, directory trees).
    pub entries: usize,
    /// Directories emptied in place because they are mount points.
    pub emptied_in_place: usize,
    /// Directories left alone because another filesystem is mounted there.
    pub other_filesystems: usize,
}

impl Removed {
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} entr{}",
            self.entries,
            if self.entries == 1 { "y" } else { "ies" }
        );
        if self.emptied_in_place > 0 {
            s.push_str(&format!(
                ", {} mount point(s) emptied in place",
                self.emptied_in_place
            ));
        }
        if self.other_filesystems > 0 {
            s.push_str(&format!(
                ", {} other filesystem(s) left alone",
                self.other_filesystems
            ));
        }
        s
    }
}

/// Asked before every file or directory a removal deletes; an error stops the removal there
/// (the lock that keeps others out of the cache was lost).
pub type Guard<'g> = &'g mut dyn FnMut() -> io::Result<()>;

/// A removal in progress: what it did so far, and its guard.
struct Walk<'g> {
    done: Removed,
    guard: Guard<'g>,
}

impl<'g> Walk<'g> {
    fn new(guard: Guard<'g>) -> Walk<'g> {
        Walk {
            done: Removed::default(),
            guard,
        }
    }

    fn check(&mut self) -> io::Result<()> {
        (self.guard)()
    }
}

impl std::ops::Deref for Walk<'_> {
    type Target = Removed;
    fn deref(&self) -> &Removed {
        &self.done
    }
}

impl std::ops::DerefMut for Walk<'_> {
    fn deref_mut(&mut self) -> &mut Removed {
        &mut self.done
    }
}

/// Removes `entries` (paths relative to the cache root `root`, found at `cache`; `""` is
/// everything in it).
pub fn clear(root: &OwnedFd, cache: &Path, entries: &[&str], guard: Guard) -> io::Result<Removed> {
    let root = sys::open_dir_at(root.as_fd(), OsStr::new("."))?;
    let dev = sys::fstat(std::os::fd::AsRawFd::as_raw_fd(&root))?.st_dev;
    let mut done = Walk::new(guard);
    for entry in entries {
        if entry.is_empty() {
            clear_root(cache, &root, dev, &mut done)?;
            continue;
        }
        let rel = Path::new(entry);
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            continue;
        };
        let Some(dir) = open_below(&root, parent)? else {
            continue;
        };
        remove_entry(dir.as_fd(), name, root.as_fd(), dev, &mut done)?;
    }
    Ok(done.done)
}

/// Removes the entries of each package named by `templates` (see
/// `installer::PackageClean::Paths`).
pub fn remove_packages(
    root: &OwnedFd,
    templates: &[&str],
    packages: &[String],
    guard: Guard,
) -> io::Result<Removed> {
    let root = sys::open_dir_at(root.as_fd(), OsStr::new("."))?;
    let dev = sys::fstat(std::os::fd::AsRawFd::as_raw_fd(&root))?.st_dev;
    let mut done = Walk::new(guard);
    for package in packages {
        for template in templates {
            let expanded = template
                .replace("{name}", package)
                .replace("{goesc}", &go_escape(package));
            let segments: Vec<&str> = expanded.split('/').collect();
            let Some((last, dirs)) = segments.split_last() else {
                continue;
            };
            let mut level: Vec<OwnedFd> = vec![sys::open_dir_at(root.as_fd(), OsStr::new("."))?];
            for seg in dirs {
                let mut next = Vec::new();
                for d in &level {
                    let names = if *seg == "*" {
                        sys::list_dir(d.as_fd())?
                    } else {
                        vec![OsString::from(seg)]
                    };
                    for n in names {
                        if let Some(child) = same_device_dir(d.as_fd(), &n, dev)? {
                            next.push(child);
                        }
                    }
                }
                level = next;
            }
            for d in &level {
                for n in sys::list_dir(d.as_fd())? {
                    if entry_matches(last, &n) {
                        remove_entry(d.as_fd(), &n, root.as_fd(), dev, &mut done)?;
                    }
                }
            }
        }
    }
    Ok(done.done)
}

/// Removes the entries of the cache root `root` whose names match one of `patterns` (a
/// row's markers, see `wildcard`), and nothing else.
pub fn clear_matching(root: &OwnedFd, patterns: &[&str], guard: Guard) -> io::Result<Removed> {
    let root = sys::open_dir_at(root.as_fd(), OsStr::new("."))?;
    let dev = sys::fstat(std::os::fd::AsRawFd::as_raw_fd(&root))?.st_dev;
    let mut done = Walk::new(guard);
    for name in sys::list_dir(root.as_fd())? {
        let Some(text) = name.to_str() else { continue };
        if text.starts_with(TRASH) || !patterns.iter().any(|p| wildcard(p, text)) {
            continue;
        }
        remove_entry(root.as_fd(), &name, root.as_fd(), dev, &mut done)?;
    }
    Ok(done.done)
}

/// Removes trash left in or beside `cache` by runs that are gone (killed before they finished
/// deleting it); returns how many. A trash of a live steady is its own business.
pub fn sweep_trash(cache: &Path) -> usize {
    let mut swept = 0;
    let Ok(root) = sys::open_dir_nofollow(cache) else {
        return 0;
    };
    let Ok(st) = sys::fstat(std::os::fd::AsRawFd::as_raw_fd(&root)) else {
        return 0;
    };
    let mut unguarded = || Ok(());
    let mut done = Walk::new(&mut unguarded);
    let own = |dir: BorrowedFd, prefix: &str, swept: &mut usize, done: &mut Walk| {
        for name in sys::list_dir(dir).unwrap_or_default() {
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(prefix))
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            let mine = sys::lstat_at(dir, &name).is_ok_and(|s| {
                s.st_uid == sys::euid() && s.st_mode & libc::S_IFMT == libc::S_IFDIR
            });
            if mine
                && pid != std::process::id() as i32
                && !sys::pid_exists(pid)
                && delete_tree(dir, &name, st.st_dev, done).is_ok()
            {
                *swept += 1;
            }
        }
    };
    own(root.as_fd(), TRASH, &mut swept, &mut done);
    if let (Some(parent), Some(base)) = (cache.parent(), cache.file_name())
        && let Ok(pfd) = sys::open_dir_nofollow(parent)
            .or_else(|_| std::fs::File::open(parent).map(OwnedFd::from))
    {
        own(
            pfd.as_fd(),
            &format!(".{}{TRASH}", base.to_string_lossy()),
            &mut swept,
            &mut done,
        );
    }
    swept
}

/// A trash name no one else uses: pid, then a counter and the clock.
fn trash_name(prefix: &str) -> OsString {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}{TRASH}{}-{}{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
    .into()
}

/// Moves every child of the root into a fresh trash directory beside the root (or, where the
/// parent is not writable, inside it), then deletes the trash. Children that cannot move
/// (a mount point, another filesystem) are emptied where they are.
fn clear_root(cache: &Path, root: &OwnedFd, dev: u64, done: &mut Walk) -> io::Result<()> {
    let base = cache
        .file_name()
        .map(|b| format!(".{}", b.to_string_lossy()))
        .unwrap_or_default();
    let beside = cache
        .parent()
        .and_then(|p| std::fs::File::open(p).ok())
        .map(OwnedFd::from);
    let (trash_parent, trash) = match beside {
        Some(p) => {
            let name = trash_name(&base);
            match sys::mkdir_at(p.as_fd(), &name, 0o700) {
                Ok(()) => (p, name),
                Err(_) => inside_trash(root)?,
            }
        }
        None => inside_trash(root)?,
    };
    let trash_fd = sys::open_dir_at(trash_parent.as_fd(), &trash)?;
    let trash_dev = sys::fstat(std::os::fd::AsRawFd::as_raw_fd(&trash_fd))?.st_dev;
    for name in sys::list_dir(root.as_fd())? {
        if name == trash {
            continue;
        }
        match sys::rename_noreplace(root.as_fd(), &name, trash_fd.as_fd(), &name) {
            Ok(()) => done.entries += 1,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EXDEV | libc::EBUSY)) => {
                done.entries += 1;
                delete_tree(root.as_fd(), &name, dev, done)?;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    if trash_dev != dev {
        // The root is a mount point: nothing could move out of it, all was deleted in place.
        done.emptied_in_place += 1;
    }
    delete_tree(
        trash_parent.as_fd(),
        &trash,
        trash_dev,
        &mut Walk::new(&mut *done.guard),
    )
}

fn inside_trash(root: &OwnedFd) -> io::Result<(OwnedFd, OsString)> {
    let name = trash_name("");
    sys::mkdir_at(root.as_fd(), &name, 0o700)?;
    let again = sys::open_dir_at(root.as_fd(), OsStr::new("."))?;
    Ok((again, name))
}

/// Opens `rel` below `root` one component at a time without following symlinks; `None`
/// when it does not exist (or is not a real directory: nothing of ours to clear there).
fn open_below(root: &OwnedFd, rel: &Path) -> io::Result<Option<OwnedFd>> {
    let mut dir = sys::open_dir_at(root.as_fd(), OsStr::new("."))?;
    for comp in rel.components() {
        let std::path::Component::Normal(name) = comp else {
            continue;
        };
        match sys::open_dir_at(dir.as_fd(), name) {
            Ok(d) => dir = d,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::ELOOP | libc::ENOTDIR)
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Some(dir))
}

/// The directory `name` in `dir`, if it is a real directory on the cache's filesystem.
fn same_device_dir(dir: BorrowedFd, name: &OsStr, dev: u64) -> io::Result<Option<OwnedFd>> {
    match sys::lstat_at(dir, name) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR && st.st_dev == dev => {
            sys::open_dir_at(dir, name).map(Some)
        }
        Ok(_) => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes one entry: a file or symlink is unlinked; a directory is renamed to a trash
/// directory in the cache root and deleted there, or emptied in place when it is a mount
/// point.
fn remove_entry(
    dir: BorrowedFd,
    name: &OsStr,
    root: BorrowedFd,
    dev: u64,
    done: &mut Walk,
) -> io::Result<()> {
    let st = match sys::lstat_at(dir, name) {
        Ok(st) => st,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    done.entries += 1;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return unlink(dir, name, false);
    }
    if st.st_dev != dev {
        done.other_filesystems += 1;
        return Ok(());
    }
    let trash = trash_name("");
    match sys::rename_noreplace(dir, name, root, &trash) {
        Ok(()) => delete_tree(root, &trash, dev, done),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EXDEV | libc::EBUSY)) => {
            let d = sys::open_dir_at(dir, name)?;
            done.emptied_in_place += 1;
            delete_contents(d.as_fd(), dev, done)
        }
        Err(e) => Err(e),
    }
}

/// Deletes `name` in `dir` and everything below it, on filesystem `dev` only.
fn delete_tree(dir: BorrowedFd, name: &OsStr, dev: u64, done: &mut Walk) -> io::Result<()> {
    done.check()?;
    let st = match sys::lstat_at(dir, name) {
        Ok(st) => st,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return unlink(dir, name, false);
    }
    if st.st_dev != dev {
        // Another filesystem is mounted here: not ours to delete.
        done.other_filesystems += 1;
        return Ok(());
    }
    let child = sys::open_dir_at(dir, name)?;
    let opened = sys::fstat(std::os::fd::AsRawFd::as_raw_fd(&child))?;
    if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino) {
        return Err(io::Error::other(format!(
            "`{}` changed while it was being deleted",
            name.to_string_lossy()
        )));
    }
    delete_contents(child.as_fd(), dev, done)?;
    drop(child);
    unlink(dir, name, true)
}

fn delete_contents(dir: BorrowedFd, dev: u64, done: &mut Walk) -> io::Result<()> {
    let names = match sys::list_dir(dir) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
            sys::make_dir_writable(dir)?;
            sys::list_dir(dir)?
        }
        Err(e) => return Err(e),
    };
    for name in names {
        delete_tree(dir, &name, dev, done)?;
    }
    Ok(())
}

/// Unlinks, making the directory writable first where it is read-only (Go's module cache).
fn unlink(dir: BorrowedFd, name: &OsStr, is_dir: bool) -> io::Result<()> {
    match sys::unlink_at(dir, name, is_dir) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
            sys::make_dir_writable(dir)?;
            sys::unlink_at(dir, name, is_dir)
        }
        Err(e) => Err(e),
    }
}

/// Whether `name` matches the last segment of a template: literal, or with one `{version}`
/// standing for a version (a digit, or `v` and a digit, then a `.`, as in `1.0.18` or
/// `v1.2.3`), so `sha-1-0.10.0.crate` is not taken for a version of `sha`.
fn entry_matches(pattern: &str, name: &OsStr) -> bool {
    let name = name.as_bytes();
    let Some((prefix, suffix)) = pattern.split_once("{version}") else {
        return name == pattern.as_bytes();
    };
    let (prefix, suffix) = (prefix.as_bytes(), suffix.as_bytes());
    if name.len() < prefix.len() + suffix.len()
        || !name.starts_with(prefix)
        || !name.ends_with(suffix)
    {
        return false;
    }
    let version = &name[prefix.len()..name.len() - suffix.len()];
    let version = version.strip_prefix(b"v").unwrap_or(version);
    let digits = version.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && version.get(digits) == Some(&b'.') && !version.contains(&b'/')
}

/// A shell-style pattern with `*` (any run of characters) against a name (cache markers).
pub fn wildcard(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| wildcard(rest, &tail[i..]))
        }
    }
}

/// A module path as Go's module cache spells it on disk: each capital letter becomes `!` and
/// the lowercase letter.
fn go_escape(module: &str) -> String {
    let mut out = String::with_capacity(module.len());
    for c in module.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn open(p: &Path) -> OwnedFd {
        sys::open_dir_nofollow(p).unwrap()
    }

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "x").unwrap();
    }

    fn canary(dir: &Path) -> std::path::PathBuf {
        let c = dir.join("canary");
        touch(&c.join("sub/keep"));
        c
    }

    #[test]
    fn clears_named_entries_and_nothing_else() {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().join("cargo");
        touch(&home.join("registry/cache/idx-1/itoa-1.0.0.crate"));
        touch(&home.join("registry/src/idx-1/itoa-1.0.0/src/lib.rs"));
        touch(&home.join("bin/cargo-foo"));
        touch(&home.join("config.toml"));
        let done = clear(
            &open(&home),
            &home,
            &["registry/cache", "registry/src", "git/db"],
            &mut || Ok(()),
        )
        .unwrap();
        assert_eq!(done.entries, 2);
        assert!(!home.join("registry/cache").exists() && !home.join("registry/src").exists());
        assert!(home.join("bin/cargo-foo").exists() && home.join("config.toml").exists());
        let left: Vec<_> = std::fs::read_dir(&home)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            !left.iter().any(|n| n.to_string_lossy().contains(TRASH)),
            "trash left: {left:?}"
        );
    }

    #[test]
    fn symlinks_are_removed_as_links_and_their_targets_stay() {
        let t = tempfile::tempdir().unwrap();
        let canary = canary(t.path());
        let store = t.path().join("store");
        touch(&store.join("files/00/abc"));
        std::os::unix::fs::symlink(&canary, store.join("files/link")).unwrap();
        std::os::unix::fs::symlink(&canary, store.join("top-link")).unwrap();
        // A symlinked intermediate component is not walked through either.
        std::os::unix::fs::symlink(&canary, store.join("registry")).unwrap();
        clear(&open(&store), &store, &["registry/sub"], &mut || Ok(())).unwrap();
        clear(&open(&store), &store, &[""], &mut || Ok(())).unwrap();
        assert!(canary.join("sub/keep").exists(), "the canary was touched");
        assert!(store.is_dir(), "the root stays");
        assert_eq!(std::fs::read_dir(&store).unwrap().count(), 0);
        let beside: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!beside.iter().any(|n| n.contains(TRASH)), "{beside:?}");
    }

    #[test]
    fn read_only_trees_are_deleted() {
        let t = tempfile::tempdir().unwrap();
        let m = t.path().join("mod");
        touch(&m.join("example.com/!foo@v1.0.0/a/b.go"));
        for d in [
            "example.com/!foo@v1.0.0/a",
            "example.com/!foo@v1.0.0",
            "example.com",
        ] {
            std::fs::set_permissions(m.join(d), std::fs::Permissions::from_mode(0o555)).unwrap();
        }
        touch(&m.join("cache/download/example.com/!foo/@v/v1.0.0.zip"));
        touch(&m.join("cache/download/example.com/!foobar/@v/v1.0.0.zip"));
        let done = remove_packages(
            &open(&m),
            &["cache/download/{goesc}", "{goesc}@{version}"],
            &["example.com/Foo".into()],
            &mut || Ok(()),
        )
        .unwrap();
        assert_eq!(done.entries, 2);
        assert!(!m.join("example.com/!foo@v1.0.0").exists());
        assert!(!m.join("cache/download/example.com/!foo").exists());
        assert!(
            m.join("cache/download/example.com/!foobar").exists(),
            "another module stays"
        );
    }

    #[test]
    fn package_templates_match_versions_only() {
        let v = |p: &str, n: &str| entry_matches(p, OsStr::new(n));
        assert!(v(
            "{name}-{version}.crate".replace("{name}", "itoa").as_str(),
            "itoa-1.0.18.crate"
        ));
        assert!(
            !v("sha-{version}.crate", "sha-1-0.10.0.crate"),
            "the crate sha-1 is not sha"
        );
        assert!(!v("foo-{version}.crate", "foo-bar-1.0.0.crate"));
        assert!(v("m@{version}", "m@v1.2.3"));
        assert!(!v("m@{version}", "m@latest"));
        let t = tempfile::tempdir().unwrap();
        let c = t.path();
        touch(&c.join("registry/cache/a-1/itoa-1.0.18.crate"));
        touch(&c.join("registry/cache/b-2/itoa-0.4.8.crate"));
        touch(&c.join("registry/cache/a-1/itoa-extra-1.0.0.crate"));
        touch(&c.join("registry/src/a-1/itoa-1.0.18/src/lib.rs"));
        let done = remove_packages(
            &open(c),
            &[
                "registry/cache/*/{name}-{version}.crate",
                "registry/src/*/{name}-{version}",
            ],
            &["itoa".into()],
            &mut || Ok(()),
        )
        .unwrap();
        assert_eq!(done.entries, 3);
        assert!(c.join("registry/cache/a-1/itoa-extra-1.0.0.crate").exists());
        assert!(
            wildcard("wheels-v*", "wheels-v8")
                && wildcard("*.zip", "a.zip")
                && wildcard("*@*", "a@1")
                && !wildcard("*.zip", "a.tgz")
        );
        assert_eq!(
            go_escape("github.com/BurntSushi/toml"),
            "github.com/!burnt!sushi/toml"
        );
    }

    #[test]
    fn a_failing_guard_stops_the_removal() {
        let t = tempfile::tempdir().unwrap();
        let c = t.path().join("c");
        for i in 0..20 {
            touch(&c.join(format!("registry/cache/f{i}")));
        }
        let mut asked = 0;
        let mut guard = || {
            asked += 1;
            if asked > 3 {
                Err(io::Error::other("lost the lock"))
            } else {
                Ok(())
            }
        };
        let err = clear(&open(&c), &c, &["registry/cache"], &mut guard).unwrap_err();
        assert_eq!(err.to_string(), "lost the lock");
        assert_eq!(asked, 4, "nothing more was deleted once the guard failed");
    }

    #[test]
    fn trash_of_a_dead_run_is_swept() {
        let t = tempfile::tempdir().unwrap();
        let cache = t.path().join("c");
        std::fs::create_dir(&cache).unwrap();
        // A pid that cannot exist (above pid_max) stands for a run that was killed.
        let dead = t.path().join(format!(".c{TRASH}99999999-1"));
        let dead_inside = cache.join(format!("{TRASH}99999999-2"));
        let live = cache.join(format!("{TRASH}{}-3", std::process::id()));
        for d in [&dead, &dead_inside, &live] {
            touch(&d.join("x/y"));
        }
        assert_eq!(sweep_trash(&cache), 2);
        assert!(!dead.exists() && !dead_inside.exists());
        assert!(live.exists(), "our own trash is not swept by ourselves");
    }
}
