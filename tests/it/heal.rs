//! Real cache damage, healed by real installers under steady (spec section 3, step 6).
//!
//! Each test fills a real installer's cache from packages built here (wheels and sdists from
//! `tests/fixtures/make_*.py`; npm packages served over 127.0.0.1 by `serve.py` from a registry
//! `make_npm_registry.py` writes), damages it the way machines do (a truncated or zeroed cached
//! archive, a store file whose content no longer matches its hash, an index entry pointing at a
//! missing file, a half-deleted package directory, an entry whose recorded integrity is not the
//! lockfile's), then runs a wrapped install and asserts what steady did (cleaned one entry, fell
//! back to one full clean, or stayed out of the way because the installer healed itself), that
//! the install really completed (files on disk), and which healthy entries stayed warm.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

// ---------------------------------------------------------------- shared helpers

/// Every file below `dir`, relative to it.
fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// Identity of a file or directory: a cleaned and re-created entry gets a new inode.
fn ident(p: &Path) -> (u64, i64) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.ino(), m.mtime_nsec() + m.mtime() * 1_000_000_000)
}

/// The number of attempts and each one's action, from the last run in a `--report` (one JSON
/// line per run).
fn attempts(report: &Path) -> Vec<(String, String)> {
    let py = "import json,sys; r=json.loads(open(sys.argv[1]).read().splitlines()[-1])\n\
              for a in r['attempts']: print(f\"{a['class']}\\t{a['action']}\")";
    let out = run(Command::new("python3").args(["-c", py]).arg(report));
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| {
            let (c, a) = l.split_once('\t').unwrap();
            (c.to_owned(), a.to_owned())
        })
        .collect()
}

use crate::installers::Server;

// ---------------------------------------------------------------- uv

/// The silent success (a colleague's benchmark): a uv archive entry with a file of its RECORD
/// deleted but `METADATA` kept makes `uv pip install` exit 0 with the package incomplete, and
/// no failure ever asks steady to check the cache. steady checks the entries of what the run
/// installed after a success, evicts the damaged one and reinstalls it; the rest stay warm.
#[test]
fn uv_silent_success_from_a_half_deleted_entry_is_caught_and_reinstalled() {
    let Some(bed) = UvBed::new(&["alpha", "beta", "gamma"]) else {
        return;
    };
    let gamma = bed.entry("gamma");
    std::fs::remove_file(gamma.join("gamma/data.py")).unwrap();
    let (alpha, beta) = (bed.entry("alpha"), bed.entry("beta"));
    let (alpha_id, beta_id) = (ident(&alpha), ident(&beta));

    // The danger itself, with bare uv: exit 0, a file missing.
    let py = bed.venv("bare");
    let out = run(bed.uv_cmd().args(bed.install_args(&py, &["gamma"])));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        missing_in_venv(&bed.ctx.path("bare"), &["gamma"]),
        ["gamma: gamma/data.py"],
        "uv should have installed gamma with a file missing"
    );

    let py = bed.venv("v2");
    let report = bed.ctx.path("report.json");
    let out = bed.steady_install(
        &py,
        &["alpha", "beta", "gamma"],
        &["-v", "--report", report.to_str().unwrap()],
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    // The entries were found through uv's own pointers, not by reading the whole cache.
    assert!(
        err.contains("checked the cache entries of the 3 packages installed after"),
        "{err}"
    );
    assert_eq!(
        missing_in_venv(&bed.ctx.path("v2"), &["alpha", "beta", "gamma"]),
        Vec::<String>::new(),
        "steady let an incomplete install pass: {err}"
    );
    assert!(
        err.contains("gamma") && err.contains("damaged"),
        "steady did not say what it found: {err}"
    );
    let runs = attempts(&report);
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0].0, "cache corruption", "{runs:?}");
    assert!(runs[0].1.contains("cleared gamma"), "{runs:?}");
    assert!(
        bed.entry("gamma").join("gamma/data.py").exists(),
        "gamma's entry was not replaced"
    );
    assert_eq!(ident(&alpha), alpha_id, "alpha's healthy entry was touched");
    assert_eq!(ident(&beta), beta_id, "beta's healthy entry was touched");
}

