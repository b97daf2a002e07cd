//! The held-locks hand-down: steady marks the locks it holds in the command's environment
//! ([`HELD_ENV`]), so that a nested steady on the same key (an npm postinstall running pip, a
//! wrapped function inside a wrapped script) goes ahead instead of waiting for its ancestor.
//!
//! One `<pid> <key>` line per lock. The key is the canonical path's bytes, with `%`, control
//! bytes (a newline above all) and DEL written as `%XX`, so that every byte a path may hold
//! round-trips. An entry is trusted only when its pid is one of our ancestors *and* that
//! process really holds the lock: an flock on the path, or on its fallback lock file, as the
//! kernel shows it in `/proc/locks` (read only here, where an entry matches: the nested case,
//! never the common path). A remote lock cannot be seen locally; its entry is trusted when the
//! ancestor is a steady that holds a lock (its in-memory marker).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::fallback::lock_file_name;
use super::holders::{markers_of, open_files, proc_locks};
use super::{HELD_ENV, Locks};
use crate::ui;

impl Locks {
    /// The value of [`HELD_ENV`] for the command: the entries inherited from enclosing steady
    /// processes that are still our ancestors, plus ours. `None` when there is nothing to say.
    pub fn held_env(&self) -> Option<OsString> {
        if self.held.is_empty() && self.nested.is_empty() && self.remote_id.is_none() {
            return None;
        }
        // The ancestors are read from /proc only when there are inherited entries to check.
        let mut entries: Vec<(i32, Vec<u8>)> = match std::env::var_os(HELD_ENV) {
            Some(v) => {
                let ancestors = ancestors();
                (parse_held(&v).into_iter())
                    .filter(|(pid, _)| ancestors.contains(pid))
                    .collect()
            }
            None => Vec::new(),
        };
        let me = std::process::id() as i32;
        for id in self.held.iter().map(|l| &l.id).chain(&self.remote_id) {
            if !entries.iter().any(|(_, k)| k == id) {
                entries.push((me, id.clone()));
            }
        }
        let mut out = Vec::new();
        for (i, (pid, key)) in entries.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(format!("{pid} ").as_bytes());
            out.extend(encode(key));
        }
        Some(OsString::from_vec(out))
    }
}

/// `key` with `%`, control bytes and DEL as `%XX`.
pub(super) fn encode(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len());
    for &b in key {
        if b == b'%' || b < 0x20 || b == 0x7f {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

/// The inverse of [`encode`]; `None` for a malformed escape.
pub(super) fn decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'%' {
            let hex = std::str::from_utf8(text.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    Some(out)
}

/// `<pid> <key>` lines of [`HELD_ENV`], keys decoded.
pub(super) fn parse_held(v: &OsStr) -> Vec<(i32, Vec<u8>)> {
    v.as_bytes()
        .split(|b| *b == b'\n')
        .filter_map(|l| {
            let sp = l.iter().position(|b| *b == b' ')?;
            let pid = std::str::from_utf8(&l[..sp]).ok()?.parse().ok()?;
            Some((pid, decode(&l[sp + 1..])?))
        })
        .collect()
}

/// What an ancestor must hold for its entry to be trusted.
pub(super) enum Proof<'a> {
    /// An flock on this path, or on its fallback lock file.
    Local(&'a Path),
    /// A lock beyond this machine: the ancestor is a steady holding a lock.
    Remote,
}

/// The pid of an enclosing steady that holds `id`. An inherited entry counts only while that
/// steady is still one of our ancestors (a daemon the command left behind, or a process that
/// copied the environment, must not skip the lock once that steady is gone) and while it
/// really holds the lock (an entry naming any ancestor, pid 1 or a shell, proves nothing).
pub(super) fn held_by_ancestor(id: &[u8], proof: Proof) -> Option<i32> {
    let v = std::env::var_os(HELD_ENV)?;
    let named: Vec<i32> = parse_held(&v)
        .into_iter()
        .filter(|(_, k)| k == id)
        .map(|(pid, _)| pid)
        .collect();
    if named.is_empty() {
        return None;
    }
    let ancestors = ancestors();
    for pid in named {
        if !ancestors.contains(&pid) {
            continue;
        }
        let holds = match proof {
            Proof::Local(path) => holds_flock(pid, path),
            Proof::Remote => markers_of(pid).iter().any(|m| m.held),
        };
        if holds {
            return Some(pid);
        }
        ui::detail(&format!(
            "{HELD_ENV} names pid {pid}, an ancestor, but it does not hold that lock; taking it"
        ));
    }
    None
}

/// Whether `pid` holds an flock on `path` itself or on a fallback lock file for it.
fn holds_flock(pid: i32, path: &Path) -> bool {
    let held: Vec<_> = proc_locks()
        .into_iter()
        .filter(|l| l.pid == pid && !l.waiting)
        .collect();
    if held.is_empty() {
        return false;
    }
    if let Ok(m) = std::fs::metadata(path)
        && held.iter().any(|l| l.is_on(m.dev(), m.ino()))
    {
        return true;
    }
    let name = lock_file_name(path);
    open_files(pid).iter().any(|f| {
        let target = Path::new(f.target.as_os_str());
        let in_steady_dir = target
            .parent()
            .and_then(Path::file_name)
            .and_then(OsStr::to_str)
            .is_some_and(|d| d == "steady" || d.starts_with("steady-"));
        target.file_name() == Some(OsStr::new(&name))
            && in_steady_dir
            && held.iter().any(|l| l.is_on(f.dev, f.ino))
    })
}

/// Our parent, its parent, and so on up to (not including) pid 1.
pub(super) fn ancestors() -> Vec<i32> {
    let mut out = Vec::new();
    let mut pid = std::os::unix::process::parent_id() as i32;
    while pid > 1 && out.len() < 4096 && !out.contains(&pid) {
        out.push(pid);
        match parent_of(pid) {
            Some(p) => pid = p,
            None => break,
        }
    }
    out
}

pub(super) fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.get(stat.rfind(')')? + 2..)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_entries_parse() {
        let v = OsStr::new("12 /a/b\nnot a line\n34 /c d/e\n56 /x%0Ay%25z\n");
        assert_eq!(
            parse_held(v),
            vec![
                (12, b"/a/b".to_vec()),
                (34, b"/c d/e".to_vec()),
                (56, b"/x\ny%z".to_vec())
            ]
        );
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (1..=255u8).collect();
        let enc = encode(&all);
        assert!(!enc.contains(&b'\n'));
        assert_eq!(decode(&enc), Some(all));
        assert_eq!(decode(b"%4"), None);
    }
}
