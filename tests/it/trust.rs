//! Issue 14, "trust under attack": one test per broken promise (cases 1-16). Each drives the
//! real binary the way a hostile or careless user would and asserts what happened to processes,
//! files and locks: survivors by pid, canaries on disk, overlapping intervals in a log, the
//! bytes each attempt read, exit codes. Loop counts can be raised with `STEADY_TRUST_*`
//! variables (see each test).

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::*;

/// Generous: catches a hang, never a slow machine.
const LONG: Duration = Duration::from_secs(60);

/// A loop count from `var`, else `default`.
fn count_from(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

fn touch(p: &Path) {
    std::fs::write(p, b"").unwrap();
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// A tag unique to this test process and call, to find a fixture's processes by command line.
fn unique_tag(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{what}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Live processes whose command line contains `tag`.
fn procs_with(tag: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| *p != me && cmdline(*p).contains(tag) && pid_alive(*p))
        .collect()
}

/// Kills every live process whose command line contains `tag` until none is left (bounded);
/// the forkers first, since they would make more.
fn kill_all_with(tag: &str) {
    for _ in 0..200 {
        let left = procs_with(tag);
        if left.is_empty() {
            return;
        }
        for p in left {
            let _ = kill(Pid::from_raw(p), Signal::SIGSTOP);
        }
        for p in procs_with(tag) {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the given pids (survivors a failed test would otherwise leave).
fn kill_pids(pids: &[i32]) {
    for p in pids {
        if pid_alive(*p) {
            let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
        }
    }
}

/// `span LOG TAG [RELEASE]`: appends `S TAG`, stays until RELEASE exists (bounded), appends
/// `E TAG`.
fn span(ctx: &Ctx) {
    ctx.fixture(
        "span",
        "echo \"S $2\" >> \"$1\"\n\
         if [ -n \"$3\" ]; then i=0; while [ ! -e \"$3\" ]; do sleep 0.05; i=$((i+1)); [ $i -gt 1200 ] && break; done; fi\n\
         echo \"E $2\" >> \"$1\"\n",
    );
}

/// How many runs began while another was inside, from the `S`/`E` lines of a log.
fn overlaps(log: &Path) -> usize {
    let mut inside = 0usize;
    let mut n = 0;
    for l in std::fs::read_to_string(log).unwrap_or_default().lines() {
        if l.starts_with("S ") {
            if inside > 0 {
                n += 1;
            }
            inside += 1;
        } else if l.starts_with("E ") {
            inside = inside.saturating_sub(1);
        }
    }
    n
}

/// Waits for a spawned child to end within `LONG`; kills it and fails otherwise.
fn wait_child(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    let mut status = None;
    wait_for(LONG, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    match status {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: steady did not end within {LONG:?}");
        }
    }
}

fn status_code(s: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

// ---------------------------------------------------------------------------------------------
// Case 1: no survivor of a tree that keeps forking while it is killed.
// ---------------------------------------------------------------------------------------------

/// Case 1. A tree whose `setsid` leader ignores TERM and keeps forking `setsid` sleepers every
/// few milliseconds is stopped by a timeout, the deadline and a TERM to steady, in turn; after
/// each run no process of the tree may be alive (steady released the lock, so any survivor is
/// also a process running outside the lock). `STEADY_TRUST_KILL_RUNS` runs (default 20).
#[test]
fn kill_leaves_no_survivor_of_a_forking_tree() {
    let ctx = Ctx::new();
    let runs = count_from("STEADY_TRUST_KILL_RUNS", 20);
    let tag = unique_tag("trustfork");
    // Bounded: 300 forks, each sleeper lives 120 s at most (its length carries the tag, so
    // survivors are found by command line whatever they were forked as).
    let secs = format!("120.{}", &tag[tag.len().min(9)..].replace('x', "0"));
    let sleeper_tag = format!("sleep {secs}");
    let started = ctx.path("started");
    let script = format!(
        "touch '{}'; setsid bash -c 'trap \"\" TERM; for i in $(seq 300); do setsid sleep {secs} & sleep 0.003; done; wait' {tag} & wait",
        started.display()
    );
    let mut per_run = Vec::new();
    for i in 0..runs {
        let _ = std::fs::remove_file(&started);
        let kind = ["timeout", "deadline", "signal"][i % 3];
        let mut cmd = ctx.steady();
        cmd.arg("--cache").arg(ctx.cache());
        cmd.args(["--retries", "0", "--kill-after", "300ms"]);
        match kind {
            "timeout" => cmd.args(["--timeout", "1s"]),
            "deadline" => cmd.args(["--deadline", "1s"]),
            _ => &mut cmd,
        };
        cmd.args(["--", "bash", "-c", &script]);
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        if kind == "signal" {
            assert!(
                wait_for(LONG, || started.exists()),
                "the forker never started"
            );
            // Let it fork for a while, then stop steady as a CI runner would.
            std::thread::sleep(Duration::from_millis(500));
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        }
        wait_child(&mut child, kind);
        // What is alive once steady has returned (and released the lock).
        let alive = procs_with(&tag).len() + procs_with(&sleeper_tag).len();
        per_run.push((kind, alive));
        kill_all_with(&tag);
        kill_all_with(&sleeper_tag);
    }
    let total: usize = per_run.iter().map(|(_, n)| n).sum();
    assert_eq!(
        total, 0,
        "processes of the killed tree outlived steady over {runs} runs: {per_run:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Case 2: a clean removes only the installer's own entries, of its own cache.
// ---------------------------------------------------------------------------------------------

/// A `bundle` that fails with an error no signature knows (so an automatic clean follows).
fn failing_bundle(ctx: &Ctx) {
    ctx.fixture("bundle", "echo 'something odd happened' >&2\nexit 1\n");
}

/// Case 2. `BUNDLE_USER_CACHE` naming a project directory that merely contains an entry called
/// `git`, `gems` or `compact_index`: an unrecognised failure must not delete the project's
/// files, nor a canary beside them.
#[test]
fn clean_never_removes_a_directory_that_is_not_the_installers_cache() {
    let ctx = Ctx::new();
    failing_bundle(&ctx);
    for marker in ["git", "gems", "compact_index"] {
        let dir = ctx.path(&format!("project-{marker}"));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::create_dir_all(dir.join(marker)).unwrap();
        std::fs::write(dir.join("README"), "readme").unwrap();
        std::fs::write(dir.join("src/main.rs"), "fn main() {}").unwrap();
        std::fs::write(dir.join("canary"), "canary").unwrap();
        let out = run(ctx.steady().env("BUNDLE_USER_CACHE", &dir).args([
            "--backoff",
            "10ms",
            "--retries",
            "1",
            "--",
            "bundle",
            "install",
        ]));
        assert_eq!(code(&out), 1, "{marker}: {}", stderr(&out));
        let gone: Vec<&str> = ["README", "src/main.rs", "canary"]
            .into_iter()
            .filter(|f| !dir.join(f).exists())
            .collect();
        assert!(
            gone.is_empty(),
            "a directory with an entry `{marker}` was cleared as bundler's cache; deleted: {gone:?}"
        );
    }
}

/// Case 2. bundler's own default cache (`~/.bundle/cache`) with the entries bundler creates
/// and a canary file beside them: a clean removes bundler's entries, never "everything in it".
#[test]
fn a_clean_leaves_a_canary_beside_the_cache_entries() {
    let ctx = Ctx::new();
    failing_bundle(&ctx);
    let cache = ctx.home().join(".bundle/cache");
    for d in ["compact_index", "gems", "git"] {
        std::fs::create_dir_all(cache.join(d)).unwrap();
        std::fs::write(cache.join(d).join("entry"), "entry").unwrap();
    }
    std::fs::write(cache.join("canary"), "canary").unwrap();
    std::fs::create_dir_all(cache.join("canary-dir")).unwrap();
    std::fs::write(cache.join("canary-dir/inside"), "canary").unwrap();
    let out = run(ctx.steady().args([
        "--backoff",
        "10ms",
        "--retries",
        "1",
        "--clean",
        "always",
        "--",
        "bundle",
        "install",
    ]));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        cache.join("canary").exists() && cache.join("canary-dir/inside").exists(),
        "the clean removed files beside bundler's entries (canary gone): {}",
        stderr(&out)
    );
}

/// Case 2. System trees are refused for every installer. Where it is safe, by a real clean:
/// in a private mount namespace, a tmpfs over `/opt`, `/var/lib`, `/usr/local/bin`,
/// `/usr/share/doc`, `/usr/lib/ruby`, `/srv` and `/boot` holds bundler's entry names and a
/// canary, and a failing `bundle` runs with `BUNDLE_USER_CACHE` there; the home directory and
/// the working directory the same way. Where a real clean would hit the running system
/// (`/usr/bin`, `/usr/lib`, `/etc`), by what `steady doctor` says it would do.
#[test]
fn system_trees_are_never_cleared() {
    let ctx = Ctx::new();
    failing_bundle(&ctx);
    // Home and working directory: real cleans.
    for (what, dir) in [
        ("$HOME", ctx.home()),
        ("the working directory", ctx.path("work")),
    ] {
        std::fs::create_dir_all(dir.join("gems")).unwrap();
        std::fs::write(dir.join("canary"), "canary").unwrap();
        let out = run(ctx.steady().env("BUNDLE_USER_CACHE", &dir).args([
            "--backoff",
            "10ms",
            "--retries",
            "1",
            "--",
            "bundle",
            "install",
        ]));
        assert_eq!(code(&out), 1, "{what}: {}", stderr(&out));
        assert!(dir.join("canary").exists(), "{what} was cleared");
    }

    // System trees: a tmpfs over each, in a mount namespace of its own.
    let mut refused_by_doctor = Vec::new();
    for sys_dir in ["/usr/bin", "/usr/lib", "/etc", "/var/lib", "/usr/share/doc"] {
        let out = run(ctx
            .steady()
            .env("BUNDLE_USER_CACHE", sys_dir)
            .args(["doctor", "bundle", "install"]));
        let text = stdout(&out);
        let clean = text
            .lines()
            .find(|l| l.starts_with("clean"))
            .unwrap_or_default()
            .to_owned();
        if !clean.contains("never") {
            refused_by_doctor.push(format!("{sys_dir}: {clean}"));
        }
    }
    let mut deleted = Vec::new();
    if is_root() && require("unshare").is_some() {
        let dirs: Vec<&str> = [
            "/opt",
            "/var/lib",
            "/usr/local/bin",
            "/usr/share/doc",
            "/usr/lib/ruby",
            "/srv",
            "/boot",
        ]
        .into_iter()
        .filter(|d| Path::new(d).is_dir())
        .collect();
        let script = "for d in \"$@\"; do\n\
               mount -t tmpfs steady-trust \"$d\" || { echo \"NOMOUNT $d\"; continue; }\n\
               mkdir \"$d/gems\" \"$d/git\" \"$d/compact_index\"; echo c > \"$d/canary\"; mkdir \"$d/bin\"; echo x > \"$d/bin/tool\"\n\
               BUNDLE_USER_CACHE=\"$d\" \"$STEADY_BIN\" --backoff 10ms --retries 1 -- bundle install >/dev/null 2>&1\n\
               if [ -e \"$d/canary\" ] && [ -e \"$d/bin/tool\" ]; then echo \"KEPT $d\"; else echo \"DELETED $d\"; fi\n\
             done\n";
        let out = run(ctx
            .command("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
            .args(&dirs)
            .env("STEADY_BIN", steady_bin()));
        let text = stdout(&out);
        if text.contains("NOMOUNT") || !out.status.success() {
            skip(&format!(
                "cannot mount a tmpfs in a private mount namespace: {text}{}",
                stderr(&out)
            ));
        }
        deleted.extend(
            text.lines()
                .filter_map(|l| l.strip_prefix("DELETED "))
                .map(str::to_owned),
        );
    } else {
        skip("a real clean of a system tree needs root and unshare (a private mount namespace)");
    }
    assert!(
        deleted.is_empty() && refused_by_doctor.is_empty(),
        "system trees were cleared: {deleted:?}; doctor would clear: {refused_by_doctor:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Cases 3 and 12: the uv cache path check.
// ---------------------------------------------------------------------------------------------

/// A `uv` that fails with a cache-corruption signature (so a clean follows) and records every
/// `uv cache …` call in `$CLEANS` instead of clearing anything.
fn corrupt_uv(ctx: &Ctx) {
    ctx.fixture(
        "uv",
        "if [ \"$1\" = cache ]; then echo \"$*\" >> \"$CLEANS\"; exit 0; fi\n\
         echo 'error: Failed to deserialize cache entry' >&2\nexit 2\n",
    );
}

/// Case 3. `UV_CACHE_DIR=<link>/` (a trailing slash, `.` and `..` spellings) where the link
/// points at a directory with `CACHEDIR.TAG` and user data: steady must refuse it as it refuses
/// `<link>`, and never ask uv to clear it.
#[test]
fn a_symlinked_cache_is_refused_however_it_is_spelled() {
    let ctx = Ctx::new();
    corrupt_uv(&ctx);
    let target = ctx.path("target");
    std::fs::create_dir_all(target.join("wheels-v5")).unwrap();
    std::fs::write(
        target.join("CACHEDIR.TAG"),
        "Signature: 8a477f597d28d172789f06886806bc55\n",
    )
    .unwrap();
    std::fs::write(target.join("userdata"), "precious").unwrap();
    std::os::unix::fs::symlink(&target, ctx.path("link")).unwrap();
    let link = ctx.path("link");
    let spellings = [
        format!("{}", link.display()),
        format!("{}/", link.display()),
        format!("{}//", link.display()),
        format!("{}/.", link.display()),
        format!("{}/../link/", link.display()),
    ];
    let cleans = ctx.path("cleans");
    let mut cleared = Vec::new();
    for s in &spellings {
        std::fs::write(&cleans, "").unwrap();
        let out = run(ctx
            .steady()
            .env("CLEANS", &cleans)
            .env("UV_CACHE_DIR", s)
            .args(["--backoff", "10ms", "--retries", "1", "--"])
            .args(["uv", "pip", "install", "alpha"]));
        assert_eq!(code(&out), 2, "{s}: {}", stderr(&out));
        if !ctx.read("cleans").is_empty() {
            cleared.push(format!("{s} -> {}", ctx.read("cleans").trim()));
        }
    }
    assert!(
        cleared.is_empty(),
        "steady had uv clear a symlinked cache: {cleared:?}"
    );
    assert!(target.join("userdata").exists());
}

/// Case 12. `UV_CACHE_DIR=/dev/shm` is not a uv cache, however empty it is: it is never
/// cleared. Being empty is no evidence of being a cache. So that "empty" does not depend on
/// what else runs here (PostgreSQL keeps segments there), a fresh tmpfs is mounted over
/// `/dev/shm` in a private mount namespace; the fake uv only records the clean it is asked for.
#[test]
fn an_empty_shared_memory_directory_is_not_taken_for_a_cache() {
    let ctx = Ctx::new();
    corrupt_uv(&ctx);
    if !is_root() || require("unshare").is_none() {
        skip("an empty /dev/shm needs root and unshare (a private mount namespace)");
        return;
    }
    let cleans = ctx.path("cleans");
    std::fs::write(&cleans, "").unwrap();
    let script = "mount -t tmpfs -o mode=1777 steady-trust /dev/shm || { echo NOMOUNT; exit 0; }\n\
         for d in /dev/shm /dev/shm/; do\n\
           UV_CACHE_DIR=\"$d\" \"$STEADY_BIN\" --backoff 10ms --retries 1 -- uv pip install alpha >/dev/null 2>&1\n\
           echo \"exit $?\"\n\
         done\n";
    let out = run(ctx
        .command("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .env("STEADY_BIN", steady_bin())
        .env("CLEANS", &cleans));
    let text = stdout(&out);
    if text.contains("NOMOUNT") || !out.status.success() {
        skip(&format!(
            "cannot mount a tmpfs in a private mount namespace: {text}{}",
            stderr(&out)
        ));
        return;
    }
    assert_eq!(text, "exit 2\nexit 2\n", "{}", stderr(&out));
    assert!(
        ctx.read("cleans").is_empty(),
        "steady had uv clear an empty /dev/shm: {}",
        ctx.read("cleans")
    );
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL (cases 4, 6 and 14): the server of pglock.rs.
// ---------------------------------------------------------------------------------------------

use crate::pglock::Pg;

/// Ends the session of steady `pid` as an administrator would (the server stays up).
fn terminate_session_of(pg: &Pg, pid: u32) {
    let mut backend = None;
    assert!(
        wait_for(LONG, || {
            backend = pg.backend_of(pid);
            backend.is_some()
        }),
        "steady {pid} has no session"
    );
    let b = backend.unwrap();
    pg.sql(&format!("SELECT pg_terminate_backend({b})"));
}

/// steady as one "machine" meeting the others at namespace `fleet`: its own TMPDIR, lock
/// directory and cache; the lock is checked every 300ms.
fn machine(ctx: &Ctx, pg: &Pg, name: &str) -> Command {
    let (tmp, locks, cache) = (
        ctx.path(&format!("tmp-{name}")),
        ctx.path(&format!("locks-{name}")),
        ctx.path(&format!("cache-{name}")),
    );
    for d in [&tmp, &locks, &cache] {
        std::fs::create_dir_all(d).unwrap();
    }
    let mut cmd = ctx.steady();
    cmd.env("TMPDIR", &tmp)
        .env("STEADY_LOCK_PING", "300ms")
        .arg("--lock-url")
        .arg(pg.url())
        .args(["--lock-namespace", "fleet", "--lock-dir"])
        .arg(&locks)
        .arg("--cache")
        .arg(&cache);
    cmd
}

/// A uv cache with the markers real uv leaves (so that every clean rule accepts it).
fn make_uv_cache(dir: &Path) {
    std::fs::create_dir_all(dir.join("wheels-v5")).unwrap();
    std::fs::create_dir_all(dir.join("archive-v0")).unwrap();
    std::fs::write(
        dir.join("CACHEDIR.TAG"),
        "Signature: 8a477f597d28d172789f06886806bc55\n",
    )
    .unwrap();
    std::fs::write(dir.join(".gitignore"), "*\n").unwrap();
}

/// Case 4. Machine A's first attempt fails with cache corruption and its clean (`uv cache
/// clean`) is slow; while it runs, A's PostgreSQL session is terminated and machine B, waiting
/// on the same lock, gets in. A's clean must be stopped once its lock is gone: it must not go
/// on to the end while B is inside.
#[test]
fn a_clean_stops_when_the_postgres_lock_is_lost() {
    let Some(pg) = Pg::start(None) else { return };
    let ctx = Ctx::new();
    span(&ctx);
    let log = ctx.path("log");
    // The clean: 150 ticks of 0.1 s (bounded), logged; the install: fails once, then passes.
    ctx.fixture(
        "uv",
        "if [ \"$1\" = cache ]; then\n\
           echo clean-start >> \"$LOG\"; i=0\n\
           while [ $i -lt 150 ]; do sleep 0.1; i=$((i+1)); done\n\
           echo clean-done >> \"$LOG\"; exit 0\n\
         fi\n\
         n=$(cat \"$LOG.runs\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$LOG.runs\"\n\
         if [ $n -eq 1 ]; then echo 'error: Failed to deserialize cache entry' >&2; exit 2; fi\n\
         exit 0\n",
    );
    let cache_a = ctx.path("cache-a");
    make_uv_cache(&cache_a);
    let a = Bg::spawn(
        machine(&ctx, &pg, "a")
            .env("LOG", &log)
            .args(["--backoff", "10ms", "--retries", "1", "--clean", "always"])
            .args(["--", "uv", "pip", "install", "alpha"]),
    );
    assert!(
        wait_for(LONG, || ctx.read("log").contains("clean-start")),
        "A never started its clean"
    );
    let b = Bg::spawn(
        machine(&ctx, &pg, "b")
            .arg("--")
            .arg("span")
            .arg(&log)
            .arg("B")
            .arg(ctx.path("release-b")),
    );
    assert!(
        wait_for(LONG, || pg.advisory_waiters() >= 1),
        "B never waited for the lock"
    );
    terminate_session_of(&pg, a.pid());
    assert!(
        wait_for(LONG, || ctx.read("log").contains("S B")),
        "B never got in after A lost its session"
    );
    // B stays inside until A's clean either ended or was stopped.
    let _ = wait_for(Duration::from_secs(30), || {
        ctx.read("log").contains("clean-done") || procs_with("cache clean").is_empty()
    });
    touch(&ctx.path("release-b"));
    let _ = b.finish_within(LONG);
    let _ = a.finish_within(LONG);
    let text = ctx.read("log");
    let b_start = text.find("S B").unwrap();
    let done_after_b = text.find("clean-done").is_some_and(|i| i > b_start);
    assert!(
        !done_after_b,
        "A's clean went on to its end while B held the lock:\n{text}"
    );
}

/// Case 6. A's first attempt loses its PostgreSQL lock (session terminated) while B waits;
/// B then holds the lock for longer than A's `--timeout`. Re-taking the lock is not the
/// attempt's time: A's second attempt must run (and succeed) with its whole timeout.
#[test]
fn the_timeout_starts_when_the_command_starts_not_during_the_lock_wait() {
    let Some(pg) = Pg::start(None) else { return };
    let ctx = Ctx::new();
    span(&ctx);
    let (log, runs) = (ctx.path("log"), ctx.path("runs"));
    // First run: inside until released (bounded); second: records that it ran, succeeds.
    ctx.fixture(
        "twice",
        "n=$(cat \"$1\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$1\"\n\
         if [ $n -eq 1 ]; then touch \"$2\"; i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; exit 0; fi\n\
         touch \"$3\"; exit 0\n",
    );
    let (inside, second) = (ctx.path("inside-a"), ctx.path("second-a"));
    let a = Bg::spawn(
        machine(&ctx, &pg, "a")
            .args(["--timeout", "3s", "--retries", "1", "--backoff", "10ms"])
            .arg("--")
            .arg("twice")
            .arg(&runs)
            .arg(&inside)
            .arg(&second),
    );
    assert!(wait_for(LONG, || inside.exists()), "A never got in");
    let release = ctx.path("release-b");
    let b = Bg::spawn(
        machine(&ctx, &pg, "b")
            .arg("--")
            .arg("span")
            .arg(&log)
            .arg("B")
            .arg(&release),
    );
    assert!(
        wait_for(LONG, || pg.advisory_waiters() >= 1),
        "B never waited"
    );
    terminate_session_of(&pg, a.pid());
    assert!(
        wait_for(LONG, || ctx.read("log").contains("S B")),
        "B never got in"
    );
    // A loses its first attempt, then waits for B to take the lock again: keep B inside for
    // longer than A's --timeout once A waits.
    assert!(
        wait_for(LONG, || pg.advisory_waiters() >= 1),
        "A never waited to take the lock again"
    );
    std::thread::sleep(Duration::from_secs(5));
    touch(&release);
    let _ = b.finish_within(LONG);
    let out = a.finish_within(LONG).expect("A did not end");
    assert!(
        second.exists() && code(&out) == 0,
        "A's second attempt did not get its timeout after the lock wait (exit {}, second run: {}):\n{}",
        code(&out),
        second.exists(),
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// Case 5: piped stdin is replayed to every attempt.
// ---------------------------------------------------------------------------------------------

/// Case 5. `printf 'alpha==1.0\n' | steady -- uv pip install -r -` whose first attempt fails:
/// every attempt reads the same bytes from stdin (the fake uv keeps what each attempt read);
/// also a larger input, beyond any in-memory bound.
#[test]
fn piped_stdin_is_seen_whole_by_every_attempt() {
    let ctx = Ctx::new();
    ctx.fixture(
        "uv",
        "if [ \"$1\" = cache ]; then exit 0; fi\n\
         n=$(cat \"$SEEN.n\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$SEEN.n\"\n\
         cat > \"$SEEN.$n\"\n\
         if [ $n -eq 1 ]; then echo 'error: Failed to deserialize cache entry' >&2; exit 2; fi\n\
         [ -s \"$SEEN.$n\" ] || { echo 'warning: No dependencies found in stdin' >&2; exit 0; }\n\
         exit 0\n",
    );
    let cache = ctx.cache();
    make_uv_cache(&cache);
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| b"abcdefghij\n"[(i % 11) as usize])
        .collect();
    for (what, input) in [("small", b"alpha==1.0\n".to_vec()), ("3 MB", big)] {
        let seen = ctx.path(&format!("seen-{}", what.replace(' ', "")));
        let out = pipe(
            ctx.steady()
                .env("SEEN", &seen)
                .env("UV_CACHE_DIR", &cache)
                .args(["--backoff", "10ms", "--retries", "2", "--"])
                .args(["uv", "pip", "install", "-r", "-"]),
            &input,
        );
        let n: usize = std::fs::read_to_string(format!("{}.n", seen.display()))
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0);
        let per_attempt: Vec<usize> = (1..=n)
            .map(|i| {
                std::fs::read(format!("{}.{i}", seen.display()))
                    .unwrap_or_default()
                    .len()
            })
            .collect();
        let whole = (1..=n)
            .all(|i| std::fs::read(format!("{}.{i}", seen.display())).unwrap_or_default() == input);
        // Either every attempt saw the input whole, or steady did not retry and failed.
        assert!(
            (n >= 2 && whole && code(&out) == 0) || (n == 1 && code(&out) != 0),
            "{what}: {n} attempts read {per_attempt:?} bytes of {}; exit {}:\n{}",
            input.len(),
            code(&out),
            stderr(&out)
        );
    }
}

/// Case 5 with real uv: every attempt fails on an unreachable index, so the run must fail; an
/// attempt that read an empty stdin would "succeed" with nothing installed.
#[test]
fn real_uv_with_piped_requirements_never_succeeds_on_an_empty_retry() {
    let Some(_uv) = require("uv") else { return };
    let Some(_py) = require("python3") else {
        return;
    };
    let ctx = Ctx::new();
    let out = pipe(
        ctx.steady()
            .env("UV_CACHE_DIR", ctx.cache())
            .env("UV_INDEX_URL", "http://127.0.0.1:9/simple")
            .env("UV_HTTP_TIMEOUT", "5")
            .args(["--backoff", "10ms", "--retries", "1", "--"])
            .args(["uv", "pip", "install", "--python", "python3", "--target"])
            .arg(ctx.path("target"))
            .args(["-r", "-"]),
        b"alpha==1.0\n",
    );
    assert_ne!(
        code(&out),
        0,
        "a retry with an empty stdin succeeded with nothing installed:\n{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// Case 7: background processes outlive steady's pipe.
// ---------------------------------------------------------------------------------------------

/// Case 7. `steady -- sh -c 'echo start; (sleep 1; echo late; echo alive > f) &'` with steady's
/// stdout a pipe: the daemon prints `late` into that pipe and writes `f`, as without steady,
/// and steady does not keep the cache's lock for it.
#[test]
fn a_daemon_left_behind_keeps_its_output_and_finishes() {
    let ctx = Ctx::new();
    let cache = ctx.cache().canonicalize().unwrap();
    let mut child = ctx
        .steady()
        .arg("--cache")
        .arg(&cache)
        .args(["--", "sh", "-c"])
        .arg("echo start; (sleep 2; echo late; echo alive > f) &")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut pipe_out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe_out.read_to_string(&mut s);
        s
    });
    let status = wait_child(&mut child, "daemon");
    assert_eq!(status_code(status), 0);
    let lock_free = flock_free(&cache);
    let f = ctx.path("work/f");
    let written = wait_for(Duration::from_secs(30), || f.exists());
    // The daemon is bounded (2 s); its pipe closes when it ends.
    let out = reader.join().unwrap();
    assert!(
        lock_free,
        "the cache's lock was still held after steady returned"
    );
    assert!(
        written && out.contains("start") && out.contains("late"),
        "the daemon died with steady's pipe: f written: {written}, stdout: {out:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Case 8: renaming the lock's file or directory does not admit a second holder.
// ---------------------------------------------------------------------------------------------

/// Case 8. While run A is inside, the cache directory it locks is renamed (and a new one made
/// in its place), or the fallback lock file is renamed, or the fallback lock directory is
/// moved; run B then starts. A log of both runs' spans must show 0 overlaps.
/// `STEADY_TRUST_RENAME_ROUNDS` rounds of each (default 2).
#[test]
fn renaming_the_lock_never_lets_a_second_run_in() {
    let rounds = count_from("STEADY_TRUST_RENAME_ROUNDS", 2);
    let shim = flock_shim();
    let mut results = Vec::new();
    for round in 0..rounds {
        for how in [
            "cache directory",
            "fallback lock file",
            "fallback lock directory",
        ] {
            if how != "cache directory" && shim.is_none() {
                continue;
            }
            let ctx = Ctx::new();
            span(&ctx);
            let log = ctx.path("log");
            let cache = ctx.cache().canonicalize().unwrap();
            let locks = ctx.path("locks");
            let steady = || {
                let mut cmd = match (&shim, how) {
                    (Some(shim), "fallback lock file" | "fallback lock directory") => {
                        let mut c = ctx.steady();
                        c.env("LD_PRELOAD", shim)
                            .env("STEADY_SHIM_FLOCK_ERRNO", libc::ENOLCK.to_string())
                            .env("STEADY_SHIM_FLOCK_PATHS", cache.display().to_string());
                        c
                    }
                    _ => ctx.steady(),
                };
                cmd.arg("--cache").arg(&cache).arg("--lock-dir").arg(&locks);
                cmd
            };
            let release = ctx.path("release-a");
            let a = Bg::spawn(
                steady()
                    .arg("--")
                    .arg("span")
                    .arg(&log)
                    .arg("A")
                    .arg(&release),
            );
            assert!(
                wait_for(LONG, || ctx.read("log").contains("S A")),
                "A never got in"
            );
            match how {
                "cache directory" => {
                    std::fs::rename(&cache, ctx.path("cache-moved")).unwrap();
                    std::fs::create_dir(&cache).unwrap();
                }
                "fallback lock file" => {
                    let dir = locks.join(format!("steady-{}", euid()));
                    let name = std::fs::read_dir(&dir)
                        .unwrap()
                        .flatten()
                        .next()
                        .expect("a lock file")
                        .file_name();
                    std::fs::rename(dir.join(&name), ctx.path("lock-moved")).unwrap();
                }
                _ => {
                    let dir = locks.join(format!("steady-{}", euid()));
                    std::fs::rename(&dir, ctx.path("lockdir-moved")).unwrap();
                }
            }
            let out = run(steady()
                .args(["--lock-timeout", "1s", "--"])
                .arg("span")
                .arg(&log)
                .arg("B"));
            touch(&release);
            let a_out = a.finish_within(LONG).expect("A did not end");
            assert_eq!(code(&a_out), 0, "{}", stderr(&a_out));
            let n = overlaps(&log);
            results.push((round, how, n, code(&out)));
        }
    }
    let total: usize = results.iter().map(|r| r.2).sum();
    assert_eq!(
        total, 0,
        "second runs got in beside a holder after a rename (round, what, overlaps, B's exit): {results:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Case 9: nested runs on caches with odd bytes in their path.
// ---------------------------------------------------------------------------------------------

/// Case 9. A nested steady on the same cache goes ahead whatever bytes the cache's path holds
/// (a newline, a non-UTF-8 byte, a tab): the held-locks hand-down must carry every key.
#[test]
fn a_nested_run_never_waits_on_its_ancestor_whatever_the_path() {
    let ctx = Ctx::new();
    ctx.fixture(
        "outer",
        "exec \"$1\" --cache \"$2\" --lock-timeout 3s -- sh -c 'echo inner > \"$1\"' sh \"$3\"\n",
    );
    let names: Vec<(&str, std::ffi::OsString)> = vec![
        ("a newline", "ca\nche".into()),
        (
            "a non-UTF-8 byte",
            std::ffi::OsStr::from_bytes(b"ca\xffche").to_owned(),
        ),
        ("a tab and a space", "ca\tc he".into()),
    ];
    let mut waited = Vec::new();
    for (what, name) in &names {
        let cache = ctx.root().join(name);
        std::fs::create_dir_all(&cache).unwrap();
        let marker = ctx.path(&format!("inner-{}", what.replace(' ', "-")));
        let out = run(ctx
            .steady()
            .arg("--cache")
            .arg(&cache)
            .arg("--")
            .arg("outer")
            .arg(steady_bin())
            .arg(&cache)
            .arg(&marker));
        if code(&out) != 0 || !marker.exists() {
            waited.push(format!("{what}: exit {}", code(&out)));
        }
    }
    assert!(
        waited.is_empty(),
        "nested runs waited on their own ancestor's lock: {waited:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Case 10: leftovers of a holder killed with SIGKILL.
// ---------------------------------------------------------------------------------------------

/// Case 10. Run A's command leaves a `setsid` grandchild writing into the cache; A is killed
/// with SIGKILL. The next run on the cache must stop that leftover before its own command
/// starts (its command finds it dead).
#[test]
fn the_next_run_stops_the_leftovers_of_a_killed_holder() {
    let ctx = Ctx::new();
    let cache = ctx.cache().canonicalize().unwrap();
    let (pids, inside) = (ctx.path("pids"), ctx.path("inside"));
    // The grandchild writes into the cache every 0.1 s for at most 120 s.
    ctx.fixture(
        "leave",
        "setsid sh -c 'echo $$ >> \"$1\"; i=0; while [ $i -lt 1200 ]; do echo x >> \"$2/writes\"; sleep 0.1; i=$((i+1)); done' sh \"$1\" \"$2\" &\n\
         while [ ! -s \"$1\" ]; do sleep 0.02; done\n\
         touch \"$3\"\n\
         i=0; while [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done\n",
    );
    let a = Bg::spawn(
        ctx.steady()
            .arg("--cache")
            .arg(&cache)
            .arg("--")
            .arg("leave")
            .arg(&pids)
            .arg(&cache)
            .arg(&inside),
    );
    assert!(wait_for(LONG, || inside.exists()), "A never got in");
    let leftover = pids_in(&pids);
    assert_eq!(leftover.len(), 1, "{leftover:?}");
    kill(Pid::from_raw(a.pid() as i32), Signal::SIGKILL).unwrap();
    let _ = a.finish_within(LONG);
    let seen = ctx.path("seen");
    let out = run(ctx
        .steady()
        .arg("--cache")
        .arg(&cache)
        .args(["--lock-timeout", "30s", "--", "sh", "-c"])
        .arg(format!(
            // A zombie no longer runs, and whether it is reaped at once depends on the
            // machine's pid 1, so only a live state counts.
            "s=$(sed 's/.*) //' /proc/{}/stat 2>/dev/null | cut -c1); \
             case \"$s\" in ''|Z|X) echo dead > '{}' ;; *) echo alive > '{}' ;; esac",
            leftover[0],
            seen.display(),
            seen.display()
        )));
    let still = pid_alive(leftover[0]);
    kill_pids(&leftover);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        ctx.read("seen").trim() == "dead" && !still,
        "the next holder ran beside the killed holder's leftover (seen by its command: {:?}, alive after: {still})",
        ctx.read("seen").trim()
    );
}

// ---------------------------------------------------------------------------------------------
// Case 11: a fallback lock directory whose parent another user controls.
// ---------------------------------------------------------------------------------------------

/// Case 11. The lock directory's parent is owned by another user and world-writable without
/// the sticky bit: that user could rename steady's per-user directory away. steady must not put
/// its lock there (nothing of steady's appears in it), and a rename there never lets a second
/// run in.
#[test]
fn a_lock_directory_another_user_can_rename_is_not_used() {
    let Some(shim) = flock_shim() else { return };
    let Some((uid, gid)) = other_user("steady-test-other") else {
        return;
    };
    let ctx = Ctx::new();
    span(&ctx);
    chmod(ctx.root(), 0o755);
    let theirs = ctx.path("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(uid), Some(gid)).unwrap();
    chmod(&theirs, 0o777);
    let cache = ctx.cache().canonicalize().unwrap();
    let log = ctx.path("log");
    let steady = || {
        let mut c = ctx.steady();
        c.env("LD_PRELOAD", &shim)
            .env("STEADY_SHIM_FLOCK_ERRNO", libc::ENOLCK.to_string())
            .env("STEADY_SHIM_FLOCK_PATHS", cache.display().to_string())
            .arg("--cache")
            .arg(&cache)
            .arg("--lock-dir")
            .arg(&theirs);
        c
    };
    let release = ctx.path("release-a");
    let a = Bg::spawn(
        steady()
            .arg("--")
            .arg("span")
            .arg(&log)
            .arg("A")
            .arg(&release),
    );
    // Refusing the directory outright (125, nothing run, nothing created) keeps the promise too.
    let mut a = Some(a);
    assert!(
        wait_for(LONG, || ctx.read("log").contains("S A")
            || !a.as_ref().unwrap().alive()),
        "A never got in"
    );
    if !ctx.read("log").contains("S A") {
        let out = a.take().unwrap().finish();
        assert_eq!(code(&out), 125, "{}", stderr(&out));
        assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0);
        return;
    }
    let a = a.unwrap();
    let used: Vec<String> = std::fs::read_dir(&theirs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // What that user can do there: move steady's directory away.
    let mine = theirs.join(format!("steady-{}", euid()));
    if mine.exists() {
        let out = run(Command::new("mv")
            .arg(&mine)
            .arg(theirs.join("moved"))
            .uid(uid)
            .gid(gid));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let b = run(steady()
        .args(["--lock-timeout", "1s", "--"])
        .arg("span")
        .arg(&log)
        .arg("B"));
    touch(&release);
    let _ = a.finish_within(LONG);
    let n = overlaps(&log);
    assert!(
        used.is_empty() && n == 0,
        "steady put its lock in a directory another user controls ({used:?}); overlaps after that user's rename: {n} (B exit {})",
        code(&b)
    );
}

// ---------------------------------------------------------------------------------------------
// Case 13: --retries is bounded.
// ---------------------------------------------------------------------------------------------

/// Case 13. An absurd `--retries` (4294967295, and its environment twin) is refused with 125
/// before anything runs.
#[test]
fn absurd_retry_counts_are_refused_before_running() {
    let ctx = Ctx::new();
    let mut ran = Vec::new();
    for (how, value) in [
        ("flag", "4294967295"),
        ("flag", "1000000"),
        ("env", "4294967295"),
    ] {
        let marker = ctx.path("work/ran");
        let _ = std::fs::remove_file(&marker);
        let mut cmd = ctx.steady();
        if how == "flag" {
            cmd.args(["--retries", value]);
        } else {
            cmd.env("STEADY_RETRIES", value);
        }
        let out = run(cmd.args(["--", "touch", "ran"]));
        if code(&out) != 125 || marker.exists() {
            ran.push(format!(
                "{how} {value}: exit {}, ran: {}",
                code(&out),
                marker.exists()
            ));
        }
    }
    assert!(ran.is_empty(), "absurd --retries were accepted: {ran:?}");
}

// ---------------------------------------------------------------------------------------------
// Case 14: what steady says matches what it does.
// ---------------------------------------------------------------------------------------------

/// Case 14. A TERM to steady while it clears the cache ends the run (143, no further attempt),
/// and steady does not announce a retry it will not make.
#[test]
fn a_stop_during_a_clean_ends_the_run_without_announcing_a_retry() {
    let ctx = Ctx::new();
    let (runs, cleaning) = (ctx.path("runs"), ctx.path("cleaning"));
    ctx.fixture(
        "uv",
        "if [ \"$1\" = cache ]; then touch \"$CLEANING\"; i=0; while [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; exit 0; fi\n\
         echo x >> \"$RUNS\"\n\
         echo 'error: Failed to deserialize cache entry' >&2; exit 2\n",
    );
    make_uv_cache(&ctx.cache());
    let mut child = ctx
        .steady()
        .env("RUNS", &runs)
        .env("CLEANING", &cleaning)
        .env("UV_CACHE_DIR", ctx.cache())
        .args([
            "--backoff",
            "1s",
            "--retries",
            "2",
            "--clean",
            "always",
            "--",
        ])
        .args(["uv", "pip", "install", "alpha"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    assert!(
        wait_for(LONG, || cleaning.exists()),
        "the clean never started"
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = wait_child(&mut child, "TERM during a clean");
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    let attempts = ctx.read("runs").lines().count();
    assert_eq!(attempts, 1, "an attempt ran after the TERM:\n{err}");
    assert_eq!(status_code(status), 143, "{err}");
    assert!(
        !err.contains("retrying in"),
        "steady announced a retry it did not make:\n{err}"
    );
}

/// Case 14. After its PostgreSQL session is terminated (the server stays up), the run fails and
/// steady does not tell the user to wait for the server to come back.
#[test]
fn a_terminated_session_is_not_blamed_on_the_server() {
    let Some(pg) = Pg::start(None) else { return };
    let ctx = Ctx::new();
    let inside = ctx.path("inside-pg");
    let a = Bg::spawn(
        machine(&ctx, &pg, "a")
            .args(["--retries", "0", "--", "sh", "-c"])
            .arg("touch \"$1\"; i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done")
            .arg("sh")
            .arg(&inside),
    );
    assert!(wait_for(LONG, || inside.exists()), "A never got in");
    terminate_session_of(&pg, a.pid());
    let out = a.finish_within(LONG).expect("A did not end");
    let err = stderr(&out);
    assert_ne!(code(&out), 0, "{err}");
    assert!(
        !err.contains("server is back"),
        "steady blamed a server that never went down:\n{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Case 15: boolean variables reject values they do not know.
// ---------------------------------------------------------------------------------------------

/// Case 15. `STEADY_NO_LOCK=abc` and `STEADY_SHARED=abc` exit 125 before running, as
/// `STEADY_VERBOSE=abc` does; known spellings still work.
#[test]
fn unknown_boolean_values_are_refused() {
    let ctx = Ctx::new();
    let mut accepted = Vec::new();
    for var in [
        "STEADY_VERBOSE",
        "STEADY_QUIET",
        "STEADY_NO_LOCK",
        "STEADY_SHARED",
    ] {
        for value in ["abc", "maybe", "2"] {
            let marker = ctx.path("work/ran");
            let _ = std::fs::remove_file(&marker);
            let out = run(ctx.steady().env(var, value).args(["--", "touch", "ran"]));
            if code(&out) != 125 || marker.exists() {
                accepted.push(format!("{var}={value}: exit {}", code(&out)));
            }
        }
    }
    // STEADY_NO_LOCK=abc must not silently drop the lock either way: a held cache stays held.
    let cache = ctx.cache().canonicalize().unwrap();
    let held = hold_flock(&cache);
    let out = run(ctx
        .steady()
        .env("STEADY_NO_LOCK", "abc")
        .arg("--cache")
        .arg(&cache)
        .args(["--lock-timeout", "300ms", "--", "touch", "ran-held"]));
    drop(held);
    if ctx.path("work/ran-held").exists() {
        accepted.push(format!(
            "STEADY_NO_LOCK=abc ran beside the lock's holder (exit {})",
            code(&out)
        ));
    }
    for (var, value) in [("STEADY_NO_LOCK", "1"), ("STEADY_SHARED", "true")] {
        let out = run(ctx.steady().env(var, value).args(["--", "true"]));
        assert_eq!(code(&out), 0, "{var}={value}: {}", stderr(&out));
    }
    assert!(
        accepted.is_empty(),
        "unknown boolean values were taken: {accepted:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Case 16: --lock paths checked before opening; the hand-down trusted only when true.
// ---------------------------------------------------------------------------------------------

/// Case 16. `--lock` naming something that is neither a directory nor a regular file (a FIFO
/// here, a device in the issue) is never opened: a writer blocked on the FIFO stays blocked.
#[test]
fn a_lock_path_is_checked_before_it_is_opened() {
    let ctx = Ctx::new();
    let fifo = ctx.path("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // A writer blocks in open() until someone opens the FIFO for reading.
    let (tx, rx) = std::sync::mpsc::channel();
    let f2 = fifo.clone();
    std::thread::spawn(move || {
        let r = std::fs::OpenOptions::new().write(true).open(&f2);
        let _ = tx.send(r.is_ok());
    });
    let out = run(ctx.steady().arg("--lock").arg(&fifo).args(["--", "true"]));
    let opened = rx.recv_timeout(Duration::from_millis(500)).is_ok();
    // Let the writer go if it is still blocked.
    if !opened {
        let _ = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo);
        let _ = rx.recv_timeout(LONG);
    }
    assert!(
        !opened,
        "steady opened the FIFO named by --lock before checking its type (exit {}): {}",
        code(&out),
        stderr(&out)
    );
}

use std::os::unix::fs::OpenOptionsExt;

/// Case 16. `STEADY_HELD_LOCKS` naming a real ancestor that does not hold the lock (a shell
/// between the test and steady; pid 1 in the issue) must not skip the lock: with the cache held
/// elsewhere, the run waits and times out with 75 instead of running.
#[test]
fn the_held_locks_hand_down_is_trusted_only_when_the_ancestor_holds_the_lock() {
    let ctx = Ctx::new();
    let cache = ctx.cache().canonicalize().unwrap();
    let held = hold_flock(&cache);
    let mut results = Vec::new();
    for who in ["1", "$$"] {
        let marker = ctx.path("work/ran");
        let _ = std::fs::remove_file(&marker);
        let script = format!(
            "STEADY_HELD_LOCKS=\"{who} $1\" \"$2\" --cache \"$1\" --lock-timeout 300ms -- touch ran; echo $? > code"
        );
        let out = run(ctx
            .command("sh")
            .args(["-c", &script, "sh"])
            .arg(&cache)
            .arg(steady_bin()));
        let c = ctx.read("work/code").trim().to_owned();
        if marker.exists() || c != "75" {
            results.push(format!("pid {who}: exit {c} {}", stderr(&out)));
        }
    }
    drop(held);
    assert!(
        results.is_empty(),
        "a hand-down from an ancestor that does not hold the lock skipped it: {results:?}"
    );
}
