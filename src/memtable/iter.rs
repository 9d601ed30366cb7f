//! [`MemtableIter`]: an [`InternalIterator`] over a memtable it keeps alive.

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use crossbeam_skiplist::map::Entry;

use super::{IKey, MemKey, Memtable};
use crate::iter::InternalIterator;
use crate::Result;

/// A cursor over one memtable. Holds an `Arc` of the memtable, so it stays valid while the
/// memtable is frozen, flushed and dropped from the database's view.
pub(crate) struct MemtableIter {
    // Declared before `mem` so it is dropped first: the entry borrows from `mem`'s map.
    cur: Option<Entry<'static, MemKey, Bytes>>,
    mem: Arc<Memtable>,
}

impl MemtableIter {
    pub(crate) fn new(mem: Arc<Memtable>) -> Self {
        MemtableIter { cur: None, mem }
    }

    fn map(&self) -> &'static crossbeam_skiplist::SkipMap<MemKey, Bytes> {
        let map: *const crossbeam_skiplist::SkipMap<MemKey, Bytes> = &self.mem.map;
        // SAFETY: the map lives inside the `Arc<Memtable>` owned by `self`, on the heap at a
        // fixed address, and is never moved or mutated through `&mut` while shared. Entries
        // derived from this reference are stored only in `self.cur`, which is dropped before
        // `self.mem` (field order), so no entry outlives the map. Exercised by the
        // memtable iterator tests and by every database iterator over unflushed data.
        unsafe { &*map }
    }
}

impl InternalIterator for MemtableIter {
    fn valid(&self) -> bool {
        self.cur.is_some()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.cur = self.map().front();
        Ok(())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.cur = self.map().back();
        Ok(())
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.cur = self.map().lower_bound(Bound::Included(IKey::new(target)));
        Ok(())
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        self.cur = self.map().upper_bound(Bound::Included(IKey::new(target)));
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        self.cur = self.cur.as_ref().and_then(|e| e.next());
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        self.cur = self.cur.as_ref().and_then(|e| e.prev());
        Ok(())
    }

    fn key(&self) -> &[u8] {
        self.cur.as_ref().map(|e| e.key().as_bytes()).unwrap_or_default()
    }

    fn value(&self) -> Bytes {
        self.cur.as_ref().map(|e| e.value().clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iter::vec_iter::VecIter;
    use crate::key::{internal_key, ValueKind};

    #[test]
    fn matches_reference_cursor_in_both_directions() {
        let mem = Arc::new(Memtable::new(1));
        let mut items = Vec::new();
        for (i, k) in [b"b".as_slice(), b"a", b"c", b"b", b"aa"].iter().enumerate() {
            let seq = i as u64 + 1;
            mem.insert(k, seq, ValueKind::Put, Bytes::from(vec![i as u8]));
            items.push((internal_key(k, seq, ValueKind::Put), Bytes::from(vec![i as u8])));
        }
        items.sort_by(|a, b| crate::key::compare_internal(&a.0, &b.0));
        let mut it = MemtableIter::new(mem.clone());
        let mut reference = VecIter::new(items);
        let targets =
            [internal_key(b"b", 2, ValueKind::Put), internal_key(b"a", 0, ValueKind::Delete), b"zzzzzzzzzz".to_vec()];
        for t in &targets {
            it.seek(t).unwrap();
            reference.seek(t).unwrap();
            while reference.valid() {
                assert_eq!(it.key(), reference.key());
                assert_eq!(it.value(), reference.value());
                it.next().unwrap();
                reference.next().unwrap();
            }
            assert!(!it.valid());
            it.seek_for_prev(t).unwrap();
            reference.seek_for_prev(t).unwrap();
            while reference.valid() {
                assert_eq!(it.key(), reference.key());
                it.prev().unwrap();
                reference.prev().unwrap();
            }
            assert!(!it.valid());
        }
        it.seek_to_last().unwrap();
        assert_eq!(crate::key::user_key(it.key()), b"c");
        drop(mem); // the iterator keeps the memtable alive
        it.seek_to_first().unwrap();
        assert_eq!(crate::key::user_key(it.key()), b"a");
    }
}
