//! The held-locks hand-down: steady marks the locks it holds in the command's environment
//! ([`HELD_ENV`]), so that a nested steady on the same key (an npm postinstall running pip, a
//! wrapped function inside a wrapped script) goes ahead instead of waiting for its ancestor.

use std::ffi::{OsStr, OsString};

use super::{HELD_ENV, Locks};

impl Locks {
    /// The value of [`HELD_ENV`] for the command: the entries inherited from enclosing steady
    /// processes that are still our ancestors, plus ours. `None` when there is nothing to say.
    pub fn held_env(&self) -> Option<OsString> {
        if self.held.is_empty() && self.nested.is_empty() && self.remote_id.is_none() {
            return None;
        }
        let ancestors = ancestors();
        let mut entries: Vec<(i32, String)> = std::env::var_os(HELD_ENV)
            .map(|v| parse_held(&v))
            .unwrap_or_default()
            .into_iter()
            .filter(|(pid, _)| ancestors.contains(pid))
            .collect();
        let me = std::process::id() as i32;
        for key in self.held.iter().map(|l| &l.key).chain(&self.remote_id) {
            if !key.contains('\n') && !entries.iter().any(|(_, k)| k == key) {
                entries.push((me, key.clone()));
            }
        }
        let lines: Vec<String> = entries.iter().map(|(p, k)| format!("{p} {k}")).collect();
        Some(lines.join("\n").into())
    }
}

/// `<pid> <key>` lines of [`HELD_ENV`].
pub(super) fn parse_held(v: &OsStr) -> Vec<(i32, String)> {
    v.to_string_lossy()
        .lines()
        .filter_map(|l| {
            let (pid, key) = l.split_once(' ')?;
            Some((pid.parse().ok()?, key.to_owned()))
        })
        .collect()
}

/// The pid of an enclosing steady that holds `key`. An inherited entry counts only while that
/// steady is still one of our ancestors: a daemon the command left behind, or a process that
/// copied the environment, must not skip the lock once that steady is gone.
pub(super) fn held_by_ancestor(key: &str) -> Option<i32> {
    let v = std::env::var_os(HELD_ENV)?;
    let ancestors = ancestors();
    parse_held(&v)
        .into_iter()
        .find(|(pid, k)| k == key && ancestors.contains(pid))
        .map(|(pid, _)| pid)
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
        let v = OsStr::new("12 /a/b\nnot a line\n34 /c d/e\n");
        assert_eq!(
            parse_held(v),
            vec![(12, "/a/b".to_owned()), (34, "/c d/e".to_owned())]
        );
    }
}
