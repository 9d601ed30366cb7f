//! [`Block`]: a decoded raw block, and [`BlockIter`]: a bidirectional cursor over it.
//!
//! A `Block` owns its bytes as [`Bytes`] (a zero-copy slice of the file for raw blocks, or the
//! decompressed buffer), so cursors and the values they return share it without copying.
//!
//! Invariants established by [`Block::new`]: the restart array fits in the block, is strictly
//! increasing, starts at offset 0 and every restart lies before the array; `n = 0` only for
//! an empty block. Entries are validated as the cursor decodes them: varints in range,
//! `shared <= previous key length`, key and value inside the entry area, `shared = 0` at
//! restart points, no entry straddling a restart point, and every key an internal key (a
//! trailer with a known kind). Any violation is
//! [`crate::Error::Corruption`] at the block's file offset (the offset inside the raw block
//! is in the message), never a panic. Key order inside a block is not checked here (a
//! cursor over unsorted keys stays memory-safe and terminates); `SstReader::verify` checks it.

use std::cmp::Ordering;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::key::{compare_internal, ParsedKey};
use crate::sst::format::RESTART_LEN;
use crate::util::coding::Reader;
use crate::{Error, Result};

/// A checked raw block. Unstable internal API (public only through `kho::internals`).
#[derive(Debug)]
pub struct Block {
    data: Bytes,
    /// Offset of the restart array = end of the entry area.
    restarts_offset: usize,
    num_restarts: usize,
    path: Arc<Path>,
    file_offset: u64,
    /// Bytes the block costs in memory (its pool slot, or its length on the heap): what the
    /// block cache charges for it.
    footprint: usize,
}

/// The decoded header of one entry.
struct Entry {
    shared: usize,
    key_start: usize,
    key_end: usize,
    value_end: usize,
}

impl Block {
    /// Checks the restart array of `data`, a raw block read from `path` at `file_offset`
    /// (both only used in error messages).
    pub fn new(data: Bytes, path: Arc<Path>, file_offset: u64) -> Result<Block> {
        let bad = |what: String| Error::corruption(&*path, file_offset, what);
        let len = data.len();
        let count_at =
            len.checked_sub(RESTART_LEN).ok_or_else(|| bad(format!("block of {len} bytes has no restart count")))?;
        let n = read_u32(&data, count_at).ok_or_else(|| bad("truncated restart count".into()))? as usize;
        let restarts_offset = n
            .checked_mul(RESTART_LEN)
            .and_then(|b| count_at.checked_sub(b))
            .ok_or_else(|| bad(format!("{n} restart points do not fit in a {len}-byte block")))?;
        if n == 0 && restarts_offset != 0 {
            return Err(bad(format!("block has {restarts_offset} entry bytes but no restart point")));
        }
        let mut prev: Option<usize> = None;
        for i in 0..n {
            let at = restarts_offset + i * RESTART_LEN;
            let r = read_u32(&data, at).ok_or_else(|| bad("truncated restart array".into()))? as usize;
            let ok = match prev {
                None => r == 0,
                Some(p) => r > p,
            };
            if !ok || r >= restarts_offset {
                return Err(bad(format!(
                    "restart point {i} at block offset {r} is out of order or outside the {restarts_offset} entry bytes"
                )));
            }
            prev = Some(r);
        }
        let footprint = data.len();
        Ok(Block { data, restarts_offset, num_restarts: n, path, file_offset, footprint })
    }

    /// Records that the block's bytes occupy `footprint` bytes of memory (a pool slot is
    /// rounded up from the block's length).
    pub(crate) fn with_footprint(mut self, footprint: usize) -> Block {
        self.footprint = footprint.max(self.data.len());
        self
    }

    /// Bytes the block costs in memory; see [`Block::with_footprint`].
    pub(crate) fn footprint(&self) -> usize {
        self.footprint
    }

