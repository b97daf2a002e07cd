//! `steady status`: every lock that a steady process of this user holds or waits on, with its
//! key, scope, holders, since when, and waiters. Read from the kernel (`/proc/locks`) and mapped
//! to paths through each steady process's open descriptors (`/proc/<pid>/fd`), so it works
//! alike for directory locks and fallback lock files, and needs no record of its own that a
//! crashed run could leave stale.
//!
//! With `STEADY_LOCK_URL`, the locks that steady holds or waits for in that PostgreSQL server
//! follow, from every machine, asked of the server over one short connection (`pg_locks`
//! and `pg_stat_activity`). The server knows a lock only by its hashed key, so a key is named
//! by the cache it stands for only where this machine can tell: a cache it has a lock on, or
//! `STEADY_LOCK_NAMESPACE`.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::cli::StatusArgs;
use crate::exit::Outcome;
use crate::lock;
use crate::lock::holders::{self, ProcLock};
use crate::sys;
use crate::ui;

/// One process (or PostgreSQL session) on one lock.
struct Party {
    /// `pid 4242`, with its host for a lock in PostgreSQL.
    who: String,
    exclusive: bool,
    since: Option<Duration>,
    clock: Clock,
    command: String,
}

/// What `since` measures.
#[derive(Clone, Copy)]
enum Clock {
    /// How long the party has had or waited for the lock.
    Lock,
    /// How long the process has run (it is not a steady that says how long it has had it).
    Process,
    /// How long its PostgreSQL session has been connected: what the server knows of a holder.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Session,
}

struct Row {
    dev: u64,
    ino: u64,
    /// The kernel's name of what is locked; " (deleted)" when it was removed while held.
    target: PathBuf,
    is_dir: bool,
    /// The cache or environment the lock stands for.
    key: String,
    fallback: bool,
    holders: Vec<Party>,
    waiters: Vec<Party>,
}

pub fn run(args: &StatusArgs) -> Outcome {
    // As for a run: an empty value is unset.
    let url = args.lock_url.as_deref().filter(|u| !u.is_empty());
    let rows = collect();
    // The local part goes out before steady connects anywhere, so that a slow or absent
    // server never hides it.
    if let Err(outcome) = write(&render(&rows)) {
        return outcome;
    }
    #[cfg(feature = "postgres")]
    if let Some(url) = url {
        let namespace = args.lock_namespace.as_deref().filter(|n| !n.is_empty());
        return remote::run(url, namespace, &rows);
    }
    // As a run does: a lock server this build cannot ask is refused, not ignored.
    #[cfg(not(feature = "postgres"))]
    if url.is_some() {
        ui::error(
            "--lock-url (STEADY_LOCK_URL) needs PostgreSQL support, which this steady was built \
             without (cargo feature `postgres`), so its locks are not listed",
        );
        ui::hint("rebuild with the default features, or unset STEADY_LOCK_URL");
        return Outcome::SteadyFailed;
    }
    Outcome::Success
}

/// Writes to stdout; a closed stdout (`| head`) is no failure.
fn write(text: &str) -> Result<(), Outcome> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            ui::error(&format!("cannot write the status: {e}"));
            Err(Outcome::SteadyFailed)
        }
    }
}

/// Live steady processes of this user, other than this one.
fn steady_pids() -> Vec<i32> {
    let me = std::process::id() as i32;
    let uid = sys::euid();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = dir
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            if pid == me || e.metadata().ok()?.uid() != uid {
                return None;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let argv0 = cmdline.split(|b| *b == 0).next()?;
            let base = Path::new(std::ffi::OsStr::new(std::str::from_utf8(argv0).ok()?))
                .file_name()?
                .to_str()?
                .to_owned();
            (base == "steady").then_some(pid)
        })
        .collect();
    pids.sort_unstable();
    pids
}

