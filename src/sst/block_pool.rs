//! [`BlockPool`]: the memory that cached data blocks live in, mapped from the operating system
//! and recycled by the block cache, never taken from the global allocator.
//!
//! Why: a point-read workload decompresses hundreds of thousands of 4 KiB blocks a minute,
//! each cached for a while and then evicted. Through glibc's malloc those blocks came from
//! the reading thread's arena while flushes and compactions allocated from theirs, and glibc
//! kept ~110 MiB of freed blocks in its arenas (docs/benchmarks.md, "Memory"). Blocks now
//! come from this pool: the cache charges what a block really occupies (its slot), freed
//! slots are reused for the next blocks, and memory goes back to the system when a whole
//! region empties or the pool is dropped.
//!
//! Layout: sizes are rounded up to a multiple of [`GRAIN`] (256 bytes), one *size class*
//! per multiple up to [`MAX_POOLED`]; a larger block is left to the heap. Each class carves
//! fixed-size slots out of *regions*, anonymous maps of about [`REGION_TARGET`] bytes. A
//! class keeps, for each region, a stack of free slot indices, and a list of the regions
//! that have a free slot. A region whose last slot is freed is unmapped at once unless it is
//! the only region of its class with room (kept, so a tiny cache does not map and unmap on
//! every miss). A freed slot's bytes are zeroed before reuse: evicted blocks may hold
//! personal data that an erasure (docs/privacy.md) expects to be gone from memory.
//!
//! Bound: the pool maps at most its `limit` bytes (the cache sets it to its capacity plus
//! slack, see [`BlockPool::for_cache_capacity`]); past that, [`BlockPool::alloc`] answers
//! `None` and the caller uses the heap. Slots outlive their cache entry while a cursor or a
//! value handed to the application still references the block, which is what the slack is
//! for.
//!
//! Invariants (per class, under its lock):
//! - A slot is either in its region's free stack or owned by exactly one live
//!   [`PooledBuf`] (and whatever `Bytes` share it), never both.
//! - A region is unmapped only when every one of its slots is free, so no live buffer points
//!   into unmapped memory; `partial` lists exactly the mapped regions with a free slot.

use std::alloc::{handle_alloc_error, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use memmap2::MmapMut;

/// Size classes are multiples of this many bytes.
pub(crate) const GRAIN: usize = 256;

/// Largest block kept in the pool; larger ones go to the heap (they are rare: a block is
/// `block_size` plus at most one entry, and only a value larger than the block makes it big).
pub(crate) const MAX_POOLED: usize = 64 << 10;

/// About how many bytes one region maps.
const REGION_TARGET: usize = 128 << 10;

/// Page size the regions are rounded to.
const PAGE: usize = 4096;

/// Mapped bytes the pool may exceed its cache's capacity by, at least: one region of each of
/// a few classes in use plus blocks held by cursors after their eviction.
const MIN_SLACK: usize = 1 << 20;

/// One anonymous map cut into `slots` slots of its class's size.
struct Region {
    map: MmapMut,
    /// Indices of the free slots.
    free: Vec<u32>,
    slots: u32,
}

/// The slots of one size.
struct Class {
    slot: usize,
    /// Regions by id; `None` is an unmapped region whose id is in `vacant`.
    regions: Vec<Option<Region>>,
    vacant: Vec<u32>,
    /// Ids of the mapped regions with at least one free slot.
    partial: Vec<u32>,
}

struct PoolInner {
    classes: Box<[Mutex<Class>]>,
    limit: usize,
    mapped: AtomicUsize,
}

/// A pool of block buffers; see the module docs. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub(crate) struct BlockPool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for BlockPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockPool").field("limit", &self.inner.limit).field("mapped", &self.mapped()).finish()
    }
}

/// A pool slot being filled; [`PooledBuf::freeze`] turns it into [`Bytes`] that return the
/// slot to the pool when the last clone drops.
pub(crate) struct PooledBuf {
    pool: Arc<PoolInner>,
    ptr: NonNull<u8>,
    len: usize,
    class: u16,
    region: u32,
    index: u32,
}

// SAFETY: a `PooledBuf` is the only owner of its slot's bytes (see the invariants), and the
// region they lie in stays mapped while the slot is not free, whichever thread holds the
// buffer; the pool it returns the slot to is shared through an `Arc` of `Sync` parts.
unsafe impl Send for PooledBuf {}

