//! `Db::close` gives back the memtables' and the block cache's memory at once, not when the
//! last handle drops; cursors opened before keep their data, and a read racing with the close
//! answers correctly or with `Error::Closed`, never from a view missing the memtables.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kho::{Db, Error, Options};

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

#[test]
fn close_releases_memtables_and_cache_but_open_cursors_keep_reading() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for i in 0..2_000 {
        db.put(key(i), vec![b'v'; 100]).unwrap();
    }
    db.flush().unwrap();
    for i in 2_000..4_000 {
        db.put(key(i), vec![b'w'; 100]).unwrap();
    }
    // Read every flushed key once so that the cache holds blocks.
    for i in 0..2_000 {
        assert!(db.get(key(i)).unwrap().is_some());
    }
    let before = db.stats();
    assert!(before.memtable_bytes > 200_000 && before.cache_pool_bytes > 0, "{before:?}");
    let cursor = db.iter().unwrap();

    db.close().unwrap();
    let after = db.stats();
    assert!(after.memtable_bytes < 1024, "only an empty memtable's head is left: {after:?}");
    assert_eq!(after.immutable_memtables, 0, "{after:?}");
    assert_eq!(after.cache_pool_bytes, 0, "{after:?}");
    assert!(matches!(db.get(key(3_000)), Err(Error::Closed)));
    assert!(matches!(db.iter(), Err(Error::Closed)));

    // The cursor opened before the close still sees both the table and the memtable.
    let n = cursor.inspect(|kv| assert!(kv.is_ok(), "{kv:?}")).count();
    assert_eq!(n, 4_000);
    drop(db);

    // Nothing was lost: the memtable's writes are in the log.
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.iter().unwrap().count(), 4_000);
    assert_eq!(db.get(key(3_999)).unwrap().as_deref(), Some(&[b'w'; 100][..]));
}

/// A smoke test of reads on other threads while `close` runs: each answers the right value
/// or `Closed`. The order that makes this hold (`DbInner::open_read_view` checks the closed
/// mark after loading its view) matters only within a window too narrow to hit reliably:
/// with the check moved before the load this test still passed three runs out of three.
#[test]
fn reads_racing_with_close_answer_correctly_or_closed() {
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path(), Options::default()).unwrap());
        // Only in the memtable: a read from a view without memtables would miss it.
        for i in 0..100 {
            db.put(key(i), b"present").unwrap();
        }
        let started = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|t| {
                let (db, started) = (Arc::clone(&db), Arc::clone(&started));
                std::thread::spawn(move || {
                    let mut answered = 0u32;
                    for n in 0u32.. {
                        started.store(true, Ordering::Release);
                        match db.get(key((n * 7 + t) % 100)) {
                            Ok(v) => {
                                assert_eq!(v.as_deref(), Some(&b"present"[..]), "a read during close lost a write");
                                answered += 1;
                            }
                            Err(Error::Closed) => return answered,
                            Err(e) => panic!("unexpected error {e}"),
                        }
                    }
                    answered
                })
            })
            .collect();
        while !started.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        db.close().unwrap();
        for r in readers {
            r.join().unwrap();
        }
    }
}
