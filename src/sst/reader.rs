//! [`SstReader`]: an open table — opening and checking it, point lookups, and data-block access
//! for cursors (`verify` and `layout` are in `verify.rs`).
//!
//! `open` reads and checks the footer, then the index, filter and properties blocks, which
//! stay in memory for the life of the reader; data blocks are read on demand through the
//! optional shared [`BlockCache`].
//!
//! Invariants after a successful `open`: the footer is valid; the index has one entry per
//! data block (as many as the properties say), its keys are strictly increasing, and its
//! handles tile `[0, data_end)` exactly, in order. So every data block read is in bounds, and
//! a damaged data block can only show up as a checksum, transform or block-format error when
//! that block is read.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::crypt::{CipherSource, FileCipher, FileRole, Keyring, SegmentHeader};
use crate::key::{compare_internal, user_key};
use crate::sst::block::{Block, BlockIter};
use crate::sst::bloom::BloomFilter;
use crate::sst::cache::BlockCache;
use crate::sst::footer::{BlockHandle, Footer};
use crate::sst::format::{BLOCK_TRAILER_LEN, ENCRYPTED_FOOTER_LEN, FOOTER_LEN};
use crate::sst::iter::{CacheFill, SstIter};
use crate::sst::properties::TableProperties;
use crate::sst::transform::{open_block, open_block_into};
use crate::sst::BlockKind;
use crate::util::hash::xxh64;
use crate::vfs::RandomAccessFile;
use crate::{Error, Result};

/// One index entry: a key `>=` every key of its data block and `<` every key of the next.
#[derive(Debug)]
pub(crate) struct IndexEntry {
    pub key: Box<[u8]>,
    pub handle: BlockHandle,
}

/// An open, immutable table. Share it as `Arc<SstReader>`; all methods take `&self`.
pub struct SstReader {
    pub(super) file: Arc<dyn RandomAccessFile>,
    pub(super) path: Arc<Path>,
    cache_id: u64,
    cache: Option<Arc<BlockCache>>,
    pub(super) footer: Footer,
    pub(super) index: Vec<IndexEntry>,
    /// The first eight user-key bytes of each index key (big-endian, zero-padded): the
    /// binary search compares these, contiguous in memory, and touches a full key only on a
    /// tie — one cache miss per probe instead of two.
    index_prefixes: Vec<u64>,
    pub(super) filter: Option<BloomFilter>,
    pub(super) props: TableProperties,
    /// The table's cipher if it is encrypted.
    pub(super) cipher: Option<FileCipher>,
}

impl std::fmt::Debug for SstReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SstReader")
            .field("path", &self.path)
            .field("cache_id", &self.cache_id)
            .field("data_blocks", &self.index.len())
            .finish_non_exhaustive()
    }
}

/// Reads and decodes the block of kind `kind` at `handle` (bounds already checked by the
/// caller), opening it with `cipher` in an encrypted table.
fn read_block(
    file: &dyn RandomAccessFile,
    path: &Path,
    handle: BlockHandle,
    kind: BlockKind,
    cipher: Option<&FileCipher>,
) -> Result<Bytes> {
    let stored = file.read_at(handle.offset, stored_len(path, handle)?)?;
    Ok(open_block(path, handle, stored, kind, cipher)?.0)
}

/// The stored length (payload and trailer) of the block at `handle`.
fn stored_len(path: &Path, handle: BlockHandle) -> Result<usize> {
    usize::try_from(handle.size)
        .ok()
        .and_then(|s| s.checked_add(BLOCK_TRAILER_LEN))
        .ok_or_else(|| Error::corruption(path, handle.offset, format!("block size {} too large", handle.size)))
}

/// Reads and checks the footer of the table in `file` (at `path`, for messages).
pub(super) fn read_footer(file: &dyn RandomAccessFile, path: &Path) -> Result<Footer> {
    let file_len = file.len();
    if file_len < FOOTER_LEN as u64 {
        // The footer would have to start before the file does: the whole file, from
        // offset 0, is what is wrong.
        return Err(Error::corruption(
            path,
            0,
            format!("file of {file_len} bytes is too short for a {FOOTER_LEN}-byte footer"),
        ));
    }
    let tail_len = file_len.min(ENCRYPTED_FOOTER_LEN as u64);
    let tail = file.read_at(file_len - tail_len, tail_len as usize)?;
    Footer::decode(path, file_len, &tail)
}

