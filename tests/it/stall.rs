//! Stall detection that tells a hang from quiet work (issue 15, items 2-4): a tree that prints
//! nothing and uses no CPU but still moves bytes (a silent download, a slow pipe) is working;
//! one that moves nothing at all (a deadlock, a read on a connection that went quiet) is
//! stopped, and the message says what was still. An installer that waits on its own lock,
//! held by a process outside the attempt, waits (bounded by `--lock-timeout`), and is not a
//! hang.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::*;

/// `tests/fixtures/slow_serve.py`: every GET answered with `body` (a number of bytes, or a
/// file) at `rate` bytes a second (0: accepted, then nothing), until dropped.
struct SlowServer {
    child: Child,
    url: String,
}

impl SlowServer {
    fn start(python: &Path, body: &str, rate: usize) -> SlowServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slow_serve.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(body)
            .arg(rate.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 slow_serve.py");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().expect("the server's port");
        SlowServer {
            child,
            url: format!("http://127.0.0.1:{port}/wheel.whl"),
        }
    }
}

impl Drop for SlowServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A python script in the test's directory.
fn script(ctx: &Ctx, name: &str, body: &str) -> PathBuf {
    let p = ctx.path(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// Reads the whole body of a URL into memory, printing nothing until it is done: like uv
/// downloading when its output is not a terminal. Only the socket shows the work (`recv` is
/// not counted in `/proc/PID/io`), and python uses no CPU to speak of while it waits.
const SILENT_READER: &str = "import sys, urllib.request\n\
     body = urllib.request.urlopen(sys.argv[1], timeout=600).read()\n\
     print(len(body))\n";

#[test]
fn a_silent_download_at_1kb_s_is_not_a_stall() {
    let Some(python) = require("python3") else {
        return;
    };
    let ctx = Ctx::new();
    // 6 KB at 1 KB/s: twice the stall window, with nothing printed.
    let server = SlowServer::start(&python, "6000", 1000);
    let reader = script(&ctx, "reader.py", SILENT_READER);
    let out = run(ctx
        .steady()
        .args(["--stall", "3s", "--retries", "0", "--"])
        .arg(&python)
        .arg(&reader)
        .arg(&server.url));
    assert_eq!(
        code(&out),
        0,
        "a silent download was taken for a hang: {}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "6000\n");
}

#[test]
fn a_silent_tree_writing_slowly_to_a_file_is_not_a_stall() {
    let Some(python) = require("python3") else {
        return;
    };
    let ctx = Ctx::new();
    // Like an installer unpacking a download as it arrives: a few bytes written every half
    // second, nothing printed, no CPU to speak of.
    let writer = script(
        &ctx,
        "writer.py",
        "import sys, time\n\
         with open(sys.argv[1], 'wb') as f:\n\
         \x20   for _ in range(12):\n\
         \x20       f.write(b'x' * 100)\n\
         \x20       f.flush()\n\
         \x20       time.sleep(0.5)\n\
         print('written')\n",
    );
    let out = run(ctx
        .steady()
        .args(["--stall", "2s", "--retries", "0", "--"])
        .arg(&python)
        .arg(&writer)
        .arg(ctx.path("unpacked")));
    assert_eq!(
        code(&out),
        0,
        "a tree writing slowly was taken for a hang: {}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "written\n");
}

/// Writes a wheel of `pkg` 1.0 padded with `pad` random bytes (stored, so they stay that big),
/// for a download that takes a while; returns its path.
fn padded_wheel(ctx: &Ctx, python: &Path, pkg: &str, pad: usize) -> PathBuf {
    let maker = script(
        ctx,
        "padded_wheel.py",
        "import base64, hashlib, os, sys, zipfile\n\
         out, name, pad = sys.argv[1], sys.argv[2], int(sys.argv[3])\n\
         dist = name + '-1.0.dist-info'\n\
         files = {name + '/__init__.py': b'VERSION = \"1.0\"\\n',\n\
         \x20        name + '/blob.bin': os.urandom(pad),\n\
         \x20        dist + '/METADATA': ('Metadata-Version: 2.1\\nName: %s\\nVersion: 1.0\\n' % name).encode(),\n\
         \x20        dist + '/WHEEL': b'Wheel-Version: 1.0\\nGenerator: steady-tests\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n'}\n\
         def line(p, d):\n\
         \x20   h = base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()\n\
         \x20   return '%s,sha256=%s,%d' % (p, h, len(d))\n\
         record = '\\n'.join([line(p, d) for p, d in files.items()] + [dist + '/RECORD,,']) + '\\n'\n\
         path = os.path.join(out, name + '-1.0-py3-none-any.whl')\n\
         with zipfile.ZipFile(path, 'w') as z:\n\
         \x20   for p, d in files.items():\n\
         \x20       z.writestr(p, d)\n\
         \x20   z.writestr(dist + '/RECORD', record)\n\
         print(path)\n",
    );
    let out = run(Command::new(python)
        .arg(maker)
        .arg(ctx.root())
        .arg(pkg)
        .arg(pad.to_string()));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    PathBuf::from(stdout(&out).trim())
}

#[test]
fn uv_downloading_a_wheel_slowly_and_silently_is_not_a_stall() {
    let (Some(python), Some(uv)) = (require("python3"), require("uv")) else {
        return;
    };
    let ctx = Ctx::new();
    // 5 KB at 1 KB/s. uv prints nothing while it downloads when its output is not a terminal,
    // and it downloads this wheel twice (for its metadata, then to install it): two silent
    // spans longer than the window.
    let wheel = padded_wheel(&ctx, &python, "slowpkg", 4000);
    let server = SlowServer::start(&python, &wheel.display().to_string(), 1000);
    let url = server
        .url
        .replace("wheel.whl", "slowpkg-1.0-py3-none-any.whl");
    let env = |c: &mut Command| {
        c.env("UV_CACHE_DIR", ctx.cache())
            .env("UV_NO_CONFIG", "1")
            .env("UV_PYTHON_DOWNLOADS", "never");
    };
    let mut venv = Command::new(&uv);
    env(&mut venv);
    let made = run(venv
        .args(["venv", "-q", "--python", "python3"])
        .arg(ctx.path("venv")));
    assert_eq!(code(&made), 0, "uv venv: {}", stderr(&made));
    let mut cmd = ctx.steady();
    env(&mut cmd);
    let out = run(cmd
        .args(["--stall", "3s", "--retries", "0", "--"])
        .arg(&uv)
        .args(["pip", "install", "--python"])
        .arg(ctx.path("venv/bin/python"))
        .arg(format!("slowpkg @ {url}")));
    assert_eq!(
        code(&out),
        0,
        "uv's silent download was taken for a hang: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("+ slowpkg==1.0"), "{}", stderr(&out));
}

/// A stall's error line, checked to say what was still.
fn assert_says_what_was_still(err: &str) {
    let line = err
        .lines()
        .find(|l| l.contains("--stall"))
        .unwrap_or_else(|| panic!("no stall line: {err}"));
    for still in ["printed nothing", "CPU", "read, wrote or received no bytes"] {
        assert!(line.contains(still), "`{still}` not in: {line}");
    }
}

/// A stall window of 2 s, a second to die, no retry; the command follows.
const STOPPED_AFTER_2S: [&str; 7] = [
    "--stall",
    "2s",
    "--kill-after",
    "1s",
    "--retries",
    "0",
    "--",
];

#[test]
fn a_deadlock_is_stopped_and_the_message_says_what_was_still() {
    let Some(python) = require("python3") else {
        return;
    };
    let ctx = Ctx::new();
    // A futex wait forever, as the qemu-user bytecode hang: no output, no CPU, no I/O.
    let stuck = script(
        &ctx,
        "stuck.py",
        "import threading\nl = threading.Lock()\nl.acquire()\nl.acquire()\n",
    );
    let out = run(ctx.steady().args(STOPPED_AFTER_2S).arg(&python).arg(&stuck));
    assert_eq!(code(&out), 124, "{}", stderr(&out));
    assert_says_what_was_still(&stderr(&out));
}

#[test]
fn a_read_on_a_connection_that_went_quiet_is_a_stall() {
    let Some(python) = require("python3") else {
        return;
    };
    let ctx = Ctx::new();
    // The server accepted and sends nothing: an open socket is no progress by itself.
    let server = SlowServer::start(&python, "0", 0);
    let reader = script(&ctx, "reader.py", SILENT_READER);
    let out = run(ctx
        .steady()
        .args(STOPPED_AFTER_2S)
        .arg(&python)
        .arg(&reader)
        .arg(&server.url));
    assert_eq!(code(&out), 124, "{}", stderr(&out));
    assert_says_what_was_still(&stderr(&out));
}

/// The default window, as `steady doctor` states it with stdin not a terminal.
fn default_stall(ctx: &Ctx) -> String {
    let out = run(ctx
        .steady()
        .args(["doctor", "--", "uv", "pip", "install", "x"]));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.starts_with("watchdog"))
        .unwrap_or_else(|| panic!("no watchdog line: {text}{}", stderr(&out)))
        .to_owned();
    let at = line.find("stall ").expect("stall in the watchdog line") + "stall ".len();
    line[at..].split(',').next().unwrap().to_owned()
}

#[test]
fn the_default_stall_recovers_a_deadlock_within_a_minute() {
    let ctx = Ctx::new();
    // Longer than the installers' own network timeouts (uv 30s, pip 15s), so that their own
    // message says what went wrong; short enough that window, sampling and the TERM grace
    // stay within a minute. Measured (not asserted): bench/run.sh.
    assert_eq!(default_stall(&ctx), "45s");
}

/// A stand-in for uv that says, as uv does, that it waits for a lock of its own, then waits
/// for an flock on `$UV_CACHE_DIR/.lock` (no CPU, no I/O, no output) and installs once it
/// has it. With `inside`, it first starts a child of its own that holds that lock forever.
fn waiting_uv(ctx: &Ctx, python: &Path, inside: bool) {
    let py = python.display();
    let lock = "import fcntl, sys, time\n\
                f = open(sys.argv[1], 'a')\n\
                fcntl.flock(f, fcntl.LOCK_EX)\n\
                if len(sys.argv) > 2: time.sleep(3600)\n";
    std::fs::write(ctx.path("flock.py"), lock).unwrap();
    let flock = ctx.path("flock.py");
    let f = flock.display();
    let holder = if inside {
        format!("'{py}' '{f}' \"$UV_CACHE_DIR/.lock\" hold &\nsleep 1\n")
    } else {
        String::new()
    };
    ctx.fixture(
        "uv",
        &format!(
            "mkdir -p \"$UV_CACHE_DIR\"\n{holder}\
             echo \"warning: Waiting to acquire lock for $UV_CACHE_DIR (lockfile: $UV_CACHE_DIR/.lock)\" >&2\n\
             '{py}' '{f}' \"$UV_CACHE_DIR/.lock\"\n\
             echo installed\n"
        ),
    );
}

/// A new test directory with [`waiting_uv`] as its `uv`, and python3; or a skip.
struct WaitingUv {
    ctx: Ctx,
    python: PathBuf,
}

impl WaitingUv {
    fn new(inside: bool) -> Option<WaitingUv> {
        let python = require("python3")?;
        let ctx = Ctx::new();
        waiting_uv(&ctx, &python, inside);
        Some(WaitingUv { ctx, python })
    }

    /// `steady --stall 2s <flags> -- uv pip install x` on the test's cache.
    fn install(&self, flags: &[&str]) -> std::process::Output {
        run(self
            .ctx
            .steady()
            .env("UV_CACHE_DIR", self.ctx.cache())
            .args(["--stall", "2s"])
            .args(flags)
            .args(["--", "uv", "pip", "install", "x"]))
    }
}

/// A process outside steady that holds `$cache/.lock` for `secs`, started once it holds it.
fn hold_outside(ctx: &Ctx, python: &Path, secs: u32) -> Child {
    let cache = ctx.cache();
    std::fs::create_dir_all(&cache).unwrap();
    let holder = script(
        ctx,
        "holder.py",
        "import fcntl, sys, time\n\
         f = open(sys.argv[1], 'a')\n\
         fcntl.flock(f, fcntl.LOCK_EX)\n\
         print('held', flush=True)\n\
         time.sleep(float(sys.argv[2]))\n",
    );
    let mut child = Command::new(python)
        .arg(holder)
        .arg(cache.join(".lock"))
        .arg(secs.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 holder");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "held");
    child
}

#[test]
fn an_installer_waiting_on_its_own_lock_held_outside_is_not_a_stall() {
    let Some(uv) = WaitingUv::new(false) else {
        return;
    };
    // Three stall windows and more; then the holder ends and the install goes on.
    let mut holder = hold_outside(&uv.ctx, &uv.python, 7);
    let out = uv.install(&["--retries", "0"]);
    let _ = holder.kill();
    let _ = holder.wait();
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert_eq!(stdout(&out), "installed\n");
    let said = err
        .lines()
        .find(|l| l.contains("waits for its own lock"))
        .unwrap_or_else(|| panic!("no lock wait line: {err}"));
    assert!(said.contains(&format!("pid {}", holder.id())), "{said}");
    assert!(said.contains("not a hang"), "{said}");
}

#[test]
fn an_installer_lock_wait_is_bounded_by_lock_timeout() {
    let Some(uv) = WaitingUv::new(false) else {
        return;
    };
    let mut holder = hold_outside(&uv.ctx, &uv.python, 600);
    let out = uv.install(&["--lock-timeout", "4s", "--kill-after", "1s"]);
    let _ = holder.kill();
    let _ = holder.wait();
    let err = stderr(&out);
    // As when steady's own wait for the cache lock runs out: 75, no retry, the holder named.
    assert_eq!(code(&out), 75, "{err}");
    assert!(!err.contains("stalled"), "{err}");
    assert!(!err.contains("attempt 2"), "{err}");
    let said = err
        .lines()
        .find(|l| l.contains("--lock-timeout 4s"))
        .unwrap_or_else(|| panic!("no lock timeout line: {err}"));
    assert!(said.contains(&format!("pid {}", holder.id())), "{said}");
    assert!(err.contains("hint: "), "{err}");
}

#[test]
fn a_lock_held_inside_the_attempt_is_a_stall() {
    // The tree waits on itself: a deadlock, however it is worded.
    let Some(uv) = WaitingUv::new(true) else {
        return;
    };
    let out = uv.install(&["--kill-after", "1s", "--retries", "0"]);
    assert_eq!(code(&out), 124, "{}", stderr(&out));
    assert_says_what_was_still(&stderr(&out));
}

/// A stand-in for uv whose first two installs meet a foreign cleaner: each asks the cleaner
/// (through files in `sync`) to clear the cache, waits until it has, then fails as uv does when
/// an entry vanished under it. The third install succeeds from a whole entry (as uv's are, so
/// the check after a success finds nothing). Its own clean commands are logged in
/// `sync/cleans` and do nothing.
fn raced_uv(ctx: &Ctx, sync: &Path) {
    let s = sync.display();
    ctx.fixture(
        "uv",
        &format!(
            "case \"$*\" in *'cache clean'*) echo \"$*\" >> '{s}/cleans'; exit 0;; esac\n\
             d=\"$UV_CACHE_DIR/archive-v0/e1/alpha-1.0.dist-info\"; mkdir -p \"$d\"\n\
             echo 'Name: alpha' > \"$d/METADATA\"\n\
             echo 'alpha-1.0.dist-info/METADATA,,' > \"$d/RECORD\"\n\
             touch \"$UV_CACHE_DIR/CACHEDIR.TAG\"\n\
             n=$(cat '{s}/count' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{s}/count'\n\
             if [ $n -ge 3 ]; then echo installed; exit 0; fi\n\
             touch '{s}/go.'$n\n\
             while [ ! -e '{s}/done.'$n ]; do sleep 0.05; done\n\
             echo 'error: Failed to install: alpha-1.0-py3-none-any.whl (alpha==1.0)' >&2\n\
             echo \"  cause: failed to open file \\`$UV_CACHE_DIR/archive-v0/e1/alpha-1.0.dist-info/METADATA\\`: No such file or directory (os error 2)\" >&2\n\
             exit 2\n"
        ),
    );
}

#[test]
fn a_foreign_cleaner_is_named_and_never_escalates_to_a_full_clean() {
    let Some(python) = require("python3") else {
        return;
    };
    let ctx = Ctx::new();
    let sync = ctx.path("sync");
    std::fs::create_dir_all(&sync).unwrap();
    raced_uv(&ctx, &sync);
    let cache = ctx.cache();
    std::fs::create_dir_all(cache.join("archive-v0/e0")).unwrap();
    std::fs::write(
        cache.join("CACHEDIR.TAG"),
        "Signature: 8a477f597d28d172789f06886806bc55",
    )
    .unwrap();
    // Outside steady and its lock, like `uv cache clean` in another job: clears the cache
    // whenever an install asks, twice. Its working directory is the cache.
    let cleaner = script(
        &ctx,
        "cleaner.py",
        "import os, shutil, sys, time\n\
         cache, sync = sys.argv[1], sys.argv[2]\n\
         os.chdir(cache)\n\
         for n in (1, 2):\n\
         \x20   go = os.path.join(sync, 'go.%d' % n)\n\
         \x20   while not os.path.exists(go):\n\
         \x20       time.sleep(0.05)\n\
         \x20   for e in os.listdir('.'):\n\
         \x20       shutil.rmtree(e) if os.path.isdir(e) else os.remove(e)\n\
         \x20   open(os.path.join(sync, 'done.%d' % n), 'w').close()\n\
         time.sleep(600)\n",
    );
    let mut foreign = Command::new(&python)
        .arg(&cleaner)
        .arg(&cache)
        .arg(&sync)
        .spawn()
        .expect("python3 cleaner");
    let report = ctx.path("report.json");
    let out = run(ctx.steady().env("UV_CACHE_DIR", &cache).args([
        "--retries",
        "4",
        "--backoff",
        "100ms",
        "--deadline",
        "120s",
        "--report",
        report.to_str().unwrap(),
        "--",
        "uv",
        "pip",
        "install",
        "alpha",
    ]));
    let _ = foreign.kill();
    let _ = foreign.wait();
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert_eq!(stdout(&out), "installed\n");
    let said: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("outside steady's lock"))
        .collect();
    assert_eq!(said.len(), 2, "{err}");
    for line in &said {
        assert!(line.contains(&format!("pid {}", foreign.id())), "{line}");
    }
    // Neither the named entry nor the whole cache was cleared for it.
    let cleans = std::fs::read_to_string(sync.join("cleans")).unwrap_or_default();
    assert_eq!(cleans, "", "steady cleaned for a foreign writer: {err}");
    let record = std::fs::read_to_string(&report).unwrap();
    assert!(!record.contains("cleared"), "{record}");
}

#[test]
fn uv_cache_clean_waiting_for_another_uv_is_not_a_stall() {
    let (Some(python), Some(uv)) = (require("python3"), require("uv")) else {
        return;
    };
    let ctx = Ctx::new();
    // Another uv uses the cache (here only its lock on `<cache>/.lock`, held by a process
    // outside steady): `uv cache clean` says it waits, then waits silently in flock.
    std::fs::create_dir_all(ctx.cache()).unwrap();
    std::fs::write(
        ctx.cache().join("CACHEDIR.TAG"),
        "Signature: 8a477f597d28d172789f06886806bc55",
    )
    .unwrap();
    let mut holder = hold_outside(&ctx, &python, 6);
    let out = run(ctx
        .steady()
        .env("UV_CACHE_DIR", ctx.cache())
        .env("UV_NO_CONFIG", "1")
        .args(["--stall", "2s", "--retries", "0", "--"])
        .arg(&uv)
        .args(["cache", "clean"]));
    let _ = holder.kill();
    let _ = holder.wait();
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert!(
        err.contains(&format!("held by pid {}", holder.id())),
        "the holder is not named: {err}"
    );
}
