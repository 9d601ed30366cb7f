//! Whole-table checks and the block layout: [`SstReader::verify`] and [`SstReader::layout`],
//! used by `kho dump` / `kho verify` and by tests.
//!
//! `verify` reads every data block from the file, bypassing the cache, so it checks the
//! bytes on the medium rather than a cached copy; it stops at the first problem and reports it
//! as [`crate::Error::Corruption`] with the offset of the block at fault.

use std::cmp::Ordering;
use std::path::Path;
use std::sync::Arc;

use crate::key::{compare_internal, user_key, ParsedKey, ValueKind};
use crate::sst::block::BlockIter;
use crate::sst::footer::{BlockHandle, Footer};
use crate::sst::format::{Transform, BLOCK_TRAILER_LEN, ENCRYPTED_FORMAT_VERSION, FOOTER_LEN, FORMAT_VERSION};
use crate::sst::properties::TableProperties;
use crate::sst::reader::{read_footer, SstReader};
use crate::sst::transform::announced_raw_len;
use crate::vfs::RandomAccessFile;
use crate::{Error, Result};

/// Which part of a table a block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockKind {
    /// A data block.
    Data,
    /// The bloom filter block.
    Filter,
    /// The properties block.
    Properties,
    /// The index block.
    Index,
}

impl BlockKind {
    /// The byte that stands for the kind in a sealed block's nonce.
    pub(crate) fn code(self) -> u8 {
        match self {
            BlockKind::Data => 0,
            BlockKind::Filter => 1,
            BlockKind::Properties => 2,
            BlockKind::Index => 3,
        }
    }
}

/// Where a block is and how it is stored, for `kho dump`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockInfo {
    /// Which block this is.
    pub kind: BlockKind,
    /// File offset of the block's first byte.
    pub offset: u64,
    /// Bytes the block takes in the file: payload plus the 5-byte trailer.
    pub stored_size: u64,
    /// Size of the raw block (as announced by a zstd block's header; not decompressed).
    pub raw_size: u64,
    /// How the payload is stored.
    pub transform: Transform,
}

/// One entry of a table's index, for `kho dump sst`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexEntryInfo {
    /// The separator key (an encoded internal key `>=` every key of the block and `<` every
    /// key of the next block).
    pub key: Vec<u8>,
    /// File offset of the data block.
    pub offset: u64,
    /// Payload size of the data block (without its 5-byte trailer).
    pub size: u64,
}

/// The table's bloom filter, for `kho dump sst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FilterInfo {
    /// Bits in the bit array (`m`).
    pub bits: u64,
    /// Probes per key (`k`).
    pub probes: u8,
}

/// The decoded footer, for `kho dump sst`: where the metadata blocks are. Each handle is
/// `(offset, payload size)`; the trailer's 5 bytes follow the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FooterInfo {
    /// File offset of the footer (the file's last [`FooterInfo::LEN`] bytes).
    pub offset: u64,
    /// The filter block, `None` for a table without a filter.
    pub filter: Option<(u64, u64)>,
    /// The properties block.
    pub properties: (u64, u64),
    /// The index block.
    pub index: (u64, u64),
    /// The table format version: [`crate::sst::FORMAT_VERSION`] for a plaintext table,
    /// [`crate::sst::ENCRYPTED_FORMAT_VERSION`] for an encrypted one.
    pub format_version: u32,
    /// Bytes of this footer ([`FooterInfo::LEN`], or 96 for an encrypted table).
    pub len: u64,
    /// The data key id of an encrypted table (scheme AES-256-GCM); `None` for plaintext.
    pub key_id: Option<u32>,
}

impl FooterInfo {
    /// Size of a plaintext (version 2) footer in bytes.
    pub const LEN: u64 = FOOTER_LEN as u64;
}

/// What [`SstReader::verify`] checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Data blocks read and checked.
    pub data_blocks: u64,
    /// Entries read and checked.
    pub entries: u64,
    /// Raw bytes of all data blocks.
    pub raw_data_bytes: u64,
    /// Bytes of the whole file.
    pub file_size: u64,
}

impl SstReader {
    /// The decoded footer (checked when the table was opened).
    pub fn footer_info(&self) -> FooterInfo {
        footer_info(&self.footer, self.props.file_size)
    }

