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
//! - [`RaftStore`]: one replica and its record API (`node.rs`); [`digest`] to compare
//!   replicas; [`wait`] for a leader or convergence;
//! - behind the `testing` feature, an in-process cluster with a faulty network
//!   (`testing/`);
//! - [`partition::RangeMap`]: national-ID prefix ranges (province, century/gender, birth
//!   year) to Raft groups (`partition.rs`);
//! - [`tcp`]: a simple TCP transport (length-prefixed MessagePack frames) for the demo;
//! - the replicated types ([`TypeConfig`], [`WriteRequest`], [`RecordOp`]) in `types.rs`.

pub mod digest;
pub mod error;
pub mod log_store;
pub mod node;
pub mod node_dir;
pub mod partition;
pub mod snapshot;
pub mod state_machine;
pub mod tcp;
#[cfg(feature = "testing")]
pub mod testing;
pub mod types;
pub mod wait;

pub use digest::{digest, StoreDigest};
pub use error::{Error, Result};
pub use log_store::LogStore;
pub use node::{Applied, Consistency, RaftStore, MAX_REQUEST_BYTES};
pub use node_dir::NodeDir;
pub use state_machine::{ApplyObserver, StateMachine};
pub use types::{LogId, NodeId, RecordOp, Rejection, TypeConfig, WriteRequest, WriteResponse};
