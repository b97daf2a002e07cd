//! What steady knows about each installer, as data: one `Installer` row per installer (how it
//! is invoked, which subcommands write its cache or an environment, where its cache lives and
//! how to clear it), and `identify`, which reads a command line against the table.

use std::ffi::{OsStr, OsString};
use std::path::Path;

use crate::classify::{Failure, PackageHint, Signature, sig};

/// One row of the installer table.
#[derive(Debug)]
pub struct Installer {
    pub name: &'static str,
    /// Program names (basename of argv[0]), besides those `program_matches` accepts.
    pub programs: &'static [&'static str],
    /// Versioned program names: `prefix` followed by digits and dots (`pip3`, `pip3.12`).
    pub versioned_prefix: Option<&'static str>,
    /// Launcher names that mean a read-only subcommand of this installer (`uvx` = `uv tool run`).
    pub run_launchers: &'static [&'static str],
    /// `python -m <module>` names.
    pub modules: &'static [&'static str],
    /// Command names `steady init` wraps in a shell function by default: the installer's own
    /// entry points. Not its run-only launchers (`uvx`), which steady would only exec.
    pub wrap: &'static [&'static str],
    /// Subcommand word paths that write the cache or an environment; a path matches when the
    /// command's subcommand words start with it.
    pub writes: &'static [&'static [&'static str]],
    /// Options before the subcommand that take a separate value (so the value is not taken for
    /// a subcommand word).
    pub options_with_value: &'static [&'static str],
    pub cache: CacheRules,
    pub recovery: Recovery,
}

/// What steady knows about an installer's failures and how to mend them.
#[derive(Debug)]
pub struct Recovery {
    /// Output texts that classify a failed attempt (see `classify`).
    pub signatures: &'static [Signature],
    /// Where its messages name the broken package.
    pub package_hints: &'static [PackageHint],
    /// Arguments that clear one package's cache entries; the package names are appended.
    pub clean_package: Option<&'static [&'static str]>,
    /// Checks every entry of the cache and names the packages whose entries are damaged.
    pub verify: Option<fn(&Path) -> Vec<String>>,
    /// Flag (followed by a package name) that makes the installer reinstall a package: for
    /// packages installed from an entry that was only later found damaged.
    pub reinstall_flag: Option<&'static str>,
    /// Subcommands that accept `reinstall_flag`.
    pub reinstall_in: &'static [&'static [&'static str]],
    /// The environment variable that sizes the installer's parallelism (threads, workers).
    pub concurrency_env: Option<&'static str>,
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
    /// The flag that names the cache directory (`--cache-dir`).
    pub dir_flag: &'static str,
    pub dir_env: &'static str,
    /// Flags and env vars that make the installer ignore config files.
    pub no_config_flags: &'static [&'static str],
    pub no_config_env: &'static str,
    /// Config files, relative to a base, that may set the cache dir; if one mentions
    /// `config_key`, steady asks the installer instead of parsing the file.
    pub config_files: &'static [ConfigFile],
    pub config_key: &'static str,
    /// Arguments that make the installer print its cache directory.
    pub query: &'static [&'static str],
    /// Default directory name under the user cache dir (`$XDG_CACHE_HOME` or `~/.cache`).
    pub default_subdir: &'static str,
    /// Arguments that clear the whole cache (the installer's own command honours its own lock).
    pub clean_full: &'static [&'static str],
    /// Names in the cache root that show a directory is this installer's cache (a trailing
    /// `*` matches a versioned bucket such as `wheels-v8`). steady clears nothing else.
    pub markers: &'static [&'static str],
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

