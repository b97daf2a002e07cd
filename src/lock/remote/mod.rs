//! Locks held by a server rather than the kernel of this machine, for a cache that several
//! machines share. Each backend implements `lock::Remote`; `lock::acquire` takes it after the
//! local locks, so processes on one machine queue locally first.

pub mod postgres;
