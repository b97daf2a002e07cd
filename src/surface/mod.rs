//! What the user touches: the command line and the subcommands that are not a wrapped run
//! (`init`, `completions`, `doctor`, `status`). Everything here calls down into `run`, `lock`,
//! `recovery` and `installer`; nothing below imports it.

pub mod cli;
pub mod completions;
pub mod doctor;
pub mod explain;
pub mod init;
pub mod settings;
pub mod status;
pub mod usage;