pub const UV: Installer = Installer {
    name: "uv",
    programs: &["uv"],
    versioned_prefix: None,
    run_launchers: &["uvx"],
    modules: &["uv"],
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
    options_with_value: &[
        "--cache-dir",
        "--directory",
        "--project",
        "--config-file",
        "--color",
        "--python-preference",
        "--allow-insecure-host",
    ],
    cache: CacheRules {
        off_flags: &["--no-cache", "-n", "--no-cache-dir"],
        off_env: &["UV_NO_CACHE"],
        any_value_disables: false,
        dir_flag: "--cache-dir",
        dir_env: "UV_CACHE_DIR",
        no_config_flags: &["--no-config"],
        no_config_env: "UV_NO_CONFIG",
        config_files: &[
            ConfigFile::Env("UV_CONFIG_FILE"),
            ConfigFile::Project("uv.toml"),
            ConfigFile::Project("pyproject.toml"),
            ConfigFile::UserConfig("uv/uv.toml"),
            ConfigFile::Absolute("/etc/xdg/uv/uv.toml"),
            ConfigFile::Absolute("/etc/uv/uv.toml"),
        ],
        config_key: "cache-dir",
        query: &["cache", "dir"],
        default_subdir: "uv",
        clean_full: &["cache", "clean"],
        markers: &["archive-v*", "wheels-v*", "simple-v*", "sdists-v*", "interpreter-v*", "CACHEDIR.TAG"],
    },
    recovery: Recovery {
        signatures: &[
            sig(Failure::Corruption, "Failed to read from the distribution cache"),
            sig(Failure::Corruption, "Failed to deserialize cache entry"),
            sig(Failure::Corruption, "Reading from cache archive failed"),
            sig(Failure::Corruption, "Cache deserialization failed"),
            sig(Failure::Corruption, "The wheel is invalid"),
            sig(Failure::Corruption, "Run `uv cache clean` to clear the cache"),
            sig(Failure::Corruption, "does not appear to be a Python project"),
            sig(Failure::Corruption, "Bad CRC"),
            sig(Failure::Corruption, "Invalid zip file structure"),
            sig(Failure::Corruption, "Failed to extract archive"),
            sig(Failure::Corruption, "/archive-v0/"),
            sig(Failure::Corruption, "Hash mismatch for"),
            sig(Failure::Network, "Request failed after"),
            sig(Failure::Network, "error sending request for url"),
            sig(Failure::Network, "client error (Connect)"),
            sig(Failure::Network, "client error (SendRequest)"),
            sig(Failure::Network, "connection closed before message completed"),
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
            sig(Failure::Deterministic, "No solution found when resolving dependencies"),
            sig(Failure::Deterministic, "we can conclude that your requirements are unsatisfiable"),
            sig(Failure::Deterministic, "error: unexpected argument"),
            sig(Failure::Deterministic, "error: invalid value"),
            sig(Failure::Deterministic, "error: File not found"),
            sig(Failure::Deterministic, "Failed to parse"),
            sig(Failure::Deterministic, "No virtual environment found"),
            sig(Failure::Deterministic, "No interpreter found"),
            sig(Failure::Deterministic, "is not a valid package name"),
        ],
        package_hints: &[
            PackageHint { after: ".whl (", until: &['=', ')', ' ', '<', '>', '~', '!', '@'] },
            PackageHint { after: "Failed to download `", until: &['=', '`', ' ', '<', '>', '~', '!', '@'] },
            PackageHint { after: "Failed to download and build `", until: &['=', '`', ' ', '<', '>', '~', '!', '@'] },
            PackageHint { after: "Failed to build `", until: &['=', '`', ' ', '<', '>', '~', '!', '@'] },
            PackageHint { after: "the source distribution for `", until: &['=', '`', ' '] },
        ],
        clean_package: Some(&["cache", "clean"]),
        verify: Some(crate::verify::uv_archive),
        reinstall_flag: Some("--reinstall-package"),
        reinstall_in: &[&["pip", "install"], &["pip", "sync"], &["sync"], &["add"]],
        concurrency_env: Some("UV_CONCURRENT_INSTALLS"),
    },
};

