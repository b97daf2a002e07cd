//! `steady status`: every lock that a steady process of this user holds or waits on, with its
//! key, scope, holders, since when, and waiters. Read from the kernel (`/proc/locks`) and mapped
//! to paths through each steady process's open descriptors (`/proc/<pid>/fd`), so it works
//! alike for directory locks and fallback lock files, and needs no record of its own that a
//! crashed run could leave stale.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::exit::Outcome;
use crate::lock;
use crate::lock::holders::{self, ProcLock};
use crate::sys;
use crate::ui;

/// One process on one lock.
struct Party {
    pid: i32,
    exclusive: bool,
    since: Option<Duration>,
    /// `since` is how long the process has run, not how long it has had or waited for the
    /// lock (it is not a steady that says).
    since_is_age: bool,
    command: String,
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

pub fn run() -> Outcome {
    let rows = collect();
    let text = render(&rows);
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => Outcome::Success,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Outcome::Success,
        Err(e) => {
            ui::error(&format!("cannot write the status: {e}"));
            Outcome::SteadyFailed
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
        pid: l.pid,
        exclusive: l.exclusive,
        since: marked.or(h.running_for),
        since_is_age: marked.is_none(),
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
        if r.holders.is_empty() {
            out.push_str("  held by: nobody (being handed over)\n");
        }
        for h in &r.holders {
            out.push_str(&format!("  held by: {}\n", describe(h, "held")));
        }
        out.push_str(&format!("  waiting: {}\n", r.waiters.len()));
        for w in &r.waiters {
            out.push_str(&format!("           {}\n", describe(w, "waiting")));
        }
    }
    out
}

fn describe(p: &Party, verb: &str) -> String {
    let mode = if p.exclusive { "exclusive" } else { "shared" };
    let since = match (p.since, p.since_is_age) {
        (Some(d), false) => format!(", {verb} for {}", ui::human(d)),
        (Some(d), true) => format!(", process running for {}", ui::human(d)),
        (None, _) => String::new(),
    };
    format!("pid {} ({mode}{since}): {}", p.pid, p.command)
}
