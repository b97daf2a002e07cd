//! Where an installer's cache is, found by the installer's own rules as its row states them
//! (its flags, then its environment, then its config, then its default, seen through the
//! environment the command's wrappers set), asking the installer itself where its rules depend
//! on more than steady can see; and the commands that clear it with the installer's own
//! command, so that the installer's own locks and layout are honoured.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::installer::{
    self, Ask, CacheRules, ConfigFile, DefaultDir, DirArg, DirFrom, Invocation,
};

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
    if let Some(found) = from_command_line(inv) {
        return found;
    }
    let no_config = installer::has_flag(&inv.args, rules.no_config_flags)
        || (!rules.no_config_env.is_empty()
            && inv.var(rules.no_config_env).is_some_and(|v| is_truthy(&v)));
    let env_applies =
        !(rules.no_config_ignores_env && installer::has_flag(&inv.args, rules.no_config_flags));
    if env_applies {
        for var in rules.off_env {
            if let Some(v) = inv.var(var)
                && (rules.any_value_disables || is_truthy(&v))
            {
                return CacheLocation::Disabled {
                    reason: format!("{var} is set"),
                };
            }
        }
        if let Some(found) = from_env(inv, rules.dir_env.iter().filter(|d| !d.after_config)) {
            return found;
        }
    }
    let config = if no_config {
        None
    } else {
        config_mentioning(inv, rules)
    };
    if let Some(found) = from_query(inv, config, ask) {
        return found;
    }
    if env_applies
        && let Some(found) = from_env(inv, rules.dir_env.iter().filter(|d| d.after_config))
    {
        return found;
    }
    default_location(inv)
}

/// The cache as the command line sets it: off by a flag, or a directory flag's value.
fn from_command_line(inv: &Invocation) -> Option<CacheLocation> {
    let rules = &inv.installer.cache;
    if let Some(flag) = rules
        .off_flags
        .iter()
        .find(|f| installer::has_flag(&inv.args, &[f]))
    {
        return Some(CacheLocation::Disabled {
            reason: format!("{flag} in the command"),
        });
    }
    for f in rules.dir_flags {
        if let Some(value) = installer::flag_value(&inv.args, f.name) {
            let base = inv
                .cwd()
                .map_or_else(|| PathBuf::from(&value), |c| c.join(&value));
            return Some(dir(
                joined(&base, f.join),
                format!("{} in the command", f.name),
            ));
        }
    }
    None
}

/// The cache as the installer's own query answers, when it is asked (always, or because
/// `config` sets it) and answers with an absolute path.
fn from_query(
    inv: &Invocation,
    config: Option<PathBuf>,
    ask: &mut dyn FnMut(&[OsString], Duration) -> Option<String>,
) -> Option<CacheLocation> {
    let rules = &inv.installer.cache;
    let name = inv.installer.name;
    let asking = rules.ask == Ask::Always || config.is_some();
    if !asking || rules.query.is_empty() {
        return None;
    }
    let argv = query_command(inv);
    let why = match &config {
        Some(file) => format!("{} sets it", file.display()),
        None => format!("{name}'s own answer"),
    };
    let out = ask(&argv, QUERY_TIMEOUT)?;
    let line = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned();
    if !Path::new(&line).is_absolute() {
        return None;
    }
    Some(dir(
        joined(Path::new(&line), rules.query_join),
        format!("`{}` ({why})", crate::ui::command_line(&argv)),
    ))
}

/// The installer's default cache, when nothing else set one.
fn default_location(inv: &Invocation) -> CacheLocation {
    let rules = &inv.installer.cache;
    let name = inv.installer.name;
    match default_dir_for(rules, &|v| inv.var(v)) {
        Some(path) => dir(path, format!("{name}'s default")),
        None if matches!(rules.default, DefaultDir::Unknown) => CacheLocation::Disabled {
            reason: format!("{name} could not be asked where its cache is"),
        },
        None => CacheLocation::Disabled {
            reason: "no home directory to find the default cache in".into(),
        },
    }
}

