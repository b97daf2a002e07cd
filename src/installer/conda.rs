//! conda, mamba and micromamba: the subcommands that write, where the package cache is
//! (`CONDA_PKGS_DIRS`, first entry; else `<root prefix>/pkgs`, the root prefix coming from
//! conda itself or, for the mambas, `MAMBA_ROOT_PREFIX` or mamba 2.0's default), and their
//! failure texts. One file because mamba and micromamba are conda's row under another name:
//! same subcommands, cache layout, clean command and failures; only the root prefix rules
//! differ, and those rows say only that.
//!
//! Not verified here: taken from conda's and mamba's sources and documentation, listed in
//! `CONDA_SOURCES` and `MAMBA_SOURCES` (`steady doctor` prints them).

use super::row::{
    Ask, BASE, CacheRules, DefaultDir, DirFrom, FullClean, Installer, Recovery, Verified, from,
};
use super::signature::{Signature, sig};
use crate::failure::Failure;

const CONDA_SIGNATURES: &[Signature] = &[
    sig(Failure::Corruption, "appears to be corrupted"),
    sig(Failure::Corruption, "ChecksumMismatchError"),
    sig(Failure::Corruption, "CondaVerificationError"),
    sig(Failure::Network, "CondaHTTPError"),
    sig(Failure::Network, "CONNECTION FAILED"),
    sig(Failure::Network, "Connection refused"),
    sig(Failure::Network, "Could not resolve host"),
    sig(Failure::InstallerLock, "LockError"),
    sig(Failure::Deterministic, "PackagesNotFoundError"),
    sig(Failure::Deterministic, "UnsatisfiableError"),
    sig(Failure::Deterministic, "could not be found"),
    sig(Failure::Deterministic, "nothing provides"),
];

const CONDA_WRITES: &[&[&str]] = &[
    &["install"],
    &["create"],
    &["update"],
    &["upgrade"],
    &["remove"],
    &["uninstall"],
    &["env", "create"],
    &["env", "update"],
    &["env", "remove"],
    &["clean"],
];

const CONDA_SOURCES: &[&str] = &[
    "conda/conda conda/base/context.py (pkgs_dirs, CONDA_PKGS_DIRS)",
    "conda/conda conda/cli/main_clean.py (conda clean --all)",
    "conda/conda conda/core/path_actions.py, conda/exceptions.py (SafetyError, ChecksumMismatchError, CondaHTTPError)",
    "conda docs user-guide/configuration/settings.rst (pkgs_dirs)",
];

/// conda's list of package caches: the first entry is the one that is written.
const CONDA_PKGS_DIRS: DirFrom = DirFrom {
    name: "CONDA_PKGS_DIRS",
    join: "",
    list: true,
    after_config: false,
};

pub const CONDA: Installer = Installer {
    name: "conda",
    verified: Verified::FromDocs(CONDA_SOURCES),
    programs: &["conda"],
    modules: &["conda"],
    wrap: &["conda"],
    writes: CONDA_WRITES,
    cache: CacheRules {
        dir_env: &[CONDA_PKGS_DIRS],
        // The package cache is `<root prefix>/pkgs`, and only conda knows its root prefix.
        query: &["info", "--base"],
        query_join: "pkgs",
        ask: Ask::Always,
        default: DefaultDir::Home(".conda/pkgs"),
        clean_full: FullClean::Command(&["clean", "--all", "--yes"]),
        markers: &["urls.txt", "cache", "urls"],
        ..BASE.cache
    },
    recovery: Recovery {
        signatures: CONDA_SIGNATURES,
        ..BASE.recovery
    },
    ..BASE
};

const MAMBA_SOURCES: &[&str] = &[
    "mamba-org/mamba libmamba/src/api/configuration.cpp (root_prefix, pkgs_dirs, use_lockfiles)",
    "mamba.readthedocs.io micromamba-installation (MAMBA_ROOT_PREFIX, default ~/.local/share/mamba since 2.0)",
    "mamba-org/mamba#3225 (2.0 root prefix change)",
];

pub const MAMBA: Installer = Installer {
    name: "mamba",
    verified: Verified::FromDocs(MAMBA_SOURCES),
    programs: &["mamba"],
    wrap: &["mamba"],
    cache: CacheRules {
        dir_env: &[CONDA_PKGS_DIRS, from("MAMBA_ROOT_PREFIX", "pkgs")],
        query: &["info", "--base"],
        ..CONDA.cache
    },
    ..CONDA
};

pub const MICROMAMBA: Installer = Installer {
    name: "micromamba",
    verified: Verified::FromDocs(MAMBA_SOURCES),
    programs: &["micromamba"],
    wrap: &["micromamba"],
    cache: CacheRules {
        dir_env: &[CONDA_PKGS_DIRS, from("MAMBA_ROOT_PREFIX", "pkgs")],
        // `micromamba info` prints the root prefix among other lines, not alone: the rule
        // (2.0's default root prefix) is used instead of asking.
        query: &[],
        ask: Ask::WhenConfigSays,
        default: DefaultDir::UserData("mamba/pkgs"),
        clean_full: FullClean::Command(&["clean", "--all", "--yes"]),
        ..CONDA.cache
    },
    ..CONDA
};

#[cfg(test)]
mod tests {
    use crate::installer::Class::{ReadOnly, Writes};
    use crate::installer::identify::assert_identified;

    #[test]
    fn identifies_conda_and_the_mambas() {
        assert_identified(&[
            ("conda install numpy", "conda", Writes),
            ("conda env create -f e.yml", "conda", Writes),
            ("conda list", "conda", ReadOnly),
            ("mamba create -n x", "mamba", Writes),
            ("micromamba install x", "micromamba", Writes),
        ]);
    }
}
