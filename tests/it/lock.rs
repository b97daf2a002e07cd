//! The lock, requirement by requirement (reference/reliability.md R1-R12), plus nesting,
//! `--shared`, `--lock` ordering and `steady status`. Failures of `flock` that need NFS, GPFS or
//! Lustre are made with an LD_PRELOAD shim (tests/fixtures/flock_shim.c); tests that need a
//! second user create one and skip with a reason when not root.

use std::ffi::OsStr;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::*;

/// Bound for things that happen at once on an idle machine.
const LONG: Duration = Duration::from_secs(30);
/// The second user of the multi-user tests.
const OTHER: &str = "steady-test-other";

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn touch(p: &Path) {
    std::fs::write(p, b"").unwrap();
}

fn mkdir(p: &Path, mode: u32) -> PathBuf {
    std::fs::create_dir_all(p).unwrap();
    chmod(p, mode);
    p.to_path_buf()
}

/// steady with the flock shim: `flock` fails with `errno` on the given paths (all if empty).
fn shimmed(ctx: &Ctx, shim: &Path, errno: i32, paths: &[&Path]) -> Command {
    let mut cmd = ctx.steady();
    cmd.env("LD_PRELOAD", shim)
        .env("STEADY_SHIM_FLOCK_ERRNO", errno.to_string());
    if !paths.is_empty() {
        let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        cmd.env("STEADY_SHIM_FLOCK_PATHS", list.join(":"));
    }
    cmd
}

/// steady whose cache cannot be flocked (ENOLCK, as NFS without lockd), so it uses a fallback
/// lock file in `lock_dir`.
fn fallback_steady(ctx: &Ctx, shim: &Path, lock_dir: &Path) -> Command {
    let cache = ctx.cache().canonicalize().unwrap();
    let mut cmd = shimmed(ctx, shim, libc::ENOLCK, &[&cache]);
    cmd.arg("--cache")
        .arg(&cache)
        .arg("--lock-dir")
        .arg(lock_dir);
    cmd
}

/// The fallback lock file a `-v` run reports.
fn lock_file_in(err: &str) -> PathBuf {
    let tag = "with the lock file `";
    let start = err
        .find(tag)
        .unwrap_or_else(|| panic!("no lock file in:\n{err}"))
        + tag.len();
    let end = err[start..].find('`').unwrap() + start;
    PathBuf::from(&err[start..end])
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn signal(pid: u32, sig: Signal) {
    kill(Pid::from_raw(pid as i32), sig).unwrap();
}

/// R1: the lock lives with the cache, so every spelling of it meets at one lock (a symlink to
/// it, relative paths, a different TMPDIR), and -v says the scope.
#[test]
fn r1_spellings_of_one_cache_meet_at_one_lock() {
    let ctx = Ctx::new();
    let cache = ctx.cache().canonicalize().unwrap();
    std::os::unix::fs::symlink(&cache, ctx.path("link")).unwrap();
    let held = hold_flock(&cache);
    let me = format!("pid {}", std::process::id());
    for spelling in [
        ctx.path("link"),
        PathBuf::from("../cache"),
        PathBuf::from("../link/"),
        cache.clone(),
    ] {
        let out = run(ctx
            .steady()
            .env("TMPDIR", ctx.path("work"))
            .arg("--cache")
            .arg(&spelling)
            .args(["--lock-timeout", "300ms", "--", "touch", "ran"]));
        assert_eq!(
            code(&out),
            75,
            "`{}` did not meet the lock: {}",
            spelling.display(),
            stderr(&out)
        );
        assert!(stderr(&out).contains(&me), "{}", stderr(&out));
    }
    assert!(!ctx.path("work/ran").exists());
    drop(held);
    let out = run(ctx
        .steady()
        .arg("-v")
        .arg("--cache")
        .arg(ctx.path("link"))
        .args(["--", "touch", "ran"]));
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert!(
        err.contains(&format!(
            "locked `{}` (exclusive) on the path itself, shared with everyone who uses it",
            cache.display()
        )),
        "{err}"
    );
    assert!(ctx.path("work/ran").exists());
}

/// R1: where the cache cannot be locked, the fallback lock file is found the same way whatever
/// the process's TMPDIR or XDG_RUNTIME_DIR, so such runs still meet; -v says the scope is this
/// user on this node only.
#[test]
fn r1_fallback_lock_meets_across_tmpdir_and_xdg_runtime_dir() {
    let Some(shim) = flock_shim() else { return };
    let ctx = Ctx::new();
    let cache = ctx.cache().canonicalize().unwrap();
    let xdg = mkdir(&ctx.path("xdg"), 0o700);
    let mut a = shimmed(&ctx, &shim, libc::ENOLCK, &[&cache]);
    a.arg("-v")
        .arg("--cache")
        .arg(&cache)
        .env("TMPDIR", ctx.path("tmp"));
    let (holder, release) = hold_with(&ctx, &mut a, "a");
    let holder_pid = holder.pid();
    let out = run(shimmed(&ctx, &shim, libc::ENOLCK, &[&cache])
        .arg("-v")
        .arg("--cache")
        .arg(&cache)
        .env("TMPDIR", ctx.path("work"))
        .env("XDG_RUNTIME_DIR", &xdg)
        .args(["--lock-timeout", "300ms", "--", "touch", "ran"]));
    touch(&release);
    let held = holder.finish();
    let (err, held_err) = (stderr(&out), stderr(&held));
    assert_eq!(code(&held), 0, "{held_err}");
    assert_eq!(
        code(&out),
        75,
        "the second run did not meet the first: {err}"
    );
    let file = lock_file_in(&held_err);
    assert!(
        file.starts_with(format!("/tmp/steady-{}", euid())),
        "{held_err}"
    );
    assert!(
        held_err.contains("shared only with this user on this node or container"),
        "{held_err}"
    );
    assert!(
        err.contains(&format!("waiting for the lock on `{}`", file.display())),
        "{err}"
    );
    assert!(err.contains(&format!("pid {holder_pid}")), "{err}");
    assert!(!ctx.path("work/ran").exists());
    assert!(
        entries(&xdg).is_empty(),
        "XDG_RUNTIME_DIR was used before /tmp"
    );
}

/// R1: two users sharing one cache directory meet at its lock, either way round.
#[test]
fn r1_two_users_sharing_a_cache_meet_at_one_lock() {
    let Some((uid, gid)) = other_user(OTHER) else {
        return;
    };
    let ctx = Ctx::new();
    chmod(ctx.root(), 0o755);
    let cache = mkdir(&ctx.cache(), 0o777);
    let shared = mkdir(&ctx.path("shared"), 0o777);
    let held = hold_flock(&cache);
    let out = run(ctx
        .steady()
        .uid(uid)
        .gid(gid)
        .arg("--cache")
        .arg(&cache)
        .args(["--lock-timeout", "300ms", "--", "true"]));
    drop(held);
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("pid {}", std::process::id())),
        "{}",
        stderr(&out)
    );

    holder(&ctx);
    let (inside, release) = (shared.join("inside"), shared.join("release"));
    let bg = Bg::spawn(
        ctx.steady()
            .uid(uid)
            .gid(gid)
            .arg("--cache")
            .arg(&cache)
            .arg("--")
            .arg("hold")
            .arg(&inside)
            .arg(&release),
    );
    assert!(
        wait_for(LONG, || inside.exists()),
        "the other user's run never got in"
    );
    let out = run(ctx.steady().arg("--cache").arg(&cache).args([
        "--lock-timeout",
        "300ms",
        "--",
        "true",
    ]));
    let pid = bg.pid();
    touch(&release);
    let theirs = bg.finish();
    assert_eq!(code(&theirs), 0, "{}", stderr(&theirs));
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("pid {pid}")),
        "{}",
        stderr(&out)
    );
}

