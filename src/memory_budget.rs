//! [`Options::memory_budget`](crate::Options::memory_budget): one number an application sets,
//! divided between kho's two large memory users — the memtables and the block cache.
//!
//! The split: half for the memtables (`1 + max_immutable_memtables` of them, each
//! `write_buffer_size` plus its `memtable_bloom_ratio` filter, write buffer at most
//! [`MAX_WRITE_BUFFER_LEN`]); the rest for the block cache, including its pool's slack (the
//! pool maps up to `capacity + max(capacity / 8, 1 MiB)`, see `sst/block_pool.rs`). Half and
//! half is RocksDB's `WriteBufferManager` advice for a shared budget, and it keeps the
//! default 64 MiB memtable for a budget of about 400 MiB.
//!
//! Outside the budget, each bounded as `docs/benchmarks.md` ("Memory") describes: table
//! readers' index and filter blocks (about `bloom_bits_per_key / 8` bytes a key plus one
//! index entry a data block), a memtable's overshoot of one commit group, compaction and
//! flush buffers (one output block, the filter's key hashes for one output file), iterators'
//! pinned blocks beyond the pool's slack, and what the allocator keeps after freeing.

use crate::limits::MAX_WRITE_BUFFER_LEN;
use crate::{Error, Options, Result};

/// Smallest write buffer a budget may leave: smaller memtables make tiny level-0 files.
pub const MIN_BUDGET_WRITE_BUFFER: usize = 1 << 20;

/// Smallest block cache a budget may leave.
pub const MIN_BUDGET_CACHE: usize = 1 << 20;

/// Largest budget accepted: 256 TiB, far above any machine kho runs on; a larger number is
/// a unit mistake, not a budget.
pub const MAX_MEMORY_BUDGET: usize = 1 << 48;

/// Slack the block cache's pool may map above the capacity (see `sst/block_pool.rs`).
fn pool_slack(capacity: usize) -> usize {
    (capacity / 8).max(1 << 20)
}

/// Bytes one memtable with its bloom filter costs for a write buffer of `wb` bytes.
fn memtable_cost(wb: usize, bloom_ratio: f64) -> usize {
    wb.saturating_add((wb as f64 * bloom_ratio) as usize)
}

/// The smallest budget `opts` accept (their `max_immutable_memtables` and
/// `memtable_bloom_ratio` set how many memtables share the first half).
pub fn min_memory_budget(opts: &Options) -> usize {
    let memtables = opts.max_immutable_memtables.saturating_add(1);
    let mem_half = memtable_cost(MIN_BUDGET_WRITE_BUFFER, opts.memtable_bloom_ratio).saturating_mul(memtables);
    let cache_half = MIN_BUDGET_CACHE + pool_slack(MIN_BUDGET_CACHE);
    // Both halves must fit; +1 per memtable covers the rounding down of the division.
    mem_half.saturating_add(memtables).max(cache_half).saturating_mul(2)
}

