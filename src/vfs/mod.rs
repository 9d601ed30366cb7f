//! The file-system seam: every byte kho reads or writes goes through [`FileSystem`].
//!
//! [`StdFs`] is the real operating-system implementation. `FaultFs` (in `fault/`) is an
//! in-memory implementation for tests that remembers what was synced, can simulate a crash
//! (dropping or tearing unsynced file data and unsynced directory entries) and can inject
//! faults on chosen operations: I/O errors on writes, syncs, namespace changes and reads,
//! short writes, fsyncs that drop the unsynced pages, and bit flips on write or read.
//!
//! Contract every implementation keeps (see `docs/durability.md`):
//! - `WritableFile::append` makes bytes visible to readers of the same file system but not
//!   durable; `WritableFile::sync` makes every appended byte durable.
//! - A newly created, renamed or removed directory entry is durable only after
//!   `FileSystem::sync_dir` on its parent directory.
//! - `rename` atomically replaces the target.
//! - Files opened with `open` are immutable while open (kho never rewrites a file in place,
//!   and `create` refuses an existing path).

mod std_fs;

#[cfg(any(test, feature = "testing"))]
mod fault;

#[cfg(any(test, feature = "testing"))]
pub use fault::{CrashMode, FaultFs, FaultKind, FaultOp, FiredFault};
pub use std_fs::StdFs;

use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::Result;

/// A file opened for appending. Dropping it without `sync` leaves the data not durable.
pub trait WritableFile: Send + Sync {
    /// Appends `data` to the end of the file.
    fn append(&mut self, data: &[u8]) -> Result<()>;
    /// Hands buffered bytes to the operating system (they survive a process crash but not a
    /// power loss).
    fn flush(&mut self) -> Result<()>;
    /// Makes every appended byte durable (flush + fdatasync).
    fn sync(&mut self) -> Result<()>;
    /// Bytes appended so far (the file's length once flushed).
    fn len(&self) -> u64;
    /// True when nothing has been appended.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An immutable file opened for positioned reads.
pub trait RandomAccessFile: Send + Sync + Debug {
    /// Reads exactly `len` bytes at `offset`; an error (never a short read) if the file is
    /// shorter.
    fn read_at(&self, offset: u64, len: usize) -> Result<Bytes>;
    /// The file's length in bytes.
    fn len(&self) -> u64;
    /// True for an empty file.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An immutable file whose bytes are already in memory (a memory map): positioned reads are
/// zero-copy slices.
pub(crate) struct BytesFile {
    pub(crate) path: std::path::PathBuf,
    pub(crate) data: Bytes,
}

impl std::fmt::Debug for BytesFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BytesFile").field("path", &self.path).field("len", &self.data.len()).finish()
    }
}

impl RandomAccessFile for BytesFile {
    fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(len) {
            Some(end) if end <= self.data.len() => Ok(self.data.slice(start..end)),
            _ => Err(crate::Error::io(
                "read",
                &self.path,
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("read of {len} bytes at {offset} past end of {}-byte file", self.data.len()),
                ),
            )),
        }
    }

    fn len(&self) -> u64 {
        self.data.len() as u64
    }
}

/// A held lock on a database directory; dropping it releases the lock.
pub trait FileLock: Send + Sync + Debug {}

/// The file-system operations kho needs. Paths are absolute or relative to the process's
/// working directory; kho only ever passes paths inside the database directory.
pub trait FileSystem: Send + Sync + Debug {
    /// Creates `path`, which must not exist, for appending (`O_CREAT | O_EXCL`): kho never
    /// truncates or overwrites a file, since another process may have it memory-mapped.
    /// Fails with an `AlreadyExists` I/O error if the file exists.
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>>;
    /// Opens an existing file for positioned reads.
    fn open(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>>;
    /// Reads a whole file.
    fn read_all(&self, path: &Path) -> Result<Bytes> {
        let f = self.open(path)?;
        let len = usize::try_from(f.len())
            .map_err(|_| crate::Error::InvalidArgument(format!("{} is too large", path.display())))?;
        f.read_at(0, len)
    }
    /// The length of the file at `path` in bytes.
    fn file_size(&self, path: &Path) -> Result<u64> {
        Ok(self.open(path)?.len())
    }
    /// Makes `to` (which must not exist) a durable copy of the complete, immutable file
    /// `from`: a hard link where the file system allows one (no bytes copied, and the copy
    /// outlives a removal of `from`), a copied and synced file otherwise. The caller syncs
    /// `to`'s directory.
    fn link_or_copy(&self, from: &Path, to: &Path) -> Result<()> {
        let data = self.read_all(from)?;
        let mut w = self.create(to)?;
        w.append(&data)?;
        w.sync()
    }
    /// Atomically renames `from` to `to`, replacing `to` if present.
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> Result<()>;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> Result<()>;
    /// Removes an empty directory (the caller syncs its parent). The default leaves it in
    /// place: a file system that cannot remove directories keeps an empty one, which kho
    /// ignores.
    fn remove_dir(&self, path: &Path) -> Result<()> {
        let _ = path;
        Ok(())
    }
    /// Lists the file names (not paths) in a directory.
    fn list(&self, dir: &Path) -> Result<Vec<String>>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> Result<()>;
    /// True if `path` exists.
    fn exists(&self, path: &Path) -> Result<bool>;
    /// Takes an exclusive lock on `path` (creating it), or fails with [`crate::Error::Busy`].
    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>>;
}

/// A shared handle to a file system.
pub type SharedFs = Arc<dyn FileSystem>;
