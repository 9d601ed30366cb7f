//! Keys and values as db_bench makes them: keys are the big-endian key number padded to
//! `key_size`; values are slices of a buffer of half-compressible pieces (a random string of
//! `len * compression_ratio` bytes repeated to `len`), so zstd sees the same redundancy.

use kho::util::SplitMix64;

/// The generator for `seed`: [`SplitMix64`], enough for choosing keys. (Seeded with
/// `seed ^ 0x9E37_79B9_7F4A_7C15` so a run's keys stay what they were.)
pub fn new_rng(seed: u64) -> SplitMix64 {
    SplitMix64::new(seed ^ 0x9E37_79B9_7F4A_7C15)
}

/// Writes key number `k` into `buf` (big-endian, zero-padded to `buf.len()`).
pub fn key_into(buf: &mut [u8], k: u64) {
    buf.fill(b'0');
    let n = buf.len().min(8);
    buf[..n].copy_from_slice(&k.to_be_bytes()[8 - n..]);
}

/// Hands out value slices from a 1 MiB buffer of compressible pieces.
pub struct ValueGen {
    data: Vec<u8>,
    pos: usize,
}

impl ValueGen {
    pub fn new(seed: u64, compression_ratio: f64) -> Self {
        let mut rng = new_rng(seed);
        let mut data = Vec::with_capacity(1 << 20);
        while data.len() < 1 << 20 {
            let raw = ((100.0 * compression_ratio) as usize).clamp(1, 100);
            let piece: Vec<u8> = (0..raw).map(|_| b' ' + (rng.below(95) as u8)).collect();
            for i in 0..100 {
                data.push(piece[i % raw]);
            }
        }
        ValueGen { data, pos: 0 }
    }

    pub fn next(&mut self, len: usize) -> &[u8] {
        if self.pos + len > self.data.len() {
            self.pos = 0;
        }
        let s = &self.data[self.pos..self.pos + len.min(self.data.len())];
        self.pos += len;
        s
    }
}
