//! `--report FILE`: one JSON record per run, appended to FILE when the run ends (JSON Lines:
//! one record per line, so `STEADY_REPORT` set once keeps every install of a CI job): the
//! command, installer, cache and lock, the mitigations applied, and every attempt with its
//! start, duration, ending, class, matched signature, package and the action steady took
//! after it.
//!
//! Runs at the same time may share the file. The file is opened `O_APPEND` before the command
//! runs (so an unwritable path is found at once), and each record is written whole, as one
//! line, while an `flock` on the file keeps other steadies out: `O_APPEND` alone makes each
//! `write` land at the end, but a large record may take more than one `write` (a signal, a
//! short write), and between two of them another run's record could land; the lock closes that
//! gap for every writer that takes it. A lock that cannot be had within a few seconds (someone
//! else holds it) or at all (a filesystem without locks) does not lose the record: it is then
//! written without it, still in one `write` where the kernel takes it whole.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::recovery::mitigate::Applied;

#[derive(Debug, Default)]
pub struct Report {
    pub command: Vec<String>,
    pub installer: Option<String>,
    pub cache: Option<String>,
    pub lock: Option<String>,
    pub mitigations: Vec<Applied>,
    pub attempts: Vec<AttemptRecord>,
    pub exit_code: u8,
}

#[derive(Debug)]
pub struct AttemptRecord {
    pub number: u32,
    pub started: SystemTime,
    pub duration: Duration,
    /// `exit 2`, `killed by SIGABRT`, `timed out`, …
    pub ending: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub class: Option<&'static str>,
    pub signature: Option<&'static str>,
    pub package: Option<String>,
    /// What steady did next: `retry`, `clean alpha, retry`, `stop: …`.
    pub action: String,
}

fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn opt_string(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.push_str("null"),
    }
}

fn opt_int(out: &mut String, n: Option<i32>) {
    match n {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.push_str("null"),
    }
}

impl Report {
    pub fn to_json(&self) -> String {
        let mut o = String::from("{\"command\": [");
        for (i, w) in self.command.iter().enumerate() {
            if i > 0 {
                o.push_str(", ");
            }
            string(&mut o, w);
        }
        o.push_str("], \"installer\": ");
        opt_string(&mut o, self.installer.as_deref());
        o.push_str(", \"cache\": ");
        opt_string(&mut o, self.cache.as_deref());
        o.push_str(", \"lock\": ");
        opt_string(&mut o, self.lock.as_deref());
        o.push_str(", \"mitigations\": [");
        for (i, m) in self.mitigations.iter().enumerate() {
            if i > 0 {
                o.push_str(", ");
            }
            o.push_str("{\"variable\": ");
            string(&mut o, m.var);
            o.push_str(", \"value\": ");
            string(&mut o, &m.value);
            o.push_str(", \"reason\": ");
            string(&mut o, m.reason);
            o.push_str(", \"upstream\": ");
            string(&mut o, m.upstream);
            o.push('}');
        }
        o.push_str("], \"attempts\": [");
        for (i, a) in self.attempts.iter().enumerate() {
            if i > 0 {
                o.push_str(", ");
            }
            let started = a
                .started
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            let _ = write!(
                o,
                "{{\"number\": {}, \"started_at\": {started:.3}, \"duration_s\": {:.3}, \"ending\": ",
                a.number,
                a.duration.as_secs_f64()
            );
            string(&mut o, &a.ending);
            o.push_str(", \"exit_code\": ");
            opt_int(&mut o, a.exit_code);
            o.push_str(", \"signal\": ");
            opt_int(&mut o, a.signal);
            o.push_str(", \"class\": ");
            opt_string(&mut o, a.class);
            o.push_str(", \"signature\": ");
            opt_string(&mut o, a.signature);
            o.push_str(", \"package\": ");
            opt_string(&mut o, a.package.as_deref());
            o.push_str(", \"action\": ");
            string(&mut o, &a.action);
            o.push('}');
        }
        let _ = writeln!(o, "], \"exit_code\": {}}}", self.exit_code);
        o
    }

    /// Appends the record as one line to `file` (from [`open`]), under an `flock` on it.
    pub fn append(&self, file: &File) -> std::io::Result<()> {
        let line = self.to_json();
        let locked = lock_for_append(file);
        let mut f = file;
        let written = f.write_all(line.as_bytes());
        if locked {
            let _ = file.unlock();
        }
        written
    }
}

/// How long a run waits for another's append before it appends without the lock.
const APPEND_PATIENCE: Duration = Duration::from_secs(5);

/// Takes the report file's `flock`, waiting a little for another run's append; false when it
/// cannot be had (then the record is appended all the same).
fn lock_for_append(file: &File) -> bool {
    let until = Instant::now() + APPEND_PATIENCE;
    loop {
        match file.try_lock() {
            Ok(()) => return true,
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return false,
        }
    }
}

/// Opens (creating it if needed) the report file for appending, before the command runs, so
/// that a path steady cannot write is an error before a long install rather than after it.
pub fn open(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o666)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_and_shape() {
        let r = Report {
            command: vec!["pip".into(), "say \"hi\"\n".into()],
            installer: Some("pip".into()),
            attempts: vec![AttemptRecord {
                number: 1,
                started: SystemTime::UNIX_EPOCH + Duration::from_secs(10),
                duration: Duration::from_millis(1500),
                ending: "exit 1".into(),
                exit_code: Some(1),
                signal: None,
                class: Some("unknown"),
                signature: None,
                package: None,
                action: "stop".into(),
            }],
            exit_code: 1,
            ..Report::default()
        };
        let j = r.to_json();
        assert_eq!(j.lines().count(), 1, "one line per record: {j}");
        assert!(j.ends_with("}\n"), "{j}");
        assert!(j.contains(r#""command": ["pip", "say \"hi\"\n"]"#), "{j}");
        assert!(
            j.contains(r#""started_at": 10.000, "duration_s": 1.500"#),
            "{j}"
        );
        assert!(j.contains(r#""cache": null"#), "{j}");
        assert!(j.trim_end().ends_with("\"exit_code\": 1}"), "{j}");
    }
}
