//! Table ingestion (RocksDB's `IngestExternalFile`, built in place): sorted entries are
//! written straight into new tables, bypassing the log and the memtable, and installed with
//! one manifest edit at one sequence number newer than every write before them.
//!
//! Protocol ([`Db::ingest_sorted`], `DbInner::ingest`):
//! 1. **Quiesce.** Flush until both memtables are empty and every logged write is in a
//!    table (`versions.last_sequence == wal.last_seq`), then hold the log lock to the end:
//!    writers queue behind it and no flush is pending. Compactions go on.
//! 2. **Write.** Reserve sequence numbers `first..=last` (the caller asks for how many; the
//!    record layer stamps them into its change keys) and write every entry at `last` into
//!    new tables with the table writer (encryption, compression of the deepest level, bloom
//!    filters), cut at `target_file_size`, the index limit and the table partitions; fsync
//!    them and the directory. A caller may hand over several streams of consecutive key
//!    ranges: each is written on its own thread (the record layer uses two).
//! 3. **Install.** If no compaction is running (`compaction_lock` taken with `try_lock`:
//!    none can then produce an output overlapping a placement chosen here), place each table
//!    at the deepest level where it overlaps no table of that level or any level above;
//!    else, or if it overlaps level 0, at level 0 (a level-0 read probes the newest
//!    `largest_seq` first, `last` is the newest, and a running compaction only writes below
//!    level 0). Log one `VersionEdit` adding them all with `last_sequence = last`, install
//!    it, then publish `last`.
//!
//! Invariants:
//! - All or nothing across crashes: the tables are named by the one edit. A crash before its
//!   fsync leaves tables no edit names, which the next open deletes
//!   (`recovery::delete_obsolete_files`); after it, the whole ingestion is there.
//! - Recovery continuity: at the edit no live log holds a record (step 1), so the manifest's
//!   last sequence `last` is followed by the next write's `last + 1` without a gap.
//! - An error before the edit is logged removes the tables written. A failed manifest write
//!   fails the database, as a flush's does: whether the edit reached the disk is unknown.
//! - Keys must strictly increase and respect `max_key_size`/`max_value_size`, else
//!   [`Error::InvalidArgument`] and nothing is installed.

use std::ops::Bound;
use std::sync::atomic::Ordering;

use super::flush::sst_options;
use super::stats::Counters;
use super::{Db, DbInner};
use crate::batch::check_entry_size;
use crate::compaction::output::TableOutput;
use crate::compaction::picker::files_in_range;
use crate::filename::table_path;
use crate::key::{encode_internal_key, user_key, SeqNo, ValueKind};
use crate::version::{FileMeta, Version, VersionEdit};
use crate::{Error, Result};

/// Times step 1 flushes before giving up because writers keep refilling the memtable.
const MAX_QUIESCE_ATTEMPTS: usize = 64;

/// What an ingestion installed ([`Db::ingest_sorted`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngestReport {
    /// Entries written.
    pub entries: u64,
    /// The tables added, as `(level, file number)`, in key order.
    pub tables: Vec<(usize, u64)>,
    /// Bytes of the tables added.
    pub bytes: u64,
    /// The sequence number every ingested entry carries (the last of those reserved);
    /// 0 when nothing was ingested.
    pub sequence: SeqNo,
}

impl Db {
    /// Writes `entries` — `(key, value)` puts in strictly increasing key order — straight
    /// into new tables and installs them atomically with one manifest edit, at one sequence
    /// number newer than every earlier write: after a crash either all of them or none are
    /// present. The memtable is flushed first and writers wait while the tables are
    /// written; existing keys are overwritten as by a put. An empty input installs nothing.
    ///
    /// Errors: [`Error::InvalidArgument`] for keys out of order or over the size limits
    /// (nothing is installed), [`Error::Busy`] if writers kept refilling the memtable.
    pub fn ingest_sorted<I, K, V>(&self, entries: I) -> Result<IngestReport>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.inner().ingest(1, |db, _, seq, numbers| db.write_ingested(entries.into_iter(), seq, numbers))
    }

    /// [`Self::ingest_sorted`] reserving `sequences` (>= 1) sequence numbers, from several
    /// streams written concurrently (one thread each): `source` is called with the first
    /// reserved number once writers are stopped and returns the streams, each in strictly
    /// increasing key order and every key of one stream below every key of the next; the
    /// entries carry the last reserved number. The record layer stamps the reserved numbers
    /// into its change keys.
    pub(crate) fn ingest_with<I, K, V>(
        &self,
        sequences: u64,
        source: impl FnOnce(SeqNo) -> Vec<I>,
    ) -> Result<IngestReport>
    where
        I: Iterator<Item = (K, V)> + Send,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.inner().ingest(sequences, |db, first, seq, numbers| db.write_streams(source(first), seq, numbers))
    }
}

