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

pub use error::{Error, Result};
pub use key::{SeqNo, ValueKind, MAX_SEQUENCE};