fn collect() -> Vec<Row> {
    let locks = holders::proc_locks();
    let mut rows: Vec<Row> = Vec::new();
    for pid in steady_pids() {
        for f in holders::open_files(pid) {
            if !locks.iter().any(|l| l.pid == pid && l.is_on(f.dev, f.ino)) {
                continue;
            }
            if rows.iter().any(|r| (r.dev, r.ino) == (f.dev, f.ino)) {
                continue;
            }
            let open_path = PathBuf::from(format!("/proc/{pid}/fd/{}", f.fd));
            let is_dir = open_path.is_dir();
            let shown = strip_deleted(&f.target);
            let fallback_key = (!is_dir)
                .then(|| lock::fallback_key(&open_path, &shown))
                .flatten();
            let on = |l: &&ProcLock| l.is_on(f.dev, f.ino);
            let party = |l: &ProcLock| party(l, f.dev, f.ino);
            rows.push(Row {
                dev: f.dev,
                ino: f.ino,
                is_dir,
                fallback: fallback_key.is_some(),
                key: fallback_key.unwrap_or_else(|| shown.to_string_lossy().into_owned()),
                target: f.target,
                holders: locks
                    .iter()
                    .filter(on)
                    .filter(|l| !l.waiting)
                    .map(party)
                    .collect(),
                waiters: locks
                    .iter()
                    .filter(on)
                    .filter(|l| l.waiting)
                    .map(party)
                    .collect(),
            });
        }
    }
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    rows
}

fn strip_deleted(p: &Path) -> PathBuf {
    let s = p.to_string_lossy();
    PathBuf::from(s.strip_suffix(" (deleted)").unwrap_or(&s))
}

fn party(l: &ProcLock, dev: u64, ino: u64) -> Party {
    let h = holders::describe_pid(l.pid);
    let marked = holders::markers_of(l.pid)
        .into_iter()
        .find(|m| m.held != l.waiting && m.dev == dev && m.ino == ino)
        .and_then(|m| SystemTime::now().duration_since(m.since).ok());
    Party {
        who: format!("pid {}", l.pid),
        exclusive: l.exclusive,
        since: marked.or(h.running_for),
        clock: if marked.is_some() {
            Clock::Lock
        } else {
            Clock::Process
        },
        command: h.command.unwrap_or_else(|| "?".into()),
    }
}

fn render(rows: &[Row]) -> String {
    if rows.is_empty() {
        return "no steady locks held or waited on by this user\n".into();
    }
    let mut out = String::new();
    for r in rows {
        out.push_str(&format!("{}\n", r.key));
        let deleted = r.target.to_string_lossy().ends_with(" (deleted)");
        let what = match (r.fallback, r.is_dir) {
            (true, _) => format!(
                "lock file `{}`: shared only with this user on this node or container",
                strip_deleted(&r.target).display()
            ),
            (false, true) => {
                "flock on the directory itself: shared with everyone who uses it".into()
            }
            (false, false) => "flock on the file itself: shared with everyone who uses it".into(),
        };
        out.push_str(&format!("  lock:    {what}\n"));
        if deleted {
            out.push_str("  note:    it was deleted while held; newcomers wait for its holder\n");
        }
        render_parties(&mut out, &r.holders, &r.waiters);
    }
    out
}

/// The `held by:` and `waiting:` lines of one lock.
fn render_parties(out: &mut String, holders: &[Party], waiters: &[Party]) {
    if holders.is_empty() {
        out.push_str("  held by: nobody (being handed over)\n");
    }
    for h in holders {
        out.push_str(&format!("  held by: {}\n", describe(h, "held")));
    }
    out.push_str(&format!("  waiting: {}\n", waiters.len()));
    for w in waiters {
        out.push_str(&format!("           {}\n", describe(w, "waiting")));
    }
}

fn describe(p: &Party, verb: &str) -> String {
    let mode = if p.exclusive { "exclusive" } else { "shared" };
    let since = match (p.since, p.clock) {
        (Some(d), Clock::Lock) => format!(", {verb} for {}", ui::human(d)),
        (Some(d), Clock::Process) => format!(", process running for {}", ui::human(d)),
        (Some(d), Clock::Session) => format!(", connected for {}", ui::human(d)),
        (None, _) => String::new(),
    };
    format!("{} ({mode}{since}): {}", p.who, p.command)
}

/// The locks in the `STEADY_LOCK_URL` server, printed after the local ones in their shape.
#[cfg(feature = "postgres")]
mod remote {
    use std::path::Path;
    use std::time::Duration;

    use super::{Clock, Party, Row, render_parties, write};
    use crate::exit::Outcome;
    use crate::lock::RemoteFailure;
    use crate::lock::remote::postgres::{self, Server, Session};
    use crate::{lock, ui};

