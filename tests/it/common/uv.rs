//! A uv test bed for the tests that damage a real uv cache (`heal`, `recover`): local wheels,
//! a cache filled by one install, fresh venvs to install into, all offline.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{Ctx, make_wheel, require, run, stderr};

pub struct UvBed {
    pub ctx: Ctx,
    pub uv: PathBuf,
    /// The local index (`--find-links`): the wheels of `new`, and whatever a test adds.
    pub wheels: PathBuf,
}

impl UvBed {
    /// A wheel 1.0 of each of `names`, all installed once (into venv `v0`) to fill the cache;
    /// with no names, an empty index and an empty cache. A skip without uv or python3.
    pub fn new(names: &[&str]) -> Option<UvBed> {
        let uv = require("uv")?;
        require("python3")?;
        let ctx = Ctx::new();
        let wheels = ctx.path("wheels");
        std::fs::create_dir(&wheels).unwrap();
        for name in names {
            make_wheel(&wheels, name, "1.0");
        }
        let bed = UvBed { ctx, uv, wheels };
        if !names.is_empty() {
            let py = bed.venv("v0");
            let out = run(bed.uv_cmd().args(bed.install_args(&py, names)));
            assert!(out.status.success(), "{}", stderr(&out));
        }
        Some(bed)
    }

    /// The bed's cache, offline and without the user's configuration.
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("UV_CACHE_DIR", self.ctx.cache())
            .env("UV_NO_CONFIG", "1")
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env("UV_OFFLINE", "1");
    }

    /// Bare uv (no steady) on the bed's cache.
    pub fn uv_cmd(&self) -> Command {
        let mut c = Command::new(&self.uv);
        self.env(&mut c);
        c
    }

    /// A fresh venv `name` in the test's directory; its python.
    pub fn venv(&self, name: &str) -> PathBuf {
        let out = run(self
            .uv_cmd()
            .args(["venv", "-q", "--python", "python3"])
            .arg(self.ctx.path(name)));
        assert!(out.status.success(), "uv venv: {}", stderr(&out));
        self.ctx.path(name).join("bin/python")
    }

    /// `pip install` of `pkgs` from the local index into the venv of `py`.
    pub fn install_args(&self, py: &Path, pkgs: &[&str]) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
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

    /// `steady --backoff 10ms <extra> -- uv pip install …`, not yet run (a test may add
    /// arguments for uv or environment).
    pub fn steady_cmd(&self, py: &Path, pkgs: &[&str], extra: &[&str]) -> Command {
        let mut c = self.ctx.steady();
        self.env(&mut c);
        c.args(["--backoff", "10ms"])
            .args(extra)
            .arg("--")
            .arg(&self.uv)
            .args(self.install_args(py, pkgs));
        c
    }

    /// [`UvBed::steady_cmd`], run.
    pub fn steady_install(&self, py: &Path, pkgs: &[&str], extra: &[&str]) -> Output {
        run(&mut self.steady_cmd(py, pkgs, extra))
    }

    /// The archive-v0 entry directory of each cached package, by name (the first path in
    /// order where a name has two).
    pub fn entries(&self) -> BTreeMap<String, PathBuf> {
        let mut found = Vec::new();
        for e in std::fs::read_dir(self.ctx.cache().join("archive-v0"))
            .into_iter()
            .flatten()
            .flatten()
        {
            for f in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                let n = f.file_name().to_string_lossy().into_owned();
                if let Some(stem) = n.strip_suffix("-1.0.dist-info") {
                    found.push((stem.to_owned(), e.path()));
                }
            }
        }
        found.sort();
        let mut out = BTreeMap::new();
        for (name, path) in found {
            out.entry(name).or_insert(path);
        }
        out
    }

    pub fn entry(&self, name: &str) -> PathBuf {
        self.entries()
            .remove(name)
            .unwrap_or_else(|| panic!("no cache entry for {name}"))
    }
}

/// Files listed in the RECORD of each installed package that are not in the venv (or that the
/// package is not installed at all).
pub fn missing_in_venv(venv: &Path, pkgs: &[&str]) -> Vec<String> {
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