/// Nothing damaged, nothing installed (a no-op install), or a damaged entry of a package this
/// run did not install: one attempt, no clean, the damaged entry left for the run that uses it
/// (the check after a success looks only at what the run installed).
#[test]
fn uv_clean_successes_stay_one_attempt() {
    let Some(bed) = UvBed::new(&["alpha", "beta", "gamma"]) else {
        return;
    };
    let py = bed.venv("v2");
    let report = bed.ctx.path("report.json");
    let r = report.to_str().unwrap();
    let out = bed.steady_install(&py, &["alpha", "beta"], &["--report", r]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(attempts(&report).len(), 1, "{}", stderr(&out));
    // Damage gamma, which the next runs do not install.
    std::fs::remove_file(bed.entry("gamma").join("gamma/data.py")).unwrap();
    let out = bed.steady_install(&py, &["alpha", "beta"], &["--report", r]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(attempts(&report).len(), 1, "a no-op install was retried");
    assert!(!stderr(&out).contains("cleared"), "{}", stderr(&out));
    let out = bed.steady_install(&bed.venv("v3"), &["alpha"], &["--report", r]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(attempts(&report).len(), 1, "{}", stderr(&out));
    assert!(!stderr(&out).contains("cleared"), "{}", stderr(&out));
    assert!(!bed.entry("gamma").join("gamma/data.py").exists());
}

/// With `-q` uv names nothing it installed: steady checks every entry of the cache instead.
#[test]
fn uv_quiet_silent_success_is_caught_too() {
    let Some(bed) = UvBed::new(&["alpha", "beta"]) else {
        return;
    };
    std::fs::remove_file(bed.entry("beta").join("beta/data.py")).unwrap();
    let alpha = ident(&bed.entry("alpha"));
    let py = bed.venv("v2");
    let out = run(bed.steady_cmd(&py, &["alpha", "beta"], &[]).arg("-q"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        missing_in_venv(&bed.ctx.path("v2"), &["alpha", "beta"]),
        Vec::<String>::new(),
        "{}",
        stderr(&out)
    );
    assert_eq!(ident(&bed.entry("alpha")), alpha);
}

// ---------------------------------------------------------------- pip

/// pip caches the wheels it builds from sdists under `wheels/`. One of them cut in half (a
/// write interrupted part way) makes every install of that package fail "is invalid" until
/// the cache is cleaned. steady clears that package alone (`pip cache remove`), pip builds it
/// again, and the other built wheel stays warm.
#[test]
fn pip_truncated_built_wheel_is_removed_alone() {
    let Some(py) = python_with("pip") else { return };
    let ctx = Ctx::new();
    let dists = ctx.path("dists");
    std::fs::create_dir(&dists).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make_sdist.py");
    for name in ["delta", "epsilon"] {
        let out = run(Command::new(&py)
            .arg(&script)
            .arg(&dists)
            .args([name, "1.0"]));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let cache = ctx.cache();
    let args = |target: &str| -> Vec<std::ffi::OsString> {
        vec![
            "-m".into(),
            "pip".into(),
            "install".into(),
            "--no-index".into(),
            "--find-links".into(),
            dists.clone().into(),
            "--target".into(),
            ctx.path(target).into(),
            "delta".into(),
            "epsilon".into(),
        ]
    };
    let out = run(Command::new(&py)
        .env("PIP_CACHE_DIR", &cache)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .args(args("t1")));
    assert!(out.status.success(), "{}", stderr(&out));
    let built: BTreeMap<String, PathBuf> = files_below(&cache.join("wheels"))
        .into_iter()
        .filter(|f| f.ends_with(".whl"))
        .map(|f| {
            let p = cache.join("wheels").join(&f);
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name.split('-').next().unwrap().to_owned(), p)
        })
        .collect();
    assert_eq!(
        built.keys().collect::<Vec<_>>(),
        ["delta", "epsilon"],
        "pip did not cache the wheels it built"
    );
    let (delta, epsilon) = (&built["delta"], &built["epsilon"]);
    let len = std::fs::metadata(delta).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(delta).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let kept = ident(epsilon);

    let report = ctx.path("report.json");
    let out = run(ctx
        .steady()
        .env("PIP_CACHE_DIR", &cache)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .args(["--backoff", "10ms", "--report"])
        .arg(&report)
        .arg("--")
        .arg(&py)
        .args(args("t2")));
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    let runs = attempts(&report);
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0].0, "cache corruption", "{runs:?}");
    assert!(
        runs[0].1.contains("cleared delta from the pip cache"),
        "{runs:?}"
    );
    for f in ["delta/__init__.py", "epsilon/__init__.py"] {
        assert!(ctx.path("t2").join(f).exists(), "{f} was not installed");
    }
    assert_eq!(ident(epsilon), kept, "the healthy built wheel was touched");
    let rebuilt = files_below(&cache.join("wheels"))
        .into_iter()
        .filter(|f| f.ends_with(".whl") && f.contains("delta-"))
        .count();
    assert_eq!(rebuilt, 1, "delta's wheel was not built and cached again");
}

// ---------------------------------------------------------------- npm, pnpm, yarn, bun

const PKGS: [&str; 3] = ["steady-a", "steady-b", "steady-c"];

/// A project depending on three packages served by a local registry over 127.0.0.1, for one
/// npm-family tool.
struct Js {
    ctx: Ctx,
    tool: PathBuf,
    _server: Server,
    url: String,
    /// Hex sha512 of each package's tarball.
    tarball_sha: BTreeMap<String, String>,
}

impl Js {
    fn new(tool: &str) -> Option<Js> {
        let tool = require(tool)?;
        require("python3")?;
        let ctx = Ctx::new();
        let root = ctx.path("registry");
        std::fs::create_dir(&root).unwrap();
        let server = Server::start(&root);
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make_npm_registry.py");
        let out = run(Command::new("python3")
            .arg(script)
            .arg(&root)
            .arg(&server.url)
            .args(PKGS));
        assert!(out.status.success(), "{}", stderr(&out));
        let tarball_sha = stdout(&out)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, h)| (n.to_owned(), h.to_owned()))
            .collect();
        let deps: Vec<String> = PKGS.iter().map(|p| format!("\"{p}\": \"1.0.0\"")).collect();
        std::fs::write(
            ctx.path("work/package.json"),
            format!(
                "{{\"name\": \"t\", \"version\": \"1.0.0\", \"private\": true, \"dependencies\": {{{}}}}}",
                deps.join(", ")
            ),
        )
        .unwrap();
        let url = server.url.clone();
        Some(Js {
            ctx,
            tool,
            _server: server,
            url,
            tarball_sha,
        })
    }

    /// The tool, as the test's user runs it (same HOME, XDG dirs and work directory as steady).
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.ctx.command(&self.tool);
        c.args(args);
        c
    }

    fn prime(&self, args: &[&str]) {
        let out = run(&mut self.cmd(args));
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        self.assert_installed();
        std::fs::remove_dir_all(self.ctx.path("work/node_modules")).unwrap();
    }

    /// Runs the install through steady; returns its stderr and the attempts of its report.
    fn steady(&self, args: &[&str]) -> (String, Vec<(String, String)>) {
        let report = self.ctx.path("report.json");
        let _ = std::fs::remove_file(&report);
        let out = run(self
            .ctx
            .steady()
            .args(["--backoff", "10ms", "-v", "--report"])
            .arg(&report)
            .arg("--")
            .arg(&self.tool)
            .args(args));
        let err = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(code(&out), 0, "{err}");
        (err, attempts(&report))
    }

    /// Every file of every package is in node_modules, with the content it was published with.
    fn assert_installed(&self) {
        let nm = self.ctx.path("work/node_modules");
        for p in PKGS {
            for f in ["package.json", "index.js", "lib/data.js"] {
                assert!(nm.join(p).join(f).exists(), "{p}/{f} was not installed");
            }
            let data = std::fs::read_to_string(nm.join(p).join("lib/data.js")).unwrap();
            assert_eq!(
                data,
                format!("module.exports = {{ name: '{p}', value: 42 }};\n"),
                "{p}/lib/data.js was installed with the wrong content"
            );
        }
    }
}

