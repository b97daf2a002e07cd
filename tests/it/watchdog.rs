//! The watchdog (spec section 5, requirements R13-R20): the whole process tree is killed on a
//! timeout, stall, deadline or stop signal, escapees included; signals reach the command; a
//! terminal stays a terminal; output stays byte-exact and memory bounded; steady keeps a single
//! thread; PID 1 and process limits are handled. Every fixture writes its pids into a file, and
//! liveness is checked by pid.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::*;

/// Generous: these bounds catch a hang, never a slow machine.
const LONG: Duration = Duration::from_secs(60);

fn assert_all_dead(pids: &[i32], what: &str) {
    let alive: Vec<i32> = pids.iter().copied().filter(|p| pid_alive(*p)).collect();
    for p in &alive {
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
    assert!(
        alive.is_empty(),
        "{what}: fixture processes still alive: {alive:?}"
    );
}

fn wait_for_lines(path: &Path, n: usize) {
    assert!(
        wait_for(LONG, || pids_in(path).len() >= n),
        "fixture did not start: {} has {:?}",
        path.display(),
        pids_in(path)
    );
}

fn signal(pid: u32, sig: Signal) {
    kill(Pid::from_raw(pid as i32), sig).expect("signal steady");
}

/// Waits for a spawned steady to end, killing it if it does not within `LONG`.
fn wait_child(child: &mut std::process::Child) -> std::process::ExitStatus {
    let mut status = None;
    wait_for(LONG, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    match status {
        Some(s) => s,
        None => {
            let _ = child.kill();
            panic!("steady did not end within {LONG:?}");
        }
    }
}

/// A fixture shell line that appends the shell's pid to `pids`.
fn record(pids: &Path) -> String {
    format!("echo $$ >> '{}'", pids.display())
}

#[test]
fn r13_timeout_kills_the_group_and_its_background_children() {
    let ctx = Ctx::new();
    let pids = ctx.path("pids");
    let p = pids.display();
    ctx.fixture(
        "grandkids",
        &format!(
            "{}\nsleep 201 & echo $! >> '{p}'\nsleep 202 & echo $! >> '{p}'\nwait\n",
            record(&pids)
        ),
    );
    let out = run(ctx
        .steady()
        .args(["--timeout", "2s", "--retries", "0", "--", "grandkids"]));
    assert_eq!(code(&out), 124, "{}", stderr(&out));
    assert!(stderr(&out).contains("--timeout"), "{}", stderr(&out));
    let all = pids_in(&pids);
    assert_eq!(all.len(), 3, "the fixture wrote {all:?}");
    assert_all_dead(&all, "after a timeout");
}

#[test]
fn r13_a_tree_that_ignores_term_is_killed_after_the_grace() {
    let ctx = Ctx::new();
    let pids = ctx.path("pids");
    let p = pids.display();
    ctx.fixture(
        "stubborn",
        &format!(
            "trap '' TERM\n{}\nsleep 203 & echo $! >> '{p}'\nwait\n",
            record(&pids)
        ),
    );
    let started = Instant::now();
    let out = run(ctx.steady().args([
        "--timeout",
        "1s",
        "--kill-after",
        "1s",
        "--retries",
        "0",
        "--",
        "stubborn",
    ]));
    let took = started.elapsed();
    assert_eq!(code(&out), 124, "{}", stderr(&out));
    assert!(
        took >= Duration::from_secs(2),
        "KILL came before the grace was over: {took:?}"
    );
    let all = pids_in(&pids);
    assert_eq!(all.len(), 2, "the fixture wrote {all:?}");
    assert_all_dead(&all, "after TERM was ignored");
}

#[test]
fn r14_setsid_and_double_fork_escapees_are_killed() {
    let ctx = Ctx::new();
    let pids = ctx.path("pids");
    let p = pids.display();
    let body = format!(
        "{}\n\
         setsid sh -c 'echo $$ >> \"{p}\"; exec sleep 204' &\n\
         ( sh -c 'echo $$ >> \"{p}\"; exec sleep 205' & )\n\
         ( setsid sh -c '( sh -c \"echo \\$\\$ >> {p}; exec sleep 206\" & )' & )\n\
         while [ $(wc -l < '{p}') -lt 4 ]; do sleep 0.05; done\n\
         echo started\n\
         exec sleep 207\n",
        record(&pids)
    );
    ctx.fixture("escapees", &body);
    let out = run(ctx
        .steady()
        .args(["--timeout", "3s", "--retries", "0", "--", "escapees"]));
    assert_eq!(code(&out), 124, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("started"),
        "the fixture did not set up: {}",
        stderr(&out)
    );
    let all = pids_in(&pids);
    assert_eq!(all.len(), 4, "the fixture wrote {all:?}");
    assert_all_dead(&all, "escapees after a timeout");
}

#[test]
fn r14_the_next_attempt_starts_only_when_the_last_tree_is_gone() {
    let ctx = Ctx::new();
    let (escapee, verdict, attempts) = (
        ctx.path("escapee"),
        ctx.path("verdict"),
        ctx.path("attempts"),
    );
    let (e, v, a) = (escapee.display(), verdict.display(), attempts.display());
    // Attempt 1 leaves a setsid'd process behind and fails; attempt 2 looks for it by pid
    // (`kill -0` also succeeds on a zombie, so it must be reaped too).
    ctx.fixture(
        "leaves-one",
        &format!(
            "echo x >> '{a}'\n\
             if [ -s '{e}' ]; then\n\
               if kill -0 $(cat '{e}') 2>/dev/null; then echo alive >> '{v}'; else echo gone >> '{v}'; fi\n\
               exit 0\n\
             fi\n\
             setsid sh -c 'echo $$ > \"{e}\"; exec sleep 208' &\n\
             while [ ! -s '{e}' ]; do sleep 0.01; done\n\
             exit 1\n"
        ),
    );
    let out = run(ctx.steady().args([
        "--retries",
        "1",
        "--backoff",
        "100ms",
        "--clean",
        "never",
        "--timeout",
        "60s",
        "--",
        "leaves-one",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(ctx.read("attempts").lines().count(), 2, "{}", stderr(&out));
    assert_eq!(
        ctx.read("verdict").trim(),
        "gone",
        "the escapee of attempt 1 outlived it"
    );
    assert_all_dead(&pids_in(&escapee), "escapee of a failed attempt");
}

#[test]
fn r15_the_direct_child_dies_with_a_killed_steady() {
    let ctx = Ctx::new();
    let (pids, grand) = (ctx.path("pids"), ctx.path("grand"));
    ctx.fixture(
        "parent",
        &format!(
            "{}\nsh -c 'echo $$ > \"{}\"; exec sleep 209' &\nexec sleep 210\n",
            record(&pids),
            grand.display()
        ),
    );
    let mut steady = ctx
        .steady()
        .args(["--timeout", "120s", "--", "parent"])
        .spawn()
        .expect("spawn steady");
    wait_for_lines(&pids, 1);
    wait_for_lines(&grand, 1);
    let direct = pids_in(&pids)[0];
    steady.kill().expect("SIGKILL steady");
    steady.wait().expect("reap steady");
    let died = wait_for(LONG, || !pid_alive(direct));
    // What PR_SET_PDEATHSIG cannot reach: a grandchild of a SIGKILLed steady lives on (only a
    // cgroup or a container's PID namespace would end it). Clean it up here.
    for g in pids_in(&grand) {
        let _ = kill(Pid::from_raw(g), Signal::SIGKILL);
    }
    assert!(
        died,
        "the direct child {direct} outlived a SIGKILLed steady"
    );
}

#[test]
fn r16_each_stop_signal_reaches_the_group_and_ends_the_run() {
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        let ctx = Ctx::new();
        let (pids, got, attempts) = (ctx.path("pids"), ctx.path("got"), ctx.path("attempts"));
        let name = &sig.as_str()[3..];
        // The leader waits for a foreground child; both trap the signal. Only a signal to the
        // whole group reaches the child (a non-interactive sh would ignore INT and QUIT in a
        // background child, so it is in the foreground).
        ctx.fixture(
            "trapper",
            &format!(
                "echo x >> '{a}'\n\
                 trap 'echo leader >> \"{g}\"' {name}\n\
                 {rec}\n\
                 sh -c 'trap \"echo child >> {g}; exit 0\" {name}; echo $$ >> {p}; while :; do sleep 0.05; done'\n\
                 exit 3\n",
                a = attempts.display(),
                g = got.display(),
                p = pids.display(),
                rec = record(&pids),
            ),
        );
        let mut steady = ctx
            .steady()
            .args(["--retries", "2", "--timeout", "120s", "--", "trapper"])
            .spawn()
            .expect("spawn");
        wait_for_lines(&pids, 2);
        signal(steady.id(), sig);
        let status = wait_child(&mut steady);
        assert_eq!(
            status.code(),
            Some(3),
            "{name}: steady should exit as the command did: {status:?}"
        );
        let got = ctx.read("got");
        assert!(
            got.contains("leader") && got.contains("child"),
            "{name} did not reach the whole group: {got:?}"
        );
        assert_eq!(
            ctx.read("attempts").lines().count(),
            1,
            "{name}: steady retried after being stopped"
        );
        assert_all_dead(&pids_in(&pids), name);
    }
}

#[test]
fn r16_a_tree_ignoring_the_signal_is_killed_and_steady_dies_of_it() {
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        let ctx = Ctx::new();
        let pids = ctx.path("pids");
        ctx.fixture(
            "deaf",
            &format!(
                "trap '' INT TERM HUP QUIT\n{}\nsleep 211 & echo $! >> '{}'\nwait\n",
                record(&pids),
                pids.display()
            ),
        );
        let mut steady = ctx
            .steady()
            .args(["--kill-after", "1s", "--timeout", "120s", "--", "deaf"])
            .spawn()
            .expect("spawn");
        wait_for_lines(&pids, 2);
        let sent = Instant::now();
        signal(steady.id(), sig);
        let status = wait_child(&mut steady);
        let took = sent.elapsed();
        assert_eq!(
            status.signal(),
            Some(sig as i32),
            "steady should die of {sig}: {status:?}"
        );
        assert!(
            took >= Duration::from_secs(1),
            "{sig}: KILL came before the grace: {took:?}"
        );
        assert_all_dead(&pids_in(&pids), sig.as_str());
    }
}

#[test]
fn r16_a_second_stop_signal_skips_the_rest_of_the_grace() {
    let ctx = Ctx::new();
    let (pids, got) = (ctx.path("pids"), ctx.path("got"));
    ctx.fixture(
        "deaf-to-term",
        &format!(
            "trap '' TERM\ntrap 'echo INT >> \"{}\"' INT\n{}\nsleep 212 & echo $! >> '{}'\nwhile :; do wait; done\n",
            got.display(),
            record(&pids),
            pids.display()
        ),
    );
    // The grace is far longer than the test may take: only the second signal can end it.
    let mut steady = ctx
        .steady()
        .args([
            "--kill-after",
            "300s",
            "--timeout",
            "600s",
            "--",
            "deaf-to-term",
        ])
        .spawn()
        .expect("spawn");
    wait_for_lines(&pids, 2);
    signal(steady.id(), Signal::SIGINT);
    assert!(
        wait_for(LONG, || ctx.read("got").contains("INT")),
        "the INT was not forwarded"
    );
    signal(steady.id(), Signal::SIGTERM);
    let status = wait_child(&mut steady);
    assert!(
        status.signal().is_some(),
        "steady should die of the signal: {status:?}"
    );
    assert_all_dead(&pids_in(&pids), "after INT then TERM");
}

#[test]
fn r16_default_grace_fits_the_ci_budget_after_term() {
    let ctx = Ctx::new();
    let pids = ctx.path("pids");
    ctx.fixture(
        "deaf",
        &format!(
            "trap '' TERM\n{}\nsleep 213 & echo $! >> '{}'\nwait\n",
            record(&pids),
            pids.display()
        ),
    );
    let mut steady = ctx
        .steady()
        .args(["--timeout", "120s", "--", "deaf"])
        .spawn()
        .expect("spawn");
    wait_for_lines(&pids, 2);
    let sent = Instant::now();
    signal(steady.id(), Signal::SIGTERM);
    let status = wait_child(&mut steady);
    let took = sent.elapsed();
    eprintln!("steady ended {took:?} after TERM with the default grace");
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    // The default grace is 2s (GitHub Actions kills everything 2.5s after its TERM).
    assert!(
        took >= Duration::from_secs(2),
        "the default grace was not given: {took:?}"
    );
    assert_all_dead(&pids_in(&pids), "after TERM with the default grace");
}

/// A fixture that blocks forever without CPU or output: opening a FIFO nobody writes.
fn hang_line(ctx: &Ctx) -> String {
    format!(
        "f='{}/fifo.'$$; mkfifo \"$f\"; read x < \"$f\"",
        ctx.root().display()
    )
}

#[test]
fn r13_stall_a_silent_idle_tree_is_killed_and_retried() {
    let ctx = Ctx::new();
    let pids = ctx.path("pids");
    let p = pids.display();
    ctx.fixture(
        "hangs",
        &format!(
            "{}\nsleep 214 & echo $! >> '{p}'\necho working\n{}\n",
            record(&pids),
            hang_line(&ctx)
        ),
    );
    let started = Instant::now();
    let out = run(ctx.steady().args([
        "--stall",
        "2s",
        "--kill-after",
        "1s",
        "--retries",
        "1",
        "--backoff",
        "100ms",
        "--",
        "hangs",
    ]));
    let took = started.elapsed();
    assert_eq!(code(&out), 124, "{}", stderr(&out));
    assert!(stderr(&out).contains("--stall 2s"), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).matches("working").count(),
        2,
        "a stall is retried: {}",
        stderr(&out)
    );
    assert!(
        took >= Duration::from_secs(4),
        "killed before two stall windows passed: {took:?}"
    );
    let all = pids_in(&pids);
    assert_eq!(all.len(), 4, "the fixture wrote {all:?}");
    assert_all_dead(&all, "after a stall");
}

#[test]
fn r13_stall_the_qemu_hang_is_caught_within_the_window_and_grace() {
    let ctx = Ctx::new();
    let (pids, times) = (ctx.path("pids"), ctx.path("times"));
    let (p, t) = (pids.display(), times.display());
    // Like uv's bytecode compile under qemu-user: workers finish, the parent waits forever,
    // nothing is printed and no CPU is used. The retry succeeds.
    ctx.fixture(
        "qemu-hang",
        &format!(
            "date +%s.%N >> '{t}'\n{rec}\n\
             if [ $(wc -l < '{t}') -ge 2 ]; then echo compiled; exit 0; fi\n\
             echo 'Bytecode compiled 0 files'\n\
             sh -c 'echo $$ >> \"{p}\"' & sh -c 'echo $$ >> \"{p}\"' & wait\n\
             {hang}\n",
            rec = record(&pids),
            hang = hang_line(&ctx)
        ),
    );
    let out = run(ctx.steady().args([
        "--stall",
        "2s",
        "--kill-after",
        "1s",
        "--retries",
        "1",
        "--backoff",
        "100ms",
        "--",
        "qemu-hang",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("compiled\n"), "{}", stdout(&out));
    assert!(stderr(&out).contains("stalled"), "{}", stderr(&out));
    let starts: Vec<f64> = ctx
        .read("times")
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert_eq!(starts.len(), 2, "{starts:?}");
    let gap = starts[1] - starts[0];
    // The window (2s) plus the grace (1s) plus back-off, with a wide margin for a busy machine.
    assert!(
        (2.0..30.0).contains(&gap),
        "the retry began {gap:.1}s after the hung attempt"
    );
    assert_all_dead(&pids_in(&pids), "the hung attempt");
}

#[test]
fn r13_stall_a_busy_tree_that_prints_nothing_is_not_stalled() {
    let ctx = Ctx::new();
    // The spinner is a child: only the whole tree's CPU shows the work.
    ctx.fixture(
        "spins",
        "sh -c 'while :; do :; done' &\nspinner=$!\nsleep 6\nkill $spinner\necho finished\n",
    );
    let out = run(ctx
        .steady()
        .args(["--stall", "2s", "--retries", "0", "--", "spins"]));
    assert_eq!(
        code(&out),
        0,
        "a CPU-bound silent tree was taken for a hang: {}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "finished\n");
}

#[test]
fn r13_stall_a_busy_child_of_a_worker_thread_is_not_stalled() {
    // Installers with thread pools (uv, cargo, npm) start their workers from any thread; the
    // kernel lists such a child under that thread, not under the process.
    let Some(python) = require("python3") else {
        return;
    };
    let ctx = Ctx::new();
    let script = ctx.path("pool.py");
    std::fs::write(
        &script,
        "import subprocess, threading, time\n\
         spin = []\n\
         def worker():\n\
         \x20   spin.append(subprocess.Popen(['sh', '-c', 'while :; do :; done']))\n\
         \x20   time.sleep(8)\n\
         t = threading.Thread(target=worker)\n\
         t.start()\n\
         time.sleep(7.5)\n\
         spin[0].kill()\n\
         t.join()\n\
         print('finished')\n",
    )
    .unwrap();
    let out = run(ctx
        .steady()
        .args(["--stall", "2s", "--retries", "0", "--"])
        .arg(python)
        .arg(&script));
    assert_eq!(
        code(&out),
        0,
        "a worker thread's busy child was taken for a hang: {}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "finished\n");
}

#[test]
fn r13_stall_output_keeps_an_idle_tree_alive() {
    let ctx = Ctx::new();
    ctx.fixture(
        "ticks",
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo tick; sleep 0.5; done\n",
    );
    let out = run(ctx
        .steady()
        .args(["--stall", "2s", "--retries", "0", "--", "ticks"]));
    assert_eq!(
        code(&out),
        0,
        "a printing tree was taken for a hang: {}",
        stderr(&out)
    );
    assert_eq!(stdout(&out).matches("tick").count(), 12);
}

#[test]
fn r13_stall_is_on_by_default_only_without_a_terminal() {
    let ctx = Ctx::new();
    let said = |extra: &[(&str, &str)]| {
        let mut cmd = ctx.steady();
        cmd.args(["-v", "--timeout", "60s", "--", "true"]);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = run(&mut cmd);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stderr(&out)
    };
    assert!(
        said(&[]).contains("stall detection: an attempt silent and idle for 45s"),
        "{}",
        said(&[])
    );
    assert!(said(&[("STEADY_STALL", "0")]).contains("stall detection: off"));
    assert!(said(&[("STEADY_STALL", "50s")]).contains("silent and idle for 50s"));
}

#[test]
fn r21_deadline_stops_a_running_attempt_and_the_retries() {
    let ctx = Ctx::new();
    let (pids, attempts) = (ctx.path("pids"), ctx.path("attempts"));
    ctx.fixture(
        "slow",
        &format!(
            "echo x >> '{}'\n{}\nsleep 215 & echo $! >> '{}'\nwait\n",
            attempts.display(),
            record(&pids),
            pids.display()
        ),
    );
    let started = Instant::now();
    let out = run(ctx.steady().args([
        "--deadline",
        "3s",
        "--kill-after",
        "500ms",
        "--retries",
        "5",
        "--backoff",
        "100ms",
        "--",
        "slow",
    ]));
    let took = started.elapsed();
    assert_eq!(code(&out), 124, "{}", stderr(&out));
    assert!(took >= Duration::from_secs(3) && took < LONG, "{took:?}");
    // The deadline is the end of the run, not a retryable timeout.
    assert_eq!(ctx.read("attempts").lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("--deadline"), "{}", stderr(&out));
    assert_all_dead(&pids_in(&pids), "after the deadline");
}

#[test]
fn r21_deadline_is_not_overslept_in_the_back_off() {
    let ctx = Ctx::new();
    let attempts = ctx.path("attempts");
    ctx.fixture(
        "fails",
        &format!("echo x >> '{}'\nexit 1\n", attempts.display()),
    );
    let started = Instant::now();
    // The back-off (30-60s) would cross the 5s deadline: steady stops at once.
    let out = run(ctx.steady().args([
        "--deadline",
        "5s",
        "--backoff",
        "60s",
        "--retries",
        "3",
        "--clean",
        "never",
        "--",
        "fails",
    ]));
    let took = started.elapsed();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        took < Duration::from_secs(25),
        "steady slept past its deadline: {took:?}"
    );
    assert_eq!(ctx.read("attempts").lines().count(), 1);
    assert!(stderr(&out).contains("--deadline"), "{}", stderr(&out));
}

/// Bytes with every value, in an order no text filter would leave alone.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 97 == 0 {
                b'\n'
            } else if i % 89 == 0 {
                b'\r'
            } else {
                (x >> 24) as u8
            }
        })
        .collect()
}

#[test]
fn r17_piped_and_redirected_output_is_byte_exact() {
    let ctx = Ctx::new();
    let parts: Vec<Vec<u8>> = (0..4)
        .map(|i| noise(700_000 + i * 1013, 0x9e37_79b9 + i as u64))
        .collect();
    for (i, data) in parts.iter().enumerate() {
        std::fs::write(ctx.path(&format!("d{i}")), data).unwrap();
    }
    let d = |i: usize| ctx.path(&format!("d{i}")).display().to_string();
    ctx.fixture(
        "binary",
        &format!(
            "cat '{}'\ncat '{}' >&2\ncat '{}'\nprintf '\\000\\377' >&2\ncat '{}' >&2\n",
            d(0),
            d(1),
            d(2),
            d(3)
        ),
    );
    let want_out = [parts[0].clone(), parts[2].clone()].concat();
    let want_err = [parts[1].clone(), b"\x00\xff".to_vec(), parts[3].clone()].concat();

    let out = run(ctx
        .steady()
        .args(["-q", "--timeout", "60s", "--", "binary"]));
    assert_eq!(code(&out), 0);
    assert!(
        out.stdout == want_out,
        "stdout through a pipe differs ({} vs {} bytes)",
        out.stdout.len(),
        want_out.len()
    );
    assert!(
        out.stderr == want_err,
        "stderr through a pipe differs ({} vs {} bytes)",
        out.stderr.len(),
        want_err.len()
    );

    let file = std::fs::File::create(ctx.path("out.bin")).unwrap();
    let out = run(ctx
        .steady()
        .args(["-q", "--timeout", "60s", "--", "binary"])
        .stdout(file));
    assert_eq!(code(&out), 0);
    assert!(
        std::fs::read(ctx.path("out.bin")).unwrap() == want_out,
        "stdout to a file differs"
    );
    assert!(out.stderr == want_err, "stderr differs");
}

/// Splits what steady wrote to its stderr under `-v` into the command's stderr and steady's
/// own lines, which come before the command starts and after its output is done.
fn split_own_lines(all: &[u8]) -> (&[u8], String) {
    let mut own = String::new();
    let mut start = 0;
    while all[start..].starts_with(b"steady: ") {
        let len = all[start..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(all.len() - start, |i| i + 1);
        own.push_str(&String::from_utf8_lossy(&all[start..start + len]));
        start += len;
    }
    let mut end = all.len();
    while end > start {
        let line = all[start..end - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(start, |i| start + i + 1);
        if !all[line..end].starts_with(b"steady: ") {
            break;
        }
        own.push_str(&String::from_utf8_lossy(&all[line..end]));
        end = line;
    }
    (&all[start..end], own)
}

#[test]
fn r17_output_moved_by_splice_is_byte_exact_and_its_tail_is_classified() {
    let ctx = Ctx::new();
    // Far more than steady copies before it switches to splice, so most of it goes that way.
    for (i, len) in [(0, 6 << 20), (1, 10 << 20)] {
        std::fs::write(ctx.path(&format!("d{i}")), noise(len, 0x51ce + i as u64)).unwrap();
    }
    let d = |i: usize| ctx.path(&format!("d{i}")).display().to_string();
    let full = "\nOSError: [Errno 28] No space left on device\n";
    let files = "\nOSError: Too many open files\n";
    // One stream ends: disk full, 9.4 KB, too many open files, 59.7 KB. A tail kept right (the
    // last 64 KiB = 65.5 KB) holds only the second: resource exhaustion. A shorter one holds
    // neither (unknown), a longer one both (disk full, which outweighs it). The end comes a
    // line per write, each of which may reach steady alone: many small pieces.
    let lines = |from: usize, to: usize| {
        (from..to)
            .map(|i| format!("tail line {i:05} of the flood, small on purpose\n"))
            .collect::<String>()
            .into_bytes()
    };
    ctx.fixture(
        "floods-then-fails",
        &format!(
            "if [ \"$WHERE\" = stdout ]; then exec 3>&1 4>&2; else exec 3>&2 4>&1; fi\n\
             lines() {{ i=$1; while [ $i -lt $2 ]; do \
             printf 'tail line %05d of the flood, small on purpose\\n' $i; i=$((i+1)); done; }}\n\
             cat '{}' >&3\nprintf '%s' \"$FULL\" >&3\nlines 0 200 >&3\n\
             printf '%s' \"$FILES\" >&3\nlines 200 1470 >&3\ncat '{}' >&4\necho >&4\nexit 1\n",
            d(0),
            d(1),
        ),
    );
    let part = |i: usize| std::fs::read(ctx.path(&format!("d{i}"))).unwrap();
    let signed = [
        part(0),
        full.into(),
        lines(0, 200),
        files.into(),
        lines(200, 1470),
    ]
    .concat();
    let plain = [part(1), b"\n".to_vec()].concat();
    let report = ctx.path("report.json");
    let steady = |cmd: &mut Command, signed_on: &str| {
        cmd.args(["-v", "--retries", "0", "--timeout", "120s", "--report"])
            .arg(&report)
            .args(["--", "floods-then-fails"])
            .env("WHERE", signed_on)
            .env("FULL", full)
            .env("FILES", files);
    };
    let check = |how: &str, signed_on, status: std::process::ExitStatus, out: &[u8], err: &[u8]| {
        assert_eq!(status.code(), Some(1), "{how}: {status:?}");
        let (err, own) = split_own_lines(err);
        let (want_out, want_err) = if signed_on == "stdout" {
            (&signed, &plain)
        } else {
            (&plain, &signed)
        };
        assert!(
            out == want_out.as_slice(),
            "{how}: stdout differs ({} bytes, want {})",
            out.len(),
            want_out.len()
        );
        assert!(
            err == want_err.as_slice(),
            "{how}: stderr differs ({} bytes, want {})\n{own}",
            err.len(),
            want_err.len()
        );
        let text = std::fs::read_to_string(&report).unwrap_or_default();
        assert!(
            text.contains("\"class\": \"resource exhaustion\"")
                && text.contains("\"signature\": \"Too many open files\""),
            "{how}: the tail was not kept right:\n{text}\n{own}"
        );
        own
    };

    for signed_on in ["stdout", "stderr"] {
        // To pipes, stdout read slowly: the sink fills, splices stop halfway and resume.
        let how = format!("to pipes, signature on {signed_on}");
        let mut cmd = ctx.steady();
        steady(&mut cmd, signed_on);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut out_pipe = child.stdout.take().unwrap();
        let mut err_pipe = child.stderr.take().unwrap();
        let slow = std::thread::spawn(move || {
            let (mut all, mut buf) = (Vec::new(), vec![0u8; 64 << 10]);
            while let Ok(n) = out_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                all.extend_from_slice(&buf[..n]);
                // Pacing, not synchronization: a reader slower than the command.
                std::thread::sleep(Duration::from_millis(1));
            }
            all
        });
        let mut err = Vec::new();
        err_pipe.read_to_end(&mut err).unwrap();
        let status = wait_child(&mut child);
        let own = check(&how, signed_on, status, &slow.join().unwrap(), &err);
        for name in ["stdout", "stderr"] {
            assert!(
                own.contains(&format!("of the command's {name} moved by splice")),
                "{how}: {name} was not spliced:\n{own}"
            );
        }

        // To files, fresh and appended to: splice writes the first, and cannot write the
        // second (O_APPEND), which is copied.
        for append in [false, true] {
            let how = format!(
                "to {}files, signature on {signed_on}",
                if append { "appended " } else { "" }
            );
            let open = |name: &str| {
                let p = ctx.path(name);
                let _ = std::fs::remove_file(&p);
                std::fs::File::options()
                    .create(true)
                    .write(true)
                    .append(append)
                    .open(p)
                    .unwrap()
            };
            let mut cmd = ctx.steady();
            steady(&mut cmd, signed_on);
            let status = cmd
                .stdout(open("out.bin"))
                .stderr(open("err.bin"))
                .status()
                .expect("spawn");
            let out = std::fs::read(ctx.path("out.bin")).unwrap();
            let err = std::fs::read(ctx.path("err.bin")).unwrap();
            let own = check(&how, signed_on, status, &out, &err);
            assert_eq!(
                own.contains("of the command's stdout moved by splice"),
                !append,
                "{how}:\n{own}"
            );
        }
    }
}

#[test]
fn r20_memory_stays_bounded_while_the_command_prints_1gib() {
    let ctx = Ctx::new();
    let (printed, go) = (ctx.path("printed"), ctx.path("go"));
    ctx.fixture(
        "floods",
        &format!(
            "head -c 1073741824 /dev/zero\ntouch '{}'\nwhile [ ! -e '{}' ]; do sleep 0.05; done\n",
            printed.display(),
            go.display()
        ),
    );
    let mut steady = ctx
        .steady()
        .args(["--timeout", "600s", "--", "floods"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = steady.id() as i32;
    let mut pipe = steady.stdout.take().unwrap();
    let counter = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        total
    });
    let printed_all = wait_for(Duration::from_secs(600), || printed.exists());
    // Everything printed is in steady's hands or already copied: its peak is final.
    let peak_kib = proc_status(pid, "VmHWM");
    std::fs::write(&go, "").unwrap();
    let status = wait_child(&mut steady);
    let total = counter.join().unwrap();
    assert!(printed_all, "the fixture did not finish printing");
    assert!(status.success(), "{status:?}");
    assert_eq!(total, 1 << 30, "steady did not pass on every byte");
    let peak_kib = peak_kib.expect("VmHWM of steady");
    eprintln!("steady's peak RSS while copying 1 GiB: {peak_kib} KiB");
    assert!(peak_kib < 16 * 1024, "steady's peak RSS was {peak_kib} KiB");
}

#[test]
fn r20_steady_has_one_thread_while_the_command_runs() {
    let ctx = Ctx::new();
    let pids = ctx.path("pids");
    ctx.fixture(
        "sleeper",
        &format!(
            "{}\nwhile :; do echo tick; sleep 0.2; done\n",
            record(&pids)
        ),
    );
    let mut steady = ctx
        .steady()
        .args(["--stall", "30s", "--timeout", "120s", "--", "sleeper"])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    wait_for_lines(&pids, 1);
    let pid = steady.id() as i32;
    // Look a few times, across stall samples and output copies.
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        seen.extend(proc_status(pid, "Threads"));
        // A sampling interval, not a synchronization.
        std::thread::sleep(Duration::from_millis(300));
    }
    signal(steady.id(), Signal::SIGTERM);
    wait_child(&mut steady);
    assert!(!seen.is_empty(), "could not read steady's thread count");
    assert!(
        seen.iter().all(|t| *t == 1),
        "steady had more than one thread: {seen:?}"
    );
    assert_all_dead(&pids_in(&pids), "after TERM");
}

#[test]
fn r20_process_limit_is_reported_not_a_crash() {
    if !is_root() {
        skip("needs root to run steady as another uid with a process limit");
        return;
    }
    if require("setpriv").is_none() || require("prlimit").is_none() {
        return;
    }
    let ctx = Ctx::new();
    for dir in ["", "bin", "work", "home"] {
        chmod(&ctx.path(dir), 0o777);
    }
    let ran = ctx.path("ran");
    ctx.fixture("installer", &format!("echo yes >> '{}'\n", ran.display()));
    // A uid with no other processes: with RLIMIT_NPROC 1, steady itself is the one.
    let uid = format!("{}", 61_000 + std::process::id() % 1000);
    let as_user = |limit: &str| {
        let nproc = format!("--nproc={limit}:{limit}");
        let mut cmd = ctx.steady_under(&[
            "prlimit",
            &nproc,
            "--",
            "setpriv",
            "--reuid",
            &uid,
            "--regid",
            &uid,
            "--clear-groups",
            "--",
        ]);
        cmd.args([
            "--retries",
            "1",
            "--backoff",
            "100ms",
            "--timeout",
            "60s",
            "--",
            "installer",
        ]);
        run(&mut cmd)
    };
    let control = as_user("100");
    assert_eq!(
        code(&control),
        0,
        "as uid {uid} without a tight limit: {}",
        stderr(&control)
    );
    assert_eq!(ctx.read("ran").lines().count(), 1);

    let out = as_user("1");
    let err = stderr(&out);
    assert_eq!(code(&out), 125, "{err}");
    assert!(
        err.contains("process limit") && err.contains("ulimit -u"),
        "{err}"
    );
    assert!(
        err.contains("attempt 1 of 2 failed"),
        "EAGAIN should be retried: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.to_lowercase().contains("clear"),
        "{err}"
    );
    assert_eq!(
        ctx.read("ran").lines().count(),
        1,
        "the command ran despite the limit"
    );
}

/// How to make a PID namespace here, or `None` (a skip) where the machine forbids it.
fn pid_namespace() -> Option<Vec<&'static str>> {
    require("unshare")?;
    let candidates: [&[&'static str]; 2] = [
        &["unshare", "--pid", "--fork", "--mount-proc"],
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--pid",
            "--fork",
            "--mount-proc",
        ],
    ];
    for c in candidates {
        let ok = Command::new(c[0])
            .args(&c[1..])
            .arg("true")
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(c.to_vec());
        }
    }
    skip("cannot create a PID namespace here (unshare --pid fails, also with --user)");
    None
}

