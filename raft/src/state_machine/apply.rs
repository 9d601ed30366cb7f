//! Applying one replicated [`WriteRequest`] to a kho [`Store`]: exactly what a local
//! [`kho::record::StoreBatch`] does (records, index entries and, if on, feed entries in one
//! write batch), plus the Raft bookkeeping (`X|raft/applied`, `X|raft/membership`) as
//! application keys **in the same batch**, so the applied log id can never disagree with
//! the applied data after a crash.
//!
//! Determinism: a request the record layer refuses (an insert over an existing record, a
//! malformed ID, key or payload) is refused on every replica alike, since they apply the same
//! entries to the same state; the refusal still advances the applied log id (a batch holding
//! only the bookkeeping). Any other failure is the replica's own (I/O) and stops the node.

use kho::record::{Store, StoreBatch};
use serde::{Serialize, Serializer};

use crate::error::{Error, Result};
use crate::types::{RecordOp, Rejection, WriteRequest, WriteResponse};

/// Application key of the last applied log id.
pub(crate) const APPLIED_KEY: &str = "raft/applied";
/// Application key of the last applied membership.
pub(crate) const MEMBERSHIP_KEY: &str = "raft/membership";

/// A MessagePack payload re-serialized through the store's serializer, so the store encodes
/// exactly what a local `insert` of the original value would have encoded.
struct Transcoded<'a>(&'a [u8]);

impl Serialize for Transcoded<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut de = rmp_serde::Deserializer::new(self.0);
        serde_transcode::transcode(&mut de, s)
    }
}

/// Whether a record-layer error is a deterministic refusal of the request.
fn rejection(e: &kho::record::Error) -> Option<Rejection> {
    use kho::record::Error as E;
    match e {
        E::RecordExists { .. } => Some(Rejection::RecordExists),
        E::InvalidNationalId { .. } | E::Payload(_) => Some(Rejection::Invalid),
        E::Engine(kho::Error::InvalidArgument(_)) => Some(Rejection::Invalid),
        _ => None,
    }
}

fn add_op(store: &Store, b: &mut StoreBatch, op: &RecordOp) -> kho::record::Result<()> {
    match op {
        RecordOp::Insert { collection, pk, id, payload } => {
            let id = store.parse_id(id)?;
            b.insert(collection, pk, &id, &Transcoded(payload))?;
        }
        RecordOp::Upsert { collection, pk, id, payload } => {
            let id = store.parse_id(id)?;
            b.upsert(collection, pk, &id, &Transcoded(payload))?;
        }
        RecordOp::Delete { collection, pk } => {
            b.delete(collection, pk);
        }
    }
    Ok(())
}

fn with_app(mut b: StoreBatch, app: &[(&str, Vec<u8>)]) -> Result<StoreBatch> {
    for (k, v) in app {
        b.put_app(k, v)?;
    }
    Ok(b)
}

/// Applies `req` (or, for a blank or membership entry, nothing) with the application keys
/// `app`, atomically.
pub(crate) fn apply_entry(store: &Store, req: Option<&WriteRequest>, app: &[(&str, Vec<u8>)]) -> Result<WriteResponse> {
    let Some(req) = req else {
        with_app(store.batch(), app)?.commit()?;
        return Ok(WriteResponse::Noop);
    };
    let mut b = store.batch();
    let mut refused = None;
    for op in &req.ops {
        if let Err(e) = add_op(store, &mut b, op) {
            refused = Some(rejection(&e).ok_or(Error::Record(e))?);
            break;
        }
    }
    if refused.is_none() {
        match with_app(b, app)?.commit() {
            Ok(()) => return Ok(WriteResponse::Applied(u32::try_from(req.ops.len()).unwrap_or(u32::MAX))),
            Err(e) => refused = Some(rejection(&e).ok_or(Error::Record(e))?),
        }
    }
    // Refused: only the bookkeeping.
    with_app(store.batch(), app)?.commit()?;
    Ok(WriteResponse::Rejected(refused.unwrap_or(Rejection::Invalid)))
}
