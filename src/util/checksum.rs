//! [`crc32`]: the checksum of every on-disk format — log and manifest records (header and
//! payload), table blocks and footers, and `CURRENT`.
//!
//! CRC-32/ISO-HDLC (the zlib/PNG polynomial), as `crc32fast` computes it, stored unmasked.
//!
//! Invariant: the output for given bytes never changes (files written before must still
//! read); the check value below pins it.

/// The CRC-32 of `bytes`.
#[inline]
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// The CRC-32 of the concatenation of `parts`, without copying them together.
#[inline]
pub(crate) fn crc32_of_parts(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value_and_parts() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32_of_parts(&[b"1234", b"", b"56789"]), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
