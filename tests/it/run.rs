//! The run pipeline end to end: exit codes, exec pass-through, serialization of installs that
//! share a cache, the lock not leaking to daemons, lock timeout, retry with one clean, and real
//! uv and pip healing a broken cache.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::*;

/// A fake `pip` whose `install` runs `body`; `cache purge --cache-dir D` is logged to
/// `$CLEAN_LOG` and removes `D/broken`.
fn fake_pip(ctx: &Ctx, body: &str) {
    ctx.fixture(
        "pip",
        &format!(
            r#"if [ "$1" = cache ] && [ "$2" = purge ]; then
  rm -f "$4/broken"; echo "clean $4" >> "$CLEAN_LOG"; exit 0
fi
[ "$1" = install ] || exit 0
{body}
"#
        ),
    );
}

#[test]
fn exit_codes_pass_through() {
    let ctx = Ctx::new();
    let out = run(ctx.steady().args(["--", "true"]));
    assert_eq!(code(&out), 0);
    let out = run(ctx
        .steady()
        .args(["--retries", "0", "--", "sh", "-c", "exit 3"]));
    assert_eq!(code(&out), 3);
    // Supervised (a watchdog option is given), and still the child's code.
    let out = run(ctx.steady().args([
        "--timeout",
        "30s",
        "--retries",
        "0",
        "--",
        "sh",
        "-c",
        "exit 42",
    ]));
    assert_eq!(code(&out), 42, "{}", stderr(&out));
}

#[test]
fn signal_death_is_128_plus_n_and_not_retried_when_interrupted() {
    let ctx = Ctx::new();
    let out = run(ctx.steady().args([
        "--timeout",
        "30s",
        "--retries",
        "0",
        "--",
        "sh",
        "-c",
        "kill -SEGV $$",
    ]));
    assert_eq!(code(&out), 128 + 11, "{}", stderr(&out));

    // A command killed by SIGINT was stopped on purpose: no retry.
    ctx.fixture(
        "interrupted",
        "echo run >> \"$ATTEMPTS\"\nkill -INT $$\nsleep 5\n",
    );
    let attempts = ctx.path("attempts");
    let out = run(ctx.steady().env("ATTEMPTS", &attempts).args([
        "--timeout",
        "30s",
        "--backoff",
        "10ms",
        "--",
        "interrupted",
    ]));
    assert_eq!(code(&out), 130, "{}", stderr(&out));
    assert_eq!(
        ctx.read("attempts").lines().count(),
        1,
        "retried a command killed by SIGINT"
    );
}

