//! [`DbIterator`]: the user-facing iterator over a key range at one sequence-number
//! snapshot, in both directions.
//!
//! It resolves versions: for each user key it yields the newest entry with sequence `<=`
//! the snapshot, and skips the key if that entry is a tombstone. The front and the back are
//! two independent merging cursors over the same pinned memtables and tables; they stop when
//! they meet, so `next` and `next_back` can be mixed freely (`DoubleEndedIterator`).

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use super::{CursorSource, InternalIterator, MergingIter};
use crate::key::{internal_key, ParsedKey, SeqNo, ValueKind, MAX_SEQUENCE};
use crate::{Error, Result};

/// An iterator over `(key, value)` pairs of a range, ascending from the front and
/// descending from the back. Yields `Err` (and then ends) if a file turns out damaged.
pub struct DbIterator {
    /// The pinned state: cursors are opened from it, and it keeps their files alive.
    source: Arc<dyn CursorSource>,
    seq: SeqNo,
    /// The range the iterator was created with.
    range_lower: Bound<Vec<u8>>,
    /// Where iteration starts: `range_lower`, or the last `seek` target if that is higher.
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    front: Option<MergingIter>,
    /// False until `front` is positioned at `lower` (again, after a `seek`).
    front_positioned: bool,
    back: Option<MergingIter>,
    /// Last user key yielded (or resolved) at each end; the ends never pass each other.
    front_key: Option<Vec<u8>>,
    back_key: Option<Vec<u8>>,
    done: bool,
}

impl std::fmt::Debug for DbIterator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbIterator").field("seq", &self.seq).field("done", &self.done).finish_non_exhaustive()
    }
}

impl DbIterator {
    /// An iterator over `source` as of sequence `seq`. The caller guarantees `source` holds
    /// every version visible at `seq` (it was taken no earlier than `seq` was published).
    pub(crate) fn new(source: Arc<dyn CursorSource>, seq: SeqNo, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>) -> Self {
        DbIterator {
            source,
            seq,
            range_lower: lower.clone(),
            lower,
            upper,
            front: None,
            front_positioned: false,
            back: None,
            front_key: None,
            back_key: None,
            done: false,
        }
    }

    /// Restarts the iterator at the first key `>= key` within the range it was created with
    /// (forwards or backwards from where it was); both ends start over, and the back end now
    /// stops at `key` too.
    pub fn seek(&mut self, key: impl AsRef<[u8]>) {
        let key = key.as_ref();
        self.lower =
            if within_lower(&self.range_lower, key) { Bound::Included(key.to_vec()) } else { self.range_lower.clone() };
        // The front cursors are kept and re-seeked (building them is most of a seek's cost);
        // the back ones are rebuilt if the back end is used again.
        self.front_positioned = false;
        self.back = None;
        self.front_key = None;
        self.back_key = None;
        self.done = false;
    }

    fn merging(&self) -> Result<MergingIter> {
        let mut children = Vec::new();
        self.source.cursors(&mut children)?;
        Ok(MergingIter::new(children))
    }

    fn step_front(&mut self) -> Result<Option<(Bytes, Bytes)>> {
        if self.front.is_none() {
            self.front = Some(self.merging()?);
            self.front_positioned = false;
        }
        let Some(it) = self.front.as_mut() else {
            return Ok(None);
        };
        if !self.front_positioned {
            match &self.lower {
                Bound::Unbounded => it.seek_to_first()?,
                Bound::Included(k) | Bound::Excluded(k) => it.seek(&internal_key(k, MAX_SEQUENCE, ValueKind::MAX))?,
            }
            self.front_positioned = true;
        }
        while it.valid() {
            let p = parse(it.key())?;
            if p.seq > self.seq || self.front_key.as_deref() == Some(p.user_key) {
                it.next()?;
                continue;
            }
            if !within_upper(&self.upper, p.user_key) || self.back_key.as_deref().is_some_and(|b| p.user_key >= b) {
                return Ok(None);
            }
            // This entry resolves its user key: older versions are skipped from now on.
            let front_key = self.front_key.get_or_insert_with(Vec::new);
            front_key.clear();
            front_key.extend_from_slice(p.user_key);
            if p.kind == ValueKind::Put && within_lower(&self.lower, p.user_key) {
                let item = (Bytes::copy_from_slice(p.user_key), it.value());
                it.next()?;
                return Ok(Some(item));
            }
            it.next()?;
        }
        Ok(None)
    }

    fn step_back(&mut self) -> Result<Option<(Bytes, Bytes)>> {
        if self.back.is_none() {
            let mut it = self.merging()?;
            match &self.upper {
                Bound::Unbounded => it.seek_to_last()?,
                Bound::Included(k) => it.seek_for_prev(&internal_key(k, 0, ValueKind::Delete))?,
                Bound::Excluded(k) => it.seek_for_prev(&internal_key(k, MAX_SEQUENCE, ValueKind::MAX))?,
            }
            self.back = Some(it);
        }
        let seq = self.seq;
        loop {
            let Some(it) = self.back.as_mut() else {
                return Ok(None);
            };
            if !it.valid() {
                return Ok(None);
            }
            let ukey = parse(it.key())?.user_key.to_vec();
            if !within_lower(&self.lower, &ukey) || self.front_key.as_deref().is_some_and(|f| ukey.as_slice() <= f) {
                return Ok(None);
            }
            // Entries of one user key arrive oldest first; keep the newest visible one.
            let mut newest: Option<(ValueKind, Bytes)> = None;
            while it.valid() {
                let p = parse(it.key())?;
                if p.user_key != ukey.as_slice() {
                    break;
                }
                if p.seq <= seq {
                    newest = Some((p.kind, it.value()));
                }
                it.prev()?;
            }
            if let Some((ValueKind::Put, value)) = newest {
                if within_upper(&self.upper, &ukey) {
                    let key = Bytes::copy_from_slice(&ukey);
                    self.back_key = Some(ukey);
                    return Ok(Some((key, value)));
                }
            }
        }
    }

    fn finish(&mut self, r: Result<Option<(Bytes, Bytes)>>) -> Option<Result<(Bytes, Bytes)>> {
        match r {
            Ok(Some(kv)) => Some(Ok(kv)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn within_upper(upper: &Bound<Vec<u8>>, k: &[u8]) -> bool {
    match upper {
        Bound::Unbounded => true,
        Bound::Included(u) => k <= u.as_slice(),
        Bound::Excluded(u) => k < u.as_slice(),
    }
}

fn within_lower(lower: &Bound<Vec<u8>>, k: &[u8]) -> bool {
    match lower {
        Bound::Unbounded => true,
        Bound::Included(l) => k >= l.as_slice(),
        Bound::Excluded(l) => k > l.as_slice(),
    }
}

/// Splits a key of the merged cursors. Memtable keys are built by kho and table keys are
/// checked as their blocks are decoded (`BlockIter`), so a malformed one here is a bug.
fn parse(ikey: &[u8]) -> Result<ParsedKey<'_>> {
    ParsedKey::parse(ikey).ok_or_else(|| {
        Error::Internal(format!("a merged cursor yielded a malformed internal key of {} bytes", ikey.len()))
    })
}

impl Iterator for DbIterator {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.step_front();
        self.finish(r)
    }
}

impl DoubleEndedIterator for DbIterator {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.step_back();
        self.finish(r)
    }
}
