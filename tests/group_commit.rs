//! Group commit: concurrent writers, synced or not, are all acknowledged, all readable, and
//! survive a reopen; the commit counters add up (every batch in exactly one group, one log
//! fsync per group holding a synced write).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kho::{Db, Options, WriteBatch, WriteOptions};

const THREADS: usize = 8;
const PER_THREAD: usize = 150;

fn key(t: usize, i: usize) -> String {
    format!("t{t:02}-{i:05}")
}

#[test]
fn concurrent_writers_share_groups_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let db = db.clone();
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let mut b = WriteBatch::new();
                    b.put(key(t, i), format!("v{i}"));
                    // Odd threads write synced batches, even ones not: groups mix both.
                    db.write(b, &WriteOptions { sync: t % 2 == 1 }).unwrap();
                }
            });
        }
    });
    let stats = db.stats();
    let total = (THREADS * PER_THREAD) as u64;
    assert_eq!(stats.write_batches, total);
    assert!(stats.write_groups >= 1 && stats.write_groups <= total, "{stats:?}");
    assert!(stats.log_syncs <= stats.write_groups, "{stats:?}");
    // Every synced write was in a group that fsynced: at least one fsync per synced writer's
    // last write, and never more fsyncs than synced writes.
    assert!(stats.log_syncs >= 1 && stats.log_syncs <= total / 2, "{stats:?}");
    db.close().unwrap();

    let db = Db::open(dir.path(), Options::default()).unwrap();
    for t in 0..THREADS {
        for i in 0..PER_THREAD {
            assert_eq!(db.get(key(t, i)).unwrap().unwrap(), format!("v{i}"), "{}", key(t, i));
        }
    }
}

#[test]
fn a_lone_synced_writer_fsyncs_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for i in 0..50 {
        let mut b = WriteBatch::new();
        b.put(key(0, i), "v");
        db.write(b, &WriteOptions { sync: true }).unwrap();
    }
    let stats = db.stats();
    assert_eq!((stats.write_batches, stats.write_groups, stats.log_syncs), (50, 50, 50));
}
