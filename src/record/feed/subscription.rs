//! Subscriptions: durable, named cursors into the change feed, with a filter.
//!
//! ```text
//! subscription := format: u8 (= 1) | acked: u64 BE
//!                 | collections: varint | (name_len: varint | name)*
//!                 | id_prefixes: varint | (prefix_len: varint | digits)*
//! ```
//!
//! `acked` is the position up to which the subscriber has acknowledged: the next cursor
//! starts after it. A new subscription starts at the store's last sequence number (it sees
//! the changes committed after it subscribed). Subscribing, acknowledging, unsubscribing and
//! retention's trims are serialized by the feed's state lock, and the in-memory state is
//! changed only after the write that persists it succeeded.

use std::collections::BTreeMap;

use super::keys::{parse_subscription_key, subscription_key, TAG_SUBSCRIPTION};
use super::Sub;
use crate::record::error::{Error, Result};
use crate::record::national_id::{NationalId, NATIONAL_ID_LEN};
use crate::record::store::Store;
use crate::util::coding::{put_len_prefixed, put_varint, Reader};
use crate::{Db, SeqNo, WriteBatch, WriteOptions};

/// Longest subscription name, in bytes.
pub const MAX_SUBSCRIPTION_NAME_LEN: usize = 64;
/// Most collections or ID prefixes one filter names (filters live in memory and are checked
/// against every change).
pub const MAX_FILTER_ITEMS: usize = 256;
const SUBSCRIPTION_FORMAT: u8 = 1;

/// Which changes a subscription receives: changes of the listed collections (all when none
/// is listed) whose national ID starts with one of the ID prefixes (any ID when none is
/// given). `Debug` names the collections but only counts the ID prefixes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SubscriptionFilter {
    collections: Vec<String>,
    id_prefixes: Vec<String>,
}

impl std::fmt::Debug for SubscriptionFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionFilter")
            .field("collections", &self.collections)
            .field("id_prefixes", &self.id_prefixes.len())
            .finish()
    }
}

impl SubscriptionFilter {
    /// Every change.
    pub fn all() -> Self {
        SubscriptionFilter::default()
    }

    /// Changes of these collections (they need not exist yet).
    pub fn collections<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        SubscriptionFilter { collections: names.into_iter().map(Into::into).collect(), id_prefixes: Vec::new() }
    }

    /// Only changes whose national ID starts with `prefix` (1 to 12 digits: a province
    /// `079`, a province and century/gender digit, a birth year in a province, ...). May be
    /// called several times: an ID matching any prefix passes.
    pub fn id_prefix(mut self, prefix: &str) -> Result<Self> {
        if prefix.is_empty() || prefix.len() > NATIONAL_ID_LEN || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid(format!(
                "an ID prefix is 1 to {NATIONAL_ID_LEN} digits (got {} characters)",
                prefix.len()
            )));
        }
        self.id_prefixes.push(prefix.to_string());
        Ok(self)
    }

    /// The collections named (empty: every collection).
    pub fn collection_names(&self) -> &[String] {
        &self.collections
    }

    /// The ID prefixes (empty: every ID).
    pub fn id_prefixes(&self) -> &[String] {
        &self.id_prefixes
    }

    /// Whether a change of `collection` for `id` passes.
    pub(crate) fn matches_id(&self, id: &NationalId) -> bool {
        self.id_prefixes.is_empty() || self.id_prefixes.iter().any(|p| id.as_bytes().starts_with(p.as_bytes()))
    }

    /// Whether changes of `collection` pass (the ID is checked by [`Self::matches_id`]).
    pub(crate) fn matches_collection(&self, collection: &str) -> bool {
        self.collections.is_empty() || self.collections.iter().any(|c| c == collection)
    }

    fn check(&self) -> Result<()> {
        if self.collections.len() > MAX_FILTER_ITEMS || self.id_prefixes.len() > MAX_FILTER_ITEMS {
            return Err(Error::invalid(format!("a filter names at most {MAX_FILTER_ITEMS} collections and prefixes")));
        }
        self.collections.iter().try_for_each(|c| crate::record::catalog::validate_name(c))
    }
}

/// A subscription as [`Store::subscriptions`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriptionInfo {
    /// Its name.
    pub name: String,
    /// Its filter.
    pub filter: SubscriptionFilter,
    /// The position it has acknowledged up to.
    pub acked: SeqNo,
    /// Changes retained after `acked` (of every collection, before the filter).
    pub lag: u64,
    /// Retention dropped changes it had not acknowledged: reading it fails with
    /// [`Error::CursorExpired`].
    pub expired: bool,
}

pub(crate) fn encode_subscription(acked: SeqNo, filter: &SubscriptionFilter) -> Vec<u8> {
    let mut v = vec![SUBSCRIPTION_FORMAT];
    v.extend_from_slice(&acked.to_be_bytes());
    for list in [&filter.collections, &filter.id_prefixes] {
        put_varint(&mut v, list.len() as u64);
        for item in list {
            put_len_prefixed(&mut v, item.as_bytes());
        }
    }
    v
}

pub(crate) fn decode_subscription(v: &[u8]) -> std::result::Result<(SeqNo, SubscriptionFilter), &'static str> {
    let mut r = Reader::new(v);
    if r.u8() != Some(SUBSCRIPTION_FORMAT) {
        return Err("unknown subscription format");
    }
    let acked = r.bytes(8).and_then(|b| b.try_into().ok()).map(SeqNo::from_be_bytes).ok_or("subscription cut short")?;
    let mut lists = [Vec::new(), Vec::new()];
    for list in &mut lists {
        let n = r.varint().ok_or("subscription cut short")?;
        if n > MAX_FILTER_ITEMS as u64 {
            return Err("subscription filter too long");
        }
        for _ in 0..n {
            let item = r.len_prefixed().ok_or("subscription cut short")?;
            list.push(String::from_utf8(item.to_vec()).map_err(|_| "subscription filter is not UTF-8")?);
        }
    }
    if !r.is_empty() {
        return Err("bytes after a subscription");
    }
    let [collections, id_prefixes] = lists;
    Ok((acked, SubscriptionFilter { collections, id_prefixes }))
}

