//! pipx: the subcommands that write, where its home is (`PIPX_HOME`, else a legacy
//! `~/.local/pipx` when it exists, else `~/.local/share/pipx`: pipx is asked), and its failure
//! texts, many of them its backend's (pip or uv). Its home holds installed applications, not
//! a cache, so steady never clears it.
//!
//! Verified here against the real pipx (`tests/it/installers.rs`).

use super::row::{
    Ask, BASE, CacheRules, DefaultDir, FullClean, Installer, Naming, RecoveryRules, Verified, from,
};
use super::signature::sig;
use crate::failure::Failure;

pub const PIPX: Installer = Installer {
    name: "pipx",
    verified: Verified::Here,
    programs: &["pipx"],
    modules: &["pipx"],
    wrap: &["pipx"],
    writes: &[
        &["install"],
        &["install-all"],
        &["inject"],
        &["uninject"],
        &["upgrade"],
        &["upgrade-all"],
        &["upgrade-shared"],
        &["uninstall"],
        &["uninstall-all"],
        &["reinstall"],
        &["reinstall-all"],
        &["runpip"],
        &["repair"],
    ],
    cache: CacheRules {
        dir_env: &[from("PIPX_HOME", "")],
        // pipx keeps a legacy `~/.local/pipx` when it exists; it knows which one it uses.
        query: &["environment", "--value", "PIPX_HOME"],
        ask: Ask::Always,
        default: DefaultDir::UserData("pipx"),
        // PIPX_HOME holds the installed applications; downloads are cached by its backend
        // (pip or uv), whose own caches are cleaned through their rows.
        clean_full: FullClean::Never,
        markers: &["venvs", "shared", "logs", ".cache"],
        ..BASE.cache
    },
    recovery: RecoveryRules {
        signatures: &[
            sig(Failure::Network, "Retrying (Retry("),
            sig(Failure::Network, "connection broken by"),
            sig(Failure::Network, "error: connection-failed"),
            sig(Failure::Network, "Could not fetch URL"),
            sig(Failure::Network, "Request failed after"),
            sig(Failure::Network, "error sending request for url"),
            sig(Failure::Corruption, "DO NOT MATCH THE HASHES"),
            sig(
                Failure::Corruption,
                "Failed to read from the distribution cache",
            ),
            sig(Failure::Deterministic, "No matching distribution found"),
            sig(
                Failure::Deterministic,
                "No solution found when resolving dependencies",
            ),
            sig(
                Failure::Deterministic,
                "Could not find a version that satisfies",
            ),
            sig(Failure::Deterministic, "No apps associated with package"),
            // "pip failed to build package:\n    Pillow": a build that fails the same way
            // each time (pypa/pipx#625). A wrapper: pip's own cause, printed below it, decides.
            sig(Failure::Deterministic, "pip failed to build package:").wrapper(),
            sig(Failure::Deterministic, "is not installed"),
        ],
        naming: Naming::Python,
        ..BASE.recovery
    },
    ..BASE
};

#[cfg(test)]
mod tests {
    use crate::installer::Class::{ReadOnly, Writes};
    use crate::installer::identify::assert_identified;

    #[test]
    fn identifies_pipx() {
        assert_identified(&[
            ("pipx install black", "pipx", Writes),
            ("pipx run black", "pipx", ReadOnly),
            ("python3 -m pipx list", "pipx", ReadOnly),
        ]);
    }
}
