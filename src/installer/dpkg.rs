//! dpkg: the options that make it write (it has no subcommands), its failure texts, and its
//! own lock, which it cannot wait for: a held lock is classified and retried, and steady takes
//! no lock of its own. It has no download cache. Needs root, so `steady init` does not wrap
//! it.
//!
//! Verified here against the real dpkg (`tests/it/installers.rs`).

use super::row::{BASE, CacheRules, Installer, LockStrategy, RecoveryRules, Verified};
use super::signature::sig;
use crate::failure::Failure;

pub const DPKG: Installer = Installer {
    name: "dpkg",
    verified: Verified::Here,
    programs: &["dpkg"],
    writes_flags: &[
        "-i",
        "--install",
        "-r",
        "--remove",
        "-P",
        "--purge",
        "--unpack",
        "--configure",
        "--triggers-only",
    ],
    options_with_value: &["--admindir", "--root", "--instdir"],
    cache: CacheRules {
        // dpkg has no wait option: its lock failure is classified and retried.
        lock: LockStrategy::Installer {
            wait_args: &[],
            already: "",
            default_secs: 0,
        },
        ..BASE.cache
    },
    recovery: RecoveryRules {
        signatures: &[
            sig(
                Failure::InstallerLock,
                "frontend lock was locked by another process",
            ),
            sig(
                Failure::InstallerLock,
                "database is locked by another process",
            ),
            sig(Failure::InstallerLock, "is locked by another process"),
            sig(Failure::Deterministic, "dependency problems"),
            sig(Failure::Deterministic, "cannot access archive"),
            sig(Failure::Deterministic, "is not a Debian format archive"),
            sig(
                Failure::Deterministic,
                "requested operation requires superuser privilege",
            ),
        ],
        ..BASE.recovery
    },
    ..BASE
};

#[cfg(test)]
mod tests {
    use crate::installer::Class::{ReadOnly, Writes};
    use crate::installer::identify;
    use crate::installer::identify::{argv, assert_identified};

    #[test]
    fn identifies_dpkg() {
        assert_identified(&[
            ("dpkg -i x.deb", "dpkg", Writes),
            ("dpkg -l", "dpkg", ReadOnly),
        ]);
    }

    #[test]
    fn dpkg_gets_no_wait_arguments() {
        let dpkg = identify(&argv("dpkg -i x.deb"), None).unwrap();
        assert_eq!(
            dpkg.with_own_lock_wait(&dpkg.argv(), None),
            dpkg.argv(),
            "dpkg has no wait option"
        );
    }
}
