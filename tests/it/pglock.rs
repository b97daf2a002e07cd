//! The PostgreSQL lock backend (`--lock-url`; reliability.md section 6 and R27). Each test
//! starts its own server in a temp dir on 127.0.0.1 and a free port (as the `postgres` user when
//! the tests run as root, since the server refuses root) and stops it at the end through a Drop
//! guard; where no server can be started the test skips with the reason (a failure under
//! STEADY_TEST_STRICT=1). "Two machines" are two steady processes with different TMPDIRs,
//! lock directories and cache paths that name one lock with `--lock-namespace`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::*;

/// Bound for things that happen at once on an idle machine.
const LONG: Duration = Duration::from_secs(30);

/// The bound from the holder's death to the waiter's entry.
const TAKEOVER: Duration = Duration::from_secs(2);

/// A PostgreSQL server of one test, stopped and removed when dropped.
pub(crate) struct Pg {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// uid and gid the server runs as (`postgres` when the tests run as root).
    user: Option<(u32, u32)>,
}

/// The newest PostgreSQL's binaries: where `pg_ctl` on PATH points, else Debian's versioned
/// directories.
fn pg_bin() -> Option<PathBuf> {
    let has_all = |d: &Path| {
        ["initdb", "pg_ctl", "postgres", "psql"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("pg_ctl"))
            .find(|p| p.is_file())
            .and_then(|p| p.canonicalize().ok())
            .and_then(|p| p.parent().map(Path::to_path_buf))
    });
    if let Some(d) = on_path.filter(|d| has_all(d)) {
        return Some(d);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| has_all(d))
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Pg {
    /// A server with initdb's trust authentication; `hba`, when given, replaces pg_hba.conf.
    pub(crate) fn start(hba: Option<&str>) -> Option<Pg> {
        if !cfg!(feature = "postgres") {
            skip("steady was built without the `postgres` feature");
            return None;
        }
        let Some(bin) = pg_bin() else {
            skip(
                "PostgreSQL is not installed (no initdb/pg_ctl/postgres/psql on PATH or in /usr/lib/postgresql)",
            );
            return None;
        };
        let user = if is_root() {
            match nix::unistd::User::from_name("postgres").ok().flatten() {
                Some(u) => Some((u.uid.as_raw(), u.gid.as_raw())),
                None => {
                    skip("running as root, and there is no `postgres` user to run the server as");
                    return None;
                }
            }
        } else {
            None
        };
        // In the shared temp dir, not the test's own (0700, root's): the server's user must
        // reach it.
        let dir = tempfile::Builder::new()
            .prefix("steady-pg-")
            .tempdir_in(std::env::temp_dir())
            .expect("temp dir");
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let mut pg = Pg {
            dir,
            bin,
            port: 0,
            user,
        };
        let out = pg
            .tool("initdb")
            .arg("-D")
            .arg(pg.data())
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--locale=C",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .output()
            .expect("initdb");
        if !out.status.success() {
            skip(&format!("initdb failed: {}", stderr(&out)));
            return None;
        }
        if let Some(hba) = hba {
            std::fs::write(pg.data().join("pg_hba.conf"), hba).unwrap();
        }
        // A port found free may be taken before the server binds it: try a few.
        let mut why = String::new();
        for _ in 0..3 {
            pg.port = free_port();
            let out = pg
                .tool("pg_ctl")
                .arg("-D")
                .arg(pg.data())
                .arg("-l")
                .arg(pg.dir.path().join("log"))
                .args(["-w", "-t", "30", "-o"])
                .arg(format!(
                    "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=40",
                    pg.port,
                    pg.dir.path().display()
                ))
                .arg("start")
                .output()
                .expect("pg_ctl");
            if out.status.success() {
                return Some(pg);
            }
            why = format!(
                "{}{}",
                stderr(&out),
                std::fs::read_to_string(pg.dir.path().join("log")).unwrap_or_default()
            );
        }
        skip(&format!("the PostgreSQL server would not start: {why}"));
        None
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// One of the server's programs, run as the server's user.
    fn tool(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(name));
        cmd.env("LC_ALL", "C")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs SQL as the superuser over TCP; its rows, one per line.
    pub(crate) fn sql(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-XAtq",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-p"])
            .arg(self.port.to_string())
            .arg("-c")
            .arg(sql)
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGPASSWORD")
            .stdin(Stdio::null())
            .output()
            .expect("psql");
        assert!(out.status.success(), "psql `{sql}`: {}", stderr(&out));
        stdout(&out).trim().to_owned()
    }

    /// Sessions waiting for an advisory lock.
    pub(crate) fn advisory_waiters(&self) -> usize {
        self.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            .parse()
            .unwrap_or(0)
    }

    /// The server process of the steady session whose holder is `pid`.
    pub(crate) fn backend_of(&self, pid: u32) -> Option<i32> {
        self.sql(&format!(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'steady {pid}@%'"
        ))
        .lines()
        .next()?
        .parse()
        .ok()
    }

    /// Stops the server at once, as a crash would: no goodbye to the clients.
    fn stop_now(&self) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "-t", "10", "stop"])
            .output();
        if let Some(pid) = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next()?.trim().parse::<i32>().ok())
            && pid_alive(pid)
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Sends SIGCONT to a stopped process when dropped, so that a failing test does not leave a
/// frozen server process behind.
struct Continue(i32);

