//! Internal keys: a user key tagged with the sequence number and kind of the write.
//!
//! Encoding (used in SSTables and the merging iterators): `user_key ++ trailer`, where
//! `trailer = (seq << 8 | kind)` as a little-endian `u64`. Ordering: user key ascending, then
//! trailer **descending**, so the newest version of a key comes first and a seek to
//! `(key, snapshot_seq, MAX_KIND)` lands on the newest version visible at that snapshot.
//!
//! Invariant: sequence numbers fit in 56 bits ([`MAX_SEQUENCE`]).
//!
//! Public for inspection tools (`kho dump`, `kho verify`), which print and compare the keys
//! stored in tables and the manifest: [`ParsedKey`], [`internal_key`], [`compare_internal`].

use std::cmp::Ordering;

/// A sequence number: every write gets the next one; snapshots are sequence numbers.
pub type SeqNo = u64;

/// The largest sequence number that fits in a trailer.
pub const MAX_SEQUENCE: SeqNo = (1 << 56) - 1;

/// Bytes of the trailer appended to a user key.
pub const TRAILER_LEN: usize = 8;

/// What a versioned entry means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum ValueKind {
    /// A tombstone: the key is deleted as of this sequence number.
    Delete = 0,
    /// A value.
    Put = 1,
}

impl ValueKind {
    /// The kind with the largest tag, used for seek targets.
    pub(crate) const MAX: ValueKind = ValueKind::Put;

    pub(crate) fn from_u8(b: u8) -> Option<ValueKind> {
        match b {
            0 => Some(ValueKind::Delete),
            1 => Some(ValueKind::Put),
            _ => None,
        }
    }
}

/// Packs a sequence number and kind into a trailer.
#[inline]
pub(crate) fn pack_trailer(seq: SeqNo, kind: ValueKind) -> u64 {
    debug_assert!(seq <= MAX_SEQUENCE);
    (seq << 8) | kind as u64
}

/// Appends the encoded internal key for `(user_key, seq, kind)` to `dst`.
#[inline]
pub(crate) fn encode_internal_key(dst: &mut Vec<u8>, user_key: &[u8], seq: SeqNo, kind: ValueKind) {
    dst.extend_from_slice(user_key);
    dst.extend_from_slice(&pack_trailer(seq, kind).to_le_bytes());
}

/// Returns the encoded internal key for `(user_key, seq, kind)`. With `seq =`
/// [`MAX_SEQUENCE`] and `kind =` [`ValueKind::Put`] it is the smallest internal key of
/// `user_key`: a seek target that lands on its newest version. `seq` must not exceed
/// [`MAX_SEQUENCE`] (higher bits are lost).
pub fn internal_key(user_key: &[u8], seq: SeqNo, kind: ValueKind) -> Vec<u8> {
    let mut v = Vec::with_capacity(user_key.len() + TRAILER_LEN);
    encode_internal_key(&mut v, user_key, seq, kind);
    v
}

/// A borrowed view of an encoded internal key. Construct with [`ParsedKey::parse`], which
/// checks the length and the kind byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    /// The user key.
    pub user_key: &'a [u8],
    /// The sequence number of the write.
    pub seq: SeqNo,
    /// Put or delete.
    pub kind: ValueKind,
}

impl<'a> ParsedKey<'a> {
    /// Splits an encoded internal key; `None` when it is too short or the kind is unknown.
    #[inline]
    pub fn parse(ikey: &'a [u8]) -> Option<ParsedKey<'a>> {
        let split = ikey.len().checked_sub(TRAILER_LEN)?;
        let (user_key, t) = ikey.split_at(split);
        let trailer = u64::from_le_bytes(t.try_into().ok()?);
        let kind = ValueKind::from_u8((trailer & 0xff) as u8)?;
        Some(ParsedKey { user_key, seq: trailer >> 8, kind })
    }
}

/// The user-key part of an encoded internal key (the whole slice if it is too short).
#[inline]
pub(crate) fn user_key(ikey: &[u8]) -> &[u8] {
    &ikey[..ikey.len().saturating_sub(TRAILER_LEN)]
}

#[inline]
fn trailer(ikey: &[u8]) -> u64 {
    let n = ikey.len();
    if n < TRAILER_LEN {
        return 0;
    }
    let mut t = [0u8; TRAILER_LEN];
    t.copy_from_slice(&ikey[n - TRAILER_LEN..]);
    u64::from_le_bytes(t)
}

/// Orders encoded internal keys: user key ascending, then trailer descending. Keys shorter
/// than a trailer compare as user keys with trailer 0 (never panics).
#[inline]
pub fn compare_internal(a: &[u8], b: &[u8]) -> Ordering {
    compare_bytes(user_key(a), user_key(b)).then_with(|| trailer(b).cmp(&trailer(a)))
}

/// Lexicographic byte order, eight bytes at a time: the hot comparison of every skiplist
/// and block search. Equal to `a.cmp(b)` (tested), but avoids a `memcmp` call for the short
/// keys kho mostly sees.
#[inline]
pub(crate) fn compare_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    let (mut ca, mut cb) = (a[..n].chunks_exact(8), b[..n].chunks_exact(8));
    for (x, y) in (&mut ca).zip(&mut cb) {
        let mut xa = [0u8; 8];
        let mut ya = [0u8; 8];
        xa.copy_from_slice(x);
        ya.copy_from_slice(y);
        let (x, y) = (u64::from_be_bytes(xa), u64::from_be_bytes(ya));
        if x != y {
            return x.cmp(&y);
        }
    }
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_version_sorts_first() {
        let a = internal_key(b"k", 10, ValueKind::Put);
        let b = internal_key(b"k", 9, ValueKind::Put);
        let c = internal_key(b"k", 10, ValueKind::Delete);
        let d = internal_key(b"ka", 99, ValueKind::Put);
        assert_eq!(compare_internal(&a, &b), Ordering::Less);
        assert_eq!(compare_internal(&a, &c), Ordering::Less);
        assert_eq!(compare_internal(&b, &d), Ordering::Less);
        // A prefix user key sorts before its extension regardless of trailers.
        let e = internal_key(b"k", 0, ValueKind::Delete);
        assert_eq!(compare_internal(&e, &d), Ordering::Less);
    }

    #[test]
    fn compare_bytes_is_lexicographic() {
        let samples: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0, 0],
            vec![1],
            vec![255],
            b"abcdefgh".to_vec(),
            b"abcdefgh\0".to_vec(),
            b"abcdefgi".to_vec(),
            b"abcdefghijklmnopq".to_vec(),
            b"abcdefghijklmnopr".to_vec(),
            b"abcdefghijklmnop".to_vec(),
            vec![0x80, 1, 2, 3, 4, 5, 6, 7, 8],
            vec![0x7f, 255, 255, 255, 255, 255, 255, 255, 255],
        ];
        for a in &samples {
            for b in &samples {
                assert_eq!(compare_bytes(a, b), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn parse_roundtrip_and_rejects_garbage() {
        let k = internal_key(b"hello", 42, ValueKind::Delete);
        let p = ParsedKey::parse(&k).unwrap();
        assert_eq!((p.user_key, p.seq, p.kind), (&b"hello"[..], 42, ValueKind::Delete));
        assert!(ParsedKey::parse(b"short").is_none());
        let mut bad = k.clone();
        let n = bad.len();
        bad[n - 8] = 7; // unknown kind
        assert!(ParsedKey::parse(&bad).is_none());
    }
}
