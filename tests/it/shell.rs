//! `steady init`: the scripts run in real bash, zsh and fish, each in its strict mode, sourced
//! with the rc-file line the README gives. A fake `pip` says who started it (its parent, and
//! whether a steady holds a lock for it), so each test checks where a call really went: an
//! install through a supervising steady, a read-only call exec'd with no steady left in between,
//! a bypassed or disabled call straight from the shell. Shells and linters that are missing are
//! skipped with a reason, or fail under `STEADY_TEST_STRICT=1`.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

impl Shell {
    fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
        }
    }

    /// The line the README tells users to put in their rc file.
    fn init_line(self) -> &'static str {
        match self {
            Shell::Bash => r#"eval "$(steady init bash)""#,
            Shell::Zsh => r#"eval "$(steady init zsh)""#,
            Shell::Fish => "steady init fish | source",
        }
    }

    /// A line that prints `shell=<pid of this shell>`.
    fn print_pid(self) -> &'static str {
        match self {
            Shell::Fish => "echo shell=$fish_pid",
            _ => r#"echo "shell=$$""#,
        }
    }

    /// Runs `cmd` and prints `label=<its exit status>`, without ending a strict-mode script.
    fn status_of(self, cmd: &str, label: &str) -> String {
        match self {
            Shell::Fish => format!("{cmd}; echo {label}=$status"),
            _ => format!(r#"if {cmd}; then echo "{label}=0"; else echo "{label}=$?"; fi"#),
        }
    }

    /// Sets (or with `None` unsets) an exported variable.
    fn export(self, var: &str, value: Option<&str>) -> String {
        match (self, value) {
            (Shell::Fish, Some(v)) => format!("set -gx {var} {v}"),
            (Shell::Fish, None) => format!("set -e {var}"),
            (_, Some(v)) => format!("export {var}={v}"),
            (_, None) => format!("unset {var}"),
        }
    }

    /// The shell in its strict mode running `script`, with the test's environment; `None`
    /// (after a skip) when the shell is not installed.
    fn command(self, ctx: &Ctx, script: &str) -> Option<Command> {
        let program = require(self.name())?;
        let mut cmd = ctx.command(program);
        match self {
            Shell::Bash => cmd.args(["--noprofile", "--norc", "-euo", "pipefail", "-c"]),
            Shell::Zsh => cmd.args(["--no-rcs", "-euo", "pipefail", "-c"]),
            // fish has no -e/-u; --private keeps it from writing history into HOME.
            Shell::Fish => cmd.args(["--no-config", "--private", "-c"]),
        };
        cmd.arg(script);
        Some(cmd)
    }
}

/// One call of the fake `pip`, as it reported itself.
#[derive(Debug)]
struct Call {
    args: String,
    /// `STEADY_HELD_LOCKS` was set: a steady took the cache lock for this call.
    held: bool,
    ppid: i32,
    /// The parent's name and executable, from /proc.
    parent: String,
    parent_exe: String,
}

/// The fake's calls and the shell's pid, from a script's stdout.
struct Report {
    shell: i32,
    calls: Vec<Call>,
    stdout: String,
}

impl Report {
    fn parse(out: &Output) -> Report {
        let text = stdout(out);
        let shell = text
            .lines()
            .find_map(|l| l.strip_prefix("shell="))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(-1);
        let calls = text
            .lines()
            .filter_map(|l| l.strip_prefix("pip "))
            .map(|l| {
                let (args, fields) = l.split_once(": ").expect("fake pip line");
                let (fields, exe) = fields.split_once(" exe=").expect("fake pip line");
                let field = |k: &str| {
                    fields
                        .split(' ')
                        .find_map(|f| f.strip_prefix(&format!("{k}=")))
                        .unwrap_or("")
                        .to_owned()
                };
                Call {
                    args: args.to_owned(),
                    held: field("held") == "yes",
                    ppid: field("ppid").parse().unwrap_or(-1),
                    parent: field("parent"),
                    parent_exe: exe.to_owned(),
                }
            })
            .collect();
        Report {
            shell,
            calls,
            stdout: text,
        }
    }

    /// Asserts call `i` ran under a supervising steady that took the cache lock.
    fn via_steady(&self, sh: Shell, i: usize) {
        let c = &self.calls[i];
        assert!(
            c.parent == "steady" && c.held && c.ppid != self.shell,
            "{sh:?}: call {i} (`pip {}`) should have run under steady with the lock held: {c:?}\n{}",
            c.args,
            self.stdout
        );
    }