/// R2: a per-user fallback directory is used only when it is a real directory of ours that
/// nobody else can enter; one that fails is skipped with a -v line and never written.
#[test]
fn r2_unsafe_per_user_directories_are_skipped_and_never_written() {
    let Some(shim) = flock_shim() else { return };
    let ctx = Ctx::new();
    let sub = format!("steady-{}", euid());
    let loose = ctx.path("loose");
    mkdir(&loose.join(&sub), 0o770);
    let out = run(fallback_steady(&ctx, &shim, &loose).args(["-v", "--", "true"]));
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert!(
        err.contains(&format!(
            "skipping `{}`: mode 770 lets other users in",
            loose.join(&sub).display()
        )),
        "{err}"
    );
    assert!(entries(&loose.join(&sub)).is_empty());
    assert!(!lock_file_in(&err).starts_with(&loose), "{err}");

    let Some((uid, gid)) = other_user(OTHER) else {
        return;
    };
    chmod(ctx.root(), 0o755);
    let as_other = |argv: &[&OsStr]| {
        let out = run(Command::new(argv[0]).args(&argv[1..]).uid(uid).gid(gid));
        assert!(out.status.success(), "{}", stderr(&out));
    };
    // (a) their own directory, open to all, where ours would be.
    let a = mkdir(&ctx.path("a"), 0o1777);
    as_other(&[os("mkdir"), os("-m"), os("777"), a.join(&sub).as_os_str()]);
    // (b) a symlink to a directory of theirs.
    let b = mkdir(&ctx.path("b"), 0o1777);
    as_other(&[
        os("mkdir"),
        os("-m"),
        os("777"),
        b.join("theirs").as_os_str(),
    ]);
    as_other(&[
        os("ln"),
        os("-s"),
        b.join("theirs").as_os_str(),
        b.join(&sub).as_os_str(),
    ]);
    for (base, planted, why) in [
        (
            &a,
            a.join(&sub),
            format!("owned by uid {uid}, not {}", euid()),
        ),
        (&b, b.join("theirs"), "it is a symlink".to_owned()),
    ] {
        let out = run(fallback_steady(&ctx, &shim, base).args(["-v", "--", "true"]));
        let err = stderr(&out);
        assert_eq!(code(&out), 0, "{err}");
        assert!(
            err.contains(&format!("skipping `{}`: {why}", base.join(&sub).display())),
            "{err}"
        );
        assert!(
            entries(&planted).is_empty(),
            "steady wrote into {}",
            planted.display()
        );
        assert!(!lock_file_in(&err).starts_with(base), "{err}");
    }
}

