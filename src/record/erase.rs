//! [`Store::erase_person`]: delete every record of a person and every index entry under
//! their national ID, atomically and durably.
//!
//! The person's records are found through the index (one prefix scan), then deleted in one
//! synced batch under their stripe locks, re-checking ownership under the lock: a record
//! that was moved to another ID in the meantime is left alone, and an index entry under
//! this ID that does not match its record (dangling) is deleted too, so nothing keyed by the
//! erased ID remains live. Records written for the ID after the scan are not erased (they
//! are new data). A record that belongs to the ID but has no index entry (which
//! [`Store::verify_index`] reports as missing) cannot be found this way: run
//! [`Store::rebuild_index`] first if the index is in doubt.
//!
//! With the change feed on, the same batch deletes the person's earlier inserts and updates
//! from the changelog (every change that carried a payload; deletes stay, so subscribers
//! learn of them) and adds one erasure change (no payload) per record erased.
//!
//! Deleting makes the data unreachable, not gone: the old versions stay in SSTables (and the
//! log) until compaction drops them. [`Store::purge_erased`] runs `Db::compact_range` over
//! the erased keys; `docs/record-model.md` says what remains where.

use bytes::Bytes;

use super::audit::EntryDraft;
use super::error::Result;
use super::keys::{parse_index_key, person_prefix, record_key};
use super::national_id::NationalId;
use super::store::Store;
use super::value::{decode_stored, StoredPayload};
use super::write::{Erasing, Op};
use crate::WriteOptions;

/// What [`Store::erase_person`] deleted: pass it to [`Store::purge_erased`] to compact the
/// old versions out of the files.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Erasure {
    /// Records deleted.
    pub records: usize,
    /// The database's last sequence number once the erasure was committed: a snapshot
    /// below it may still see the erased data.
    pub sequence: crate::SeqNo,
    /// Every key deleted (records, index entries, and with the feed on the person's change
    /// entries that carried payloads), ascending: what [`Store::purge_erased`] compacts.
    pub keys: Vec<Bytes>,
    /// The erasure receipt's facts (see [`ErasureReceipt`]).
    pub receipt: ErasureReceipt,
}

/// Its keys name the person (index keys hold the national ID, record keys the primary keys):
/// `Debug` shows how many there are, never their bytes.
impl std::fmt::Debug for Erasure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Erasure")
            .field("records", &self.records)
            .field("sequence", &self.sequence)
            .field("keys", &self.keys.len())
            .field("receipt", &self.receipt)
            .finish()
    }
}

/// What an erasure did and what proves it (docs/privacy.md, "Provable erasure"). Names the
/// person only by their audit subject token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErasureReceipt {
    /// When, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The person's audit subject token (with an audit key).
    pub subject: Option<super::audit::SubjectToken>,
    /// The id of the person key destroyed (with person keys): every copy of the person's
    /// records made before — files, checkpoints, backups — is ciphertext under this key.
    pub destroyed_key: Option<[u8; super::vault::KEY_ID_LEN]>,
    /// The position (key) of the erasure's entry in the audit log (with an audit log).
    pub audit_position: Option<crate::SeqNo>,
    /// The audit log's signed checkpoint taken right after the erasure, whose chain holds the
    /// erasure's entry (with an audit log).
    pub audit_checkpoint: Option<super::audit::AuditCheckpoint>,
    /// Tables that still physically hold the erased records (their ciphertext, with person
    /// keys) until [`Store::purge_erased`] compacts them away.
    pub tables_until_purge: Vec<u64>,
}

impl Store {
    /// Deletes every record of `id` and its index entries in one synced, atomic write.
    /// Returns what was deleted; the data is unreachable from then on, and physically gone
    /// from live files after [`purge_erased`](Self::purge_erased).
    pub fn erase_person(&self, id: &NationalId) -> Result<Erasure> {
        self.inner.check_unaudited()?;
        self.erase_person_as(id, None)
    }

