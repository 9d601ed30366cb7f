//! Shared primitives, the lowest layer of the crate: every other module may use them, and
//! they use nothing of the crate above them (`tests/layering.rs` checks it). One concept a
//! file:
//!
//! - `coding`: little-endian fixed-width and varint encoding of every on-disk format;
//! - `checksum`: the CRC-32 of every on-disk format;
//! - `hash`: XXH64, the bloom filters' hash;
//! - `blocked_bloom`: the blocked bloom filter's block addressing, probe sequence and bit
//!   setting and testing, shared by the table and memtable filters;
//! - `mapped_u64s`: a growable `u64` sequence in anonymous maps (large transient buffers
//!   kept outside the global allocator);
//! - `prefetch`: a cache-line prefetch hint;
//! - `thread_priority`: lowering a background thread's CPU priority (per thread on Linux);
//! - [`redact`]: how keys and IDs appear in errors and `Debug` strings (never whole);
//! - [`SplitMix64`]: the seedable random number generator of kho and its tools.
//!
//! The outputs of `checksum`, `hash`, `blocked_bloom` and `coding` are part of the file
//! formats, and [`SplitMix64`]'s streams are what seeds reproduce: none of them may change.

pub(crate) mod blocked_bloom;
pub(crate) mod checksum;
pub(crate) mod coding;
pub(crate) mod hash;
pub(crate) mod mapped_u64s;
pub(crate) mod prefetch;
mod redact;
mod splitmix;
pub(crate) mod thread_priority;

pub use redact::redact;
pub use splitmix::SplitMix64;
