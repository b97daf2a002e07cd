//! Issue 14, the process cases: no process of an attempt survives a kill, even a tree that
//! keeps forking (1). Liveness is checked by pid; bounds are generous.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::*;

/// Generous: catches a hang, never a slow machine.
const LONG: Duration = Duration::from_secs(60);

/// Waits for a spawned steady to end, killing it if it does not within `LONG`.
fn wait_child(child: &mut Child) -> std::process::ExitStatus {
    let mut status = None;
    wait_for(LONG, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("steady did not end within {LONG:?}");
    })
}

fn status_code(s: std::process::ExitStatus) -> i32 {
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

/// A number unlikely to appear in any other process's command line, so that `sleep <n>`
/// names this test's processes only.
fn unique_number() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    7_000_000 + (nanos ^ u64::from(std::process::id())) % 1_000_000
}

/// Live processes whose command line is exactly `sleep <n>`.
fn sleepers(n: u64) -> Vec<i32> {
    let want = format!("sleep\0{n}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == want.as_bytes())
                && pid_alive(*p)
        })
        .collect()
}

fn kill_all(pids: &[i32]) {
    for p in pids {
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
}

/// How steady's run of the forker is stopped.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Timeout,
    Signal,
    Stall,
    Deadline,
}

/// One run of a bounded forker (the repro: a `setsid` shell ignoring TERM that starts
/// `setsid sleep <n>` every few milliseconds, 300 times) stopped by `stop`; returns the
/// survivors, already killed.
fn forker_run(ctx: &Ctx, stop: Stop) -> Vec<i32> {
    let n = unique_number();
    // The stall variant forks slowly enough to be idle (a stall is "no output, almost no
    // CPU"), but still forks while it is killed.
    let (count, pause) = match stop {
        Stop::Stall => (100, "0.2"),
        _ => (300, "0.003"),
    };
    let script = format!(
        "setsid bash -c 'trap \"\" TERM; for i in $(seq {count}); do setsid sleep {n} & sleep {pause}; done; wait' & wait"
    );
    let mut cmd = ctx.steady();
    cmd.arg("--cache").arg(ctx.cache());
    cmd.args(["--retries", "0", "--kill-after", "300ms"]);
    match stop {
        Stop::Timeout => cmd.args(["--timeout", "1s"]),
        Stop::Signal => cmd.args(["--timeout", "50s"]),
        Stop::Stall => cmd.args(["--stall", "1s"]),
        Stop::Deadline => cmd.args(["--deadline", "1500ms"]),
    };
    cmd.args(["--", "bash", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn steady");
    if let Stop::Signal = stop {
        // Stopped while it forks: once a few dozen sleepers exist.
        let started = wait_for(LONG, || sleepers(n).len() >= 30);
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        assert!(started, "the forker never got going");
    }
    let status = wait_child(&mut child);
    let left = sleepers(n);
    kill_all(&left);
    assert_ne!(
        status_code(status),
        0,
        "{stop:?}: the forker was not stopped"
    );
    // steady releases the lock when it exits: by then none may be alive.
    left
}

/// Case 1: a tree that keeps forking while it is killed leaves no survivor, whether the stop
/// is the timeout, a signal to steady, a stall or the deadline. Runs: `STEADY_TEST_FORKER_RUNS`
/// (default 4, one per kind of stop; the bar is 20).
#[test]
fn p1_a_forking_tree_leaves_no_survivor() {
    let runs: usize = std::env::var("STEADY_TEST_FORKER_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let ctx = Ctx::new();
    let kinds = [Stop::Timeout, Stop::Signal, Stop::Stall, Stop::Deadline];
    let mut survivors = Vec::new();
    for i in 0..runs {
        let stop = kinds[i % kinds.len()];
        let left = forker_run(&ctx, stop);
        if !left.is_empty() {
            survivors.push((i, stop, left.len()));
        }
    }
    eprintln!("forker: {runs} runs, survivors {survivors:?}");
    assert!(
        survivors.is_empty(),
        "survivors after {runs} runs (run, stop, count): {survivors:?}"
    );
}
