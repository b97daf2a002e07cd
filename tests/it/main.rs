//! The one integration-test binary. Each module drives the real `steady` binary against real
//! processes (and real uv and pip where installed); `common` is the shared harness.

mod common;
/// The run pipeline: exit codes, serialization, retry and clean, real uv and pip, exec.
mod run;
