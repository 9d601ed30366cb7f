//! The table's bloom filter over user keys, and the hash it uses.
//!
//! Filter block layout (see `docs/sst-format.md`, "Filter block"): `bits: [u8; 64 * B] | k: u8`,
//! `B >= 1` blocks of 512 bits. Bit `i` of a block is bit `i % 8` (least significant first) of
//! the block's byte `i / 8`.
//!
//! A *blocked* bloom filter (RocksDB's `FastLocalBloom` design): every probe of a key falls in
//! one 64-byte block, so a lookup costs one cache miss instead of `k`, for a false-positive
//! rate a little above a classic filter's (about 1% at 10 bits per key with `k = 6`).
//!
//! Hash: [`bloom_hash`] is XXH64 with seed 0, a fixed, published, platform-independent
//! function (never `std`'s `DefaultHasher`, whose output may change between Rust releases).
//! With `h = bloom_hash(key)`: the block is `((h >> 32) * B) >> 32` (multiply-shift of the
//! high half onto `0..B`); the probes come from the low half `g = h mod 2^32`: `k` times,
//! `g = g * 0x9E3779B9 mod 2^32`, then bit `g >> 23` (the top 9 bits) of the block.
//!
//! Invariants: `k` is in `1..=MAX_BLOOM_PROBES` and the bit array is a non-zero multiple of 64
//! bytes; a filter failing either is corruption. A filter never gives a false negative for a
//! key added to its builder.

use std::path::Path;

use bytes::Bytes;

use crate::sst::format::{MAX_BLOOM_PROBES, MIN_BLOOM_BITS};
use crate::{Error, Result};

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

#[inline]
fn round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(P2)).rotate_left(31).wrapping_mul(P1)
}

#[inline]
fn merge(acc: u64, v: u64) -> u64 {
    (acc ^ round(0, v)).wrapping_mul(P1).wrapping_add(P4)
}

#[inline]
fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_le_bytes(a)
}

/// XXH64 (seed 0) of `key`: the filter's hash. Unstable internal API.
pub fn bloom_hash(key: &[u8]) -> u64 {
    let len = key.len() as u64;
    let mut stripes = key.chunks_exact(32);
    let mut h = if key.len() >= 32 {
        let (mut v1, mut v2, mut v3, mut v4) = (P1.wrapping_add(P2), P2, 0u64, 0u64.wrapping_sub(P1));
        for s in &mut stripes {
            v1 = round(v1, le64(&s[0..8]));
            v2 = round(v2, le64(&s[8..16]));
            v3 = round(v3, le64(&s[16..24]));
            v4 = round(v4, le64(&s[24..32]));
        }
        let h = v1
            .rotate_left(1)
            .wrapping_add(v2.rotate_left(7))
            .wrapping_add(v3.rotate_left(12))
            .wrapping_add(v4.rotate_left(18));
        merge(merge(merge(merge(h, v1), v2), v3), v4)
    } else {
        P5
    };
    h = h.wrapping_add(len);
    let tail = stripes.remainder();
    let mut words = tail.chunks_exact(8);
    for w in &mut words {
        h ^= round(0, le64(w));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
    }
    let mut rest = words.remainder();
    if rest.len() >= 4 {
        let (w, r) = rest.split_at(4);
        let mut a = [0u8; 4];
        a.copy_from_slice(w);
        h ^= u64::from(u32::from_le_bytes(a)).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        rest = r;
    }
    for &b in rest {
        h ^= u64::from(b).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^= h >> 32;
    h
}

/// Bytes of one filter block: one cache line.
pub(crate) const BLOCK_BYTES: usize = 64;

/// The multiplier that steps the probe hash (2^32 / golden ratio).
const PROBE_STEP: u32 = 0x9E37_79B9;

/// The block of a filter with `nblocks` blocks that `h` probes.
#[inline]
pub(crate) fn block_of(h: u64, nblocks: usize) -> usize {
    (((h >> 32) * nblocks as u64) >> 32) as usize
}

/// The `k` bit positions (`0..512`) `h` probes within its block.
#[inline]
pub(crate) fn probe_bits(h: u64, k: u8) -> impl Iterator<Item = usize> {
    let mut g = h as u32;
    (0..k).map(move |_| {
        g = g.wrapping_mul(PROBE_STEP);
        (g >> 23) as usize
    })
}

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
    hashes: Vec<u64>,
}

impl BloomBuilder {
    /// A builder sizing the filter at `bits_per_key` bits per added key (at least 1).
    pub fn new(bits_per_key: u32) -> Self {
        BloomBuilder { bits_per_key: bits_per_key.max(1), hashes: Vec::new() }
    }

    /// Adds a key. The caller dedupes equal consecutive keys (duplicates only waste bits).
    pub fn add_key(&mut self, key: &[u8]) {
        self.hashes.push(bloom_hash(key));
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
        let nblocks = nbits / 8 / BLOCK_BYTES;
        let k = probes(self.bits_per_key);
        let mut out = vec![0u8; nbits / 8 + 1];
        let (bits, kbyte) = out.split_at_mut(nbits / 8);
        for &h in &self.hashes {
            let block = block_of(h, nblocks) * BLOCK_BYTES;
            for bit in probe_bits(h, k) {
                if let Some(byte) = bits.get_mut(block + bit / 8) {
                    *byte |= 1 << (bit % 8);
                }
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
        self.may_contain_hash(bloom_hash(key))
    }

    /// Bits in the filter's bit array (`m`).
    pub fn num_bits(&self) -> u64 {
        self.nbits
    }

    /// Probes per key (`k`).
    pub fn num_probes(&self) -> u8 {
        self.k
    }

    /// [`BloomFilter::may_contain`] for a precomputed [`bloom_hash`].
    pub fn may_contain_hash(&self, h: u64) -> bool {
        let nblocks = self.bits.len() / BLOCK_BYTES;
        let start = block_of(h, nblocks) * BLOCK_BYTES;
        let Some(block) = self.bits.get(start..start + BLOCK_BYTES) else {
            return true; // unreachable for a decoded filter; "maybe" is always safe
        };
        probe_bits(h, self.k).all(|bit| block.get(bit / 8).is_some_and(|b| b & (1 << (bit % 8)) != 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxh64_reference_vectors() {
        assert_eq!(bloom_hash(b""), 0xEF46_DB37_51D8_E999);
        assert_eq!(bloom_hash(b"a"), 0xD24E_C4F1_A98C_6E5B);
        assert_eq!(bloom_hash(b"abc"), 0x44BC_2CF5_AD77_0999);
        assert_eq!(bloom_hash(b"Nobody inspects the spammish repetition"), 0xFBCE_A83C_8A37_8BF1);
    }

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
