//! Known environment workarounds (spec section 6), as a table: each row says when it applies,
//! what it sets, why, and the upstream issue, so that `steady doctor` can print them and nobody
//! drops one by accident. A value the user already set is never overridden. The facts the rows
//! test (emulation, process limit, core count) are gathered here too.

use std::path::Path;

use crate::installer::Installer;

/// When a mitigation applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Before the first attempt: steady or the command runs under qemu-user emulation.
    Emulated,
    /// Before the first attempt: `RLIMIT_NPROC` leaves too few tasks for the installer's
    /// default parallelism.
    LowProcessLimit,
    /// Before a retry after an attempt hung or timed out.
    AfterHang,
    /// Before a retry after the installer ran out of threads, processes or descriptors.
    AfterResource,
}

#[derive(Debug)]
pub struct Mitigation {
    pub trigger: Trigger,
    pub reason: &'static str,
    pub upstream: &'static str,
}

/// Every mitigation steady knows. Each sets the installer's concurrency knob
/// (`Recovery::concurrency_env`, e.g. `UV_CONCURRENT_INSTALLS`), so it applies only to
/// installers that have one; the value comes from `value_for`.
pub const MITIGATIONS: &[Mitigation] = &[
    Mitigation {
        trigger: Trigger::Emulated,
        reason: "multi-threaded installs deadlock in futex under qemu-user emulation",
        upstream: "astral-sh/uv#6105",
    },
    Mitigation {
        trigger: Trigger::LowProcessLimit,
        reason: "the process limit (ulimit -u) leaves too few threads for the default parallelism",
        upstream: "astral-sh/uv#14462",
    },
    Mitigation {
        trigger: Trigger::AfterHang,
        reason: "the last attempt hung; a single install worker avoids the known deadlock",
        upstream: "astral-sh/uv#6105",
    },
    Mitigation {
        trigger: Trigger::AfterResource,
        reason: "the last attempt ran out of threads, processes or file descriptors",
        upstream: "astral-sh/uv#14462",
    },
];

/// uv needs about `UV_CONCURRENT_INSTALLS + 8` tasks (measured on uv 0.13, spec section 6);
/// the rest of the headroom is left for the user's other processes.
const TASKS_BESIDE_WORKERS: u64 = 8;
const HEADROOM_MARGIN: u64 = 8;

/// The machine facts the mitigations depend on.
#[derive(Debug, Clone)]
pub struct Facts {
    pub cpus: u64,
    /// Why steady thinks the command runs emulated, if it does.
    pub emulated: Option<String>,
    /// `RLIMIT_NPROC` soft limit, when finite and enforced (root is exempt).
    pub process_limit: Option<u64>,
    /// Tasks (threads) the user runs now, counted in `/proc`, when a limit applies.
    pub user_tasks: Option<u64>,
}

impl Facts {
    pub fn gather(argv: &[std::ffi::OsString]) -> Facts {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        let machine = nix::sys::utsname::uname()
            .map(|u| u.machine().to_string_lossy().into_owned())
            .unwrap_or_default();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let emulated = emulation(&machine, &cpuinfo, argv);
        let process_limit =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NPROC)
                .ok()
                .map(|(soft, _)| soft)
                .filter(|l| {
                    *l != nix::sys::resource::RLIM_INFINITY && nix::unistd::geteuid().as_raw() != 0
                });
        let user_tasks = process_limit.map(|_| count_user_tasks(nix::unistd::getuid().as_raw()));
        Facts {
            cpus,
            emulated,
            process_limit,
            user_tasks,
        }
    }

    /// Tasks the user may still start under `RLIMIT_NPROC`.
    pub fn headroom(&self) -> Option<u64> {
        Some(self.process_limit?.saturating_sub(self.user_tasks?))
    }
}

/// Whether the command runs under qemu-user: launched through a `qemu-*` binary, or steady
/// itself emulated, which shows as a `uname -m` the host CPU in `/proc/cpuinfo` cannot be
/// (qemu fakes `uname` but passes the host's cpuinfo through).
pub fn emulation(machine: &str, cpuinfo: &str, argv: &[std::ffi::OsString]) -> Option<String> {
    if let Some(first) = argv
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        && first.starts_with("qemu-")
    {
        return Some(format!("the command is run by `{first}`"));
    }
    let x86_host = cpuinfo
        .lines()
        .any(|l| l.starts_with("flags") && l.split_whitespace().any(|w| w == "lm"));
    let arm_host = cpuinfo.lines().any(|l| {
        l.starts_with("CPU architecture")
            && l.rsplit(':')
                .next()
                .and_then(|v| v.trim().parse::<u32>().ok())
                .is_some_and(|v| v >= 8)
    });
    let host = if x86_host {
        &["x86_64", "i686", "i386"][..]
    } else if arm_host {
        &["aarch64", "armv7l", "armv8l", "arm64"][..]
    } else {
        return None;
    };
    (!machine.is_empty() && !host.contains(&machine)).then(|| {
        format!(
            "uname reports {machine} but the CPU in /proc/cpuinfo is {}",
            if x86_host { "x86" } else { "ARM" }
        )
    })
}

