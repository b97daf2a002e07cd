//! The shape of an installer row (`Installer` and the types of its fields) and `BASE`, the
//! row every installer's row starts from, which holds the one copy of the defaults. What any
//! one installer is like lives in its own file; this file knows none of them.

use super::signature::{PackageHint, Signature};

/// One row of the installer table.
#[derive(Debug)]
pub struct Installer {
    pub name: &'static str,
    /// Where the row's facts come from.
    pub verified: Verified,
    /// Program names (basename of argv[0]), besides those `program_matches` accepts.
    pub programs: &'static [&'static str],
    /// Versioned program names: `prefix` followed by digits and dots (`pip3`, `pip3.12`).
    pub versioned_prefix: Option<&'static str>,
    /// Launcher names that mean a read-only subcommand of this installer (`uvx` = `uv tool run`).
    pub run_launchers: &'static [&'static str],
    /// `python -m <module>` names.
    pub modules: &'static [&'static str],
    /// Project files that tell this row apart from another with the same program names (yarn 2+
    /// from yarn 1); empty when the program name alone decides.
    pub project_markers: &'static [ProjectMarker],
    /// Command names `steady init` wraps in a shell function by default: the installer's own
    /// entry points. Not its run-only launchers (`uvx`), which steady would only exec, and never
    /// build tools (cargo, go) nor installers that need root (apt-get).
    pub wrap: &'static [&'static str],
    /// Subcommand word paths that write the cache or an environment; a path matches when the
    /// command's subcommand words start with it.
    pub writes: &'static [&'static [&'static str]],
    /// Options that make a command write although it has no such subcommand (`dpkg -i`).
    pub writes_flags: &'static [&'static str],
    /// The command with no subcommand at all writes (`yarn`, `bundle` install).
    pub bare_writes: bool,
    /// Options before the subcommand that take a separate value (so the value is not taken for
    /// a subcommand word).
    pub options_with_value: &'static [&'static str],
    /// Words skipped when looking for the subcommand (`+nightly` for cargo's toolchain).
    pub skip_word_prefixes: &'static [&'static str],
    pub cache: CacheRules,
    pub recovery: RecoveryRules,
}

/// Whether a row was checked against the installer itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Tested here against the real installer (tests/it/installers.rs).
    Here,
    /// Taken from documentation and source; not verified here. The sources are listed.
    FromDocs(&'static [&'static str]),
}

/// A file in the working directory or one of its ancestors that selects a row.
#[derive(Debug, Clone, Copy)]
pub enum ProjectMarker {
    /// A file or directory of that name exists.
    File(&'static str),
    /// `package.json` has `"packageManager": "<tool>@<major>…"` with at least this major.
    PackageManager(&'static str, u32),
}

/// What steady knows about an installer's failures and how to mend them.
#[derive(Debug)]
pub struct RecoveryRules {
    /// Output texts that classify a failed attempt (see `classify`).
    pub signatures: &'static [Signature],
    /// Where its messages name the broken package.
    pub package_hints: &'static [PackageHint],
    /// How its package names are spelled (which characters, whether to normalize).
    pub naming: Naming,
    /// How to clear one package's cache entries.
    pub clean_package: Option<PackageClean>,
    /// How to check every entry of the cache after a corruption signal.
    pub verify: Option<Verify>,
    /// Flag (followed by a package name) that makes the installer reinstall a package: for
    /// packages installed from an entry that was only later found damaged.
    pub reinstall_flag: Option<&'static str>,
    /// Subcommands that accept `reinstall_flag`.
    pub reinstall_in: &'static [&'static [&'static str]],
    /// The environment variable that sizes the installer's parallelism (threads, workers,
    /// jobs): what the mitigations lower.
    pub concurrency_env: Option<&'static str>,
    /// Output texts that say the installer waits for a lock of its own (uv's on its cache,
    /// cargo's on its package cache). While the lock it waits for is held by a process outside
    /// the attempt, the attempt is waiting, not hung: stall detection pauses, and
    /// `--lock-timeout` bounds the wait (see `attempt`).
    pub lock_wait: &'static [&'static str],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// Python distributions: PEP 503 normalized (`Typing_Extensions` → `typing-extensions`).
    Python,
    /// Kept as printed; may hold `/`, `@` and `.` (crates, Go modules, gems, npm scopes).
    Verbatim,
}

/// How one package's entries are cleared.
#[derive(Debug, Clone, Copy)]
pub enum PackageClean {
    /// The installer's own command; the package names are appended.
    Command(&'static [&'static str]),
    /// Entries below the cache root removed by steady (`remove.rs`), as templates: `{name}`
    /// is the package name (may span several path segments), `{goesc}` the Go module
    /// path escaped as the module cache spells it, `*` any single directory, and
    /// `{version}` a version in the last segment (it starts with a digit or `v` and a digit).
    Paths(&'static [&'static str]),
}

