//! [`SstWriter`]: streams sorted entries into a new table file; [`SstOptions`] configures it.
//!
//! The writer appends each data block as soon as it reaches `block_size`, then on
//! [`SstWriter::finish`] appends the filter, properties and index blocks and the footer, and
//! syncs the file. Making the file's directory entry durable (`FileSystem::sync_dir`) is the
//! caller's job, as is removing the file if anything fails.
//!
//! Invariants: keys reach the file in strictly increasing [`compare_internal`] order (checked
//! on every `add`, always on); every block's raw size stays within `MAX_BLOCK_RAW_LEN`; the
//! per-entry path reuses the writer's buffers and allocates nothing once they have grown.
//! After any error the writer's output is garbage: drop it and delete the file.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::crypt::FileCipher;
use crate::key::{compare_internal, user_key, ParsedKey, ValueKind};
use crate::sst::block_builder::BlockBuilder;
use crate::sst::bloom::BloomBuilder;
use crate::sst::footer::{BlockHandle, Footer, TableKey};
use crate::sst::format::{
    Transform, DEFAULT_BLOCK_SIZE, DEFAULT_BLOOM_BITS_PER_KEY, DEFAULT_COMPRESSION_LEVEL,
    DEFAULT_MIN_COMPRESSION_SAVING, DEFAULT_RESTART_INTERVAL, INDEX_RESTART_INTERVAL, MAX_BLOCK_RAW_LEN, MAX_ENTRY_LEN,
};
use crate::sst::properties::TableProperties;
use crate::sst::transform::{block_trailer, seal_block, BlockCompressor};
use crate::sst::BlockKind;
use crate::vfs::WritableFile;
use crate::{Error, Result};

/// How tables are written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SstOptions {
    /// Target raw size of a data block in bytes; a block is cut once it reaches this size.
    pub block_size: usize,
    /// Entries between restart points in data blocks (smaller: faster seeks, larger blocks).
    pub restart_interval: usize,
    /// Bloom filter bits per distinct user key; 10 gives about 1% false positives.
    /// 0 writes no filter.
    pub bloom_bits_per_key: u32,
    /// zstd level for data, properties and index blocks; 0 stores them raw. Clamped to the
    /// range zstd supports (negative levels are zstd's fast modes).
    pub compression_level: i32,
    /// A block is stored compressed only if that saves at least this fraction of its size.
    pub min_compression_saving: f64,
}

impl Default for SstOptions {
    fn default() -> Self {
        SstOptions {
            block_size: DEFAULT_BLOCK_SIZE,
            restart_interval: DEFAULT_RESTART_INTERVAL,
            bloom_bits_per_key: DEFAULT_BLOOM_BITS_PER_KEY,
            compression_level: DEFAULT_COMPRESSION_LEVEL,
            min_compression_saving: DEFAULT_MIN_COMPRESSION_SAVING,
        }
    }
}

/// Writes one table. See the module docs.
pub struct SstWriter {
    file: Box<dyn WritableFile>,
    path: PathBuf,
    block_size: usize,
    data_block: BlockBuilder,
    index_block: BlockBuilder,
    bloom: Option<BloomBuilder>,
    compressor: BlockCompressor,
    /// Bytes written so far = offset of the next block.
    offset: u64,
    /// The last key added (across blocks).
    last_key: Vec<u8>,
    handle_buf: Vec<u8>,
    props: TableProperties,
    /// `Some` for an encrypted table.
    sealer: Option<TableSealer>,
}

/// Seals the blocks of an encrypted table.
struct TableSealer {
    cipher: FileCipher,
    key: TableKey,
    sealed: Vec<u8>,
}

impl std::fmt::Debug for SstWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SstWriter").field("path", &self.path).field("offset", &self.offset).finish_non_exhaustive()
    }
}

/// Writes `payload | trailer` at `*offset` (sealed first if the table is encrypted) and
/// advances it; returns the block's handle.
fn write_block(
    file: &mut dyn WritableFile,
    offset: &mut u64,
    sealer: Option<&mut TableSealer>,
    kind: BlockKind,
    payload: &[u8],
    t: Transform,
) -> Result<BlockHandle> {
    let (payload, t) = match sealer {
        Some(s) => {
            seal_block(&s.cipher, *offset, kind, payload, &mut s.sealed)?;
            (&s.sealed[..], t.sealed())
        }
        None => (payload, t),
    };
    file.append(payload)?;
    let trailer = block_trailer(payload, t);
    file.append(&trailer)?;
    let handle = BlockHandle { offset: *offset, size: payload.len() as u64 };
    *offset += (payload.len() + trailer.len()) as u64;
    Ok(handle)
}