fn count_user_tasks(uid: u32) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut n = 0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if e.file_name()
            .to_str()
            .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
            && e.metadata().is_ok_and(|m| m.uid() == uid)
        {
            n += std::fs::read_dir(e.path().join("task")).map_or(1, |t| t.count() as u64);
        }
    }
    n
}

/// One mitigation chosen for a run: the row, the variable and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub var: &'static str,
    pub value: String,
    pub reason: &'static str,
    pub upstream: &'static str,
}

impl Applied {
    pub fn describe(&self) -> String {
        format!(
            "{}={}: {} ({})",
            self.var, self.value, self.reason, self.upstream
        )
    }
}

/// The mitigation for `trigger`, if it applies to `installer` here. `current` is the value the
/// knob had in the last attempt; `user_set` says the user set the knob themselves.
pub fn value_for(
    trigger: Trigger,
    installer: &Installer,
    facts: &Facts,
    current: Option<u64>,
    user_set: bool,
) -> Option<Applied> {
    let var = installer.recovery.concurrency_env?;
    if user_set {
        return None;
    }
    let row = MITIGATIONS.iter().find(|m| m.trigger == trigger)?;
    let value = match trigger {
        Trigger::Emulated => {
            facts.emulated.as_ref()?;
            1
        }
        Trigger::AfterHang => 1,
        Trigger::AfterResource => (current.unwrap_or(facts.cpus) / 2).max(1),
        Trigger::LowProcessLimit => {
            let headroom = facts.headroom()?;
            if headroom >= facts.cpus + TASKS_BESIDE_WORKERS + HEADROOM_MARGIN {
                return None;
            }
            headroom
                .saturating_sub(TASKS_BESIDE_WORKERS + HEADROOM_MARGIN)
                .clamp(1, facts.cpus)
        }
    };
    if current == Some(value) {
        return None;
    }
    Some(Applied {
        var,
        value: value.to_string(),
        reason: row.reason,
        upstream: row.upstream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::installer::{PIP, UV};

    fn facts() -> Facts {
        Facts {
            cpus: 8,
            emulated: None,
            process_limit: None,
            user_tasks: None,
        }
    }

    #[test]
    fn detects_qemu_user() {
        let amd = "vendor_id\t: AuthenticAMD\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 lm constant_tsc\n";
        let arm = "processor\t: 0\nBogoMIPS\t: 50.00\nCPU architecture: 8\n";
        assert!(
            emulation("aarch64", amd, &[]).is_some(),
            "aarch64 guest on an x86_64 host"
        );
        assert!(emulation("x86_64", amd, &[]).is_none());
        assert!(emulation("aarch64", arm, &[]).is_none());
        assert!(
            emulation("x86_64", arm, &[]).is_some(),
            "x86_64 guest on an ARM host"
        );
        assert!(
            emulation("riscv64", "isa : rv64imafdc\n", &[]).is_none(),
            "unknown host: no claim"
        );
        assert!(
            emulation(
                "x86_64",
                amd,
                &["/usr/bin/qemu-aarch64-static".into(), "uv".into()]
            )
            .is_some()
        );
    }

    #[test]
    fn values() {
        let emulated = Facts {
            emulated: Some("test".into()),
            ..facts()
        };
        assert_eq!(
            value_for(Trigger::Emulated, &UV, &emulated, None, false).map(|a| a.value),
            Some("1".into())
        );
        assert_eq!(
            value_for(Trigger::Emulated, &UV, &facts(), None, false),
            None,
            "not emulated"
        );
        assert_eq!(
            value_for(Trigger::Emulated, &UV, &emulated, None, true),
            None,
            "the user's value wins"
        );
        assert_eq!(
            value_for(Trigger::Emulated, &PIP, &emulated, None, false),
            None,
            "pip has no knob"
        );
        assert_eq!(
            value_for(Trigger::AfterHang, &UV, &facts(), None, false).map(|a| a.value),
            Some("1".into())
        );
        assert_eq!(
            value_for(Trigger::AfterHang, &UV, &facts(), Some(1), false),
            None,
            "already 1"
        );
        assert_eq!(
            value_for(Trigger::AfterResource, &UV, &facts(), None, false).map(|a| a.value),
            Some("4".into())
        );
        assert_eq!(
            value_for(Trigger::AfterResource, &UV, &facts(), Some(4), false).map(|a| a.value),
            Some("2".into())
        );
        let tight = Facts {
            process_limit: Some(300),
            user_tasks: Some(280),
            ..facts()
        };
        assert_eq!(
            value_for(Trigger::LowProcessLimit, &UV, &tight, None, false).map(|a| a.value),
            Some("4".into())
        );
        let very_tight = Facts {
            process_limit: Some(300),
            user_tasks: Some(299),
            ..facts()
        };
        assert_eq!(
            value_for(Trigger::LowProcessLimit, &UV, &very_tight, None, false).map(|a| a.value),
            Some("1".into())
        );
        let roomy = Facts {
            process_limit: Some(4096),
            user_tasks: Some(100),
            ..facts()
        };
        assert_eq!(
            value_for(Trigger::LowProcessLimit, &UV, &roomy, None, false),
            None
        );
    }
}
