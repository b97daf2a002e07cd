//! The vocabulary of an installer's failure knowledge: a signature (a text in the output and the
//! failure kind it means, with how strong that evidence is), where a message names the broken
//! package, and how package names are spelled.
//!
//! A signature's text is matched against one line of output at a time. It is a plain substring,
//! except that `…` stands for any run of characters on the same line (`failed to lock …(os
//! error 524)`), and `any_case()` makes ASCII letters match in either case, for messages an
//! installer has spelled both ways over its versions (`Failed to unpack` / `failed to unpack`).
//! Nothing else is special: no regex, so a row reads as the messages it quotes.

use crate::failure::Failure;

/// How much a signature's line says about the cause when others match too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// An outer line that only says what was being done (`Failed to extract archive`, `could
    /// not compile`): it decides only when nothing names the inner cause.
    Wrapper,
    /// A message that names a cause.
    Plain,
    /// A cause that explains every other line after it: the disk is full, the kernel killed the
    /// process for memory, the JavaScript heap is exhausted.
    Decisive,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Wrapper => "wrapper",
            Level::Plain => "plain",
            Level::Decisive => "decisive",
        }
    }
}

/// A text that, found in a failed attempt's output, says which class it is.
#[derive(Debug, Clone, Copy)]
pub struct Signature {
    pub failure: Failure,
    pub text: &'static str,
    pub level: Level,
    pub any_case: bool,
    /// The installer's own repair for what this message reports, run instead of a cache clean
    /// (`dpkg --configure -a` after apt's "dpkg was interrupted"); empty for none.
    pub repair: &'static [&'static str],
}

pub const fn sig(failure: Failure, text: &'static str) -> Signature {
    Signature {
        failure,
        text,
        level: Level::Plain,
        any_case: false,
        repair: &[],
    }
}

impl Signature {
    /// An outer line that loses to any line naming a cause.
    pub const fn wrapper(self) -> Signature {
        Signature {
            level: Level::Wrapper,
            ..self
        }
    }

    /// A cause that wins over every plain line.
    pub const fn decisive(self) -> Signature {
        Signature {
            level: Level::Decisive,
            ..self
        }
    }

    /// The command that repairs what the message reports, which the message itself names.
    pub const fn repair(self, argv: &'static [&'static str]) -> Signature {
        Signature {
            repair: argv,
            ..self
        }
    }

    /// Matches ASCII letters in either case.
    pub const fn any_case(self) -> Signature {
        Signature {
            any_case: true,
            ..self
        }
    }

    /// Whether `line` holds this signature: every `…`-separated piece, in order.
    pub fn matches(&self, line: &str) -> bool {
        let hay = line.as_bytes();
        let mut at = 0;
        for piece in self.text.split('…') {
            match find(&hay[at..], piece.as_bytes(), self.any_case) {
                Some(i) => at += i + piece.len(),
                None => return false,
            }
        }
        true
    }
}

fn find(hay: &[u8], needle: &[u8], any_case: bool) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| {
        if any_case {
            w.eq_ignore_ascii_case(needle)
        } else {
            w == needle
        }
    })
}

/// Where a message names a package: the name starts right after `after` and ends at the first
/// of `until`.
#[derive(Debug, Clone, Copy)]
pub struct PackageHint {
    pub after: &'static str,
    pub until: &'static [char],
}

/// PEP 503 normalization: the name uv and pip accept for a targeted clean.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = if matches!(c, '_' | '.') {
            '-'
        } else {
            c.to_ascii_lowercase()
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_match_in_order_on_one_line() {
        let s = sig(Failure::Unknown, "failed to lock …(os error 524)");
        assert!(
            s.matches("Caused by: failed to lock `/c/.lock`: Unknown error 524 (os error 524)")
        );
        assert!(
            !s.matches("(os error 524) failed to lock `/c/.lock`"),
            "order"
        );
        assert!(!s.matches("failed to lock `/c/.lock`: (os error 5240"));
        let plain = sig(Failure::Unknown, "ENOSPC");
        assert!(plain.matches("Errno::ENOSPC: No space"));
        assert!(!plain.matches("enospc"), "case kept unless any_case");
        let folded = sig(Failure::Unknown, "failed to unpack package").any_case();
        assert!(folded.matches("  Failed to unpack package `x v1`"));
        assert!(sig(Failure::Unknown, "héllo…wörld").matches("héllo, wörld"));
    }
}