impl Drop for Continue {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0), Signal::SIGCONT);
    }
}

/// `family`: starts a child and a `setsid` escapee, writes all three pids to `$1`, says it is
/// inside (touches `$2`) and waits. With `$3`, it counts its runs there and from the second
/// on only touches `$2` and succeeds.
pub(crate) fn family(ctx: &Ctx) {
    ctx.fixture(
        "family",
        "if [ -n \"$3\" ]; then\n\
           n=$(cat \"$3\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$3\"\n\
           if [ $n -ge 2 ]; then touch \"$2\"; exit 0; fi\n\
         fi\n\
         echo $$ >> \"$1\"\n\
         sh -c 'echo $$ >> \"$0\"; exec sleep 301' \"$1\" &\n\
         setsid sh -c 'echo $$ >> \"$0\"; exec sleep 302' \"$1\" &\n\
         while [ \"$(wc -l < \"$1\")\" -lt 3 ]; do sleep 0.02; done\n\
         touch \"$2\"\n\
         wait\n",
    );
}

/// steady as one "machine": its own TMPDIR, lock directory and cache, meeting the others at
/// namespace `fleet` on `pg`.
pub(crate) fn machine(ctx: &Ctx, pg: &Pg, name: &str) -> Command {
    machine_at(ctx, &pg.url(), name)
}

/// [`machine`] with its own `--lock-url`.
fn machine_at(ctx: &Ctx, url: &str, name: &str) -> Command {
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
        .arg("--lock-url")
        .arg(url)
        .args(["--lock-namespace", "fleet", "--lock-dir"])
        .arg(&locks)
        .arg("--cache")
        .arg(&cache);
    cmd
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .chars()
        .take(24)
        .collect()
}

fn assert_all_dead(pids: &[i32], what: &str) {
    assert!(!pids.is_empty(), "{what}: no pids were recorded");
    assert!(
        wait_for(LONG, || pids.iter().all(|p| !pid_alive(*p))),
        "{what}: still alive: {:?}",
        pids.iter().filter(|p| pid_alive(**p)).collect::<Vec<_>>()
    );
}

/// Every line steady printed is its own (`steady: …`, or the `hint: …` that follows one), and
/// there are at most `n` besides the hints.
fn assert_steady_lines(err: &str, n: usize) {
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("hint: ")).collect();
    assert!(
        !lines.is_empty() && lines.len() <= n,
        "expected 1..={n} lines:\n{err}"
    );
    assert!(lines.iter().all(|l| l.starts_with("steady: ")), "{err}");
}

/// Two machines whose caches differ in path (and in TMPDIR and lock directory, so no local
/// lock joins them) never run their commands at the same time when they name one namespace:
/// an overlap-detecting fixture, several rounds of two concurrent runs.
#[test]
fn two_machines_with_one_namespace_never_overlap() {
    let Some(pg) = Pg::start(None) else { return };
    let ctx = Ctx::new();
    let shared = ctx.path("shared");
    std::fs::create_dir(&shared).unwrap();
    ctx.fixture(
        "critical",
        "if ! mkdir \"$1/inside\" 2>/dev/null; then echo overlap >> \"$1/overlaps\"; fi\n\
         sleep 0.3\n\
         echo $$ >> \"$1/runs\"\n\
         rmdir \"$1/inside\" 2>/dev/null\n\
         exit 0\n",
    );
    let rounds = 5;
    let mut waited = 0;
    for _ in 0..rounds {
        let runs: Vec<Bg> = ["a", "b"]
            .iter()
            .map(|m| Bg::spawn(machine(&ctx, &pg, m).arg("--").arg("critical").arg(&shared)))
            .collect();
        for r in runs {
            let out = r.finish();
            let err = stderr(&out);
            assert_eq!(code(&out), 0, "{err}");
            if err.contains("waiting for the lock on namespace `fleet` in PostgreSQL") {
                waited += 1;
            }
        }
    }
    assert_eq!(
        std::fs::read_to_string(shared.join("overlaps")).unwrap_or_default(),
        "",
        "two machines ran at once"
    );
    assert_eq!(pids_in(&shared.join("runs")).len(), 2 * rounds);
    assert!(
        waited > 0,
        "no run ever waited for the other, so the test proved nothing"
    );
}

