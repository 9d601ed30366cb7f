//! [`Change`]: one entry of the change feed, and its stored value.
//!
//! ```text
//! change := format: u8 (= 1 | 2) | kind: u8 | time_ms: u64 BE | collection_id: u32 BE
//!           | national_id: 12 digits | pk_len: varint | pk | payload
//! kind   := 1 insert | 2 update | 3 delete | 4 erase
//! ```
//!
//! Format 2 is written by a store with person keys: its payload is the record's sealed
//! payload as stored (`key_id | nonce | ciphertext | tag`, record value format 2), which the
//! cursor opens with the person's key before delivering it.
//!
//! `payload` (the record's MessagePack payload) is present exactly for inserts and updates
//! and runs to the end of the value; a delete or an erasure ends after `pk`. `time_ms` is
//! the writer's clock (milliseconds since the Unix epoch) when the change was prepared; it
//! drives only retention by age and is not ordered (positions are). Decoding never panics:
//! a malformed value is an `Err(what)` the caller turns into a corruption error that names
//! the position, never the ID or the payload.

use std::sync::Arc;

use bytes::Bytes;

use crate::record::keys::{CollectionId, COLLECTION_ID_LEN};
use crate::record::national_id::{NationalId, NATIONAL_ID_LEN};
use crate::util::coding::{put_len_prefixed, varint_len, Reader};
use crate::SeqNo;

const CHANGE_FORMAT: u8 = 1;
/// A change whose payload is sealed under a person key.
const CHANGE_FORMAT_SEALED: u8 = 2;
/// The shortest sealed payload: key id, nonce, tag.
const MIN_SEALED_LEN: usize =
    crate::record::vault::KEY_ID_LEN + crate::record::vault::NONCE_LEN + crate::record::vault::TAG_LEN;

/// What a change did to its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChangeKind {
    /// A record was written where none was (or a record moved here from another person:
    /// that is a [`ChangeKind::Delete`] of the old owner's followed by an insert).
    Insert,
    /// A record was rewritten for the same person.
    Update,
    /// A record was deleted.
    Delete,
    /// A record was deleted by [`Store::erase_person`](crate::record::Store::erase_person):
    /// the person's earlier inserts and updates are gone from the feed, and this one carries
    /// no payload.
    Erase,
}

impl ChangeKind {
    fn to_u8(self) -> u8 {
        match self {
            ChangeKind::Insert => 1,
            ChangeKind::Update => 2,
            ChangeKind::Delete => 3,
            ChangeKind::Erase => 4,
        }
    }

    fn from_u8(b: u8) -> Option<ChangeKind> {
        Some(match b {
            1 => ChangeKind::Insert,
            2 => ChangeKind::Update,
            3 => ChangeKind::Delete,
            4 => ChangeKind::Erase,
            _ => return None,
        })
    }

    /// Whether a change of this kind carries the record's payload.
    pub fn has_payload(self) -> bool {
        matches!(self, ChangeKind::Insert | ChangeKind::Update)
    }

    /// The kind's name as printed by `kho feed` (`insert`, `update`, `delete`, `erase`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Insert => "insert",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
            ChangeKind::Erase => "erase",
        }
    }
}

/// One change of the feed: what happened to which record, at which position.
///
/// `Debug` prints neither the national ID nor the payload (nor the primary key's bytes):
/// change values are personal data and must not end up in logs by accident.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change {
    /// The commit's sequence number: strictly increasing along the feed, never reused.
    /// Acknowledge it ([`ChangeCursor::ack`](super::ChangeCursor::ack)) once applied.
    pub position: SeqNo,
    /// What happened.
    pub kind: ChangeKind,
    /// The collection's name.
    pub collection: Arc<str>,
    /// The record's primary key.
    pub pk: Bytes,
    /// The person: the new owner for an insert or update, the deleted record's owner for a
    /// delete or an erasure.
    pub id: NationalId,
    /// The record's MessagePack payload after an insert or update; `None` otherwise.
    pub payload: Option<Bytes>,
    /// The writer's clock when the change was made, in milliseconds since the Unix epoch.
    pub time_ms: u64,
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Change")
            .field("position", &self.position)
            .field("kind", &self.kind)
            .field("collection", &self.collection)
            .field("pk_bytes", &self.pk.len())
            .field("payload_bytes", &self.payload.as_ref().map(Bytes::len))
            .finish_non_exhaustive()
    }
}

impl Change {
    /// Decodes the payload as a `T` (`None` for a delete or an erasure).
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> crate::record::Result<Option<T>> {
        self.payload.as_deref().map(crate::record::decode_payload).transpose()
    }
}

/// A change value split into its fields, borrowing from the value (or, on the write path,
/// from the write unit's records). `Debug` shows neither the ID, the primary key nor the
/// payload.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawChange<'a> {
    pub(crate) kind: ChangeKind,
    pub(crate) time_ms: u64,
    pub(crate) cid: CollectionId,
    pub(crate) id: NationalId,
    pub(crate) pk: &'a [u8],
    pub(crate) payload: Option<&'a [u8]>,
    /// The payload is sealed under a person key (format 2).
    pub(crate) sealed: bool,
}

impl std::fmt::Debug for RawChange<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawChange")
            .field("kind", &self.kind)
            .field("cid", &self.cid.0)
            .field("pk_bytes", &self.pk.len())
            .field("payload_bytes", &self.payload.map(<[u8]>::len))
            .field("sealed", &self.sealed)
            .finish_non_exhaustive()
    }
}

