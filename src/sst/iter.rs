//! [`SstIter`]: a cursor over a whole table — the in-memory index picks a data block, a
//! [`BlockIter`] walks inside it, and movements cross block boundaries in both directions.
//!
//! Follows the `InternalIterator` contract (`crate::iter`). The same movements are also
//! inherent `pub` methods, so tools outside the crate (`kho dump`) can scan a table.
//!
//! Invariants: when valid, the block cursor is valid and `block_index` names its block; any
//! error drops the block cursor, leaving the iterator invalid. Empty data blocks (which a
//! valid table never has) are skipped rather than trusted.

use std::sync::Arc;

use bytes::Bytes;

use crate::iter::InternalIterator;
use crate::sst::block::BlockIter;
use crate::sst::reader::SstReader;
use crate::Result;

/// Whether the blocks a cursor reads from the file go into the block cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CacheFill {
    /// Reads go through the cache and fill it (point reads, user iterators).
    Fill,
    /// Cached blocks are used, missing ones are read without being cached (compaction).
    Skip,
}

/// A bidirectional cursor over one table's entries in internal-key order.
pub struct SstIter {
    reader: Arc<SstReader>,
    fill: CacheFill,
    block_index: usize,
    block: Option<BlockIter>,
}

impl std::fmt::Debug for SstIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SstIter").field("block_index", &self.block_index).field("valid", &self.valid()).finish()
    }
}

impl SstIter {
    pub(crate) fn new(reader: Arc<SstReader>, fill: CacheFill) -> Self {
        SstIter { reader, fill, block_index: 0, block: None }
    }

    /// The table this cursor reads.
    pub fn reader(&self) -> &Arc<SstReader> {
        &self.reader
    }

    /// Runs a movement; on error the cursor becomes invalid.
    fn guard(&mut self, r: Result<()>) -> Result<()> {
        if r.is_err() {
            self.block = None;
        }
        r
    }

    /// Points the block cursor at data block `i` (not yet positioned).
    fn load(&mut self, i: usize) -> Result<&mut BlockIter> {
        let block = match self.fill {
            CacheFill::Fill => self.reader.data_block(i)?,
            CacheFill::Skip => self.reader.data_block_no_fill(i)?,
        };
        self.block_index = i;
        let it = match self.block.take() {
            Some(mut it) => {
                if !Arc::ptr_eq(it.block(), &block) {
                    it.reset(block);
                }
                it
            }
            None => BlockIter::new(block),
        };
        Ok(self.block.insert(it))
    }

    /// While the block cursor is exhausted, moves to the first entry of the next block.
    fn skip_forward(&mut self) -> Result<()> {
        while !self.block.as_ref().is_some_and(BlockIter::valid) {
            let next = self.block_index + 1;
            if self.block.is_none() || next >= self.reader.num_blocks() {
                self.block = None;
                return Ok(());
            }
            self.load(next)?.seek_to_first()?;
        }
        Ok(())
    }

    /// While the block cursor is exhausted, moves to the last entry of the previous block.
    fn skip_backward(&mut self) -> Result<()> {
        while !self.block.as_ref().is_some_and(BlockIter::valid) {
            let Some(prev) = self.block_index.checked_sub(1).filter(|_| self.block.is_some()) else {
                self.block = None;
                return Ok(());
            };
            self.load(prev)?.seek_to_last()?;
        }
        Ok(())
    }

    /// True when positioned on an entry.
    pub fn valid(&self) -> bool {
        self.block.as_ref().is_some_and(BlockIter::valid)
    }

    /// Positions on the first entry.
    pub fn seek_to_first(&mut self) -> Result<()> {
        let r = self.seek_to_first_inner();
        self.guard(r)
    }

    fn seek_to_first_inner(&mut self) -> Result<()> {
        if self.reader.num_blocks() == 0 {
            self.block = None;
            return Ok(());
        }
        self.load(0)?.seek_to_first()?;
        self.skip_forward()
    }