/// `kill -9` of the holder: the server sees its connection close and releases the lock, and
/// the waiter on the other machine is in within 2 s. On the way: the holder runs no helper
/// thread, and a waiter told to stop ends at once and leaves the server's queue.
#[test]
fn kill_9_of_the_holder_lets_the_waiter_in_within_2s() {
    let Some(pg) = Pg::start(None) else { return };
    let ctx = Ctx::new();
    let (a, _release) = hold_with(&ctx, &mut machine(&ctx, &pg, "a"), "a");
    let entered = ctx.path("entered-b");
    let b = Bg::spawn(machine(&ctx, &pg, "b").arg("--").arg("touch").arg(&entered));
    assert!(
        wait_for(LONG, || pg.advisory_waiters() == 1),
        "the second machine never waited in the server"
    );
    assert!(!entered.exists(), "the waiter ran while the lock was held");
    // Holding the lock on a connection takes no helper thread (qemu-user fork deadlock).
    assert_eq!(proc_status(a.pid() as i32, "Threads"), Some(1));
    // A stop signal ends a wait in the server at once (R16), and the server forgets that
    // waiter.
    let c = Bg::spawn(machine(&ctx, &pg, "c").args(["--", "true"]));
    assert!(
        wait_for(LONG, || pg.advisory_waiters() == 2),
        "the third machine never waited in the server"
    );
    kill(Pid::from_raw(c.pid() as i32), Signal::SIGTERM).unwrap();
    let out = c
        .finish_within(Duration::from_millis(2500))
        .expect("a waiting steady ignored SIGTERM");
    assert_eq!(code(&out), 128 + libc::SIGTERM, "{}", stderr(&out));
    assert!(
        wait_for(LONG, || pg.advisory_waiters() == 1),
        "the server still queues the stopped waiter"
    );
    kill(Pid::from_raw(a.pid() as i32), Signal::SIGKILL).unwrap();
    let killed = Instant::now();
    assert!(
        wait_for(LONG, || entered.exists()),
        "the waiter never got in"
    );
    let took = killed.elapsed();
    eprintln!("kill -9 of the holder to the waiter's entry: {took:?}");
    let out = b.finish();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(took < TAKEOVER, "the waiter got in only after {took:?}");
}

/// The server stops (immediate shutdown, as a crash) while the command runs: steady kills the
/// command's whole tree, a setsid escapee included, cannot take the lock again, and says so in
/// `steady:` lines, with exit 75.
#[test]
fn server_stopping_mid_run_kills_the_tree_and_says_so() {
    let Some(pg) = Pg::start(None) else { return };
    let ctx = Ctx::new();
    family(&ctx);
    let (pids, inside) = (ctx.path("pids"), ctx.path("inside"));
    let run = Bg::spawn(
        machine(&ctx, &pg, "a")
            .args(["--backoff", "100ms", "--"])
            .arg("family")
            .arg(&pids)
            .arg(&inside),
    );
    assert!(
        wait_for(LONG, || inside.exists()),
        "the command never started"
    );
    let tree = pids_in(&pids);
    assert_eq!(tree.len(), 3, "{tree:?}");
    assert!(tree.iter().all(|p| pid_alive(*p)));
    let stopped = Instant::now();
    pg.stop_now();
    let out = run
        .finish_within(LONG)
        .expect("steady kept running after the server stopped");
    eprintln!("server stopped to steady's exit: {:?}", stopped.elapsed());
    let err = stderr(&out);
    assert_eq!(code(&out), 75, "{err}");
    assert_all_dead(&tree, "the command's tree");
    assert_steady_lines(&err, 3);
    assert!(
        err.contains("killed: the lock was lost")
            && err.contains("lost the lock (PostgreSQL at 127.0.0.1:")
            && err.contains("cannot take it again: cannot reach PostgreSQL")
            && err.contains("the command was not retried"),
        "{err}"
    );
}

