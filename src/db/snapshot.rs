//! [`Snapshot`]: a consistent read-only view of the database at one sequence number.
//!
//! Live snapshots are registered in a [`SnapshotList`] so that compaction keeps every
//! version a snapshot can see (it may drop an older version only when no snapshot lies
//! between it and the newer one).

use std::collections::BTreeMap;
use std::ops::RangeBounds;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::read::{owned_bounds, prefix_bounds};
use super::{Db, DbInner};
use crate::iter::DbIterator;
use crate::key::SeqNo;
use crate::Result;

/// The sequence numbers of live snapshots, with multiplicity.
#[derive(Debug, Default)]
pub(crate) struct SnapshotList {
    seqs: Mutex<BTreeMap<SeqNo, usize>>,
}

impl SnapshotList {
    fn register(&self, seq: SeqNo) {
        *self.seqs.lock().entry(seq).or_default() += 1;
    }

    fn release(&self, seq: SeqNo) {
        let mut seqs = self.seqs.lock();
        if let Some(n) = seqs.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                seqs.remove(&seq);
            }
        }
    }

    /// Every live snapshot's sequence number, ascending and deduplicated.
    #[allow(dead_code, reason = "used by compaction to decide which versions to keep")]
    pub(crate) fn sequences(&self) -> Vec<SeqNo> {
        self.seqs.lock().keys().copied().collect()
    }
}

/// A frozen view of the database: reads through it ignore every later write. Dropping it
/// lets compaction reclaim the versions only it could see.
pub struct Snapshot {
    inner: Arc<DbInner>,
    seq: SeqNo,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("seq", &self.seq).finish()
    }
}

impl Db {
    /// Takes a snapshot of the current state.
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.inner().clone();
        // Register under the super-version lock so the sequence and the registration are
        // one step as far as compaction is concerned.
        let seq = {
            let _sv = inner.super_version.read();
            let seq = inner.visible_seq.load(std::sync::atomic::Ordering::Acquire);
            inner.snapshots.register(seq);
            seq
        };
        Snapshot { inner, seq }
    }
}

impl Snapshot {
    /// The sequence number this snapshot reads at.
    pub fn sequence(&self) -> SeqNo {
        self.seq
    }

    /// The value of `key` as of the snapshot.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let (sv, _) = self.inner.open_read_view()?;
        DbInner::get_at(&sv, key.as_ref(), self.seq)
    }

    /// An iterator over `range` as of the snapshot.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<DbIterator> {
        let (lower, upper) = owned_bounds(&range);
        self.iter_bounds(lower, upper)
    }

    /// An iterator over every key as of the snapshot.
    pub fn iter(&self) -> Result<DbIterator> {
        self.range::<&[u8], _>(..)
    }

    /// An iterator over the keys starting with `prefix` as of the snapshot.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Result<DbIterator> {
        let (lower, upper) = prefix_bounds(prefix.as_ref());
        self.iter_bounds(lower, upper)
    }

    fn iter_bounds(&self, lower: std::ops::Bound<Vec<u8>>, upper: std::ops::Bound<Vec<u8>>) -> Result<DbIterator> {
        let (sv, _) = self.inner.open_read_view()?;
        Ok(DbIterator::new(sv, self.seq, lower, upper))
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.inner.snapshots.release(self.seq);
    }
}
