//! Counters of what the database did (bytes logged, flushed, compacted; stalls) and the
//! [`DbStats`] summary, printable as a RocksDB-style "Compaction Stats" table.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::key::SeqNo;
use crate::version::MAX_LEVELS;

/// Monotonic counters updated by the write path, flushes and compactions.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Bytes of write batches appended to the log (the user's writes).
    pub user_bytes: AtomicU64,
    /// Bytes of tables written by flushes.
    pub flush_bytes: AtomicU64,
    pub flushes: AtomicU64,
    /// Per output level: bytes read and written by compactions, and their number.
    pub compaction_read: [AtomicU64; MAX_LEVELS as usize],
    pub compaction_write: [AtomicU64; MAX_LEVELS as usize],
    pub compactions: [AtomicU64; MAX_LEVELS as usize],
    pub trivial_moves: AtomicU64,
    /// Write groups delayed by the slowdown rule, and groups stopped until compaction caught up.
    pub slowdowns: AtomicU64,
    pub stops: AtomicU64,
    /// Total time writers spent delayed or stopped, in microseconds.
    pub stall_micros: AtomicU64,
    /// Write batches committed, the groups they were committed in, and the log fsyncs.
    pub write_batches: AtomicU64,
    pub write_groups: AtomicU64,
    pub log_syncs: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// One level's row of [`DbStats`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LevelStats {
    /// Number of tables.
    pub files: usize,
    /// Bytes of tables.
    pub bytes: u64,
    /// Compaction score (>= 1 means compaction is due); 0 for the last level.
    pub score: f64,
    /// Bytes read by compactions into this level.
    pub read_bytes: u64,
    /// Bytes written by compactions (and, for level 0, flushes) into this level.
    pub write_bytes: u64,
    /// Number of compactions (and, for level 0, flushes) into this level.
    pub compactions: u64,
}

/// A point-in-time summary returned by [`crate::Db::stats`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DbStats {
    /// Newest visible sequence number.
    pub last_sequence: SeqNo,
    /// Approximate bytes in the active memtable.
    pub memtable_bytes: usize,
    /// Frozen memtables waiting for flush.
    pub immutable_memtables: usize,
    /// Per level (index = level).
    pub levels: Vec<LevelStats>,
    /// Bytes the user wrote (encoded batches appended to the log).
    pub user_bytes: u64,
    /// Bytes of tables written by flushes and compactions together.
    pub table_bytes_written: u64,
    /// Estimated bytes of compaction debt (above the level targets).
    pub pending_compaction_bytes: u64,
    /// Compactions that re-linked a file instead of rewriting it.
    pub trivial_moves: u64,
    /// Write groups delayed 1 ms because level 0 or the debt passed the slowdown threshold.
    pub write_slowdowns: u64,
    /// Times writers stopped until background work caught up.
    pub write_stops: u64,
    /// Total time writers were delayed or stopped, in microseconds.
    pub stall_micros: u64,
    /// Block cache hits and misses.
    pub cache_hits: u64,
    /// Block cache misses.
    pub cache_misses: u64,
    /// Bytes charged to the blocks in the block cache (their pool slots plus a small
    /// per-entry overhead), at most its capacity.
    pub cache_usage: u64,
    /// Bytes the block cache's buffer pool has mapped from the system: cached blocks,
    /// evicted blocks still used by cursors or returned values, and free slots kept for
    /// reuse; at most the capacity plus `max(capacity / 8, 1 MiB)` (`docs/benchmarks.md`,
    /// "Memory").
    pub cache_pool_bytes: u64,
    /// Write batches committed (each `put`, `delete` or `write` is one).
    pub write_batches: u64,
    /// Commit groups: each is one log append, and at most one fsync.
    pub write_groups: u64,
    /// Log fsyncs by commit groups (one per group holding a `sync` write).
    pub log_syncs: u64,
    /// Log batches and manifest edits recovery dropped from damaged tails when this database
    /// was opened ([`crate::Db::recovery_report`] has where and why).
    pub recovery_dropped_records: u64,
    /// Bytes recovery dropped from damaged tails.
    pub recovery_dropped_bytes: u64,
    /// Files (damaged logs, possibly needed tables) recovery moved to `lost/` instead of
    /// deleting them.
    pub recovery_quarantined_files: u64,
}

