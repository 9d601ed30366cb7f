//! The memtable: a concurrent ordered map from internal keys to values holding the newest
//! writes, first in memory and then (frozen) until a flush writes it to an L0 SSTable.
//!
//! Invariants:
//! - Keys are encoded internal keys (`user_key ++ trailer`), unique because every write has
//!   its own sequence number; ordering is [`compare_internal`].
//! - Only the write-path leader inserts (one thread at a time); any number of readers and
//!   iterators run concurrently with it (lock-free skiplist).
//! - A memtable is tied to the log file that holds its writes (`wal_number`); that log may
//!   be deleted only after the memtable is flushed.

mod iter;

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AtomicOrdering};

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;

use crate::key::{compare_internal, internal_key, pack_trailer, ParsedKey, SeqNo, ValueKind, TRAILER_LEN};

pub(crate) use iter::MemtableIter;

/// Bytes charged per entry on top of key and value: skiplist node, tower and `Bytes` handles.
const ENTRY_OVERHEAD: usize = 80;

/// Longest encoded internal key stored inside the skiplist node itself.
const INLINE_KEY: usize = 38;

/// An owned encoded internal key, ordered by [`compare_internal`]. Short keys (the common
/// case: a 16-byte user key is 24 bytes encoded) live inline in the skiplist node, so a
/// comparison during search touches one cache line instead of chasing a pointer.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum MemKey {
    Inline { len: u8, buf: [u8; INLINE_KEY] },
    Heap(Box<[u8]>),
}

impl MemKey {
    fn new(user_key: &[u8], seq: SeqNo, kind: ValueKind) -> Self {
        let len = user_key.len() + TRAILER_LEN;
        if len <= INLINE_KEY {
            let mut buf = [0u8; INLINE_KEY];
            buf[..user_key.len()].copy_from_slice(user_key);
            buf[user_key.len()..len].copy_from_slice(&pack_trailer(seq, kind).to_le_bytes());
            MemKey::Inline { len: len as u8, buf }
        } else {
            MemKey::Heap(internal_key(user_key, seq, kind).into_boxed_slice())
        }
    }

    /// The encoded internal key.
    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            MemKey::Inline { len, buf } => &buf[..usize::from(*len)],
            MemKey::Heap(b) => b,
        }
    }
}

/// A borrowed encoded internal key with the same ordering, so lookups need no allocation.
#[derive(PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct IKey([u8]);

impl IKey {
    pub(crate) fn new(bytes: &[u8]) -> &IKey {
        // SAFETY: `IKey` is `repr(transparent)` over `[u8]`, so `&[u8]` and `&IKey` have the
        // same layout and the same pointer metadata; the lifetime is carried over unchanged.
        // Exercised by every memtable lookup test.
        unsafe { &*(bytes as *const [u8] as *const IKey) }
    }
}

impl Ord for IKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_internal(&self.0, &other.0)
    }
}

impl PartialOrd for IKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Borrow<IKey> for MemKey {
    fn borrow(&self) -> &IKey {
        IKey::new(self.as_bytes())
    }
}

impl Ord for MemKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_internal(self.as_bytes(), other.as_bytes())
    }
}

impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A concurrent sorted buffer of recent writes.
pub struct Memtable {
    map: SkipMap<MemKey, Bytes>,
    approx_bytes: AtomicUsize,
    max_seq: AtomicU64,
    wal_number: u64,
}

impl std::fmt::Debug for Memtable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memtable")
            .field("entries", &self.map.len())
            .field("approx_bytes", &self.approximate_size())
            .field("wal_number", &self.wal_number)
            .finish()
    }
}

impl Memtable {
    /// An empty memtable whose writes are logged in log file `wal_number`.
    pub fn new(wal_number: u64) -> Self {
        Memtable { map: SkipMap::new(), approx_bytes: AtomicUsize::new(0), max_seq: AtomicU64::new(0), wal_number }
    }

    /// Inserts one versioned entry. The caller guarantees `(user_key, seq)` is new.
    pub fn insert(&self, user_key: &[u8], seq: SeqNo, kind: ValueKind, value: Bytes) {
        let key = MemKey::new(user_key, seq, kind);
        self.approx_bytes
            .fetch_add(user_key.len() + TRAILER_LEN + value.len() + ENTRY_OVERHEAD, AtomicOrdering::Relaxed);
        self.max_seq.fetch_max(seq, AtomicOrdering::Relaxed);
        self.map.insert(key, value);
    }

    /// The newest entry for `user_key` with sequence `<= snapshot`: its kind and value.
    pub fn get(&self, user_key: &[u8], snapshot: SeqNo) -> Option<(ValueKind, Bytes)> {
        let lookup = MemKey::new(user_key, snapshot, ValueKind::MAX);
        let entry = self.map.lower_bound(Bound::Included(IKey::new(lookup.as_bytes())))?;
        let parsed = ParsedKey::parse(entry.key().as_bytes())?;
        (parsed.user_key == user_key).then(|| (parsed.kind, entry.value().clone()))
    }

    /// Approximate memory used, in bytes.
    pub fn approximate_size(&self) -> usize {
        self.approx_bytes.load(AtomicOrdering::Relaxed)
    }

    /// True when nothing was inserted.
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Largest sequence number inserted (0 when empty).
    pub(crate) fn max_seq(&self) -> SeqNo {
        self.max_seq.load(AtomicOrdering::Relaxed)
    }

    /// The log file holding this memtable's writes.
    pub(crate) fn wal_number(&self) -> u64 {
        self.wal_number
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_sees_newest_visible_version() {
        let m = Memtable::new(1);
        m.insert(b"k", 1, ValueKind::Put, Bytes::from_static(b"v1"));
        m.insert(b"k", 3, ValueKind::Put, Bytes::from_static(b"v3"));
        m.insert(b"k", 5, ValueKind::Delete, Bytes::new());
        m.insert(b"ka", 2, ValueKind::Put, Bytes::from_static(b"x"));
        assert_eq!(m.get(b"k", 0), None);
        assert_eq!(m.get(b"k", 2), Some((ValueKind::Put, Bytes::from_static(b"v1"))));
        assert_eq!(m.get(b"k", 4), Some((ValueKind::Put, Bytes::from_static(b"v3"))));
        assert_eq!(m.get(b"k", 9).map(|e| e.0), Some(ValueKind::Delete));
        assert_eq!(m.get(b"j", 9), None);
        assert_eq!(m.get(b"ka", 9), Some((ValueKind::Put, Bytes::from_static(b"x"))));
        assert_eq!(m.max_seq(), 5);
        assert!(m.approximate_size() > 4 * ENTRY_OVERHEAD);
    }
}
