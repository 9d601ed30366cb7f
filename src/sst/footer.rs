//! Block handles and the fixed-size table footer.
//!
//! A [`BlockHandle`] locates a block: `offset` of its first byte and `size` of its payload
//! (excluding the 5-byte trailer). In the index block handles are two varints; in the footer
//! they are two `u64` LE so the footer has a fixed size.
//!
//! Two footer versions: 2 (64 bytes, a plaintext table) and 3 (96 bytes, an encrypted table:
//! the handles are followed by `scheme | key_id | salt`). Both end in
//! `version: u32 | crc32: u32 | magic: u64`, so a reader finds the version 16 bytes from the
//! end before it knows the footer's length.
//!
//! Invariant of a decoded [`Footer`]: magic, checksum and version were checked, and every
//! handle lies inside the file, before the footer, in the order
//! `filter | properties | index | footer` with no gaps.

use std::path::Path;

use crate::crypt::SCHEME_AES256_GCM;
use crate::sst::format::{
    BLOCK_TRAILER_LEN, ENCRYPTED_FOOTER_LEN, ENCRYPTED_FORMAT_VERSION, FOOTER_LEN, FORMAT_VERSION, TABLE_MAGIC,
};
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

/// How an encrypted table's blocks are sealed (the footer's encryption section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TableKey {
    /// The data key's id in the key registry.
    pub key_id: u32,
    /// The table's random salt.
    pub salt: [u8; 16],
}

/// The decoded footer: where the metadata blocks are, and how the table is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    /// The filter block, or [`BlockHandle::NONE`] when the table has no filter.
    pub filter: BlockHandle,
    /// The properties block.
    pub properties: BlockHandle,
    /// The index block.
    pub index: BlockHandle,
    /// `Some` for an encrypted (version 3) table.
    pub encryption: Option<TableKey>,
}

impl Footer {
    /// The encoded length: [`FOOTER_LEN`] or, encrypted, [`ENCRYPTED_FOOTER_LEN`].
    pub(crate) fn len(&self) -> usize {
        if self.encryption.is_some() {
            ENCRYPTED_FOOTER_LEN
        } else {
            FOOTER_LEN
        }
    }

    /// Encodes the footer (exactly [`Self::len`] bytes).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        for h in [self.filter, self.properties, self.index] {
            v.extend_from_slice(&h.offset.to_le_bytes());
            v.extend_from_slice(&h.size.to_le_bytes());
        }
        let version = match &self.encryption {
            None => FORMAT_VERSION,
            Some(k) => {
                v.push(SCHEME_AES256_GCM);
                v.extend_from_slice(&k.key_id.to_le_bytes());
                v.extend_from_slice(&k.salt);
                v.extend_from_slice(&[0u8; 11]);
                ENCRYPTED_FORMAT_VERSION
            }
        };
        v.extend_from_slice(&version.to_le_bytes());
        let crc = crc32(&v);
        v.extend_from_slice(&crc.to_le_bytes());
        v.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
        v
    }

    /// Decodes and checks the footer of a `file_len`-byte file; `tail` is its last
    /// `min(file_len, ENCRYPTED_FOOTER_LEN)` bytes (or at least the footer's).
    pub(crate) fn decode(path: &Path, file_len: u64, tail: &[u8]) -> Result<Footer> {
        let short = |len: usize| {
            Error::corruption(
                path,
                file_len.saturating_sub(len as u64),
                format!("file of {file_len} bytes is too short for a {len}-byte footer"),
            )
        };
        if tail.len() < FOOTER_LEN || file_len < tail.len() as u64 {
            return Err(short(FOOTER_LEN));
        }
        let end = tail.len();
        let le32 = |at: usize| tail.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
        let magic = tail.get(end - 8..).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
        let at_v2 = file_len - FOOTER_LEN as u64;
        if magic != Some(TABLE_MAGIC) {
            let m = magic.unwrap_or_default();
            return Err(Error::corruption(
                path,
                at_v2,
                format!("bad table magic {m:#018x}, expected {TABLE_MAGIC:#018x}"),
            ));
        }
        let version = le32(end - 16).unwrap_or_default();
        let len = match version {
            FORMAT_VERSION => FOOTER_LEN,
            ENCRYPTED_FORMAT_VERSION => ENCRYPTED_FOOTER_LEN,
            v => {
                return Err(Error::corruption(
                    path,
                    at_v2,
                    format!(
                        "unknown format version {v}, this build reads {FORMAT_VERSION} and {ENCRYPTED_FORMAT_VERSION}"
                    ),
                ))
            }
        };
        if end < len {
            return Err(short(len));
        }
        let bytes = &tail[end - len..];
        let at = file_len - len as u64;
        let bad = |what: String| Error::corruption(path, at, what);
        let stored_crc = le32(end - 12).unwrap_or_default();
        let crc = crc32(&bytes[..len - 12]);
        if crc != stored_crc {
            return Err(bad(format!("footer checksum {stored_crc:#010x}, computed {crc:#010x}")));
        }
        let mut r = Reader::new(bytes);
        let mut handles = [BlockHandle::NONE; 3];
        for h in &mut handles {
            h.offset = r.u64().ok_or_else(|| bad("truncated footer".into()))?;
            h.size = r.u64().ok_or_else(|| bad("truncated footer".into()))?;
        }
        let encryption = if version == ENCRYPTED_FORMAT_VERSION {
            let scheme = r.u8().ok_or_else(|| bad("truncated footer".into()))?;
            if scheme != SCHEME_AES256_GCM {
                return Err(bad(format!("unknown encryption scheme {scheme}")));
            }
            let key_id = r.u32().ok_or_else(|| bad("truncated footer".into()))?;
            let salt = r.bytes(16).and_then(|s| s.try_into().ok()).ok_or_else(|| bad("truncated footer".into()))?;
            Some(TableKey { key_id, salt })
        } else {
            None
        };
        let [filter, properties, index] = handles;
        let footer = Footer { filter, properties, index, encryption };
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
        (Footer { filter, properties, index, encryption: None }, 175 + FOOTER_LEN as u64)
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
    fn encrypted_footer_roundtrips_after_block_bytes() {
        let (f, len) = sample();
        let f = Footer { encryption: Some(TableKey { key_id: 9, salt: [7; 16] }), ..f };
        let b = f.encode();
        assert_eq!(b.len(), ENCRYPTED_FOOTER_LEN);
        let len = len - FOOTER_LEN as u64 + ENCRYPTED_FOOTER_LEN as u64;
        assert_eq!(Footer::decode(Path::new("t"), len, &b).unwrap(), f);
        for i in 0..b.len() {
            let mut bad = b.clone();
            bad[i] ^= 0x01;
            assert!(Footer::decode(Path::new("t"), len, &bad).unwrap_err().is_corruption(), "byte {i}");
        }
        // A plaintext footer read with block bytes before it.
        let (plain, plen) = sample();
        let mut tail = vec![0xaa; 32];
        tail.extend_from_slice(&plain.encode());
        assert_eq!(Footer::decode(Path::new("t"), plen, &tail).unwrap(), plain);
    }

    #[test]
    fn rejects_bad_magic_version_crc_and_layout() {
        let (f, len) = sample();
        let good = f.encode();
        for i in 0..FOOTER_LEN {
            let mut b = good.clone();
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
