//! The write-ahead log: an append-only file of checksummed, length-framed records.
//!
//! The same framing carries two kinds of payload: encoded [`crate::WriteBatch`]es in
//! `NNNNNN.log` files and encoded `VersionEdit`s in `MANIFEST-NNNNNN`. The byte layout is
//! specified in `docs/wal-format.md`; its constants live in [`format`].
//!
//! Invariants:
//! - A record is appended whole by one `append` call; a crash can only tear the records
//!   written since the last `sync`, which are at the end of the file.
//! - Readers never skip a damaged record silently: a damaged record followed by an intact
//!   one is [`crate::Error::Corruption`]; a damaged record with nothing intact after it is a
//!   *torn tail*, which the caller accepts or rejects according to its recovery mode.

pub(crate) mod format;
mod reader;
mod writer;

pub use format::HEADER_LEN;
pub(crate) use reader::read_settled;
pub use reader::{DroppedTail, LogReader, LogRecord, TailState};
pub(crate) use writer::LogWriter;

use std::path::Path;
use std::sync::Arc;

use crate::crypt::Keyring;

/// A writer for new log or manifest `number` in `file`: encrypted under the current data key
/// of `keys`, plaintext without.
pub(crate) fn new_log_writer(
    file: Box<dyn crate::vfs::WritableFile>,
    number: u64,
    keys: Option<&Keyring>,
) -> crate::Result<LogWriter> {
    match keys {
        Some(k) => k.log_writer(file, number),
        None => Ok(LogWriter::new(file)),
    }
}

/// A reader for the log or manifest at `path` of a database with `keys` (`None`: a
/// plaintext database, where an encrypted file is [`crate::Error::KeyNeeded`]). In an
/// encrypted database a plaintext file is accepted only if it predates encryption (its
/// number is below the registry's encrypted-from number).
pub(crate) fn open_log_reader(data: bytes::Bytes, path: &Path, keys: Option<&Arc<Keyring>>) -> LogReader {
    let number = match path.file_name().and_then(|n| n.to_str()).and_then(crate::filename::parse_file_name) {
        Some(crate::filename::FileKind::Log(n) | crate::filename::FileKind::Manifest(n)) => Some(n),
        _ => None,
    };
    let require = keys.is_some_and(|k| number.is_none_or(|n| k.requires_encryption(n)));
    LogReader::new(data, path)
        .with_cipher_source(keys.map(|k| Arc::clone(k) as Arc<dyn crate::crypt::CipherSource>))
        .require_encrypted(require)
}