fn from_env<'a>(
    inv: &Invocation,
    entries: impl Iterator<Item = &'a DirFrom>,
) -> Option<CacheLocation> {
    for d in entries {
        let Some(v) = inv.var(d.name).filter(|v| !v.is_empty()) else {
            continue;
        };
        let v = if d.list { first_of_list(&v) } else { v };
        if v.is_empty() {
            continue;
        }
        let base = Path::new(&v);
        // XDG variables must be absolute (the spec says to ignore relative ones).
        if d.name.starts_with("XDG_") && !base.is_absolute() {
            continue;
        }
        return Some(dir(joined(&absolute(base), d.join), format!("${}", d.name)));
    }
    None
}

fn first_of_list(v: &OsStr) -> OsString {
    v.to_string_lossy()
        .split([':', ','])
        .find(|s| !s.is_empty())
        .unwrap_or("")
        .into()
}

fn joined(base: &Path, join: &str) -> PathBuf {
    if join.is_empty() {
        base.to_path_buf()
    } else {
        base.join(join)
    }
}

/// The installer's default cache directory, with environment variables read through `var`.
pub fn default_dir_for(
    rules: &CacheRules,
    var: &dyn Fn(&str) -> Option<OsString>,
) -> Option<PathBuf> {
    let abs = |name: &str| var(name).map(PathBuf::from).filter(|p| p.is_absolute());
    let home = || match var("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Some(PathBuf::from(h)),
        None => crate::env::home_dir(),
    };
    match rules.default {
        DefaultDir::UserCache(rel) => abs("XDG_CACHE_HOME")
            .or_else(|| home().map(|h| h.join(".cache")))
            .map(|b| b.join(rel)),
        DefaultDir::UserData(rel) => abs("XDG_DATA_HOME")
            .or_else(|| home().map(|h| h.join(".local/share")))
            .map(|b| b.join(rel)),
        DefaultDir::Home(rel) => home().map(|h| h.join(rel)),
        DefaultDir::Absolute(p) => Some(PathBuf::from(p)),
        DefaultDir::Unknown => None,
    }
}

/// The default cache directory as steady's own environment sees it (for the safety checks).
pub fn default_dir(rules: &CacheRules) -> Option<PathBuf> {
    default_dir_for(rules, &|v| std::env::var_os(v))
}

fn dir(path: PathBuf, source: String) -> CacheLocation {
    CacheLocation::Dir { path, source }
}

