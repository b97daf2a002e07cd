//! Issue 14, the lock and clean cases, each reproduced as a user or a careless co-tenant would
//! and then asserted by behaviour: overlaps counted from a log that every run appends its start
//! and end to, canary files that must survive every clean, processes that must be gone.

use std::time::Duration;

use crate::common::*;

/// Bound for things that happen at once on an idle machine.
const LONG: Duration = Duration::from_secs(30);

/// Pairs of runs in `log` whose start..end intervals overlap. A run that never wrote its end
/// counts as running to the end of the log.
fn overlaps(log: &str) -> usize {
    let mut spans: Vec<(String, u128, u128)> = Vec::new();
    for line in log.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let (Some(kind), Some(tag), Some(t)) = (w.first(), w.get(1), w.get(2)) else {
            continue;
        };
        let Ok(t) = t.parse::<u128>() else { continue };
        match *kind {
            "start" => spans.push((tag.to_string(), t, u128::MAX)),
            "end" => {
                if let Some(s) = spans.iter_mut().rev().find(|s| s.0 == *tag) {
                    s.2 = t;
                }
            }
            // A single moment of work (a clean's tick) is a span of zero length.
            "tick" => spans.push((tag.to_string(), t, t)),
            _ => {}
        }
    }
    let mut n = 0;
    for i in 0..spans.len() {
        for j in i + 1..spans.len() {
            let (a, b) = (&spans[i], &spans[j]);
            if a.0 != b.0 && a.1 <= b.2 && b.1 <= a.2 {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn overlap_counting_counts() {
    assert_eq!(overlaps("start a 1\nend a 5\nstart b 6\nend b 9\n"), 0);
    assert_eq!(overlaps("start a 1\nstart b 3\nend a 5\nend b 9\n"), 1);
    assert_eq!(overlaps("start a 1\ntick c 2\nend a 5\ntick c 6\n"), 1);
}

/// Case 9: a cache path holding a newline (any byte a path may hold) round-trips through the
/// held-locks hand-down, so a nested steady on the same cache goes ahead instead of waiting for
/// its own ancestor.
#[test]
fn nested_run_on_a_cache_path_with_a_newline_goes_ahead() {
    let ctx = Ctx::new();
    for name in ["odd\nname", "per%cent 0A", "tab\there"] {
        let cache = ctx.path(name);
        std::fs::create_dir_all(&cache).unwrap();
        let cache = cache.canonicalize().unwrap();
        let marker = ctx.path("inner");
        let _ = std::fs::remove_file(&marker);
        let out = run(ctx
            .steady()
            .arg("--cache")
            .arg(&cache)
            .arg("--")
            .arg(steady_bin())
            .arg("--cache")
            .arg(&cache)
            .args(["--lock-timeout", "3s", "--", "touch"])
            .arg(&marker));
        assert_eq!(
            code(&out),
            0,
            "the nested run on {name:?} did not go ahead: {}",
            stderr(&out)
        );
        assert!(marker.exists(), "{name:?}");
    }
}

/// Case 16: an entry of STEADY_HELD_LOCKS is trusted only when that ancestor really holds the
/// lock; a shell that merely is an ancestor, or pid 1, does not let a run skip it.
#[test]
fn held_locks_entry_of_an_ancestor_without_the_lock_is_ignored() {
    let ctx = Ctx::new();
    let cache = ctx.cache().canonicalize().unwrap();
    let held = hold_flock(&cache);
    for pid in ["$$", "1"] {
        let script = format!(
            "STEADY_HELD_LOCKS=\"{pid} $1\" \"$2\" --cache \"$1\" --lock-timeout 300ms -- touch ran; echo $? > code"
        );
        let out = run(ctx
            .steady()
            .arg("--no-lock")
            .arg("--")
            .arg("sh")
            .arg("-c")
            .arg(&script)
            .arg("sh")
            .arg(&cache)
            .arg(steady_bin()));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(
            ctx.read("work/code").trim(),
            "75",
            "an entry naming {pid} skipped a lock held by someone else: {}",
            stderr(&out)
        );
        assert!(!ctx.path("work/ran").exists());
    }
    drop(held);
}

/// Case 16: `--lock` on something that is neither a directory nor a regular file is checked
/// before it is opened. A FIFO shows it: opening one for reading completes a writer's open,
/// which must never happen.
#[test]
fn lock_path_of_the_wrong_type_is_never_opened() {
    let ctx = Ctx::new();
    let fifo = ctx.path("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            // Blocks until someone opens the FIFO for reading.
            let f = std::fs::OpenOptions::new().write(true).open(&fifo);
            f.is_ok()
        })
    };
    let out = run(ctx.steady().arg("--lock").arg(&fifo).args(["--", "true"]));
    let opened_by_steady = wait_for(Duration::from_millis(500), || writer.is_finished());
    // Let the writer go whatever happened (without blocking when it is already gone).
    let reader = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
    };
    assert!(writer.join().unwrap());
    drop(reader);
    assert!(
        !opened_by_steady,
        "steady opened the FIFO before checking its type: {}",
        stderr(&out)
    );
}
