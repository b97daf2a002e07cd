//! Checks every entry of an installer's cache after a corruption signal, so that damage the
//! installer did not report is found too: a `uv cache clean` killed part way can leave a
//! package half-deleted with its `METADATA` intact, which uv then installs with files missing
//! and exit 0. Each check names the damaged packages; the healthy entries stay warm. For uv the
//! same check also runs after a success, on the entries of what was installed only
//! (`uv_installed`, `uv_installed_damaged`), because that damage never fails the install.

use std::path::{Path, PathBuf};

use crate::installer::{Layout, normalize};

/// The packages whose entries in a cache of this layout are damaged.
pub fn damaged(layout: Layout, cache: &Path) -> Vec<String> {
    match layout {
        Layout::UvArchive => uv_archive(cache),
        Layout::PipWheels => pip_wheels(cache),
    }
}

/// uv: each `archive-v0/<id>` entry is an unpacked wheel whose `*.dist-info/RECORD` lists
/// every file it holds. An entry is damaged when its `METADATA` or `RECORD` is missing or a
/// listed file is gone.
pub fn uv_archive(cache: &Path) -> Vec<String> {
    uv_archive_of(cache, |_| true)
}

/// [`uv_archive`] for the entries of the packages `wanted` accepts (by normalized name) only.
/// Reads one directory listing per entry of the cache, and the RECORD of the wanted ones.
pub fn uv_archive_of(cache: &Path, wanted: impl Fn(&str) -> bool) -> Vec<String> {
    let mut damaged = Vec::new();
    let Ok(entries) = std::fs::read_dir(cache.join("archive-v0")) else {
        return damaged;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let root = entry.path();
        let Some((name, dist_info)) = dist_info_of(&root) else {
            continue;
        };
        if wanted(&name) && !damaged.contains(&name) && entry_is_damaged(&root, &dist_info) {
            damaged.push(name);
        }
    }
    damaged.sort();
    damaged
}

/// The check after a successful install: which of these packages (normalized names) have a
/// damaged archive entry. The entries are found through uv's own pointers to them, the links
/// below `wheels-v*/<kind>/[<16 hex>/]<name>/` (wheels) and `sdists-v*/…/<name>/` (wheels
/// built from sdists) that point into `archive-v0`, so the cost follows what was installed,
/// not the size of the cache. Every entry a name points at is checked (all indexes, versions
/// and builds: a superset of the one installed). A name with no pointer (a layout this does
/// not know) is looked for by [`uv_archive_of`]. Returns the damaged names and how many were
/// found by that scan.
pub fn uv_installed_damaged(cache: &Path, names: &[String]) -> (Vec<String>, usize) {
    let mut entries: Vec<PathBuf> = Vec::new();
    let mut unresolved = Vec::new();
    let roots = pointer_roots(cache);
    for name in names {
        let before = entries.len();
        for dir in roots.iter().map(|r| r.join(name)).filter(|d| d.is_dir()) {
            collect_links(cache, &dir, 4, &mut entries);
        }
        if entries.len() == before {
            unresolved.push(name.clone());
        }
    }
    let mut damaged: Vec<String> = Vec::new();
    for root in &entries {
        if let Some((name, dist_info)) = dist_info_of(root)
            && names.contains(&name)
            && !damaged.contains(&name)
            && entry_is_damaged(root, &dist_info)
        {
            damaged.push(name);
        }
    }
    if !unresolved.is_empty() {
        for n in uv_archive_of(cache, |n| unresolved.iter().any(|u| u == n)) {
            if !damaged.contains(&n) {
                damaged.push(n);
            }
        }
    }
    damaged.sort();
    (damaged, unresolved.len())
}

/// The directories that hold uv's per-package pointer directories: `<bucket>/<kind>` and
/// `<bucket>/<kind>/<16 hex>` for every `wheels-v*` and `sdists-v*` bucket.
fn pointer_roots(cache: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let buckets = std::fs::read_dir(cache).into_iter().flatten().flatten();
    for bucket in buckets.filter(|b| {
        let n = b.file_name();
        let n = n.to_string_lossy();
        n.starts_with("wheels-v") || n.starts_with("sdists-v")
    }) {
        for kind in std::fs::read_dir(bucket.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let kind = kind.path();
            let hashes = std::fs::read_dir(&kind).into_iter().flatten().flatten();
            out.extend(
                hashes
                    .filter(|h| {
                        let n = h.file_name();
                        n.len() == 16 && n.to_string_lossy().bytes().all(|b| b.is_ascii_hexdigit())
                    })
                    .map(|h| h.path()),
            );
            out.push(kind);
        }
    }
    out
}

