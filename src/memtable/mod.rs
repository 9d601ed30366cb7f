//! The memtable: a concurrent ordered map from internal keys to values holding the newest
//! writes, first in memory and then (frozen) until a flush writes it to an L0 SSTable.
//!
//! Invariants:
//! - Keys are encoded internal keys (`user_key ++ trailer`), unique because every write has
//!   its own sequence number; ordering is [`compare_internal`].
//! - Inserts are serialized (in practice only the write-path leader inserts); any number of
//!   readers and iterators run concurrently with them, lock-free ([`skiplist`]).
//! - Keys and values are copied into the memtable's arena; its memory is freed as a whole
//!   when the last handle (the database's view, a flush, an iterator) drops it.
//! - A memtable is tied to the log file that holds its writes (`wal_number`); that log may
//!   be deleted only after the memtable is flushed.

mod arena;
mod bloom;
mod iter;
mod skiplist;

use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use bytes::Bytes;

use crate::key::{pack_trailer, ParsedKey, SeqNo, ValueKind, TRAILER_LEN};
use crate::util::hash::xxh64;

use bloom::MemtableBloom;
pub(crate) use iter::MemtableIter;
use skiplist::SkipList;

/// Longest user key whose lookup key is built on the stack.
const STACK_KEY: usize = 56;

/// A concurrent sorted buffer of recent writes.
pub struct Memtable {
    list: SkipList,
    /// Filter over the user keys, for point reads (none: every read searches).
    bloom: Option<MemtableBloom>,
    max_seq: AtomicU64,
    wal_number: u64,
}

impl std::fmt::Debug for Memtable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memtable")
            .field("entries", &self.list.len())
            .field("approx_bytes", &self.approximate_size())
            .field("wal_number", &self.wal_number)
            .finish()
    }
}

impl Memtable {
    /// An empty memtable for the writes logged in log file `wal_number`, with the bloom
    /// filter `opts` asks for (`memtable_bloom_ratio` of `write_buffer_size`).
    pub fn new(wal_number: u64, opts: &crate::Options) -> Self {
        let bloom_bytes = (opts.write_buffer_size as f64 * opts.memtable_bloom_ratio) as usize;
        Memtable::with_bloom(wal_number, bloom_bytes)
    }

    /// An empty memtable without a filter (recovery's replay buffer, tests).
    pub fn unfiltered(wal_number: u64) -> Self {
        Memtable { list: SkipList::new(), bloom: None, max_seq: AtomicU64::new(0), wal_number }
    }

    /// An empty memtable with a bloom filter of `bloom_bytes` over its user keys (none for 0).
    pub fn with_bloom(wal_number: u64, bloom_bytes: usize) -> Self {
        Memtable {
            bloom: (bloom_bytes > 0).then(|| MemtableBloom::new(bloom_bytes)),
            ..Memtable::unfiltered(wal_number)
        }
    }

    /// Inserts one versioned entry, copying key and value into the memtable's arena. The
    /// caller guarantees `(user_key, seq)` is new.
    pub fn insert(&self, user_key: &[u8], seq: SeqNo, kind: ValueKind, value: &[u8]) {
        // The filter's bits may be set after the skiplist insert: readers only look for
        // entries whose sequence number the write path publishes after this returns. Loading
        // the filter's line meanwhile hides its cache miss behind the skiplist's.
        let hash = self.bloom.as_ref().map(|b| {
            let h = xxh64(user_key);
            b.prefetch(h);
            h
        });
        self.max_seq.fetch_max(seq, AtomicOrdering::Relaxed);
        self.list.insert(user_key, &pack_trailer(seq, kind).to_le_bytes(), value);
        if let (Some(bloom), Some(h)) = (&self.bloom, hash) {
            bloom.add(h);
        }
    }

    /// The newest entry for `user_key` with sequence `<= snapshot`: its kind and value.
    #[cfg(any(test, feature = "internals"))]
    pub fn get(&self, user_key: &[u8], snapshot: SeqNo) -> Option<(ValueKind, Bytes)> {
        self.get_hashed(user_key, snapshot, xxh64(user_key))
    }

    /// [`Memtable::get`] with `user_key` already hashed by [`xxh64`].
    pub(crate) fn get_hashed(&self, user_key: &[u8], snapshot: SeqNo, hash: u64) -> Option<(ValueKind, Bytes)> {
        if self.bloom.as_ref().is_some_and(|b| !b.may_contain(hash)) {
            return None;
        }
        let trailer = pack_trailer(snapshot, ValueKind::MAX).to_le_bytes();
        let node = if user_key.len() <= STACK_KEY {
            let mut buf = [0u8; STACK_KEY + TRAILER_LEN];
            buf[..user_key.len()].copy_from_slice(user_key);
            buf[user_key.len()..user_key.len() + TRAILER_LEN].copy_from_slice(&trailer);
            self.list.seek(&buf[..user_key.len() + TRAILER_LEN])
        } else {
            self.list.seek(&[user_key, &trailer].concat())
        }?;
        // SAFETY: `node` was just returned by this list.
        let (key, value) = unsafe { (self.list.key(node), self.list.value(node)) };
        let parsed = ParsedKey::parse(key)?;
        (parsed.user_key == user_key).then(|| (parsed.kind, Bytes::copy_from_slice(value)))
    }

    /// Memory used by entries, in bytes (keys, values and skiplist links); the fixed-size
    /// bloom filter is not counted (it would make a fresh memtable look partly full).
    pub fn approximate_size(&self) -> usize {
        self.list.memory_usage()
    }

    /// True when nothing was inserted.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.len() == 0
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
        for m in [Memtable::unfiltered(1), Memtable::with_bloom(1, 64)] {
            check_versions(m);
        }
    }

    fn check_versions(m: Memtable) {
        m.insert(b"k", 1, ValueKind::Put, b"v1");
        m.insert(b"k", 3, ValueKind::Put, b"v3");
        m.insert(b"k", 5, ValueKind::Delete, b"");
        m.insert(b"ka", 2, ValueKind::Put, b"x");
        assert_eq!(m.get(b"k", 0), None);
        assert_eq!(m.get(b"k", 2), Some((ValueKind::Put, Bytes::from_static(b"v1"))));
        assert_eq!(m.get(b"k", 4), Some((ValueKind::Put, Bytes::from_static(b"v3"))));
        assert_eq!(m.get(b"k", 9).map(|e| e.0), Some(ValueKind::Delete));
        assert_eq!(m.get(b"j", 9), None);
        assert_eq!(m.get(b"ka", 9), Some((ValueKind::Put, Bytes::from_static(b"x"))));
        assert_eq!(m.max_seq(), 5);
        assert!(m.approximate_size() > 4 * (1 + 8 + 2));
        let long = vec![b'L'; STACK_KEY + 1];
        m.insert(&long, 6, ValueKind::Put, b"long");
        assert_eq!(m.get(&long, 9), Some((ValueKind::Put, Bytes::from_static(b"long"))));
        assert_eq!(m.get(&long[..STACK_KEY], 9), None);
    }
}
