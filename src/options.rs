//! Tuning and behaviour knobs: [`Options`] for a database, [`WriteOptions`] per write.
//!
//! Every limit here is a bound on memory or on the size of one on-disk unit; the defaults say
//! why they are what they are.

use std::sync::Arc;

use crate::vfs::{SharedFs, StdFs};

/// How recovery treats a damaged tail of the newest write-ahead log and of the manifest
/// (RocksDB's `WALRecoveryMode`).
///
/// What a crash can leave at the end of a file: the records appended since its last fsync,
/// cut anywhere — or complete in length but with stale or zeroed sectors inside (the file's
/// new size reached the disk, some of its data did not). From the bytes alone such a tail
/// cannot be told apart from a synced record the medium damaged later. A damaged record
/// followed by an intact one is never a crash's doing, and is [`crate::Error::Corruption`]
/// in every mode. See `docs/durability.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// A damaged region at the very end of the newest log or of the manifest, with no intact
    /// record after it, is dropped — and reported: counted in [`crate::DbStats`], listed in
    /// [`crate::Db::recovery_report`], passed to
    /// [`crate::EventListener::on_recovery_dropped`], and shown by `kho verify`. After a
    /// crash on a sound disk it holds only writes never acknowledged as synced; if the medium
    /// damaged the last synced record, that record is dropped too, and the report is how the
    /// application learns it.
    #[default]
    TolerateCorruptedTail,
    /// Any damaged or incomplete record, even at the tail, is [`crate::Error::Corruption`]:
    /// after a crash that tore a write the database does not open until someone decides
    /// (for example by opening it once with `TolerateCorruptedTail` and reading the report).
    AbsoluteConsistency,
}