/// What step 2 wrote: the entries and the tables, in key order.
type Written = (u64, Vec<FileMeta>);

/// Step 2 of an ingestion: given the first reserved sequence number and the one the entries
/// carry, writes the tables, recording every file number taken; returns the entries
/// written and the tables, in key order.
type WriteStep<'a> = &'a mut dyn FnMut(&DbInner, SeqNo, SeqNo, &mut Vec<u64>) -> Result<Written>;

impl DbInner {
    fn ingest(
        &self,
        sequences: u64,
        write: impl FnOnce(&DbInner, SeqNo, SeqNo, &mut Vec<u64>) -> Result<Written>,
    ) -> Result<IngestReport> {
        let mut write = Some(write);
        self.ingest_dyn(sequences, &mut |db, first, seq, numbers| match write.take() {
            Some(w) => w(db, first, seq, numbers),
            None => Err(Error::Internal("an ingestion wrote twice".into())),
        })
    }

    fn ingest_dyn(&self, sequences: u64, write: WriteStep<'_>) -> Result<IngestReport> {
        self.check_writable()?;
        if sequences == 0 {
            return Err(Error::InvalidArgument("an ingestion reserves at least one sequence number".into()));
        }
        let mut attempts = 0;
        let mut wal_guard = loop {
            self.flush()?;
            let wal_guard = self.wal.lock();
            let wal = wal_guard.as_ref().ok_or(Error::Closed)?;
            self.health.check_not_failed()?;
            let drained = {
                let sv = self.super_version.read();
                sv.mem.is_empty() && sv.imm.is_empty()
            };
            if drained && self.versions.lock().last_sequence == wal.last_seq {
                break wal_guard;
            }
            attempts += 1;
            if attempts >= MAX_QUIESCE_ATTEMPTS {
                return Err(Error::Busy {
                    path: self.dir.clone(),
                    reason: "writers kept refilling the memtable while an ingestion waited for it to drain".into(),
                });
            }
        };
        let wal = wal_guard.as_mut().ok_or(Error::Closed)?;
        let first = wal.last_seq + 1;
        let last = first.checked_add(sequences - 1).filter(|l| *l <= crate::key::MAX_SEQUENCE).ok_or_else(|| {
            Error::InvalidArgument(format!("cannot reserve {sequences} sequence numbers after {}", wal.last_seq))
        })?;

        let mut numbers = Vec::new();
        let written = write(self, first, last, &mut numbers);
        let (entries, tables) = match written.and_then(|w| self.ctx.fs.sync_dir(&self.dir).map(|()| w)) {
            Ok(w) => w,
            Err(e) => {
                self.remove_tables(&numbers);
                return Err(e);
            }
        };
        if tables.is_empty() {
            return Ok(IngestReport::default());
        }
        let mut report =
            IngestReport { entries, bytes: tables.iter().map(|m| m.size).sum(), sequence: last, ..Default::default() };
        {
            // The one exception to the lock order: a `try_lock` under the log lock cannot
            // wait, so it cannot deadlock. Held, no compaction is in flight and the version
            // is the one every later compaction starts from; else level 0 is always safe (a
            // running compaction's outputs go below it).
            let compacting = self.compaction_lock.try_lock();
            let mut versions = self.versions.lock();
            let current = versions.current();
            let new_files: Vec<(u32, FileMeta)> = tables
                .into_iter()
                .map(|m| (compacting.as_ref().map_or(0, |_| target_level(&current, &m)) as u32, m))
                .collect();
            report.tables = new_files.iter().map(|(l, m)| (*l as usize, m.number)).collect();
            let edit = VersionEdit { last_sequence: Some(last), new_files, ..VersionEdit::default() };
            let version = match versions.log_and_apply(edit) {
                Ok(v) => v,
                Err(e @ (Error::Internal(_) | Error::Poisoned)) => {
                    // Refused before logging: the tables are ours to remove.
                    drop(versions);
                    self.remove_tables(&numbers);
                    return Err(e);
                }
                Err(e) => {
                    self.fail(&e);
                    return Err(e);
                }
            };
            self.install_version(version);
        }
        // The tables are both what the user wrote and what reached the tables (write
        // amplification counts compactions on top of them, as after a flush).
        Counters::add(&self.counters.user_bytes, report.bytes);
        Counters::add(&self.counters.flush_bytes, report.bytes);
        wal.last_seq = last;
        wal.synced_seq = last;
        self.visible_seq.store(last, Ordering::Release);
        let _bg = self.bg.lock();
        self.bg_cv.notify_all(); // level 0 may be due for compaction
        Ok(report)
    }