impl SstWriter {
    /// Starts a table in `file` (empty, freshly created), which lives at `path` (used in
    /// error messages).
    pub fn new(file: Box<dyn WritableFile>, path: PathBuf, opts: &SstOptions) -> Self {
        let level = if opts.compression_level == 0 {
            0
        } else {
            let range = zstd::compression_level_range();
            opts.compression_level.clamp(*range.start(), *range.end())
        };
        let min_saving = if opts.min_compression_saving.is_nan() { 0.0 } else { opts.min_compression_saving };
        let props = TableProperties {
            compression_level: level,
            bloom_bits_per_key: opts.bloom_bits_per_key,
            min_seq: u64::MAX,
            ..TableProperties::default()
        };
        SstWriter {
            file,
            path,
            block_size: opts.block_size.clamp(1, MAX_BLOCK_RAW_LEN / 2),
            data_block: BlockBuilder::new(opts.restart_interval),
            index_block: BlockBuilder::new(INDEX_RESTART_INTERVAL),
            bloom: (opts.bloom_bits_per_key > 0).then(|| BloomBuilder::new(opts.bloom_bits_per_key)),
            compressor: BlockCompressor::new(level, min_saving),
            offset: 0,
            last_key: Vec::new(),
            handle_buf: Vec::with_capacity(20),
            props,
            sealer: None,
        }
    }

    /// Makes this an encrypted table: every block sealed with `cipher` (the subkey of data
    /// key `key_id` and `salt`), and a version-3 footer naming them. Call before any `add`.
    pub(crate) fn with_encryption(mut self, key_id: u32, salt: [u8; 16], cipher: FileCipher) -> Self {
        self.sealer = Some(TableSealer { cipher, key: TableKey { key_id, salt }, sealed: Vec::new() });
        self
    }

    /// Appends an entry. `ikey` is an encoded internal key sorting strictly after the
    /// previous one; `ikey.len() + value.len()` must not exceed 64 MiB minus 64 bytes.
    /// Violations are [`Error::InvalidArgument`] and leave the writer unchanged.
    pub fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        let Some(parsed) = ParsedKey::parse(ikey) else {
            return Err(Error::InvalidArgument(format!("{}-byte SST key is not an internal key", ikey.len())));
        };
        if self.props.entries > 0 && compare_internal(&self.last_key, ikey).is_ge() {
            return Err(Error::InvalidArgument(format!(
                "SST keys out of order: {} after {}",
                crate::util::redact(ikey),
                crate::util::redact(&self.last_key)
            )));
        }
        if ikey.len().saturating_add(value.len()) > MAX_ENTRY_LEN {
            return Err(Error::InvalidArgument(format!(
                "SST entry of {} key and {} value bytes exceeds {MAX_ENTRY_LEN} bytes",
                ikey.len(),
                value.len()
            )));
        }
        // Keep every block under MAX_BLOCK_RAW_LEN, however large the entries.
        if !self.data_block.is_empty()
            && self.data_block.size_estimate() + BlockBuilder::entry_size_bound(ikey, value) > MAX_BLOCK_RAW_LEN
        {
            self.flush_data_block()?;
        }
        if let Some(bloom) = &mut self.bloom {
            if self.props.entries == 0 || user_key(&self.last_key) != parsed.user_key {
                bloom.add_key(parsed.user_key);
            }
        }
        self.data_block.add(ikey, value);
        if self.props.entries == 0 {
            self.props.smallest_key.extend_from_slice(ikey);
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(ikey);
        let p = &mut self.props;
        p.entries += 1;
        p.deletions += u64::from(parsed.kind == ValueKind::Delete);
        p.raw_key_bytes += ikey.len() as u64;
        p.raw_value_bytes += value.len() as u64;
        p.min_seq = p.min_seq.min(parsed.seq);
        p.max_seq = p.max_seq.max(parsed.seq);
        if self.data_block.size_estimate() >= self.block_target() {
            self.flush_data_block()?;
        }
        Ok(())
    }

    /// The size at which the current data block is cut: the configured block size, or
    /// `limits::LARGE_BLOCK_LEN` once the index passed `limits::INDEX_CUT_LEN` (the caller
    /// could not cut the table, e.g. inside one user key's versions), so that the index
    /// stays within its block limit however much more data follows.
    fn block_target(&self) -> usize {
        if self.index_block.size_estimate() >= crate::limits::INDEX_CUT_LEN {
            self.block_size.max(crate::limits::LARGE_BLOCK_LEN)
        } else {
            self.block_size
        }
    }

    /// Bytes of the index so far (its raw, uncompressed size).
    pub fn index_size_estimate(&self) -> usize {
        self.index_block.size_estimate()
    }