    /// The block's bytes (entries and restart array).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The raw block's size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    fn corruption(&self, at: usize, what: &str) -> Error {
        Error::corruption(&*self.path, self.file_offset, format!("{what} (at raw block offset {at})"))
    }

    /// Offset of restart point `i < num_restarts` (checked in `new`).
    fn restart_point(&self, i: usize) -> usize {
        read_u32(&self.data, self.restarts_offset + i * RESTART_LEN).map_or(0, |r| r as usize)
    }

    /// Decodes the entry header at `offset < restarts_offset`.
    fn decode_entry(&self, offset: usize) -> Result<Entry> {
        let area = self.data.get(offset..self.restarts_offset).unwrap_or_default();
        let (shared, unshared, vlen, header_len) = match area {
            // Fast path: all three fields fit in one byte each (small keys and values).
            [a, b, c, ..] if (a | b | c) < 0x80 => (usize::from(*a), usize::from(*b), usize::from(*c), 3),
            _ => {
                let mut r = Reader::new(area);
                let mut field = || r.varint().and_then(|v| usize::try_from(v).ok());
                let (Some(shared), Some(unshared), Some(vlen)) = (field(), field(), field()) else {
                    return Err(self.corruption(offset, "truncated or overlong entry header"));
                };
                (shared, unshared, vlen, r.position())
            }
        };
        let key_start = offset + header_len;
        let key_end = key_start.checked_add(unshared);
        let value_end = key_end.and_then(|k| k.checked_add(vlen));
        match (key_end, value_end) {
            (Some(key_end), Some(value_end)) if value_end <= self.restarts_offset => {
                Ok(Entry { shared, key_start, key_end, value_end })
            }
            _ => Err(self.corruption(
                offset,
                &format!("entry of {unshared} key and {vlen} value bytes overruns the entry area"),
            )),
        }
    }

    /// The whole key stored at restart point `i`.
    fn restart_key(&self, i: usize) -> Result<&[u8]> {
        let at = self.restart_point(i);
        let e = self.decode_entry(at)?;
        if e.shared != 0 {
            return Err(self.corruption(at, "restart entry shares a key prefix"));
        }
        Ok(self.data.get(e.key_start..e.key_end).unwrap_or_default())
    }
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// A bidirectional cursor over a [`Block`], following the `InternalIterator` contract.
/// Unstable internal API (public only through `kho::internals`).
#[derive(Debug)]
pub struct BlockIter {
    block: Arc<Block>,
    /// Offset of the current entry; `block.restarts_offset` when not valid.
    current: usize,
    /// Offset just past the current entry.
    next: usize,
    /// The restart interval holding `current`.
    restart_index: usize,
    key: Vec<u8>,
    value_start: usize,
    value_end: usize,
}

impl BlockIter {
    /// A cursor over `block`, initially not valid.
    pub fn new(block: Arc<Block>) -> Self {
        let end = block.restarts_offset;
        BlockIter { block, current: end, next: end, restart_index: 0, key: Vec::new(), value_start: 0, value_end: 0 }
    }

    /// Points the cursor at another block, keeping its key buffer; not valid afterwards.
    pub(crate) fn reset(&mut self, block: Arc<Block>) {
        self.block = block;
        self.invalidate();
    }

    /// The block under the cursor.
    pub(crate) fn block(&self) -> &Arc<Block> {
        &self.block
    }

    /// True when positioned on an entry.
    pub fn valid(&self) -> bool {
        self.current < self.block.restarts_offset
    }

    /// The current key. Requires `valid()`.
    pub fn key(&self) -> &[u8] {
        debug_assert!(self.valid(), "BlockIter::key on a cursor that is not valid");
        &self.key
    }

    /// The current value, sharing the block's bytes. Requires `valid()`.
    pub fn value(&self) -> Bytes {
        debug_assert!(self.valid(), "BlockIter::value on a cursor that is not valid");
        self.block.data.slice(self.value_start..self.value_end)
    }

    /// The current value as a borrowed slice. Requires `valid()`.
    pub fn value_slice(&self) -> &[u8] {
        debug_assert!(self.valid(), "BlockIter::value_slice on a cursor that is not valid");
        self.block.data.get(self.value_start..self.value_end).unwrap_or_default()
    }

    fn invalidate(&mut self) {
        self.current = self.block.restarts_offset;
        self.next = self.current;
        self.key.clear();
        // Keep `value()` in bounds even if called against the contract.
        self.value_start = 0;
        self.value_end = 0;
    }

    /// Runs a movement; any error leaves the cursor invalid.
    fn guard(&mut self, r: Result<()>) -> Result<()> {
        if r.is_err() {
            self.invalidate();
        }
        r
    }

    fn seek_to_restart(&mut self, i: usize) {
        self.key.clear();
        self.restart_index = i;
        self.current = self.block.restarts_offset;
        self.next = self.block.restart_point(i);
    }

