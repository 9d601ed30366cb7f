//! [`MemtableBloom`]: a bloom filter over the user keys of one memtable, so a point read of a
//! key the memtable does not hold skips the skiplist search (a dozen cache misses in a large
//! memtable) for one cache line. RocksDB's `memtable_whole_key_filtering`, on by default here.
//!
//! Same hash and blocked layout as the SSTable filter ([`crate::sst::bloom`]), in atomic words
//! so the one inserting thread and any number of readers share it without locks.
//!
//! Invariant: a key's bits are set before its entry is inserted into the skiplist, and the
//! write path publishes the sequence number (`Release`) only after that; a reader that can see
//! the entry (it loaded the sequence number with `Acquire`) sees the bits. No false negatives.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::sst::bloom::{block_of, probe_bits, BLOCK_BYTES};

/// Probes per key: with the default sizing (1/64 of the write buffer, ~16-20 bits per key
/// for 100-byte values) false positives stay well under 1%.
const PROBES: u8 = 6;

/// 64-bit words in one 64-byte block.
const BLOCK_WORDS: usize = BLOCK_BYTES / 8;

/// A concurrent blocked bloom filter; see the module docs.
pub(crate) struct MemtableBloom {
    words: Box<[AtomicU64]>,
}

impl MemtableBloom {
    /// A filter of about `bytes` bytes (at least one 64-byte block).
    pub(crate) fn new(bytes: usize) -> MemtableBloom {
        let blocks = (bytes / BLOCK_BYTES).max(1);
        MemtableBloom { words: std::iter::repeat_with(|| AtomicU64::new(0)).take(blocks * BLOCK_WORDS).collect() }
    }

    /// Bytes of the bit array.
    #[cfg(test)]
    pub(crate) fn size(&self) -> usize {
        self.words.len() * 8
    }

    /// Adds the key whose [`crate::sst::bloom::bloom_hash`] is `hash`.
    pub(crate) fn add(&self, hash: u64) {
        let block = block_of(hash, self.words.len() / BLOCK_WORDS) * BLOCK_WORDS;
        for bit in probe_bits(hash, PROBES) {
            if let Some(w) = self.words.get(block + bit / 64) {
                w.fetch_or(1 << (bit % 64), Ordering::Relaxed);
            }
        }
    }

    /// Starts loading the cache line [`MemtableBloom::add`] will update for `hash`, so the
    /// caller can overlap that miss with other work (the skiplist insert).
    pub(crate) fn prefetch(&self, hash: u64) {
        let block = block_of(hash, self.words.len() / BLOCK_WORDS) * BLOCK_WORDS;
        if let Some(w) = self.words.get(block) {
            crate::prefetch::prefetch(w.as_ptr());
        }
    }

    /// False only if no key with `hash` was added.
    pub(crate) fn may_contain(&self, hash: u64) -> bool {
        let block = block_of(hash, self.words.len() / BLOCK_WORDS) * BLOCK_WORDS;
        probe_bits(hash, PROBES).all(|bit| {
            self.words.get(block + bit / 64).is_none_or(|w| w.load(Ordering::Relaxed) & (1 << (bit % 64)) != 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sst::bloom::bloom_hash;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let f = MemtableBloom::new(64 << 10); // 524,288 bits for 30,000 keys: ~17 bits a key
        let key = |i: u32| format!("key{i:08}").into_bytes();
        for i in 0..30_000 {
            f.add(bloom_hash(&key(i)));
        }
        assert!((0..30_000).all(|i| f.may_contain(bloom_hash(&key(i)))));
        let fp = (30_000..130_000).filter(|&i| f.may_contain(bloom_hash(&key(i)))).count();
        assert!(fp < 1_000, "{fp} false positives in 100,000");
        assert_eq!(MemtableBloom::new(0).size(), BLOCK_BYTES);
    }
}
