//! Stall detection: [`StallWatch`] samples a silent tree's CPU time and I/O and says when
//! the attempt has stalled.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::{progress, tree};
use crate::sys;

/// How often, at most, the stall detector samples a silent tree (an eighth of the window when
/// that is shorter): a stall is found within this much after the window.
pub(super) const STALL_SAMPLE: Duration = Duration::from_secs(2);

/// A tree using less than this share of one core (in percent) over the whole stall window,
/// while printing nothing, is stalled. Not zero: a real qemu-user hang with pipes attached
/// still gained a clock tick every few seconds.
pub(super) const STALL_CPU_PERCENT: u64 = 2;

/// Decides when an attempt has stalled: for the whole window, nothing read from it, its
/// tree's CPU time below the threshold, and no byte moved by any of its processes (read or
/// written, sockets included). The tree is looked at only while its output is silent: a
/// command that prints needs no sampling at all. Each sample walks the tree (one `stat` per
/// process) and reads what each process read and wrote (one `io` per process), the latter
/// only when the CPU alone does not already keep the window busy; the tree's sockets are
/// asked last, only when everything else was still for the whole window.
pub(super) struct StallWatch {
    window: Duration,
    threshold: u64,
    every: Duration,
    pub(super) next_sample: Instant,
    last_sample: Instant,
    pub(super) last_output: Instant,
    /// When a sample last saw a byte moved.
    last_io: Instant,
    /// Bytes read and written by each live process `(pid, start time)` at the sample that
    /// last read them; empty when the next reading is a new baseline.
    io: HashMap<(i32, u64), u64>,
    /// The tree's CPU ticks at the last sample; `None` when the next is a new baseline.
    last_raw: Option<u64>,
    /// CPU ticks seen in the samples so far; only grows.
    total: u64,
    /// (when, total), oldest first, reaching back to just before the window.
    samples: VecDeque<(Instant, u64)>,
}

impl StallWatch {
    pub(super) fn new(window: Duration, now: Instant) -> StallWatch {
        let per_window = window.as_millis() as u64 * sys::clock_ticks() * STALL_CPU_PERCENT;
        let every = STALL_SAMPLE.min(window / 8).max(Duration::from_millis(50));
        StallWatch {
            window,
            threshold: (per_window / 100_000).max(2),
            every,
            next_sample: now + every,
            last_sample: now,
            last_output: now,
            last_io: now,
            io: HashMap::new(),
            last_raw: None,
            total: 0,
            samples: VecDeque::new(),
        }
    }

    /// Samples the tree when a sample is due; true when it has stalled.
    pub(super) fn check(&mut self, now: Instant) -> bool {
        if now < self.next_sample {
            return false;
        }
        self.next_sample = now + self.every;
        // A gap far longer than the sampling interval means steady itself was stopped
        // (Ctrl-Z) or the machine slept: that silence was not the command's.
        if now.duration_since(self.last_sample) > self.every * 5 {
            self.last_output = now;
        }
        self.last_sample = now;
        if now.duration_since(self.last_output) < self.every {
            // It prints: no need to look. Sampling starts afresh once it is silent.
            self.samples.clear();
            self.io.clear();
            self.last_raw = None;
            return false;
        }
        let (raw, live) = tree::activity();
        // A reading lower than the last (a process reaped between two reads of /proc) is
        // not negative work.
        let busy = self.last_raw.map_or(0, |last| raw.saturating_sub(last));
        self.last_raw = Some(raw);
        self.total += busy;
        self.samples.push_back((now, self.total));
        if busy >= self.threshold {
            // This interval alone keeps the window busy for a whole window more, whatever
            // was read or written: so that is not read.
            self.io.clear();
            self.last_io = now;
        } else {
            self.read_io(now, &live);
        }
        let Some(start) = now.checked_sub(self.window) else {
            return false;
        };
        while self.samples.len() >= 2 && self.samples[1].0 <= start {
            self.samples.pop_front();
        }
        let (first_at, first_total) = self.samples[0];
        let still = first_at <= start
            && self.last_output <= start
            && self.last_io <= start
            && self.total - first_total < self.threshold;
        if !still {
            return false;
        }
        // Last, and only now: the sockets, whose `recv` and `send` the counters above miss.
        let pids: Vec<i32> = live.iter().map(|(pid, _)| *pid).collect();
        if let Some(at) = progress::last_socket_traffic(&pids).and_then(|ago| now.checked_sub(ago))
            && at > start
        {
            self.last_io = self.last_io.max(at);
            return false;
        }
        true
    }

    /// Reads each live process's bytes read and written; any growth since the last reading
    /// is progress. A process new since then is only a baseline: what it moved shows in its
    /// parent's counters when it is reaped, and in its own from the next sample on.
    pub(super) fn read_io(&mut self, now: Instant, live: &[(i32, u64)]) {
        let mut moved = false;
        let mut next = HashMap::with_capacity(live.len());
        for &id in live {
            let Some(bytes) = progress::io_bytes(id.0) else {
                continue;
            };
            moved |= self.io.get(&id).is_some_and(|before| bytes > *before);
            next.insert(id, bytes);
        }
        if moved {
            self.last_io = now;
        }
        self.io = next;
    }
}