#[test]
fn r19_as_pid_1_steady_reaps_orphans_and_obeys_term() {
    let Some(unshare) = pid_namespace() else {
        return;
    };
    let ctx = Ctx::new();
    let (started, go) = (ctx.path("started"), ctx.path("go"));
    ctx.fixture(
        "init-child",
        &format!(
            "( sh -c 'while [ ! -e \"{go}\" ]; do sleep 0.05; done' orphan-of-steady & )\n\
             echo $$ > '{s}'\n\
             exec sleep 216\n",
            go = go.display(),
            s = started.display()
        ),
    );
    let mut outer = ctx
        .steady_under(&unshare)
        .args(["--timeout", "120s", "--", "init-child"])
        .spawn()
        .expect("spawn unshare");
    wait_for_lines(&started, 1);
    let mut steady = None;
    assert!(
        wait_for(LONG, || {
            steady = children_of(outer.id() as i32)
                .into_iter()
                .find(|p| cmdline(*p).contains("init-child"));
            steady.is_some()
        }),
        "steady not found under unshare"
    );
    let steady = steady.unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{steady}/status"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("NSpid:"))
            .and_then(|l| l.split_whitespace().last().map(str::to_owned)),
        Some("1".to_owned()),
        "steady is not PID 1 of its namespace"
    );
    let mut orphan = None;
    assert!(
        wait_for(LONG, || {
            orphan = children_of(steady)
                .into_iter()
                .find(|p| cmdline(*p).contains("orphan-of-steady"));
            orphan.is_some()
        }),
        "the orphan was not re-parented to steady"
    );
    let orphan = orphan.unwrap();
    std::fs::write(&go, "").unwrap();
    // Gone from /proc entirely: a zombie left unreaped would stay listed.
    assert!(
        wait_for(LONG, || !Path::new(&format!("/proc/{orphan}")).exists()),
        "steady as PID 1 left the orphan {orphan} a zombie"
    );
    // As PID 1, a signal with no handler would be ignored and this would hang.
    signal(steady as u32, Signal::SIGTERM);
    let status = wait_child(&mut outer);
    // steady cannot die of a re-raised signal as PID 1, so it exits 128+15.
    assert_eq!(code_of(status), 143, "{status:?}");
}

