//! Every size limit, derived in one place from the on-disk formats, so that **every write the
//! database acknowledges can be logged, flushed, compacted and reopened**: a write is checked
//! against the options at the call, and [`crate::Options`] is checked at open against the
//! bounds here, which the later stages accept by construction (`const` assertions below).
//!
//! The chain:
//! - a key of at most [`MAX_KEY_LEN`] and a value of at most [`MAX_VALUE_LEN`] make one
//!   SSTable entry (internal key = key + 8-byte trailer) that fits one block
//!   (`sst::format::MAX_ENTRY_LEN`);
//! - a batch of at most [`MAX_BATCH_LEN`] bytes is one WAL record (`wal::format::MAX_PAYLOAD`);
//! - a table's index is one block, so it must stay under `MAX_BLOCK_RAW_LEN` too. Flushes
//!   and compactions cut their output at the next user key once the index passes
//!   [`INDEX_CUT_LEN`]; past that point (one user key with very many versions) the table
//!   writer makes data blocks at least [`LARGE_BLOCK_LEN`] long, so that what one memtable can
//!   hold ([`MAX_WRITE_BUFFER_LEN`] plus one batch) adds at most a bounded number of index
//!   entries. What is left unbounded: a compaction merging more than about 1.5 GiB of versions
//!   of one user key that snapshots keep alive.

use crate::key::TRAILER_LEN;
use crate::sst::format::{MAX_BLOCK_RAW_LEN, MAX_ENTRY_LEN};
use crate::wal::format::MAX_PAYLOAD;

/// The largest `Options::max_key_size`: 256 KiB. Keys are repeated in index blocks and
/// compared on every lookup; larger keys belong in values.
pub const MAX_KEY_LEN: usize = 256 << 10;

/// The largest `Options::max_value_size` (64 MiB minus 256 KiB and 72 bytes): a value this
/// size with a key of [`MAX_KEY_LEN`] still fits one SSTable block.
pub const MAX_VALUE_LEN: usize = MAX_ENTRY_LEN - TRAILER_LEN - MAX_KEY_LEN;

/// The largest `Options::max_batch_size`: 512 MiB (half the WAL's record limit).
pub const MAX_BATCH_LEN: usize = 512 << 20;

/// The largest `Options::write_buffer_size`: 1 GiB.
pub const MAX_WRITE_BUFFER_LEN: usize = 1 << 30;

/// Flush and compaction outputs are cut at the next user key once their index passes this.
pub(crate) const INDEX_CUT_LEN: usize = 16 << 20;

/// Once a table's index passes [`INDEX_CUT_LEN`], data blocks are cut no shorter than this.
pub(crate) const LARGE_BLOCK_LEN: usize = MAX_BLOCK_RAW_LEN / 2;

/// Upper bound of one index entry: a separator key (a whole internal key), a block handle
/// (two varints) and the entry header (three varints).
const MAX_INDEX_ENTRY_LEN: usize = MAX_KEY_LEN + TRAILER_LEN + 20 + 15;

/// The most a memtable holds when it is flushed: it rotates once it reaches the write buffer
/// size, before a commit group of at most one batch (or 1 MiB of small ones) is added.
const MAX_MEMTABLE_DATA: usize = MAX_WRITE_BUFFER_LEN + MAX_BATCH_LEN + (1 << 20);

const _: () = {
    assert!(MAX_KEY_LEN + TRAILER_LEN + MAX_VALUE_LEN <= MAX_ENTRY_LEN);
    assert!(MAX_BATCH_LEN <= MAX_PAYLOAD as usize);
    // Past the cut, every two consecutive data blocks hold more than MAX_BLOCK_RAW_LEN bytes
    // together (a block is cut short only when the next entry would not fit), so one
    // memtable's worth of data adds at most 2 * data / MAX_BLOCK_RAW_LEN + 1 index entries.
    assert!(
        INDEX_CUT_LEN + MAX_INDEX_ENTRY_LEN + (2 * MAX_MEMTABLE_DATA / MAX_BLOCK_RAW_LEN + 1) * MAX_INDEX_ENTRY_LEN
            <= MAX_BLOCK_RAW_LEN
    );
};
