//! [`ChangeCursor`]: reads a subscription's changes after its acknowledged position and
//! acknowledges them.
//!
//! A cursor is exclusive: while it is open, [`Store::changes`] of the same subscription
//! fails with [`Error::CursorInUse`]. It reads in chunks of [`CHUNK`] changes, each from one
//! snapshot taken *before* the log is synced, so every change it delivers is durable (a crash
//! cannot take it back) and the changes of a chunk are exactly those committed up to the
//! snapshot. Before each chunk it checks the feed's horizon in that snapshot: if retention
//! dropped changes after the cursor's position, it fails with [`Error::CursorExpired`]
//! instead of skipping them.
//!
//! Positions: `scanned` is the position up to which every change was read (delivered or
//! filtered out); [`ChangeCursor::delivered_through`] is the position up to which every change was
//! handed to the caller (or filtered out). Acknowledging is allowed up to it, so a filtered
//! subscription can move past changes it never receives. Delivery is at-least-once: a new
//! cursor starts after the last acknowledged position, redelivering anything delivered but
//! not acknowledged; nothing acknowledged is delivered again, nothing is skipped.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;

use super::change::{decode_change, Change};
use super::keys::{change_key, parse_change_key, subscription_key, FeedMeta, FEED_META_NAME, TAG_CHANGE};
use super::subscription::{encode_subscription, SubscriptionFilter};
use crate::record::error::{Error, Result};
use crate::record::keys::{meta_key, CollectionId};
use crate::record::store::Store;
use crate::{SeqNo, Snapshot, WriteBatch, WriteOptions};

/// Changes read per snapshot.
pub(crate) const CHUNK: usize = 1024;

/// How [`ChangeCursor::ack`] persists the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// Fsynced before `ack` returns: after a crash, nothing acknowledged is redelivered.
    Sync,
    /// Written with the next group commit, not fsynced: cheaper; after a crash, the changes
    /// since the last durable acknowledgement are delivered again.
    GroupCommit,
}

/// An exclusive reader of one subscription; an `Iterator` of its changes in position order.
/// `next()` returns `None` when the cursor has caught up, and yields again once new changes
/// are committed (it is not fused).
#[derive(Debug)]
pub struct ChangeCursor {
    store: Store,
    name: String,
    id: u64,
    filter: SubscriptionFilter,
    /// Collection id -> passes the filter (resolved by name once per id).
    collections: HashMap<CollectionId, bool>,
    scanned: SeqNo,
    delivered: SeqNo,
    acked: SeqNo,
    buf: VecDeque<Change>,
}

impl Store {
    /// An exclusive cursor over subscription `name`, starting after its acknowledged
    /// position. Fails with [`Error::UnknownSubscription`], [`Error::CursorInUse`] (another
    /// cursor of it is open) or [`Error::CursorExpired`] (retention dropped changes it had
    /// not acknowledged: resync, unsubscribe and subscribe again).
    pub fn changes(&self, name: &str) -> Result<ChangeCursor> {
        let feed = self.inner.feed()?;
        let mut state = feed.state.lock();
        let horizon = state.meta.horizon;
        let sub = state.subs.get_mut(name).ok_or_else(|| Error::UnknownSubscription { name: name.to_string() })?;
        if sub.holder.is_some() {
            return Err(Error::CursorInUse { name: name.to_string() });
        }
        if sub.acked < horizon {
            return Err(Error::CursorExpired { subscriber: name.to_string() });
        }
        let id = feed.next_cursor.fetch_add(1, Ordering::Relaxed);
        sub.holder = Some(id);
        Ok(ChangeCursor {
            store: self.clone(),
            name: name.to_string(),
            id,
            filter: sub.filter.clone(),
            collections: HashMap::new(),
            scanned: sub.acked,
            delivered: sub.acked,
            acked: sub.acked,
            buf: VecDeque::new(),
        })
    }

    /// The positions of every retained change after `after`, ascending.
    pub(crate) fn change_positions_after(&self, after: SeqNo) -> Result<Vec<SeqNo>> {
        let mut out = Vec::new();
        if after == SeqNo::MAX {
            return Ok(out);
        }
        for kv in self.inner.db.range(change_key(after + 1).to_vec()..vec![TAG_CHANGE + 1])? {
            let (k, _) = kv?;
            out.push(parse_change_key(&k).ok_or_else(|| self.inner.corrupt_feed("malformed change key"))?);
        }
        Ok(out)
    }
}

impl ChangeCursor {
    /// The subscription's name.
    pub fn subscriber(&self) -> &str {
        &self.name
    }

    /// Every change up to this position has been handed out by `next()` or did not pass the
    /// filter: the highest position [`Self::ack`] accepts.
    pub fn delivered_through(&self) -> SeqNo {
        if self.buf.is_empty() {
            self.scanned
        } else {
            self.delivered
        }
    }

    /// The position acknowledged last.
    pub fn acked(&self) -> SeqNo {
        self.acked
    }

