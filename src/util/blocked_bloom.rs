//! The math of a *blocked* bloom filter (RocksDB's `FastLocalBloom` design), shared by the
//! table filter (`sst::bloom`: bytes, on disk) and the memtable filter (`memtable::bloom`:
//! atomic words, in memory). Every probe of a key falls in one 64-byte block, so a lookup
//! costs one cache miss instead of `k`, for a false-positive rate a little above a classic
//! filter's.
//!
//! With `h` the key's [`xxh64`](super::hash::xxh64) and a filter of `B` blocks: the block is
//! `((h >> 32) * B) >> 32` (multiply-shift of the high half onto `0..B`, [`block_of`]); the
//! probes come from the low half `g = h mod 2^32`: `k` times, `g = g * 0x9E3779B9 mod 2^32`,
//! then bit `g >> 23` (the top 9 bits) of the block. Bit `i` of a block is bit `i % 8` (least
//! significant first) of its byte `i / 8` ([`ByteBlock`]) — the same bit as bit `i % 64` of its
//! little-endian 64-bit word `i / 64` ([`WordBlock`]).
//!
//! Invariants: the bit a hash sets is the bit it tests, in either representation, so a filter
//! never gives a false negative. These positions are part of the table format
//! (`docs/sst-format.md`, "Filter block"): changing any of them makes existing filters lie.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes of one filter block: one cache line.
pub(crate) const BLOCK_BYTES: usize = 64;

/// A block as bytes, as a table's filter stores it.
pub(crate) type ByteBlock = [u8; BLOCK_BYTES];

/// A block as atomic little-endian words, as the memtable's filter holds it (one writer and
/// any number of readers, without locks).
pub(crate) type WordBlock = [AtomicU64; BLOCK_BYTES / 8];

/// The multiplier that steps the probe hash (2^32 / golden ratio).
const PROBE_STEP: u32 = 0x9E37_79B9;

/// The block of a filter with `nblocks` blocks that `h` probes (below `nblocks` when
/// `nblocks > 0`).
#[inline]
pub(crate) fn block_of(h: u64, nblocks: usize) -> usize {
    (((h >> 32) * nblocks as u64) >> 32) as usize
}

/// The `k` bit positions (`0..512`) `h` probes within its block.
#[inline]
fn probe_bits(h: u64, k: u8) -> impl Iterator<Item = usize> {
    let mut g = h as u32;
    (0..k).map(move |_| {
        g = g.wrapping_mul(PROBE_STEP);
        (g >> 23) as usize
    })
}

/// Sets the `k` bits `h` probes in `block`.
#[inline]
pub(crate) fn set_bits(block: &mut ByteBlock, h: u64, k: u8) {
    for bit in probe_bits(h, k) {
        if let Some(byte) = block.get_mut(bit / 8) {
            *byte |= 1 << (bit % 8);
        }
    }
}

/// True if all `k` bits `h` probes are set in `block`.
#[inline]
pub(crate) fn test_bits(block: &ByteBlock, h: u64, k: u8) -> bool {
    probe_bits(h, k).all(|bit| block.get(bit / 8).is_some_and(|b| b & (1 << (bit % 8)) != 0))
}

/// [`set_bits`] on a shared block. `Relaxed`: the caller publishes the key by other means.
#[inline]
pub(crate) fn set_bits_atomic(block: &WordBlock, h: u64, k: u8) {
    for bit in probe_bits(h, k) {
        if let Some(w) = block.get(bit / 64) {
            w.fetch_or(1 << (bit % 64), Ordering::Relaxed);
        }
    }
}

/// [`test_bits`] on a shared block.
#[inline]
pub(crate) fn test_bits_atomic(block: &WordBlock, h: u64, k: u8) -> bool {
    probe_bits(h, k).all(|bit| block.get(bit / 64).is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (bit % 64)) != 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::hash::xxh64;

    #[test]
    fn blocks_and_probes_stay_in_range() {
        for i in 0..10_000u32 {
            let h = xxh64(&i.to_le_bytes());
            for n in [1, 2, 3, 1000] {
                assert!(block_of(h, n) < n);
            }
            assert!(probe_bits(h, 30).all(|bit| bit < BLOCK_BYTES * 8));
        }
    }

    #[test]
    fn byte_and_word_blocks_hold_the_same_bits() {
        let mut bytes: ByteBlock = [0; BLOCK_BYTES];
        let words = WordBlock::default();
        let hashes: Vec<u64> = (0..20u32).map(|i| xxh64(&i.to_le_bytes())).collect();
        for &h in &hashes {
            set_bits(&mut bytes, h, 6);
            set_bits_atomic(&words, h, 6);
        }
        for (chunk, w) in bytes.chunks_exact(8).zip(&words) {
            let mut le = [0u8; 8];
            le.copy_from_slice(chunk);
            assert_eq!(u64::from_le_bytes(le), w.load(Ordering::Relaxed));
        }
        assert!(hashes.iter().all(|&h| test_bits(&bytes, h, 6) && test_bits_atomic(&words, h, 6)));
        let empty: ByteBlock = [0; BLOCK_BYTES];
        assert!(!test_bits(&empty, hashes[0], 1));
    }
}
