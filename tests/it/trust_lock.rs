//! Issue 14, the lock and clean cases, each reproduced as a user or a careless co-tenant would
//! and then asserted by behaviour: overlaps counted from a log that every run appends its start
//! and end to, canary files that must survive every clean, processes that must be gone.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::*;

/// Bound for things that happen at once on an idle machine.
const LONG: Duration = Duration::from_secs(30);

fn touch(p: &Path) {
    std::fs::write(p, b"").unwrap();
}

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// `seg LOG TAG INSIDE RELEASE`: appends `start TAG <ns>` to LOG, says it is inside, stays
/// until RELEASE exists (bounded), then appends `end TAG <ns>`.
fn segment_fixture(ctx: &Ctx) {
    ctx.fixture(
        "seg",
        "echo \"start $2 $(date +%s%N)\" >> \"$1\"\n\
         touch \"$3\"\n\
         i=0\n\
         while [ ! -e \"$4\" ]; do sleep 0.05; i=$((i+1)); [ $i -gt 1200 ] && break; done\n\
         echo \"end $2 $(date +%s%N)\" >> \"$1\"\n",
    );
}

/// Pairs of runs in `log` whose start..end intervals overlap. A run that never wrote its end
/// counts as running to the end of the log.
fn overlaps(log: &str) -> usize {
    let mut spans: Vec<(String, u128, u128)> = Vec::new();
    for line in log.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let (Some(kind), Some(tag), Some(t)) = (w.first(), w.get(1), w.get(2)) else {
            continue;
        };
        let Ok(t) = t.parse::<u128>() else { continue };
        match *kind {
            "start" => spans.push((tag.to_string(), t, u128::MAX)),
            "end" => {
                if let Some(s) = spans.iter_mut().rev().find(|s| s.0 == *tag) {
                    s.2 = t;
                }
            }
            // A single moment of work (a clean's tick) is a span of zero length.
            "tick" => spans.push((tag.to_string(), t, t)),
            _ => {}
        }
    }
    let mut n = 0;
    for i in 0..spans.len() {
        for j in i + 1..spans.len() {
            let (a, b) = (&spans[i], &spans[j]);
            if a.0 != b.0 && a.1 <= b.2 && b.1 <= a.2 {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn overlap_counting_counts() {
    assert_eq!(overlaps("start a 1\nend a 5\nstart b 6\nend b 9\n"), 0);
    assert_eq!(overlaps("start a 1\nstart b 3\nend a 5\nend b 9\n"), 1);
    assert_eq!(overlaps("start a 1\ntick c 2\nend a 5\ntick c 6\n"), 1);
}

/// Case 9: a cache path holding a newline (any byte a path may hold) round-trips through the
/// held-locks hand-down, so a nested steady on the same cache goes ahead instead of waiting for
/// its own ancestor.
#[test]
fn nested_run_on_a_cache_path_with_a_newline_goes_ahead() {
    let ctx = Ctx::new();
    for name in ["odd\nname", "per%cent 0A", "tab\there"] {
        let cache = ctx.path(name);
        std::fs::create_dir_all(&cache).unwrap();
        let cache = cache.canonicalize().unwrap();
        let marker = ctx.path("inner");
        let _ = std::fs::remove_file(&marker);
        let out = run(ctx
            .steady()
            .arg("--cache")
            .arg(&cache)
            .arg("--")
            .arg(steady_bin())
            .arg("--cache")
            .arg(&cache)
            .args(["--lock-timeout", "3s", "--", "touch"])
            .arg(&marker));
        assert_eq!(
            code(&out),
            0,
            "the nested run on {name:?} did not go ahead: {}",
            stderr(&out)
        );
        assert!(marker.exists(), "{name:?}");
    }
}

/// Case 16: an entry of STEADY_HELD_LOCKS is trusted only when that ancestor really holds the
/// lock; a shell that merely is an ancestor, or pid 1, does not let a run skip it.
#[test]
fn held_locks_entry_of_an_ancestor_without_the_lock_is_ignored() {
    let ctx = Ctx::new();
    let cache = ctx.cache().canonicalize().unwrap();
    let held = hold_flock(&cache);
    for pid in ["$$", "1"] {
        let script = format!(
            "STEADY_HELD_LOCKS=\"{pid} $1\" \"$2\" --cache \"$1\" --lock-timeout 300ms -- touch ran; echo $? > code"
        );
        let out = run(ctx
            .steady()
            .arg("--no-lock")
            .arg("--")
            .arg("sh")
            .arg("-c")
            .arg(&script)
            .arg("sh")
            .arg(&cache)
            .arg(steady_bin()));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(
            ctx.read("work/code").trim(),
            "75",
            "an entry naming {pid} skipped a lock held by someone else: {}",
            stderr(&out)
        );
        assert!(!ctx.path("work/ran").exists());
    }
    drop(held);
}

/// Case 16: `--lock` on something that is neither a directory nor a regular file is checked
/// before it is opened. A FIFO shows it: opening one for reading completes a writer's open,
/// which must never happen.
#[test]
fn lock_path_of_the_wrong_type_is_never_opened() {
    let ctx = Ctx::new();
    let fifo = ctx.path("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            // Blocks until someone opens the FIFO for reading.
            let f = std::fs::OpenOptions::new().write(true).open(&fifo);
            f.is_ok()
        })
    };
    let out = run(ctx.steady().arg("--lock").arg(&fifo).args(["--", "true"]));
    let opened_by_steady = wait_for(Duration::from_millis(500), || writer.is_finished());
    // Let the writer go whatever happened (without blocking when it is already gone).
    let reader = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
    };
    assert!(writer.join().unwrap());
    drop(reader);
    assert!(
        !opened_by_steady,
        "steady opened the FIFO before checking its type: {}",
        stderr(&out)
    );
}

