//! `steady init <shell>`: the shell integration (spec section 8). Each shell's script is a real
//! file in `shell/`, embedded at build time; `@STEADY@` becomes this binary's path, quoted for
//! that shell, and the block between the wrapper markers is repeated once per wrapped command
//! with `@NAME@` set. Names are checked here before they reach a script, so the scripts never
//! need to quote them.
//!
//! What a name is comes from `installer::identify`, the same reading a wrapped run gets: an
//! installer's program (`uv`, `pip3.12`) or run launcher (`uvx`, `npx`: steady execs those
//! unchanged, as it does `uv run`) gets the plain wrapper; a Python interpreter (`python3`),
//! which steady knows only through `-m <installer>`, gets a wrapper that sends only those calls
//! through steady, since every script run would otherwise pass through it; anything else is
//! wrapped as asked, with a warning, since steady would only exec it.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::exit::Outcome;
use crate::installer;
use crate::surface::cli::{InitArgs, InitShell};
use crate::ui;

const BASH: &str = include_str!("../../shell/steady.bash");
const ZSH: &str = include_str!("../../shell/steady.zsh");
const FISH: &str = include_str!("../../shell/steady.fish");

/// The lines around the wrapper definitions in each template: the plain one, and the one for
/// a Python interpreter.
const BEGIN_WRAPPER: &str = "# @BEGIN_WRAPPER@\n";
const END_WRAPPER: &str = "# @END_WRAPPER@\n";
const BEGIN_PYTHON: &str = "# @BEGIN_PYTHON_WRAPPER@\n";
const END_PYTHON: &str = "# @END_PYTHON_WRAPPER@\n";

/// The word in a `--wrap` list that stands for the default set.
const DEFAULT: &str = "default";

/// Names no wrapper may take: the reserved words of bash, zsh and fish (a function by that
/// name is never called, or fish refuses to define it), and the builtins the scripts themselves
/// call, which a wrapper would hijack.
const RESERVED: &str = "_ always and argparse begin break builtin case command continue coproc \
    declare do done elif else end esac eval exec export fi float for foreach function if in \
    integer local nocorrect not or read readonly repeat return select set status string switch \
    test then time typeset until while";

pub fn run(args: &InitArgs) -> Outcome {
    let names = expand(&args.wrap);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let names = match checked(&names) {
        Ok(n) => n,
        Err(msg) => {
            ui::error(&msg);
            return Outcome::SteadyFailed;
        }
    };
    let wrappers: Vec<(&str, Kind)> = names.iter().map(|n| (*n, kind(n))).collect();
    for (name, k) in &wrappers {
        if *k == Kind::Unknown {
            warn_unknown(name, args.shell);
        }
    }
    let exe = match steady_path() {
        Ok(p) => p,
        Err(e) => {
            ui::error(&format!("cannot find the path of the steady binary: {e}"));
            return Outcome::SteadyFailed;
        }
    };
    let Some(exe) = exe.to_str() else {
        ui::error(&format!(
            "the path of the steady binary, `{}`, is not UTF-8, so a shell script cannot name it reliably",
            exe.display()
        ));
        ui::hint("install steady under a UTF-8 path");
        return Outcome::SteadyFailed;
    };
    let script = render(args.shell, exe, &wrappers);
    match std::io::stdout().lock().write_all(script.as_bytes()) {
        // `steady init bash | head` is not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            ui::error(&format!("cannot write the script: {e}"));
            Outcome::SteadyFailed
        }
        _ => Outcome::Success,
    }
}

/// What steady makes of a wrapped name, read through `installer::identify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An installer's program or run launcher: every call goes through steady.
    Installer,
    /// A Python interpreter: only `-m <installer module>` calls go through steady.
    Python,
    /// Nothing steady knows: wrapped as asked; steady execs it unless an option says otherwise.
    Unknown,
}

fn kind(name: &str) -> Kind {
    let argv = |words: &[&str]| -> Vec<OsString> { words.iter().map(OsString::from).collect() };
    if installer::identify(&argv(&[name]), None).is_some() {
        Kind::Installer
    } else if installer::identify(&argv(&[name, "-m", "pip"]), None).is_some()
        // Not a wrapper steady sees through (`nice -m pip` is `pip` under nice).
        && installer::identify(&argv(&[name, "pip"]), None).is_none()
    {
        Kind::Python
    } else {
        Kind::Unknown
    }
}

/// The `--wrap` list with `default` replaced by the default set: each installer's own entry
/// points. Versioned names (`pip3.12`) are known but not in it: which exist differs from one
/// machine to the next, and the script should not.
fn expand(list: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for name in list {
        if name == DEFAULT {
            out.extend(installer::default_wrap());
        } else {
            out.push(name.clone());
        }
    }
    out
}