/// Options for opening a database.
#[derive(Clone)]
pub struct Options {
    /// Create the database if the directory holds none. Default: true.
    pub create_if_missing: bool,
    /// Fail if the database already exists. Default: false.
    pub error_if_exists: bool,
    /// The file system to use. Default: the operating system's ([`StdFs`]).
    pub fs: SharedFs,
    /// Bytes of writes buffered in the active memtable before it is frozen and flushed to an
    /// SSTable (at most [`MAX_WRITE_BUFFER_LEN`](crate::limits::MAX_WRITE_BUFFER_LEN), 1 GiB).
    /// Default: 64 MiB (RocksDB's default): big enough that L0 files are not tiny,
    /// small enough that recovery replays at most a few seconds of log.
    pub write_buffer_size: usize,
    /// Fraction of `write_buffer_size` given to each memtable's bloom filter over user keys,
    /// which lets a point read skip the skiplist search for keys the memtable does not hold
    /// (RocksDB's `memtable_prefix_bloom_size_ratio` with whole-key filtering). Default:
    /// 1/64 (1 MiB for a 64 MiB memtable, ~16-20 bits a key for 100-byte values); 0 disables.
    pub memtable_bloom_ratio: f64,
    /// Frozen memtables allowed to wait for flushing before writers stall. Default: 2.
    /// Memory for memtables is bounded by `(1 + max_immutable_memtables) * write_buffer_size`.
    pub max_immutable_memtables: usize,
    /// Largest key accepted, in bytes. Default: 64 KiB; at most
    /// [`MAX_KEY_LEN`](crate::limits::MAX_KEY_LEN) (256 KiB). Keys live in index blocks and
    /// are compared on every lookup; larger keys belong in values.
    pub max_key_size: usize,
    /// Largest value accepted, in bytes. Default: 32 MiB; at most
    /// [`MAX_VALUE_LEN`](crate::limits::MAX_VALUE_LEN) (64 MiB - 256 KiB - 72 bytes), so
    /// that every accepted entry fits one SSTable block.
    pub max_value_size: usize,
    /// Largest encoded write batch accepted, in bytes. Default: 256 MiB; at most
    /// [`MAX_BATCH_LEN`](crate::limits::MAX_BATCH_LEN) (512 MiB). A batch is one WAL record.
    pub max_batch_size: usize,
    /// Uncompressed target size of an SSTable data block. Default: 4 KiB.
    pub block_size: usize,
    /// Keys between restart points in a data block. Default: 16.
    pub block_restart_interval: usize,
    /// Bloom filter bits per key; 0 disables filters. Default: 10 (about 1% false positives).
    pub bloom_bits_per_key: u32,
    /// zstd level for SSTable blocks; 0 stores blocks raw. Default: 3. Level 0 (the
    /// flush's output) uses at most zstd 1 unless `compression_per_level` says otherwise:
    /// see there.
    pub compression_level: i32,
    /// Capacity of the shared block cache in bytes. Default: 64 MiB. Cached blocks live in
    /// memory the cache maps from the system (not the global allocator), up to the capacity
    /// plus `max(capacity / 8, 1 MiB)` of slack; 0 disables the cache.
    pub block_cache_capacity: usize,
    /// One memory budget in bytes for the memtables and the block cache together; when set
    /// it replaces `write_buffer_size` and `block_cache_capacity`: half goes to the
    /// `1 + max_immutable_memtables` memtables (with their bloom filters), the rest to the
    /// block cache including its slack. Outside it: table index and filter blocks,
    /// compaction buffers, blocks pinned by long-lived iterators, and allocator retention
    /// (`docs/benchmarks.md`, "Memory", bounds each). At least
    /// [`min_memory_budget`](crate::min_memory_budget) (about 7 MiB with the defaults) and at most
    /// [`MAX_MEMORY_BUDGET`](crate::MAX_MEMORY_BUDGET),
    /// else [`crate::Error::InvalidArgument`]. Default: `None` (use the two options).
    pub memory_budget: Option<usize>,
    /// How recovery treats a damaged log tail.
    pub recovery_mode: RecoveryMode,
    /// Number of levels in the tree (level 0 plus `num_levels - 1` sorted levels).
    /// Default: 7, enough for `base * 10^5` bytes at the last level.
    pub num_levels: usize,
    /// Level-0 files that trigger a compaction into level 1. Default: 4 (RocksDB's): every
    /// level-0 file is one more table a read may have to probe.
    pub level0_compaction_trigger: usize,
    /// Level-0 files at which each write group is delayed by 1 ms. Default: 20.
    pub level0_slowdown_trigger: usize,
    /// Level-0 files at which writes stop until compaction catches up. Default: 36.
    pub level0_stop_trigger: usize,
    /// Target size of level 1 in bytes; level `n` targets `base * multiplier^(n-1)`.
    /// Default: 256 MiB (RocksDB's), about four level-0 flushes of the default memtable.
    pub level_base_bytes: u64,
    /// Growth factor between consecutive level targets. Default: 10, which bounds the write
    /// amplification per level at about 10 and keeps ~90% of the data at the last level.
    pub level_multiplier: u64,
    /// Size at which compaction output files are cut. Default: 64 MiB.
    pub target_file_size: u64,
    /// Bytes of compaction debt (bytes above the level targets) at which writes are slowed.
    /// Default: 64 GiB (RocksDB's).
    pub soft_pending_compaction_bytes: u64,
    /// Bytes of compaction debt at which writes stop. Default: 256 GiB (RocksDB's).
    pub hard_pending_compaction_bytes: u64,
    /// How much lower than the process the compaction thread runs on the CPU: added to its
    /// nice value on Linux (capped at 19; elsewhere ignored), like RocksDB's
    /// `LowerThreadPoolCPUPriority` for its compaction pool. Compaction then takes the CPU
    /// the application's threads and the flush leave idle, instead of preempting them; when
    /// it falls behind, the level-0 and pending-bytes triggers slow writers down, which hands
    /// it the CPU back. Between 0 (same priority as the process) and 19. Default: 10 (feed-on
    /// ingest on 2 cores ~7% faster; docs/benchmarks.md).
    pub compaction_thread_nice: i32,
    /// zstd level per level, overriding `compression_level` (e.g. `[1, 1, 3, 3, 3, 6, 6]`:
    /// fast where data is rewritten soon, stronger where it stays); levels past the end of
    /// the list use `compression_level`. Default: empty, which means level 0 at
    /// `min(compression_level, 1)` and every other level at `compression_level`: level-0
    /// tables are rewritten by the next level-0 compaction (or moved down as they are, at
    /// their level), and the flush that writes them is on the write path's critical
    /// resource, so they are compressed fast (zstd 1 costs ~10% less CPU than 3 on a
    /// flush-heavy ingest for ~1% more bytes at level 0; docs/benchmarks.md).
    pub compression_per_level: Vec<i32>,
    /// Receives recovery and background-error events. Default: none.
    pub event_listener: Option<Arc<dyn crate::EventListener>>,
    /// Encryption at rest (`docs/encryption.md`): `None` (the default) writes plaintext
    /// files; `Some` seals every table block and every log and manifest record with
    /// AES-256-GCM under data keys kept in the database's key registry, itself under the
    /// master key of the given [`crate::crypt::KeyProvider`]. Turning it on for an existing
    /// plaintext database encrypts every file written from then on
    /// ([`crate::Db::reencrypt`] rewrites the rest). An encrypted database opened without it
    /// fails with [`crate::Error::KeyNeeded`].
    pub encryption: Option<crate::crypt::Encryption>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            create_if_missing: true,
            error_if_exists: false,
            fs: Arc::new(StdFs),
            write_buffer_size: 64 << 20,
            max_immutable_memtables: 2,
            max_key_size: 64 << 10,
            max_value_size: 32 << 20,
            max_batch_size: 256 << 20,
            block_size: 4096,
            block_restart_interval: 16,
            bloom_bits_per_key: 10,
            compression_level: 3,
            block_cache_capacity: 64 << 20,
            memory_budget: None,
            recovery_mode: RecoveryMode::TolerateCorruptedTail,
            num_levels: 7,
            level0_compaction_trigger: 4,
            level0_slowdown_trigger: 20,
            level0_stop_trigger: 36,
            level_base_bytes: 256 << 20,
            level_multiplier: 10,
            target_file_size: 64 << 20,
            soft_pending_compaction_bytes: 64 << 30,
            hard_pending_compaction_bytes: 256 << 30,
            compaction_thread_nice: 10,
            compression_per_level: Vec::new(),
            memtable_bloom_ratio: 1.0 / 64.0,
            event_listener: None,
            encryption: None,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("create_if_missing", &self.create_if_missing)
            .field("error_if_exists", &self.error_if_exists)
            .field("fs", &self.fs)
            .field("write_buffer_size", &self.write_buffer_size)
            .field("max_immutable_memtables", &self.max_immutable_memtables)
            .field("max_key_size", &self.max_key_size)
            .field("max_value_size", &self.max_value_size)
            .field("block_size", &self.block_size)
            .field("bloom_bits_per_key", &self.bloom_bits_per_key)
            .field("compression_level", &self.compression_level)
            .field("block_cache_capacity", &self.block_cache_capacity)
            .field("memory_budget", &self.memory_budget)
            .field("recovery_mode", &self.recovery_mode)
            .field("num_levels", &self.num_levels)
            .field("level0_compaction_trigger", &self.level0_compaction_trigger)
            .field("level_base_bytes", &self.level_base_bytes)
            .field("level_multiplier", &self.level_multiplier)
            .field("target_file_size", &self.target_file_size)
            .field("compression_per_level", &self.compression_per_level)
            .field("compaction_thread_nice", &self.compaction_thread_nice)
            .field("memtable_bloom_ratio", &self.memtable_bloom_ratio)
            .field("event_listener", &self.event_listener.is_some())
            .field("encryption", &self.encryption.as_ref().map(|e| e.provider.current_master_id()))
            .finish_non_exhaustive()
    }
}

