//! What steady knows about each installer, as data: one `Installer` row per installer (how it
//! is invoked, which subcommands write its cache or an environment, where its cache lives and
//! how to clear it, how it fails, whether steady or the installer itself does the locking, and
//! whether the row was verified against the real installer), and `identify`, which reads a
//! command line against the table, seeing through wrappers such as `env VAR=… cmd`, `nice`,
//! `taskset`, `chrt` and a qemu-user emulator.

pub mod locate;
mod signature;

pub use signature::{PackageHint, Signature, normalize, sig};

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::failure::Failure;

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
    pub recovery: Recovery,
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
pub struct Recovery {
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
    /// itself (`""` is everything in it), safely (`remove.rs`).
    Paths(&'static [&'static str]),
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

/// A wrapper command steady sees through to find the installer.
struct Prefix {
    name: &'static str,
    /// Options that take a separate value.
    with_value: &'static [&'static str],
    /// Positional words before the command (`taskset MASK cmd`, `chrt PRIO cmd`).
    positional: usize,
}

const PREFIXES: &[Prefix] = &[
    Prefix {
        name: "nice",
        with_value: &["-n", "--adjustment"],
        positional: 0,
    },
    Prefix {
        name: "ionice",
        with_value: &["-c", "--class", "-n", "--classdata"],
        positional: 0,
    },
    Prefix {
        name: "nohup",
        with_value: &[],
        positional: 0,
    },
    Prefix {
        name: "taskset",
        with_value: &[],
        positional: 1,
    },
    Prefix {
        name: "chrt",
        with_value: &[
            "-T",
            "--sched-runtime",
            "-P",
            "--sched-period",
            "-D",
            "--sched-deadline",
        ],
        positional: 1,
    },
];

/// qemu-user options that take no value; every other option does.
const QEMU_FLAGS: &[&str] = &[
    "-h",
    "-help",
    "-version",
    "-strace",
    "-singlestep",
    "-one-insn-per-tb",
    "-enable-bonus",
];

const PY_UNTIL: &[char] = &['=', ')', ' ', '<', '>', '~', '!', '@', '`'];

/// The commands wrapped when `--wrap` is not given: every installer's own entry points, from
/// the installer table, so a new installer is wrapped as soon as it is known.
pub fn default_wrap() -> Vec<String> {
    INSTALLERS
        .iter()
        .flat_map(|i| i.wrap.iter().map(|&n| n.to_owned()))
        .collect()
}

pub const UV: Installer = Installer {
    name: "uv",
    verified: Verified::Here,
    programs: &["uv"],
    versioned_prefix: None,
    run_launchers: &["uvx"],
    modules: &["uv"],
    project_markers: &[],
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
    writes_flags: &[],
    bare_writes: false,
    options_with_value: &[
        "--cache-dir",
        "--directory",
        "--project",
        "--config-file",
        "--color",
        "--python-preference",
        "--allow-insecure-host",
    ],
    skip_word_prefixes: &[],
    cache: CacheRules {
        off_flags: &["--no-cache", "-n", "--no-cache-dir"],
        off_env: &["UV_NO_CACHE"],
        any_value_disables: false,
        dir_flags: &[from("--cache-dir", "")],
        dir_env: &[from("UV_CACHE_DIR", "")],
        no_config_flags: &["--no-config"],
        no_config_env: "UV_NO_CONFIG",
        no_config_ignores_env: false,
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
        query_join: "",
        ask: Ask::WhenConfigSays,
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
        lock: LockStrategy::Steady,
    },
    recovery: Recovery {
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
            sig(Failure::Corruption, "Failed to extract archive"),
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
    },
};

pub const PIP: Installer = Installer {
    name: "pip",
    verified: Verified::Here,
    programs: &["pip"],
    versioned_prefix: Some("pip"),
    run_launchers: &[],
    modules: &["pip"],
    project_markers: &[],
    wrap: &["pip", "pip3"],
    writes: &[
        &["install"],
        &["download"],
        &["wheel"],
        &["uninstall"],
        &["cache", "purge"],
        &["cache", "remove"],
    ],
    writes_flags: &[],
    bare_writes: false,
    options_with_value: &[
        "--cache-dir",
        "--log",
        "--proxy",
        "--retries",
        "--timeout",
        "--exists-action",
        "--trusted-host",
        "--cert",
        "--client-cert",
        "--python",
        "--keyring-provider",
        "--use-feature",
        "--use-deprecated",
        "--progress-bar",
    ],
    skip_word_prefixes: &[],
    cache: CacheRules {
        off_flags: &["--no-cache-dir"],
        off_env: &["PIP_NO_CACHE_DIR"],
        any_value_disables: true,
        dir_flags: &[from("--cache-dir", "")],
        dir_env: &[from("PIP_CACHE_DIR", "")],
        no_config_flags: &["--isolated"],
        no_config_env: "PIP_ISOLATED",
        no_config_ignores_env: true,
        config_files: &[
            ConfigFile::Env("PIP_CONFIG_FILE"),
            ConfigFile::Absolute("/etc/xdg/pip/pip.conf"),
            ConfigFile::Absolute("/etc/pip.conf"),
            ConfigFile::UserConfig("pip/pip.conf"),
            ConfigFile::Home(".pip/pip.conf"),
            ConfigFile::VirtualEnv("pip.conf"),
        ],
        config_keys: &["cache-dir"],
        cwd_flags: &[],
        query: &["cache", "dir"],
        query_join: "",
        ask: Ask::WhenConfigSays,
        query_value_flags: &[],
        query_flags: &["--isolated"],
        default: DefaultDir::UserCache("pip"),
        clean_full: FullClean::Command(&["cache", "purge"]),
        dir_arg: DirArg::Flag("--cache-dir"),
        markers: &["http-v2", "http", "wheels", "selfcheck", "selfcheck.json"],
        lock: LockStrategy::Steady,
    },
    recovery: Recovery {
        signatures: &[
            sig(Failure::Corruption, "DO NOT MATCH THE HASHES"),
            sig(Failure::Corruption, "is invalid."),
            sig(Failure::Corruption, "has an invalid wheel"),
            sig(Failure::Corruption, "BadZipFile"),
            sig(Failure::Corruption, "File is not a zip file"),
            sig(Failure::Network, "Retrying (Retry("),
            sig(Failure::Network, "connection broken by"),
            sig(Failure::Network, "error: connection-failed"),
            sig(Failure::Network, "error: connection-timeout"),
            sig(Failure::Network, "error: incomplete-download"),
            sig(Failure::Network, "Read timed out"),
            sig(Failure::Network, "Temporary failure in name resolution"),
            sig(Failure::Network, "Could not fetch URL"),
            sig(Failure::Deterministic, "No matching distribution found"),
            sig(
                Failure::Deterministic,
                "Could not find a version that satisfies",
            ),
            sig(Failure::Deterministic, "ResolutionImpossible"),
            sig(Failure::Deterministic, "Invalid requirement"),
            sig(Failure::Deterministic, "Could not open requirements file"),
            sig(Failure::Deterministic, "no such option"),
            sig(Failure::Deterministic, "externally-managed-environment"),
        ],
        package_hints: &[PackageHint {
            after: "Wheel '",
            until: &['\''],
        }],
        naming: Naming::Python,
        // `pip cache remove` removes only the wheels pip built; a bad downloaded wheel in
        // `http-v2` needs the full purge, which the fallback does.
        clean_package: Some(PackageClean::Command(&["cache", "remove"])),
        verify: Some(Verify::Layout(Layout::PipWheels)),
        reinstall_flag: None,
        reinstall_in: &[],
        concurrency_env: None,
    },
};

pub const PIPX: Installer = Installer {
    name: "pipx",
    verified: Verified::Here,
    programs: &["pipx"],
    versioned_prefix: None,
    run_launchers: &[],
    modules: &["pipx"],
    project_markers: &[],
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
    writes_flags: &[],
    bare_writes: false,
    options_with_value: &[],
    skip_word_prefixes: &[],
    cache: CacheRules {
        off_flags: &[],
        off_env: &[],
        any_value_disables: false,
        dir_flags: &[],
        dir_env: &[from("PIPX_HOME", "")],
        no_config_flags: &[],
        no_config_env: "",
        no_config_ignores_env: false,
        config_files: &[],
        config_keys: &[],
        cwd_flags: &[],
        // pipx keeps a legacy `~/.local/pipx` when it exists; it knows which one it uses.
        query: &["environment", "--value", "PIPX_HOME"],
        query_join: "",
        ask: Ask::Always,
        query_value_flags: &[],
        query_flags: &[],
        default: DefaultDir::UserData("pipx"),
        // PIPX_HOME holds the installed applications; downloads are cached by its backend
        // (pip or uv), whose own caches are cleaned through their rows.
        clean_full: FullClean::Never,
        dir_arg: DirArg::Same,
        markers: &["venvs", "shared", "logs", ".cache"],
        lock: LockStrategy::Steady,
    },
    recovery: Recovery {
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
            sig(Failure::Deterministic, "is not installed"),
        ],
        package_hints: &[],
        naming: Naming::Python,
        clean_package: None,
        verify: None,
        reinstall_flag: None,
        reinstall_in: &[],
        concurrency_env: None,
    },
};

