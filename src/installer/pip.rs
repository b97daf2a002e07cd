//! pip: its entry points (`pip`, `pip3`, `pip3.12`, `python -m pip`), the subcommands that
//! write, how it chooses its cache (`--no-cache-dir` or `PIP_NO_CACHE_DIR` with any value,
//! `--cache-dir`, `PIP_CACHE_DIR`, `cache-dir` in its config files, else `~/.cache/pip`;
//! `--isolated` ignores both config and environment), its failure texts, and that steady
//! checks its built wheels itself.
//!
//! Verified here against the real pip (`tests/it/installers.rs`).

use super::row::{
    BASE, CacheRules, ConfigFile, DefaultDir, DirArg, FullClean, Installer, Layout, Naming,
    PackageClean, RecoveryRules, Verified, Verify, from,
};
use super::signature::{PackageHint, sig};
use crate::failure::Failure;

pub const PIP: Installer = Installer {
    name: "pip",
    verified: Verified::Here,
    programs: &["pip"],
    versioned_prefix: Some("pip"),
    modules: &["pip"],
    wrap: &["pip", "pip3"],
    writes: &[
        &["install"],
        &["download"],
        &["wheel"],
        &["uninstall"],
        &["cache", "purge"],
        &["cache", "remove"],
    ],
    options_with_value: &[
        "--cache-dir",
        "--log",
        "--proxy",
        "--retries",
        "--timeout",
        "--exists-action",
        "--trusted-host",
        "--cert",
        "--client-cert",
        "--python",
        "--keyring-provider",
        "--use-feature",
        "--use-deprecated",
        "--progress-bar",
    ],
    cache: CacheRules {
        off_flags: &["--no-cache-dir"],
        off_env: &["PIP_NO_CACHE_DIR"],
        any_value_disables: true,
        dir_flags: &[from("--cache-dir", "")],
        dir_env: &[from("PIP_CACHE_DIR", "")],
        no_config_flags: &["--isolated"],
        no_config_env: "PIP_ISOLATED",
        no_config_ignores_env: true,
        config_files: &[
            ConfigFile::Env("PIP_CONFIG_FILE"),
            ConfigFile::Absolute("/etc/xdg/pip/pip.conf"),
            ConfigFile::Absolute("/etc/pip.conf"),
            ConfigFile::UserConfig("pip/pip.conf"),
            ConfigFile::Home(".pip/pip.conf"),
            ConfigFile::VirtualEnv("pip.conf"),
        ],
        config_keys: &["cache-dir"],
        query: &["cache", "dir"],
        query_flags: &["--isolated"],
        default: DefaultDir::UserCache("pip"),
        clean_full: FullClean::Command(&["cache", "purge"]),
        dir_arg: DirArg::Flag("--cache-dir"),
        markers: &["http-v2", "http", "wheels", "selfcheck", "selfcheck.json"],
        ..BASE.cache
    },
    recovery: RecoveryRules {
        signatures: &[
            sig(Failure::Corruption, "DO NOT MATCH THE HASHES"),
            sig(Failure::Corruption, "is invalid."),
            sig(Failure::Corruption, "has an invalid wheel"),
            sig(Failure::Corruption, "BadZipFile"),
            sig(Failure::Corruption, "File is not a zip file"),
            // "Failed to read /tmp/x/sample-1.0-py3-none-any.whl: Bad CRC-32 for file
            // 'sample/__init__.py'" (pip >= 26, pypa/pip#14260).
            sig(Failure::Corruption, "Bad CRC-32 for file"),
            sig(Failure::Network, "Retrying (Retry("),
            // urllib3's "IncompleteRead(10 bytes read, 39252 more expected)": a body cut short
            // (pypa/pip#11153, pypa/pip#14079).
            sig(Failure::Network, "IncompleteRead("),
            sig(Failure::Network, "connection broken by"),
            sig(Failure::Network, "error: connection-failed"),
            sig(Failure::Network, "error: connection-timeout"),
            sig(Failure::Network, "error: incomplete-download"),
            sig(Failure::Network, "Read timed out"),
            sig(Failure::Network, "Temporary failure in name resolution"),
            sig(Failure::Network, "Could not fetch URL"),
            sig(Failure::Deterministic, "No matching distribution found"),
            sig(
                Failure::Deterministic,
                "Could not find a version that satisfies",
            ),
            sig(Failure::Deterministic, "ResolutionImpossible"),
            sig(Failure::Deterministic, "Invalid requirement"),
            sig(Failure::Deterministic, "Could not open requirements file"),
            sig(Failure::Deterministic, "no such option"),
            sig(Failure::Deterministic, "externally-managed-environment"),
        ],
        package_hints: &[PackageHint {
            after: "Wheel '",
            until: &['\''],
        }],
        naming: Naming::Python,
        // `pip cache remove` removes only the wheels pip built; a bad downloaded wheel in
        // `http-v2` needs the full purge, which the fallback does.
        clean_package: Some(PackageClean::Command(&["cache", "remove"])),
        verify: Some(Verify::Layout(Layout::PipWheels)),
        ..BASE.recovery
    },
    ..BASE
};

#[cfg(test)]
mod tests {
    use crate::installer::Class::{ReadOnly, Writes};
    use crate::installer::identify::identified;

    #[test]
    fn identifies_pip() {
        let cases = [
            ("pip install x", Some(("pip", Writes, 1))),
            ("pip3 install x", Some(("pip", Writes, 1))),
            ("pip3.12 download x", Some(("pip", Writes, 1))),
            ("pip wheel .", Some(("pip", Writes, 1))),
            ("pip --timeout 30 install x", Some(("pip", Writes, 1))),
            ("pip list", Some(("pip", ReadOnly, 1))),
            ("pip --version", Some(("pip", ReadOnly, 1))),
            ("pip cache dir", Some(("pip", ReadOnly, 1))),
            ("pip cache purge", Some(("pip", Writes, 1))),
            ("python3 -m pip install x", Some(("pip", Writes, 3))),
            ("python3.11 -I -m pip install x", Some(("pip", Writes, 4))),
            (
                "/opt/venv/bin/python -m pip freeze",
                Some(("pip", ReadOnly, 3)),
            ),
            ("pipe install", None),
        ];
        for (cmd, want) in cases {
            assert_eq!(identified(cmd), want, "{cmd}");
        }
    }
}
