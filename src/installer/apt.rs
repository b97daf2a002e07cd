//! apt (`apt-get`, `apt`, `aptitude`): the subcommands that write, its package cache
//! (`/var/cache/apt/archives`, cleared with `apt-get clean`), its failure texts, and why steady
//! takes no lock of its own for it but makes apt wait on apt's own lock. Needs root, so
//! `steady init` does not wrap it.
//!
//! Verified here against the real apt (`tests/it/installers.rs`).

use super::row::{
    BASE, CacheRules, DefaultDir, FullClean, Installer, LockStrategy, RecoveryRules, Verified,
};
use super::signature::sig;
use crate::failure::Failure;

pub const APT: Installer = Installer {
    name: "apt",
    verified: Verified::Here,
    programs: &["apt-get", "apt", "aptitude"],
    writes: &[
        &["install"],
        &["remove"],
        &["purge"],
        &["upgrade"],
        &["dist-upgrade"],
        &["full-upgrade"],
        &["update"],
        &["autoremove"],
        &["autopurge"],
        &["clean"],
        &["autoclean"],
        &["build-dep"],
        &["reinstall"],
        &["satisfy"],
    ],
    options_with_value: &[
        "-o",
        "--option",
        "-c",
        "--config-file",
        "-t",
        "--target-release",
    ],
    cache: CacheRules {
        default: DefaultDir::Absolute("/var/cache/apt/archives"),
        clean_full: FullClean::Command(&["clean"]),
        markers: &["partial", "lock"],
        // apt and dpkg lock with fcntl on /var/lib/dpkg/lock-frontend; an flock of steady's
        // would not be seen by apt run without steady, so apt waits on its own lock instead.
        lock: LockStrategy::Installer {
            wait_args: &["-o", "DPkg::Lock::Timeout={secs}"],
            already: "DPkg::Lock::Timeout",
            default_secs: 600,
        },
        ..BASE.cache
    },
    recovery: RecoveryRules {
        signatures: &[
            sig(Failure::Corruption, "Hash Sum mismatch"),
            sig(Failure::Corruption, "File has unexpected size"),
            sig(Failure::Corruption, "Clearsigned file isn't valid"),
            sig(Failure::Corruption, "could not be parsed or opened"),
            // "E: dpkg was interrupted, you must manually run 'sudo dpkg --configure -a' to
            // correct the problem." (openhab/openhabian#952, termux/termux-packages#6151): the
            // package state is damaged, and apt names the repair, which steady runs instead of
            // `apt-get clean` (that would not help) before the retry.
            sig(Failure::Corruption, "dpkg was interrupted").repair(&["dpkg", "--configure", "-a"]),
            // apt's own check before downloading: "E: You don't have enough free space in
            // /var/cache/apt/archives/." (AbdBarho/stable-diffusion-webui-docker#666,
            // MichaIng/DietPi#5427).
            sig(Failure::DiskFull, "You don't have enough free space in").decisive(),
            sig(Failure::Network, "Temporary failure resolving"),
            // "E: Failed to fetch http://azure.archive.ubuntu.com/…  Unable to connect to
            // azure.archive.ubuntu.com:http: [IP: 52.252.75.106 80]" (actions/runner-images#7603).
            sig(Failure::Network, "Unable to connect to"),
            sig(Failure::Network, "Could not connect to"),
            sig(Failure::Network, "Connection timed out"),
            sig(Failure::Network, "Connection failed"),
            sig(Failure::Network, "Some index files failed to download"),
            sig(Failure::InstallerLock, "Could not get lock"),
            sig(
                Failure::InstallerLock,
                "Unable to acquire the dpkg frontend lock",
            ),
            sig(Failure::InstallerLock, "Unable to lock directory"),
            sig(Failure::Deterministic, "Unable to locate package"),
            sig(Failure::Deterministic, "has no installation candidate"),
            sig(Failure::Deterministic, "you have held broken packages"),
            sig(Failure::Deterministic, "Invalid operation"),
            sig(Failure::Deterministic, "are you root?"),
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
    fn identifies_apt() {
        assert_identified(&[
            ("apt-get install -y curl", "apt", Writes),
            ("apt-get -o Debug::X=1 update", "apt", Writes),
            ("apt install curl", "apt", Writes),
            ("apt-cache policy x", "", ReadOnly),
            ("apt-get -s check", "apt", ReadOnly),
        ]);
    }

    #[test]
    fn apt_waits_on_its_own_lock() {
        let inv = identify(&argv("nice apt-get install -y curl"), None).unwrap();
        let got = inv.with_own_lock_wait(&inv.argv(), Some(std::time::Duration::from_millis(1500)));
        assert_eq!(
            got,
            argv("nice apt-get -o DPkg::Lock::Timeout=2 install -y curl")
        );
        assert_eq!(
            inv.with_own_lock_wait(&inv.argv(), None),
            argv("nice apt-get -o DPkg::Lock::Timeout=600 install -y curl")
        );
        let mine = identify(&argv("apt-get -o DPkg::Lock::Timeout=9 install x"), None).unwrap();
        assert_eq!(
            mine.with_own_lock_wait(&mine.argv(), None),
            mine.argv(),
            "the user's own value stays"
        );
    }
}
