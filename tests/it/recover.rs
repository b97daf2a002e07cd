//! Recovery: real uv caches broken loudly and silently are healed by cleaning only the broken
//! entries, a resolution error is not retried and leaves the cache alone, thread exhaustion is
//! retried with lower concurrency and no clean, hostile cache paths are never cleared, the JSON
//! report matches the attempts, and `doctor` explains without running.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// The three packages of every uv bed here.
const ABC: &[&str] = &["alpha", "beta", "gamma"];

fn assert_installed_intact(venv: &Path, pkgs: &[&str]) {
    let missing = missing_in_venv(venv, pkgs);
    assert!(
        missing.is_empty(),
        "installed files listed in RECORD are missing: {missing:?}"
    );
}

#[test]
fn one_broken_entry_is_cleaned_alone_and_the_rest_stay_warm() {
    let Some(bed) = UvBed::new(ABC) else { return };
    std::fs::remove_file(bed.entry("alpha").join("alpha-1.0.dist-info/METADATA")).unwrap();
    let (beta, gamma) = (bed.entry("beta"), bed.entry("gamma"));
    let py = bed.venv("v2");
    let out = bed.steady_install(&py, &["alpha", "beta", "gamma"], &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cleared alpha from the uv cache"),
        "{}",
        stderr(&out)
    );
    assert!(
        beta.exists() && gamma.exists(),
        "healthy entries were cleared too"
    );
    assert!(
        bed.entry("alpha")
            .join("alpha-1.0.dist-info/METADATA")
            .exists(),
        "alpha was not re-cached"
    );
    assert_installed_intact(&bed.ctx.path("v2"), &["alpha", "beta", "gamma"]);
}

#[test]
fn two_broken_entries_heal_in_one_run() {
    let Some(bed) = UvBed::new(ABC) else { return };
    for name in ["alpha", "beta"] {
        std::fs::remove_file(
            bed.entry(name)
                .join(format!("{name}-1.0.dist-info/METADATA")),
        )
        .unwrap();
    }
    let gamma = bed.entry("gamma");
    let py = bed.venv("v2");
    let out = bed.steady_install(&py, &["alpha", "beta", "gamma"], &["--retries", "1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(gamma.exists(), "the healthy entry was cleared");
    assert_installed_intact(&bed.ctx.path("v2"), &["alpha", "beta", "gamma"]);
}

#[test]
fn loud_and_silent_damage_are_both_evicted_and_reinstalled() {
    let Some(bed) = UvBed::new(ABC) else { return };
    std::fs::remove_file(bed.entry("alpha").join("alpha-1.0.dist-info/METADATA")).unwrap();
    // Silent: a module file gone, METADATA kept; uv would install it broken and exit 0.
    std::fs::remove_file(bed.entry("gamma").join("gamma/data.py")).unwrap();
    let beta = bed.entry("beta");
    let py = bed.venv("v2");
    // The danger itself: bare uv installs the silently damaged entry and says all is well.
    let out = run(bed.uv_cmd().args(bed.install_args(&py, &["gamma"])));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        missing_in_venv(&bed.ctx.path("v2"), &["gamma"]),
        ["gamma: gamma/data.py"],
        "uv should have installed gamma with a file missing"
    );
    let out = bed.steady_install(&py, &["alpha", "beta", "gamma"], &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("gamma"),
        "the silent damage was not found: {}",
        stderr(&out)
    );
    assert!(beta.exists(), "the healthy entry was cleared");
    assert!(
        bed.entry("gamma").join("gamma/data.py").exists(),
        "gamma's entry was not replaced"
    );
    assert_installed_intact(&bed.ctx.path("v2"), &["alpha", "beta", "gamma"]);
}

fn cache_listing(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
            // uv records each interpreter it meets; that is uv's doing, not a clean's.
            if !e.path().to_string_lossy().contains("/interpreter-v") {
                out.insert(e.path());
            }
        }
    }
    out
}

#[test]
fn a_resolution_error_is_not_retried_and_the_cache_is_untouched() {
    let Some(bed) = UvBed::new(ABC) else { return };
    let py = bed.venv("v2");
    let before = cache_listing(&bed.ctx.cache());
    let report = bed.ctx.path("report.json");
    let out = bed.steady_install(&py, &["zeta"], &["--report", report.to_str().unwrap()]);
    assert_ne!(code(&out), 0);
    assert!(!stderr(&out).contains("retrying"), "{}", stderr(&out));
    assert_eq!(cache_listing(&bed.ctx.cache()), before, "the cache changed");
    let checked = check_report(
        &report,
        "import sys; assert len(r['attempts']) == 1; a = r['attempts'][0]; assert a['class'] == 'deterministic', a; assert a['action'].startswith('stop'), a",
    );
    assert!(checked.status.success(), "{}", stderr(&checked));
}

