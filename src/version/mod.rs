//! Versions: which SSTables are live at each level, and the manifest that records every
//! change to that set.
//!
//! - [`VersionEdit`] (`edit.rs`): one change, as encoded in the manifest.
//! - [`VersionBuilder`] (`builder/`): the one place edits are applied to a file set, each
//!   checked first; recovery, live edits and the inspection tools all go through it, and a
//!   failed check is an [`Inconsistency`] naming the edit's manifest offset.
//! - [`read_manifest`] (`manifest.rs`): a manifest's edits, its torn tail handled as the
//!   [`crate::RecoveryMode`] says.
//! - `Version` (`version.rs`): an immutable snapshot of the live files per level; readers
//!   and iterators hold an `Arc<Version>`, which keeps its files from being deleted.
//! - `VersionSet` (`set.rs`): the current version, the file-number and sequence counters,
//!   the manifest writer, and recovery from `CURRENT` + manifest.

mod builder;
mod edit;
mod manifest;
mod set;
mod table_file;
#[allow(clippy::module_inception)]
mod version;

pub(crate) use builder::Counters;
pub use builder::{Inconsistency, VersionBuilder};
pub use edit::{FileMeta, VersionEdit, MAX_LEVELS};
pub use manifest::{read_manifest, ManifestEdits};
pub(crate) use set::{write_manifest, VersionSet};
pub(crate) use table_file::{crosses_partition, TableContext, TableFile};
pub(crate) use version::Version;