fn is_truthy(v: &OsStr) -> bool {
    !matches!(
        v.to_str().map(|s| s.trim().to_ascii_lowercase()).as_deref(),
        Some("" | "0" | "false" | "no" | "off")
    )
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The installer's query, run the way the user runs the installer, with the options of the
/// command that change which config it reads.
fn query_command(inv: &Invocation) -> Vec<OsString> {
    let rules = &inv.installer.cache;
    let mut argv = inv.launcher.clone();
    for flag in rules.query_value_flags {
        if let Some(v) = installer::flag_value(&inv.args, flag) {
            argv.push(OsString::from(flag));
            argv.push(v);
        }
    }
    for flag in rules.query_flags {
        if installer::has_flag(&inv.args, &[flag]) {
            argv.push(OsString::from(flag));
        }
    }
    argv.extend(rules.query.iter().map(OsString::from));
    argv
}

/// The first config file of the installer that exists and mentions one of its cache keys.
fn config_mentioning(inv: &Invocation, rules: &CacheRules) -> Option<PathBuf> {
    if rules.config_keys.is_empty() {
        return None;
    }
    let cwd = inv.cwd().map(|c| {
        let moved = rules
            .cwd_flags
            .iter()
            .find_map(|f| installer::flag_value(&inv.args, f));
        moved.map_or_else(|| c.clone(), |m| c.join(m))
    });
    let home = inv
        .var("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(crate::env::home_dir);
    let wrapped = inv.clear_env
        || inv
            .env
            .iter()
            .any(|(k, _)| k == "XDG_CONFIG_HOME" || k == "HOME");
    let config_home = if wrapped {
        inv.var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| home.as_ref().map(|h| h.join(".config")))
    } else {
        crate::env::user_config_dir()
    };
    let mut candidates = Vec::new();
    for file in rules.config_files {
        match *file {
            ConfigFile::Env(var) => {
                candidates.extend(inv.var(var).filter(|v| !v.is_empty()).map(PathBuf::from))
            }
            ConfigFile::Project(name) => {
                if let Some(cwd) = &cwd {
                    candidates.extend(cwd.ancestors().map(|d| d.join(name)));
                }
            }
            ConfigFile::UserConfig(rel) => {
                candidates.extend(config_home.as_ref().map(|d| d.join(rel)))
            }
            ConfigFile::Home(rel) => candidates.extend(home.as_ref().map(|d| d.join(rel))),
            ConfigFile::Absolute(p) => candidates.push(PathBuf::from(p)),
            ConfigFile::VirtualEnv(rel) => candidates.extend(
                inv.var("VIRTUAL_ENV")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .map(|d| d.join(rel)),
            ),
        }
    }
    candidates.into_iter().find(|p| {
        std::fs::read(p).is_ok_and(|bytes| {
            rules
                .config_keys
                .iter()
                .any(|k| bytes.windows(k.len()).any(|w| w == k.as_bytes()))
        })
    })
}

/// How the installer's own clean commands are pointed at `path`: extra arguments, and an
/// environment variable to set through `env`.
fn pointed_at(inv: &Invocation, path: &Path) -> (Vec<OsString>, Option<OsString>) {
    let rules = &inv.installer.cache;
    match rules.dir_arg {
        DirArg::Flag(flag) => {
            let join = rules
                .dir_flags
                .iter()
                .find(|f| f.name == flag)
                .map_or("", |f| f.join);
            let value = match join {
                "" => path.to_path_buf(),
                j => path.strip_suffix_path(j),
            };
            (vec![flag.into(), value.into()], None)
        }
        DirArg::Env(var) => {
            let mut assign = OsString::from(var);
            assign.push("=");
            assign.push(path);
            (Vec::new(), Some(assign))
        }
        DirArg::Same => (Vec::new(), None),
    }
}

/// `launcher + sub + (cache pointer) + extra`, run through `env VAR=path` where the installer
/// takes its cache from the environment.
pub fn installer_command(
    inv: &Invocation,
    path: &Path,
    sub: &[&str],
    extra: &[OsString],
) -> Vec<OsString> {
    let (flags, assign) = pointed_at(inv, path);
    let mut argv = Vec::new();
    if let Some(a) = assign {
        argv.push(OsString::from("env"));
        argv.push(a);
    }
    argv.extend(inv.launcher.iter().cloned());
    argv.extend(sub.iter().map(OsString::from));
    argv.extend(extra.iter().cloned());
    argv.extend(flags);
    argv
}

/// The command that clears the whole cache at `path`, run the way the user ran the installer;
/// `None` when the installer has no such command (steady removes the entries itself).
pub fn clean_command(inv: &Invocation, path: &Path) -> Option<Vec<OsString>> {
    match inv.installer.cache.clean_full {
        installer::FullClean::Command(sub) => Some(installer_command(inv, path, sub, &[])),
        _ => None,
    }
}

trait StripSuffixPath {
    fn strip_suffix_path(&self, suffix: &str) -> PathBuf;
}

impl StripSuffixPath for Path {
    /// `self` without the trailing components `suffix`, or `self` when it does not end so.
    fn strip_suffix_path(&self, suffix: &str) -> PathBuf {
        let mut p = self.to_path_buf();
        if !self.ends_with(suffix) {
            return p;
        }
        for _ in Path::new(suffix).components() {
            p.pop();
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::installer::identify;

    fn inv(cmd: &[&str]) -> Invocation {
        let argv: Vec<OsString> = cmd.iter().map(OsString::from).collect();
        identify(&argv, None).unwrap()
    }

    fn locate_for(cmd: &[&str]) -> CacheLocation {
        locate(&inv(cmd), &mut |_, _| None)
    }

    fn path_of(loc: CacheLocation) -> PathBuf {
        match loc {
            CacheLocation::Dir { path, .. } => path,
            other => panic!("no cache: {other:?}"),
        }
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
    fn flags_and_wrapper_env_follow_each_row() {
        let cases: &[(&[&str], &str)] = &[
            (&["pnpm", "install", "--store-dir", "/s"], "/s/v11"),
            (&["yarn", "--cache-folder", "/y", "install"], "/y/v6"),
            (&["npm", "ci", "--cache=/n"], "/n"),
            (&["bun", "install", "--cache-dir", "/b"], "/b"),
            (&["gem", "install", "-i", "/g", "rake"], "/g/cache"),
            (
                &[
                    "env",
                    "GOPATH=/gp1:/gp2",
                    "GOMODCACHE=",
                    "go",
                    "mod",
                    "download",
                ],
                "/gp1/pkg/mod",
            ),
            (&["env", "CARGO_HOME=/ch", "cargo", "fetch"], "/ch"),
            (
                &[
                    "env",
                    "COMPOSER_HOME=/co",
                    "COMPOSER_CACHE_DIR=",
                    "composer",
                    "install",
                ],
                "/co/cache",
            ),
            (
                &[
                    "env",
                    "BUN_INSTALL=/bi",
                    "BUN_INSTALL_CACHE_DIR=",
                    "bun",
                    "install",
                ],
                "/bi/install/cache",
            ),
            (
                &["env", "HOME=/h", "CARGO_HOME=", "cargo", "fetch"],
                "/h/.cargo",
            ),
            (
                &[
                    "env",
                    "HOME=/h",
                    "npm_config_cache=",
                    "NPM_CONFIG_CACHE=",
                    "npm",
                    "ci",
                ],
                "/h/.npm",
            ),
            (&["nice", "env", "UV_CACHE_DIR=/u", "uv", "sync"], "/u"),
            (
                &["env", "-i", "HOME=/h", "apt-get", "install", "x"],
                "/var/cache/apt/archives",
            ),
        ];
        for (cmd, want) in cases {
            assert_eq!(path_of(locate_for(cmd)), PathBuf::from(want), "{cmd:?}");
        }
    }

    #[test]
    fn asks_when_the_rules_are_uncertain() {
        let i = inv(&[
            "env", "-i", "HOME=/h", "nice", "pnpm", "-C", "sub", "install",
        ]);
        let mut asked = Vec::new();
        let loc = locate(&i, &mut |argv, _| {
            asked.push(crate::ui::command_line(argv));
            Some("warning on stdout\n/answer/v11\n".into())
        });
        assert_eq!(asked, ["env -i 'HOME=/h' nice pnpm -C sub store path"]);
        assert_eq!(path_of(loc), PathBuf::from("/answer/v11"));
        // When the installer cannot answer, its default stands.
        assert_eq!(
            path_of(locate(&i, &mut |_, _| None)),
            PathBuf::from("/h/.local/share/pnpm/store/v11")
        );
        let gem = inv(&["env", "-i", "gem", "install", "x"]);
        assert_eq!(
            path_of(locate(&gem, &mut |_, _| Some(
                "/var/lib/gems/3.1.0\n".into()
            ))),
            PathBuf::from("/var/lib/gems/3.1.0/cache")
        );
        assert!(
            matches!(
                locate(&gem, &mut |_, _| None),
                CacheLocation::Disabled { .. }
            ),
            "gem's default is only gem's to tell"
        );
    }

    #[test]
    fn clean_commands_point_at_the_resolved_cache() {
        let pip = inv(&["python3", "-m", "pip", "install", "x"]);
        assert_eq!(
            crate::ui::command_line(&clean_command(&pip, Path::new("/c d")).unwrap()),
            "python3 -m pip cache purge --cache-dir '/c d'"
        );
        let yarn = inv(&["yarn", "install"]);
        assert_eq!(
            crate::ui::command_line(&clean_command(&yarn, Path::new("/y/v6")).unwrap()),
            "yarn cache clean --cache-folder /y"
        );
        let go = inv(&["nice", "go", "mod", "download"]);
        assert_eq!(
            crate::ui::command_line(&clean_command(&go, Path::new("/m")).unwrap()),
            "env 'GOMODCACHE=/m' nice go clean -modcache"
        );
        let npm = inv(&["npm", "ci"]);
        assert_eq!(
            crate::ui::command_line(&clean_command(&npm, Path::new("/n")).unwrap()),
            "npm cache clean --force --cache /n"
        );
        assert!(
            clean_command(&inv(&["cargo", "build"]), Path::new("/c")).is_none(),
            "cargo has no clean command"
        );
    }
}
