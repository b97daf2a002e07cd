//! Processes as the kernel shows them: liveness by pid, children, command lines, `/proc`
//! fields, and runs in the background that end with the test.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// True while `pid` exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rfind(')').and_then(|i| stat[i + 2..].chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

/// Waits until `cond` holds, up to `limit`; generous bounds, never a fixed sleep.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Reads pids, one per line, that fixtures wrote into a file.
pub fn pids_in(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The first number of a `/proc/<pid>/status` line (`Threads`, `VmHWM` in KiB, …).
pub fn proc_status(pid: i32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The children of `pid` (zombies included), from the parent field of every `/proc/*/stat`.
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 2..].split_whitespace().nth(1)?.parse::<i32>().ok());
            ppid == Some(pid)
        })
        .collect()
}

/// The command line of `pid`, arguments joined by spaces.
pub fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Runs a command with `input` on its stdin and returns its output.
pub fn pipe(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // A reader that stops early (closed stdin) shows up in its exit status, not here.
    let _ = child.stdin.take().expect("stdin").write_all(input);
    child.wait_with_output().expect("wait")
}

/// A run in the background, killed if the test ends early.
pub struct Bg(Option<std::process::Child>);

impl Bg {
    pub fn spawn(cmd: &mut Command) -> Bg {
        Bg(Some(
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn"),
        ))
    }
    pub fn pid(&self) -> u32 {
        self.0.as_ref().expect("running").id()
    }
    pub fn alive(&self) -> bool {
        pid_alive(self.pid() as i32)
    }
    pub fn finish(mut self) -> Output {
        self.0
            .take()
            .expect("running")
            .wait_with_output()
            .expect("wait")
    }
    /// Waits up to `limit` for the run to end; its output, or `None` if it is still running.
    pub fn finish_within(mut self, limit: Duration) -> Option<Output> {
        let child = self.0.as_mut().expect("running");
        if !wait_for(limit, || matches!(child.try_wait(), Ok(Some(_)))) {
            return None;
        }
        Some(self.finish())
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