    /// Reads and checks only the footer of the table in `file` (at `path`, for messages).
    /// The footer is plaintext in every table, so this needs no key: `kho dump` shows how a
    /// table is encrypted (format version, data key id) even when it cannot open it.
    pub fn read_footer_info(file: &dyn RandomAccessFile, path: &Path) -> Result<FooterInfo> {
        Ok(footer_info(&read_footer(file, path)?, file.len()))
    }

    /// The index: one entry per data block, in order (checked when the table was opened).
    pub fn index_entries(&self) -> Vec<IndexEntryInfo> {
        self.index
            .iter()
            .map(|e| IndexEntryInfo { key: e.key.to_vec(), offset: e.handle.offset, size: e.handle.size })
            .collect()
    }

    /// The bloom filter's shape; `None` for a table without a filter.
    pub fn filter_info(&self) -> Option<FilterInfo> {
        self.filter.as_ref().map(|f| FilterInfo { bits: f.num_bits(), probes: f.num_probes() })
    }

    /// Lists every block in file order with its stored and raw size and transform. Reads
    /// only each block's header and trailer: checksums are [`SstReader::verify`]'s job.
    pub fn layout(&self) -> Result<Vec<BlockInfo>> {
        let mut out = Vec::with_capacity(self.index.len() + 3);
        let data = self.index.iter().map(|e| (BlockKind::Data, e.handle));
        let meta = [
            (BlockKind::Filter, self.footer.filter),
            (BlockKind::Properties, self.footer.properties),
            (BlockKind::Index, self.footer.index),
        ];
        for (kind, h) in data.chain(meta) {
            if kind == BlockKind::Filter && h == BlockHandle::NONE {
                continue;
            }
            let head = self.file.read_at(h.offset, usize::try_from(h.size.min(10)).unwrap_or(10))?;
            let t = self.file.read_at(h.offset + h.size, 1)?;
            let tb = t.first().copied().unwrap_or(u8::MAX);
            let bad = |what: String| Error::corruption(&*self.path, h.offset, what);
            let transform = Transform::from_u8(tb).ok_or_else(|| bad(format!("unknown block transform {tb}")))?;
            let raw_size =
                announced_raw_len(&head, h.size, transform).ok_or_else(|| bad("bad zstd raw length varint".into()))?;
            out.push(BlockInfo {
                kind,
                offset: h.offset,
                stored_size: h.size + BLOCK_TRAILER_LEN as u64,
                raw_size,
                transform,
            });
        }
        Ok(out)
    }

    /// Reads every data block from the file (bypassing the cache) and checks its checksum,
    /// transform and format; that keys are valid internal keys, strictly increasing within and
    /// across blocks and consistent with the index; that every user key passes the bloom
    /// filter; and that the counts, key range and sequence range match the properties.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut report = VerifyReport { file_size: self.props.file_size, ..VerifyReport::default() };
        let mut seen = TableProperties::default();
        let mut last: Vec<u8> = Vec::new();
        let mut min_seq = u64::MAX;
        for (i, entry) in self.index.iter().enumerate() {
            let at = entry.handle.offset;
            let bad = |what: String| Error::corruption(&*self.path, at, format!("data block {i}: {what}"));
            let block = Arc::new(self.read_data_block(entry.handle)?);
            report.raw_data_bytes += block.len() as u64;
            let mut it = BlockIter::new(block);
            it.seek_to_first()?;
            if !it.valid() {
                return Err(bad("empty data block".into()));
            }
            if let Some(prev) = i.checked_sub(1).and_then(|p| self.index.get(p)) {
                if compare_internal(it.key(), &prev.key) != Ordering::Greater {
                    return Err(bad("first key is not above the previous block's index key".into()));
                }
            }
            while it.valid() {
                let key = it.key();
                let p = ParsedKey::parse(key)
                    .ok_or_else(|| bad(format!("malformed internal key of {} bytes", key.len())))?;
                if seen.entries > 0 && compare_internal(&last, key) != Ordering::Less {
                    return Err(bad(format!("key {} is not above its predecessor", seen.entries)));
                }
                if (seen.entries == 0 || user_key(&last) != p.user_key) && !self.may_contain(p.user_key) {
                    return Err(bad("bloom filter does not contain a key of the table".into()));
                }
                if seen.entries == 0 {
                    seen.smallest_key = key.to_vec();
                }
                seen.entries += 1;
                seen.deletions += u64::from(p.kind == ValueKind::Delete);
                seen.raw_key_bytes += key.len() as u64;
                seen.raw_value_bytes += it.value_slice().len() as u64;
                min_seq = min_seq.min(p.seq);
                seen.max_seq = seen.max_seq.max(p.seq);
                last.clear();
                last.extend_from_slice(key);
                it.next()?;
            }
            if compare_internal(&last, &entry.key) == Ordering::Greater {
                return Err(bad("last key is above the block's index key".into()));
            }
            report.data_blocks += 1;
        }
        seen.largest_key = last;
        seen.min_seq = if seen.entries == 0 { 0 } else { min_seq };
        report.entries = seen.entries;
        let p = &self.props;
        let checks: [(&str, bool); 9] = [
            ("entries", seen.entries == p.entries),
            ("deletions", seen.deletions == p.deletions),
            ("raw key bytes", seen.raw_key_bytes == p.raw_key_bytes),
            ("raw value bytes", seen.raw_value_bytes == p.raw_value_bytes),
            ("raw data bytes", report.raw_data_bytes == p.raw_data_bytes),
            ("stored data bytes", self.footer.data_end() == p.stored_data_bytes),
            ("smallest key", seen.smallest_key == p.smallest_key),
            ("largest key", seen.largest_key == p.largest_key),
            ("sequence range", (seen.min_seq, seen.max_seq) == (p.min_seq, p.max_seq)),
        ];
        if let Some((what, _)) = checks.iter().find(|(_, ok)| !ok) {
            return Err(Error::corruption(
                &*self.path,
                self.footer.properties.offset,
                format!("properties disagree with the data: {what}"),
            ));
        }
        Ok(report)
    }
}

