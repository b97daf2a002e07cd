//! `steady doctor --explain-output FILE [--ending E] [-- COMMAND…]`: how steady would classify
//! a failed command's output, so users can check their own logs. The command (or
//! `--installer`) says whose signature table applies; without one only the shared table does.
//! Prints every signature that matches a line, best first, which one decides and why it
//! outranks each of the others (level, origin, the failure kind's weight, the line's position;
//! `recovery::classify::Rank`), the class, and what steady would do next. Reads only the last
//! `TAIL_BYTES` of the file, as a run keeps only that much of the output.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::Path;

use crate::attempt::{Ending, StopReason, TAIL_BYTES};
use crate::exit::Outcome;
use crate::failure::Failure;
use crate::installer::{self, Installer};
use crate::recovery::classify::{self, Match, Origin};
use crate::recovery::{action_words, lock_unsupported_hint};
use crate::ui;

/// Runs the explanation; `ending` is `N`, `signal:NAME`, `stall` or `timeout` (default `1`).
pub fn run(
    file: &Path,
    ending: Option<&str>,
    installer: Option<&str>,
    command: &[OsString],
) -> Outcome {
    let ending = match parse_ending(ending.unwrap_or("1")) {
        Ok(e) => e,
        Err(e) => {
            ui::error(&e);
            return Outcome::SteadyFailed;
        }
    };
    let row = match installer {
        Some(name) => match installer::by_name(name) {
            Some(r) => Some(r),
            None => {
                ui::error(&format!("--installer: no installer called `{name}`"));
                return Outcome::SteadyFailed;
            }
        },
        None if command.is_empty() => None,
        None => installer::identify(command, None).map(|i| i.installer),
    };
    let mut raw = Vec::new();
    let read = if file == Path::new("-") {
        std::io::stdin().read_to_end(&mut raw)
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_end(&mut raw))
    };
    if let Err(e) = read {
        ui::error(&format!("cannot read `{}`: {e}", file.display()));
        return Outcome::SteadyFailed;
    }
    let start = raw.len().saturating_sub(TAIL_BYTES);
    let output = String::from_utf8_lossy(&raw[start..]);
    let mut text = explain(row, command, &ending, &output);
    if start > 0 {
        text.insert_str(
            0,
            &format!(
                "note: only the last {} KiB are read, as a run keeps only that much\n",
                TAIL_BYTES / 1024
            ),
        );
    }
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Outcome::Success
}

/// `1`, `signal:KILL` (or `signal:9`), `stall`, `timeout`.
pub fn parse_ending(s: &str) -> Result<Ending, String> {
    let bad = || format!("--ending `{s}`: expected an exit status, signal:NAME, stall or timeout");
    match s {
        "stall" => Ok(Ending::Stopped(StopReason::Stall)),
        "timeout" => Ok(Ending::Stopped(StopReason::Timeout)),
        _ => match s.strip_prefix("signal:") {
            Some(name) => {
                let name = name.trim_start_matches("SIG").to_ascii_uppercase();
                let n = name.parse::<i32>().ok().or_else(|| {
                    format!("SIG{name}")
                        .parse::<nix::sys::signal::Signal>()
                        .ok()
                        .map(|s| s as i32)
                });
                n.map(Ending::Signaled).ok_or_else(bad)
            }
            None => s.parse().map(Ending::Exited).map_err(|_| bad()),
        },
    }
}

/// The explanation, as printed.
pub fn explain(
    row: Option<&Installer>,
    command: &[OsString],
    ending: &Ending,
    output: &str,
) -> String {
    let mut o = String::new();
    let whose = match row {
        Some(r) => format!("{}'s signatures and the shared ones", r.name),
        None if command.is_empty() => {
            "the shared signatures only (give the command after `--`, or --installer)".into()
        }
        None => format!(
            "the shared signatures only (`{}` is no installer steady knows)",
            ui::command_line(command)
        ),
    };
    let n = output.lines().count();
    let _ = writeln!(
        o,
        "output: {n} line{}, read with {whose}",
        if n == 1 { "" } else { "s" }
    );
    let _ = writeln!(o, "ending: {}", ending.describe());

    if let Some(s) = classify::stalled_on_own_lock(row, ending, output) {
        let _ = writeln!(
            o,
            "\nthe last line is the installer waiting on its own lock (\"{}\"): a lock wait, not a hang",
            s.text
        );
        return finish(o, row, s.failure, Some(s.text), None, &[]);
    }
    if let Some(f) = classify::by_ending(ending) {
        let _ = writeln!(o, "\nthe ending decides by itself: the output is not read");
        return finish(o, row, f, None, None, &[]);
    }
    let found = classify::matches(row, ending, output);
    let d = classify::classify(row, ending, output);
    if found.is_empty() {
        let _ = writeln!(o, "\nno signature matches any line");
        return finish(o, row, d.failure, None, d.package.as_deref(), &[]);
    }
    let _ = writeln!(o, "\nmatches, best first:");
    let best = &found[0];
    for (n, m) in found.iter().enumerate() {
        let _ = writeln!(
            o,
            "  {}. {} {:?} -> {} [{}, {}, weight {}]",
            n + 1,
            place(m),
            m.signature.text,
            m.signature.failure.name(),
            m.signature.level.name(),
            match m.origin {
                Origin::Installer => row.map_or("installer", |r| r.name),
                other => other.name(),
            },
            m.rank.weight
        );
        let _ = writeln!(o, "       {}", shorten(m.line.trim()));
        if n > 0 {
            let _ = writeln!(o, "       loses to 1: {}", why_lost(m, best));
        }
    }
    let _ = writeln!(
        o,
        "\nwinner: {:?} ({}), ranked by level, then the installer's own over the shared table, then the class's weight, then the later line",
        best.signature.text,
        place(best)
    );
    finish(
        o,
        row,
        d.failure,
        Some(best.signature.text),
        d.package.as_deref(),
        d.repair,
    )
}

