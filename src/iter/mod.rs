//! Iteration over internal keys: the cursor contract shared by memtables, SSTables and the
//! merging iterator, and the user-facing [`DbIterator`](db_iter::DbIterator).
//!
//! ## The cursor contract ([`InternalIterator`])
//! - A cursor is either *valid* (positioned on an entry) or not. `key`/`value` may only be
//!   called while valid.
//! - Entries are ordered by [`crate::key::compare_internal`]: user key ascending, newest
//!   version first.
//! - `seek(t)` positions on the first entry `>= t`; `seek_for_prev(t)` on the last entry
//!   `<= t`; `seek_to_first`/`seek_to_last` on the ends. Each leaves the cursor invalid when
//!   no such entry exists.
//! - `next` from the last entry and `prev` from the first make the cursor invalid; neither
//!   may be called while invalid.
//! - An error from any movement leaves the cursor invalid; the error is the caller's to
//!   report (a decode failure is always `Error::Corruption`, at the file and block where it
//!   was found).
//! - Every key a cursor yields is an internal key: memtables build them, and a table's blocks
//!   refuse any other as corruption. A malformed key above that level is a bug.
//! - Breaking the contract (`key`, `value`, `next` or `prev` while not valid) is a bug in the
//!   caller: every cursor `debug_assert!`s it, and never reports it as corruption.

use bytes::Bytes;

use crate::Result;

/// A bidirectional cursor over encoded internal keys. See the module docs for the contract.
pub(crate) trait InternalIterator: Send {
    /// True when positioned on an entry.
    fn valid(&self) -> bool;
    /// Positions on the first entry.
    fn seek_to_first(&mut self) -> Result<()>;
    /// Positions on the last entry.
    fn seek_to_last(&mut self) -> Result<()>;
    /// Positions on the first entry whose internal key is `>= target`.
    fn seek(&mut self, target: &[u8]) -> Result<()>;
    /// Positions on the last entry whose internal key is `<= target`.
    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()>;
    /// Moves to the next entry. Requires `valid()`.
    fn next(&mut self) -> Result<()>;
    /// Moves to the previous entry. Requires `valid()`.
    fn prev(&mut self) -> Result<()>;
    /// The current encoded internal key. Requires `valid()`.
    fn key(&self) -> &[u8];
    /// The current value (a cheap reference-counted slice). Requires `valid()`.
    fn value(&self) -> Bytes;
}

/// What a [`DbIterator`](db_iter::DbIterator) reads: opens a cursor over every source of
/// one pinned state (memtables and tables, newest first) and, while held, keeps those
/// sources alive. The database's `SuperVersion` implements it, so iterators need not know
/// the database.
pub(crate) trait CursorSource: Send + Sync {
    /// Appends one cursor per source to `out`, newest source first.
    fn cursors(&self, out: &mut Vec<Box<dyn InternalIterator>>) -> Result<()>;
}

/// Test helper: a cursor over a sorted vector, the reference every implementation is
/// compared against.
#[cfg(test)]
pub(crate) mod vec_iter {
    use super::*;
    use crate::key::compare_internal;
    use std::cmp::Ordering;

    pub(crate) struct VecIter {
        items: Vec<(Vec<u8>, Bytes)>,
        pos: Option<usize>,
    }

    impl VecIter {
        /// `items` must be sorted by internal key.
        pub(crate) fn new(items: Vec<(Vec<u8>, Bytes)>) -> Self {
            VecIter { items, pos: None }
        }
    }

    impl InternalIterator for VecIter {
        fn valid(&self) -> bool {
            self.pos.is_some()
        }
        fn seek_to_first(&mut self) -> Result<()> {
            self.pos = if self.items.is_empty() { None } else { Some(0) };
            Ok(())
        }
        fn seek_to_last(&mut self) -> Result<()> {
            self.pos = self.items.len().checked_sub(1);
            Ok(())
        }
        fn seek(&mut self, t: &[u8]) -> Result<()> {
            let i = self.items.partition_point(|(k, _)| compare_internal(k, t) == Ordering::Less);
            self.pos = (i < self.items.len()).then_some(i);
            Ok(())
        }
        fn seek_for_prev(&mut self, t: &[u8]) -> Result<()> {
            let i = self.items.partition_point(|(k, _)| compare_internal(k, t) != Ordering::Greater);
            self.pos = i.checked_sub(1);
            Ok(())
        }
        fn next(&mut self) -> Result<()> {
            self.pos = self.pos.map(|p| p + 1).filter(|&p| p < self.items.len());
            Ok(())
        }
        fn prev(&mut self) -> Result<()> {
            self.pos = self.pos.and_then(|p| p.checked_sub(1));
            Ok(())
        }
        fn key(&self) -> &[u8] {
            &self.items[self.pos.unwrap_or(0)].0
        }
        fn value(&self) -> Bytes {
            self.items[self.pos.unwrap_or(0)].1.clone()
        }
    }
}

mod db_iter;
mod level;
mod merge;

pub use db_iter::DbIterator;
pub(crate) use level::LevelIter;
pub(crate) use merge::MergingIter;
