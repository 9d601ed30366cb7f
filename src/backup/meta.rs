//! The per-backup metadata file `meta/<id>`: what one backup holds, every file's size and
//! XXH64, and a checksum of the metadata itself (format in `docs/sync.md`, "Backups").
//!
//! ```text
//! meta      := "kho-backup 1\n"
//!              "id " u64 "\n" "sequence " u64 "\n" "time " u64 "\n" "new_bytes " u64 "\n"
//!              file* "checksum " hex16 "\n"
//! file      := "file " name " " stored " " size " " hex16 "\n"
//! ```
//! `name` is the file's name in a restored database, `stored` its path under the backup
//! folder: `shared/<number>_<size>_<xxh64>.sst` for a table (then `name` is `<number>.sst`
//! and the stored name agrees with the number, size and checksum), `private/<id>/<name>`
//! for everything else. The checksum is the XXH64 of every byte before its line.
//!
//! Invariants: [`decode`] accepts exactly what [`encode`] produces for some [`BackupInfo`]
//! (no two files of one name, stored paths inside the folder); any other input is
//! [`Error::Corruption`] naming the file and the byte offset of the line, never a panic.

use std::path::Path;

use crate::filename::{parse_file_name, FileKind};
use crate::util::hash::xxh64;
use crate::{Error, Result};

/// First line of every metadata file: the format and its version.
const MAGIC: &str = "kho-backup 1";

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFile {
    /// The file's name in a restored database (`000012.sst`, `MANIFEST-000015`, `KEYRING`).
    pub name: String,
    /// Where it is kept, relative to the backup folder (`shared/...` or `private/<id>/...`).
    pub stored: String,
    /// Its length in bytes.
    pub size: u64,
    /// XXH64 (seed 0) of its contents.
    pub checksum: u64,
}

impl BackupFile {
    /// True for a table kept in `shared/` (possibly by other backups too).
    pub fn is_shared(&self) -> bool {
        self.stored.starts_with("shared/")
    }
}

/// What one backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    /// The backup's id (increasing; never reused while a higher one exists).
    pub id: u64,
    /// The sequence number the backup holds every write up to.
    pub sequence: u64,
    /// When the backup was taken, in seconds since the Unix epoch.
    pub time: u64,
    /// Bytes this backup added to the folder when it was taken (tables not shared with an
    /// earlier backup, and its private files).
    pub new_bytes: u64,
    /// Every file, tables first.
    pub files: Vec<BackupFile>,
}