impl SstReader {
    /// Opens the plaintext table in `file` (at `path`, for messages). `cache_id` must be
    /// unique among the open tables sharing `cache` (the database passes the file number).
    /// An encrypted table is [`Error::KeyNeeded`]: see [`SstReader::open_with_keys`].
    pub fn open(
        file: Arc<dyn RandomAccessFile>,
        path: PathBuf,
        cache_id: u64,
        cache: Option<Arc<BlockCache>>,
    ) -> Result<SstReader> {
        Self::open_with_keys(file, path, cache_id, cache, None)
    }

    /// Opens the table in `file`, which may be encrypted under a data key of `keys`.
    /// `number` is the table's file number — part of an encrypted table's key, so a table
    /// renamed to another number does not open — and its id in `cache`. With `keys`, a
    /// plaintext table numbered where the database requires encryption is corruption.
    pub fn open_with_keys(
        file: Arc<dyn RandomAccessFile>,
        path: PathBuf,
        number: u64,
        cache: Option<Arc<BlockCache>>,
        keys: Option<&Arc<Keyring>>,
    ) -> Result<SstReader> {
        let cache_id = number;
        let path: Arc<Path> = Arc::from(path);
        let file_len = file.len();
        let footer = read_footer(&*file, &path)?;
        let footer_at = file_len - footer.len() as u64;
        let cipher = match (&footer.encryption, keys) {
            (None, Some(k)) if k.requires_encryption(number) => {
                return Err(Error::corruption(
                    &*path,
                    footer_at,
                    "plaintext table where the database requires every table to be encrypted",
                ))
            }
            (None, _) => None,
            (Some(_), None) => return Err(Error::KeyNeeded { path: path.to_path_buf() }),
            (Some(tk), Some(k)) => {
                let header = SegmentHeader::new(tk.key_id, tk.salt, String::new());
                Some(k.cipher_for(&header, FileRole::Table, number, &path)?)
            }
        };
        let cipher_ref = cipher.as_ref();

        let props_raw = read_block(&*file, &path, footer.properties, BlockKind::Properties, cipher_ref)?;
        let mut props = TableProperties::decode(&props_raw, &path, footer.properties.offset)?;
        props.file_size = file_len;

        let filter = if footer.filter == BlockHandle::NONE {
            None
        } else {
            let raw = read_block(&*file, &path, footer.filter, BlockKind::Filter, cipher_ref)?;
            Some(BloomFilter::decode(raw, &path, footer.filter.offset)?)
        };

        let index_raw = read_block(&*file, &path, footer.index, BlockKind::Index, cipher_ref)?;
        let index = Self::decode_index(index_raw, &path, &footer, props.data_blocks)?;
        if index.len() as u64 != props.data_blocks {
            return Err(Error::corruption(
                &*path,
                footer.index.offset,
                format!("index lists {} data blocks, properties say {}", index.len(), props.data_blocks),
            ));
        }
        let index_prefixes = index.iter().map(|e| key_prefix(&e.key)).collect();
        Ok(SstReader { file, path, cache_id, cache, footer, index, index_prefixes, filter, props, cipher })
    }

