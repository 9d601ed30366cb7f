//! Snapshots of the state machine: a kho checkpoint of the live store packed into one byte
//! stream (`format.rs`), built by [`SnapshotBuilder`] (`builder.rs`) and installed by the
//! state machine (`state_machine/install.rs`).

mod builder;
pub mod format;

pub use builder::SnapshotBuilder;