/// The hex sha512 of a file's content.
fn sha512(path: &Path) -> String {
    let py = "import hashlib,sys; print(hashlib.sha512(open(sys.argv[1],'rb').read()).hexdigest())";
    let out = run(Command::new("python3").args(["-c", py]).arg(path));
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}

/// One attempt, nothing cleaned or checked: the installer healed the damage by itself.
fn stayed_out(err: &str, runs: &[(String, String)]) {
    assert_eq!(runs.len(), 1, "{runs:?}\n{err}");
    assert_eq!(runs[0].0, "None", "{runs:?}");
    assert!(
        !err.contains("cleared") && !err.contains("cache verify"),
        "steady cleaned although the installer healed itself: {err}"
    );
}

/// npm: a zeroed tarball in `_cacache/content-v2` (same length, all zeros) and an index entry
/// whose content file is gone. npm treats both as cache misses ("seems to be corrupted.
/// Refreshing cache"), fetches again and exits 0: steady stays out of the way (one attempt, no
/// `npm cache verify`, no clean), the content is right again, the healthy entry is untouched.
#[test]
fn npm_heals_a_zeroed_tarball_and_a_dangling_index_entry_by_itself() {
    let Some(js) = Js::new("npm") else { return };
    let registry = format!("{}/", js.url);
    js.prime(&[
        "install",
        "--registry",
        &registry,
        "--no-audit",
        "--no-fund",
    ]);
    let blob = |p: &str| {
        let h = &js.tarball_sha[p];
        js.ctx
            .home()
            .join(".npm/_cacache/content-v2/sha512")
            .join(&h[..2])
            .join(&h[2..4])
            .join(&h[4..])
    };
    let (a, b, c) = (blob("steady-a"), blob("steady-b"), blob("steady-c"));
    let len = std::fs::metadata(&a).unwrap().len() as usize;
    std::fs::write(&a, vec![0u8; len]).unwrap();
    std::fs::remove_file(&b).unwrap();
    let kept = ident(&c);

    let (err, runs) = js.steady(&["ci", "--registry", &registry, "--no-audit", "--no-fund"]);
    stayed_out(&err, &runs);
    js.assert_installed();
    assert_eq!(
        sha512(&a),
        js.tarball_sha["steady-a"],
        "a's content was not replaced"
    );
    assert_eq!(
        sha512(&b),
        js.tarball_sha["steady-b"],
        "b was not cached again"
    );
    assert_eq!(ident(&c), kept, "the healthy entry was touched");
}

