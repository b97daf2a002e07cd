//! uv (astral-sh/uv): its entry points (`uv`, `python -m uv`, and `uvx`, which only runs
//! tools), the subcommands that write its cache or an environment, how it chooses its cache
//! (`--no-cache`, `--cache-dir`, `UV_CACHE_DIR`, `cache-dir` in `uv.toml` or `pyproject.toml`,
//! else `~/.cache/uv`), its failure texts, that steady checks its `archive-v0` entries itself,
//! and how a package installed from a damaged entry is reinstalled (`--reinstall-package`).
//!
//! Verified here against the real uv (`tests/it/installers.rs`).

use super::row::{
    BASE, CacheRules, ConfigFile, DefaultDir, DirArg, FullClean, Installer, Layout, Naming,
    PackageClean, RecoveryRules, Verified, Verify, from,
};
use super::signature::{PackageHint, sig};
use crate::failure::Failure;

/// Characters that end a Python package name in uv's messages (a version, a marker, a quote).
const PY_UNTIL: &[char] = &['=', ')', ' ', '<', '>', '~', '!', '@', '`'];

pub const UV: Installer = Installer {
    name: "uv",
    verified: Verified::Here,
    programs: &["uv"],
    run_launchers: &["uvx"],
    modules: &["uv"],
    wrap: &["uv"],
    writes: &[
        &["pip", "install"],
        &["pip", "sync"],
        &["pip", "uninstall"],
        &["pip", "compile"],
        &["sync"],
        &["add"],
        &["remove"],
        &["lock"],
        &["export"],
        &["tree"],
        &["venv"],
        &["build"],
        &["tool", "install"],
        &["tool", "upgrade"],
        &["tool", "uninstall"],
        &["python", "install"],
        &["python", "uninstall"],
        &["cache", "clean"],
        &["cache", "prune"],
    ],
    options_with_value: &[
        "--cache-dir",
        "--directory",
        "--project",
        "--config-file",
        "--color",
        "--python-preference",
        "--allow-insecure-host",
    ],
    cache: CacheRules {
        off_flags: &["--no-cache", "-n", "--no-cache-dir"],
        off_env: &["UV_NO_CACHE"],
        dir_flags: &[from("--cache-dir", "")],
        dir_env: &[from("UV_CACHE_DIR", "")],
        no_config_flags: &["--no-config"],
        no_config_env: "UV_NO_CONFIG",
        config_files: &[
            ConfigFile::Env("UV_CONFIG_FILE"),
            ConfigFile::Project("uv.toml"),
            ConfigFile::Project("pyproject.toml"),
            ConfigFile::UserConfig("uv/uv.toml"),
            ConfigFile::Absolute("/etc/xdg/uv/uv.toml"),
            ConfigFile::Absolute("/etc/uv/uv.toml"),
        ],
        config_keys: &["cache-dir"],
        cwd_flags: &["--directory", "--project"],
        query: &["cache", "dir"],
        query_value_flags: &["--config-file", "--directory", "--project"],
        query_flags: &["--no-config"],
        default: DefaultDir::UserCache("uv"),
        clean_full: FullClean::Command(&["cache", "clean"]),
        dir_arg: DirArg::Flag("--cache-dir"),
        markers: &[
            "archive-v*",
            "wheels-v*",
            "simple-v*",
            "sdists-v*",
            "interpreter-v*",
            "CACHEDIR.TAG",
        ],
        ..BASE.cache
    },
    recovery: RecoveryRules {
        signatures: &[
            sig(
                Failure::Corruption,
                "Failed to read from the distribution cache",
            ),
            sig(Failure::Corruption, "Failed to deserialize cache entry"),
            sig(Failure::Corruption, "Reading from cache archive failed"),
            sig(Failure::Corruption, "Cache deserialization failed"),
            sig(Failure::Corruption, "The wheel is invalid"),
            sig(
                Failure::Corruption,
                "Run `uv cache clean` to clear the cache",
            ),
            sig(
                Failure::Corruption,
                "does not appear to be a Python project",
            ),
            sig(Failure::Corruption, "Bad CRC"),
            sig(Failure::Corruption, "Invalid zip file structure"),
            // An outer line: "Failed to extract archive: ….whl" / "I/O operation failed during
            // extraction" / "Failed to download distribution due to network timeout" is a
            // timeout (astral-sh/uv#15728), so the inner cause decides.
            sig(Failure::Corruption, "Failed to extract archive").wrapper(),
            // "Caused by: Failed to extract source distribution / Caused by: unexpected
            // BufError": a damaged download, the retry works (astral-sh/uv#1710).
            sig(Failure::Corruption, "unexpected BufError"),
            sig(Failure::Corruption, "/archive-v0/"),
            sig(Failure::Corruption, "Hash mismatch for"),
            sig(Failure::Network, "Request failed after"),
            sig(Failure::Network, "error sending request for url"),
            sig(Failure::Network, "client error (Connect)"),
            sig(Failure::Network, "client error (SendRequest)"),
            sig(
                Failure::Network,
                "connection closed before message completed",
            ),
            sig(Failure::Network, "operation timed out"),
            sig(Failure::Network, "error decoding response body"),
            sig(Failure::Network, "request or response body error"),
            sig(Failure::Network, "HTTP status server error"),
            sig(Failure::Network, "due to network timeout"),
            sig(Failure::Network, "dns error"),
            sig(Failure::InstallerLock, "when waiting for lock on"),
            // "The process cannot access the file because another process has locked a portion
            // of the file. (os error 33)": another uv on the same cache (astral-sh/uv#2810).
            sig(
                Failure::InstallerLock,
                "another process has locked a portion of the file",
            ),
            // The cache's filesystem cannot lock: "failed to lock `~/.cache/uv/.lock`: Unknown
            // error 524 (os error 524)" (NFS, Cray DVS; NERSC/interactEM#532), "Could not
            // acquire lock for `.local/share/uv/python` at `…/.lock`: Function not implemented
            // (os error 38)" (flock disabled on a cluster, astral-sh/uv#9050), "failed to lock
            // `…/git-v0/locks/…`: Bad file descriptor (os error 9)" (uv 0.10.3 on NFSv4,
            // astral-sh/uv#18061). A local UV_CACHE_DIR fixes each; a retry none.
            sig(Failure::LockUnsupported, "failed to lock …(os error 524)"),
            sig(
                Failure::LockUnsupported,
                "lock …: Function not implemented (os error 38)",
            ),
            sig(
                Failure::LockUnsupported,
                "failed to lock …: Bad file descriptor (os error 9)",
            ),
            sig(Failure::Resource, "ThreadPoolBuildError"),
            sig(Failure::Resource, "failed to initialize global rayon pool"),
            sig(Failure::Resource, "Failed to start compilation worker"),
            sig(Failure::Resource, "No file descriptors available"),
            sig(
                Failure::Deterministic,
                "No solution found when resolving dependencies",
            ),
            sig(
                Failure::Deterministic,
                "we can conclude that your requirements are unsatisfiable",
            ),
            sig(Failure::Deterministic, "error: unexpected argument"),
            sig(Failure::Deterministic, "error: invalid value"),
            sig(Failure::Deterministic, "error: File not found"),
            sig(Failure::Deterministic, "Failed to parse"),
            sig(Failure::Deterministic, "No virtual environment found"),
            sig(Failure::Deterministic, "No interpreter found"),
            sig(Failure::Deterministic, "is not a valid package name"),
        ],
        package_hints: &[
            PackageHint {
                after: ".whl (",
                until: PY_UNTIL,
            },
            PackageHint {
                after: "Failed to download `",
                until: PY_UNTIL,
            },
            PackageHint {
                after: "Failed to download and build `",
                until: PY_UNTIL,
            },
            PackageHint {
                after: "Failed to build `",
                until: PY_UNTIL,
            },
            PackageHint {
                after: "the source distribution for `",
                until: &['=', '`', ' '],
            },
        ],
        naming: Naming::Python,
        clean_package: Some(PackageClean::Command(&["cache", "clean"])),
        verify: Some(Verify::Layout(Layout::UvArchive)),
        reinstall_flag: Some("--reinstall-package"),
        reinstall_in: &[&["pip", "install"], &["pip", "sync"], &["sync"], &["add"]],
        concurrency_env: Some("UV_CONCURRENT_INSTALLS"),
        lock_wait: &[
            // uv-fs `LockedFile` (crates/uv-fs/src/locked_file.rs), before it blocks in
            // flock: "warning: Waiting to acquire lock for …/reportlab/3.6.13 (lockfile:
            // …/.lock)" as quoted in astral-sh/uv#10286 (older uv); newer uv logs it with -v.
            "Waiting to acquire lock for",
            // `uv cache clean` / `prune` while another uv uses the cache (crates/uv/src/
            // commands/cache_clean.rs); verified here with uv 0.13.
            "Cache is currently in-use, waiting for other uv processes to finish",
        ],
    },
    ..BASE
};

