//! The handles a [`FaultFs`](super::FaultFs) gives out: writers bound to an inode and a
//! generation, readers holding a byte snapshot (and the fault gate of their reads), and lock
//! guards holding a token.
//!
//! A writer whose generation is older than the file system's (a crash happened since it was
//! created) is dead: every call fails and changes nothing. A lock guard releases its lock
//! only if its token still holds it, so a guard from before a crash cannot release a lock
//! taken after it.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};

use super::state::{Inode, InodeId, State};
use super::{FaultKind, FaultOp};
use crate::vfs::{FileLock, RandomAccessFile, WritableFile};
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
    /// The state, locked, after checking that this handle is alive; `check_crash` also fails
    /// once the crash point is reached (ops with a fault gate check it there).
    fn live_state(&self, io_name: &'static str, check_crash: bool) -> Result<MutexGuard<'_, State>> {
        let st = self.state.lock();
        if st.generation != self.generation {
            let e = io::Error::other("file handle invalidated by a simulated crash");
            return Err(Error::io(io_name, &self.path, e));
        }
        if !st.inodes.contains_key(&self.inode) {
            // Unreachable while the invariants hold: a live writer keeps its inode.
            return Err(Error::io(io_name, &self.path, io::Error::other("inode vanished")));
        }
        if check_crash {
            st.check_not_crashed(io_name, &self.path)?;
        }
        Ok(st)
    }
}

/// This handle's inode in `st` (checked to exist by `live_state`).
fn inode<'a>(st: &'a mut State, id: InodeId, w: &FaultWritable) -> Result<&'a mut Inode> {
    st.inodes.get_mut(&id).ok_or_else(|| Error::io("write", &w.path, io::Error::other("inode vanished")))
}

impl WritableFile for FaultWritable {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        let op = FaultOp::Append;
        let mut st = self.live_state(op.io_name(), false)?;
        match st.gate(op, &self.path)? {
            None => inode(&mut st, self.inode, self)?.append(data),
            Some(FaultKind::BitFlip) => {
                let bit = st.draw(data.len() as u64 * 8);
                let f = inode(&mut st, self.inode, self)?;
                let at = f.len();
                f.append(data);
                if !data.is_empty() {
                    let byte = usize::try_from(at + bit / 8).unwrap_or(usize::MAX);
                    f.xor_byte(byte, 1 << (bit % 8));
                }
            }
            Some(FaultKind::ShortWrite) => {
                let keep = usize::try_from(st.draw(data.len() as u64)).unwrap_or(0);
                inode(&mut st, self.inode, self)?.append(data.get(..keep).unwrap_or_default());
                return Err(Error::io(op.io_name(), &self.path, FaultKind::ShortWrite.io_error()));
            }
            Some(kind) => return Err(Error::io(op.io_name(), &self.path, kind.io_error())),
        }
        st.done(op);
        drop(st);
        self.len += data.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        // Appends reach the shared inode at once; flush only reports a dead handle.
        self.live_state("flush", true).map(drop)
    }

    fn sync(&mut self) -> Result<()> {
        let op = FaultOp::Sync;
        let mut st = self.live_state(op.io_name(), false)?;
        match st.gate(op, &self.path)? {
            None => inode(&mut st, self.inode, self)?.sync(),
            Some(FaultKind::SyncDropsUnsynced) => {
                inode(&mut st, self.inode, self)?.cut_to_synced();
                return Err(Error::io(op.io_name(), &self.path, FaultKind::SyncDropsUnsynced.io_error()));
            }
            Some(kind) => return Err(Error::io(op.io_name(), &self.path, kind.io_error())),
        }
        st.done(op);
        Ok(())
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

/// A file opened by `FaultFs::open`: a snapshot of its bytes at open time. Its reads pass
/// the [`FaultOp::Read`] gate (whatever crashes happened since) and may fail or come back
/// with a flipped bit; the snapshot itself never changes.
pub(super) struct FaultReadable {
    pub(super) state: Arc<Mutex<State>>,
    pub(super) path: PathBuf,
    pub(super) data: Bytes,
}

impl RandomAccessFile for FaultReadable {
    fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        let op = FaultOp::Read;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let range = match start.checked_add(len) {
            Some(end) if end <= self.data.len() => start..end,
            _ => {
                let e = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("read of {len} bytes at {offset} past end of {}-byte file", self.data.len()),
                );
                return Err(Error::io(op.io_name(), &self.path, e));
            }
        };
        let mut st = self.state.lock();
        let out = match st.gate(op, &self.path)? {
            None => self.data.slice(range),
            Some(FaultKind::BitFlip) => {
                let mut copy = self.data[range].to_vec();
                let bit = st.draw(len as u64 * 8);
                if let Some(b) = usize::try_from(bit / 8).ok().and_then(|i| copy.get_mut(i)) {
                    *b ^= 1 << (bit % 8);
                }
                Bytes::from(copy)
            }
            Some(kind) => return Err(Error::io(op.io_name(), &self.path, kind.io_error())),
        };
        st.done(op);
        Ok(out)
    }

    fn len(&self) -> u64 {
        self.data.len() as u64
    }
}

impl fmt::Debug for FaultReadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultReadable").field("path", &self.path).field("len", &self.data.len()).finish()
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
