//! The public vocabulary of [`FaultFs`](super::FaultFs): which operations can fail
//! ([`FaultOp`]), how ([`FaultKind`]) and what a crash does to unsynced bytes ([`CrashMode`]).

use std::io;
use std::path::PathBuf;

/// An operation that faults apply to: the mutating ones (which crash points also count) and
/// the read-side ones.
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
    /// `FileSystem::open` (also the first half of `read_all`). Read-side.
    Open,
    /// `RandomAccessFile::read_at` on a file opened from this file system (also the second
    /// half of `read_all`). Read-side.
    Read,
    /// `FileSystem::list`. Read-side.
    List,
    /// `FileSystem::exists`. Read-side.
    Exists,
}

impl FaultOp {
    /// Every operation, in declaration order.
    pub const ALL: [FaultOp; 11] = [
        FaultOp::Create,
        FaultOp::Append,
        FaultOp::Sync,
        FaultOp::Rename,
        FaultOp::Remove,
        FaultOp::SyncDir,
        FaultOp::CreateDir,
        FaultOp::Open,
        FaultOp::Read,
        FaultOp::List,
        FaultOp::Exists,
    ];

    /// The mutating operations: the ones [`FaultFs::mutation_count`](super::FaultFs::mutation_count)
    /// and crash points count.
    pub const MUTATIONS: [FaultOp; 7] = [
        FaultOp::Create,
        FaultOp::Append,
        FaultOp::Sync,
        FaultOp::Rename,
        FaultOp::Remove,
        FaultOp::SyncDir,
        FaultOp::CreateDir,
    ];

    /// The read-side operations: they never change the file system, and keep working after
    /// a crash point is reached.
    pub const READS: [FaultOp; 4] = [FaultOp::Open, FaultOp::Read, FaultOp::List, FaultOp::Exists];

    /// True for an operation that changes the file system.
    pub fn is_mutation(self) -> bool {
        self.index() < FaultOp::MUTATIONS.len()
    }

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
            FaultOp::Open => "open",
            FaultOp::Read => "read",
            FaultOp::List => "readdir",
            FaultOp::Exists => "stat",
        }
    }
}

/// What an injected fault does. The error kinds ([`Eio`](Self::Eio),
/// [`Enospc`](Self::Enospc)) apply to every operation; the others only to the operations
/// named in their docs, and on any other operation they act as `Eio`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Fails with `EIO` (raw OS error 5), changing nothing.
    Eio,
    /// Fails with `ENOSPC` (raw OS error 28), changing nothing.
    Enospc,
    /// [`FaultOp::Append`] only: a seeded random prefix of the data (possibly empty, never all
    /// of it) is appended — visible to readers, unsynced — and then the call fails with `EIO`
    /// (a `write` that wrote some bytes and then hit an error). The writer's `len` does not
    /// count the prefix, as `StdFs` does not count a failed append.
    ShortWrite,
    /// [`FaultOp::Sync`] only (Linux "fsyncgate"): the sync fails with `EIO` *and* the file's
    /// unsynced bytes are discarded, from the live data too (the file is cut to its synced
    /// length, as a kernel that marked the dirty pages clean and then evicted them). A later
    /// successful sync does not bring them back; later appends land after the cut.
    SyncDropsUnsynced,
    /// [`FaultOp::Append`]: the append succeeds but one seeded random bit of the stored bytes
    /// is flipped (what the file holds differs from what was written). [`FaultOp::Read`]:
    /// `read_at` succeeds but returns a copy with one seeded random bit flipped; the file is
    /// unchanged. An append or read of zero bytes is not changed (and still consumes the
    /// fault).
    BitFlip,
}

impl FaultKind {
    /// The raw OS error number (Linux numbering) of the error the fault returns: `ENOSPC` for
    /// [`Enospc`](Self::Enospc), `EIO` for every other kind (a [`BitFlip`](Self::BitFlip)
    /// returns no error where it applies).
    pub fn errno(self) -> i32 {
        match self {
            FaultKind::Enospc => 28,
            FaultKind::Eio | FaultKind::ShortWrite | FaultKind::SyncDropsUnsynced | FaultKind::BitFlip => 5,
        }
    }

    pub(super) fn io_error(self) -> io::Error {
        io::Error::from_raw_os_error(self.errno())
    }
}

/// A fault that fired (see [`FaultFs::last_fault`](super::FaultFs::last_fault)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredFault {
    /// The operation it hit.
    pub op: FaultOp,
    /// What it did.
    pub kind: FaultKind,
    /// The file or directory of the operation.
    pub path: PathBuf,
    /// The operation's number among the gated calls of every kind (the numbering of
    /// [`FaultFs::inject_any`](super::FaultFs::inject_any)), counting from the file system's
    /// creation.
    pub any_index: u64,
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
