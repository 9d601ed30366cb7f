//! Versions: which SSTables are live at each level, and the manifest that records every
//! change to that set.
//!
//! - [`VersionEdit`] (`edit.rs`): one change, as encoded in the manifest.
//! - `Version` (`version.rs`): an immutable snapshot of the live files per level; readers
//!   and iterators hold an `Arc<Version>`, which keeps its files from being deleted.
//! - `VersionSet` (`set.rs`): the current version, the file-number and sequence counters,
//!   the manifest writer, and recovery from `CURRENT` + manifest.

mod edit;
mod set;
mod table_file;
#[allow(clippy::module_inception)]
mod version;

pub use edit::{FileMeta, VersionEdit, MAX_LEVELS};
pub use set::read_manifest;
pub(crate) use set::VersionSet;
pub(crate) use table_file::{TableContext, TableFile};
pub(crate) use version::Version;
