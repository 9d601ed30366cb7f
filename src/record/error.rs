//! [`Error`]: what can go wrong in the record layer — an engine error below it, or a
//! record-level refusal (an invalid national ID, a payload that does not (de)serialize, an
//! insert over an existing record). The engine's [`crate::Error`] knows nothing of records.

use super::national_id::InvalidIdReason;

/// The result type of every fallible record-layer call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in [`crate::record`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error of the engine below: I/O, corruption, a closed or read-only database, an
    /// invalid argument (a size limit, a bad option), ...
    #[error(transparent)]
    Engine(#[from] crate::Error),

    /// A string is not a valid 12-digit national ID; `reason` says which rule it breaks.
    #[error("invalid national ID {input}: {reason}")]
    InvalidNationalId {
        /// The rejected input, redacted (`crate::util::redact`: at most its first 4 and last
        /// 2 characters).
        input: String,
        /// The rule it breaks.
        reason: InvalidIdReason,
    },

    /// A record payload could not be encoded, or a stored payload could not be decoded as
    /// the type asked for.
    #[error("record payload: {0}")]
    Payload(String),

    /// [`Store::insert`](super::Store::insert) of a primary key that already holds a record.
    #[error("collection {collection:?} already holds a record with primary key {pk}")]
    RecordExists {
        /// The collection.
        collection: String,
        /// The primary key, redacted (`crate::util::redact`).
        pk: String,
    },
}

impl Error {
    /// The engine's [`crate::Error::InvalidArgument`], for record-level argument checks
    /// (collection names, primary keys, batch sizes).
    pub(crate) fn invalid(what: impl Into<String>) -> Self {
        Error::Engine(crate::Error::InvalidArgument(what.into()))
    }

    /// The engine's [`crate::Error::Corruption`] where no byte offset is known.
    pub(crate) fn corruption_unknown_offset(file: impl Into<std::path::PathBuf>, what: impl Into<String>) -> Self {
        Error::Engine(crate::Error::corruption_unknown_offset(file, what))
    }

    /// True for an engine [`crate::Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Engine(e) if e.is_corruption())
    }

    /// The engine error, if this is one.
    pub fn engine(&self) -> Option<&crate::Error> {
        match self {
            Error::Engine(e) => Some(e),
            _ => None,
        }
    }
}
