//! steady's descendants, read from `/proc`. steady is a child subreaper, so every process an
//! attempt starts, including those that escaped its process group with `setsid` or a double
//! fork, stays below steady until it is reaped; this module finds them, measures the CPU time
//! they use (for stall detection; what they read and write is in `progress`), reaps adopted
//! orphans, and ends them all.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::cgroup::Cgroup;
use crate::sys::{self, SignalPipe};

/// One process as `/proc/<pid>/stat` shows it.
struct Proc {
    pid: i32,
    ppid: i32,
    state: char,
    /// utime + stime, in clock ticks.
    own_ticks: u64,
    /// cutime + cstime: the CPU time of the children it has reaped, so a short-lived worker's
    /// time is not lost when it ends.
    reaped_ticks: u64,
    threads: u32,
    /// When it started, in clock ticks after boot: with the pid, names one process for good
    /// (a pid can be reused; a pid and its start time cannot).
    pub start: u64,
}

impl Proc {
    fn ticks(&self) -> u64 {
        self.own_ticks + self.reaped_ticks
    }
}

fn read_proc(pid: i32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses; the fields follow the last `)`.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    // Fields 14-17 (CPU times), 20 (threads) and 22 (start time) of proc(5); `rest` starts
    // at field 3.
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some(Proc {
        pid,
        ppid,
        state,
        own_ticks: tick(11) + tick(12),
        reaped_ticks: tick(13) + tick(14),
        threads: tick(17).clamp(1, u32::MAX as u64) as u32,
        start: tick(19),
    })
}

/// Every descendant of steady, zombies included.
fn scan() -> Vec<Proc> {
    let me = std::process::id() as i32;
    walk(me).unwrap_or_else(|| scan_all(me))
}

/// The children of `pid`, zombies included, from `/proc/<pid>/task/<tid>/children` (a child
/// is listed under the thread that forked it). `None` when the kernel has no such files.
fn children_of(pid: i32, threads: u32) -> Option<Vec<i32>> {
    let parse = |list: String| -> Vec<i32> {
        list.split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    if threads <= 1 {
        return std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()
            .map(parse);
    }
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut all = Vec::new();
    for task in tasks.flatten() {
        let mut path = task.path();
        path.push("children");
        // A thread that ended meanwhile handed its children to a sibling thread.
        all.extend(std::fs::read_to_string(path).map(parse).unwrap_or_default());
    }
    Some(all)
}

/// steady's descendants found by following the children lists down from `me`: only the tree
/// is read, not every process on the machine (a CI host runs thousands, and this runs at each
/// stall sample and each kill round). `None` when the kernel lacks the lists.
fn walk(me: i32) -> Option<Vec<Proc>> {
    let mut queue = children_of(me, 1)?;
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    loop {
        while let Some(pid) = queue.pop() {
            if !seen.insert(pid) {
                continue;
            }
            // Gone since its parent listed it: its children went to steady, found below.
            let Some(p) = read_proc(pid) else { continue };
            queue.extend(children_of(p.pid, p.threads).unwrap_or_default());
            found.push(p);
        }
        // A process that ended between the reading of steady's list and of its own left its
        // children to steady (the subreaper), in a list already read: so steady's list is read
        // again until it names nobody new.
        queue = children_of(me, 1)?;
        queue.retain(|p| !seen.contains(p));
        if queue.is_empty() {
            return Some(found);
        }
    }
}

/// [`scan`] the slow way, for kernels without children lists: every process in `/proc`.
fn scan_all(me: i32) -> Vec<Proc> {
    let mut procs = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            if let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
                .and_then(read_proc)
            {
                procs.push(p);
            }
        }
    }
    let mut found: Vec<Proc> = Vec::new();
    let mut parents = vec![me];
    while !parents.is_empty() {
        let (mine, rest): (Vec<Proc>, Vec<Proc>) =
            procs.into_iter().partition(|p| parents.contains(&p.ppid));
        procs = rest;
        parents = mine.iter().map(|p| p.pid).collect();
        found.extend(mine);
    }
    found
}

fn is_dead(state: char) -> bool {
    state == 'Z' || state == 'X'
}

/// Live (non-zombie) descendants of this process.
pub fn descendants() -> Vec<i32> {
    scan()
        .into_iter()
        .filter(|p| !is_dead(p.state))
        .map(|p| p.pid)
        .collect()
}

/// The tree now, from one scan, for the stall detector: the CPU time, in clock ticks, that
/// steady's children and everything below them have used so far, ended processes included
/// (their time moves into their reaper's `cutime`, and the reaper is steady or one of its
/// descendants; only differences between two readings mean anything), and every live process
/// as `(pid, start time)`.
pub fn activity() -> (u64, Vec<(i32, u64)>) {
    // steady's own CPU time is not the tree's; what it reaped is.
    let reaped = read_proc(std::process::id() as i32).map_or(0, |p| p.reaped_ticks);
    let procs = scan();
    let ticks = reaped + procs.iter().map(Proc::ticks).sum::<u64>();
    let live = procs
        .into_iter()
        .filter(|p| !is_dead(p.state))
        .map(|p| (p.pid, p.start))
        .collect();
    (ticks, live)
}

/// steady's direct children (its command and adopted orphans), zombies included.
fn children() -> Vec<i32> {
    let me = std::process::id();
    // steady is single-threaded, so its one task lists all its children.
    match std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")) {
        Ok(list) => list
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
        // Kernels without CONFIG_PROC_CHILDREN.
        Err(_) => scan()
            .into_iter()
            .filter(|p| p.ppid == me as i32)
            .map(|p| p.pid)
            .collect(),
    }
}