    /// Decodes the entry at `self.next`; `Ok(false)` (and not valid) at the end.
    fn parse_next(&mut self) -> Result<bool> {
        let block = &*self.block;
        let at = self.next;
        if at >= block.restarts_offset {
            self.invalidate();
            return Ok(false);
        }
        let e = block.decode_entry(at)?;
        if e.shared > self.key.len() {
            return Err(
                block.corruption(at, &format!("entry shares {} bytes of a {}-byte key", e.shared, self.key.len()))
            );
        }
        while self.restart_index + 1 < block.num_restarts && block.restart_point(self.restart_index + 1) <= at {
            self.restart_index += 1;
        }
        if block.restart_point(self.restart_index) == at && e.shared != 0 {
            return Err(block.corruption(at, "restart entry shares a key prefix"));
        }
        if self.restart_index + 1 < block.num_restarts && block.restart_point(self.restart_index + 1) < e.value_end {
            return Err(block.corruption(at, "entry straddles a restart point"));
        }
        self.key.truncate(e.shared);
        self.key.extend_from_slice(block.data.get(e.key_start..e.key_end).unwrap_or_default());
        if ParsedKey::parse(&self.key).is_none() {
            // Checked here, where the file and block are known, so that every cursor above
            // can rely on well-formed keys (a malformed one there is a bug, not corruption).
            return Err(block.corruption(at, &format!("entry key of {} bytes is not an internal key", self.key.len())));
        }
        self.current = at;
        self.next = e.value_end;
        self.value_start = e.key_end;
        self.value_end = e.value_end;
        Ok(true)
    }

    /// Positions on the first entry.
    pub fn seek_to_first(&mut self) -> Result<()> {
        if self.block.num_restarts == 0 {
            self.invalidate();
            return Ok(());
        }
        self.seek_to_restart(0);
        let r = self.parse_next().map(drop);
        self.guard(r)
    }

    /// Positions on the last entry.
    pub fn seek_to_last(&mut self) -> Result<()> {
        let r = self.seek_to_last_inner();
        self.guard(r)
    }

    fn seek_to_last_inner(&mut self) -> Result<()> {
        let Some(last) = self.block.num_restarts.checked_sub(1) else {
            self.invalidate();
            return Ok(());
        };
        self.seek_to_restart(last);
        while self.parse_next()? && self.next < self.block.restarts_offset {}
        Ok(())
    }

    /// Positions on the first entry `>= target`.
    pub fn seek(&mut self, target: &[u8]) -> Result<()> {
        let r = self.seek_inner(target);
        self.guard(r)
    }

    fn seek_inner(&mut self, target: &[u8]) -> Result<()> {
        let Some(mut right) = self.block.num_restarts.checked_sub(1) else {
            self.invalidate();
            return Ok(());
        };
        // Find the last restart point whose key is < target.
        let mut left = 0;
        while left < right {
            let mid = left + (right - left).div_ceil(2);
            if compare_internal(self.block.restart_key(mid)?, target) == Ordering::Less {
                left = mid;
            } else {
                right = mid - 1;
            }
        }
        self.seek_to_restart(left);
        while self.parse_next()? {
            if compare_internal(&self.key, target) != Ordering::Less {
                break;
            }
        }
        Ok(())
    }