pub const PIP: Installer = Installer {
    name: "pip",
    programs: &["pip"],
    versioned_prefix: Some("pip"),
    run_launchers: &[],
    modules: &["pip"],
    wrap: &["pip", "pip3"],
    writes: &[
        &["install"],
        &["download"],
        &["wheel"],
        &["uninstall"],
        &["cache", "purge"],
        &["cache", "remove"],
    ],
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
    cache: CacheRules {
        off_flags: &["--no-cache-dir"],
        off_env: &["PIP_NO_CACHE_DIR"],
        any_value_disables: true,
        dir_flag: "--cache-dir",
        dir_env: "PIP_CACHE_DIR",
        no_config_flags: &["--isolated"],
        no_config_env: "PIP_ISOLATED",
        config_files: &[
            ConfigFile::Env("PIP_CONFIG_FILE"),
            ConfigFile::Absolute("/etc/xdg/pip/pip.conf"),
            ConfigFile::Absolute("/etc/pip.conf"),
            ConfigFile::UserConfig("pip/pip.conf"),
            ConfigFile::Home(".pip/pip.conf"),
            ConfigFile::VirtualEnv("pip.conf"),
        ],
        config_key: "cache-dir",
        query: &["cache", "dir"],
        default_subdir: "pip",
        clean_full: &["cache", "purge"],
        markers: &["http-v2", "http", "wheels", "selfcheck", "selfcheck.json"],
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
            sig(Failure::Deterministic, "Could not find a version that satisfies"),
            sig(Failure::Deterministic, "ResolutionImpossible"),
            sig(Failure::Deterministic, "Invalid requirement"),
            sig(Failure::Deterministic, "Could not open requirements file"),
            sig(Failure::Deterministic, "no such option"),
            sig(Failure::Deterministic, "externally-managed-environment"),
        ],
        package_hints: &[PackageHint { after: "Wheel '", until: &['\''] }],
        clean_package: Some(&["cache", "remove"]),
        verify: Some(crate::verify::pip_wheels),
        reinstall_flag: None,
        reinstall_in: &[],
        concurrency_env: None,
    },
};

/// Every installer steady knows, in the order `identify` tries them.
pub const INSTALLERS: &[&Installer] = &[&UV, &PIP];

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
    /// The words that start the installer (`uv`, or `python3 -m pip`), for running its own
    /// commands (cache query, clean) the same way.
    pub launcher: Vec<OsString>,
    /// The installer's own arguments, after the launcher.
    pub args: Vec<OsString>,
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

/// Reads `argv` against the table; `forced` names the installer when the user said which.
pub fn identify(argv: &[OsString], forced: Option<&'static Installer>) -> Option<Invocation> {
    let first = argv.first()?;
    let base = basename(first);
    let (installer, launcher_len, run_launcher) = if let Some(module_at) = python_module_index(argv)
    {
        let module = argv[module_at].to_str()?;
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
        let inst =
            forced.or_else(|| INSTALLERS.iter().copied().find(|i| i.program_matches(base)))?;
        (inst, 1, false)
    };
    let args = argv[launcher_len..].to_vec();
    let class = if run_launcher {
        Class::ReadOnly
    } else {
        classify(installer, &args)
    };
    Some(Invocation {
        installer,
        class,
        launcher: argv[..launcher_len].to_vec(),
        args,
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
        } else {
            words.push(a);
            if words.len() == 2 {
                break;
            }
        }
    }
    words
}

fn starts_with_any(words: &[&str], paths: &[&[&str]]) -> bool {
    paths.iter().any(|path| words.len() >= path.len() && words[..path.len()] == **path)
}

fn classify(installer: &Installer, args: &[OsString]) -> Class {
    if starts_with_any(&subcommand_words(installer, args), installer.writes) { Class::Writes } else { Class::ReadOnly }
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

    fn id(cmd: &str) -> Option<(&'static str, Class, usize)> {
        let argv: Vec<OsString> = cmd.split_whitespace().map(OsString::from).collect();
        identify(&argv, None).map(|i| (i.installer.name, i.class, i.launcher.len()))
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
            ("pipx install x", None),
            ("pipe install", None),
            ("make install", None),
            ("true", None),
        ];
        for (cmd, want) in cases {
            assert_eq!(id(cmd), want, "{cmd}");
        }
    }

    #[test]
    fn forced_installer() {
        let argv: Vec<OsString> = ["./my-pip", "install", "x"].map(OsString::from).to_vec();
        let inv = identify(&argv, Some(&PIP)).unwrap();
        assert_eq!((inv.installer.name, inv.class), ("pip", Class::Writes));
    }

    #[test]
    fn flag_values() {
        let args: Vec<OsString> = [
            "--cache-dir",
            "/a",
            "x",
            "--cache-dir=/b",
            "--",
            "--cache-dir",
            "/c",
        ]
        .map(OsString::from)
        .to_vec();
        assert_eq!(flag_value(&args, "--cache-dir"), Some("/b".into()));
        assert!(!has_flag(&args, &["--no-cache"]));
    }
}
