//! [`Db::checkpoint`]: a consistent, openable copy of a live database at one sequence number,
//! taken while writers, flushes and compactions run (RocksDB's `Checkpoint`).
//!
//! Protocol:
//! 1. Under the log lock (writers wait for the moment this takes): if the active memtable
//!    holds writes, rotate — its log is fsynced and frozen, and every log the checkpoint needs
//!    is now complete. Read the last sequence number `S`; under the versions lock, pin the
//!    current version (its tables are not deleted while the `Arc` is held) and take the
//!    manifest's state, and while still holding it (a flush logs its edit under it before
//!    deleting the logs the edit made obsolete) link (or copy) every log from the manifest's
//!    log number up to, not including, the active one (which holds nothing yet). A link also
//!    keeps a log a later flush deletes.
//! 2. Without locks: link (or copy) every table of the pinned version, write a manifest
//!    holding exactly that state as one edit, and `CURRENT` last; fsync the directory.
//!
//! Opening the checkpoint replays the copied logs on top of the tables: exactly the writes
//! up to `S`. A crash during a checkpoint leaves the directory without `CURRENT` (written
//! last), which does not open as a database; the source is never touched beyond the rotation.
//!
//! The same protocol feeds a backup (`crate::backup`): a [`CheckpointSink`] decides what
//! becomes of the source's logs and tables (the plain checkpoint links them), and the
//! generated files go to an output directory on the sink's file system.
//!
//! Invariants: the checkpoint's files are the source's immutable files (hard links where the
//! file system allows, copies otherwise), plus a manifest and `CURRENT` of its own; its
//! manifest's log number names a log present in it (an empty one if the source had no
//! unflushed writes), so recovery's checks hold there as in the source.

use std::path::Path;

use super::{Db, DbInner};
use crate::filename::{log_path, table_path};
use crate::key::SeqNo;
use crate::version::write_manifest;
use crate::vfs::FileSystem;
use crate::{Error, Result};

/// Where a checkpoint's immutable files go. The generated ones (manifest, `CURRENT`, the key
/// registry, an empty log) are written into the output directory on the output file system;
/// a sink decides what becomes of the source's complete logs and tables.
pub(crate) trait CheckpointSink {
    /// Log `number` at `from` is complete and needed. Called under the log and versions
    /// locks (writers wait): keep it cheap — link it, or open it (an open handle stays
    /// readable after the source deletes the file) and copy it in [`finish`](Self::finish).
    fn log(&mut self, number: u64, from: &Path) -> Result<()>;
    /// Table `number` at `from` belongs to the checkpoint; the version holding it is pinned
    /// until the checkpoint returns. Called without locks.
    fn table(&mut self, number: u64, from: &Path) -> Result<()>;
    /// Called after the last table, before the manifest and `CURRENT` are written.
    fn finish(&mut self) -> Result<()>;
}

/// The plain checkpoint's sink: every file hard-linked (copied on another file system) into
/// the output directory.
struct LinkSink<'a> {
    fs: &'a dyn FileSystem,
    out: &'a Path,
}

impl CheckpointSink for LinkSink<'_> {
    fn log(&mut self, number: u64, from: &Path) -> Result<()> {
        self.fs.link_or_copy(from, &log_path(self.out, number))
    }

    fn table(&mut self, number: u64, from: &Path) -> Result<()> {
        self.fs.link_or_copy(from, &table_path(self.out, number))
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

impl Db {
    /// Writes a consistent, openable copy of the database into `dir` (which must not exist,
    /// or be empty) and returns the sequence number it holds every write up to. Tables and
    /// complete logs are hard-linked when `dir` is on the same file system (copied otherwise),
    /// so a checkpoint costs little disk until the source compacts. Works while writers and
    /// compactions run; writers wait only while the active log is rotated and the logs are
    /// linked. Open the copy with [`Db::open`] like any database.
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<SeqNo> {
        let inner = self.inner();
        let fs = inner.ctx.fs.clone();
        let out = dir.as_ref();
        inner.checkpoint_into(fs.as_ref(), out, &mut LinkSink { fs: fs.as_ref(), out })
    }

    /// The checkpoint protocol with the source's logs and tables handed to `sink`, and the
    /// generated files written into `out` on `out_fs` (the backup engine's).
    pub(crate) fn checkpoint_with(
        &self,
        out_fs: &dyn FileSystem,
        out: &Path,
        sink: &mut dyn CheckpointSink,
    ) -> Result<SeqNo> {
        self.inner().checkpoint_into(out_fs, out, sink)
    }

    /// The database's file system (a sink reads the source's files through it).
    pub(crate) fn file_system(&self) -> crate::vfs::SharedFs {
        self.inner().ctx.fs.clone()
    }
}

impl DbInner {
    fn checkpoint_into(&self, out_fs: &dyn FileSystem, out: &Path, sink: &mut dyn CheckpointSink) -> Result<SeqNo> {
        self.check_writable()?;
        self.health.check_not_failed()?;
        let fs = self.ctx.fs.as_ref();
        if out_fs.exists(out)? && !out_fs.list(out)?.is_empty() {
            return Err(Error::InvalidArgument(format!("checkpoint directory {} is not empty", out.display())));
        }
        out_fs.create_dir_all(out)?;

        // 1. Under the log lock: a complete set of logs, the sequence number, the version.
        let (seq, version, mut edit, manifest_number, key_snapshot) = {
            let mut wal_guard = self.wal.lock();
            let wal = wal_guard.as_mut().ok_or(Error::Closed)?;
            self.health.check_not_failed()?;
            if !self.super_version.read().mem.is_empty() {
                self.wait_for_room()?;
                self.rotate(wal)?;
            }
            let seq = wal.last_seq;
            let active_log = self.super_version.read().mem.wal_number();
            // Held while the logs are linked: a flush logs its edit under this lock before it
            // deletes the logs the edit made obsolete, so none of these can vanish meanwhile.
            let mut versions = self.versions.lock();
            let version = versions.current();
            let edit = versions.snapshot_edit();
            // Every key the pinned tables and the linked logs can be under.
            let key_snapshot = self.ctx.keys.as_ref().map(|k| k.snapshot());
            let manifest_number = versions.new_file_number();
            let log_number = versions.log_number;
            for n in log_number..active_log {
                let from = log_path(&self.dir, n);
                if fs.exists(&from)? {
                    sink.log(n, &from)?;
                }
            }
            drop(versions);
            if log_number == active_log {
                // No unflushed writes: the named log is the active, empty one.
                let keys = self.ctx.keys.as_deref();
                crate::crypt::new_log_writer(out_fs.create(&log_path(out, log_number))?, log_number, keys)?.sync()?;
            }
            (seq, version, edit, manifest_number, key_snapshot)
        };

        // 2. The pinned tables, then the manifest and `CURRENT` (last).
        for (_, f) in version.files() {
            sink.table(f.meta.number, &table_path(&self.dir, f.meta.number))?;
        }
        sink.finish()?;
        edit.next_file_number = Some(manifest_number + 1);
        if let (Some(keys), Some(snapshot)) = (&self.ctx.keys, &key_snapshot) {
            keys.write_snapshot(out_fs, out, snapshot)?;
        }
        out_fs.sync_dir(out)?;
        write_manifest(out_fs, out, manifest_number, &edit, self.ctx.keys.as_deref())?;
        Ok(seq)
    }
}