impl RawChange<'_> {
    /// The stored value's length in bytes.
    pub(crate) fn encoded_len(&self) -> usize {
        2 + 8
            + COLLECTION_ID_LEN
            + NATIONAL_ID_LEN
            + varint_len(self.pk.len() as u64)
            + self.pk.len()
            + self.payload.map_or(0, <[u8]>::len)
    }

    /// Appends the stored value (see the module doc) to `out`: [`Self::encoded_len`] bytes.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(if self.sealed { CHANGE_FORMAT_SEALED } else { CHANGE_FORMAT });
        out.push(self.kind.to_u8());
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        out.extend_from_slice(&self.cid.to_be());
        out.extend_from_slice(self.id.as_bytes());
        put_len_prefixed(out, self.pk);
        out.extend_from_slice(self.payload.unwrap_or_default());
    }

    /// The stored value (see the module doc).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut v);
        v
    }
}

/// Splits a stored change value; `Err(what)` says what is malformed (never the ID).
pub(crate) fn decode_change(v: &[u8]) -> Result<RawChange<'_>, &'static str> {
    let mut r = Reader::new(v);
    let sealed = match r.u8() {
        Some(CHANGE_FORMAT) => false,
        Some(CHANGE_FORMAT_SEALED) => true,
        _ => return Err("unknown change format"),
    };
    let kind = r.u8().and_then(ChangeKind::from_u8).ok_or("unknown change kind")?;
    let time_ms = r.bytes(8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes).ok_or("change value cut short")?;
    let cid = r.bytes(COLLECTION_ID_LEN).and_then(CollectionId::from_be).ok_or("change value cut short")?;
    let id = r
        .bytes(NATIONAL_ID_LEN)
        .ok_or("change value cut short")
        .and_then(|d| NationalId::from_digits(d).map_err(|_| "national ID in a change is not 12 digits"))?;
    let pk = r.len_prefixed().ok_or("change value cut short")?;
    let rest = &v[r.position()..];
    let payload = match (kind.has_payload(), rest.is_empty()) {
        (true, false) => Some(rest),
        (false, true) => None,
        (true, true) => return Err("insert or update without a payload"),
        (false, false) => return Err("bytes after a delete or erase"),
    };
    if sealed && payload.is_some_and(|p| p.len() < MIN_SEALED_LEN) {
        return Err("sealed payload shorter than its key id, nonce and tag");
    }
    Ok(RawChange { kind, time_ms, cid, id, pk, payload, sealed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn changes_round_trip() {
        let id = NationalId::parse("079190001234").unwrap();
        for (kind, payload) in [
            (ChangeKind::Insert, Some(&b"\x81\xa1a\x01"[..])),
            (ChangeKind::Update, Some(&b"\xc0"[..])),
            (ChangeKind::Delete, None),
            (ChangeKind::Erase, None),
        ] {
            let raw = RawChange {
                kind,
                time_ms: 1_700_000_000_000,
                cid: CollectionId(3),
                id,
                pk: b"pk-1",
                payload,
                sealed: false,
            };
            let encoded = raw.encode();
            assert_eq!(encoded.len(), raw.encoded_len());
            assert_eq!(decode_change(&encoded), Ok(raw));
            let shown = format!("{raw:?}");
            assert!(!shown.contains("079190001234") && !shown.contains("pk-1"), "{shown}");
        }
    }

    #[test]
    fn worked_example_matches_the_doc() {
        // docs/sync.md, "What a change is".
        #[derive(serde::Serialize)]
        struct Tax {
            name: &'static str,
            bracket: u8,
        }
        let value = crate::record::value::encode_value(
            &NationalId::parse("079190001234").unwrap(),
            &Tax { name: "An", bracket: 3 },
        )
        .unwrap();
        let raw = RawChange {
            kind: ChangeKind::Insert,
            time_ms: 0x0000_01a2_4236_8900,
            cid: CollectionId(1),
            id: NationalId::parse("079190001234").unwrap(),
            pk: b"8012345678",
            payload: value.get(crate::record::value::VALUE_HEADER_LEN..),
            sealed: false,
        };
        let mut want = vec![0x01, 0x01, 0x00, 0x00, 0x01, 0xa2, 0x42, 0x36, 0x89, 0x00, 0, 0, 0, 1];
        want.extend_from_slice(b"079190001234");
        want.push(10);
        want.extend_from_slice(b"8012345678");
        want.extend_from_slice(&[0x82, 0xa4, b'n', b'a', b'm', b'e', 0xa2, b'A', b'n', 0xa7]);
        want.extend_from_slice(b"bracket");
        want.push(0x03);
        assert_eq!(raw.encode(), want);
        assert_eq!(super::super::keys::change_key(4660), [b'F', 0, 0, 0, 0, 0, 0, 0x12, 0x34]);
    }

    #[test]
    fn debug_names_no_id_and_no_payload() {
        let id = NationalId::parse("079190001234").unwrap();
        let c = Change {
            position: 9,
            kind: ChangeKind::Insert,
            collection: "tax".into(),
            pk: Bytes::from_static(b"8012345678"),
            id,
            payload: Some(Bytes::from_static(b"secret-payload")),
            time_ms: 0,
        };
        let s = format!("{c:?}");
        assert!(!s.contains("079190001234") && !s.contains("secret") && !s.contains("8012345678"), "{s}");
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(v in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_change(&v);
        }

        #[test]
        fn every_cut_of_a_change_is_an_error(cut in 0usize..30) {
            let id = NationalId::parse("001190000001").unwrap();
            let kind = ChangeKind::Delete;
            let raw = RawChange { kind, time_ms: 1, cid: CollectionId(1), id, pk: b"abc", payload: None, sealed: false };
            let v = raw.encode();
            if cut < v.len() {
                prop_assert!(decode_change(&v[..cut]).is_err());
            }
        }
    }
}
