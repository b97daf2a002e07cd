//! PDM: the subcommands that write, how it chooses its cache (`PDM_CACHE_DIR`, `cache_dir` in
//! `pdm.toml` or its user config, else `~/.cache/pdm`), its failure texts, and that its own
//! `pdm cache clear` is pointed at the cache through `PDM_CACHE_DIR`.
//!
//! Verified here against the real PDM (`tests/it/installers.rs`).

use super::row::{
    BASE, CacheRules, ConfigFile, DefaultDir, DirArg, FullClean, Installer, Naming, RecoveryRules,
    Verified, from,
};
use super::signature::sig;
use crate::failure::Failure;

pub const PDM: Installer = Installer {
    name: "pdm",
    verified: Verified::Here,
    programs: &["pdm"],
    modules: &["pdm"],
    wrap: &["pdm"],
    writes: &[
        &["install"],
        &["add"],
        &["remove"],
        &["update"],
        &["lock"],
        &["sync"],
        &["cache", "clear"],
        &["cache", "remove"],
        &["venv", "create"],
    ],
    options_with_value: &["-p", "--project", "-c", "--config"],
    cache: CacheRules {
        dir_env: &[from("PDM_CACHE_DIR", "")],
        config_files: &[
            ConfigFile::Env("PDM_CONFIG_FILE"),
            ConfigFile::Project("pdm.toml"),
            ConfigFile::UserConfig("pdm/config.toml"),
        ],
        config_keys: &["cache_dir"],
        cwd_flags: &["-p", "--project"],
        query: &["config", "cache_dir"],
        query_value_flags: &["-p", "--project", "-c", "--config"],
        default: DefaultDir::UserCache("pdm"),
        clean_full: FullClean::Command(&["cache", "clear"]),
        dir_arg: DirArg::Env("PDM_CACHE_DIR"),
        markers: &[
            "hashes",
            "http",
            "wheels",
            "metadata",
            "packages",
            "self-check",
        ],
        ..BASE.cache
    },
    recovery: RecoveryRules {
        signatures: &[
            sig(Failure::Corruption, "BadZipFile"),
            sig(Failure::Corruption, "File is not a zip file"),
            sig(Failure::Corruption, "Hash mismatch"),
            sig(Failure::Network, "ConnectError"),
            sig(Failure::Network, "Connection refused"),
            sig(Failure::Network, "ConnectTimeout"),
            sig(Failure::Network, "ReadTimeout"),
            sig(Failure::Network, "Temporary failure in name resolution"),
            sig(Failure::Deterministic, "Unable to find candidates for"),
            sig(Failure::Deterministic, "ResolutionImpossible"),
            sig(Failure::Deterministic, "ResolutionTooDeep"),
            sig(Failure::Deterministic, "No pyproject.toml"),
            sig(Failure::Deterministic, "is not a valid"),
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
    fn identifies_pdm() {
        assert_identified(&[("pdm sync", "pdm", Writes), ("pdm run x", "pdm", ReadOnly)]);
    }
}
