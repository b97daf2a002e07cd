//! Sets `STEADY_VERSION` for `steady --version`: the package version, the target triple and,
//! when known, the git commit it was built from, e.g. `0.1.0 (x86_64-unknown-linux-musl,
//! commit 1a2b3c4d5e)`.
//!
//! The commit comes from, in order: `STEADY_BUILD_COMMIT` (set by a release pipeline that builds
//! from an unpacked source archive); `.cargo_vcs_info.json`, which `cargo package` writes into
//! the crate that crates.io serves; `git`, when the package root is the top of a git work tree
//! (so a crate vendored inside some other repository does not take that repository's commit).
//! Otherwise the commit is left out: never a guess.

use std::path::Path;
use std::process::Command;

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let target = std::env::var("TARGET").unwrap_or_default();
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=STEADY_BUILD_COMMIT");

    let commit = from_env()
        .or_else(|| from_vcs_info(Path::new(&root)))
        .or_else(|| from_git(Path::new(&root)));
    let long = match commit {
        Some(c) => format!("{version} ({target}, commit {c})"),
        None => format!("{version} ({target})"),
    };
    println!("cargo:rustc-env=STEADY_VERSION={long}");
}

/// Ten hex digits, like `git rev-parse --short=10`.
fn short(sha: &str) -> Option<String> {
    let sha = sha.trim();
    (sha.len() >= 7 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| sha[..sha.len().min(10)].to_ascii_lowercase())
}

fn from_env() -> Option<String> {
    short(&std::env::var("STEADY_BUILD_COMMIT").ok()?)
}

/// `{"git": {"sha1": "…"}, …}`: a string search is enough for this one fixed shape.
fn from_vcs_info(root: &Path) -> Option<String> {
    let path = root.join(".cargo_vcs_info.json");
    let text = std::fs::read_to_string(&path).ok()?;
    watch(&path);
    let rest = &text[text.find("\"sha1\"")? + "\"sha1\"".len()..];
    let value = rest.split('"').nth(1)?;
    short(value)
}

fn from_git(root: &Path) -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let top = git(&["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != root.canonicalize().ok()? {
        return None;
    }
    // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it points at (a commit),
    // and packed-refs (a branch packed by gc). Paths come from git, so worktrees work too.
    for file in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", file]) {
            watch(&root.join(p));
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(p) = git(&["rev-parse", "--git-path", &branch])
    {
        watch(&root.join(p));
    }
    short(&git(&["rev-parse", "HEAD"])?)
}

/// Reruns this script when `path` changes; only for files that exist, since cargo takes a
/// missing one as changed and would rebuild steady on every build.
fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
