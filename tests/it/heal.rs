//! Real cache damage, healed by real installers under steady (spec section 3, step 6).
//!
//! Each test fills a real installer's cache from packages built here (wheels and sdists from
//! `tests/fixtures/make_*.py`; npm packages served over 127.0.0.1 by `serve.py` from a registry
//! `make_npm_registry.py` writes), damages it the way machines do (a truncated or zeroed cached
//! archive, a store file whose content no longer matches its hash, an index entry pointing at a
//! missing file, a half-deleted package directory, an entry whose recorded integrity is not the
//! lockfile's), then runs a wrapped install and asserts what steady did (cleaned one entry, fell
//! back to one full clean, or stayed out of the way because the installer healed itself), that
//! the install really completed (files on disk), and which healthy entries stayed warm.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::*;

// ---------------------------------------------------------------- shared helpers

/// Every file below `dir`, relative to it.
fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// Identity of a file or directory: a cleaned and re-created entry gets a new inode.
fn ident(p: &Path) -> (u64, i64) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.ino(), m.mtime_nsec() + m.mtime() * 1_000_000_000)
}

/// The number of attempts and each one's action, from a `--report`.
fn attempts(report: &Path) -> Vec<(String, String)> {
    let py = "import json,sys; r=json.load(open(sys.argv[1]))\n\
              for a in r['attempts']: print(f\"{a['class']}\\t{a['action']}\")";
    let out = run(Command::new("python3").args(["-c", py]).arg(report));
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| {
            let (c, a) = l.split_once('\t').unwrap();
            (c.to_owned(), a.to_owned())
        })
        .collect()
}

/// `tests/fixtures/serve.py` serving a directory on a free loopback port, until dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(root: &Path) -> Server {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/serve.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 serve.py");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().expect("the server's port");
        Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- uv

/// A uv test bed: local wheels, a cache filled by one install, fresh venvs to install into.
struct Uv {
    ctx: Ctx,
    uv: PathBuf,
    wheels: PathBuf,
}

impl Uv {
    fn new(names: &[&str]) -> Option<Uv> {
        let uv = require("uv")?;
        require("python3")?;
        let ctx = Ctx::new();
        let wheels = ctx.path("wheels");
        std::fs::create_dir(&wheels).unwrap();
        for name in names {
            make_wheel(&wheels, name, "1.0");
        }
        let bed = Uv { ctx, uv, wheels };
        let py = bed.venv("v1");
        let out = run(bed.cmd().args(bed.install_args(&py, names)));
        assert!(out.status.success(), "{}", stderr(&out));
        Some(bed)
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("UV_CACHE_DIR", self.ctx.cache())
            .env("UV_NO_CONFIG", "1")
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env("UV_OFFLINE", "1");
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.uv);
        self.env(&mut c);
        c
    }

    fn venv(&self, name: &str) -> PathBuf {
        let out = run(self
            .cmd()
            .args(["venv", "-q", "--python", "python3"])
            .arg(self.ctx.path(name)));
        assert!(out.status.success(), "uv venv: {}", stderr(&out));
        self.ctx.path(name).join("bin/python")
    }

    fn install_args(&self, py: &Path, pkgs: &[&str]) -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = vec![
            "pip".into(),
            "install".into(),
            "--no-index".into(),
            "--find-links".into(),
            self.wheels.clone().into(),
            "--python".into(),
            py.into(),
        ];
        a.extend(pkgs.iter().map(Into::into));
        a
    }

    fn steady(&self, py: &Path, pkgs: &[&str], extra: &[&str]) -> std::process::Output {
        let mut c = self.ctx.steady();
        self.env(&mut c);
        c.args(["--backoff", "10ms"])
            .args(extra)
            .arg("--")
            .arg(&self.uv)
            .args(self.install_args(py, pkgs));
        run(&mut c)
    }

    /// The archive-v0 entry of each cached package, by name.
    fn entries(&self) -> BTreeMap<String, PathBuf> {
        let mut out = BTreeMap::new();
        for e in std::fs::read_dir(self.ctx.cache().join("archive-v0"))
            .into_iter()
            .flatten()
            .flatten()
        {
            for f in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                let n = f.file_name().to_string_lossy().into_owned();
                if let Some(stem) = n.strip_suffix("-1.0.dist-info") {
                    out.insert(stem.to_owned(), e.path());
                }
            }
        }
        out
    }

    fn entry(&self, name: &str) -> PathBuf {
        self.entries()
            .remove(name)
            .unwrap_or_else(|| panic!("no cache entry for {name}"))
    }
}

