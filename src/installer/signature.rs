//! The vocabulary of an installer's failure knowledge: a signature (a text in the output and the
//! failure kind it means), where a message names the broken package, and how package names are
//! spelled.

use crate::failure::Failure;

/// A text that, found in a failed attempt's output, says which class it is.
#[derive(Debug, Clone, Copy)]
pub struct Signature {
    pub failure: Failure,
    pub text: &'static str,
}

pub const fn sig(failure: Failure, text: &'static str) -> Signature {
    Signature { failure, text }
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