impl Options {
    /// The options a database runs with: `memory_budget`, if set, divided into
    /// `write_buffer_size` and `block_cache_capacity`, and everything checked.
    pub(crate) fn resolved(&self) -> crate::Result<Options> {
        let mut o = self.clone();
        crate::memory_budget::apply(&mut o)?;
        o.validate()?;
        Ok(o)
    }

    /// Checks the options for values kho cannot work with.
    pub(crate) fn validate(&self) -> crate::Result<()> {
        let bad = |m: &str| Err(crate::Error::InvalidArgument(m.to_owned()));
        if self.write_buffer_size < 4096 {
            return bad("write_buffer_size must be at least 4096 bytes");
        }
        if self.block_size < 64 || self.block_size > (16 << 20) {
            return bad("block_size must be between 64 bytes and 16 MiB");
        }
        if self.block_restart_interval == 0 {
            return bad("block_restart_interval must be at least 1");
        }
        if self.max_immutable_memtables == 0 {
            return bad("max_immutable_memtables must be at least 1");
        }
        if !(0..=22).contains(&self.compression_level) {
            return bad("compression_level must be between 0 and 22");
        }
        if !(2..=crate::version::MAX_LEVELS as usize).contains(&self.num_levels) {
            return bad("num_levels must be between 2 and 16");
        }
        if self.level0_compaction_trigger == 0
            || self.level0_slowdown_trigger < self.level0_compaction_trigger
            || self.level0_stop_trigger < self.level0_slowdown_trigger
        {
            return bad("level-0 triggers must satisfy 0 < compaction <= slowdown <= stop");
        }
        if self.level_multiplier < 2 || self.level_base_bytes == 0 || self.target_file_size == 0 {
            return bad("level_multiplier must be at least 2; level_base_bytes and target_file_size positive");
        }
        if !(0..=crate::util::thread_priority::MAX_NICE).contains(&self.compaction_thread_nice) {
            return bad("compaction_thread_nice must be between 0 and 19");
        }
        if self.compression_per_level.iter().any(|l| !(0..=22).contains(l)) {
            return bad("compression_per_level entries must be between 0 and 22");
        }
        if !(0.0..=0.25).contains(&self.memtable_bloom_ratio) {
            return bad("memtable_bloom_ratio must be between 0 and 0.25");
        }
        use crate::limits::{MAX_BATCH_LEN, MAX_KEY_LEN, MAX_VALUE_LEN, MAX_WRITE_BUFFER_LEN};
        if self.max_key_size == 0 || self.max_key_size > MAX_KEY_LEN {
            return Err(crate::Error::InvalidArgument(format!("max_key_size must be 1..={MAX_KEY_LEN} bytes")));
        }
        if self.max_value_size > MAX_VALUE_LEN {
            return Err(crate::Error::InvalidArgument(format!(
                "max_value_size must be at most {MAX_VALUE_LEN} bytes (kho::limits::MAX_VALUE_LEN)"
            )));
        }
        if self.max_batch_size > MAX_BATCH_LEN {
            return Err(crate::Error::InvalidArgument(format!("max_batch_size must be at most {MAX_BATCH_LEN} bytes")));
        }
        if self.write_buffer_size > MAX_WRITE_BUFFER_LEN {
            return Err(crate::Error::InvalidArgument(format!(
                "write_buffer_size must be at most {MAX_WRITE_BUFFER_LEN} bytes"
            )));
        }
        Ok(())
    }
}