    /// Asserts call `i` was started by the shell itself (or by a steady that exec'd into it,
    /// which leaves the same process tree): no steady in between, no lock.
    fn direct(&self, sh: Shell, i: usize) {
        let c = &self.calls[i];
        assert!(
            c.ppid == self.shell && c.parent == sh.name() && !c.held,
            "{sh:?}: call {i} (`pip {}`) should have had the shell (pid {}) as parent and no lock: {c:?}\n{}",
            c.args,
            self.shell,
            self.stdout
        );
    }
}

/// A Ctx with `steady` on PATH (as users have it) and a fake `pip` and `pip3` that report who
/// started them, then end as `FAKE_EXIT` / `FAKE_END` say.
fn setup() -> Ctx {
    let ctx = Ctx::new();
    std::os::unix::fs::symlink(steady_bin(), ctx.bin().join("steady")).unwrap();
    let body = r#"
printf 'pip %s: held=%s ppid=%s parent=%s exe=%s\n' "$*" "${STEADY_HELD_LOCKS:+yes}" "$PPID" \
    "$(cat /proc/$PPID/comm)" "$(readlink /proc/$PPID/exe)"
if [ "${FAKE_END:-}" = TERM ]; then kill -TERM $$; fi
exit "${FAKE_EXIT:-0}"
"#;
    ctx.fixture("pip", body);
    ctx.fixture("pip3", body);
    ctx
}

/// Runs `lines` (joined) in `sh` with the fake's cache pointed into the temp dir.
fn run_script(ctx: &Ctx, sh: Shell, lines: &[&str]) -> Option<Output> {
    let script = lines.join("\n");
    let mut cmd = sh.command(ctx, &script)?;
    cmd.env("PIP_CACHE_DIR", ctx.cache());
    Some(run(&mut cmd))
}

fn assert_ok(sh: Shell, out: &Output) {
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{sh:?} exited {} with stderr:\n{}\nstdout:\n{}",
        code(out),
        stderr(out),
        stdout(out)
    );
}

/// The names of functions and variables a script adds to `sh`, sourced twice with the rc
/// line (or `init` as given), and the script's output, which must be empty.
fn added_names(ctx: &Ctx, sh: Shell, init: &str) -> Option<(Vec<String>, Vec<String>, Output)> {
    let dir = ctx.root().display().to_string();
    let list = |when: &str| match sh {
        Shell::Bash => format!(
            "{{ compgen -A function || true; }} > '{dir}/functions.{when}'; compgen -v > '{dir}/variables.{when}'"
        ),
        Shell::Zsh => format!(
            "print -rl -- ${{(k)functions}} > '{dir}/functions.{when}'; print -rl -- ${{(k)parameters}} > '{dir}/variables.{when}'"
        ),
        Shell::Fish => format!(
            "functions --all --names > '{dir}/functions.{when}'; set --names > '{dir}/variables.{when}'"
        ),
    };
    let out = run_script(ctx, sh, &[&list("before"), init, init, &list("after")])?;
    let added = |kind: &str| {
        let before = ctx.read(&format!("{kind}.before"));
        let mut new: Vec<String> = ctx
            .read(&format!("{kind}.after"))
            .lines()
            .filter(|n| !before.lines().any(|b| b == *n))
            .map(String::from)
            .collect();
        new.sort();
        new
    };
    Some((added("functions"), added("variables"), out))
}

#[test]
fn sourcing_is_silent_and_defines_only_the_wrappers() {
    let ctx = setup();
    for sh in SHELLS {
        let Some((functions, variables, out)) = added_names(&ctx, sh, sh.init_line()) else {
            continue;
        };
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "{sh:?}: sourcing twice exited {} and printed:\n{}{}",
            code(&out),
            stdout(&out),
            stderr(&out)
        );
        // The default is every package installer in the table: a change here is a change
        // to what `eval "$(steady init bash)"` wraps for every user.
        let expected = [
            "__steady_run",
            "bun",
            "bundle",
            "composer",
            "conda",
            "gem",
            "mamba",
            "micromamba",
            "npm",
            "pdm",
            "pip",
            "pip3",
            "pipx",
            "pnpm",
            "poetry",
            "uv",
            "yarn",
            "yarnpkg",
        ];
        assert_eq!(functions, expected, "{sh:?}");
        assert_eq!(variables, Vec::<String>::new(), "{sh:?} gained variables");
    }
}

