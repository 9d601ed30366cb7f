//! [`SegmentHeader`]: the plaintext record that starts every encrypted log, manifest and key
//! registry, and whose fields an encrypted table's footer carries too.
//!
//! ```text
//! segment_header := magic "kho-enc1" | scheme: u8 | key_id: u32 LE | salt: 16 bytes
//!                   | label_len: u8 | label: label_len bytes (UTF-8)
//! ```
//! `key_id` names the data key in the key registry (0 in a registry: the master key, whose
//! provider id is the `label`; data files have an empty label). The header holds no secret:
//! the salt only makes the file's subkey unique.

use crate::crypt::cipher::{SALT_LEN, SCHEME_AES256_GCM};

/// The first bytes of an encoded segment header.
pub const SEGMENT_MAGIC: &[u8; 8] = b"kho-enc1";

/// The longest label (a master key id) a header holds.
pub const MAX_LABEL_LEN: usize = 255;

/// How one file is encrypted. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The scheme ([`crate::crypt::SCHEME_AES256_GCM`], the only one).
    pub scheme: u8,
    /// The data key's id in the key registry (0 in a registry: the master key).
    pub key_id: u32,
    /// The file's random salt.
    pub salt: [u8; SALT_LEN],
    /// The master key's id in a registry; empty in data files.
    pub label: String,
}

impl SegmentHeader {
    /// A header for a new file under data key `key_id`.
    pub(crate) fn new(key_id: u32, salt: [u8; SALT_LEN], label: String) -> Self {
        SegmentHeader { scheme: SCHEME_AES256_GCM, key_id, salt, label }
    }

    /// The encoded header.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let label = self.label.as_bytes();
        let label = label.get(..label.len().min(MAX_LABEL_LEN)).unwrap_or_default();
        let mut v = Vec::with_capacity(8 + 1 + 4 + SALT_LEN + 1 + label.len());
        v.extend_from_slice(SEGMENT_MAGIC);
        v.push(self.scheme);
        v.extend_from_slice(&self.key_id.to_le_bytes());
        v.extend_from_slice(&self.salt);
        v.push(label.len() as u8);
        v.extend_from_slice(label);
        v
    }

    /// Decodes a header; the error says what is wrong.
    pub(crate) fn decode(b: &[u8]) -> Result<SegmentHeader, String> {
        let mut r = crate::util::coding::Reader::new(b);
        let magic = r.bytes(8).ok_or("segment header truncated")?;
        if magic != SEGMENT_MAGIC {
            return Err("segment header has a bad magic".into());
        }
        let scheme = r.u8().ok_or("segment header truncated")?;
        if scheme != SCHEME_AES256_GCM {
            return Err(format!("unknown encryption scheme {scheme}"));
        }
        let key_id = r.u32().ok_or("segment header truncated")?;
        let salt: [u8; SALT_LEN] =
            r.bytes(SALT_LEN).and_then(|s| s.try_into().ok()).ok_or("segment header truncated")?;
        let label_len = r.u8().ok_or("segment header truncated")?;
        let label = r.bytes(usize::from(label_len)).ok_or("segment header truncated")?;
        let label = String::from_utf8(label.to_vec()).map_err(|_| "segment header label is not UTF-8")?;
        if !r.is_empty() {
            return Err("segment header has trailing bytes".into());
        }
        Ok(SegmentHeader { scheme, key_id, salt, label })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_refusals() {
        let h = SegmentHeader::new(7, [3; SALT_LEN], "keyfile:abcd".into());
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b).unwrap(), h);
        for len in 0..b.len() {
            assert!(SegmentHeader::decode(&b[..len]).is_err(), "truncated to {len}");
        }
        let mut bad = b.clone();
        bad[0] ^= 1;
        assert!(SegmentHeader::decode(&bad).is_err());
        let mut bad = b.clone();
        bad[8] = 9;
        assert!(SegmentHeader::decode(&bad).unwrap_err().contains("scheme 9"));
        let mut long = b;
        long.push(0);
        assert!(SegmentHeader::decode(&long).is_err());
    }
}