    /// Decodes the index block and checks that its keys increase and its handles tile the
    /// data area.
    /// `data_blocks` (the properties' count, checked against the result by the caller) sizes
    /// the vector once: grown by doubling it reallocated up to half a MiB per table open,
    /// churn the system allocator keeps. The hint is capped by what the block could hold
    /// (an entry takes at least 4 bytes), so damaged properties cannot make it allocate more.
    fn decode_index(raw: Bytes, path: &Arc<Path>, footer: &Footer, data_blocks: u64) -> Result<Vec<IndexEntry>> {
        let at = footer.index.offset;
        let capacity = data_blocks.min(raw.len() as u64 / 4) as usize;
        let block = Arc::new(Block::new(raw, Arc::clone(path), at)?);
        let mut it = BlockIter::new(block);
        let mut index: Vec<IndexEntry> = Vec::with_capacity(capacity);
        let mut expect_offset = 0u64;
        it.seek_to_first()?;
        while it.valid() {
            let bad = |what: String| Error::corruption(&**path, at, format!("index entry {}: {what}", index.len()));
            let handle = BlockHandle::decode_varint(it.value_slice()).ok_or_else(|| bad("bad block handle".into()))?;
            if handle.offset != expect_offset {
                return Err(bad(format!("data block at {} where {expect_offset} was expected", handle.offset)));
            }
            expect_offset = handle.end().filter(|&e| e <= footer.data_end()).ok_or_else(|| {
                bad(format!(
                    "data block {}+{} runs past the data area ({})",
                    handle.offset,
                    handle.size,
                    footer.data_end()
                ))
            })?;
            if index.last().is_some_and(|prev| compare_internal(&prev.key, it.key()) != Ordering::Less) {
                return Err(bad("index keys out of order".into()));
            }
            index.push(IndexEntry { key: it.key().into(), handle });
            it.next()?;
        }
        if expect_offset != footer.data_end() {
            return Err(Error::corruption(
                &**path,
                at,
                format!("data blocks end at {expect_offset}, the data area at {}", footer.data_end()),
            ));
        }
        Ok(index)
    }

    /// The table's properties (`file_size` included).
    pub fn properties(&self) -> &TableProperties {
        &self.props
    }

    /// The table's file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id of the data key an encrypted table is sealed under; `None` for a plaintext
    /// table.
    pub fn key_id(&self) -> Option<u32> {
        self.footer.encryption.map(|k| k.key_id)
    }

