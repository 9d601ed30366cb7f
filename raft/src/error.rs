//! [`Error`]: what kho-raft's own calls fail with, and its conversion into openraft's
//! `StorageError` (which makes a Raft node stop: a replica whose disk fails must not vote or
//! acknowledge).
//!
//! Messages name files, log indexes and shapes, never a national ID or a payload (kho's own
//! errors already redact keys).

use std::path::PathBuf;

use crate::types::NodeId;

/// Result of kho-raft calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// kho-raft's errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The storage engine failed.
    #[error("kho: {0}")]
    Kho(#[from] kho::Error),
    /// The record layer failed.
    #[error("kho record layer: {0}")]
    Record(#[from] kho::record::Error),
    /// Something kho-raft wrote could not be decoded: the file or stream is damaged.
    #[error("corrupt {what} in {}", path.display())]
    Corrupt {
        /// The database, file or stream.
        path: PathBuf,
        /// What was expected.
        what: String,
    },
    /// A value could not be encoded.
    #[error("encode: {0}")]
    Encode(String),
    /// openraft refused or failed a request (not the leader, shut down, ...).
    #[error("raft: {0}")]
    Raft(String),
    /// The request needs the leader; this node knows of `leader` (if any).
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// An argument was out of range.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// An I/O error outside kho (the transport).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// A [`Error::Corrupt`] for `path`.
    pub fn corrupt(path: impl Into<PathBuf>, what: impl Into<String>) -> Error {
        Error::Corrupt { path: path.into(), what: what.into() }
    }
}

/// openraft's storage error carrying an [`Error`] (as text plus its source chain).
pub(crate) type StorageError = openraft::StorageError<NodeId>;

/// A read failure for openraft.
pub(crate) fn read_err(e: impl Into<Error>) -> StorageError {
    let e: Error = e.into();
    openraft::StorageIOError::read(&e).into()
}

/// A log write failure for openraft.
pub(crate) fn write_logs_err(e: impl Into<Error>) -> StorageError {
    let e: Error = e.into();
    openraft::StorageIOError::write_logs(&e).into()
}

/// A vote write failure for openraft.
pub(crate) fn write_vote_err(e: impl Into<Error>) -> StorageError {
    let e: Error = e.into();
    openraft::StorageIOError::write_vote(&e).into()
}

/// A state-machine write failure for openraft.
pub(crate) fn write_sm_err(e: impl Into<Error>) -> StorageError {
    let e: Error = e.into();
    openraft::StorageIOError::write_state_machine(&e).into()
}

/// A snapshot failure for openraft.
pub(crate) fn snapshot_err(e: impl Into<Error>) -> StorageError {
    let e: Error = e.into();
    openraft::StorageIOError::write_snapshot(None, &e).into()
}
