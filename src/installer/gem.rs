//! RubyGems: the subcommands that write, where downloaded gems are (`--install-dir`,
//! `GEM_HOME`, else asked: the default gem dir is the distribution's choice), its failure
//! texts, and that steady removes downloaded gems itself, gem having no command that does.
//!
//! Verified here against the real gem (`tests/it/installers.rs`).

use super::row::{
    Ask, BASE, CacheRules, FullClean, Installer, PackageClean, RecoveryRules, Verified, from,
};
use super::signature::{PackageHint, sig};
use crate::failure::Failure;

pub const GEM: Installer = Installer {
    name: "gem",
    verified: Verified::Here,
    programs: &["gem"],
    versioned_prefix: Some("gem"),
    wrap: &["gem"],
    writes: &[
        &["install"],
        &["i"],
        &["update"],
        &["uninstall"],
        &["cleanup"],
        &["pristine"],
    ],
    cache: CacheRules {
        dir_flags: &[from("--install-dir", "cache"), from("-i", "cache")],
        dir_env: &[from("GEM_HOME", "cache")],
        // The default gem dir is the distribution's choice (`/var/lib/gems/X` on Debian).
        query: &["env", "gemdir"],
        query_join: "cache",
        ask: Ask::Always,
        // No command clears downloaded gems (`gem cleanup` removes old versions).
        clean_full: FullClean::Markers,
        markers: &["*.gem"],
        ..BASE.cache
    },
    recovery: RecoveryRules {
        signatures: &[
            sig(Failure::Corruption, "package metadata is missing"),
            sig(Failure::Corruption, "TarInvalidError"),
            sig(Failure::Corruption, "Gem::Package::FormatError"),
            sig(Failure::Corruption, "not in gzip format"),
            // Old rubygems: "invalid gem format for /Users/parker/.rvm/gems/ruby-1.9.2-p0/cache/
            // cucumber-rails-0.3.2.gem" (rubygems/bundler#672).
            sig(Failure::Corruption, "invalid gem format for"),
            sig(Failure::Network, "Unable to download data from"),
            sig(Failure::Network, "Errno::ECONNREFUSED"),
            sig(Failure::Network, "Errno::ECONNRESET"),
            sig(Failure::Network, "Errno::ETIMEDOUT"),
            sig(Failure::Network, "SocketError"),
            sig(Failure::Network, "Gem::RemoteFetcher::FetchError"),
            sig(Failure::Deterministic, "Could not find a valid gem"),
            sig(Failure::Deterministic, "UnsatisfiableDependencyError"),
            sig(Failure::Deterministic, "Invalid argument"),
        ],
        package_hints: &[
            PackageHint {
                after: "/cache/",
                until: &['/', ' ', '\''],
            },
            PackageHint {
                after: "Error installing ",
                until: &[':', ' '],
            },
        ],
        clean_package: Some(PackageClean::Paths(&["{name}-{version}.gem"])),
        ..BASE.recovery
    },
    ..BASE
};

#[cfg(test)]
mod tests {
    use crate::installer::Class::{ReadOnly, Writes};
    use crate::installer::identify::assert_identified;

    #[test]
    fn identifies_gem() {
        assert_identified(&[
            ("gem install rake", "gem", Writes),
            ("gem list", "gem", ReadOnly),
        ]);
    }
}