impl BackupInfo {
    /// Total size of the backup's files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// The stored name of a shared table.
pub(crate) fn shared_name(number: u64, size: u64, checksum: u64) -> String {
    format!("{number:06}_{size}_{checksum:016x}.sst")
}

/// Encodes `info` as a metadata file.
pub(crate) fn encode(info: &BackupInfo) -> String {
    let mut s = format!(
        "{MAGIC}\nid {}\nsequence {}\ntime {}\nnew_bytes {}\n",
        info.id, info.sequence, info.time, info.new_bytes
    );
    for f in &info.files {
        s.push_str(&format!("file {} {} {} {:016x}\n", f.name, f.stored, f.size, f.checksum));
    }
    let sum = xxh64(s.as_bytes());
    s.push_str(&format!("checksum {sum:016x}\n"));
    s
}

/// Decodes the metadata file at `path` (for messages) holding `data`.
pub(crate) fn decode(path: &Path, data: &[u8]) -> Result<BackupInfo> {
    let bad = |offset: usize, what: String| Error::corruption(path, offset as u64, what);
    let text = std::str::from_utf8(data).map_err(|e| bad(e.valid_up_to(), "not UTF-8 text".into()))?;
    if !text.ends_with('\n') {
        return Err(bad(text.len(), "truncated: no final newline".into()));
    }
    // The checksum line is the last one; it covers every byte before it.
    let body_len = text[..text.len() - 1].rfind('\n').map_or(0, |i| i + 1);
    let (body, last) = text.split_at(body_len);
    let stored = last
        .strip_prefix("checksum ")
        .and_then(|h| parse_hex16(h.trim_end_matches('\n')))
        .ok_or_else(|| bad(body_len, format!("expected the line `checksum <16 hex digits>`, found {last:?}")))?;
    let actual = xxh64(body.as_bytes());
    if actual != stored {
        return Err(bad(
            body_len,
            format!("checksum mismatch: recorded {stored:016x}, contents hash to {actual:016x}"),
        ));
    }

    let mut lines = Lines { text: body, at: 0 };
    let (at, first) = lines.next_line();
    if first != MAGIC {
        return Err(bad(at, format!("expected {MAGIC:?}, found {first:?}")));
    }
    let mut field = |key: &str| -> Result<u64> {
        let (at, line) = lines.next_line();
        line.strip_prefix(key)
            .and_then(|v| v.strip_prefix(' '))
            .and_then(parse_u64)
            .ok_or_else(|| bad(at, format!("expected `{key} <number>`, found {line:?}")))
    };
    let id = field("id")?;
    let sequence = field("sequence")?;
    let time = field("time")?;
    let new_bytes = field("new_bytes")?;
    let mut files: Vec<BackupFile> = Vec::new();
    loop {
        let (at, line) = lines.next_line();
        if line.is_empty() && lines.at >= body.len() {
            break;
        }
        let file = decode_file(id, line).map_err(|what| bad(at, what))?;
        if files.iter().any(|f| f.name == file.name) {
            return Err(bad(at, format!("file {} is listed twice", file.name)));
        }
        files.push(file);
    }
    Ok(BackupInfo { id, sequence, time, new_bytes, files })
}

/// Decodes one `file` line of backup `id`; the error says what is wrong.
fn decode_file(id: u64, line: &str) -> std::result::Result<BackupFile, String> {
    let parts: Vec<&str> = line.split(' ').collect();
    let [tag, name, stored, size, sum] = parts[..] else {
        return Err(format!("expected `file <name> <stored> <size> <checksum>`, found {line:?}"));
    };
    let (Some(size), Some(checksum)) = (parse_u64(size), parse_hex16(sum)) else {
        return Err(format!("bad size or checksum in {line:?}"));
    };
    if tag != "file" {
        return Err(format!("expected a `file` line, found {line:?}"));
    }
    let kind = parse_file_name(name).filter(|k| !matches!(k, FileKind::Lock | FileKind::Temp));
    let Some(kind) = kind else {
        return Err(format!("{name:?} is not the name of a database file"));
    };
    let expected = match kind {
        FileKind::Table(n) => format!("shared/{}", shared_name(n, size, checksum)),
        _ => format!("private/{id}/{name}"),
    };
    if stored != expected {
        return Err(format!("file {name} is stored as {stored:?}, expected {expected:?}"));
    }
    Ok(BackupFile { name: name.to_owned(), stored: stored.to_owned(), size, checksum })
}

/// Walks the lines of a text, remembering each one's byte offset.
struct Lines<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Lines<'a> {
    /// The next line's offset and contents without its newline (`""` at the end).
    fn next_line(&mut self) -> (usize, &'a str) {
        let start = self.at;
        let rest = &self.text[start.min(self.text.len())..];
        let line = rest.split('\n').next().unwrap_or("");
        self.at = start + line.len() + 1;
        (start, line)
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn parse_hex16(s: &str) -> Option<u64> {
    (s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| u64::from_str_radix(s, 16).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> BackupInfo {
        let t = BackupFile {
            name: "000012.sst".into(),
            stored: format!("shared/{}", shared_name(12, 3000, 0xabc)),
            size: 3000,
            checksum: 0xabc,
        };
        let m = BackupFile {
            name: "MANIFEST-000015".into(),
            stored: "private/3/MANIFEST-000015".into(),
            size: 90,
            checksum: 7,
        };
        BackupInfo { id: 3, sequence: 40, time: 1_700_000_000, new_bytes: 90, files: vec![t, m] }
    }

    #[test]
    fn round_trips() {
        let info = sample();
        let text = encode(&info);
        assert_eq!(decode(Path::new("m"), text.as_bytes()).unwrap(), info);
    }

    #[test]
    fn every_damage_is_corruption_never_a_panic() {
        let text = encode(&sample()).into_bytes();
        for i in 0..text.len() {
            for flip in [1u8, 0x20, 0x80] {
                let mut bad = text.clone();
                bad[i] ^= flip;
                assert!(matches!(decode(Path::new("m"), &bad), Err(Error::Corruption { .. })), "byte {i} ^ {flip:#x}");
            }
            assert!(matches!(decode(Path::new("m"), &text[..i]), Err(Error::Corruption { .. })), "cut at {i}");
        }
    }

    #[test]
    fn a_consistent_but_wrong_file_line_is_refused() {
        let mut info = sample();
        info.files[1].stored = "private/3/../../etc/passwd".into();
        assert!(matches!(decode(Path::new("m"), encode(&info).as_bytes()), Err(Error::Corruption { .. })));
        let mut info = sample();
        info.files[0].stored = format!("shared/{}", shared_name(13, 3000, 0xabc));
        assert!(matches!(decode(Path::new("m"), encode(&info).as_bytes()), Err(Error::Corruption { .. })));
        let mut info = sample();
        info.files.push(info.files[0].clone());
        assert!(matches!(decode(Path::new("m"), encode(&info).as_bytes()), Err(Error::Corruption { .. })));
    }
}
