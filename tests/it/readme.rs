//! The README's examples, run: every ```console block is a transcript (`$ command` lines, each
//! followed by what it prints, stdout and stderr together as a terminal shows them), replayed
//! against the real steady and compared with snapbox, so sample output cannot drift from real
//! output again. `...` on a line of its own stands for any lines, `[..]` for any text within a
//! line. Each block runs in a fresh temp dir that the README calls `/home/me` (its HOME; the
//! commands run in `/home/me/project`), with a setup named after the block's first command:
//! the fake installers and background holders that the scene needs. Values that differ from
//! run to run (pids, how long something waited, the core count) are compared as `[..]`.
//!
//! Also: the examples in `--help` appear in the README and are understood by steady (run
//! through `doctor` or a real bash), the README's usage block is `--help`'s, and the README
//! names the default wrapped commands and their number.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// What the README calls the temp dir of a block.
const HOME: &str = "/home/me";

fn readme() -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md")
}

/// One ```console block: its line in the README, and its commands with what each prints.
struct Block {
    line: usize,
    steps: Vec<(String, String)>,
}

fn console_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    // The block being read, and the indentation of its fence (a block inside a list item).
    let mut current: Option<(Block, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        match &mut current {
            None if line.trim() == "```console" => {
                current = Some((
                    Block {
                        line: i + 1,
                        steps: Vec::new(),
                    },
                    indent,
                ))
            }
            None => {}
            Some(_) if line.trim() == "```" => blocks.extend(current.take().map(|(b, _)| b)),
            Some((b, fence)) => {
                let line = line.get(*fence..).unwrap_or("");
                match line.strip_prefix("$ ") {
                    Some(cmd) => b.steps.push((cmd.to_owned(), String::new())),
                    None => {
                        let (_, out) = b.steps.last_mut().unwrap_or_else(|| {
                            panic!("README line {}: output before any `$ `", i + 1)
                        });
                        out.push_str(line);
                        out.push('\n');
                    }
                }
            }
        }
    }
    assert!(current.is_none(), "README ends inside a ```console block");
    blocks
}

