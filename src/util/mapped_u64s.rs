//! [`MappedU64s`]: a growable sequence of `u64`s kept in anonymous memory maps, outside the
//! global allocator.
//!
//! For large, short-lived buffers built by background work (a table writer's filter-key
//! hashes: 8 bytes a key, megabytes for one output table). Grown in a `Vec`, each of them is
//! a series of large reallocations; glibc's malloc serves those from its heap once an earlier
//! large block has raised its mapping threshold, and keeps the freed space afterwards — tens of
//! MiB of "held free" memory the application never gets back (docs/benchmarks.md, "Memory").
//! Chunks mapped from the system go back to it when the sequence drops.
//!
//! Invariants: every chunk is `CHUNK_BYTES` long; values `0..len` are stored in order, value
//! `i` at byte `(i % PER_CHUNK) * 8` of chunk `i / PER_CHUNK`; only the last chunk is partly
//! used. No `unsafe`: values are copied in and out as bytes.

use std::alloc::{handle_alloc_error, Layout};

use memmap2::{MmapMut, MmapOptions};

/// Bytes a chunk maps: 256 KiB, 32,768 values.
const CHUNK_BYTES: usize = 256 << 10;
const PER_CHUNK: usize = CHUNK_BYTES / 8;

/// A push-only sequence of `u64`s in anonymous maps.
#[derive(Default)]
pub(crate) struct MappedU64s {
    chunks: Vec<MmapMut>,
    len: usize,
}

impl std::fmt::Debug for MappedU64s {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedU64s").field("len", &self.len).field("chunks", &self.chunks.len()).finish()
    }
}

impl MappedU64s {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Number of values pushed.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends `v`. Failing to map a chunk is what failing to allocate is for the global
    /// allocator: the process aborts.
    pub(crate) fn push(&mut self, v: u64) {
        let at = (self.len % PER_CHUNK) * 8;
        if at == 0 {
            // Populated: the kernel commits the chunk's pages in one call instead of one
            // fault a page as they are written (the flush thread fills ~14 chunks a flush).
            match MmapOptions::new().len(CHUNK_BYTES).populate().map_anon() {
                Ok(m) => self.chunks.push(m),
                Err(_) => handle_alloc_error(Layout::new::<[u64; PER_CHUNK]>()),
            }
        }
        // Chunk `len / PER_CHUNK` exists (just mapped, or holding value `len - 1`) and `at + 8
        // <= CHUNK_BYTES`: indexing cannot fail, and if the invariant ever broke it would stop
        // here rather than silently lose a hash (a filter false negative).
        self.chunks[self.len / PER_CHUNK][at..at + 8].copy_from_slice(&v.to_le_bytes());
        self.len += 1;
    }

    /// The values in the order they were pushed.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let last = self.len % PER_CHUNK;
        let n = self.chunks.len();
        self.chunks.iter().enumerate().flat_map(move |(i, c)| {
            let used = if i + 1 == n && last != 0 { last * 8 } else { CHUNK_BYTES };
            c.get(..used).unwrap_or_default().chunks_exact(8).map(|b| {
                let mut v = [0u8; 8];
                v.copy_from_slice(b);
                u64::from_le_bytes(v)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_in_order_across_chunk_boundaries() {
        for n in [0, 1, PER_CHUNK - 1, PER_CHUNK, PER_CHUNK + 1, 3 * PER_CHUNK + 17] {
            let mut s = MappedU64s::new();
            for i in 0..n as u64 {
                s.push(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            }
            assert_eq!(s.len(), n);
            assert_eq!(s.chunks.len(), n.div_ceil(PER_CHUNK));
            let back: Vec<u64> = s.iter().collect();
            let want: Vec<u64> = (0..n as u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
            assert_eq!(back, want, "n = {n}");
        }
    }
}