    /// Lists the server's locks; the exit status says whether it could. A server that cannot
    /// be reached exits 75 and one that refuses steady 125, as a run that needs the lock
    /// would: a script reading the status learns that the list is this machine's only.
    pub(super) fn run(url: &str, namespace: Option<&str>, local: &[Row]) -> Outcome {
        // Only the keep-alive of a held lock uses this; status holds none.
        let server = match Server::parse(url, Duration::from_secs(5)) {
            Ok(s) => s,
            Err(why) => {
                ui::error(&format!("--lock-url (STEADY_LOCK_URL): {why}"));
                ui::hint("fix the URL, or leave it out to list this machine's locks only");
                return Outcome::SteadyFailed;
            }
        };
        match postgres::steady_locks(&server) {
            Ok(sessions) => {
                let text = render(&server, &sessions, &names(local, namespace));
                write(&text).err().unwrap_or(Outcome::Success)
            }
            Err(f) => {
                ui::error(&format!("{}; its locks are not listed", f.message));
                if f.failure == RemoteFailure::Refused {
                    ui::hint(
                        "check the user, database and password (PGPASSWORD) that \
                         STEADY_LOCK_URL gives; the locks above are this machine's only",
                    );
                    Outcome::SteadyFailed
                } else {
                    ui::hint(
                        "check that the server is up and reachable from here; the locks above \
                         are this machine's only",
                    );
                    Outcome::LockTimeout
                }
            }
        }
    }

    /// What this machine can tell of the keys: the caches it holds or waits for locally
    /// (named by their path, as a run without a namespace names its lock), and the namespace
    /// of `--lock-namespace`. A key is a hash, so others stay keys.
    fn names(local: &[Row], namespace: Option<&str>) -> Vec<(i64, String)> {
        let mut names: Vec<(i64, String)> = local
            .iter()
            .map(|r| {
                let k = lock::remote_key_of(Path::new(&r.key), None);
                (postgres::advisory_key(&k.identity), r.key.clone())
            })
            .collect();
        if let Some(ns) = namespace {
            let k = lock::remote_key_of(Path::new(""), Some(ns));
            names.push((postgres::advisory_key(&k.identity), k.label));
        }
        names
    }

    fn render(server: &Server, sessions: &[Session], names: &[(i64, String)]) -> String {
        let at = server.shown();
        let mut keys: Vec<i64> = sessions.iter().map(|s| s.key).collect();
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            return format!("no steady locks held or waited on in PostgreSQL at {at}\n");
        }
        let mut rows: Vec<(String, String)> = keys
            .iter()
            .map(|&key| {
                let name = names
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map_or_else(|| format!("advisory key {key}"), |(_, n)| n.clone());
                let on: Vec<&Session> = sessions.iter().filter(|s| s.key == key).collect();
                let mut out = format!("{name}\n");
                out.push_str(&format!(
                    "  lock:    advisory lock in PostgreSQL at {at}, key {key}: shared with \
                     every machine that uses that server\n"
                ));
                let party = |s: &&Session| party(s);
                render_parties(
                    &mut out,
                    &on.iter()
                        .filter(|s| s.granted)
                        .map(party)
                        .collect::<Vec<_>>(),
                    &on.iter()
                        .filter(|s| !s.granted)
                        .map(party)
                        .collect::<Vec<_>>(),
                );
                (name, out)
            })
            .collect();
        rows.sort();
        rows.into_iter().map(|(_, out)| out).collect()
    }

    fn party(s: &Session) -> Party {
        let (who, command, clock) = match &s.steady {
            // steady asks for the lock the moment it connects: a waiter's session is as old
            // as its wait. A holder's may have waited first.
            Some(c) => (
                format!("pid {} on {}", c.pid, c.host),
                c.command.clone(),
                if s.granted {
                    Clock::Session
                } else {
                    Clock::Lock
                },
            ),
            None => {
                let from = if s.client_addr.is_empty() {
                    "a local socket"
                } else {
                    &s.client_addr
                };
                (
                    format!("PostgreSQL session {} from {from}", s.backend),
                    s.application_name.clone(),
                    Clock::Session,
                )
            }
        };
        Party {
            who,
            exclusive: s.exclusive,
            since: s.connected_for,
            clock,
            command: if command.is_empty() {
                "?".into()
            } else {
                command
            },
        }
    }
}
