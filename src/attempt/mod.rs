//! One attempt: spawn the command, pass its output through unchanged while keeping a bounded
//! tail, and watch it with a single-threaded loop (`poll` on the output, steady's own stdout and
//! stderr, and the signal pipe) until it ends, its time is up, it stalls, or steady is told to
//! stop. A stopped attempt gets TERM, then KILL after the grace, and no process of its tree
//! outlives it. No thread is ever started, so every child is forked from a single-threaded
//! process (a fork from a multi-threaded one can deadlock under qemu-user).
//!
//! Process groups: in CI, Docker and scripts the command gets its own process group, so one
//! `killpg` reaches it all and signals steady receives are forwarded to that group. When a
//! developer runs steady in the foreground of a terminal, the command stays in steady's group
//! instead: it keeps the terminal (prompts read the keyboard, Ctrl-C and Ctrl-Z reach it as
//! without steady), and the subreaper tree walk still finds every process to kill. The leader
//! is reaped only after its group was signalled for the last time, so its pid (the group id)
//! cannot have been reused by an unrelated process.
//!
//! Output: to a pipe or file it is passed on byte for byte, each stream in order; once a stream
//! has printed a lot, its bytes move by `splice` without passing through steady (see
//! `ZeroCopy`). When steady's stdout or stderr is a terminal, the command writes to a
//! pseudo-terminal instead (see `pty`), so it still sees a terminal while steady sees its
//! output. steady writes to its own stdout and stderr only as far as they take it without
//! blocking, and takes more from the command only when that is written, so a reader that
//! stops reading holds the command back (as it would without steady) but never freezes the
//! watchdog, and memory stays bounded.

pub mod cgroup;
pub mod input;
mod outcome;
pub mod progress;
pub mod pty;
pub mod relay;
mod spawn;
mod stall;
mod stream;
pub mod tree;
mod watch;

pub use outcome::{
    AttemptResult, AttemptSpec, Awaited, Ending, Hooks, Output, Recorder, StopReason, TAIL_BYTES,
    Watcher,
};
pub use spawn::{run, run_helper, run_helper_watched, run_watched};
