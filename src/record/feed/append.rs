//! What the record write path adds to its batch when the feed is on.
//!
//! For each record key a unit changed, [`FeedWrite::record`] derives the changes from the
//! committed owner, the final owner and whether the record was rewritten or erased (the same
//! difference the index maintenance uses); [`FeedWrite::finish`] appends them as change
//! entries `F|pos`, after the unit's record and index operations, with `pos` stamped by the
//! engine at commit (`WriteBatch::put_stamped`: the sequence number of the `F` put itself).
//! [`FeedWrite::purge`] adds the deletes that remove an erased person's earlier inserts and
//! updates.
//!
//! Cost: one memtable entry per change, inserted in key order at the end of the `F` range.
//! There is no per-person index of changes: a `G | id | pos` entry per change cost a second
//! random memtable insert per record (ingest measured 0.45x of feed-off with it, against
//! ~0.8x without); erasure scans the retained changelog instead (it is rare, and retention
//! keeps the changelog short while subscribers keep up).
//!
//! Kinds: rewritten for the same owner -> update; rewritten where there was no record ->
//! insert; rewritten for another owner -> delete (old owner) then insert (new owner), so
//! every change names one person and an ID-prefix filter sees a record leave as well as
//! arrive; deleted -> delete, or erase if an erasure deleted it. Repairs that do not rewrite
//! a record produce no change.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use super::change::{decode_change, ChangeKind, RawChange};
use super::keys::{change_key, CHANGE_KEY_LEN, TAG_CHANGE};
use super::Feed;
use crate::record::error::Result;
use crate::record::keys::CollectionId;
use crate::record::national_id::NationalId;
use crate::record::value::{RECORD_FORMAT_SEALED, VALUE_HEADER_LEN};
use crate::{Db, SeqNo, WriteBatch};

/// The feed's part of one write unit: changes added, bytes to account once committed. The
/// changes borrow the unit's primary keys and payloads until [`FeedWrite::finish`] encodes
/// them straight into the batch.
#[derive(Debug)]
pub(crate) struct FeedWrite<'a> {
    time_ms: u64,
    /// Changes, appended to the batch by [`FeedWrite::finish`].
    changes: Vec<RawChange<'a>>,
    added: u64,
    purged: u64,
}

/// Milliseconds since the Unix epoch by the system clock (0 if it is before 1970).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl<'a> FeedWrite<'a> {
    pub(crate) fn new() -> FeedWrite<'a> {
        FeedWrite { time_ms: now_ms(), changes: Vec::new(), added: 0, purged: 0 }
    }

    /// Adds the changes of one record key: `original` is the committed owner, `current`
    /// the owner after the unit, `value` the record value written (if rewritten), `erased`
    /// whether an erasure removed it.
    pub(crate) fn record(
        &mut self,
        cid: CollectionId,
        pk: &'a [u8],
        original: Option<NationalId>,
        current: Option<NationalId>,
        value: Option<&'a [u8]>,
        erased: bool,
    ) {
        match (original, current, value) {
            (o, Some(c), Some(v)) => {
                // A sealed value's payload (key id, nonce, ciphertext, tag) goes as stored.
                let payload = v.get(VALUE_HEADER_LEN..);
                let sealed = v.first() == Some(&RECORD_FORMAT_SEALED);
                if o == Some(c) {
                    self.add(ChangeKind::Update, cid, c, pk, payload, sealed);
                } else {
                    if let Some(o) = o {
                        self.add(ChangeKind::Delete, cid, o, pk, None, false);
                    }
                    self.add(ChangeKind::Insert, cid, c, pk, payload, sealed);
                }
            }
            (Some(o), None, _) => {
                let kind = if erased { ChangeKind::Erase } else { ChangeKind::Delete };
                self.add(kind, cid, o, pk, None, false);
            }
            (_, Some(_), None) | (None, None, _) => {}
        }
    }

    fn add(
        &mut self,
        kind: ChangeKind,
        cid: CollectionId,
        id: NationalId,
        pk: &'a [u8],
        payload: Option<&'a [u8]>,
        sealed: bool,
    ) {
        let change = RawChange { kind, time_ms: self.time_ms, cid, id, pk, payload, sealed };
        self.added += (CHANGE_KEY_LEN + change.encoded_len()) as u64;
        self.changes.push(change);
    }

    /// Appends the change entries, after every record and index operation of the unit:
    /// together, so the memtable inserts them one after the other at the end of the `F`
    /// range (each insert finds its place next to the previous one) instead of alternating
    /// with inserts all over the keyspace.
    pub(crate) fn finish(&mut self, batch: &mut WriteBatch) {
        for change in self.changes.drain(..) {
            let own = batch.len() as u32;
            batch.put_stamped_with(&[TAG_CHANGE], own, change.encoded_len(), |out| change.encode_into(out));
        }
    }

    /// The encoded changes added so far, in order, for a writer that places them itself
    /// (`Store::import` stamps their positions into table keys).
    pub(crate) fn take_changes(&mut self) -> Vec<Vec<u8>> {
        self.changes.drain(..).map(|c| c.encode()).collect()
    }

    /// Adds deletes of every retained change of `id` that carries a payload (its inserts
    /// and updates): one scan of the changelog after `from` (the feed's `trimmed_through`).
    /// Its deletes and erasures stay: they carry no payload, and a subscriber that applied an
    /// insert of a record deleted since must still learn of the delete (dropping it made a
    /// replica keep the record — found by `tests/feed_model.rs`). The caller holds the feed's
    /// state lock until the batch is committed (so a trim does not account the same changes)
    /// and the stripes of the records it erases (so no change of them commits after this
    /// scan).
    pub(crate) fn purge(
        &mut self,
        db: &Db,
        batch: &mut WriteBatch,
        id: &NationalId,
        from: SeqNo,
    ) -> Result<Vec<bytes::Bytes>> {
        let mut deleted = Vec::new();
        for kv in db.range(change_key(from.saturating_add(1)).to_vec()..vec![TAG_CHANGE + 1])? {
            let (k, v) = kv?;
            // A malformed change names nobody; retention and cursors report it.
            if decode_change(&v).is_ok_and(|c| c.id == *id && c.kind.has_payload()) {
                batch.delete(&k);
                self.purged += (k.len() + v.len()) as u64;
                deleted.push(k);
            }
        }
        Ok(deleted)
    }

    /// Accounts the committed unit's bytes; true if retention is due.
    pub(crate) fn committed(self, feed: &Feed) -> bool {
        feed.bytes.fetch_add(self.added, Ordering::Relaxed);
        let _ = feed.bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some(b.saturating_sub(self.purged)));
        let since = feed.since_trim.fetch_add(self.added, Ordering::Relaxed) + self.added;
        since >= feed.opts.trim_every_bytes
    }
}
