//! `--report FILE`: a JSON record of the run, written when it ends: the command, installer,
//! cache and lock, the mitigations applied, and every attempt with its start, duration,
//! ending, class, matched signature, package and the action steady took after it.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

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
        let mut o = String::from("{\n  \"command\": [");
        for (i, w) in self.command.iter().enumerate() {
            if i > 0 {
                o.push_str(", ");
            }
            string(&mut o, w);
        }
        o.push_str("],\n  \"installer\": ");
        opt_string(&mut o, self.installer.as_deref());
        o.push_str(",\n  \"cache\": ");
        opt_string(&mut o, self.cache.as_deref());
        o.push_str(",\n  \"lock\": ");
        opt_string(&mut o, self.lock.as_deref());
        o.push_str(",\n  \"mitigations\": [");
        for (i, m) in self.mitigations.iter().enumerate() {
            o.push_str(if i > 0 { ",\n    " } else { "\n    " });
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
        o.push_str(if self.mitigations.is_empty() {
            "],\n  \"attempts\": ["
        } else {
            "\n  ],\n  \"attempts\": ["
        });
        for (i, a) in self.attempts.iter().enumerate() {
            o.push_str(if i > 0 { ",\n    " } else { "\n    " });
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
        o.push_str(if self.attempts.is_empty() {
            "]"
        } else {
            "\n  ]"
        });
        let _ = write!(o, ",\n  \"exit_code\": {}\n}}\n", self.exit_code);
        o
    }

    /// Writes the report next to its final name and renames it, so a reader never sees half.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_file_name(format!(
            ".{}.steady-tmp",
            path.file_name()
                .map_or("report".into(), |n| n.to_string_lossy())
        ));
        std::fs::write(&tmp, self.to_json())?;
        std::fs::rename(&tmp, path)
    }
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
        assert!(j.contains(r#""command": ["pip", "say \"hi\"\n"]"#), "{j}");
        assert!(
            j.contains(r#""started_at": 10.000, "duration_s": 1.500"#),
            "{j}"
        );
        assert!(j.contains(r#""cache": null"#), "{j}");
        assert!(j.trim_end().ends_with("\"exit_code\": 1\n}"), "{j}");
    }
}
