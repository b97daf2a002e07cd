//! The kinds of failure an attempt can have. Installers' signatures name them, recovery decides
//! by them, the report and the messages print them; so they sit below all three.

/// What kind of failure an attempt had; decides what steady does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Retrying cannot help: resolution error, bad arguments, package not found.
    Deterministic,
    /// A cache entry is broken: clean it (or the cache) and retry.
    Corruption,
    /// The network or the index failed: retry, no clean.
    Network,
    /// Out of threads, processes or file descriptors: retry with lower concurrency.
    Resource,
    /// The disk is full: neither a retry nor a clean of someone's cache is the fix.
    DiskFull,
    /// The installer's own lock wait timed out: retry.
    InstallerLock,
    /// The cache's filesystem cannot hold the installer's lock (uv's flock on NFS or Cray DVS,
    /// `os error 524`; micromamba's fcntl lock answering EIO): retrying cannot help, moving
    /// the cache to a local disk does. Stop and say so.
    LockUnsupported,
    /// Killed by the watchdog (timeout or stall): retry with the hang mitigation.
    Hang,
    /// Stopped by someone (SIGINT, SIGTERM, SIGHUP, SIGQUIT, or steady's own deadline).
    Stopped,
    /// The command could not be run at all.
    NotRunnable,
    /// Died of another signal with nothing in the output to say why.
    Signal,
    Unknown,
}

impl Failure {
    pub fn name(self) -> &'static str {
        match self {
            Failure::Deterministic => "deterministic",
            Failure::Corruption => "cache corruption",
            Failure::Network => "network",
            Failure::Resource => "resource exhaustion",
            Failure::DiskFull => "disk full",
            Failure::InstallerLock => "installer lock timeout",
            Failure::LockUnsupported => "lock unsupported",
            Failure::Hang => "hang",
            Failure::Stopped => "stopped",
            Failure::NotRunnable => "not runnable",
            Failure::Signal => "signal",
            Failure::Unknown => "unknown",
        }
    }

    /// When several signatures match, the strongest evidence wins: a thread-pool panic explains
    /// everything after it, and pip's "No matching distribution" after network retries is a
    /// network failure, not a typo.
    pub fn weight(self) -> u8 {
        match self {
            Failure::Resource | Failure::DiskFull => 6,
            Failure::Corruption | Failure::LockUnsupported => 5,
            Failure::InstallerLock => 4,
            Failure::Network => 3,
            Failure::Deterministic => 2,
            _ => 0,
        }
    }
}