impl Options {
    /// The zstd level for tables written to `level`.
    pub(crate) fn compression_for_level(&self, level: usize) -> i32 {
        match self.compression_per_level.get(level) {
            Some(&l) => l,
            None if level == 0 && self.compression_per_level.is_empty() => self.compression_level.min(1),
            None => self.compression_level,
        }
    }

    /// The target size in bytes of `level` (`>= 1`).
    pub(crate) fn level_target_bytes(&self, level: usize) -> u64 {
        let mut t = self.level_base_bytes;
        for _ in 1..level {
            t = t.saturating_mul(self.level_multiplier);
        }
        t
    }
}

/// Options for one write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Fsync the write-ahead log before acknowledging. Without it a write survives a process
    /// crash but may be lost on power failure. Default: false.
    pub sync: bool,
}

impl WriteOptions {
    /// Options for a write that is durable once acknowledged.
    pub fn synced() -> Self {
        WriteOptions { sync: true }
    }
}

#[cfg(test)]
mod tests {
    use super::Options;

    #[test]
    fn level_zero_compresses_fast_by_default() {
        let o = Options::default();
        assert_eq!((0..7).map(|l| o.compression_for_level(l)).collect::<Vec<_>>(), [1, 3, 3, 3, 3, 3, 3]);
        // Raw stays raw; a faster level stays as fast; a stronger one is capped at level 0 only.
        let raw = Options { compression_level: 0, ..Options::default() };
        assert_eq!((raw.compression_for_level(0), raw.compression_for_level(1)), (0, 0));
        let fast = Options { compression_level: -5, ..Options::default() };
        assert_eq!((fast.compression_for_level(0), fast.compression_for_level(6)), (-5, -5));
        let strong = Options { compression_level: 9, ..Options::default() };
        assert_eq!((strong.compression_for_level(0), strong.compression_for_level(1)), (1, 9));
        // An explicit list wins, also at level 0; levels past its end use `compression_level`.
        let listed = Options { compression_per_level: vec![3], ..Options::default() };
        assert_eq!((listed.compression_for_level(0), listed.compression_for_level(2)), (3, 3));
        let partial = Options { compression_per_level: vec![0, 1], compression_level: 6, ..Options::default() };
        assert_eq!([0, 1, 2].map(|l| partial.compression_for_level(l)), [0, 1, 6]);
    }
}