/// Files listed in the RECORD of each installed package that are not in the venv.
fn missing_in_venv(venv: &Path, pkgs: &[&str]) -> Vec<String> {
    let site = std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
        .expect("site-packages");
    let mut missing = Vec::new();
    for pkg in pkgs {
        let Ok(record) = std::fs::read_to_string(site.join(format!("{pkg}-1.0.dist-info/RECORD")))
        else {
            missing.push(format!("{pkg} is not installed"));
            continue;
        };
        for line in record.lines().filter(|l| !l.is_empty()) {
            let rel = line.split(',').next().unwrap();
            if !site.join(rel).exists() {
                missing.push(format!("{pkg}: {rel}"));
            }
        }
    }
    missing
}

/// The silent success (a colleague's benchmark): a uv archive entry with a file of its RECORD
/// deleted but `METADATA` kept makes `uv pip install` exit 0 with the package incomplete, and
/// no failure ever asks steady to check the cache. steady checks the entries of what the run
/// installed after a success, evicts the damaged one and reinstalls it; the rest stay warm.
#[test]
fn uv_silent_success_from_a_half_deleted_entry_is_caught_and_reinstalled() {
    let Some(bed) = Uv::new(&["alpha", "beta", "gamma"]) else {
        return;
    };
    let gamma = bed.entry("gamma");
    std::fs::remove_file(gamma.join("gamma/data.py")).unwrap();
    let (alpha, beta) = (bed.entry("alpha"), bed.entry("beta"));
    let (alpha_id, beta_id) = (ident(&alpha), ident(&beta));

    // The danger itself, with bare uv: exit 0, a file missing.
    let py = bed.venv("bare");
    let out = run(bed.cmd().args(bed.install_args(&py, &["gamma"])));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        missing_in_venv(&bed.ctx.path("bare"), &["gamma"]),
        ["gamma: gamma/data.py"],
        "uv should have installed gamma with a file missing"
    );

    let py = bed.venv("v2");
    let report = bed.ctx.path("report.json");
    let out = bed.steady(
        &py,
        &["alpha", "beta", "gamma"],
        &["--report", report.to_str().unwrap()],
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert_eq!(
        missing_in_venv(&bed.ctx.path("v2"), &["alpha", "beta", "gamma"]),
        Vec::<String>::new(),
        "steady let an incomplete install pass: {err}"
    );
    assert!(
        err.contains("gamma") && err.contains("damaged"),
        "steady did not say what it found: {err}"
    );
    let runs = attempts(&report);
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0].0, "cache corruption", "{runs:?}");
    assert!(runs[0].1.contains("cleared gamma"), "{runs:?}");
    assert!(
        bed.entry("gamma").join("gamma/data.py").exists(),
        "gamma's entry was not replaced"
    );
    assert_eq!(ident(&alpha), alpha_id, "alpha's healthy entry was touched");
    assert_eq!(ident(&beta), beta_id, "beta's healthy entry was touched");
}

/// Nothing damaged, nothing installed (a no-op install), or a damaged entry of a package this
/// run did not install: one attempt, no clean, the damaged entry left for the run that uses it
/// (the check after a success looks only at what the run installed).
#[test]
fn uv_clean_successes_stay_one_attempt() {
    let Some(bed) = Uv::new(&["alpha", "beta", "gamma"]) else {
        return;
    };
    let py = bed.venv("v2");
    let report = bed.ctx.path("report.json");
    let r = report.to_str().unwrap();
    let out = bed.steady(&py, &["alpha", "beta"], &["--report", r]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(attempts(&report).len(), 1, "{}", stderr(&out));
    // Damage gamma, which the next runs do not install.
    std::fs::remove_file(bed.entry("gamma").join("gamma/data.py")).unwrap();
    let out = bed.steady(&py, &["alpha", "beta"], &["--report", r]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(attempts(&report).len(), 1, "a no-op install was retried");
    assert!(!stderr(&out).contains("cleared"), "{}", stderr(&out));
    let out = bed.steady(&bed.venv("v3"), &["alpha"], &["--report", r]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(attempts(&report).len(), 1, "{}", stderr(&out));
    assert!(!stderr(&out).contains("cleared"), "{}", stderr(&out));
    assert!(!bed.entry("gamma").join("gamma/data.py").exists());
}

/// With `-q` uv names nothing it installed: steady checks every entry of the cache instead.
#[test]
fn uv_quiet_silent_success_is_caught_too() {
    let Some(bed) = Uv::new(&["alpha", "beta"]) else {
        return;
    };
    std::fs::remove_file(bed.entry("beta").join("beta/data.py")).unwrap();
    let alpha = ident(&bed.entry("alpha"));
    let py = bed.venv("v2");
    let mut c = bed.ctx.steady();
    bed.env(&mut c);
    c.args(["--backoff", "10ms", "--"])
        .arg(&bed.uv)
        .args(bed.install_args(&py, &["alpha", "beta"]))
        .arg("-q");
    let out = run(&mut c);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        missing_in_venv(&bed.ctx.path("v2"), &["alpha", "beta"]),
        Vec::<String>::new(),
        "{}",
        stderr(&out)
    );
    assert_eq!(ident(&bed.entry("alpha")), alpha);
}
