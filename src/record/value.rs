//! The stored record value and the [`Record`] type reads return.
//!
//! Value layout (see `docs/record-model.md`):
//!
//! ```text
//! format: u8 (= 1) | national_id: 12 ASCII digits | payload: MessagePack, structs as maps
//! ```
//!
//! The national ID is in the value so that a delete or an ID-changing upsert can find (and
//! remove) the index entry the record had. The payload is self-describing MessagePack with
//! field names (`rmp_serde::encode::write_named`), so fields can be added to a payload type
//! and tools can print any record without its Rust type. The `format` byte is the
//! per-record transform slot: a later format may mean "payload encrypted".

use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{Error, Result};
use super::national_id::{NationalId, NATIONAL_ID_LEN};

/// The record value format with a plaintext payload.
pub(crate) const RECORD_FORMAT_V1: u8 = 1;
/// The record value format with a payload sealed under its person's key (crypto-shredding):
/// `2 | national_id | key_id: [u8; 8] | nonce: [u8; 12] | ciphertext | tag: [u8; 16]`, the
/// associated data binding it to its record key and person (`sealed_aad`).
pub(crate) const RECORD_FORMAT_SEALED: u8 = 2;
/// Bytes of a sealed value before its nonce.
pub(crate) const SEALED_HEADER_LEN: usize = VALUE_HEADER_LEN + super::vault::KEY_ID_LEN;

/// A stored payload: plaintext, or sealed under a person key. Its `Debug` shows the kind and
/// length only: it is a payload.
#[derive(Clone, Copy)]
pub(crate) enum StoredPayload<'a> {
    /// MessagePack.
    Plain(&'a [u8]),
    /// `nonce | ciphertext | tag` under the key `key_id`.
    Sealed { key_id: [u8; super::vault::KEY_ID_LEN], sealed: &'a [u8] },
}

impl std::fmt::Debug for StoredPayload<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredPayload::Plain(p) => write!(f, "Plain({} bytes)", p.len()),
            StoredPayload::Sealed { sealed, .. } => write!(f, "Sealed({} bytes)", sealed.len()),
        }
    }
}

/// The associated data of a sealed payload: the record key and the person, so a sealed
/// payload cannot be moved to another record or person.
pub(crate) fn sealed_aad(record_key: &[u8], id: &NationalId) -> Vec<u8> {
    let mut a = Vec::with_capacity(24 + record_key.len());
    a.extend_from_slice(b"kho record v2\0");
    a.extend_from_slice(id.as_bytes());
    a.extend_from_slice(record_key);
    a
}

/// Seals an encoded v1 value's payload under `key`: the v2 value.
pub(crate) fn seal_value(
    v1: &[u8],
    key: &super::vault::PersonKey,
    nonce: [u8; super::vault::NONCE_LEN],
    record_key: &[u8],
    id: &NationalId,
) -> Result<Vec<u8>> {
    let payload = v1.get(VALUE_HEADER_LEN..).unwrap_or_default();
    let mut v = Vec::with_capacity(SEALED_HEADER_LEN + super::vault::NONCE_LEN + payload.len() + super::vault::TAG_LEN);
    v.push(RECORD_FORMAT_SEALED);
    v.extend_from_slice(id.as_bytes());
    v.extend_from_slice(&key.id);
    key.seal_into(nonce, &sealed_aad(record_key, id), payload, &mut v)?;
    Ok(v)
}
/// Bytes before the payload.
pub(crate) const VALUE_HEADER_LEN: usize = 1 + NATIONAL_ID_LEN;

/// Encodes a record value: header plus `payload` as named MessagePack.
pub(crate) fn encode_value<T: Serialize + ?Sized>(id: &NationalId, payload: &T) -> Result<Vec<u8>> {
    let mut v = Vec::with_capacity(VALUE_HEADER_LEN + 128);
    v.push(RECORD_FORMAT_V1);
    v.extend_from_slice(id.as_bytes());
    rmp_serde::encode::write_named(&mut v, payload)
        .map_err(|e| Error::Payload(format!("cannot encode payload: {}", without_quoted(&e.to_string()))))?;
    Ok(v)
}

/// Splits a stored value into the national ID and the payload bytes; `Err(what)` describes
/// a malformed value.
pub(crate) fn decode_value(v: &[u8]) -> std::result::Result<(NationalId, &[u8]), String> {
    match decode_stored(v)? {
        (id, StoredPayload::Plain(p)) => Ok((id, p)),
        (id, StoredPayload::Sealed { .. }) => Ok((id, &v[VALUE_HEADER_LEN..])),
    }
}

