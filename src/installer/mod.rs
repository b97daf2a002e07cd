//! What steady knows about each installer, as data: one `Installer` row per installer (how it
//! is invoked, which subcommands write its cache or an environment, where its cache lives and
//! how to clear it, how it fails, whether steady or the installer itself does the locking, and
//! whether the row was verified against the real installer), and `identify`, which reads a
//! command line against the table, seeing through wrappers such as `env VAR=… cmd`, `nice`,
//! `taskset`, `chrt` and a qemu-user emulator.
//!
//! Layout: `row.rs` is the shape of a row and `BASE`, the one place its defaults are written;
//! each installer has its own file (`uv.rs`, `npm.rs`, …) holding its row, with only what
//! differs from `BASE`, and its tests; `identify.rs` reads a command line, `args.rs` an
//! installer's own arguments; `locate.rs` finds the cache a command uses; `signature.rs` is
//! the vocabulary of failure texts.
//!
//! Adding an installer: a new file `<name>.rs` holding its `pub const` row (start from a similar
//! installer's file), declared and re-exported below (`mod <name>;`, `pub use <name>::<ROW>;`),
//! and one line in `INSTALLERS`, placed where `identify` should try it.

mod args;
#[cfg(test)]
pub mod corpus;
mod identify;
pub mod locate;
mod row;
mod signature;

pub use args::{flag_value, has_flag};
pub use identify::{Class, Invocation, identify};
pub use row::{
    Ask, CacheRules, ConfigFile, DefaultDir, DirArg, DirFrom, FullClean, Installer, Layout, Naming,
    PackageClean, Verified, Verify,
};
pub use signature::{Level, PackageHint, Signature, normalize, sig};

// The installers, one file each, and their rows by name.
mod apt;
mod bun;
mod bundler;
mod cargo;
mod composer;
mod conda;
mod dpkg;
mod gem;
mod go;
mod npm;
mod pdm;
mod pip;
mod pipx;
mod pnpm;
mod poetry;
mod uv;
mod yarn;

pub use apt::APT;
pub use bun::BUN;
pub use bundler::BUNDLER;
pub use cargo::CARGO;
pub use composer::COMPOSER;
pub use conda::{CONDA, MAMBA, MICROMAMBA};
pub use dpkg::DPKG;
pub use gem::GEM;
pub use go::GO;
pub use npm::NPM;
pub use pdm::PDM;
pub use pip::PIP;
pub use pipx::PIPX;
pub use pnpm::PNPM;
pub use poetry::POETRY;
pub use uv::UV;
pub use yarn::{YARN, YARN_BERRY};

/// Every installer steady knows, in the order `identify` tries them (a row with project
/// markers before the row it is told apart from).
pub const INSTALLERS: &[&Installer] = &[
    &UV,
    &PIP,
    &PIPX,
    &POETRY,
    &PDM,
    &CONDA,
    &MAMBA,
    &MICROMAMBA,
    &NPM,
    &PNPM,
    &YARN_BERRY,
    &YARN,
    &BUN,
    &CARGO,
    &GO,
    &GEM,
    &BUNDLER,
    &APT,
    &DPKG,
    &COMPOSER,
];

/// The row called `name` (for `--installer NAME`).
pub fn by_name(name: &str) -> Option<&'static Installer> {
    INSTALLERS.iter().copied().find(|i| i.name == name)
}

