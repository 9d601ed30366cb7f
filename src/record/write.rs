//! The index-maintaining write path every record mutation goes through.
//!
//! A list of [`Op`]s is applied as one unit: lock the stripes of every record key touched
//! (ascending order), read each record's current national ID once, replay the ops in order
//! over that in-memory state, then turn the difference between the state read and the
//! final state into one [`WriteBatch`]: record puts/deletes plus the index entries that must
//! appear or disappear. The batch is committed before the stripes are released.
//!
//! With the change feed on, the same batch carries the unit's change entries
//! (`feed/append.rs`), so the feed can never disagree with the records.
//!
//! Invariant kept: for every record key, `I | id | cid | pk` exists iff `R | cid | pk` holds
//! a record whose national ID is `id` ("index == f(records)"). It holds after every commit
//! because (1) the batch is atomic in the log, (2) the state the batch was computed from is
//! the committed state (stripe held from read to commit, so no writer of the same key
//! interleaves), and (3) every op's effect on the index is derived from that state.

use std::collections::HashMap;

use bytes::Bytes;

use super::audit::EntryDraft;
use super::error::{Error, Result};
use super::feed::FeedWrite;
use super::keys::{app_key, index_key, record_key, CollectionId};
use super::locks::HeldStripes;
use super::national_id::NationalId;
use super::store::StoreInner;
use super::value::{decode_value, seal_value, RECORD_FORMAT_V1};
use super::vault::NONCE_LEN;
use crate::{WriteBatch, WriteOptions};

/// An erasure's part of a write unit: whose earlier changes the feed purges, and where the
/// purged change keys go (the physical purge compacts them).
pub(crate) struct Erasing<'a> {
    pub(crate) id: &'a NationalId,
    pub(crate) purged_changes: &'a mut Vec<Bytes>,
}

/// One record mutation.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Store `value` (an encoded record value for `id`) at `(cid, pk)`; with `insert_only`,
    /// fail the whole unit if a record is there.
    Put { cid: CollectionId, pk: Bytes, id: NationalId, value: Vec<u8>, insert_only: bool },
    /// Delete the record at `(cid, pk)` if any.
    Delete { cid: CollectionId, pk: Bytes },
    /// Delete the record at `(cid, pk)` if it belongs to `id`, and the index entry
    /// `I | id | cid | pk` in any case (erasure).
    Erase { cid: CollectionId, pk: Bytes, id: NationalId },
    /// Write the index entry of the record at `(cid, pk)`, if there is a record (repair).
    EnsureIndexed { cid: CollectionId, pk: Bytes },
    /// Delete `I | id | cid | pk` unless the record at `(cid, pk)` belongs to `id` (repair).
    DropIndexUnlessOwner { cid: CollectionId, pk: Bytes, id: NationalId },
}

impl Op {
    pub(crate) fn target(&self) -> (CollectionId, &Bytes) {
        match self {
            Op::Put { cid, pk, .. }
            | Op::Delete { cid, pk }
            | Op::Erase { cid, pk, .. }
            | Op::EnsureIndexed { cid, pk }
            | Op::DropIndexUnlessOwner { cid, pk, .. } => (*cid, pk),
        }
    }
}

/// What the unit does to one record key.
struct Slot {
    cid: CollectionId,
    pk: Bytes,
    key: Vec<u8>,
    /// Owner when read (committed state).
    original: Option<NationalId>,
    /// Owner after the ops so far.
    current: Option<NationalId>,
    /// The value to write if `current` is `Some` and the record was rewritten.
    value: Option<Vec<u8>>,
    ensure_index: bool,
    drop_unless_owner: Vec<NationalId>,
    /// An erasure removed the record (its change is an erasure, not a delete).
    erased: bool,
}

impl StoreInner {
    /// Applies `ops` atomically. Returns, for each op, the owner of its record just before
    /// it (for `Put` with `insert_only`, `RecordExists` aborts the whole unit instead).
    pub(crate) fn apply(&self, ops: Vec<Op>, opts: &WriteOptions) -> Result<Vec<Option<NationalId>>> {
        self.apply_audited(ops, opts, None, None)
    }

