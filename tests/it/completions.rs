//! The completion scripts committed in `completions/`: each must be what `steady completions`
//! prints now, or the test fails and says how to refresh them (`STEADY_BLESS=1 cargo test
//! completions` rewrites them), and each must load in its real shell and complete steady's own
//! subcommands and options there.

use std::path::PathBuf;

use crate::common::*;

/// The shells whose scripts are committed, with clap_complete's file names.
const FILES: [(&str, &str); 3] = [
    ("bash", "steady.bash"),
    ("zsh", "_steady"),
    ("fish", "steady.fish"),
];

const REFRESH: &str = "STEADY_BLESS=1 cargo test completions";

fn committed(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("completions")
        .join(file)
}

fn bless() -> bool {
    std::env::var_os("STEADY_BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

#[test]
fn committed_completions_are_fresh() {
    let ctx = Ctx::new();
    let mut stale = Vec::new();
    for (shell, file) in FILES {
        let out = run(ctx.steady().args(["completions", shell]));
        assert!(
            out.status.success() && !out.stdout.is_empty(),
            "`steady completions {shell}` failed: {}",
            stderr(&out)
        );
        let path = committed(file);
        if std::fs::read(&path).ok().as_deref() == Some(&out.stdout[..]) {
            continue;
        }
        if bless() {
            // Through a rename, so the loading tests running beside this never see half a file.
            let tmp = path.with_extension("blessing");
            std::fs::write(&tmp, &out.stdout).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
            eprintln!("rewrote completions/{file}");
        } else {
            stale.push(format!("completions/{file}"));
        }
    }
    assert!(
        stale.is_empty(),
        "{} stale (the command line changed); run `{REFRESH}` and commit the result",
        stale.join(", ") + if stale.len() == 1 { " is" } else { " are" }
    );
}

/// Runs `script` in `shell` from the crate root, so `completions/` is at hand.
fn in_shell(ctx: &Ctx, shell: &str, args: &[&str], script: &str) -> Option<std::process::Output> {
    let program = require(shell)?;
    let mut cmd = ctx.command(program);
    cmd.args(args)
        .arg(script)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    Some(run(&mut cmd))
}

fn assert_loaded(shell: &str, out: &std::process::Output) {
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "completions/ for {shell} did not load cleanly (exit {}):\n{}",
        code(out),
        stderr(out)
    );
}

#[test]
fn bash_completions_load_and_complete() {
    let ctx = Ctx::new();
    // Sourced in strict mode, then asked what follows `steady init ` and `steady --ti`, as
    // readline would ask: (command, word being completed, previous word).
    let script = r#"
source completions/steady.bash
complete -p steady
set +u
COMP_WORDS=(steady init ''); COMP_CWORD=2
_steady steady '' init
printf 'init:%s\n' "${COMPREPLY[@]}"
COMP_WORDS=(steady --ti); COMP_CWORD=1
_steady steady --ti steady
printf 'option:%s\n' "${COMPREPLY[@]}"
"#;
    let Some(out) = in_shell(
        &ctx,
        "bash",
        &["--noprofile", "--norc", "-euo", "pipefail", "-c"],
        script,
    ) else {
        return;
    };
    assert_loaded("bash", &out);
    let text = stdout(&out);
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.contains(" -F _steady ") && l.ends_with(" steady")),
        "{text}"
    );
    for want in ["init:bash", "init:zsh", "init:fish", "option:--timeout"] {
        assert!(text.lines().any(|l| l == want), "no `{want}` in:\n{text}");
    }
}

#[test]
fn zsh_completions_load() {
    let ctx = Ctx::new();
    // compinit finds `_steady` through fpath by its `#compdef` line; `autoload +X` then
    // parses the file, so a syntax error fails here.
    let script = r#"
fpath=("$PWD/completions" $fpath)
autoload -Uz compinit
compinit -u -d "$HOME/.zcompdump"
print -r -- "binding:${_comps[steady]}"
autoload +X _steady
print -r -- "function:${+functions[_steady]}"
"#;
    let Some(out) = in_shell(&ctx, "zsh", &["--no-rcs", "-euo", "pipefail", "-c"], script) else {
        return;
    };
    assert_loaded("zsh", &out);
    assert_eq!(stdout(&out), "binding:_steady\nfunction:1\n");
}

