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

    /// Retention dropped changes after the subscription's acknowledged position (they passed
    /// the feed's age or size bound first): the subscriber must resync from the records
    /// (or a checkpoint), then unsubscribe and subscribe again.
    #[error("subscription {subscriber:?} has expired: retention dropped changes it had not acknowledged; resync and subscribe again")]
    CursorExpired {
        /// The subscription.
        subscriber: String,
    },

    /// No subscription has this name.
    #[error("no subscription named {name:?}")]
    UnknownSubscription {
        /// The name asked for.
        name: String,
    },

    /// [`Store::subscribe`](super::Store::subscribe) of a name already taken.
    #[error("a subscription named {name:?} already exists")]
    SubscriptionExists {
        /// The name.
        name: String,
    },

    /// Another cursor of this subscription is open (cursors are exclusive).
    #[error("subscription {name:?} is being read by another cursor")]
    CursorInUse {
        /// The subscription.
        name: String,
    },

    /// The access policy does not let this actor do this, for this purpose; nothing was
    /// returned or written, and the attempt is in the audit log.
    #[error("access denied: actor {actor:?} may not {action} {collections:?} for the purpose given")]
    AccessDenied {
        /// The actor refused.
        actor: String,
        /// What it tried (`get`, `person`, `scan`, `query`, `write`, `erase`, `policy`, `prune`).
        action: &'static str,
        /// The collections it tried to touch (empty: all).
        collections: Vec<String>,
    },

    /// The store requires an access context for every record access (auditing required, or
    /// an access policy set): use [`Store::as_actor`](super::Store::as_actor).
    #[error("this store requires an access context (actor and purpose) for every record access: use Store::as_actor")]
    AccessContextRequired,

    /// The store keeps an audit log and was opened for writing without the audit key.
    #[error("this store keeps an audit log: open it with the audit key (StoreOptions::audit)")]
    AuditKeyNeeded,

    /// The audit key given is not the one the store's audit log was started with.
    #[error("wrong audit key: its public key is not the one this store's audit log names")]
    AuditKeyMismatch,

    /// [`Store::purge_erased`](super::Store::purge_erased) could not remove everything:
    /// `snapshots` live snapshots older than the erasure still see the erased data, and the
    /// files of the deleted tables `tables` are still open (an iterator reads them). Drop
    /// them and purge again.
    #[error("purge incomplete: {snapshots} older snapshot(s) and deleted tables {tables:?} still hold erased data")]
    PurgeIncomplete {
        /// Live snapshots older than the erasure.
        snapshots: usize,
        /// Deleted tables whose files are still open.
        tables: Vec<u64>,
    },

    /// The store seals payloads under person keys and was opened without its vault
    /// (`StoreOptions::person_keys`).
    #[error("this store seals payloads under person keys: open it with its vault (StoreOptions::person_keys)")]
    PersonKeysNeeded,

    /// The vault given is not the one this store's payloads are sealed in.
    #[error("wrong person-key vault: this store was written with another one")]
    WrongVault,

    /// The store keeps no audit log (see `StoreOptions::audit`).
    #[error("the store keeps no audit log (StoreOptions::audit)")]
    AuditOff,

    /// [`Store::import`](super::Store::import) refused its input: `count` rows are invalid
    /// (the first [`MAX_LISTED_ROW_PROBLEMS`](super::MAX_LISTED_ROW_PROBLEMS) are listed, by
    /// row). Nothing was written.
    #[error("import refused, nothing written: {count} invalid row(s){}", first_problem(rows))]
    ImportRejected {
        /// The problems listed, by row.
        rows: Vec<super::RowProblem>,
        /// Every invalid row counted.
        count: u64,
    },

    /// The store records no change feed (see `FeedOptions::enable`).
    #[error("the store records no change feed (StoreOptions::feed.enable)")]
    FeedOff,
}

/// `"; first: row N: why"` for an import's refusal message.
fn first_problem(rows: &[super::RowProblem]) -> String {
    rows.first().map_or_else(String::new, |p| format!("; first: {p}"))
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
