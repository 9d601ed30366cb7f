//! Provable erasure: after `erase_person` and `purge_erased` (`Db::compact_range` over the
//! erased keys), no byte of the erased payloads remains in any live file of the database
//! directory — checked by searching the raw files, which held them before.
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

    let erasure = store.erase_person(&x).unwrap();
    assert_eq!(erasure.records, 4);
    assert_eq!(erasure.keys.len(), 8);
    assert!(store.person(&x).unwrap().is_empty());
    store.purge_erased(&erasure).unwrap();

    for n in 1..=5 {
        let left = files_containing(dir.path(), marker(n).as_bytes());
        assert!(left.is_empty(), "payload {n} still in {left:?}");
    }
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