    /// Persists that every change up to `position` is applied: later cursors start after
    /// it. `position` may not exceed [`Self::delivered_through`]; acknowledging a position at or
    /// below the last one is a no-op. Fails with [`Error::UnknownSubscription`] if the
    /// subscription was removed meanwhile.
    pub fn ack(&mut self, position: SeqNo, mode: AckMode) -> Result<()> {
        if position > self.delivered_through() {
            return Err(Error::invalid(format!(
                "acknowledging position {position} beyond what this cursor delivered ({})",
                self.delivered_through()
            )));
        }
        if position <= self.acked {
            return Ok(());
        }
        let inner = &self.store.inner;
        inner.check_writable()?;
        let feed = self.store.inner.feed()?;
        let due = {
            let mut state = feed.state.lock();
            let sub = state
                .subs
                .get_mut(&self.name)
                .filter(|s| s.holder == Some(self.id))
                .ok_or_else(|| Error::UnknownSubscription { name: self.name.clone() })?;
            let mut b = WriteBatch::new();
            b.put(subscription_key(&self.name), encode_subscription(position, &sub.filter));
            let opts = WriteOptions { sync: mode == AckMode::Sync };
            inner.db.write(b, &opts)?;
            sub.acked = position;
            feed.since_trim.load(Ordering::Relaxed) >= feed.opts.trim_every_bytes
        };
        self.acked = position;
        if due {
            self.store.trim_feed()?;
        }
        Ok(())
    }

    /// Acknowledges everything read so far ([`Self::delivered_through`]).
    pub fn ack_all(&mut self, mode: AckMode) -> Result<()> {
        self.ack(self.delivered_through(), mode)
    }

    /// Reads the next chunk into the buffer.
    fn refill(&mut self) -> Result<()> {
        let inner = self.store.inner.clone();
        let snap = inner.db.snapshot();
        if !inner.read_only {
            // Everything in the snapshot is committed, so this makes all of it durable.
            inner.db.sync_wal()?;
        }
        self.check_horizon(&snap)?;
        let upper = vec![TAG_CHANGE + 1];
        let mut read = 0;
        for kv in snap.range(change_key(self.scanned + 1).to_vec()..upper)? {
            let (k, v) = kv?;
            let pos = parse_change_key(&k).ok_or_else(|| inner.corrupt_feed("malformed change key"))?;
            let raw = decode_change(&v).map_err(|what| inner.corrupt_feed(&format!("change at {pos}: {what}")))?;
            if self.filter.matches_id(&raw.id) && self.passes(raw.cid) {
                let collection = inner
                    .catalog
                    .name(raw.cid)
                    .ok_or_else(|| inner.corrupt_feed(&format!("change at {pos}: unknown collection id")))?;
                let payload = match raw.payload {
                    Some(p) if raw.sealed => {
                        let (key_id, sealed) = p.split_at(crate::record::vault::KEY_ID_LEN);
                        let key_id = key_id.try_into().map_err(|_| inner.corrupt_feed("sealed change key id"))?;
                        let rkey = crate::record::keys::record_key(raw.cid, raw.pk);
                        // `None`: sealed under a destroyed key — the person was erased, the erase
                        // changes follow, and this payload no longer exists: skipped.
                        inner.open_sealed(&rkey, &raw.id, &key_id, sealed)?
                    }
                    Some(p) => Some(v.slice_ref(p)),
                    None => None,
                };
                if !(raw.sealed && raw.payload.is_some() && payload.is_none()) {
                    self.buf.push_back(Change {
                        position: pos,
                        kind: raw.kind,
                        collection,
                        pk: v.slice_ref(raw.pk),
                        id: raw.id,
                        payload,
                        time_ms: raw.time_ms,
                    });
                }
            }
            self.scanned = pos;
            read += 1;
            if read == CHUNK {
                return Ok(());
            }
        }
        // Every change committed up to the snapshot was read.
        self.scanned = self.scanned.max(snap.sequence());
        Ok(())
    }

    fn check_horizon(&self, snap: &Snapshot) -> Result<()> {
        let inner = &self.store.inner;
        let meta = match snap.get(meta_key(FEED_META_NAME))? {
            Some(v) => FeedMeta::decode(&v).map_err(|what| inner.corrupt_feed(&format!("M|feed: {what}")))?,
            None => return Err(Error::FeedOff),
        };
        if meta.horizon > self.scanned {
            return Err(Error::CursorExpired { subscriber: self.name.clone() });
        }
        Ok(())
    }

    fn passes(&mut self, cid: CollectionId) -> bool {
        if self.filter.collection_names().is_empty() {
            return true;
        }
        let (filter, catalog) = (&self.filter, &self.store.inner.catalog);
        *self.collections.entry(cid).or_insert_with(|| catalog.name(cid).is_some_and(|n| filter.matches_collection(&n)))
    }
}

impl Iterator for ChangeCursor {
    type Item = Result<Change>;

    fn next(&mut self) -> Option<Result<Change>> {
        if self.buf.is_empty() {
            // A filtered subscription may read whole chunks that deliver nothing: read on, a
            // bounded number of chunks per call.
            for _ in 0..64 {
                let before = self.scanned;
                if let Err(e) = self.refill() {
                    return Some(Err(e));
                }
                if !self.buf.is_empty() || self.scanned == before {
                    break;
                }
                if self.scanned >= self.store.inner.db.last_sequence() {
                    break;
                }
            }
        }
        let c = self.buf.pop_front()?;
        self.delivered = c.position;
        Some(Ok(c))
    }
}

impl Drop for ChangeCursor {
    fn drop(&mut self) {
        if let Some(feed) = self.store.inner.feed.as_ref() {
            if let Some(sub) = feed.state.lock().subs.get_mut(&self.name) {
                if sub.holder == Some(self.id) {
                    sub.holder = None;
                }
            }
        }
    }
}