impl BlockPool {
    /// A pool mapping at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> BlockPool {
        let classes = (1..=MAX_POOLED / GRAIN)
            .map(|c| {
                Mutex::new(Class { slot: c * GRAIN, regions: Vec::new(), vacant: Vec::new(), partial: Vec::new() })
            })
            .collect();
        BlockPool { inner: Arc::new(PoolInner { classes, limit, mapped: AtomicUsize::new(0) }) }
    }

    /// The pool of a cache of `capacity` bytes: it may map `capacity + max(capacity / 8,
    /// 1 MiB)` bytes. The slack covers the partly used region of each class in use and the
    /// blocks cursors and returned values still hold after their eviction.
    pub(crate) fn for_cache_capacity(capacity: usize) -> BlockPool {
        BlockPool::new(capacity.saturating_add((capacity / 8).max(MIN_SLACK)))
    }

    /// The bytes a block of `len` bytes occupies in the pool (its slot size), or `None` if it
    /// is too large or empty to be pooled.
    pub(crate) fn slot_size(len: usize) -> Option<usize> {
        (len > 0 && len <= MAX_POOLED).then(|| len.div_ceil(GRAIN) * GRAIN)
    }

    /// Bytes currently mapped.
    pub(crate) fn mapped(&self) -> usize {
        self.inner.mapped.load(Ordering::Relaxed)
    }

    /// The most bytes the pool maps.
    #[cfg(test)]
    pub(crate) fn limit(&self) -> usize {
        self.inner.limit
    }

    /// A buffer of exactly `len` bytes (zeroed) from the pool, or `None` when `len` is not
    /// poolable or the pool is at its limit (the caller then uses the heap).
    pub(crate) fn alloc(&self, len: usize) -> Option<PooledBuf> {
        let slot = Self::slot_size(len)?;
        let class = slot / GRAIN - 1;
        let mut c = self.inner.lock(class)?;
        let region_id = match c.partial.last() {
            Some(&id) => id,
            None => self.inner.new_region(&mut c)?,
        };
        let slot_size = c.slot;
        let region = c.regions.get_mut(region_id as usize).and_then(Option::as_mut)?;
        let index = region.free.pop()?;
        let now_full = region.free.is_empty();
        let offset = index as usize * slot_size;
        // SAFETY: `index < slots` and `slots * slot_size <= map.len()` (see `new_region`), so
        // `offset` is inside the map.
        let ptr = unsafe { region.map.as_mut_ptr().add(offset) };
        if now_full {
            c.partial.pop();
        }
        drop(c);
        let ptr = NonNull::new(ptr)?;
        Some(PooledBuf { pool: Arc::clone(&self.inner), ptr, len, class: class as u16, region: region_id, index })
    }

    /// Unmaps every region with no slot in use (the ones kept as their class's spare).
    pub(crate) fn trim(&self) {
        for class in 0..self.inner.classes.len() {
            let Some(mut c) = self.inner.lock(class) else { continue };
            let empty: Vec<u32> = c
                .partial
                .iter()
                .copied()
                .filter(|&id| {
                    c.regions
                        .get(id as usize)
                        .and_then(Option::as_ref)
                        .is_some_and(|r| r.free.len() == r.slots as usize)
                })
                .collect();
            for id in empty {
                self.inner.unmap(&mut c, id);
            }
        }
    }
}

