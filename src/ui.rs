//! steady's own lines on stderr. stdout belongs to the command. One voice: every line says
//! `steady: what happened`, and where the user can do something about it, a separate
//! `hint: what to do` line follows. `-q` keeps only errors (and the hints that follow them),
//! `-v` adds the detail lines.
//!
//! Under GitHub Actions (`GITHUB_ACTIONS=true`) a warning (a retry, a clean) is written as one
//! `::warning title=steady::…` line and an error (the final failure: gave up, hung, timed out,
//! a bad option) as one `::error title=steady::…` line instead of the plain line: the log
//! shows an annotation line as the plain line would read, and the run's summary page lists
//! it, so writing both would say everything twice.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// How much steady says on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

static LEVEL: AtomicU8 = AtomicU8::new(1);

pub fn set_verbosity(v: Verbosity) {
    LEVEL.store(v as u8, Ordering::Relaxed);
}

fn level() -> u8 {
    LEVEL.load(Ordering::Relaxed)
}

/// The last line steady printed was an error, so a hint that follows it belongs to it and is
/// kept under `-q`.
static AFTER_ERROR: AtomicBool = AtomicBool::new(false);

fn line(text: &str) {
    AFTER_ERROR.store(false, Ordering::Relaxed);
    let _ = writeln!(std::io::stderr().lock(), "steady: {text}");
}

/// A line shown unless `-q`: waiting, retrying, cleaning.
pub fn status(text: &str) {
    if level() >= Verbosity::Normal as u8 {
        line(text);
    }
}

/// A line shown whatever the verbosity, never as an annotation: what introduces the command's
/// own output that steady shows on its behalf (`--output on-failure`).
pub fn always(text: &str) {
    line(text);
}

/// A warning, shown unless `-q`: a retry, a clean, something that did not go as planned but
/// did not end the run. Under GitHub Actions, one `::warning::` annotation line instead.
pub fn warn(text: &str) {
    if level() >= Verbosity::Normal as u8 {
        if github_actions() {
            AFTER_ERROR.store(false, Ordering::Relaxed);
            let _ = writeln!(std::io::stderr().lock(), "{}", annotation("warning", text));
        } else {
            line(text);
        }
    }
}

/// Detail shown with `-v`.
pub fn detail(text: &str) {
    if level() >= Verbosity::Verbose as u8 {
        line(text);
    }
}

/// An error, always shown, also under `-q`: what ended the run (gave up after the last
/// attempt, a hang, a timeout, a bad option, a missing command). Under GitHub Actions, one
/// `::error::` annotation line instead.
pub fn error(text: &str) {
    if github_actions() {
        let _ = writeln!(std::io::stderr().lock(), "{}", annotation("error", text));
    } else {
        let _ = writeln!(std::io::stderr().lock(), "steady: {text}");
    }
    AFTER_ERROR.store(true, Ordering::Relaxed);
}

/// What the user can do about the line before: `hint: …`, shown unless `-q`, and under `-q`
/// too when it follows an error.
pub fn hint(text: &str) {
    if level() >= Verbosity::Normal as u8 || AFTER_ERROR.load(Ordering::Relaxed) {
        let _ = writeln!(std::io::stderr().lock(), "hint: {text}");
    }
}

/// A GitHub Actions workflow command: `::warning title=steady::text`, with the characters the
/// runner would take for the end of the line or an escape spelled as it wants them.
fn annotation(kind: &str, text: &str) -> String {
    let text = text
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    format!("::{kind} title=steady::{text}")
}

/// A duration as people write it: `750ms`, `12s`, `3m20s`.
pub fn human(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let s = d.as_secs_f64();
        if s < 10.0 && !ms.is_multiple_of(1000) {
            format!("{s:.1}s")
        } else {
            format!("{}s", d.as_secs())
        }
    } else {
        let s = d.as_secs();
        if s.is_multiple_of(60) {
            format!("{}m", s / 60)
        } else {
            format!("{}m{}s", s / 60, s % 60)
        }
    }
}

fn github_actions() -> bool {
    std::env::var_os(crate::env::GITHUB_ACTIONS).is_some_and(|v| v == "true")
}

/// Under GitHub Actions, folds a retry's output into a collapsible group in the log.
pub fn group_start(title: &str) {
    if github_actions() {
        let _ = writeln!(std::io::stderr().lock(), "::group::steady: {title}");
    }
}

pub fn group_end() {
    if github_actions() {
        let _ = writeln!(std::io::stderr().lock(), "::endgroup::");
    }
}

/// The closest of `candidates` to a word the user typed, when it is close enough to be a
/// slip of the fingers (`stauts` → `status`): at most one edit in four letters, two in
/// longer words, a swap of two neighbours counting as one.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = if word.chars().count() <= 4 { 1 } else { 2 };
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d > 0 && *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and transpositions
/// of neighbours, each one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// A command line as a shell would read it back.
pub fn command_line(argv: &[std::ffi::OsString]) -> String {
    shell_words::join(argv.iter().map(|a| a.to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_escape_what_the_runner_would_misread() {
        assert_eq!(
            annotation("error", "gave up: 100% of 3\nnext"),
            "::error title=steady::gave up: 100%25 of 3%0Anext"
        );
    }

    #[test]
    fn did_you_mean_catches_slips_only() {
        let subs = ["init", "completions", "doctor", "status"];
        assert_eq!(did_you_mean("stauts", &subs), Some("status"));
        assert_eq!(did_you_mean("statsu", &subs), Some("status"));
        assert_eq!(did_you_mean("docter", &subs), Some("doctor"));
        assert_eq!(did_you_mean("completion", &subs), Some("completions"));
        assert_eq!(did_you_mean("int", &subs), Some("init"));
        assert_eq!(did_you_mean("status", &subs), None);
        assert_eq!(did_you_mean("uv", &subs), None);
        assert_eq!(did_you_mean("make", &subs), None);
        assert_eq!(did_you_mean("test", &subs), None);
    }
}
