//! Whether a path may be cleared as an installer's cache at all (reliability.md R23). This
//! decides; `remove` acts. Nothing here deletes.

use std::path::{Path, PathBuf};

use crate::installer::{Installer, locate};
use crate::recovery::clean::remove;
use crate::sys;

/// System directories no cache is ever cleared at.
const SYSTEM_DIRS: &[&str] = &[
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/media", "/mnt", "/opt",
    "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
];

/// R23: a cache is cleared only when its path is absolute, a real directory (no symlink at its
/// root), not a system directory, not the home directory or the working directory or one of
/// their ancestors, owned by steady's user (root: by root), and recognisably this installer's
/// cache (its default place, one of its marker files, or empty).
pub fn check_cleanable(installer: &Installer, path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if path.as_os_str().is_empty() {
        return Err("the path is empty".into());
    }
    if !path.is_absolute() {
        return Err("the path is not absolute".into());
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    if meta.file_type().is_symlink() {
        return Err("it is a symlink".into());
    }
    if !meta.is_dir() {
        return Err("it is not a directory".into());
    }
    let canonical = path.canonicalize().map_err(|e| e.to_string())?;
    if SYSTEM_DIRS.iter().any(|d| canonical == Path::new(d)) {
        return Err("it is a system directory".into());
    }
    let is_ancestor_of = |other: Option<PathBuf>| {
        other
            .and_then(|o| o.canonicalize().ok())
            .is_some_and(|o| o.starts_with(&canonical))
    };
    if is_ancestor_of(crate::env::home_dir()) {
        return Err("it is your home directory or one of its parents".into());
    }
    if is_ancestor_of(std::env::current_dir().ok()) {
        return Err("it is the working directory or one of its parents".into());
    }
    let euid = sys::euid();
    if meta.uid() != euid {
        return Err(format!("it is owned by uid {}, not {euid}", meta.uid()));
    }
    let default = locate::default_dir(&installer.cache).and_then(|d| d.canonicalize().ok());
    let names: Vec<String> = std::fs::read_dir(&canonical)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let marked = installer
        .cache
        .markers
        .iter()
        .any(|m| names.iter().any(|n| remove::wildcard(m, n)));
    if default.as_deref() == Some(canonical.as_path()) || marked || names.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "it does not look like a {} cache (none of {} in it)",
            installer.name,
            installer.cache.markers.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::installer::{PIP, UV};

    #[test]
    fn hostile_cache_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let canary = dir.path().join("canary");
        std::fs::create_dir(&canary).unwrap();
        std::fs::write(canary.join("keep"), "x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&canary, &link).unwrap();
        let unmarked = dir.path().join("unmarked");
        std::fs::create_dir(&unmarked).unwrap();
        std::fs::write(unmarked.join("photo.jpg"), "x").unwrap();
        for bad in [
            Path::new(""),
            Path::new("/"),
            Path::new("relative"),
            Path::new("/usr"),
            &link,
            &unmarked,
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
        assert_eq!(check_cleanable(&UV, &uv_cache), Ok(()));
        assert!(
            check_cleanable(&PIP, &uv_cache).is_err(),
            "a uv cache is not pip's"
        );
    }
}
