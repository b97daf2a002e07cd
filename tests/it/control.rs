//! Issue 17, items 1-8: the retry rules users already write (`--retry-on-exit`,
//! `--retry-on-output`, `STEADY_ATTEMPT`, `--on-retry`, `--backoff-max`), output shown only on
//! failure (`--output on-failure`), and reports that keep every run (JSON Lines, safe under
//! concurrent runs, supervised, checked before the command runs).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

/// A fake `pip` whose `install` appends its attempt to `$LOG` and fails with pip's own
/// "No matching distribution found" (deterministic: steady stops at once) plus `extra`.
fn flaky_pip(ctx: &Ctx, extra: &str) {
    ctx.fixture(
        "pip",
        &format!(
            r#"[ "$1" = install ] || exit 0
echo "$STEADY_ATTEMPT/$STEADY_ATTEMPTS" >> "$LOG"
echo "ERROR: No matching distribution found for alpha" >&2
{extra}
exit 1
"#
        ),
    );
}

fn pip_run(ctx: &Ctx) -> Command {
    let mut c = ctx.steady();
    c.env("PIP_CACHE_DIR", ctx.cache())
        .env("LOG", ctx.path("log"))
        .args(["--backoff", "1ms", "--retries", "2"]);
    c
}

fn attempts(ctx: &Ctx) -> usize {
    let n = ctx.read("log").lines().count();
    let _ = std::fs::remove_file(ctx.path("log"));
    n
}

/// Item 1: `--retry-on-exit` and `--retry-on-output` (and their `STEADY_*` twins) retry what
/// steady would stop after one attempt; other codes and outputs still stop; `doctor` shows
/// both; a bad value is one clear line and 125.
#[test]
fn retry_on_exit_and_output_retry_what_steady_would_stop() {
    let ctx = Ctx::new();
    flaky_pip(&ctx, "echo 'mirror: upstream connect error' >&2");
    let install = ["--", "pip", "install", "alpha"];

    let out = run(pip_run(&ctx).args(install));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(attempts(&ctx), 1, "a deterministic failure was retried");

    for (flags, env, want) in [
        (&["--retry-on-exit", "2,1"][..], None, 3),
        (&["--retry-on-exit", "2"][..], None, 1),
        (&[][..], Some((("STEADY_RETRY_ON_EXIT"), "1")), 3),
        (
            &["--retry-on-output", "^mirror: .*connect error$"][..],
            None,
            3,
        ),
        (&["--retry-on-output", "^connect error"][..], None, 1),
        (
            &[][..],
            Some(("STEADY_RETRY_ON_OUTPUT", "upstream (connect|reset)")),
            3,
        ),
    ] {
        let mut c = pip_run(&ctx);
        c.args(flags);
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let out = run(c.args(install));
        assert_eq!(code(&out), 1, "{flags:?} {env:?}: {}", stderr(&out));
        assert_eq!(attempts(&ctx), want, "{flags:?} {env:?}: {}", stderr(&out));
    }

    // A command stopped on purpose is not retried, whatever the rules say.
    ctx.fixture(
        "selfkill",
        "echo run >> \"$LOG\"\necho bye\nkill -TERM $$\n",
    );
    let out = run(ctx.steady().env("LOG", ctx.path("log")).args([
        "--retry-on-output",
        ".",
        "--retry-on-exit",
        "143",
        "--backoff",
        "1ms",
        "--",
        "selfkill",
    ]));
    assert_eq!(code(&out), 143, "{}", stderr(&out));
    assert_eq!(attempts(&ctx), 1, "a command killed by TERM was retried");

    let out = run(ctx
        .steady()
        .env("STEADY_RETRY_ON_OUTPUT", "timed out")
        .args([
            "doctor",
            "--retry-on-exit",
            "3,75",
            "--",
            "pip",
            "install",
            "x",
        ]));
    let said = stdout(&out);
    assert!(
        said.contains("exit 3, 75") && said.contains("output matching `timed out`"),
        "{said}"
    );

    for (args, env) in [
        (&["--retry-on-output", "(unclosed"][..], None),
        (&[][..], Some(("STEADY_RETRY_ON_OUTPUT", "[a-"))),
        (&["--retry-on-exit", "0"][..], None),
        (&["--retry-on-exit", "256"][..], None),
        (&["--retry-on-exit", "x"][..], None),
        (&[][..], Some(("STEADY_RETRY_ON_EXIT", "1,,x"))),
    ] {
        let mut c = ctx.steady();
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let out = run(c.args(args).args(["--", "touch", "ran"]));
        let err = stderr(&out);
        assert_eq!(code(&out), 125, "{args:?} {env:?}: {err}");
        assert!(
            err.starts_with("steady: ") && err.contains("\nhint: "),
            "{err}"
        );
        assert!(err.lines().count() == 2, "{args:?} {env:?}: {err}");
        assert!(!ctx.path("work/ran").exists(), "ran despite {args:?}");
    }

    // The patterns are compiled only for a supervised run: a read-only subcommand exec'd
    // unchanged does not pay for (nor trip over) a STEADY_RETRY_ON_OUTPUT default.
    ctx.fixture("uv", "echo uv 0.0.0\n");
    let out = run(ctx
        .steady()
        .env("STEADY_RETRY_ON_OUTPUT", "(")
        .args(["--", "uv", "--version"]));
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "uv 0.0.0\n"));
}

