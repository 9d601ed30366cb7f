//! `Options::memory_budget`: too small or absurdly large budgets are refused at open with
//! `InvalidArgument`; a small valid one runs a database whose memtables flush at their share
//! and whose block cache stays within the rest.
#![allow(clippy::unwrap_used, clippy::panic)]

use kho::{min_memory_budget, Db, Error, Options, MAX_MEMORY_BUDGET};

#[test]
fn budgets_outside_the_limits_are_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let min = min_memory_budget(&Options::default());
    for budget in [0, min - 1, MAX_MEMORY_BUDGET + 1] {
        let opts = Options { memory_budget: Some(budget), ..Options::default() };
        match Db::open(dir.path(), opts.clone()) {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("memory_budget"), "{m}"),
            other => panic!("budget {budget}: {other:?}"),
        }
        assert!(matches!(Db::open_read_only(dir.path(), opts), Err(Error::InvalidArgument(_))));
    }
}

#[test]
fn a_small_budget_bounds_the_memtable_and_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 8 << 20;
    let db = Db::open(dir.path(), Options { memory_budget: Some(budget), ..Options::default() }).unwrap();
    let value = |i: u32| format!("{i:010}").repeat(10);
    for i in 0..60_000u32 {
        db.put(format!("key{:08}", (u64::from(i) * 7919) % 60_000), value(i)).unwrap();
        // The active memtable never holds more than its share (plus one write).
        if i % 1000 == 0 {
            assert!(db.stats().memtable_bytes <= budget / 2 / 3 + 4096, "{:?}", db.stats());
        }
    }
    db.flush().unwrap();
    let stats = db.stats();
    assert!(stats.levels.iter().map(|l| l.files).sum::<usize>() > 1, "the ~6 MiB of data was flushed: {stats:?}");
    for i in (0..60_000u32).step_by(7) {
        let k = format!("key{:08}", (u64::from(i) * 7919) % 60_000);
        assert_eq!(db.get(&k).unwrap().as_deref(), Some(value(i).as_bytes()), "{k}");
    }
    let stats = db.stats();
    assert!(stats.cache_misses > 0 && stats.cache_pool_bytes > 0, "{stats:?}");
    assert!(stats.cache_pool_bytes <= (budget / 2) as u64, "the cache and its pool fit their half: {stats:?}");
}