    /// [`Self::erase_person`] with `audit`'s entry in the erasure's batch.
    pub(crate) fn erase_person_as(&self, id: &NationalId, audit: Option<EntryDraft>) -> Result<Erasure> {
        self.inner.check_writable()?;
        let time_ms = crate::record::feed::now_ms();
        // The key goes first (synced and purged from the vault's files): from then on what
        // remains of the records anywhere is ciphertext nobody can open.
        let destroyed_key = match &self.inner.vault {
            Some(v) => v.destroy(id, time_ms)?,
            None => None,
        };
        let mut ops = Vec::new();
        let mut keys = Vec::new();
        for kv in self.inner.db.prefix(person_prefix(id))? {
            let (k, _) = kv?;
            let (_, cid, pk) =
                parse_index_key(&k).ok_or_else(|| self.inner.corrupt_record(&k, "malformed index key"))?;
            keys.push(Bytes::from(record_key(cid, pk)));
            ops.push(Op::Erase { cid, pk: k.slice_ref(pk), id: *id });
            keys.push(k);
        }
        // With the feed on, the person's earlier payloads are purged even when no record is
        // left to delete (changes of records deleted before still carry their payloads).
        let audited = audit.is_some();
        let mut receipt = ErasureReceipt {
            time_ms,
            subject: self.inner.audit.as_ref().and_then(|a| a.token(id)),
            destroyed_key,
            ..ErasureReceipt::default()
        };
        if ops.is_empty() && self.inner.feed.is_none() && !audited {
            return Ok(Erasure { receipt, ..Erasure::default() });
        }
        let mut purged_changes = Vec::new();
        let erasing = Erasing { id, purged_changes: &mut purged_changes };
        let before = self.inner.apply_audited(ops, &WriteOptions::synced(), Some(erasing), audit)?;
        // The change entries the feed's purge deleted hold the person's payloads too: the
        // physical purge must compact them away as well.
        keys.extend(purged_changes);
        keys.sort();
        let records = before.iter().filter(|owner| *owner == &Some(*id)).count();
        receipt.tables_until_purge = self.inner.db.tables_holding(&keys);
        if let Some(a) = self.inner.audit.as_ref().filter(|_| audited) {
            receipt.audit_checkpoint = Some(a.checkpoint(&self.inner.db, &WriteOptions::synced())?);
            if let Some(t) = &receipt.subject {
                receipt.audit_position = super::audit::last_erasure_of(&self.inner.db, t)?;
            }
        }
        Ok(Erasure { records, sequence: self.inner.db.last_sequence(), keys, receipt })
    }

    /// How many records in this store are sealed under the person key `key_id` (a scan of
    /// every record): after an erasure, what remains of the person's records here —
    /// ciphertext that only that key could open.
    pub fn records_sealed_under(&self, key_id: &[u8; super::vault::KEY_ID_LEN]) -> Result<u64> {
        let mut n = 0;
        for kv in self.inner.db.prefix([super::keys::TAG_RECORD])? {
            let (k, v) = kv?;
            match decode_stored(&v).map_err(|w| self.inner.corrupt_record(&k, &w))? {
                (_, StoredPayload::Sealed { key_id: kid, .. }) if kid == *key_id => n += 1,
                _ => {}
            }
        }
        Ok(n)
    }

    /// Removes the erased data from the files: compacts every key of `erasure` down to the
    /// bottom level, so that compaction drops the deleted versions and their tombstones and
    /// the files that held them are deleted (their blocks leave the block cache with them);
    /// then writes a new manifest and deletes the old one, whose edits name the deleted
    /// tables' boundary keys. One `compact_range` per key: after the first (which flushes
    /// and empties level 0), each touches only the few files that overlap that key.
    ///
    /// Fails with [`Error::PurgeIncomplete`](super::Error::PurgeIncomplete) when something
    /// still holds erased data: a live snapshot older than the erasure (compaction keeps
    /// the versions it sees), or deleted tables an open iterator still reads (their files
    /// stay until it is dropped). Release them and call it again; it is idempotent.
    pub fn purge_erased(&self, erasure: &Erasure) -> Result<()> {
        self.inner.check_writable()?;
        if erasure.keys.is_empty() {
            return Ok(());
        }
        // A snapshot older than the erasure makes every compaction keep the erased versions;
        // checked first, since it could be released before a check at the end.
        let snapshots = self.inner.db.snapshots_before(erasure.sequence);
        if snapshots > 0 {
            return Err(super::Error::PurgeIncomplete { snapshots, tables: self.inner.db.pinned_tables() });
        }
        for k in &erasure.keys {
            self.inner.db.compact_range_rewriting_bottom(k.as_ref()..=k.as_ref())?;
        }
        if let Some(v) = &self.inner.vault {
            // Idempotent: the key was purged at erasure; a crash may have cut that short.
            if let Some((id, _, _)) = erasure.keys.iter().find_map(|k| parse_index_key(k)) {
                v.purge_key(&id)?;
            }
        }
        self.inner.db.rewrite_manifest()?;
        let snapshots = self.inner.db.snapshots_before(erasure.sequence);
        let tables = self.inner.db.pinned_tables();
        if snapshots > 0 || !tables.is_empty() {
            return Err(super::Error::PurgeIncomplete { snapshots, tables });
        }
        Ok(())
    }
}