/// Item 2: every attempt sees its number and the most there will be.
#[test]
fn each_attempt_sees_steady_attempt_and_steady_attempts() {
    let ctx = Ctx::new();
    ctx.fixture(
        "third-time",
        "echo \"$STEADY_ATTEMPT/$STEADY_ATTEMPTS\" >> \"$LOG\"\n[ \"$STEADY_ATTEMPT\" = 3 ]\n",
    );
    let out = run(ctx.steady().env("LOG", ctx.path("log")).args([
        "--retries",
        "3",
        "--retry-on-exit",
        "1",
        "--backoff",
        "1ms",
        "--",
        "third-time",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(ctx.read("log"), "1/4\n2/4\n3/4\n");
}

/// Item 3: `--on-retry` runs after each failed attempt but the last, with the failed
/// attempt's number, class and exit status; its stdout stays off the command's stdout; its
/// failure is said and the retry goes on.
#[test]
fn on_retry_runs_before_each_retry_and_its_failure_is_not_fatal() {
    let ctx = Ctx::new();
    ctx.fixture(
        "fails-twice",
        "echo \"attempt $STEADY_ATTEMPT\" >> \"$LOG\"\n[ \"$STEADY_ATTEMPT\" = 3 ] || exit 7\necho done\n",
    );
    let hook = "echo \"hook $STEADY_ATTEMPT/$STEADY_ATTEMPTS $STEADY_CLASS $STEADY_EXIT\" >> \"$LOG\"; echo hook-says; exit 4";
    let out = run(ctx.steady().env("LOG", ctx.path("log")).args([
        "--retries",
        "2",
        "--retry-on-exit",
        "7",
        "--backoff",
        "1ms",
        "--on-retry",
        hook,
        "--",
        "fails-twice",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        ctx.read("log"),
        "attempt 1\nhook 1/3 unknown 7\nattempt 2\nhook 2/3 unknown 7\nattempt 3\n"
    );
    assert_eq!(
        stdout(&out),
        "done\n",
        "the hook wrote to the command's stdout"
    );
    let err = stderr(&out);
    assert!(err.contains("hook-says"), "{err}");
    assert!(
        err.contains("--on-retry") && err.contains("failed (exit 4); retrying all the same"),
        "{err}"
    );

    // The twin, and nothing after the last attempt.
    let _ = std::fs::remove_file(ctx.path("log"));
    let out = run(ctx
        .steady()
        .env("LOG", ctx.path("log"))
        .env("STEADY_ON_RETRY", "echo hook >> \"$LOG\"")
        .args([
            "--retries",
            "1",
            "--backoff",
            "1ms",
            "--",
            "sh",
            "-c",
            "exit 9",
        ]));
    assert_eq!(code(&out), 9, "{}", stderr(&out));
    assert_eq!(ctx.read("log"), "hook\n");
}

/// Item 3: the hook is supervised: at the deadline, and when steady is told to stop, its
/// whole tree (background children too) is killed and steady ends as it should.
#[test]
fn on_retry_is_killed_with_its_tree_at_the_deadline_and_on_a_signal() {
    let ctx = Ctx::new();
    let pids = ctx.path("pids");
    let hook = format!(
        "echo $$ >> '{0}'; sleep 300 & echo $! >> '{0}'; sleep 300 & echo $! >> '{0}'; wait",
        pids.display()
    );
    // The deadline: the hook runs into it, and the run ends with the failed attempt's code
    // (no time is left to retry).
    let out = run(ctx.steady().args([
        "--deadline",
        "5s",
        "--kill-after",
        "200ms",
        "--retries",
        "1",
        "--backoff",
        "1ms",
        "--on-retry",
        &hook,
        "--",
        "sh",
        "-c",
        "exit 5",
    ]));
    let err = stderr(&out);
    assert_eq!(code(&out), 5, "{err}");
    assert!(err.contains("--on-retry ran into --deadline"), "{err}");
    let hook_pids = pids_in(&pids);
    assert_eq!(hook_pids.len(), 3, "{err}");
    for p in &hook_pids {
        assert!(
            !pid_alive(*p),
            "hook process {p} survived the deadline: {err}"
        );
    }

    // A signal: TERM to steady while the hook runs.
    std::fs::remove_file(&pids).unwrap();
    let bg = Bg::spawn(ctx.steady().args([
        "--kill-after",
        "200ms",
        "--retries",
        "1",
        "--backoff",
        "1ms",
        "--on-retry",
        &hook,
        "--",
        "sh",
        "-c",
        "exit 5",
    ]));
    assert!(wait_for(Duration::from_secs(60), || pids_in(&pids).len() == 3));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(bg.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = bg.finish();
    assert_eq!(code(&out), 128 + 15, "{}", stderr(&out));
    for p in pids_in(&pids) {
        assert!(!pid_alive(p), "hook process {p} survived TERM to steady");
    }
}

/// The pause steady announces before a retry, from its `retrying in …` line.
fn announced_pauses(err: &str) -> Vec<Duration> {
    err.lines()
        .filter_map(|l| l.split("retrying in ").nth(1))
        .map(|d| {
            let d = d.trim();
            if let Some(ms) = d.strip_suffix("ms") {
                Duration::from_millis(ms.parse().unwrap())
            } else {
                Duration::from_secs_f64(d.trim_end_matches('s').parse().unwrap())
            }
        })
        .collect()
}

/// Item 4: `--backoff-max` caps every pause (read from what steady announces, not timed), and
/// has a `STEADY_BACKOFF_MAX` twin; `doctor` shows it.
#[test]
fn backoff_max_caps_every_pause() {
    let ctx = Ctx::new();
    let cap = Duration::from_millis(20);
    for twin in [false, true] {
        let mut c = ctx.steady();
        c.args(["--retries", "3", "--retry-on-exit", "1", "--backoff", "10m"]);
        if twin {
            c.env("STEADY_BACKOFF_MAX", "20ms");
        } else {
            c.args(["--backoff-max", "20ms"]);
        }
        let out = run(c.args(["--", "false"]));
        let err = stderr(&out);
        assert_eq!(code(&out), 1, "{err}");
        let pauses = announced_pauses(&err);
        assert_eq!(pauses.len(), 3, "{err}");
        assert!(pauses.iter().all(|p| *p <= cap), "{pauses:?}\n{err}");
    }
    let out = run(ctx.steady().args([
        "doctor",
        "--backoff",
        "2s",
        "--backoff-max",
        "1m",
        "--",
        "pip",
        "install",
        "x",
    ]));
    assert!(
        stdout(&out).contains("back-off 2s to 1m"),
        "{}",
        stdout(&out)
    );
}

/// A command that prints on both streams, fails until attempt `$PASS_ON` (never when unset).
fn chatty(ctx: &Ctx) {
    ctx.fixture(
        "chatty",
        "echo \"out $STEADY_ATTEMPT\"\necho \"err $STEADY_ATTEMPT\" >&2\n[ \"$STEADY_ATTEMPT\" = \"${PASS_ON:-0}\" ] || exit 3\n",
    );
}

/// Item 5: with `--output on-failure`, a run that succeeds (also after a retry) shows none of
/// the command's output, and a run that finally fails shows every attempt's output, in
/// order, each after a line naming the attempt, before the line that says steady gave up;
/// `STEADY_OUTPUT` is its twin.
#[test]
fn output_on_failure_shows_every_attempt_only_when_the_run_fails() {
    let ctx = Ctx::new();
    chatty(&ctx);
    let args = [
        "--retries",
        "1",
        "--retry-on-exit",
        "3",
        "--backoff",
        "1ms",
        "--",
        "chatty",
    ];
    let out = run(ctx
        .steady()
        .env("PASS_ON", "2")
        .arg("--output=on-failure")
        .args(args));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "a successful run showed its output");
    let err = stderr(&out);
    assert!(!err.contains("out ") && !err.contains("err "), "{err}");
    assert!(err.contains("succeeded on attempt 2 of 2"), "{err}");

    let out = run(ctx.steady().env("STEADY_OUTPUT", "on-failure").args(args));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    let first = err.find("output of attempt 1 of 2 (exit 3").expect(&err);
    let second = err.find("output of attempt 2 of 2 (exit 3").expect(&err);
    let gave_up = err.find("gave up after 2 attempts").expect(&err);
    assert!(first < second && second < gave_up, "{err}");
    assert_eq!(
        &err[first..second].matches("out 1\nerr 1\n").count(),
        &1,
        "{err}"
    );
    assert!(err[second..gave_up].contains("out 2\nerr 2\n"), "{err}");

    // Live is the default: the output is there as it came, once.
    let out = run(ctx.steady().args(args));
    assert_eq!(stdout(&out), "out 1\nout 2\n");
    assert!(
        !stderr(&out).contains("output of attempt"),
        "{}",
        stderr(&out)
    );
}

/// Item 5: held output is bounded in steady's memory, kept in an unnamed private file (no
/// name in TMPDIR, mode 0600), and shown byte for byte when the run fails.
#[test]
fn output_on_failure_spills_to_a_private_unnamed_file_and_memory_stays_bounded() {
    let ctx = Ctx::new();
    let (printed, go) = (ctx.path("printed"), ctx.path("go"));
    // 64 MiB of varied lines on stdout, then wait, then fail.
    ctx.fixture(
        "floods",
        &format!(
            "seq 1 8000000 | head -c 67108864\ntouch '{}'\nwhile [ ! -e '{}' ]; do sleep 0.05; done\nexit 4\n",
            printed.display(),
            go.display()
        ),
    );
    let steady = ctx
        .steady()
        .args([
            "--output",
            "on-failure",
            "--retries",
            "0",
            "--timeout",
            "600s",
            "--",
            "floods",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = steady.id() as i32;
    assert!(wait_for(Duration::from_secs(600), || printed.exists()));
    let peak_kib = proc_status(pid, "VmHWM").expect("VmHWM");
    // The held file: open in steady, unnamed, private.
    let held: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().contains("(deleted)"))
        })
        .collect();
    assert!(!held.is_empty(), "no unnamed file held by steady");
    use std::os::unix::fs::PermissionsExt;
    for e in &held {
        let mode = std::fs::metadata(e.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{:?}", std::fs::read_link(e.path()));
    }
    let names: Vec<_> = std::fs::read_dir(ctx.path("tmp"))
        .unwrap()
        .flatten()
        .collect();
    assert!(names.is_empty(), "a named file in TMPDIR: {names:?}");
    std::fs::write(&go, "").unwrap();
    let out = steady.wait_with_output().unwrap();
    let head = &out.stderr[..out.stderr.len().min(400)];
    assert_eq!(code(&out), 4, "{}", String::from_utf8_lossy(head));
    assert!(out.stdout.is_empty());
    let expected = run(Command::new("sh").args(["-c", "seq 1 8000000 | head -c 67108864"]));
    let err = &out.stderr;
    let header = b"held by --output on-failure:\n";
    let at = err
        .windows(header.len())
        .position(|w| w == header)
        .expect("no header")
        + header.len();
    assert!(
        err[at..].starts_with(&expected.stdout),
        "the held output was not shown byte for byte"
    );
    eprintln!("steady's peak RSS while holding 64 MiB: {peak_kib} KiB");
    assert!(peak_kib < 16 * 1024, "steady's peak RSS was {peak_kib} KiB");
}

/// Item 5: a terminal stays a terminal: in a pty, `--output on-failure` shows the output live
/// (a prompt must be seen), once, and holds nothing.
#[test]
fn output_on_failure_leaves_a_terminal_live() {
    if python_with("pty").is_none() {
        return;
    }
    let ctx = Ctx::new();
    let harness = r#"
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out = bytearray()
while True:
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data:
        break
    out.extend(data)
_, status = os.waitpid(pid, 0)
sys.stdout.write("STATUS %d\n" % os.WEXITSTATUS(status))
sys.stdout.write(out.decode("latin-1"))
"#;
    let py = ctx.path("in_a_terminal.py");
    std::fs::write(&py, harness).unwrap();
    let mut cmd = ctx.command("python3");
    cmd.arg(&py).args([
        steady_bin(),
        "--output",
        "on-failure",
        "--retries",
        "0",
        "--",
        "sh",
        "-c",
        "[ -t 1 ] && echo on-a-terminal; exit 3",
    ]);
    let out = run(&mut cmd);
    let text = stdout(&out);
    assert!(text.starts_with("STATUS 3\n"), "{text}{}", stderr(&out));
    assert_eq!(text.matches("on-a-terminal").count(), 1, "{text}");
    assert!(!text.contains("held by"), "{text}");
}

/// Real uv and a local index holding one wheel, `alpha`; or a skip.
fn wheels(ctx: &Ctx) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let uv = require("uv")?;
    require("python3")?;
    let dir = ctx.path("wheels");
    std::fs::create_dir_all(&dir).unwrap();
    make_wheel(&dir, "alpha", "1.0");
    Some((uv, dir))
}

/// Reads a JSON Lines report with python3: one `exit_code command-last-word attempts` line
/// per record, or a failure if any line is not one JSON object.
fn parse_report(path: &Path) -> Vec<String> {
    let py = r#"
import json, sys
for n, line in enumerate(open(sys.argv[1]), 1):
    r = json.loads(line)
    assert isinstance(r, dict), n
    print(r["exit_code"], r["command"][-1], len(r["attempts"]))
"#;
    let out = run(Command::new("python3").args(["-c", py]).arg(path));
    assert!(out.status.success(), "not JSON Lines: {}", stderr(&out));
    stdout(&out).lines().map(str::to_owned).collect()
}

/// Item 6: 16 real uv installs at once, some failing, all with `STEADY_REPORT` on one file:
/// 16 records, one parseable line each, the failed installs' included; a later run appends.
#[test]
fn sixteen_concurrent_real_uv_runs_append_sixteen_json_lines() {
    let ctx = Ctx::new();
    let Some((uv, wheels)) = wheels(&ctx) else {
        return;
    };
    let report = ctx.path("runs.jsonl");
    let runs: Vec<Bg> = (0..16)
        .map(|i| {
            // Each run its own cache, so they really run at the same time; every fourth asks
            // for a package the local index does not have.
            let package = if i % 4 == 3 { "nosuchpkg" } else { "alpha" };
            let mut c = ctx.steady();
            c.env("UV_CACHE_DIR", ctx.path(&format!("cache-{i}")))
                .env("UV_NO_CONFIG", "1")
                .env("UV_PYTHON_DOWNLOADS", "never")
                .env("UV_OFFLINE", "1")
                .env("STEADY_REPORT", &report)
                .args(["--retries", "0", "--"])
                .arg(&uv)
                .args(["pip", "install", "--no-index", "--find-links"])
                .arg(&wheels)
                .arg("--target")
                .arg(ctx.path(&format!("target-{i}")))
                .arg(package);
            Bg::spawn(&mut c)
        })
        .collect();
    for r in runs {
        let out = r.finish();
        assert!(matches!(code(&out), 0 | 1), "{}", stderr(&out));
    }
    let mut records = parse_report(&report);
    assert_eq!(records.len(), 16, "{records:?}");
    records.sort();
    assert_eq!(
        records.iter().filter(|r| *r == "0 alpha 1").count(),
        12,
        "{records:?}"
    );
    assert_eq!(
        records.iter().filter(|r| *r == "1 nosuchpkg 1").count(),
        4,
        "{records:?}"
    );

    // Large records (a long command line, well past PIPE_BUF) from 16 runs at once, after
    // the others: still whole lines.
    let long = "x".repeat(100_000);
    let runs: Vec<Bg> = (0..16)
        .map(|_| {
            Bg::spawn(
                ctx.steady()
                    .args(["--retries", "0", "--report"])
                    .arg(&report)
                    .args(["--", "sh", "-c", "exit 0", &long]),
            )
        })
        .collect();
    for r in runs {
        assert_eq!(code(&r.finish()), 0);
    }
    let records = parse_report(&report);
    assert_eq!(records.len(), 32);
    assert_eq!(
        records.iter().filter(|r| r.starts_with("0 xxx")).count(),
        16
    );
}

/// Item 7: a report on a command steady would exec unchanged makes the run supervised, so
/// the record is written (flag and twin).
#[test]
fn report_on_an_unknown_command_supervises_and_writes_it() {
    let ctx = Ctx::new();
    let report = ctx.path("r.jsonl");
    let out = run(ctx.steady().arg("--report").arg(&report).args([
        "--retries",
        "0",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let out = run(ctx
        .steady()
        .env("STEADY_REPORT", &report)
        .args(["--", "sh", "-c", "exit 0"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(parse_report(&report), ["3 exit 3 1", "0 exit 0 1"]);
}

/// Item 8: a report path steady cannot write is found before the command runs: 125, one
/// line naming the path and a hint, and the command never started.
#[test]
fn an_unwritable_report_is_refused_before_the_command_runs() {
    let ctx = Ctx::new();
    std::fs::create_dir(ctx.path("a-dir")).unwrap();
    for bad in [ctx.path("missing/r.jsonl"), ctx.path("a-dir")] {
        for twin in [false, true] {
            let mut c = ctx.steady();
            if twin {
                c.env("STEADY_REPORT", &bad);
            } else {
                c.arg("--report").arg(&bad);
            }
            let out = run(c.args(["--timeout", "1m", "--", "touch", "ran"]));
            let err = stderr(&out);
            assert_eq!(code(&out), 125, "{err}");
            assert!(
                err.starts_with("steady: cannot write the report to ")
                    && err.contains(&bad.display().to_string())
                    && err.contains("\nhint: "),
                "{err}"
            );
            assert!(!ctx.path("work/ran").exists(), "the command ran");
        }
    }
}
