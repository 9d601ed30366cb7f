//! [`TableProperties`]: what a table holds, and its properties-block encoding.
//!
//! Encoding (see `docs/sst-format.md`, "Properties block"): a sequence of fields
//! `tag: varint | value`, where `tag = field_number << 1 | wire_type`. Wire type 0 is a varint
//! value, wire type 1 a length-prefixed byte string (`len: varint | bytes`). Field numbers are
//! listed in [`field`]; they are never reused or renumbered.
//!
//! Decoding rules: fields appear in strictly increasing tag order (so never twice); a field
//! number this version does not know is skipped using its wire type (a newer writer may add
//! fields without breaking older readers); a known field with the wrong wire type, a value out
//! of range, a missing version-1 field or trailing garbage is corruption.

use std::path::Path;

use crate::util::coding::{put_len_prefixed, put_varint, Reader};
use crate::{Error, Result};

/// Field numbers of the properties block. Never reuse or renumber one.
pub(crate) mod field {
    pub const ENTRIES: u64 = 1;
    pub const DELETIONS: u64 = 2;
    pub const DATA_BLOCKS: u64 = 3;
    pub const RAW_KEY_BYTES: u64 = 4;
    pub const RAW_VALUE_BYTES: u64 = 5;
    pub const RAW_DATA_BYTES: u64 = 6;
    pub const STORED_DATA_BYTES: u64 = 7;
    pub const SMALLEST_KEY: u64 = 8;
    pub const LARGEST_KEY: u64 = 9;
    pub const MIN_SEQ: u64 = 10;
    pub const MAX_SEQ: u64 = 11;
    pub const COMPRESSION_LEVEL: u64 = 12;
    pub const BLOOM_BITS_PER_KEY: u64 = 13;
    pub const CREATION_TIME: u64 = 14;
    /// One past the highest field number defined by format version 1.
    pub const V1_END: u64 = 15;
}

const WIRE_VARINT: u64 = 0;
const WIRE_BYTES: u64 = 1;

/// Summary of a table, stored in its properties block and kept in memory by the reader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableProperties {
    /// Entries (every version of every key, tombstones included).
    pub entries: u64,
    /// Entries that are tombstones.
    pub deletions: u64,
    /// Data blocks.
    pub data_blocks: u64,
    /// Sum of the encoded internal key lengths of all entries.
    pub raw_key_bytes: u64,
    /// Sum of the value lengths of all entries.
    pub raw_value_bytes: u64,
    /// Sum of the raw (untransformed) data block sizes.
    pub raw_data_bytes: u64,
    /// Bytes the data blocks take in the file, trailers included.
    pub stored_data_bytes: u64,
    /// The first internal key (empty for an empty table).
    pub smallest_key: Vec<u8>,
    /// The last internal key (empty for an empty table).
    pub largest_key: Vec<u8>,
    /// The smallest sequence number (0 for an empty table).
    pub min_seq: u64,
    /// The largest sequence number (0 for an empty table).
    pub max_seq: u64,
    /// The zstd level data blocks were compressed with (0 = none).
    pub compression_level: i32,
    /// Bloom filter bits per key (0 = no filter).
    pub bloom_bits_per_key: u32,
    /// When the table was written, in seconds since the Unix epoch.
    pub creation_time: u64,
    /// The table file's size in bytes. Not stored in the block: the writer and reader fill it
    /// in from the file.
    pub file_size: u64,
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

