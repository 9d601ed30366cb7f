//! The record layer's key layout in the database's one ordered keyspace (see
//! `docs/record-model.md`):
//!
//! ```text
//! record   R | collection_id: u32 BE | pk                  -> record value
//! index    I | national_id: 12 digits | collection_id: u32 BE | pk  -> (empty)
//! catalog  C | collection name (UTF-8)                      -> collection_id: u32 BE
//! meta     M | name                                         -> store metadata
//! app      X | name                                         -> application bytes (app_keys.rs)
//! ```
//!
//! Invariants: every component before `pk` has a fixed width, and `pk` is always the last
//! component, so a key decodes to exactly one `(tag, id, collection, pk)` — two different
//! records can never share a key, whatever bytes their collection names or primary keys
//! hold (`tax`/`taxes`, `ab|c`/`a|bc`). Every prefix the store scans (a collection, a person,
//! a province, ...) ends on a fixed-width component boundary, so a scan can never pick up
//! keys of a neighbouring collection or person. Big-endian collection ids keep one
//! collection's records contiguous and in primary-key byte order.

use super::national_id::{NationalId, NATIONAL_ID_LEN};

/// Tag of catalog entries (collection name -> id).
pub(crate) const TAG_CATALOG: u8 = b'C';
/// Tag of index entries.
pub(crate) const TAG_INDEX: u8 = b'I';
/// Tag of store metadata (format version).
pub(crate) const TAG_META: u8 = b'M';
/// Tag of primary records.
pub(crate) const TAG_RECORD: u8 = b'R';
/// Tag of application keys (`app_keys.rs`): bytes an application commits in a record batch.
pub(crate) const TAG_APP: u8 = b'X';

/// Longest primary key accepted, in bytes: primary keys are repeated in the index key and
/// compared on every lookup; anything longer belongs in the payload.
pub const MAX_PK_LEN: usize = 1024;
/// Longest collection name accepted, in bytes (names live in memory in the catalog).
pub const MAX_COLLECTION_NAME_LEN: usize = 64;

/// Bytes of an encoded collection id.
pub(crate) const COLLECTION_ID_LEN: usize = 4;
/// Bytes of a record key before the primary key.
pub(crate) const RECORD_PREFIX_LEN: usize = 1 + COLLECTION_ID_LEN;
/// Bytes of an index key before the primary key.
pub(crate) const INDEX_PREFIX_LEN: usize = 1 + NATIONAL_ID_LEN + COLLECTION_ID_LEN;

/// A collection's small fixed-width id, assigned by the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CollectionId(pub(crate) u32);

impl CollectionId {
    /// The id as a number.
    pub fn get(self) -> u32 {
        self.0
    }

    pub(crate) fn to_be(self) -> [u8; COLLECTION_ID_LEN] {
        self.0.to_be_bytes()
    }

    pub(crate) fn from_be(b: &[u8]) -> Option<CollectionId> {
        Some(CollectionId(u32::from_be_bytes(b.try_into().ok()?)))
    }
}

/// `R | cid`: the prefix of every record of a collection.
pub(crate) fn collection_prefix(cid: CollectionId) -> [u8; RECORD_PREFIX_LEN] {
    let mut k = [TAG_RECORD; RECORD_PREFIX_LEN];
    k[1..].copy_from_slice(&cid.to_be());
    k
}

/// `R | cid | pk`.
pub(crate) fn record_key(cid: CollectionId, pk: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(RECORD_PREFIX_LEN + pk.len());
    k.extend_from_slice(&collection_prefix(cid));
    k.extend_from_slice(pk);
    k
}

/// `I | id`: the prefix of every index entry of a person.
pub(crate) fn person_prefix(id: &NationalId) -> [u8; 1 + NATIONAL_ID_LEN] {
    let mut k = [TAG_INDEX; 1 + NATIONAL_ID_LEN];
    k[1..].copy_from_slice(id.as_bytes());
    k
}

/// `I | id | cid | pk`.
pub(crate) fn index_key(id: &NationalId, cid: CollectionId, pk: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(INDEX_PREFIX_LEN + pk.len());
    k.extend_from_slice(&person_prefix(id));
    k.extend_from_slice(&cid.to_be());
    k.extend_from_slice(pk);
    k
}

/// `C | name`.
pub(crate) fn catalog_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(TAG_CATALOG);
    k.extend_from_slice(name.as_bytes());
    k
}

/// `M | name`.
pub(crate) fn meta_key(name: &str) -> Vec<u8> {
    let mut k = vec![TAG_META];
    k.extend_from_slice(name.as_bytes());
    k
}

