//! [`BlockCache`]: a sharded, byte-weighted cache of decoded data blocks shared by readers.
//!
//! Keys are `(cache_id, block offset)`: each open table gets a `cache_id` unique among the
//! tables sharing a cache (the database uses the file number), so two tables never collide.
//! Values are `Arc<Block>`; a cursor keeps its block alive after eviction. Only data blocks
//! are cached: index, filter and properties live in the reader for as long as it is open.
//!
//! The cache owns the memory of its blocks: a reader that is about to cache a block decodes
//! it into a buffer of the cache's [`BlockPool`] (anonymous maps, recycled as blocks are
//! evicted; see `block_pool.rs`), so block churn never goes through the global allocator,
//! and a block is charged the slot it occupies.
//!
//! Invariants: the total weight (each block's footprint plus a fixed per-entry overhead)
//! stays within the capacity given to [`BlockCache::new`], up to quick_cache's
//! approximation; the pool maps at most that capacity plus its slack
//! ([`BlockPool::for_cache_capacity`]); blocks that find no room in it live on the heap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::sst::block::Block;
use crate::sst::block_pool::BlockPool;

/// Bytes charged per cached block on top of its size (the `Block`, `Arc` and table entry).
const ENTRY_OVERHEAD: u64 = 128;

#[derive(Debug, Clone, Copy)]
struct BlockWeighter;

impl Weighter<(u64, u64), Arc<Block>> for BlockWeighter {
    fn weight(&self, _key: &(u64, u64), block: &Arc<Block>) -> u64 {
        block.footprint() as u64 + ENTRY_OVERHEAD
    }
}

/// A cache of decoded data blocks, shared by every reader given it. Cheap to share behind an
/// `Arc`; all methods take `&self`.
pub struct BlockCache {
    cache: Cache<(u64, u64), Arc<Block>, BlockWeighter>,
    pool: BlockPool,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("capacity", &self.capacity())
            .field("usage", &self.usage())
            .field("pool_bytes", &self.pool_bytes())
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish()
    }
}

impl BlockCache {
    /// A cache holding up to about `capacity_bytes` of blocks.
    pub fn new(capacity_bytes: usize) -> Self {
        // quick_cache sizes its tables for this many entries up front: bounded, so a huge
        // capacity costs table memory only as blocks arrive.
        let estimated_items = (capacity_bytes / 4096).clamp(16, 1 << 22);
        BlockCache {
            cache: Cache::with_weighter(estimated_items, capacity_bytes as u64, BlockWeighter),
            pool: BlockPool::for_cache_capacity(capacity_bytes),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Looks up block `offset` of table `cache_id`, counting a hit or a miss.
    pub(crate) fn get(&self, cache_id: u64, offset: u64) -> Option<Arc<Block>> {
        let r = self.cache.get(&(cache_id, offset));
        let counter = if r.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        r
    }

    /// Inserts a block (replacing any previous one under the same key).
    pub(crate) fn insert(&self, cache_id: u64, offset: u64, block: Arc<Block>) {
        self.cache.insert((cache_id, offset), block);
    }

    /// Drops block `offset` of table `cache_id`, if cached (a deleted table's blocks must not
    /// outlive it: they hold its data in memory).
    pub(crate) fn remove(&self, cache_id: u64, offset: u64) {
        self.cache.remove(&(cache_id, offset));
    }

    /// Drops every cached block and unmaps the pool's regions that no block still uses (a
    /// closed database's cache; cursors still open keep their blocks).
    pub(crate) fn release(&self) {
        self.cache.clear();
        self.pool.trim();
    }

    /// How many cached blocks contain `needle` (for tests that prove erased data is gone
    /// from memory too).
    #[cfg(any(test, feature = "testing"))]
    pub fn blocks_containing(&self, needle: &[u8]) -> usize {
        self.cache.iter().filter(|(_, b)| b.bytes().windows(needle.len().max(1)).any(|w| w == needle)).count()
    }

    /// The pool that cached blocks are decoded into.
    pub(crate) fn pool(&self) -> &BlockPool {
        &self.pool
    }

    /// Bytes the cache's block pool has mapped from the system: the cached blocks' slots,
    /// slots of evicted blocks still referenced by cursors or returned values, and free
    /// slots kept for reuse. At most the capacity plus `max(capacity / 8, 1 MiB)`.
    pub fn pool_bytes(&self) -> u64 {
        self.pool.mapped() as u64
    }

    /// Lookups that found their block.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Lookups that had to read their block from the file.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Bytes currently charged to cached blocks.
    pub fn usage(&self) -> u64 {
        self.cache.weight()
    }

    /// The capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.cache.capacity()
    }

    /// Blocks currently cached.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// True when no block is cached.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::path::Path;

    fn block(n: usize) -> Arc<Block> {
        let mut b = crate::sst::block_builder::BlockBuilder::new(16);
        let key = crate::key::internal_key(b"k", 1, crate::key::ValueKind::Put);
        b.add(&key, &vec![7u8; n]);
        Arc::new(Block::new(Bytes::copy_from_slice(b.finish()), Arc::from(Path::new("t")), 0).unwrap())
    }

    #[test]
    fn counts_hits_and_misses_and_respects_capacity() {
        let c = BlockCache::new(64 * 1024);
        assert!(c.get(1, 0).is_none());
        c.insert(1, 0, block(100));
        assert!(c.get(1, 0).is_some());
        assert!(c.get(2, 0).is_none(), "cache ids keep tables apart");
        assert_eq!((c.hits(), c.misses()), (1, 2));
        for off in 0..200u64 {
            c.insert(3, off, block(4000));
        }
        assert!(c.usage() <= c.capacity(), "{c:?}");
        assert!(c.len() < 200);
    }

    /// A block of about `n` value bytes decoded into `c`'s pool.
    fn pooled_block(c: &BlockCache, n: usize) -> Arc<Block> {
        let heap = block(n);
        let mut buf = c.pool().alloc(heap.len()).expect("room in the pool");
        buf.as_mut_slice().copy_from_slice(heap.bytes());
        let footprint = BlockPool::slot_size(heap.len()).expect("poolable");
        Arc::new(Block::new(buf.freeze(), Arc::from(Path::new("t")), 0).unwrap().with_footprint(footprint))
    }

    #[test]
    fn pooled_blocks_are_charged_their_slot_and_released() {
        let c = BlockCache::new(64 * 1024);
        for off in 0..100u64 {
            c.insert(3, off, pooled_block(&c, 3900));
        }
        assert!(c.usage() <= c.capacity(), "{c:?}");
        // Each block is charged its 4096-byte slot, not its ~3920 bytes.
        assert_eq!(c.usage(), c.len() as u64 * (4096 + ENTRY_OVERHEAD));
        assert!(c.pool_bytes() <= c.pool().limit() as u64);
        let held = c.get(3, 99).expect("the last block is cached");
        c.release();
        assert!(c.is_empty(), "{c:?}");
        assert!(c.pool_bytes() <= 128 << 10, "only the held block's region stays mapped: {c:?}");
        assert!(held.bytes().windows(4).any(|w| w == [7; 4]), "a block held outside survives");
        drop(held);
        c.release();
        assert_eq!(c.pool_bytes(), 0, "{c:?}");
    }
}
