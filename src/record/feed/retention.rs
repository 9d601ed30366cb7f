//! Retention: dropping changes every subscription acknowledged, and changes past the age or
//! size bound whether acknowledged or not.
//!
//! [`Store::trim_feed`] walks the changelog from its oldest retained change (after the
//! persisted `trimmed_through`) and deletes changes while
//! either every live subscription has acknowledged them, or they are older than
//! `max_age`, or the changelog is larger than `max_bytes`. Deleting a change some live
//! subscription has not acknowledged raises the horizon to its position in the same batch
//! that deletes it: from then on that subscription's cursors fail with
//! [`Error::CursorExpired`](crate::record::Error::CursorExpired) — never a silent skip.
//! With no subscription, every change is acknowledged by all, and is dropped.
//!
//! Trims hold the feed's state lock (so acknowledgements, subscriptions and erasure's
//! purge do not interleave) and write unsynced batches: a trim lost in a crash is redone, and
//! a horizon is lost only together with the deletes it describes.

use std::sync::atomic::Ordering;

use super::append::now_ms;
use super::change::decode_change;
use super::keys::{change_key, parse_change_key, FeedMeta, FEED_META_NAME, TAG_CHANGE};
use crate::record::error::Result;
use crate::record::keys::meta_key;
use crate::record::store::{Store, StoreInner};
use crate::{Db, SeqNo, WriteBatch, WriteOptions};

/// Changes deleted per write batch of a trim.
const TRIM_BATCH: usize = 4096;

/// What [`Store::trim_feed`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrimReport {
    /// Changes deleted.
    pub deleted: u64,
    /// Of those, changes some subscription had not acknowledged (past the age or size bound).
    pub expired_changes: u64,
    /// Subscriptions behind the horizon after the trim (their cursors fail with
    /// `CursorExpired`).
    pub expired_subscriptions: usize,
    /// The horizon after the trim.
    pub horizon: SeqNo,
}

/// Bytes a retained change costs (as the write path counts them).
fn change_bytes(key: &[u8], value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

/// The bytes of the changelog after `trimmed_through` (read once at open).
pub(crate) fn changelog_bytes(db: &Db, trimmed_through: SeqNo) -> Result<u64> {
    let mut total = 0;
    for kv in db.range(change_key(trimmed_through.saturating_add(1)).to_vec()..vec![TAG_CHANGE + 1])? {
        let (k, v) = kv?;
        total += change_bytes(&k, &v);
    }
    Ok(total)
}

impl StoreInner {
    /// A corruption error for the feed's part of the keyspace; names no key (a per-person
    /// key holds a national ID) and no value.
    pub(crate) fn corrupt_feed(&self, what: &str) -> crate::record::Error {
        crate::record::Error::corruption_unknown_offset(self.db.path(), format!("change feed: {what}"))
    }

    /// The feed, or [`Error::FeedOff`](crate::record::Error::FeedOff).
    pub(crate) fn feed(&self) -> Result<&super::Feed> {
        self.feed.as_ref().ok_or(crate::record::Error::FeedOff)
    }
}

impl Store {
    /// Runs retention now (writers and acknowledgements also run it every
    /// [`FeedOptions::trim_every_bytes`](super::FeedOptions::trim_every_bytes)).
    pub fn trim_feed(&self) -> Result<TrimReport> {
        self.inner.trim_feed()
    }
}

impl StoreInner {
    pub(crate) fn trim_feed(&self) -> Result<TrimReport> {
        self.check_writable()?;
        let feed = self.feed()?;
        let db = &self.db;
        let mut state = feed.state.lock();
        feed.since_trim.store(0, Ordering::Relaxed);
        let snap = db.snapshot();
        let mut meta = state.meta;
        let floor =
            state.subs.values().map(|s| s.acked).filter(|&a| a >= meta.horizon).min().unwrap_or(snap.sequence());
        let age_cutoff = feed.opts.max_age.map(|a| now_ms().saturating_sub(a.as_millis() as u64));
        let mut bytes = feed.bytes.load(Ordering::Relaxed);
        let mut report = TrimReport::default();
        let mut batch = WriteBatch::new();
        let mut batch_bytes = 0;
        let commit = |batch: &mut WriteBatch, meta: &FeedMeta, batch_bytes: &mut u64| -> Result<()> {
            batch.put(meta_key(FEED_META_NAME), meta.encode());
            db.write(std::mem::take(batch), &WriteOptions::default())?;
            let b = std::mem::take(batch_bytes);
            let _ = feed.bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| Some(x.saturating_sub(b)));
            Ok(())
        };
        for kv in snap.range(change_key(meta.trimmed_through + 1).to_vec()..vec![TAG_CHANGE + 1])? {
            let (k, v) = kv?;
            let pos = parse_change_key(&k).ok_or_else(|| self.corrupt_feed("malformed change key"))?;
            let raw = decode_change(&v).map_err(|what| self.corrupt_feed(&format!("change at {pos}: {what}")))?;
            let acked_by_all = pos <= floor;
            let expired = !acked_by_all
                && (age_cutoff.is_some_and(|cut| raw.time_ms < cut) || feed.opts.max_bytes.is_some_and(|m| bytes > m));
            if !acked_by_all && !expired {
                break;
            }
            batch.delete(&k);
            let size = change_bytes(&k, &v);
            bytes = bytes.saturating_sub(size);
            batch_bytes += size;
            meta.trimmed_through = pos;
            if expired {
                meta.horizon = pos;
                report.expired_changes += 1;
            }
            report.deleted += 1;
            if batch.len() >= 2 * TRIM_BATCH {
                commit(&mut batch, &meta, &mut batch_bytes)?;
                state.meta = meta;
            }
        }
        if !batch.is_empty() {
            commit(&mut batch, &meta, &mut batch_bytes)?;
            state.meta = meta;
        }
        report.horizon = state.meta.horizon;
        report.expired_subscriptions = state.subs.values().filter(|s| s.acked < state.meta.horizon).count();
        Ok(report)
    }

    /// Runs retention if writers appended enough since the last trim; a trim already
    /// running elsewhere is left to finish.
    pub(crate) fn trim_feed_if_due(&self) -> Result<()> {
        let Some(feed) = self.feed.as_ref() else { return Ok(()) };
        if feed.since_trim.load(Ordering::Relaxed) < feed.opts.trim_every_bytes || feed.state.is_locked() {
            return Ok(());
        }
        self.trim_feed().map(|_| ())
    }
}
