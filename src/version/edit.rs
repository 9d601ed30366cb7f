//! [`VersionEdit`]: one change to the set of live files, as recorded in the manifest.
//!
//! Encoding (see `docs/manifest-format.md`): a sequence of `tag: varint | fields`. Tags are
//! numbered once and never reused; an unknown tag is corruption, because skipping a change
//! to the file set would silently give a wrong view of the data.

use bytes::Bytes;

use crate::key::SeqNo;
use crate::util::coding::{put_len_prefixed, put_varint, Reader};

/// Tag numbers of the manifest record fields. Never reuse one.
mod tag {
    pub const LOG_NUMBER: u64 = 1;
    pub const NEXT_FILE_NUMBER: u64 = 2;
    pub const LAST_SEQUENCE: u64 = 3;
    pub const DELETED_FILE: u64 = 4;
    pub const NEW_FILE: u64 = 5;
}

/// Metadata of one SSTable, as kept in the manifest and in every `Version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// File number; the file is `NNNNNN.sst` in the database directory.
    pub number: u64,
    /// Size in bytes.
    pub size: u64,
    /// Smallest encoded internal key in the file.
    pub smallest: Bytes,
    /// Largest encoded internal key in the file.
    pub largest: Bytes,
    /// Smallest sequence number in the file.
    pub smallest_seq: SeqNo,
    /// Largest sequence number in the file.
    pub largest_seq: SeqNo,
    /// Number of entries (puts and tombstones).
    pub entries: u64,
}

/// A change to the live file set plus the counters recovery needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionEdit {
    /// Logs numbered below this hold only flushed data and may be deleted.
    pub log_number: Option<u64>,
    /// The next file number to hand out.
    pub next_file_number: Option<u64>,
    /// The last sequence number used by any write in a flushed file.
    pub last_sequence: Option<SeqNo>,
    /// Files removed: `(level, number)`.
    pub deleted_files: Vec<(u32, u64)>,
    /// Files added: `(level, meta)`.
    pub new_files: Vec<(u32, FileMeta)>,
}

impl VersionEdit {
    /// Appends the encoding of this edit to `dst`.
    pub(crate) fn encode(&self, dst: &mut Vec<u8>) {
        if let Some(n) = self.log_number {
            put_varint(dst, tag::LOG_NUMBER);
            put_varint(dst, n);
        }
        if let Some(n) = self.next_file_number {
            put_varint(dst, tag::NEXT_FILE_NUMBER);
            put_varint(dst, n);
        }
        if let Some(s) = self.last_sequence {
            put_varint(dst, tag::LAST_SEQUENCE);
            put_varint(dst, s);
        }
        for &(level, number) in &self.deleted_files {
            put_varint(dst, tag::DELETED_FILE);
            put_varint(dst, u64::from(level));
            put_varint(dst, number);
        }
        for (level, f) in &self.new_files {
            put_varint(dst, tag::NEW_FILE);
            put_varint(dst, u64::from(*level));
            put_varint(dst, f.number);
            put_varint(dst, f.size);
            put_len_prefixed(dst, &f.smallest);
            put_len_prefixed(dst, &f.largest);
            put_varint(dst, f.smallest_seq);
            put_varint(dst, f.largest_seq);
            put_varint(dst, f.entries);
        }
    }

    /// Decodes one edit (the payload of one manifest record); the error names the byte
    /// offset within `src` and what was wrong. Never panics, whatever the bytes.
    pub fn decode(src: &[u8]) -> Result<VersionEdit, (usize, String)> {
        let mut r = Reader::new(src);
        let mut e = VersionEdit::default();
        while !r.is_empty() {
            let at = r.position();
            let bad = |what: &str| (at, format!("{what} in version edit field"));
            let t = r.varint().ok_or_else(|| bad("truncated tag"))?;
            match t {
                tag::LOG_NUMBER => e.log_number = Some(r.varint().ok_or_else(|| bad("truncated log number"))?),
                tag::NEXT_FILE_NUMBER => {
                    e.next_file_number = Some(r.varint().ok_or_else(|| bad("truncated next file number"))?)
                }
                tag::LAST_SEQUENCE => e.last_sequence = Some(r.varint().ok_or_else(|| bad("truncated last sequence"))?),
                tag::DELETED_FILE => {
                    let level = level(&mut r).ok_or_else(|| bad("bad level"))?;
                    let number = r.varint().ok_or_else(|| bad("truncated file number"))?;
                    e.deleted_files.push((level, number));
                }
                tag::NEW_FILE => {
                    let level = level(&mut r).ok_or_else(|| bad("bad level"))?;
                    let f = (|| {
                        Some(FileMeta {
                            number: r.varint()?,
                            size: r.varint()?,
                            smallest: Bytes::copy_from_slice(r.len_prefixed()?),
                            largest: Bytes::copy_from_slice(r.len_prefixed()?),
                            smallest_seq: r.varint()?,
                            largest_seq: r.varint()?,
                            entries: r.varint()?,
                        })
                    })()
                    .ok_or_else(|| bad("truncated new-file record"))?;
                    e.new_files.push((level, f));
                }
                other => return Err((at, format!("unknown version edit tag {other}"))),
            }
        }
        Ok(e)
    }
}

/// Levels are small numbers; anything above this bound is corruption.
pub const MAX_LEVELS: u32 = 16;

fn level(r: &mut Reader<'_>) -> Option<u32> {
    r.varint().and_then(|l| u32::try_from(l).ok()).filter(|&l| l < MAX_LEVELS)
}

#[cfg(test)]
impl FileMeta {
    /// A table `number` holding user keys `lo..=hi` in `size` bytes, written at sequence
    /// `number` (no file behind it): the one test fixture of versions, builders and pickers.
    pub(crate) fn test_table(number: u64, lo: &str, hi: &str, size: u64) -> FileMeta {
        use crate::key::{internal_key, ValueKind};
        FileMeta {
            number,
            size,
            smallest: Bytes::from(internal_key(lo.as_bytes(), number, ValueKind::Put)),
            largest: Bytes::from(internal_key(hi.as_bytes(), number, ValueKind::Put)),
            smallest_seq: number,
            largest_seq: number,
            entries: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> VersionEdit {
        VersionEdit {
            log_number: Some(7),
            next_file_number: Some(12),
            last_sequence: Some(99_999),
            deleted_files: vec![(0, 3), (1, 4)],
            new_files: vec![(
                1,
                FileMeta {
                    number: 11,
                    size: 4096,
                    smallest: Bytes::from_static(b"a\x01\0\0\0\0\0\0\0"),
                    largest: Bytes::from_static(b"z\x01\0\0\0\0\0\0\0"),
                    smallest_seq: 1,
                    largest_seq: 99,
                    entries: 50,
                },
            )],
        }
    }

    #[test]
    fn roundtrip() {
        let mut buf = Vec::new();
        sample().encode(&mut buf);
        assert_eq!(VersionEdit::decode(&buf).unwrap(), sample());
        assert_eq!(VersionEdit::decode(&[]).unwrap(), VersionEdit::default());
    }

    #[test]
    fn truncations_and_unknown_tags_are_errors() {
        let mut buf = Vec::new();
        sample().encode(&mut buf);
        for cut in 1..buf.len() {
            // Every proper prefix either fails or decodes to fewer fields; never panics.
            if let Ok(e) = VersionEdit::decode(&buf[..cut]) {
                assert_ne!(e, sample());
            }
        }
        assert!(VersionEdit::decode(&[42, 1]).is_err());
        assert!(VersionEdit::decode(&[4, 99, 1]).is_err(), "level out of range");
    }
}