fn finish(
    mut o: String,
    row: Option<&Installer>,
    failure: Failure,
    signature: Option<&str>,
    package: Option<&str>,
    repair: &[&str],
) -> String {
    let _ = write!(o, "class: {}", failure.name());
    if let Some(s) = signature {
        let _ = write!(o, " (signature {s:?})");
    }
    o.push('\n');
    if let Some(p) = package {
        let _ = writeln!(o, "package: {p}");
    }
    if repair.is_empty() {
        let _ = writeln!(o, "action: {}", action_words(failure));
    } else {
        let _ = writeln!(
            o,
            "action: run `{}`, the repair the installer names (once), then retry",
            repair.join(" ")
        );
    }
    if failure == Failure::LockUnsupported {
        let _ = writeln!(o, "hint: {}", lock_unsupported_hint(row));
    }
    o
}

fn place(m: &Match) -> String {
    match m.origin {
        Origin::Ending => "the ending".into(),
        _ => format!("line {}", m.line_no),
    }
}

/// Why `m` ranks below `best`: the first field of the rank where they differ.
fn why_lost(m: &Match, best: &Match) -> String {
    let (a, b) = (m.rank, best.rank);
    if a.level != b.level {
        format!(
            "a {} signature ranks below a {} one",
            a.level.name(),
            b.level.name()
        )
    } else if a.origin != b.origin {
        format!(
            "the {} table ranks below the {}",
            a.origin.name(),
            b.origin.name()
        )
    } else if a.weight != b.weight {
        format!(
            "{} (weight {}) ranks below {} (weight {})",
            m.signature.failure.name(),
            a.weight,
            best.signature.failure.name(),
            b.weight
        )
    } else if a.line != b.line {
        "same level, origin and weight: the later line wins".into()
    } else {
        "an equal rank on the same line: the earlier signature in the table wins".into()
    }
}

fn shorten(line: &str) -> String {
    const MAX: usize = 160;
    if line.chars().count() <= MAX {
        return line.to_owned();
    }
    let mut s: String = line.chars().take(MAX).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::installer::UV;

    /// astral-sh/uv#15728 (tests/fixtures/field/uv/extract-archive-network-timeout.txt).
    const UV_TIMEOUT: &str = "  × Failed to download `nvidia-cudnn-cu12==9.10.2.21`
  ├─▶ Failed to extract archive: nvidia_cudnn_cu12-9.10.2.21-py3-none-manylinux_2_27_x86_64.whl
  ├─▶ I/O operation failed during extraction
  ╰─▶ Failed to download distribution due to network timeout. Try increasing UV_HTTP_TIMEOUT (current value: 30s).";

    #[test]
    fn says_which_signature_won_and_why() {
        let text = explain(Some(&UV), &[], &Ending::Exited(2), UV_TIMEOUT);
        assert!(
            text.contains("1. line 4 \"due to network timeout\" -> network [plain, uv"),
            "{text}"
        );
        assert!(
            text.contains(
                "2. line 2 \"Failed to extract archive\" -> cache corruption [wrapper, uv"
            ),
            "{text}"
        );
        assert!(
            text.contains("loses to 1: a wrapper signature ranks below a plain one"),
            "{text}"
        );
        assert!(
            text.contains("class: network (signature \"due to network timeout\")"),
            "{text}"
        );
        assert!(text.contains("action: retry"), "{text}");
    }

    #[test]
    fn endings() {
        assert_eq!(parse_ending("2"), Ok(Ending::Exited(2)));
        assert_eq!(
            parse_ending("signal:KILL"),
            Ok(Ending::Signaled(libc::SIGKILL))
        );
        assert_eq!(
            parse_ending("signal:SIGABRT"),
            Ok(Ending::Signaled(libc::SIGABRT))
        );
        assert_eq!(parse_ending("signal:9"), Ok(Ending::Signaled(9)));
        assert!(parse_ending("sometimes").is_err());
        let killed = explain(None, &[], &Ending::Signaled(libc::SIGKILL), "Compiling x\n");
        assert!(killed.contains("1. the ending"), "{killed}");
        assert!(killed.contains("class: resource exhaustion"), "{killed}");
        let timeout = explain(None, &[], &Ending::Stopped(StopReason::Timeout), "x");
        assert!(
            timeout.contains("the ending decides by itself"),
            "{timeout}"
        );
    }
}