/// R3: $XDG_RUNTIME_DIR is used only when it is absolute and private to us.
#[test]
fn r3_xdg_runtime_dir_is_used_only_when_private() {
    let Some(shim) = flock_shim() else { return };
    let ctx = Ctx::new();
    let cache = ctx.cache().canonicalize().unwrap();
    // The cache and the per-user directories of /tmp and /var/tmp cannot be locked, so the
    // chain reaches XDG_RUNTIME_DIR.
    let (tmp, var_tmp) = (
        PathBuf::from(format!("/tmp/steady-{}", euid())),
        PathBuf::from(format!("/var/tmp/steady-{}", euid())),
    );
    let run_with = |xdg: &OsStr| {
        let out = run(
            shimmed(&ctx, &shim, libc::ENOLCK, &[&cache, &tmp, &var_tmp])
                .env("XDG_RUNTIME_DIR", xdg)
                .arg("-v")
                .arg("--cache")
                .arg(&cache)
                .args(["--", "true"]),
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stderr(&out)
    };
    let private = mkdir(&ctx.path("xdg-private"), 0o700);
    let err = run_with(private.as_os_str());
    assert!(
        lock_file_in(&err).starts_with(private.join("steady")),
        "{err}"
    );

    let open = mkdir(&ctx.path("xdg-open"), 0o755);
    let err = run_with(open.as_os_str());
    assert!(
        err.contains(&format!(
            "skipping `{}`: mode 755 lets other users in",
            open.display()
        )),
        "{err}"
    );
    assert!(entries(&open).is_empty());
    assert!(lock_file_in(&err).starts_with(ctx.path("tmp")), "{err}");

    let err = run_with(os("relative/run"));
    assert!(
        err.contains("skipping XDG_RUNTIME_DIR `relative/run`: not an absolute path"),
        "{err}"
    );
    assert!(!ctx.path("work/relative").exists());

    let Some((uid, gid)) = other_user(OTHER) else {
        return;
    };
    let theirs = mkdir(&ctx.path("xdg-theirs"), 0o700);
    std::os::unix::fs::chown(&theirs, Some(uid), Some(gid)).unwrap();
    let err = run_with(theirs.as_os_str());
    assert!(
        err.contains(&format!(
            "skipping `{}`: owned by uid {uid}",
            theirs.display()
        )),
        "{err}"
    );
    assert!(entries(&theirs).is_empty());
}

/// R4: lock files are opened without following symlinks, created exclusively, and never
/// truncated or rewritten: a symlink planted at the lock path leaves its target byte-identical,
/// and a dangling one does not make steady create its target.
#[test]
fn r4_planted_symlink_leaves_the_canary_untouched() {
    let Some(shim) = flock_shim() else { return };
    let ctx = Ctx::new();
    eprintln!(
        "fs.protected_symlinks = {}",
        std::fs::read_to_string("/proc/sys/fs/protected_symlinks")
            .unwrap_or_default()
            .trim()
    );
    let locks = ctx.path("locks");
    let out = run(fallback_steady(&ctx, &shim, &locks).args(["-v", "--", "true"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let file = lock_file_in(&stderr(&out));
    let content = std::fs::read(&file).unwrap();
    assert!(
        content.starts_with(
            ctx.cache()
                .canonicalize()
                .unwrap()
                .as_os_str()
                .as_encoded_bytes()
        )
    );
    let out = run(fallback_steady(&ctx, &shim, &locks).args(["--", "true"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        content,
        "an existing lock file was rewritten"
    );

    let canary = ctx.path("canary");
    std::fs::write(&canary, b"precious\n").unwrap();
    let before = std::fs::metadata(&canary).unwrap();
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&canary, &file).unwrap();
    let out = run(fallback_steady(&ctx, &shim, &locks).args(["--", "touch", "ran"]));
    let err = stderr(&out);
    assert_eq!(code(&out), 125, "{err}");
    assert!(
        err.contains(&format!(
            "unsafe lock path `{}`: it is a symlink",
            file.display()
        )),
        "{err}"
    );
    assert_eq!(std::fs::read(&canary).unwrap(), b"precious\n");
    let after = std::fs::metadata(&canary).unwrap();
    assert_eq!(
        (before.len(), before.modified().unwrap()),
        (after.len(), after.modified().unwrap())
    );
    assert!(!ctx.path("work/ran").exists());

    let target = ctx.path("made-by-steady");
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&target, &file).unwrap();
    let out = run(fallback_steady(&ctx, &shim, &locks).args(["--", "true"]));
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        !target.exists(),
        "steady created the target of a dangling symlink"
    );
}

/// R5: a lock file that is hard-linked (it could be someone else's file) or owned by another
/// user is refused, and the linked file is left alone.
#[test]
fn r5_hard_linked_or_foreign_lock_file_is_refused() {
    let Some(shim) = flock_shim() else { return };
    let ctx = Ctx::new();
    let locks = ctx.path("locks");
    let out = run(fallback_steady(&ctx, &shim, &locks).args(["-v", "--", "true"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let file = lock_file_in(&stderr(&out));

    let canary = ctx.path("locks/canary");
    std::fs::write(&canary, b"precious\n").unwrap();
    std::fs::remove_file(&file).unwrap();
    std::fs::hard_link(&canary, &file).unwrap();
    let out = run(fallback_steady(&ctx, &shim, &locks).args(["--", "touch", "ran"]));
    let err = stderr(&out);
    assert_eq!(code(&out), 125, "{err}");
    assert!(
        err.contains(&format!(
            "unsafe lock path `{}`: it has 2 hard links",
            file.display()
        )),
        "{err}"
    );
    assert_eq!(std::fs::read(&canary).unwrap(), b"precious\n");
    assert!(!ctx.path("work/ran").exists());

    let Some((uid, gid)) = other_user(OTHER) else {
        return;
    };
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, b"").unwrap();
    std::os::unix::fs::chown(&file, Some(uid), Some(gid)).unwrap();
    let out = run(fallback_steady(&ctx, &shim, &locks).args(["--", "touch", "ran"]));
    let err = stderr(&out);
    assert_eq!(code(&out), 125, "{err}");
    assert!(
        err.contains(&format!(
            "unsafe lock path `{}`: it is owned by uid {uid}",
            file.display()
        )),
        "{err}"
    );
    assert!(!ctx.path("work/ran").exists());
}

/// R6: a lock file or cache directory deleted while held does not admit a second holder (the
/// newcomer finds the holder of the deleted one and waits for it), and a waiter whose lock file
/// was replaced while it waited moves to the one now at the path.
#[test]
fn r6_deleted_lock_does_not_admit_a_second_holder() {
    let Some(shim) = flock_shim() else { return };
    let ctx = Ctx::new();
    let locks = ctx.path("locks");
    let mut a = fallback_steady(&ctx, &shim, &locks);
    a.arg("-v");
    let (holder, release) = hold_with(&ctx, &mut a, "a");
    let dir = locks.join(format!("steady-{}", euid()));
    let names = entries(&dir);
    assert_eq!(names.len(), 1, "{names:?}");
    let file = dir.join(&names[0]);
    std::fs::remove_file(&file).unwrap();
    let out = run(fallback_steady(&ctx, &shim, &locks).args([
        "--lock-timeout",
        "500ms",
        "--",
        "touch",
        "ran",
    ]));
    let err = stderr(&out);
    assert_eq!(
        code(&out),
        75,
        "a second holder got in after the lock file was deleted: {err}"
    );
    assert!(err.contains(&format!("pid {}", holder.pid())), "{err}");
    assert!(!ctx.path("work/ran").exists());
    touch(&release);
    assert_eq!(code(&holder.finish()), 0);

    // The same for the cache directory itself, removed and recreated while held.
    let cache = ctx.cache().canonicalize().unwrap();
    let mut c = ctx.steady();
    c.arg("--cache").arg(&cache);
    let (holder, release) = hold_with(&ctx, &mut c, "c");
    std::fs::remove_dir(&cache).unwrap();
    std::fs::create_dir(&cache).unwrap();
    let out = run(ctx.steady().arg("--cache").arg(&cache).args([
        "--lock-timeout",
        "500ms",
        "--",
        "touch",
        "ran",
    ]));
    let err = stderr(&out);
    assert_eq!(
        code(&out),
        75,
        "a second holder got in after the cache was recreated: {err}"
    );
    assert!(err.contains(&format!("pid {}", holder.pid())), "{err}");
    touch(&release);
    assert_eq!(code(&holder.finish()), 0);

    // Replaced while a second run waits on it: that run, once it has the old file, moves to
    // the new one (held here) instead of going ahead.
    let (holder, release) = hold_with(&ctx, &mut fallback_steady(&ctx, &shim, &locks), "d");
    let waiter =
        Bg::spawn(fallback_steady(&ctx, &shim, &locks).args(["-v", "--", "touch", "ran-b"]));
    assert!(
        wait_for(LONG, || waits_for_flock(waiter.pid())),
        "the second run never waited"
    );
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, b"").unwrap();
    let new_lock = hold_flock(&file);
    touch(&release);
    assert_eq!(code(&holder.finish()), 0);
    assert!(
        wait_for(LONG, || waits_for_flock_on(waiter.pid(), &file)),
        "the second run did not wait for the new lock file"
    );
    assert!(
        !ctx.path("work/ran-b").exists(),
        "the second run went ahead on a replaced lock file"
    );
    drop(new_lock);
    let out = waiter.finish();
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert!(
        err.contains("was replaced while we waited for its lock"),
        "{err}"
    );
    assert!(ctx.path("work/ran-b").exists());
}

/// What to plant at a lock path, how, and the reason steady must give.
type Plant<'a> = (&'a str, &'a dyn Fn(&Path), &'a str);

/// R7: every unsafe thing at the lock path (symlink, directory, FIFO, hard link) is reported as
/// "unsafe lock path <path>: <reason>" with exit 125, and the command is not run.
#[test]
fn r7_unsafe_lock_paths_exit_125_with_a_reason() {
    let Some(shim) = flock_shim() else { return };
    let ctx = Ctx::new();
    let out = run(fallback_steady(&ctx, &shim, &ctx.path("probe")).args(["-v", "--", "true"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let name = lock_file_in(&stderr(&out)).file_name().unwrap().to_owned();
    let canary = ctx.path("canary");
    std::fs::write(&canary, b"x").unwrap();
    let plants: [Plant; 4] = [
        (
            "symlink",
            &|p| std::os::unix::fs::symlink(&canary, p).unwrap(),
            "it is a symlink",
        ),
        (
            "directory",
            &|p| std::fs::create_dir(p).unwrap(),
            "it is a directory",
        ),
        (
            "fifo",
            &|p| nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap(),
            "it is not a regular file",
        ),
        (
            "hard link",
            &|p| std::fs::hard_link(&canary, p).unwrap(),
            "it has 2 hard links",
        ),
    ];
    for (i, (what, plant, reason)) in plants.iter().enumerate() {
        let base = ctx.path(&format!("locks-{i}"));
        let dir = mkdir(&base.join(format!("steady-{}", euid())), 0o700);
        let file = dir.join(&name);
        plant(&file);
        let started = Instant::now();
        let out = run(fallback_steady(&ctx, &shim, &base).args(["--", "touch", "ran"]));
        let err = stderr(&out);
        assert_eq!(code(&out), 125, "{what}: {err}");
        assert!(
            err.contains(&format!(
                "steady: unsafe lock path `{}`: {reason}",
                file.display()
            )),
            "{what}: {err}"
        );
        assert!(err.contains("the command was not run"), "{what}: {err}");
        assert!(
            started.elapsed() < LONG,
            "{what}: took {:?}",
            started.elapsed()
        );
        assert!(!ctx.path("work/ran").exists(), "{what}: the command ran");
    }
}

/// R8: the lock descriptors are close-on-exec, so a daemon the command leaves behind does not
/// keep the lock (directory lock and fallback file alike).
#[test]
fn r8_daemon_left_behind_does_not_keep_the_lock() {
    let Some(shim) = flock_shim() else { return };
    let ctx = Ctx::new();
    ctx.fixture(
        "daemonize",
        "setsid sh -c 'echo $$ > \"$1\"; exec sleep 300' sh \"$1\" </dev/null >/dev/null 2>&1 &\n",
    );
    let cache = ctx.cache().canonicalize().unwrap();
    let mut daemons = Vec::new();
    for (tag, mut cmd) in [
        ("directory", {
            let mut c = ctx.steady();
            c.arg("--cache").arg(&cache);
            c
        }),
        ("fallback", fallback_steady(&ctx, &shim, &ctx.path("locks"))),
    ] {
        let pidfile = ctx.path(&format!("daemon-{tag}"));
        let out = run(cmd.arg("-v").arg("--").arg("daemonize").arg(&pidfile));
        let err = stderr(&out);
        assert_eq!(code(&out), 0, "{err}");
        assert!(
            wait_for(LONG, || !pids_in(&pidfile).is_empty()),
            "{tag}: the daemon never started"
        );
        let pid = pids_in(&pidfile)[0];
        daemons.push(pid);
        assert!(pid_alive(pid), "{tag}: the daemon died");
        let locked = if tag == "directory" {
            cache.clone()
        } else {
            lock_file_in(&err)
        };
        assert!(
            flock_free(&locked),
            "{tag}: the daemon kept the lock on {}",
            locked.display()
        );
    }
    for pid in daemons {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// R9: the wait blocks in the kernel and survives signals steady handles for other purposes
/// (SIGWINCH, SIGCHLD, SIGALRM) and one it does not (SIGCONT); INT and TERM end it, steady dies
/// of them, and the command never runs.
#[test]
fn r9_signals_during_a_lock_wait_do_not_abort_it() {
    let ctx = Ctx::new();
    let cache = ctx.cache().canonicalize().unwrap();
    let held = hold_flock(&cache);
    let bg = Bg::spawn(
        ctx.steady()
            .arg("-v")
            .arg("--cache")
            .arg(&cache)
            .args(["--", "touch", "ran"]),
    );
    let pid = bg.pid();
    assert!(
        wait_for(LONG, || waits_for_flock(pid)),
        "steady never waited in the kernel"
    );
    for sig in [
        Signal::SIGWINCH,
        Signal::SIGCHLD,
        Signal::SIGALRM,
        Signal::SIGCONT,
        Signal::SIGWINCH,
        Signal::SIGCHLD,
    ] {
        signal(pid, sig);
        assert!(
            wait_for(LONG, || waits_for_flock(pid) || !bg.alive()),
            "steady stopped waiting after {sig}"
        );
        assert!(bg.alive(), "steady died of {sig} during the wait");
    }
    assert!(!ctx.path("work/ran").exists());
    drop(held);
    let out = bg.finish();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("got the lock"), "{}", stderr(&out));
    assert!(ctx.path("work/ran").exists());
    std::fs::remove_file(ctx.path("work/ran")).unwrap();

    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let held = hold_flock(&cache);
        let bg = Bg::spawn(
            ctx.steady()
                .arg("--cache")
                .arg(&cache)
                .args(["--", "touch", "ran"]),
        );
        assert!(wait_for(LONG, || waits_for_flock(bg.pid())));
        signal(bg.pid(), sig);
        assert!(wait_for(LONG, || !bg.alive()), "{sig} did not end the wait");
        let out = bg.finish();
        drop(held);
        assert_eq!(
            out.status.signal(),
            Some(sig as i32),
            "{sig}: {:?} {}",
            out.status,
            stderr(&out)
        );
        assert!(!ctx.path("work/ran").exists(), "{sig}: the command ran");
    }
}

/// R9: blocking contenders looping on the same lock (flock(1) waits in the kernel too) do not
/// starve steady's wait, as they would a poller.
#[test]
fn r9_looping_blocking_contenders_do_not_starve_the_wait() {
    if require("flock").is_none() {
        return;
    }
    let ctx = Ctx::new();
    let cache = ctx.cache().canonicalize().unwrap();
    let stop = ctx.path("stop");
    let looper = ctx.fixture(
        "looper",
        "while [ ! -e \"$2\" ]; do flock \"$1\" sleep 0.01; done\n",
    );
    let mut loopers: Vec<Bg> = (0..3)
        .map(|_| Bg::spawn(Command::new(&looper).arg(&cache).arg(&stop)))
        .collect();
    let started = Instant::now();
    let out = run(ctx.steady().arg("--cache").arg(&cache).args([
        "--lock-timeout",
        "30s",
        "--",
        "touch",
        "ran",
    ]));
    touch(&stop);
    for l in loopers.drain(..) {
        assert!(l.finish().status.success());
    }
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(started.elapsed() < LONG);
}

/// R10: `--lock-timeout` ends the wait with exit 75 and a message naming the lock and the
/// holder's pid; `0` fails at once; while waiting, progress lines follow the first.
#[test]
fn r10_lock_timeout_exits_75_naming_the_holder() {
    let ctx = Ctx::new();
    let cache = ctx.cache().canonicalize().unwrap();
    let held = hold_flock(&cache);
    let me = format!("pid {}", std::process::id());
    let started = Instant::now();
    let out = run(ctx
        .steady()
        .env("STEADY_LOCK_PROGRESS", "200ms")
        .arg("--cache")
        .arg(&cache)
        .args(["--lock-timeout", "1s", "--", "touch", "ran"]));
    let waited = started.elapsed();
    let err = stderr(&out);
    assert_eq!(code(&out), 75, "{err}");
    assert!(
        waited >= Duration::from_millis(900) && waited < LONG,
        "waited {waited:?}"
    );
    assert!(
        err.contains(&format!(
            "waiting for the lock on `{}`, held by {me}",
            cache.display()
        )),
        "{err}"
    );
    assert!(err.contains("still waiting for the lock"), "{err}");
    assert!(
        err.contains(&format!(
            "gave up waiting for the lock on `{}`",
            cache.display()
        )),
        "{err}"
    );
    let last = err.lines().rfind(|l| l.starts_with("steady: "));
    assert!(last.unwrap().contains(&me), "{err}");
    assert!(!ctx.path("work/ran").exists());

    let started = Instant::now();
    let out = run(ctx.steady().arg("--cache").arg(&cache).args([
        "--lock-timeout",
        "0",
        "--",
        "touch",
        "ran",
    ]));
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(stderr(&out).contains(&me));
    assert!(!ctx.path("work/ran").exists());
    drop(held);
}

/// R11: flock errors are classified by errno, not by Rust's ErrorKind (524 has none): ENOLCK,
/// EOPNOTSUPP, 524, ENOSYS and an unexpected error fall back to a lock file; EINTR is retried;
/// where nothing can be locked steady runs unlocked with a warning, or exits 75 under
/// STEADY_REQUIRE_LOCK=1.
#[test]
fn r11_flock_errors_are_classified_by_errno() {
    let Some(shim) = flock_shim() else { return };
    let ctx = Ctx::new();
    let cache = ctx.cache().canonicalize().unwrap();
    let locks = ctx.path("locks");
    for (errno, says) in [
        (libc::ENOLCK, "does not support flock (ENOLCK"),
        (libc::EOPNOTSUPP, "does not support flock (EOPNOTSUPP"),
        (524, "does not support flock (ENOTSUPP, os error 524)"),
        (libc::ENOSYS, "does not support flock (ENOSYS"),
        (libc::EINVAL, "flock failed (EINVAL"),
    ] {
        let ran = format!("ran-{errno}");
        let out = run(shimmed(&ctx, &shim, errno, &[&cache])
            .arg("-v")
            .arg("--cache")
            .arg(&cache)
            .arg("--lock-dir")
            .arg(&locks)
            .args(["--", "touch", &ran]));
        let err = stderr(&out);
        assert_eq!(code(&out), 0, "{errno}: {err}");
        assert!(err.contains(says), "{errno}: {err}");
        assert!(
            err.contains("using a per-user lock file instead"),
            "{errno}: {err}"
        );
        assert!(lock_file_in(&err).starts_with(&locks), "{errno}: {err}");
        assert!(ctx.path(&format!("work/{ran}")).exists());
    }

    let out = run(ctx
        .steady()
        .env("LD_PRELOAD", &shim)
        .env("STEADY_SHIM_FLOCK_EINTR", "5")
        .arg("-v")
        .arg("--cache")
        .arg(&cache)
        .args(["--", "true"]));
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert!(
        err.contains("on the path itself"),
        "EINTR was not retried: {err}"
    );
    assert!(
        !err.contains("per-user lock file"),
        "EINTR made steady fall back: {err}"
    );

    let out = run(shimmed(&ctx, &shim, libc::ENOLCK, &[])
        .arg("--cache")
        .arg(&cache)
        .arg("--lock-dir")
        .arg(&locks)
        .args(["--", "touch", "unlocked"]));
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert!(
        err.contains(&format!("running without a lock on `{}`", cache.display())),
        "{err}"
    );
    assert!(ctx.path("work/unlocked").exists());

    let out = run(shimmed(&ctx, &shim, libc::ENOLCK, &[])
        .env("STEADY_REQUIRE_LOCK", "1")
        .arg("--cache")
        .arg(&cache)
        .arg("--lock-dir")
        .arg(&locks)
        .args(["--", "touch", "strict"]));
    let err = stderr(&out);
    assert_eq!(code(&out), 75, "{err}");
    assert!(
        err.contains("the command was not run because STEADY_REQUIRE_LOCK=1"),
        "{err}"
    );
    assert!(!ctx.path("work/strict").exists());
}

/// R12: -v says how strong the lock is on the cache's filesystem. The statfs classifier itself,
/// NFS included, is unit-tested in src/lock/; this checks the line for the filesystem here.
#[test]
fn r12_verbose_says_how_strong_the_lock_is_there() {
    let ctx = Ctx::new();
    let cache = ctx.cache().canonicalize().unwrap();
    let out = run(ctx
        .steady()
        .arg("-v")
        .arg("--cache")
        .arg(&cache)
        .args(["--", "true"]));
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    let fstype = Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(&cache)
        .output()
        .map(|o| stdout(&o).trim().to_owned())
        .unwrap_or_default();
    let expect = match fstype.as_str() {
        "nfs" | "cifs" | "smb2" | "ceph" | "fuseblk" | "fuse" | "lustre" | "gpfs" | "v9fs"
        | "afs" => "only as strong as that mount's lock support",
        "ext2/ext3" | "xfs" | "btrfs" | "tmpfs" | "overlayfs" | "zfs" => {
            "a local filesystem: the kernel's flock is exact there"
        }
        other => {
            eprintln!("unfamiliar filesystem `{other}`; checking only that the line is there");
            "is on"
        }
    };
    assert!(
        err.contains(&format!("`{}` is on", cache.display())) && err.contains(expect),
        "{fstype}: {err}"
    );
}

/// Nesting: a steady running a command that itself runs steady on the same cache goes ahead
/// instead of deadlocking, and says so; an inherited mark from a steady that is not an
/// ancestor (a daemon's copy of the environment) does not let a run skip the lock.
#[test]
fn nested_steady_on_the_same_cache_goes_ahead() {
    let ctx = Ctx::new();
    let cache = ctx.cache().canonicalize().unwrap();
    ctx.fixture("outer", "exec \"$1\" -v --cache \"$2\" --lock-timeout 5s -- sh -c 'echo inner > \"$1\"' sh \"$3\"\n");
    let out = run(ctx
        .steady()
        .arg("--cache")
        .arg(&cache)
        .arg("--")
        .arg("outer")
        .arg(steady_bin())
        .arg(&cache)
        .arg(ctx.path("inner")));
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "the nested steady did not go ahead: {err}");
    assert!(
        err.contains(&format!(
            "the lock on `{}` is held by an enclosing steady",
            cache.display()
        )),
        "{err}"
    );
    assert_eq!(ctx.read("inner"), "inner\n");

    let held = hold_flock(&cache);
    let mut stranger = Command::new("sleep").arg("60").spawn().unwrap();
    let out = run(ctx
        .steady()
        .env(
            "STEADY_HELD_LOCKS",
            format!("{} {}", stranger.id(), cache.display()),
        )
        .arg("--cache")
        .arg(&cache)
        .args(["--lock-timeout", "300ms", "--", "true"]));
    let _ = stranger.kill();
    let _ = stranger.wait();
    drop(held);
    assert_eq!(
        code(&out),
        75,
        "a mark from a non-ancestor skipped the lock: {}",
        stderr(&out)
    );
}

/// `--shared`: readers run together, writers alone. Sixteen runs start at once, ten writers and
/// six readers, each fixture checking on entry and exit that no run it must exclude is inside;
/// readers wait (bounded) until two of them are inside, which proves they overlap.
#[test]
fn shared_readers_overlap_and_writers_never_overlap_anything() {
    let ctx = Ctx::new();
    let cache = ctx.cache().canonicalize().unwrap();
    let d = ctx.path("arena");
    std::fs::create_dir_all(d.join("in")).unwrap();
    ctx.fixture(
        "arena",
        r#"kind=$1 id=$2 d=$3
check() {
  for t in "$d"/in/*; do
    [ -e "$t" ] || continue
    other=${t##*/}
    [ "$other" = "$kind$id" ] && continue
    case "$kind$other" in
      w*|rw*) echo "$kind$id overlapped $other" >> "$d/bad" ;;
    esac
  done
}
echo "start $kind$id $(date +%s%N)" >> "$d/log"
check
touch "$d/in/$kind$id"
if [ "$kind" = r ]; then
  i=0
  while [ ! -e "$d/paired" ] && [ $i -lt 200 ]; do
    [ "$(ls "$d/in" | grep -c '^r')" -ge 2 ] && touch "$d/paired" && break
    sleep 0.05; i=$((i+1))
  done
else
  sleep 0.1
fi
check
rm "$d/in/$kind$id"
echo "end $kind$id $(date +%s%N)" >> "$d/log"
"#,
    );
    let runs: Vec<(String, Bg)> = (0..16)
        .map(|i| {
            let kind = if i % 8 < 3 { "r" } else { "w" };
            let mut cmd = ctx.steady();
            cmd.arg("--cache")
                .arg(&cache)
                .args(["--lock-timeout", "60s"]);
            if kind == "r" {
                cmd.arg("--shared");
            }
            cmd.arg("--")
                .arg("arena")
                .arg(kind)
                .arg(i.to_string())
                .arg(&d);
            (format!("{kind}{i}"), Bg::spawn(&mut cmd))
        })
        .collect();
    for (name, bg) in runs {
        let out = bg.finish();
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
    }
    let log = std::fs::read_to_string(d.join("log")).unwrap_or_default();
    assert_eq!(
        log.lines().filter(|l| l.starts_with("end ")).count(),
        16,
        "{log}"
    );
    let bad = std::fs::read_to_string(d.join("bad")).unwrap_or_default();
    assert!(bad.is_empty(), "overlaps:\n{bad}\nlog:\n{log}");
    assert!(
        d.join("paired").exists(),
        "no two readers were ever inside together:\n{log}"
    );
}

/// `--lock PATH`: environments are locked beside the cache, all in one global order (by
/// canonical path), whatever the order on the command line, so that two runs cannot deadlock;
/// an unknown command with `--lock` is supervised, and its command learns the held keys.
#[test]
fn lock_paths_are_taken_in_global_order() {
    let ctx = Ctx::new();
    let (a, b) = (
        mkdir(&ctx.path("env-a"), 0o755),
        mkdir(&ctx.path("env-b"), 0o755),
    );
    let held_b = hold_flock(&b);
    let bg = Bg::spawn(
        ctx.steady()
            .arg("-v")
            .arg("--lock")
            .arg(&b)
            .arg("--lock")
            .arg(&a)
            .args(["--", "touch", "ran"]),
    );
    let pid = bg.pid();
    assert!(
        wait_for(LONG, || holds_flock(pid, &a) && waits_for_flock(pid)),
        "steady did not take env-a first and then wait for env-b"
    );
    drop(held_b);
    let out = bg.finish();
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert!(
        err.contains(&format!(
            "taking 2 locks in path order (so that runs cannot deadlock each other): `{}`, `{}`",
            a.display(),
            b.display()
        )),
        "{err}"
    );

    let runs: Vec<Bg> = (0..8)
        .map(|i| {
            let (first, second) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
            Bg::spawn(
                ctx.steady()
                    .arg("--cache")
                    .arg(ctx.cache())
                    .arg("--lock")
                    .arg(first)
                    .arg("--lock")
                    .arg(second)
                    .args(["--lock-timeout", "60s", "--", "sleep", "0.05"]),
            )
        })
        .collect();
    for bg in runs {
        let out = bg.finish();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }

    let out = run(ctx
        .steady()
        .env("STEADY_LOCK", format!("{}:{}", b.display(), a.display()))
        .args(["--", "sh", "-c", "echo \"$STEADY_HELD_LOCKS\""]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let said = stdout(&out);
    let keys: Vec<&str> = said
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, k)| k))
        .collect();
    assert_eq!(keys, [a.to_str().unwrap(), b.to_str().unwrap()], "{said}");
}

/// `steady status` lists, for this user, each lock steady holds or waits on: key, scope, holder
/// pid and command, since when, and waiters; for directory locks and fallback files alike.
#[test]
fn status_lists_holders_and_waiters() {
    let Some(shim) = flock_shim() else { return };
    let ctx = Ctx::new();
    let cache = ctx.cache().canonicalize().unwrap();
    let env = mkdir(&ctx.path("env"), 0o755).canonicalize().unwrap();
    let mut a = ctx.steady();
    a.arg("--cache").arg(&cache);
    let (holder, release) = hold_with(&ctx, &mut a, "a");
    let waiter = Bg::spawn(
        ctx.steady()
            .args(["--shared", "--cache"])
            .arg(&cache)
            .args(["--", "true"]),
    );
    assert!(wait_for(LONG, || waits_for_flock(waiter.pid())));
    let mut f = shimmed(&ctx, &shim, libc::ENOLCK, &[&env]);
    f.arg("--lock")
        .arg(&env)
        .arg("--lock-dir")
        .arg(ctx.path("locks"));
    let (file_holder, file_release) = hold_with(&ctx, &mut f, "f");

    // A waiter re-enters its wait now and then; ask until the listing shows it waiting.
    let mut text = String::new();
    let complete = wait_for(LONG, || {
        let out = run(Command::new(steady_bin()).arg("status"));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        text = stdout(&out);
        text.contains(&format!("pid {} (shared, waiting for", waiter.pid()))
            && text.lines().any(|l| l == env.display().to_string())
    });
    touch(&release);
    touch(&file_release);
    assert!(complete, "the listing never showed both locks:\n{text}");
    let section = |key: &Path| -> String {
        let key = key.display().to_string();
        let start = text
            .lines()
            .position(|l| l == key)
            .unwrap_or_else(|| panic!("`{key}` not listed:\n{text}"));
        text.lines()
            .skip(start)
            .take_while(|l| *l == key || l.starts_with(' '))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let dir = section(&cache);
    assert!(
        dir.contains("flock on the directory itself: shared with everyone who uses it"),
        "{dir}"
    );
    assert!(
        dir.contains(&format!(
            "held by: pid {} (exclusive, held for",
            holder.pid()
        )),
        "{dir}"
    );
    assert!(
        dir.contains("--cache"),
        "the holder's command is missing:\n{dir}"
    );
    assert!(dir.contains("waiting: 1"), "{dir}");
    assert!(
        dir.contains(&format!("pid {} (shared, waiting for", waiter.pid())),
        "{dir}"
    );
    let file = section(&env);
    assert!(
        file.contains(&format!(
            "lock file `{}/steady-{}/",
            ctx.path("locks").display(),
            euid()
        )),
        "{file}"
    );
    assert!(
        file.contains("shared only with this user on this node or container"),
        "{file}"
    );
    assert!(
        file.contains(&format!(
            "held by: pid {} (exclusive, held for",
            file_holder.pid()
        )),
        "{file}"
    );
    assert!(file.contains("waiting: 0"), "{file}");
    for bg in [holder, waiter, file_holder] {
        assert_eq!(code(&bg.finish()), 0);
    }

    // A user with no steady running has nothing listed.
    let Some((uid, gid)) = other_user("steady-test-idle") else {
        return;
    };
    let out = run(Command::new(steady_bin()).arg("status").uid(uid).gid(gid));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "no steady locks held or waited on by this user\n"
    );
}
