//! Bun: its entry points (`bun`, and `bunx`, which only runs packages), the subcommands that
//! write, how it chooses its install cache (`--cache-dir`, `BUN_INSTALL_CACHE_DIR`, `cache` in
//! `bunfig.toml`, `BUN_INSTALL`, `XDG_CACHE_HOME`, else `~/.bun/install/cache`), its failure
//! texts, and that `bun pm cache rm` clears it.
//!
//! Verified here against the real Bun (`tests/it/installers.rs`).

use super::row::{
    BASE, CacheRules, ConfigFile, DefaultDir, DirArg, FullClean, Installer, RecoveryRules,
    Verified, from, from_after_config,
};
use super::signature::sig;
use crate::failure::Failure;

pub const BUN: Installer = Installer {
    name: "bun",
    verified: Verified::Here,
    programs: &["bun"],
    run_launchers: &["bunx"],
    wrap: &["bun"],
    writes: &[
        &["install"],
        &["i"],
        &["add"],
        &["a"],
        &["remove"],
        &["rm"],
        &["update"],
        &["link"],
        &["unlink"],
        &["pm", "cache", "rm"],
    ],
    options_with_value: &["--cwd", "--cache-dir", "--registry", "--config", "-c"],
    cache: CacheRules {
        // `--no-cache` skips only the manifest cache: the tarball cache is still used.
        off_flags: &[],
        dir_flags: &[from("--cache-dir", "")],
        dir_env: &[
            from("BUN_INSTALL_CACHE_DIR", ""),
            from_after_config("BUN_INSTALL", "install/cache"),
            from_after_config("XDG_CACHE_HOME", ".bun/install/cache"),
        ],
        config_files: &[
            ConfigFile::Project("bunfig.toml"),
            ConfigFile::UserConfig(".bunfig.toml"),
            ConfigFile::Home(".bunfig.toml"),
        ],
        config_keys: &["cache"],
        cwd_flags: &["--cwd"],
        query: &["pm", "cache"],
        query_value_flags: &["--cwd", "--config", "-c"],
        default: DefaultDir::Home(".bun/install/cache"),
        clean_full: FullClean::Command(&["pm", "cache", "rm"]),
        dir_arg: DirArg::Env("BUN_INSTALL_CACHE_DIR"),
        markers: &["*.npm", "*@*"],
        ..BASE.cache
    },
    recovery: RecoveryRules {
        signatures: &[
            sig(Failure::Corruption, "Integrity check failed for tarball"),
            sig(Failure::Corruption, "Failed to extract tarball"),
            // "error: moving \"https://…/npm-package-wrangler-7098\" to cache dir failed" /
            // "ENOTEMPTY: Directory not empty": a leftover cache entry (oven-sh/bun#14928).
            sig(Failure::Corruption, "to cache dir failed"),
            // "error: Fail extracting tarball for \"effect\"": before oven-sh/bun#40063 a tarball
            // body cut short surfaced as this extraction failure; a retry downloads it again.
            sig(Failure::Network, "Fail extracting tarball for"),
            sig(Failure::Network, "ConnectionRefused"),
            sig(Failure::Network, "ConnectionClosed"),
            sig(Failure::Network, "TarballFailedToDownload"),
            sig(Failure::Network, "ECONNREFUSED"),
            sig(Failure::Network, "Timeout"),
            sig(Failure::Deterministic, "404"),
            sig(Failure::Deterministic, "No version matching"),
            // "error: @headlessui/react@^1.7.17 failed to resolve" follows whatever stopped the
            // resolution (a refused connection, oven-sh/bun#7647; a cache move,
            // oven-sh/bun#14928): a wrapper, the cause above it decides.
            sig(Failure::Deterministic, "failed to resolve").wrapper(),
        ],
        ..BASE.recovery
    },
    ..BASE
};

#[cfg(test)]
mod tests {
    use crate::installer::Class::{ReadOnly, Writes};
    use crate::installer::identify::assert_identified;

    #[test]
    fn identifies_bun() {
        assert_identified(&[
            ("bun install", "bun", Writes),
            ("bun pm cache rm", "bun", Writes),
            ("bun run dev", "bun", ReadOnly),
            ("bunx x", "bun", ReadOnly),
        ]);
    }
}