/// The store file of one package's `lib/data.js` in a pnpm store, found by content.
fn pnpm_store_file(store: &Path, pkg: &str) -> PathBuf {
    let want = format!("module.exports = {{ name: '{pkg}', value: 42 }};\n");
    files_below(&store.join("files"))
        .into_iter()
        .map(|f| store.join("files").join(f))
        .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t == want))
        .unwrap_or_else(|| panic!("no store file for {pkg}'s data.js"))
}

/// pnpm: a content-addressed store file whose content no longer matches its hash (cut short,
/// after pnpm last checked it) and a store file that is gone while the index still lists it.
/// pnpm re-verifies files changed since its last check, fetches the package again and exits 0:
/// steady stays out of the way; the store file holds its hash's content again; the healthy
/// package's store file is untouched.
#[test]
fn pnpm_heals_a_store_file_with_the_wrong_content_and_a_missing_one_by_itself() {
    let Some(js) = Js::new("pnpm") else { return };
    let registry = format!("{}/", js.url);
    js.prime(&["install", "--registry", &registry]);
    let store = PathBuf::from(
        stdout(&run(&mut js.cmd(&["store", "path"])))
            .trim()
            .to_owned(),
    );
    let (a, b, c) = (
        pnpm_store_file(&store, "steady-a"),
        pnpm_store_file(&store, "steady-b"),
        pnpm_store_file(&store, "steady-c"),
    );
    std::fs::write(&a, "module.exports = {").unwrap();
    // pnpm re-reads a store file only when it changed after pnpm last checked it; within the
    // same instant it cannot tell, so the change is dated a minute later, as a real one is.
    std::fs::File::options()
        .write(true)
        .open(&a)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .unwrap();
    std::fs::remove_file(&b).unwrap();
    let kept = ident(&c);

    let (err, runs) = js.steady(&["install", "--frozen-lockfile", "--registry", &registry]);
    stayed_out(&err, &runs);
    js.assert_installed();
    let name = |p: &Path| {
        format!(
            "{}{}",
            p.parent().unwrap().file_name().unwrap().to_string_lossy(),
            p.file_name().unwrap().to_string_lossy()
        )
    };
    assert_eq!(sha512(&a), name(&a), "a's store file was not repaired");
    assert_eq!(sha512(&b), name(&b), "b's store file was not restored");
    assert_eq!(ident(&c), kept, "the healthy store file was touched");
}

/// yarn 1's cache entry directory of a package.
fn yarn_entry(cache: &Path, pkg: &str) -> PathBuf {
    std::fs::read_dir(cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("npm-{pkg}-1.0.0-"))
        })
        .unwrap_or_else(|| panic!("no yarn cache entry for {pkg}"))
        .join("node_modules")
        .join(pkg)
}

