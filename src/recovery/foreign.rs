//! Foreign writers: an entry of the cache root that vanishes (or is replaced) during an
//! attempt, while steady holds the cache's lock, was removed by someone outside the lock (a
//! `uv cache clean` run without steady): the installer never removes its own buckets during an
//! install. A clean would not help and a full one would only widen the damage, so steady says
//! so, names a process that has the cache open if it finds one, and retries without a clean.

use std::ffi::OsString;
use std::os::unix::fs::DirEntryExt;
use std::path::Path;

use super::{Diagnosis, Failure, FullClean, PackageClean, Recovery};
use crate::{attempt, ui};

impl Recovery<'_> {
    /// Notes the cache root's entries before an attempt (after steady's own clean, if any), so
    /// that a failure can tell whether someone outside the lock removed one meanwhile.
    /// `locked`: steady holds the cache's lock (else others may write, and that is expected).
    pub fn before_attempt(&mut self, locked: bool) {
        let own_clean = self.inv.is_some_and(|inv| {
            let i = inv.installer;
            let mut cleans: Vec<&[&str]> = Vec::new();
            if let FullClean::Command(sub) = i.cache.clean_full {
                cleans.push(sub);
            }
            if let Some(PackageClean::Command(sub)) = i.recovery.clean_package {
                cleans.push(sub);
            }
            inv.subcommand_in(&cleans)
        });
        // A command that is itself a clean removes entries by design.
        self.entries_at_start = self
            .cache
            .as_deref()
            .filter(|_| locked && !own_clean)
            .map(root_entries);
    }

    /// Looks, right after an attempt, for entries of the cache root that vanished while it
    /// ran (steady held the lock throughout): those noted before it that are gone or replaced
    /// now, and those the installer itself named in a "No such file" error (it used them, so
    /// they existed during the attempt) that are gone entirely.
    pub fn after_attempt(&mut self, result: &attempt::AttemptResult) {
        self.vanished.clear();
        let (Some(before), Some(cache)) = (self.entries_at_start.take(), self.cache.clone()) else {
            return;
        };
        if result.ending.succeeded() {
            return;
        }
        let now = root_entries(&cache);
        let mut gone: Vec<String> = before
            .iter()
            .filter(|e| !now.contains(e))
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        for tail in [&result.stdout_tail, &result.stderr_tail] {
            for name in named_missing_entries(&String::from_utf8_lossy(tail), &cache) {
                if !gone.contains(&name) && !cache.join(&name).exists() {
                    gone.push(name);
                }
            }
        }
        self.vanished = gone;
    }

    /// A writer outside steady's lock was seen (now, or earlier in the run for a failure that
    /// looks like its work): said so; the retry then comes without a clean, which would not
    /// help.
    pub(super) fn foreign_writer_seen(&mut self, diag: &Diagnosis) -> bool {
        let vanished = std::mem::take(&mut self.vanished);
        let like_foreign = matches!(diag.failure, Failure::Corruption | Failure::Unknown);
        if !vanished.is_empty() {
            self.foreign_writes += 1;
            self.say_foreign_writer(&vanished);
        } else if self.foreign_writes > 0 && like_foreign {
            // It may have struck again between two looks (an entry made and removed within
            // the attempt leaves no trace): a clean would not help either.
            ui::detail(
                "a writer outside steady's lock was seen earlier in this run; retrying without a clean",
            );
        }
        !vanished.is_empty() || (self.foreign_writes > 0 && like_foreign)
    }

    fn say_foreign_writer(&self, vanished: &[String]) {
        let Some(cache) = self.cache.as_deref() else {
            return;
        };
        let name = self.installer().map_or("the", |i| i.name);
        let shown: Vec<String> = vanished.iter().take(4).map(|v| format!("`{v}`")).collect();
        let more = vanished.len().saturating_sub(shown.len());
        let who = match processes_using(cache).first() {
            Some(pid) => format!(
                "; {} has it open",
                crate::lock::holders::describe_pid(*pid).describe()
            ),
            None => "; no process has it open now".to_owned(),
        };
        ui::warn(&format!(
            "{} vanished from the {name} cache `{}` while steady held its lock: something outside steady's lock is writing to it{who}; retrying without clearing the cache (a clean cannot help)",
            shown.join(", ")
                + &if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                },
            cache.display()
        ));
        ui::hint(
            "run every command that uses this cache through steady (`steady init` wraps them), or give the other one a cache of its own",
        );
    }
}

/// The entries of a cache root as (name, inode), leaving out temporary ones (`.tmp…`), which
/// an installer makes and removes itself.
fn root_entries(cache: &Path) -> Vec<(OsString, u64)> {
    let Ok(dir) = std::fs::read_dir(cache) else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| !e.file_name().as_encoded_bytes().starts_with(b".tmp"))
        .map(|e| (e.file_name(), e.ino()))
        .collect()
}

/// Processes other than steady and its children with their working directory in `cache`, or a
/// file below it open (a steady waiting for the lock has only the directory itself open).
fn processes_using(cache: &Path) -> Vec<i32> {
    // The kernel names open files by their real path.
    let real = std::fs::canonicalize(cache).unwrap_or_else(|_| cache.to_path_buf());
    let cache = real.as_path();
    let me = std::process::id() as i32;
    let Ok(proc) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in proc.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let inside = std::fs::read_link(format!("/proc/{pid}/cwd"))
            .is_ok_and(|c| c.starts_with(cache))
            || std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
                fds.flatten().any(|fd| {
                    std::fs::read_link(fd.path())
                        .is_ok_and(|t| t.starts_with(cache) && t.as_os_str() != cache.as_os_str())
                })
            });
        if inside {
            found.push(pid);
        }
    }
    found
}

/// The first path segment below `cache` of every path under it that `output` names, when the
/// output says a file was not found. Temporary entries count too: the installer made them and
/// was still writing into them.
fn named_missing_entries(output: &str, cache: &Path) -> Vec<String> {
    if !["No such file or directory", "os error 2", "ENOENT"]
        .iter()
        .any(|t| output.contains(t))
    {
        return Vec::new();
    }
    let mut spellings = vec![cache.to_path_buf()];
    if let Ok(real) = std::fs::canonicalize(cache)
        && real != cache
    {
        spellings.push(real);
    }
    let mut names = Vec::new();
    for root in spellings {
        let prefix = format!("{}/", root.display());
        for (at, _) in output.match_indices(&prefix) {
            let rest = &output[at + prefix.len()..];
            let name: String = rest
                .chars()
                .take_while(|c| {
                    !matches!(c, '/' | '`' | '\'' | '"' | ':' | ')') && !c.is_whitespace()
                })
                .collect();
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_names_its_entry_of_the_cache_root() {
        let cache = Path::new("/c/uv");
        let out = "error: Failed to install: alpha-1.0-py3-none-any.whl (alpha==1.0)\n  cause: failed to open file `/c/uv/archive-v0/e1/alpha-1.0.dist-info/METADATA`: No such file or directory (os error 2)";
        assert_eq!(named_missing_entries(out, cache), ["archive-v0"]);
        // Only when something was not found.
        assert!(named_missing_entries("error: bad CRC in `/c/uv/archive-v0/x`", cache).is_empty());
        // uv's own temporary directory, removed under it while it wrote there.
        let tmp = "cause: failed to create directory `/c/uv/.tmpJDEFHq/python/packaging`: No such file or directory (os error 2)";
        assert_eq!(named_missing_entries(tmp, cache), [".tmpJDEFHq"]);
    }
}
