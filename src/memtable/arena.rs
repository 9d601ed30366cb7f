//! [`Arena`]: the bump allocator that holds every memtable node.
//!
//! Memory comes in chunks mapped straight from the operating system (anonymous memory maps),
//! not from the global allocator: the first is one page (so the many tiny memtables of tests
//! and of recovery cost little) and each next one twice the size, up to [`MAX_CHUNK`]; an
//! allocation larger than a quarter of that gets a chunk of its own. Dropping a memtable
//! unmaps its chunks, so its memory goes back to the system at once, whatever allocator the
//! application runs. Through glibc's malloc, freed 1 MiB chunks stayed in the process heap,
//! fragmented by the small allocations made between them: 110 MiB of the 235 MiB peak of
//! `tools/bench/peers.sh` was memory glibc held free (docs/benchmarks.md, "Memory").
//!
//! Invariants:
//! - Every allocation is 8-byte aligned and lies inside exactly one chunk.
//! - Chunks never move and are freed only when the arena is dropped, so a pointer handed out
//!   stays valid (and its bytes stay where they are) for the arena's whole life. The skiplist
//!   relies on this to let readers follow node pointers without any lock.

use std::alloc::{handle_alloc_error, Layout};
use std::ptr::NonNull;

use memmap2::MmapMut;

/// Alignment of every allocation (and of every chunk).
pub(super) const ALIGN: usize = 8;

/// Size of the first chunk (one page).
const FIRST_CHUNK: usize = 4 << 10;

/// Size the chunks grow to.
const MAX_CHUNK: usize = 1 << 20;

/// A bump allocator; see the module docs.
pub(super) struct Arena {
    /// The mapped chunks; unmapped when the arena drops.
    chunks: Vec<MmapMut>,
    /// Next free byte of the current chunk (dangling while there is no chunk).
    cursor: NonNull<u8>,
    /// Bytes left in the current chunk after `cursor`.
    left: usize,
    next_chunk: usize,
    /// Bytes handed out (rounded up to [`ALIGN`]) plus the abandoned tails of full chunks.
    used: usize,
}

// SAFETY: the arena owns its chunks outright (no other handle unmaps or remaps them); the
// raw pointers are plain addresses of that owned memory, so moving the arena to another
// thread moves ownership with it. `Sync` holds because `&Arena` exposes only the read-only
// counter `used`; allocation needs `&mut Arena`.
unsafe impl Send for Arena {}
// SAFETY: see `Send` above.
unsafe impl Sync for Arena {}

impl Arena {
    pub(super) fn new() -> Arena {
        Arena { chunks: Vec::new(), cursor: NonNull::dangling(), left: 0, next_chunk: FIRST_CHUNK, used: 0 }
    }

    /// Returns `size` bytes (not initialized), 8-byte aligned, valid until the arena drops.
    pub(super) fn allocate(&mut self, size: usize) -> NonNull<u8> {
        let size = size.div_ceil(ALIGN) * ALIGN;
        if size > self.left {
            if size > MAX_CHUNK / 4 || size > self.next_chunk {
                // A large entry gets its own chunk, leaving the current one in use.
                self.used += size;
                return self.new_chunk(size);
            }
            // The rest of the current chunk is abandoned: count it as used.
            self.used += self.left;
            let chunk = self.next_chunk;
            self.next_chunk = (chunk * 2).min(MAX_CHUNK);
            self.cursor = self.new_chunk(chunk);
            self.left = chunk;
        }
        let p = self.cursor;
        // SAFETY: `size <= left`, so `cursor + size` is inside the current chunk or one past
        // its end; either is a valid pointer of the same allocation.
        self.cursor = unsafe { p.add(size) };
        self.left -= size;
        self.used += size;
        p
    }

    /// Bytes handed out so far, counting the unusable tails of earlier chunks.
    pub(super) fn used(&self) -> usize {
        self.used
    }

    /// Maps a chunk of at least `size` bytes (page-aligned, so [`ALIGN`]-aligned). Running
    /// out of memory here is what it is for the global allocator: the process aborts.
    fn new_chunk(&mut self, size: usize) -> NonNull<u8> {
        let mut chunk = match MmapMut::map_anon(size) {
            Ok(m) => m,
            Err(_) => handle_alloc_error(Layout::from_size_align(size, ALIGN).unwrap_or(Layout::new::<u8>())),
        };
        let Some(p) = NonNull::new(chunk.as_mut_ptr()) else {
            handle_alloc_error(Layout::new::<u8>());
        };
        // The mapping stays where it is when the `MmapMut` moves into the vector.
        self.chunks.push(chunk);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_aligned_disjoint_and_writable() {
        let mut a = Arena::new();
        let mut spans = Vec::new();
        // 10_000 right after the first chunk: larger than the next chunk would be.
        for size in [1, 10_000, 7, 8, 9, 100, 4096, 300_000, 3, MAX_CHUNK, 17, 200_000, 5] {
            let p = a.allocate(size);
            assert_eq!(p.as_ptr() as usize % ALIGN, 0);
            // SAFETY: `p` points to `size` bytes this test owns.
            unsafe { std::ptr::write_bytes(p.as_ptr(), 0xAB, size) };
            spans.push((p.as_ptr() as usize, size));
        }
        spans.sort();
        for w in spans.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "overlapping allocations {w:?}");
        }
        assert!(a.used() >= spans.iter().map(|s| s.1).sum::<usize>());
    }
}
