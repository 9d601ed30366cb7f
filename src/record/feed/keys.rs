//! The change feed's keys and its small fixed-layout values (see `docs/record-model.md`
//! and `docs/sync.md`):
//!
//! ```text
//! change        F | position: u64 BE                      -> change value (change.rs)
//! subscription  S | name (UTF-8)                          -> subscription value (subscription.rs)
//! feed state    M | "feed"                                -> format: u8 (= 1) | horizon: u64 BE
//!                                                            | trimmed_through: u64 BE
//! ```
//!
//! Invariants: a position is the sequence number the commit gave the change's own `F` put
//! (stamped into the key by the engine, `WriteBatch::put_stamped`), so positions are unique
//! and `F` keys sort in commit order.

use crate::batch::STAMP_LEN;
use crate::SeqNo;

/// Tag of change entries.
pub(crate) const TAG_CHANGE: u8 = b'F';
/// Tag of subscriptions.
pub(crate) const TAG_SUBSCRIPTION: u8 = b'S';
/// Name of the feed's state under the meta tag (`M|feed`).
pub(crate) const FEED_META_NAME: &str = "feed";

/// Bytes of a change key.
pub(crate) const CHANGE_KEY_LEN: usize = 1 + STAMP_LEN;

/// `F | position`.
pub(crate) fn change_key(position: SeqNo) -> [u8; CHANGE_KEY_LEN] {
    let mut k = [TAG_CHANGE; CHANGE_KEY_LEN];
    k[1..].copy_from_slice(&position.to_be_bytes());
    k
}

/// The position of a change key; `None` if `k` is not one.
pub(crate) fn parse_change_key(k: &[u8]) -> Option<SeqNo> {
    match k.split_first() {
        Some((&TAG_CHANGE, pos)) if pos.len() == STAMP_LEN => Some(SeqNo::from_be_bytes(pos.try_into().ok()?)),
        _ => None,
    }
}

/// `S | name`.
pub(crate) fn subscription_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(TAG_SUBSCRIPTION);
    k.extend_from_slice(name.as_bytes());
    k
}

/// The name of a subscription key; `None` if `k` is not one.
pub(crate) fn parse_subscription_key(k: &[u8]) -> Option<&str> {
    match k.split_first() {
        Some((&TAG_SUBSCRIPTION, name)) => std::str::from_utf8(name).ok(),
        _ => None,
    }
}

/// The feed's persisted state (`M|feed`); present iff the feed is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FeedMeta {
    /// Changes up to here may have been dropped before every subscription acknowledged
    /// them (retention's bound): a subscription acknowledged below it has expired.
    pub(crate) horizon: SeqNo,
    /// Every change up to here is deleted (retention's scans start after it).
    pub(crate) trimmed_through: SeqNo,
}

const FEED_META_FORMAT: u8 = 1;
const FEED_META_LEN: usize = 1 + 8 + 8;

impl FeedMeta {
    pub(crate) fn encode(&self) -> [u8; FEED_META_LEN] {
        let mut v = [0; FEED_META_LEN];
        v[0] = FEED_META_FORMAT;
        v[1..9].copy_from_slice(&self.horizon.to_be_bytes());
        v[9..].copy_from_slice(&self.trimmed_through.to_be_bytes());
        v
    }

    /// `Err(what)` for a value of another length or format.
    pub(crate) fn decode(v: &[u8]) -> Result<FeedMeta, String> {
        if v.len() != FEED_META_LEN || v[0] != FEED_META_FORMAT {
            return Err(format!(
                "feed state of {} bytes, format {:?}: expected {FEED_META_LEN}, 1",
                v.len(),
                v.first()
            ));
        }
        let at = |i: usize| v.get(i..i + 8).and_then(|b| b.try_into().ok()).map(SeqNo::from_be_bytes).unwrap_or(0);
        Ok(FeedMeta { horizon: at(1), trimmed_through: at(9) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_by_position() {
        assert_eq!(parse_change_key(&change_key(0x0102_0304)), Some(0x0102_0304));
        assert!(change_key(255) < change_key(256));
        assert_eq!(parse_change_key(b"F\0\0"), None);
        assert_eq!(parse_change_key(&subscription_key("x")), None);
        assert_eq!(parse_subscription_key(&subscription_key("tax-agency")), Some("tax-agency"));
        assert_eq!(parse_subscription_key(b"Rxx"), None);
    }

    #[test]
    fn feed_meta_round_trips_and_rejects_other_bytes() {
        let m = FeedMeta { horizon: 9, trimmed_through: 1 << 40 };
        assert_eq!(FeedMeta::decode(&m.encode()), Ok(m));
        assert!(FeedMeta::decode(&[]).is_err());
        assert!(FeedMeta::decode(&[2; FEED_META_LEN]).is_err());
        assert!(FeedMeta::decode(&m.encode()[..5]).is_err());
    }
}