#[test]
fn wrap_chooses_the_functions() {
    let ctx = setup();
    for sh in SHELLS {
        let init = match sh {
            Shell::Fish => "steady init fish --wrap npm,pip3.12 --wrap npm | source".to_owned(),
            _ => format!(
                r#"eval "$(steady init {} --wrap npm,pip3.12 --wrap npm)""#,
                sh.name()
            ),
        };
        let Some((functions, _, out)) = added_names(&ctx, sh, &init) else {
            continue;
        };
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{sh:?}: {}",
            stderr(&out)
        );
        assert_eq!(functions, ["__steady_run", "npm", "pip3.12"], "{sh:?}");
    }
}

#[test]
fn installs_go_through_steady_and_read_only_and_command_do_not() {
    let ctx = setup();
    for sh in SHELLS {
        let lines = [
            sh.init_line(),
            sh.print_pid(),
            "pip install x",
            "pip3 --timeout 30 install x",
            "pip list",
            "command pip install x",
            "echo end",
        ];
        let Some(out) = run_script(&ctx, sh, &lines) else {
            continue;
        };
        assert_ok(sh, &out);
        let r = Report::parse(&out);
        assert_eq!(r.calls.len(), 4, "{sh:?}:\n{}", r.stdout);
        r.via_steady(sh, 0);
        r.via_steady(sh, 1);
        // Read-only: steady exec'd into pip, so the shell is its parent and no lock was taken.
        r.direct(sh, 2);
        r.direct(sh, 3);
    }
}

#[test]
fn steady_disable_makes_plain_calls_at_call_time() {
    let ctx = setup();
    for sh in SHELLS {
        let (off, on, unset) = (
            sh.export("STEADY_DISABLE", Some("0")),
            sh.export("STEADY_DISABLE", Some("1")),
            sh.export("STEADY_DISABLE", None),
        );
        let lines = [
            sh.init_line(),
            sh.print_pid(),
            "pip install x",
            &off,
            "pip install x",
            &on,
            "pip install x",
            &unset,
            "pip install x",
            "echo end",
        ];
        let script = lines.join("\n");
        let Some(mut cmd) = sh.command(&ctx, &script) else {
            continue;
        };
        // Already set when the script is sourced, as in a CI job's environment.
        let out = run(cmd
            .env("PIP_CACHE_DIR", ctx.cache())
            .env("STEADY_DISABLE", "1"));
        assert_ok(sh, &out);
        let r = Report::parse(&out);
        assert_eq!(r.calls.len(), 4, "{sh:?}:\n{}", r.stdout);
        r.direct(sh, 0);
        r.via_steady(sh, 1);
        r.direct(sh, 2);
        r.via_steady(sh, 3);
    }
}

#[test]
fn exit_codes_and_signals_are_the_commands_own() {
    let ctx = setup();
    for sh in SHELLS {
        for (end, want) in [("exit", 7), ("TERM", 143)] {
            let lines = [
                sh.init_line().to_owned(),
                sh.print_pid().to_owned(),
                sh.status_of("pip install x", "install"),
                sh.status_of("pip list", "list"),
                sh.status_of("command pip install x", "command"),
                sh.export("STEADY_DISABLE", Some("1")),
                sh.status_of("pip install x", "disabled"),
            ];
            let script = lines.join("\n");
            let Some(mut cmd) = sh.command(&ctx, &script) else {
                continue;
            };
            let out = run(cmd
                .env("PIP_CACHE_DIR", ctx.cache())
                .env("FAKE_EXIT", "7")
                .env("FAKE_END", end)
                // A failure that a retry could fix would be retried; this test is about the
                // status of one attempt.
                .env("STEADY_RETRIES", "0"));
            assert!(out.status.success(), "{sh:?} {end}: {}", stderr(&out));
            let r = Report::parse(&out);
            r.via_steady(sh, 0);
            r.direct(sh, 1);
            for label in ["install", "list", "command", "disabled"] {
                assert!(
                    r.stdout.lines().any(|l| l == format!("{label}={want}")),
                    "{sh:?} {end}: `{label}` should have ended with {want}:\n{}\nstderr:\n{}",
                    r.stdout,
                    stderr(&out)
                );
            }
        }
    }
}

