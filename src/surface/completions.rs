//! `steady completions <shell>`: completion scripts for steady itself, generated from the clap
//! definition so they cannot drift from the real options. The bash, zsh and fish scripts are
//! also committed in `completions/`, and a test keeps them fresh. Options hidden from `--help`
//! (test knobs such as `--lock-ping`) are left out: clap_complete would offer them.

use std::io::Write;

use clap::{Command, CommandFactory};

use crate::surface::cli::Cli;

/// The completion script for `shell`.
pub fn script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(
        shell,
        &mut without_hidden(Cli::command()),
        "steady",
        &mut out,
    );
    out
}

/// `cmd` and its subcommands without their hidden options. clap cannot remove an argument, so
/// this builds a copy of each command holding what the generators read: name, descriptions,
/// version, the visible arguments and the subcommands.
fn without_hidden(cmd: Command) -> Command {
    let mut copy = Command::new(cmd.get_name().to_owned())
        .args(cmd.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .subcommands(cmd.get_subcommands().cloned().map(without_hidden));
    if let Some(v) = cmd.get_version() {
        copy = copy.version(v.to_owned());
    }
    if let Some(about) = cmd.get_about() {
        copy = copy.about(about.clone());
    }
    if let Some(about) = cmd.get_long_about() {
        copy = copy.long_about(about.clone());
    }
    copy
}

/// Prints the script; a closed stdout (`steady completions bash | head`) is not an error.
pub fn print(shell: clap_complete::Shell) -> std::io::Result<()> {
    match std::io::stdout().lock().write_all(&script(shell)) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
