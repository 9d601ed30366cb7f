//! Applying changes to another store: [`StoreBatch::apply_change`], the consumer side of
//! replication through the feed.
//!
//! Applying is idempotent in order: an insert or update writes the record as the change
//! carries it (the same payload bytes), a delete or erasure deletes it. A consumer that
//! applies a subscription's changes in position order, commits them durably and then
//! acknowledges converges to the source's records after any crash of either side: a
//! redelivered suffix of changes, applied again in order, leaves the same records.
//!
//! An erasure change deletes the record here; it does not erase the person from this
//! store's own feed (call [`Store::erase_person`](crate::record::Store::erase_person) for
//! that).

use bytes::Bytes;

use super::change::{Change, ChangeKind};
use crate::record::batch::StoreBatch;
use crate::record::error::{Error, Result};
use crate::record::value::RECORD_FORMAT_V1;
use crate::record::write::Op;

impl StoreBatch {
    /// Adds the effect of `change` (from this or another store's feed): an upsert of its
    /// record for an insert or update, a delete for a delete or erasure.
    pub fn apply_change(&mut self, change: &Change) -> Result<&mut Self> {
        let store = self.store().clone();
        store.inner.check_writable()?;
        let op = match (change.kind, &change.payload) {
            (ChangeKind::Insert | ChangeKind::Update, Some(payload)) => {
                crate::record::store::check_pk(&change.pk)?;
                store.inner.opts.id_rules.check(&change.id)?;
                let cid = store.inner.catalog.get_or_create(&store.inner.db, &change.collection)?;
                let mut value = Vec::with_capacity(1 + change.id.as_bytes().len() + payload.len());
                value.push(RECORD_FORMAT_V1);
                value.extend_from_slice(change.id.as_bytes());
                value.extend_from_slice(payload);
                Op::Put { cid, pk: change.pk.clone(), id: change.id, value, insert_only: false }
            }
            (ChangeKind::Insert | ChangeKind::Update, None) => {
                return Err(Error::invalid(format!("change at {} has no payload", change.position)));
            }
            _ => match store.inner.catalog.lookup(&change.collection) {
                Some(cid) => Op::Delete { cid, pk: Bytes::clone(&change.pk) },
                None => return Ok(self),
            },
        };
        self.push_op(op);
        Ok(self)
    }
}
