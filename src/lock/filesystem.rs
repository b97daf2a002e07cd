//! Filesystem detection by statfs magic: which filesystems are shared between nodes, where a
//! flock is only as strong as the mount's lock support (R12).

use std::path::Path;

use crate::sys;

/// What steady knows about a filesystem type, by statfs magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filesystem {
    pub name: &'static str,
    /// Shared between nodes: flock there is only as strong as the mount's lock support.
    pub network: bool,
}

/// Classifies a statfs magic (values from linux/magic.h and coreutils' list of remote
/// filesystems); `None` for one steady does not know.
pub fn classify_filesystem(magic: u32) -> Option<Filesystem> {
    let (name, network) = match magic {
        0x6969 => ("NFS", true),
        0x517B | 0xFF53_4D42 | 0xFE53_4D42 => ("SMB/CIFS", true),
        0x00C3_6400 => ("CephFS", true),
        0x6573_5546 => ("a FUSE filesystem", true),
        0x5346_414F | 0x6B41_4653 => ("AFS", true),
        0x0102_1997 => ("9P", true),
        0x4750_4653 => ("GPFS", true),
        0x0BD0_0BD0 => ("Lustre", true),
        0x0116_1970 => ("GFS2", true),
        0x1983_0326 => ("BeeGFS", true),
        0x7461_636F => ("OCFS2", true),
        0xEF53 => ("ext2/3/4", false),
        0x5846_5342 => ("XFS", false),
        0x9123_683E => ("Btrfs", false),
        0x0102_1994 => ("tmpfs", false),
        0x794C_7630 => ("overlayfs", false),
        0x2FC1_2FC1 => ("ZFS", false),
        0xF2F5_2010 => ("F2FS", false),
        0x8584_58F6 => ("ramfs", false),
        0xCA45_1A4E => ("bcachefs", false),
        0x3153_464A => ("JFS", false),
        0x4D44 => ("FAT", false),
        0x7366_746E | 0x5346_544E => ("NTFS", false),
        _ => return None,
    };
    Some(Filesystem { name, network })
}

/// A network filesystem under `path`, by statfs magic.
pub fn network_filesystem(path: &Path) -> Option<&'static str> {
    let magic = sys::filesystem_magic(path)? as u32;
    classify_filesystem(magic)
        .filter(|f| f.network)
        .map(|f| f.name)
}

/// How strong a lock on `path` is, for `-v` (R12).
pub(super) fn strength(path: &Path) -> String {
    let Some(magic) = sys::filesystem_magic(path) else {
        return format!(
            "cannot tell the filesystem of `{}`; assuming local flock",
            path.display()
        );
    };
    match classify_filesystem(magic as u32) {
        Some(f) if f.network => format!(
            "`{}` is on {}: the lock is only as strong as that mount's lock support \
             (`nolock` or `local_lock` make it node-local)",
            path.display(),
            f.name
        ),
        Some(f) => format!(
            "`{}` is on {}, a local filesystem: the kernel's flock is exact there",
            path.display(),
            f.name
        ),
        None => format!(
            "`{}` is on a filesystem steady does not know (magic {:#x}); assuming local flock",
            path.display(),
            magic
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_filesystems_are_recognised() {
        let nfs = classify_filesystem(0x6969).unwrap();
        assert_eq!(nfs.name, "NFS");
        assert!(nfs.network);
        for magic in [0xFF53_4D42, 0x4750_4653, 0x0BD0_0BD0, 0x00C3_6400] {
            assert!(classify_filesystem(magic).unwrap().network, "{magic:#x}");
        }
        assert!(!classify_filesystem(0xEF53).unwrap().network);
        assert!(!classify_filesystem(0x0102_1994).unwrap().network);
        assert_eq!(classify_filesystem(0x1234_5678), None);
    }
}
