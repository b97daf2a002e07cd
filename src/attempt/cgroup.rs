//! An attempt in a cgroup of its own, where steady may make one: then `cgroup.kill` (cgroup
//! v2, Linux 5.14+) ends every process of the attempt in one atomic step, whatever it forks
//! meanwhile and wherever it moved in the process tree. Optional: CI containers and login
//! nodes rarely delegate a writable cgroup, so the portable kill (`tree::freeze_and_kill`) always
//! runs after it, and is all there is elsewhere.
//!
//! Where: a child of steady's own cgroup (`0::<path>` in `/proc/self/cgroup`, under the cgroup2
//! mount), and only when that directory belongs to this user (root, or a user whose subtree
//! systemd delegated: it hands those directories to their user). How the command gets in: it
//! is born there (`clone3` with `CLONE_INTO_CGROUP`, in `sys::spawn`); steady itself never
//! enters, so `cgroup.kill` cannot hit it. Where the kernel or a seccomp filter refuses that,
//! the command starts outside and the cgroup is not used. At the end, processes still inside
//! (daemons of a successful command) are moved back to steady's cgroup and the directory is
//! removed.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// One attempt's cgroup.
pub struct Cgroup {
    dir: PathBuf,
    /// The directory, open, for `CLONE_INTO_CGROUP`.
    handle: OwnedFd,
    /// steady's own cgroup, where leftovers go at the end.
    home: PathBuf,
    /// The command was born inside.
    usable: bool,
}

static COUNT: AtomicU32 = AtomicU32::new(0);

/// steady's own cgroup v2 directory, if the unified hierarchy is mounted here.
fn own_dir() -> Option<PathBuf> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let fields: Vec<&str> = left.split_whitespace().collect();
        let (root, point) = (*fields.get(3)?, *fields.get(4)?);
        // Escaped names (`\040`) are not worth decoding here.
        if point.contains('\\') || own.contains('\\') {
            return None;
        }
        let rel = if root == "/" {
            own
        } else {
            own.strip_prefix(root)?
        };
        let dir = Path::new(point).join(rel.trim_start_matches('/'));
        dir.is_dir().then_some(dir)
    })
}

/// Removes the empty cgroups of steady processes that are gone (killed with SIGKILL: their
/// leftovers are stopped by the next holder of the lock, which leaves the cgroup empty).
fn remove_stale(home: &Path) {
    let Ok(entries) = std::fs::read_dir(home) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("steady-"))
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            // Fails, harmlessly, while anything is still inside.
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

fn move_pid(procs: &Path, pid: u32) {
    let _ = std::fs::write(procs, format!("{pid}\n"));
}

/// Where this run may make its attempts' cgroups: steady's own cgroup, when this user owns
/// it. Looked up once (steady never changes cgroup), with the stale ones of killed runs
/// removed then. [`prepare`] does it before the lock is taken, so the lock is not held for it.
fn home() -> Option<&'static Path> {
    use std::os::unix::fs::MetadataExt;
    static HOME: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    HOME.get_or_init(|| {
        let home = own_dir()?;
        if std::fs::metadata(&home).ok()?.uid() != crate::sys::euid() {
            return None;
        }
        remove_stale(&home);
        Some(home)
    })
    .as_deref()
}

/// Finds the cgroup home ahead of the first attempt (work that needs no lock).
pub fn prepare() {
    home();
}

impl Cgroup {
    /// A new cgroup for one attempt, or `None` where steady may not make one.
    pub fn create() -> Option<Cgroup> {
        let home = home()?.to_path_buf();
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = home.join(format!("steady-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        let handle = match std::fs::File::open(&dir) {
            Ok(f) => OwnedFd::from(f),
            Err(_) => {
                let _ = std::fs::remove_dir(&dir);
                return None;
            }
        };
        let cg = Cgroup {
            dir,
            handle,
            home,
            usable: false,
        };
        // Before Linux 5.14 there is no cgroup.kill: nothing gained (dropping removes it).
        cg.dir.join("cgroup.kill").exists().then_some(cg)
    }

    /// The directory for `sys::spawn` to start the command in.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.handle.as_fd()
    }

    /// Notes whether the command was born inside: only then does `cgroup.kill` end it.
    pub fn started(&mut self, inside: bool) {
        self.usable = inside;
        if inside {
            crate::ui::detail(&format!(
                "the command runs in the cgroup `{}`: cgroup.kill can end all of it at once",
                self.dir.display()
            ));
        } else {
            crate::ui::detail(&format!(
                "the command could not be started in the cgroup `{}`; cgroup.kill is not used",
                self.dir.display()
            ));
        }
    }

    /// Kills every process in the cgroup at once.
    pub fn kill(&self) {
        if self.usable {
            let _ = std::fs::write(self.dir.join("cgroup.kill"), "1\n");
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let procs = self.home.join("cgroup.procs");
        // The daemons of a successful command (a few times: one may fork while it is moved).
        for _ in 0..10 {
            let Ok(list) = std::fs::read_to_string(self.dir.join("cgroup.procs")) else {
                break;
            };
            let pids: Vec<u32> = list.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                move_pid(&procs, pid);
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}
