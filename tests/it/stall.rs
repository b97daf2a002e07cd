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

/// `tests/fixtures/slow_serve.py`: every GET answered with `size` bytes at `rate` bytes a
/// second (0: accepted, then nothing), until dropped.
struct SlowServer {
    child: Child,
    url: String,
}

impl SlowServer {
    fn start(python: &Path, size: usize, rate: usize) -> SlowServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slow_serve.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(size.to_string())
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
    let server = SlowServer::start(&python, 6000, 1000);
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
    let out = run(ctx
        .steady()
        .args([
            "--stall",
            "2s",
            "--kill-after",
            "1s",
            "--retries",
            "0",
            "--",
        ])
        .arg(&python)
        .arg(&stuck));
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
    let server = SlowServer::start(&python, 0, 0);
    let reader = script(&ctx, "reader.py", SILENT_READER);
    let out = run(ctx
        .steady()
        .args([
            "--stall",
            "2s",
            "--kill-after",
            "1s",
            "--retries",
            "0",
            "--",
        ])
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