    /// Positions on the last entry.
    pub fn seek_to_last(&mut self) -> Result<()> {
        let r = self.seek_to_last_inner();
        self.guard(r)
    }

    fn seek_to_last_inner(&mut self) -> Result<()> {
        let Some(last) = self.reader.num_blocks().checked_sub(1) else {
            self.block = None;
            return Ok(());
        };
        self.load(last)?.seek_to_last()?;
        self.skip_backward()
    }

    /// Positions on the first entry `>= target`.
    pub fn seek(&mut self, target: &[u8]) -> Result<()> {
        let r = self.seek_inner(target);
        self.guard(r)
    }

    fn seek_inner(&mut self, target: &[u8]) -> Result<()> {
        let i = self.reader.index_search(target);
        if i >= self.reader.num_blocks() {
            self.block = None;
            return Ok(());
        }
        self.load(i)?.seek(target)?;
        self.skip_forward()
    }

    /// Positions on the last entry `<= target`.
    pub fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        let r = self.seek_for_prev_inner(target);
        self.guard(r)
    }

    fn seek_for_prev_inner(&mut self, target: &[u8]) -> Result<()> {
        // Every key of blocks after the first block whose index key is >= target is
        // > target, so the answer is in that block or before it.
        let Some(last) = self.reader.num_blocks().checked_sub(1) else {
            self.block = None;
            return Ok(());
        };
        let i = self.reader.index_search(target).min(last);
        self.load(i)?.seek_for_prev(target)?;
        self.skip_backward()
    }

    /// Moves to the next entry. Requires `valid()`.
    #[expect(clippy::should_implement_trait, reason = "a fallible cursor step, not an Iterator")]
    pub fn next(&mut self) -> Result<()> {
        debug_assert!(self.valid(), "SstIter::next on a cursor that is not valid");
        let r = self.next_inner();
        self.guard(r)
    }

    fn next_inner(&mut self) -> Result<()> {
        match &mut self.block {
            Some(it) if it.valid() => it.next()?,
            _ => return Ok(()),
        }
        self.skip_forward()
    }

    /// Moves to the previous entry. Requires `valid()`.
    pub fn prev(&mut self) -> Result<()> {
        debug_assert!(self.valid(), "SstIter::prev on a cursor that is not valid");
        let r = self.prev_inner();
        self.guard(r)
    }

    fn prev_inner(&mut self) -> Result<()> {
        match &mut self.block {
            Some(it) if it.valid() => it.prev()?,
            _ => return Ok(()),
        }
        self.skip_backward()
    }

    /// The current encoded internal key. Requires `valid()`.
    pub fn key(&self) -> &[u8] {
        debug_assert!(self.valid(), "SstIter::key on a cursor that is not valid");
        self.block.as_ref().map_or(&[], BlockIter::key)
    }

    /// The current value, sharing the block's bytes. Requires `valid()`.
    pub fn value(&self) -> Bytes {
        debug_assert!(self.valid(), "SstIter::value on a cursor that is not valid");
        self.block.as_ref().map_or_else(Bytes::new, BlockIter::value)
    }
}