    /// Writes each stream on its own thread (see [`Db::ingest_with`]) and checks that the
    /// streams follow each other in key order.
    fn write_streams<I, K, V>(&self, streams: Vec<I>, seq: SeqNo, numbers: &mut Vec<u64>) -> Result<Written>
    where
        I: Iterator<Item = (K, V)> + Send,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let results: Vec<(Result<Written>, Vec<u64>)> = std::thread::scope(|s| {
            let handles: Vec<_> = streams
                .into_iter()
                .map(|stream| {
                    s.spawn(move || {
                        let mut taken = Vec::new();
                        let r = self.write_ingested(stream, seq, &mut taken);
                        (r, taken)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    // A panic (a bug) loses the numbers it took: the next open collects them.
                    h.join()
                        .unwrap_or_else(|_| (Err(Error::Internal("an ingestion thread panicked".into())), Vec::new()))
                })
                .collect()
        });
        let (mut entries, mut tables, mut failure) = (0, Vec::<FileMeta>::new(), None);
        for (r, taken) in results {
            numbers.extend(taken);
            match r {
                Ok((n, t)) => {
                    if let (Some(prev), Some(next)) = (tables.last(), t.first()) {
                        if user_key(&prev.largest) >= user_key(&next.smallest) {
                            failure.get_or_insert(Error::Internal("ingestion streams overlap".into()));
                        }
                    }
                    entries += n;
                    tables.extend(t);
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok((entries, tables)),
        }
    }

    /// Step 2: writes `entries` at `seq` into new tables, recording every number it takes
    /// in `numbers` (so the caller can remove them on failure). Returns the entries written
    /// and the tables finished (fsynced).
    fn write_ingested<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        entries: impl Iterator<Item = (K, V)>,
        seq: SeqNo,
        numbers: &mut Vec<u64>,
    ) -> Result<Written> {
        let sst = sst_options(&self.opts, self.opts.num_levels.saturating_sub(1));
        let bounds = self.ctx.partitions.snapshot();
        let mut tables: Vec<FileMeta> = Vec::new();
        let mut out: Option<TableOutput> = None;
        // The first partition boundary above the open table's keys: it is cut before a key
        // at or past it (what `crosses_partition` decides, without a search per entry).
        let mut limit: Option<&[u8]> = None;
        let mut ikey = Vec::new();
        let mut count = 0u64;
        for (key, value) in entries {
            let (key, value) = (key.as_ref(), value.as_ref());
            check_entry_size(&self.opts, key.len(), value.len())?;
            let prev = match &out {
                Some(o) => Some(o.last_user_key()),
                None => tables.last().map(|m| user_key(&m.largest)),
            };
            if prev.is_some_and(|p| key <= p) {
                return Err(Error::InvalidArgument(format!(
                    "ingested entry {count} does not sort after the one before it (keys must strictly increase)"
                )));
            }
            if let Some(o) = &out {
                if o.estimated_size() >= self.opts.target_file_size || o.index_full() || limit.is_some_and(|b| key >= b)
                {
                    tables.extend(out.take().map(TableOutput::finish).transpose()?.flatten());
                }
            }
            let o = match &mut out {
                Some(o) => o,
                None => {
                    let number = self.versions.lock().new_file_number();
                    numbers.push(number);
                    limit = bounds.iter().map(Vec::as_slice).find(|b| *b > key);
                    out.insert(TableOutput::create(&self.ctx, number, &sst)?)
                }
            };
            ikey.clear();
            encode_internal_key(&mut ikey, key, seq, ValueKind::Put);
            o.add(&ikey, value)?;
            count += 1;
        }
        tables.extend(out.map(TableOutput::finish).transpose()?.flatten());
        Ok((count, tables))
    }

    /// Removes tables an ingestion wrote but did not install. A failure leaves orphans that
    /// the next open deletes.
    fn remove_tables(&self, numbers: &[u64]) {
        for &n in numbers {
            let _ = self.ctx.fs.remove(&table_path(&self.dir, n));
        }
    }
}

/// The deepest level where `table` overlaps no table of that level or any level above it;
/// 0 if it overlaps level 0.
fn target_level(version: &Version, table: &FileMeta) -> usize {
    let (lo, hi) = (user_key(&table.smallest), user_key(&table.largest));
    let mut target = 0;
    for level in 0..version.levels.len() {
        if !files_in_range(version, level, Bound::Included(lo), Bound::Included(hi)).is_empty() {
            break;
        }
        target = level;
    }
    target
}