impl TableProperties {
    /// Encodes the properties block (every field, in tag order).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + self.smallest_key.len() + self.largest_key.len());
        let num = |b: &mut Vec<u8>, f: u64, v: u64| {
            put_varint(b, f << 1 | WIRE_VARINT);
            put_varint(b, v);
        };
        let bytes = |b: &mut Vec<u8>, f: u64, v: &[u8]| {
            put_varint(b, f << 1 | WIRE_BYTES);
            put_len_prefixed(b, v);
        };
        num(&mut b, field::ENTRIES, self.entries);
        num(&mut b, field::DELETIONS, self.deletions);
        num(&mut b, field::DATA_BLOCKS, self.data_blocks);
        num(&mut b, field::RAW_KEY_BYTES, self.raw_key_bytes);
        num(&mut b, field::RAW_VALUE_BYTES, self.raw_value_bytes);
        num(&mut b, field::RAW_DATA_BYTES, self.raw_data_bytes);
        num(&mut b, field::STORED_DATA_BYTES, self.stored_data_bytes);
        bytes(&mut b, field::SMALLEST_KEY, &self.smallest_key);
        bytes(&mut b, field::LARGEST_KEY, &self.largest_key);
        num(&mut b, field::MIN_SEQ, self.min_seq);
        num(&mut b, field::MAX_SEQ, self.max_seq);
        num(&mut b, field::COMPRESSION_LEVEL, zigzag(i64::from(self.compression_level)));
        num(&mut b, field::BLOOM_BITS_PER_KEY, u64::from(self.bloom_bits_per_key));
        num(&mut b, field::CREATION_TIME, self.creation_time);
        b
    }

    /// Decodes a properties block read from `path` at `file_offset`. `file_size` is left 0.
    pub(crate) fn decode(block: &[u8], path: &Path, file_offset: u64) -> Result<TableProperties> {
        let mut p = TableProperties::default();
        let mut r = Reader::new(block);
        let mut last_tag: Option<u64> = None;
        let mut seen = 0u32;
        while !r.is_empty() {
            let at = r.position();
            let bad = |what: String| {
                Error::corruption(path, file_offset, format!("properties: {what} (at block offset {at})"))
            };
            let tag = r.varint().ok_or_else(|| bad("truncated tag".into()))?;
            if last_tag.is_some_and(|l| tag <= l) {
                return Err(bad(format!("tag {tag} out of order")));
            }
            last_tag = Some(tag);
            let (f, wire) = (tag >> 1, tag & 1);
            let (v, s) = match wire {
                WIRE_VARINT => (r.varint().ok_or_else(|| bad(format!("truncated value of field {f}")))?, &[][..]),
                _ => (0, r.len_prefixed().ok_or_else(|| bad(format!("truncated value of field {f}")))?),
            };
            let want_bytes = matches!(f, field::SMALLEST_KEY | field::LARGEST_KEY);
            if (1..field::V1_END).contains(&f) {
                if want_bytes != (wire == WIRE_BYTES) {
                    return Err(bad(format!("field {f} has wire type {wire}")));
                }
                seen |= 1 << f;
            }
            match f {
                field::ENTRIES => p.entries = v,
                field::DELETIONS => p.deletions = v,
                field::DATA_BLOCKS => p.data_blocks = v,
                field::RAW_KEY_BYTES => p.raw_key_bytes = v,
                field::RAW_VALUE_BYTES => p.raw_value_bytes = v,
                field::RAW_DATA_BYTES => p.raw_data_bytes = v,
                field::STORED_DATA_BYTES => p.stored_data_bytes = v,
                field::SMALLEST_KEY => p.smallest_key = s.to_vec(),
                field::LARGEST_KEY => p.largest_key = s.to_vec(),
                field::MIN_SEQ => p.min_seq = v,
                field::MAX_SEQ => p.max_seq = v,
                field::COMPRESSION_LEVEL => {
                    p.compression_level =
                        i32::try_from(unzigzag(v)).map_err(|_| bad(format!("compression level {v} out of range")))?;
                }
                field::BLOOM_BITS_PER_KEY => {
                    p.bloom_bits_per_key =
                        u32::try_from(v).map_err(|_| bad(format!("bits per key {v} out of range")))?;
                }
                field::CREATION_TIME => p.creation_time = v,
                _ => {} // a field from a newer writer: skipped
            }
        }
        let all = ((1u32 << field::V1_END) - 1) & !1;
        if seen != all {
            let missing: Vec<u64> = (1..field::V1_END).filter(|f| seen & (1 << f) == 0).collect();
            return Err(Error::corruption(path, file_offset, format!("properties: missing fields {missing:?}")));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TableProperties {
        TableProperties {
            entries: 10,
            deletions: 2,
            data_blocks: 3,
            raw_key_bytes: 130,
            raw_value_bytes: 300,
            raw_data_bytes: 500,
            stored_data_bytes: 400,
            smallest_key: b"a\0\0\0\0\0\0\0\0".to_vec(),
            largest_key: b"z\x01\0\0\0\0\0\0\0".to_vec(),
            min_seq: 1,
            max_seq: 1 << 50,
            compression_level: -5,
            bloom_bits_per_key: 10,
            creation_time: 1_700_000_000,
            file_size: 0,
        }
    }

    #[test]
    fn roundtrip() {
        let p = sample();
        assert_eq!(TableProperties::decode(&p.encode(), Path::new("t"), 0).unwrap(), p);
        assert_eq!(unzigzag(zigzag(i64::MIN)), i64::MIN);
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let p = sample();
        let mut b = p.encode();
        put_varint(&mut b, 40 << 1 | WIRE_VARINT);
        put_varint(&mut b, 12345);
        put_varint(&mut b, 41 << 1 | WIRE_BYTES);
        put_len_prefixed(&mut b, b"future");
        assert_eq!(TableProperties::decode(&b, Path::new("t"), 0).unwrap(), p);
    }

    #[test]
    fn malformed_blocks_are_corruption() {
        let good = sample().encode();
        let mut cases = vec![good[..good.len() - 1].to_vec(), good[1..].to_vec(), Vec::new()];
        let mut dup = good.clone();
        put_varint(&mut dup, field::ENTRIES << 1);
        put_varint(&mut dup, 1);
        cases.push(dup);
        let mut wrong_wire = Vec::new();
        put_varint(&mut wrong_wire, field::ENTRIES << 1 | WIRE_BYTES);
        put_len_prefixed(&mut wrong_wire, b"x");
        cases.push(wrong_wire);
        for (i, c) in cases.iter().enumerate() {
            let e = TableProperties::decode(c, Path::new("t"), 9).unwrap_err();
            assert!(e.is_corruption(), "case {i}: {e}");
        }
        for i in 0..good.len() {
            for flip in [1u8, 0x80] {
                let mut b = good.clone();
                b[i] ^= flip;
                let _ = TableProperties::decode(&b, Path::new("t"), 0); // never panics
            }
        }
    }
}