impl InternalIterator for SstIter {
    fn valid(&self) -> bool {
        SstIter::valid(self)
    }
    fn seek_to_first(&mut self) -> Result<()> {
        SstIter::seek_to_first(self)
    }
    fn seek_to_last(&mut self) -> Result<()> {
        SstIter::seek_to_last(self)
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        SstIter::seek(self, target)
    }
    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        SstIter::seek_for_prev(self, target)
    }
    fn next(&mut self) -> Result<()> {
        SstIter::next(self)
    }
    fn prev(&mut self) -> Result<()> {
        SstIter::prev(self)
    }
    fn key(&self) -> &[u8] {
        SstIter::key(self)
    }
    fn value(&self) -> Bytes {
        SstIter::value(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iter::vec_iter::VecIter;
    use crate::key::{internal_key, ValueKind};
    use crate::sst::test_util::{open_table, write_table};
    use crate::sst::SstOptions;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[derive(Debug, Clone)]
    enum Op {
        First,
        Last,
        Seek(Vec<u8>),
        SeekForPrev(Vec<u8>),
        Next,
        Prev,
    }

    /// An internal key over a tiny alphabet, so that user keys repeat with many versions and
    /// prefixes are shared.
    fn ikey() -> impl Strategy<Value = Vec<u8>> {
        (prop::collection::vec(b'a'..b'd', 0..4), 0u64..12, any::<bool>())
            .prop_map(|(uk, seq, put)| internal_key(&uk, seq, if put { ValueKind::Put } else { ValueKind::Delete }))
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            1 => Just(Op::First),
            1 => Just(Op::Last),
            3 => ikey().prop_map(Op::Seek),
            3 => ikey().prop_map(Op::SeekForPrev),
            4 => Just(Op::Next),
            4 => Just(Op::Prev),
        ]
    }

    fn apply(it: &mut dyn InternalIterator, op: &Op) {
        match op {
            Op::First => it.seek_to_first().unwrap(),
            Op::Last => it.seek_to_last().unwrap(),
            Op::Seek(t) => it.seek(t).unwrap(),
            Op::SeekForPrev(t) => it.seek_for_prev(t).unwrap(),
            Op::Next if it.valid() => it.next().unwrap(),
            Op::Prev if it.valid() => it.prev().unwrap(),
            Op::Next | Op::Prev => {}
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(150))]

        #[test]
        fn sst_iter_matches_vec_iter(
            keys in prop::collection::btree_set(ikey(), 0..120),
            block_size in 16usize..400,
            restart_interval in 1usize..5,
            level in prop_oneof![Just(0), Just(1)],
            bloom in prop_oneof![Just(0u32), Just(10)],
            ops in prop::collection::vec(op(), 1..60),
        ) {
            let mut keys: Vec<Vec<u8>> = keys.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
            keys.sort_by(|a, b| crate::key::compare_internal(a, b));
            let items: Vec<(Vec<u8>, Bytes)> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.clone(), Bytes::from(format!("v{i}").repeat(i % 5))))
                .collect();
            let opts = SstOptions { block_size, restart_interval, compression_level: level, bloom_bits_per_key: bloom, ..SstOptions::default() };
            let dir = tempfile::tempdir().unwrap();
            let (path, _) = write_table(dir.path(), "t.sst", &items, &opts);
            let reader = open_table(&path, None);
            let mut got = reader.iter();
            let mut want = VecIter::new(items);
            for (i, op) in ops.iter().enumerate() {
                apply(&mut got, op);
                apply(&mut want, op);
                prop_assert_eq!(got.valid(), want.valid(), "op {} {:?}", i, op);
                if want.valid() {
                    prop_assert_eq!(got.key(), want.key(), "op {} {:?}", i, op);
                    prop_assert_eq!(got.value(), want.value(), "op {} {:?}", i, op);
                }
            }
        }
    }

    #[test]
    fn full_scans_cross_every_block_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let items = crate::sst::test_util::entries(300, 3, 10);
        let opts = SstOptions { block_size: 64, ..SstOptions::default() };
        let (path, props) = write_table(dir.path(), "t.sst", &items, &opts);
        assert!(props.data_blocks > 100);
        let r = open_table(&path, None);
        let mut it = r.iter();
        it.seek_to_first().unwrap();
        for (k, v) in &items {
            assert!(it.valid());
            assert_eq!((it.key(), &it.value()), (&k[..], v));
            it.next().unwrap();
        }
        assert!(!it.valid());
        it.seek_to_last().unwrap();
        for (k, _) in items.iter().rev() {
            assert_eq!(it.key(), &k[..]);
            it.prev().unwrap();
        }
        assert!(!it.valid());
        assert!(Arc::ptr_eq(it.reader(), &r));
    }
}