/// A user's alias of a wrapped name must not break sourcing: `NAME() {` would expand it (a
/// syntax error in bash, "defining function based on alias" in zsh). fish's aliases are
/// functions, which the script replaces.
#[test]
fn aliases_of_wrapped_names_do_not_break_sourcing() {
    let ctx = setup();
    for sh in [Shell::Bash, Shell::Zsh] {
        let lines = [
            "shopt -s expand_aliases 2>/dev/null || true",
            "alias pip='pip --from-alias'",
            sh.init_line(),
            sh.print_pid(),
            // eval, so the alias is seen however the shell reads its -c string.
            "eval 'pip install x'",
        ];
        let Some(out) = run_script(&ctx, sh, &lines) else {
            continue;
        };
        assert_ok(sh, &out);
        let r = Report::parse(&out);
        assert_eq!(r.calls.len(), 1, "{sh:?}:\n{}", r.stdout);
        assert_eq!(r.calls[0].args, "--from-alias install x", "{sh:?}");
        r.via_steady(sh, 0);
    }
}

#[test]
fn installer_completions_keep_working_on_wrapped_names() {
    let ctx = setup();
    // bash and zsh key completions by command name; sourcing must leave them in place.
    let bash = [
        "complete -W 'install list' pip",
        Shell::Bash.init_line(),
        "complete -p pip",
    ];
    if let Some(out) = run_script(&ctx, Shell::Bash, &bash) {
        assert_ok(Shell::Bash, &out);
        assert_eq!(stdout(&out), "complete -W 'install list' pip\n");
    }
    let zsh = [
        r#"autoload -Uz compinit && compinit -u -d "$HOME/.zcompdump""#,
        "function _fake_pip { compadd install list }",
        "compdef _fake_pip pip",
        Shell::Zsh.init_line(),
        "print -r -- ${_comps[pip]}",
    ];
    if let Some(out) = run_script(&ctx, Shell::Zsh, &zsh) {
        assert_ok(Shell::Zsh, &out);
        assert_eq!(stdout(&out), "_fake_pip\n");
    }
    // fish can complete without a terminal: autoload the installer's completion file by
    // name, as fish does for real installers, and ask for candidates.
    let dir = ctx.path("fish-completions");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("pip.fish"),
        "complete -c pip -f -n __fish_use_subcommand -a 'install list'\n",
    )
    .unwrap();
    let fish = [
        format!("set -p fish_complete_path '{}'", dir.display()),
        Shell::Fish.init_line().to_owned(),
        "complete -C 'pip '".to_owned(),
    ];
    let fish: Vec<&str> = fish.iter().map(String::as_str).collect();
    if let Some(out) = run_script(&ctx, Shell::Fish, &fish) {
        assert_ok(Shell::Fish, &out);
        let text = stdout(&out);
        let words: Vec<&str> = text
            .lines()
            .map(|l| l.split('\t').next().unwrap_or(""))
            .collect();
        assert_eq!(words, ["install", "list"], "{text}");
    }
}

/// CI shells read no rc file; the README's recipe is BASH_ENV, as a GitHub Actions step runs it
/// (`bash --noprofile --norc -eo pipefail <file>`), and nested bash scripts inherit it.
#[test]
fn bash_env_covers_non_interactive_bash() {
    let ctx = setup();
    let Some(bash) = require("bash") else {
        return;
    };
    let script = run(ctx.steady().args(["init", "bash"]));
    assert!(script.status.success(), "{}", stderr(&script));
    let env_file = ctx.path("steady.bash");
    std::fs::write(&env_file, &script.stdout).unwrap();
    let step = ctx.path("step.sh");
    std::fs::write(
        &step,
        "echo \"shell=$$\"\npip install x\nbash -c 'pip install nested'\n",
    )
    .unwrap();
    let out = run(ctx
        .command(&bash)
        .args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(&step)
        .env("BASH_ENV", &env_file)
        .env("PIP_CACHE_DIR", ctx.cache()));
    assert_ok(Shell::Bash, &out);
    let r = Report::parse(&out);
    assert_eq!(r.calls.len(), 2, "{}", r.stdout);
    r.via_steady(Shell::Bash, 0);
    assert!(
        r.calls[1].parent == "steady" && r.calls[1].held,
        "the nested bash should have sourced BASH_ENV too: {:?}",
        r.calls[1]
    );
}