/// Replaces `write_buffer_size` and `block_cache_capacity` by the shares of
/// `opts.memory_budget`, if set; [`Error::InvalidArgument`] if the budget is too small.
pub(crate) fn apply(opts: &mut Options) -> Result<()> {
    let Some(budget) = opts.memory_budget else { return Ok(()) };
    let min = min_memory_budget(opts);
    if budget < min {
        return Err(Error::InvalidArgument(format!(
            "memory_budget of {budget} bytes is too small: at least {min} bytes ({} MiB) with \
             max_immutable_memtables = {} (each memtable needs {MIN_BUDGET_WRITE_BUFFER} bytes, \
             the block cache {MIN_BUDGET_CACHE} bytes plus its pool's slack)",
            min.div_ceil(1 << 20),
            opts.max_immutable_memtables
        )));
    }
    if budget > MAX_MEMORY_BUDGET {
        return Err(Error::InvalidArgument(format!(
            "memory_budget of {budget} bytes is larger than {MAX_MEMORY_BUDGET} (256 TiB): a unit mistake?"
        )));
    }
    let memtables = opts.max_immutable_memtables.saturating_add(1);
    let per_memtable = (budget / 2) / memtables;
    let wb = ((per_memtable as f64 / (1.0 + opts.memtable_bloom_ratio)) as usize).min(MAX_WRITE_BUFFER_LEN);
    let mem_total = memtable_cost(wb, opts.memtable_bloom_ratio).saturating_mul(memtables);
    let cache_share = budget.saturating_sub(mem_total);
    // The largest capacity whose pool (capacity plus slack) fits the share.
    let capacity = (cache_share / 9 * 8).min(cache_share.saturating_sub(1 << 20));
    opts.write_buffer_size = wb;
    opts.block_cache_capacity = capacity;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(budget: usize) -> Result<Options> {
        let mut o = Options { memory_budget: Some(budget), ..Options::default() };
        apply(&mut o)?;
        o.validate()?;
        Ok(o)
    }

    /// What the budget covers: memtables with their filters, the cache with its pool slack.
    fn covered(o: &Options) -> usize {
        memtable_cost(o.write_buffer_size, o.memtable_bloom_ratio) * (o.max_immutable_memtables + 1)
            + o.block_cache_capacity
            + pool_slack(o.block_cache_capacity)
    }

    #[test]
    fn unset_budget_leaves_the_options_alone() {
        let mut o = Options { write_buffer_size: 5 << 20, block_cache_capacity: 7 << 20, ..Options::default() };
        apply(&mut o).unwrap();
        assert_eq!((o.write_buffer_size, o.block_cache_capacity), (5 << 20, 7 << 20));
    }

    #[test]
    fn at_below_and_above_the_minimum() {
        let min = min_memory_budget(&Options::default());
        assert!(min > 6 << 20 && min < 8 << 20, "{min}");
        let o = resolved(min).unwrap();
        assert!(o.write_buffer_size >= MIN_BUDGET_WRITE_BUFFER, "{o:?}");
        assert!(o.block_cache_capacity >= MIN_BUDGET_CACHE, "{o:?}");
        assert!(covered(&o) <= min, "{} > {min}", covered(&o));
        for below in [min - 1, 1 << 20, 0] {
            let e = resolved(below).unwrap_err();
            assert!(matches!(&e, Error::InvalidArgument(m) if m.contains("memory_budget")), "{e}");
            assert!(e.to_string().contains(&min.to_string()), "the error names the minimum: {e}");
        }
        // More memtables need a larger minimum.
        let many = Options { max_immutable_memtables: 8, ..Options::default() };
        assert!(min_memory_budget(&many) > min);
    }

    #[test]
    fn shares_fit_the_budget_and_grow_with_it() {
        let mut last = (0, 0);
        for mib in [8usize, 64, 256, 400, 1024, 8 << 10] {
            let budget = mib << 20;
            let o = resolved(budget).unwrap();
            assert!(covered(&o) <= budget, "{mib} MiB: {o:?}");
            assert!(covered(&o) >= budget - budget / 50, "{mib} MiB: most of the budget is used, {o:?}");
            assert!(o.write_buffer_size >= last.0 && o.block_cache_capacity > last.1);
            last = (o.write_buffer_size, o.block_cache_capacity);
        }
        // About 400 MiB keeps the default 64 MiB memtable.
        let o = resolved(400 << 20).unwrap();
        assert!((o.write_buffer_size as i64 - (64 << 20)).abs() < 2 << 20, "{o:?}");
    }

    #[test]
    fn huge_budgets_cap_the_write_buffer_and_give_the_rest_to_the_cache() {
        let o = resolved(16 << 30).unwrap();
        assert_eq!(o.write_buffer_size, MAX_WRITE_BUFFER_LEN);
        assert!(o.block_cache_capacity > 11 << 30, "{o:?}");
        let o = resolved(MAX_MEMORY_BUDGET).unwrap();
        assert_eq!(o.write_buffer_size, MAX_WRITE_BUFFER_LEN);
        assert!(covered(&o) <= MAX_MEMORY_BUDGET);
        for above in [MAX_MEMORY_BUDGET + 1, usize::MAX] {
            let e = resolved(above).unwrap_err();
            assert!(matches!(&e, Error::InvalidArgument(m) if m.contains("unit mistake")), "{e}");
        }
    }
}
