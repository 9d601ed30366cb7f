//! [`NodeDir`]: the layout of one node's directory, on any kho file system (`StdFs`, or
//! `FaultFs` in tests), and the one pointer file that makes a snapshot install atomic.
//!
//! ```text
//! <node>/raft-log/     kho Db: the Raft log (log_store.rs)
//! <node>/SM_CURRENT    which state-machine generation is live: gen: u64 BE | crc32(gen): u32 BE
//! <node>/sm-<gen>/     kho Db + record Store: the state machine of generation `gen`
//! <node>/sm-<gen+1>/   a snapshot being installed (removed at open if SM_CURRENT does not name it)
//! <node>/snap-build/   a checkpoint being packed into a snapshot (removed at open)
//! ```
//!
//! Invariant: `SM_CURRENT` names a complete state machine. An install writes the new
//! generation's files (each synced, then the directory), then replaces `SM_CURRENT` by
//! write-new + fsync + rename + directory fsync: the rename is the commit point. No
//! directory is ever renamed (kho's `FaultFs` renames files only), so the swap works on every
//! kho file system. A missing `SM_CURRENT` means generation 0.

use std::path::{Path, PathBuf};

use kho::vfs::SharedFs;
use kho::Options;

use crate::error::{Error, Result};

const CURRENT_NAME: &str = "SM_CURRENT";
const CURRENT_TMP_NAME: &str = "SM_CURRENT.tmp";

/// One node's directory on a file system.
#[derive(Debug, Clone)]
pub struct NodeDir {
    path: PathBuf,
    fs: SharedFs,
}

impl NodeDir {
    /// The node directory `path` on `fs` (created if missing).
    pub fn new(path: impl Into<PathBuf>, fs: SharedFs) -> Result<NodeDir> {
        let d = NodeDir { path: path.into(), fs };
        d.fs.create_dir_all(&d.path)?;
        Ok(d)
    }

    /// The node directory on the operating system's file system.
    pub fn std(path: impl Into<PathBuf>) -> Result<NodeDir> {
        NodeDir::new(path, std::sync::Arc::new(kho::vfs::StdFs))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file system.
    pub fn fs(&self) -> &SharedFs {
        &self.fs
    }

    /// Options for a kho database of this node (its file system, kho's defaults otherwise).
    pub fn db_options(&self) -> Options {
        Options { fs: self.fs.clone(), ..Options::default() }
    }

    /// The Raft log's database.
    pub fn log_dir(&self) -> PathBuf {
        self.path.join("raft-log")
    }

    /// The state machine of generation `generation`.
    pub fn sm_dir(&self, generation: u64) -> PathBuf {
        self.path.join(format!("sm-{generation:06}"))
    }

    /// Where a snapshot's checkpoint is taken before it is packed.
    pub fn snapshot_build_dir(&self) -> PathBuf {
        self.path.join("snap-build")
    }

    /// The live generation (0 if `SM_CURRENT` was never written).
    pub fn current_generation(&self) -> Result<u64> {
        let p = self.path.join(CURRENT_NAME);
        if !self.fs.exists(&p)? {
            return Ok(0);
        }
        let b = self.fs.read_all(&p)?;
        let (gen, crc) = match (b.get(..8), b.get(8..12), b.len()) {
            (Some(g), Some(c), 12) => (g, c),
            _ => return Err(Error::corrupt(&p, "state-machine pointer of the wrong length")),
        };
        if crc32fast::hash(gen).to_be_bytes() != crc {
            return Err(Error::corrupt(&p, "state-machine pointer checksum mismatch"));
        }
        let mut g = [0u8; 8];
        g.copy_from_slice(gen);
        Ok(u64::from_be_bytes(g))
    }

    /// Makes `generation` the live one, atomically and durably (the install's commit point).
    pub fn set_current_generation(&self, generation: u64) -> Result<()> {
        let tmp = self.path.join(CURRENT_TMP_NAME);
        if self.fs.exists(&tmp)? {
            self.fs.remove(&tmp)?;
        }
        let gen = generation.to_be_bytes();
        let mut buf = gen.to_vec();
        buf.extend_from_slice(&crc32fast::hash(&gen).to_be_bytes());
        let mut f = self.fs.create(&tmp)?;
        f.append(&buf)?;
        f.sync()?;
        drop(f);
        self.fs.rename(&tmp, &self.path.join(CURRENT_NAME))?;
        self.fs.sync_dir(&self.path)?;
        Ok(())
    }

    /// Removes a flat directory (a kho database or checkpoint) and everything in it, if it
    /// exists, and syncs the node directory.
    pub fn remove_flat_dir(&self, dir: &Path) -> Result<()> {
        if !self.fs.exists(dir)? {
            return Ok(());
        }
        for name in self.fs.list(dir)? {
            self.fs.remove(&dir.join(name))?;
        }
        // The removals durable before the directory goes: else a crash could bring the files
        // back under a directory that no longer exists (kho's FaultFs models exactly that).
        self.fs.sync_dir(dir)?;
        self.fs.remove_dir(dir)?;
        self.fs.sync_dir(&self.path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kho::vfs::{CrashMode, FaultFs, FileSystem};
    use std::sync::Arc;

    #[test]
    fn the_generation_pointer_is_durable_and_checked() {
        let fs = Arc::new(FaultFs::new());
        let d = NodeDir::new("/n", fs.clone()).unwrap();
        assert_eq!(d.current_generation().unwrap(), 0);
        d.set_current_generation(7).unwrap();
        d.set_current_generation(8).unwrap();
        let image = fs.crash_clone(CrashMode::DropUnsynced);
        let after = NodeDir::new("/n", image.clone()).unwrap();
        assert_eq!(after.current_generation().unwrap(), 8);
        image.corrupt_byte(Path::new("/n/SM_CURRENT"), 3, 1).unwrap();
        assert!(matches!(after.current_generation(), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn a_removed_directory_stays_removed_after_a_crash() {
        let fs = Arc::new(FaultFs::new());
        let d = NodeDir::new("/n", fs.clone()).unwrap();
        let sub = d.path().join("snap-build");
        fs.create_dir_all(&sub).unwrap();
        let mut w = fs.create(&sub.join("f")).unwrap();
        w.append(b"x").unwrap();
        w.sync().unwrap();
        fs.sync_dir(&sub).unwrap();
        d.remove_flat_dir(&sub).unwrap();
        let image = fs.crash_clone(CrashMode::DropUnsynced);
        assert!(!image.exists(&sub.join("f")).unwrap());
    }
}
