//! Yarn 1 ("classic") and Yarn 2+ ("berry"): the same program names, told apart by the project
//! (`.yarnrc.yml`, or `"packageManager": "yarn@2…"` in `package.json`); the subcommands that
//! write (a bare `yarn` installs); where each keeps its cache (yarn 1: `--cache-folder`,
//! `YARN_CACHE_FOLDER`, else asked; berry: always asked, its config decides); their failure
//! texts. One file because the two rows share their program names and subcommands, and the
//! berry row must come first in `INSTALLERS`.
//!
//! Verified here against the real yarn 1 and yarn berry (`tests/it/installers.rs`).

use super::row::{
    Ask, BASE, CacheRules, DefaultDir, DirArg, FullClean, Installer, PackageClean, ProjectMarker,
    RecoveryRules, Verified, from,
};
use super::signature::{PackageHint, sig};
use crate::failure::Failure;

const YARN_WRITES: &[&[&str]] = &[
    &["install"],
    &["add"],
    &["upgrade"],
    &["up"],
    &["remove"],
    &["import"],
    &["dedupe"],
    &["link"],
    &["unlink"],
    &["global", "add"],
    &["global", "remove"],
    &["global", "upgrade"],
    &["cache", "clean"],
];

pub const YARN_BERRY: Installer = Installer {
    name: "yarn-berry",
    verified: Verified::Here,
    programs: &["yarn", "yarnpkg"],
    project_markers: &[
        ProjectMarker::File(".yarnrc.yml"),
        ProjectMarker::PackageManager("yarn", 2),
    ],
    // `yarn` is wrapped once, through the yarn 1 row: the function is the same.
    wrap: &[],
    writes: YARN_WRITES,
    bare_writes: true,
    options_with_value: &["--cwd"],
    cache: CacheRules {
        // YARN_CACHE_FOLDER counts only with enableGlobalCache false, YARN_GLOBAL_FOLDER
        // only with it true, and `.yarnrc.yml` files up the tree can say either: ask yarn.
        dir_env: &[],
        cwd_flags: &["--cwd"],
        query: &["config", "get", "cacheFolder"],
        ask: Ask::Always,
        query_value_flags: &["--cwd"],
        default: DefaultDir::Home(".yarn/berry/cache"),
        clean_full: FullClean::Command(&["cache", "clean", "--all"]),
        markers: &[".gitignore", "*.zip"],
        ..BASE.cache
    },
    recovery: RecoveryRules {
        signatures: &[
            sig(Failure::Corruption, "YN0018"),
            sig(Failure::Corruption, "doesn't match the local checksum"),
            sig(Failure::Corruption, "Invalid tar header"),
            sig(Failure::Network, "YN0035"),
            sig(Failure::Network, "ECONNREFUSED"),
            sig(Failure::Network, "ECONNRESET"),
            sig(Failure::Network, "ETIMEDOUT"),
            sig(Failure::Network, "ENOTFOUND"),
            sig(Failure::Network, "RequestError"),
            sig(Failure::Deterministic, "YN0082"),
            sig(Failure::Deterministic, "YN0016"),
            sig(Failure::Deterministic, "No candidates found"),
            sig(Failure::Deterministic, "Response Code: 404"),
            sig(
                Failure::Deterministic,
                "This command can only be run from within a workspace",
            ),
        ],
        ..BASE.recovery
    },
    ..BASE
};

pub const YARN: Installer = Installer {
    name: "yarn",
    verified: Verified::Here,
    programs: &["yarn", "yarnpkg"],
    wrap: &["yarn", "yarnpkg"],
    writes: YARN_WRITES,
    bare_writes: true,
    options_with_value: &[
        "--cache-folder",
        "--preferred-cache-folder",
        "--cwd",
        "--modules-folder",
        "--registry",
        "--mutex",
        "--network-timeout",
        "--network-concurrency",
    ],
    cache: CacheRules {
        dir_flags: &[from("--cache-folder", "v6")],
        dir_env: &[from("YARN_CACHE_FOLDER", "v6")],
        cwd_flags: &["--cwd"],
        query: &["cache", "dir"],
        // As root yarn 1 uses `/usr/local/share/.cache/yarn` (unless under fakeroot), and it
        // falls back to `$TMPDIR/.yarn-cache-<uid>` when that is not writable: ask it.
        ask: Ask::Always,
        query_value_flags: &["--cwd", "--preferred-cache-folder"],
        default: DefaultDir::UserCache("yarn/v6"),
        clean_full: FullClean::Command(&["cache", "clean"]),
        dir_arg: DirArg::Flag("--cache-folder"),
        markers: &[".tmp", "npm-*", ".yarn-tarball.tgz"],
        ..BASE.cache
    },
    recovery: RecoveryRules {
        signatures: &[
            sig(
                Failure::Corruption,
                "Incorrect integrity when fetching from the cache",
            ),
            sig(
                Failure::Corruption,
                "Incorrect hash when fetching from the cache",
            ),
            sig(Failure::Corruption, "appears to be corrupt"),
            sig(Failure::Corruption, "Integrity check failed for"),
            sig(Failure::Network, "trouble with your network connection"),
            sig(Failure::Network, "ESOCKETTIMEDOUT"),
            // A 5xx from the registry, in the quoted error (so its quotes escaped) or in
            // yarn-error.log: `error An unexpected error occurred: "https://registry.yarnpkg.com/
            // he/-/he-1.2.0.tgz: Request failed \"503 Service Unavailable\""` (yarnpkg/yarn#7745).
            sig(Failure::Network, "Request failed …\"5"),
            sig(Failure::Network, "ECONNREFUSED"),
            sig(Failure::Network, "ECONNRESET"),
            sig(Failure::Network, "ETIMEDOUT"),
            sig(Failure::Network, "ENOTFOUND"),
            sig(Failure::Deterministic, "Couldn't find package"),
            sig(Failure::Deterministic, "Couldn't find any versions for"),
            sig(Failure::Deterministic, "Request failed \"404 Not Found\""),
            sig(Failure::Deterministic, "Your lockfile needs to be updated"),
        ],
        package_hints: &[PackageHint {
            after: "fetching from the cache for \"",
            until: &['"', '@'],
        }],
        clean_package: Some(PackageClean::Command(&["cache", "clean"])),
        ..BASE.recovery
    },
    ..BASE
};

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::path::Path;

    use crate::installer::identify;

    #[test]
    fn yarn_rows_are_told_apart_by_the_project() {
        let dir = tempfile::tempdir().unwrap();
        let classic = dir.path().join("classic");
        let berry = dir.path().join("berry");
        let pinned = dir.path().join("pinned");
        let nested = berry.join("packages/app");
        for d in [&classic, &nested, &pinned] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(classic.join("package.json"), r#"{"name": "c"}"#).unwrap();
        std::fs::write(berry.join(".yarnrc.yml"), "nodeLinker: node-modules\n").unwrap();
        std::fs::write(
            pinned.join("package.json"),
            r#"{"packageManager": "yarn@4.1.0+sha512.abc"}"#,
        )
        .unwrap();
        let which = |d: &Path| {
            let a = [
                OsString::from("env"),
                OsString::from("-C"),
                d.into(),
                "yarn".into(),
                "install".into(),
            ];
            identify(&a, None).map(|i| i.installer.name)
        };
        assert_eq!(which(&classic), Some("yarn"));
        assert_eq!(which(&berry), Some("yarn-berry"));
        assert_eq!(
            which(&nested),
            Some("yarn-berry"),
            "a workspace below .yarnrc.yml"
        );
        assert_eq!(which(&pinned), Some("yarn-berry"));
    }
}
