//! Composer: the subcommands that write (with their short aliases), where its cache is
//! (`COMPOSER_CACHE_DIR`, `COMPOSER_HOME`'s `cache`, else asked: the default depends on a
//! legacy home, XDG variables and the project), its failure texts, and how one package's
//! downloads are removed (`files/<vendor>/<name>`).
//!
//! Verified here against the real composer (`tests/it/installers.rs`).

use super::row::{
    Ask, BASE, CacheRules, DefaultDir, DirArg, FullClean, Installer, PackageClean, RecoveryRules,
    Verified, from,
};
use super::signature::sig;
use crate::failure::Failure;

pub const COMPOSER: Installer = Installer {
    name: "composer",
    verified: Verified::Here,
    programs: &["composer", "composer.phar"],
    wrap: &["composer"],
    writes: &[
        &["install"],
        &["i"],
        &["update"],
        &["u"],
        &["upgrade"],
        &["require"],
        &["r"],
        &["remove"],
        &["rm"],
        &["create-project"],
        &["reinstall"],
        &["clear-cache"],
        &["clearcache"],
        &["cc"],
        &["global", "require"],
        &["global", "update"],
        &["global", "remove"],
    ],
    options_with_value: &["-d", "--working-dir"],
    cache: CacheRules {
        off_flags: &["--no-cache"],
        dir_env: &[
            from("COMPOSER_CACHE_DIR", ""),
            from("COMPOSER_HOME", "cache"),
        ],
        cwd_flags: &["-d", "--working-dir"],
        // The default depends on a legacy `~/.composer`, XDG variables and `/etc/xdg`, and a
        // project's composer.json may set `cache-dir`: ask composer.
        query: &["config", "cache-dir"],
        ask: Ask::Always,
        query_value_flags: &["-d", "--working-dir"],
        default: DefaultDir::UserCache("composer"),
        clean_full: FullClean::Command(&["clear-cache"]),
        dir_arg: DirArg::Env("COMPOSER_CACHE_DIR"),
        markers: &["files", "repo", "vcs", ".htaccess"],
        ..BASE.cache
    },
    recovery: RecoveryRules {
        signatures: &[
            sig(
                Failure::Corruption,
                "checksum verification of the file failed",
            ),
            sig(Failure::Corruption, "is not a valid zip archive"),
            sig(Failure::Corruption, "Failed to extract"),
            // PHP's "Fatal error: Allowed memory size of 1610612736 bytes exhausted (tried to
            // allocate 4096 bytes)" in the solver (dicarlosystems/manufacturer#2,
            // contentacms/contenta_jsonapi#163): retry with a higher COMPOSER_MEMORY_LIMIT.
            sig(
                Failure::Resource,
                "Allowed memory size of … bytes exhausted",
            ),
            sig(Failure::Network, "curl error"),
            sig(Failure::Network, "could not be downloaded"),
            sig(Failure::Network, "Connection refused"),
            sig(Failure::Network, "Failed to connect"),
            sig(
                Failure::Deterministic,
                "Your requirements could not be resolved",
            ),
            sig(Failure::Deterministic, "could not be found in any version"),
            sig(Failure::Deterministic, "Could not find package"),
            sig(Failure::Deterministic, "does not contain valid JSON"),
            sig(
                Failure::Deterministic,
                "Composer could not find a composer.json",
            ),
        ],
        clean_package: Some(PackageClean::Paths(&["files/{name}"])),
        ..BASE.recovery
    },
    ..BASE
};

#[cfg(test)]
mod tests {
    use crate::installer::Class::{ReadOnly, Writes};
    use crate::installer::identify::assert_identified;

    #[test]
    fn identifies_composer() {
        assert_identified(&[
            ("composer install", "composer", Writes),
            ("composer -d sub require a/b", "composer", Writes),
            ("composer show", "composer", ReadOnly),
            // getcomposer.org's own spelling (tests/fixtures/field/composer/
            // not-valid-zip-archive-19.txt).
            ("php composer.phar install", "composer", Writes),
            (
                "php8.2 -d memory_limit=-1 composer.phar update",
                "composer",
                Writes,
            ),
            ("php artisan migrate", "", ReadOnly),
        ]);
        assert_eq!(
            crate::installer::identify::identified("php -n composer.phar install"),
            Some(("composer", Writes, 3))
        );
    }
}
