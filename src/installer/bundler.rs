//! Bundler: the subcommands that write (a bare `bundle` installs), where its cache is
//! (`BUNDLE_USER_CACHE`, `BUNDLE_USER_HOME`, else `~/.bundle/cache`), its failure texts, and
//! the variable that sizes its parallelism (`BUNDLE_JOBS`).
//!
//! Verified here against the real bundler (`tests/it/installers.rs`).

use super::row::{
    BASE, CacheRules, DefaultDir, FullClean, Installer, RecoveryRules, Verified, from,
};
use super::signature::sig;
use crate::failure::Failure;

pub const BUNDLER: Installer = Installer {
    name: "bundler",
    verified: Verified::Here,
    programs: &["bundle", "bundler"],
    wrap: &["bundle"],
    writes: &[
        &["install"],
        &["update"],
        &["add"],
        &["remove"],
        &["lock"],
        &["cache"],
        &["package"],
        &["pack"],
        &["clean"],
    ],
    bare_writes: true,
    options_with_value: &["--gemfile"],
    cache: CacheRules {
        dir_env: &[
            from("BUNDLE_USER_CACHE", ""),
            from("BUNDLE_USER_HOME", "cache"),
        ],
        default: DefaultDir::Home(".bundle/cache"),
        clean_full: FullClean::Markers,
        markers: &["compact_index", "gems", "git"],
        ..BASE.cache
    },
    recovery: RecoveryRules {
        signatures: &[
            sig(Failure::Corruption, "package metadata is missing"),
            sig(Failure::Corruption, "TarInvalidError"),
            sig(Failure::Corruption, "Gem::Package::FormatError"),
            sig(Failure::Network, "Could not fetch specs from"),
            sig(Failure::Network, "Could not reach host"),
            sig(Failure::Network, "Unable to download data from"),
            sig(Failure::Network, "Errno::ECONNREFUSED"),
            // "Gem::RemoteFetcher::FetchError: Errno::ETIMEDOUT: Operation timed out
            // (https://rubygems.org/gems/net-ssh-2.6.6.gem)" (rubygems/bundler#2421).
            sig(Failure::Network, "Gem::RemoteFetcher::FetchError"),
            sig(Failure::Network, "Errno::ETIMEDOUT"),
            // "Net::OpenTimeout: execution expired" (ruby/rubygems#4561).
            sig(Failure::Network, "Net::OpenTimeout"),
            sig(Failure::Network, "Network error while fetching"),
            sig(Failure::Deterministic, "Could not find gem"),
            sig(Failure::Deterministic, "Could not locate Gemfile"),
            sig(Failure::Deterministic, "could not find compatible versions"),
            sig(Failure::Deterministic, "There was an error parsing"),
        ],
        concurrency_env: Some("BUNDLE_JOBS"),
        ..BASE.recovery
    },
    ..BASE
};

#[cfg(test)]
mod tests {
    use crate::installer::Class::{ReadOnly, Writes};
    use crate::installer::identify::assert_identified;

    #[test]
    fn identifies_bundler() {
        assert_identified(&[
            ("bundle", "bundler", Writes),
            ("bundle install", "bundler", Writes),
            ("bundle exec rake", "bundler", ReadOnly),
            ("bundle --version", "bundler", ReadOnly),
        ]);
    }
}
