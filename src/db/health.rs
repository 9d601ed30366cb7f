//! [`Health`]: the one state every entry point of a [`crate::Db`] consults — open, failed, or
//! closed — replacing separate "poisoned", "closed" and "background error" flags.
//!
//! - **Failed** (poisoned): a log write or fsync, a background flush or compaction, or a
//!   manifest write failed (or a job panicked). What reached the disk is unknown, so writes
//!   return [`Error::Poisoned`], background work stops, and `flush`, stalled writers and
//!   `close` get the first failure itself. Reads keep working. Reopening recovers.
//! - **Closed**: `close` ran (or the last handle dropped); every call returns
//!   [`Error::Closed`].
//!
//! Invariants: a database never becomes healthy again once failed (only a reopen does), the
//! first failure is the one kept, and closing is idempotent.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use crate::{Error, Result};

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Health {
    closed: AtomicBool,
    failed: AtomicBool,
    /// The first failure.
    cause: Mutex<Option<Error>>,
}

impl Health {
    /// [`Error::Closed`] once closed.
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// [`Error::Poisoned`] once failed.
    pub(crate) fn check_not_failed(&self) -> Result<()> {
        if self.failed.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        Ok(())
    }

    /// Marks the database failed by `cause` (kept only if it is the first failure).
    pub(crate) fn fail(&self, cause: &Error) {
        let mut first = self.cause.lock();
        if first.is_none() {
            *first = Some(cause.replicate());
        }
        self.failed.store(true, Ordering::Release);
    }

    /// True once failed.
    pub(crate) fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// A copy of the first failure, if the database failed.
    pub(crate) fn failure(&self) -> Option<Error> {
        if !self.is_failed() {
            return None;
        }
        self.cause.lock().as_ref().map(Error::replicate)
    }

    /// Marks the database closed; false if it already was.
    pub(crate) fn close(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_kept_and_closing_is_idempotent() {
        let h = Health::default();
        assert!(h.check_open().is_ok() && h.check_not_failed().is_ok() && h.failure().is_none());
        h.fail(&Error::Internal("first".into()));
        h.fail(&Error::Internal("second".into()));
        assert!(matches!(h.check_not_failed(), Err(Error::Poisoned)));
        assert!(matches!(h.failure(), Some(Error::Internal(m)) if m == "first"));
        assert!(h.check_open().is_ok(), "failed is not closed: reads go on");
        assert!(h.close());
        assert!(!h.close());
        assert!(matches!(h.check_open(), Err(Error::Closed)));
    }
}