fn yarn_classic(js: &Js) -> Option<PathBuf> {
    let version = stdout(&run(&mut js.cmd(&["--version"])));
    if !version.starts_with("1.") {
        skip(&format!("`yarn` on PATH is {}, not yarn 1", version.trim()));
        return None;
    }
    js.prime(&["install", "--registry", &js.url, "--non-interactive"]);
    Some(PathBuf::from(
        stdout(&run(&mut js.cmd(&["cache", "dir"]))).trim(),
    ))
}

/// yarn 1: an entry whose recorded integrity is not the lockfile's (`Incorrect integrity when
/// fetching from the cache for "steady-b"`, as when a cache outlives a republished tarball).
/// steady clears that package alone (`yarn cache clean steady-b`), yarn fetches it again, and
/// the other entries stay warm.
#[test]
fn yarn_classic_entry_with_the_wrong_integrity_is_cleaned_alone() {
    let Some(js) = Js::new("yarn") else { return };
    let Some(cache) = yarn_classic(&js) else {
        return;
    };
    let meta = yarn_entry(&cache, "steady-b").join(".yarn-metadata.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    let (at, _) = text
        .match_indices("\"cacheIntegrity\"")
        .next()
        .expect("cacheIntegrity in .yarn-metadata.json");
    let start = at + text[at..].find(": \"").unwrap() + 3;
    let end = start + text[start..].find('"').unwrap();
    let wrong = format!("sha512-{}==", "A".repeat(86));
    std::fs::write(&meta, format!("{}{wrong}{}", &text[..start], &text[end..])).unwrap();
    let (a, c) = (
        ident(&yarn_entry(&cache, "steady-a")),
        ident(&yarn_entry(&cache, "steady-c")),
    );

    let (err, runs) = js.steady(&["install", "--frozen-lockfile", "--non-interactive"]);
    assert_eq!(runs.len(), 2, "{runs:?}\n{err}");
    assert_eq!(runs[0].0, "cache corruption", "{runs:?}");
    assert!(
        runs[0].1.contains("cleared steady-b from the yarn cache"),
        "{runs:?}\n{err}"
    );
    js.assert_installed();
    assert!(
        !std::fs::read_to_string(yarn_entry(&cache, "steady-b").join(".yarn-metadata.json"))
            .unwrap()
            .contains(&wrong),
        "steady-b's entry was not replaced"
    );
    assert_eq!(ident(&yarn_entry(&cache, "steady-a")), a, "a was touched");
    assert_eq!(ident(&yarn_entry(&cache, "steady-c")), c, "c was touched");
}

/// yarn 1: an entry's `.yarn-metadata.json` cut short (a crash while writing it). yarn dies
/// with `SyntaxError: …/.yarn-metadata.json: Unexpected end of JSON input`, which names no
/// package steady can read: the failure is unknown, so steady falls back to the field practice,
/// one full clean (`yarn cache clean`) and a retry. The install completes; nothing stays warm.
#[test]
fn yarn_classic_truncated_metadata_falls_back_to_one_full_clean() {
    let Some(js) = Js::new("yarn") else { return };
    let Some(cache) = yarn_classic(&js) else {
        return;
    };
    let meta = yarn_entry(&cache, "steady-a").join(".yarn-metadata.json");
    let f = std::fs::OpenOptions::new().write(true).open(&meta).unwrap();
    f.set_len(30).unwrap();
    drop(f);

    let (err, runs) = js.steady(&["install", "--frozen-lockfile", "--non-interactive"]);
    assert_eq!(runs.len(), 2, "{runs:?}\n{err}");
    assert_eq!(runs[0].0, "unknown", "{runs:?}");
    assert!(
        runs[0].1.contains("cleared the yarn cache"),
        "{runs:?}\n{err}"
    );
    js.assert_installed();
    let text = std::fs::read_to_string(&meta).unwrap();
    assert!(text.ends_with('}') || text.ends_with("}\n"), "{text}");
}

/// yarn berry: a cached zip cut short. yarn 4 refuses it (`YN0018 … The remote archive doesn't
/// match the expected checksum`) and does not fetch again; it has no command that clears one
/// package, so steady falls back to one full clean (`yarn cache clean --all`) and the retry
/// fetches everything again. The install completes; nothing stays warm.
#[test]
fn yarn_berry_truncated_zip_falls_back_to_one_full_clean() {
    let Some(js) = Js::new("yarn-berry") else {
        return;
    };
    // Users run it as `yarn`: the project, not the name, says which yarn it is.
    std::os::unix::fs::symlink(&js.tool, js.ctx.bin().join("yarn")).unwrap();
    let js = Js {
        tool: js.ctx.bin().join("yarn"),
        ..js
    };
    std::fs::write(
        js.ctx.path("work/.yarnrc.yml"),
        format!(
            "npmRegistryServer: \"{}\"\nunsafeHttpWhitelist: [\"127.0.0.1\"]\nnodeLinker: node-modules\n\
             enableTelemetry: false\nnpmMinimalAgeGate: 0\n",
            js.url
        ),
    )
    .unwrap();
    js.prime(&["install"]);
    let cache = PathBuf::from(
        stdout(&run(&mut js.cmd(&["config", "get", "cacheFolder"])))
            .trim()
            .to_owned(),
    );
    let zip = |p: &str| {
        std::fs::read_dir(&cache)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|z| {
                z.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("{p}-npm-1.0.0-"))
            })
            .unwrap_or_else(|| panic!("no zip for {p} in {}", cache.display()))
    };
    let a = zip("steady-a");
    let len = std::fs::metadata(&a).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&a).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);

    let (err, runs) = js.steady(&["install"]);
    assert_eq!(runs.len(), 2, "{runs:?}\n{err}");
    assert_eq!(runs[0].0, "cache corruption", "{runs:?}");
    assert!(
        runs[0].1.contains("cleared the yarn-berry cache"),
        "{runs:?}\n{err}"
    );
    js.assert_installed();
    assert_eq!(
        std::fs::metadata(zip("steady-a")).unwrap().len(),
        len,
        "a's zip was not fetched again"
    );
}

