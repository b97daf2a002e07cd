//! Reading a command line against the installer table: seeing through the wrappers in front
//! of the installer (`env VAR=… cmd`, `nice`, `ionice`, `nohup`, `taskset`, `chrt`, a qemu-user
//! emulator), finding the installer by program name, `python -m` module or run-only launcher
//! (and, where two rows share a program, by the project's markers), and classifying the
//! command as writing or read-only. The result, an `Invocation`, is what the rest of steady
//! works from.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use super::INSTALLERS;
use super::args::{has_flag, starts_with_any, subcommand_words};
use super::row::{Installer, LockStrategy, ProjectMarker};

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

    /// Whether the subcommand starts with one of `paths` (`["pip", "install"]`).
    pub fn subcommand_in(&self, paths: &[&[&str]]) -> bool {
        starts_with_any(&subcommand_words(self.installer, &self.args), paths)
    }
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
    } else if let Some(script_at) = php_script_index(cmd) {
        let script = basename(&cmd[script_at]);
        let inst = forced.or_else(|| {
            INSTALLERS
                .iter()
                .copied()
                .find(|i| i.program_matches(script))
        })?;
        (inst, script_at + 1, false)
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

/// For `php[X.Y] [-flags] SCRIPT ...` where SCRIPT is an installer's program (`php
/// composer.phar install`, as composer's documentation spells it), the index of SCRIPT.
fn php_script_index(argv: &[OsString]) -> Option<usize> {
    let php = basename(&argv[0]).strip_prefix("php")?;
    if !php.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let mut i = 1;
    while let Some(word) = argv.get(i).and_then(|w| w.to_str()) {
        match word {
            // php's options that take a separate value (`-d memory_limit=-1`, `-c php.ini`).
            "-d" | "-c" | "-z" => i += 2,
            w if w.starts_with('-') => i += 1,
            _ => break,
        }
    }
    let script = basename(argv.get(i)?);
    INSTALLERS
        .iter()
        .any(|r| r.program_matches(script))
        .then_some(i)
}

/// `Writes` when the subcommand words start with one of the row's `writes` paths, when the
/// bare command writes (`yarn`, `bundle`), or when an option writes (`dpkg -i`).
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

/// A command line split on spaces, for tests.
#[cfg(test)]
pub(super) fn argv(cmd: &str) -> Vec<OsString> {
    cmd.split_whitespace().map(OsString::from).collect()
}

/// What `identify` makes of `cmd`: the row's name, the class and the launcher's length.
#[cfg(test)]
pub(super) fn identified(cmd: &str) -> Option<(&'static str, Class, usize)> {
    identify(&argv(cmd), None).map(|i| (i.installer.name, i.class, i.launcher.len()))
}

/// Asserts each `(command, row name, class)`; a row name of `""` means not identified.
#[cfg(test)]
pub(super) fn assert_identified(cases: &[(&str, &str, Class)]) {
    for &(cmd, name, class) in cases {
        match identify(&argv(cmd), None) {
            Some(i) => assert_eq!((i.installer.name, i.class), (name, class), "{cmd}"),
            None => assert_eq!(name, "", "{cmd} was not identified"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::installer::PIP;

    #[test]
    fn commands_of_no_installer_are_not_identified() {
        for cmd in [
            "python -c print(1)",
            "python -m venv v",
            "make install",
            "true",
        ] {
            assert_eq!(identified(cmd), None, "{cmd}");
        }
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
    fn a_command_steady_locks_for_gets_no_wait_arguments() {
        let uv = identify(&argv("uv sync"), None).unwrap();
        assert_eq!(uv.with_own_lock_wait(&uv.argv(), None), uv.argv());
    }

    #[test]
    fn reads_the_package_manager_major() {
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
    fn forced_installer() {
        let inv = identify(&argv("./my-pip install x"), Some(&PIP)).unwrap();
        assert_eq!((inv.installer.name, inv.class), ("pip", Class::Writes));
    }
}