/// A name steady does not know: it is still wrapped (the user asked), but said so, with the
/// nearest known name when it looks like a slip.
fn warn_unknown(name: &str, shell: InitShell) {
    ui::warn(&format!(
        "--wrap: steady knows no installer `{name}`; its function runs it through steady, which \
         execs it unchanged"
    ));
    let known: Vec<&str> = installer::INSTALLERS
        .iter()
        .flat_map(|i| i.programs.iter().chain(i.run_launchers))
        .copied()
        .chain(["python", "python3"])
        .collect();
    match ui::did_you_mean(name, &known) {
        Some(meant) => ui::hint(&format!("did you mean `{meant}`?")),
        None => ui::hint(&format!(
            "steady wraps installers (`steady init {} --wrap default,python3` adds Python's \
             `-m pip`); see the README's Shell integration",
            clap::ValueEnum::to_possible_value(&shell)
                .map_or_else(|| "bash".to_owned(), |v| v.get_name().to_owned())
        )),
    }
}

/// `names` without repeats, or the reason one of them cannot be a wrapper function.
fn checked<'a>(names: &[&'a str]) -> Result<Vec<&'a str>, String> {
    let mut out: Vec<&str> = Vec::new();
    for &name in names {
        if let Some(why) = name_problem(name) {
            return Err(format!("--wrap: {why}"));
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// Why `name` cannot be a wrapper function in every supported shell, if it cannot. The
/// character set is what bash, zsh and fish all accept as a function name and a command word
/// without quoting, so the name can go into the scripts as it is.
fn name_problem(name: &str) -> Option<String> {
    let shown = name.escape_debug();
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Some(
            "empty name in the list; separate names with commas, e.g. `--wrap uv,pip`".into(),
        );
    };
    let fits = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !fits {
        return Some(format!(
            "`{shown}` is not a valid shell function name (use letters, digits, `_`, `.` and `-`, \
             starting with a letter or `_`)"
        ));
    }
    if RESERVED.split_whitespace().any(|w| w == name) {
        return Some(format!(
            "`{name}` is a shell keyword or builtin, not a command steady can wrap"
        ));
    }
    if name == "steady" || name.starts_with("__steady") {
        return Some(format!(
            "`{name}` is steady's own name; wrap the installers, not steady"
        ));
    }
    None
}

/// The script for `shell`, calling steady at `exe` and wrapping `names` (already checked).
fn render(shell: InitShell, exe: &str, names: &[(&str, Kind)]) -> String {
    let (template, exe) = match shell {
        InitShell::Bash => (BASH, posix_quote(exe)),
        InitShell::Zsh => (ZSH, posix_quote(exe)),
        InitShell::Fish => (FISH, fish_quote(exe)),
    };
    let (head, rest) = template
        .split_once(BEGIN_WRAPPER)
        .expect("every shell/ template has a wrapper block");
    let (wrapper, rest) = rest
        .split_once(END_WRAPPER)
        .expect("every shell/ template closes its wrapper block");
    let (between, rest) = rest
        .split_once(BEGIN_PYTHON)
        .expect("every shell/ template has a Python wrapper block");
    let (python, tail) = rest
        .split_once(END_PYTHON)
        .expect("every shell/ template closes its Python wrapper block");
    // Between the two blocks is the comment of the Python one, said once before the first.
    let mut python_comment = Some(between.trim_start_matches('\n'));
    let modules = python_modules();
    let python = python
        .replace(
            "@MODULE_PATTERNS@",
            &modules
                .iter()
                .map(|m| format!("-m:{m}"))
                .collect::<Vec<_>>()
                .join(" | "),
        )
        .replace("@MODULE_WORDS@", &modules.join(" "));
    let mut out = head.replace("@STEADY@", &exe);
    let mut first = true;
    for (name, kind) in names {
        if !first {
            out.push('\n');
        }
        first = false;
        match kind {
            Kind::Python => {
                out.push_str(python_comment.take().unwrap_or_default());
                out.push_str(&python.replace("@NAME@", name));
            }
            _ => out.push_str(&wrapper.replace("@NAME@", name)),
        }
    }
    out.push_str(&tail.replace("@STEADY@", &exe));
    out
}

/// The `python -m` modules of every installer (`pip`, `uv`, …), in table order.
fn python_modules() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for m in installer::INSTALLERS.iter().flat_map(|i| i.modules.iter()) {
        if !out.contains(m) {
            out.push(m);
        }
    }
    out
}

/// Characters that mean nothing special to bash, zsh or fish anywhere in a word.
fn is_plain(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | '@' | ':')
        })
}

/// Quoting for bash and zsh. shell_words leaves some characters bare that brace expansion,
/// `!` or zsh's extended globs would still act on (`{a,b}`, `^`), so anything beyond the plain
/// set ends up in single quotes.
fn posix_quote(s: &str) -> Cow<'_, str> {
    match shell_words::quote(s) {
        Cow::Borrowed(bare) if !is_plain(bare) => Cow::Owned(format!("'{bare}'")),
        quoted => quoted,
    }
}

