//! The public vocabulary of [`FaultFs`](super::FaultFs): which operations can fail
//! ([`FaultOp`]), how ([`FaultKind`]) and what a crash does to unsynced bytes ([`CrashMode`]).

use std::io;

/// A mutating operation that faults and crash points apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultOp {
    /// `FileSystem::create`.
    Create,
    /// `WritableFile::append`.
    Append,
    /// `WritableFile::sync`.
    Sync,
    /// `FileSystem::rename`.
    Rename,
    /// `FileSystem::remove`.
    Remove,
    /// `FileSystem::sync_dir`.
    SyncDir,
    /// `FileSystem::create_dir_all`.
    CreateDir,
}

impl FaultOp {
    /// Every operation, in declaration order.
    pub const ALL: [FaultOp; 7] = [
        FaultOp::Create,
        FaultOp::Append,
        FaultOp::Sync,
        FaultOp::Rename,
        FaultOp::Remove,
        FaultOp::SyncDir,
        FaultOp::CreateDir,
    ];

    pub(super) fn index(self) -> usize {
        self as usize
    }

    /// The operation name carried by [`crate::Error::Io`] (the same names [`crate::vfs::StdFs`] uses).
    pub(super) fn io_name(self) -> &'static str {
        match self {
            FaultOp::Create => "create",
            FaultOp::Append => "write",
            FaultOp::Sync => "fsync",
            FaultOp::Rename => "rename",
            FaultOp::Remove => "remove",
            FaultOp::SyncDir => "fsync dir",
            FaultOp::CreateDir => "mkdir",
        }
    }
}

/// The error an injected fault returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// `EIO` (raw OS error 5).
    Eio,
    /// `ENOSPC` (raw OS error 28).
    Enospc,
}

impl FaultKind {
    /// The raw OS error number (Linux numbering).
    pub fn errno(self) -> i32 {
        match self {
            FaultKind::Eio => 5,
            FaultKind::Enospc => 28,
        }
    }

    pub(super) fn io_error(self) -> io::Error {
        io::Error::from_raw_os_error(self.errno())
    }
}

/// What happens to the unsynced tail of each file in a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrashMode {
    /// Every file is cut back to its synced length.
    DropUnsynced,
    /// Every file keeps a prefix of its unsynced tail, from none to all of it, chosen by a
    /// hash of `seed` and the file's path (so the same seed gives the same image).
    TearUnsynced {
        /// Seed of the per-file choice.
        seed: u64,
    },
}
