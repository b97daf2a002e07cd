//! Where an installer's cache is, found by the installer's own rules (its flags, then its
//! environment, then its config, then its default), and clearing it with the installer's own
//! command, so that the installer's own locks and layout are honoured.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::installer::{self, CacheRules, ConfigFile, Invocation};
use crate::settings;

/// The result of looking for a command's cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    /// The cache directory and how it was found (for `-v` and `doctor`).
    Dir { path: PathBuf, source: String },
    /// The command runs without a shared cache (`--no-cache`): nothing to lock or clear.
    Disabled { reason: String },
}

/// How long steady waits for an installer to print its own cache directory.
const QUERY_TIMEOUT: Duration = Duration::from_secs(15);

/// Finds the cache of `inv`. `ask` runs the installer's query command and returns its stdout.
pub fn locate(
    inv: &Invocation,
    ask: &mut dyn FnMut(&[OsString], Duration) -> Option<String>,
) -> CacheLocation {
    let rules = &inv.installer.cache;
    let name = inv.installer.name;
    if let Some(flag) = rules
        .off_flags
        .iter()
        .find(|f| installer::has_flag(&inv.args, &[f]))
    {
        return CacheLocation::Disabled {
            reason: format!("{flag} in the command"),
        };
    }
    if let Some(value) = installer::flag_value(&inv.args, rules.dir_flag) {
        return dir(
            absolute(Path::new(&value)),
            format!("{} in the command", rules.dir_flag),
        );
    }
    let ignore_env_and_config =
        name == "pip" && installer::has_flag(&inv.args, rules.no_config_flags);
    if !ignore_env_and_config {
        for var in rules.off_env {
            if let Some(v) = std::env::var_os(var)
                && (rules.any_value_disables || is_truthy(&v))
            {
                return CacheLocation::Disabled {
                    reason: format!("{var} is set"),
                };
            }
        }
        if let Some(v) = std::env::var_os(rules.dir_env).filter(|v| !v.is_empty()) {
            return dir(absolute(Path::new(&v)), format!("${}", rules.dir_env));
        }
    }
    let configs_apply = !installer::has_flag(&inv.args, rules.no_config_flags)
        && std::env::var_os(rules.no_config_env).is_none_or(|v| !is_truthy(&v));
    if configs_apply && let Some(file) = config_mentioning(rules) {
        let mut argv = inv.launcher.clone();
        argv.extend(passthrough_flags(&inv.args));
        argv.extend(rules.query.iter().map(OsString::from));
        if let Some(out) = ask(&argv, QUERY_TIMEOUT) {
            let line = out
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_owned();
            if Path::new(&line).is_absolute() {
                return dir(
                    PathBuf::from(line),
                    format!("`{}` ({} sets cache-dir)", show(&argv), file.display()),
                );
            }
        }
    }
    match settings::user_cache_dir() {
        Some(base) => dir(base.join(rules.default_subdir), format!("{name}'s default")),
        None => CacheLocation::Disabled {
            reason: "no home directory to find the default cache in".into(),
        },
    }
}

fn dir(path: PathBuf, source: String) -> CacheLocation {
    CacheLocation::Dir { path, source }
}

fn is_truthy(v: &std::ffi::OsStr) -> bool {
    !matches!(
        v.to_str().map(|s| s.trim().to_ascii_lowercase()).as_deref(),
        Some("" | "0" | "false" | "no" | "off")
    )
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Global flags that change which config the installer reads; passed on to its query command.
fn passthrough_flags(args: &[OsString]) -> Vec<OsString> {
    let mut out = Vec::new();
    for flag in ["--config-file", "--directory", "--project"] {
        if let Some(v) = installer::flag_value(args, flag) {
            out.push(OsString::from(flag));
            out.push(v);
        }
    }
    for flag in ["--no-config", "--isolated"] {
        if installer::has_flag(args, &[flag]) {
            out.push(OsString::from(flag));
        }
    }
    out
}

/// The first config file of the installer that exists and mentions the cache key.
fn config_mentioning(rules: &CacheRules) -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok();
    let mut candidates = Vec::new();
    for file in rules.config_files {
        match *file {
            ConfigFile::Env(var) => candidates.extend(std::env::var_os(var).map(PathBuf::from)),
            ConfigFile::Project(name) => {
                if let Some(cwd) = &cwd {
                    candidates.extend(cwd.ancestors().map(|d| d.join(name)));
                }
            }
            ConfigFile::UserConfig(rel) => {
                candidates.extend(settings::user_config_dir().map(|d| d.join(rel)))
            }
            ConfigFile::Home(rel) => candidates.extend(settings::home_dir().map(|d| d.join(rel))),
            ConfigFile::Absolute(p) => candidates.push(PathBuf::from(p)),
            ConfigFile::VirtualEnv(rel) => {
                candidates.extend(settings::env_abs_path("VIRTUAL_ENV").map(|d| d.join(rel)))
            }
        }
    }
    candidates.into_iter().find(|p| {
        std::fs::read(p).is_ok_and(|bytes| {
            bytes
                .windows(rules.config_key.len())
                .any(|w| w == rules.config_key.as_bytes())
        })
    })
}

/// The command that clears the whole cache at `path`, run the way the user ran the installer.
pub fn clean_command(inv: &Invocation, path: &Path) -> Vec<OsString> {
    let rules = &inv.installer.cache;
    let mut argv = inv.launcher.clone();
    argv.extend(rules.clean_full.iter().map(OsString::from));
    argv.push(rules.dir_flag.into());
    argv.push(path.into());
    argv
}

pub fn show(argv: &[OsString]) -> String {
    shell_words::join(argv.iter().map(|a| a.to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::installer::identify;

    fn locate_for(cmd: &[&str]) -> CacheLocation {
        let argv: Vec<OsString> = cmd.iter().map(OsString::from).collect();
        let inv = identify(&argv, None).unwrap();
        locate(&inv, &mut |_, _| None)
    }

    #[test]
    fn flags_win_and_no_cache_disables() {
        assert_eq!(
            locate_for(&["uv", "--cache-dir", "/x/c", "pip", "install", "a"]),
            CacheLocation::Dir {
                path: "/x/c".into(),
                source: "--cache-dir in the command".into()
            }
        );
        assert_eq!(
            locate_for(&["pip", "install", "--cache-dir=/y", "a"]),
            CacheLocation::Dir {
                path: "/y".into(),
                source: "--cache-dir in the command".into()
            }
        );
        assert!(matches!(
            locate_for(&["uv", "pip", "install", "--no-cache", "a"]),
            CacheLocation::Disabled { .. }
        ));
        assert!(matches!(
            locate_for(&["pip", "install", "--no-cache-dir", "a"]),
            CacheLocation::Disabled { .. }
        ));
    }

    #[test]
    fn clean_command_uses_the_same_launcher() {
        let argv: Vec<OsString> = ["python3", "-m", "pip", "install", "x"]
            .map(OsString::from)
            .to_vec();
        let inv = identify(&argv, None).unwrap();
        assert_eq!(
            show(&clean_command(&inv, Path::new("/c d"))),
            "python3 -m pip cache purge --cache-dir '/c d'"
        );
    }
}