    /// Positions on the last entry `<= target`.
    pub fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        self.seek(target)?;
        if !self.valid() {
            self.seek_to_last()
        } else if compare_internal(&self.key, target) == Ordering::Greater {
            self.prev()
        } else {
            Ok(())
        }
    }

    /// Moves to the next entry. Requires `valid()`.
    #[cfg_attr(
        feature = "internals",
        expect(clippy::should_implement_trait, reason = "a fallible cursor step, not an Iterator")
    )]
    pub fn next(&mut self) -> Result<()> {
        debug_assert!(self.valid(), "BlockIter::next on a cursor that is not valid");
        let r = self.parse_next().map(drop);
        self.guard(r)
    }

    /// Moves to the previous entry. Requires `valid()`.
    pub fn prev(&mut self) -> Result<()> {
        debug_assert!(self.valid(), "BlockIter::prev on a cursor that is not valid");
        let r = self.prev_inner();
        self.guard(r)
    }

    fn prev_inner(&mut self) -> Result<()> {
        let original = self.current;
        // Back up to the last restart point before the current entry, then scan forward
        // to the entry just before it.
        while self.block.restart_point(self.restart_index) >= original {
            if self.restart_index == 0 {
                self.invalidate();
                return Ok(());
            }
            self.restart_index -= 1;
        }
        self.seek_to_restart(self.restart_index);
        while self.parse_next()? && self.next < original {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iter::vec_iter::VecIter;
    use crate::iter::InternalIterator;
    use crate::key::{internal_key, ValueKind};
    use crate::sst::block_builder::BlockBuilder;

    impl InternalIterator for BlockIter {
        fn valid(&self) -> bool {
            BlockIter::valid(self)
        }
        fn seek_to_first(&mut self) -> Result<()> {
            BlockIter::seek_to_first(self)
        }
        fn seek_to_last(&mut self) -> Result<()> {
            BlockIter::seek_to_last(self)
        }
        fn seek(&mut self, t: &[u8]) -> Result<()> {
            BlockIter::seek(self, t)
        }
        fn seek_for_prev(&mut self, t: &[u8]) -> Result<()> {
            BlockIter::seek_for_prev(self, t)
        }
        fn next(&mut self) -> Result<()> {
            BlockIter::next(self)
        }
        fn prev(&mut self) -> Result<()> {
            BlockIter::prev(self)
        }
        fn key(&self) -> &[u8] {
            BlockIter::key(self)
        }
        fn value(&self) -> Bytes {
            BlockIter::value(self)
        }
    }

    fn path() -> Arc<Path> {
        Arc::from(Path::new("test.sst"))
    }

    /// Entries: user keys k00..k{n}, two versions each (seq 2 Put, seq 1 Delete).
    fn entries(n: usize) -> Vec<(Vec<u8>, Bytes)> {
        let mut v = Vec::new();
        for i in 0..n {
            let uk = format!("k{i:02}");
            v.push((internal_key(uk.as_bytes(), 2, ValueKind::Put), Bytes::from(format!("v{i}"))));
            v.push((internal_key(uk.as_bytes(), 1, ValueKind::Delete), Bytes::new()));
        }
        v
    }

    fn build(items: &[(Vec<u8>, Bytes)], interval: usize) -> Arc<Block> {
        let mut b = BlockBuilder::new(interval);
        for (k, v) in items {
            b.add(k, v);
        }
        Arc::new(Block::new(Bytes::copy_from_slice(b.finish()), path(), 0).unwrap())
    }

    fn same(a: &dyn InternalIterator, b: &dyn InternalIterator, what: &str) {
        assert_eq!(a.valid(), b.valid(), "{what}");
        if a.valid() {
            assert_eq!(a.key(), b.key(), "{what}");
            assert_eq!(a.value(), b.value(), "{what}");
        }
    }

    #[test]
    fn cursor_matches_vec_iter_at_every_edge() {
        for interval in [1, 2, 3, 16] {
            for n in [0, 1, 2, 7, 20] {
                let items = entries(n);
                let block = build(&items, interval);
                let mut got = BlockIter::new(Arc::clone(&block));
                let mut want = VecIter::new(items.clone());
                // Full scans both ways.
                got.seek_to_first().unwrap();
                want.seek_to_first().unwrap();
                while want.valid() {
                    same(&got, &want, "forward");
                    got.next().unwrap();
                    want.next().unwrap();
                }
                same(&got, &want, "forward end");
                got.seek_to_last().unwrap();
                want.seek_to_last().unwrap();
                while want.valid() {
                    same(&got, &want, "backward");
                    InternalIterator::prev(&mut got).unwrap();
                    want.prev().unwrap();
                }
                same(&got, &want, "backward end");
                // Seeks to every key, between keys, before the first and after the last.
                let mut targets: Vec<Vec<u8>> = items.iter().map(|(k, _)| k.clone()).collect();
                for i in 0..=n {
                    let uk = format!("k{i:02}");
                    targets.push(internal_key(uk.as_bytes(), 3, ValueKind::Put));
                    targets.push(internal_key(uk.as_bytes(), 0, ValueKind::Delete));
                    targets.push(internal_key(format!("{uk}x").as_bytes(), 9, ValueKind::Put));
                }
                targets.push(internal_key(b"", 0, ValueKind::Put));
                targets.push(internal_key(b"zz", 0, ValueKind::Put));
                for t in &targets {
                    got.seek(t).unwrap();
                    want.seek(t).unwrap();
                    same(&got, &want, "seek");
                    if want.valid() {
                        got.prev().unwrap();
                        want.prev().unwrap();
                        same(&got, &want, "seek+prev");
                    }
                    got.seek_for_prev(t).unwrap();
                    want.seek_for_prev(t).unwrap();
                    same(&got, &want, "seek_for_prev");
                    if want.valid() {
                        got.next().unwrap();
                        want.next().unwrap();
                        same(&got, &want, "seek_for_prev+next");
                    }
                }
            }
        }
    }

    #[test]
    fn values_share_the_block_bytes() {
        let block = build(&entries(3), 2);
        let mut it = BlockIter::new(Arc::clone(&block));
        it.seek_to_first().unwrap();
        let v = it.value();
        let base = block.data.as_ptr() as usize;
        let p = v.as_ptr() as usize;
        assert!(p >= base && p < base + block.len());
        assert_eq!(it.value_slice(), b"v0");
    }

    /// Cursors above the blocks rely on well-formed internal keys, so a block refuses any
    /// other where the file and block are known (before issue 11 the merged cursor reported
    /// it as corruption of a made-up file `<iterator>` at offset 0).
    #[test]
    fn an_entry_whose_key_is_not_an_internal_key_is_corruption() {
        // An empty user key sorts before both bad keys (whose trailers are lost or unknown).
        let good = internal_key(b"", 1, ValueKind::Put);
        let mut bad_kind = internal_key(b"b", 1, ValueKind::Put);
        bad_kind[1] = 9; // the kind byte of the trailer
        for bad in [b"short".to_vec(), bad_kind] {
            let mut b = BlockBuilder::new(2);
            b.add(&good, b"v");
            b.add(&bad, b"w");
            let block = Arc::new(Block::new(Bytes::copy_from_slice(b.finish()), path(), 4096).unwrap());
            let mut it = BlockIter::new(block);
            it.seek_to_first().unwrap();
            assert_eq!(it.key(), &good[..]);
            match it.next().unwrap_err() {
                Error::Corruption { file, offset, what } => {
                    assert_eq!((file.as_path(), offset), (Path::new("test.sst"), Some(4096)));
                    assert!(what.contains("is not an internal key"), "{what}");
                }
                e => panic!("{e}"),
            }
            assert!(!it.valid());
        }
    }

    #[test]
    fn bad_restart_arrays_are_corruption() {
        let good = {
            let mut b = BlockBuilder::new(2);
            for (k, v) in entries(3) {
                b.add(&k, &v);
            }
            b.finish().to_vec()
        };
        let n = good.len();
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![1, 0],
            (u32::MAX).to_le_bytes().to_vec(),
            {
                let mut b = good.clone(); // count too large for the block
                b[n - 4] = 200;
                b
            },
            {
                let mut b = good.clone(); // first restart not 0
                let at = n - 4 - 4 * 3;
                b[at] = 1;
                b
            },
            {
                let mut b = good.clone(); // restart beyond the entries
                let at = n - 8;
                b[at..at + 4].copy_from_slice(&(n as u32).to_le_bytes());
                b
            },
            vec![5, 5, 5, 5, 0, 0, 0, 0], // entries but no restart
        ];
        for (i, c) in cases.into_iter().enumerate() {
            let e = Block::new(Bytes::from(c), path(), 0).unwrap_err();
            assert!(e.is_corruption(), "case {i}: {e}");
        }
    }

    #[test]
    fn every_damaged_byte_is_corruption_or_harmless() {
        let items = entries(6);
        let mut b = BlockBuilder::new(3);
        for (k, v) in &items {
            b.add(k, v);
        }
        let good = b.finish().to_vec();
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] ^= flip;
                let Ok(block) = Block::new(Bytes::from(bad), path(), 0) else {
                    continue;
                };
                let block = Arc::new(block);
                let mut it = BlockIter::new(block);
                // Every movement either works or reports corruption; none panics or loops.
                let mut steps = 0;
                let mut r = it.seek_to_first();
                while r.is_ok() && it.valid() && steps < 100 {
                    r = it.next();
                    steps += 1;
                }
                let mut r2 = it.seek_to_last();
                while r2.is_ok() && it.valid() && steps < 200 {
                    r2 = it.prev();
                    steps += 1;
                }
                for (k, _) in &items {
                    for res in [it.seek(k), it.seek_for_prev(k)] {
                        if let Err(e) = res {
                            assert!(e.is_corruption());
                            assert!(!it.valid());
                        }
                    }
                }
                for res in [r, r2] {
                    if let Err(e) = res {
                        assert!(e.is_corruption());
                    }
                }
            }
        }
    }
}
