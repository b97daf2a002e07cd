//! The watch loop: [`Watch`] looks (ended, time up, stalled, lock lost, lock wait), waits in
//! `poll` moving output and input, acts on signals, and at the end stops the tree and collects
//! the [`AttemptResult`].

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;

use super::cgroup::Cgroup;
use super::input::Feed;
use super::outcome::{AttemptResult, AttemptSpec, Ending, Hooks, StopReason};
use super::pty::Pty;
use super::stall::StallWatch;
use super::stream::{
    Role, Stream, flush_all, hand_over_leftover_output, say_splice, timeout_until,
};
use super::tree;
use crate::sys::{self, Arrived, Ended, SignalPipe};

/// After the command exits, how long steady keeps copying output that its leftover children
/// still write to the inherited pipes.
pub(super) const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);

/// How often a running attempt's processes are recorded.
pub(super) const RECORD_EVERY: Duration = Duration::from_millis(500);

/// The installer said it waits for a lock of its own ([`AttemptSpec::lock_wait`]).
#[derive(Debug, Clone)]
pub(super) struct LockWait {
    /// When it said so.
    since: Instant,
    /// When its tree was last seen waiting on a lock held outside it.
    seen: Option<Instant>,
    next_look: Instant,
}

/// How long after the installer said it waits steady looks for the waiting process before it
/// takes the words back (the installer may not use a kernel lock steady can see).
pub(super) const LOCK_WAIT_CONFIRM: Duration = Duration::from_secs(5);

/// How often a lock wait is looked at: often at first, to find the waiter before a short
/// stall window ends, then once a second.
pub(super) const LOCK_LOOK_FIRST: Duration = Duration::from_millis(200);
pub(super) const LOCK_LOOK_EVERY: Duration = Duration::from_secs(1);

/// The part of a read that a text split across two reads needs from before it.
pub(super) const TEXT_OVERLAP: usize = 256;

/// One running attempt, watched by a single-threaded loop: [`Watch::look`] decides (ended,
/// time up, stalled, lock lost), [`Watch::wait`] sleeps in `poll` and moves output and input,
/// [`Watch::on_signals`] acts on what steady was sent, and [`Watch::end`] ends the tree and
/// collects the result.
pub(super) struct Watch<'s, 'h> {
    spec: &'s AttemptSpec<'s>,
    hooks: Hooks<'h>,
    signals: &'s SignalPipe,
    started: Instant,
    pid: i32,
    /// The command's own process group, when it has one.
    pgid: Option<i32>,
    /// The attempt's own cgroup, where steady could make one.
    pub(super) cgroup: Option<Cgroup>,
    /// When the watchdog stops the attempt, and why: counted from the command's start.
    limit: Option<(Instant, StopReason)>,
    streams: Vec<Stream>,
    ptys: Vec<Pty>,
    feed: Option<Feed>,
    pub(super) stall: Option<StallWatch>,
    lock_wait: Option<LockWait>,
    /// Who held the lock the installer last waited for.
    lock_holder: Option<String>,
    exit: Option<(Ended, Instant)>,
    stopped: Option<StopReason>,
    interrupted: Option<Arrived>,
    kill_at: Option<Instant>,
    killed: bool,
    check_children: bool,
    watcher_ready: bool,
    next_record: Instant,
}