fn code_of(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Drives a command in a real pseudo-terminal (python3's `pty`): the terminal is 33x111, the
/// steps are `expect TEXT`, `send TEXT` (with `\n`, `\x03` escapes) and `resize ROWS COLS`;
/// then it reads to the end and prints the whole output (latin-1) after a `STATUS` line.
const PTY_HARNESS: &str = r#"
import fcntl, os, pty, select, struct, sys, termios, time
steps, argv = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    os.execvp(argv[0], argv)
out = bytearray()
def pump(limit):
    r, _, _ = select.select([fd], [], [], limit)
    if not r:
        return True
    try:
        data = os.read(fd, 65536)
    except OSError:
        data = b""
    out.extend(data)
    return bool(data)
def expect(token):
    end = time.time() + 60
    while token.encode("latin-1") not in out:
        if time.time() > end or not pump(1):
            sys.stdout.write("FAILED expecting %r\n" % token)
            sys.stdout.write(out.decode("latin-1"))
            os.kill(pid, 9)
            sys.exit(1)
for line in steps.split("\n"):
    if not line:
        continue
    verb, _, arg = line.partition(" ")
    arg = arg.encode("latin-1").decode("unicode_escape")
    if verb == "expect":
        expect(arg)
    elif verb == "send":
        os.write(fd, arg.encode("latin-1"))
    elif verb == "resize":
        rows, cols = map(int, arg.split())
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
# Until the command ends (a process it left behind may keep the pty open), then what is
# still buffered.
end = time.time() + 60
status = None
while time.time() < end:
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = st
        break
    if not pump(0.05):
        time.sleep(0.05)
while select.select([fd], [], [], 0.2)[0]:
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data:
        break
    out.extend(data)
if status is None:
    os.kill(pid, 9)
    sys.stdout.write("STATUS hung\n")
elif os.WIFSIGNALED(status):
    sys.stdout.write("STATUS signal %d\n" % os.WTERMSIG(status))
else:
    sys.stdout.write("STATUS exit %d\n" % os.WEXITSTATUS(status))
sys.stdout.write(out.decode("latin-1"))
"#;

/// Runs `argv` in a pty through the harness; returns (status line, output).
fn in_pty(ctx: &Ctx, steps: &str, argv: &[&str]) -> (String, String) {
    let py = ctx.path("pty_harness.py");
    std::fs::write(&py, PTY_HARNESS).unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg(&py).arg(steps).args(argv);
    for (k, v) in ctx.steady().get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(ctx.path("work")).stdin(Stdio::null());
    let out = run(&mut cmd);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "pty harness failed: {text}{}",
        stderr(&out)
    );
    let (status, rest) = text.split_once('\n').unwrap_or((&text, ""));
    (status.to_owned(), rest.to_owned())
}

#[test]
fn r17_a_terminal_stays_a_terminal_prompts_resize_and_ctrl_c() {
    if python_with("pty").is_none() {
        return;
    }
    let ctx = Ctx::new();
    let body = |pids: &Path| {
        format!(
            "exec 3>&1\n\
             {rec}\n\
             (trap '' HUP; exec sleep 217) & echo $! >> '{p}'\n\
             [ -t 0 ] && echo in:tty; [ -t 1 ] && echo out:tty; [ -t 2 ] && echo err:tty >&2\n\
             echo \"size:$(stty size <&3)\"\n\
             printf '\\033[1;32mgreen\\033[0m 50%%\\r100%%\\n'\n\
             printf 'name? '\n\
             read name\n\
             echo \"hello:$name\"\n\
             trap 'echo \"winch:$(stty size <&3)\"' WINCH\n\
             echo resize-me\n\
             while :; do sleep 0.1; done\n",
            rec = record(pids),
            p = pids.display()
        )
    };
    let (direct_pids, steady_pids) = (ctx.path("direct"), ctx.path("steady"));
    ctx.fixture("direct", &body(&direct_pids));
    ctx.fixture("through", &body(&steady_pids));
    let steps = "expect name? \nsend world\\n\nexpect resize-me\nresize 40 100\nexpect winch:40 100\nsend \\x03\n";

    // Without steady first: what the terminal shows must be the same with steady.
    let (status, direct) = in_pty(&ctx, steps, &[ctx.bin().join("direct").to_str().unwrap()]);
    assert_eq!(status, "STATUS signal 2", "{direct}");
    for p in pids_in(&direct_pids) {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }

    let (status, through) = in_pty(
        &ctx,
        steps,
        &[steady_bin(), "--timeout", "120s", "--", "through"],
    );
    assert_eq!(
        status, "STATUS signal 2",
        "steady should die of the Ctrl-C: {through}"
    );
    for want in [
        "in:tty",
        "out:tty",
        "err:tty",
        "size:33 111",
        "hello:world",
        "winch:40 100",
    ] {
        assert!(through.contains(want), "missing {want:?} in {through:?}");
    }
    let shown = |s: &str| s[s.find("in:tty").unwrap()..s.find("name? ").unwrap()].to_owned();
    assert_eq!(
        shown(&through),
        shown(&direct),
        "steady changed what the terminal shows"
    );
    let all = pids_in(&steady_pids);
    assert_eq!(all.len(), 2, "{all:?}");
    // The background sleep ignores Ctrl-C (sh does that for `&`) and the terminal's hangup when
    // steady, the session leader, exits: only steady can end it.
    assert_all_dead(&all, "after Ctrl-C");
}

#[test]
fn r17_in_a_terminal_steady_still_reads_what_it_classifies() {
    if python_with("pty").is_none() {
        return;
    }
    let ctx = Ctx::new();
    ctx.fixture(
        "full",
        "echo 'error: No space left on device (os error 28)' >&2\nexit 1\n",
    );
    let (status, shown) = in_pty(
        &ctx,
        "",
        &[
            steady_bin(),
            "-v",
            "--retries",
            "0",
            "--timeout",
            "60s",
            "--",
            "full",
        ],
    );
    assert_eq!(status, "STATUS exit 1", "{shown}");
    assert!(
        shown.contains("stall detection: off"),
        "stall must be off with a terminal on stdin: {shown}"
    );
    assert!(shown.contains("No space left on device"), "{shown}");
    assert!(
        shown.contains("(disk full)"),
        "steady did not see the output it classifies: {shown}"
    );
}