#[cfg(test)]
mod tests {
    use crate::installer::Class::{ReadOnly, Writes};
    use crate::installer::identify::identified;

    #[test]
    fn identifies_uv() {
        let cases = [
            ("uv pip install x", Some(("uv", Writes, 1))),
            ("uv pip sync req.txt", Some(("uv", Writes, 1))),
            ("/usr/local/bin/uv sync", Some(("uv", Writes, 1))),
            ("uv --cache-dir /c add x", Some(("uv", Writes, 1))),
            ("uv --directory sub sync", Some(("uv", Writes, 1))),
            ("uv tool install ruff", Some(("uv", Writes, 1))),
            ("uv venv", Some(("uv", Writes, 1))),
            ("uv lock", Some(("uv", Writes, 1))),
            ("uv run pytest", Some(("uv", ReadOnly, 1))),
            ("uv tool run ruff", Some(("uv", ReadOnly, 1))),
            ("uv --version", Some(("uv", ReadOnly, 1))),
            ("uv pip list", Some(("uv", ReadOnly, 1))),
            ("uv cache dir", Some(("uv", ReadOnly, 1))),
            ("uvx ruff", Some(("uv", ReadOnly, 1))),
            ("python -m uv pip install x", Some(("uv", Writes, 3))),
        ];
        for (cmd, want) in cases {
            assert_eq!(identified(cmd), want, "{cmd}");
        }
    }
}