/// The commands wrapped when `--wrap` is not given: every installer's own entry points, from
/// the installer table, so a new installer is wrapped as soon as it is known.
pub fn default_wrap() -> Vec<String> {
    INSTALLERS
        .iter()
        .flat_map(|i| i.wrap.iter().map(|&n| n.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_complete() {
        let mut names = Vec::new();
        for i in INSTALLERS {
            assert!(!i.name.is_empty(), "a row has no name");
            assert!(!names.contains(&i.name), "{} twice", i.name);
            names.push(i.name);
            assert!(!i.programs.is_empty(), "{}", i.name);
            assert!(
                !i.recovery.signatures.is_empty(),
                "{} has no signatures",
                i.name
            );
            if let Verified::FromDocs(sources) = i.verified {
                assert!(!sources.is_empty(), "{} names no sources", i.name);
            }
            let writes = !i.writes.is_empty() || !i.writes_flags.is_empty();
            assert!(writes, "{} has no writing subcommand", i.name);
            assert!(
                !matches!(i.cache.ask, Ask::Always) || !i.cache.query.is_empty(),
                "{} asks with no query",
                i.name
            );
        }
        for build_tool in ["cargo", "go", "apt-get", "dpkg"] {
            assert!(
                !INSTALLERS.iter().any(|i| i.wrap.contains(&build_tool)),
                "{build_tool} must not be wrapped"
            );
        }
    }

    /// Every signature of every row matches a line of at least one corpus file of an installer
    /// that shares it (`tests/fixtures/field/`): a signature nobody has seen a real message
    /// for cannot be added. The ones older than the corpus are checked by the real installers
    /// instead (`tests/it/installers.rs`, `recovery::classify` tests) and listed in
    /// `PRE_CORPUS`, which may only shrink.
    #[test]
    fn every_signature_is_exercised_by_the_corpus() {
        let all = corpus::load();
        let mut unseen = Vec::new();
        for row in INSTALLERS {
            for s in row.recovery.signatures {
                let shares = |name: &str| {
                    by_name(name).is_some_and(|r| {
                        r.recovery
                            .signatures
                            .iter()
                            .any(|o| o.text == s.text && o.failure == s.failure)
                    })
                };
                let seen = all
                    .iter()
                    .filter(|e| shares(&e.installer))
                    .any(|e| e.body.lines().any(|l| s.matches(l)));
                if !seen {
                    unseen.push(format!("{}: {}", row.name, s.text));
                }
            }
        }
        let listed: Vec<String> = PRE_CORPUS
            .iter()
            .flat_map(|(row, texts)| texts.iter().map(move |t| format!("{row}: {t}")))
            .collect();
        let new: Vec<&String> = unseen.iter().filter(|u| !listed.contains(u)).collect();
        assert!(
            new.is_empty(),
            "signatures no corpus file exercises (add the real message to tests/fixtures/field/):\n{}",
            new.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
        let stale: Vec<&String> = listed.iter().filter(|p| !unseen.contains(p)).collect();
        assert!(
            stale.is_empty(),
            "exercised or gone now, drop from PRE_CORPUS: {stale:?}"
        );
    }

    /// Signatures older than the corpus, by row, checked against the real installers or
    /// their sources rather than a quoted thread. May only shrink: a corpus file for one
    /// moves it out, and the test says so.
    const PRE_CORPUS: &[(&str, &[&str])] = &[
        (
            "uv",
            &[
                "Reading from cache archive failed",
                "Cache deserialization failed",
                "The wheel is invalid",
                "Run `uv cache clean` to clear the cache",
                "Bad CRC",
                "Invalid zip file structure",
                "/archive-v0/",
                "Hash mismatch for",
                "error sending request for url",
                "client error (Connect)",
                "client error (SendRequest)",
                "connection closed before message completed",
                "dns error",
                "Failed to start compilation worker",
                "No file descriptors available",
                "error: unexpected argument",
                "error: invalid value",
                "error: File not found",
                "Failed to parse",
                "No virtual environment found",
                "No interpreter found",
                "is not a valid package name",
            ],
        ),
        (
            "pip",
            &[
                "is invalid.",
                "has an invalid wheel",
                "error: connection-failed",
                "error: connection-timeout",
                "error: incomplete-download",
                "Could not fetch URL",
                "Invalid requirement",
                "Could not open requirements file",
                "no such option",
                "externally-managed-environment",
            ],
        ),
        (
            "pipx",
            &[
                "error: connection-failed",
                "Could not fetch URL",
                "error sending request for url",
                "No apps associated with package",
                "is not installed",
            ],
        ),
        (
            "poetry",
            &[
                "Connection refused",
                "Max retries exceeded",
                "All attempts to connect to",
                "version solving failed",
                "Could not find a matching version of package",
                "does not exist",
                "Poetry could not find a pyproject.toml",
                "pyproject.toml changed significantly",
            ],
        ),
        (
            "pdm",
            &[
                "Hash mismatch",
                "ConnectError",
                "Connection refused",
                "Unable to find candidates for",
                "ResolutionTooDeep",
                "No pyproject.toml",
                "is not a valid",
            ],
        ),
        (
            "conda",
            &[
                "CondaVerificationError",
                "Connection refused",
                "Could not resolve host",
                "LockError",
                "PackagesNotFoundError",
                "could not be found",
            ],
        ),
        (
            "mamba",
            &[
                "CondaVerificationError",
                "Connection refused",
                "Could not resolve host",
                "LockError",
                "PackagesNotFoundError",
                "could not be found",
            ],
        ),
        (
            "micromamba",
            &[
                "CondaVerificationError",
                "Connection refused",
                "Could not resolve host",
                "LockError",
                "PackagesNotFoundError",
                "could not be found",
            ],
        ),
        (
            "npm",
            &[
                "Unexpected end of JSON input",
                "_cacache/tmp",
                "Your cache folder contains root-owned files",
                "ECONNREFUSED",
                "EAI_AGAIN",
                "code ERESOLVE",
                "code EUSAGE",
                "code ENOENT",
                "code EJSONPARSE",
            ],
        ),
        (
            "pnpm",
            &[
                "ERR_PNPM_UNEXPECTED_PKG_CONTENT_IN_STORE",
                "ERR_PNPM_TARBALL_EXTRACT",
                "ERR_PNPM_TARBALL_GZIP",
                "ERR_PNPM_TARBALL_INCOMPLETE_TAR",
                "ERR_PNPM_TARBALL_STORE",
                "ERR_PNPM_META_FETCH_FAIL",
                "ECONNREFUSED",
                "Connection refused",
                "error sending request",
                "ERR_PNPM_FETCH_404",
                "status client error (404",
                "ERR_PNPM_NO_PKG_MANIFEST",
                "ERR_PNPM_OUTDATED_LOCKFILE",
                "404 Not Found",
            ],
        ),
        (
            "yarn-berry",
            &[
                "doesn't match the local checksum",
                "Invalid tar header",
                "YN0035",
                "ECONNREFUSED",
                "YN0082",
                "YN0016",
                "No candidates found",
                "Response Code: 404",
                "This command can only be run from within a workspace",
            ],
        ),
        (
            "yarn",
            &[
                "Incorrect hash when fetching from the cache",
                "appears to be corrupt",
                "ECONNREFUSED",
                "Couldn't find any versions for",
                "Request failed \"404 Not Found\"",
                "Your lockfile needs to be updated",
            ],
        ),
        (
            "bun",
            &[
                "Failed to extract tarball",
                "TarballFailedToDownload",
                "ECONNREFUSED",
                "Timeout",
                "404",
            ],
        ),
        (
            "cargo",
            &[
                "failed to iterate over archive",
                "failed to verify the checksum of",
                "Could not connect to server",
                "Couldn't connect to server",
                "[6] Could not resolve",
                "failed to spawn thread",
                "failed to acquire jobserver token",
                "not found in registry",
                "failed to select a version for the requirement",
                "could not find `Cargo.toml`",
                "failed to parse manifest",
                "no such command",
                "unexpected argument",
            ],
        ),
        (
            "go",
            &[
                "TLS handshake timeout",
                "connection refused",
                "connection reset by peer",
                "404 Not Found",
                "no required module provides package",
                "cannot find module providing package",
                "go.mod file not found",
                "malformed module path",
                "module lookup disabled",
            ],
        ),
        (
            "gem",
            &[
                "TarInvalidError",
                "not in gzip format",
                "Errno::ECONNREFUSED",
                "Errno::ECONNRESET",
                "SocketError",
                "UnsatisfiableDependencyError",
                "Invalid argument",
            ],
        ),
        (
            "bundler",
            &[
                "TarInvalidError",
                "Could not fetch specs from",
                "Could not reach host",
                "Errno::ECONNREFUSED",
                "Network error while fetching",
                "Could not locate Gemfile",
                "There was an error parsing",
            ],
        ),
        (
            "apt",
            &[
                "File has unexpected size",
                "Clearsigned file isn't valid",
                "could not be parsed or opened",
                "Could not connect to",
                "Connection timed out",
                "Connection failed",
                "Unable to lock directory",
                "you have held broken packages",
                "Invalid operation",
                "are you root?",
            ],
        ),
        (
            "dpkg",
            &[
                "frontend lock was locked by another process",
                "database is locked by another process",
                "dependency problems",
                "cannot access archive",
                "is not a Debian format archive",
                "requested operation requires superuser privilege",
            ],
        ),
        (
            "composer",
            &[
                "could not be downloaded",
                "Connection refused",
                "could not be found in any version",
                "Could not find package",
                "does not contain valid JSON",
                "Composer could not find a composer.json",
            ],
        ),
    ];
}
