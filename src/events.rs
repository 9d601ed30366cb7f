//! [`EventListener`]: how an application hears about what the database does on its own —
//! data dropped at recovery, a background job failing — as RocksDB's `EventListener` and
//! SQLite's `sqlite3_log` let it. Callbacks carry file names, offsets and reasons, never a key
//! or a value.
//!
//! Callbacks run on kho's own threads (the opening thread for recovery events, a background
//! thread for background errors) while kho holds internal locks: they must return quickly and
//! must not call back into the [`crate::Db`].

use crate::wal::DroppedTail;
use crate::Error;

/// Receives database events; every method has an empty default, so an implementation
/// overrides only what it needs. Set it with [`crate::Options::event_listener`].
pub trait EventListener: Send + Sync {
    /// Recovery dropped a damaged tail of a log or of the manifest (see
    /// [`crate::RecoveryMode`] for when that happens). Called once per dropped region while
    /// the database opens; the same facts are in [`crate::Db::recovery_report`].
    fn on_recovery_dropped(&self, dropped: &DroppedTail) {
        let _ = dropped;
    }

    /// Recovery found a table no manifest edit names that may hold the only copy of data a
    /// dropped manifest edit described, and moved it to `lost/` in the database directory
    /// instead of deleting it.
    fn on_table_quarantined(&self, path: &std::path::Path) {
        let _ = path;
    }

    /// A background flush or compaction failed (or panicked). The database is now poisoned:
    /// writes fail, and [`crate::Db::close`] returns the same error. Reopen to recover.
    fn on_background_error(&self, error: &Error) {
        let _ = error;
    }
}