/// Quoting for fish, whose single quotes take `\'` and `\\` as escapes and nothing else.
fn fish_quote(s: &str) -> Cow<'_, str> {
    if is_plain(s) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(format!(
        "'{}'",
        s.replace('\\', "\\\\").replace('\'', "\\'")
    ))
}

/// The steady binary as the functions should call it. When the shell found steady on PATH
/// (argv[0] has no slash) and that entry is this same binary, its path is kept: a package
/// manager's link (Homebrew's `bin/`, a Nix profile) survives an upgrade, while the resolved
/// path `current_exe` gives goes away with the old version, breaking every open shell.
fn steady_path() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let via_path = std::env::args_os()
        .next()
        .filter(|arg0| !arg0.as_bytes().contains(&b'/'))
        .and_then(|arg0| on_path(&arg0, &exe));
    Ok(via_path.unwrap_or(exe))
}

/// The first PATH entry named `name` that is the same file as `exe`.
fn on_path(name: &OsStr, exe: &Path) -> Option<PathBuf> {
    let target = std::fs::metadata(exe).ok()?;
    let paths = std::env::var_os(crate::env::PATH)?;
    std::env::split_paths(&paths)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.dev() == target.dev() && m.ino() == target.ino())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_without_placeholders() {
        for shell in [InitShell::Bash, InitShell::Zsh, InitShell::Fish] {
            let out = render(
                shell,
                "/opt/steady/bin/steady",
                &[
                    ("uv", Kind::Installer),
                    ("pip", Kind::Installer),
                    ("python3", Kind::Python),
                ],
            );
            for placeholder in [
                "@STEADY@",
                "@NAME@",
                "@BEGIN_WRAPPER@",
                "@END_WRAPPER@",
                "@BEGIN_PYTHON_WRAPPER@",
                "@END_PYTHON_WRAPPER@",
                "@MODULE_PATTERNS@",
                "@MODULE_WORDS@",
            ] {
                assert!(
                    !out.contains(placeholder),
                    "{shell:?} left {placeholder}:\n{out}"
                );
            }
            assert!(
                out.contains("/opt/steady/bin/steady --"),
                "{shell:?}:\n{out}"
            );
            for name in ["uv", "pip", "python3"] {
                assert!(
                    out.contains(&format!("function {name}")),
                    "{shell:?}:\n{out}"
                );
            }
            assert!(out.contains("pip"), "{shell:?}:\n{out}");
        }
    }

    #[test]
    fn default_wrap_is_the_installers_entry_points() {
        let names = crate::installer::default_wrap();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert!(names.contains(&"uv") && names.contains(&"pip"), "{names:?}");
        assert!(checked(&names).is_ok());
        for not_installer in ["uvx", "make", "cargo", "python"] {
            assert!(!names.contains(&not_installer), "{names:?}");
        }
    }

    #[test]
    fn kinds_follow_identify() {
        for name in ["uv", "pip", "pip3.12", "uvx", "npx", "npm", "cargo"] {
            assert_eq!(kind(name), Kind::Installer, "{name}");
        }
        for name in ["python", "python3", "python3.12"] {
            assert_eq!(kind(name), Kind::Python, "{name}");
        }
        for name in ["nosuch", "make", "env", "nice", "pythonx"] {
            assert_eq!(kind(name), Kind::Unknown, "{name}");
        }
    }

    #[test]
    fn default_expands_in_place() {
        let list: Vec<String> = ["python3", "default", "uvx"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let out = expand(&list);
        assert_eq!(out.first().map(String::as_str), Some("python3"));
        assert_eq!(out.last().map(String::as_str), Some("uvx"));
        for d in installer::default_wrap() {
            assert!(out.contains(&d), "{d} missing from {out:?}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(
            checked(&["uv", "pip3.12", "uv", "my-pip", "_x"]),
            Ok(vec!["uv", "pip3.12", "my-pip", "_x"])
        );
        for bad in [
            "",
            "a b",
            "x;y",
            "-x",
            "3pip",
            ".pip",
            "a/b",
            "$x",
            "p{a,b}",
            "if",
            "end",
            "command",
            "steady",
            "__steady_run",
            "pïp",
        ] {
            assert!(checked(&["uv", bad]).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(posix_quote("/usr/bin/steady"), "/usr/bin/steady");
        assert_eq!(posix_quote("/a b/steady"), "'/a b/steady'");
        assert_eq!(posix_quote("/it's/steady"), r"'/it'\''s/steady'");
        assert_eq!(posix_quote("/x{a,b}/steady"), "'/x{a,b}/steady'");
        assert_eq!(fish_quote("/usr/bin/steady"), "/usr/bin/steady");
        assert_eq!(fish_quote(r"/it's\/$x"), r"'/it\'s\\/$x'");
    }
}
