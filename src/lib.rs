//! # kho
//!
//! An embedded, log-structured key-value engine: an append-only checksummed write-ahead log
//! with group commit, a concurrent memtable, zstd-compressed SSTables with bloom filters, and
//! a manifest of versioned file sets — built for person-centric records that must never be
//! lost or read back corrupt.
//!
//! ```
//! use kho::{Db, Options, WriteBatch, WriteOptions};
//!
//! # fn main() -> kho::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let db = Db::open(dir.path(), Options::default())?;
//! db.put("citizen:001", "Ha Noi")?;
//!
//! let mut batch = WriteBatch::new();
//! batch.put("citizen:079", "TP.HCM");
//! batch.delete("citizen:001");
//! db.write(batch, &WriteOptions::synced())?; // atomic, durable once it returns
//!
//! assert_eq!(db.get("citizen:001")?, None);
//! let keys: Vec<_> = db.prefix("citizen:")?.map(|kv| kv.map(|(k, _)| k)).collect::<kho::Result<_>>()?;
//! assert_eq!(keys, vec!["citizen:079"]);
//! db.close()?;
//! # Ok(())
//! # }
//! ```
//!
//! On top of it, [`record::Store`] keeps person-centric records — named collections of
//! `serde` payloads, each tied to a validated 12-digit [`record::NationalId`] — with an
//! atomically maintained secondary index, so `store.person(&id)` finds every record of a
//! person at once (see `docs/record-model.md`).
//!
//! See `docs/architecture.md` for the design and `docs/durability.md` for what is
//! guaranteed after a crash.
//!
//! The public surface, deliberately small:
//! - the application API at the root: [`Db`], [`Options`], [`WriteOptions`], [`WriteBatch`],
//!   [`Snapshot`], [`DbIterator`], [`DbStats`], [`RecoveryReport`], [`EventListener`],
//!   [`Error`]; the size limits in [`limits`]; the record layer in [`record`]; incremental,
//!   verified backups in [`backup`];
//! - [`vfs`], to run kho on another file system (the [`vfs::FileSystem`] trait);
//! - [`util::SplitMix64`], the seedable generator kho's tests and tools share;
//! - [`inspect`]: the decoders `kho dump` and `kho verify` read files with (an application
//!   does not need them). Every decoder returns [`Error::Corruption`] on bad bytes and never
//!   panics;
//! - behind the `testing` feature (for tests and the `kho` tool, never for an application):
//!   `vfs::FaultFs`, the crashing, fault-injecting file system, and `record::population`,
//!   the seeded synthetic population.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod backup;
pub(crate) mod batch;
mod compaction;
pub mod crypt;
mod db;
mod error;
mod events;
pub(crate) mod filename;
pub mod inspect;
mod iter;
pub(crate) mod key;
pub mod limits;
mod memory_budget;
mod memtable;
mod options;
pub mod record;
pub(crate) mod sst;
pub mod util;
pub(crate) mod version;
pub mod vfs;
pub(crate) mod wal;

#[cfg(feature = "internals")]
pub mod internals {
    //! **Unstable.** Internals exposed only for kho's own benchmarks (`cargo bench --features
    //! internals`). Nothing here is part of the API: it may change or vanish in any release.

    pub use crate::memtable::Memtable;
    pub use crate::sst::block::{Block, BlockIter};
    pub use crate::sst::block_builder::BlockBuilder;
    pub use crate::sst::bloom::{BloomBuilder, BloomFilter};
    pub use crate::util::hash::xxh64;
}

pub use batch::WriteBatch;
pub use db::{Db, DbStats, IngestReport, LevelStats, RecoveryReport, ReencryptReport, Snapshot};
pub use error::{Error, Result};
pub use events::EventListener;
pub use iter::DbIterator;
pub use key::{SeqNo, ValueKind, MAX_SEQUENCE};
pub use memory_budget::{min_memory_budget, MAX_MEMORY_BUDGET, MIN_BUDGET_CACHE, MIN_BUDGET_WRITE_BUFFER};
pub use options::{Options, RecoveryMode, WriteOptions};
