//! [`redact`]: how a key, an ID or any bytes that may hold personal data appear in an error
//! message or a `Debug` string — never whole.
//!
//! Keys of a person-centric store embed national IDs, and record keys are chosen by the
//! application; an error or a log line must not spell them out. A redacted form keeps just
//! enough to tell two values apart while debugging: the first 4 and the last 2 bytes of
//! anything longer than 8 bytes (escaped), stars for the rest, and the length.
//!
//! Invariant: at most 6 bytes of the input appear in the output, and none of an input of 8
//! bytes or fewer.

/// The redacted form of `bytes`, e.g. `"0791******34"` for a national ID, `"****"` for a short
/// key, `"user**********01" (16 bytes)` past 12 bytes.
pub fn redact(bytes: &[u8]) -> String {
    let n = bytes.len();
    let shown = |b: &[u8]| b.escape_ascii().to_string();
    let body = if n <= 8 {
        "*".repeat(n)
    } else {
        format!("{}{}{}", shown(&bytes[..4]), "*".repeat((n - 6).min(24)), shown(&bytes[n - 2..]))
    };
    if n > 12 {
        format!("\"{body}\" ({n} bytes)")
    } else {
        format!("\"{body}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_at_most_six_bytes() {
        assert_eq!(redact(b"079203001234"), "\"0792******34\"");
        assert_eq!(redact(b"abc"), "\"***\"");
        assert_eq!(redact(b"12345678"), "\"********\"");
        assert_eq!(redact(b""), "\"\"");
        let long = redact(&[b'x'; 100]);
        assert!(long.ends_with("(100 bytes)") && long.matches('x').count() == 6, "{long}");
        assert_eq!(redact(b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09"), "\"\\x00\\x01\\x02\\x03****\\x08\\t\"");
    }
}
