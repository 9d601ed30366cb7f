//! Tuning and behaviour knobs: [`Options`] for a database, [`WriteOptions`] per write.
//!
//! Every limit here is a bound on memory or on the size of one on-disk unit; the defaults say
//! why they are what they are.

use std::sync::Arc;

use crate::vfs::{SharedFs, StdFs};

/// How recovery treats a damaged write-ahead log (RocksDB's `WALRecoveryMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// A damaged record at the very end of the newest log (a write torn by a crash) is dropped;
    /// a damaged record followed by intact ones is reported as [`crate::Error::Corruption`].
    /// Only writes that were never acknowledged as synced can be lost this way.
    #[default]
    TolerateCorruptedTail,
    /// Any damaged or incomplete record, even at the tail, is reported as corruption.
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
    /// SSTable. Default: 64 MiB (RocksDB's default): big enough that L0 files are not tiny,
    /// small enough that recovery replays at most a few seconds of log.
    pub write_buffer_size: usize,
    /// Frozen memtables allowed to wait for flushing before writers stall. Default: 2.
    /// Memory for memtables is bounded by `(1 + max_immutable_memtables) * write_buffer_size`.
    pub max_immutable_memtables: usize,
    /// Largest key accepted, in bytes. Default: 64 KiB. Keys live in index blocks and are
    /// compared on every lookup; larger keys belong in values.
    pub max_key_size: usize,
    /// Largest value accepted, in bytes. Default: 64 MiB, so that one WAL record and one
    /// SSTable block always fit comfortably in memory.
    pub max_value_size: usize,
    /// Largest encoded write batch accepted, in bytes. Default: 256 MiB (one WAL record).
    pub max_batch_size: usize,
    /// Uncompressed target size of an SSTable data block. Default: 4 KiB.
    pub block_size: usize,
    /// Keys between restart points in a data block. Default: 16.
    pub block_restart_interval: usize,
    /// Bloom filter bits per key; 0 disables filters. Default: 10 (about 1% false positives).
    pub bloom_bits_per_key: u32,
    /// zstd level for SSTable blocks; 0 stores blocks raw. Default: 3.
    pub compression_level: i32,
    /// Capacity of the shared block cache in bytes. Default: 64 MiB.
    pub block_cache_capacity: usize,
    /// How recovery treats a damaged log tail.
    pub recovery_mode: RecoveryMode,
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
            max_value_size: 64 << 20,
            max_batch_size: 256 << 20,
            block_size: 4096,
            block_restart_interval: 16,
            bloom_bits_per_key: 10,
            compression_level: 3,
            block_cache_capacity: 64 << 20,
            recovery_mode: RecoveryMode::TolerateCorruptedTail,
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
            .field("recovery_mode", &self.recovery_mode)
            .finish_non_exhaustive()
    }
}

impl Options {
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
        if self.max_key_size > (1 << 20) || self.max_value_size > (1 << 30) {
            return bad("max_key_size is at most 1 MiB and max_value_size at most 1 GiB");
        }
        Ok(())
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
