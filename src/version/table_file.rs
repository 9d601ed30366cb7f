//! [`TableFile`]: a live SSTable as the versions see it — its metadata, its lazily opened
//! reader, and deletion once no version references it.
//!
//! Invariant: a table file is removed from disk only when (a) an applied `VersionEdit` has
//! deleted it (`mark_obsolete`) and (b) the last `Arc<TableFile>` is dropped, i.e. no
//! version, iterator or in-flight read can still reach it. Between the two, its number is in
//! [`PinnedTables`] (what `Store::purge_erased` reports as still holding erased data); when it
//! goes, its blocks leave the block cache before the file leaves the directory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::sst::{BlockCache, SstReader};
use crate::vfs::SharedFs;
use crate::Result;

use super::FileMeta;

/// What a table needs to open its reader.
#[derive(Debug, Clone)]
pub(crate) struct TableContext {
    pub fs: SharedFs,
    pub dir: PathBuf,
    pub cache: Option<Arc<BlockCache>>,
    /// The data keys of an encrypted database; `None` for a plaintext one.
    pub keys: Option<Arc<crate::crypt::Keyring>>,
    /// Deleted tables still open.
    pub pinned: Arc<PinnedTables>,
    /// Where flushes and compactions cut their outputs regardless of size.
    pub partitions: Arc<TablePartitions>,
}

impl TableContext {
    /// The context of the tables in `dir` on `fs`, with no deleted table pinned and no
    /// partition boundary yet.
    pub(crate) fn new(
        fs: SharedFs,
        dir: PathBuf,
        cache: Option<Arc<BlockCache>>,
        keys: Option<Arc<crate::crypt::Keyring>>,
    ) -> Self {
        TableContext { fs, dir, cache, keys, pinned: Default::default(), partitions: Default::default() }
    }
}

/// User keys at which every flush and compaction output is cut (`Db::set_table_partitions`):
/// keys on different sides of a boundary never share a table. A key range written in
/// increasing key order (the change feed, the audit log) then gets tables of its own, which
/// overlap nothing else and move down the levels without being rewritten.
#[derive(Debug, Default)]
pub(crate) struct TablePartitions(parking_lot::RwLock<Vec<Vec<u8>>>);

impl TablePartitions {
    /// Sets the boundaries (sorted and deduplicated here).
    pub(crate) fn set(&self, mut bounds: Vec<Vec<u8>>) {
        bounds.sort();
        bounds.dedup();
        *self.0.write() = bounds;
    }

    /// The boundaries now (a copy: a job uses one set throughout).
    pub(crate) fn snapshot(&self) -> Vec<Vec<u8>> {
        self.0.read().clone()
    }
}

/// Whether a boundary among sorted `bounds` lies between user keys `a` and `b` (an output
/// holding `a` must be cut before `b`).
pub(crate) fn crosses_partition(bounds: &[Vec<u8>], a: &[u8], b: &[u8]) -> bool {
    let partition = |k: &[u8]| bounds.partition_point(|x| x.as_slice() <= k);
    !bounds.is_empty() && partition(a) != partition(b)
}

/// The numbers of tables a version edit deleted whose files are still reachable (an
/// iterator's or snapshot read's version, an in-flight read): deleted from disk once the
/// last reference goes.
#[derive(Debug, Default)]
pub(crate) struct PinnedTables(parking_lot::Mutex<std::collections::BTreeSet<u64>>);

impl PinnedTables {
    /// The pinned table numbers, ascending.
    pub(crate) fn list(&self) -> Vec<u64> {
        self.0.lock().iter().copied().collect()
    }
}

/// One live SSTable.
pub(crate) struct TableFile {
    pub meta: FileMeta,
    ctx: TableContext,
    reader: OnceLock<Arc<SstReader>>,
    obsolete: AtomicBool,
}

impl std::fmt::Debug for TableFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableFile").field("number", &self.meta.number).field("size", &self.meta.size).finish()
    }
}

impl TableFile {
    pub(crate) fn new(meta: FileMeta, ctx: TableContext) -> Self {
        TableFile { meta, ctx, reader: OnceLock::new(), obsolete: AtomicBool::new(false) }
    }

    /// The file's path.
    pub(crate) fn path(&self) -> PathBuf {
        crate::filename::table_path(&self.ctx.dir, self.meta.number)
    }

    /// The table's reader, opened (footer, index and filter loaded) on first use.
    pub(crate) fn reader(&self) -> Result<&Arc<SstReader>> {
        if let Some(r) = self.reader.get() {
            return Ok(r);
        }
        let path = self.path();
        let file = self.ctx.fs.open(&path)?;
        if file.len() != self.meta.size {
            return Err(crate::Error::corruption(
                &path,
                file.len(),
                format!("table is {} bytes but the manifest records {}", file.len(), self.meta.size),
            ));
        }
        let reader = Arc::new(SstReader::open_with_keys(
            file,
            path,
            self.meta.number,
            self.ctx.cache.clone(),
            self.ctx.keys.as_ref(),
        )?);
        // Two threads may open concurrently; the first to finish wins, the other is dropped.
        Ok(self.reader.get_or_init(|| reader))
    }

    /// Records that a version edit removed this file; it is deleted when the last reference
    /// goes away.
    pub(crate) fn mark_obsolete(&self) {
        if !self.obsolete.swap(true, Ordering::AcqRel) {
            self.ctx.pinned.0.lock().insert(self.meta.number);
        }
    }
}

impl Drop for TableFile {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            if let Some(r) = self.reader.get() {
                r.evict_cached_blocks();
            }
            // A failure leaves an orphan that the next open deletes; nothing is lost.
            let _ = self.ctx.fs.remove(&self.path());
            self.ctx.pinned.0.lock().remove(&self.meta.number);
        }
    }
}
