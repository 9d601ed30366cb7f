//! [`MemtableIter`]: an [`InternalIterator`] over a memtable it keeps alive.

use std::sync::Arc;

use bytes::Bytes;

use super::skiplist::Node;
use super::Memtable;
use crate::iter::InternalIterator;
use crate::Result;

/// A cursor over one memtable. Holds an `Arc` of the memtable, so it stays valid while the
/// memtable is frozen, flushed and dropped from the database's view; every node it holds
/// comes from that memtable's skiplist.
pub(crate) struct MemtableIter {
    mem: Arc<Memtable>,
    cur: Option<Node>,
}

impl MemtableIter {
    pub(crate) fn new(mem: Arc<Memtable>) -> Self {
        MemtableIter { mem, cur: None }
    }

    /// The current value, borrowed from the memtable's arena (empty when not valid). The
    /// trait's [`InternalIterator::value`] must hand out an owned `Bytes`, which for a
    /// memtable means a copy; a flush only needs to read it.
    pub(crate) fn value_slice(&self) -> &[u8] {
        debug_assert!(self.valid(), "MemtableIter::value_slice on a cursor that is not valid");
        // SAFETY: `cur` only ever holds nodes returned by `self.mem.list` (see below).
        self.cur.map(|n| unsafe { self.mem.list.value(n) }).unwrap_or_default()
    }
}

impl InternalIterator for MemtableIter {
    fn valid(&self) -> bool {
        self.cur.is_some()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.cur = self.mem.list.first();
        Ok(())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.cur = self.mem.list.last();
        Ok(())
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.cur = self.mem.list.seek(target);
        Ok(())
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        self.cur = self.mem.list.seek_for_prev(target);
        Ok(())
    }

    // SAFETY (the four methods below): `cur` only ever holds nodes returned by
    // `self.mem.list`, and `mem` is never replaced, so every node passed back is of that list.

    fn next(&mut self) -> Result<()> {
        debug_assert!(self.valid(), "MemtableIter::next on a cursor that is not valid");
        // SAFETY: see above.
        self.cur = self.cur.and_then(|n| unsafe { self.mem.list.next(n) });
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        debug_assert!(self.valid(), "MemtableIter::prev on a cursor that is not valid");
        // SAFETY: see above.
        self.cur = self.cur.and_then(|n| unsafe { self.mem.list.prev(n) });
        Ok(())
    }

    fn key(&self) -> &[u8] {
        debug_assert!(self.valid(), "MemtableIter::key on a cursor that is not valid");
        // SAFETY: see above.
        self.cur.map(|n| unsafe { self.mem.list.key(n) }).unwrap_or_default()
    }

    fn value(&self) -> Bytes {
        debug_assert!(self.valid(), "MemtableIter::value on a cursor that is not valid");
        Bytes::copy_from_slice(self.value_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iter::vec_iter::VecIter;
    use crate::key::{internal_key, ValueKind};

    #[test]
    fn matches_reference_cursor_in_both_directions() {
        let mem = Arc::new(Memtable::unfiltered(1));
        let mut items = Vec::new();
        for (i, k) in [b"b".as_slice(), b"a", b"c", b"b", b"aa"].iter().enumerate() {
            let seq = i as u64 + 1;
            mem.insert(k, seq, ValueKind::Put, &[i as u8]);
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
