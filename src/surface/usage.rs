//! What the user typed wrong, in words that name what they typed: clap's errors turned into
//! one `steady:` line and one `hint:` line (the `STEADY_*` variable a bad value came from, the
//! choices of a missing argument), and a subcommand name mistyped as a command
//! (`steady stauts`).

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;

use clap::CommandFactory;
use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::surface::cli::Cli;

/// clap's error as `(what happened, what to do)`; `argv` is steady's own arguments.
pub fn explain(e: &clap::Error, argv: &[OsString]) -> (String, String) {
    match e.kind() {
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => invalid_value(e, argv),
        ErrorKind::MissingRequiredArgument => missing_argument(e, argv),
        _ => clap_own_words(e),
    }
}

fn context_string(e: &clap::Error, k: ContextKind) -> Option<String> {
    match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn context_strings(e: &clap::Error, k: ContextKind) -> Vec<String> {
    match e.get(k) {
        Some(ContextValue::Strings(v)) => v.clone(),
        Some(ContextValue::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// A bad value, blamed on its `STEADY_*` variable when that, not a flag, supplied it.
fn invalid_value(e: &clap::Error, argv: &[OsString]) -> (String, String) {
    let arg = context_string(e, ContextKind::InvalidArg).unwrap_or_default();
    let value = context_string(e, ContextKind::InvalidValue).unwrap_or_default();
    let valid = context_strings(e, ContextKind::ValidValue);
    let reason = match std::error::Error::source(e) {
        Some(why) => why.to_string(),
        None if !valid.is_empty() => format!("expected {}", one_of(&valid)),
        None => "not accepted".to_owned(),
    };
    // `--timeout <DUR>` names the flag; `<SHELL>` a positional.
    let flag = arg.split_whitespace().next().unwrap_or(&arg).to_owned();
    if let Some(long) = flag.strip_prefix("--")
        && let Some(var) = env_twin(long)
        && std::env::var_os(&var).is_some_and(|v| v == value.as_str())
        && !given_as_flag(argv, long)
    {
        return (
            format!("invalid value `{value}` in {var}: {reason}"),
            format!("{var} sets --{long}; correct or unset it"),
        );
    }
    (
        format!("invalid value `{value}` for {flag}: {reason}"),
        "see `steady --help`".to_owned(),
    )
}

/// A missing argument, with the choices it has (`steady completions` lists the shells).
fn missing_argument(e: &clap::Error, argv: &[OsString]) -> (String, String) {
    let missing = context_strings(e, ContextKind::InvalidArg);
    let sub = subcommand_in(argv);
    let choices = choices_for(sub.as_deref(), &missing);
    let who = sub
        .as_deref()
        .map_or("steady".to_owned(), |s| format!("steady {s}"));
    let what = missing.join(" ");
    match choices.first() {
        Some(first) => (
            format!("`{who}` needs {what}: {}", one_of(&choices)),
            format!("for example `{who} {first}`; see `{who} --help`"),
        ),
        None => (
            format!("`{who}` needs {what}"),
            format!("see `{who} --help`"),
        ),
    }
}

/// The visible values the subcommand `sub` accepts for the `missing` positionals.
fn choices_for(sub: Option<&str>, missing: &[String]) -> Vec<String> {
    let cmd = Cli::command();
    sub.and_then(|s| cmd.find_subcommand(s))
        .into_iter()
        .flat_map(|s| s.get_positionals())
        .filter(|a| {
            a.get_value_names().is_some_and(|names| {
                names
                    .iter()
                    .any(|n| missing.iter().any(|m| m.contains(n.as_str())))
            })
        })
        .flat_map(|a| a.get_possible_values())
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_owned())
        .collect()
}

/// Any other error in clap's own words: its first line, and its tip if it gives one.
fn clap_own_words(e: &clap::Error) -> (String, String) {
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid arguments");
    let what = first.strip_prefix("error: ").unwrap_or(first).to_owned();
    let tip = rendered
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("tip: "))
        .map(str::to_owned);
    (what, tip.unwrap_or("see `steady --help`".to_owned()))
}

/// `a, b or c`.
fn one_of(values: &[String]) -> String {
    match values {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// The `STEADY_*` twin of the option `--long`, on the main command or a subcommand.
fn env_twin(long: &str) -> Option<String> {
    let cmd = Cli::command();
    std::iter::once(&cmd)
        .chain(cmd.get_subcommands())
        .flat_map(|c| c.get_arguments())
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env())
        .map(|v| v.to_string_lossy().into_owned())
}

/// `--long` appears among steady's own arguments (before `--`).
fn given_as_flag(argv: &[OsString], long: &str) -> bool {
    let flag = format!("--{long}");
    argv.iter()
        .map_while(|a| a.to_str().filter(|a| *a != "--"))
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
}

/// The subcommand named in `argv`, if any: its first word that is not an option.
fn subcommand_in(argv: &[OsString]) -> Option<String> {
    let first = argv
        .iter()
        .filter_map(|a| a.to_str())
        .find(|a| !a.starts_with('-'))?;
    Cli::command()
        .get_subcommands()
        .any(|s| s.get_name() == first)
        .then(|| first.to_owned())
}

/// `steady stauts`: the command is a bare word that no PATH entry has, and a slip away from
/// one of steady's subcommands; then `(what was typed, the subcommand)`. A command of that
/// name on PATH is run as asked, so this never changes what runs.
pub fn mistyped_subcommand(command: &[OsString]) -> Option<(String, String)> {
    let word = command.first()?.to_str()?;
    if word.is_empty() || word.contains('/') || on_path(word) {
        return None;
    }
    let cmd = Cli::command();
    let names: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
    let meant = crate::ui::did_you_mean(word, &names)?;
    Some((word.to_owned(), meant.to_owned()))
}

/// An executable file named `word` in a PATH directory.
fn on_path(word: &str) -> bool {
    let Some(paths) = std::env::var_os(crate::env::PATH) else {
        return false;
    };
    std::env::split_paths(&paths).any(|dir| {
        let dir = if dir.as_os_str().is_empty() {
            std::path::PathBuf::from(".")
        } else {
            dir
        };
        std::fs::metadata(dir.join(word))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn flags_on_the_command_line_are_found_before_the_command_only() {
        assert!(given_as_flag(&os(&["--timeout", "5", "x"]), "timeout"));
        assert!(given_as_flag(&os(&["--timeout=5", "x"]), "timeout"));
        assert!(!given_as_flag(
            &os(&["--", "x", "--timeout", "5"]),
            "timeout"
        ));
        assert!(!given_as_flag(&os(&["--timeouts", "x"]), "timeout"));
    }

    #[test]
    fn twins() {
        assert_eq!(env_twin("timeout").as_deref(), Some("STEADY_TIMEOUT"));
        assert_eq!(env_twin("no-lock").as_deref(), Some("STEADY_NO_LOCK"));
        assert_eq!(env_twin("env"), None);
    }

    #[test]
    fn lists_read_as_words() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(one_of(&v(&["bash"])), "bash");
        assert_eq!(one_of(&v(&["bash", "zsh", "fish"])), "bash, zsh or fish");
    }
}
