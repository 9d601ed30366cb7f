//! Leveled compaction: choosing work (`picker.rs`, pure), deciding which versions survive
//! (`gc.rs`), writing output tables (`output.rs`) and running a task (`job.rs`). The
//! background thread and manual `compact_range` that drive them live in `db/compact.rs`.
//!
//! Invariants kept by every compaction:
//! - For one user key, entries at a smaller level are newer than entries at a deeper level.
//! - Files of every level `>= 1` do not overlap in user keys.
//! - An entry is dropped only if no snapshot and no future reader can see it (`gc.rs`).
//! - Inputs are deleted only after the edit replacing them is durable, and only once no
//!   version references them.

pub(crate) mod gc;
pub(crate) mod job;
pub(crate) mod output;
pub(crate) mod picker;
