//! [`MemtableBloom`]: a bloom filter over the user keys of one memtable, so a point read of a
//! key the memtable does not hold skips the skiplist search (a dozen cache misses in a large
//! memtable) for one cache line. RocksDB's `memtable_whole_key_filtering`, on by default here.
//!
//! Same hash and blocked layout as the SSTable filter ([`crate::util::blocked_bloom`]), in
//! atomic words so the one inserting thread and any number of readers share it without locks.
//!
//! Invariant: a key's bits are set before the write path publishes its sequence number
//! (`Release`); a reader that can see the entry (it loaded the sequence number with
//! `Acquire`) sees the bits. No false negatives.

use crate::util::blocked_bloom::{block_of, set_bits_atomic, test_bits_atomic, WordBlock, BLOCK_BYTES};

/// Probes per key: with the default sizing (1/64 of the write buffer, ~16-20 bits per key
/// for 100-byte values) false positives stay well under 1%.
const PROBES: u8 = 6;

/// A concurrent blocked bloom filter; see the module docs.
pub(crate) struct MemtableBloom {
    blocks: Box<[WordBlock]>,
}

impl MemtableBloom {
    /// A filter of about `bytes` bytes (at least one 64-byte block).
    pub(crate) fn new(bytes: usize) -> MemtableBloom {
        let blocks = (bytes / BLOCK_BYTES).max(1);
        MemtableBloom { blocks: std::iter::repeat_with(WordBlock::default).take(blocks).collect() }
    }

    /// Bytes of the bit array.
    #[cfg(test)]
    pub(crate) fn size(&self) -> usize {
        self.blocks.len() * BLOCK_BYTES
    }

    /// The block `hash` probes (always `Some`: there is at least one block).
    fn block(&self, hash: u64) -> Option<&WordBlock> {
        self.blocks.get(block_of(hash, self.blocks.len()))
    }

    /// Adds the key whose [`crate::util::hash::xxh64`] is `hash`.
    pub(crate) fn add(&self, hash: u64) {
        if let Some(block) = self.block(hash) {
            set_bits_atomic(block, hash, PROBES);
        }
    }

    /// Starts loading the cache line [`MemtableBloom::add`] will update for `hash`, so the
    /// caller can overlap that miss with other work (the skiplist insert).
    pub(crate) fn prefetch(&self, hash: u64) {
        if let Some(block) = self.block(hash) {
            crate::util::prefetch::prefetch(block.as_ptr());
        }
    }

    /// False only if no key with `hash` was added.
    pub(crate) fn may_contain(&self, hash: u64) -> bool {
        self.block(hash).is_none_or(|block| test_bits_atomic(block, hash, PROBES))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::hash::xxh64;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let f = MemtableBloom::new(64 << 10); // 524,288 bits for 30,000 keys: ~17 bits a key
        let key = |i: u32| format!("key{i:08}").into_bytes();
        for i in 0..30_000 {
            f.add(xxh64(&key(i)));
        }
        assert!((0..30_000).all(|i| f.may_contain(xxh64(&key(i)))));
        let fp = (30_000..130_000).filter(|&i| f.may_contain(xxh64(&key(i)))).count();
        assert!(fp < 1_000, "{fp} false positives in 100,000");
        assert_eq!(MemtableBloom::new(0).size(), BLOCK_BYTES);
    }
}