/// How the whole cache is cleared.
#[derive(Debug, Clone, Copy)]
pub enum FullClean {
    /// The installer's own command, which honours its own lock and layout.
    Command(&'static [&'static str]),
    /// The installer has no clean command: steady removes these entries below the cache root
    /// itself, safely (`remove.rs`).
    Paths(&'static [&'static str]),
    /// The installer has no clean command and its cache root holds only entries of its own
    /// kinds: steady removes the entries of the root that match the row's markers, and nothing
    /// else (a file beside them stays).
    Markers,
    /// Never: the directory holds more than a cache (pipx's installed applications).
    Never,
}

/// How a check of the whole cache is done.
#[derive(Debug, Clone, Copy)]
pub enum Verify {
    /// steady reads the entries, laid out as this says, and names the packages whose entries
    /// are damaged (`recovery::verify`).
    Layout(Layout),
    /// The installer's own check, which also evicts what it finds damaged (`npm cache verify`).
    Command(&'static [&'static str]),
}

/// Cache layouts whose entries steady can check itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// uv's `archive-v0/<id>/`: each holds an unpacked wheel whose `RECORD` lists every file.
    UvArchive,
    /// pip's `wheels/`: built wheels, each a zip that must open.
    PipWheels,
}

/// Who serializes installs.
#[derive(Debug, Clone, Copy)]
pub enum LockStrategy {
    /// steady's flock on the cache directory.
    Steady,
    /// The installer's own lock, which steady's would not be seen by (apt's fcntl lock on
    /// `/var/lib/dpkg/lock-frontend`): no steady lock; instead these arguments make it wait on
    /// its own terms, `{secs}` being `--lock-timeout` (or `default_secs`). Not added when the
    /// command already mentions `already`.
    Installer {
        wait_args: &'static [&'static str],
        already: &'static str,
        default_secs: u64,
    },
}

/// How an installer chooses its cache, in its own order of precedence.
#[derive(Debug)]
pub struct CacheRules {
    /// Flags that turn the cache off for this run (then there is no shared cache to lock).
    pub off_flags: &'static [&'static str],
    /// Environment variables that turn the cache off when set to a value the installer
    /// treats as true; `any_value_disables` for pip, where any value does.
    pub off_env: &'static [&'static str],
    pub any_value_disables: bool,
    /// Flags that name the cache directory, each with the path the installer appends.
    pub dir_flags: &'static [DirFrom],
    /// Environment variables that name it, in precedence order.
    pub dir_env: &'static [DirFrom],
    /// Flags and env vars that make the installer ignore config files.
    pub no_config_flags: &'static [&'static str],
    pub no_config_env: &'static str,
    /// `no_config_flags` also make it ignore its environment (pip's `--isolated`).
    pub no_config_ignores_env: bool,
    /// Config files that may set the cache dir; if one mentions a `config_keys` entry, steady
    /// asks the installer instead of parsing the file.
    pub config_files: &'static [ConfigFile],
    pub config_keys: &'static [&'static str],
    /// Options that change the directory project config is looked for in (`-C DIR`).
    pub cwd_flags: &'static [&'static str],
    /// Arguments that make the installer print its cache directory (last line of stdout),
    /// with `query_join` appended to what it prints.
    pub query: &'static [&'static str],
    pub query_join: &'static str,
    pub ask: Ask,
    /// Options of the command passed on to the query: with a value, and without.
    pub query_value_flags: &'static [&'static str],
    pub query_flags: &'static [&'static str],
    pub default: DefaultDir,
    pub clean_full: FullClean,
    /// How the installer's own clean commands are pointed at the cache steady resolved.
    pub dir_arg: DirArg,
    /// Names in the cache root that show a directory is this installer's cache (a trailing
    /// `*` matches a versioned bucket such as `wheels-v8`). steady clears nothing else.
    pub markers: &'static [&'static str],
    pub lock: LockStrategy,
}

/// A flag or environment variable naming a directory, and the path the installer appends to
/// it (`--store-dir X` is `X/v11` for pnpm 12).
#[derive(Debug, Clone, Copy)]
pub struct DirFrom {
    pub name: &'static str,
    pub join: &'static str,
    /// A `:`-separated list of which the first entry counts (`GOPATH`).
    pub list: bool,
    /// Weaker than config files: looked at only when no config file sets the cache.
    pub after_config: bool,
}

pub const fn from(name: &'static str, join: &'static str) -> DirFrom {
    DirFrom {
        name,
        join,
        list: false,
        after_config: false,
    }
}

pub const fn from_after_config(name: &'static str, join: &'static str) -> DirFrom {
    DirFrom {
        name,
        join,
        list: false,
        after_config: true,
    }
}

/// When steady asks the installer for its cache directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// When a config file mentions the cache key (the rules are otherwise certain).
    WhenConfigSays,
    /// Whenever no flag or environment variable decides: the installer's own rules depend on
    /// more than steady can see for sure (the filesystem a project is on, root, a legacy dir).
    Always,
}

