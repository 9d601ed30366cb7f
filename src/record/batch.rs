//! [`StoreBatch`]: many record writes committed atomically (bulk ingest).
//!
//! Ops are encoded as they are added (payload serialization and collection creation happen
//! outside any lock); [`StoreBatch::commit`] then takes the stripes of every record key in
//! ascending order, reads each key's current owner once, replays the ops in order and writes
//! records and index changes in one [`crate::WriteBatch`]. Later ops on the same key see the
//! earlier ones (insert then upsert of one key works; insert twice fails). Either every op
//! is applied or, on any error, none.
//!
//! Size: the whole batch is one log record, bounded by `Options::max_batch_size`
//! (default 256 MiB); batches of 1,000-10,000 records amortize the commit well.

use bytes::Bytes;
use serde::Serialize;

use super::audit::actor::Scope;
use super::audit::{AccessContext, Audit, AuditAction, AuditOutcome, Right};
use super::error::Result;
use super::national_id::NationalId;
use super::store::Store;
use super::write::Op;
use crate::WriteOptions;

/// An atomic group of record writes; see [`Store::batch`].
#[derive(Debug)]
#[must_use = "a batch does nothing until committed"]
pub struct StoreBatch {
    store: Store,
    ops: Vec<Op>,
    sync: bool,
    /// The actor committing it (an [`ActorStore`](super::ActorStore)'s batch): checked and
    /// audited at commit.
    ctx: Option<AccessContext>,
    /// Application keys committed with the ops (`app_keys.rs`).
    pub(super) app: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Store {
    /// Starts an atomic batch of record writes.
    pub fn batch(&self) -> StoreBatch {
        self.batch_as(None)
    }

    pub(crate) fn batch_as(&self, ctx: Option<AccessContext>) -> StoreBatch {
        StoreBatch { store: self.clone(), ops: Vec::new(), sync: false, ctx, app: Vec::new() }
    }
}

impl StoreBatch {
    /// Fsync the log before [`commit`](Self::commit) returns (default: false).
    pub fn sync(&mut self, sync: bool) -> &mut Self {
        self.sync = sync;
        self
    }

    /// Adds an insert; the commit fails with [`Error::RecordExists`](super::Error::RecordExists) if the key holds
    /// a record by then.
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        collection: &str,
        pk: impl AsRef<[u8]>,
        id: &NationalId,
        payload: &T,
    ) -> Result<&mut Self> {
        self.check_access(collection, id)?;
        let op = self.store.prepare_put(collection, pk.as_ref(), id, payload, true)?;
        self.ops.push(op);
        Ok(self)
    }

    /// Adds an upsert (insert or replace, moving the index entry if the ID changes).
    pub fn upsert<T: Serialize + ?Sized>(
        &mut self,
        collection: &str,
        pk: impl AsRef<[u8]>,
        id: &NationalId,
        payload: &T,
    ) -> Result<&mut Self> {
        self.check_access(collection, id)?;
        let op = self.store.prepare_put(collection, pk.as_ref(), id, payload, false)?;
        self.ops.push(op);
        Ok(self)
    }

    /// Before an op is encoded (which may create its collection): an actor's batch is
    /// checked against the policy (a refusal is recorded), a plain batch against a store
    /// that requires an access context.
    fn check_access(&self, collection: &str, id: &NationalId) -> Result<()> {
        let inner = &self.store.inner;
        match &self.ctx {
            Some(ctx) => inner.authorize(ctx, Right::Write, Scope::One(collection), AuditAction::Write, Some(id)),
            None => inner.check_unaudited(),
        }
    }

    /// Adds a delete (a no-op if the record does not exist at commit).
    pub fn delete(&mut self, collection: &str, pk: impl AsRef<[u8]>) -> &mut Self {
        if let Some(cid) = self.store.inner.catalog.lookup(collection) {
            self.ops.push(Op::Delete { cid, pk: Bytes::copy_from_slice(pk.as_ref()) });
        }
        self
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn push_op(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// Number of ops added.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True if no op was added.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Applies every op (and every application key, see [`StoreBatch::put_app`])
    /// atomically. A batch whose ops change nothing (deletes of absent records) and that
    /// puts no application key writes nothing, so its `sync` makes no earlier write durable.
    pub fn commit(self) -> Result<()> {
        let inner = &self.store.inner;
        inner.check_writable()?;
        let Some(ctx) = &self.ctx else {
            inner.check_unaudited()?;
            if self.ops.is_empty() && self.app.is_empty() {
                return Ok(());
            }
            return inner.apply_unit(self.ops, &WriteOptions { sync: self.sync }, None, None, self.app).map(|_| ());
        };
        // Every collection the batch writes, each checked against the policy.
        let mut cids: Vec<_> = self.ops.iter().map(|op| op.target().0).collect();
        cids.sort_unstable();
        cids.dedup();
        let collections: Vec<String> = cids
            .iter()
            .map(|c| inner.catalog.name(*c).map_or_else(|| format!("#{}", c.0), |n| n.to_string()))
            .collect();
        for c in &collections {
            inner.authorize(ctx, Right::Write, Scope::One(c), AuditAction::Write, None)?;
        }
        if self.ops.is_empty() && self.app.is_empty() {
            return Ok(());
        }
        let draft = Audit::draft(ctx, AuditAction::Write, AuditOutcome::Allowed, collections);
        inner.apply_unit(self.ops, &WriteOptions { sync: self.sync }, None, Some(draft), self.app).map(|_| ())
    }
}
