//! [`BlockBuilder`]: encodes sorted entries into one raw block (data or index).
//!
//! Raw block layout (see `docs/sst-format.md`, "Blocks"):
//! `entry* | restart: u32 LE * n | n: u32 LE`, each entry
//! `shared: varint | unshared: varint | value_len: varint | key[shared..] | value`.
//! Every `restart_interval`-th entry is a restart point: it stores its key whole
//! (`shared = 0`) and its offset is listed in the restart array.
//!
//! Invariants: keys are added in strictly increasing [`compare_internal`] order (checked by
//! the caller, `debug_assert`ed here); a non-empty block's first restart is offset 0; an empty
//! block is just `n = 0`. The builder keeps its buffers across [`BlockBuilder::reset`], so
//! steady-state adds do not allocate.

#[cfg(debug_assertions)]
use crate::key::compare_internal;
use crate::sst::format::RESTART_LEN;
use crate::util::coding::{put_varint, varint_len};

/// Builds one raw block. Unstable internal API (public only through `kho::internals`).
#[derive(Debug)]
pub struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    /// Entries since the last restart point.
    counter: usize,
    entries: usize,
    last_key: Vec<u8>,
    finished: bool,
}

impl BlockBuilder {
    /// A builder placing a restart point every `restart_interval` entries (at least 1).
    pub fn new(restart_interval: usize) -> Self {
        BlockBuilder {
            buf: Vec::new(),
            restarts: Vec::new(),
            restart_interval: restart_interval.max(1),
            counter: 0,
            entries: 0,
            last_key: Vec::new(),
            finished: false,
        }
    }

    /// Appends an entry. `key` must sort after the previous key, the block must not be
    /// finished, and the block must stay under 4 GiB (the caller bounds block sizes far below).
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        debug_assert!(!self.finished, "add after finish");
        #[cfg(debug_assertions)]
        debug_assert!(
            self.entries == 0 || compare_internal(&self.last_key, key).is_lt(),
            "keys must be added in increasing order"
        );
        let mut shared = 0;
        if self.counter < self.restart_interval && self.entries > 0 {
            shared = self.last_key.iter().zip(key).take_while(|(a, b)| a == b).count();
        } else {
            self.restarts.push(self.buf.len() as u32);
            self.counter = 0;
        }
        let unshared = &key[shared..];
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, unshared.len() as u64);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(unshared);
        self.buf.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(unshared);
        self.counter += 1;
        self.entries += 1;
    }

    /// Bytes [`BlockBuilder::finish`] would return now.
    pub fn size_estimate(&self) -> usize {
        self.buf.len() + (self.restarts.len() + 1) * RESTART_LEN
    }

    /// Bytes the block would grow by if `(key, value)` were added now (an upper bound).
    pub(crate) fn entry_size_bound(key: &[u8], value: &[u8]) -> usize {
        3 * varint_len(u64::MAX) + key.len() + value.len() + RESTART_LEN
    }

    /// Appends the restart array and returns the finished raw block. Call
    /// [`BlockBuilder::reset`] before adding again.
    pub fn finish(&mut self) -> &[u8] {
        if !self.finished {
            for r in &self.restarts {
                self.buf.extend_from_slice(&r.to_le_bytes());
            }
            self.buf.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
            self.finished = true;
        }
        &self.buf
    }

    /// Empties the builder, keeping its buffers.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.restarts.clear();
        self.counter = 0;
        self.entries = 0;
        self.last_key.clear();
        self.finished = false;
    }

    /// True when no entry has been added since the last reset.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The last key added (empty when the block is empty).
    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{internal_key, ValueKind};

    #[test]
    fn layout_of_a_small_block() {
        let ik = |k: &[u8]| internal_key(k, 1, ValueKind::Put);
        let trailer = &ik(b"")[..];
        let mut b = BlockBuilder::new(2);
        b.add(&ik(b"apple"), b"1");
        b.add(&ik(b"apply"), b"22");
        b.add(&ik(b"banana"), b"");
        assert_eq!(b.last_key(), &ik(b"banana")[..]);
        let est = b.size_estimate();
        let raw = b.finish().to_vec();
        assert_eq!(raw.len(), est);
        let mut want = Vec::new();
        want.extend_from_slice(&[0, 13, 1]);
        want.extend_from_slice(&ik(b"apple"));
        want.extend_from_slice(b"1");
        want.extend_from_slice(&[4, 9, 2, b'y']);
        want.extend_from_slice(trailer);
        want.extend_from_slice(b"22");
        let third = want.len() as u32;
        want.extend_from_slice(&[0, 14, 0]);
        want.extend_from_slice(&ik(b"banana"));
        want.extend_from_slice(&0u32.to_le_bytes());
        want.extend_from_slice(&third.to_le_bytes());
        want.extend_from_slice(&2u32.to_le_bytes());
        assert_eq!(raw, want);
        b.reset();
        assert!(b.is_empty());
        assert_eq!(b.finish(), &0u32.to_le_bytes());
    }
}
