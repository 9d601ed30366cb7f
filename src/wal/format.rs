//! Constants of the log record framing; see `docs/wal-format.md`.
//!
//! ```text
//! record := len: u32 LE | transform: u8 | payload_crc: u32 LE | header_crc: u32 LE | payload
//! payload_crc = crc32(payload)               (crc32: `util::checksum`, CRC-32/ISO-HDLC)
//! header_crc  = crc32(len | transform | payload_crc)   (the 9 bytes before it)
//! ```

use crate::util::checksum::crc32;

/// Bytes before the payload.
pub const HEADER_LEN: usize = 13;

/// Largest payload a record may carry (1 GiB); anything larger is corruption.
pub const MAX_PAYLOAD: u32 = 1 << 30;

/// Transform id: the payload is stored as is. (Ids are never reused.)
pub const TRANSFORM_NONE: u8 = 0;

/// Transform id: the payload is sealed with AES-256-GCM (ciphertext then 16-byte tag) under
/// the file's subkey, nonce = the record's counter (see `docs/encryption.md`).
pub const TRANSFORM_SEALED: u8 = 1;

/// Transform id: the payload is the file's plaintext segment header
/// (`crate::crypt::SegmentHeader`); only ever the first record of a file.
pub const TRANSFORM_SEGMENT_HEADER: u8 = 2;

/// Associated data of every sealed log record.
pub(crate) const RECORD_AAD: &[u8] = b"kho log record v1";

/// Encodes the header of a record whose payload is `payload`.
pub(crate) fn encode_header(payload: &[u8], transform: u8) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[4] = transform;
    h[5..9].copy_from_slice(&crc32(payload).to_le_bytes());
    let hcrc = crc32(&h[0..9]);
    h[9..13].copy_from_slice(&hcrc.to_le_bytes());
    h
}

/// A header that passed its own checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub len: u32,
    pub transform: u8,
    pub payload_crc: u32,
}

/// Parses and checks a header; `None` if the bytes are not an intact header.
pub(crate) fn decode_header(h: &[u8]) -> Option<Header> {
    let h: &[u8; HEADER_LEN] = h.get(..HEADER_LEN)?.try_into().ok()?;
    let le32 = |b: &[u8]| b.try_into().ok().map(u32::from_le_bytes);
    if crc32(&h[0..9]) != le32(&h[9..13])? {
        return None;
    }
    let len = le32(&h[0..4])?;
    if len > MAX_PAYLOAD {
        return None;
    }
    Some(Header { len, transform: h[4], payload_crc: le32(&h[5..9])? })
}
