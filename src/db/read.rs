//! The read entry points of [`Db`]: point reads and range iteration at the latest state.

use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use bytes::Bytes;

use super::{Db, DbInner, SuperVersion};
use crate::iter::DbIterator;
use crate::key::{internal_key, SeqNo, ValueKind};
use crate::util::hash::xxh64;
use crate::Result;

impl DbInner {
    /// The value of `key` visible at `seq` in `sv`.
    pub(crate) fn get_at(sv: &SuperVersion, key: &[u8], seq: SeqNo) -> Result<Option<Bytes>> {
        // One hash for every bloom filter on the way: memtables' and tables'.
        let hash = xxh64(key);
        let found = match sv.mem.get_hashed(key, seq, hash) {
            Some(hit) => Some(hit),
            None => match sv.imm.iter().find_map(|m| m.get_hashed(key, seq, hash)) {
                Some(hit) => Some(hit),
                None => sv.version.get(&internal_key(key, seq, ValueKind::MAX), hash)?,
            },
        };
        Ok(found.and_then(|(kind, v)| (kind == ValueKind::Put).then_some(v)))
    }
}

/// Converts any range of byte-string-like keys into owned bounds.
pub(crate) fn owned_bounds<K: AsRef<[u8]>, R: RangeBounds<K>>(range: &R) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let own = |b: Bound<&K>| match b {
        Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    };
    (own(range.start_bound()), own(range.end_bound()))
}

/// The bounds covering every key that starts with `prefix`.
pub(crate) fn prefix_bounds(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return (Bound::Included(prefix.to_vec()), Bound::Excluded(end));
        }
    }
    (Bound::Included(prefix.to_vec()), Bound::Unbounded)
}

impl Db {
    /// The current value of `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let inner = self.inner();
        let (sv, seq) = inner.open_read_view()?;
        DbInner::get_at(&sv, key.as_ref(), seq)
    }

    /// True if `key` has a value.
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// An iterator over every key, in order (reverse it with `.rev()`).
    pub fn iter(&self) -> Result<DbIterator> {
        self.range::<&[u8], _>(..)
    }

    /// An iterator over the keys in `range`, e.g. `db.range("a".."m")`; it sees the database
    /// as of this call and is not affected by later writes.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<DbIterator> {
        let (lower, upper) = owned_bounds(&range);
        self.iter_bounds(lower, upper)
    }

    /// An iterator over the keys starting with `prefix`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Result<DbIterator> {
        let (lower, upper) = prefix_bounds(prefix.as_ref());
        self.iter_bounds(lower, upper)
    }

    fn iter_bounds(&self, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>) -> Result<DbIterator> {
        let inner = self.inner();
        let (sv, seq): (Arc<SuperVersion>, SeqNo) = inner.open_read_view()?;
        Ok(DbIterator::new(sv, seq, lower, upper))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds_cover_exactly_the_prefix() {
        assert_eq!(prefix_bounds(b"ab"), (Bound::Included(b"ab".to_vec()), Bound::Excluded(b"ac".to_vec())));
        assert_eq!(prefix_bounds(b"a\xff"), (Bound::Included(b"a\xff".to_vec()), Bound::Excluded(b"b".to_vec())));
        assert_eq!(prefix_bounds(b"\xff\xff"), (Bound::Included(b"\xff\xff".to_vec()), Bound::Unbounded));
        assert_eq!(prefix_bounds(b""), (Bound::Included(vec![]), Bound::Unbounded));
    }
}
