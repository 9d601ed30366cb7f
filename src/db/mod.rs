//! [`Db`]: the database facade — open/recovery (`open.rs`), the group-commit write path
//! (`write.rs`), memtable flushing (`flush.rs`), reads (`read.rs`) and snapshots
//! (`snapshot.rs`).
//!
//! Concurrency and lock order (take locks only in this order):
//! `commit queue -> compaction_lock -> wal -> versions -> super_version -> bg`; the only
//! exceptions are that `bg` may be held while briefly taking a `super_version` read lock,
//! and that an ingestion (`ingest.rs`) holding `wal` tries `compaction_lock` without waiting.
//! - `wal` is held by the one group-commit leader while it appends, syncs, rotates the
//!   memtable and inserts; nobody else touches the log writer.
//! - `versions` guards the [`VersionSet`] (manifest writes, file numbers).
//! - `super_version` is swapped, never mutated: readers clone the `Arc` under a read lock
//!   together with the visible sequence number, so what they see is one consistent state.

mod checkpoint;
pub(crate) use checkpoint::CheckpointSink;
mod commit_queue;
mod compact;
mod encryption;
mod flush;
mod health;
mod ingest;
mod open;
mod purge;
mod read;
mod recovery;
mod snapshot;
mod stats;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::iter::{CursorSource, InternalIterator};
use crate::key::SeqNo;
use crate::memtable::{Memtable, MemtableIter};
use crate::options::Options;
use crate::version::{TableContext, Version, VersionSet};
use crate::vfs::FileLock;
use crate::wal::LogWriter;
use crate::{Error, Result};

use commit_queue::CommitQueue;
pub use encryption::ReencryptReport;
use health::Health;
pub use ingest::IngestReport;
pub use recovery::RecoveryReport;
pub use snapshot::Snapshot;
pub use stats::{DbStats, LevelStats};

/// The memtables and tables a read sees, swapped as one unit.
#[derive(Debug)]
pub(crate) struct SuperVersion {
    /// The active memtable.
    pub mem: Arc<Memtable>,
    /// Frozen memtables waiting to be flushed, newest first.
    pub imm: Vec<Arc<Memtable>>,
    /// The live tables.
    pub version: Arc<Version>,
}

impl CursorSource for SuperVersion {
    /// Cursors over every memtable and table, newest source first.
    fn cursors(&self, out: &mut Vec<Box<dyn InternalIterator>>) -> Result<()> {
        out.push(Box::new(MemtableIter::new(self.mem.clone())));
        for m in &self.imm {
            out.push(Box::new(MemtableIter::new(m.clone())));
        }
        self.version.iterators(out)
    }
}

/// State of the log owned by the group-commit leader.
struct WalState {
    writer: LogWriter,
    /// The last sequence number handed out.
    last_seq: SeqNo,
    /// Every write up to this sequence number is durable (fsynced in a log, or in a table
    /// recovery wrote): [`Db::sync_wal`] has nothing to do while it equals `last_seq`.
    synced_seq: SeqNo,
    /// An append to or fsync of this log failed: what reached the disk is unknown, and a
    /// later fsync would prove nothing, so `close` does not try one. (Other failures — a
    /// background flush, a panic — leave the log sound, and `close` still syncs it.)
    failed: bool,
}

/// Coordination with the background flush and compaction threads (their failures go to
/// the database's [`Health`]).
#[derive(Default)]
struct BgState {
    shutting_down: bool,
}

/// Shared state of an open database.
pub(crate) struct DbInner {
    dir: PathBuf,
    /// Opened with [`Db::open_read_only`]: no log, no lock, no background threads.
    read_only: bool,
    opts: Options,
    ctx: TableContext,
    lock: Mutex<Option<Box<dyn FileLock>>>,
    super_version: RwLock<Arc<SuperVersion>>,
    /// The newest sequence number whose write is fully applied and readable.
    visible_seq: AtomicU64,
    versions: Mutex<VersionSet>,
    commit: CommitQueue,
    wal: Mutex<Option<WalState>>,
    bg: Mutex<BgState>,
    bg_cv: Condvar,
    /// Open, failed or closed: consulted by every entry point.
    health: Health,
    snapshots: snapshot::SnapshotList,
    /// The flush and compaction threads.
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Held while a compaction runs: one at a time.
    compaction_lock: Mutex<()>,
    /// Per level, the largest key compacted last (round-robin position of the picker).
    compaction_cursors: Mutex<Vec<Vec<u8>>>,
    /// Estimated compaction debt of the current version, for write backpressure.
    compaction_debt: AtomicU64,
    counters: stats::Counters,
    /// What recovery dropped or set aside when this database was opened.
    recovery: RecoveryReport,
    /// Set while a writable audited record store is open on this database: two would each
    /// extend the audit chain from the same head (`record::audit`).
    pub(crate) audit_writer: std::sync::atomic::AtomicBool,
}

impl DbInner {
    /// The current super version and the sequence number it is complete up to.
    fn read_view(&self) -> (Arc<SuperVersion>, SeqNo) {
        let sv = self.super_version.read();
        (sv.clone(), self.visible_seq.load(Ordering::Acquire))
    }

