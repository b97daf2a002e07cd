//! steady's own lines on stderr, always prefixed `steady:`. stdout belongs to the command.
//! `-q` keeps only errors, `-v` adds the detail lines. Under GitHub Actions, warnings are also
//! written as `::warning::` annotations so they show on the run's summary page.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

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

fn line(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "steady: {text}");
}

/// A line shown unless `-q`: waiting, retrying, cleaning.
pub fn status(text: &str) {
    if level() >= Verbosity::Normal as u8 {
        line(text);
    }
}

/// A warning, shown unless `-q`; also an annotation under GitHub Actions.
pub fn warn(text: &str) {
    if level() >= Verbosity::Normal as u8 {
        line(text);
        if github_actions() {
            let _ = writeln!(
                std::io::stderr().lock(),
                "::warning title=steady::{}",
                text.replace('\n', "%0A")
            );
        }
    }
}

/// Detail shown with `-v`.
pub fn detail(text: &str) {
    if level() >= Verbosity::Verbose as u8 {
        line(text);
    }
}

/// An error: always shown.
pub fn error(text: &str) {
    line(text);
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

/// A command line as a shell would read it back.
pub fn command_line(argv: &[std::ffi::OsString]) -> String {
    shell_words::join(argv.iter().map(|a| a.to_string_lossy()))
}