/// Reaps every finished child of steady except `keep` (the command's leader, kept as a zombie
/// until its group has been signalled for the last time).
pub fn reap_orphans(keep: Option<i32>) {
    for pid in children() {
        if Some(pid) != keep {
            sys::reap(pid);
        }
    }
}

/// Sends `sig` to the group `pgid` (when the command has its own) and to every descendant.
pub fn signal_tree(pgid: Option<i32>, sig: Signal) {
    if let Some(pg) = pgid {
        sys::kill_group(pg, sig);
    }
    for pid in descendants() {
        sys::kill(pid, sig);
        if sig == Signal::SIGTERM {
            // A stopped process cannot act on TERM until continued.
            sys::kill(pid, Signal::SIGCONT);
        }
    }
}

/// Live descendants as `(pid, start time)`: what identifies them for good, for the record a
/// later steady reads if this one is killed with SIGKILL.
pub fn snapshot() -> Vec<(i32, u64)> {
    scan()
        .into_iter()
        .filter(|p| !is_dead(p.state))
        .map(|p| (p.pid, p.start))
        .collect()
}

/// The start time of `pid` (clock ticks after boot), if it exists.
pub fn start_time(pid: i32) -> Option<u64> {
    read_proc(pid).map(|p| p.start)
}

/// Stopped by a signal or a tracer: it runs no more code, so it cannot fork.
fn is_frozen(state: char) -> bool {
    state == 'T' || state == 't'
}

/// Rounds of freezing before steady gives up waiting for every process to stop (one in
/// uninterruptible sleep stops only when it wakes) and kills what it has.
const FREEZE_ROUNDS: usize = 200;

/// Kills every descendant, also of a tree that keeps forking while it is killed: one round of
/// KILL to the processes a scan found misses those forked between the scan and the kill. So
/// the tree is frozen first: SIGSTOP to every process found, then scan again and stop any
/// still running (a child forked before its parent stopped), until a scan finds every one
/// stopped. A stopped process cannot fork, so then the tree is complete, and one KILL to each
/// (KILL ends stopped processes too) ends it. The caller still scans afterwards: what does
/// not die (uninterruptible sleep) is counted there. With a `cgroup`, its `cgroup.kill` comes
/// first: it ends every process inside at once, and the freeze finds only what left it.
pub fn freeze_and_kill(pgid: Option<i32>, cgroup: Option<&Cgroup>) {
    if let Some(cg) = cgroup {
        cg.kill();
    }
    for _ in 0..FREEZE_ROUNDS {
        if let Some(pg) = pgid {
            sys::kill_group(pg, Signal::SIGSTOP);
        }
        let running: Vec<i32> = scan()
            .into_iter()
            .filter(|p| !is_dead(p.state) && !is_frozen(p.state))
            .map(|p| p.pid)
            .collect();
        if running.is_empty() {
            break;
        }
        for pid in running {
            sys::kill(pid, Signal::SIGSTOP);
        }
        // Let the stops land before looking again (a signal is acted on when its target
        // next runs); short, as a forker keeps forking until then.
        std::thread::sleep(Duration::from_millis(1));
    }
    signal_tree(pgid, Signal::SIGKILL);
}

/// How the rest of an attempt's tree is ended.
pub struct TreeKill<'c> {
    /// The command's own process group, if it has one.
    pub pgid: Option<i32>,
    /// The attempt's own cgroup, if it has one.
    pub cgroup: Option<&'c Cgroup>,
    /// The command's leader: still unreaped, so `pgid` cannot have been reused; reaped last.
    pub leader: i32,
    /// TERM was already sent (by the watchdog or a forwarded signal).
    pub termed: bool,
    /// When survivors get KILL.
    pub kill_at: Instant,
}

/// Ends every descendant: TERM (unless already sent), then at `kill_at` freezes and kills
/// the tree (again each round while any is left), reaping them all, and reaps the leader last. Returns when none is left, or after a bounded wait for processes
/// the kernel will not let go of (uninterruptible sleep), naming how many remain.
pub fn end_all(signals: &SignalPipe, how: &TreeKill) -> usize {
    if !how.termed {
        signal_tree(how.pgid, Signal::SIGTERM);
    }
    let give_up = how.kill_at.max(Instant::now()) + Duration::from_secs(10);
    let mut killed = false;
    let left = loop {
        reap_orphans(Some(how.leader));
        let left = descendants();
        if left.is_empty() {
            break 0;
        }
        let now = Instant::now();
        if now >= give_up {
            break left.len();
        }
        // A stop signal during the grace (a second Ctrl-C, the CI runner's TERM after its
        // INT) means: do not wait any longer.
        // Again in every round after the first: whatever is still there (a process forked
        // by one that had not yet died) is frozen and killed too.
        if now >= how.kill_at || sys::is_pending(&sys::STOP_SIGNALS) || killed {
            freeze_and_kill(how.pgid, how.cgroup);
            killed = true;
        }
        let wait = if killed {
            Duration::from_millis(20)
        } else {
            how.kill_at
                .saturating_duration_since(now)
                .clamp(Duration::from_millis(1), Duration::from_millis(50))
        };
        let _ = nix::poll::poll(
            &mut [nix::poll::PollFd::new(
                signals.fd(),
                nix::poll::PollFlags::POLLIN,
            )],
            nix::poll::PollTimeout::try_from(wait.as_millis() as i32)
                .unwrap_or(nix::poll::PollTimeout::MAX),
        );
        signals.drain();
    };
    sys::reap(how.leader);
    left
}
