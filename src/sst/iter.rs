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

/// A bidirectional cursor over one table's entries in internal-key order.
pub struct SstIter {
    reader: Arc<SstReader>,
    block_index: usize,
    block: Option<BlockIter>,
}

impl std::fmt::Debug for SstIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SstIter").field("block_index", &self.block_index).field("valid", &self.valid()).finish()
    }
}

impl SstIter {
    pub(crate) fn new(reader: Arc<SstReader>) -> Self {
        SstIter { reader, block_index: 0, block: None }
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
        let block = self.reader.data_block(i)?;
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
    pub fn next(&mut self) -> Result<()> {
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
        self.block.as_ref().map_or(&[], BlockIter::key)
    }

    /// The current value, sharing the block's bytes. Requires `valid()`.
    pub fn value(&self) -> Bytes {
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