/// Starts run `tag` (steady with its options) of the `seg` fixture and returns once it is
/// inside, with the file that lets it go.
fn start_segment(ctx: &Ctx, mut cmd: Command, log: &Path, tag: &str) -> (Bg, PathBuf) {
    let inside = ctx.path(&format!("inside-{tag}"));
    let release = ctx.path(&format!("release-{tag}"));
    cmd.arg("--")
        .arg("seg")
        .arg(log)
        .arg(tag)
        .arg(&inside)
        .arg(&release);
    let bg = Bg::spawn(&mut cmd);
    assert!(
        wait_for(LONG, || inside.exists() || !bg.alive()),
        "run {tag} never got in"
    );
    (bg, release)
}

/// Case 8: renaming the cache directory, or the fallback lock file, or moving its directory,
/// while run A holds the lock does not let run B in: 0 overlaps, counted from the runs' own
/// log, over every way and two rounds each.
#[test]
fn renamed_cache_or_lock_file_admits_no_second_holder() {
    let Some(shim) = flock_shim() else { return };
    let ctx = Ctx::new();
    segment_fixture(&ctx);
    let log = ctx.path("log");
    let mut total = 0;
    for round in 0..2 {
        for way in ["cache-renamed", "file-renamed", "dir-moved", "file-deleted"] {
            let cache = ctx.path(&format!("c-{way}-{round}"));
            std::fs::create_dir_all(&cache).unwrap();
            let cache = cache.canonicalize().unwrap();
            let locks = ctx.path(&format!("locks-{way}-{round}"));
            let steady = || {
                let mut cmd = ctx.steady();
                if way != "cache-renamed" {
                    cmd.env("LD_PRELOAD", &shim)
                        .env("STEADY_SHIM_FLOCK_ERRNO", libc::ENOLCK.to_string())
                        .env("STEADY_SHIM_FLOCK_PATHS", cache.as_os_str())
                        .arg("--lock-dir")
                        .arg(&locks);
                }
                cmd.arg("--cache").arg(&cache);
                cmd
            };
            let a_tag = format!("a-{way}-{round}");
            let (a, release_a) = start_segment(&ctx, steady(), &log, &a_tag);
            let per_user = locks.join(format!("steady-{}", nix::unistd::geteuid()));
            match way {
                "cache-renamed" => {
                    std::fs::rename(&cache, cache.with_extension("moved")).unwrap();
                }
                "dir-moved" => {
                    std::fs::rename(&per_user, per_user.with_extension("moved")).unwrap();
                }
                _ => {
                    let name = std::fs::read_dir(&per_user)
                        .unwrap()
                        .flatten()
                        .next()
                        .expect("a lock file")
                        .path();
                    if way == "file-deleted" {
                        std::fs::remove_file(&name).unwrap();
                    } else {
                        std::fs::rename(&name, name.with_extension("moved")).unwrap();
                    }
                }
            }
            let b_tag = format!("b-{way}-{round}");
            let inside_b = ctx.path(&format!("inside-{b_tag}"));
            let release_b = ctx.path(&format!("release-{b_tag}"));
            touch(&release_b);
            let mut cmd = steady();
            cmd.arg("--")
                .arg("seg")
                .arg(&log)
                .arg(&b_tag)
                .arg(&inside_b)
                .arg(&release_b);
            let b = Bg::spawn(&mut cmd);
            // B either waits for A (as it must) or gets in beside it.
            wait_for(LONG, || waits_for_flock(b.pid()) || inside_b.exists());
            touch(&release_a);
            assert_eq!(code(&a.finish()), 0);
            let out = b.finish();
            assert_eq!(code(&out), 0, "{way}: {}", stderr(&out));
            let n = overlaps(&std::fs::read_to_string(&log).unwrap());
            assert_eq!(
                n - total,
                0,
                "{way}, round {round}: B ran beside A\n{}",
                stderr(&out)
            );
            total = n;
        }
    }
}

