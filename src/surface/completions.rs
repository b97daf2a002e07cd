//! `steady completions <shell>`: completion scripts for steady itself, generated from the clap
//! definition so they cannot drift from the real options. The bash, zsh and fish scripts are
//! also committed in `completions/`, and a test keeps them fresh.

use std::io::Write;

use clap::CommandFactory;

use crate::surface::cli::Cli;

/// The completion script for `shell`.
pub fn script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "steady", &mut out);
    out
}

/// Prints the script; a closed stdout (`steady completions bash | head`) is not an error.
pub fn print(shell: clap_complete::Shell) -> std::io::Result<()> {
    match std::io::stdout().lock().write_all(&script(shell)) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
