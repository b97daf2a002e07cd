//! The harness every integration test uses: a `Ctx` owning a temp dir with its own HOME, cache
//! and bin directory, a `steady` command with a scrubbed environment, fixture scripts, process
//! liveness checks, and `require` for optional tools (skip with a reason, or fail under
//! `STEADY_TEST_STRICT=1`, as CI runs).

#![allow(dead_code)]

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const STEADY: &str = env!("CARGO_BIN_EXE_steady");

pub struct Ctx {
    pub tmp: tempfile::TempDir,
}

impl Ctx {
    pub fn new() -> Ctx {
        let tmp = tempfile::Builder::new()
            .prefix("steady-it-")
            .tempdir()
            .expect("temp dir");
        for d in ["home", "cache", "bin", "tmp", "work"] {
            std::fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        Ctx { tmp }
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }
    pub fn home(&self) -> PathBuf {
        self.path("home")
    }
    pub fn bin(&self) -> PathBuf {
        self.path("bin")
    }
    pub fn cache(&self) -> PathBuf {
        self.path("cache")
    }

    /// `steady` with a scrubbed environment: its own HOME, XDG dirs and TMPDIR inside the temp
    /// dir, no inherited `STEADY_*`, and `bin/` first on PATH.
    pub fn steady(&self) -> Command {
        let mut cmd = Command::new(STEADY);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("STEADY_")
                || k.starts_with("UV_")
                || k.starts_with("PIP_")
                || k == "GITHUB_ACTIONS"
            {
                cmd.env_remove(k);
            }
        }
        let path = format!(
            "{}:{}",
            self.bin().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.env("HOME", self.home())
            .env("XDG_CACHE_HOME", self.home().join(".cache"))
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env_remove("XDG_RUNTIME_DIR")
            .env("TMPDIR", self.path("tmp"))
            .env("PATH", path)
            .current_dir(self.path("work"))
            .stdin(std::process::Stdio::null());
        cmd
    }

    /// Writes an executable `sh` script into `bin/`, for failure modes real installers will
    /// not produce on demand.
    pub fn fixture(&self, name: &str, body: &str) -> PathBuf {
        let p = self.bin().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_default()
    }
}

/// Runs a command to its end and returns its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("spawn")
}

pub fn code(out: &Output) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    out.status
        .code()
        .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

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

pub fn strict() -> bool {
    std::env::var_os("STEADY_TEST_STRICT").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Says why a test cannot run here: a printed skip normally, a failure under
/// `STEADY_TEST_STRICT=1` (CI installs every optional tool).
pub fn skip(reason: &str) {
    if strict() {
        panic!("STEADY_TEST_STRICT=1 but this test cannot run: {reason}");
    }
    // Straight to stderr: libtest captures eprintln!, and a skip must be seen.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP: {reason}");
}

/// The path of an optional tool on PATH, or a skip.
pub fn require(tool: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(tool))
            .find(|p| p.is_file() && is_executable(p))
    });
    if found.is_none() {
        skip(&format!("`{tool}` is not installed"));
    }
    found
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

/// Python 3 with a given module importable, or a skip.
pub fn python_with(module: &str) -> Option<PathBuf> {
    let py = require("python3")?;
    let ok = Command::new(&py)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip(&format!("python3 cannot import `{module}`"));
        return None;
    }
    Some(py)
}

/// Builds a tiny wheel with `tests/fixtures/make_wheel.py`; returns its path.
pub fn make_wheel(dir: &Path, name: &str, version: &str) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make_wheel.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(dir)
        .args([name, version])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "make_wheel failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Takes an flock on `path` from the test process until the returned file is dropped.
pub fn hold_flock(path: &Path) -> std::fs::File {
    let f = std::fs::File::open(path).expect("open for lock");
    f.lock().expect("flock");
    f
}

/// True when a non-blocking exclusive flock on `path` succeeds now (and releases it).
pub fn flock_free(path: &Path) -> bool {
    let f = std::fs::File::open(path).expect("open for lock");
    let free = f.try_lock().is_ok();
    drop(f);
    free
}

