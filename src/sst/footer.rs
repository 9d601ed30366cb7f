//! Block handles and the fixed-size table footer.
//!
//! A [`BlockHandle`] locates a block: `offset` of its first byte and `size` of its payload
//! (excluding the 5-byte trailer). In the index block handles are two varints; in the footer
//! they are two `u64` LE so the footer has a fixed size.
//!
//! Invariant of a decoded [`Footer`]: magic, checksum and version were checked, and every
//! handle lies inside the file, before the footer, in the order
//! `filter | properties | index | footer` with no gaps.

use std::path::Path;

use crate::sst::format::{BLOCK_TRAILER_LEN, FOOTER_LEN, FORMAT_VERSION, TABLE_MAGIC};
use crate::util::checksum::crc32;
use crate::util::coding::{put_varint, Reader};
use crate::{Error, Result};

/// The location of a block in a table file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct BlockHandle {
    /// Offset of the block's first payload byte.
    pub offset: u64,
    /// Payload bytes, excluding the trailer.
    pub size: u64,
}

impl BlockHandle {
    /// The handle of an absent block (only the filter may be absent).
    pub(crate) const NONE: BlockHandle = BlockHandle { offset: 0, size: 0 };

    /// Offset one past the block's trailer, `None` on overflow.
    pub(crate) fn end(&self) -> Option<u64> {
        self.offset.checked_add(self.size)?.checked_add(BLOCK_TRAILER_LEN as u64)
    }

    /// Appends the varint form used as an index-block value.
    pub(crate) fn encode_varint(&self, dst: &mut Vec<u8>) {
        put_varint(dst, self.offset);
        put_varint(dst, self.size);
    }

    /// Decodes the varint form; `None` unless `src` is exactly two varints.
    pub(crate) fn decode_varint(src: &[u8]) -> Option<BlockHandle> {
        let mut r = Reader::new(src);
        let h = BlockHandle { offset: r.varint()?, size: r.varint()? };
        r.is_empty().then_some(h)
    }
}

/// The decoded footer: where the metadata blocks are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    /// The filter block, or [`BlockHandle::NONE`] when the table has no filter.
    pub filter: BlockHandle,
    /// The properties block.
    pub properties: BlockHandle,
    /// The index block.
    pub index: BlockHandle,
}

