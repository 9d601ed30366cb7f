//! The change feed: every record write also appends a change entry, in the same engine
//! batch, to a changelog that subscribers read through durable cursors (see `docs/sync.md`,
//! "Change feed").
//!
//! - `keys.rs`: the key layout (`F` changes, `G` per-person positions, `S` subscriptions,
//!   `M|feed` state);
//! - `change.rs`: [`Change`] and its stored value;
//! - `append.rs`: what the write path adds to a record batch (and erasure's purge);
//! - `subscription.rs`: [`SubscriptionFilter`], subscribe/unsubscribe/list;
//! - `cursor.rs`: [`ChangeCursor`], reading and acknowledging;
//! - `retention.rs`: trimming acknowledged and expired changes;
//! - `apply.rs`: applying changes to another store (replication).
//!
//! Invariants: (1) a change and the record write it describes commit in one batch, so after
//! any crash the feed and the data agree; (2) a change's position is the sequence number the
//! engine gave its own `F` put (stamped into the key at commit), so positions strictly
//! increase in commit order and survive compaction (they are in the key, not in the
//! entry's sequence number); (3) a cursor delivers only changes that are durable (it syncs
//! the log before reading), so a crash can never take back a change a subscriber saw;
//! (4) retention deletes a change no subscription acknowledged only when it passes the
//! age/size bound, and then raises the persisted horizon in the same batch, so a
//! subscription behind it fails with [`Error::CursorExpired`](super::Error::CursorExpired)
//! instead of skipping.
//!
//! The feed is on in a store whose `M|feed` key exists. [`FeedOptions::enable`] creates it
//! at open; once on, the feed stays on (opening with `enable: false` keeps recording), so no
//! tool or repair opening the store with default options can silently open a gap.

mod append;
mod apply;
mod change;
mod cursor;
mod keys;
mod retention;
mod subscription;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use parking_lot::Mutex;

pub use change::{Change, ChangeKind};
pub use cursor::{AckMode, ChangeCursor};
pub use retention::TrimReport;
pub use subscription::{SubscriptionFilter, SubscriptionInfo, MAX_FILTER_ITEMS, MAX_SUBSCRIPTION_NAME_LEN};

pub(crate) use append::{now_ms, FeedWrite};
pub(crate) use keys::{change_key, TAG_CHANGE};

use super::error::{Error, Result};
use super::keys::meta_key;
use crate::{Db, SeqNo, WriteBatch, WriteOptions};
use keys::{FeedMeta, FEED_META_NAME};

/// Options of the change feed (part of [`StoreOptions`](super::StoreOptions)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedOptions {
    /// Turn the feed on at open (persisted: once on, it stays on). Default: off — a feed
    /// writes every change a second time, which only pays when someone subscribes.
    pub enable: bool,
    /// Retention bound by age: changes older than this are dropped even if a subscription
    /// has not acknowledged them (it expires). Default: 7 days. `None`: no age bound.
    pub max_age: Option<Duration>,
    /// Retention bound by size: when the changelog holds more than this many bytes (keys
    /// and values, as written), the oldest changes are dropped, expiring the subscriptions
    /// that had not acknowledged them. Default: 1 GiB. `None`: no size bound.
    pub max_bytes: Option<u64>,
    /// A writer runs retention after this many bytes of changes were appended since the
    /// last trim (acknowledging runs it too). Default: 4 MiB.
    pub trim_every_bytes: u64,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            enable: false,
            max_age: Some(Duration::from_secs(7 * 24 * 3600)),
            max_bytes: Some(1 << 30),
            trim_every_bytes: 4 << 20,
        }
    }
}

/// A subscription's in-memory state.
#[derive(Debug)]
pub(crate) struct Sub {
    pub(crate) filter: SubscriptionFilter,
    pub(crate) acked: SeqNo,
    /// The id of the cursor reading it, if one is open (cursors are exclusive).
    pub(crate) holder: Option<u64>,
}

/// What the state lock guards.
#[derive(Debug, Default)]
pub(crate) struct FeedState {
    pub(crate) subs: BTreeMap<String, Sub>,
    pub(crate) meta: FeedMeta,
}

/// The feed of an open store.
#[derive(Debug)]
pub(crate) struct Feed {
    pub(crate) opts: FeedOptions,
    /// Serializes subscribe, ack, unsubscribe, trims and erasure's purge (taken after the
    /// record stripes, never before).
    pub(crate) state: Mutex<FeedState>,
    /// Approximate bytes of the changelog (keys and values), for the size bound.
    pub(crate) bytes: AtomicU64,
    /// Bytes appended since the last trim.
    pub(crate) since_trim: AtomicU64,
    /// Ids of cursors.
    pub(crate) next_cursor: AtomicU64,
}

impl Feed {
    /// The feed of `db` if it is on, turning it on first if `opts.enable` and `writable`.
    pub(crate) fn open(db: &Db, opts: &FeedOptions, writable: bool) -> Result<Option<Feed>> {
        let meta = match db.get(meta_key(FEED_META_NAME))? {
            Some(v) => FeedMeta::decode(&v)
                .map_err(|what| Error::corruption_unknown_offset(db.path(), format!("M|feed: {what}")))?,
            None if opts.enable && writable => {
                let meta = FeedMeta::default();
                let mut b = WriteBatch::new();
                b.put(meta_key(FEED_META_NAME), meta.encode());
                db.write(b, &WriteOptions::synced())?;
                meta
            }
            None => return Ok(None),
        };
        let subs = subscription::load_subscriptions(db)?;
        // Only retention needs the size, and a read-only store never trims.
        let bytes = if writable { retention::changelog_bytes(db, meta.trimmed_through)? } else { 0 };
        Ok(Some(Feed {
            opts: opts.clone(),
            state: Mutex::new(FeedState { subs, meta }),
            bytes: AtomicU64::new(bytes),
            since_trim: AtomicU64::new(0),
            next_cursor: AtomicU64::new(1),
        }))
    }
}

impl super::Store {
    /// Whether this store records a change feed.
    pub fn feed_enabled(&self) -> bool {
        self.inner.feed.is_some()
    }
}
