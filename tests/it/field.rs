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
    /// The class `steady doctor --explain-output` gives the same body, command and ending.
    explained: String,
}

/// `steady doctor --explain-output BODY --ending EXIT -- COMMAND` in `work`: its stdout.
fn explain(ctx: &Ctx, work: &Path, body: &Path, exit: &str, command: &[String]) -> String {
    let out = run(ctx
        .steady()
        .current_dir(work)
        .args(["doctor", "--explain-output"])
        .arg(body)
        .args(["--ending", exit, "--"])
        .args(command));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
}

/// The class on the `class:` line of an explanation.
fn explained_class(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("class: "))
        .map(|c| c.split(" (").next().unwrap_or(c).to_owned())
        .unwrap_or_else(|| format!("(no class line in: {text})"))
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
    let explained = explained_class(&explain(ctx, &work, &body, &e.exit, &e.command));
    Outcome {
        explained,
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
    let mut disagree = Vec::new();
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
        if o.explained != o.got {
            disagree.push(format!(
                "  {}: the run says {}, doctor --explain-output says {}",
                e.name, o.got, o.explained
            ));
        }
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
        disagree.is_empty(),
        "the explanation must give the class the run gives:\n{}",
        disagree.join("\n")
    );
    assert!(
        misses.is_empty() && fixed.is_empty(),
        "{summary}\nmisses:\n{}\n\nknown misses that are right now (drop them from known-misses.txt): {fixed:?}",
        misses.join("\n")
    );
}

/// One corpus file's body, without its headers, as a user's log would be.
fn body_file(ctx: &Ctx, name: &str) -> PathBuf {
    let e = load().into_iter().find(|e| e.name == name).unwrap();
    let p = ctx.path(&format!("tmp/{}", name.replace('/', "-")));
    std::fs::write(&p, e.body).unwrap();
    p
}

#[test]
fn doctor_explains_which_signature_won_and_why() {
    let ctx = Ctx::new();
    // yarn 1: ENOSPC, then its misleading network line (yarnpkg/yarn#7081).
    let log = body_file(&ctx, "yarn/enospc-misreported-network.txt");
    let text = explain(
        &ctx,
        &ctx.path("work"),
        &log,
        "1",
        &["yarn".into(), "install".into()],
    );
    assert!(
        text.contains("read with yarn's signatures and the shared ones"),
        "{text}"
    );
    let first = text
        .lines()
        .find(|l| l.starts_with("  1. "))
        .unwrap_or_default();
    assert!(
        first.contains("-> disk full [decisive, shared"),
        "the full disk decides: {text}"
    );
    assert!(
        text.contains("\"trouble with your network connection\" -> network [plain, yarn")
            && text.contains("loses to 1: a plain signature ranks below a decisive one"),
        "the network line is shown losing, with the reason: {text}"
    );
    assert!(text.contains("class: disk full"), "{text}");
    assert!(text.contains("action: stop: the disk is full"), "{text}");

    // apt's lock outranks the shared EAGAIN text on the same line by origin.
    let log = body_file(&ctx, "apt/lock-frontend-eagain.txt");
    let text = explain(
        &ctx,
        &ctx.path("work"),
        &log,
        "100",
        &["apt-get".into(), "upgrade".into()],
    );
    assert!(
        text.contains("loses to 1: the shared table ranks below the installer"),
        "{text}"
    );
    assert!(text.contains("class: installer lock timeout"), "{text}");

    // An unsupported lock says where to move the cache.
    let log = body_file(&ctx, "micromamba/could-not-set-lock-eio.txt");
    let text = explain(
        &ctx,
        &ctx.path("work"),
        &log,
        "1",
        &["micromamba".into(), "install".into(), "x".into()],
    );
    assert!(text.contains("class: lock unsupported"), "{text}");
    assert!(
        text.contains("hint: set CONDA_PKGS_DIRS to a local disk"),
        "{text}"
    );

    // No command: only the shared table, and it says so; stdin works.
    let mut child = ctx
        .steady()
        .args(["doctor", "--explain-output", "-", "--ending", "signal:KILL"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"   Compiling lumen v0.1.0\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(text.contains("the shared signatures only"), "{text}");
    assert!(
        text.contains("1. the ending") && text.contains("class: resource exhaustion"),
        "a SIGKILL steady did not send: {text}"
    );

    // A bad ending is a usage error, not an explanation.
    let out = run(ctx
        .steady()
        .args(["doctor", "--explain-output"])
        .arg(&log)
        .args(["--ending", "sometimes"]));
    assert_eq!(code(&out), 125, "{}", stderr(&out));
}

/// apt's "dpkg was interrupted" (openhab/openhabian#952) is repaired with the command apt
/// names, once, and the retry succeeds; without a repair it would only be retried.
#[test]
fn an_interrupted_dpkg_is_repaired_with_the_command_apt_names() {
    let ctx = Ctx::new();
    let log = body_file(&ctx, "apt/dpkg-was-interrupted.txt");
    let repaired = ctx.path("tmp/repaired");
    ctx.fixture(
        "apt-get",
        &format!(
            "[ -e '{r}' ] && exit 0\ncat '{log}' >&2\nexit 100\n",
            r = repaired.display(),
            log = log.display()
        ),
    );
    ctx.fixture(
        "dpkg",
        &format!("echo \"$@\" >> '{}'\n", repaired.display()),
    );
    let report = ctx.path("tmp/report.json");
    let out = run(ctx
        .steady()
        .args(["--backoff", "10ms", "--no-lock", "--cache"])
        .arg(ctx.cache())
        .arg("--report")
        .arg(&report)
        .args(["--", "apt-get", "install", "-y", "curl"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&repaired).unwrap(),
        "--configure -a\n",
        "dpkg was run once, as apt says"
    );
    let json = std::fs::read_to_string(&report).unwrap();
    assert_eq!(
        report_field(&json, "class").as_deref(),
        Some("cache corruption")
    );
    assert!(
        json.contains("ran `dpkg --configure -a`, the repair the installer names; retry"),
        "{json}"
    );
}
