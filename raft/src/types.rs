//! The replicated types: openraft's type configuration for kho ([`TypeConfig`]), the
//! requests a log entry carries ([`WriteRequest`], [`RecordOp`]) and what applying one
//! answers ([`WriteResponse`]).
//!
//! Invariant: a request holds only what applying it needs, already encoded (payloads as
//! MessagePack), so applying it is a pure function of the store's state and the request —
//! every replica applies the same entry to the same state and ends in the same state.
//! `Debug` prints shapes and counts only: never a national ID or a payload.

use std::fmt;
use std::io::Cursor;

use kho::record::NationalId;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Raft node ids.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// openraft's types for a kho replica: kho record writes as the application data, the
    /// snapshot as an in-memory byte stream (see `snapshot/format.rs`).
    pub TypeConfig:
        D = WriteRequest,
        R = WriteResponse,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// A log id of this configuration.
pub type LogId = openraft::LogId<NodeId>;
/// A log entry of this configuration.
pub type Entry = openraft::Entry<TypeConfig>;
/// The membership as stored by a state machine.
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
/// A Raft node of this configuration.
pub type Raft = openraft::Raft<TypeConfig>;

/// One record write, as [`kho::record::StoreBatch`] would do it locally. Byte fields are
/// MessagePack `bin` (`serde_bytes`), not arrays of integers.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordOp {
    /// Insert; the whole request is rejected if the key holds a record.
    Insert {
        /// Collection name.
        collection: String,
        /// Primary key.
        #[serde(with = "serde_bytes")]
        pk: Vec<u8>,
        /// The 12-digit national ID.
        id: String,
        /// The payload, MessagePack (`rmp_serde::to_vec_named`).
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// Insert or replace (moving the index entry if the ID changed).
    Upsert {
        /// Collection name.
        collection: String,
        /// Primary key.
        #[serde(with = "serde_bytes")]
        pk: Vec<u8>,
        /// The 12-digit national ID.
        id: String,
        /// The payload, MessagePack (`rmp_serde::to_vec_named`).
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// Delete (a no-op if there is no record).
    Delete {
        /// Collection name.
        collection: String,
        /// Primary key.
        #[serde(with = "serde_bytes")]
        pk: Vec<u8>,
    },
}

impl RecordOp {
    /// An insert of `payload` (encoded here, as `Store::insert` would).
    pub fn insert<T: Serialize + ?Sized>(
        collection: &str,
        pk: impl AsRef<[u8]>,
        id: &NationalId,
        payload: &T,
    ) -> Result<RecordOp> {
        let (collection, pk, id, payload) = put_fields(collection, pk.as_ref(), id, payload)?;
        Ok(RecordOp::Insert { collection, pk, id, payload })
    }

    /// An upsert of `payload`.
    pub fn upsert<T: Serialize + ?Sized>(
        collection: &str,
        pk: impl AsRef<[u8]>,
        id: &NationalId,
        payload: &T,
    ) -> Result<RecordOp> {
        let (collection, pk, id, payload) = put_fields(collection, pk.as_ref(), id, payload)?;
        Ok(RecordOp::Upsert { collection, pk, id, payload })
    }

    /// A delete.
    pub fn delete(collection: &str, pk: impl AsRef<[u8]>) -> RecordOp {
        RecordOp::Delete { collection: collection.to_string(), pk: pk.as_ref().to_vec() }
    }

    /// The op's kind, for logs and `Debug`.
    pub fn kind(&self) -> &'static str {
        match self {
            RecordOp::Insert { .. } => "insert",
            RecordOp::Upsert { .. } => "upsert",
            RecordOp::Delete { .. } => "delete",
        }
    }
}

/// The fields of an insert or upsert, the payload encoded as `Store::insert` encodes it.
fn put_fields<T: Serialize + ?Sized>(
    collection: &str,
    pk: &[u8],
    id: &NationalId,
    payload: &T,
) -> Result<(String, Vec<u8>, String, Vec<u8>)> {
    let payload = rmp_serde::to_vec_named(payload).map_err(|e| Error::Encode(e.to_string()))?;
    Ok((collection.to_string(), pk.to_vec(), id.as_str().to_string(), payload))
}

impl fmt::Debug for RecordOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No key, ID or payload: they may be personal data.
        write!(f, "RecordOp::{}", self.kind())
    }
}

/// What one log entry asks the state machine to do: the ops of one atomic store batch.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteRequest {
    /// Applied in order, atomically: all or (on a rejection) none.
    pub ops: Vec<RecordOp>,
}

impl fmt::Debug for WriteRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WriteRequest({} ops)", self.ops.len())
    }
}

impl fmt::Display for WriteRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why a replicated write changed nothing. Every replica reaches the same verdict from the
/// same state, so a rejection is part of the replicated history, not a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rejection {
    /// An insert met an existing record.
    RecordExists,
    /// An op was malformed (bad national ID, primary key, collection name or payload).
    Invalid,
}

/// The result of applying one log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteResponse {
    /// A blank or membership entry: nothing for the store.
    Noop,
    /// The request's ops were applied (this many).
    Applied(u32),
    /// The request changed nothing.
    Rejected(Rejection),
}