    /// [`DbInner::read_view`] for a read of the data: `Error::Closed` once the database is
    /// closed. Checked after loading the view: `close` marks the database closed before it
    /// swaps in a view without memtables, so a read that loaded that view always sees the
    /// mark and never answers from a view missing the memtables' writes.
    fn open_read_view(&self) -> Result<(Arc<SuperVersion>, SeqNo)> {
        let view = self.read_view();
        self.check_open()?;
        Ok(view)
    }

    fn check_open(&self) -> Result<()> {
        self.health.check_open()
    }

    /// Fails the database (see [`Health`]) and wakes every thread waiting on background
    /// work — `flush`, writers stalled for room — so that none waits for a flush that the
    /// failure stopped.
    fn fail(&self, cause: &Error) {
        self.health.fail(cause);
        let _bg = self.bg.lock();
        self.bg_cv.notify_all();
    }

    fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }
}

/// An open database. Cheap to clone and share between threads (`Send + Sync`); the database
/// closes when the last clone is dropped or [`Db::close`] is called.
#[derive(Clone)]
pub struct Db {
    handle: Arc<DbHandle>,
}

/// Closes the database when the last [`Db`] clone goes away.
struct DbHandle {
    inner: Arc<DbInner>,
}

impl Drop for DbHandle {
    fn drop(&mut self) {
        let _ = self.inner.close();
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("dir", &self.inner().dir).finish_non_exhaustive()
    }
}

impl Db {
    fn inner(&self) -> &Arc<DbInner> {
        &self.handle.inner
    }

    /// The options the database was opened with (size limits for callers that check
    /// entries before writing them).
    pub(crate) fn options(&self) -> &Options {
        &self.inner().opts
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner().dir
    }

    /// Every live table with its level, as the current version lists them.
    pub fn live_files(&self) -> Vec<(usize, crate::version::FileMeta)> {
        let (sv, _) = self.inner().read_view();
        sv.version.files().map(|(level, f)| (level, f.meta.clone())).collect()
    }

    /// The properties of every live table, keyed by file number, as the current version
    /// lists them (RocksDB's `GetPropertiesOfAllTables`). Opens tables not opened yet.
    pub fn table_properties(&self) -> Result<Vec<(u64, crate::sst::TableProperties)>> {
        let (sv, _) = self.inner().read_view();
        sv.version.files().map(|(_, f)| Ok((f.meta.number, f.reader()?.properties().clone()))).collect()
    }

    /// What recovery dropped (damaged log or manifest tails) or set aside (files moved to
    /// `lost/`) when this database was opened; empty after a clean shutdown.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner().recovery
    }

    /// The newest sequence number visible to reads.
    pub fn last_sequence(&self) -> SeqNo {
        self.inner().visible_seq.load(Ordering::Acquire)
    }

    /// Freezes the active memtable (if it holds anything) and waits until every frozen
    /// memtable is written to an SSTable and the manifest records it.
    pub fn flush(&self) -> Result<()> {
        self.inner().flush()
    }

    /// Makes every acknowledged write durable, stops background work and releases the lock
    /// file. Later calls on any clone return [`Error::Closed`]. Closing twice is a no-op.
    /// The block cache and the memtables give their memory back here, not when the last
    /// handle drops; an iterator opened before keeps the view it was created on.
    /// If a background flush or compaction failed (or panicked), returns that error: the
    /// writes it was flushing are still in the log, and the next open recovers them.
    pub fn close(&self) -> Result<()> {
        self.inner().close()
    }

    /// Counters describing the database's shape and what it has done, printable as a
    /// RocksDB-style "Compaction Stats" table (`println!("{}", db.stats())`).
    pub fn stats(&self) -> DbStats {
        let inner = self.inner();
        let (sv, seq) = inner.read_view();
        let scores = crate::compaction::picker::level_scores(&sv.version, &inner.opts);
        let levels = sv
            .version
            .levels
            .iter()
            .enumerate()
            .map(|(level, files)| LevelStats {
                files: files.len(),
                bytes: files.iter().map(|f| f.meta.size).sum(),
                score: scores.get(level).copied().unwrap_or(0.0),
                ..LevelStats::default()
            })
            .collect();
        let mut stats = DbStats {
            last_sequence: seq,
            memtable_bytes: sv.mem.approximate_size(),
            immutable_memtables: sv.imm.len(),
            levels,
            user_bytes: 0,
            table_bytes_written: 0,
            pending_compaction_bytes: inner.compaction_debt.load(Ordering::Relaxed),
            trivial_moves: 0,
            write_slowdowns: 0,
            write_stops: 0,
            stall_micros: 0,
            cache_hits: inner.ctx.cache.as_ref().map_or(0, |c| c.hits()),
            cache_misses: inner.ctx.cache.as_ref().map_or(0, |c| c.misses()),
            cache_usage: inner.ctx.cache.as_ref().map_or(0, |c| c.usage()),
            cache_pool_bytes: inner.ctx.cache.as_ref().map_or(0, |c| c.pool_bytes()),
            write_batches: 0,
            write_groups: 0,
            log_syncs: 0,
            recovery_dropped_records: inner.recovery.dropped_records(),
            recovery_dropped_bytes: inner.recovery.dropped_bytes(),
            recovery_quarantined_files: inner.recovery.quarantined_files.len() as u64,
        };
        stats.fill_counters(&inner.counters);
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Db>();
        check::<Snapshot>();
        fn check_send<T: Send>() {}
        check_send::<crate::DbIterator>();
    }
}
