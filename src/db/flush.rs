//! Flushing: writing frozen memtables to level-0 SSTables in a background thread, and the
//! table-building routine recovery shares.
//!
//! Order of a flush (see `docs/durability.md`): write the table and fsync it -> fsync the
//! directory -> append + fsync the `VersionEdit` (new file, new log number) -> install the
//! new super version -> delete logs older than the new log number.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::stats::Counters;
use super::{DbInner, SuperVersion};
use crate::compaction::output::TableOutput;
use crate::compaction::picker::pending_compaction_bytes;
use crate::filename::{parse_file_name, FileKind};
use crate::iter::InternalIterator;
use crate::memtable::{Memtable, MemtableIter};
use crate::options::Options;
use crate::sst::SstOptions;
use crate::version::crosses_partition;
use crate::version::{FileMeta, TableContext, VersionEdit};
use crate::{Error, Result};

/// SSTable options for tables written to `level`.
pub(crate) fn sst_options(opts: &Options, level: usize) -> SstOptions {
    SstOptions {
        block_size: opts.block_size,
        restart_interval: opts.block_restart_interval,
        bloom_bits_per_key: opts.bloom_bits_per_key,
        compression_level: opts.compression_for_level(level),
        ..SstOptions::default()
    }
}

/// Writes every entry of a memtable (through `iter`) to level-0 SSTables numbered by
/// `new_file_number` and fsyncs them; empty if the memtable is (no file is created). Usually
/// one table; another starts at the next user key once a table's index grows past
/// `limits::INDEX_CUT_LEN` (a memtable of very large keys), so the tables share no user key
/// and a level-0 read finds the newest version first whichever it probes first. Values are
/// copied straight from the memtable's arena into the table's blocks.
pub(crate) fn write_table(
    ctx: &TableContext,
    new_file_number: &mut dyn FnMut() -> u64,
    iter: &mut MemtableIter,
    opts: &SstOptions,
) -> Result<Vec<FileMeta>> {
    let mut tables = Vec::new();
    let bounds = ctx.partitions.snapshot();
    iter.seek_to_first()?;
    let mut out: Option<TableOutput> = None;
    while iter.valid() {
        if let Some(o) = &out {
            let uk = crate::key::user_key(iter.key());
            if o.last_user_key() != uk && (o.index_full() || crosses_partition(&bounds, o.last_user_key(), uk)) {
                tables.extend(out.take().map(TableOutput::finish).transpose()?.flatten());
            }
        }
        let o = match &mut out {
            Some(o) => o,
            None => out.insert(TableOutput::create(ctx, new_file_number(), opts)?),
        };
        o.add(iter.key(), iter.value_slice())?;
        iter.next()?;
    }
    tables.extend(out.map(TableOutput::finish).transpose()?.flatten());
    Ok(tables)
}

/// Runs one background job, turning a panic (a bug) into [`Error::Internal`] so that it
/// poisons the database and wakes every waiter instead of killing the thread silently and
/// leaving writers and `close` waiting for a job that will never finish.
pub(crate) fn guard_panics(job: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic payload".to_owned());
        Err(Error::Internal(format!("background {job} panicked: {what}")))
    })
}

impl DbInner {
    /// Body of the background flush thread.
    pub(crate) fn flush_loop(self: &Arc<Self>) {
        loop {
            let mem = {
                let mut bg = self.bg.lock();
                loop {
                    if bg.shutting_down || self.health.is_failed() {
                        return;
                    }
                    if let Some(m) = self.super_version.read().imm.last().cloned() {
                        break m;
                    }
                    self.bg_cv.wait(&mut bg);
                }
            };
            let result = guard_panics("flush", || self.flush_memtable(&mem));
            self.finish_background_job(result);
        }
    }

    /// Ends one background job: a failure fails the database (the first failure is kept) and
    /// is passed to the event listener; then every waiter (writers stalled for room, `flush`,
    /// `close`) wakes to see it.
    pub(crate) fn finish_background_job(&self, result: Result<()>) {
        let _bg = self.bg.lock();
        if let Err(e) = result {
            self.health.fail(&e);
            if let Some(l) = &self.opts.event_listener {
                l.on_background_error(&e);
            }
        }
        self.bg_cv.notify_all();
    }

    /// Writes the oldest frozen memtable `mem` to level 0 and retires it and its log.
    fn flush_memtable(&self, mem: &Arc<Memtable>) -> Result<()> {
        let mut new_number = || self.versions.lock().new_file_number();
        let tables =
            write_table(&self.ctx, &mut new_number, &mut MemtableIter::new(mem.clone()), &sst_options(&self.opts, 0))?;
        if !tables.is_empty() {
            self.ctx.fs.sync_dir(&self.dir)?;
            Counters::add(&self.counters.flush_bytes, tables.iter().map(|m| m.size).sum());
            Counters::add(&self.counters.flushes, 1);
        }
        let mut versions = self.versions.lock();
        // The log after this memtable's holds everything not yet flushed.
        let next_log = {
            let sv = self.super_version.read();
            let pos = sv.imm.iter().position(|m| Arc::ptr_eq(m, mem)).unwrap_or(0);
            match pos.checked_sub(1) {
                Some(newer) => sv.imm.get(newer).map_or(sv.mem.wal_number(), |m| m.wal_number()),
                None => sv.mem.wal_number(),
            }
        };
        let edit = VersionEdit {
            log_number: Some(next_log),
            last_sequence: Some(mem.max_seq()),
            new_files: tables.into_iter().map(|m| (0, m)).collect(),
            ..VersionEdit::default()
        };
        let version = versions.log_and_apply(edit)?;
        self.compaction_debt.store(pending_compaction_bytes(&version, &self.opts), Ordering::Relaxed);
        {
            let mut sv = self.super_version.write();
            let imm = sv.imm.iter().filter(|m| !Arc::ptr_eq(m, mem)).cloned().collect();
            *sv = Arc::new(SuperVersion { mem: sv.mem.clone(), imm, version });
        }
        drop(versions);
        self.delete_logs_before(next_log);
        Ok(())
    }

    /// Removes log files that hold only flushed data. Failures leave garbage that the next
    /// open removes.
    fn delete_logs_before(&self, log_number: u64) {
        if let Ok(names) = self.ctx.fs.list(&self.dir) {
            for name in names {
                if let Some(FileKind::Log(n)) = parse_file_name(&name) {
                    if n < log_number {
                        let _ = self.ctx.fs.remove(&self.dir.join(name));
                    }
                }
            }
        }
    }

    /// Freezes the active memtable if non-empty and waits until no frozen memtable is left.
    pub(crate) fn flush(&self) -> Result<()> {
        self.check_writable()?;
        {
            let mut wal = self.wal.lock();
            let wal = wal.as_mut().ok_or(Error::Closed)?;
            if let Some(e) = self.health.failure() {
                return Err(e);
            }
            if !self.super_version.read().mem.is_empty() {
                self.wait_for_room()?;
                self.rotate(wal)?;
            }
        }
        let mut bg = self.bg.lock();
        loop {
            if let Some(e) = self.health.failure() {
                return Err(e);
            }
            if self.super_version.read().imm.is_empty() {
                return Ok(());
            }
            if bg.shutting_down {
                return Err(Error::Closed);
            }
            self.bg_cv.wait(&mut bg);
        }
    }
}