pub const POETRY: Installer = Installer {
    name: "poetry",
    verified: Verified::Here,
    programs: &["poetry"],
    versioned_prefix: None,
    run_launchers: &[],
    modules: &["poetry"],
    project_markers: &[],
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
    writes_flags: &[],
    bare_writes: false,
    options_with_value: &["-C", "--directory", "-P", "--project"],
    skip_word_prefixes: &[],
    cache: CacheRules {
        off_flags: &["--no-cache"],
        off_env: &[],
        any_value_disables: false,
        dir_flags: &[],
        dir_env: &[from("POETRY_CACHE_DIR", "")],
        no_config_flags: &[],
        no_config_env: "",
        no_config_ignores_env: false,
        config_files: &[
            ConfigFile::Env("POETRY_CONFIG_DIR"),
            ConfigFile::Project("poetry.toml"),
            ConfigFile::UserConfig("pypoetry/config.toml"),
        ],
        config_keys: &["cache-dir"],
        cwd_flags: &["-C", "--directory", "-P", "--project"],
        query: &["config", "cache-dir"],
        query_join: "",
        ask: Ask::WhenConfigSays,
        query_value_flags: &["-C", "--directory", "-P", "--project"],
        query_flags: &[],
        default: DefaultDir::UserCache("pypoetry"),
        // `poetry cache clear --all` clears only `cache/`, not the downloaded `artifacts/`;
        // and `virtualenvs/` lives here too, so the whole directory is never removed.
        clean_full: FullClean::Paths(&["cache", "artifacts"]),
        dir_arg: DirArg::Same,
        markers: &["cache", "artifacts", "virtualenvs"],
        lock: LockStrategy::Steady,
    },
    recovery: Recovery {
        signatures: &[
            sig(Failure::Corruption, "not found in known hashes"),
            sig(Failure::Corruption, "BadZipFile"),
            sig(Failure::Corruption, "File is not a zip file"),
            sig(Failure::Network, "Connection refused"),
            sig(Failure::Network, "Max retries exceeded"),
            sig(Failure::Network, "ConnectionError"),
            sig(Failure::Network, "Read timed out"),
            sig(Failure::Network, "Temporary failure in name resolution"),
            sig(Failure::Network, "All attempts to connect to"),
            sig(Failure::Deterministic, "version solving failed"),
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
        clean_package: None,
        verify: None,
        reinstall_flag: None,
        reinstall_in: &[],
        concurrency_env: Some("POETRY_INSTALLER_MAX_WORKERS"),
    },
};

pub const PDM: Installer = Installer {
    name: "pdm",
    verified: Verified::Here,
    programs: &["pdm"],
    versioned_prefix: None,
    run_launchers: &[],
    modules: &["pdm"],
    project_markers: &[],
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
    writes_flags: &[],
    bare_writes: false,
    options_with_value: &["-p", "--project", "-c", "--config"],
    skip_word_prefixes: &[],
    cache: CacheRules {
        off_flags: &[],
        off_env: &[],
        any_value_disables: false,
        dir_flags: &[],
        dir_env: &[from("PDM_CACHE_DIR", "")],
        no_config_flags: &[],
        no_config_env: "",
        no_config_ignores_env: false,
        config_files: &[
            ConfigFile::Env("PDM_CONFIG_FILE"),
            ConfigFile::Project("pdm.toml"),
            ConfigFile::UserConfig("pdm/config.toml"),
        ],
        config_keys: &["cache_dir"],
        cwd_flags: &["-p", "--project"],
        query: &["config", "cache_dir"],
        query_join: "",
        ask: Ask::WhenConfigSays,
        query_value_flags: &["-p", "--project", "-c", "--config"],
        query_flags: &[],
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
        lock: LockStrategy::Steady,
    },
    recovery: Recovery {
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
        package_hints: &[],
        naming: Naming::Python,
        clean_package: None,
        verify: None,
        reinstall_flag: None,
        reinstall_in: &[],
        concurrency_env: None,
    },
};

const CONDA_SIGNATURES: &[Signature] = &[
    sig(Failure::Corruption, "appears to be corrupted"),
    sig(Failure::Corruption, "ChecksumMismatchError"),
    sig(Failure::Corruption, "CondaVerificationError"),
    sig(Failure::Network, "CondaHTTPError"),
    sig(Failure::Network, "CONNECTION FAILED"),
    sig(Failure::Network, "Connection refused"),
    sig(Failure::Network, "Could not resolve host"),
    sig(Failure::InstallerLock, "LockError"),
    sig(Failure::Deterministic, "PackagesNotFoundError"),
    sig(Failure::Deterministic, "UnsatisfiableError"),
    sig(Failure::Deterministic, "could not be found"),
    sig(Failure::Deterministic, "nothing provides"),
];

const CONDA_WRITES: &[&[&str]] = &[
    &["install"],
    &["create"],
    &["update"],
    &["upgrade"],
    &["remove"],
    &["uninstall"],
    &["env", "create"],
    &["env", "update"],
    &["env", "remove"],
    &["clean"],
];

const CONDA_SOURCES: &[&str] = &[
    "conda/conda conda/base/context.py (pkgs_dirs, CONDA_PKGS_DIRS)",
    "conda/conda conda/cli/main_clean.py (conda clean --all)",
    "conda/conda conda/core/path_actions.py, conda/exceptions.py (SafetyError, ChecksumMismatchError, CondaHTTPError)",
    "conda docs user-guide/configuration/settings.rst (pkgs_dirs)",
];

pub const CONDA: Installer = Installer {
    name: "conda",
    verified: Verified::FromDocs(CONDA_SOURCES),
    programs: &["conda"],
    versioned_prefix: None,
    run_launchers: &[],
    modules: &["conda"],
    project_markers: &[],
    wrap: &["conda"],
    writes: CONDA_WRITES,
    writes_flags: &[],
    bare_writes: false,
    options_with_value: &[],
    skip_word_prefixes: &[],
    cache: CacheRules {
        off_flags: &[],
        off_env: &[],
        any_value_disables: false,
        dir_flags: &[],
        dir_env: &[DirFrom {
            name: "CONDA_PKGS_DIRS",
            join: "",
            list: true,
            after_config: false,
        }],
        no_config_flags: &[],
        no_config_env: "",
        no_config_ignores_env: false,
        config_files: &[],
        config_keys: &[],
        cwd_flags: &[],
        // The package cache is `<root prefix>/pkgs`, and only conda knows its root prefix.
        query: &["info", "--base"],
        query_join: "pkgs",
        ask: Ask::Always,
        query_value_flags: &[],
        query_flags: &[],
        default: DefaultDir::Home(".conda/pkgs"),
        clean_full: FullClean::Command(&["clean", "--all", "--yes"]),
        dir_arg: DirArg::Same,
        markers: &["urls.txt", "cache", "urls"],
        lock: LockStrategy::Steady,
    },
    recovery: Recovery {
        signatures: CONDA_SIGNATURES,
        package_hints: &[],
        naming: Naming::Verbatim,
        clean_package: None,
        verify: None,
        reinstall_flag: None,
        reinstall_in: &[],
        concurrency_env: None,
    },
};

const MAMBA_SOURCES: &[&str] = &[
    "mamba-org/mamba libmamba/src/api/configuration.cpp (root_prefix, pkgs_dirs, use_lockfiles)",
    "mamba.readthedocs.io micromamba-installation (MAMBA_ROOT_PREFIX, default ~/.local/share/mamba since 2.0)",
    "mamba-org/mamba#3225 (2.0 root prefix change)",
];

pub const MAMBA: Installer = Installer {
    name: "mamba",
    verified: Verified::FromDocs(MAMBA_SOURCES),
    programs: &["mamba"],
    wrap: &["mamba"],
    cache: CacheRules {
        dir_env: &[
            DirFrom {
                name: "CONDA_PKGS_DIRS",
                join: "",
                list: true,
                after_config: false,
            },
            from("MAMBA_ROOT_PREFIX", "pkgs"),
        ],
        query: &["info", "--base"],
        ..CONDA.cache
    },
    ..CONDA
};

pub const MICROMAMBA: Installer = Installer {
    name: "micromamba",
    verified: Verified::FromDocs(MAMBA_SOURCES),
    programs: &["micromamba"],
    wrap: &["micromamba"],
    cache: CacheRules {
        dir_env: &[
            DirFrom {
                name: "CONDA_PKGS_DIRS",
                join: "",
                list: true,
                after_config: false,
            },
            from("MAMBA_ROOT_PREFIX", "pkgs"),
        ],
        // `micromamba info` prints the root prefix among other lines, not alone: the rule
        // (2.0's default root prefix) is used instead of asking.
        query: &[],
        ask: Ask::WhenConfigSays,
        default: DefaultDir::UserData("mamba/pkgs"),
        clean_full: FullClean::Command(&["clean", "--all", "--yes"]),
        ..CONDA.cache
    },
    ..CONDA
};

/// npm's subcommands that write, with the aliases npm accepts for them.
const NPM_WRITES: &[&[&str]] = &[
    &["install"],
    &["i"],
    &["in"],
    &["ins"],
    &["inst"],
    &["insta"],
    &["instal"],
    &["isnt"],
    &["isnta"],
    &["isntal"],
    &["isntall"],
    &["add"],
    &["ci"],
    &["clean-install"],
    &["ic"],
    &["install-clean"],
    &["isntall-clean"],
    &["install-ci-test"],
    &["cit"],
    &["install-test"],
    &["it"],
    &["update"],
    &["up"],
    &["upgrade"],
    &["udpate"],
    &["uninstall"],
    &["unlink"],
    &["remove"],
    &["rm"],
    &["r"],
    &["un"],
    &["dedupe"],
    &["ddp"],
    &["prune"],
    &["rebuild"],
    &["rb"],
    &["link"],
    &["ln"],
    &["audit", "fix"],
    &["cache", "clean"],
    &["cache", "add"],
    &["cache", "verify"],
];

pub const NPM: Installer = Installer {
    name: "npm",
    verified: Verified::Here,
    programs: &["npm"],
    versioned_prefix: None,
    run_launchers: &["npx"],
    modules: &[],
    project_markers: &[],
    wrap: &["npm"],
    writes: NPM_WRITES,
    writes_flags: &[],
    bare_writes: false,
    options_with_value: &[
        "--cache",
        "--prefix",
        "--registry",
        "--userconfig",
        "--globalconfig",
        "-w",
        "--workspace",
        "--loglevel",
    ],
    skip_word_prefixes: &[],
    cache: CacheRules {
        off_flags: &[],
        off_env: &[],
        any_value_disables: false,
        dir_flags: &[from("--cache", "")],
        // npm reads `npm_config_*` in any case; these are the spellings seen in the wild.
        dir_env: &[from("npm_config_cache", ""), from("NPM_CONFIG_CACHE", "")],
        no_config_flags: &[],
        no_config_env: "",
        no_config_ignores_env: false,
        config_files: &[
            ConfigFile::Project(".npmrc"),
            ConfigFile::Env("npm_config_userconfig"),
            ConfigFile::Env("NPM_CONFIG_USERCONFIG"),
            ConfigFile::Home(".npmrc"),
            ConfigFile::Env("npm_config_globalconfig"),
            ConfigFile::Absolute("/usr/etc/npmrc"),
            ConfigFile::Absolute("/usr/local/etc/npmrc"),
            ConfigFile::Absolute("/etc/npmrc"),
        ],
        config_keys: &["cache"],
        cwd_flags: &["--prefix"],
        query: &["config", "get", "cache"],
        query_join: "",
        ask: Ask::WhenConfigSays,
        query_value_flags: &["--prefix", "--userconfig", "--globalconfig"],
        query_flags: &[],
        // `~/.npm` on POSIX: npm ignores XDG_CACHE_HOME.
        default: DefaultDir::Home(".npm"),
        // Without `--force`, npm refuses: its cache "self-heals" (integrity mismatches are
        // cache misses), which is also why a check comes first (`verify`).
        clean_full: FullClean::Command(&["cache", "clean", "--force"]),
        dir_arg: DirArg::Flag("--cache"),
        markers: &["_cacache", "_logs", "_npx", "_update-notifier-last-checked"],
        lock: LockStrategy::Steady,
    },
    recovery: Recovery {
        signatures: &[
            sig(Failure::Corruption, "EINTEGRITY"),
            sig(Failure::Corruption, "integrity checksum failed"),
            sig(Failure::Corruption, "Unexpected end of JSON input"),
            sig(Failure::Corruption, "_cacache/tmp"),
            sig(
                Failure::Corruption,
                "Your cache folder contains root-owned files",
            ),
            sig(Failure::Network, "ECONNREFUSED"),
            sig(Failure::Network, "ECONNRESET"),
            sig(Failure::Network, "ETIMEDOUT"),
            sig(Failure::Network, "ENOTFOUND"),
            sig(Failure::Network, "EAI_AGAIN"),
            sig(Failure::Network, "ERR_SOCKET_TIMEOUT"),
            sig(
                Failure::Network,
                "This is a problem related to network connectivity",
            ),
            sig(Failure::Deterministic, "code E404"),
            sig(Failure::Deterministic, "code ETARGET"),
            sig(Failure::Deterministic, "code ERESOLVE"),
            sig(Failure::Deterministic, "code EUSAGE"),
            sig(Failure::Deterministic, "code ENOENT"),
            sig(Failure::Deterministic, "code EJSONPARSE"),
            sig(Failure::Deterministic, "No matching version found for"),
        ],
        package_hints: &[],
        naming: Naming::Verbatim,
        clean_package: None,
        verify: Some(Verify::Command(&["cache", "verify"])),
        reinstall_flag: None,
        reinstall_in: &[],
        concurrency_env: None,
    },
};

pub const PNPM: Installer = Installer {
    name: "pnpm",
    verified: Verified::Here,
    programs: &["pnpm", "pn"],
    versioned_prefix: None,
    run_launchers: &["pnpx", "pnx"],
    modules: &[],
    project_markers: &[],
    wrap: &["pnpm"],
    writes: &[
        &["install"],
        &["i"],
        &["add"],
        &["update"],
        &["up"],
        &["upgrade"],
        &["remove"],
        &["rm"],
        &["uninstall"],
        &["un"],
        &["link"],
        &["ln"],
        &["unlink"],
        &["import"],
        &["rebuild"],
        &["rb"],
        &["prune"],
        &["fetch"],
        &["install-test"],
        &["it"],
        &["dedupe"],
        &["store", "add"],
        &["store", "prune"],
    ],
    writes_flags: &[],
    bare_writes: false,
    options_with_value: &[
        "-C",
        "--dir",
        "--store-dir",
        "--filter",
        "-F",
        "--registry",
        "--reporter",
        "--env-file",
    ],
    skip_word_prefixes: &[],
    cache: CacheRules {
        off_flags: &[],
        off_env: &[],
        any_value_disables: false,
        dir_flags: &[from("--store-dir", "v11")],
        // pnpm 12 ignores `npm_config_store_dir`.
        dir_env: &[
            from("PNPM_CONFIG_STORE_DIR", "v11"),
            from("pnpm_config_store_dir", "v11"),
            from_after_config("PNPM_HOME", "store/v11"),
            from_after_config("XDG_DATA_HOME", "pnpm/store/v11"),
        ],
        no_config_flags: &[],
        no_config_env: "",
        no_config_ignores_env: false,
        config_files: &[
            ConfigFile::Project(".npmrc"),
            ConfigFile::Project("pnpm-workspace.yaml"),
            ConfigFile::UserConfig("pnpm/rc"),
            ConfigFile::UserConfig("pnpm/config.yaml"),
            ConfigFile::Home(".npmrc"),
        ],
        config_keys: &["store-dir", "storeDir"],
        cwd_flags: &["-C", "--dir"],
        query: &["store", "path"],
        query_join: "",
        // The default store must be on the project's filesystem, else pnpm uses
        // `<mount root>/.pnpm-store`: only pnpm knows for sure.
        ask: Ask::Always,
        query_value_flags: &["-C", "--dir"],
        query_flags: &[],
        default: DefaultDir::Home(".local/share/pnpm/store/v11"),
        // No command clears the store (`pnpm store prune` drops only unreferenced packages).
        clean_full: FullClean::Paths(&[""]),
        dir_arg: DirArg::Same,
        markers: &["files", "index", "projects", "tmp", "links"],
        lock: LockStrategy::Steady,
    },
    recovery: Recovery {
        signatures: &[
            sig(Failure::Corruption, "ERR_PNPM_TARBALL_INTEGRITY"),
            sig(
                Failure::Corruption,
                "ERR_PNPM_UNEXPECTED_PKG_CONTENT_IN_STORE",
            ),
            sig(Failure::Corruption, "ERR_PNPM_TARBALL_EXTRACT"),
            sig(Failure::Corruption, "ERR_PNPM_TARBALL_GZIP"),
            sig(Failure::Corruption, "ERR_PNPM_TARBALL_INCOMPLETE_TAR"),
            sig(Failure::Corruption, "ERR_PNPM_TARBALL_STORE"),
            sig(Failure::Corruption, "-index.json"),
            sig(Failure::Network, "ERR_PNPM_META_FETCH_FAIL"),
            sig(Failure::Network, "ECONNREFUSED"),
            sig(Failure::Network, "ECONNRESET"),
            sig(Failure::Network, "ETIMEDOUT"),
            sig(Failure::Network, "ENOTFOUND"),
            sig(Failure::Network, "Connection refused"),
            sig(Failure::Network, "error sending request"),
            sig(Failure::Deterministic, "ERR_PNPM_FETCH_404"),
            sig(Failure::Deterministic, "status client error (404"),
            sig(Failure::Deterministic, "ERR_PNPM_NO_MATCHING_VERSION"),
            sig(Failure::Deterministic, "ERR_PNPM_NO_PKG_MANIFEST"),
            sig(Failure::Deterministic, "ERR_PNPM_OUTDATED_LOCKFILE"),
            sig(Failure::Deterministic, "404 Not Found"),
        ],
        package_hints: &[],
        naming: Naming::Verbatim,
        clean_package: None,
        verify: None,
        reinstall_flag: None,
        reinstall_in: &[],
        concurrency_env: None,
    },
};

const YARN_WRITES: &[&[&str]] = &[
    &["install"],
    &["add"],
    &["upgrade"],
    &["up"],
    &["remove"],
    &["import"],
    &["dedupe"],
    &["link"],
    &["unlink"],
    &["global", "add"],
    &["global", "remove"],
    &["global", "upgrade"],
    &["cache", "clean"],
];

pub const YARN_BERRY: Installer = Installer {
    name: "yarn-berry",
    verified: Verified::Here,
    programs: &["yarn", "yarnpkg"],
    versioned_prefix: None,
    run_launchers: &[],
    modules: &[],
    project_markers: &[
        ProjectMarker::File(".yarnrc.yml"),
        ProjectMarker::PackageManager("yarn", 2),
    ],
    // `yarn` is wrapped once, through the yarn 1 row: the function is the same.
    wrap: &[],
    writes: YARN_WRITES,
    writes_flags: &[],
    bare_writes: true,
    options_with_value: &["--cwd"],
    skip_word_prefixes: &[],
    cache: CacheRules {
        off_flags: &[],
        off_env: &[],
        any_value_disables: false,
        dir_flags: &[],
        // YARN_CACHE_FOLDER counts only with enableGlobalCache false, YARN_GLOBAL_FOLDER
        // only with it true, and `.yarnrc.yml` files up the tree can say either: ask yarn.
        dir_env: &[],
        no_config_flags: &[],
        no_config_env: "",
        no_config_ignores_env: false,
        config_files: &[],
        config_keys: &[],
        cwd_flags: &["--cwd"],
        query: &["config", "get", "cacheFolder"],
        query_join: "",
        ask: Ask::Always,
        query_value_flags: &["--cwd"],
        query_flags: &[],
        default: DefaultDir::Home(".yarn/berry/cache"),
        clean_full: FullClean::Command(&["cache", "clean", "--all"]),
        dir_arg: DirArg::Same,
        markers: &[".gitignore", "*.zip"],
        lock: LockStrategy::Steady,
    },
    recovery: Recovery {
        signatures: &[
            sig(Failure::Corruption, "YN0018"),
            sig(Failure::Corruption, "doesn't match the local checksum"),
            sig(Failure::Corruption, "Invalid tar header"),
            sig(Failure::Network, "YN0035"),
            sig(Failure::Network, "ECONNREFUSED"),
            sig(Failure::Network, "ECONNRESET"),
            sig(Failure::Network, "ETIMEDOUT"),
            sig(Failure::Network, "ENOTFOUND"),
            sig(Failure::Network, "RequestError"),
            sig(Failure::Deterministic, "YN0082"),
            sig(Failure::Deterministic, "YN0016"),
            sig(Failure::Deterministic, "No candidates found"),
            sig(Failure::Deterministic, "Response Code: 404"),
            sig(
                Failure::Deterministic,
                "This command can only be run from within a workspace",
            ),
        ],
        package_hints: &[],
        naming: Naming::Verbatim,
        clean_package: None,
        verify: None,
        reinstall_flag: None,
        reinstall_in: &[],
        concurrency_env: None,
    },
};

pub const YARN: Installer = Installer {
    name: "yarn",
    verified: Verified::Here,
    programs: &["yarn", "yarnpkg"],
    versioned_prefix: None,
    run_launchers: &[],
    modules: &[],
    project_markers: &[],
    wrap: &["yarn", "yarnpkg"],
    writes: YARN_WRITES,
    writes_flags: &[],
    bare_writes: true,
    options_with_value: &[
        "--cache-folder",
        "--preferred-cache-folder",
        "--cwd",
        "--modules-folder",
        "--registry",
        "--mutex",
        "--network-timeout",
        "--network-concurrency",
    ],
    skip_word_prefixes: &[],
    cache: CacheRules {
        off_flags: &[],
        off_env: &[],
        any_value_disables: false,
        dir_flags: &[from("--cache-folder", "v6")],
        dir_env: &[from("YARN_CACHE_FOLDER", "v6")],
        no_config_flags: &[],
        no_config_env: "",
        no_config_ignores_env: false,
        config_files: &[],
        config_keys: &[],
        cwd_flags: &["--cwd"],
        query: &["cache", "dir"],
        query_join: "",
        // As root yarn 1 uses `/usr/local/share/.cache/yarn` (unless under fakeroot), and it
        // falls back to `$TMPDIR/.yarn-cache-<uid>` when that is not writable: ask it.
        ask: Ask::Always,
        query_value_flags: &["--cwd", "--preferred-cache-folder"],
        query_flags: &[],
        default: DefaultDir::UserCache("yarn/v6"),
        clean_full: FullClean::Command(&["cache", "clean"]),
        dir_arg: DirArg::Flag("--cache-folder"),
        markers: &[".tmp", "npm-*", ".yarn-tarball.tgz"],
        lock: LockStrategy::Steady,
    },
    recovery: Recovery {
        signatures: &[
            sig(
                Failure::Corruption,
                "Incorrect integrity when fetching from the cache",
            ),
            sig(
                Failure::Corruption,
                "Incorrect hash when fetching from the cache",
            ),
            sig(Failure::Corruption, "appears to be corrupt"),
            sig(Failure::Corruption, "Integrity check failed for"),
            sig(Failure::Network, "trouble with your network connection"),
            sig(Failure::Network, "ESOCKETTIMEDOUT"),
            sig(Failure::Network, "ECONNREFUSED"),
            sig(Failure::Network, "ECONNRESET"),
            sig(Failure::Network, "ETIMEDOUT"),
            sig(Failure::Network, "ENOTFOUND"),
            sig(Failure::Deterministic, "Couldn't find package"),
            sig(Failure::Deterministic, "Couldn't find any versions for"),
            sig(Failure::Deterministic, "Request failed \"404 Not Found\""),
            sig(Failure::Deterministic, "Your lockfile needs to be updated"),
        ],
        package_hints: &[PackageHint {
            after: "fetching from the cache for \"",
            until: &['"', '@'],
        }],
        naming: Naming::Verbatim,
        clean_package: Some(PackageClean::Command(&["cache", "clean"])),
        verify: None,
        reinstall_flag: None,
        reinstall_in: &[],
        concurrency_env: None,
    },
};

pub const BUN: Installer = Installer {
    name: "bun",
    verified: Verified::Here,
    programs: &["bun"],
    versioned_prefix: None,
    run_launchers: &["bunx"],
    modules: &[],
    project_markers: &[],
    wrap: &["bun"],
    writes: &[
        &["install"],
        &["i"],
        &["add"],
        &["a"],
        &["remove"],
        &["rm"],
        &["update"],
        &["link"],
        &["unlink"],
        &["pm", "cache", "rm"],
    ],
    writes_flags: &[],
    bare_writes: false,
    options_with_value: &["--cwd", "--cache-dir", "--registry", "--config", "-c"],
    skip_word_prefixes: &[],
    cache: CacheRules {
        // `--no-cache` skips only the manifest cache: the tarball cache is still used.
        off_flags: &[],
        off_env: &[],
        any_value_disables: false,
        dir_flags: &[from("--cache-dir", "")],
        dir_env: &[
            from("BUN_INSTALL_CACHE_DIR", ""),
            from_after_config("BUN_INSTALL", "install/cache"),
            from_after_config("XDG_CACHE_HOME", ".bun/install/cache"),
        ],
        no_config_flags: &[],
        no_config_env: "",
        no_config_ignores_env: false,
        config_files: &[
            ConfigFile::Project("bunfig.toml"),
            ConfigFile::UserConfig(".bunfig.toml"),
            ConfigFile::Home(".bunfig.toml"),
        ],
        config_keys: &["cache"],
        cwd_flags: &["--cwd"],
        query: &["pm", "cache"],
        query_join: "",
        ask: Ask::WhenConfigSays,
        query_value_flags: &["--cwd", "--config", "-c"],
        query_flags: &[],
        default: DefaultDir::Home(".bun/install/cache"),
        clean_full: FullClean::Command(&["pm", "cache", "rm"]),
        dir_arg: DirArg::Env("BUN_INSTALL_CACHE_DIR"),
        markers: &["*.npm", "*@*"],
        lock: LockStrategy::Steady,
    },
    recovery: Recovery {
        signatures: &[
            sig(Failure::Corruption, "Integrity check failed for tarball"),
            sig(Failure::Corruption, "Failed to extract tarball"),
            sig(Failure::Network, "ConnectionRefused"),
            sig(Failure::Network, "ConnectionClosed"),
            sig(Failure::Network, "TarballFailedToDownload"),
            sig(Failure::Network, "ECONNREFUSED"),
            sig(Failure::Network, "Timeout"),
            sig(Failure::Deterministic, "404"),
            sig(Failure::Deterministic, "No version matching"),
            sig(Failure::Deterministic, "failed to resolve"),
        ],
        package_hints: &[],
        naming: Naming::Verbatim,
        clean_package: None,
        verify: None,
        reinstall_flag: None,
        reinstall_in: &[],
        concurrency_env: None,
    },
};

pub const CARGO: Installer = Installer {
    name: "cargo",
    verified: Verified::Here,
    programs: &["cargo"],
    versioned_prefix: None,
    run_launchers: &[],
    modules: &[],
    project_markers: &[],
    wrap: &[],
    writes: &[
        &["build"],
        &["b"],
        &["check"],
        &["c"],
        &["test"],
        &["t"],
        &["bench"],
        &["doc"],
        &["d"],
        &["fetch"],
        &["install"],
        &["update"],
        &["generate-lockfile"],
        &["vendor"],
        &["add"],
        &["clippy"],
        &["fix"],
        &["package"],
        &["publish"],
    ],
    writes_flags: &[],
    bare_writes: false,
    options_with_value: &["--config", "-Z", "-C", "--color"],
    skip_word_prefixes: &["+"],
    cache: CacheRules {
        off_flags: &[],
        off_env: &[],
        any_value_disables: false,
        dir_flags: &[],
        dir_env: &[from("CARGO_HOME", "")],
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
        default: DefaultDir::Home(".cargo"),
        // No stable command clears the registry caches (`cargo clean gc` is unstable);
        // CARGO_HOME also holds `bin/` and the user's config, which are never touched.
        clean_full: FullClean::Paths(&[
            "registry/cache",
            "registry/src",
            "registry/index",
            "git/checkouts",
            "git/db",
        ]),
        dir_arg: DirArg::Same,
        markers: &[
            "registry",
            "git",
            ".package-cache",
            ".crates.toml",
            ".global-cache",
        ],
        lock: LockStrategy::Steady,
    },
    recovery: Recovery {
        signatures: &[
            sig(Failure::Corruption, "failed to unpack package"),
            sig(Failure::Corruption, "failed to iterate over archive"),
            sig(Failure::Corruption, "failed to verify the checksum of"),
            sig(Failure::Network, "spurious network error"),
            sig(Failure::Network, "failed to download from"),
            sig(Failure::Network, "Could not connect to server"),
            sig(Failure::Network, "Couldn't connect to server"),
            sig(Failure::Network, "[28] Timeout"),
            sig(Failure::Network, "[6] Could not resolve"),
            sig(Failure::Network, "[6] Couldn't resolve"),
            sig(Failure::Resource, "failed to spawn thread"),
            sig(Failure::Resource, "failed to acquire jobserver token"),
            sig(Failure::Deterministic, "no matching package named"),
            sig(Failure::Deterministic, "not found in registry"),
            sig(
                Failure::Deterministic,
                "failed to select a version for the requirement",
            ),
            sig(Failure::Deterministic, "could not find `Cargo.toml`"),
            sig(Failure::Deterministic, "failed to parse manifest"),
            sig(Failure::Deterministic, "could not compile"),
            sig(Failure::Deterministic, "no such command"),
            sig(Failure::Deterministic, "unexpected argument"),
        ],
        package_hints: &[
            PackageHint {
                after: "failed to unpack package `",
                until: &[' ', '`'],
            },
            PackageHint {
                after: "failed to verify the checksum of `",
                until: &[' ', '`'],
            },
        ],
        naming: Naming::Verbatim,
        // A corrupted `.crate` must go with its unpacked source, or cargo keeps using either.
        clean_package: Some(PackageClean::Paths(&[
            "registry/cache/*/{name}-{version}.crate",
            "registry/src/*/{name}-{version}",
        ])),
        verify: None,
        reinstall_flag: None,
        reinstall_in: &[],
        concurrency_env: Some("CARGO_BUILD_JOBS"),
    },
};

pub const GO: Installer = Installer {
    name: "go",
    verified: Verified::Here,
    programs: &["go"],
    versioned_prefix: None,
    run_launchers: &[],
    modules: &[],
    project_markers: &[],
    wrap: &[],
    writes: &[
        &["build"],
        &["install"],
        &["get"],
        &["test"],
        &["vet"],
        &["mod", "download"],
        &["mod", "tidy"],
        &["mod", "vendor"],
        &["work", "sync"],
    ],
    writes_flags: &["-modcache"],
    bare_writes: false,
    options_with_value: &["-C"],
    skip_word_prefixes: &[],
    cache: CacheRules {
        off_flags: &[],
        off_env: &[],
        any_value_disables: false,
        dir_flags: &[],
        dir_env: &[
            from("GOMODCACHE", ""),
            DirFrom {
                name: "GOPATH",
                join: "pkg/mod",
                list: true,
                after_config: true,
            },
        ],
        no_config_flags: &[],
        no_config_env: "",
        no_config_ignores_env: false,
        config_files: &[ConfigFile::Env("GOENV"), ConfigFile::UserConfig("go/env")],
        config_keys: &["GOMODCACHE", "GOPATH"],
        cwd_flags: &["-C"],
        query: &["env", "GOMODCACHE"],
        query_join: "",
        ask: Ask::WhenConfigSays,
        query_value_flags: &[],
        query_flags: &[],
        default: DefaultDir::Home("go/pkg/mod"),
        clean_full: FullClean::Command(&["clean", "-modcache"]),
        dir_arg: DirArg::Env("GOMODCACHE"),
        markers: &["cache"],
        lock: LockStrategy::Steady,
    },
    recovery: Recovery {
        signatures: &[
            sig(Failure::Corruption, "checksum mismatch"),
            sig(Failure::Corruption, "SECURITY ERROR"),
            sig(Failure::Corruption, "not a valid zip file"),
            sig(Failure::Corruption, "zip: "),
            sig(Failure::Network, "dial tcp"),
            sig(Failure::Network, "i/o timeout"),
            sig(Failure::Network, "TLS handshake timeout"),
            sig(Failure::Network, "connection refused"),
            sig(Failure::Network, "connection reset by peer"),
            sig(Failure::Deterministic, "404 Not Found"),
            sig(Failure::Deterministic, "410 Gone"),
            sig(Failure::Deterministic, "unknown revision"),
            sig(
                Failure::Deterministic,
                "no required module provides package",
            ),
            sig(
                Failure::Deterministic,
                "cannot find module providing package",
            ),
            sig(Failure::Deterministic, "go.mod file not found"),
            sig(Failure::Deterministic, "invalid version"),
            sig(Failure::Deterministic, "malformed module path"),
            sig(Failure::Deterministic, "module lookup disabled"),
        ],
        // The module path as the cache spells it (`!`-escaped capitals), which the
        // templates below take as it is.
        package_hints: &[
            PackageHint {
                after: "verifying ",
                until: &['@', ':', ' '],
            },
            PackageHint {
                after: "/cache/download/",
                until: &['@', ':', ' '],
            },
        ],
        naming: Naming::Verbatim,
        clean_package: Some(PackageClean::Paths(&[
            "cache/download/{goesc}",
            "{goesc}@{version}",
        ])),
        verify: None,
        reinstall_flag: None,
        reinstall_in: &[],
        concurrency_env: None,
    },
};

pub const GEM: Installer = Installer {
    name: "gem",
    verified: Verified::Here,
    programs: &["gem"],
    versioned_prefix: Some("gem"),
    run_launchers: &[],
    modules: &[],
    project_markers: &[],
    wrap: &["gem"],
    writes: &[
        &["install"],
        &["i"],
        &["update"],
        &["uninstall"],
        &["cleanup"],
        &["pristine"],
    ],
    writes_flags: &[],
    bare_writes: false,
    options_with_value: &[],
    skip_word_prefixes: &[],
    cache: CacheRules {
        off_flags: &[],
        off_env: &[],
        any_value_disables: false,
        dir_flags: &[from("--install-dir", "cache"), from("-i", "cache")],
        dir_env: &[from("GEM_HOME", "cache")],
        no_config_flags: &[],
        no_config_env: "",
        no_config_ignores_env: false,
        config_files: &[],
        config_keys: &[],
        cwd_flags: &[],
        // The default gem dir is the distribution's choice (`/var/lib/gems/X` on Debian).
        query: &["env", "gemdir"],
        query_join: "cache",
        ask: Ask::Always,
        query_value_flags: &[],
        query_flags: &[],
        default: DefaultDir::Unknown,
        // No command clears downloaded gems (`gem cleanup` removes old versions).
        clean_full: FullClean::Paths(&[""]),
        dir_arg: DirArg::Same,
        markers: &["*.gem"],
        lock: LockStrategy::Steady,
    },
    recovery: Recovery {
        signatures: &[
            sig(Failure::Corruption, "package metadata is missing"),
            sig(Failure::Corruption, "TarInvalidError"),
            sig(Failure::Corruption, "Gem::Package::FormatError"),
            sig(Failure::Corruption, "not in gzip format"),
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
        naming: Naming::Verbatim,
        clean_package: Some(PackageClean::Paths(&["{name}-{version}.gem"])),
        verify: None,
        reinstall_flag: None,
        reinstall_in: &[],
        concurrency_env: None,
    },
};

pub const BUNDLER: Installer = Installer {
    name: "bundler",
    verified: Verified::Here,
    programs: &["bundle", "bundler"],
    versioned_prefix: None,
    run_launchers: &[],
    modules: &[],
    project_markers: &[],
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
    writes_flags: &[],
    bare_writes: true,
    options_with_value: &["--gemfile"],
    skip_word_prefixes: &[],
    cache: CacheRules {
        off_flags: &[],
        off_env: &[],
        any_value_disables: false,
        dir_flags: &[],
        dir_env: &[
            from("BUNDLE_USER_CACHE", ""),
            from("BUNDLE_USER_HOME", "cache"),
        ],
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
        default: DefaultDir::Home(".bundle/cache"),
        clean_full: FullClean::Paths(&[""]),
        dir_arg: DirArg::Same,
        markers: &["compact_index", "gems", "git"],
        lock: LockStrategy::Steady,
    },
    recovery: Recovery {
        signatures: &[
            sig(Failure::Corruption, "package metadata is missing"),
            sig(Failure::Corruption, "TarInvalidError"),
            sig(Failure::Corruption, "Gem::Package::FormatError"),
            sig(Failure::Network, "Could not fetch specs from"),
            sig(Failure::Network, "Could not reach host"),
            sig(Failure::Network, "Unable to download data from"),
            sig(Failure::Network, "Errno::ECONNREFUSED"),
            sig(Failure::Network, "Network error while fetching"),
            sig(Failure::Deterministic, "Could not find gem"),
            sig(Failure::Deterministic, "Could not locate Gemfile"),
            sig(Failure::Deterministic, "could not find compatible versions"),
            sig(Failure::Deterministic, "There was an error parsing"),
        ],
        package_hints: &[],
        naming: Naming::Verbatim,
        clean_package: None,
        verify: None,
        reinstall_flag: None,
        reinstall_in: &[],
        concurrency_env: Some("BUNDLE_JOBS"),
    },
};

pub const APT: Installer = Installer {
    name: "apt",
    verified: Verified::Here,
    programs: &["apt-get", "apt", "aptitude"],
    versioned_prefix: None,
    run_launchers: &[],
    modules: &[],
    project_markers: &[],
    wrap: &[],
    writes: &[
        &["install"],
        &["remove"],
        &["purge"],
        &["upgrade"],
        &["dist-upgrade"],
        &["full-upgrade"],
        &["update"],
        &["autoremove"],
        &["autopurge"],
        &["clean"],
        &["autoclean"],
        &["build-dep"],
        &["reinstall"],
        &["satisfy"],
    ],
    writes_flags: &[],
    bare_writes: false,
    options_with_value: &[
        "-o",
        "--option",
        "-c",
        "--config-file",
        "-t",
        "--target-release",
    ],
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
        default: DefaultDir::Absolute("/var/cache/apt/archives"),
        clean_full: FullClean::Command(&["clean"]),
        dir_arg: DirArg::Same,
        markers: &["partial", "lock"],
        // apt and dpkg lock with fcntl on /var/lib/dpkg/lock-frontend; an flock of steady's
        // would not be seen by apt run without steady, so apt waits on its own lock instead.
        lock: LockStrategy::Installer {
            wait_args: &["-o", "DPkg::Lock::Timeout={secs}"],
            already: "DPkg::Lock::Timeout",
            default_secs: 600,
        },
    },
    recovery: Recovery {
        signatures: &[
            sig(Failure::Corruption, "Hash Sum mismatch"),
            sig(Failure::Corruption, "File has unexpected size"),
            sig(Failure::Corruption, "Clearsigned file isn't valid"),
            sig(Failure::Corruption, "could not be parsed or opened"),
            sig(Failure::Network, "Temporary failure resolving"),
            sig(Failure::Network, "Could not connect to"),
            sig(Failure::Network, "Connection timed out"),
            sig(Failure::Network, "Connection failed"),
            sig(Failure::Network, "Some index files failed to download"),
            sig(Failure::InstallerLock, "Could not get lock"),
            sig(
                Failure::InstallerLock,
                "Unable to acquire the dpkg frontend lock",
            ),
            sig(Failure::InstallerLock, "Unable to lock directory"),
            sig(Failure::Deterministic, "Unable to locate package"),
            sig(Failure::Deterministic, "has no installation candidate"),
            sig(Failure::Deterministic, "you have held broken packages"),
            sig(Failure::Deterministic, "Invalid operation"),
            sig(Failure::Deterministic, "dpkg was interrupted"),
            sig(Failure::Deterministic, "are you root?"),
        ],
        package_hints: &[],
        naming: Naming::Verbatim,
        clean_package: None,
        verify: None,
        reinstall_flag: None,
        reinstall_in: &[],
        concurrency_env: None,
    },
};

pub const DPKG: Installer = Installer {
    name: "dpkg",
    verified: Verified::Here,
    programs: &["dpkg"],
    versioned_prefix: None,
    run_launchers: &[],
    modules: &[],
    project_markers: &[],
    wrap: &[],
    writes: &[],
    writes_flags: &[
        "-i",
        "--install",
        "-r",
        "--remove",
        "-P",
        "--purge",
        "--unpack",
        "--configure",
        "--triggers-only",
    ],
    bare_writes: false,
    options_with_value: &["--admindir", "--root", "--instdir"],
    skip_word_prefixes: &[],
    cache: CacheRules {
        default: DefaultDir::Unknown,
        clean_full: FullClean::Never,
        markers: &[],
        // dpkg has no wait option: its lock failure is classified and retried.
        lock: LockStrategy::Installer {
            wait_args: &[],
            already: "",
            default_secs: 0,
        },
        ..APT.cache
    },
    recovery: Recovery {
        signatures: &[
            sig(
                Failure::InstallerLock,
                "frontend lock was locked by another process",
            ),
            sig(
                Failure::InstallerLock,
                "database is locked by another process",
            ),
            sig(Failure::InstallerLock, "is locked by another process"),
            sig(Failure::Deterministic, "dependency problems"),
            sig(Failure::Deterministic, "cannot access archive"),
            sig(Failure::Deterministic, "is not a Debian format archive"),
            sig(
                Failure::Deterministic,
                "requested operation requires superuser privilege",
            ),
        ],
        ..APT.recovery
    },
};

pub const COMPOSER: Installer = Installer {
    name: "composer",
    verified: Verified::Here,
    programs: &["composer", "composer.phar"],
    versioned_prefix: None,
    run_launchers: &[],
    modules: &[],
    project_markers: &[],
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
    writes_flags: &[],
    bare_writes: false,
    options_with_value: &["-d", "--working-dir"],
    skip_word_prefixes: &[],
    cache: CacheRules {
        off_flags: &["--no-cache"],
        off_env: &[],
        any_value_disables: false,
        dir_flags: &[],
        dir_env: &[
            from("COMPOSER_CACHE_DIR", ""),
            from("COMPOSER_HOME", "cache"),
        ],
        no_config_flags: &[],
        no_config_env: "",
        no_config_ignores_env: false,
        config_files: &[],
        config_keys: &[],
        cwd_flags: &["-d", "--working-dir"],
        // The default depends on a legacy `~/.composer`, XDG variables and `/etc/xdg`, and a
        // project's composer.json may set `cache-dir`: ask composer.
        query: &["config", "cache-dir"],
        query_join: "",
        ask: Ask::Always,
        query_value_flags: &["-d", "--working-dir"],
        query_flags: &[],
        default: DefaultDir::UserCache("composer"),
        clean_full: FullClean::Command(&["clear-cache"]),
        dir_arg: DirArg::Env("COMPOSER_CACHE_DIR"),
        markers: &["files", "repo", "vcs", ".htaccess"],
        lock: LockStrategy::Steady,
    },
    recovery: Recovery {
        signatures: &[
            sig(
                Failure::Corruption,
                "checksum verification of the file failed",
            ),
            sig(Failure::Corruption, "is not a valid zip archive"),
            sig(Failure::Corruption, "Failed to extract"),
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
        package_hints: &[],
        naming: Naming::Verbatim,
        clean_package: Some(PackageClean::Paths(&["files/{name}"])),
        verify: None,
        reinstall_flag: None,
        reinstall_in: &[],
        concurrency_env: None,
    },
};

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

pub fn by_name(name: &str) -> Option<&'static Installer> {
    INSTALLERS.iter().copied().find(|i| i.name == name)
}

impl Installer {
    fn program_matches(&self, base: &str) -> bool {
        self.programs.contains(&base)
            || self.versioned_prefix.is_some_and(|p| {
                base.strip_prefix(p).is_some_and(|rest| {
                    !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit() || c == '.')
                })
            })
    }

    /// Whether this row's project markers (if any) hold for a command run in `cwd`.
    fn markers_hold(&self, cwd: Option<&Path>) -> bool {
        if self.project_markers.is_empty() {
            return true;
        }
        let Some(cwd) = cwd else { return false };
        for dir in cwd.ancestors() {
            for marker in self.project_markers {
                match *marker {
                    ProjectMarker::File(name) => {
                        if dir.join(name).exists() {
                            return true;
                        }
                    }
                    ProjectMarker::PackageManager(tool, major) => {
                        if let Ok(text) = std::fs::read_to_string(dir.join("package.json"))
                            && package_manager_major(&text, tool).is_some_and(|m| m >= major)
                        {
                            return true;
                        }
                    }
                }
            }
            // The nearest package.json is the project: markers above it belong to another.
            if dir.join("package.json").exists() {
                return false;
            }
        }
        false
    }
}

