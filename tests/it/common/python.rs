//! Python for the tests that build packages locally, so no test needs the network.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{require, skip};

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