    /// Cuts the current data block and adds its index entry (key = the block's last key).
    fn flush_data_block(&mut self) -> Result<()> {
        if self.data_block.is_empty() {
            return Ok(());
        }
        let raw = self.data_block.finish();
        let raw_len = raw.len() as u64;
        let (payload, t) = self.compressor.compress(raw, &self.path)?;
        let handle = write_block(&mut *self.file, &mut self.offset, self.sealer.as_mut(), BlockKind::Data, payload, t)?;
        self.handle_buf.clear();
        handle.encode_varint(&mut self.handle_buf);
        self.index_block.add(self.data_block.last_key(), &self.handle_buf);
        self.data_block.reset();
        self.props.data_blocks += 1;
        self.props.raw_data_bytes += raw_len;
        self.props.stored_data_bytes += handle.end().map_or(0, |e| e - handle.offset);
        Ok(())
    }

    /// An estimate of the finished file's size, for cutting output tables.
    pub fn estimated_size(&self) -> u64 {
        let bloom = self.bloom.as_ref().map_or(0, BloomBuilder::size_estimate);
        self.offset + (self.data_block.size_estimate() + self.index_block.size_estimate() + bloom) as u64
    }

    /// Entries added so far.
    pub fn entries(&self) -> u64 {
        self.props.entries
    }

    /// Writes the remaining data, the filter, properties and index blocks and the footer,
    /// syncs the file and returns the table's properties.
    pub fn finish(mut self) -> Result<TableProperties> {
        self.flush_data_block()?;
        let file = &mut *self.file;
        let filter = match &self.bloom {
            Some(b) => write_block(
                file,
                &mut self.offset,
                self.sealer.as_mut(),
                BlockKind::Filter,
                &b.finish(),
                Transform::Raw,
            )?,
            None => BlockHandle::NONE,
        };
        if self.props.entries == 0 {
            self.props.min_seq = 0;
        }
        self.props.largest_key = std::mem::take(&mut self.last_key);
        self.props.creation_time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let encoded = self.props.encode();
        let (payload, t) = self.compressor.compress(&encoded, &self.path)?;
        let properties = write_block(file, &mut self.offset, self.sealer.as_mut(), BlockKind::Properties, payload, t)?;
        let raw_index = self.index_block.finish();
        if raw_index.len() > MAX_BLOCK_RAW_LEN {
            return Err(Error::InvalidArgument(format!(
                "SST index of {} bytes exceeds {MAX_BLOCK_RAW_LEN}; cut smaller tables or use smaller keys",
                raw_index.len()
            )));
        }
        let (payload, t) = self.compressor.compress(raw_index, &self.path)?;
        let index = write_block(file, &mut self.offset, self.sealer.as_mut(), BlockKind::Index, payload, t)?;
        let encryption = self.sealer.as_ref().map(|s| s.key);
        let footer = Footer { filter, properties, index, encryption }.encode();
        file.append(&footer)?;
        self.offset += footer.len() as u64;
        file.sync()?;
        self.props.file_size = self.offset;
        Ok(self.props)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::internal_key;
    use crate::sst::format::FOOTER_LEN;
    use crate::sst::test_util::{entries, open_table, write_table};
    use crate::sst::BlockKind;
    use crate::vfs::{FileSystem, StdFs};

    #[test]
    fn rejects_out_of_order_duplicate_and_malformed_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sst");
        let mut w = SstWriter::new(StdFs.create(&path).unwrap(), path.clone(), &SstOptions::default());
        w.add(&internal_key(b"b", 5, ValueKind::Put), b"v").unwrap();
        for bad in [
            internal_key(b"b", 5, ValueKind::Put), // duplicate
            internal_key(b"b", 6, ValueKind::Put), // newer version after older
            internal_key(b"a", 9, ValueKind::Put), // smaller user key
        ] {
            assert!(matches!(w.add(&bad, b"x"), Err(Error::InvalidArgument(_))));
        }
        assert!(matches!(w.add(b"short", b"x"), Err(Error::InvalidArgument(_))));
        let mut bad_kind = internal_key(b"c", 1, ValueKind::Put);
        bad_kind[1] = 9;
        assert!(matches!(w.add(&bad_kind, b"x"), Err(Error::InvalidArgument(_))));
        // The writer is unchanged by rejected adds.
        w.add(&internal_key(b"b", 4, ValueKind::Delete), b"").unwrap();
        let props = w.finish().unwrap();
        assert_eq!((props.entries, props.deletions, props.min_seq, props.max_seq), (2, 1, 4, 5));
    }

