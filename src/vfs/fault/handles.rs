//! The handles a [`FaultFs`](super::FaultFs) gives out: writers bound to an inode and a
//! generation, readers holding a byte snapshot, and lock guards holding a token.
//!
//! A writer whose generation is older than the file system's (a crash happened since it was
//! created) is dead: every call fails and changes nothing. A lock guard releases its lock
//! only if its token still holds it, so a guard from before a crash cannot release a lock
//! taken after it.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;

use super::state::{Inode, InodeId, State};
use super::FaultOp;
use crate::vfs::{FileLock, WritableFile};
use crate::{Error, Result};

/// A file opened by `FaultFs::create`.
pub(super) struct FaultWritable {
    pub(super) state: Arc<Mutex<State>>,
    pub(super) path: PathBuf,
    pub(super) inode: InodeId,
    pub(super) generation: u64,
    /// Bytes appended through this handle.
    pub(super) len: u64,
}

impl FaultWritable {
    /// Runs `f` on this handle's inode after checking that the handle is alive and the
    /// crash point is not reached; `op` is the fault gate to pass, if any.
    fn with_inode(&self, io_name: &'static str, op: Option<FaultOp>, f: impl FnOnce(&mut Inode)) -> Result<()> {
        let mut st = self.state.lock();
        if st.generation != self.generation {
            let e = io::Error::other("file handle invalidated by a simulated crash");
            return Err(Error::io(io_name, &self.path, e));
        }
        if !st.inodes.contains_key(&self.inode) {
            // Unreachable while the invariants hold: a live writer keeps its inode.
            return Err(Error::io(io_name, &self.path, io::Error::other("inode vanished")));
        }
        match op {
            Some(op) => st.begin(op, &self.path)?,
            None => st.check_not_crashed(io_name, &self.path)?,
        }
        if let Some(inode) = st.inodes.get_mut(&self.inode) {
            f(inode);
        }
        if let Some(op) = op {
            st.done(op);
        }
        Ok(())
    }
}

impl WritableFile for FaultWritable {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.with_inode(FaultOp::Append.io_name(), Some(FaultOp::Append), |inode| inode.append(data))?;
        self.len += data.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        // Appends reach the shared inode at once; flush only reports a dead handle.
        self.with_inode("flush", None, |_| {})
    }

    fn sync(&mut self) -> Result<()> {
        self.with_inode(FaultOp::Sync.io_name(), Some(FaultOp::Sync), |inode| inode.sync())
    }

    fn len(&self) -> u64 {
        self.len
    }
}

impl Drop for FaultWritable {
    fn drop(&mut self) {
        let mut st = self.state.lock();
        if st.generation == self.generation {
            if let Some(inode) = st.inodes.get_mut(&self.inode) {
                inode.writers = inode.writers.saturating_sub(1);
            }
            st.collect_garbage();
        }
    }
}

impl fmt::Debug for FaultWritable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultWritable")
            .field("path", &self.path)
            .field("inode", &self.inode)
            .field("generation", &self.generation)
            .field("len", &self.len)
            .finish()
    }
}

/// A lock taken by `FaultFs::lock`.
pub(super) struct FaultLock {
    pub(super) state: Arc<Mutex<State>>,
    pub(super) path: PathBuf,
    pub(super) token: u64,
}

impl FileLock for FaultLock {}

impl Drop for FaultLock {
    fn drop(&mut self) {
        self.state.lock().unlock(&self.path, self.token);
    }
}

impl fmt::Debug for FaultLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultLock").field("path", &self.path).field("token", &self.token).finish()
    }
}
