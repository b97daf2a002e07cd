//! Poetry: the subcommands that write, how it chooses its cache (`--no-cache`,
//! `POETRY_CACHE_DIR`, `cache-dir` in `poetry.toml` or its user config, else
//! `~/.cache/pypoetry`), its failure texts, and why a full clean removes `cache/` and
//! `artifacts/` itself rather than run `poetry cache clear`.
//!
//! Verified here against the real Poetry (`tests/it/installers.rs`).

use super::row::{
    BASE, CacheRules, ConfigFile, DefaultDir, FullClean, Installer, Naming, RecoveryRules,
    Verified, from,
};
use super::signature::{PackageHint, sig};
use crate::failure::Failure;

pub const POETRY: Installer = Installer {
    name: "poetry",
    verified: Verified::Here,
    programs: &["poetry"],
    modules: &["poetry"],
    wrap: &["poetry"],
    writes: &[
        &["install"],
        &["add"],
        &["remove"],
        &["update"],
        &["lock"],
        &["sync"],
        &["self", "install"],
        &["self", "add"],
        &["self", "update"],
        &["cache", "clear"],
    ],
    options_with_value: &["-C", "--directory", "-P", "--project"],
    cache: CacheRules {
        off_flags: &["--no-cache"],
        dir_env: &[from("POETRY_CACHE_DIR", "")],
        config_files: &[
            ConfigFile::Env("POETRY_CONFIG_DIR"),
            ConfigFile::Project("poetry.toml"),
            ConfigFile::UserConfig("pypoetry/config.toml"),
        ],
        config_keys: &["cache-dir"],
        cwd_flags: &["-C", "--directory", "-P", "--project"],
        query: &["config", "cache-dir"],
        query_value_flags: &["-C", "--directory", "-P", "--project"],
        default: DefaultDir::UserCache("pypoetry"),
        // `poetry cache clear --all` clears only `cache/`, not the downloaded `artifacts/`;
        // and `virtualenvs/` lives here too, so the whole directory is never removed.
        clean_full: FullClean::Paths(&["cache", "artifacts"]),
        markers: &["cache", "artifacts", "virtualenvs"],
        ..BASE.cache
    },
    recovery: RecoveryRules {
        signatures: &[
            sig(Failure::Corruption, "not found in known hashes"),
            // pip run by poetry's old installer on a cached wheel: "ERROR: THESE PACKAGES DO
            // NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE." (python-poetry/poetry#7347).
            sig(Failure::Corruption, "DO NOT MATCH THE HASHES"),
            sig(Failure::Corruption, "BadZipFile"),
            sig(Failure::Corruption, "File is not a zip file"),
            sig(Failure::Network, "Connection refused"),
            // "IncompleteRead(42322026 bytes read, 155538554 more expected)"
            // (python-poetry/poetry#9592).
            sig(Failure::Network, "IncompleteRead("),
            // "[ChunkedEncodingError]" over a connection reset (python-poetry/poetry#913).
            sig(Failure::Network, "ChunkedEncodingError"),
            sig(Failure::Network, "Max retries exceeded"),
            sig(Failure::Network, "ConnectionError"),
            sig(Failure::Network, "Read timed out"),
            sig(Failure::Network, "Temporary failure in name resolution"),
            sig(Failure::Network, "All attempts to connect to"),
            sig(Failure::Deterministic, "version solving failed"),
            // "Retrieved digest for link SE-8.4.282.tar.gz(sha256:…) not in poetry.lock
            // metadata": the lock file disagrees with poetry, every time
            // (python-poetry/poetry#4538).
            sig(Failure::Deterministic, "not in poetry.lock metadata"),
            sig(
                Failure::Deterministic,
                "Could not find a matching version of package",
            ),
            sig(Failure::Deterministic, "does not exist"),
            sig(
                Failure::Deterministic,
                "Poetry could not find a pyproject.toml",
            ),
            sig(
                Failure::Deterministic,
                "pyproject.toml changed significantly",
            ),
        ],
        package_hints: &[PackageHint {
            after: "Hash for ",
            until: &[' ', '('],
        }],
        naming: Naming::Python,
        concurrency_env: Some("POETRY_INSTALLER_MAX_WORKERS"),
        ..BASE.recovery
    },
    ..BASE
};

#[cfg(test)]
mod tests {
    use crate::installer::Class::{ReadOnly, Writes};
    use crate::installer::identify::assert_identified;

    #[test]
    fn identifies_poetry() {
        assert_identified(&[
            ("poetry install", "poetry", Writes),
            ("poetry -C sub add x", "poetry", Writes),
            ("poetry run pytest", "poetry", ReadOnly),
        ]);
    }
}
