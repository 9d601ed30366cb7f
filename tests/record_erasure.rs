//! Provable erasure: after `erase_person` and `purge_erased` (`Db::compact_range` over the
//! erased keys), no byte of the erased payloads remains in any live file of the database
//! directory — checked by searching the raw files, which held them before — and no byte of
//! the person's national ID or primary keys either (index keys, tombstones, the manifest's
//! boundary keys), nor any block in the block cache; and a purge that a live snapshot or an
//! open iterator prevents says so instead of succeeding.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use kho::record::population::{Event, Population};
use kho::record::{NationalId, Store, StoreOptions};
use kho::{Db, Options};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug)]
struct Secret {
    note: String,
}

/// Options that store blocks uncompressed (so a payload is findable as plain bytes) and
/// flush often (so the data spreads over the log, level 0 and deeper levels).
fn options() -> Options {
    Options { compression_level: 0, write_buffer_size: 64 << 10, block_size: 1024, ..Options::default() }
}

fn open(dir: &Path) -> Store {
    Store::open(Db::open(dir, options()).unwrap(), StoreOptions::default()).unwrap()
}

fn ingest_background(store: &Store, pop: &Population) {
    let mut batch = store.batch();
    for e in pop.events() {
        match e {
            Event::Upsert(r) | Event::Correct(r) => {
                batch.upsert(r.collection, &r.pk, &r.id, &r.payload).unwrap();
            }
            Event::Delete { collection, pk } => {
                batch.delete(collection, &pk);
            }
        }
        if batch.len() >= 500 {
            std::mem::replace(&mut batch, store.batch()).commit().unwrap();
        }
    }
    batch.commit().unwrap();
}

/// The live files of `dir` that contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if bytes.windows(needle.len()).any(|w| w == needle) {
            hits.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    hits
}

#[test]
fn erased_payloads_leave_no_byte_in_live_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let pop = Population::new(5, 1500);
    ingest_background(&store, &pop);

    let x = NationalId::parse("079190777777").unwrap();
    let neighbour = NationalId::parse("079190777778").unwrap();
    let marker = |n: u32| format!("ERASE-ME-{n}-7f3a9c2e51d04b86");
    // Versions of the person's records spread over the deeper levels, level 0, the log and
    // the memtable; one record is overwritten, so an old version must go too.
    store.insert("tax", "8079190777", &x, &Secret { note: marker(1) }).unwrap();
    store.insert("vehicle", "51A-777.77", &x, &Secret { note: marker(2) }).unwrap();
    store.db().flush().unwrap();
    store.db().compact_range::<&[u8], _>(..).unwrap();
    store.upsert("tax", "8079190777", &x, &Secret { note: marker(3) }).unwrap();
    store.insert("residence", "079-x", &x, &Secret { note: marker(4) }).unwrap();
    store.db().flush().unwrap();
    store.insert("health_insurance", "HS479x", &x, &Secret { note: marker(5) }).unwrap();
    store.insert("tax", "8079190778", &neighbour, &Secret { note: "KEEP-ME-neighbour".into() }).unwrap();

    for n in 1..=5 {
        assert!(
            !files_containing(dir.path(), marker(n).as_bytes()).is_empty(),
            "marker {n} should be on disk before erasure (uncompressed blocks, log)"
        );
    }

    // Their blocks in the cache, too.
    assert_eq!(store.person(&x).unwrap().len(), 4);
    assert!(store.db().cached_blocks_containing(marker(2).as_bytes()) > 0);
    let pks: [&[u8]; 4] = [b"8079190777", b"51A-777.77", b"079-x", b"HS479x"];

    let erasure = store.erase_person(&x).unwrap();
    assert_eq!(erasure.records, 4);
    assert_eq!(erasure.keys.len(), 8);
    assert!(store.person(&x).unwrap().is_empty());
    store.purge_erased(&erasure).unwrap();

    for n in 1..=5 {
        let left = files_containing(dir.path(), marker(n).as_bytes());
        assert!(left.is_empty(), "payload {n} still in {left:?}");
        assert_eq!(store.db().cached_blocks_containing(marker(n).as_bytes()), 0, "payload {n} still cached");
    }
    let left = files_containing(dir.path(), x.as_bytes());
    assert!(left.is_empty(), "the erased national ID is still in {left:?}");
    assert_eq!(store.db().cached_blocks_containing(x.as_bytes()), 0);
    for pk in pks {
        let left = files_containing(dir.path(), pk);
        assert!(left.is_empty(), "primary key {:?} still in {left:?}", String::from_utf8_lossy(pk));
    }
    assert!(!files_containing(dir.path(), neighbour.as_bytes()).is_empty(), "the search finds a live ID");
    // Everyone else is intact.
    assert_eq!(store.person(&neighbour).unwrap()[0].decode::<Secret>().unwrap().note, "KEEP-ME-neighbour");
    assert!(!files_containing(dir.path(), b"KEEP-ME-neighbour").is_empty());
    let p = pop.person(7);
    let before = store.person(&p.id).unwrap().len();
    assert!(store.verify_index().unwrap().is_clean());

    // And still after a reopen (recovery must not resurrect anything).
    store.close().unwrap();
    let store = open(dir.path());
    assert!(store.person(&x).unwrap().is_empty());
    assert_eq!(store.person(&p.id).unwrap().len(), before);
    for n in 1..=5 {
        assert!(files_containing(dir.path(), marker(n).as_bytes()).is_empty());
    }
}

