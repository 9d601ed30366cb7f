//! Names of the files in a database directory, and the `CURRENT` pointer's format.
//!
//! ```text
//! NNNNNN.log        write-ahead log (NNNNNN = file number, at least 6 digits)
//! NNNNNN.sst        SSTable
//! MANIFEST-NNNNNN   manifest log of version edits
//! CURRENT           names the live manifest: "MANIFEST-NNNNNN\n" then "crc32 XXXXXXXX\n"
//! LOCK              advisory lock held by the one writer process
//! KEYS-NNNNNN       key registry of an encrypted database (its own counter)
//! KEYRING           names the live key registry, in `CURRENT`'s format
//! *.tmp             a file being written for an atomic rename; garbage after a crash
//! ```
//! All file numbers but the key registries' come from one counter, so a number names exactly
//! one log, table or manifest.

use std::path::{Path, PathBuf};

use crate::util::checksum::crc32;
use crate::{Error, Result};

/// The kinds of files kho keeps in a database directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A write-ahead log with its number.
    Log(u64),
    /// An SSTable with its number.
    Table(u64),
    /// A manifest with its number.
    Manifest(u64),
    /// The `CURRENT` pointer.
    Current,
    /// The lock file.
    Lock,
    /// A temporary file.
    Temp,
    /// A key registry with its number.
    Keys(u64),
    /// The `KEYRING` pointer.
    Keyring,
}

/// Name of the lock file.
pub const LOCK: &str = "LOCK";
/// Name of the pointer to the live manifest.
pub const CURRENT: &str = "CURRENT";
/// Name of the pointer to the live key registry.
pub const KEYRING: &str = "KEYRING";

/// Name of key registry `n`.
pub fn keys_name(n: u64) -> String {
    format!("KEYS-{n:06}")
}

/// Path of log `n` in `dir`.
pub fn log_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:06}.log"))
}

/// Path of SSTable `n` in `dir`.
pub fn table_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:06}.sst"))
}

/// Name of manifest `n`.
pub fn manifest_name(n: u64) -> String {
    format!("MANIFEST-{n:06}")
}

/// Classifies a file name; `None` for names kho does not own.
pub fn parse_file_name(name: &str) -> Option<FileKind> {
    let num = |s: &str| (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten();
    if name == CURRENT {
        Some(FileKind::Current)
    } else if name == LOCK {
        Some(FileKind::Lock)
    } else if name == KEYRING {
        Some(FileKind::Keyring)
    } else if name.ends_with(".tmp") {
        Some(FileKind::Temp)
    } else if let Some(n) = name.strip_prefix("MANIFEST-") {
        num(n).map(FileKind::Manifest)
    } else if let Some(n) = name.strip_prefix("KEYS-") {
        num(n).map(FileKind::Keys)
    } else if let Some(n) = name.strip_suffix(".log") {
        num(n).map(FileKind::Log)
    } else if let Some(n) = name.strip_suffix(".sst") {
        num(n).map(FileKind::Table)
    } else {
        None
    }
}

/// The content of `CURRENT` pointing at manifest `n`.
pub(crate) fn encode_current(n: u64) -> String {
    encode_pointer(&manifest_name(n))
}

/// The content of a pointer file (`CURRENT`, `KEYRING`) naming file `name`:
/// `name\n` then `crc32 XXXXXXXX\n` over the first line.
pub(crate) fn encode_pointer(name: &str) -> String {
    let line = format!("{name}\n");
    let crc = crc32(line.as_bytes());
    format!("{line}crc32 {crc:08x}\n")
}

/// Parses a pointer file at `path`; returns the kind of the file it names.
pub(crate) fn decode_pointer(path: &Path, data: &[u8]) -> Result<FileKind> {
    let bad = |offset: u64, what: &str| Error::corruption(path, offset, what);
    let text = std::str::from_utf8(data).map_err(|e| bad(e.valid_up_to() as u64, "pointer file is not UTF-8"))?;
    let nl = text.find('\n').ok_or_else(|| bad(0, "pointer file has no newline"))?;
    let (line, rest) = text.split_at(nl + 1);
    let expected = format!("crc32 {:08x}\n", crc32(line.as_bytes()));
    if rest != expected {
        return Err(bad(line.len() as u64, "pointer file checksum line missing or wrong"));
    }
    parse_file_name(line.trim_end_matches('\n')).ok_or_else(|| bad(0, "pointer file names no file kho owns"))
}

/// Parses `CURRENT`; returns the manifest number it names.
pub fn decode_current(path: &Path, data: &[u8]) -> Result<u64> {
    match decode_pointer(path, data)? {
        FileKind::Manifest(n) => Ok(n),
        _ => Err(Error::corruption(path, 0, "CURRENT does not name a manifest")),
    }
}

/// Parses `KEYRING`; returns the number of the key registry (`KEYS-NNNNNN`) it names.
pub fn decode_keyring(path: &Path, data: &[u8]) -> Result<u64> {
    match decode_pointer(path, data)? {
        FileKind::Keys(n) => Ok(n),
        _ => Err(Error::corruption(path, 0, format!("{KEYRING} does not name a key registry"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip() {
        let d = Path::new("/db");
        assert_eq!(parse_file_name(log_path(d, 7).file_name().unwrap().to_str().unwrap()), Some(FileKind::Log(7)));
        assert_eq!(parse_file_name("1234567.sst"), Some(FileKind::Table(1_234_567)));
        assert_eq!(parse_file_name(&manifest_name(3)), Some(FileKind::Manifest(3)));
        assert_eq!(parse_file_name("CURRENT.tmp"), Some(FileKind::Temp));
        assert_eq!(parse_file_name("x.sst"), None);
        assert_eq!(parse_file_name(".log"), None);
        assert_eq!(parse_file_name("notes.txt"), None);
    }

    #[test]
    fn current_detects_every_flipped_byte() {
        let good = encode_current(42);
        assert_eq!(decode_current(Path::new("CURRENT"), good.as_bytes()).unwrap(), 42);
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.clone().into_bytes();
                b[i] ^= 1 << bit;
                assert!(decode_current(Path::new("CURRENT"), &b).is_err(), "flip {i}/{bit}");
            }
        }
        assert!(decode_current(Path::new("CURRENT"), b"").is_err());
        let keyring = encode_pointer(&keys_name(3));
        assert_eq!(decode_keyring(Path::new("KEYRING"), keyring.as_bytes()).unwrap(), 3);
        assert!(decode_keyring(Path::new("KEYRING"), good.as_bytes()).is_err(), "names a manifest");
        assert!(decode_current(Path::new("CURRENT"), keyring.as_bytes()).is_err(), "names a registry");
    }
}