/// The binary's path goes into the script quoted for each shell: a path with spaces, quotes,
/// `$`, braces and backslashes (which fish's single quotes treat unlike bash's) must still be
/// the one called.
#[test]
fn an_odd_steady_path_is_quoted_for_each_shell() {
    let ctx = setup();
    let dir = ctx.path(r"it's a {b,c} $HOME \\ dir");
    std::fs::create_dir_all(&dir).unwrap();
    let odd = dir.join("steady");
    std::fs::copy(steady_bin(), &odd).unwrap();
    for sh in SHELLS {
        let init = match sh {
            Shell::Fish => r#""$ODD_STEADY" init fish | source"#.to_owned(),
            _ => format!(r#"eval "$("$ODD_STEADY" init {})""#, sh.name()),
        };
        let lines = [&init, sh.print_pid(), "pip install x"];
        let Some(mut cmd) = sh.command(&ctx, &lines.join("\n")) else {
            continue;
        };
        let out = run(cmd
            .env("PIP_CACHE_DIR", ctx.cache())
            .env("ODD_STEADY", &odd));
        assert_ok(sh, &out);
        let r = Report::parse(&out);
        assert_eq!(r.calls.len(), 1, "{sh:?}:\n{}", r.stdout);
        r.via_steady(sh, 0);
        assert_eq!(Path::new(&r.calls[0].parent_exe), odd, "{sh:?}");
    }
}

#[test]
fn bad_wrap_names_are_rejected() {
    let ctx = Ctx::new();
    for (list, mentions) in [
        ("uv,a b", "`a b`"),
        ("x;rm", "`x;rm`"),
        ("-x", "`-x`"),
        ("uv,,pip", "empty name"),
        ("if", "`if`"),
        ("command", "`command`"),
        ("steady", "`steady`"),
        ("p$(id)", "`p$(id)`"),
    ] {
        for shell in ["bash", "zsh", "fish"] {
            let out = run(ctx
                .steady()
                .args(["init", shell, &format!("--wrap={list}")]));
            let err = stderr(&out);
            assert_eq!(code(&out), 125, "--wrap {list:?}: {err}");
            assert!(out.stdout.is_empty(), "--wrap {list:?} printed a script");
            assert!(
                err.starts_with("steady: --wrap: ")
                    && err.contains(mentions)
                    && err.lines().count() == 1,
                "--wrap {list:?}: {err}"
            );
        }
    }
}

#[test]
fn shellcheck_passes_on_the_bash_and_zsh_scripts() {
    let ctx = Ctx::new();
    let Some(shellcheck) = require("shellcheck") else {
        return;
    };
    for shell in ["bash", "zsh"] {
        let script = run(ctx.steady().args(["init", shell]));
        assert!(script.status.success(), "{}", stderr(&script));
        let out = pipe(
            Command::new(&shellcheck).args(["--enable=all", "--shell=bash", "-"]),
            &script.stdout,
        );
        assert!(
            out.status.success(),
            "shellcheck on `steady init {shell}`:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
    }
}

#[test]
fn fish_script_is_formatted_as_fish_indent_wants() {
    let ctx = Ctx::new();
    let Some(fish_indent) = require("fish_indent") else {
        return;
    };
    let script = run(ctx.steady().args(["init", "fish"]));
    let out = pipe(Command::new(&fish_indent).arg("--check"), &script.stdout);
    assert!(
        out.status.success(),
        "`steady init fish` is not as fish_indent formats it; run `fish_indent -w shell/steady.fish`"
    );
    // The template itself, so that its own formatting is what reviewers see.
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("shell/steady.fish");
    let out = run(Command::new(&fish_indent).arg("--check").arg(&template));
    assert!(
        out.status.success(),
        "run `fish_indent -w shell/steady.fish`"
    );
}

/// The init line with `--wrap LIST`, as a user would write it in each shell.
fn init_with(sh: Shell, wrap: &str) -> String {
    match sh {
        Shell::Fish => format!("steady init fish --wrap {wrap} | source"),
        _ => format!(r#"eval "$(steady init {} --wrap {wrap})""#, sh.name()),
    }
}

#[test]
fn wrap_warns_about_names_steady_does_not_know_and_still_wraps_them() {
    let ctx = setup();
    for sh in SHELLS {
        let Some((functions, _, out)) = added_names(&ctx, sh, &init_with(sh, "uv,nosuch,pyp"))
        else {
            continue;
        };
        assert!(out.status.success(), "{sh:?}: {}", stderr(&out));
        assert_eq!(functions, ["__steady_run", "nosuch", "pyp", "uv"], "{sh:?}");
        let err = stderr(&out);
        // Sourced twice: each name is warned about once per sourcing, uv never.
        let about = |name: &str| {
            err.lines()
                .filter(|l| l.starts_with("steady: --wrap: ") && l.contains(&format!("`{name}`")))
                .count()
        };
        assert_eq!(
            (about("nosuch"), about("pyp"), about("uv")),
            (2, 2, 0),
            "{sh:?}:\n{err}"
        );
        assert!(err.contains("hint: did you mean `pip`?"), "{sh:?}:\n{err}");
    }
}

#[test]
fn wrap_knows_launchers_versioned_pips_python_and_default() {
    let ctx = setup();
    for sh in SHELLS {
        let init = init_with(sh, "default,uvx,npx,pip3.12,python3,python3.12");
        let Some((functions, _, out)) = added_names(&ctx, sh, &init) else {
            continue;
        };
        assert_ok(sh, &out);
        for name in [
            "uv",
            "pip",
            "npm",
            "composer",
            "uvx",
            "npx",
            "pip3.12",
            "python3",
            "python3.12",
        ] {
            assert!(
                functions.iter().any(|f| f == name),
                "{sh:?}: no {name} in {functions:?}"
            );
        }
    }
    // The default set, counted: what the README says.
    let out = run(ctx.steady().args(["init", "bash"]));
    let count = stdout(&out)
        .lines()
        .filter(|l| l.starts_with("function ") && !l.contains("__steady"))
        .count();
    assert_eq!(count, 17, "{}", stdout(&out));
}

#[test]
fn python_wrapper_sends_only_installer_modules_through_steady() {
    let ctx = setup();
    // Reports in the fake pip's words, so `Report` reads it.
    ctx.fixture(
        "python3",
        r#"
printf 'pip %s: held=%s ppid=%s parent=%s exe=%s\n' "$*" "${STEADY_HELD_LOCKS:+yes}" "$PPID" \
    "$(cat /proc/$PPID/comm)" "$(readlink /proc/$PPID/exe)"
exit "${FAKE_EXIT:-0}"
"#,
    );
    for sh in SHELLS {
        let init = init_with(sh, "python3");
        let exit3 = sh.status_of("python3 -m pip install y", "status");
        let lines = [
            init.as_str(),
            sh.print_pid(),
            "python3 -m pip install x",
            "python3 -c pass",
            "python3 -m pip list",
            "python3 -m http.server --help",
            "python3",
            "command python3 -m pip install x",
            "echo end",
        ];
        let Some(out) = run_script(&ctx, sh, &lines) else {
            continue;
        };
        assert_ok(sh, &out);
        let r = Report::parse(&out);
        assert_eq!(r.calls.len(), 6, "{sh:?}:\n{}", r.stdout);
        r.via_steady(sh, 0);
        for i in 1..6 {
            r.direct(sh, i);
        }
        // The command's own exit status comes back through the wrapper.
        let Some(mut cmd) = sh.command(&ctx, &[init.as_str(), exit3.as_str()].join("\n")) else {
            continue;
        };
        let out = run(cmd
            .env("PIP_CACHE_DIR", ctx.cache())
            .env("FAKE_EXIT", "3")
            .env("STEADY_RETRIES", "0"));
        assert!(
            stdout(&out).contains("status=3"),
            "{sh:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
}

#[test]
fn steady_disable_with_an_unknown_value_is_refused() {
    let ctx = setup();
    for sh in SHELLS {
        let lines = [sh.init_line(), &sh.status_of("pip install x", "status")];
        let Some(mut cmd) = sh.command(&ctx, &lines.join("\n")) else {
            continue;
        };
        let out = run(cmd
            .env("PIP_CACHE_DIR", ctx.cache())
            .env("STEADY_DISABLE", "maybe"));
        let (text, err) = (stdout(&out), stderr(&out));
        assert!(!text.contains("pip install"), "{sh:?}: pip ran:\n{text}");
        assert!(text.contains("status=125"), "{sh:?}:\n{text}{err}");
        assert_eq!(
            err.lines().next(),
            Some("steady: STEADY_DISABLE must be 1 or 0, got `maybe`"),
            "{sh:?}:\n{err}"
        );
        assert!(
            err.lines().nth(1).is_some_and(|l| l.starts_with("hint: ")),
            "{sh:?}:\n{err}"
        );
    }
}