    /// [`Self::apply`], with `audit`'s entry (naming every person the unit touches) in the
    /// same batch; for an erasure (`erasing`), with the feed on, also purges every earlier
    /// insert and update of the person from the changelog in the same batch (under the
    /// stripes of the records the ops erase, so no change of them commits between the
    /// purge's scan and the commit), collecting the change keys it deleted.
    pub(crate) fn apply_audited(
        &self,
        ops: Vec<Op>,
        opts: &WriteOptions,
        erasing: Option<Erasing<'_>>,
        audit: Option<EntryDraft>,
    ) -> Result<Vec<Option<NationalId>>> {
        self.apply_unit(ops, opts, erasing, audit, Vec::new())
    }

    /// [`Self::apply_audited`], with application keys (`X | name -> value`, see
    /// `app_keys.rs`) put in the same batch as the records.
    pub(crate) fn apply_unit(
        &self,
        ops: Vec<Op>,
        opts: &WriteOptions,
        erasing: Option<Erasing<'_>>,
        audit: Option<EntryDraft>,
        app: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Vec<Option<NationalId>>> {
        self.check_writable()?;
        // From sealing to commit: no key destruction in between (see `PersonKeys`).
        let _sealing = self.vault.as_ref().map(|v| v.write_guard());
        let ops = self.seal_payloads(ops)?;
        let keys: Vec<Vec<u8>> = ops
            .iter()
            .map(|op| {
                let (cid, pk) = op.target();
                record_key(cid, pk)
            })
            .collect();
        let held = self.locks.lock_keys(&keys);
        let audited = audit.is_some();
        let before = self.apply_locked(&held, ops, keys, opts, erasing, audit, app)?;
        drop(held);
        if let Some(a) = self.audit.as_ref().filter(|_| audited) {
            // Housekeeping as well: the write and its entry are committed.
            let _ = a.checkpoint_if_due(&self.db);
        }
        // Retention is housekeeping: the write succeeded, and a failed trim is retried by
        // the next writer or acknowledgement (a failing database fails those too).
        let _ = self.trim_feed_if_due();
        Ok(before)
    }

    /// With person keys: seals every put's payload under its person's key, creating the keys
    /// of new persons first in one synced vault write (a key is durable before any record
    /// sealed under it). Without: the ops as they are.
    pub(crate) fn seal_payloads(&self, mut ops: Vec<Op>) -> Result<Vec<Op>> {
        let Some(vault) = &self.vault else { return Ok(ops) };
        let mut ids: Vec<NationalId> =
            ops.iter().filter_map(|op| if let Op::Put { id, .. } = op { Some(*id) } else { None }).collect();
        ids.sort_unstable();
        ids.dedup();
        let keys = vault.keys_or_create(&ids)?;
        // Every nonce of the unit from one call to the system's random source.
        let mut nonces = vec![0u8; ops.len() * NONCE_LEN];
        crate::crypt::fill_random(&mut nonces)?;
        for (op, nonce) in ops.iter_mut().zip(nonces.chunks_exact(NONCE_LEN)) {
            if let Op::Put { cid, pk, id, value, .. } = op {
                if value.first() == Some(&RECORD_FORMAT_V1) {
                    let key = keys.get(id).ok_or_else(|| Error::invalid("a person key went missing"))?;
                    let nonce = nonce.try_into().map_err(|_| Error::invalid("nonce length"))?;
                    *value = seal_value(value, key, nonce, &record_key(*cid, pk), id)?;
                }
            }
        }
        Ok(ops)
    }

    /// The national ID of the committed record at `key`. Requires its stripe to be held for
    /// the answer to stay true until the caller commits.
    fn owner(&self, _held: &HeldStripes<'_>, key: &[u8]) -> Result<Option<NationalId>> {
        match self.db.get(key)? {
            None => Ok(None),
            Some(v) => decode_value(&v).map(|(id, _)| Some(id)).map_err(|what| self.corrupt_record(key, &what)),
        }
    }

    #[expect(clippy::too_many_arguments, reason = "the parts of one write unit, passed through once")]
    fn apply_locked(
        &self,
        held: &HeldStripes<'_>,
        ops: Vec<Op>,
        keys: Vec<Vec<u8>>,
        opts: &WriteOptions,
        mut erasing: Option<Erasing<'_>>,
        audit: Option<EntryDraft>,
        app: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Vec<Option<NationalId>>> {
        let erased: Option<NationalId> = erasing.as_ref().map(|e| *e.id);
        let mut slots: Vec<Slot> = Vec::new();
        let mut by_key: HashMap<Vec<u8>, usize> = HashMap::with_capacity(ops.len());
        let mut before = Vec::with_capacity(ops.len());
        for (op, key) in ops.into_iter().zip(keys) {
            let i = match by_key.get(&key) {
                Some(&i) => i,
                None => {
                    let original = self.owner(held, &key)?;
                    let (cid, pk) = op.target();
                    slots.push(Slot {
                        cid,
                        pk: pk.clone(),
                        key: key.clone(),
                        original,
                        current: original,
                        value: None,
                        ensure_index: false,
                        drop_unless_owner: Vec::new(),
                        erased: false,
                    });
                    by_key.insert(key, slots.len() - 1);
                    slots.len() - 1
                }
            };
            let slot = &mut slots[i];
            before.push(slot.current);
            match op {
                Op::Put { insert_only: true, .. } if slot.current.is_some() => {
                    let collection =
                        self.catalog.name(slot.cid).map_or_else(|| format!("#{}", slot.cid.0), |n| n.to_string());
                    return Err(Error::RecordExists { collection, pk: crate::util::redact(&slot.pk) });
                }
                Op::Put { id, value, .. } => {
                    slot.current = Some(id);
                    slot.value = Some(value);
                }
                Op::Delete { .. } => {
                    slot.current = None;
                    slot.value = None;
                }
                Op::Erase { id, .. } => {
                    if slot.current == Some(id) {
                        slot.current = None;
                        slot.value = None;
                        slot.erased = true;
                    }
                    slot.drop_unless_owner.push(id);
                }
                Op::EnsureIndexed { .. } => slot.ensure_index = true,
                Op::DropIndexUnlessOwner { id, .. } => slot.drop_unless_owner.push(id),
            }
        }

        let mut batch = WriteBatch::new();
        for (name, value) in &app {
            batch.put(app_key(name), value);
        }
        let mut feed_write = self.feed.as_ref().map(|_| FeedWrite::new());
        for s in &slots {
            if let Some(fw) = feed_write.as_mut() {
                fw.record(s.cid, &s.pk, s.original, s.current, s.value.as_deref(), s.erased);
            }
            let changed_owner = s.original != s.current;
            if let Some(old) = s.original.filter(|_| changed_owner) {
                batch.delete(index_key(&old, s.cid, &s.pk));
            }
            for id in &s.drop_unless_owner {
                if s.current != Some(*id) && s.original != Some(*id) {
                    batch.delete(index_key(id, s.cid, &s.pk));
                }
            }
            match (&s.current, &s.value) {
                (Some(id), Some(value)) => {
                    batch.put(&s.key, value);
                    if changed_owner || s.ensure_index {
                        batch.put(index_key(id, s.cid, &s.pk), []);
                    }
                }
                (Some(id), None) => {
                    // Not rewritten: only repairs touch the index.
                    if s.ensure_index {
                        batch.put(index_key(id, s.cid, &s.pk), []);
                    }
                }
                (None, _) => {
                    if s.original.is_some() {
                        batch.delete(&s.key);
                    }
                }
            }
        }
        // Erasure's purge holds the feed's state lock until its deletes are committed.
        let _purging = match (self.feed.as_ref(), feed_write.as_mut(), erased) {
            (Some(feed), Some(fw), Some(id)) => {
                let state = feed.state.lock();
                let deleted = fw.purge(&self.db, &mut batch, &id, state.meta.trimmed_through)?;
                if let Some(e) = erasing.as_mut() {
                    e.purged_changes.extend(deleted);
                }
                Some(state)
            }
            _ => None,
        };
        if let Some(fw) = feed_write.as_mut() {
            fw.finish(&mut batch);
        }
        if let (Some(mut draft), Some(a)) = (audit, self.audit.as_ref()) {
            let ids = slots.iter().flat_map(|s| [s.original, s.current]).flatten().chain(erased);
            let mut subjects: Vec<_> = ids.filter_map(|id| a.token(&id)).collect();
            subjects.sort_unstable();
            subjects.dedup();
            draft.subjects = subjects;
            draft.count = u32::try_from(slots.len()).unwrap_or(u32::MAX);
            a.append(&mut batch, &draft)?;
        }
        self.db.write(batch, opts)?;
        if let (Some(feed), Some(fw)) = (self.feed.as_ref(), feed_write) {
            fw.committed(feed);
        }
        Ok(before)
    }
}