/// `X | name`.
pub(crate) fn app_key(name: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(TAG_APP);
    k.extend_from_slice(name);
    k
}

/// Encodes a catalog value.
pub(crate) fn encode_collection_id(cid: CollectionId) -> [u8; COLLECTION_ID_LEN] {
    cid.to_be()
}

/// Decodes a catalog value.
pub(crate) fn decode_collection_id(v: &[u8]) -> Option<CollectionId> {
    CollectionId::from_be(v)
}

/// Splits a record key into collection id and primary key.
pub(crate) fn parse_record_key(k: &[u8]) -> Option<(CollectionId, &[u8])> {
    if k.len() < RECORD_PREFIX_LEN || k[0] != TAG_RECORD {
        return None;
    }
    Some((CollectionId::from_be(&k[1..RECORD_PREFIX_LEN])?, &k[RECORD_PREFIX_LEN..]))
}

/// Splits an index key into national ID, collection id and primary key.
pub(crate) fn parse_index_key(k: &[u8]) -> Option<(NationalId, CollectionId, &[u8])> {
    if k.len() < INDEX_PREFIX_LEN || k[0] != TAG_INDEX {
        return None;
    }
    let id = NationalId::from_digits(&k[1..1 + NATIONAL_ID_LEN]).ok()?;
    let cid = CollectionId::from_be(&k[1 + NATIONAL_ID_LEN..INDEX_PREFIX_LEN])?;
    Some((id, cid, &k[INDEX_PREFIX_LEN..]))
}

/// Splits a catalog key into the collection name.
pub(crate) fn parse_catalog_key(k: &[u8]) -> Option<&str> {
    match k.split_first() {
        Some((&TAG_CATALOG, name)) => std::str::from_utf8(name).ok(),
        _ => None,
    }
}

/// A key of the store's part of the keyspace, decoded: for inspection tools and the
/// decoder tests (`tests/decoders_never_panic.rs`, `fuzz/`). [`StoreKey::decode`] never
/// panics, whatever the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreKey<'a> {
    /// `R | collection id | pk`: a record.
    Record {
        /// The collection's id (the catalog maps it to a name).
        collection: CollectionId,
        /// The primary key.
        pk: &'a [u8],
    },
    /// `I | national ID | collection id | pk`: an index entry.
    Index {
        /// The person (12 digits; not checked against any [`super::IdRules`]).
        id: NationalId,
        /// The record's collection id.
        collection: CollectionId,
        /// The record's primary key.
        pk: &'a [u8],
    },
    /// `C | name`: a catalog entry.
    Catalog {
        /// The collection's name.
        name: &'a str,
    },
    /// `M | name`: store metadata.
    Meta {
        /// The metadata item's name.
        name: &'a [u8],
    },
    /// `X | name`: an application key (see [`StoreBatch::put_app`](super::StoreBatch::put_app)).
    App {
        /// The application key's name.
        name: &'a [u8],
    },
}