pub fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// True when the tests run as root (needed to create and act as a second user).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A second local user, created once and idempotently, as `(uid, gid)`; a skip where that is
/// impossible (not root, no `useradd`). Run commands as it with `CommandExt::uid`/`gid`.
pub fn other_user(name: &str) -> Option<(u32, u32)> {
    if !is_root() {
        skip(&format!(
            "needs root to create and act as the user `{name}`"
        ));
        return None;
    }
    let lookup = || {
        nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .map(|u| (u.uid.as_raw(), u.gid.as_raw()))
    };
    if let Some(ids) = lookup() {
        return Some(ids);
    }
    // Two tests may race to create it; whoever loses finds it on the second look.
    let _ = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--user-group",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ])
        .output();
    let found = lookup();
    if found.is_none() {
        skip(&format!("cannot create the user `{name}` with useradd"));
    }
    found
}

/// Sets the mode of `path` (tempfile makes the test's directory 0700, which keeps a second user
/// out).
pub fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The LD_PRELOAD shim of `tests/fixtures/flock_shim.c`, built once per test run with `cc`: it
/// makes `flock` fail with a chosen errno (see the file), to test NFS-like failures without NFS.
pub fn flock_shim() -> Option<PathBuf> {
    static SHIM: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let built = SHIM.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flock_shim.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("flock_shim-{}.so", std::process::id()));
        match Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&out)
            .arg(&src)
            .output()
        {
            Ok(o) if o.status.success() => Ok(out),
            Ok(o) => Err(format!(
                "cc could not build the flock shim: {}",
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => Err(format!("cannot run cc to build the flock shim: {e}")),
        }
    });
    match built {
        Ok(p) => Some(p.clone()),
        Err(why) => {
            skip(why);
            None
        }
    }
}

/// The FLOCK lines of `/proc/locks`: (pid, waiting, major, minor, inode).
fn flock_lines() -> Vec<(u32, bool, u32, u32, u64)> {
    let text = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut w = line.split_whitespace().skip(1).peekable();
            let waiting = w.peek() == Some(&"->");
            if waiting {
                w.next();
            }
            if w.next()? != "FLOCK" {
                return None;
            }
            let pid = w.nth(2)?.parse().ok()?;
            let mut id = w.next()?.split(':');
            let major = u32::from_str_radix(id.next()?, 16).ok()?;
            let minor = u32::from_str_radix(id.next()?, 16).ok()?;
            Some((pid, waiting, major, minor, id.next()?.parse().ok()?))
        })
        .collect()
}

/// True while `pid` is blocked in the kernel waiting for an flock.
pub fn waits_for_flock(pid: u32) -> bool {
    flock_lines().iter().any(|l| l.0 == pid && l.1)
}

/// True while `pid` holds an flock on the file or directory at `path`.
pub fn holds_flock(pid: u32, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(path) else {
        return false;
    };
    let (major, minor) = (libc::major(m.dev()), libc::minor(m.dev()));
    flock_lines()
        .iter()
        .any(|l| l.0 == pid && !l.1 && (l.2, l.3, l.4) == (major, minor, m.ino()))
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

impl Ctx {
    /// `steady` run through `wrapper` (e.g. `unshare …`, `prlimit …`), with the environment
    /// and directory of [`Ctx::steady`].
    pub fn steady_under(&self, wrapper: &[&str]) -> Command {
        let plain = self.steady();
        let mut cmd = Command::new(wrapper[0]);
        cmd.args(&wrapper[1..]).arg(STEADY);
        for (k, v) in plain.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(dir) = plain.get_current_dir() {
            cmd.current_dir(dir);
        }
        cmd.stdin(std::process::Stdio::null());
        cmd
    }
}

impl Ctx {
    /// Any program with the environment and working directory `steady()` gets, for tests that
    /// drive steady through a shell.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let base = self.steady();
        let mut cmd = Command::new(program);
        for (k, v) in base.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.current_dir(self.path("work"))
            .stdin(std::process::Stdio::null());
        cmd
    }
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

/// True while `pid` is blocked in the kernel waiting for the flock on the file or directory at
/// `path` (the one there now).
pub fn waits_for_flock_on(pid: u32, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(path) else {
        return false;
    };
    let (major, minor) = (libc::major(m.dev()), libc::minor(m.dev()));
    flock_lines()
        .iter()
        .any(|l| l.0 == pid && l.1 && (l.2, l.3, l.4) == (major, minor, m.ino()))
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
