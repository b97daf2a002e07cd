//! Checks every entry of an installer's cache after a corruption signal, so that damage the
//! installer did not report is found too: a `uv cache clean` killed part way can leave a
//! package half-deleted with its `METADATA` intact, which uv then installs with files missing
//! and exit 0. Each check names the damaged packages; the healthy entries stay warm.

use std::path::Path;

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
    let mut damaged = Vec::new();
    let Ok(entries) = std::fs::read_dir(cache.join("archive-v0")) else {
        return damaged;
    };
    for entry in entries.flatten() {
        let root = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Some(dist_info) = std::fs::read_dir(&root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.ends_with(".dist-info"))
        else {
            continue;
        };
        let name = dist_info
            .trim_end_matches(".dist-info")
            .rsplit_once('-')
            .map_or(dist_info.as_str(), |(n, _)| n)
            .to_owned();
        if entry_is_damaged(&root, &dist_info) && !damaged.contains(&normalize(&name)) {
            damaged.push(normalize(&name));
        }
    }
    damaged.sort();
    damaged
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
