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
    Ask, BASE, CacheRules, DefaultDir, DirFrom, FullClean, Installer, RecoveryRules, Verified, from,
};
use super::signature::{Signature, sig};
use crate::failure::Failure;

/// conda's signatures, shared by mamba and micromamba, which print conda's exceptions (mamba
/// 1 runs conda's Python code) and libmamba's own lines.
const CONDA_SIGNATURES: &[Signature] = &[
    sig(Failure::Corruption, "appears to be corrupted"),
    // conda 4.6's name of ChecksumMismatchError: "MD5MismatchError: Conda detected a mismatch
    // between the expected content and downloaded content" (conda/conda#8721).
    sig(Failure::Corruption, "MD5MismatchError"),
    // "InvalidArchiveError("Error with archive …pkgs\networkx-2.8.4-….conda.  You probably
    // need to delete and re-download or re-create this file." (oobabooga/textgen#1356).
    sig(Failure::Corruption, "InvalidArchiveError"),
    // libmamba: "ERROR   Error when extracting package: …/pkgs/libiconv-1.16-h5Extraction
    // error" (mamba-org/mamba#779).
    sig(Failure::Corruption, "Error when extracting package"),
    sig(Failure::Corruption, "ChecksumMismatchError"),
    sig(Failure::Corruption, "CondaVerificationError"),
    sig(Failure::Network, "CondaHTTPError"),
    sig(Failure::Network, "CONNECTION FAILED"),
    sig(Failure::Network, "Connection refused"),
    sig(Failure::Network, "Could not resolve host"),
    // urllib3 under conda: "('Connection broken: IncompleteRead(92494145 bytes read, 474220137
    // more expected)', …)" (CSU-KangHu/HiTE#17).
    sig(Failure::Network, "IncompleteRead("),
    // libmamba's curl errors: "Download error (28) Timeout was reached [https://…]"
    // (mamba-org/mamba#3454, txie-93/cdvae#2) and "Download error (56) Failure when receiving
    // data from the peer" (dptech-corp/Uni-Dock2#1).
    sig(Failure::Network, "Download error (28)"),
    sig(Failure::Network, "Download error (56)"),
    // curl's low-speed limit: "Operation too slow. Less than 30 bytes/sec transferred the last
    // 60 seconds" (mamba-org/mamba#2639).
    sig(Failure::Network, "Operation too slow. Less than"),
    // "Multi-download failed. Reason: Transfer finalized, status: 403 [https://binstar-cio-
    // packages-prod.s3.amazonaws.com/…]": a signed S3 URL that expired during a slow
    // download, fine on the next try (KoboldAI/KoboldAI-Client#142). Only 403: a 404 there is
    // a missing package.
    sig(Failure::Network, "Transfer finalized, status: 403"),
    // "error    libmamba Could not set lock (Resource temporarily unavailable)" / "Cannot lock
    // '…/.mamba/proc'": another micromamba holds the fcntl lock (mamba-org/mamba#1993,
    // mamba-org/mamba#3202); installer's own, so it outranks the shared EAGAIN text.
    sig(
        Failure::InstallerLock,
        "Could not set lock (Resource temporarily unavailable)",
    ),
    // "error Could not set lock (Input/output error)": the filesystem of the package cache
    // cannot lock (a cluster filesystem, mamba-org/mamba#1515): move the cache, do not retry.
    sig(
        Failure::LockUnsupported,
        "Could not set lock (Input/output error)",
    ),
    sig(Failure::InstallerLock, "LockError"),
    sig(Failure::Deterministic, "PackagesNotFoundError"),
    sig(Failure::Deterministic, "UnsatisfiableError"),
    sig(Failure::Deterministic, "could not be found"),
    sig(Failure::Deterministic, "nothing provides"),
    // "ClobberError: This transaction has incompatible packages due to a shared path." and
    // "ClobberError: The package '…' cannot be installed due to a path collision": two
    // packages ship one file, the same on every retry (conda/conda#7967,
    // bxlab/metaWRAP#42).
    sig(Failure::Deterministic, "ClobberError"),
    // micromamba 2's solver: "error    libmamba Could not solve for environment specs"
    // (mamba-org/mamba#3888, geocompx/docker#29).
    sig(
        Failure::Deterministic,
        "Could not solve for environment specs",
    ),
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
    recovery: RecoveryRules {
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