#[test]
fn bad_input_is_one_clear_line_and_125() {
    let ctx = Ctx::new();
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: &[Case] = &[
        (&["--timeout", "abc", "--", "true"], &[]),
        (&["--timeout", "5x", "--", "true"], &[]),
        (&["--retries", "-1", "--", "true"], &[]),
        (&["--clean", "sometimes", "--", "true"], &[]),
        (&["--frobnicate", "true"], &[]),
        (&["--env", "NOEQUALS", "--", "true"], &[]),
        (&["--installer", "nosuch", "--", "true"], &[]),
        (&["--lock-dir", "relative/dir", "--", "true"], &[]),
        (&[], &[]),
        (&["--", "true"], &[("STEADY_TIMEOUT", "soon")]),
        (&["--", "true"], &[("STEADY_VERBOSE", "maybe")]),
    ];
    for (args, envs) in cases {
        let out = run(ctx.steady().args(*args).envs(envs.iter().copied()));
        let err = stderr(&out);
        assert_eq!(code(&out), 125, "{args:?} {envs:?}: {err}");
        assert!(err.starts_with("steady: "), "{args:?}: {err}");
        assert!(err.lines().count() <= 3, "{args:?}: too long: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn not_executable_is_126_and_not_found_is_127_without_retry() {
    let ctx = Ctx::new();
    let plain = ctx.path("work/plain.txt");
    std::fs::write(&plain, "not a program").unwrap();
    for supervise in [false, true] {
        let extra: &[&str] = if supervise {
            &["--timeout", "30s", "--backoff", "10ms"]
        } else {
            &[]
        };
        let out = run(ctx.steady().args(extra).arg("--").arg(&plain));
        assert_eq!(code(&out), 126, "{}", stderr(&out));
        // A path through a file (ENOTDIR) is not executable either, as in a shell, whether
        // steady execs it or supervises it.
        let out = run(ctx.steady().args(extra).arg("--").arg(plain.join("x")));
        assert_eq!(code(&out), 126, "{}", stderr(&out));
        let out = run(ctx
            .steady()
            .args(extra)
            .args(["--", "no-such-command-steady-test"]));
        assert_eq!(code(&out), 127, "{}", stderr(&out));
        assert!(
            stderr(&out).contains("command not found"),
            "{}",
            stderr(&out)
        );
        assert!(
            !stderr(&out).contains("retrying"),
            "retried a missing command: {}",
            stderr(&out)
        );
    }
}

/// A command is found and started as `execvp` does it, whether steady execs it or supervises
/// it, and whichever libc the binary was built with (musl's `execvp` has no shell fallback):
/// the PATH search goes past a file that may not be run, and an executable file without a
/// `#!` line is run by /bin/sh.
#[test]
fn commands_are_found_and_started_as_execvp_does() {
    use std::os::unix::fs::PermissionsExt;
    let ctx = Ctx::new();
    let early = ctx.path("early");
    std::fs::create_dir_all(&early).unwrap();
    // First on PATH but not executable: skipped, as a shell skips it.
    std::fs::write(early.join("no-shebang"), "echo wrong one\n").unwrap();
    let script = ctx.bin().join("no-shebang");
    std::fs::write(&script, "echo \"ran $# args: $*\"\nexit 7\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}:{}",
        early.display(),
        ctx.bin().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for supervise in [false, true] {
        let extra: &[&str] = if supervise {
            &["--timeout", "30s", "--retries", "0"]
        } else {
            &[]
        };
        for program in [
            OsString::from("no-shebang"),
            script.clone().into_os_string(),
        ] {
            let out = run(ctx
                .steady()
                .env("PATH", &path)
                .args(extra)
                .arg("--")
                .arg(&program)
                .args(["a", "b c"]));
            assert_eq!(code(&out), 7, "{program:?} {extra:?}: {}", stderr(&out));
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "ran 2 args: a b c\n",
                "{program:?} {extra:?}: {}",
                stderr(&out)
            );
        }
    }
}

/// Pass-through: read-only subcommands and unknown commands replace steady (same pid).
#[test]
fn read_only_and_unknown_commands_are_execd_as_the_same_process() {
    let ctx = Ctx::new();
    ctx.fixture("uv", "echo $$\n");
    for args in [
        &["--", "uv", "--version"][..],
        &["uv", "run", "pytest"],
        &["--", "sh", "-c", "echo $$"],
    ] {
        let child = ctx
            .steady()
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(
            stdout(&out).trim(),
            pid.to_string(),
            "{args:?} did not run as steady's own process"
        );
    }
    // An install is supervised: the command is a child of steady, not steady itself.
    let child = ctx
        .steady()
        .env("UV_CACHE_DIR", ctx.cache())
        .args(["uv", "pip", "install", "x"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_ne!(stdout(&out).trim(), pid.to_string());
}

/// Runs `n` fake installs at once and returns each run's (start, end) in nanoseconds.
fn concurrent_runs(
    ctx: &Ctx,
    n: usize,
    cache_for: impl Fn(usize) -> std::path::PathBuf,
) -> Vec<(u128, u128)> {
    let log = ctx.path("intervals");
    fake_pip(
        ctx,
        "s=$(date +%s%N); sleep 0.1; e=$(date +%s%N); echo \"$s $e\" >> \"$LOG\"\n",
    );
    let children: Vec<_> = (0..n)
        .map(|i| {
            ctx.steady()
                .env("LOG", &log)
                .env("PIP_CACHE_DIR", cache_for(i))
                .args(["pip", "install", "x"])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let mut intervals: Vec<(u128, u128)> = ctx
        .read("intervals")
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace().map(|x| x.parse().unwrap());
            (w.next().unwrap(), w.next().unwrap())
        })
        .collect();
    intervals.sort();
    assert_eq!(intervals.len(), n);
    intervals
}

#[test]
fn installs_sharing_a_cache_never_overlap() {
    let ctx = Ctx::new();
    let intervals = concurrent_runs(&ctx, 8, |_| ctx.cache());
    for pair in intervals.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "two installs on one cache overlapped: {pair:?}"
        );
    }
}

#[test]
fn installs_with_different_caches_run_together() {
    let ctx = Ctx::new();
    // Each run waits (bounded) until the other is inside too: they can only both say "met"
    // if they ran at the same time.
    fake_pip(
        &ctx,
        r#"touch "$MEET/$ID"; n=0
while [ "$(ls "$MEET" | wc -l)" -lt 2 ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n+1)); done
[ "$(ls "$MEET" | wc -l)" -ge 2 ] && echo met >> "$LOG""#,
    );
    std::fs::create_dir(ctx.path("meet")).unwrap();
    let children: Vec<_> = (0..2)
        .map(|i| {
            ctx.steady()
                .env("MEET", ctx.path("meet"))
                .env("ID", i.to_string())
                .env("LOG", ctx.path("log"))
                .env("PIP_CACHE_DIR", ctx.path(&format!("cache-{i}")))
                .args(["pip", "install", "x"])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(
        ctx.read("log").lines().count(),
        2,
        "installs on different caches were serialized"
    );
}

#[test]
fn a_daemon_left_by_the_command_does_not_keep_the_lock() {
    let ctx = Ctx::new();
    let pidfile = ctx.path("daemon.pid");
    fake_pip(
        &ctx,
        "setsid sleep 60 >/dev/null 2>&1 < /dev/null &\necho $! > \"$PIDFILE\"\n",
    );
    let out = run(ctx
        .steady()
        .env("PIDFILE", &pidfile)
        .env("PIP_CACHE_DIR", ctx.cache())
        .args(["pip", "install", "x"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let daemon = pids_in(&pidfile)[0];
    assert!(
        pid_alive(daemon),
        "the daemon should outlive a successful install"
    );
    let free = flock_free(&ctx.cache());
    Command::new("kill")
        .arg(daemon.to_string())
        .status()
        .unwrap();
    assert!(free, "the daemon holds steady's lock");
}

#[test]
fn lock_timeout_is_75_and_names_the_holder() {
    let ctx = Ctx::new();
    fake_pip(&ctx, "echo ran >> \"$LOG\"\n");
    let _held = hold_flock(&ctx.cache());
    let out = run(ctx
        .steady()
        .env("LOG", ctx.path("log"))
        .env("PIP_CACHE_DIR", ctx.cache())
        .args(["--lock-timeout", "1s", "pip", "install", "x"]));
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("pid {}", std::process::id())),
        "holder not named: {}",
        stderr(&out)
    );
    assert!(
        ctx.read("log").is_empty(),
        "the command ran without the lock"
    );
    let out = run(ctx.steady().env("PIP_CACHE_DIR", ctx.cache()).args([
        "--lock-timeout",
        "0",
        "pip",
        "install",
        "x",
    ]));
    assert_eq!(code(&out), 75, "{}", stderr(&out));
}

#[test]
fn failure_clears_the_cache_once_and_retries() {
    let ctx = Ctx::new();
    // `http-v2/` marks it as a pip cache: steady clears nothing it does not recognise.
    std::fs::create_dir(ctx.cache().join("http-v2")).unwrap();
    std::fs::write(ctx.cache().join("broken"), "").unwrap();
    std::fs::write(ctx.cache().join("healthy"), "").unwrap();
    fake_pip(
        &ctx,
        "echo attempt >> \"$ATTEMPTS\"\nif [ -e \"$PIP_CACHE_DIR/broken\" ]; then echo 'ERROR: cache entry is broken' >&2; exit 1; fi\n",
    );
    let out = run(ctx
        .steady()
        .env("PIP_CACHE_DIR", ctx.cache())
        .env("ATTEMPTS", ctx.path("attempts"))
        .env("CLEAN_LOG", ctx.path("cleans"))
        .args(["--backoff", "10ms", "pip", "install", "x"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(ctx.read("attempts").lines().count(), 2);
    let cleans = ctx.read("cleans");
    assert_eq!(
        cleans.lines().count(),
        1,
        "expected exactly one clean: {cleans}"
    );
    assert!(
        cleans.contains(&ctx.cache().canonicalize().unwrap().display().to_string()),
        "{cleans}"
    );
    assert!(
        stderr(&out).contains("succeeded on attempt 2"),
        "{}",
        stderr(&out)
    );

    // An unexplained failure that keeps coming back is retried once (after one clean), not
    // `--retries` times: it is most likely a mistake no retry fixes. Its own exit code comes
    // back.
    std::fs::write(ctx.path("attempts"), "").unwrap();
    std::fs::write(ctx.path("cleans"), "").unwrap();
    fake_pip(&ctx, "echo attempt >> \"$ATTEMPTS\"\nexit 9\n");
    let out = run(ctx
        .steady()
        .env("PIP_CACHE_DIR", ctx.cache())
        .env("ATTEMPTS", ctx.path("attempts"))
        .env("CLEAN_LOG", ctx.path("cleans"))
        .args(["--backoff", "10ms", "--retries", "3", "pip", "install", "x"]));
    assert_eq!(code(&out), 9);
    assert_eq!(ctx.read("attempts").lines().count(), 2);
    assert_eq!(ctx.read("cleans").lines().count(), 1);
    assert!(
        ctx.cache().join("healthy").exists(),
        "the fake clean should only remove `broken`"
    );
}

#[test]
fn clean_never_and_env_twins() {
    let ctx = Ctx::new();
    fake_pip(&ctx, "echo attempt >> \"$ATTEMPTS\"\nexit 1\n");
    let base = |ctx: &Ctx| {
        let mut c = ctx.steady();
        c.env("PIP_CACHE_DIR", ctx.cache())
            .env("ATTEMPTS", ctx.path("attempts"))
            .env("CLEAN_LOG", ctx.path("cleans"));
        c
    };
    // The environment twin applies…
    let out = run(base(&ctx)
        .env("STEADY_RETRIES", "1")
        .env("STEADY_BACKOFF", "10ms")
        .env("STEADY_CLEAN", "never")
        .args(["pip", "install", "x"]));
    assert_eq!(code(&out), 1);
    assert_eq!(ctx.read("attempts").lines().count(), 2);
    assert!(ctx.read("cleans").is_empty(), "--clean never cleaned");
    // …and the flag wins over it.
    std::fs::write(ctx.path("attempts"), "").unwrap();
    let out = run(base(&ctx)
        .env("STEADY_RETRIES", "5")
        .env("STEADY_BACKOFF", "10ms")
        .args(["--retries", "0", "pip", "install", "x"]));
    assert_eq!(code(&out), 1);
    assert_eq!(ctx.read("attempts").lines().count(), 1);
}

fn uv_env(cmd: &mut Command, cache: &Path) {
    cmd.env("UV_CACHE_DIR", cache)
        .env("UV_NO_CONFIG", "1")
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_OFFLINE", "1");
}

/// Real uv: a cache entry missing its METADATA breaks every install from that cache until it
/// is cleared; bare uv fails, steady heals it.
#[test]
fn real_uv_broken_cache_is_healed() {
    let Some(uv) = require("uv") else { return };
    if require("python3").is_none() {
        return;
    }
    let ctx = Ctx::new();
    let wheels = ctx.path("wheels");
    std::fs::create_dir(&wheels).unwrap();
    for name in ["alpha", "beta", "gamma"] {
        make_wheel(&wheels, name, "1.0");
    }
    let cache = ctx.cache();
    let venv = |name: &str| {
        let mut c = Command::new(&uv);
        uv_env(&mut c, &cache);
        let out = run(c
            .args(["venv", "-q", "--python", "python3"])
            .arg(ctx.path(name)));
        assert!(out.status.success(), "uv venv: {}", stderr(&out));
        ctx.path(name).join("bin/python")
    };
    let install_args = |py: &Path| -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = ["pip", "install", "--no-index", "--find-links"]
            .map(Into::into)
            .to_vec();
        a.push(wheels.clone().into());
        a.extend([
            "--python".into(),
            py.into(),
            "alpha".into(),
            "beta".into(),
            "gamma".into(),
        ]);
        a
    };
    let py1 = venv("v1");
    let mut c = Command::new(&uv);
    uv_env(&mut c, &cache);
    assert!(run(c.args(install_args(&py1))).status.success());

    let metadata: Vec<_> = walk(&cache)
        .into_iter()
        .filter(|p| p.ends_with("alpha-1.0.dist-info/METADATA"))
        .collect();
    assert_eq!(metadata.len(), 1, "uv's cache layout changed: {metadata:?}");
    std::fs::remove_file(&metadata[0]).unwrap();

    let py2 = venv("v2");
    let mut bare = Command::new(&uv);
    uv_env(&mut bare, &cache);
    let out = run(bare.args(install_args(&py2)));
    assert!(
        !out.status.success(),
        "bare uv should fail on the broken cache"
    );
    assert!(stderr(&out).contains("METADATA"), "{}", stderr(&out));

    let mut wrapped = ctx.steady();
    uv_env(&mut wrapped, &cache);
    let out = run(wrapped
        .arg("--backoff")
        .arg("10ms")
        .arg("--")
        .arg(&uv)
        .args(install_args(&py2)));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cleared alpha from the uv cache"),
        "{}",
        stderr(&out)
    );
    let check =
        run(Command::new(&py2).args(["-c", "import alpha, beta, gamma; print(alpha.VERSION)"]));
    assert_eq!(stdout(&check).trim(), "1.0", "{}", stderr(&check));
}

/// Real pip: pip caches the wheels it builds; a truncated cached wheel makes every install of
/// that package fail ("is invalid") until the cache is purged; steady heals it.
#[test]
fn real_pip_broken_cache_is_healed() {
    let Some(py) = python_with("pip") else { return };
    let ctx = Ctx::new();
    let dists = ctx.path("dists");
    std::fs::create_dir(&dists).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make_sdist.py");
    assert!(
        run(Command::new(&py)
            .arg(script)
            .arg(&dists)
            .args(["delta", "1.0"]))
        .status
        .success()
    );
    let cache = ctx.cache();
    let pip = |target: &str| {
        let mut c = Command::new(&py);
        c.env("PIP_CACHE_DIR", &cache)
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .args(["-m", "pip", "install", "--no-index", "--find-links"])
            .arg(&dists)
            .arg("--target")
            .arg(ctx.path(target))
            .arg("delta");
        c
    };
    let out = run(&mut pip("t1"));
    assert!(out.status.success(), "pip install: {}", stderr(&out));
    let cached: Vec<_> = walk(&cache)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    assert_eq!(
        cached.len(),
        1,
        "pip did not cache the wheel it built: {cached:?}"
    );
    std::fs::write(&cached[0], "garbage").unwrap();

    let out = run(&mut pip("t2"));
    assert!(
        !out.status.success(),
        "bare pip should fail on the broken cache"
    );
    assert!(stderr(&out).contains("is invalid"), "{}", stderr(&out));

    let bare = pip("t2");
    let mut wrapped = ctx.steady();
    wrapped
        .env("PIP_CACHE_DIR", &cache)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .args(["--backoff", "10ms", "--"]);
    wrapped.arg(bare.get_program()).args(bare.get_args());
    let out = run(&mut wrapped);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cleared delta from the pip cache"),
        "{}",
        stderr(&out)
    );
    assert!(
        ctx.path("t2/delta/__init__.py").exists(),
        "delta was not installed"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn timeouts_are_retried_without_cleaning() {
    let ctx = Ctx::new();
    fake_pip(
        &ctx,
        "echo attempt >> \"$ATTEMPTS\"\n[ \"$(wc -l < \"$ATTEMPTS\")\" -ge 2 ] && exit 0\nsleep 60\n",
    );
    let out = run(ctx
        .steady()
        .env("PIP_CACHE_DIR", ctx.cache())
        .env("ATTEMPTS", ctx.path("attempts"))
        .env("CLEAN_LOG", ctx.path("cleans"))
        .args([
            "--timeout",
            "1s",
            "--kill-after",
            "1s",
            "--backoff",
            "10ms",
            "pip",
            "install",
            "x",
        ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(ctx.read("attempts").lines().count(), 2);
    assert!(
        ctx.read("cleans").is_empty(),
        "a timeout must not clear the cache"
    );
}
