//! Driving compaction: the background compaction thread, manual `compact_range`, and
//! installing their results. The policy itself is in `crate::compaction`.
//!
//! At most one compaction runs at a time (`compaction_lock`), so tasks never share input
//! files; flushes run concurrently and only add level-0 files, which are newer than
//! anything a running compaction reads. The background thread runs
//! `Options::compaction_thread_nice` below the process's CPU priority.

use std::ops::{Bound, RangeBounds};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::flush::{guard_panics, sst_options};
use super::read::owned_bounds;
use super::stats::Counters;
use super::{Db, DbInner, SuperVersion};
use crate::compaction::job;
use crate::compaction::picker::{
    build_task, files_in_range, in_place_task, level_scores, pending_compaction_bytes, pick, CompactionTask,
};
use crate::util::thread_priority;
use crate::version::Version;
use crate::Result;

impl DbInner {
    /// Body of the background compaction thread.
    pub(crate) fn compaction_loop(self: &Arc<Self>) {
        // Best effort: at the process's priority compaction is still correct, only more
        // intrusive.
        let _ = thread_priority::lower_current_thread(self.opts.compaction_thread_nice);
        loop {
            {
                let mut bg = self.bg.lock();
                loop {
                    if bg.shutting_down || self.health.is_failed() {
                        return;
                    }
                    if self.compaction_due() {
                        break;
                    }
                    self.bg_cv.wait(&mut bg);
                }
            }
            let result = guard_panics("compaction", || self.run_picked_compaction());
            self.finish_background_job(result);
        }
    }

    fn compaction_due(&self) -> bool {
        let version = self.super_version.read().version.clone();
        level_scores(&version, &self.opts).iter().any(|s| *s >= 1.0)
    }

    fn run_picked_compaction(&self) -> Result<()> {
        let _running = self.compaction_lock.lock();
        let version = self.versions.lock().current();
        let task = pick(&version, &self.opts, &self.compaction_cursors.lock());
        match task {
            Some(task) => self.run_compaction(&task),
            None => Ok(()),
        }
    }

    /// Runs `task`, logs its edit and installs the new version. Requires `compaction_lock`.
    fn run_compaction(&self, task: &CompactionTask) -> Result<()> {
        let snapshots = self.snapshots.sequences();
        let sst_opts = sst_options(&self.opts, task.output_level());
        let result = job::run(task, &self.ctx, &self.opts, &sst_opts, &snapshots, &mut || {
            self.versions.lock().new_file_number()
        })?;
        let c = &self.counters;
        let out = task.output_level();
        if task.trivial_move {
            Counters::add(&c.trivial_moves, 1);
        } else {
            Counters::add(&c.compaction_read[out], result.bytes_read);
            Counters::add(&c.compaction_write[out], result.bytes_written);
            Counters::add(&c.compactions[out], 1);
        }
        {
            let mut versions = self.versions.lock();
            let version = versions.log_and_apply(result.edit)?;
            self.install_version(version);
        }
        if let Some(largest) =
            task.inputs.iter().map(|f| &f.meta.largest).max_by(|a, b| crate::key::compare_internal(a, b))
        {
            if let Some(cursor) = self.compaction_cursors.lock().get_mut(task.level) {
                *cursor = largest.to_vec();
            }
        }
        Ok(())
    }

    /// Swaps in `version` (keeping the memtables) and refreshes the compaction debt.
    pub(crate) fn install_version(&self, version: Arc<Version>) {
        self.compaction_debt.store(pending_compaction_bytes(&version, &self.opts), Ordering::Relaxed);
        let mut sv = self.super_version.write();
        *sv = Arc::new(SuperVersion { mem: sv.mem.clone(), imm: sv.imm.clone(), version });
    }

    /// Flushes, then compacts every level's files overlapping `[lo, hi]` down to the deepest
    /// level holding such keys, rewriting them (no trivial moves) so that overwritten
    /// versions and tombstones no snapshot needs are dropped.
    pub(crate) fn compact_range(&self, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> Result<()> {
        self.compact_range_with(lo, hi, false)
    }

    /// [`Self::compact_range`]; with `rewrite_bottom`, also rewrites the deepest level's
    /// files in the range when no compaction into that level ran (their old versions and
    /// tombstones would otherwise stay: nothing deeper ever merges them).
    pub(crate) fn compact_range_with(
        &self,
        lo: Bound<Vec<u8>>,
        hi: Bound<Vec<u8>>,
        rewrite_bottom: bool,
    ) -> Result<()> {
        self.check_writable()?;
        self.flush()?;
        let _running = self.compaction_lock.lock();
        let version = self.versions.lock().current();
        let (lo, hi) = (lo.as_ref().map(Vec::as_slice), hi.as_ref().map(Vec::as_slice));
        let deepest =
            (1..version.levels.len()).rev().find(|&l| !files_in_range(&version, l, lo, hi).is_empty()).unwrap_or(1);
        let mut wrote_deepest = false;
        for level in 0..deepest {
            self.check_open()?; // `close` waits for the step in progress, then this stops
            let version = self.versions.lock().current();
            // All of level 0: its files overlap each other, and moving only some of them
            // below older level-0 files would let the older ones shadow newer data.
            let inputs = if level == 0 { version.levels[0].clone() } else { files_in_range(&version, level, lo, hi) };
            if inputs.is_empty() {
                continue;
            }
            let mut task = build_task(&version, &self.opts, level, inputs);
            task.trivial_move = false;
            self.run_compaction(&task)?;
            wrote_deepest = level + 1 == deepest;
        }
        if rewrite_bottom && !wrote_deepest {
            self.check_open()?;
            let version = self.versions.lock().current();
            let inputs = files_in_range(&version, deepest, lo, hi);
            if !inputs.is_empty() {
                self.run_compaction(&in_place_task(&version, deepest, inputs))?;
            }
        }
        let _bg = self.bg.lock();
        self.bg_cv.notify_all();
        match self.health.failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Db {
    /// Cuts every later flush and compaction output at these user keys (see
    /// `TablePartitions`): the record layer keeps its append-only ranges (changes, audit
    /// entries) in tables of their own.
    pub(crate) fn set_table_partitions(&self, bounds: Vec<Vec<u8>>) {
        self.inner().ctx.partitions.set(bounds);
    }

    /// Compacts every key in `range` down to the deepest level holding such keys, dropping
    /// overwritten versions and tombstones that no live snapshot can see. Use
    /// `db.compact_range::<&[u8], _>(..)` for the whole database.
    pub fn compact_range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<()> {
        let (lo, hi) = owned_bounds(&range);
        self.inner().compact_range(lo, hi)
    }

    /// [`Self::compact_range`], and if no compaction into the deepest level holding keys of
    /// `range` ran, rewrites that level's files in the range in place: a purge must drop the
    /// old versions and tombstones there too (RocksDB: `BottommostLevelCompaction::kForce`).
    pub(crate) fn compact_range_rewriting_bottom<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<()> {
        let (lo, hi) = owned_bounds(&range);
        self.inner().compact_range_with(lo, hi, true)
    }
}