/// Where the cache is when nothing else says.
#[derive(Debug, Clone, Copy)]
pub enum DefaultDir {
    /// Below `$XDG_CACHE_HOME`, else `~/.cache`.
    UserCache(&'static str),
    /// Below `$XDG_DATA_HOME`, else `~/.local/share`.
    UserData(&'static str),
    /// Below the home directory.
    Home(&'static str),
    Absolute(&'static str),
    /// Only the installer can tell (no shared cache assumed when it cannot be asked).
    Unknown,
}

/// How the installer's own clean command is told which cache to clean.
#[derive(Debug, Clone, Copy)]
pub enum DirArg {
    /// A flag followed by the directory (what the matching `dir_flags` entry appends is
    /// taken off first).
    Flag(&'static str),
    /// An environment variable set for the clean command.
    Env(&'static str),
    /// Nothing: run with the same launcher, environment and directory, the installer finds the
    /// same cache.
    Same,
}

#[derive(Debug, Clone, Copy)]
pub enum ConfigFile {
    /// A path below the user config dir (`$XDG_CONFIG_HOME` or `~/.config`).
    UserConfig(&'static str),
    /// A path below the home directory.
    Home(&'static str),
    /// An absolute path.
    Absolute(&'static str),
    /// A file name looked for in the working directory and its ancestors (project config).
    Project(&'static str),
    /// A file named by an environment variable.
    Env(&'static str),
    /// A path below `$VIRTUAL_ENV`.
    VirtualEnv(&'static str),
}

/// The row every row starts from (`..BASE`, `..BASE.cache`, `..BASE.recovery`), so a row
/// states only what is true of its installer. Every default means "none": no such flag,
/// variable or config file, no cache assumed nor cleared, nothing to reinstall, steady's own
/// lock. `name`, `programs`, `verified`, a writing subcommand and `signatures` have no useful
/// default: each row sets them, which `every_row_is_complete` checks (an unset `verified`
/// names no sources and fails it).
pub const BASE: Installer = Installer {
    name: "",
    verified: Verified::FromDocs(&[]),
    programs: &[],
    versioned_prefix: None,
    run_launchers: &[],
    modules: &[],
    project_markers: &[],
    wrap: &[],
    writes: &[],
    writes_flags: &[],
    bare_writes: false,
    options_with_value: &[],
    skip_word_prefixes: &[],
    cache: CacheRules {
        off_flags: &[],
        off_env: &[],
        any_value_disables: false,
        dir_flags: &[],
        dir_env: &[],
        no_config_flags: &[],
        no_config_env: "",
        no_config_ignores_env: false,
        config_files: &[],
        config_keys: &[],
        cwd_flags: &[],
        query: &[],
        query_join: "",
        ask: Ask::WhenConfigSays,
        query_value_flags: &[],
        query_flags: &[],
        default: DefaultDir::Unknown,
        clean_full: FullClean::Never,
        dir_arg: DirArg::Same,
        markers: &[],
        lock: LockStrategy::Steady,
    },
    recovery: RecoveryRules {
        signatures: &[],
        package_hints: &[],
        naming: Naming::Verbatim,
        clean_package: None,
        verify: None,
        reinstall_flag: None,
        reinstall_in: &[],
        concurrency_env: None,
        lock_wait: &[],
    },
};

impl Installer {
    /// How steady clears this installer's cache, for `doctor`.
    pub fn clean_words(&self) -> String {
        let full = match self.cache.clean_full {
            FullClean::Command(sub) => format!("`{} {}`", self.name, sub.join(" ")),
            FullClean::Markers => format!(
                "removing its {} entries in it, nothing else (no clean command)",
                self.cache.markers.join(", ")
            ),
            FullClean::Paths(entries) => {
                format!("removing {} in it (no clean command)", entries.join(", "))
            }
            FullClean::Never => return "never: it holds more than a cache".to_owned(),
        };
        let check = match self.recovery.verify {
            Some(Verify::Command(sub)) => format!("`{} {}` first, then ", self.name, sub.join(" ")),
            _ => String::new(),
        };
        match self.recovery.clean_package {
            Some(PackageClean::Command(sub)) => format!(
                "{check}`{} {} <package>` for a broken entry, else {full}",
                self.name,
                sub.join(" ")
            ),
            Some(PackageClean::Paths(p)) => format!(
                "{check}removing {} for a broken entry, else {full}",
                p.join(" and ")
            ),
            None => format!("{check}{full}"),
        }
    }

    /// For installers that lock for themselves: what steady does instead of locking.
    pub fn own_lock_words(&self) -> Option<String> {
        match self.cache.lock {
            LockStrategy::Steady => None,
            LockStrategy::Installer { wait_args, .. } if !wait_args.is_empty() => Some(format!(
                "{}'s own lock, waited on with `{}` (from --lock-timeout, else {}s); no steady lock, which {} would not see",
                self.name,
                wait_args.join(" "),
                match self.cache.lock {
                    LockStrategy::Installer { default_secs, .. } => default_secs,
                    LockStrategy::Steady => 0,
                },
                self.name
            )),
            LockStrategy::Installer { .. } => Some(format!(
                "{}'s own lock (it cannot wait for it: a held lock is retried); no steady lock, which {} would not see",
                self.name, self.name
            )),
        }
    }
}
