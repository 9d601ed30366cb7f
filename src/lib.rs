//! # kho
//!
//! An embedded, log-structured key-value engine: an append-only checksummed write-ahead log,
//! a concurrent memtable, zstd-compressed SSTables with bloom filters, and a manifest.
#![deny(unsafe_op_in_unsafe_fn)]

mod coding;
mod error;
mod iter;
mod key;
pub mod sst;
pub mod vfs;

#[cfg(feature = "internals")]
pub mod internals {
    //! **Unstable.** Internals exposed only for kho's own benchmarks (`cargo bench --features
    //! internals`). Nothing here is part of the API: it may change or vanish in any release.

    pub use crate::sst::block::{Block, BlockIter};
    pub use crate::sst::block_builder::BlockBuilder;
    pub use crate::sst::bloom::{bloom_hash, BloomBuilder, BloomFilter};
}

pub use error::{Error, Result};
pub use key::{SeqNo, ValueKind, MAX_SEQUENCE};