/// Splits a stored value (either format) into the national ID and its payload.
pub(crate) fn decode_stored(v: &[u8]) -> std::result::Result<(NationalId, StoredPayload<'_>), String> {
    let format = match v.first() {
        Some(&f @ (RECORD_FORMAT_V1 | RECORD_FORMAT_SEALED)) => f,
        Some(f) => return Err(format!("unknown record format {f}")),
        None => return Err("empty record value".into()),
    };
    let digits = v
        .get(1..VALUE_HEADER_LEN)
        .ok_or_else(|| format!("record value of {} bytes is shorter than its header", v.len()))?;
    let id = NationalId::from_digits(digits).map_err(|r| format!("stored national ID: {r}"))?;
    if format == RECORD_FORMAT_V1 {
        return Ok((id, StoredPayload::Plain(&v[VALUE_HEADER_LEN..])));
    }
    let key_id = v
        .get(VALUE_HEADER_LEN..SEALED_HEADER_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("sealed record value of {} bytes is shorter than its header", v.len()))?;
    let sealed = &v[SEALED_HEADER_LEN..];
    if sealed.len() < super::vault::NONCE_LEN + super::vault::TAG_LEN {
        return Err(format!("sealed payload of {} bytes is shorter than its nonce and tag", sealed.len()));
    }
    Ok((id, StoredPayload::Sealed { key_id, sealed }))
}

/// Splits a stored record value into the national ID it names and its MessagePack payload
/// (the layout above): for inspection tools and the decoder tests. Never panics; a malformed
/// value is [`Error::Payload`] saying what is wrong, and so is a value whose payload is sealed
/// under a person key (format 2: only the store, with its vault, can open it).
pub fn decode_record_value(value: &[u8]) -> Result<(NationalId, &[u8])> {
    match decode_stored(value).map_err(|what| Error::Payload(format!("malformed record value: {what}")))? {
        (id, StoredPayload::Plain(p)) => Ok((id, p)),
        (_, StoredPayload::Sealed { .. }) => {
            Err(Error::Payload("the payload is sealed under a person key (see docs/privacy.md)".into()))
        }
    }
}

/// Decodes MessagePack `payload` as a `T`.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T> {
    rmp_serde::from_slice(payload)
        .map_err(|e| Error::Payload(format!("cannot decode payload: {}", without_quoted(&e.to_string()))))
}

/// A serde message with everything it quotes (`"..."` or `` `...` ``) withheld: serde quotes
/// the offending stored value ("invalid type: string \"Nguyễn Văn A\", expected u32"), and
/// payloads are personal data. What kind of mismatch it was stays.
fn without_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut quote: Option<char> = None;
    for c in msg.chars() {
        match quote {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    quote = Some(c);
                }
            }
        }
    }
    out
}

/// One record: where it lives, whose it is and its payload. `P` is the decoded payload type;
/// the default, [`Bytes`], holds the raw MessagePack (see [`Record::decode`]). Its `Debug`
/// redacts the primary key and the ID and never shows the payload.
#[derive(Clone, PartialEq)]
pub struct Record<P = Bytes> {
    /// The collection's name.
    pub collection: Arc<str>,
    /// The primary key within the collection.
    pub pk: Bytes,
    /// The national ID of the person the record belongs to.
    pub id: NationalId,
    /// The payload.
    pub payload: P,
}

impl Record<Bytes> {
    /// Decodes the MessagePack payload as a `T` (any type whose fields are a subset or
    /// superset-with-defaults of what was stored).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        decode_payload(&self.payload)
    }

    /// This record with its payload decoded as a `T`.
    pub fn into_typed<T: DeserializeOwned>(self) -> Result<Record<T>> {
        let payload = decode_payload(&self.payload)?;
        Ok(Record { collection: self.collection, pk: self.pk, id: self.id, payload })
    }
}

impl<P> std::fmt::Debug for Record<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("collection", &self.collection)
            .field("pk", &crate::util::redact(&self.pk))
            .field("id", &self.id)
            .field("payload", &format_args!("<{}>", std::any::type_name::<P>()))
            .finish()
    }
}

