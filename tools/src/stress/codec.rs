//! Keys and values of the stress workload.
//!
//! Key `i` of the key space is `k` followed by `i` as eight decimal digits, so keys sort by
//! index and a prefix of a key names a run of consecutive indices.
//!
//! A value encodes which write produced it: `"ks" | key index: u32 LE | version: u32 LE |
//! filler`, where the filler's length and bytes are a function of (key, version). A read
//! can therefore be checked completely: the value must re-encode to exactly the same bytes,
//! so a value from another key, a torn value or a value of a write never issued (a version
//! above what the oracle handed out) is caught.

use super::rng::{derive, Rng};

const MAGIC: &[u8; 2] = b"ks";
const HEADER: usize = 10;
/// Digits of the key index; the key space is bounded by it.
const KEY_DIGITS: usize = 8;
/// Largest key space the encoding supports.
pub const MAX_KEYS: u32 = 100_000_000;

/// The key of index `i`.
pub fn key(i: u32) -> Vec<u8> {
    format!("k{i:0width$}", width = KEY_DIGITS).into_bytes()
}

/// The index of a stress key, or `None` if `k` is not one.
pub fn parse_key(k: &[u8]) -> Option<u32> {
    let digits = k.strip_prefix(b"k")?;
    if digits.len() != KEY_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The common prefix of the keys `i` with the last `drop` digits varying.
pub fn key_prefix(i: u32, drop: usize) -> Vec<u8> {
    let mut k = key(i);
    k.truncate(k.len() - drop.min(KEY_DIGITS));
    k
}

/// The value written by version `version` of key `i`; `max_filler` bounds its size.
pub fn value(i: u32, version: u32, max_filler: usize) -> Vec<u8> {
    let mut rng = Rng::new(derive(u64::from(i), &[u64::from(version)]));
    let len = rng.below(max_filler as u64 + 1) as usize;
    let mut v = Vec::with_capacity(HEADER + len);
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&i.to_le_bytes());
    v.extend_from_slice(&version.to_le_bytes());
    while v.len() < HEADER + len {
        let word = rng.next_u64().to_le_bytes();
        let take = (HEADER + len - v.len()).min(8);
        v.extend_from_slice(&word[..take]);
    }
    v
}

/// The version that wrote `bytes` as the value of key `i`, or why `bytes` cannot be a value
/// the workload wrote there.
pub fn decode_value(i: u32, bytes: &[u8], max_filler: usize) -> Result<u32, String> {
    if bytes.len() < HEADER || &bytes[..2] != MAGIC {
        return Err(format!("not a stress value ({} bytes: {})", bytes.len(), hex_prefix(bytes)));
    }
    let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let (owner, version) = (word(2), word(6));
    if owner != i {
        return Err(format!("value belongs to key {owner} (version {version}), not to key {i}"));
    }
    let expected = value(i, version, max_filler);
    if expected != bytes {
        let at = expected.iter().zip(bytes).position(|(a, b)| a != b).unwrap_or(expected.len().min(bytes.len()));
        return Err(format!(
            "value of version {version} is damaged: {} bytes, expected {}; first difference at byte {at}",
            bytes.len(),
            expected.len()
        ));
    }
    Ok(version)
}

fn hex_prefix(b: &[u8]) -> String {
    b.iter().take(16).map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_by_index() {
        assert_eq!(key(42), b"k00000042");
        assert_eq!(parse_key(&key(99_999_999)), Some(99_999_999));
        assert_eq!(parse_key(b"k0000004"), None);
        assert_eq!(parse_key(b"x00000042"), None);
        assert!(key(9) < key(10));
        assert_eq!(key_prefix(1234, 2), b"k000012");
    }

    #[test]
    fn values_verify_only_for_their_key_and_version() {
        let v = value(7, 3, 100);
        assert_eq!(decode_value(7, &v, 100), Ok(3));
        assert!(decode_value(8, &v, 100).unwrap_err().contains("belongs to key 7"));
        let mut torn = v.clone();
        torn.pop();
        assert!(decode_value(7, &torn, 100).is_err() || v.len() == HEADER);
        let mut flipped = v.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(v.len() == HEADER || decode_value(7, &flipped, 100).is_err());
        assert!(decode_value(7, b"junk", 100).is_err());
        assert_eq!(value(7, 3, 100), v, "deterministic");
    }
}