#[test]
fn fish_completions_load_and_complete() {
    let ctx = Ctx::new();
    // clap's fish script completes subcommands and options, not positional values.
    let script = "source completions/steady.fish
complete -C 'steady '
complete -C 'steady init --'
complete -C 'steady --ti'";
    let Some(out) = in_shell(&ctx, "fish", &["--no-config", "--private", "-c"], script) else {
        return;
    };
    assert_loaded("fish", &out);
    let text = stdout(&out);
    let words: Vec<&str> = text
        .lines()
        .map(|l| l.split('\t').next().unwrap_or(""))
        .collect();
    for want in ["init", "completions", "--wrap", "--timeout"] {
        assert!(words.contains(&want), "no `{want}` in:\n{text}");
    }
}

/// Every `--option` a completion script offers is one `steady --help` shows: hidden test knobs
/// (`--lock-ping`, `--lock-progress`) are not offered.
#[test]
fn completions_offer_only_options_that_help_shows() {
    let ctx = Ctx::new();
    let options = |text: &str| -> Vec<String> {
        let mut v: Vec<String> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|w| w.starts_with("--") && w.len() > 2 && w.as_bytes()[2].is_ascii_lowercase())
            .map(str::to_owned)
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let mut shown = options(&stdout(&run(ctx.steady().arg("--help"))));
    for sub in ["init", "doctor", "completions", "status"] {
        shown.extend(options(&stdout(&run(ctx.steady().args([sub, "--help"])))));
    }
    for (_, file) in FILES {
        let script = std::fs::read_to_string(committed(file)).unwrap();
        for opt in options(&script) {
            assert!(
                shown.contains(&opt),
                "completions/{file} offers {opt}, which --help hides"
            );
        }
        assert!(
            !script.contains("lock-ping") && !script.contains("lock-progress"),
            "{file}"
        );
    }
}

/// The README's recipe for each shell, followed literally in a fresh HOME: the script written
/// where the README says, and the shell completing `steady --ti` from there.
#[test]
fn readme_recipes_enable_completions() {
    let ctx = Ctx::new();
    std::os::unix::fs::symlink(steady_bin(), ctx.bin().join("steady")).unwrap();
    let in_home = |shell: &str, args: &[&str], script: &str| {
        let program = require(shell)?;
        let mut cmd = ctx.command(program);
        cmd.args(args).arg(script).current_dir(ctx.home());
        Some(run(&mut cmd))
    };
    let bash = r#"
source <(steady completions bash)
set +u
COMP_WORDS=(steady --ti); COMP_CWORD=1
_steady steady --ti steady
printf '%s\n' "${COMPREPLY[@]}"
"#;
    if let Some(out) = in_home(
        "bash",
        &["--noprofile", "--norc", "-euo", "pipefail", "-c"],
        bash,
    ) {
        assert_loaded("bash", &out);
        assert_eq!(stdout(&out), "--timeout\n");
    }
    let zsh = r#"
mkdir -p ~/.zfunc && steady completions zsh > ~/.zfunc/_steady
fpath=(~/.zfunc $fpath)
autoload -Uz compinit && compinit -u -d "$HOME/.zcompdump"
print -r -- "binding:${_comps[steady]}"
"#;
    if let Some(out) = in_home("zsh", &["--no-rcs", "-euo", "pipefail", "-c"], zsh) {
        assert_loaded("zsh", &out);
        assert_eq!(stdout(&out), "binding:_steady\n");
    }
    let fish = "mkdir -p ~/.config/fish/completions
steady completions fish > ~/.config/fish/completions/steady.fish
complete -C 'steady --ti'";
    // Not --no-config: that also skips the user's completions directory, which is the point.
    // HOME is the test's own, with no config.fish.
    if let Some(out) = in_home("fish", &["--private", "-c"], fish) {
        assert_loaded("fish", &out);
        assert!(stdout(&out).starts_with("--timeout\t"), "{}", stdout(&out));
    }
}
