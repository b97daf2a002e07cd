//! A second user and file modes, for the tests that need another owner.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::skip;

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