    /// False only if the table certainly holds no entry for `user_key` (bloom filter; always
    /// true for a table without a filter).
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.filter.as_ref().is_none_or(|f| f.may_contain(user_key))
    }

    /// The first entry `>= lookup` (an encoded internal key, usually
    /// `(user_key, snapshot_seq, Put)`) if its user key equals `lookup`'s, as
    /// `(internal key, value)`. Tombstones are returned like any entry: the caller reads the
    /// kind from the key's trailer. Consults the bloom filter first.
    pub fn get(&self, lookup: &[u8]) -> Result<Option<(Bytes, Bytes)>> {
        self.get_hashed(lookup, xxh64(user_key(lookup)))
    }

    /// [`SstReader::get`] with the lookup's user key already hashed by [`xxh64`], so a
    /// read probing several tables hashes once.
    pub(crate) fn get_hashed(&self, lookup: &[u8], hash: u64) -> Result<Option<(Bytes, Bytes)>> {
        let uk = user_key(lookup);
        if !self.filter.as_ref().is_none_or(|f| f.may_contain_hash(hash)) {
            return Ok(None);
        }
        let mut i = self.index_search(lookup);
        while i < self.index.len() {
            let mut it = BlockIter::new(self.data_block(i)?);
            it.seek(lookup)?;
            if it.valid() {
                if user_key(it.key()) != uk {
                    return Ok(None);
                }
                return Ok(Some((Bytes::copy_from_slice(it.key()), it.value())));
            }
            // Only possible if an index key is a separator above its block's last key.
            i += 1;
        }
        Ok(None)
    }

    /// A cursor over the whole table, initially not valid. Holds the reader alive.
    pub fn iter(self: &Arc<Self>) -> SstIter {
        SstIter::new(Arc::clone(self), CacheFill::Fill)
    }

    /// A cursor for one sequential pass (a compaction's input): it reads cached blocks but
    /// does not add the blocks it reads to the cache ([`SstReader::data_block_no_fill`]).
    pub(crate) fn scan_iter(self: &Arc<Self>) -> SstIter {
        SstIter::new(Arc::clone(self), CacheFill::Skip)
    }

    /// Number of data blocks.
    pub(crate) fn num_blocks(&self) -> usize {
        self.index.len()
    }

    /// Index of the first data block whose index key is `>= target` (`num_blocks()` if none).
    pub(crate) fn index_search(&self, target: &[u8]) -> usize {
        let t = key_prefix(target);
        let (mut lo, mut hi) = (0, self.index.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let less = match self.index_prefixes.get(mid).map(|p| p.cmp(&t)) {
                Some(Ordering::Less) => true,
                Some(Ordering::Greater) => false,
                _ => self.index.get(mid).is_some_and(|e| compare_internal(&e.key, target) == Ordering::Less),
            };
            if less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Data block `i` (`< num_blocks()`), from the cache when possible. A block read for the
    /// cache is decoded straight into a buffer of the cache's pool (see `block_pool.rs`) and
    /// charged its slot; like [`SstReader::read_data_block`]'s, it never shares the file's map.
    pub(crate) fn data_block(&self, i: usize) -> Result<Arc<Block>> {
        let handle = self.block_handle(i)?;
        if let Some(b) = self.cached_block(handle) {
            return Ok(b);
        }
        let Some(cache) = &self.cache else {
            return Ok(Arc::new(self.read_data_block(handle)?));
        };
        let stored = self.file.read_at(handle.offset, stored_len(&self.path, handle)?)?;
        let opened = open_block_into(&self.path, handle, stored, BlockKind::Data, self.cipher.as_ref(), cache.pool())?;
        let block =
            Arc::new(Block::new(opened.data, Arc::clone(&self.path), handle.offset)?.with_footprint(opened.footprint));
        cache.insert(self.cache_id, handle.offset, Arc::clone(&block));
        Ok(block)
    }

    /// Data block `i` (`< num_blocks()`) from the cache if it is there, else read from the
    /// file without adding it: a compaction's sequential pass reads each input block once, so
    /// caching it would only evict the blocks readers use (RocksDB reads compaction inputs
    /// with `fill_cache = false` for the same reason) and grow the cache's memory.
    pub(crate) fn data_block_no_fill(&self, i: usize) -> Result<Arc<Block>> {
        let handle = self.block_handle(i)?;
        match self.cached_block(handle) {
            Some(b) => Ok(b),
            None => Ok(Arc::new(self.read_data_block(handle)?)),
        }
    }

    fn block_handle(&self, i: usize) -> Result<BlockHandle> {
        let entry = self
            .index
            .get(i)
            .ok_or_else(|| Error::InvalidArgument(format!("data block {i} of {}", self.index.len())))?;
        Ok(entry.handle)
    }

    fn cached_block(&self, handle: BlockHandle) -> Option<Arc<Block>> {
        self.cache.as_ref()?.get(self.cache_id, handle.offset)
    }

    /// Reads and checks a data block, bypassing the cache.
    ///
    /// The block owns its bytes: a raw block is copied out of the file's memory map (a
    /// decompressed or opened one is already its own buffer), so no cached block, cursor or
    /// value handed to a caller keeps a deleted table's map — its data and its disk space —
    /// alive.
    pub(super) fn read_data_block(&self, handle: BlockHandle) -> Result<Block> {
        let raw = read_block(&*self.file, &self.path, handle, BlockKind::Data, self.cipher.as_ref())?;
        let raw = if raw.is_unique() { raw } else { Bytes::copy_from_slice(&raw) };
        Block::new(raw, Arc::clone(&self.path), handle.offset)
    }

    /// Drops this table's data blocks from the block cache (when the table is deleted).
    pub(crate) fn evict_cached_blocks(&self) {
        if let Some(cache) = &self.cache {
            for e in &self.index {
                cache.remove(self.cache_id, e.handle.offset);
            }
        }
    }
}

/// The first eight bytes of an internal key's user key, zero-padded, as a big-endian
/// number. Zero padding keeps the order: `prefix(a) < prefix(b)` implies `a < b`.
fn key_prefix(ikey: &[u8]) -> u64 {
    let uk = crate::key::user_key(ikey);
    let mut b = [0u8; 8];
    let n = uk.len().min(8);
    b[..n].copy_from_slice(&uk[..n]);
    u64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{internal_key, ValueKind};
    use crate::sst::test_util::{entries, open_table, write_table, MemFile};
    use crate::sst::SstOptions;

    fn lookup(uk: &[u8], snapshot: u64) -> Vec<u8> {
        internal_key(uk, snapshot, ValueKind::Put)
    }

    #[test]
    fn shared_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SstReader>();
        check::<BlockCache>();
        check::<SstIter>();
    }

    #[test]
    fn get_finds_the_newest_version_visible_at_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let k = |uk: &[u8], seq, kind| internal_key(uk, seq, kind);
        let items: Vec<(Vec<u8>, Bytes)> = vec![
            (k(b"apple", 3, ValueKind::Put), Bytes::from_static(b"a3")),
            (k(b"kiwi", 10, ValueKind::Put), Bytes::from_static(b"k10")),
            (k(b"kiwi", 7, ValueKind::Delete), Bytes::new()),
            (k(b"kiwi", 5, ValueKind::Put), Bytes::from_static(b"k5")),
            (k(b"pear", 2, ValueKind::Put), Bytes::from_static(b"p2")),
        ];
        for opts in [SstOptions::default(), SstOptions { block_size: 1, ..SstOptions::default() }] {
            let (path, _) = write_table(dir.path(), "t.sst", &items, &opts);
            let r = open_table(&path, None);
            let get = |uk: &[u8], snap| r.get(&lookup(uk, snap)).unwrap().map(|(k, v)| (k.to_vec(), v));
            assert_eq!(get(b"kiwi", 100), Some(items[1].clone()));
            assert_eq!(get(b"kiwi", 10), Some(items[1].clone()));
            assert_eq!(get(b"kiwi", 9), Some(items[2].clone()), "the tombstone is returned");
            assert_eq!(get(b"kiwi", 6), Some(items[3].clone()));
            assert_eq!(get(b"kiwi", 4), None, "older than every version");
            assert_eq!(get(b"apple", 3), Some(items[0].clone()));
            assert_eq!(get(b"apple", 2), None);
            assert_eq!(get(b"pear", 9), Some(items[4].clone()));
            for miss in [&b"a"[..], b"banana", b"kiwi2", b"zebra", b""] {
                assert_eq!(get(miss, 100), None);
            }
        }
    }

    #[test]
    fn get_over_many_blocks_and_the_bloom_filter() {
        let dir = tempfile::tempdir().unwrap();
        let items = entries(400, 3, 30);
        let (path, props) =
            write_table(dir.path(), "t.sst", &items, &SstOptions { block_size: 256, ..SstOptions::default() });
        assert!(props.data_blocks > 50);
        let r = open_table(&path, None);
        for (key, value) in &items {
            let (k, v) = r.get(key).unwrap().unwrap();
            assert_eq!((&k[..], &v), (&key[..], value));
            assert!(r.may_contain(user_key(key)));
        }
        let absent = (0..1000).filter(|i| r.may_contain(format!("nokey{i}").as_bytes())).count();
        assert!(absent < 50, "{absent} false positives out of 1000");
    }

    /// 200 entries in 512-byte blocks, opened with a 1 MiB cache.
    struct CachedTable {
        _dir: tempfile::TempDir,
        items: Vec<(Vec<u8>, Bytes)>,
        props: TableProperties,
        cache: Arc<BlockCache>,
        r: Arc<SstReader>,
    }

    fn cached_table() -> CachedTable {
        let dir = tempfile::tempdir().unwrap();
        let items = entries(200, 1, 30);
        let (path, props) =
            write_table(dir.path(), "t.sst", &items, &SstOptions { block_size: 512, ..SstOptions::default() });
        let cache = Arc::new(BlockCache::new(1 << 20));
        let r = open_table(&path, Some(Arc::clone(&cache)));
        CachedTable { _dir: dir, items, props, cache, r }
    }

    #[test]
    fn block_cache_counts_hits_and_misses() {
        let CachedTable { _dir, items, props, cache, r } = cached_table();
        let scan = || {
            let mut it = r.iter();
            it.seek_to_first().unwrap();
            let mut n = 0;
            while it.valid() {
                n += 1;
                it.next().unwrap();
            }
            n
        };
        assert_eq!(scan(), items.len());
        assert_eq!((cache.hits(), cache.misses()), (0, props.data_blocks));
        assert_eq!(cache.len() as u64, props.data_blocks);
        assert_eq!(scan(), items.len());
        assert_eq!((cache.hits(), cache.misses()), (props.data_blocks, props.data_blocks));
        r.get(&items[7].0).unwrap().unwrap();
        assert_eq!(cache.hits(), props.data_blocks + 1);
        // verify reads from the file, not the cache.
        r.verify().unwrap();
        assert_eq!(cache.hits() + cache.misses(), 2 * props.data_blocks + 1);
    }

    #[test]
    fn scan_cursor_reads_cached_blocks_but_does_not_fill_the_cache() {
        let CachedTable { _dir, items, props, cache, r } = cached_table();
        let scan = |mut it: SstIter| {
            it.seek_to_first().unwrap();
            let mut seen = Vec::new();
            while it.valid() {
                seen.push((it.key().to_vec(), it.value()));
                it.next().unwrap();
            }
            seen
        };
        let expected = items.clone();
        // Nothing cached: every block is read from the file, and none is kept.
        assert_eq!(scan(r.scan_iter()), expected);
        assert_eq!((cache.hits(), cache.misses(), cache.len()), (0, props.data_blocks, 0));
        assert_eq!(cache.usage(), 0);
        // One block cached by a point read: the scan uses it and still adds nothing.
        r.get(&items[7].0).unwrap().unwrap();
        assert_eq!(cache.len(), 1);
        let (hits, misses) = (cache.hits(), cache.misses());
        assert_eq!(scan(r.scan_iter()), expected);
        assert_eq!(cache.hits() - hits, 1);
        assert_eq!(cache.misses() - misses, props.data_blocks - 1);
        assert_eq!(cache.len(), 1);
        // Backwards too.
        let mut it = r.scan_iter();
        it.seek_to_last().unwrap();
        let mut n = 0;
        while it.valid() {
            n += 1;
            it.prev().unwrap();
        }
        assert_eq!(n, items.len());
        assert_eq!(cache.len(), 1);
    }

    /// Opens `bytes` as a table and exercises every read path; returns whether any of them
    /// reported corruption. Anything other than `Ok` or `Corruption` fails the test.
    #[test]
    fn pooled_blocks_held_by_cursors_and_values_survive_eviction() {
        // Compressed blocks are decompressed into the pool, raw ones copied into it.
        for compression_level in [3, 0] {
            pooled_blocks_survive_eviction(SstOptions { compression_level, ..SstOptions::default() });
        }
    }

    fn pooled_blocks_survive_eviction(opts: SstOptions) {
        let dir = tempfile::tempdir().unwrap();
        let items = entries(3000, 1, 100);
        let (path, props) = write_table(dir.path(), "t.sst", &items, &opts);
        assert!(props.data_blocks > 50, "{props:?}");
        // Room for two blocks: every read evicts.
        let cache = Arc::new(BlockCache::new(10 << 10));
        let r = open_table(&path, Some(Arc::clone(&cache)));
        let mut it = r.iter();
        it.seek_to_first().unwrap();
        let held_value = r.get(&items[1].0).unwrap().unwrap().1;
        assert!(cache.pool_bytes() > 0, "cached blocks are decoded into the pool: {cache:?}");
        // Churn the cache (and the pool's free slots) with every other block, twice.
        for _ in 0..2 {
            for (k, v) in items.iter().step_by(7) {
                assert_eq!(r.get(k).unwrap().unwrap().1, v);
            }
        }
        assert!(cache.len() <= 3, "{cache:?}");
        assert!(cache.pool_bytes() <= (10 << 10) + (1 << 20), "{cache:?}");
        // The cursor's block and the returned value were evicted long ago, still intact.
        assert_eq!(held_value, items[1].1);
        for (k, v) in &items {
            assert!(it.valid());
            assert_eq!((it.key(), &it.value()), (&k[..], v));
            it.next().unwrap();
        }
        assert!(!it.valid());
    }

    fn exercise(bytes: Bytes, keys: &[Vec<u8>]) -> bool {
        let check = |r: Result<()>| match r {
            Ok(()) => false,
            Err(e) if e.is_corruption() => true,
            Err(e) => panic!("expected corruption, got {e}"),
        };
        // Without a cache, and with a tiny one (blocks decoded into its pool and evicted).
        let mut bad = false;
        for cache in [None, Some(Arc::new(BlockCache::new(16 << 10)))] {
            bad |= exercise_with(bytes.clone(), keys, cache, &check);
        }
        bad
    }

    fn exercise_with(
        bytes: Bytes,
        keys: &[Vec<u8>],
        cache: Option<Arc<BlockCache>>,
        check: &dyn Fn(Result<()>) -> bool,
    ) -> bool {
        let r = match SstReader::open(Arc::new(MemFile(bytes)), PathBuf::from("bad.sst"), 1, cache) {
            Ok(r) => Arc::new(r),
            Err(e) => return check(Err(e)),
        };
        let mut bad = check(r.verify().map(drop));
        let mut it = r.iter();
        let mut r1 = it.seek_to_first();
        while r1.is_ok() && it.valid() {
            r1 = it.next();
        }
        bad |= check(r1);
        let mut r2 = it.seek_to_last();
        while r2.is_ok() && it.valid() {
            r2 = it.prev();
        }
        bad |= check(r2);
        for k in keys {
            bad |= check(r.get(k).map(drop));
            bad |= check(it.seek(k));
            bad |= check(it.seek_for_prev(k));
        }
        let _ = r.layout();
        bad
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let items = entries(12, 2, 24);
        let keys: Vec<Vec<u8>> = items.iter().map(|(k, _)| k.clone()).collect();
        for (name, opts) in [
            ("zstd.sst", SstOptions { block_size: 128, restart_interval: 2, ..SstOptions::default() }),
            ("raw.sst", SstOptions { block_size: 128, compression_level: 0, ..SstOptions::default() }),
        ] {
            let (path, _) = write_table(dir.path(), name, &items, &opts);
            let good = Bytes::from(std::fs::read(&path).unwrap());
            assert!(!exercise(good.clone(), &keys), "{name}: the intact table is fine");
            for i in 0..good.len() {
                for flip in [0x01u8, 0xff] {
                    let mut b = good.to_vec();
                    b[i] ^= flip;
                    assert!(exercise(Bytes::from(b), &keys), "{name}: flipping byte {i} with {flip:#x} went unnoticed");
                }
            }
            for len in 0..good.len() {
                let e = SstReader::open(Arc::new(MemFile(good.slice(..len))), PathBuf::from("t"), 1, None).unwrap_err();
                assert!(e.is_corruption(), "{name}: truncated to {len}: {e}");
            }
        }
    }

    #[test]
    fn corruption_names_the_file_and_block_offset() {
        let dir = tempfile::tempdir().unwrap();
        let items = entries(50, 1, 24);
        let (path, _) =
            write_table(dir.path(), "t.sst", &items, &SstOptions { block_size: 200, ..SstOptions::default() });
        let good = std::fs::read(&path).unwrap();
        let r = open_table(&path, None);
        let third = r.layout().unwrap()[2].offset;
        let mut b = good.clone();
        b[third as usize + 3] ^= 0x10;
        let bad = SstReader::open(Arc::new(MemFile(Bytes::from(b))), PathBuf::from("x/000007.sst"), 1, None).unwrap();
        match bad.verify().unwrap_err() {
            Error::Corruption { file, offset, what } => {
                assert_eq!((file, offset), (PathBuf::from("x/000007.sst"), Some(third)));
                assert!(what.contains("checksum"), "{what}");
            }
            e => panic!("{e}"),
        }
        // Blocks before the damaged one still read; the cursor stops with the error.
        let bad = Arc::new(bad);
        let mut it = bad.iter();
        it.seek_to_first().unwrap();
        let mut n = 0;
        let err = loop {
            match it.next() {
                Ok(()) if it.valid() => n += 1,
                Ok(()) => panic!("damage not reached"),
                Err(e) => break e,
            }
        };
        assert!(err.is_corruption() && !it.valid() && n > 0);
    }
}
