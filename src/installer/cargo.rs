//! Cargo: the subcommands that fetch crates (builds and tests too), the `+toolchain` word it
//! skips, where its registry caches are (`CARGO_HOME`, else `~/.cargo`), its failure texts,
//! and which entries steady removes itself, there being no stable clean command: the registry
//! and git caches, never `bin/` nor the user's config. A build tool, so `steady init` does
//! not wrap it.
//!
//! Verified here against the real cargo (`tests/it/installers.rs`).

use super::row::{
    BASE, CacheRules, DefaultDir, FullClean, Installer, PackageClean, RecoveryRules, Verified, from,
};
use super::signature::{PackageHint, sig};
use crate::failure::Failure;

pub const CARGO: Installer = Installer {
    name: "cargo",
    verified: Verified::Here,
    programs: &["cargo"],
    writes: &[
        &["build"],
        &["b"],
        &["check"],
        &["c"],
        &["test"],
        &["t"],
        &["bench"],
        &["doc"],
        &["d"],
        &["fetch"],
        &["install"],
        &["update"],
        &["generate-lockfile"],
        &["vendor"],
        &["add"],
        &["clippy"],
        &["fix"],
        &["package"],
        &["publish"],
    ],
    options_with_value: &["--config", "-Z", "-C", "--color"],
    skip_word_prefixes: &["+"],
    cache: CacheRules {
        dir_env: &[from("CARGO_HOME", "")],
        default: DefaultDir::Home(".cargo"),
        // No stable command clears the registry caches (`cargo clean gc` is unstable);
        // CARGO_HOME also holds `bin/` and the user's config, which are never touched.
        clean_full: FullClean::Paths(&[
            "registry/cache",
            "registry/src",
            "registry/index",
            "git/checkouts",
            "git/db",
        ]),
        markers: &[
            "registry",
            "git",
            ".package-cache",
            ".crates.toml",
            ".global-cache",
        ],
        ..BASE.cache
    },
    recovery: RecoveryRules {
        signatures: &[
            // Old cargo capitalised it: "Failed to unpack package `rustc-serialize v0.3.8`"
            // (rust-lang-deprecated/rustc-serialize#89); now "failed to unpack package
            // `unicase v1.0.1`" (servo/servo#10051).
            sig(Failure::Corruption, "failed to unpack package").any_case(),
            sig(Failure::Corruption, "failed to iterate over archive"),
            sig(Failure::Corruption, "failed to verify the checksum of"),
            sig(Failure::Network, "spurious network error"),
            sig(Failure::Network, "failed to download from"),
            sig(Failure::Network, "Could not connect to server"),
            sig(Failure::Network, "Couldn't connect to server"),
            sig(Failure::Network, "[28] Timeout"),
            sig(Failure::Network, "[6] Could not resolve"),
            sig(Failure::Network, "[6] Couldn't resolve"),
            sig(Failure::Resource, "failed to spawn thread"),
            // "process didn't exit successfully: `rustc --crate-name lumen …` (signal: 9,
            // SIGKILL: kill)": cargo did not send it, the kernel's OOM killer did
            // (naim94a/lumen#28, hyperium/http#341, bbqsrc/cargo-ndk#129). Outranks the
            // "could not compile" wrapper above it.
            sig(Failure::Resource, "(signal: 9, SIGKILL: kill)"),
            // "Blocking waiting for file lock on package cache": cargo waits on its own lock
            // (rust-lang/cargo#9742, rust-lang/cargo#2566, cargo-bins/cargo-binstall#694). A
            // wrapper: it is an earlier line of many failures (rust-lang/crates.io#1778); as the
            // last line of a stalled cargo it makes the stall a lock wait (`classify`).
            sig(Failure::InstallerLock, "Blocking waiting for file lock").wrapper(),
            sig(Failure::Resource, "failed to acquire jobserver token"),
            sig(Failure::Deterministic, "no matching package named"),
            sig(Failure::Deterministic, "not found in registry"),
            sig(
                Failure::Deterministic,
                "failed to select a version for the requirement",
            ),
            sig(Failure::Deterministic, "could not find `Cargo.toml`"),
            sig(Failure::Deterministic, "failed to parse manifest"),
            // "error: could not compile `lumen`" (old cargo: "Could not compile `http`.") says
            // only that rustc failed: a wrapper, the cause below it decides.
            sig(Failure::Deterministic, "could not compile")
                .any_case()
                .wrapper(),
            sig(Failure::Deterministic, "no such command"),
            sig(Failure::Deterministic, "unexpected argument"),
        ],
        package_hints: &[
            PackageHint {
                after: "failed to unpack package `",
                until: &[' ', '`'],
            },
            PackageHint {
                after: "failed to verify the checksum of `",
                until: &[' ', '`'],
            },
        ],
        // A corrupted `.crate` must go with its unpacked source, or cargo keeps using either.
        clean_package: Some(PackageClean::Paths(&[
            "registry/cache/*/{name}-{version}.crate",
            "registry/src/*/{name}-{version}",
        ])),
        concurrency_env: Some("CARGO_BUILD_JOBS"),
        // cargo's `Filesystem::open` / `CacheLocker` (src/cargo/util/flock.rs): the status
        // line "    Blocking waiting for file lock on package cache" (also "on build
        // directory", "on artifact directory").
        lock_wait: &["Blocking waiting for file lock on"],
        ..BASE.recovery
    },
    ..BASE
};

#[cfg(test)]
mod tests {
    use crate::installer::Class::{ReadOnly, Writes};
    use crate::installer::identify::assert_identified;

    #[test]
    fn identifies_cargo() {
        assert_identified(&[
            ("cargo build --release", "cargo", Writes),
            ("cargo +nightly fetch", "cargo", Writes),
            ("cargo -C sub test", "cargo", Writes),
            ("cargo run", "cargo", ReadOnly),
            ("cargo --version", "cargo", ReadOnly),
        ]);
    }
}