/// Case 11: a lock directory (here `--lock-dir`, as for TMPDIR) that another user owns and
/// everyone may write to without the sticky bit is not used: its owner could rename steady's
/// per-user directory away while a run holds a lock in it.
#[test]
fn foreign_writable_lock_base_is_not_used() {
    let Some(shim) = flock_shim() else { return };
    let Some((uid, gid)) = other_user("steady-test-other") else {
        return;
    };
    let ctx = Ctx::new();
    chmod(ctx.root(), 0o755);
    let cache = ctx.cache().canonicalize().unwrap();
    for (mode, owner) in [(0o777, uid), (0o777, 0), (0o775, uid)] {
        let base = ctx.path(&format!("base-{mode:o}-{owner}"));
        std::fs::create_dir(&base).unwrap();
        std::os::unix::fs::chown(&base, Some(owner), Some(gid)).unwrap();
        chmod(&base, mode);
        let out = run(ctx
            .steady()
            .env("LD_PRELOAD", &shim)
            .env("STEADY_SHIM_FLOCK_ERRNO", libc::ENOLCK.to_string())
            .env("STEADY_SHIM_FLOCK_PATHS", cache.as_os_str())
            .args(["-v", "--cache"])
            .arg(&cache)
            .arg("--lock-dir")
            .arg(&base)
            .args(["--", "true"]));
        let err = stderr(&out);
        assert_eq!(code(&out), 0, "{err}");
        let used: Vec<_> = std::fs::read_dir(&base).unwrap().flatten().collect();
        assert!(
            used.is_empty(),
            "steady used a lock directory in {base:?} (mode {mode:o}, owner {owner}): {err}"
        );
    }
    // The user's own private directory and a sticky one stay usable.
    let mine = ctx.path("mine");
    std::fs::create_dir(&mine).unwrap();
    chmod(&mine, 0o700);
    let out = run(ctx
        .steady()
        .env("LD_PRELOAD", &shim)
        .env("STEADY_SHIM_FLOCK_ERRNO", libc::ENOLCK.to_string())
        .env("STEADY_SHIM_FLOCK_PATHS", cache.as_os_str())
        .arg("--cache")
        .arg(&cache)
        .arg("--lock-dir")
        .arg(&mine)
        .args(["--", "true"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let per_user = mine.join(format!("steady-{}", nix::unistd::geteuid()));
    assert_eq!(
        std::fs::read_dir(&per_user).map(|d| d.count()).unwrap_or(0),
        1,
        "the user's own directory was not used for the lock file"
    );
}

/// A fake `uv`: `pip install` fails with an unexplained error (so steady clears the cache and
/// retries once) until `$UV_FAKE_OK` exists; `cache clean` empties the directory it is given,
/// as uv does, following what the path names.
fn fake_uv(ctx: &Ctx) {
    ctx.fixture(
        "uv",
        "if [ \"$1 $2\" = \"cache clean\" ]; then\n\
           d=\"$UV_CACHE_DIR\"\n\
           while [ $# -gt 0 ]; do [ \"$1\" = --cache-dir ] && d=\"$2\"; shift; done\n\
           echo \"$d\" >> \"$UV_FAKE_LOG\"\n\
           for f in \"$d\"/* \"$d\"/.[!.]*; do [ -e \"$f\" ] && rm -rf \"$f\"; done\n\
           exit 0\n\
         fi\n\
         if [ \"$1\" = --version ]; then echo 'uv 0.13.0'; exit 0; fi\n\
         echo 'error: something unexplained' >&2\n\
         exit 1\n",
    );
}

/// A directory that looks like a uv cache (its tag and an archive) and also holds a user's file
/// and a canary.
fn uv_like(dir: &Path) {
    write(
        &dir.join("CACHEDIR.TAG"),
        "Signature: 8a477f597d28d172789f06886806bc55\n",
    );
    write(&dir.join("archive-v0/x/METADATA"), "x");
    write(&dir.join("photo.jpg"), "a user's photo");
    write(&dir.join("canary"), "keep");
}

/// Case 3: a trailing slash (or `/.`) on a symlink to a directory does not slip past the
/// symlink check: the rule is decided once on the resolved path, and the user data the link
/// points at survives.
#[test]
fn trailing_slash_on_a_symlinked_cache_is_refused() {
    let ctx = Ctx::new();
    fake_uv(&ctx);
    let real = ctx.path("real");
    uv_like(&real);
    let link = ctx.path("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let log = ctx.path("clean-log");
    for spelling in [
        "link",
        "link/",
        "link//",
        "link/.",
        "link/./",
        "real/../link/",
    ] {
        let value = format!("{}/{spelling}", ctx.root().display());
        let out = run(ctx
            .steady()
            .env("UV_CACHE_DIR", &value)
            .env("UV_FAKE_LOG", &log)
            .args(["--retries", "1", "--backoff", "10ms", "--"])
            .args(["uv", "pip", "install", "x"]));
        let err = stderr(&out);
        assert_eq!(code(&out), 1, "{spelling}: {err}");
        assert!(
            real.join("canary").exists() && real.join("photo.jpg").exists(),
            "`{spelling}` cleared the symlink's target: {err}\nclean ran on: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let doctor = run(ctx
            .steady()
            .env("UV_CACHE_DIR", &value)
            .args(["doctor", "uv", "pip", "install", "x"]));
        let said = stdout(&doctor);
        assert!(
            said.contains("never: steady will not clear it"),
            "doctor disagrees for `{spelling}`:\n{said}"
        );
    }
    assert!(!log.exists(), "the clean ran");
}

/// A fake `bundle` whose `install` fails with an unexplained error.
fn fake_bundle(ctx: &Ctx) {
    ctx.fixture("bundle", "echo 'something unexplained' >&2\nexit 1\n");
}

/// Case 2: a clean clears a directory only when it is positively that installer's cache, and
/// then only the entries of the kinds that installer creates; system trees, a home directory
/// and the working directory's parents are refused for every installer (and `doctor` agrees).
/// A canary beside the cache entries survives every clean.
#[test]
fn clean_clears_only_an_installers_own_entries() {
    let ctx = Ctx::new();
    fake_bundle(&ctx);
    // A project that merely holds an entry named like one of bundler's: nothing goes.
    for entry in ["git", "gems", "compact_index"] {
        let project = ctx.path(&format!("project-{entry}"));
        write(&project.join("README"), "docs");
        write(&project.join("src/main.rb"), "code");
        std::fs::create_dir_all(project.join(entry)).unwrap();
        write(&project.join("canary"), "keep");
        let out = run(ctx.steady().env("BUNDLE_USER_CACHE", &project).args([
            "--retries",
            "1",
            "--backoff",
            "10ms",
            "--",
            "bundle",
            "install",
        ]));
        assert_eq!(code(&out), 1, "{}", stderr(&out));
        for keep in ["README", "src/main.rb", "canary"] {
            assert!(
                project.join(keep).exists(),
                "a clean of `{entry}` removed {keep}: {}",
                stderr(&out)
            );
        }
    }
    // A real bundler cache beside a canary: its entries go, the canary stays.
    let cache = ctx.path("bundle-cache");
    write(
        &cache.join("compact_index/rubygems.org.443.abc/versions"),
        "v",
    );
    write(&cache.join("gems/rake-13.0.6-abc/x"), "x");
    write(&cache.join("git/repo-abc/HEAD"), "x");
    write(&cache.join("canary"), "keep");
    let out = run(ctx.steady().env("BUNDLE_USER_CACHE", &cache).args([
        "-v",
        "--retries",
        "1",
        "--backoff",
        "10ms",
        "--",
        "bundle",
        "install",
    ]));
    let err = stderr(&out);
    assert!(err.contains("cleared the bundler cache"), "{err}");
    assert!(cache.join("canary").exists(), "the canary went: {err}");
    for gone in ["compact_index", "gems", "git"] {
        assert!(!cache.join(gone).exists(), "{gone} stayed: {err}");
    }
    // An empty directory is nobody's cache yet (/dev/shm was taken for one).
    let empty = ctx.path("empty");
    std::fs::create_dir(&empty).unwrap();
    // System trees, a home directory, the working directory and its parents: `doctor` says
    // never, for every installer.
    let work = ctx.path("work");
    let home = ctx.home();
    let mut refused: Vec<(PathBuf, &str, &str)> = Vec::new();
    for dir in [
        "/usr",
        "/usr/bin",
        "/usr/local/bin",
        "/usr/lib/ruby",
        "/usr/share/doc",
        "/bin",
        "/sbin",
        "/lib",
        "/lib64",
        "/etc",
        "/var/lib",
        "/opt",
        "/boot",
        "/dev",
        "/dev/shm",
        "/proc",
        "/sys",
        "/run",
    ] {
        if Path::new(dir).is_dir() {
            refused.push((dir.into(), "BUNDLE_USER_CACHE", "bundle"));
            refused.push((dir.into(), "UV_CACHE_DIR", "uv"));
        }
    }
    // A cache that does not exist yet in a system tree: doctor says never there too.
    for dir in [
        "/opt/steady-test-missing/uv",
        "/usr/local/share/steady-test-missing",
    ] {
        refused.push((dir.into(), "UV_CACHE_DIR", "uv"));
    }
    for dir in [&empty, &work, &ctx.root().to_path_buf(), &home] {
        refused.push((dir.clone(), "BUNDLE_USER_CACHE", "bundle"));
        refused.push((dir.clone(), "UV_CACHE_DIR", "uv"));
    }
    for (dir, var, tool) in &refused {
        let args: &[&str] = if *tool == "uv" {
            &["doctor", "uv", "pip", "install", "x"]
        } else {
            &["doctor", "bundle", "install"]
        };
        let out = run(ctx.steady().env(var, dir).args(args));
        let said = stdout(&out);
        let clean = said
            .lines()
            .find(|l| l.trim_start().starts_with("clean"))
            .unwrap_or("");
        assert!(
            clean.contains("never"),
            "doctor would clear `{}` for {tool}:\n{said}{}",
            dir.display(),
            stderr(&out)
        );
    }
    // And a run refuses one of them for real: the working directory's files survive.
    write(&work.join("canary"), "keep");
    std::fs::create_dir_all(work.join("gems")).unwrap();
    let out = run(ctx.steady().env("BUNDLE_USER_CACHE", &work).args([
        "--retries",
        "1",
        "--backoff",
        "10ms",
        "--",
        "bundle",
        "install",
    ]));
    assert!(work.join("canary").exists(), "{}", stderr(&out));
    let mode = std::fs::metadata(&work).unwrap().permissions().mode();
    assert_ne!(mode, 0, "the working directory is intact");
}

/// Case 4: the PostgreSQL lock is watched during a clean too. The session of run A is ended
/// while A's (slow) cache clean runs; the clean is stopped at once, and run B, which gets the
/// lock then, never runs while A's clean still works on the cache: 0 overlaps between B's run
/// and the clean's ticks.
#[test]
fn lock_lost_during_a_clean_stops_the_clean() {
    let Some(pg) = crate::pglock::Pg::start(None) else {
        return;
    };
    let ctx = Ctx::new();
    segment_fixture(&ctx);
    let log = ctx.path("log");
    let cleaning = ctx.path("cleaning");
    ctx.fixture(
        "uv",
        "if [ \"$1 $2\" = \"cache clean\" ]; then\n\
           echo $$ > \"$UV_FAKE_DIR/clean-pid\"\n\
           touch \"$UV_FAKE_DIR/cleaning\"\n\
           i=0\n\
           while [ $i -lt 2400 ]; do echo \"tick clean $(date +%s%N)\" >> \"$UV_FAKE_DIR/log\"; sleep 0.05; i=$((i+1)); done\n\
           exit 0\n\
         fi\n\
         if [ \"$1\" = --version ]; then echo 'uv 0.13.0'; exit 0; fi\n\
         [ -e \"$UV_FAKE_DIR/ok\" ] && exit 0\n\
         echo 'error: something unexplained' >&2\n\
         exit 1\n",
    );
    let machine = |name: &str| {
        let cache = ctx.path(&format!("cache-{name}"));
        uv_like(&cache);
        std::fs::remove_file(cache.join("photo.jpg")).unwrap();
        let mut cmd = ctx.steady();
        cmd.env("TMPDIR", ctx.path("tmp"))
            .env("UV_FAKE_DIR", ctx.root())
            .arg("--lock-url")
            .arg(pg.url())
            .args(["--lock-namespace", "fleet", "--cache"])
            .arg(&cache);
        cmd
    };
    let mut a = machine("a");
    a.args(["-v", "--retries", "1", "--backoff", "10ms", "--"])
        .args(["uv", "pip", "install", "x"]);
    let a = Bg::spawn(&mut a);
    assert!(
        wait_for(LONG, || cleaning.exists()),
        "run A never started its clean"
    );
    let pid: i32 = ctx.read("clean-pid").trim().parse().unwrap();
    // Attempt 1 is over: the retry may succeed.
    touch(&ctx.path("ok"));
    let backend = pg.backend_of(a.pid()).expect("A's session");
    assert_eq!(
        pg.sql(&format!("SELECT pg_terminate_backend({backend})")),
        "t"
    );
    // B takes the lock as soon as the server lets it go.
    let release_b = ctx.path("release-b");
    touch(&release_b);
    let mut b = machine("b");
    b.arg("--")
        .arg("seg")
        .arg(&log)
        .arg("b")
        .arg(ctx.path("inside-b"))
        .arg(&release_b);
    let out_b = run(&mut b);
    assert_eq!(code(&out_b), 0, "{}", stderr(&out_b));
    let stopped = wait_for(LONG, || !pid_alive(pid));
    let text = std::fs::read_to_string(&log).unwrap();
    if !stopped {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let out_a = a.finish_within(LONG * 2).expect("run A never finished");
    let err = stderr(&out_a);
    assert!(stopped, "A's clean went on after its lock was lost: {err}");
    assert_eq!(
        overlaps(&text),
        0,
        "A's clean worked on the cache while B held the lock:\n{text}\n{err}"
    );
    assert!(err.contains("lost the lock while `uv cache clean"), "{err}");
    assert_eq!(
        code(&out_a),
        0,
        "A's retry runs under the lock taken again: {err}"
    );
}
