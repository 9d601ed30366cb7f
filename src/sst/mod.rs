//! Block-based SSTables: immutable sorted files of internal-key/value entries.
//!
//! The format is specified in `docs/sst-format.md`; its constants live in `format.rs`. A table
//! is `data block* | filter block | properties block | index block | footer`; every block is
//! wrapped as `payload | transform | crc32` (see `transform.rs`).
//!
//! - [`SstWriter`] streams sorted entries into a new file ([`SstOptions`] configures it).
//! - [`SstReader`] opens a table: point lookups ([`SstReader::get`], bloom-filtered), cursors
//!   ([`SstIter`]), a full consistency check ([`SstReader::verify`]) and the block layout for
//!   tools ([`SstReader::layout`]).
//! - [`BlockCache`] caches decoded data blocks across readers.
//! - [`TableProperties`] summarises a table.
//!
//! Every decoder returns [`crate::Error::Corruption`] with the file and offset on bad bytes;
//! none panics.

pub(crate) mod block;
pub(crate) mod block_builder;
mod block_pool;
pub(crate) mod bloom;
mod cache;
mod footer;
pub(crate) mod format;
mod iter;
mod properties;
mod reader;
mod transform;
mod verify;
mod writer;

#[cfg(test)]
mod test_util;

pub use cache::BlockCache;
pub use format::{Transform, ENCRYPTED_FORMAT_VERSION, FORMAT_VERSION, TABLE_MAGIC};
pub use iter::SstIter;
pub use properties::TableProperties;
pub use reader::SstReader;
pub use verify::{BlockInfo, BlockKind, FilterInfo, FooterInfo, IndexEntryInfo, VerifyReport};
pub use writer::{SstOptions, SstWriter};
