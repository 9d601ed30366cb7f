//! With a block cache a few blocks large, nearly every read decodes a block into the cache's
//! buffer pool and evicts another: point reads, scans both ways and cursors held across that
//! churn (on several threads) must still see exactly the data written, and the pool's memory
//! must stay within its bound and go back when the database closes.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;

use kho::{Db, Options};

fn value(i: u64) -> Vec<u8> {
    format!("value-{i:08}-").repeat(8).into_bytes()
}

#[test]
fn reads_through_a_tiny_cache_return_the_written_data() {
    let dir = tempfile::tempdir().unwrap();
    let cache = 16 << 10;
    let opts = Options { write_buffer_size: 256 << 10, block_cache_capacity: cache, ..Options::default() };
    let db = Db::open(dir.path(), opts).unwrap();
    let mut model = BTreeMap::new();
    for i in 0..20_000u64 {
        let k = format!("key{:08}", (i * 7919) % 20_000);
        db.put(&k, value(i)).unwrap();
        model.insert(k.into_bytes(), value(i));
    }
    db.flush().unwrap();

    // A cursor opened before the churn, read after it.
    let mut early = db.iter().unwrap();
    let first = early.next().unwrap().unwrap();
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let (db, model) = (&db, &model);
            s.spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                for _ in 0..5_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = format!("key{:08}", x % 20_000);
                    assert_eq!(db.get(&k).unwrap().as_deref(), model.get(k.as_bytes()).map(|v| &v[..]), "{k}");
                }
                let scanned: Vec<_> = db.iter().unwrap().rev().map(|kv| kv.unwrap()).collect();
                assert_eq!(scanned.len(), model.len());
                for ((k, v), (mk, mv)) in scanned.iter().zip(model.iter().rev()) {
                    assert_eq!((&k[..], &v[..]), (&mk[..], &mv[..]));
                }
            });
        }
    });
    let stats = db.stats();
    assert!(stats.cache_misses > 10_000, "the cache was churned: {stats:?}");
    assert!(stats.cache_usage <= cache as u64, "{stats:?}");
    assert!(stats.cache_pool_bytes <= (cache + (1 << 20)) as u64, "{stats:?}");
    assert!(stats.cache_pool_bytes > 0, "blocks are decoded into the pool: {stats:?}");

    let (fk, fv) = first;
    let (mk, mv) = model.iter().next().unwrap();
    assert_eq!((&fk[..], &fv[..]), (&mk[..], &mv[..]));
    let rest: Vec<_> = early.map(|kv| kv.unwrap()).collect();
    assert_eq!(rest.len(), model.len() - 1);
    for ((k, v), (mk, mv)) in rest.iter().zip(model.iter().skip(1)) {
        assert_eq!((&k[..], &v[..]), (&mk[..], &mv[..]));
    }
    drop((rest, fk, fv));
    db.close().unwrap();
    assert_eq!(db.stats().cache_pool_bytes, 0, "a closed database's pool is unmapped");
}
