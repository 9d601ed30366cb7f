//! The crate's error type.
//!
//! Every fallible call returns [`Result`]. Decoders never panic on bad bytes: they return
//! [`Error::Corruption`] naming the file, the byte offset (when one is known) and what was
//! expected there. A broken internal contract (a cursor used while not valid, a writer given
//! keys out of order, a live version edit failing its checks) is a bug, [`Error::Internal`],
//! never corruption.

use std::path::PathBuf;

/// The result type of every fallible kho call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in kho.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error, with the operation and path that failed.
    #[error("I/O error during {op} on {}: {source}", path.display())]
    Io {
        /// What kho was doing (`"write"`, `"fsync"`, `"rename"`, ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Bytes on disk are not what a well-formed file holds at that place.
    #[error("corruption in {}{}: {what}", file.display(), at_offset(*offset))]
    Corruption {
        /// The damaged file (for damage found above the file level, such as a malformed
        /// record-layer key, the database directory).
        file: PathBuf,
        /// Byte offset within `file` of the damaged structure; `None` when it is not known
        /// (a record-layer key, a manifest that never records a counter).
        offset: Option<u64>,
        /// What was expected and what was found.
        what: String,
    },

    /// The caller passed something kho refuses (oversized key, empty key, bad option, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Another process (or another `Db` in this process) holds the database's lock file.
    #[error("database at {} is in use: {reason}", path.display())]
    Busy {
        /// The database directory.
        path: PathBuf,
        /// Why the lock could not be taken.
        reason: String,
    },

    /// An earlier write or fsync failed; the database refuses further writes because what
    /// reached the disk is unknown. Reopen the database to recover.
    #[error("database is poisoned by an earlier I/O failure; reopen to recover")]
    Poisoned,

    /// The database was closed.
    #[error("database is closed")]
    Closed,

    /// A write, flush or compaction on a database opened read-only (also through a record
    /// store opened read-only).
    #[error("database is open read-only")]
    ReadOnly,

    /// The database directory does not hold a database and `create_if_missing` is off,
    /// or it holds one and `error_if_exists` is on; or a read-only open finds nothing to
    /// open.
    #[error("{0}")]
    NotFound(String),

    /// The database (or a file of it) is encrypted and was opened without a key
    /// ([`crate::Options::encryption`]).
    #[error("database is encrypted: a key is needed to read {}", path.display())]
    KeyNeeded {
        /// The database directory or the encrypted file.
        path: PathBuf,
    },

    /// The master key given does not open the database's key registry.
    #[error("wrong key: {0}")]
    WrongKey(String),

    /// A bug in kho: an internal contract was broken (or a background job panicked). The
    /// database is poisoned; reopen it. Never caused by the bytes on disk.
    #[error("internal error (a bug in kho): {0}")]
    Internal(String),
}

impl Error {
    /// Builds an [`Error::Corruption`] at byte `offset` of `file`.
    pub(crate) fn corruption(file: impl Into<PathBuf>, offset: u64, what: impl Into<String>) -> Self {
        Error::Corruption { file: file.into(), offset: Some(offset), what: what.into() }
    }

    /// Builds an [`Error::Corruption`] in `file` whose offset is not known. Never pass a
    /// made-up offset (or path) instead.
    pub(crate) fn corruption_unknown_offset(file: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::Corruption { file: file.into(), offset: None, what: what.into() }
    }

    /// Builds an [`Error::Io`].
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    /// A copy of this error for another waiter of the same failed operation (e.g. every
    /// writer of a failed commit group). I/O sources are copied by kind and message.
    pub(crate) fn replicate(&self) -> Error {
        match self {
            Error::Io { op, path, source } => Error::Io {
                op,
                path: path.clone(),
                source: match source.raw_os_error() {
                    Some(code) => std::io::Error::from_raw_os_error(code),
                    None => std::io::Error::new(source.kind(), source.to_string()),
                },
            },
            Error::Corruption { file, offset, what } => {
                Error::Corruption { file: file.clone(), offset: *offset, what: what.clone() }
            }
            Error::InvalidArgument(m) => Error::InvalidArgument(m.clone()),
            Error::Busy { path, reason } => Error::Busy { path: path.clone(), reason: reason.clone() },
            Error::Poisoned => Error::Poisoned,
            Error::Closed => Error::Closed,
            Error::ReadOnly => Error::ReadOnly,
            Error::NotFound(m) => Error::NotFound(m.clone()),
            Error::Internal(m) => Error::Internal(m.clone()),
            Error::KeyNeeded { path } => Error::KeyNeeded { path: path.clone() },
            Error::WrongKey(m) => Error::WrongKey(m.clone()),
        }
    }

    /// True for [`Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }
}

/// The ` at offset N` of a corruption message, or ` (offset unknown)`.
fn at_offset(offset: Option<u64>) -> String {
    match offset {
        Some(o) => format!(" at offset {o}"),
        None => " (offset unknown)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corruption_names_the_offset_or_says_it_is_unknown() {
        let at = Error::corruption("/db/MANIFEST-000003", 42, "bad edit");
        assert_eq!(at.to_string(), "corruption in /db/MANIFEST-000003 at offset 42: bad edit");
        let unknown = Error::corruption_unknown_offset("/db", "malformed record-layer key");
        assert_eq!(unknown.to_string(), "corruption in /db (offset unknown): malformed record-layer key");
        assert!(matches!(unknown.replicate(), Error::Corruption { offset: None, .. }));
        assert!(matches!(at.replicate(), Error::Corruption { offset: Some(42), .. }));
    }
}
