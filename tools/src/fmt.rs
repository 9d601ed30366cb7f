//! Shared formatting: how keys and values are shown (escaped or hex) and read back from the
//! command line, internal keys, byte sizes.
//!
//! Escaping: printable ASCII other than `\` and `"` stands for itself, `\\` and `\"` for
//! those two, and every other byte is `\xNN`. [`parse_key`] reverses it, so a key copied
//! from `kho dump` output can be passed back to `kho get` or `--from`.

use anyhow::{bail, Context};
use kho::inspect::key::ParsedKey;
use kho::ValueKind;

/// How bytes are rendered: escaped text (the default) or lowercase hex (`--hex`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bytes {
    /// `\xNN` escapes for non-printable bytes.
    Escaped,
    /// Two lowercase hex digits per byte.
    Hex,
}

impl Bytes {
    /// `Hex` when `hex` is set.
    pub fn from_flag(hex: bool) -> Self {
        if hex {
            Bytes::Hex
        } else {
            Bytes::Escaped
        }
    }

    /// Renders `b` without quotes (the form used in JSON strings).
    pub fn show(self, b: &[u8]) -> String {
        match self {
            Bytes::Escaped => escape(b),
            Bytes::Hex => hex(b),
        }
    }

    /// Renders `b` for text output: escaped in double quotes, or bare hex.
    pub fn quoted(self, b: &[u8]) -> String {
        match self {
            Bytes::Escaped => format!("\"{}\"", escape(b)),
            Bytes::Hex => hex(b),
        }
    }

    /// Reads a key given on the command line in this form.
    pub fn parse(self, s: &str) -> anyhow::Result<Vec<u8>> {
        match self {
            Bytes::Escaped => parse_key(s),
            Bytes::Hex => parse_hex(s),
        }
    }
}

/// Escapes `b` (see the module docs).
pub fn escape(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(char::from(c)),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// Lowercase hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("{c:02x}")).collect()
}

/// Reverses [`escape`]; also accepts any other character as itself.
pub fn parse_key(s: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(c) = bytes.next() {
        if c != b'\\' {
            out.push(c);
            continue;
        }
        match bytes.next() {
            Some(b'\\') => out.push(b'\\'),
            Some(b'"') => out.push(b'"'),
            Some(b'x') => {
                let digits: Vec<u8> = bytes.by_ref().take(2).collect();
                let text = std::str::from_utf8(&digits).unwrap_or("");
                let v = u8::from_str_radix(text, 16)
                    .ok()
                    .filter(|_| text.len() == 2)
                    .with_context(|| format!("bad escape \\x{text} in {s:?}: want two hex digits"))?;
                out.push(v);
            }
            Some(other) => bail!("unknown escape \\{} in {s:?} (use \\\\, \\\" or \\xNN)", char::from(other)),
            None => bail!("{s:?} ends in a lone backslash"),
        }
    }
    Ok(out)
}

/// Reads hex digits (an even number of them).
pub fn parse_hex(s: &str) -> anyhow::Result<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        bail!("hex key {s:?} has an odd number of digits");
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2).and_then(|d| u8::from_str_radix(d, 16).ok()).with_context(|| format!("{s:?} is not hex"))
        })
        .collect()
}

/// `put` or `del`.
pub fn kind_name(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Put => "put",
        ValueKind::Delete => "del",
    }
}

/// An internal key as `"user key" @ seq kind`, or `<malformed: hex>` when it does not parse.
pub fn internal_key(b: Bytes, ikey: &[u8]) -> String {
    match ParsedKey::parse(ikey) {
        Some(p) => format!("{} @ {} {}", b.quoted(p.user_key), p.seq, kind_name(p.kind)),
        None => format!("<malformed internal key {}>", hex(ikey)),
    }
}

/// An internal key for JSON: `{"user_key", "seq", "kind"}`, or `{"malformed": hex}`.
pub fn internal_key_json(b: Bytes, ikey: &[u8]) -> serde_json::Value {
    match ParsedKey::parse(ikey) {
        Some(p) => serde_json::json!({
            "user_key": b.show(p.user_key),
            "seq": p.seq,
            "kind": kind_name(p.kind),
        }),
        None => serde_json::json!({ "malformed": hex(ikey) }),
    }
}

/// A byte count for people: `512 B`, `12.3 KiB`, `4.0 MiB`.
pub fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `n` and the noun, plural (`noun` + `s`) unless `n` is 1: `1 table`, `3 tables`.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else if let Some(stem) = noun.strip_suffix("ry") {
        format!("{n} {stem}ries")
    } else {
        format!("{n} {noun}s")
    }
}

/// `a / b` as a ratio with two decimals, `-` when `b` is zero.
pub fn ratio(a: u64, b: u64) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{:.2}", a as f64 / b as f64)
    }
}

/// `secs` since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC` (the civil-from-days algorithm
/// of Howard Hinnant's date library).
pub fn utc(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem / 60 % 60, rem % 60)
}

/// `ms` since the Unix epoch as `YYYY-MM-DD HH:MM:SS.mmm UTC`.
pub fn utc_ms(ms: u64) -> String {
    let s = utc(ms / 1000);
    format!("{}.{:03} UTC", s.trim_end_matches(" UTC"), ms % 1000)
}

/// The names of the files directly in `dir` whose bytes contain `needle`, sorted.
pub fn files_holding(dir: &std::path::Path, needle: &[u8]) -> anyhow::Result<Vec<String>> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = e?.path();
        if path.is_file() && std::fs::read(&path)?.windows(needle.len().max(1)).any(|w| w == needle) {
            hits.push(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        }
    }
    hits.sort();
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_roundtrips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let e = escape(&all);
        assert!(e.is_ascii());
        assert_eq!(parse_key(&e).unwrap(), all);
        assert_eq!(escape(b"Ha Noi \"x\" \\"), "Ha Noi \\\"x\\\" \\\\");
        assert_eq!(parse_hex(&hex(&all)).unwrap(), all);
    }

    #[test]
    fn bad_input_is_an_error() {
        for bad in ["\\x4", "\\xzz", "\\q", "ab\\"] {
            assert!(parse_key(bad).is_err(), "{bad}");
        }
        for bad in ["abc", "zz", "é0"] {
            assert!(parse_hex(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(2048), "2.0 KiB");
        assert_eq!(size(5 << 20), "5.0 MiB");
        assert_eq!(ratio(10, 4), "2.50");
        assert_eq!(ratio(1, 0), "-");
        assert_eq!(
            (count(1, "log"), count(0, "log"), count(2, "entry")),
            ("1 log".into(), "0 logs".into(), "2 entries".into())
        );
    }
}