    #[test]
    fn properties_describe_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let items = entries(300, 3, 40);
        let opts = SstOptions { block_size: 512, ..SstOptions::default() };
        let (path, props) = write_table(dir.path(), "t.sst", &items, &opts);
        assert_eq!(props.entries, 900);
        assert_eq!(props.deletions, items.iter().filter(|(k, _)| k[k.len() - 8] == 0).count() as u64);
        assert_eq!(props.smallest_key, items[0].0);
        assert_eq!(props.largest_key, items[899].0);
        assert_eq!(props.raw_key_bytes, items.iter().map(|(k, _)| k.len() as u64).sum::<u64>());
        assert_eq!(props.raw_value_bytes, items.iter().map(|(_, v)| v.len() as u64).sum::<u64>());
        assert_eq!((props.compression_level, props.bloom_bits_per_key), (3, 10));
        assert!(props.data_blocks > 20);
        assert!(props.stored_data_bytes < props.raw_data_bytes, "{props:?}");
        assert!(props.creation_time > 1_600_000_000);
        assert_eq!(props.file_size, std::fs::metadata(&path).unwrap().len());
        let r = open_table(&path, None);
        assert_eq!(r.properties(), &props);
    }

    #[test]
    fn estimated_size_tracks_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sst");
        let opts = SstOptions { compression_level: 0, ..SstOptions::default() };
        let mut w = SstWriter::new(StdFs.create(&path).unwrap(), path.clone(), &opts);
        assert!(w.estimated_size() < 100);
        for (k, v) in entries(2000, 1, 50) {
            w.add(&k, &v).unwrap();
        }
        let est = w.estimated_size();
        let props = w.finish().unwrap();
        let real = props.file_size as f64;
        assert!((est as f64 - real).abs() / real < 0.05, "estimate {est}, real {real}");
    }

    #[test]
    fn compression_on_off_and_raw_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let items = entries(500, 1, 100);
        let transforms = |opts: SstOptions, name: &str| {
            let (path, _) = write_table(dir.path(), name, &items, &opts);
            let r = open_table(&path, None);
            r.verify().unwrap();
            let layout = r.layout().unwrap();
            let data: Vec<Transform> =
                layout.iter().filter(|b| b.kind == BlockKind::Data).map(|b| b.transform).collect();
            (data, layout)
        };
        let (on, layout) = transforms(SstOptions::default(), "on.sst");
        assert!(on.iter().all(|t| *t == Transform::Zstd));
        assert!(layout.iter().any(|b| b.kind == BlockKind::Filter && b.transform == Transform::Raw));
        for b in &layout {
            if b.transform == Transform::Zstd {
                assert!(b.raw_size > b.stored_size);
            }
        }
        let (off, _) = transforms(SstOptions { compression_level: 0, ..SstOptions::default() }, "off.sst");
        assert!(off.iter().all(|t| *t == Transform::Raw));
        // Demanding a 99% saving forces the raw fallback.
        let (fallback, _) = transforms(SstOptions { min_compression_saving: 0.99, ..SstOptions::default() }, "fb.sst");
        assert!(fallback.iter().all(|t| *t == Transform::Raw));
        // Negative (fast) levels are accepted too.
        let (fast, _) = transforms(SstOptions { compression_level: -3, ..SstOptions::default() }, "fast.sst");
        assert_eq!(fast.len(), on.len());
    }

    #[test]
    fn empty_table_and_table_without_filter() {
        let dir = tempfile::tempdir().unwrap();
        let (path, props) = write_table(dir.path(), "empty.sst", &[], &SstOptions::default());
        assert_eq!((props.entries, props.data_blocks, props.min_seq), (0, 0, 0));
        let r = open_table(&path, None);
        assert_eq!(r.verify().unwrap().entries, 0);
        let mut it = r.iter();
        it.seek_to_first().unwrap();
        assert!(!it.valid());
        assert!(r.get(&internal_key(b"a", 1, ValueKind::Put)).unwrap().is_none());

        let opts = SstOptions { bloom_bits_per_key: 0, ..SstOptions::default() };
        let (path, props) = write_table(dir.path(), "nofilter.sst", &entries(10, 1, 10), &opts);
        assert_eq!(props.bloom_bits_per_key, 0);
        let r = open_table(&path, None);
        assert!(r.may_contain(b"anything"));
        assert!(r.layout().unwrap().iter().all(|b| b.kind != BlockKind::Filter));
        r.verify().unwrap();
        assert!(props.file_size > FOOTER_LEN as u64);
    }

    #[test]
    fn large_values_get_blocks_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![0xabu8; 100_000];
        let items: Vec<(Vec<u8>, bytes::Bytes)> = (0..5u64)
            .map(|i| (internal_key(format!("k{i}").as_bytes(), 1, ValueKind::Put), bytes::Bytes::from(big.clone())))
            .collect();
        let (path, props) = write_table(dir.path(), "big.sst", &items, &SstOptions::default());
        assert_eq!(props.data_blocks, 5);
        let r = open_table(&path, None);
        r.verify().unwrap();
        let (_, v) = r.get(&items[3].0).unwrap().unwrap();
        assert_eq!(v.len(), big.len());
    }
}
