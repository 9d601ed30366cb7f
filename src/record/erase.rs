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
//! Deleting makes the data unreachable, not gone: the old versions stay in SSTables (and the
//! log) until compaction drops them. Physical erasure needs `Db::compact_range` over the
//! person's keys after this; `docs/record-model.md` says what remains where.

use super::keys::{parse_index_key, person_prefix};
use super::national_id::NationalId;
use super::store::Store;
use super::write::Op;
use crate::{Result, WriteOptions};

impl Store {
    /// Deletes every record of `id` and its index entries in one synced, atomic write.
    /// Returns the number of records deleted.
    pub fn erase_person(&self, id: &NationalId) -> Result<usize> {
        let mut ops = Vec::new();
        for kv in self.inner.db.prefix(person_prefix(id))? {
            let (k, _) = kv?;
            let (_, cid, pk) = parse_index_key(&k)
                .ok_or_else(|| self.inner.corrupt_record(&k, "malformed index key"))?;
            ops.push(Op::Erase {
                cid,
                pk: k.slice_ref(pk),
                id: *id,
            });
        }
        if ops.is_empty() {
            return Ok(0);
        }
        let before = self.inner.apply(ops, &WriteOptions::synced())?;
        Ok(before.iter().filter(|owner| *owner == &Some(*id)).count())
    }
}
