//! What the record write path adds to its batch when the feed is on.
//!
//! For each record key a unit changed, [`FeedWrite::record`] derives the changes from the
//! committed owner, the final owner and whether the record was rewritten or erased (the same
//! difference the index maintenance uses), and adds for each one the change entry `F|pos`
//! and, unless it is an erasure, its per-person entry `G|id|pos` — both with `pos` stamped
//! by the engine at commit (`WriteBatch::put_stamped`: the sequence number of the `F` put).
//! [`FeedWrite::purge`] adds the deletes that remove an erased person's earlier changes.
//!
//! Kinds: rewritten for the same owner -> update; rewritten where there was no record ->
//! insert; rewritten for another owner -> delete (old owner) then insert (new owner), so
//! every change names one person and an ID-prefix filter sees a record leave as well as
//! arrive; deleted -> delete, or erase if an erasure deleted it. Repairs that do not rewrite
//! a record produce no change.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use super::change::{decode_change, ChangeKind, RawChange};
use super::keys::{by_person_prefix, change_key, parse_by_person_key, TAG_CHANGE};
use super::Feed;
use crate::record::error::Result;
use crate::record::keys::CollectionId;
use crate::record::national_id::NationalId;
use crate::record::value::VALUE_HEADER_LEN;
use crate::{Db, WriteBatch};

/// The feed's part of one write unit: changes added, bytes to account once committed.
#[derive(Debug)]
pub(crate) struct FeedWrite {
    time_ms: u64,
    added: u64,
    purged: u64,
}

/// Milliseconds since the Unix epoch by the system clock (0 if it is before 1970).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl FeedWrite {
    pub(crate) fn new() -> FeedWrite {
        FeedWrite { time_ms: now_ms(), added: 0, purged: 0 }
    }

    /// Adds the changes of one record key: `original` is the committed owner, `current`
    /// the owner after the unit, `value` the record value written (if rewritten), `erased`
    /// whether an erasure removed it.
    pub(crate) fn record(
        &mut self,
        batch: &mut WriteBatch,
        cid: CollectionId,
        pk: &[u8],
        original: Option<NationalId>,
        current: Option<NationalId>,
        value: Option<&[u8]>,
        erased: bool,
    ) {
        match (original, current, value) {
            (o, Some(c), Some(v)) => {
                let payload = v.get(VALUE_HEADER_LEN..);
                if o == Some(c) {
                    self.add(batch, ChangeKind::Update, cid, c, pk, payload);
                } else {
                    if let Some(o) = o {
                        self.add(batch, ChangeKind::Delete, cid, o, pk, None);
                    }
                    self.add(batch, ChangeKind::Insert, cid, c, pk, payload);
                }
            }
            (Some(o), None, _) => {
                let kind = if erased { ChangeKind::Erase } else { ChangeKind::Delete };
                self.add(batch, kind, cid, o, pk, None);
            }
            (_, Some(_), None) | (None, None, _) => {}
        }
    }

    fn add(
        &mut self,
        batch: &mut WriteBatch,
        kind: ChangeKind,
        cid: CollectionId,
        id: NationalId,
        pk: &[u8],
        payload: Option<&[u8]>,
    ) {
        let value = RawChange { kind, time_ms: self.time_ms, cid, id, pk, payload }.encode();
        let me = batch.put_stamped(&[TAG_CHANGE], batch.len() as u32, &value);
        self.added += (super::keys::CHANGE_KEY_LEN + value.len()) as u64;
        if kind != ChangeKind::Erase {
            batch.put_stamped(&by_person_prefix(&id), me, &[]);
            self.added += super::keys::BY_PERSON_KEY_LEN as u64;
        }
    }

    /// Adds deletes of every retained change of `id` and its per-person entries. The
    /// caller holds the feed's state lock until the batch is committed (so a trim does not
    /// account the same changes) and the stripes of the records it erases (so no change of
    /// them commits after this scan).
    pub(crate) fn purge(&mut self, db: &Db, batch: &mut WriteBatch, id: &NationalId) -> Result<()> {
        for kv in db.prefix(by_person_prefix(id))? {
            let (k, _) = kv?;
            let Some(pos) = parse_by_person_key(&k) else {
                return Err(crate::record::Error::corruption_unknown_offset(
                    db.path(),
                    "malformed per-person feed key",
                ));
            };
            let fkey = change_key(pos);
            if let Some(v) = db.get(fkey)? {
                // Only a change of this person is purged; the per-person entry goes anyway.
                if decode_change(&v).is_ok_and(|c| c.id == *id) {
                    batch.delete(fkey);
                    self.purged += (fkey.len() + v.len()) as u64;
                }
            }
            batch.delete(&k);
            self.purged += k.len() as u64;
        }
        Ok(())
    }

    /// Accounts the committed unit's bytes; true if retention is due.
    pub(crate) fn committed(self, feed: &Feed) -> bool {
        feed.bytes.fetch_add(self.added, Ordering::Relaxed);
        let _ = feed.bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some(b.saturating_sub(self.purged)));
        let since = feed.since_trim.fetch_add(self.added, Ordering::Relaxed) + self.added;
        since >= feed.opts.trim_every_bytes
    }
}
