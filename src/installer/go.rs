//! Go: the subcommands that download modules (and `go clean -modcache`), where the module cache
//! is (`GOMODCACHE`, else the `go env -w` file, else the first `GOPATH` entry's `pkg/mod`, else
//! `~/go/pkg/mod`), its failure texts, and how one module's entries are removed, its path
//! escaped as the module cache spells it. A build tool, so `steady init` does not wrap it.
//!
//! Verified here against the real go (`tests/it/installers.rs`).

use super::row::{
    BASE, CacheRules, ConfigFile, DefaultDir, DirArg, DirFrom, FullClean, Installer, PackageClean,
    RecoveryRules, Verified, from,
};
use super::signature::{PackageHint, sig};
use crate::failure::Failure;

pub const GO: Installer = Installer {
    name: "go",
    verified: Verified::Here,
    programs: &["go"],
    writes: &[
        &["build"],
        &["install"],
        &["get"],
        &["test"],
        &["vet"],
        &["mod", "download"],
        &["mod", "tidy"],
        &["mod", "vendor"],
        &["work", "sync"],
    ],
    writes_flags: &["-modcache"],
    options_with_value: &["-C"],
    cache: CacheRules {
        dir_env: &[
            from("GOMODCACHE", ""),
            DirFrom {
                name: "GOPATH",
                join: "pkg/mod",
                list: true,
                after_config: true,
            },
        ],
        config_files: &[ConfigFile::Env("GOENV"), ConfigFile::UserConfig("go/env")],
        config_keys: &["GOMODCACHE", "GOPATH"],
        cwd_flags: &["-C"],
        query: &["env", "GOMODCACHE"],
        default: DefaultDir::Home("go/pkg/mod"),
        clean_full: FullClean::Command(&["clean", "-modcache"]),
        dir_arg: DirArg::Env("GOMODCACHE"),
        markers: &["cache", "cache/download"],
        ..BASE.cache
    },
    recovery: RecoveryRules {
        signatures: &[
            sig(Failure::Corruption, "checksum mismatch"),
            sig(Failure::Corruption, "SECURITY ERROR"),
            sig(Failure::Corruption, "not a valid zip file"),
            sig(Failure::Corruption, "zip: "),
            // "verifying github.com/libp2p/go-libp2p-secio@v0.0.1: unexpected ziphash: \"\"": an
            // empty .ziphash in the module cache (filecoin-project/venus#2566).
            sig(Failure::Corruption, "unexpected ziphash"),
            // "runtime: failed to create new OS thread (have 18 already; errno=11)" / "fatal
            // error: newosproc": a process limit (golang/go#15476, certbot/certbot#712,
            // melpon/wandbox#306).
            sig(Failure::Resource, "failed to create new OS thread"),
            sig(Failure::Resource, "fatal error: newosproc"),
            // "fatal error: runtime: out of memory" (muesli/beehive#175).
            sig(Failure::Resource, "fatal error: runtime: out of memory"),
            // "…/pkg/tool/linux_amd64/compile: signal: killed": the compiler was OOM-killed
            // (gravitational/teleport#387).
            sig(Failure::Resource, "/pkg/tool/…/compile: signal: killed"),
            sig(Failure::Network, "dial tcp"),
            sig(Failure::Network, "i/o timeout"),
            sig(Failure::Network, "TLS handshake timeout"),
            sig(Failure::Network, "connection refused"),
            sig(Failure::Network, "connection reset by peer"),
            sig(Failure::Deterministic, "404 Not Found"),
            sig(Failure::Deterministic, "410 Gone"),
            sig(Failure::Deterministic, "unknown revision"),
            sig(
                Failure::Deterministic,
                "no required module provides package",
            ),
            sig(
                Failure::Deterministic,
                "cannot find module providing package",
            ),
            sig(Failure::Deterministic, "go.mod file not found"),
            sig(Failure::Deterministic, "invalid version"),
            sig(Failure::Deterministic, "malformed module path"),
            sig(Failure::Deterministic, "module lookup disabled"),
        ],
        // The module path as the cache spells it (`!`-escaped capitals), which the
        // templates below take as it is.
        package_hints: &[
            PackageHint {
                after: "verifying ",
                until: &['@', ':', ' '],
            },
            PackageHint {
                after: "/cache/download/",
                until: &['@', ':', ' '],
            },
        ],
        clean_package: Some(PackageClean::Paths(&[
            "cache/download/{goesc}",
            "{goesc}@{version}",
        ])),
        ..BASE.recovery
    },
    ..BASE
};

#[cfg(test)]
mod tests {
    use crate::installer::Class::{ReadOnly, Writes};
    use crate::installer::identify::assert_identified;

    #[test]
    fn identifies_go() {
        assert_identified(&[
            ("go mod download", "go", Writes),
            ("go build ./...", "go", Writes),
            ("go clean -modcache", "go", Writes),
            ("go env GOMODCACHE", "go", ReadOnly),
            ("go version", "go", ReadOnly),
        ]);
    }
}