/// What `footer`, of a `file_size`-byte table, says.
fn footer_info(footer: &Footer, file_size: u64) -> FooterInfo {
    let h = |h: BlockHandle| (h.offset, h.size);
    FooterInfo {
        offset: file_size.saturating_sub(footer.len() as u64),
        filter: (footer.filter != BlockHandle::NONE).then(|| h(footer.filter)),
        properties: h(footer.properties),
        index: h(footer.index),
        format_version: if footer.encryption.is_some() { ENCRYPTED_FORMAT_VERSION } else { FORMAT_VERSION },
        len: footer.len() as u64,
        key_id: footer.encryption.map(|k| k.key_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sst::test_util::{entries, open_table, write_table};
    use crate::sst::SstOptions;

    #[test]
    fn layout_tiles_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (path, props) = write_table(
            dir.path(),
            "t.sst",
            &entries(100, 2, 20),
            &SstOptions { block_size: 300, ..SstOptions::default() },
        );
        let r = open_table(&path, None);
        let layout = r.layout().unwrap();
        let kinds: Vec<BlockKind> = layout.iter().map(|b| b.kind).skip(props.data_blocks as usize).collect();
        assert_eq!(kinds, [BlockKind::Filter, BlockKind::Properties, BlockKind::Index]);
        let mut at = 0;
        for b in &layout {
            assert_eq!(b.offset, at);
            at += b.stored_size;
        }
        assert_eq!(at + FOOTER_LEN as u64, props.file_size);
        let footer = r.footer_info();
        assert_eq!(footer.offset + FooterInfo::LEN, props.file_size);
        let file = crate::vfs::FileSystem::open(&crate::vfs::StdFs, &path).unwrap();
        assert_eq!(SstReader::read_footer_info(&*file, &path).unwrap(), footer, "read without opening");
        assert_eq!((footer.format_version, footer.key_id), (FORMAT_VERSION, None));
        assert_eq!(footer.index.0 + footer.index.1 + BLOCK_TRAILER_LEN as u64, footer.offset);
        let index = r.index_entries();
        assert_eq!(index.len() as u64, props.data_blocks);
        assert!(index.iter().zip(&layout).all(|(e, b)| e.offset == b.offset && e.size + 5 == b.stored_size));
        let filter = r.filter_info().unwrap();
        assert!(filter.bits >= 100 * 10 && filter.probes == 6, "{filter:?}");
        let report = r.verify().unwrap();
        assert_eq!(
            (report.entries, report.data_blocks, report.raw_data_bytes),
            (200, props.data_blocks, props.raw_data_bytes)
        );
    }
}
