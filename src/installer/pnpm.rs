//! pnpm (12): its entry points (`pnpm`, `pn`, and `pnpx`/`pnx`, which only run packages), the
//! subcommands that write, how it chooses its store (`--store-dir`, `PNPM_CONFIG_STORE_DIR`,
//! `store-dir` in its config files, `PNPM_HOME`, `XDG_DATA_HOME`; always asked, as the default
//! depends on the project's filesystem), its failure texts, and that steady empties the store
//! itself, pnpm having no command that does.
//!
//! Verified here against the real pnpm (`tests/it/installers.rs`).

use super::row::{
    Ask, BASE, CacheRules, ConfigFile, DefaultDir, FullClean, Installer, RecoveryRules, Verified,
    from, from_after_config,
};
use super::signature::sig;
use crate::failure::Failure;

pub const PNPM: Installer = Installer {
    name: "pnpm",
    verified: Verified::Here,
    programs: &["pnpm", "pn"],
    run_launchers: &["pnpx", "pnx"],
    wrap: &["pnpm"],
    writes: &[
        &["install"],
        &["i"],
        &["add"],
        &["update"],
        &["up"],
        &["upgrade"],
        &["remove"],
        &["rm"],
        &["uninstall"],
        &["un"],
        &["link"],
        &["ln"],
        &["unlink"],
        &["import"],
        &["rebuild"],
        &["rb"],
        &["prune"],
        &["fetch"],
        &["install-test"],
        &["it"],
        &["dedupe"],
        &["store", "add"],
        &["store", "prune"],
    ],
    options_with_value: &[
        "-C",
        "--dir",
        "--store-dir",
        "--filter",
        "-F",
        "--registry",
        "--reporter",
        "--env-file",
    ],
    cache: CacheRules {
        dir_flags: &[from("--store-dir", "v11")],
        // pnpm 12 ignores `npm_config_store_dir`.
        dir_env: &[
            from("PNPM_CONFIG_STORE_DIR", "v11"),
            from("pnpm_config_store_dir", "v11"),
            from_after_config("PNPM_HOME", "store/v11"),
            from_after_config("XDG_DATA_HOME", "pnpm/store/v11"),
        ],
        config_files: &[
            ConfigFile::Project(".npmrc"),
            ConfigFile::Project("pnpm-workspace.yaml"),
            ConfigFile::UserConfig("pnpm/rc"),
            ConfigFile::UserConfig("pnpm/config.yaml"),
            ConfigFile::Home(".npmrc"),
        ],
        config_keys: &["store-dir", "storeDir"],
        cwd_flags: &["-C", "--dir"],
        query: &["store", "path"],
        // The default store must be on the project's filesystem, else pnpm uses
        // `<mount root>/.pnpm-store`: only pnpm knows for sure.
        ask: Ask::Always,
        query_value_flags: &["-C", "--dir"],
        default: DefaultDir::Home(".local/share/pnpm/store/v11"),
        // No command clears the store (`pnpm store prune` drops only unreferenced packages).
        clean_full: FullClean::Markers,
        markers: &["files", "index", "projects", "tmp", "links"],
        ..BASE.cache
    },
    recovery: RecoveryRules {
        signatures: &[
            sig(Failure::Corruption, "ERR_PNPM_TARBALL_INTEGRITY"),
            sig(
                Failure::Corruption,
                "ERR_PNPM_UNEXPECTED_PKG_CONTENT_IN_STORE",
            ),
            sig(Failure::Corruption, "ERR_PNPM_TARBALL_EXTRACT"),
            sig(Failure::Corruption, "ERR_PNPM_TARBALL_GZIP"),
            sig(Failure::Corruption, "ERR_PNPM_TARBALL_INCOMPLETE_TAR"),
            sig(Failure::Corruption, "ERR_PNPM_TARBALL_STORE"),
            sig(Failure::Corruption, "-index.json"),
            // The v10 store layout: "Error: ENOENT: no such file or directory, open
            // '/vercel/path0/.pnpm-store/v10/index/c2/973e…-eslint-visitor-keys@3.4.3.json'"
            // (pnpm/pnpm#9792).
            sig(
                Failure::Corruption,
                "ENOENT: no such file or directory, open '…/index/….json'",
            ),
            // "pnpm: ENOENT: no such file or directory, copyfile" from the store's `files/`
            // into node_modules: a store file is gone (pnpm/pnpm#4919). The paths follow on
            // the next lines.
            sig(
                Failure::Corruption,
                "ENOENT: no such file or directory, copyfile",
            ),
            // ssri's "sha1-… integrity checksum failed when using sha1: wanted … but got …"
            // (old pnpm, pnpm/pnpm#1230).
            sig(Failure::Corruption, "integrity checksum failed when using"),
            sig(Failure::Network, "ERR_PNPM_META_FETCH_FAIL"),
            // "WARN  GET https://registry.npmjs.org/@babel%2Fcore error (ERR_SOCKET_TIMEOUT).
            // Will retry in 10 seconds." (pnpm/pnpm#6434).
            sig(Failure::Network, "ERR_SOCKET_TIMEOUT"),
            // "error (ERR_PNPM_FETCH_408). Will retry in 10 seconds." (pnpm/pnpm#3387).
            sig(Failure::Network, "ERR_PNPM_FETCH_408"),
            sig(Failure::Network, "ECONNREFUSED"),
            sig(Failure::Network, "ECONNRESET"),
            sig(Failure::Network, "ETIMEDOUT"),
            sig(Failure::Network, "ENOTFOUND"),
            sig(Failure::Network, "Connection refused"),
            sig(Failure::Network, "error sending request"),
            sig(Failure::Deterministic, "ERR_PNPM_FETCH_404"),
            sig(Failure::Deterministic, "status client error (404"),
            sig(Failure::Deterministic, "ERR_PNPM_NO_MATCHING_VERSION"),
            sig(Failure::Deterministic, "ERR_PNPM_NO_PKG_MANIFEST"),
            sig(Failure::Deterministic, "ERR_PNPM_OUTDATED_LOCKFILE"),
            sig(Failure::Deterministic, "404 Not Found"),
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
    fn identifies_pnpm() {
        assert_identified(&[
            ("pnpm install", "pnpm", Writes),
            ("pnpm -C sub add x", "pnpm", Writes),
            ("pnpm store prune", "pnpm", Writes),
            ("pnpm store path", "pnpm", ReadOnly),
            ("pnpx x", "pnpm", ReadOnly),
        ]);
    }
}
