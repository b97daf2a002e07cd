//! npm: its entry points (`npm`, and `npx`, which only runs packages), the subcommands that
//! write with every alias npm accepts, how it chooses its cache (`--cache`,
//! `npm_config_cache`, `cache` in an `.npmrc`, else `~/.npm`), its failure texts, and why a
//! full clean is forced and comes after `npm cache verify`.
//!
//! Verified here against the real npm (`tests/it/installers.rs`).

use super::row::{
    BASE, CacheRules, ConfigFile, DefaultDir, DirArg, FullClean, Installer, RecoveryRules,
    Verified, Verify, from,
};
use super::signature::sig;
use crate::failure::Failure;

/// npm's subcommands that write, with the aliases npm accepts for them.
const NPM_WRITES: &[&[&str]] = &[
    &["install"],
    &["i"],
    &["in"],
    &["ins"],
    &["inst"],
    &["insta"],
    &["instal"],
    &["isnt"],
    &["isnta"],
    &["isntal"],
    &["isntall"],
    &["add"],
    &["ci"],
    &["clean-install"],
    &["ic"],
    &["install-clean"],
    &["isntall-clean"],
    &["install-ci-test"],
    &["cit"],
    &["install-test"],
    &["it"],
    &["update"],
    &["up"],
    &["upgrade"],
    &["udpate"],
    &["uninstall"],
    &["unlink"],
    &["remove"],
    &["rm"],
    &["r"],
    &["un"],
    &["dedupe"],
    &["ddp"],
    &["prune"],
    &["rebuild"],
    &["rb"],
    &["link"],
    &["ln"],
    &["audit", "fix"],
    &["cache", "clean"],
    &["cache", "add"],
    &["cache", "verify"],
];

pub const NPM: Installer = Installer {
    name: "npm",
    verified: Verified::Here,
    programs: &["npm"],
    run_launchers: &["npx"],
    wrap: &["npm"],
    writes: NPM_WRITES,
    options_with_value: &[
        "--cache",
        "--prefix",
        "--registry",
        "--userconfig",
        "--globalconfig",
        "-w",
        "--workspace",
        "--loglevel",
    ],
    cache: CacheRules {
        dir_flags: &[from("--cache", "")],
        // npm reads `npm_config_*` in any case; these are the spellings seen in the wild.
        dir_env: &[from("npm_config_cache", ""), from("NPM_CONFIG_CACHE", "")],
        config_files: &[
            ConfigFile::Project(".npmrc"),
            ConfigFile::Env("npm_config_userconfig"),
            ConfigFile::Env("NPM_CONFIG_USERCONFIG"),
            ConfigFile::Home(".npmrc"),
            ConfigFile::Env("npm_config_globalconfig"),
            ConfigFile::Absolute("/usr/etc/npmrc"),
            ConfigFile::Absolute("/usr/local/etc/npmrc"),
            ConfigFile::Absolute("/etc/npmrc"),
        ],
        config_keys: &["cache"],
        cwd_flags: &["--prefix"],
        query: &["config", "get", "cache"],
        query_value_flags: &["--prefix", "--userconfig", "--globalconfig"],
        // `~/.npm` on POSIX: npm ignores XDG_CACHE_HOME.
        default: DefaultDir::Home(".npm"),
        // Without `--force`, npm refuses: its cache "self-heals" (integrity mismatches are
        // cache misses), which is also why a check comes first (`verify`).
        clean_full: FullClean::Command(&["cache", "clean", "--force"]),
        dir_arg: DirArg::Flag("--cache"),
        markers: &["_cacache", "_logs", "_npx", "_update-notifier-last-checked"],
        ..BASE.cache
    },
    recovery: RecoveryRules {
        signatures: &[
            sig(Failure::Corruption, "EINTEGRITY"),
            sig(Failure::Corruption, "integrity checksum failed"),
            sig(Failure::Corruption, "Unexpected end of JSON input"),
            sig(Failure::Corruption, "_cacache/tmp"),
            // "ENOTEMPTY: directory not empty, rename '…/node_modules/chai' -> '…/node_modules/
            // .chai-ioYsTChA'": the leftover of an interrupted install (dappuniversity/millow#14,
            // earendil-works/pi#3628, npm/npm#10217).
            sig(
                Failure::Corruption,
                "ENOTEMPTY: directory not empty, rename '…node_modules",
            ),
            sig(
                Failure::Corruption,
                "Your cache folder contains root-owned files",
            ),
            // npx's install lock (libnpmexec with-lock.js) lost while held: "npm error code
            // ECOMPROMISED" / "npm error Lock compromised"; a retry works (npm/cli#8710,
            // actions/runner-images#13238, MCPJam/inspector#1318).
            sig(Failure::InstallerLock, "code ECOMPROMISED"),
            sig(Failure::InstallerLock, "Lock compromised"),
            sig(Failure::Network, "ECONNREFUSED"),
            sig(Failure::Network, "ECONNRESET"),
            sig(Failure::Network, "ETIMEDOUT"),
            sig(Failure::Network, "ENOTFOUND"),
            sig(Failure::Network, "EAI_AGAIN"),
            sig(Failure::Network, "ERR_SOCKET_TIMEOUT"),
            sig(
                Failure::Network,
                "This is a problem related to network connectivity",
            ),
            sig(Failure::Deterministic, "code E404"),
            sig(Failure::Deterministic, "code ETARGET"),
            sig(Failure::Deterministic, "code ERESOLVE"),
            sig(Failure::Deterministic, "code EUSAGE"),
            sig(Failure::Deterministic, "code ENOENT"),
            sig(Failure::Deterministic, "code EJSONPARSE"),
            sig(Failure::Deterministic, "No matching version found for"),
        ],
        verify: Some(Verify::Command(&["cache", "verify"])),
        ..BASE.recovery
    },
    ..BASE
};

#[cfg(test)]
mod tests {
    use crate::installer::Class::{ReadOnly, Writes};
    use crate::installer::identify::assert_identified;

    #[test]
    fn identifies_npm() {
        assert_identified(&[
            ("npm ci", "npm", Writes),
            ("npm i left-pad", "npm", Writes),
            ("npm --registry http://r install", "npm", Writes),
            ("npm test", "npm", ReadOnly),
            ("npm run build", "npm", ReadOnly),
            ("npm cache verify", "npm", Writes),
            ("npx cowsay", "npm", ReadOnly),
        ]);
    }
}
