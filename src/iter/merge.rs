//! [`MergingIter`]: one sorted cursor over many (memtables, level-0 tables, levels).
//!
//! Children are few (tens at most), so the current child is found by a linear scan, as in
//! LevelDB's merger; no heap to keep in sync when the direction changes.
//!
//! Invariant: in forward direction every valid child is positioned at its smallest entry
//! `>= key()`; in reverse direction at its largest entry `<= key()`. Equal internal keys
//! cannot occur across children (sequence numbers are unique), except when the same table
//! is reachable twice, which the versions never allow.

use bytes::Bytes;

use super::InternalIterator;
use crate::key::compare_internal;
use crate::Result;
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Reverse,
}

/// Merges child cursors into one cursor over their union.
pub(crate) struct MergingIter {
    children: Vec<Box<dyn InternalIterator>>,
    current: Option<usize>,
    direction: Direction,
}

impl MergingIter {
    pub(crate) fn new(children: Vec<Box<dyn InternalIterator>>) -> Self {
        MergingIter { children, current: None, direction: Direction::Forward }
    }

    fn find_smallest(&mut self) {
        self.current = None;
        for (i, c) in self.children.iter().enumerate() {
            if c.valid() {
                match self.current {
                    Some(j) if compare_internal(c.key(), self.children[j].key()) != Ordering::Less => {}
                    _ => self.current = Some(i),
                }
            }
        }
    }

    fn find_largest(&mut self) {
        self.current = None;
        for (i, c) in self.children.iter().enumerate().rev() {
            if c.valid() {
                match self.current {
                    Some(j) if compare_internal(c.key(), self.children[j].key()) != Ordering::Greater => {}
                    _ => self.current = Some(i),
                }
            }
        }
    }

    /// Runs `f` on every child, invalidating the merge if any fails.
    fn each_child(&mut self, mut f: impl FnMut(&mut dyn InternalIterator) -> Result<()>) -> Result<()> {
        for c in &mut self.children {
            if let Err(e) = f(c.as_mut()) {
                self.current = None;
                return Err(e);
            }
        }
        Ok(())
    }

    fn current_child(&mut self) -> Option<&mut Box<dyn InternalIterator>> {
        self.current.and_then(|i| self.children.get_mut(i))
    }
}

impl InternalIterator for MergingIter {
    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.each_child(|c| c.seek_to_first())?;
        self.direction = Direction::Forward;
        self.find_smallest();
        Ok(())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.each_child(|c| c.seek_to_last())?;
        self.direction = Direction::Reverse;
        self.find_largest();
        Ok(())
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.each_child(|c| c.seek(target))?;
        self.direction = Direction::Forward;
        self.find_smallest();
        Ok(())
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        self.each_child(|c| c.seek_for_prev(target))?;
        self.direction = Direction::Reverse;
        self.find_largest();
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        debug_assert!(self.valid(), "MergingIter::next on a cursor that is not valid");
        let Some(cur) = self.current else {
            return Ok(());
        };
        if self.direction != Direction::Forward {
            // Move every other child to its first entry after key().
            let key = self.children[cur].key().to_vec();
            for (i, c) in self.children.iter_mut().enumerate() {
                if i == cur {
                    continue;
                }
                let r = c.seek(&key).and_then(|()| {
                    if c.valid() && compare_internal(c.key(), &key) == Ordering::Equal {
                        c.next()
                    } else {
                        Ok(())
                    }
                });
                if let Err(e) = r {
                    self.current = None;
                    return Err(e);
                }
            }
            self.direction = Direction::Forward;
        }
        if let Some(c) = self.current_child() {
            if let Err(e) = c.next() {
                self.current = None;
                return Err(e);
            }
        }
        self.find_smallest();
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        debug_assert!(self.valid(), "MergingIter::prev on a cursor that is not valid");
        let Some(cur) = self.current else {
            return Ok(());
        };
        if self.direction != Direction::Reverse {
            // Move every other child to its last entry before key().
            let key = self.children[cur].key().to_vec();
            for (i, c) in self.children.iter_mut().enumerate() {
                if i == cur {
                    continue;
                }
                let r = c.seek_for_prev(&key).and_then(|()| {
                    if c.valid() && compare_internal(c.key(), &key) == Ordering::Equal {
                        c.prev()
                    } else {
                        Ok(())
                    }
                });
                if let Err(e) = r {
                    self.current = None;
                    return Err(e);
                }
            }
            self.direction = Direction::Reverse;
        }
        if let Some(c) = self.current_child() {
            if let Err(e) = c.prev() {
                self.current = None;
                return Err(e);
            }
        }
        self.find_largest();
        Ok(())
    }

    fn key(&self) -> &[u8] {
        debug_assert!(self.valid(), "MergingIter::key on a cursor that is not valid");
        self.current.and_then(|i| self.children.get(i)).map(|c| c.key()).unwrap_or_default()
    }

    fn value(&self) -> Bytes {
        debug_assert!(self.valid(), "MergingIter::value on a cursor that is not valid");
        self.current.and_then(|i| self.children.get(i)).map(|c| c.value()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iter::vec_iter::VecIter;
    use crate::key::{internal_key, ValueKind};
    use proptest::prelude::*;

    fn entries(keys: &[(u8, u64)]) -> Vec<(Vec<u8>, Bytes)> {
        let mut v: Vec<_> =
            keys.iter().map(|&(k, s)| (internal_key(&[k], s, ValueKind::Put), Bytes::from(vec![k, s as u8]))).collect();
        v.sort_by(|a, b| compare_internal(&a.0, &b.0));
        v.dedup_by(|a, b| a.0 == b.0);
        v
    }

    proptest! {
        #[test]
        fn merge_equals_sorted_union(
            parts in prop::collection::vec(prop::collection::vec((0u8..20, 0u64..1000), 0..20), 0..5),
            ops in prop::collection::vec((0u8..6, 0u8..22, 0u64..1000), 1..60),
        ) {
            // Sequence numbers must be unique across children: tag each with its child.
            let parts: Vec<Vec<(u8, u64)>> = parts.iter().enumerate()
                .map(|(i, p)| p.iter().map(|&(k, s)| (k, s * 8 + i as u64)).collect()).collect();
            let all: Vec<(u8, u64)> = parts.iter().flatten().copied().collect();
            let children: Vec<Box<dyn InternalIterator>> =
                parts.iter().map(|p| Box::new(VecIter::new(entries(p))) as Box<dyn InternalIterator>).collect();
            let mut m = MergingIter::new(children);
            let mut r = VecIter::new(entries(&all));
            for (op, k, s) in ops {
                let t = internal_key(&[k], s * 8, ValueKind::Put);
                match op {
                    0 => { m.seek(&t).unwrap(); r.seek(&t).unwrap(); }
                    1 => { m.seek_for_prev(&t).unwrap(); r.seek_for_prev(&t).unwrap(); }
                    2 => { m.seek_to_first().unwrap(); r.seek_to_first().unwrap(); }
                    3 => { m.seek_to_last().unwrap(); r.seek_to_last().unwrap(); }
                    4 => if r.valid() { m.next().unwrap(); r.next().unwrap(); },
                    _ => if r.valid() { m.prev().unwrap(); r.prev().unwrap(); },
                }
                prop_assert_eq!(m.valid(), r.valid());
                if r.valid() {
                    prop_assert_eq!(m.key(), r.key());
                    prop_assert_eq!(m.value(), r.value());
                }
            }
        }
    }
}