impl<'a> StoreKey<'a> {
    /// Decodes `key`; `None` if it is not a well-formed store key (unknown tag, a fixed-width
    /// component cut short, an ID that is not 12 digits, a catalog name that is not UTF-8).
    pub fn decode(key: &'a [u8]) -> Option<StoreKey<'a>> {
        match *key.first()? {
            TAG_RECORD => parse_record_key(key).map(|(collection, pk)| StoreKey::Record { collection, pk }),
            TAG_INDEX => parse_index_key(key).map(|(id, collection, pk)| StoreKey::Index { id, collection, pk }),
            TAG_CATALOG => parse_catalog_key(key).map(|name| StoreKey::Catalog { name }),
            TAG_META => Some(StoreKey::Meta { name: &key[1..] }),
            TAG_APP => Some(StoreKey::App { name: &key[1..] }),
            _ => None,
        }
    }
}

impl CollectionId {
    /// Decodes a catalog entry's value (a 4-byte big-endian id); `None` for any other length.
    pub fn from_catalog_value(value: &[u8]) -> Option<CollectionId> {
        decode_collection_id(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn decoders_take_arbitrary_bytes(
            tag in prop_oneof![Just(TAG_RECORD), Just(TAG_INDEX), Just(TAG_CATALOG), Just(TAG_META), any::<u8>()],
            rest in proptest::collection::vec(prop_oneof![b'0'..=b'9', any::<u8>()], 0..40),
        ) {
            let mut k = vec![tag];
            k.extend_from_slice(&rest);
            let _ = StoreKey::decode(&k);
            let _ = StoreKey::decode(&rest);
            let _ = (parse_record_key(&k), parse_index_key(&k), parse_catalog_key(&k));
            let _ = decode_collection_id(&rest);
            if let Some(StoreKey::Index { id, collection, pk }) = StoreKey::decode(&k) {
                prop_assert_eq!(index_key(&id, collection, pk), k.clone());
            }
            if let Some(StoreKey::Record { collection, pk }) = StoreKey::decode(&k) {
                prop_assert_eq!(record_key(collection, pk), k.clone());
            }
        }

        #[test]
        fn every_encoded_key_decodes_to_what_was_encoded(
            cid in any::<u32>(),
            pk in proptest::collection::vec(any::<u8>(), 0..30),
            id in (0u16..1000, any::<bool>(), 1900u16..2400, 0u32..1_000_000),
            name in "[a-z]{0,10}",
        ) {
            let cid = CollectionId(cid);
            let gender = if id.1 { super::super::Gender::Female } else { super::super::Gender::Male };
            let id = NationalId::from_parts(id.0, gender, id.2, id.3).unwrap();
            let (rk, ik, ck, mk) = (record_key(cid, &pk), index_key(&id, cid, &pk), catalog_key(&name), meta_key(&name));
            prop_assert_eq!(StoreKey::decode(&rk), Some(StoreKey::Record { collection: cid, pk: &pk }));
            prop_assert_eq!(StoreKey::decode(&ik), Some(StoreKey::Index { id, collection: cid, pk: &pk }));
            prop_assert_eq!(StoreKey::decode(&ck), Some(StoreKey::Catalog { name: &name }));
            prop_assert_eq!(StoreKey::decode(&mk), Some(StoreKey::Meta { name: name.as_bytes() }));
            let ak = app_key(name.as_bytes());
            prop_assert_eq!(StoreKey::decode(&ak), Some(StoreKey::App { name: name.as_bytes() }));
            prop_assert_eq!(CollectionId::from_catalog_value(&encode_collection_id(cid)), Some(cid));
        }
    }

    fn id(s: &str) -> NationalId {
        NationalId::parse(s).unwrap()
    }

    #[test]
    fn record_keys_round_trip_and_never_collide() {
        let (a, b) = (CollectionId(1), CollectionId(2));
        // `ab|c` and `a|bc`: the collection id is fixed-width, so the split is unambiguous.
        let k1 = record_key(a, b"bc");
        let k2 = record_key(b, b"c");
        assert_ne!(k1, k2);
        assert_eq!(parse_record_key(&k1), Some((a, &b"bc"[..])));
        assert_eq!(parse_record_key(&k2), Some((b, &b"c"[..])));
        assert_eq!(parse_record_key(&record_key(a, b"")), Some((a, &b""[..])));
        assert_eq!(parse_record_key(b"R\0\0"), None);
        assert_eq!(parse_record_key(&index_key(&id("001190000001"), a, b"x")), None);
    }

    #[test]
    fn index_keys_round_trip_and_sort_by_person() {
        let p = id("079203001234");
        let q = id("079203001235");
        let k = index_key(&p, CollectionId(7), b"pk|1");
        assert_eq!(k.len(), INDEX_PREFIX_LEN + 4);
        assert_eq!(parse_index_key(&k), Some((p, CollectionId(7), &b"pk|1"[..])));
        assert!(k.starts_with(&person_prefix(&p)));
        assert!(!k.starts_with(&person_prefix(&q)));
        // Every key of `p` sorts before every key of `q`, whatever the collection and pk.
        let big = index_key(&p, CollectionId(u32::MAX), &[0xff; 64]);
        assert!(big < index_key(&q, CollectionId(0), b""));
    }

    #[test]
    fn collection_prefixes_are_disjoint() {
        let k = record_key(CollectionId(1), &[0xff, 0xff]);
        assert!(k.starts_with(&collection_prefix(CollectionId(1))));
        assert!(!k.starts_with(&collection_prefix(CollectionId(256))));
        assert!(k < record_key(CollectionId(2), b""));
    }

    #[test]
    fn tags_separate_the_key_kinds() {
        assert_eq!(parse_catalog_key(&catalog_key("tax")), Some("tax"));
        assert_eq!(parse_catalog_key(&meta_key("format")), None);
        let tags = [TAG_CATALOG, TAG_INDEX, TAG_META, TAG_RECORD, TAG_APP];
        assert!(tags.windows(2).all(|w| w[0] < w[1]));
    }
}