/// The `archive-v0` entries that links below `dir` (to `depth` levels) point at.
fn collect_links(cache: &Path, dir: &Path, depth: u32, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_symlink() {
            let Ok(target) = std::fs::read_link(e.path()) else {
                continue;
            };
            let mut parts = target.components().map(|c| c.as_os_str());
            if parts.any(|c| c == "archive-v0")
                && let Some(id) = parts.next()
            {
                let entry = cache.join("archive-v0").join(id);
                if !out.contains(&entry) {
                    out.push(entry);
                }
            }
        } else if kind.is_dir() && depth > 0 {
            collect_links(cache, &e.path(), depth - 1, out);
        }
    }
}

/// The normalized package name and the `*.dist-info` directory name of an archive entry.
fn dist_info_of(root: &Path) -> Option<(String, String)> {
    let dist_info = std::fs::read_dir(root)
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".dist-info"))?;
    let name = dist_info
        .trim_end_matches(".dist-info")
        .rsplit_once('-')
        .map_or(dist_info.as_str(), |(n, _)| n);
    Some((normalize(name), dist_info))
}

fn entry_is_damaged(root: &Path, dist_info: &str) -> bool {
    let info = root.join(dist_info);
    if !info.join("METADATA").is_file() {
        return true;
    }
    let Ok(record) = std::fs::read_to_string(info.join("RECORD")) else {
        return true;
    };
    record.lines().filter_map(record_path).any(|rel| {
        // Paths outside the entry (`../`) or absolute ones are not the cache's to check.
        let inside = !rel.starts_with('/') && !rel.split('/').any(|seg| seg == "..");
        inside && std::fs::symlink_metadata(root.join(rel)).is_err()
    })
}

/// The path field of one RECORD line (CSV: the path may be quoted, with `""` for `"`).
fn record_path(line: &str) -> Option<String> {
    let line = line.trim_end_matches('\r');
    if line.is_empty() {
        return None;
    }
    if let Some(rest) = line.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    out.push('"');
                } else {
                    return Some(out);
                }
            } else {
                out.push(c);
            }
        }
        None
    } else {
        line.split(',').next().map(str::to_owned)
    }
}

/// What a successful uv install says it installed, as normalized names: its ` + name==1.0`
/// lines (` ~ ` for a reinstall), under an `Installed N packages` line. `None` when the output
/// cannot say: uv was quiet (`-q`), or the list was cut from the kept tail. `Some(empty)` when
/// it installed nothing (`Audited`, `Checked`).
pub fn uv_installed(output: &str) -> Option<Vec<String>> {
    let plain = strip_ansi(output);
    let mut count = None;
    let mut names = Vec::new();
    let mut nothing = false;
    for line in plain.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Installed ") {
            count = rest.split(' ').next().and_then(|n| n.parse::<usize>().ok());
        } else if t.starts_with("Audited ") || t.starts_with("Checked ") {
            nothing = true;
        } else if let Some(rest) = line
            .strip_prefix(" + ")
            .or_else(|| line.strip_prefix(" ~ "))
            && let Some((name, _)) = rest.split_once("==")
        {
            let name = normalize(name.trim());
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    match count {
        Some(n) if names.len() >= n => Some(names),
        Some(_) => None,
        None if nothing && names.is_empty() => Some(names),
        None => None,
    }
}

/// Drops terminal escape sequences (`ESC [ … letter`), which uv prints when steady gives it a
/// terminal.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// pip: the wheels it built, under `wheels/`. A wheel is damaged when it is not a readable zip
/// (no end-of-central-directory record).
pub fn pip_wheels(cache: &Path) -> Vec<String> {
    let mut damaged = Vec::new();
    let mut stack = vec![cache.join("wheels")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(kind) = e.file_type() else { continue };
            let path = e.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && path.extension().is_some_and(|x| x == "whl")
                && !is_zip(&path)
            {
                let file = e.file_name().to_string_lossy().into_owned();
                let name = normalize(file.split('-').next().unwrap_or(&file));
                if !damaged.contains(&name) {
                    damaged.push(name);
                }
            }
        }
    }
    damaged.sort();
    damaged
}