/// An index entry: a person's record, by reference. Its `Debug` redacts the ID and the
/// primary key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexEntry {
    /// The person.
    pub id: NationalId,
    /// The collection's name.
    pub collection: Arc<str>,
    /// The primary key within the collection.
    pub pk: Bytes,
}

impl std::fmt::Debug for IndexEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexEntry")
            .field("id", &self.id)
            .field("collection", &self.collection)
            .field("pk", &crate::util::redact(&self.pk))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn value_decoders_take_arbitrary_bytes(
            head in prop_oneof![Just(RECORD_FORMAT_V1), any::<u8>()],
            rest in proptest::collection::vec(prop_oneof![b'0'..=b'9', any::<u8>()], 0..60),
        ) {
            let mut v = vec![head];
            v.extend_from_slice(&rest);
            for bytes in [&v[..], &rest[..]] {
                if let Ok((id, payload)) = decode_value(bytes) {
                    prop_assert_eq!(&bytes[1..VALUE_HEADER_LEN], &id.as_bytes()[..]);
                    prop_assert_eq!(payload, &bytes[VALUE_HEADER_LEN..]);
                    let _ = decode_payload::<V2>(payload);
                    let _ = decode_payload::<(u32, u32)>(payload);
                }
                let _ = decode_record_value(bytes);
                let _ = decode_payload::<V1>(bytes);
            }
        }

        #[test]
        fn encoded_values_decode_back(name in ".{0,20}", id in 0u32..1_000_000) {
            let id = NationalId::from_parts(79, super::super::Gender::Female, 1990, id).unwrap();
            let v = encode_value(&id, &V1 { name: name.clone() }).unwrap();
            let (got, payload) = decode_record_value(&v).unwrap();
            prop_assert_eq!(got, id);
            prop_assert_eq!(decode_payload::<V1>(payload).unwrap(), V1 { name });
        }
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct V1 {
        name: String,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct V2 {
        name: String,
        #[serde(default)]
        phone: Option<String>,
    }

    #[test]
    fn values_round_trip_and_evolve() {
        let id = NationalId::parse("001190000001").unwrap();
        let v = encode_value(&id, &V1 { name: "An".into() }).unwrap();
        let (got, payload) = decode_value(&v).unwrap();
        assert_eq!(got, id);
        let v2: V2 = decode_payload(payload).unwrap();
        assert_eq!(v2, V2 { name: "An".into(), phone: None });
        // Named fields: the field name is in the bytes.
        assert!(payload.windows(4).any(|w| w == b"name"));
    }

    #[test]
    fn malformed_values_are_described() {
        assert!(decode_value(b"").is_err());
        assert!(decode_value(b"\x03001190000001").unwrap_err().contains("format 3"));
        // A sealed value too short for its key id, nonce and tag.
        assert!(decode_stored(b"\x02001190000001").unwrap_err().contains("shorter"));
        assert!(decode_stored(&[&b"\x02001190000001"[..], &[0; 8 + 27]].concat()).unwrap_err().contains("nonce"));
        assert!(decode_stored(&[&b"\x02001190000001"[..], &[0; 8 + 28]].concat()).is_ok());
        let sealed = [&b"\x02001190000001"[..], &[0; 40]].concat();
        assert!(decode_record_value(&sealed).unwrap_err().to_string().contains("sealed"));
        assert!(decode_value(b"\x010011900").is_err());
        assert!(decode_value(b"\x01a01190000001").is_err());
    }
}

/// The worked example of `docs/record-model.md`, byte for byte.
#[cfg(test)]
mod worked_example {
    use super::super::keys::{catalog_key, index_key, record_key, CollectionId};
    use super::*;

    #[derive(Serialize)]
    struct Tax {
        name: &'static str,
        bracket: u8,
    }

    #[test]
    fn matches_the_doc() {
        let id = NationalId::parse("079190001234").unwrap();
        let tax = CollectionId(1);
        assert_eq!(catalog_key("tax"), b"Ctax");
        assert_eq!(record_key(tax, b"8012345678"), b"R\x00\x00\x00\x018012345678");
        assert_eq!(index_key(&id, tax, b"8012345678"), b"I079190001234\x00\x00\x00\x018012345678");
        let v = encode_value(&id, &Tax { name: "An", bracket: 3 }).unwrap();
        let mut want = b"\x01079190001234".to_vec();
        want.extend_from_slice(b"\x82\xa4name\xa2An\xa7bracket\x03");
        assert_eq!(v, want);
    }
}
