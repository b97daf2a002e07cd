//! Clearing a cache: the rules that decide whether a path may be cleared at all, apart from the
//! removal that carries it out.

pub mod remove;
pub mod safety;

pub use safety::{check_cleanable, refused_place};