impl DbStats {
    /// Table bytes written per user byte written (flushes + compactions), or 0 before any
    /// write.
    pub fn write_amplification(&self) -> f64 {
        if self.user_bytes == 0 {
            0.0
        } else {
            self.table_bytes_written as f64 / self.user_bytes as f64
        }
    }

    /// Total bytes of live tables.
    pub fn total_table_bytes(&self) -> u64 {
        self.levels.iter().map(|l| l.bytes).sum()
    }

    pub(crate) fn fill_counters(&mut self, c: &Counters) {
        for (level, row) in self.levels.iter_mut().enumerate() {
            row.read_bytes = get(&c.compaction_read[level]);
            row.write_bytes = get(&c.compaction_write[level]);
            row.compactions = get(&c.compactions[level]);
            if level == 0 {
                row.write_bytes += get(&c.flush_bytes);
                row.compactions += get(&c.flushes);
            }
        }
        self.user_bytes = get(&c.user_bytes);
        self.table_bytes_written = get(&c.flush_bytes) + c.compaction_write.iter().map(get).sum::<u64>();
        self.trivial_moves = get(&c.trivial_moves);
        self.write_slowdowns = get(&c.slowdowns);
        self.write_stops = get(&c.stops);
        self.stall_micros = get(&c.stall_micros);
        self.write_batches = get(&c.write_batches);
        self.write_groups = get(&c.write_groups);
        self.log_syncs = get(&c.log_syncs);
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

impl fmt::Display for DbStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "** Compaction Stats **")?;
        writeln!(f, "Level  Files   Size(MB)  Score  Read(MB)  Write(MB)  Comp(cnt)  W-Amp")?;
        for (level, l) in self.levels.iter().enumerate() {
            let wamp = if l.read_bytes > 0 && level > 0 { l.write_bytes as f64 / l.read_bytes as f64 } else { 0.0 };
            writeln!(
                f,
                "  L{level:<3} {:>5} {:>10.1} {:>6.2} {:>9.1} {:>10.1} {:>10} {:>6.2}",
                l.files,
                mib(l.bytes),
                l.score,
                mib(l.read_bytes),
                mib(l.write_bytes),
                l.compactions,
                wamp
            )?;
        }
        writeln!(
            f,
            "  Sum  {:>5} {:>10.1}        {:>9.1} {:>10.1}",
            self.levels.iter().map(|l| l.files).sum::<usize>(),
            mib(self.total_table_bytes()),
            mib(self.levels.iter().map(|l| l.read_bytes).sum()),
            mib(self.table_bytes_written)
        )?;
        writeln!(
            f,
            "User writes: {:.1} MB, write amplification: {:.2}, pending compaction: {:.1} MB, trivial moves: {}",
            mib(self.user_bytes),
            self.write_amplification(),
            mib(self.pending_compaction_bytes),
            self.trivial_moves
        )?;
        writeln!(
            f,
            "Writes: {} batches in {} commit groups ({:.2} per group), {} log syncs",
            self.write_batches,
            self.write_groups,
            self.write_batches as f64 / self.write_groups.max(1) as f64,
            self.log_syncs
        )?;
        writeln!(
            f,
            "Stalls: {} slowdowns, {} stops, {:.3} s stalled; memtable {:.1} MB + {} immutable; cache hits {} misses {}",
            self.write_slowdowns,
            self.write_stops,
            self.stall_micros as f64 / 1e6,
            mib(self.memtable_bytes as u64),
            self.immutable_memtables,
            self.cache_hits,
            self.cache_misses
        )?;
        if self.recovery_dropped_records > 0 || self.recovery_quarantined_files > 0 {
            writeln!(
                f,
                "Recovery: dropped {} records ({} bytes) from damaged tails, moved {} files to lost/",
                self.recovery_dropped_records, self.recovery_dropped_bytes, self.recovery_quarantined_files
            )?;
        }
        Ok(())
    }
}