/// A zip ends with an end-of-central-directory record (`PK\x05\x06`) within its last 64 KiB
/// plus 22 bytes (the longest comment).
fn is_zip(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(len) = f.metadata().map(|m| m.len()) else {
        return false;
    };
    if len < 22 {
        return false;
    }
    let back = len.min(65_535 + 22);
    let mut tail = vec![0u8; back as usize];
    f.seek(SeekFrom::End(-(back as i64))).is_ok()
        && f.read_exact(&mut tail).is_ok()
        && tail.windows(4).any(|w| w == b"PK\x05\x06")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(cache: &Path, id: &str, name: &str, files: &[&str], record: &[&str]) {
        let root = cache.join("archive-v0").join(id);
        let info = root.join(format!("{name}-1.0.dist-info"));
        std::fs::create_dir_all(&info).unwrap();
        for f in files {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        let mut lines: Vec<String> = record.iter().map(|r| format!("{r},sha256=abc,1")).collect();
        lines.push(format!("{name}-1.0.dist-info/RECORD,,"));
        std::fs::write(info.join("RECORD"), lines.join("\n")).unwrap();
    }

    #[test]
    fn uv_entries_missing_files_or_metadata_are_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path();
        let ok = ["ok/__init__.py", "ok-1.0.dist-info/METADATA"];
        entry(c, "a", "ok", &ok, &ok);
        let silent = [
            "Silent_Pkg/__init__.py",
            "Silent_Pkg-1.0.dist-info/METADATA",
        ];
        entry(
            c,
            "b",
            "Silent_Pkg",
            &silent,
            &[silent[0], silent[1], "Silent_Pkg/data.py"],
        );
        entry(
            c,
            "c",
            "loud",
            &["loud/__init__.py"],
            &["loud/__init__.py", "loud-1.0.dist-info/METADATA"],
        );
        let quoted = ["q/a,b.py", "q-1.0.dist-info/METADATA"];
        entry(
            c,
            "d",
            "q",
            &quoted,
            &["\"q/a,b.py\"", quoted[1], "../../bin/tool"],
        );
        assert_eq!(
            uv_archive(c),
            vec!["loud".to_owned(), "silent-pkg".to_owned()]
        );
    }

    #[test]
    fn only_the_wanted_uv_entries_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path();
        let files = ["a/__init__.py", "a-1.0.dist-info/METADATA"];
        entry(c, "x", "a", &files[1..], &files);
        let files = ["b/__init__.py", "b-1.0.dist-info/METADATA"];
        entry(c, "y", "b", &files[1..], &files);
        assert_eq!(uv_archive(c), ["a", "b"]);
        assert_eq!(uv_archive_of(c, |n| n == "b"), ["b"]);
        assert!(uv_archive_of(c, |_| false).is_empty());
    }

    #[test]
    fn installed_entries_are_found_through_uvs_pointers() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path();
        let a = [
            "alpha/__init__.py",
            "alpha/data.py",
            "alpha-1.0.dist-info/METADATA",
        ];
        entry(c, "A", "alpha", &[a[0], a[2]], &a);
        let b = ["beta/__init__.py", "beta-1.0.dist-info/METADATA"];
        entry(c, "B", "beta", &b, &b);
        let g = ["gamma/__init__.py", "gamma-1.0.dist-info/METADATA"];
        entry(c, "G", "gamma", &g[1..], &g);
        let link = |at: &str, target: &str| {
            let p = c.join(at);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, p).unwrap();
        };
        link(
            "wheels-v9/index/0123456789abcdef/alpha/1.0-py3-none-any",
            "../../../../archive-v0/A",
        );
        link(
            "sdists-v12/index/0123456789abcdef/beta/1.0/rev/beta-1.0-py3-none-any",
            "../../../../../../archive-v0/B",
        );
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // alpha and beta through their pointers; gamma, with none, by a scan.
        assert_eq!(
            uv_installed_damaged(c, &names(&["alpha", "beta", "gamma"])),
            (vec!["alpha".to_owned(), "gamma".to_owned()], 1)
        );
        assert_eq!(uv_installed_damaged(c, &names(&["beta"])), (Vec::new(), 0));
    }

    #[test]
    fn what_uv_says_it_installed() {
        let out = "Resolved 3 packages in 1ms\nInstalled 3 packages in 7ms\n + alpha==1.0\n + Beta_Pkg==2.0 (from file:///w/b)\n ~ gamma==1.0\n - old==0.1\n";
        assert_eq!(
            uv_installed(out),
            Some(vec!["alpha".into(), "beta-pkg".into(), "gamma".into()])
        );
        let colored = "Installed \u{1b}[1m1 package\u{1b}[0m in 3ms\n \u{1b}[32m+\u{1b}[39m \u{1b}[1malpha\u{1b}[0m\u{1b}[2m==1.0\u{1b}[0m\n";
        assert_eq!(uv_installed(colored), Some(vec!["alpha".into()]));
        assert_eq!(
            uv_installed("Audited 3 packages in 1ms\n"),
            Some(Vec::new())
        );
        assert_eq!(uv_installed(""), None, "quiet: cannot tell");
        assert_eq!(
            uv_installed("Installed 5 packages in 1ms\n + a==1\n"),
            None,
            "the list was cut"
        );
    }

    #[test]
    fn pip_wheels_that_are_not_zips_are_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path().join("wheels/ab/cd");
        std::fs::create_dir_all(&w).unwrap();
        std::fs::write(w.join("bad_pkg-1.0-py3-none-any.whl"), "garbage").unwrap();
        let mut good = vec![0u8; 100];
        good.extend_from_slice(b"PK\x05\x06");
        good.extend_from_slice(&[0u8; 18]);
        std::fs::write(w.join("good-1.0-py3-none-any.whl"), good).unwrap();
        assert_eq!(pip_wheels(dir.path()), vec!["bad-pkg".to_owned()]);
    }
}