/// Runs python3 over the JSON report with `r` bound to it.
fn check_report(report: &Path, code: &str) -> std::process::Output {
    run(Command::new("python3").args([
        "-c",
        &format!(
            "import json; r = json.load(open({:?})); {code}",
            report.to_str().unwrap()
        ),
    ]))
}

#[test]
fn the_report_records_every_attempt() {
    let Some(bed) = UvBed::new(ABC) else { return };
    std::fs::remove_file(bed.entry("alpha").join("alpha-1.0.dist-info/METADATA")).unwrap();
    let py = bed.venv("v2");
    let report = bed.ctx.path("report.json");
    let out = bed.steady_install(&py, &["alpha"], &["--report", report.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let checked = check_report(
        &report,
        "a = r['attempts']; assert len(a) == 2, a; \
         assert a[0]['class'] == 'cache corruption' and a[0]['package'] == 'alpha' and a[0]['exit_code'] == 2, a[0]; \
         assert 'cleared alpha' in a[0]['action'] and a[0]['signature'], a[0]; \
         assert a[1]['class'] is None and a[1]['exit_code'] == 0, a[1]; \
         assert a[1]['started_at'] >= a[0]['started_at'] + a[0]['duration_s'] - 0.01; \
         assert r['exit_code'] == 0 and r['installer'] == 'uv' and r['cache'] and r['lock'], r",
    );
    assert!(
        checked.status.success(),
        "{}\n{}",
        stderr(&checked),
        std::fs::read_to_string(&report).unwrap()
    );
}

/// A fake uv whose first install dies like uv#14462 (thread pool panic, SIGABRT); it records
/// the concurrency it was given and whether anyone cleared its cache.
fn resource_fixture(ctx: &Ctx) {
    ctx.fixture(
        "uv",
        r#"if [ "$1" = cache ]; then echo "$*" >> "$CLEANS"; exit 0; fi
echo "${UV_CONCURRENT_INSTALLS:-unset}" >> "$SEEN"
if [ "$(wc -l < "$SEEN")" -eq 1 ]; then
  echo "memory allocation of 1520 bytes failed" >&2
  echo "thread 'main' panicked: failed to initialize global rayon pool: ThreadPoolBuildError { kind: IOError(Os { code: 11, kind: WouldBlock, message: \"Resource temporarily unavailable\" }) }" >&2
  kill -ABRT $$
fi
exit 0
"#,
    );
}

#[test]
fn thread_exhaustion_is_retried_with_lower_concurrency_and_no_clean() {
    let ctx = Ctx::new();
    resource_fixture(&ctx);
    std::fs::create_dir(ctx.cache().join("archive-v0")).unwrap();
    std::fs::write(ctx.cache().join("archive-v0/canary"), "keep").unwrap();
    let out = run(ctx
        .steady()
        .env("UV_CACHE_DIR", ctx.cache())
        .env("SEEN", ctx.path("seen"))
        .env("CLEANS", ctx.path("cleans"))
        .args(["--backoff", "10ms", "uv", "pip", "install", "x"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let seen: Vec<String> = ctx.read("seen").lines().map(String::from).collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0], "unset");
    let cpus = std::thread::available_parallelism().unwrap().get();
    let lowered: usize = seen[1]
        .parse()
        .expect("UV_CONCURRENT_INSTALLS on the retry");
    assert!(
        lowered >= 1 && lowered <= cpus.div_ceil(2),
        "{lowered} is not lower than {cpus}"
    );
    assert!(
        ctx.read("cleans").is_empty(),
        "thread exhaustion must not clear the cache"
    );
    assert_eq!(
        std::fs::read_to_string(ctx.cache().join("archive-v0/canary")).unwrap(),
        "keep"
    );
    assert!(
        stderr(&out).contains("resource exhaustion"),
        "{}",
        stderr(&out)
    );

    // A value the user chose is never overridden.
    std::fs::write(ctx.path("seen"), "").unwrap();
    let out = run(ctx
        .steady()
        .env("UV_CACHE_DIR", ctx.cache())
        .env("SEEN", ctx.path("seen"))
        .env("CLEANS", ctx.path("cleans"))
        .env("UV_CONCURRENT_INSTALLS", "7")
        .args(["--backoff", "10ms", "uv", "pip", "install", "x"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(ctx.read("seen"), "7\n7\n");
}

/// R23: whatever cache path steady is given, it never clears one that is not recognisably the
/// installer's own; a canary tree stays byte-identical.
#[test]
fn hostile_cache_paths_are_never_cleared() {
    let ctx = Ctx::new();
    let canary = ctx.path("canary");
    std::fs::create_dir_all(canary.join("wheels")).unwrap();
    std::fs::write(canary.join("wheels/precious"), "precious bytes").unwrap();
    std::os::unix::fs::symlink(&canary, ctx.path("link")).unwrap();
    ctx.fixture(
        "pip",
        r#"if [ "$1" = cache ]; then echo "$*" >> "$CLEANS"; exit 0; fi
echo "ERROR: Wheel 'delta' located at /x/delta-1.0-py3-none-any.whl is invalid." >&2
exit 1
"#,
    );
    let home = ctx.home();
    let mut hostile: Vec<(String, PathBuf)> = vec![
        ("a symlink to a canary".into(), ctx.path("link")),
        ("$HOME".into(), home.clone()),
        (
            "$HOME/".into(),
            PathBuf::from(format!("{}/", home.display())),
        ),
        ("~".into(), PathBuf::from("~")),
        ("..".into(), PathBuf::from("..")),
        ("/".into(), PathBuf::from("/")),
    ];
    std::fs::create_dir_all(home.join("wheels")).unwrap();
    let foreign = ctx.path("foreign");
    if nix_is_root() {
        std::fs::create_dir_all(foreign.join("wheels")).unwrap();
        std::fs::write(foreign.join("wheels/theirs"), "theirs").unwrap();
        Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(&foreign)
            .status()
            .unwrap();
        std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o755)).unwrap();
        hostile.push(("another user's directory".into(), foreign.clone()));
    } else {
        skip("a directory of another user needs root to create");
    }
    for (what, path) in &hostile {
        std::fs::write(ctx.path("cleans"), "").unwrap();
        let out = run(ctx
            .steady()
            .env("CLEANS", ctx.path("cleans"))
            .arg("--cache")
            .arg(path)
            .args(["--backoff", "10ms", "--no-lock", "pip", "install", "delta"]));
        assert_eq!(code(&out), 1, "{what}: {}", stderr(&out));
        assert!(
            ctx.read("cleans").is_empty(),
            "{what}: steady asked pip to clear it: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("will not clear"),
            "{what}: {}",
            stderr(&out)
        );
    }
    assert_eq!(
        std::fs::read_to_string(canary.join("wheels/precious")).unwrap(),
        "precious bytes"
    );
    if nix_is_root() {
        assert_eq!(
            std::fs::read_to_string(foreign.join("wheels/theirs")).unwrap(),
            "theirs"
        );
    }
    // The empty path is bad input, refused before anything runs.
    let out = run(ctx
        .steady()
        .args(["--cache", "", "pip", "install", "delta"]));
    assert_eq!(code(&out), 125, "{}", stderr(&out));
}

fn nix_is_root() -> bool {
    // SAFETY-free: read our own effective uid from /proc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

#[test]
fn github_actions_gets_annotations_and_groups() {
    let ctx = Ctx::new();
    std::fs::create_dir(ctx.cache().join("wheels")).unwrap();
    ctx.fixture("pip", "[ \"$1\" = cache ] && exit 0\n[ -e \"$TRIED\" ] && exit 0\ntouch \"$TRIED\"\necho 'ERROR: Wheel '\"'\"'delta'\"'\"' located at /x is invalid.' >&2\nexit 1\n");
    let out = run(ctx
        .steady()
        .env("GITHUB_ACTIONS", "true")
        .env("TRIED", ctx.path("tried"))
        .env("PIP_CACHE_DIR", ctx.cache())
        .args(["--backoff", "10ms", "pip", "install", "delta"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.lines()
            .any(|l| l.starts_with("::warning title=steady::attempt 1 of 3 failed")),
        "{err}"
    );
    assert!(
        err.contains("::group::steady: attempt 2 of 3") && err.contains("::endgroup::"),
        "{err}"
    );
}

#[test]
fn doctor_explains_without_running() {
    let ctx = Ctx::new();
    ctx.fixture("uv", "touch \"$RAN\"\n");
    std::fs::create_dir(ctx.cache().join("archive-v0")).unwrap();
    let out = run(ctx
        .steady()
        .env("UV_CACHE_DIR", ctx.cache())
        .env("RAN", ctx.path("ran"))
        .args([
            "doctor",
            "--timeout",
            "10m",
            "--kill-after",
            "5s",
            "--",
            "uv",
            "pip",
            "install",
            "x",
        ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!ctx.path("ran").exists(), "doctor ran the command");
    let root = ctx.root().canonicalize().unwrap();
    let text = stdout(&out)
        .replace(&root.display().to_string(), "[TMP]")
        .replace(&ctx.root().display().to_string(), "[TMP]");
    // Everything but the machine's facts is fixed.
    let shown: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("facts") && !l.starts_with("filesystem"))
        .collect();
    let expected = [
        "command      uv pip install x",
        "installer    uv: writes the cache or an environment, so steady locks and supervises it",
        "cache        [TMP]/cache ($UV_CACHE_DIR)",
        "lock         flock on `[TMP]/cache`, shared with everyone using this cache; free now",
        "clean        after a failure: `uv cache clean <package>` for a broken entry, else `uv cache clean`",
        "watchdog     timeout 10m, stall 45s, deadline none, retries 2, kill after 5s, back-off 1s to 30s",
        "mitigations  none apply before the first attempt",
        "known        under qemu-user (multi-threaded installs deadlock in futex under qemu-user emulation, astral-sh/uv#6105); \
with a low ulimit -u (the process limit (ulimit -u) leaves too few threads for the default parallelism, astral-sh/uv#14462); \
after a hang (the last attempt hung; a single install worker avoids the known deadlock, astral-sh/uv#6105); \
after running out of threads (the last attempt ran out of threads, processes or file descriptors, astral-sh/uv#14462)",
    ];
    assert_eq!(shown, expected, "\n{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("facts        emulation: no")),
        "{text}"
    );

    let held = hold_flock(&ctx.cache());
    let out = run(ctx
        .steady()
        .env("UV_CACHE_DIR", ctx.cache())
        .args(["doctor", "uv", "sync"]));
    assert!(
        stdout(&out).contains(&format!("held now by pid {}", std::process::id())),
        "{}",
        stdout(&out)
    );
    drop(held);
    let out = run(ctx.steady().args(["doctor", "uv", "run", "pytest"]));
    assert!(
        stdout(&out).contains("read-only, so steady execs it unchanged"),
        "{}",
        stdout(&out)
    );
}

/// R21: a transient failure is retried a bounded number of times, with growing, jittered
/// pauses, and never clears the cache.
#[test]
fn r21_network_failures_back_off_and_never_clean() {
    let ctx = Ctx::new();
    std::fs::create_dir(ctx.cache().join("wheels")).unwrap();
    ctx.fixture(
        "pip",
        r#"if [ "$1" = cache ]; then echo "$*" >> "$CLEANS"; exit 0; fi
date +%s%N >> "$TIMES"
echo "WARNING: Retrying (Retry(total=4, connect=None, read=None)) after connection broken by 'NewConnectionError'" >&2
echo "ERROR: No matching distribution found for six" >&2
exit 1
"#,
    );
    let out = run(ctx
        .steady()
        .env("PIP_CACHE_DIR", ctx.cache())
        .env("TIMES", ctx.path("times"))
        .env("CLEANS", ctx.path("cleans"))
        .args([
            "--retries",
            "3",
            "--backoff",
            "200ms",
            "pip",
            "install",
            "six",
        ]));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let times: Vec<u128> = ctx
        .read("times")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(times.len(), 4, "1 attempt + 3 retries");
    let gaps: Vec<u128> = times
        .windows(2)
        .map(|w| (w[1] - w[0]) / 1_000_000)
        .collect();
    // Pauses are drawn from [d/2, d] with d doubling: 100–200 ms, 200–400 ms, 400–800 ms. The
    // announced pauses show the growth; the time between attempts (which also holds each
    // attempt's own run, longer on a loaded machine) only shows that each pause was kept.
    let err = stderr(&out);
    let announced: Vec<u128> = err
        .lines()
        .filter_map(|l| {
            l.split("retrying in ")
                .nth(1)?
                .strip_suffix("ms")?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(announced.len(), 3, "{err}");
    for (pause, (low, high)) in announced.iter().zip([(100, 200), (200, 400), (400, 800)]) {
        assert!(
            (low..=high).contains(pause),
            "pauses must grow: {announced:?}"
        );
    }
    for (gap, pause) in gaps.iter().zip(&announced) {
        assert!(
            gap >= pause,
            "a pause was cut short: {gaps:?} against {announced:?}"
        );
    }
    assert!(
        ctx.read("cleans").is_empty(),
        "a network failure must not clear the cache"
    );
    assert!(stderr(&out).contains("network"), "{}", stderr(&out));
}

/// R22: the failed attempt's whole tree is dead before the clean starts.
#[test]
fn r22_the_tree_is_dead_before_any_clean() {
    let ctx = Ctx::new();
    std::fs::create_dir(ctx.cache().join("wheels")).unwrap();
    ctx.fixture(
        "pip",
        r#"if [ "$1" = cache ]; then
  if kill -0 "$(cat "$BG")" 2>/dev/null; then echo alive >> "$CLEANS"; else echo dead >> "$CLEANS"; fi
  exit 0
fi
[ -e "$CLEANS" ] && exit 0
setsid sh -c 'sleep 60' & echo $! > "$BG"
echo "ERROR: Wheel 'delta' located at /x/delta-1.0-py3-none-any.whl is invalid." >&2
exit 1
"#,
    );
    let out = run(ctx
        .steady()
        .env("PIP_CACHE_DIR", ctx.cache())
        .env("BG", ctx.path("bg"))
        .env("CLEANS", ctx.path("cleans"))
        .args([
            "--backoff",
            "10ms",
            "--kill-after",
            "1s",
            "pip",
            "install",
            "delta",
        ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        ctx.read("cleans"),
        "dead\n",
        "the clean ran while the failed attempt's tree was alive"
    );
    assert!(!pid_alive(pids_in(&ctx.path("bg"))[0]));
}

/// R22: uv's own lock is honoured: while another process holds uv's cache lock shared, the
/// clean waits (here until uv's own lock timeout) and deletes nothing underneath it.
#[test]
fn r22_uvs_own_lock_is_honoured_by_the_clean() {
    let Some(bed) = UvBed::new(ABC) else { return };
    let flock = require("flock");
    let Some(flock) = flock else { return };
    std::fs::remove_file(bed.entry("alpha").join("alpha-1.0.dist-info/METADATA")).unwrap();
    let beta = bed.entry("beta");
    let mut holder = Command::new(flock)
        .arg("-s")
        .arg(bed.ctx.cache().join(".lock"))
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    let py = bed.venv("v2");
    let out = run(bed
        .steady_cmd(&py, &["alpha", "beta"], &["--retries", "1"])
        .env("UV_LOCK_TIMEOUT", "2"));
    let _ = holder.kill();
    let _ = holder.wait();
    assert_ne!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("uv cache clean"),
        "the clean's failure was not reported: {}",
        stderr(&out)
    );
    assert!(
        beta.exists(),
        "the clean deleted entries under another process's lock"
    );
}

/// R25: steady never deletes through rm(1) or a shell: cleans go through the installers' own
/// commands or `remove.rs`'s symlink-safe walk (an installer's own `rm` subcommand, as in
/// `npm cache rm`, is fine). The one shell steady starts runs the user's `--on-retry`.
#[test]
fn r25_no_rm_and_no_shell_in_the_source() {
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    assert!(files.len() > 10, "{files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for bad in [
            "Command::new(\"rm\")",
            "\"/bin/rm\"",
            "\"-rf\"",
            "Command::new(\"sh\")",
            "\"/bin/sh\"",
        ] {
            // The user's own `--on-retry` command line, run by `sh -c` as written: the one
            // shell steady starts, and never for a deletion of its own.
            if bad == "\"/bin/sh\"" && path.ends_with("src/run/hook.rs") {
                continue;
            }
            // execvp's rule, kept by steady's own spawn: a command file without a `#!` line
            // is run by /bin/sh, as a shell would run it (the user's command, never steady's).
            if bad == "\"/bin/sh\"" && path.ends_with("src/sys/spawn.rs") {
                continue;
            }
            assert!(!text.contains(bad), "{} contains {bad}", path.display());
        }
    }
}
