//! Locks as the kernel shows them: holding and probing an flock from the test or through a
//! steady run, reading who holds or waits on one from `/proc/locks`, and the `LD_PRELOAD` shim
//! that makes `flock` fail with a chosen errno.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Bg, Ctx, skip, wait_for};

/// `hold`: says it is inside (touches `$1`), then stays until `$2` exists (at most a minute).
pub fn holder(ctx: &Ctx) {
    ctx.fixture(
        "hold",
        "touch \"$1\"\ni=0\nwhile [ ! -e \"$2\" ]; do sleep 0.05; i=$((i+1)); [ $i -gt 1200 ] && exit 9; done\n",
    );
}

/// Starts `cmd` (steady with its options) running `hold`; returns once the command is inside,
/// with the file that lets it go.
pub fn hold_with(ctx: &Ctx, cmd: &mut Command, tag: &str) -> (Bg, PathBuf) {
    holder(ctx);
    let inside = ctx.path(&format!("inside-{tag}"));
    let release = ctx.path(&format!("release-{tag}"));
    let bg = Bg::spawn(cmd.arg("--").arg("hold").arg(&inside).arg(&release));
    assert!(
        wait_for(std::time::Duration::from_secs(30), || inside.exists()),
        "the holder `{tag}` never got in"
    );
    (bg, release)
}

/// Takes an flock on `path` from the test process until the returned file is dropped.
pub fn hold_flock(path: &Path) -> std::fs::File {
    let f = std::fs::File::open(path).expect("open for lock");
    f.lock().expect("flock");
    f
}

/// True when a non-blocking exclusive flock on `path` succeeds now (and releases it).
pub fn flock_free(path: &Path) -> bool {
    let f = std::fs::File::open(path).expect("open for lock");
    let free = f.try_lock().is_ok();
    drop(f);
    free
}

/// The LD_PRELOAD shim of `tests/fixtures/flock_shim.c`, built once per test run with `cc`: it
/// makes `flock` fail with a chosen errno (see the file), to test NFS-like failures without NFS.
pub fn flock_shim() -> Option<PathBuf> {
    if super::steady_is_static() {
        super::gated(
            "needs the LD_PRELOAD flock shim, and the binary under test is static: gnu builds only",
        );
        return None;
    }
    static SHIM: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let built = SHIM.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flock_shim.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("flock_shim-{}.so", std::process::id()));
        match Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&out)
            .arg(&src)
            .output()
        {
            Ok(o) if o.status.success() => Ok(out),
            Ok(o) => Err(format!(
                "cc could not build the flock shim: {}",
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => Err(format!("cannot run cc to build the flock shim: {e}")),
        }
    });
    match built {
        Ok(p) => Some(p.clone()),
        Err(why) => {
            skip(why);
            None
        }
    }
}

/// The FLOCK lines of `/proc/locks`: (pid, waiting, major, minor, inode).
fn flock_lines() -> Vec<(u32, bool, u32, u32, u64)> {
    let text = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut w = line.split_whitespace().skip(1).peekable();
            let waiting = w.peek() == Some(&"->");
            if waiting {
                w.next();
            }
            if w.next()? != "FLOCK" {
                return None;
            }
            let pid = w.nth(2)?.parse().ok()?;
            let mut id = w.next()?.split(':');
            let major = u32::from_str_radix(id.next()?, 16).ok()?;
            let minor = u32::from_str_radix(id.next()?, 16).ok()?;
            Some((pid, waiting, major, minor, id.next()?.parse().ok()?))
        })
        .collect()
}

/// True while `pid` is blocked in the kernel waiting for an flock.
pub fn waits_for_flock(pid: u32) -> bool {
    flock_lines().iter().any(|l| l.0 == pid && l.1)
}

/// True while `pid` holds an flock on the file or directory at `path`.
pub fn holds_flock(pid: u32, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(path) else {
        return false;
    };
    let (major, minor) = (libc::major(m.dev()), libc::minor(m.dev()));
    flock_lines()
        .iter()
        .any(|l| l.0 == pid && !l.1 && (l.2, l.3, l.4) == (major, minor, m.ino()))
}

/// True while `pid` is blocked in the kernel waiting for the flock on the file or directory at
/// `path` (the one there now).
pub fn waits_for_flock_on(pid: u32, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(path) else {
        return false;
    };
    let (major, minor) = (libc::major(m.dev()), libc::minor(m.dev()));
    flock_lines()
        .iter()
        .any(|l| l.0 == pid && l.1 && (l.2, l.3, l.4) == (major, minor, m.ino()))
}
