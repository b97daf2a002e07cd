//! The field corpus (`tests/fixtures/field/`, real messages from public threads) replayed
//! through the real binary: for each file, a fake installer named like the `command` header's
//! program prints the body on stderr and ends as the `exit` header says, under steady with no
//! retry, no clean, no lock and no mitigation; the class in the JSON report must be the file's
//! class. Files listed in `known-misses.txt` (with the reason no signature can be right) must
//! still miss, so a fix is noticed. `steady doctor --explain-output` is checked on corpus files
//! here too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::*;

/// At most this many replays at once: each is a steady and a shell.
const THREADS: usize = 4;

struct Entry {
    name: String,
    installer: String,
    class: String,
    exit: String,
    command: Vec<String>,
    body: String,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/field")
}

fn load() -> Vec<Entry> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .flatten()
        .filter(|d| d.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|f| f.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let name = p
                .strip_prefix(corpus_dir())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let (head, body) = text.split_once("\n\n").expect("headers, blank line, body");
            let header = |key: &str| {
                head.lines()
                    .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
                    .unwrap_or_else(|| panic!("{name}: no {key}"))
                    .trim()
                    .to_owned()
            };
            Entry {
                installer: header("installer"),
                class: header("class"),
                exit: header("exit"),
                command: runnable(&header("command")),
                body: body.to_owned(),
                name,
            }
        })
        .collect()
}

/// The command as steady is given it: without a leading `sudo` and its options, since the test
/// is not root and steady is run under sudo (`sudo steady -- apt-get …`), not the other way.
fn runnable(command: &str) -> Vec<String> {
    let mut words: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
    if words.first().is_some_and(|w| w == "sudo") {
        words.remove(0);
        while words.first().is_some_and(|w| w.starts_with('-')) {
            words.remove(0);
        }
    }
    words
}

fn known_misses() -> BTreeMap<String, String> {
    std::fs::read_to_string(corpus_dir().join("known-misses.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (n, why) = l.split_once(": ").unwrap();
            (n.to_owned(), why.to_owned())
        })
        .collect()
}

/// The corpus class as steady's report spells it (`Failure::name`).
fn steady_class(class: &str) -> &'static str {
    match class {
        "network" => "network",
        "deterministic" => "deterministic",
        "corruption" => "cache corruption",
        "installer-lock" => "installer lock timeout",
        "lock-unsupported" => "lock unsupported",
        "resource" => "resource exhaustion",
        "disk-full" => "disk full",
        "hang-signal" => "hang",
        other => panic!("unknown corpus class {other}"),
    }
}

/// The fake installer: prints the file named by `FIELD_BODY` on stderr, then ends as
/// `FIELD_EXIT` says. Extra arguments (apt gets `-o DPkg::Lock::Timeout=…`) are ignored.
const FAKE: &str = r#"cat "$FIELD_BODY" >&2
case "$FIELD_EXIT" in
  stall) sleep 60; exit 1 ;;
  signal:*) kill -"${FIELD_EXIT#signal:}" $$; sleep 5; exit 1 ;;
  *) exit "$FIELD_EXIT" ;;
esac
"#;

/// The first string value of `key` in the report (one attempt: `--retries 0`).
fn report_field(json: &str, key: &str) -> Option<String> {
    let at = json.find(&format!("\"{key}\": "))? + key.len() + 4;
    let rest = &json[at..];
    let rest = rest.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            c => out.push(c),
        }
    }
    None
}

struct Outcome {
    got: String,
    signature: String,
    stderr: String,
}

fn replay(ctx: &Ctx, n: usize, e: &Entry) -> Outcome {
    let body = ctx.path(&format!("tmp/body-{n}"));
    std::fs::write(&body, &e.body).unwrap();
    let report = ctx.path(&format!("tmp/report-{n}.json"));
    let cache = ctx.path(&format!("cache/{n}"));
    std::fs::create_dir_all(&cache).unwrap();
    let mut cmd: Command = ctx.steady();
    cmd.env("FIELD_BODY", &body)
        .env("FIELD_EXIT", &e.exit)
        .args(["--retries", "0", "--clean", "never", "--no-lock"])
        .args(["--mitigate", "off", "-v", "--cache"])
        .arg(&cache)
        .arg("--report")
        .arg(&report);
    // A yarn 2+ project is told from a yarn 1 one by its `.yarnrc.yml` (the row's marker).
    let work = ctx.path(&format!("work/{}", e.installer));
    std::fs::create_dir_all(&work).unwrap();
    if e.installer == "yarn-berry" {
        std::fs::write(work.join(".yarnrc.yml"), "nodeLinker: node-modules\n").unwrap();
    }
    cmd.current_dir(&work);
    if e.exit == "stall" {
        cmd.args(["--stall", "500ms", "--kill-after", "200ms"]);
    }
    cmd.arg("--").args(&e.command);
    let out = run(&mut cmd);
    let json = std::fs::read_to_string(&report).unwrap_or_default();
    Outcome {
        got: report_field(&json, "class").unwrap_or_else(|| "(no report)".into()),
        signature: report_field(&json, "signature").unwrap_or_else(|| "none".into()),
        stderr: stderr(&out),
    }
}

#[test]
fn the_corpus_gets_its_classes_through_the_binary() {
    let ctx = Ctx::new();
    let entries = load();
    assert!(entries.len() >= 198, "the corpus is there");
    let allowed = known_misses();
    for name in allowed.keys() {
        assert!(
            entries.iter().any(|e| &e.name == name),
            "{name}: no such file"
        );
    }
    let mut programs: Vec<&str> = entries.iter().map(|e| e.command[0].as_str()).collect();
    programs.sort();
    programs.dedup();
    for p in programs {
        ctx.fixture(p, FAKE);
    }

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(e) = entries.get(i) else { break };
                    let o = replay(&ctx, i, e);
                    results.lock().unwrap().push((i, o));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);

    // installer → (files, hits)
    let mut table: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut fixed = Vec::new();
    for (i, o) in &results {
        let e = &entries[*i];
        let want = steady_class(&e.class);
        let hit = o.got == want;
        let row = table.entry(e.installer.as_str()).or_default();
        row.0 += 1;
        row.1 += usize::from(hit);
        let line = format!(
            "  {}: want {want}, got {} (signature: {}){}",
            e.name,
            o.got,
            o.signature,
            if o.got == "(no report)" {
                format!("\n    steady said: {}", o.stderr.trim())
            } else {
                String::new()
            }
        );
        match (hit, allowed.get(&e.name)) {
            (false, None) => misses.push(line),
            (true, Some(_)) => fixed.push(e.name.clone()),
            _ => {}
        }
    }
    let hits: usize = table.values().map(|r| r.1).sum();
    let mut summary = format!(
        "{hits}/{} corpus files get their class ({} known misses allowed)\n\n  {:<12} {:>5} {:>5}\n",
        entries.len(),
        allowed.len(),
        "installer",
        "files",
        "hits"
    );
    for (inst, (files, hit)) in &table {
        summary.push_str(&format!("  {inst:<12} {files:>5} {hit:>5}\n"));
    }
    assert!(
        misses.is_empty() && fixed.is_empty(),
        "{summary}\nmisses:\n{}\n\nknown misses that are right now (drop them from known-misses.txt): {fixed:?}",
        misses.join("\n")
    );
}
