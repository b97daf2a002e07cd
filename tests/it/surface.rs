//! What the user touches besides a wrapped run: messages that name what was typed (the
//! `STEADY_*` variable a bad value came from, the bound of `--retries`, a missing shell or
//! command, a mistyped subcommand), boolean variables that refuse unknown words, `--help`'s
//! forms and exit codes, `-q` keeping the final summary, GitHub Actions annotations, and
//! `doctor` naming only the workarounds that apply.

use crate::common::*;

/// Exit status, first stderr line, second stderr line.
fn said(out: &std::process::Output) -> (i32, String, String) {
    let err = stderr(out);
    let mut lines = err.lines();
    (
        code(out),
        lines.next().unwrap_or("").to_owned(),
        lines.next().unwrap_or("").to_owned(),
    )
}

#[test]
fn a_bad_value_names_the_variable_it_came_from() {
    let ctx = Ctx::new();
    let out = run(ctx
        .steady()
        .env("STEADY_TIMEOUT", "abc")
        .args(["--", "true"]));
    let (rc, what, hint) = said(&out);
    assert_eq!(rc, 125);
    assert!(
        what.starts_with("steady: invalid value `abc` in STEADY_TIMEOUT: "),
        "{what}"
    );
    assert!(
        hint.starts_with("hint: STEADY_TIMEOUT sets --timeout"),
        "{hint}"
    );
    // Typed as a flag, the flag is named.
    let out = run(ctx.steady().args(["--timeout", "abc", "--", "true"]));
    let (rc, what, _) = said(&out);
    assert_eq!(rc, 125);
    assert!(
        what.starts_with("steady: invalid value `abc` for --timeout: "),
        "{what}"
    );
    // The flag wins over a bad twin, which is then never read.
    let out =
        run(ctx
            .steady()
            .env("STEADY_TIMEOUT", "abc")
            .args(["--timeout", "5s", "--", "true"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A value enum names its choices.
    let out = run(ctx.steady().env("STEADY_CLEAN", "sometimes").arg("true"));
    let (rc, what, _) = said(&out);
    assert_eq!(rc, 125);
    assert_eq!(
        what,
        "steady: invalid value `sometimes` in STEADY_CLEAN: expected auto, always or never"
    );
}

#[test]
fn retries_must_be_between_0_and_100() {
    let ctx = Ctx::new();
    for (args, env, want) in [
        (
            &["--retries", "-1"][..],
            None,
            "for --retries: the number of retries must be 0 or more",
        ),
        (
            &["--retries=-1"][..],
            None,
            "for --retries: the number of retries must be 0 or more",
        ),
        (
            &[][..],
            Some("-1"),
            "in STEADY_RETRIES: the number of retries must be 0 or more",
        ),
        (
            &["--retries", "4294967295"][..],
            None,
            "must be at most 100",
        ),
        (&["--retries", "x"][..], None, "is not a whole number"),
    ] {
        let mut cmd = ctx.steady();
        cmd.args(args).args(["--", "true"]);
        if let Some(v) = env {
            cmd.env("STEADY_RETRIES", v);
        }
        let out = run(&mut cmd);
        let err = stderr(&out);
        assert_eq!(code(&out), 125, "{args:?}: {err}");
        assert!(
            err.lines().next().is_some_and(|l| l.contains(want)),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains("'-- -1'"),
            "{args:?} suggests running `-1`: {err}"
        );
        assert_eq!(err.lines().count(), 2, "{args:?}: {err}");
    }
    let out = run(ctx.steady().args(["--retries", "0", "--", "true"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn boolean_variables_refuse_words_they_do_not_know() {
    let ctx = Ctx::new();
    for var in [
        "STEADY_NO_LOCK",
        "STEADY_SHARED",
        "STEADY_QUIET",
        "STEADY_VERBOSE",
        "STEADY_REQUIRE_LOCK",
    ] {
        let out = run(ctx.steady().env(var, "abc").args(["--", "true"]));
        let (rc, what, _) = said(&out);
        assert_eq!(rc, 125, "{var}=abc: {what}");
        assert!(
            what.contains(var) && what.contains("abc"),
            "{var}=abc: {what}"
        );
        for ok in ["1", "0", "yes", "no", "true", "off", "ON", ""] {
            let out = run(ctx.steady().env(var, ok).args(["--", "true"]));
            assert_eq!(code(&out), 0, "{var}={ok:?}: {}", stderr(&out));
        }
    }
    // And the words mean what they say: STEADY_NO_LOCK=0 still locks, =1 does not.
    ctx.fixture("pip", "echo \"held=${STEADY_HELD_LOCKS:+yes}\"\n");
    for (v, held) in [("0", "held=yes"), ("no", "held=yes"), ("1", "held=\n")] {
        let out = run(ctx
            .steady()
            .env("STEADY_NO_LOCK", v)
            .env("PIP_CACHE_DIR", ctx.cache())
            .args(["pip", "install", "x"]));
        assert!(
            stdout(&out).contains(held),
            "STEADY_NO_LOCK={v}: {}",
            stdout(&out)
        );
    }
}

#[test]
fn a_missing_shell_or_command_is_named_with_its_choices() {
    let ctx = Ctx::new();
    for (args, what, hint) in [
        (
            &["init"][..],
            "steady: `steady init` needs <SHELL>: bash, zsh or fish",
            "hint: for example `steady init bash`",
        ),
        (
            &["completions"][..],
            "steady: `steady completions` needs <SHELL>: bash, elvish, fish, powershell or zsh",
            "hint: for example `steady completions bash`",
        ),
        (
            &["doctor"][..],
            "steady: `steady doctor` needs the command to explain",
            "hint: for example `steady doctor -- uv pip install requests`",
        ),
        (
            &["doctor", "--timeout", "5s"][..],
            "steady: `steady doctor` needs the command to explain",
            "hint: for example",
        ),
        (
            &[][..],
            "steady: no command given",
            "hint: steady [OPTIONS] [--] <COMMAND>",
        ),
    ] {
        let out = run(ctx.steady().args(args));
        let (rc, first, second) = said(&out);
        assert_eq!(rc, 125, "{args:?}");
        assert_eq!(first, what, "{args:?}");
        assert!(second.starts_with(hint), "{args:?}: {second}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn a_mistyped_subcommand_is_suggested_only_when_no_such_command_exists() {
    let ctx = Ctx::new();
    let out = run(ctx.steady().arg("stauts"));
    let (rc, what, hint) = said(&out);
    assert_eq!(rc, 127);
    assert_eq!(what, "steady: `stauts`: command not found");
    assert_eq!(hint, "hint: did you mean `steady status`?");
    // A command of that name on PATH runs, as asked, with no hint.
    ctx.fixture("stauts", "echo ran; exit 7\n");
    let out = run(ctx.steady().arg("stauts"));
    assert_eq!(
        (code(&out), stdout(&out).as_str(), stderr(&out).as_str()),
        (7, "ran\n", "")
    );
    // A word far from every subcommand gets the plain message.
    let out = run(ctx.steady().arg("no-such-tool-here"));
    assert_eq!(code(&out), 127);
    assert!(!stderr(&out).contains("did you mean"), "{}", stderr(&out));
}

#[test]
fn help_shows_the_dash_dash_form_and_the_exit_codes() {
    let ctx = Ctx::new();
    for flag in ["--help", "-h"] {
        let out = run(ctx.steady().arg(flag));
        assert_eq!(code(&out), 0);
        let text = stdout(&out);
        assert!(
            text.contains("Usage: steady [OPTIONS] [--] <COMMAND> [ARGS]...")
                && text.contains("steady init <bash|zsh|fish> [--wrap LIST]")
                && text.contains("steady doctor [OPTIONS] [--] <COMMAND> [ARGS]..."),
            "{flag}:\n{text}"
        );
        let table = text.split("Exit status:").nth(1).unwrap_or("");
        for code in ["0 ", "124", "125", "126/127", "128+N", "75"] {
            assert!(
                table.lines().any(|l| l.trim_start().starts_with(code)),
                "{flag}: no exit code {code}:\n{text}"
            );
        }
        assert!(
            !text.contains("lock-ping") && !text.contains("lock-progress"),
            "{flag}"
        );
    }
}

#[test]
fn quiet_keeps_errors_and_the_final_summary() {
    let ctx = Ctx::new();
    let fail = [
        "--retries",
        "1",
        "--backoff",
        "10ms",
        "--",
        "sh",
        "-c",
        "exit 3",
    ];
    let out = run(ctx.steady().arg("-q").args(fail));
    assert_eq!(code(&out), 3);
    assert_eq!(
        stderr(&out),
        "steady: gave up after 2 attempts (attempts 1-2: exit 3)\n"
    );
    let out = run(ctx.steady().env("STEADY_QUIET", "1").args(fail));
    assert!(
        stderr(&out).starts_with("steady: gave up after 2 attempts"),
        "{}",
        stderr(&out)
    );
    // Without -q the retry is said too.
    let out = run(ctx.steady().args(fail));
    assert!(
        stderr(&out).contains("steady: attempt 1 of 2 failed"),
        "{}",
        stderr(&out)
    );
    // An error's hint stays under -q.
    let out = run(ctx.steady().args(["-q", "--timeout", "abc", "--", "true"]));
    let (rc, what, hint) = said(&out);
    assert_eq!(rc, 125);
    assert!(
        what.starts_with("steady: invalid value") && hint.starts_with("hint: "),
        "{what}\n{hint}"
    );
    // A timeout is an error: kept under -q.
    let out = run(ctx.steady().args([
        "-q",
        "--timeout",
        "300ms",
        "--retries",
        "0",
        "--",
        "sleep",
        "5",
    ]));
    assert_eq!(code(&out), 124);
    assert!(
        stderr(&out).contains("ran past --timeout 300ms"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn github_actions_gets_one_line_per_retry_and_an_error_for_the_end() {
    let ctx = Ctx::new();
    let gha = |args: &[&str]| run(ctx.steady().env("GITHUB_ACTIONS", "true").args(args));
    let out = gha(&[
        "--retries",
        "1",
        "--backoff",
        "10ms",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(code(&out), 3);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    let retry: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("attempt 1 of 2 failed"))
        .collect();
    assert_eq!(retry.len(), 1, "one line per retry:\n{err}");
    assert!(
        retry[0].starts_with("::warning title=steady::attempt 1 of 2 failed"),
        "{err}"
    );
    let end: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("gave up after"))
        .collect();
    assert_eq!(end.len(), 1, "{err}");
    assert!(
        end[0].starts_with("::error title=steady::gave up after 2 attempts"),
        "{err}"
    );
    // A hang and a timeout are errors too.
    let out = gha(&["--timeout", "300ms", "--retries", "0", "--", "sleep", "5"]);
    assert_eq!(code(&out), 124);
    let err = stderr(&out);
    assert!(
        err.lines()
            .any(|l| l.starts_with("::error title=steady::`sleep 5` ran past --timeout")),
        "{err}"
    );
    assert!(
        !err.lines().any(|l| l.starts_with("steady: ")),
        "said twice:\n{err}"
    );
    let out = gha(&["--stall", "500ms", "--retries", "0", "--", "sleep", "5"]);
    assert_eq!(code(&out), 124);
    assert!(
        stderr(&out)
            .lines()
            .any(|l| l.starts_with("::error title=steady::") && l.contains("hung")),
        "{}",
        stderr(&out)
    );
    // Outside GitHub Actions, plain lines only.
    let out = run(ctx
        .steady()
        .args(["--retries", "0", "--timeout", "300ms", "--", "sleep", "5"]));
    assert!(!stderr(&out).contains("::"), "{}", stderr(&out));
}

#[test]
fn doctor_lists_only_the_workarounds_that_apply() {
    let ctx = Ctx::new();
    let known = |args: &[&str]| {
        let out = run(ctx
            .steady()
            .env("PIP_CACHE_DIR", ctx.cache())
            .env("UV_CACHE_DIR", ctx.cache())
            .env("npm_config_cache", ctx.cache())
            .arg("doctor")
            .args(args));
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        stdout(&out)
            .lines()
            .find_map(|l| l.strip_prefix("known"))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    for args in [&["--", "pip", "install", "x"][..], &["--", "npm", "ci"][..]] {
        let k = known(args);
        assert!(k.starts_with("none for "), "{args:?}: {k}");
        assert!(!k.contains("uv#"), "{args:?} lists uv's workarounds: {k}");
    }
    let k = known(&["--", "uv", "pip", "install", "x"]);
    assert!(
        k.contains("under qemu-user")
            && k.contains("astral-sh/uv#6105")
            && k.contains("astral-sh/uv#14462"),
        "{k}"
    );
    let k = known(&["--timeout", "1s", "--", "./build.sh"]);
    assert_eq!(k, "none (not an installer steady knows)");
}

/// doctor names the `--lock-url` lock it would also take, without connecting to the server
/// (this one does not exist).
#[test]
fn doctor_names_the_remote_lock_when_the_server_cannot_be_reached() {
    if !cfg!(feature = "postgres") {
        skip("steady was built without the `postgres` feature");
        return;
    }
    let ctx = Ctx::new();
    let remote = |extra: &[&str]| {
        let out = run(ctx
            .steady()
            .env("UV_CACHE_DIR", ctx.cache())
            .env("PGPASSWORD", "secret")
            .args([
                "doctor",
                "--lock-url",
                "postgres://steady:pw@db.invalid/locks",
            ])
            .args(extra)
            .args(["--", "uv", "pip", "install", "x"]));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(
            !stdout(&out).contains("pw"),
            "a password shown:\n{}",
            stdout(&out)
        );
        stdout(&out)
            .lines()
            .find_map(|l| l.strip_prefix("remote lock"))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let line = remote(&[]);
    assert!(
        line.starts_with("an exclusive advisory lock in PostgreSQL at db.invalid:5432/locks, named by the cache's canonical path"),
        "{line}"
    );
    let line = remote(&["--shared", "--lock-namespace", "fleet-uv"]);
    assert!(
        line.starts_with("a shared advisory lock") && line.contains("namespace `fleet-uv`"),
        "{line}"
    );
    assert_eq!(remote(&["--no-lock"]), "");
}