impl Footer {
    /// Encodes the footer (exactly [`FOOTER_LEN`] bytes).
    pub(crate) fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut b = [0u8; FOOTER_LEN];
        let mut v = Vec::with_capacity(FOOTER_LEN);
        for h in [self.filter, self.properties, self.index] {
            v.extend_from_slice(&h.offset.to_le_bytes());
            v.extend_from_slice(&h.size.to_le_bytes());
        }
        v.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let crc = crc32(&v);
        v.extend_from_slice(&crc.to_le_bytes());
        v.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
        b.copy_from_slice(&v);
        b
    }

    /// Decodes and checks the footer of a `file_len`-byte file; `bytes` are its last
    /// [`FOOTER_LEN`] bytes.
    pub(crate) fn decode(path: &Path, file_len: u64, bytes: &[u8]) -> Result<Footer> {
        let at = file_len.saturating_sub(FOOTER_LEN as u64);
        let bad = |what: String| Error::corruption(path, at, what);
        if bytes.len() != FOOTER_LEN || file_len < FOOTER_LEN as u64 {
            return Err(bad(format!("file of {file_len} bytes is too short for a {FOOTER_LEN}-byte footer")));
        }
        let mut r = Reader::new(bytes);
        let mut handles = [BlockHandle::NONE; 3];
        for h in &mut handles {
            h.offset = r.u64().ok_or_else(|| bad("truncated footer".into()))?;
            h.size = r.u64().ok_or_else(|| bad("truncated footer".into()))?;
        }
        let version = r.u32().ok_or_else(|| bad("truncated footer".into()))?;
        let stored_crc = r.u32().ok_or_else(|| bad("truncated footer".into()))?;
        let magic = r.u64().ok_or_else(|| bad("truncated footer".into()))?;
        if magic != TABLE_MAGIC {
            return Err(bad(format!("bad table magic {magic:#018x}, expected {TABLE_MAGIC:#018x}")));
        }
        let covered = bytes.get(..FOOTER_LEN - 12).ok_or_else(|| bad("truncated footer".into()))?;
        let crc = crc32(covered);
        if crc != stored_crc {
            return Err(bad(format!("footer checksum {stored_crc:#010x}, computed {crc:#010x}")));
        }
        if version != FORMAT_VERSION {
            return Err(bad(format!("unknown format version {version}, this build reads {FORMAT_VERSION}")));
        }
        let [filter, properties, index] = handles;
        let footer = Footer { filter, properties, index };
        footer.check_layout(at).map_err(bad)?;
        Ok(footer)
    }

    /// Checks that the metadata blocks sit back to back right before the footer at
    /// `footer_at`; returns the offset where the data blocks end.
    fn check_layout(&self, footer_at: u64) -> std::result::Result<u64, String> {
        let end = |h: BlockHandle, name: &str| {
            h.end().ok_or_else(|| format!("{name} handle {}+{} overflows", h.offset, h.size))
        };
        if end(self.index, "index")? != footer_at {
            return Err(format!(
                "index block {}+{} does not end at the footer ({footer_at})",
                self.index.offset, self.index.size
            ));
        }
        if end(self.properties, "properties")? != self.index.offset {
            return Err(format!(
                "properties block {}+{} does not end where the index block starts ({})",
                self.properties.offset, self.properties.size, self.index.offset
            ));
        }
        if self.filter != BlockHandle::NONE && end(self.filter, "filter")? != self.properties.offset {
            return Err(format!(
                "filter block {}+{} does not end where the properties block starts ({})",
                self.filter.offset, self.filter.size, self.properties.offset
            ));
        }
        Ok(self.data_end())
    }

    /// Offset one past the last data block (where the filter, or else the properties, start).
    pub(crate) fn data_end(&self) -> u64 {
        if self.filter == BlockHandle::NONE {
            self.properties.offset
        } else {
            self.filter.offset
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Footer, u64) {
        let filter = BlockHandle { offset: 100, size: 20 };
        let properties = BlockHandle { offset: 125, size: 30 };
        let index = BlockHandle { offset: 160, size: 10 };
        (Footer { filter, properties, index }, 175 + FOOTER_LEN as u64)
    }

    #[test]
    fn roundtrip() {
        let (f, len) = sample();
        let b = f.encode();
        assert_eq!(Footer::decode(Path::new("t"), len, &b).unwrap(), f);
        assert_eq!(f.data_end(), 100);
        let nofilter = Footer { filter: BlockHandle::NONE, ..f };
        assert_eq!(nofilter.data_end(), 125);
    }

    #[test]
    fn rejects_bad_magic_version_crc_and_layout() {
        let (f, len) = sample();
        let good = f.encode();
        for i in 0..FOOTER_LEN {
            let mut b = good;
            b[i] ^= 0x01;
            let e = Footer::decode(Path::new("t"), len, &b).unwrap_err();
            assert!(e.is_corruption(), "byte {i}: {e}");
        }
        // A correctly checksummed footer whose handles leave a gap.
        let gap = Footer { index: BlockHandle { offset: 161, size: 9 }, ..f }.encode();
        assert!(Footer::decode(Path::new("t"), len, &gap).unwrap_err().is_corruption());
        assert!(Footer::decode(Path::new("t"), 10, &good[..10]).unwrap_err().is_corruption());
    }

    #[test]
    fn varint_handle_roundtrip() {
        let h = BlockHandle { offset: 1 << 40, size: 4093 };
        let mut v = Vec::new();
        h.encode_varint(&mut v);
        assert_eq!(BlockHandle::decode_varint(&v), Some(h));
        v.push(0);
        assert_eq!(BlockHandle::decode_varint(&v), None);
        assert_eq!(BlockHandle::decode_varint(&v[..1]), None);
    }
}