/// bun: a half-deleted cache entry whose `package.json` is gone. bun sees the entry as
/// missing, fetches the package again and exits 0: steady stays out of the way; the entry is
/// whole again and the healthy entries are untouched.
#[test]
fn bun_heals_an_entry_without_its_manifest_by_itself() {
    let Some(js) = Js::new("bun") else { return };
    let registry = format!("{}/", js.url);
    js.prime(&["install", "--registry", &registry]);
    let cache = PathBuf::from(
        stdout(&run(&mut js.cmd(&["pm", "cache"])))
            .trim()
            .to_owned(),
    );
    let entry = |p: &str| {
        std::fs::read_dir(&cache)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|d| {
                d.is_dir()
                    && d.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with(&format!("{p}@1.0.0"))
            })
            .unwrap_or_else(|| panic!("no bun cache entry for {p}"))
    };
    std::fs::remove_file(entry("steady-b").join("package.json")).unwrap();
    let (a, c) = (
        ident(&entry("steady-a").join("lib/data.js")),
        ident(&entry("steady-c").join("lib/data.js")),
    );

    let (err, runs) = js.steady(&["install", "--frozen-lockfile", "--registry", &registry]);
    stayed_out(&err, &runs);
    js.assert_installed();
    assert!(
        entry("steady-b").join("package.json").exists(),
        "b's entry was not restored"
    );
    assert_eq!(ident(&entry("steady-a").join("lib/data.js")), a);
    assert_eq!(ident(&entry("steady-c").join("lib/data.js")), c);
}

/// The same silent success from a wheel uv built from an sdist (its archive entry is pointed
/// at from `sdists-v*`, not `wheels-v*`): caught through uv's pointers, evicted, rebuilt.
#[test]
fn uv_silent_success_from_a_built_wheel_is_caught_too() {
    let Some(bed) = UvBed::new(&[]) else { return };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make_sdist.py");
    for name in ["delta", "epsilon"] {
        let out = run(Command::new("python3")
            .arg(&script)
            .arg(&bed.wheels)
            .args([name, "1.0"]));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let py = bed.venv("v1");
    let out = run(bed
        .uv_cmd()
        .args(bed.install_args(&py, &["delta", "epsilon"])));
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_file(bed.entry("delta").join("delta/__init__.py")).unwrap();
    let epsilon = ident(&bed.entry("epsilon"));
    let py = bed.venv("v2");
    let out = bed.steady_install(&py, &["delta", "epsilon"], &["-v"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert!(
        err.contains("checked the cache entries of the 2 packages installed after"),
        "the built wheels' entries were not found through uv's pointers: {err}"
    );
    assert!(err.contains("cleared delta from the uv cache"), "{err}");
    assert_eq!(
        missing_in_venv(&bed.ctx.path("v2"), &["delta", "epsilon"]),
        Vec::<String>::new(),
        "{err}"
    );
    assert_eq!(ident(&bed.entry("epsilon")), epsilon, "epsilon was touched");
}