#[test]
fn a_purge_that_a_snapshot_or_an_iterator_prevents_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let pop = Population::new(6, 800);
    ingest_background(&store, &pop);
    let (x, y) = (NationalId::parse("079190777777").unwrap(), NationalId::parse("001185000042").unwrap());
    let (mx, my) = ("PINNED-SECRET-2b91e07c", "SNAPPED-SECRET-9d04c1aa");
    store.insert("tax", "8079190777", &x, &Secret { note: mx.into() }).unwrap();
    store.insert("tax", "8001185000", &y, &Secret { note: my.into() }).unwrap();
    store.db().flush().unwrap();

    // An open iterator holds the tables compaction deletes: their files stay.
    let erasure = store.erase_person(&x).unwrap();
    let mut it = store.db().iter().unwrap();
    assert!(it.next().is_some());
    match store.purge_erased(&erasure) {
        Err(kho::record::Error::PurgeIncomplete { snapshots: 0, tables }) => assert!(!tables.is_empty()),
        other => panic!("deleted tables an iterator holds must be reported: {other:?}"),
    }
    assert!(!files_containing(dir.path(), mx.as_bytes()).is_empty(), "the iterator's tables are still there");
    drop(it);
    store.purge_erased(&erasure).unwrap();
    assert!(files_containing(dir.path(), mx.as_bytes()).is_empty());
    assert!(files_containing(dir.path(), x.as_bytes()).is_empty());

    // A snapshot from before the erasure keeps seeing the record: compaction keeps it.
    let snap = store.db().snapshot();
    let erasure = store.erase_person(&y).unwrap();
    match store.purge_erased(&erasure) {
        Err(kho::record::Error::PurgeIncomplete { snapshots, .. }) => assert_eq!(snapshots, 1),
        other => panic!("a snapshot older than the erasure must be reported: {other:?}"),
    }
    assert!(!files_containing(dir.path(), my.as_bytes()).is_empty(), "the snapshot still sees it");
    drop(snap);
    store.purge_erased(&erasure).unwrap();
    assert!(files_containing(dir.path(), my.as_bytes()).is_empty(), "purged once the snapshot is gone");
    assert!(files_containing(dir.path(), y.as_bytes()).is_empty());
}

#[test]
fn with_the_feed_on_the_purge_also_removes_the_changes_that_carried_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        feed: kho::record::FeedOptions { enable: true, ..Default::default() },
        ..StoreOptions::default()
    };
    let store = Store::open(Db::open(dir.path(), options()).unwrap(), opts).unwrap();
    store.subscribe("agency", kho::record::SubscriptionFilter::all()).unwrap();
    let pop = Population::new(8, 600);
    ingest_background(&store, &pop);
    let x = NationalId::parse("079190777777").unwrap();
    let marker = "FEED-CARRIED-SECRET-61c0f2";
    store.insert("tax", "8079190777", &x, &Secret { note: marker.into() }).unwrap();
    // The change entry goes deep (compacted below level 0) before the erasure.
    store.db().flush().unwrap();
    store.db().compact_range::<&[u8], _>(..).unwrap();
    ingest_background(&store, &Population::new(9, 200));
    store.db().flush().unwrap();
    assert!(!files_containing(dir.path(), marker.as_bytes()).is_empty());
    let erasure = store.erase_person(&x).unwrap();
    assert!(erasure.keys.iter().any(|k| k.first() == Some(&b'F')), "the purged change is among the keys");
    store.purge_erased(&erasure).unwrap();
    let left = files_containing(dir.path(), marker.as_bytes());
    assert!(left.is_empty(), "the change's payload is still in {left:?}");
}