/// A server that stops answering but keeps the connection open (its process frozen) is found
/// by the keep-alive query within a bounded time; the tree is killed and, with no retries
/// left, steady exits 75 naming the cause.
#[test]
fn keep_alive_finds_a_frozen_server() {
    let Some(pg) = Pg::start(None) else { return };
    let ctx = Ctx::new();
    family(&ctx);
    let (pids, inside) = (ctx.path("pids"), ctx.path("inside"));
    let run = Bg::spawn(
        machine(&ctx, &pg, "a")
            .args(["--lock-ping", "200ms", "--retries", "0", "--"])
            .arg("family")
            .arg(&pids)
            .arg(&inside),
    );
    assert!(
        wait_for(LONG, || inside.exists()),
        "the command never started"
    );
    let tree = pids_in(&pids);
    let backend = pg.backend_of(run.pid()).expect("steady's session");
    kill(Pid::from_raw(backend), Signal::SIGSTOP).unwrap();
    let _thaw = Continue(backend);
    let frozen = Instant::now();
    let out = run
        .finish_within(LONG)
        .expect("steady never noticed the frozen server");
    let took = frozen.elapsed();
    eprintln!("frozen server (keep-alive every 200ms) to steady's exit: {took:?}");
    let err = stderr(&out);
    assert_eq!(code(&out), 75, "{err}");
    assert_all_dead(&tree, "the command's tree");
    assert!(
        err.contains("lost its lock (PostgreSQL at")
            && err.contains("did not answer a keep-alive query for 400ms")
            && err.contains("steady killed its whole process tree"),
        "{err}"
    );
    // Two missed answers plus scheduling; far below the connection's own timeouts.
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// A lost lock is taken again before the retry: the server ends steady's session (as an
/// admin or a failover would) while attempt 1 runs; its tree is killed, and attempt 2 runs
/// under the lock taken anew and succeeds.
#[test]
fn lost_lock_is_taken_again_before_the_retry() {
    let Some(pg) = Pg::start(None) else { return };
    let ctx = Ctx::new();
    family(&ctx);
    let (pids, inside, count) = (ctx.path("pids"), ctx.path("inside"), ctx.path("count"));
    let run = Bg::spawn(
        machine(&ctx, &pg, "a")
            .args(["-v", "--backoff", "100ms", "--"])
            .arg("family")
            .arg(&pids)
            .arg(&inside)
            .arg(&count),
    );
    assert!(
        wait_for(LONG, || inside.exists()),
        "attempt 1 never started"
    );
    let tree = pids_in(&pids);
    std::fs::remove_file(&inside).unwrap();
    let backend = pg.backend_of(run.pid()).expect("steady's session");
    assert_eq!(
        pg.sql(&format!("SELECT pg_terminate_backend({backend})")),
        "t"
    );
    let out = run.finish_within(LONG).expect("steady never finished");
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert_all_dead(&tree, "attempt 1's tree");
    assert_eq!(ctx.read("count").trim(), "2", "{err}");
    assert!(
        err.contains("attempt 1 of 3 failed (killed: the lock was lost")
            && err.contains("terminating connection due to administrator command")
            && err.contains("taking the lock on namespace `fleet` in PostgreSQL")
            && err.contains("succeeded on attempt 2 of 3"),
        "{err}"
    );
    assert_eq!(
        err.matches("steady: locked namespace `fleet` in PostgreSQL")
            .count(),
        2,
        "{err}"
    );
}

/// `--lock-timeout` maps to the server's lock_timeout (and `0` to a try): it expires with exit
/// 75, names the holder by pid, host and command from its application_name, and the command
/// does not run.
#[test]
fn lock_timeout_expires_with_75_and_names_the_holder() {
    let Some(pg) = Pg::start(None) else { return };
    let ctx = Ctx::new();
    // The server trusts everyone; the password is there to be hidden.
    let url = format!("postgres://postgres:hunter2@127.0.0.1:{}/postgres", pg.port);
    let (a, release) = hold_with(&ctx, &mut machine_at(&ctx, &url, "a"), "a");
    let who = format!("held by pid {} on {} (`hold ", a.pid(), hostname());
    for (timeout, least, most) in [
        ("1s", Duration::from_millis(900), Duration::from_secs(10)),
        ("0", Duration::ZERO, Duration::from_secs(5)),
    ] {
        let started = Instant::now();
        let out = run(machine(&ctx, &pg, "b")
            .args(["--lock-timeout", timeout, "--", "touch"])
            .arg(ctx.path("ran")));
        let took = started.elapsed();
        let err = stderr(&out);
        assert_eq!(code(&out), 75, "--lock-timeout {timeout}: {err}");
        assert!(
            (least..most).contains(&took),
            "--lock-timeout {timeout} took {took:?}"
        );
        assert!(err.contains(&who), "--lock-timeout {timeout}: {err}");
        assert!(
            err.contains("gave up waiting for the lock on namespace `fleet` in PostgreSQL"),
            "{err}"
        );
        assert!(!ctx.path("ran").exists());
    }
    // On the holder's own machine the local lock names it, from its command line, which
    // carries the URL: its password stays out of the message.
    let out = run(machine(&ctx, &pg, "a")
        .args(["--lock-timeout", "300ms", "--", "touch"])
        .arg(ctx.path("ran")));
    let err = stderr(&out);
    assert_eq!(code(&out), 75, "{err}");
    assert!(err.contains(&format!("held by pid {}", a.pid())), "{err}");
    assert!(err.contains("postgres://postgres:***@127.0.0.1:"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
    touch(&release);
    assert_eq!(code(&a.finish()), 0);
}

/// `--shared` maps to the shared advisory lock: readers on two machines run together, a writer
/// waits for them.
#[test]
fn shared_readers_run_together_and_keep_writers_out() {
    let Some(pg) = Pg::start(None) else { return };
    let ctx = Ctx::new();
    let (a, release) = hold_with(&ctx, machine(&ctx, &pg, "a").arg("--shared"), "a");
    let out = run(machine(&ctx, &pg, "b")
        .args(["--shared", "--lock-timeout", "0", "--", "touch"])
        .arg(ctx.path("read")));
    assert_eq!(
        code(&out),
        0,
        "a second reader was kept out: {}",
        stderr(&out)
    );
    let out = run(machine(&ctx, &pg, "c")
        .args(["--lock-timeout", "300ms", "--", "touch"])
        .arg(ctx.path("wrote")));
    assert_eq!(
        code(&out),
        75,
        "a writer got in beside a reader: {}",
        stderr(&out)
    );
    assert!(!ctx.path("wrote").exists());
    touch(&release);
    assert_eq!(code(&a.finish()), 0);
}

/// A steady inside a steady (an installer that runs another) does not wait for the remote lock
/// its ancestor holds; the URL and namespace come through the environment twins.
#[test]
fn nested_steady_does_not_wait_for_its_ancestors_remote_lock() {
    let Some(pg) = Pg::start(None) else { return };
    let ctx = Ctx::new();
    let inner = ctx.path("inner-cache");
    std::fs::create_dir(&inner).unwrap();
    let out = run(ctx
        .steady()
        .env("STEADY_LOCK_URL", pg.url())
        .env("STEADY_LOCK_NAMESPACE", "fleet")
        .arg("--cache")
        .arg(ctx.cache())
        .arg("--")
        .arg(steady_bin())
        .arg("-v")
        .arg("--cache")
        .arg(&inner)
        .args(["--lock-timeout", "2s", "--", "touch"])
        .arg(ctx.path("ran")));
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert!(ctx.path("ran").exists());
    assert!(
        err.contains("the lock on namespace `fleet` is held by an enclosing steady"),
        "{err}"
    );
}

/// Logins with a password: SCRAM-SHA-256, md5 and cleartext (from the URL, percent-escaped,
/// or PGPASSWORD), and trust over a Unix socket named with `host=/dir`. A wrong or missing
/// password is exit 125 in one line that does not show the password.
#[test]
fn password_logins_and_unix_sockets() {
    let hba = "local all all trust\n\
               host all postgres 127.0.0.1/32 trust\n\
               host all scram_user 127.0.0.1/32 scram-sha-256\n\
               host all md5_user 127.0.0.1/32 md5\n\
               host all clear_user 127.0.0.1/32 password\n";
    let Some(pg) = Pg::start(Some(hba)) else {
        return;
    };
    pg.sql(
        "SET password_encryption = 'scram-sha-256'; \
         CREATE ROLE scram_user LOGIN PASSWORD 'sc:r@m/pw'; \
         SET password_encryption = 'md5'; \
         CREATE ROLE md5_user LOGIN PASSWORD 'md5-pw'; \
         CREATE ROLE clear_user LOGIN PASSWORD 'clear-pw'",
    );
    let ctx = Ctx::new();
    let at = format!("127.0.0.1:{}/postgres", pg.port);
    let socket_url = format!(
        "postgres:///postgres?host={}&port={}&user=postgres",
        pg.dir.path().display(),
        pg.port
    );
    let logins: [(String, Option<&str>); 4] = [
        (format!("postgres://scram_user:sc%3Ar%40m%2Fpw@{at}"), None),
        (format!("postgres://md5_user@{at}"), Some("md5-pw")),
        (format!("postgres://clear_user:clear-pw@{at}"), None),
        (socket_url, None),
    ];
    for (url, password) in &logins {
        let mut cmd = ctx.steady();
        cmd.env_remove("PGPASSWORD");
        if let Some(p) = password {
            cmd.env("PGPASSWORD", p);
        }
        let out = run(cmd
            .arg("-v")
            .arg("--lock-url")
            .arg(url)
            .arg("--cache")
            .arg(ctx.cache())
            .args(["--", "true"]));
        let err = stderr(&out);
        assert_eq!(code(&out), 0, "{url}: {err}");
        assert!(err.contains("steady: locked `"), "{url}: {err}");
        assert!(err.contains("in PostgreSQL at "), "{url}: {err}");
    }
    for (url, says) in [
        (
            format!("postgres://scram_user:wrong-pw@{at}"),
            "password authentication failed for user \"scram_user\"",
        ),
        (
            format!("postgres://md5_user:wrong-pw@{at}"),
            "password authentication failed for user \"md5_user\"",
        ),
        (
            format!("postgres://scram_user@{at}"),
            "the server asks user `scram_user` for a password",
        ),
    ] {
        let out = run(ctx
            .steady()
            .env_remove("PGPASSWORD")
            .arg("--lock-url")
            .arg(&url)
            .arg("--cache")
            .arg(ctx.cache())
            .arg("--")
            .arg("touch")
            .arg(ctx.path("ran")));
        let err = stderr(&out);
        assert_eq!(code(&out), 125, "{url}: {err}");
        assert_steady_lines(&err, 1);
        assert!(err.contains(says), "{url}: {err}");
        assert!(!err.contains("wrong-pw"), "the password leaked: {err}");
        assert!(!ctx.path("ran").exists());
    }
}

/// A URL steady cannot use is bad input: exit 125 in one line that says why and hides the
/// password, before anything runs. A good URL to a server that is not there is exit 75 in one
/// line.
#[test]
fn bad_lock_urls_exit_125_in_one_line() {
    let ctx = Ctx::new();
    if !cfg!(feature = "postgres") {
        let out = run(ctx
            .steady()
            .args(["--lock-url", "postgres://h/db", "--cache"])
            .arg(ctx.cache())
            .args(["--", "true"]));
        let err = stderr(&out);
        assert_eq!(code(&out), 125, "{err}");
        assert_steady_lines(&err, 1);
        assert!(err.contains("built without"), "{err}");
        return;
    }
    for (args, says) in [
        (
            vec!["--lock-url", "mysql://u:secret@h/db"],
            "--lock-url must start with postgres:// or postgresql://",
        ),
        (
            vec!["--lock-url", "postgres://u:secret@h:99999/db"],
            "port `99999` is not a number",
        ),
        (
            vec!["--lock-url", "postgres://u:secret@h/db?sslmode=verify-full"],
            "asks for TLS, which steady does not speak",
        ),
        (
            vec!["--lock-url", "postgres://u:secret@h/db?colour=blue"],
            "unknown parameter `colour`",
        ),
        (
            vec!["--lock-namespace", "fleet"],
            "--lock-namespace names the lock in the --lock-url database",
        ),
    ] {
        let out = run(ctx
            .steady()
            .args(&args)
            .arg("--cache")
            .arg(ctx.cache())
            .arg("--")
            .arg("touch")
            .arg(ctx.path("ran")));
        let err = stderr(&out);
        assert_eq!(code(&out), 125, "{args:?}: {err}");
        assert_steady_lines(&err, 1);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("secret"), "the password leaked: {err}");
        assert!(!ctx.path("ran").exists());
    }
    let nobody = free_port();
    let out = run(ctx
        .steady()
        .arg("--lock-url")
        .arg(format!("postgres://u:secret@127.0.0.1:{nobody}/db"))
        .arg("--cache")
        .arg(ctx.cache())
        .arg("--")
        .arg("touch")
        .arg(ctx.path("ran")));
    let err = stderr(&out);
    assert_eq!(code(&out), 75, "{err}");
    assert_steady_lines(&err, 1);
    assert!(
        err.contains(&format!("cannot reach PostgreSQL at 127.0.0.1:{nobody}/db")),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
    assert!(!ctx.path("ran").exists());
}

fn touch(p: &Path) {
    std::fs::write(p, b"").unwrap();
}

/// The entries of `steady status` headed `head`: that line and the indented ones under it.
fn status_entries(text: &str, head: &str) -> Vec<String> {
    let mut entries: Vec<String> = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if !line.starts_with(' ') {
            inside = line == head;
            if inside {
                entries.push(String::new());
            }
        }
        if let Some(e) = entries.last_mut().filter(|_| inside) {
            e.push_str(line);
            e.push('\n');
        }
    }
    entries
}

fn status_entry(text: &str, head: &str) -> Option<String> {
    status_entries(text, head).into_iter().next()
}

/// The advisory keys the server has locks on, as psql reassembles them from pg_locks' two
/// 32-bit halves (steady's own reassembly is what is under test).
fn advisory_keys(pg: &Pg) -> Vec<String> {
    pg.sql(
        "SELECT DISTINCT (classid::bigint << 32) | objid::bigint FROM pg_locks \
         WHERE locktype = 'advisory' AND objsubid = 1",
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

/// `steady status` with STEADY_LOCK_URL lists the locks in PostgreSQL after the local ones and
/// in their shape: the holder on one machine and the waiter on another, each with its pid,
/// host and command, under the namespace when status is told it, else under the server's key.
/// Once both are done it lists none there.
#[test]
fn status_lists_postgresql_holders_and_waiters() {
    let Some(pg) = Pg::start(None) else { return };
    let ctx = Ctx::new();
    let (a, release) = hold_with(&ctx, &mut machine(&ctx, &pg, "a"), "a");
    let entered = ctx.path("entered-b");
    let b = Bg::spawn(machine(&ctx, &pg, "b").arg("--").arg("touch").arg(&entered));
    assert!(
        wait_for(LONG, || pg.advisory_waiters() == 1),
        "the second machine never waited in the server"
    );
    let status = |namespace: Option<&str>| {
        let mut cmd = ctx.steady();
        cmd.env("STEADY_LOCK_URL", pg.url()).arg("status");
        if let Some(ns) = namespace {
            cmd.env("STEADY_LOCK_NAMESPACE", ns);
        }
        let out = Bg::spawn(&mut cmd)
            .finish_within(LONG)
            .expect("steady status hung");
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(stderr(&out), "");
        stdout(&out)
    };
    let keys = advisory_keys(&pg);
    assert_eq!(keys.len(), 1, "{keys:?}");
    let host = hostname();
    let at = format!("127.0.0.1:{}/postgres", pg.port);
    let text = status(Some("fleet"));
    let entry = status_entry(&text, "namespace `fleet`")
        .unwrap_or_else(|| panic!("no entry for the namespace:\n{text}"));
    // Each machine's own local lock is listed first, as before.
    let local = ctx.path("cache-a").canonicalize().unwrap();
    let (local_at, remote_at) = (
        text.find(&format!("{}\n", local.display())),
        text.find("namespace `fleet`\n"),
    );
    assert!(
        local_at.is_some() && local_at < remote_at,
        "the local lock is not listed before the remote one:\n{text}"
    );
    let lines: Vec<&str> = entry.lines().collect();
    assert_eq!(lines.len(), 5, "{entry}");
    assert_eq!(
        lines[1],
        format!(
            "  lock:    advisory lock in PostgreSQL at {at}, key {}: shared with every machine \
             that uses that server",
            keys[0]
        ),
        "{entry}"
    );
    assert!(
        lines[2].starts_with(&format!(
            "  held by: pid {} on {host} (exclusive, connected for ",
            a.pid()
        )) && lines[2].contains("): hold "),
        "{entry}"
    );
    assert_eq!(lines[3], "  waiting: 1", "{entry}");
    assert!(
        lines[4].starts_with(&format!(
            "           pid {} on {host} (exclusive, waiting for ",
            b.pid()
        )) && lines[4].contains("): touch "),
        "{entry}"
    );
    // Told no namespace, status cannot name the key (a hash of it) and shows it as it is.
    let text = status(None);
    let entry = status_entry(&text, &format!("advisory key {}", keys[0]))
        .unwrap_or_else(|| panic!("no entry for the key:\n{text}"));
    assert!(
        entry.contains(&format!("pid {} on {host}", a.pid())),
        "{entry}"
    );
    touch(&release);
    assert_eq!(code(&a.finish()), 0);
    let out = b.finish();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = status(Some("fleet"));
    assert!(
        text.contains(&format!(
            "no steady locks held or waited on in PostgreSQL at {at}\n"
        )) && !text.contains("namespace `fleet`"),
        "{text}"
    );
}

/// `steady doctor` with a lock URL asks the server who holds this command's lock (named by
/// the cache's path here, so doctor must name it as the run does): the holder's pid, host and
/// command, and the waiters; free once it is done. `steady status` names that key by the cache,
/// which this machine holds locally.
#[test]
fn doctor_shows_the_postgresql_holder() {
    let Some(pg) = Pg::start(None) else { return };
    let ctx = Ctx::new();
    let cache = ctx.path("shared-cache");
    std::fs::create_dir(&cache).unwrap();
    let (a, release) = hold_with(
        &ctx,
        ctx.steady()
            .arg("--lock-url")
            .arg(pg.url())
            .arg("--cache")
            .arg(&cache),
        "holder",
    );
    let doctor = || {
        let out = Bg::spawn(
            ctx.steady()
                .args(["doctor", "--lock-url"])
                .arg(pg.url())
                .arg("--cache")
                .arg(&cache)
                .args(["--", "touch", "x"]),
        )
        .finish_within(LONG)
        .expect("steady doctor hung");
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out)
            .lines()
            .find_map(|l| l.strip_prefix("remote lock"))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let line = doctor();
    let keys = advisory_keys(&pg);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        line.starts_with(&format!(
            "an exclusive advisory lock in PostgreSQL at 127.0.0.1:{}/postgres, named by the \
             cache's canonical path (key {}), taken after the local one; held now by pid {} on {} \
             (`hold ",
            pg.port,
            keys[0],
            a.pid(),
            hostname()
        )) && line.contains(", connected for ")
            && line.ends_with(", 0 waiting"),
        "{line}"
    );
    let out = Bg::spawn(ctx.steady().env("STEADY_LOCK_URL", pg.url()).arg("status"))
        .finish_within(LONG)
        .expect("steady status hung");
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let entries = status_entries(&text, &cache.canonicalize().unwrap().display().to_string());
    assert!(
        entries.len() == 2
            && entries[0].contains("  lock:    flock on the directory itself")
            && entries[1].contains(&format!(
                "  lock:    advisory lock in PostgreSQL at 127.0.0.1:{}/postgres, key {}:",
                pg.port, keys[0]
            ))
            && entries[1].contains(&format!("  held by: pid {} on ", a.pid())),
        "the cache is not named by its path both locally and in PostgreSQL:\n{text}"
    );
    touch(&release);
    assert_eq!(code(&a.finish()), 0);
    let line = doctor();
    assert!(
        line.ends_with("taken after the local one; free now"),
        "{line}"
    );
}

/// A lock server that cannot be reached: `steady status` still lists the local locks, then
/// says so in one `steady:` line and a hint, exits 75 as a run that cannot reach it would, and
/// does not hang. The password in the URL is not shown.
#[test]
fn status_with_an_unreachable_server_lists_the_local_locks_and_says_so() {
    if !cfg!(feature = "postgres") {
        skip("steady was built without the `postgres` feature");
        return;
    }
    let ctx = Ctx::new();
    let (a, release) = hold_with(&ctx, ctx.steady().arg("--cache").arg(ctx.cache()), "holder");
    let holder_pid = a.pid();
    let nobody = free_port();
    let out = Bg::spawn(
        ctx.steady()
            .env(
                "STEADY_LOCK_URL",
                format!("postgres://u:hunter2@127.0.0.1:{nobody}/db"),
            )
            .arg("status"),
    )
    .finish_within(LONG)
    .expect("steady status hung on an unreachable server");
    touch(&release);
    assert_eq!(code(&a.finish()), 0);
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(code(&out), 75, "{err}");
    let local = ctx.cache().canonicalize().unwrap().display().to_string();
    let entry = status_entry(&text, &local)
        .unwrap_or_else(|| panic!("the local lock is not listed:\n{text}"));
    assert!(
        entry.contains(&format!(
            "  held by: pid {} (exclusive, held for ",
            holder_pid
        )),
        "{entry}"
    );
    assert_steady_lines(&err, 1);
    assert!(
        err.contains(&format!(
            "steady: cannot reach PostgreSQL at 127.0.0.1:{nobody}/db"
        )),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("hint: ")).count(),
        1,
        "{err}"
    );
    assert!(
        !format!("{text}{err}").contains("hunter2"),
        "the password leaked"
    );
    // The same server named by the option, as `doctor` and a run take it.
    let out = Bg::spawn(ctx.steady().args([
        "status",
        "--lock-url",
        &format!("postgres://u:hunter2@127.0.0.1:{nobody}/db"),
    ]))
    .finish_within(LONG)
    .expect("steady status --lock-url hung on an unreachable server");
    let err = stderr(&out);
    assert_eq!(code(&out), 75, "{err}");
    assert!(
        err.contains(&format!(
            "steady: cannot reach PostgreSQL at 127.0.0.1:{nobody}/db"
        )),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
}

/// The password of a lock URL stays out of everything `status` and `doctor` print about the
/// server's locks: the server's address, the holder's command line (its own `--lock-url`), and
/// a login the server refuses (exit 125, one `steady:` line and a hint).
#[test]
fn status_and_doctor_never_show_the_lock_urls_password() {
    let Some(pg) = Pg::start(None) else { return };
    let ctx = Ctx::new();
    // The server trusts everyone; the password is there to be hidden.
    let url = format!("postgres://postgres:hunter2@127.0.0.1:{}/postgres", pg.port);
    let (a, release) = hold_with(
        &ctx,
        ctx.steady()
            .arg("--lock-url")
            .arg(&url)
            .args(["--lock-namespace", "fleet", "--cache"])
            .arg(ctx.cache()),
        "holder",
    );
    let holder_pid = a.pid();
    let status = |url: &str| {
        Bg::spawn(
            ctx.steady()
                .env("STEADY_LOCK_URL", url)
                .env("STEADY_LOCK_NAMESPACE", "fleet")
                .arg("status"),
        )
        .finish_within(LONG)
        .expect("steady status hung")
    };
    let listed = status(&url);
    let refused = status(&format!(
        "postgres://postgres:hunter2@127.0.0.1:{}/nosuchdb",
        pg.port
    ));
    let doctor = Bg::spawn(
        ctx.steady()
            .args(["doctor", "--lock-url"])
            .arg(&url)
            .args(["--lock-namespace", "fleet", "--cache"])
            .arg(ctx.path("other-cache"))
            .args(["--", "true"]),
    )
    .finish_within(LONG)
    .expect("steady doctor hung");
    touch(&release);
    assert_eq!(code(&a.finish()), 0);

    let text = stdout(&listed);
    assert_eq!(code(&listed), 0, "{}", stderr(&listed));
    let entry = status_entry(&text, "namespace `fleet`")
        .unwrap_or_else(|| panic!("no entry for the namespace:\n{text}"));
    assert!(
        entry.contains(&format!(
            "in PostgreSQL at 127.0.0.1:{}/postgres, key ",
            pg.port
        )) && entry.contains(&format!("  held by: pid {} on ", holder_pid)),
        "{entry}"
    );
    // The holder's local entry shows its command line, URL and all, with the password hidden.
    assert!(
        text.contains("--lock-url postgres://postgres:***@127.0.0.1:"),
        "{text}"
    );
    let err = stderr(&refused);
    assert_eq!(code(&refused), 125, "{err}");
    assert_steady_lines(&err, 1);
    assert!(
        err.contains("refused steady's login") && err.contains("nosuchdb"),
        "{err}"
    );
    assert!(err.contains("\nhint: "), "{err}");
    let said = stdout(&doctor);
    assert_eq!(code(&doctor), 0, "{}", stderr(&doctor));
    assert!(
        said.contains(&format!("; held now by pid {} on ", holder_pid)),
        "{said}"
    );
    for out in [&listed, &refused, &doctor] {
        let all = format!("{}{}", stdout(out), stderr(out));
        assert!(!all.contains("hunter2"), "the password leaked:\n{all}");
    }
}