/// Every subscription stored in `db`.
pub(crate) fn load_subscriptions(db: &Db) -> Result<BTreeMap<String, Sub>> {
    let mut subs = BTreeMap::new();
    for kv in db.prefix([TAG_SUBSCRIPTION])? {
        let (k, v) = kv?;
        let name = parse_subscription_key(&k)
            .ok_or_else(|| Error::corruption_unknown_offset(db.path(), "a subscription name is not UTF-8"))?;
        let (acked, filter) = decode_subscription(&v)
            .map_err(|what| Error::corruption_unknown_offset(db.path(), format!("subscription {name:?}: {what}")))?;
        subs.insert(name.to_string(), Sub { filter, acked, holder: None });
    }
    Ok(subs)
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_SUBSCRIPTION_NAME_LEN || name.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "subscription name {name:?} must be 1 to {MAX_SUBSCRIPTION_NAME_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

impl Store {
    /// Registers a durable cursor `name` that receives the changes passing `filter`
    /// committed from now on (synced before it returns). Returns its starting position.
    /// Fails with [`Error::SubscriptionExists`] if `name` is taken, [`Error::FeedOff`] if
    /// the store records no feed.
    pub fn subscribe(&self, name: &str, filter: SubscriptionFilter) -> Result<SeqNo> {
        self.inner.check_writable()?;
        check_name(name)?;
        filter.check()?;
        let feed = self.inner.feed()?;
        let mut state = feed.state.lock();
        if state.subs.contains_key(name) {
            return Err(Error::SubscriptionExists { name: name.to_string() });
        }
        let start = self.inner.db.last_sequence();
        let mut b = WriteBatch::new();
        b.put(subscription_key(name), encode_subscription(start, &filter));
        self.inner.db.write(b, &WriteOptions::synced())?;
        state.subs.insert(name.to_string(), Sub { filter, acked: start, holder: None });
        Ok(start)
    }

    /// Removes subscription `name` (synced) and releases its hold on the feed; an open
    /// cursor of it fails from then on. Returns whether it existed.
    pub fn unsubscribe(&self, name: &str) -> Result<bool> {
        self.inner.check_writable()?;
        let feed = self.inner.feed()?;
        {
            let mut state = feed.state.lock();
            if !state.subs.contains_key(name) {
                return Ok(false);
            }
            let mut b = WriteBatch::new();
            b.delete(subscription_key(name));
            self.inner.db.write(b, &WriteOptions::synced())?;
            state.subs.remove(name);
        }
        self.trim_feed()?;
        Ok(true)
    }

    /// Every subscription with its acknowledged position and lag (counting the lag reads
    /// the retained changes after the oldest position acknowledged). Empty when the feed is
    /// off.
    pub fn subscriptions(&self) -> Result<Vec<SubscriptionInfo>> {
        let Some(feed) = self.inner.feed.as_ref() else { return Ok(Vec::new()) };
        let (subs, horizon): (Vec<_>, _) = {
            let state = feed.state.lock();
            (state.subs.iter().map(|(n, s)| (n.clone(), s.filter.clone(), s.acked)).collect(), state.meta.horizon)
        };
        let mut out = Vec::with_capacity(subs.len());
        let positions = self.change_positions_after(subs.iter().map(|s| s.2).min().unwrap_or(SeqNo::MAX))?;
        for (name, filter, acked) in subs {
            let lag = positions.len() - positions.partition_point(|&p| p <= acked);
            out.push(SubscriptionInfo { name, filter, acked, lag: lag as u64, expired: acked < horizon });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn subscriptions_round_trip() {
        let f =
            SubscriptionFilter::collections(["tax", "vehicle"]).id_prefix("079").unwrap().id_prefix("0012").unwrap();
        for (acked, filter) in [(0, SubscriptionFilter::all()), (u64::MAX >> 8, f)] {
            assert_eq!(decode_subscription(&encode_subscription(acked, &filter)), Ok((acked, filter)));
        }
    }

    #[test]
    fn filters_match_collections_and_prefixes() {
        let id = NationalId::parse("079190001234").unwrap();
        let f = SubscriptionFilter::collections(["tax"]).id_prefix("001").unwrap().id_prefix("0791").unwrap();
        assert!(f.matches_collection("tax") && !f.matches_collection("taxes"));
        assert!(f.matches_id(&id));
        assert!(!SubscriptionFilter::all().id_prefix("0792").unwrap().matches_id(&id));
        assert!(SubscriptionFilter::all().matches_collection("anything") && SubscriptionFilter::all().matches_id(&id));
        for bad in ["", "0791900012345", "07a"] {
            assert!(SubscriptionFilter::all().id_prefix(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(v in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_subscription(&v);
        }

        #[test]
        fn every_cut_or_extension_is_an_error(cut in 0usize..40, extra in any::<u8>()) {
            let v = encode_subscription(7, &SubscriptionFilter::collections(["tax"]).id_prefix("079").unwrap());
            if cut < v.len() {
                prop_assert!(decode_subscription(&v[..cut]).is_err());
            }
            let mut longer = v.clone();
            longer.push(extra);
            prop_assert!(decode_subscription(&longer).is_err());
        }
    }
}
