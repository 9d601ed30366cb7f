//! # kho-raft
//!
//! Raft replication of kho record stores: [openraft](https://docs.rs/openraft/0.9) runs the
//! consensus protocol; kho is the storage under it (see `docs/scale-out.md`):
//! - [`LogStore`]: the Raft log, vote, committed and purged ids in a kho database of their
//!   own, every write synced (`log_store.rs`);
//! - [`StateMachine`]: a kho record [`kho::record::Store`] applying replicated store batches,
//!   with the applied log id and membership in the same write batch (`state_machine/`);
//! - snapshots: a kho checkpoint packed into a checksummed stream and installed by an atomic
//!   generation swap (`snapshot/`, `node_dir.rs`);
//! - the replicated types ([`TypeConfig`], [`WriteRequest`], [`RecordOp`]) in `types.rs`.

pub mod error;
pub mod log_store;
pub mod node_dir;
pub mod snapshot;
pub mod state_machine;
pub mod types;

pub use error::{Error, Result};
pub use log_store::LogStore;
pub use node_dir::NodeDir;
pub use state_machine::StateMachine;
pub use types::{LogId, NodeId, RecordOp, Rejection, TypeConfig, WriteRequest, WriteResponse};
