//! The one integration-test binary. Each module drives the real `steady` binary against real
//! processes (and real uv and pip where installed); `common` is the shared harness.

mod common;
/// The run pipeline: exit codes, serialization, retry and clean, real uv and pip, exec.
mod run;
/// Recovery: classification, targeted cleans, cache checks, mitigations, report, doctor.
mod recover;
/// The locks: scope, fallback chain, lock-file safety, errno handling, waiting, nesting,
/// shared mode, `--lock` ordering and `steady status` (requirements R1-R12).
mod lock;
/// `steady init`: the scripts in real bash, zsh and fish, where each wrapped call really went.
mod shell;
/// The committed completion scripts: fresh against `steady completions`, and loading in their
/// shells.
mod completions;
/// The watchdog: tree kill, escapees, stall detection, deadline, signals, PID 1, terminals,
/// byte-exact output, bounded memory, one thread, process limits (requirements R13-R20).
mod watchdog;
