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
pub use signature::{PackageHint, Signature, normalize, sig};

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
}