/// Replaces what differs from run to run with `[..]`: the word after each of these prefixes.
fn normalize(text: &str) -> String {
    const VOLATILE: [&str; 8] = [
        "pid ",
        "running for ",
        "holding it for ",
        "held for ",
        "waiting for ",
        "retrying in ",
        "cpus: ",
        "process limit: ",
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for p in VOLATILE {
            if let Some(after) = rest.strip_prefix(p) {
                out.push_str(p);
                // A word: up to a space, `,`, `;`, `)` or the end of the line. The process
                // limit is words up to `;`.
                let end = if p == "process limit: " {
                    after.find([';', '\n']).unwrap_or(after.len())
                } else {
                    after
                        .find(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ')'))
                        .unwrap_or(after.len())
                };
                out.push_str("[..]");
                rest = &after[end..];
                continue 'scan;
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// A scene: the temp dir, and what runs in the background until the block is done.
struct Scene {
    ctx: Ctx,
    background: Vec<Child>,
}

impl Drop for Scene {
    fn drop(&mut self) {
        for c in &mut self.background {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Scene {
    fn new() -> Scene {
        let ctx = Ctx::new();
        std::os::unix::fs::symlink(steady_bin(), ctx.bin().join("steady")).unwrap();
        std::fs::create_dir_all(ctx.home().join("project")).unwrap();
        Scene {
            ctx,
            background: Vec::new(),
        }
    }

    /// `sh -c script` with the scene's environment, in `/home/me/project`.
    fn sh(&self, script: &str) -> Command {
        let mut cmd = self.ctx.command("sh");
        cmd.args(["-c", script])
            .current_dir(self.ctx.home().join("project"))
            .env_remove("STEADY_DISABLE");
        cmd
    }

    /// Starts `script` in the background and waits until `ready` says the scene is set.
    fn start(&mut self, script: &str, ready: impl Fn(&Scene) -> bool) {
        let child = self
            .sh(script)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        self.background.push(child);
        let until = Instant::now() + Duration::from_secs(30);
        while !ready(self) {
            assert!(
                Instant::now() < until,
                "the scene for `{script}` never got ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn exists(&self, rel: &str) -> bool {
        self.ctx.home().join(rel).exists()
    }

    /// A fake uv: prints what the real uv 0.13 prints in these scenes (the corruption message
    /// is uv's, from a cache with an archive's METADATA removed).
    fn fake_uv(&self) {
        std::fs::create_dir_all(self.ctx.home().join(".cache/uv/archive-v0")).unwrap();
        std::fs::write(
            self.ctx.home().join(".cache/uv/CACHEDIR.TAG"),
            "Signature: 8a477f597d28d172789f06886806bc55\n",
        )
        .unwrap();
        self.ctx.fixture(
            "uv",
            r#"case "$*" in
"cache clean"*) exit 0 ;;
*torch*) touch "$HOME/.holding"; while [ -e "$HOME/.holding" ]; do sleep 0.1; done; exit 0 ;;
"sync") exit 0 ;;
esac
if [ ! -e "$HOME/.failed-once" ] && [ -n "${CORRUPT:-}" ]; then
    touch "$HOME/.failed-once"
    echo 'error: Failed to install: alpha-1.0-py3-none-any.whl (alpha==1.0)' >&2
    echo "  cause: failed to open file \`$HOME/.cache/uv/archive-v0/RpO7LJ5V20BEiKm1/alpha-1.0.dist-info/METADATA\`: No such file or directory (os error 2)" >&2
    exit 2
fi
echo 'Resolved 1 package in 3ms' >&2
echo 'Installed 1 package in 5ms' >&2
echo ' + alpha==1.0' >&2
"#,
        );
    }

    fn release_holder(&self) {
        let _ = std::fs::remove_file(self.ctx.home().join(".holding"));
    }
}

/// Sets the scene for the block whose first command is `first`; `None` for a block this file
/// does not know.
fn scene_for(first: &str) -> Option<Scene> {
    let mut s = Scene::new();
    match first {
        // A holder already installing, then a corrupted cache entry, cleaned and retried.
        "steady uv pip install -r requirements.txt" => {
            s.fake_uv();
            s.start("exec steady uv pip install torch", |s| s.exists(".holding"));
            // The holder lets go once the waiter waits (so it has said so), however slow the
            // machine: `steady status` shows the scene's cache with one waiter.
            s.start(
                r#"until steady status | grep -A3 "^$HOME/" | grep -q 'waiting: 1'; do sleep 0.1; done
rm -f "$HOME/.holding""#,
                |_| true,
            );
        }
        "steady doctor --timeout 10m -- uv pip install x" => s.fake_uv(),
        // A uv log whose outer line says extraction and whose cause is a timeout: the field
        // corpus's copy of astral-sh/uv's thread (tests/fixtures/field/, headers dropped).
        "steady doctor --explain-output build.log -- uv pip install torch" => {
            let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/field/uv/sdist-unpack-body-timeout.txt");
            let text = std::fs::read_to_string(file).unwrap();
            let (_headers, body) = text.split_once("\n\n").unwrap();
            std::fs::write(s.ctx.home().join("project/build.log"), body).unwrap();
        }
        "steady status" => {
            s.fake_uv();
            s.start("exec steady -- uv pip install torch", |s| {
                s.exists(".holding")
            });
            s.start("exec steady -- uv sync", |s| {
                let out = run(&mut s.sh("steady status"));
                let home = s.ctx.home().display().to_string();
                own_status_entries(&stdout(&out).replace(&home, HOME)).contains("waiting: 1")
            });
        }
        _ if first.starts_with("steady init ")
            || first.starts_with("STEADY_")
            || first.starts_with("GITHUB_ACTIONS=")
            || first.starts_with("steady -q ")
            || first.starts_with("steady --")
            || first.starts_with("steady stauts") =>
        {
            s.fake_uv()
        }
        _ => return None,
    }
    Some(s)
}

#[test]
fn readme_transcripts_are_real_output() {
    let text = readme();
    let blocks = console_blocks(&text);
    assert!(
        blocks.len() >= 5,
        "only {} console blocks found",
        blocks.len()
    );
    for block in blocks {
        let first = &block.steps.first().expect("an empty console block").0;
        let Some(scene) = scene_for(first) else {
            panic!(
                "README line {}: no scene for `{first}` in tests/it/readme.rs; add one, or \
                 make the block ```sh if it is not a transcript",
                block.line
            );
        };
        for (cmd, expected) in &block.steps {
            let out = run(scene.sh(&format!("{{ {cmd}\n}} 2>&1")).env("CORRUPT", "1"));
            let home = scene.ctx.home().display().to_string();
            let mut actual = stdout(&out).replace(&home, HOME);
            if cmd == "steady status" {
                actual = own_status_entries(&actual);
            }
            let actual = normalize(&actual);
            let expected = normalize(expected);
            if let Err(e) = snapbox::Assert::new().try_eq(
                Some(&format!("README line {}: `{cmd}`", block.line)),
                actual.into(),
                expected.into(),
            ) {
                panic!("README line {}: `{cmd}` prints otherwise:\n{e}", block.line);
            }
        }
        scene.release_holder();
    }
}

/// `steady status` lists every lock of every steady of this user, including those of tests
/// running beside this one: only the scene's own entries (under `/home/me`) are compared.
fn own_status_entries(text: &str) -> String {
    let mut out = String::new();
    let mut keep = false;
    for line in text.lines() {
        if !line.starts_with(' ') {
            keep = line.starts_with(HOME);
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The lines of `--help` between `heading` and the next blank line.
fn help_section(help: &str, heading: &str) -> Vec<String> {
    help.split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("no `{heading}` in --help"))
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
        .collect()
}

#[test]
fn help_examples_are_in_the_readme_and_understood() {
    let ctx = Ctx::new();
    let help = stdout(&run(ctx.steady().arg("--help")));
    let text = readme();
    let examples = help_section(&help, "Examples:");
    assert!(examples.len() >= 4, "{help}");
    for ex in &examples {
        assert!(
            text.contains(ex.as_str()),
            "--help example `{ex}` is not in the README"
        );
        let words = shell_words::split(ex).unwrap();
        if words[0] != "steady" {
            // eval "$(steady init bash)": a real bash must take it.
            let Some(bash) = require("bash") else {
                continue;
            };
            std::os::unix::fs::symlink(steady_bin(), ctx.bin().join("steady")).ok();
            let out = run(ctx
                .command(bash)
                .args(["--norc", "-euc", &format!("{ex}; type uv")]));
            assert!(out.status.success(), "`{ex}`: {}", stderr(&out));
            continue;
        }
        // `steady doctor` explains the same arguments without running anything.
        let args: Vec<&str> = match words.get(1).map(String::as_str) {
            Some("doctor") => words[2..].iter().map(String::as_str).collect(),
            _ => words[1..].iter().map(String::as_str).collect(),
        };
        std::fs::create_dir_all(ctx.path("work/.venv")).unwrap();
        let out = run(ctx.steady().arg("doctor").args(&args));
        assert_eq!(code(&out), 0, "`{ex}` as doctor: {}", stderr(&out));
        let said = stdout(&out);
        assert!(
            said.contains("supervise") && !said.contains("execs it unchanged"),
            "`{ex}` would not be supervised:\n{said}"
        );
    }
}

#[test]
fn readme_usage_and_exit_codes_are_helps() {
    let ctx = Ctx::new();
    let help = stdout(&run(ctx.steady().arg("--help")));
    let text = readme();
    let usage: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Usage: "))
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.trim_start_matches("Usage: ").trim().to_owned())
        .collect();
    let section = text
        .split("## Command line")
        .nth(1)
        .expect("a `## Command line` section");
    let block: Vec<String> = section
        .split("```")
        .nth(1)
        .expect("a usage block")
        .lines()
        .skip(1)
        .map(|l| l.split("  ").next().unwrap_or("").trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(block, usage, "the README's usage block is not --help's");
    for row in help_section(&help, "Exit status:") {
        let code = row.split_whitespace().next().unwrap();
        let code = if code == "N" {
            "the command's code"
        } else {
            code
        };
        assert!(
            text.lines().any(|l| l.starts_with(&format!("| {code} |"))),
            "exit status `{code}` of --help is not in the README's table"
        );
    }
}

#[test]
fn readme_names_the_default_wrapped_commands() {
    let ctx = Ctx::new();
    let script = stdout(&run(ctx.steady().args(["init", "bash"])));
    let names: Vec<&str> = script
        .lines()
        .filter_map(|l| l.strip_prefix("function "))
        .map(|l| l.trim_end_matches(" {"))
        .filter(|n| !n.starts_with("__steady"))
        .collect();
    let text = readme();
    let section = text
        .split("## Shell integration")
        .nth(1)
        .expect("a Shell integration section");
    let said = format!("{} commands by default", names.len());
    assert!(section.contains(&said), "the README does not say `{said}`");
    for n in &names {
        assert!(
            section.contains(&format!("`{n}`")),
            "the README does not name `{n}`"
        );
    }
}

#[test]
fn normalize_blurs_only_what_varies() {
    assert_eq!(
        normalize(
            "held by pid 41233 (`x`), running for 12s; retrying in 827ms\ncpus: 2; process limit: none enforced; stdin"
        ),
        "held by pid [..] (`x`), running for [..]; retrying in [..]\ncpus: [..]; process limit: [..]; stdin"
    );
    let _ = Path::new(HOME);
}

/// The README's promises name the tests that hold steady to them: every one it names exists
/// (a `module::*` names a module's tests by prefix), so a renamed or deleted test cannot leave
/// a promise without its proof.
#[test]
fn readme_promises_name_tests_that_exist() {
    let text = readme();
    let start = text.find("\n## Promises").expect("a Promises section");
    let section = &text[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let mut named = 0;
    for cell in section.split('`').skip(1).step_by(2) {
        let Some((module, test)) = cell.split_once("::") else {
            continue;
        };
        if !module.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            continue;
        }
        let source =
            std::fs::read_to_string(dir.join(format!("{module}.rs"))).unwrap_or_else(|_| {
                panic!("the README names `{cell}`, but tests/it/{module}.rs is missing")
            });
        let found = match test.strip_suffix('*') {
            Some(prefix) => source.contains(&format!("fn {prefix}")),
            None => source.contains(&format!("fn {test}()")),
        };
        assert!(found, "the README names `{cell}`, which is not a test");
        named += 1;
    }
    assert!(named >= 8, "the Promises section names only {named} tests");
}
