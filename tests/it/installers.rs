//! Each verified installer row against the real installer: the cache directory steady
//! resolves (`steady doctor`) equals the one the installer itself reports, by default and
//! with each override; failures provoked offline (an unreachable registry on 127.0.0.1:9, a
//! package that does not exist, a corrupted cache entry) are classified right in the
//! `--report`; cleans without an installer command (cargo, Go) heal the cache and never touch
//! what a planted symlink points at; apt waits on its own lock. Tools that are missing skip
//! with a reason (failing under STEADY_TEST_STRICT=1, as CI installs them all).

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::*;

/// The address nothing listens on: a refused connection, at once.
const DEAD: &str = "http://127.0.0.1:9";

/// `tests/fixtures/serve.py` serving a directory on a free loopback port, until dropped.
pub(crate) struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    pub(crate) fn start(root: &Path) -> Server {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/serve.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 serve.py");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().expect("the server's port");
        Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last non-empty line a command printed on stdout; panics with its stderr on failure.
fn answer(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// The `cache` line of `steady doctor -- argv`: the path and how it was found.
fn doctor_cache(cmd: &mut Command) -> (PathBuf, String) {
    let out = run(cmd);
    assert!(out.status.success(), "doctor failed: {}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("cache"))
        .unwrap_or_else(|| panic!("no cache line in:\n{text}"))
        .trim();
    let (path, source) = line.split_once(" (").unwrap_or((line, ""));
    (PathBuf::from(path), source.trim_end_matches(')').to_owned())
}

/// Trailing slashes and `.` components apart, the same path.
fn same(a: &Path, b: &Path) -> bool {
    a.components().eq(b.components())
}

/// One override scenario: environment variables for both the installer and steady.
type Env<'a> = &'a [(&'a str, &'a OsString)];

/// Asserts that `steady doctor -- tool write…` resolves the directory `tool query…` prints
/// (plus `join`), under `env`, in the work directory of `ctx`.
fn agrees(ctx: &Ctx, tool: &Path, write: &[&str], query: &[&str], join: &str, env: Env) -> PathBuf {
    let mut q = ctx.command(tool);
    q.args(query);
    let mut d = ctx.steady();
    d.args(["doctor", "--"]).arg(tool).args(write);
    for (k, v) in env {
        q.env(k, v);
        d.env(k, v);
    }
    let theirs = PathBuf::from(answer(&mut q)).join(join);
    let (ours, source) = doctor_cache(&mut d);
    assert!(
        same(&ours, &theirs),
        "{} {}: steady resolved {} ({source}), the installer says {}",
        tool.display(),
        query.join(" "),
        ours.display(),
        theirs.display()
    );
    ours
}

fn os(p: impl Into<OsString>) -> OsString {
    p.into()
}

/// Runs `steady --retries N --report R -- argv…` and returns the class of each attempt and
/// the report text.
fn classes(cmd: &mut Command, report: &Path) -> (Vec<String>, String) {
    let out = run(cmd);
    let text = std::fs::read_to_string(report)
        .unwrap_or_else(|_| panic!("no report; steady said: {}", stderr(&out)));
    let py = "import json,sys; r=json.load(open(sys.argv[1])); print('\\n'.join(str(a['class']) for a in r['attempts']))";
    let listed = run(Command::new("python3").args(["-c", py]).arg(report));
    assert!(listed.status.success(), "{}", stderr(&listed));
    (
        stdout(&listed).lines().map(str::to_owned).collect(),
        format!("{text}\n--- steady's stderr:\n{}", stderr(&out)),
    )
}

/// Asserts one attempt, classified as `class`.
fn fails_as(ctx: &Ctx, class: &str, program: &Path, args: &[&str], env: Env) {
    let report = ctx.path("report.json");
    let _ = std::fs::remove_file(&report);
    let mut c = ctx.steady();
    c.args(["--retries", "0", "--timeout", "120s", "--report"])
        .arg(&report)
        .arg("--")
        .arg(program)
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let (got, text) = classes(&mut c, &report);
    assert_eq!(
        got,
        [class],
        "{} {}: {text}",
        program.display(),
        args.join(" ")
    );
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn npm_project(ctx: &Ctx) {
    write(
        &ctx.path("work/package.json"),
        r#"{"name": "t", "version": "1.0.0", "private": true}"#,
    );
}

// ---------------------------------------------------------------- Python installers

#[test]
fn pip_and_uv_caches_match_their_own_answer() {
    let (Some(pip), Some(uv)) = (require("pip"), require("uv")) else {
        return;
    };
    let ctx = Ctx::new();
    let c1 = os(ctx.path("c1"));
    for env in [&[][..], &[("PIP_CACHE_DIR", &c1)]] {
        agrees(&ctx, &pip, &["install", "x"], &["cache", "dir"], "", env);
    }
    write(
        &ctx.home().join(".config/pip/pip.conf"),
        &format!("[global]\ncache-dir = {}\n", ctx.path("fromconf").display()),
    );
    let ours = agrees(&ctx, &pip, &["install", "x"], &["cache", "dir"], "", &[]);
    assert!(ours.ends_with("fromconf"));
    for env in [&[][..], &[("UV_CACHE_DIR", &c1)]] {
        agrees(
            &ctx,
            &uv,
            &["pip", "install", "x"],
            &["cache", "dir"],
            "",
            env,
        );
    }
    write(
        &ctx.path("work/uv.toml"),
        &format!("cache-dir = \"{}\"\n", ctx.path("uvconf").display()),
    );
    assert!(agrees(&ctx, &uv, &["sync"], &["cache", "dir"], "", &[]).ends_with("uvconf"));
}

#[test]
fn pip_and_uv_network_failures_are_network() {
    let (Some(pip), Some(uv)) = (require("pip"), require("uv")) else {
        return;
    };
    let ctx = Ctx::new();
    let index = format!("{DEAD}/simple");
    // pip says "Retrying" only when it retries; with none left it says only "not found".
    fails_as(
        &ctx,
        "network",
        &pip,
        &[
            "download",
            "--no-deps",
            "-d",
            "dl",
            "--index-url",
            &index,
            "--retries",
            "1",
            "--timeout",
            "2",
            "zzz-steady-missing",
        ],
        &[],
    );
    let retries = os("0");
    write(&ctx.path("work/req.in"), "zzz-steady-missing\n");
    fails_as(
        &ctx,
        "network",
        &uv,
        &[
            "pip",
            "compile",
            "req.in",
            "--index-url",
            &index,
            "--no-config",
        ],
        &[("UV_HTTP_RETRIES", &retries)],
    );
}

#[test]
fn pipx_home_matches_and_backend_failures_are_classified() {
    let Some(pipx) = require("pipx") else { return };
    let ctx = Ctx::new();
    let home = os(ctx.path("pipxhome"));
    for env in [&[][..], &[("PIPX_HOME", &home)]] {
        agrees(
            &ctx,
            &pipx,
            &["install", "x"],
            &["environment", "--value", "PIPX_HOME"],
            "",
            env,
        );
    }
    fails_as(
        &ctx,
        "network",
        &pipx,
        &[
            "install",
            "--index-url",
            &format!("{DEAD}/simple/"),
            "zzz-steady-missing",
        ],
        &[],
    );
}

#[test]
fn poetry_cache_matches_and_failures_are_classified() {
    let Some(poetry) = require("poetry") else {
        return;
    };
    let ctx = Ctx::new();
    let c = os(ctx.path("pc"));
    for env in [&[][..], &[("POETRY_CACHE_DIR", &c)]] {
        agrees(
            &ctx,
            &poetry,
            &["install"],
            &["config", "cache-dir"],
            "",
            env,
        );
    }
    write(
        &ctx.home().join(".config/pypoetry/config.toml"),
        &format!("cache-dir = \"{}\"\n", ctx.path("fromconf").display()),
    );
    assert!(
        agrees(&ctx, &poetry, &["lock"], &["config", "cache-dir"], "", &[]).ends_with("fromconf")
    );
    write(
        &ctx.path("work/pyproject.toml"),
        &format!(
            "[project]\nname = \"t\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\ndependencies = [\"zzz-steady-missing\"]\n\n\
             [[tool.poetry.source]]\nname = \"dead\"\nurl = \"{DEAD}/simple/\"\npriority = \"primary\"\n"
        ),
    );
    fails_as(&ctx, "network", &poetry, &["lock"], &[]);
}

#[test]
fn pdm_cache_matches_and_its_clean_command_clears_it() {
    let Some(pdm) = require("pdm") else { return };
    let ctx = Ctx::new();
    let c = os(ctx.path("pd"));
    let no_check = os("1");
    for env in [
        &[("PDM_CHECK_UPDATE", &no_check)][..],
        &[("PDM_CACHE_DIR", &c), ("PDM_CHECK_UPDATE", &no_check)],
    ] {
        agrees(&ctx, &pdm, &["install"], &["config", "cache_dir"], "", env);
    }
    // The clean steady runs for pdm: `env PDM_CACHE_DIR=<cache> pdm cache clear`.
    let d = run(ctx
        .steady()
        .env("PDM_CACHE_DIR", &c)
        .args(["doctor", "--"])
        .arg(&pdm)
        .arg("install"));
    assert!(stdout(&d).contains("`pdm cache clear`"), "{}", stdout(&d));
    write(&ctx.path("pd/wheels/x/a-1.0-py3-none-any.whl"), "x");
    write(&ctx.path("pd/http/b/c"), "x");
    let out = run(ctx
        .command(&pdm)
        .env("PDM_CACHE_DIR", &c)
        .env("PDM_CHECK_UPDATE", &no_check)
        .args(["cache", "clear"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !ctx.path("pd/wheels/x/a-1.0-py3-none-any.whl").exists()
            && !ctx.path("pd/http/b/c").exists(),
        "pdm cache clear left files"
    );
}

// ---------------------------------------------------------------- npm-registry installers

#[test]
fn npm_cache_matches_and_failures_are_classified() {
    let Some(npm) = require("npm") else { return };
    let ctx = Ctx::new();
    npm_project(&ctx);
    // XDG_CACHE_HOME is set by the harness: npm ignores it, and so must steady.
    let ours = agrees(&ctx, &npm, &["ci"], &["config", "get", "cache"], "", &[]);
    assert!(same(&ours, &ctx.home().join(".npm")), "{}", ours.display());
    let c = os(ctx.path("nc"));
    agrees(
        &ctx,
        &npm,
        &["install"],
        &["config", "get", "cache"],
        "",
        &[("npm_config_cache", &c)],
    );
    write(
        &ctx.path("work/.npmrc"),
        &format!("cache={}\n", ctx.path("fromrc").display()),
    );
    assert!(
        agrees(
            &ctx,
            &npm,
            &["install"],
            &["config", "get", "cache"],
            "",
            &[]
        )
        .ends_with("fromrc")
    );
    std::fs::remove_file(ctx.path("work/.npmrc")).unwrap();

    fails_as(
        &ctx,
        "network",
        &npm,
        &[
            "install",
            "--registry",
            &format!("{DEAD}/"),
            "--fetch-retries",
            "0",
            "is-number",
        ],
        &[],
    );
    let empty = ctx.path("registry");
    std::fs::create_dir(&empty).unwrap();
    let server = Server::start(&empty);
    fails_as(
        &ctx,
        "deterministic",
        &npm,
        &[
            "install",
            "--registry",
            &format!("{}/", server.url),
            "zzz-steady-missing",
        ],
        &[],
    );
}

#[test]
fn npm_corruption_is_healed_by_npm_cache_verify() {
    let Some(npm) = require("npm") else { return };
    let ctx = Ctx::new();
    npm_project(&ctx);
    let cache = ctx.home().join(".npm");
    // A package from a local tarball fills the cache; then its content is corrupted, and an
    // offline install from the cache fails its integrity check.
    let pkg = ctx.path("src");
    write(
        &pkg.join("package.json"),
        r#"{"name": "steady-demo", "version": "1.0.0"}"#,
    );
    write(&pkg.join("index.js"), "module.exports = 1;\n");
    let packed = answer(
        ctx.command(&npm)
            .args(["pack", "--pack-destination"])
            .arg(ctx.path("work"))
            .arg(&pkg),
    );
    let out = run(ctx
        .command(&npm)
        .args(["install", "--no-audit", "--no-fund"])
        .arg(ctx.path("work").join(&packed)));
    assert!(out.status.success(), "{}", stderr(&out));
    let content = cache.join("_cacache/content-v2");
    let mut blobs = Vec::new();
    let mut stack = vec![content];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path())
            } else {
                blobs.push(e.path())
            }
        }
    }
    assert!(!blobs.is_empty(), "npm cached nothing");
    for b in &blobs {
        std::fs::write(b, "corrupted").unwrap();
    }
    let verify = run(ctx.command(&npm).args(["cache", "verify"]));
    assert!(verify.status.success(), "{}", stderr(&verify));
    let left = blobs.iter().filter(|b| b.exists()).count();
    assert_eq!(
        left, 0,
        "npm cache verify (which steady runs on corruption) left corrupted content"
    );
    let (_, source) = doctor_cache(ctx.steady().args(["doctor", "--"]).arg(&npm).arg("ci"));
    assert!(source.contains("default"), "{source}");
    let d = run(ctx.steady().args(["doctor", "--"]).arg(&npm).arg("ci"));
    assert!(
        stdout(&d).contains("cache verify"),
        "doctor does not say npm's check comes first: {}",
        stdout(&d)
    );
}

#[test]
fn pnpm_store_matches_and_failures_are_classified() {
    let Some(pnpm) = require("pnpm") else { return };
    let ctx = Ctx::new();
    npm_project(&ctx);
    let s = os(ctx.path("st"));
    let ph = os(ctx.path("ph"));
    let xd = os(ctx.path("xd"));
    for env in [
        &[][..],
        &[("PNPM_CONFIG_STORE_DIR", &s)],
        &[("PNPM_HOME", &ph)],
        &[("XDG_DATA_HOME", &xd)],
    ] {
        agrees(&ctx, &pnpm, &["install"], &["store", "path"], "", env);
    }
    let retries = os("0");
    fails_as(
        &ctx,
        "network",
        &pnpm,
        &["add", "--registry", &format!("{DEAD}/"), "is-number"],
        &[("PNPM_CONFIG_FETCH_RETRIES", &retries)],
    );
    let empty = ctx.path("registry");
    std::fs::create_dir(&empty).unwrap();
    let server = Server::start(&empty);
    fails_as(
        &ctx,
        "deterministic",
        &pnpm,
        &[
            "add",
            "--registry",
            &format!("{}/", server.url),
            "zzz-steady-missing",
        ],
        &[("PNPM_CONFIG_FETCH_RETRIES", &retries)],
    );
}

#[test]
fn yarn_classic_cache_matches_and_failures_are_classified() {
    let Some(yarn) = require("yarn") else { return };
    let ctx = Ctx::new();
    let version = answer(ctx.command(&yarn).arg("--version"));
    if !version.starts_with("1.") {
        skip(&format!("`yarn` on PATH is {version}, not yarn 1"));
        return;
    }
    npm_project(&ctx);
    let y = os(ctx.path("yc"));
    for env in [&[][..], &[("YARN_CACHE_FOLDER", &y)]] {
        agrees(&ctx, &yarn, &["install"], &["cache", "dir"], "", env);
    }
    let d = doctor_cache(
        ctx.steady()
            .args(["doctor", "--"])
            .arg(&yarn)
            .args(["install", "--cache-folder"])
            .arg(ctx.path("flag")),
    );
    assert!(same(&d.0, &ctx.path("flag/v6")), "{d:?}");
    fails_as(
        &ctx,
        "network",
        &yarn,
        &["add", "--registry", &format!("{DEAD}/"), "is-number"],
        &[],
    );
}

#[test]
fn yarn_berry_is_told_apart_and_its_cache_matches() {
    let Some(berry) = require("yarn-berry") else {
        return;
    };
    let ctx = Ctx::new();
    // Users run it as `yarn`: the project, not the name, says which yarn it is.
    std::os::unix::fs::symlink(&berry, ctx.bin().join("yarn")).unwrap();
    let yarn = ctx.bin().join("yarn");
    write(
        &ctx.path("work/package.json"),
        r#"{"name": "b", "private": true}"#,
    );
    write(
        &ctx.path("work/.yarnrc.yml"),
        &format!(
            "npmRegistryServer: \"{DEAD}\"\nhttpRetry: 0\nunsafeHttpWhitelist: [\"127.0.0.1\"]\n"
        ),
    );
    let g = os(ctx.path("glob"));
    for env in [&[][..], &[("YARN_GLOBAL_FOLDER", &g)]] {
        agrees(
            &ctx,
            &yarn,
            &["install"],
            &["config", "get", "cacheFolder"],
            "",
            env,
        );
    }
    let d = run(ctx
        .steady()
        .args(["doctor", "--"])
        .arg(&yarn)
        .arg("install"));
    assert!(stdout(&d).contains("yarn-berry"), "{}", stdout(&d));
    fails_as(&ctx, "network", &yarn, &["add", "is-number"], &[]);
}

#[test]
fn bun_cache_matches_and_failures_are_classified() {
    let Some(bun) = require("bun") else { return };
    let ctx = Ctx::new();
    npm_project(&ctx);
    let c = os(ctx.path("bc"));
    let bi = os(ctx.path("bi"));
    // The harness sets XDG_CACHE_HOME, so the plain case covers bun's XDG rule.
    for env in [
        &[][..],
        &[("BUN_INSTALL_CACHE_DIR", &c)],
        &[("BUN_INSTALL", &bi)],
    ] {
        agrees(&ctx, &bun, &["install"], &["pm", "cache"], "", env);
    }
    write(
        &ctx.path("work/bunfig.toml"),
        &format!(
            "[install.cache]\ndir = \"{}\"\n",
            ctx.path("fromcfg").display()
        ),
    );
    assert!(agrees(&ctx, &bun, &["install"], &["pm", "cache"], "", &[]).ends_with("fromcfg"));
    std::fs::remove_file(ctx.path("work/bunfig.toml")).unwrap();
    fails_as(
        &ctx,
        "network",
        &bun,
        &["add", "--registry", &format!("{DEAD}/"), "is-number"],
        &[],
    );
}

// ---------------------------------------------------------------- build tools

/// A one-crate sparse registry served from `root`: `demo 1.0.0`, with a library in it.
fn sparse_registry(root: &Path, url: &str) -> PathBuf {
    let script = r#"
import hashlib, io, json, os, sys, tarfile
root, url = sys.argv[1], sys.argv[2]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w:gz") as t:
    for name, text in [("Cargo.toml", '[package]\nname = "demo"\nversion = "1.0.0"\nedition = "2021"\n'), ("src/lib.rs", "pub fn demo() -> u8 { 7 }\n")]:
        data = text.encode()
        info = tarfile.TarInfo("demo-1.0.0/" + name); info.size = len(data); info.mode = 0o644
        t.addfile(info, io.BytesIO(data))
crate = buf.getvalue()
os.makedirs(os.path.join(root, "de/mo"), exist_ok=True)
os.makedirs(os.path.join(root, "dl/demo/1.0.0"), exist_ok=True)
open(os.path.join(root, "dl/demo/1.0.0/download"), "wb").write(crate)
entry = {"name": "demo", "vers": "1.0.0", "deps": [], "cksum": hashlib.sha256(crate).hexdigest(), "features": {}, "yanked": False}
open(os.path.join(root, "de/mo/demo"), "w").write(json.dumps(entry) + "\n")
open(os.path.join(root, "config.json"), "w").write(json.dumps({"dl": url + "/dl"}))
"#;
    let out = run(Command::new("python3")
        .args(["-c", script])
        .arg(root)
        .arg(url));
    assert!(out.status.success(), "{}", stderr(&out));
    root.to_path_buf()
}

fn cargo_project(ctx: &Ctx, index: &str) -> PathBuf {
    let proj = ctx.path("work/app");
    write(
        &proj.join("Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ndemo = { version = \"1\", registry = \"local\" }\n",
    );
    write(
        &proj.join("src/lib.rs"),
        "pub fn f() -> u8 { demo::demo() }\n",
    );
    write(
        &ctx.path("cargohome/config.toml"),
        &format!("[registries.local]\nindex = \"sparse+{index}/\"\n\n[net]\nretry = 0\n"),
    );
    proj
}

#[test]
fn cargo_corrupted_crate_is_removed_with_its_source_and_the_fetch_heals() {
    let Some(cargo) = require("cargo") else {
        return;
    };
    let ctx = Ctx::new();
    let reg = ctx.path("reg");
    std::fs::create_dir(&reg).unwrap();
    let server = Server::start(&reg);
    sparse_registry(&reg, &server.url);
    let proj = cargo_project(&ctx, &server.url);
    let home = os(ctx.path("cargohome"));
    let env: Env = &[("CARGO_HOME", &home)];
    let (resolved, _) = doctor_cache(
        ctx.steady()
            .env("CARGO_HOME", &home)
            .current_dir(&proj)
            .args(["doctor", "--"])
            .arg(&cargo)
            .arg("fetch"),
    );
    assert!(same(&resolved, &ctx.path("cargohome")));
    let out = run(ctx
        .command(&cargo)
        .env("CARGO_HOME", &home)
        .current_dir(&proj)
        .arg("fetch"));
    assert!(out.status.success(), "{}", stderr(&out));
    // Where cargo put it is where steady looks: the crate and its unpacked source.
    let find = |sub: &str, name: &str| -> Option<PathBuf> {
        std::fs::read_dir(resolved.join(sub))
            .ok()?
            .flatten()
            .map(|d| d.path().join(name))
            .find(|p| p.exists())
    };
    let krate = find("registry/cache", "demo-1.0.0.crate")
        .expect("cargo cached the crate under the resolved CARGO_HOME");
    let src = find("registry/src", "demo-1.0.0").expect("cargo unpacked the crate");
    // A canary behind a symlink planted in the source dir must survive the clean.
    let canary = ctx.path("canary");
    write(&canary.join("keep"), "x");
    std::os::unix::fs::symlink(&canary, src.join("planted")).unwrap();
    std::fs::write(&krate, b"not a gzip stream").unwrap();
    std::fs::remove_dir_all(ctx.path("work/app/target")).ok();
    // cargo does not heal this by itself: src/ is gone, the .crate is garbage.
    let unpacked = src.clone();
    let moved = ctx.path("src-aside");
    std::fs::rename(&unpacked, &moved).unwrap();
    let report = ctx.path("report.json");
    let mut c = ctx.steady();
    c.current_dir(&proj)
        .args(["--backoff", "10ms", "-v", "--report"])
        .arg(&report)
        .arg("--")
        .arg(&cargo)
        .arg("build");
    for (k, v) in env {
        c.env(k, v);
    }
    let (got, text) = classes(&mut c, &report);
    assert_eq!(got, ["cache corruption", "None"], "{text}");
    assert!(text.contains("cleared demo from the cargo cache"), "{text}");
    assert!(
        canary.join("keep").exists(),
        "the canary behind the planted symlink was touched"
    );
    std::fs::rename(&moved, &unpacked).ok();
    fails_as(
        &ctx,
        "deterministic",
        &cargo,
        &[
            "fetch",
            "--manifest-path",
            proj.join("Cargo.toml").to_str().unwrap(),
        ],
        &[
            ("CARGO_HOME", &home),
            (
                "CARGO_REGISTRIES_LOCAL_INDEX",
                &os(format!("sparse+{}/nothing/", server.url)),
            ),
        ],
    );
    drop(server);
    let dead_home = os(ctx.path("deadhome"));
    write(
        &ctx.path("deadhome/config.toml"),
        &format!("[registries.local]\nindex = \"sparse+{DEAD}/\"\n\n[net]\nretry = 0\n"),
    );
    fails_as(
        &ctx,
        "network",
        &cargo,
        &[
            "fetch",
            "--manifest-path",
            proj.join("Cargo.toml").to_str().unwrap(),
        ],
        &[("CARGO_HOME", &dead_home)],
    );
}

/// A Go module proxy in a directory (GOPROXY=file://…): `example.com/demo v1.0.0`.
fn go_proxy(root: &Path) {
    let script = r#"
import io, os, sys, zipfile
root = sys.argv[1]
d = os.path.join(root, "example.com/demo/@v")
os.makedirs(d, exist_ok=True)
mod = "module example.com/demo\n\ngo 1.19\n"
open(os.path.join(d, "list"), "w").write("v1.0.0\n")
open(os.path.join(d, "v1.0.0.info"), "w").write('{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}')
open(os.path.join(d, "v1.0.0.mod"), "w").write(mod)
with zipfile.ZipFile(os.path.join(d, "v1.0.0.zip"), "w") as z:
    z.writestr("example.com/demo@v1.0.0/go.mod", mod)
    z.writestr("example.com/demo@v1.0.0/demo.go", "package demo\n\nconst N = 7\n")
"#;
    let out = run(Command::new("python3").args(["-c", script]).arg(root));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn go_modcache_matches_and_failures_are_classified() {
    let Some(go) = require("go") else { return };
    let ctx = Ctx::new();
    let m = os(ctx.path("gm"));
    let gp = os(format!(
        "{}:{}",
        ctx.path("gp1").display(),
        ctx.path("gp2").display()
    ));
    for env in [&[][..], &[("GOMODCACHE", &m)], &[("GOPATH", &gp)]] {
        agrees(
            &ctx,
            &go,
            &["mod", "download"],
            &["env", "GOMODCACHE"],
            "",
            env,
        );
    }
    let proxy = ctx.path("proxy");
    go_proxy(&proxy);
    write(&ctx.path("work/go.mod"), "module t\n\ngo 1.19\n");
    let cache = os(ctx.path("gomod"));
    let goproxy = os(format!("file://{}", proxy.display()));
    let off = os("off");
    let flags = os("-mod=mod");
    let env: Env = &[
        ("GOMODCACHE", &cache),
        ("GOPROXY", &goproxy),
        ("GOSUMDB", &off),
        ("GOFLAGS", &flags),
    ];
    let mut fetch = ctx.command(&go);
    fetch.args(["mod", "download", "example.com/demo@v1.0.0"]);
    for (k, v) in env {
        fetch.env(k, v);
    }
    let out = run(&mut fetch);
    assert!(out.status.success(), "{}", stderr(&out));
    // A truncated download and a missing extraction: go trusts the zip it has and fails.
    let zip = ctx.path("gomod/cache/download/example.com/demo/@v/v1.0.0.zip");
    assert!(zip.exists(), "go cached nothing where steady looks");
    std::fs::write(&zip, b"PK garbage").unwrap();
    let extracted = ctx.path("gomod/example.com/demo@v1.0.0");
    run(Command::new("chmod").args(["-R", "u+w"]).arg(&extracted));
    std::fs::remove_dir_all(&extracted).unwrap();
    let report = ctx.path("report.json");
    let mut c = ctx.steady();
    c.args(["--backoff", "10ms", "-v", "--report"])
        .arg(&report)
        .arg("--")
        .arg(&go)
        .args(["mod", "download", "example.com/demo@v1.0.0"]);
    for (k, v) in env {
        c.env(k, v);
    }
    let (got, text) = classes(&mut c, &report);
    assert_eq!(got, ["cache corruption", "None"], "{text}");
    assert!(
        extracted.join("demo.go").exists(),
        "the module was not fetched again"
    );
    let dead = os(DEAD);
    fails_as(
        &ctx,
        "network",
        &go,
        &["mod", "download", "example.com/other@v1.0.0"],
        &[
            ("GOMODCACHE", &cache),
            ("GOPROXY", &dead),
            ("GOSUMDB", &off),
            ("GOFLAGS", &flags),
        ],
    );
    fails_as(
        &ctx,
        "deterministic",
        &go,
        &["mod", "download", "example.com/other@v1.0.0"],
        &[
            ("GOMODCACHE", &cache),
            ("GOPROXY", &off),
            ("GOFLAGS", &flags),
        ],
    );
}

// ---------------------------------------------------------------- Ruby, PHP, Debian

#[test]
fn gem_and_bundler_caches_match_and_failures_are_classified() {
    let (Some(gem), Some(bundle)) = (require("gem"), require("bundle")) else {
        return;
    };
    let ctx = Ctx::new();
    let gh = os(ctx.path("gh"));
    for env in [&[][..], &[("GEM_HOME", &gh)]] {
        agrees(
            &ctx,
            &gem,
            &["install", "x"],
            &["env", "gemdir"],
            "cache",
            env,
        );
    }
    fails_as(
        &ctx,
        "network",
        &gem,
        &[
            "install",
            "--clear-sources",
            "--source",
            &format!("{DEAD}/"),
            "zzz-steady-missing",
        ],
        &[("GEM_HOME", &gh)],
    );
    fails_as(
        &ctx,
        "deterministic",
        &gem,
        &["install", "--local", "zzz-steady-missing"],
        &[("GEM_HOME", &gh)],
    );
    let ruby = require("ruby");
    let uc = os(ctx.path("bc"));
    let bh = os(ctx.path("bh"));
    for env in [
        &[][..],
        &[("BUNDLE_USER_CACHE", &uc)],
        &[("BUNDLE_USER_HOME", &bh)],
    ] {
        let Some(ruby) = &ruby else { break };
        let mut q = ctx.command(ruby);
        q.args(["-rbundler", "-e", "puts Bundler.user_cache"]);
        let mut d = ctx.steady();
        d.args(["doctor", "--"]).arg(&bundle).arg("install");
        for (k, v) in env {
            q.env(k, v);
            d.env(k, v);
        }
        let theirs = PathBuf::from(answer(&mut q));
        let (ours, source) = doctor_cache(&mut d);
        assert!(
            same(&ours, &theirs),
            "bundler: steady {} ({source}), Bundler.user_cache {}",
            ours.display(),
            theirs.display()
        );
    }
    write(
        &ctx.path("work/Gemfile"),
        &format!("source \"{DEAD}\"\ngem \"zzz-steady-missing\"\n"),
    );
    let zero = os("0");
    fails_as(
        &ctx,
        "network",
        &bundle,
        &["install"],
        &[("GEM_HOME", &gh), ("BUNDLE_RETRY", &zero)],
    );
}

#[test]
fn composer_cache_matches_and_failures_are_classified() {
    let Some(composer) = require("composer") else {
        return;
    };
    let ctx = Ctx::new();
    let cc = os(ctx.path("cc"));
    let ch = os(ctx.path("ch"));
    for env in [
        &[][..],
        &[("COMPOSER_CACHE_DIR", &cc)],
        &[("COMPOSER_HOME", &ch)],
    ] {
        agrees(
            &ctx,
            &composer,
            &["install"],
            &["config", "--global", "cache-dir"],
            "",
            env,
        );
    }
    write(
        &ctx.path("work/composer.json"),
        &format!(
            r#"{{"config": {{"secure-http": false}}, "repositories": [{{"type": "composer", "url": "{DEAD}"}}, {{"packagist.org": false}}], "require": {{"steady/missing": "1.0"}}}}"#
        ),
    );
    let no = os("1");
    fails_as(
        &ctx,
        "network",
        &composer,
        &["update", "--no-interaction", "--no-plugins"],
        &[("COMPOSER_ALLOW_SUPERUSER", &no)],
    );
    write(
        &ctx.path("work/composer.json"),
        r#"{"repositories": [{"packagist.org": false}], "require": {"steady/missing": "1.0"}}"#,
    );
    fails_as(
        &ctx,
        "deterministic",
        &composer,
        &["update", "--no-interaction", "--no-plugins"],
        &[("COMPOSER_ALLOW_SUPERUSER", &no)],
    );
}

/// apt with its state, lists, cache and lock in a scratch directory, so the tests never touch
/// the machine's own (and need no root for the lock they fight over).
fn apt_args(ctx: &Ctx) -> Vec<String> {
    let root = ctx.path("apt");
    for d in [
        "state/lists/partial",
        "cache/archives/partial",
        "etc/sources.list.d",
        "etc/preferences.d",
        "etc/apt.conf.d",
        "dpkg/updates",
        "dpkg/info",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    write(&root.join("dpkg/status"), "");
    write(
        &root.join("etc/sources.list"),
        &format!("deb [trusted=yes] {DEAD}/debian bookworm main\n"),
    );
    let r = root.display();
    [
        format!("Dir::State={r}/state"),
        format!("Dir::State::status={r}/dpkg/status"),
        format!("Dir::Cache={r}/cache"),
        format!("Dir::Etc={r}/etc"),
        format!("Dir::Etc::sourcelist={r}/etc/sources.list"),
        format!("Dir::Etc::sourceparts={r}/etc/sources.list.d"),
        format!("Dir::Etc::parts={r}/etc/apt.conf.d"),
        format!("Dir::Etc::preferencesparts={r}/etc/preferences.d"),
        "Acquire::Retries=0".into(),
        "APT::Sandbox::User=root".into(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_owned(), o])
    .collect()
}

#[test]
fn apt_cache_matches_and_failures_are_classified() {
    let Some(apt) = require("apt-get") else {
        return;
    };
    if !is_root() {
        skip("apt-get update and install need root");
        return;
    }
    let ctx = Ctx::new();
    let config = require("apt-config").expect("apt-config comes with apt-get");
    let theirs = answer(
        ctx.command(&config)
            .args(["shell", "D", "Dir::Cache::archives/d"]),
    );
    let theirs = theirs.trim_start_matches("D=").trim_matches('\'');
    let (ours, _) = doctor_cache(
        ctx.steady()
            .args(["doctor", "--"])
            .arg(&apt)
            .args(["install", "x"]),
    );
    assert!(
        same(&ours, Path::new(theirs)),
        "steady {} vs apt {theirs}",
        ours.display()
    );
    let mut args = apt_args(&ctx);
    // apt-get update exits 0 on fetch failures unless told otherwise.
    args.extend([
        "-o".into(),
        "APT::Update::Error-Mode=any".into(),
        "update".into(),
    ]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    fails_as(&ctx, "network", &apt, &a, &[]);
    let mut args = apt_args(&ctx);
    args.extend(["install".into(), "-y".into(), "zzz-steady-missing".into()]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    fails_as(&ctx, "deterministic", &apt, &a, &[]);
}

#[test]
fn apt_waits_on_its_own_lock_not_on_steadys() {
    let Some(apt) = require("apt-get") else {
        return;
    };
    if !is_root() {
        skip("apt-get install takes its lock only as root");
        return;
    }
    let ctx = Ctx::new();
    let args = apt_args(&ctx);
    // apt's frontend lock is an fcntl lock next to the status file; a holder of it must make
    // apt wait (the time --lock-timeout gives) and then fail, classified as a lock timeout.
    let lock = ctx.path("apt/dpkg/lock-frontend");
    write(&lock, "");
    let holder = "import fcntl,sys,time; f=open(sys.argv[1],'r+'); fcntl.lockf(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(120)";
    let mut held = Command::new("python3")
        .args(["-c", holder])
        .arg(&lock)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(held.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let report = ctx.path("report.json");
    let mut c = ctx.steady();
    c.args(["--retries", "0", "--lock-timeout", "2s", "-v", "--report"])
        .arg(&report)
        .arg("--")
        .arg(&apt)
        .args(&args)
        .args(["install", "-y", "zzz-steady-missing"]);
    let started = std::time::Instant::now();
    let (got, text) = classes(&mut c, &report);
    let _ = held.kill();
    let _ = held.wait();
    assert_eq!(got, ["installer lock timeout"], "{text}");
    assert!(
        text.contains("DPkg::Lock::Timeout=2"),
        "steady did not pass its --lock-timeout to apt: {text}"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "apt did not wait"
    );
    assert!(
        !text.contains("flock on"),
        "steady took a lock apt would not see: {text}"
    );
}

// ---------------------------------------------------------------- path-level removal (R24)

/// pnpm's store has no clean command: a full clean removes everything in it with steady's own
/// removal, keeping the root, leaving no trash, and never following a planted symlink.
fn pnpm_like_full_clean(ctx: &Ctx, store: &Path) -> String {
    // An unknown failure of a fake pnpm asks for one full clean; the fake says where its store
    // is as pnpm does.
    ctx.fixture(
        "pnpm",
        &format!(
            "if [ \"$1\" = store ] && [ \"$2\" = path ]; then echo {s}; exit 0; fi\n\
             n=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}\n\
             [ \"$n\" -ge 1 ] && exit 0\necho 'something odd happened' >&2; exit 1\n",
            s = store.display(),
            c = ctx.path("count").display()
        ),
    );
    let out = run(ctx
        .steady()
        .args(["--backoff", "10ms", "-v", "--", "pnpm", "install"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stderr(&out)
}

#[test]
fn a_full_clean_without_a_command_spares_symlink_targets_and_leaves_no_trash() {
    let ctx = Ctx::new();
    let store = ctx.path("store/v11");
    write(&store.join("files/00/abc"), "x");
    write(&store.join("index/ab.json"), "{}");
    let canary = ctx.path("canary");
    write(&canary.join("deep/keep"), "x");
    std::os::unix::fs::symlink(&canary, store.join("files/planted")).unwrap();
    std::os::unix::fs::symlink(&canary, store.join("planted-top")).unwrap();
    let said = pnpm_like_full_clean(&ctx, &store);
    assert!(said.contains("cleared the pnpm cache"), "{said}");
    assert!(canary.join("deep/keep").exists(), "the canary was touched");
    assert!(
        store.is_dir(),
        "the store root must stay (steady's lock is on it)"
    );
    // Only pnpm's kinds of entries go (issue 14, case 2): the link planted beside them is not
    // one, and stays, as a link.
    let left: Vec<String> = std::fs::read_dir(&store)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["planted-top"],
        "the store was not emptied of pnpm's entries"
    );
    let beside: Vec<String> = std::fs::read_dir(ctx.path("store"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside, ["v11"], "trash was left behind");
}

#[test]
fn trash_left_by_a_killed_run_is_removed_on_the_next_start() {
    let ctx = Ctx::new();
    let store = ctx.path("store/v11");
    write(&store.join("files/00/abc"), "x");
    // What a run killed half way through a clean leaves: trash beside and inside the root,
    // named with a pid that is gone.
    let beside = ctx.path("store/.v11.steady-trash-99999999-0");
    let inside = store.join(".steady-trash-99999999-1");
    write(&beside.join("files/x"), "x");
    write(&inside.join("files/y"), "x");
    ctx.fixture(
        "pnpm",
        &format!(
            "if [ \"$1\" = store ]; then echo {}; fi; exit 0\n",
            store.display()
        ),
    );
    let out = run(ctx.steady().args(["-v", "--", "pnpm", "install"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        !beside.exists() && !inside.exists(),
        "leftover trash stayed: {}",
        stderr(&out)
    );
    assert!(
        store.join("files/00/abc").exists(),
        "the store itself was touched"
    );
}

#[test]
fn a_cache_root_that_is_a_mount_point_is_emptied_not_renamed() {
    if !is_root() {
        skip("needs root to mount a tmpfs in a private mount namespace");
        return;
    }
    let Some(unshare) = require("unshare") else {
        return;
    };
    let ctx = Ctx::new();
    let store = ctx.path("store/v11");
    std::fs::create_dir_all(&store).unwrap();
    let canary = ctx.path("canary");
    write(&canary.join("keep"), "x");
    ctx.fixture(
        "pnpm",
        &format!(
            "if [ \"$1\" = store ]; then echo {s}; exit 0; fi\n\
             n=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}\n\
             [ \"$n\" -ge 1 ] && exit 0\necho 'something odd happened' >&2; exit 1\n",
            s = store.display(),
            c = ctx.path("count").display()
        ),
    );
    // Inside a private mount namespace: mount a tmpfs on the store, fill it, run steady, and
    // report what is left and whether it is still the same mount.
    let script = format!(
        "set -e; mount -t tmpfs steady-test {s}; mkdir -p {s}/files/00 {s}/index; echo x > {s}/files/00/abc; ln -s {canary} {s}/planted; \
         before=$(stat -c %d {s}); \"$STEADY\" --backoff 10ms -v -- pnpm install; \
         after=$(stat -c %d {s}); echo \"left=$(ls -A {s} | wc -l) same_mount=$([ \"$before\" = \"$after\" ] && echo yes || echo no)\"",
        s = store.display(),
        canary = canary.display()
    );
    let out = run(ctx
        .command(&unshare)
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("STEADY", steady_bin()));
    if !out.status.success() && stderr(&out).contains("unshare failed") {
        skip(&format!(
            "cannot make a mount namespace here: {}",
            stderr(&out)
        ));
        return;
    }
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        // pnpm's entries went; the planted link is not one of them (issue 14, case 2).
        stdout(&out).contains("left=1 same_mount=yes"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("cleared the pnpm cache"),
        "{}",
        stderr(&out)
    );
    assert!(canary.join("keep").exists(), "the canary was touched");
}

// ---------------------------------------------------------------- detection through wrappers

#[test]
fn doctor_sees_through_wrappers_and_emulators() {
    let ctx = Ctx::new();
    let c = ctx.path("viaenv");
    let out = run(ctx
        .steady()
        .args(["doctor", "--", "env"])
        .arg(format!("UV_CACHE_DIR={}", c.display()))
        .args(["nice", "-n", "5", "taskset", "-c", "0", "uv", "sync"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("uv: writes"), "{text}");
    assert!(
        text.contains(&format!("cache        {} ($UV_CACHE_DIR)", c.display())),
        "{text}"
    );
    let out = run(ctx.steady().args([
        "doctor",
        "--",
        "qemu-aarch64-static",
        "-L",
        "/usr/aarch64-linux-gnu",
        "uv",
        "pip",
        "install",
        "x",
    ]));
    let text = stdout(&out);
    assert!(text.contains("uv: writes"), "{text}");
    assert!(
        text.contains("emulation: the command is run by `qemu-aarch64-static`"),
        "{text}"
    );
    assert!(
        text.contains("UV_CONCURRENT_INSTALLS=1"),
        "the emulation mitigation does not apply: {text}"
    );
    let out = run(ctx
        .steady()
        .args(["doctor", "--", "apt-get", "install", "curl"]));
    assert!(
        stdout(&out).contains("apt's own lock, waited on with `-o DPkg::Lock::Timeout={secs}`"),
        "{}",
        stdout(&out)
    );
    let out = run(ctx
        .steady()
        .args(["doctor", "--", "conda", "install", "numpy"]));
    assert!(
        stdout(&out).contains("from documentation, not verified here"),
        "{}",
        stdout(&out)
    );
}
