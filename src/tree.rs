//! steady's descendants, read from `/proc`. steady is a child subreaper, so every process an
//! attempt starts, including those that escaped its process group with `setsid` or a double
//! fork, stays below steady until it is reaped; this module finds them and ends them.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::sys::{self, SignalPipe};

/// Live (non-zombie) descendants of this process.
pub fn descendants() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut procs = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            if let Some((ppid, state)) = ppid_and_state(pid) {
                procs.push((pid, ppid, state));
            }
        }
    }
    let mut found = vec![me];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            procs
                .iter()
                .filter(|(_, pp, _)| *pp == parent)
                .map(|(p, _, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found.retain(|pid| {
        procs
            .iter()
            .any(|(p, _, s)| p == pid && *s != 'Z' && *s != 'X')
    });
    found
}

fn ppid_and_state(pid: i32) -> Option<(i32, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut words = rest.split_whitespace();
    let state = words.next()?.chars().next()?;
    let ppid = words.next()?.parse().ok()?;
    Some((ppid, state))
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

/// Ends every descendant: TERM (unless `already_termed`), up to `grace` for them to go, then
/// KILL, and reaps them all. Returns when none is left, or after a bounded wait for processes
/// the kernel will not let go of (uninterruptible sleep), naming how many remain.
pub fn end_all(
    signals: &SignalPipe,
    pgid: Option<i32>,
    grace: Duration,
    already_termed: bool,
) -> usize {
    if !already_termed {
        signal_tree(pgid, Signal::SIGTERM);
    }
    let kill_at = Instant::now() + grace;
    let give_up = kill_at + Duration::from_secs(10);
    let mut killed = false;
    loop {
        while sys::reap_any().is_some() {}
        let left = descendants();
        if left.is_empty() {
            return 0;
        }
        let now = Instant::now();
        if now >= give_up {
            return left.len();
        }
        if now >= kill_at && !killed {
            signal_tree(pgid, Signal::SIGKILL);
            killed = true;
        }
        let wait = if killed {
            Duration::from_millis(20)
        } else {
            kill_at
                .saturating_duration_since(now)
                .min(Duration::from_millis(50))
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
    }
}