impl PoolInner {
    /// Locks class `class`; a poisoned lock (a panic while holding it, which the code under
    /// it cannot do) is taken over, since the class's lists are updated atomically.
    fn lock(&self, class: usize) -> Option<MutexGuard<'_, Class>> {
        self.classes.get(class).map(|m| m.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Maps a region for class `c` and lists it as partial; `None` at the pool's limit.
    fn new_region(&self, c: &mut MutexGuard<'_, Class>) -> Option<u32> {
        let bytes = (REGION_TARGET.max(c.slot)).div_ceil(PAGE) * PAGE;
        let slots = (bytes / c.slot) as u32;
        let prev = self.mapped.fetch_add(bytes, Ordering::Relaxed);
        if prev + bytes > self.limit {
            self.mapped.fetch_sub(bytes, Ordering::Relaxed);
            return None;
        }
        let map = match MmapMut::map_anon(bytes) {
            Ok(m) => m,
            // Out of memory: what the global allocator would do.
            Err(_) => handle_alloc_error(Layout::from_size_align(bytes, PAGE).unwrap_or(Layout::new::<u8>())),
        };
        let region = Region { map, free: (0..slots).rev().collect(), slots };
        let id = match c.vacant.pop() {
            Some(id) => {
                if let Some(r) = c.regions.get_mut(id as usize) {
                    *r = Some(region);
                }
                id
            }
            None => {
                c.regions.push(Some(region));
                (c.regions.len() - 1) as u32
            }
        };
        c.partial.push(id);
        Some(id)
    }

    /// Unmaps region `id` of `c` (all of whose slots are free).
    fn unmap(&self, c: &mut MutexGuard<'_, Class>, id: u32) {
        if let Some(slot) = c.regions.get_mut(id as usize) {
            if let Some(r) = slot.take() {
                self.mapped.fetch_sub(r.map.len(), Ordering::Relaxed);
                c.vacant.push(id);
            }
        }
        c.partial.retain(|&p| p != id);
    }

    /// Returns slot `index` of region `region` of class `class`, whose `len` first bytes
    /// were used and start at `ptr`.
    fn free(&self, class: usize, region: u32, index: u32, ptr: NonNull<u8>, len: usize) {
        // SAFETY: the caller owned the slot, `len` bytes of it from `ptr`, and is giving it
        // up: nothing else reads or writes these bytes until the slot is handed out again
        // under the class lock taken below (which orders this write before that use).
        unsafe { std::ptr::write_bytes(ptr.as_ptr(), 0, len) };
        let Some(mut c) = self.lock(class) else { return };
        let partial_len = c.partial.len();
        let Some(r) = c.regions.get_mut(region as usize).and_then(Option::as_mut) else { return };
        let was_full = r.free.is_empty();
        r.free.push(index);
        let empty = r.free.len() == r.slots as usize;
        if was_full {
            c.partial.push(region);
        }
        // An empty region goes back to the system unless it is the class's only room.
        let others_with_room = if was_full { partial_len } else { partial_len.saturating_sub(1) };
        if empty && others_with_room > 0 {
            self.unmap(&mut c, region);
        }
    }
}

impl PooledBuf {
    /// The buffer's bytes, to fill.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` points to `len` initialized bytes (anonymous maps are zero-filled and
        // freed slots are zeroed) that this buffer owns exclusively until it drops.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// The filled buffer as `Bytes`; the slot returns to the pool when the last clone (or
    /// slice) of them drops.
    pub(crate) fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for PooledBuf {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: as in `as_mut_slice`; once frozen, the bytes are only read.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        self.pool.free(usize::from(self.class), self.region, self.index, self.ptr, self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(pool: &BlockPool, len: usize, byte: u8) -> Bytes {
        let mut b = pool.alloc(len).expect("room in the pool");
        b.as_mut_slice().fill(byte);
        b.freeze()
    }

    #[test]
    fn slot_sizes_round_up_to_the_grain() {
        assert_eq!(BlockPool::slot_size(0), None);
        assert_eq!(BlockPool::slot_size(1), Some(GRAIN));
        assert_eq!(BlockPool::slot_size(4096), Some(4096));
        assert_eq!(BlockPool::slot_size(4097), Some(4096 + GRAIN));
        assert_eq!(BlockPool::slot_size(MAX_POOLED), Some(MAX_POOLED));
        assert_eq!(BlockPool::slot_size(MAX_POOLED + 1), None);
    }

    #[test]
    fn freed_slots_are_reused_and_zeroed() {
        let pool = BlockPool::new(1 << 20);
        let a = filled(&pool, 4100, 0xAB);
        assert_eq!(a.len(), 4100);
        assert!(a.iter().all(|&b| b == 0xAB));
        let addr = a.as_ptr() as usize;
        let mapped = pool.mapped();
        assert!(mapped >= REGION_TARGET);
        drop(a);
        // Same class: the freed slot comes back (LIFO), zeroed.
        let mut b = pool.alloc(4200).expect("room");
        assert_eq!(b.as_mut_slice().as_ptr() as usize, addr);
        assert!(b.as_mut_slice().iter().all(|&x| x == 0), "a recycled slot is zeroed");
        assert_eq!(pool.mapped(), mapped, "no new region for a recycled slot");
    }

    #[test]
    fn held_bytes_survive_other_frees_and_stay_correct() {
        let pool = BlockPool::new(4 << 20);
        let keep = filled(&pool, 5000, 7);
        let slice = keep.slice(100..200);
        drop(keep);
        // Churn the class: the slot `slice` holds must not be handed out again.
        for i in 0..1000 {
            let b = filled(&pool, 5000, (i % 200) as u8 + 10);
            assert!(b.iter().all(|&x| x == (i % 200) as u8 + 10));
        }
        assert!(slice.iter().all(|&x| x == 7));
        // Sent to another thread and dropped there.
        std::thread::spawn(move || drop(slice)).join().expect("thread");
    }

    #[test]
    fn the_limit_bounds_mapped_memory_and_empty_regions_are_unmapped() {
        let pool = BlockPool::new(3 * REGION_TARGET);
        let mut held = Vec::new();
        while let Some(mut b) = pool.alloc(4096) {
            b.as_mut_slice()[0] = 1;
            held.push(b.freeze());
        }
        assert!(pool.mapped() <= pool.limit(), "{pool:?}");
        assert_eq!(held.len(), 3 * REGION_TARGET / 4096);
        // Another class finds no room either: the limit is for the whole pool.
        assert!(pool.alloc(8000).is_none());
        drop(held);
        // Every region emptied; all but the class's last spare went back to the system.
        assert_eq!(pool.mapped(), REGION_TARGET);
        pool.trim();
        assert_eq!(pool.mapped(), 0);
        assert!(pool.alloc(70_000).is_none(), "larger than MAX_POOLED goes to the heap");
    }

    #[test]
    fn threads_allocate_and_free_concurrently() {
        let pool = BlockPool::new(8 << 20);
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let pool = pool.clone();
                s.spawn(move || {
                    let mut live = std::collections::VecDeque::new();
                    for i in 0..2000usize {
                        let len = 1000 + (i * 37 + usize::from(t)) % 6000;
                        let mut b = pool.alloc(len).expect("room");
                        b.as_mut_slice().fill(t);
                        live.push_back(b.freeze());
                        if live.len() > 50 {
                            let old = live.pop_front().expect("non-empty");
                            assert!(old.iter().all(|&x| x == t));
                        }
                    }
                });
            }
        });
        pool.trim();
        assert_eq!(pool.mapped(), 0, "every slot came back");
    }
}
