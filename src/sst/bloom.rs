//! The table's bloom filter over user keys: its on-disk block, how a writer sizes it, and
//! decoding and probing it.
//!
//! Filter block layout (see `docs/sst-format.md`, "Filter block"): `bits: [u8; 64 * B] | k: u8`,
//! `B >= 1` blocks of 512 bits. Keys are hashed with [`xxh64`]; which block and bits a hash
//! sets is the shared blocked-filter math of [`crate::util::blocked_bloom`] (one cache miss a
//! lookup, about 1% false positives at 10 bits per key with `k = 6`).
//!
//! Invariants: `k` is in `1..=MAX_BLOOM_PROBES` and the bit array is a non-zero multiple of 64
//! bytes; a filter failing either is corruption. A filter never gives a false negative for a
//! key added to its builder.

use std::path::Path;

use bytes::Bytes;

use crate::sst::format::{MAX_BLOOM_PROBES, MIN_BLOOM_BITS};
use crate::util::blocked_bloom::{block_of, set_bits, test_bits, BLOCK_BYTES};
use crate::util::hash::xxh64;
use crate::util::mapped_u64s::MappedU64s;
use crate::{Error, Result};

/// The probe count for `bits_per_key`: `round(0.6 * bits_per_key)` clamped to `1..=30`
/// (a blocked filter's best `k` is below a classic filter's `ln 2 * bits_per_key`; RocksDB's
/// `FastLocalBloom` also uses 6 at 10 bits per key).
fn probes(bits_per_key: u32) -> u8 {
    let k = (f64::from(bits_per_key) * 0.6).round();
    k.clamp(1.0, f64::from(MAX_BLOOM_PROBES)) as u8
}

/// Collects key hashes and builds a filter block. Unstable internal API.
#[derive(Debug)]
pub struct BloomBuilder {
    bits_per_key: u32,
    /// 8 bytes a key, up to tens of MiB for a large table: kept outside the allocator.
    hashes: MappedU64s,
}

impl BloomBuilder {
    /// A builder sizing the filter at `bits_per_key` bits per added key (at least 1).
    pub fn new(bits_per_key: u32) -> Self {
        BloomBuilder { bits_per_key: bits_per_key.max(1), hashes: MappedU64s::new() }
    }

    /// Adds a key. The caller dedupes equal consecutive keys (duplicates only waste bits).
    pub fn add_key(&mut self, key: &[u8]) {
        self.hashes.push(xxh64(key));
    }

    /// Bytes [`BloomBuilder::finish`] will return.
    pub fn size_estimate(&self) -> usize {
        self.num_bits() / 8 + 1
    }

    fn num_bits(&self) -> usize {
        let bits = self.hashes.len().saturating_mul(self.bits_per_key as usize).max(MIN_BLOOM_BITS);
        bits.div_ceil(BLOCK_BYTES * 8).saturating_mul(BLOCK_BYTES * 8)
    }

    /// Returns the filter block (`bits ++ k`) for every key added.
    pub fn finish(&self) -> Vec<u8> {
        let nbits = self.num_bits();
        let k = probes(self.bits_per_key);
        let mut out = vec![0u8; nbits / 8 + 1];
        let (bits, kbyte) = out.split_at_mut(nbits / 8);
        let (blocks, _) = bits.as_chunks_mut::<BLOCK_BYTES>();
        let nblocks = blocks.len();
        for h in self.hashes.iter() {
            if let Some(block) = blocks.get_mut(block_of(h, nblocks)) {
                set_bits(block, h, k);
            }
        }
        if let Some(b) = kbyte.first_mut() {
            *b = k;
        }
        out
    }
}

/// A decoded filter block. Unstable internal API.
#[derive(Debug, Clone)]
pub struct BloomFilter {
    bits: Bytes,
    nbits: u64,
    k: u8,
}

impl BloomFilter {
    /// Checks a filter block read from `path` at `file_offset` (for error messages).
    pub fn decode(block: Bytes, path: &Path, file_offset: u64) -> Result<BloomFilter> {
        let Some((&k, _)) = block.split_last() else {
            return Err(Error::corruption(path, file_offset, "empty filter block"));
        };
        let nbytes = block.len() - 1;
        if nbytes == 0 || !nbytes.is_multiple_of(BLOCK_BYTES) || !(1..=MAX_BLOOM_PROBES).contains(&k) {
            return Err(Error::corruption(
                path,
                file_offset,
                format!(
                    "filter with {nbytes} bit-array bytes and k = {k} \
                     (want a non-zero multiple of {BLOCK_BYTES} bytes, 1 <= k <= {MAX_BLOOM_PROBES})"
                ),
            ));
        }
        Ok(BloomFilter { bits: block.slice(..nbytes), nbits: nbytes as u64 * 8, k })
    }

    /// False only if `key` was certainly not added.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.may_contain_hash(xxh64(key))
    }

    /// Bits in the filter's bit array (`m`).
    pub fn num_bits(&self) -> u64 {
        self.nbits
    }

    /// Probes per key (`k`).
    pub fn num_probes(&self) -> u8 {
        self.k
    }

    /// [`BloomFilter::may_contain`] for a precomputed [`xxh64`] of the key.
    pub fn may_contain_hash(&self, h: u64) -> bool {
        let (blocks, _) = self.bits.as_chunks::<BLOCK_BYTES>();
        // No block is unreachable for a decoded filter; "maybe" is always safe.
        blocks.get(block_of(h, blocks.len())).is_none_or(|block| test_bits(block, h, self.k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(keys: impl Iterator<Item = Vec<u8>>, bpk: u32) -> BloomFilter {
        let mut b = BloomBuilder::new(bpk);
        for k in keys {
            b.add_key(&k);
        }
        let block = b.finish();
        assert_eq!(block.len(), b.size_estimate());
        BloomFilter::decode(Bytes::from(block), Path::new("t"), 0).unwrap()
    }

    #[test]
    fn no_false_negatives_and_about_one_percent_false_positives() {
        let n = 100_000u32;
        let f = filter((0..n).map(|i| format!("user{i:08}").into_bytes()), 10);
        assert_eq!(f.k, 6);
        for i in 0..n {
            assert!(f.may_contain(format!("user{i:08}").as_bytes()));
        }
        let fp = (n..2 * n).filter(|i| f.may_contain(format!("user{i:08}").as_bytes())).count();
        let rate = fp as f64 / f64::from(n);
        assert!(rate < 0.02, "false-positive rate {rate}");
    }

    #[test]
    fn empty_filter_matches_nothing() {
        let f = filter(std::iter::empty(), 10);
        assert_eq!(f.nbits, MIN_BLOOM_BITS as u64);
        assert!(!f.may_contain(b"x"));
    }

    #[test]
    fn bad_filters_are_corruption() {
        let mut ok_size = [0u8; 65];
        ok_size[64] = 31; // k too large
        let mut odd = [0u8; 66];
        odd[65] = 6; // 65 bit-array bytes: not whole blocks
        for b in [&[][..], &[7][..], &[0, 0][..], &[0, 31][..], &ok_size[..], &odd[..]] {
            let e = BloomFilter::decode(Bytes::copy_from_slice(b), Path::new("t"), 5).unwrap_err();
            assert!(e.is_corruption(), "{b:?}");
        }
    }
}
