//! The harness every integration test uses: a `Ctx` owning a temp dir with its own HOME, cache
//! and bin directory, a `steady` command with a scrubbed environment, fixture scripts, and
//! `require` for optional tools (skip with a reason, or fail under `STEADY_TEST_STRICT=1`, as
//! CI runs). Processes (`proc`), locks (`flock`), a second user (`users`), locally built
//! packages (`python`) and a warm uv cache (`uv`) have a file each.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod flock;
mod proc;
mod python;
mod users;
mod uv;

pub use flock::*;
pub use proc::*;
pub use python::*;
pub use users::*;
pub use uv::*;

/// The `steady` under test: the one cargo built, or the binary `STEADY_TEST_BIN` names (the
/// static build that CI runs the suite against).
pub fn steady_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("STEADY_TEST_BIN")
            .ok()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_steady").to_owned())
    })
}

/// True when the binary under test is statically linked (no ELF interpreter), as the musl
/// release build is: `LD_PRELOAD` shims cannot reach it.
pub fn steady_is_static() -> bool {
    static STATIC: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *STATIC.get_or_init(|| {
        let elf = std::fs::read(steady_bin()).expect("read the binary under test");
        let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
        let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
        // ELF64, little-endian (x86_64, aarch64): e_phoff at 0x20, e_phentsize 0x36, e_phnum 0x38.
        assert!(
            elf.starts_with(b"\x7fELF\x02\x01"),
            "not a 64-bit little-endian ELF"
        );
        let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
        const PT_INTERP: u32 = 3;
        !(0..phnum).any(|i| {
            let o = phoff + i * phentsize;
            u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) == PT_INTERP
        })
    })
}

/// A test that cannot apply to the binary under test: printed, and not a failure even under
/// `STEADY_TEST_STRICT=1` (unlike [`skip`], nothing is missing from the machine).
pub fn gated(reason: &str) {
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let _ = writeln!(std::io::stderr(), "GATED {test}: {reason}");
}

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
        let mut cmd = Command::new(steady_bin());
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            // `CI` too: installers change their defaults under it (yarn 2+ refuses to write a
            // lockfile), and the tests must behave alike on a laptop and in CI.
            if k.starts_with("STEADY_")
                || k.starts_with("UV_")
                || k.starts_with("PIP_")
                || k == "GITHUB_ACTIONS"
                || k == "CI"
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

pub fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

impl Ctx {
    /// `steady` run through `wrapper` (e.g. `unshare …`, `prlimit …`), with the environment
    /// and directory of [`Ctx::steady`].
    pub fn steady_under(&self, wrapper: &[&str]) -> Command {
        let plain = self.steady();
        let mut cmd = Command::new(wrapper[0]);
        cmd.args(&wrapper[1..]).arg(steady_bin());
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