impl Installer {
    /// How steady clears this installer's cache, for `doctor`.
    pub fn clean_words(&self) -> String {
        let full = match self.cache.clean_full {
            FullClean::Command(sub) => format!("`{} {}`", self.name, sub.join(" ")),
            FullClean::Paths(entries) if entries == [""] => {
                "removing everything in it (no clean command)".to_owned()
            }
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

/// The major version in `"packageManager": "<tool>@<major>…"` of a package.json text.
fn package_manager_major(json: &str, tool: &str) -> Option<u32> {
    let at = json.find("\"packageManager\"")?;
    let rest = json[at + "\"packageManager\"".len()..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let version = rest.strip_prefix(tool)?.strip_prefix('@')?;
    version.split(['.', '"', '+', '-']).next()?.parse().ok()
}

/// Whether a command may change an installer's cache or an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Installs, syncs, builds, cleans: locked and supervised.
    Writes,
    /// Runs, lists, prints: exec'd unchanged.
    ReadOnly,
}

/// A command line read against the installer table.
#[derive(Debug)]
pub struct Invocation {
    pub installer: &'static Installer,
    pub class: Class,
    /// The words that start the installer, wrappers included (`env X=1 nice uv`, or
    /// `python3 -m pip`), for running its own commands (cache query, clean) the same way.
    pub launcher: Vec<OsString>,
    /// The installer's own arguments, after the launcher.
    pub args: Vec<OsString>,
    /// What the wrappers do to the environment, in order: a value set, or `None` for unset.
    pub env: Vec<(OsString, Option<OsString>)>,
    /// `env -i`: the installer starts from an empty environment.
    pub clear_env: bool,
    /// `env -C DIR`: the installer runs in another directory.
    pub chdir: Option<PathBuf>,
    /// The qemu-user emulator the command runs under, and the argv from it on (for the
    /// mitigations' emulation check).
    pub emulator: Option<Vec<OsString>>,
}

impl Invocation {
    /// An environment variable as the installer will see it.
    pub fn var(&self, name: &str) -> Option<OsString> {
        if let Some((_, v)) = self.env.iter().rev().find(|(k, _)| k == name) {
            return v.clone();
        }
        if self.clear_env {
            None
        } else {
            std::env::var_os(name)
        }
    }

    /// The directory the installer runs in (for project config).
    pub fn cwd(&self) -> Option<PathBuf> {
        let here = std::env::current_dir().ok();
        match (&self.chdir, here) {
            (Some(d), Some(h)) => Some(h.join(d)),
            (Some(d), None) => Some(d.clone()),
            (None, h) => h,
        }
    }

    /// The whole command line.
    pub fn argv(&self) -> Vec<OsString> {
        self.launcher.iter().chain(&self.args).cloned().collect()
    }

    /// `argv` with the arguments that make an installer that does its own locking wait on its
    /// own lock (`-o DPkg::Lock::Timeout=N` for apt), from `--lock-timeout` or the row's
    /// default; unchanged for everyone else, or when the command already says how long.
    pub fn with_own_lock_wait(
        &self,
        argv: &[OsString],
        lock_timeout: Option<std::time::Duration>,
    ) -> Vec<OsString> {
        let LockStrategy::Installer {
            wait_args,
            already,
            default_secs,
        } = self.installer.cache.lock
        else {
            return argv.to_vec();
        };
        if wait_args.is_empty()
            || argv
                .iter()
                .any(|a| a.to_str().is_some_and(|a| a.contains(already)))
        {
            return argv.to_vec();
        }
        let secs = lock_timeout.map_or(default_secs, |d| d.as_secs_f64().ceil() as u64);
        let at = self.launcher.len().min(argv.len());
        let mut out = argv[..at].to_vec();
        out.extend(
            wait_args
                .iter()
                .map(|a| OsString::from(a.replace("{secs}", &secs.to_string()))),
        );
        out.extend_from_slice(&argv[at..]);
        out
    }
}

fn basename(word: &OsStr) -> &str {
    Path::new(word)
        .file_name()
        .and_then(OsStr::to_str)
        .unwrap_or("")
}

fn is_python(base: &str) -> bool {
    base.strip_prefix("python")
        .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// `qemu-<arch>` or `qemu-<arch>-static`, but not qemu's system tools (`qemu-img`).
fn is_qemu_user(base: &str) -> bool {
    base.strip_prefix("qemu-").is_some_and(|arch| {
        let arch = arch.strip_suffix("-static").unwrap_or(arch);
        !arch.is_empty()
            && !matches!(
                arch,
                "img" | "nbd" | "io" | "edid" | "ga" | "pr-helper" | "storage-daemon" | "keymap"
            )
            && !arch.starts_with("system-")
            && arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The effect of the wrapper words in front of a command.
#[derive(Default)]
struct Wrapped {
    /// Index of the command's first word.
    at: usize,
    env: Vec<(OsString, Option<OsString>)>,
    clear_env: bool,
    chdir: Option<PathBuf>,
    emulator_at: Option<usize>,
}

/// Skips the wrappers at the start of `argv`; `None` when a wrapper is used in a way steady
/// cannot follow (`env -S`), so the command is treated as unknown.
fn see_through(argv: &[OsString]) -> Option<Wrapped> {
    let mut w = Wrapped::default();
    loop {
        let base = basename(argv.get(w.at)?);
        let start = w.at;
        if base == "env" {
            w.at = skip_env(argv, w.at + 1, &mut w)?;
        } else if is_qemu_user(base) {
            w.emulator_at.get_or_insert(w.at);
            w.at = skip_qemu(argv, w.at + 1, &mut w)?;
        } else if let Some(p) = PREFIXES.iter().find(|p| p.name == base) {
            w.at = skip_options(argv, w.at + 1, p.with_value, p.positional)?;
        } else {
            return Some(w);
        }
        if w.at == start || w.at >= argv.len() {
            return None;
        }
    }
}

fn word(argv: &[OsString], i: usize) -> Option<&str> {
    argv.get(i).and_then(|w| w.to_str())
}

/// Options (some with values) then `positional` words; returns the command's index.
fn skip_options(
    argv: &[OsString],
    mut i: usize,
    with_value: &[&str],
    positional: usize,
) -> Option<usize> {
    while let Some(w) = word(argv, i) {
        if w == "--" {
            i += 1;
            break;
        }
        if !w.starts_with('-') || w == "-" {
            break;
        }
        // `-p` of taskset and chrt acts on a running pid: no command follows.
        if w == "-p" || w == "--pid" {
            return None;
        }
        let takes_value = with_value.contains(&w);
        i += if takes_value { 2 } else { 1 };
    }
    Some(i + positional)
}

fn skip_env(argv: &[OsString], mut i: usize, w: &mut Wrapped) -> Option<usize> {
    while let Some(a) = word(argv, i) {
        match a {
            "-i" | "--ignore-environment" | "-" => {
                w.clear_env = true;
                w.env.clear();
                i += 1;
            }
            "-u" | "--unset" => {
                w.env.push((argv.get(i + 1)?.clone(), None));
                i += 2;
            }
            "-C" | "--chdir" => {
                w.chdir = Some(PathBuf::from(argv.get(i + 1)?));
                i += 2;
            }
            "-0" | "--null" | "-v" | "--debug" | "--list-signal-handling" => i += 1,
            "--" => {
                i += 1;
                break;
            }
            _ if a.starts_with("--unset=") => {
                w.env.push((a["--unset=".len()..].into(), None));
                i += 1;
            }
            _ if a.starts_with("--chdir=") => {
                w.chdir = Some(PathBuf::from(&a["--chdir=".len()..]));
                i += 1;
            }
            _ if a.starts_with("--ignore-signal")
                || a.starts_with("--default-signal")
                || a.starts_with("--block-signal") =>
            {
                i += 1
            }
            _ if a.starts_with("-u") && a.len() > 2 => {
                w.env.push((a[2..].into(), None));
                i += 1;
            }
            _ if a.starts_with("-C") && a.len() > 2 => {
                w.chdir = Some(PathBuf::from(&a[2..]));
                i += 1;
            }
            // `-S` splits a string into words: not followed.
            _ if a.starts_with('-') => return None,
            _ => break,
        }
    }
    while let Some(a) = argv.get(i) {
        let bytes = a.as_encoded_bytes();
        match bytes.iter().position(|&b| b == b'=') {
            Some(eq) if eq > 0 => {
                let s = a.to_string_lossy();
                let (k, v) = s.split_at(eq);
                w.env.push((k.into(), Some(v[1..].into())));
                i += 1;
            }
            _ => break,
        }
    }
    Some(i)
}

fn skip_qemu(argv: &[OsString], mut i: usize, w: &mut Wrapped) -> Option<usize> {
    while let Some(a) = word(argv, i) {
        if !a.starts_with('-') {
            break;
        }
        if QEMU_FLAGS.contains(&a) {
            i += 1;
            continue;
        }
        let value = word(argv, i + 1)?;
        match a {
            "-E" => {
                for assign in value.split(',') {
                    let (k, v) = assign.split_once('=')?;
                    w.env.push((k.into(), Some(v.into())));
                }
            }
            "-U" => w
                .env
                .extend(value.split(',').map(|k| (OsString::from(k), None))),
            _ => {}
        }
        i += 2;
    }
    Some(i)
}

/// Reads `argv` against the table; `forced` names the installer when the user said which.
pub fn identify(argv: &[OsString], forced: Option<&'static Installer>) -> Option<Invocation> {
    let wrapped = see_through(argv)?;
    let cmd = &argv[wrapped.at..];
    let first = cmd.first()?;
    let base = basename(first);
    let cwd = {
        let here = std::env::current_dir().ok();
        match (&wrapped.chdir, here) {
            (Some(d), Some(h)) => Some(h.join(d)),
            (Some(d), None) => Some(d.clone()),
            (None, h) => h,
        }
    };
    let (installer, launcher_len, run_launcher) = if let Some(module_at) = python_module_index(cmd)
    {
        let module = cmd[module_at].to_str()?;
        let inst = forced.or_else(|| {
            INSTALLERS
                .iter()
                .copied()
                .find(|i| i.modules.contains(&module))
        })?;
        (inst, module_at + 1, false)
    } else if let Some(inst) = INSTALLERS
        .iter()
        .copied()
        .find(|i| i.run_launchers.contains(&base))
    {
        (forced.unwrap_or(inst), 1, true)
    } else {
        let inst = forced.or_else(|| {
            INSTALLERS
                .iter()
                .copied()
                .find(|i| i.program_matches(base) && i.markers_hold(cwd.as_deref()))
        })?;
        (inst, 1, false)
    };
    let args = cmd[launcher_len..].to_vec();
    let class = if run_launcher {
        Class::ReadOnly
    } else {
        classify(installer, &args)
    };
    Some(Invocation {
        installer,
        class,
        launcher: argv[..wrapped.at + launcher_len].to_vec(),
        args,
        env: wrapped.env,
        clear_env: wrapped.clear_env,
        chdir: wrapped.chdir,
        emulator: wrapped.emulator_at.map(|at| argv[at..].to_vec()),
    })
}

/// For `python[X.Y] [-flags] -m MODULE ...`, the index of MODULE.
fn python_module_index(argv: &[OsString]) -> Option<usize> {
    if !is_python(basename(&argv[0])) {
        return None;
    }
    let mut i = 1;
    while let Some(word) = argv.get(i).and_then(|w| w.to_str()) {
        match word {
            "-m" => return argv.get(i + 1).map(|_| i + 1),
            // Interpreter flags without a value (-I, -B, -u, -E, -s, -S, -O, -q, -bb).
            w if w.starts_with('-') && w.len() >= 2 && !w.contains(['c', 'W', 'X']) => i += 1,
            _ => return None,
        }
    }
    None
}

/// The subcommand words of `args`: the words that are not options nor option values.
fn subcommand_words<'a>(installer: &Installer, args: &'a [OsString]) -> Vec<&'a str> {
    let mut words = Vec::new();
    let mut skip_value = false;
    for arg in args {
        let Some(a) = arg.to_str() else { break };
        if skip_value {
            skip_value = false;
        } else if a == "--" {
            break;
        } else if a.starts_with('-') {
            skip_value = installer.options_with_value.contains(&a);
        } else if installer
            .skip_word_prefixes
            .iter()
            .any(|p| a.starts_with(p))
            && words.is_empty()
        {
        } else {
            words.push(a);
            if words.len() == 3 {
                break;
            }
        }
    }
    words
}

fn starts_with_any(words: &[&str], paths: &[&[&str]]) -> bool {
    paths
        .iter()
        .any(|path| words.len() >= path.len() && words[..path.len()] == **path)
}

fn classify(installer: &Installer, args: &[OsString]) -> Class {
    let words = subcommand_words(installer, args);
    let writes = starts_with_any(&words, installer.writes)
        || (installer.bare_writes
            && words.is_empty()
            && !has_flag(args, &["--help", "-h", "--version", "-v", "-V"]))
        || has_flag(args, installer.writes_flags);
    if writes {
        Class::Writes
    } else {
        Class::ReadOnly
    }
}

impl Invocation {
    /// Whether the subcommand starts with one of `paths` (`["pip", "install"]`).
    pub fn subcommand_in(&self, paths: &[&[&str]]) -> bool {
        starts_with_any(&subcommand_words(self.installer, &self.args), paths)
    }
}

/// The value of `flag` in `args` (`--flag VALUE` or `--flag=VALUE`), the last one winning.
pub fn flag_value(args: &[OsString], flag: &str) -> Option<OsString> {
    let mut found = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            break;
        }
        if arg == flag {
            found = iter.next().cloned();
        } else if let Some(v) = arg
            .to_str()
            .and_then(|a| a.strip_prefix(flag))
            .and_then(|r| r.strip_prefix('='))
        {
            found = Some(v.into());
        }
    }
    found
}

/// Whether `args` holds any of `flags` before a `--`.
pub fn has_flag(args: &[OsString], flags: &[&str]) -> bool {
    args.iter()
        .take_while(|a| *a != "--")
        .any(|a| a.to_str().is_some_and(|a| flags.contains(&a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(cmd: &str) -> Vec<OsString> {
        cmd.split_whitespace().map(OsString::from).collect()
    }

    fn id(cmd: &str) -> Option<(&'static str, Class, usize)> {
        identify(&argv(cmd), None).map(|i| (i.installer.name, i.class, i.launcher.len()))
    }

    #[test]
    fn identifies_uv_and_pip() {
        use Class::*;
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
            ("pip install x", Some(("pip", Writes, 1))),
            ("pip3 install x", Some(("pip", Writes, 1))),
            ("pip3.12 download x", Some(("pip", Writes, 1))),
            ("pip wheel .", Some(("pip", Writes, 1))),
            ("pip --timeout 30 install x", Some(("pip", Writes, 1))),
            ("pip list", Some(("pip", ReadOnly, 1))),
            ("pip --version", Some(("pip", ReadOnly, 1))),
            ("pip cache dir", Some(("pip", ReadOnly, 1))),
            ("pip cache purge", Some(("pip", Writes, 1))),
            ("python3 -m pip install x", Some(("pip", Writes, 3))),
            ("python3.11 -I -m pip install x", Some(("pip", Writes, 4))),
            (
                "/opt/venv/bin/python -m pip freeze",
                Some(("pip", ReadOnly, 3)),
            ),
            ("python -c print(1)", None),
            ("python -m venv v", None),
            ("pipe install", None),
            ("make install", None),
            ("true", None),
        ];
        for (cmd, want) in cases {
            assert_eq!(id(cmd), want, "{cmd}");
        }
    }

    #[test]
    fn identifies_every_other_installer() {
        use Class::*;
        let cases = [
            ("pipx install black", ("pipx", Writes)),
            ("pipx run black", ("pipx", ReadOnly)),
            ("python3 -m pipx list", ("pipx", ReadOnly)),
            ("poetry install", ("poetry", Writes)),
            ("poetry -C sub add x", ("poetry", Writes)),
            ("poetry run pytest", ("poetry", ReadOnly)),
            ("pdm sync", ("pdm", Writes)),
            ("pdm run x", ("pdm", ReadOnly)),
            ("conda install numpy", ("conda", Writes)),
            ("conda env create -f e.yml", ("conda", Writes)),
            ("conda list", ("conda", ReadOnly)),
            ("mamba create -n x", ("mamba", Writes)),
            ("micromamba install x", ("micromamba", Writes)),
            ("npm ci", ("npm", Writes)),
            ("npm i left-pad", ("npm", Writes)),
            ("npm --registry http://r install", ("npm", Writes)),
            ("npm test", ("npm", ReadOnly)),
            ("npm run build", ("npm", ReadOnly)),
            ("npm cache verify", ("npm", Writes)),
            ("npx cowsay", ("npm", ReadOnly)),
            ("pnpm install", ("pnpm", Writes)),
            ("pnpm -C sub add x", ("pnpm", Writes)),
            ("pnpm store prune", ("pnpm", Writes)),
            ("pnpm store path", ("pnpm", ReadOnly)),
            ("pnpx x", ("pnpm", ReadOnly)),
            ("bun install", ("bun", Writes)),
            ("bun pm cache rm", ("bun", Writes)),
            ("bun run dev", ("bun", ReadOnly)),
            ("bunx x", ("bun", ReadOnly)),
            ("cargo build --release", ("cargo", Writes)),
            ("cargo +nightly fetch", ("cargo", Writes)),
            ("cargo -C sub test", ("cargo", Writes)),
            ("cargo run", ("cargo", ReadOnly)),
            ("cargo --version", ("cargo", ReadOnly)),
            ("go mod download", ("go", Writes)),
            ("go build ./...", ("go", Writes)),
            ("go clean -modcache", ("go", Writes)),
            ("go env GOMODCACHE", ("go", ReadOnly)),
            ("go version", ("go", ReadOnly)),
            ("gem install rake", ("gem", Writes)),
            ("gem list", ("gem", ReadOnly)),
            ("bundle", ("bundler", Writes)),
            ("bundle install", ("bundler", Writes)),
            ("bundle exec rake", ("bundler", ReadOnly)),
            ("bundle --version", ("bundler", ReadOnly)),
            ("apt-get install -y curl", ("apt", Writes)),
            ("apt-get -o Debug::X=1 update", ("apt", Writes)),
            ("apt install curl", ("apt", Writes)),
            ("apt-cache policy x", ("", ReadOnly)),
            ("apt-get -s check", ("apt", ReadOnly)),
            ("dpkg -i x.deb", ("dpkg", Writes)),
            ("dpkg -l", ("dpkg", ReadOnly)),
            ("composer install", ("composer", Writes)),
            ("composer -d sub require a/b", ("composer", Writes)),
            ("composer show", ("composer", ReadOnly)),
        ];
        for (cmd, (name, class)) in cases {
            match identify(&argv(cmd), None) {
                Some(i) => assert_eq!((i.installer.name, i.class), (name, class), "{cmd}"),
                None => assert_eq!(name, "", "{cmd} was not identified"),
            }
        }
    }

    #[test]
    fn yarn_rows_are_told_apart_by_the_project() {
        let dir = tempfile::tempdir().unwrap();
        let classic = dir.path().join("classic");
        let berry = dir.path().join("berry");
        let pinned = dir.path().join("pinned");
        let nested = berry.join("packages/app");
        for d in [&classic, &nested, &pinned] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(classic.join("package.json"), r#"{"name": "c"}"#).unwrap();
        std::fs::write(berry.join(".yarnrc.yml"), "nodeLinker: node-modules\n").unwrap();
        std::fs::write(
            pinned.join("package.json"),
            r#"{"packageManager": "yarn@4.1.0+sha512.abc"}"#,
        )
        .unwrap();
        let which = |d: &Path| {
            let a = [
                OsString::from("env"),
                OsString::from("-C"),
                d.into(),
                "yarn".into(),
                "install".into(),
            ];
            identify(&a, None).map(|i| i.installer.name)
        };
        assert_eq!(which(&classic), Some("yarn"));
        assert_eq!(which(&berry), Some("yarn-berry"));
        assert_eq!(
            which(&nested),
            Some("yarn-berry"),
            "a workspace below .yarnrc.yml"
        );
        assert_eq!(which(&pinned), Some("yarn-berry"));
        assert_eq!(
            package_manager_major(r#"{"packageManager":"yarn@1.22.22"}"#, "yarn"),
            Some(1)
        );
        assert_eq!(
            package_manager_major(r#"{"packageManager": "pnpm@9.0.0"}"#, "yarn"),
            None
        );
    }

    #[test]
    fn sees_through_wrappers_and_keeps_the_full_argv() {
        let inv = identify(&argv("env -u PIP_CACHE_DIR UV_CACHE_DIR=/e nice -n 5 taskset -c 0 chrt -b 0 uv pip install x"), None).unwrap();
        assert_eq!(inv.installer.name, "uv");
        assert_eq!(inv.class, Class::Writes);
        assert_eq!(
            inv.launcher.len(),
            14,
            "the wrappers stay in the launcher: {:?}",
            inv.launcher
        );
        assert_eq!(
            inv.argv(),
            argv(
                "env -u PIP_CACHE_DIR UV_CACHE_DIR=/e nice -n 5 taskset -c 0 chrt -b 0 uv pip install x"
            )
        );
        assert_eq!(inv.var("UV_CACHE_DIR"), Some("/e".into()));
        assert_eq!(inv.var("PIP_CACHE_DIR"), None);
        assert!(inv.emulator.is_none());

        let inv = identify(&argv("qemu-aarch64-static -L /usr/aarch64-linux-gnu -E UV_CONCURRENT_INSTALLS=2 ./uv sync"), None).unwrap();
        assert_eq!((inv.installer.name, inv.class), ("uv", Class::Writes));
        assert_eq!(inv.var("UV_CONCURRENT_INSTALLS"), Some("2".into()));
        assert_eq!(
            inv.emulator.as_ref().map(|a| a[0].clone()),
            Some("qemu-aarch64-static".into())
        );

        let inv = identify(&argv("env -i HOME=/h npm ci"), None).unwrap();
        assert_eq!(inv.var("HOME"), Some("/h".into()));
        assert_eq!(inv.var("PATH"), None, "env -i clears the environment");
        let inv = identify(
            &argv("env --chdir=/p nice --adjustment 3 python3 -m pip install x"),
            None,
        )
        .unwrap();
        assert_eq!((inv.installer.name, inv.launcher.len()), ("pip", 8));
        assert_eq!(inv.chdir, Some(PathBuf::from("/p")));

        for unknown in [
            "env -S 'uv sync'",
            "env FOO=1",
            "nice",
            "taskset -p 1",
            "qemu-img convert a b",
            "env make install",
        ] {
            assert!(identify(&argv(unknown), None).is_none(), "{unknown}");
        }
    }

    #[test]
    fn apt_waits_on_its_own_lock() {
        let inv = identify(&argv("nice apt-get install -y curl"), None).unwrap();
        let got = inv.with_own_lock_wait(&inv.argv(), Some(std::time::Duration::from_millis(1500)));
        assert_eq!(
            got,
            argv("nice apt-get -o DPkg::Lock::Timeout=2 install -y curl")
        );
        assert_eq!(
            inv.with_own_lock_wait(&inv.argv(), None),
            argv("nice apt-get -o DPkg::Lock::Timeout=600 install -y curl")
        );
        let mine = identify(&argv("apt-get -o DPkg::Lock::Timeout=9 install x"), None).unwrap();
        assert_eq!(
            mine.with_own_lock_wait(&mine.argv(), None),
            mine.argv(),
            "the user's own value stays"
        );
        let uv = identify(&argv("uv sync"), None).unwrap();
        assert_eq!(uv.with_own_lock_wait(&uv.argv(), None), uv.argv());
        let dpkg = identify(&argv("dpkg -i x.deb"), None).unwrap();
        assert_eq!(
            dpkg.with_own_lock_wait(&dpkg.argv(), None),
            dpkg.argv(),
            "dpkg has no wait option"
        );
    }

    #[test]
    fn every_row_is_complete() {
        let mut names = Vec::new();
        for i in INSTALLERS {
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

    #[test]
    fn forced_installer() {
        let inv = identify(&argv("./my-pip install x"), Some(&PIP)).unwrap();
        assert_eq!((inv.installer.name, inv.class), ("pip", Class::Writes));
    }

    #[test]
    fn flag_values() {
        let args = argv("--cache-dir /a x --cache-dir=/b -- --cache-dir /c");
        assert_eq!(flag_value(&args, "--cache-dir"), Some("/b".into()));
        assert!(!has_flag(&args, &["--no-cache"]));
    }
}