impl<'s, 'h> Watch<'s, 'h> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        spec: &'s AttemptSpec<'s>,
        hooks: Hooks<'h>,
        signals: &'s SignalPipe,
        pid: i32,
        started: Instant,
        streams: Vec<Stream>,
        ptys: Vec<Pty>,
        feed: Option<Feed>,
    ) -> Self {
        // The timeout starts with the command: a wait for the lock before it is counted by
        // --deadline and --lock-timeout only.
        let spawned = Instant::now();
        let limit = match (spec.timeout, spec.deadline) {
            (Some(t), Some(d)) if d <= spawned + t => Some((d, StopReason::Deadline)),
            (Some(t), _) => Some((spawned + t, StopReason::Timeout)),
            (None, Some(d)) => Some((d, StopReason::Deadline)),
            (None, None) => None,
        };
        Watch {
            spec,
            hooks,
            signals,
            started,
            pid,
            pgid: (!spec.same_group).then_some(pid),
            cgroup: None,
            limit,
            streams,
            ptys,
            feed,
            stall: spec.stall.map(|w| StallWatch::new(w, started)),
            lock_wait: None,
            lock_holder: None,
            exit: None,
            stopped: None,
            interrupted: None,
            kill_at: None,
            killed: false,
            check_children: true,
            watcher_ready: false,
            next_record: spawned,
        }
    }

    /// Neither ended nor being stopped.
    fn running(&self) -> bool {
        self.exit.is_none() && self.stopped.is_none() && self.interrupted.is_none()
    }

    /// The loop: look, wait, act on signals, until the command has exited and its output is
    /// drained.
    pub(super) fn watch(&mut self) {
        while self.look() {
            self.wait();
            self.on_signals();
        }
    }

    /// Checks everything due now; false when the loop is over.
    fn look(&mut self) -> bool {
        // Only after a SIGCHLD or a wake-up that was not output: a command printing fast
        // wakes the loop thousands of times a second, each not worth a syscall more.
        if self.check_children {
            if self.exit.is_none() {
                self.exit = sys::exit_status_keep(self.pid).map(|e| (e, Instant::now()));
            }
            tree::reap_orphans(Some(self.pid));
            self.check_children = false;
        }
        let now = Instant::now();
        if let Some((_, at)) = self.exit {
            let reading = self.streams.iter().any(|s| s.source.is_some());
            if !reading || now >= at + DRAIN_AFTER_EXIT {
                return false;
            }
            // Nobody reads the command's stdin any more.
            self.feed = None;
        }
        if self.running() {
            self.check_lock_wait(now);
        }
        if self.running() {
            self.check_limits(now);
        }
        self.check_watcher(now);
        if let Some(at) = self.kill_at
            && now >= at
            && !self.killed
        {
            tree::freeze_and_kill(self.pgid, self.cgroup.as_ref());
            self.killed = true;
        }
        if self.running() && now >= self.next_record {
            self.next_record = now + RECORD_EVERY;
            if let Some(r) = self.hooks.record.as_deref_mut() {
                r.note(&tree::snapshot());
            }
        }
        true
    }

    /// Time up or stalled: TERM now, KILL after the grace.
    fn check_limits(&mut self, now: Instant) {
        let reason = match self.limit {
            Some((limit, reason)) if now >= limit => Some(reason),
            _ => self
                .stall
                .as_mut()
                .and_then(|s| s.check(now).then_some(StopReason::Stall)),
        };
        if let Some(reason) = reason {
            self.stopped = Some(reason);
            tree::signal_tree(self.pgid, Signal::SIGTERM);
            self.kill_at = Some(now + self.spec.kill_after);
        }
    }

    /// While the installer says it waits for its own lock: whether one of its processes
    /// really waits on a kernel lock held outside the attempt. While it does, the attempt is
    /// waiting, not hung (the stall clock is held), and `--lock-timeout` bounds the wait. A
    /// lock held inside the tree is a deadlock of the tree itself, which stall detection
    /// stops as any other.
    fn check_lock_wait(&mut self, now: Instant) {
        let Some(w) = self.lock_wait.as_mut() else {
            return;
        };
        if now < w.next_look {
            return;
        }
        let Some(find) = self.hooks.awaited else {
            self.lock_wait = None;
            return;
        };
        let tree = tree::descendants();
        let outside = find(&tree).filter(|a| a.holder.is_none_or(|h| !tree.contains(&h)));
        let Some(a) = outside else {
            if w.seen.is_some() || now >= w.since + LOCK_WAIT_CONFIRM {
                // It has the lock now (or never waited on one steady can see): watched
                // as before, its silence counted from now.
                if w.seen.is_some()
                    && let Some(s) = self.stall.as_mut()
                {
                    s.last_output = now;
                }
                self.lock_wait = None;
            } else {
                w.next_look = now + LOCK_LOOK_FIRST;
            }
            return;
        };
        w.next_look = now + LOCK_LOOK_EVERY;
        if w.seen.is_none() {
            let on = a.path.map(|p| format!(" on `{p}`")).unwrap_or_default();
            let limit = match self.spec.lock_wait_limit {
                Some(d) => format!("up to --lock-timeout {}", crate::ui::human(d)),
                None => "as long as it takes (--lock-timeout bounds it)".to_owned(),
            };
            crate::ui::warn(&format!(
                "the command waits for its own lock{on}, held by {} (outside this run): a wait, not a hang; waiting {limit}",
                a.holder_words
            ));
        }
        w.seen = Some(now);
        self.lock_holder = Some(a.holder_words);
        if let Some(s) = self.stall.as_mut() {
            s.last_output = now;
        }
        if let Some(limit) = self.spec.lock_wait_limit
            && now >= w.since + limit
        {
            self.stopped = Some(StopReason::LockWait);
            tree::signal_tree(self.pgid, Signal::SIGTERM);
            self.kill_at = Some(now + self.spec.kill_after);
        }
    }

    /// Whether output just read from stream `i` (its last `n` bytes) says the installer
    /// waits for its own lock.
    fn says_lock_wait(&self, i: usize, n: usize) -> bool {
        if self.spec.lock_wait.is_empty() {
            return false;
        }
        let recent = self.streams[i].recent(n + TEXT_OVERLAP);
        self.spec
            .lock_wait
            .iter()
            .any(|t| recent.windows(t.len()).any(|w| w == t.as_bytes()))
    }

    /// The lock beyond this machine, when its check is due.
    fn check_watcher(&mut self, now: Instant) {
        if !self.running() {
            return;
        }
        let ready = std::mem::take(&mut self.watcher_ready);
        let Some(w) = self.hooks.watcher.as_deref_mut() else {
            return;
        };
        if (ready || w.next_check().is_some_and(|t| now >= t)) && w.check(now).is_err() {
            // No grace: while the command goes on, another machine may already be writing
            // beside it, and a TERM handler would only write more.
            self.stopped = Some(StopReason::LockLost);
            tree::freeze_and_kill(self.pgid, self.cgroup.as_ref());
            self.kill_at = Some(now);
            self.killed = true;
        }
    }

    /// When the loop must look again even if nothing happens.
    fn next_wake(&self, now: Instant) -> PollTimeout {
        let mut wake: Vec<Instant> = Vec::new();
        if self.running() {
            wake.extend(self.limit.map(|(l, _)| l));
            wake.extend(self.stall.as_ref().map(|s| s.next_sample));
            wake.extend(self.lock_wait.as_ref().map(|w| w.next_look));
            wake.extend(self.hooks.watcher.as_deref().and_then(|w| w.next_check()));
            if self.hooks.record.is_some() {
                wake.push(self.next_record);
            }
        }
        if !self.killed {
            wake.extend(self.kill_at);
        }
        wake.extend(self.exit.map(|(_, at)| at + DRAIN_AFTER_EXIT));
        wake.iter()
            .min()
            .map_or(PollTimeout::NONE, |w| timeout_until(now, *w))
    }

    /// Sleeps in `poll` until a signal, output, a writable sink, input for the command, the
    /// watcher's descriptor or the next wake time; then moves what is ready.
    fn wait(&mut self) {
        let timeout = self.next_wake(Instant::now());
        let mut fds = vec![PollFd::new(self.signals.fd(), PollFlags::POLLIN)];
        let watch_fd = self
            .running()
            .then(|| self.hooks.watcher.as_deref().and_then(|w| w.fd()))
            .flatten();
        let has_watch_fd = watch_fd.is_some();
        fds.extend(watch_fd.map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
        let feed_at = fds.len();
        let feed_fd = match (&self.feed, self.hooks.stdin.as_deref()) {
            (Some(f), Some(r)) => f.wants(r),
            _ => None,
        };
        let has_feed_fd = feed_fd.is_some();
        fds.extend(feed_fd.map(|(fd, flags)| PollFd::new(fd, flags)));
        let first_stream = fds.len();
        let mut watched = Vec::new();
        for (i, s) in self.streams.iter().enumerate() {
            if s.wants_read()
                && let Some(fd) = &s.source
            {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                watched.push(i);
            } else if s.wants_write()
                && let Some(sink) = &s.sink
            {
                fds.push(PollFd::new(sink.as_fd(), PollFlags::POLLOUT));
                watched.push(i);
            }
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
        let any = |fd: &PollFd| fd.any().unwrap_or(false);
        self.watcher_ready = has_watch_fd && any(&fds[1]);
        let feed_ready = has_feed_fd && any(&fds[feed_at]);
        if any(&fds[0]) {
            self.signals.drain();
        }
        let ready: Vec<usize> = watched
            .iter()
            .zip(&fds[first_stream..])
            .filter(|(_, fd)| any(fd))
            .map(|(i, _)| *i)
            .collect();
        drop(fds);
        self.check_children |= ready.is_empty() && !feed_ready;
        self.move_output(&ready);
        if let (Some(f), Some(r)) = (self.feed.as_mut(), self.hooks.stdin.as_deref_mut()) {
            f.step(r, feed_ready);
        }
    }

    fn move_output(&mut self, ready: &[usize]) {
        for &i in ready {
            let s = &mut self.streams[i];
            if s.wants_write() {
                s.write();
                continue;
            }
            let n = s.read();
            if n == 0 {
                continue;
            }
            let now = Instant::now();
            if let Some(w) = self.stall.as_mut() {
                w.last_output = now;
            }
            if self.lock_wait.is_none() && self.says_lock_wait(i, n) {
                self.lock_wait = Some(LockWait {
                    since: now,
                    seen: None,
                    next_look: now,
                });
            }
        }
    }

    /// Acts on the signals that arrived: a child ended, the window changed, or steady was
    /// told to stop.
    fn on_signals(&mut self) {
        for arrived in sys::take_signals() {
            match arrived.signal {
                Signal::SIGCHLD => self.check_children = true,
                Signal::SIGWINCH => self.resize(),
                sig if sys::STOP_SIGNALS.contains(&sig) => self.stop_signal(arrived),
                _ => {}
            }
        }
    }

    fn resize(&mut self) {
        let mut changed = false;
        for p in &mut self.ptys {
            changed |= p.sync_size();
        }
        // The pty is nobody's controlling terminal, so the kernel does not tell the command;
        // and in steady's group it may have read the size before steady updated it.
        if changed && self.exit.is_none() {
            match self.pgid {
                Some(pg) => sys::kill_group(pg, Signal::SIGWINCH),
                None => {
                    for p in tree::descendants() {
                        sys::kill(p, Signal::SIGWINCH);
                    }
                }
            }
        }
    }

    fn stop_signal(&mut self, arrived: Arrived) {
        let sig = arrived.signal;
        let again = self.interrupted.is_some();
        self.interrupted = Some(arrived);
        if self.exit.is_none() {
            match self.pgid {
                Some(pg) => sys::kill_group(pg, sig),
                // In steady's group a terminal's signal already reached the command.
                None if arrived.from_process => sys::kill(self.pid, sig),
                None => {}
            }
        }
        // A second stop signal (a second Ctrl-C, a CI runner's TERM after its INT) means: no
        // more grace.
        let now = Instant::now();
        if again {
            self.kill_at = Some(self.kill_at.map_or(now, |k| k.min(now)));
        } else {
            self.kill_at.get_or_insert(now + self.spec.kill_after);
        }
    }

    /// How the attempt ended, from what the loop saw.
    fn ending(&self) -> Ending {
        let (status, _) = self
            .exit
            .expect("the loop ends only after the command exited");
        match (self.interrupted, self.stopped, status) {
            (Some(a), _, ended) => Ending::Interrupted {
                signal: a.signal,
                ended,
            },
            (None, Some(reason), _) => Ending::Stopped(reason),
            (None, None, Ended::Exited(c)) => Ending::Exited(c),
            (None, None, Ended::Signaled(s)) => Ending::Signaled(s),
        }
    }

    /// Ends what is left of the tree (unless the command succeeded: its daemons stay, and
    /// keep their output through a relay), flushes the output and returns the result.
    pub(super) fn end(mut self) -> AttemptResult {
        let ending = self.ending();
        if ending.succeeded() {
            sys::reap(self.pid);
        } else {
            let left = tree::end_all(
                self.signals,
                &tree::TreeKill {
                    pgid: self.pgid,
                    cgroup: self.cgroup.as_ref(),
                    leader: self.pid,
                    termed: self.stopped.is_some(),
                    kill_at: self
                        .kill_at
                        .unwrap_or_else(|| Instant::now() + self.spec.kill_after),
                },
            );
            if left > 0 {
                crate::ui::warn(&format!(
                    "{left} process(es) of the attempt would not die (uninterruptible sleep?)"
                ));
            }
        }
        // Whoever looks next (the back-off, a clean) must also see that steady was told to
        // stop.
        if let Some(a) = self.interrupted {
            sys::repost(a);
        }
        flush_all(&mut self.streams);
        if ending.succeeded() {
            hand_over_leftover_output(&mut self.streams);
        }
        say_splice(&self.streams);
        let mut r = AttemptResult {
            ending,
            duration: self.started.elapsed(),
            stdout_tail: Vec::new(),
            stderr_tail: Vec::new(),
            lock_holder: self.lock_holder.take(),
        };
        for s in self.streams {
            match s.role {
                Role::Stdout => r.stdout_tail = s.into_tail(),
                Role::Stderr | Role::Both => r.stderr_tail = s.into_tail(),
            }
        }
        r
    }
}
