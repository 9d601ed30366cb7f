//! The public API end to end on the real file system: writes, reads, ranges in both
//! directions, snapshots, flush, reopen, close, the lock file and argument checks.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use kho::{Db, Error, Options, WriteBatch, WriteOptions};

fn open(dir: &std::path::Path) -> Db {
    Db::open(dir, Options { write_buffer_size: 64 << 10, ..Options::default() }).unwrap()
}

fn keys(it: impl Iterator<Item = kho::Result<(bytes::Bytes, bytes::Bytes)>>) -> Vec<String> {
    it.map(|kv| String::from_utf8(kv.unwrap().0.to_vec()).unwrap()).collect()
}

#[test]
fn put_get_delete_and_batches() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.put("a", "1").unwrap();
    db.put("b", "2").unwrap();
    assert_eq!(db.get("a").unwrap().unwrap(), "1");
    db.delete("a").unwrap();
    assert_eq!(db.get("a").unwrap(), None);
    let mut batch = WriteBatch::new();
    batch.put("c", "3");
    batch.put("c", "33"); // later operations in a batch win
    batch.delete("b");
    db.write(batch, &WriteOptions::synced()).unwrap();
    assert_eq!(db.get("c").unwrap().unwrap(), "33");
    assert_eq!(db.get("b").unwrap(), None);
    assert!(db.contains_key("c").unwrap());
    db.write(WriteBatch::new(), &WriteOptions::default()).unwrap(); // empty batch is a no-op
}

#[test]
fn ranges_forward_reverse_and_mixed() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    for k in ["a", "b", "c", "d", "e"] {
        db.put(k, k).unwrap();
    }
    db.delete("c").unwrap();
    assert_eq!(keys(db.iter().unwrap()), ["a", "b", "d", "e"]);
    assert_eq!(keys(db.range("b".."e").unwrap()), ["b", "d"]);
    assert_eq!(keys(db.range("b"..="e").unwrap().rev()), ["e", "d", "b"]);
    assert_eq!(keys(db.range(.."b").unwrap()), ["a"]);
    assert_eq!(keys(db.prefix("d").unwrap()), ["d"]);
    let mut it = db.iter().unwrap();
    assert_eq!(it.next().unwrap().unwrap().0, "a");
    assert_eq!(it.next_back().unwrap().unwrap().0, "e");
    assert_eq!(it.next_back().unwrap().unwrap().0, "d");
    assert_eq!(it.next().unwrap().unwrap().0, "b");
    assert!(it.next().is_none(), "the ends met");
    assert!(it.next_back().is_none());
    let mut it = db.iter().unwrap();
    it.seek("c");
    assert_eq!(keys(it), ["d", "e"]);

    // Seeks move backwards as well as forwards, and never leave the iterator's range.
    let mut it = db.range("b"..).unwrap();
    it.seek("e");
    assert_eq!(it.next().unwrap().unwrap().0, "e");
    it.seek("a");
    assert_eq!(it.next().unwrap().unwrap().0, "b", "a seek below the range starts at its lower bound");
    it.seek("d");
    it.seek("b");
    assert_eq!(it.next().unwrap().unwrap().0, "b", "a seek backwards restarts lower");
    it.seek("d");
    assert_eq!(it.next_back().unwrap().unwrap().0, "e");
    assert_eq!(it.next_back().unwrap().unwrap().0, "d");
    assert!(it.next_back().is_none(), "after a seek the back end stops at the seek target");
}

#[test]
fn iterators_and_snapshots_are_isolated_from_later_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.put("k", "old").unwrap();
    let snap = db.snapshot();
    let it = db.iter().unwrap();
    db.put("k", "new").unwrap();
    db.put("z", "later").unwrap();
    db.flush().unwrap();
    assert_eq!(snap.get("k").unwrap().unwrap(), "old");
    assert_eq!(snap.get("z").unwrap(), None);
    assert_eq!(keys(it), ["k"]);
    assert_eq!(keys(snap.iter().unwrap()), ["k"]);
    assert_eq!(db.get("k").unwrap().unwrap(), "new");
}

#[test]
fn data_survives_flush_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        for i in 0..5000u32 {
            db.put(format!("key{i:06}"), format!("value-{i}-{}", "x".repeat(50))).unwrap();
        }
        db.flush().unwrap();
        for i in 0..100u32 {
            db.delete(format!("key{i:06}")).unwrap();
        }
        let stats = db.stats();
        assert!(stats.levels.iter().map(|l| l.files).sum::<usize>() >= 1, "{stats:?}");
        db.close().unwrap();
        assert!(matches!(db.get("key000200"), Err(Error::Closed)));
    }
    let db = open(dir.path());
    assert_eq!(db.get("key000050").unwrap(), None);
    assert_eq!(db.get("key004999").unwrap().unwrap(), format!("value-4999-{}", "x".repeat(50)));
    assert_eq!(db.iter().unwrap().count(), 4900);
    assert_eq!(db.iter().unwrap().rev().count(), 4900);
}

#[test]
fn second_opener_gets_busy_and_close_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    match Db::open(dir.path(), Options::default()) {
        Err(Error::Busy { .. }) => {}
        other => panic!("expected Busy, got {other:?}"),
    }
    db.close().unwrap();
    let again = open(dir.path());
    drop(again);
    let _third = open(dir.path()); // dropping the last handle released it too
}

#[test]
fn oversized_keys_and_values_are_refused_without_side_effects() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options { max_key_size: 16, max_value_size: 32, ..Options::default() }).unwrap();
    assert!(matches!(db.put(vec![b'k'; 17], "v"), Err(Error::InvalidArgument(_))));
    assert!(matches!(db.put("k", vec![0u8; 33]), Err(Error::InvalidArgument(_))));
    let mut batch = WriteBatch::new();
    batch.put("fine", "fine");
    batch.put(vec![b'k'; 17], "v");
    assert!(matches!(db.write(batch, &WriteOptions::default()), Err(Error::InvalidArgument(_))));
    assert_eq!(db.get("fine").unwrap(), None, "a refused batch applies nothing");
    db.put(vec![b'k'; 16], vec![1u8; 32]).unwrap();
}

#[test]
fn open_options_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    assert!(matches!(
        Db::open(&missing, Options { create_if_missing: false, ..Options::default() }),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        Db::open(dir.path(), Options { block_size: 1, ..Options::default() }),
        Err(Error::InvalidArgument(_))
    ));
    drop(Db::open(dir.path(), Options::default()).unwrap());
    assert!(matches!(
        Db::open(dir.path(), Options { error_if_exists: true, ..Options::default() }),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn concurrent_writers_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    std::thread::scope(|s| {
        for t in 0..8 {
            let db = db.clone();
            s.spawn(move || {
                for i in 0..500 {
                    let opts = WriteOptions { sync: i % 50 == 0 };
                    let mut b = WriteBatch::new();
                    b.put(format!("t{t}-{i:04}"), format!("{i}"));
                    db.write(b, &opts).unwrap();
                }
            });
        }
    });
    assert_eq!(db.iter().unwrap().count(), 4000);
    assert_eq!(db.last_sequence(), 4000);
    db.close().unwrap();
    let db = open(dir.path());
    assert_eq!(db.iter().unwrap().count(), 4000);
    assert_eq!(db.last_sequence(), 4000);
}
