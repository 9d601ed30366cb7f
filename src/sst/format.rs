//! Every constant of the SSTable format, in one place.
//!
//! The format itself is specified in [`docs/sst-format.md`](../../../docs/sst-format.md); each
//! constant here names the section of that document it belongs to. Changing any value below
//! changes the on-disk format and requires a new [`FORMAT_VERSION`].

/// The last 8 bytes of every table (`footer.magic`), little-endian. On disk the bytes spell
/// `kho:sst` followed by a zero byte, which makes a table easy to recognise in a hex dump.
pub const TABLE_MAGIC: u64 = u64::from_le_bytes(*b"kho:sst\0");

/// The table format version written by this code and the only one it reads (`footer.version`).
/// It only moves forward. Version 2 (from version 1): the bloom filter is blocked (every
/// probe of a key in one 64-byte block).
pub const FORMAT_VERSION: u32 = 2;

/// The table format version of an encrypted table (`footer.version`): the footer grows an
/// encryption section and every block is sealed (see `docs/encryption.md`). Plaintext tables
/// stay at [`FORMAT_VERSION`], so a database without encryption keeps today's format.
pub const ENCRYPTED_FORMAT_VERSION: u32 = 3;

/// Fixed size of a version-2 footer: three block handles of two `u64` each, `version: u32`,
/// `footer_crc32: u32`, `magic: u64`.
pub(crate) const FOOTER_LEN: usize = 3 * 16 + 4 + 4 + 8;

/// Fixed size of a version-3 (encrypted) footer: the three handles, `scheme: u8`,
/// `key_id: u32`, `salt: 16 bytes`, 11 zero bytes, then `version`, `footer_crc32`, `magic`
/// as in version 2.
pub(crate) const ENCRYPTED_FOOTER_LEN: usize = 3 * 16 + 1 + 4 + 16 + 11 + 4 + 4 + 8;

/// Associated data of every sealed table block (its position and kind are in the nonce, its
/// file in the subkey).
pub(crate) const BLOCK_AAD: &[u8] = b"kho sst block v3";

/// Bytes following every block's payload: `transform: u8 | crc32: u32 LE`.
pub(crate) const BLOCK_TRAILER_LEN: usize = 5;

/// The largest raw (untransformed) block a reader accepts, 64 MiB. A zstd block announcing a
/// larger `raw_len` is refused as corrupt before anything is allocated, so a damaged length
/// cannot make a reader allocate gigabytes. Writers keep every block under this bound.
pub(crate) const MAX_BLOCK_RAW_LEN: usize = 64 << 20;

/// The largest `key.len() + value.len()` a writer accepts for one entry: a raw block holding
/// just that entry (plus at most 30 bytes of entry header and 8 bytes of restart array) still
/// fits in [`MAX_BLOCK_RAW_LEN`].
pub(crate) const MAX_ENTRY_LEN: usize = MAX_BLOCK_RAW_LEN - 64;

/// Bytes of one restart offset and of the restart count in a block (`u32` LE each).
pub(crate) const RESTART_LEN: usize = 4;

/// Restart interval of the index block: every index key is stored whole, so a reader could
/// binary-search the index without decoding it (the format allows any interval).
pub(crate) const INDEX_RESTART_INTERVAL: usize = 1;

/// The most probes a bloom filter may declare (`k`); a larger `k` in a filter block is
/// corruption. Writers derive `k = round(0.6 * bits_per_key)` clamped to `1..=30`.
pub(crate) const MAX_BLOOM_PROBES: u8 = 30;

/// The smallest bloom bit array a writer emits, in bits: one 64-byte block (arrays are whole
/// blocks).
pub(crate) const MIN_BLOOM_BITS: usize = 512;

/// How a block's payload is stored (the `transform` byte of the block trailer).
///
/// A reader that meets an unknown value reports corruption rather than misreading the
/// block. Values are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum Transform {
    /// `payload` is the raw block.
    Raw = 0,
    /// `payload = varint(raw_len) ++ zstd frame`.
    Zstd = 1,
    /// `payload = AES-256-GCM(varint(raw_len) ++ zstd frame) ++ tag` (encrypted tables).
    ZstdSealed = 2,
    /// `payload = AES-256-GCM(raw block) ++ tag` (encrypted tables).
    RawSealed = 3,
}

impl Transform {
    /// Decodes the trailer byte; `None` for a value this version does not know.
    pub(crate) fn from_u8(b: u8) -> Option<Transform> {
        match b {
            0 => Some(Transform::Raw),
            1 => Some(Transform::Zstd),
            2 => Some(Transform::ZstdSealed),
            3 => Some(Transform::RawSealed),
            _ => None,
        }
    }

    /// True for the encrypted transforms.
    pub fn is_sealed(self) -> bool {
        matches!(self, Transform::ZstdSealed | Transform::RawSealed)
    }

    /// The sealed form of a plaintext transform.
    pub(crate) fn sealed(self) -> Transform {
        match self {
            Transform::Raw | Transform::RawSealed => Transform::RawSealed,
            Transform::Zstd | Transform::ZstdSealed => Transform::ZstdSealed,
        }
    }
}

/// Default target size of a raw data block, in bytes.
pub(crate) const DEFAULT_BLOCK_SIZE: usize = 4096;
/// Default number of entries between restart points in data blocks.
pub(crate) const DEFAULT_RESTART_INTERVAL: usize = 16;
/// Default bloom bits per key (about 1% false positives).
pub(crate) const DEFAULT_BLOOM_BITS_PER_KEY: u32 = 10;
/// Default zstd level (0 = store every block raw).
pub(crate) const DEFAULT_COMPRESSION_LEVEL: i32 = 3;
/// Default minimum saving for keeping a compressed block: 12.5%.
pub(crate) const DEFAULT_MIN_COMPRESSION_SAVING: f64 = 0.125;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_what_the_doc_says() {
        assert_eq!(FOOTER_LEN, 64);
        assert_eq!(&TABLE_MAGIC.to_le_bytes(), b"kho:sst\0");
        assert_eq!(Transform::from_u8(0), Some(Transform::Raw));
        assert_eq!(Transform::from_u8(1), Some(Transform::Zstd));
        assert_eq!(Transform::from_u8(2), Some(Transform::ZstdSealed));
        assert_eq!(Transform::from_u8(3), Some(Transform::RawSealed));
        assert_eq!(Transform::from_u8(4), None);
        assert_eq!(ENCRYPTED_FOOTER_LEN, 96);
    }
}
