//! `Store::import` and `Db::ingest_sorted` (docs/record-model.md, "Import"): an imported
//! store equals the same records inserted one by one (records, `person`, index, feed);
//! every validation error refuses the whole import and leaves the store exactly as it was;
//! the import survives a reopen and compactions, verifies clean, seals payloads under
//! person keys, and sits at one sequence number newer than every earlier write.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::{contents, small_options, store_records};
use kho::record::{
    ChangeKind, Error, FeedOptions, IdRules, NationalId, PersonKeys, Store, StoreOptions, SubscriptionFilter,
};
use kho::{Db, Options};

fn id(s: &str) -> NationalId {
    NationalId::parse(s).unwrap()
}

/// 60 rows over 6 persons, deliberately not in primary-key order.
fn rows() -> Vec<(String, NationalId, String)> {
    let ids = ["079190001234", "001185000042", "048203000777", "079190001235", "031099000001", "001185000043"];
    (0..60u32)
        .rev()
        .map(|i| {
            (
                format!("pk-{:03}", (i * 37) % 60),
                id(ids[(i % 6) as usize]),
                format!("payload {i} {}", "x".repeat(i as usize)),
            )
        })
        .collect()
}

fn feed_on() -> StoreOptions {
    StoreOptions { feed: FeedOptions { enable: true, ..FeedOptions::default() }, ..StoreOptions::default() }
}

fn open(dir: &std::path::Path, opts: StoreOptions) -> Store {
    Store::open(Db::open(dir, Options { write_buffer_size: 16 << 10, ..Options::default() }).unwrap(), opts).unwrap()
}

/// The changes after the subscription's position, without positions or times.
type FeedEntry = (ChangeKind, String, Vec<u8>, NationalId, Option<Vec<u8>>);

fn feed_of(store: &Store) -> Vec<FeedEntry> {
    let mut out: Vec<_> = store
        .changes("s")
        .unwrap()
        .map(|c| {
            let c = c.unwrap();
            (c.kind, c.collection.to_string(), c.pk.to_vec(), c.id, c.payload.map(|p| p.to_vec()))
        })
        .collect();
    out.sort_by(|a, b| a.2.cmp(&b.2));
    out
}

/// Every index key of the store.
fn index_keys(store: &Store) -> Vec<Vec<u8>> {
    store.db().prefix(b"I").unwrap().map(|kv| kv.unwrap().0.to_vec()).collect()
}

#[test]
fn an_import_equals_the_same_records_inserted_one_by_one() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (imported, inserted) = (open(a.path(), feed_on()), open(b.path(), feed_on()));
    for s in [&imported, &inserted] {
        s.insert("other", "before", &id("079190001234"), "earlier").unwrap();
        s.insert("tax", "zz-before", &id("079190001234"), "earlier").unwrap();
        s.subscribe("s", SubscriptionFilter::all()).unwrap();
    }
    let before = imported.db().last_sequence();
    let report = imported.import("tax", rows()).unwrap();
    for (pk, who, payload) in rows() {
        inserted.insert("tax", pk, &who, &payload).unwrap();
    }
    assert_eq!(report.rows, 60);
    assert!(report.tables >= 1 && report.bytes > 0);
    assert_eq!(report.sequence, before + 60, "one sequence number per change, the last for the records");
    assert_eq!(imported.db().last_sequence(), report.sequence);

    assert_eq!(store_records(&imported), store_records(&inserted));
    assert_eq!(index_keys(&imported), index_keys(&inserted));
    for (_, who, _) in rows().iter().take(6) {
        assert_eq!(imported.person(who).unwrap(), inserted.person(who).unwrap());
    }
    let rec = imported.get::<String>("tax", "pk-001").unwrap().unwrap();
    assert_eq!(rec.payload, inserted.get::<String>("tax", "pk-001").unwrap().unwrap().payload);
    let feed = feed_of(&imported);
    assert_eq!(feed.len(), 60);
    assert!(feed.iter().all(|c| c.0 == ChangeKind::Insert));
    assert_eq!(feed, feed_of(&inserted));
    assert!(imported.verify_index().unwrap().is_clean());
    // The changes are in tables of their own (the store's table partitions).
    for (_, m) in imported.db().live_files() {
        let tag = |k: &[u8]| k.first().copied();
        assert!(
            (tag(&m.smallest) == Some(b'F')) == (tag(&m.largest) == Some(b'F')),
            "table {} mixes changes",
            m.number
        );
    }

    // Writes after the import continue above it, and the import survives reopen and a
    // full compaction.
    imported.insert("tax", "after", &id("001185000042"), "later").unwrap();
    assert_eq!(imported.db().last_sequence(), report.sequence + 3, "a record, its index entry and its change");
    let expected = store_records(&imported);
    imported.close().unwrap();
    let imported = open(a.path(), feed_on());
    assert_eq!(store_records(&imported), expected);
    imported.db().compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(store_records(&imported), expected);
    assert!(imported.verify_index().unwrap().is_clean());
    assert!(imported.db().recovery_report().is_clean());
}

/// Refusals name the row and leave the database byte for byte as it was.
#[test]
fn every_invalid_row_refuses_the_whole_import() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options { max_value_size: 1000, ..Options::default() }).unwrap();
    let store = Store::open(db, feed_on()).unwrap();
    store.insert("tax", "taken", &id("079190001234"), "x").unwrap();
    let abroad =
        NationalId::parse_with("999190001234", &IdRules { extra_province_codes: vec![999], ..Default::default() })
            .unwrap();
    let who = id("001185000042");
    type Rows = Vec<(Vec<u8>, NationalId, String)>;
    let cases: Vec<(Rows, u64, &str)> = vec![
        (vec![(b"ok".to_vec(), who, "a".into()), (Vec::new(), who, "b".into())], 1, "primary key of 0 bytes"),
        (vec![(vec![b'k'; 1025], who, "a".into())], 0, "primary key of 1025 bytes"),
        (vec![(b"a".to_vec(), who, "a".into()), (b"b".to_vec(), abroad, "b".into())], 1, "province code 999"),
        (vec![(b"a".to_vec(), who, "x".repeat(2000))], 0, "exceeds max_value_size"),
        // The record value fits; its change (payload, primary key and header) does not.
        (vec![(b"a".to_vec(), who, "x".repeat(970))], 0, "exceeds max_value_size"),
        (
            vec![(b"d".to_vec(), who, "a".into()), (b"e".to_vec(), who, "b".into()), (b"d".to_vec(), who, "c".into())],
            2,
            "repeats the primary key of row 0",
        ),
        (vec![(b"new".to_vec(), who, "a".into()), (b"taken".to_vec(), who, "b".into())], 1, "already holds a record"),
    ];
    for (rows, bad_row, what) in cases {
        let before = contents(store.db());
        let seq = store.db().last_sequence();
        match store.import("tax", rows) {
            Err(Error::ImportRejected { rows, count }) => {
                assert_eq!(count, 1, "{what}");
                assert_eq!(rows[0].row, bad_row, "{what}");
                let msg = Error::ImportRejected { rows, count }.to_string();
                assert!(msg.contains(what), "{msg} should say {what}");
                assert!(!msg.contains("001185000042") && !msg.contains("999190001234"), "{msg} names an ID");
            }
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
        assert_eq!(contents(store.db()), before, "{what}: the store changed");
        assert_eq!(store.db().last_sequence(), seq, "{what}");
    }
    // A new collection is not created by a refused import.
    let r = store.import("fresh", vec![("x", who, "a"), ("x", who, "b")]);
    assert!(matches!(r, Err(Error::ImportRejected { .. })));
    assert!(!store.collections().contains(&"fresh".to_string()));
    // All problems are counted.
    let many: Vec<_> = (0..150).map(|_| (String::new(), who, "p")).collect();
    match store.import("tax", many) {
        Err(Error::ImportRejected { rows, count }) => assert_eq!((rows.len(), count), (100, 150)),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // An empty import writes nothing.
    let none: Vec<(String, NationalId, String)> = Vec::new();
    assert_eq!(store.import("tax", none).unwrap().rows, 0);
}

#[test]
fn an_audited_store_refuses_plain_imports() {
    let dir = tempfile::tempdir().unwrap();
    let key = kho::record::AuditKey::from_secret(&kho::crypt::SecretKey::from_bytes([1; kho::crypt::KEY_LEN])).unwrap();
    let opts = StoreOptions { audit: Some(kho::record::AuditOptions::new(key)), ..StoreOptions::default() };
    let store = Store::open(Db::open(dir.path(), Options::default()).unwrap(), opts).unwrap();
    assert!(matches!(store.import("tax", rows()), Err(Error::AccessContextRequired)));
}

#[test]
fn person_keys_seal_imported_payloads() {
    let (dir, vdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let vault = PersonKeys::open(Db::open(vdir.path(), Options::default()).unwrap()).unwrap();
    let opts = StoreOptions { person_keys: Some(vault.clone()), ..feed_on() };
    let store =
        Store::open(Db::open(dir.path(), Options { compression_level: 0, ..Options::default() }).unwrap(), opts)
            .unwrap();
    store.subscribe("s", SubscriptionFilter::all()).unwrap();
    store.import("tax", rows()).unwrap();
    let rec = store.get::<String>("tax", "pk-005").unwrap().unwrap();
    assert!(rec.payload.starts_with("payload"));
    assert_eq!(feed_of(&store).len(), 60);
    store.db().flush().unwrap();
    // No payload in plain text in any table.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(9).any(|w| w == b"payload 5"), "a payload in plain text");
    }
    // Erasure destroys the person's key: their imported records are gone.
    let who = rec.id;
    store.erase_person(&who).unwrap();
    assert!(store.person(&who).unwrap().is_empty());
    assert!(store.verify_index().unwrap().is_clean());
}

#[test]
fn ingested_tables_are_newer_than_everything_and_placed_where_they_overlap_nothing() {
    let (_fs, shared) = common::fault_fs();
    let db = Db::open(common::db_dir(), small_options(shared)).unwrap();
    db.put("b", "old").unwrap();
    db.put("m", "memtable").unwrap();
    let snap = db.snapshot();
    let r = db.ingest_sorted([("a", "1"), ("b", "new"), ("c", "3")]).unwrap();
    assert_eq!(r.entries, 3);
    assert_eq!(r.sequence, 3);
    assert_eq!(r.tables.len(), 1);
    assert_eq!(db.get("b").unwrap().unwrap().as_ref(), b"new");
    assert_eq!(snap.get("b").unwrap().unwrap().as_ref(), b"old", "an older snapshot does not see the import");
    assert!(snap.get("a").unwrap().is_none());
    assert_eq!(db.get("m").unwrap().unwrap().as_ref(), b"memtable");
    // Overlapping the flushed memtable: level 0. Beyond every key: the deepest level.
    assert_eq!(r.tables[0].0, 0);
    let r = db.ingest_sorted([("x", "1"), ("y", "2")]).unwrap();
    assert_eq!(r.tables[0].0, Options::default().num_levels - 1);
    // Out of order or over a limit: refused, nothing installed.
    let files = db.live_files();
    let e = db.ingest_sorted([("p", "1"), ("p", "2")]).unwrap_err();
    assert!(matches!(e, kho::Error::InvalidArgument(_)), "{e}");
    let e = db.ingest_sorted([("q", vec![0u8; 64 << 20])]).unwrap_err();
    assert!(matches!(e, kho::Error::InvalidArgument(_)), "{e}");
    assert_eq!(db.live_files().len(), files.len());
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (k, v) in [("a", "1"), ("b", "new"), ("c", "3"), ("m", "memtable"), ("x", "1"), ("y", "2")] {
        model.insert(k.into(), v.into());
    }
    assert_eq!(contents(&db), model);
    db.put("z", "after").unwrap();
    db.close().unwrap();
    drop(snap);
}

/// Writers, erasures (with person keys: the vault guard) and flushes running while imports
/// install: nothing deadlocks, every write and every import is whole, the index verifies.
#[test]
fn imports_run_beside_writers_and_erasures() {
    let (dir, vdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let vault = PersonKeys::open(Db::open(vdir.path(), Options::default()).unwrap()).unwrap();
    let opts = StoreOptions { person_keys: Some(vault), ..feed_on() };
    let db = Db::open(dir.path(), Options { write_buffer_size: 32 << 10, ..Options::default() }).unwrap();
    let store = Store::open(db, opts).unwrap();
    let (a, b) = (id("079190001234"), id("001185000042"));
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            for i in 0..300 {
                store.insert("vehicle", format!("v{i}"), &a, &format!("car {i}")).unwrap();
                store.upsert("tax", format!("w{i}"), &b, &format!("tax {i}")).unwrap();
                if i % 50 == 0 {
                    store.erase_person(&b).unwrap();
                    store.db().flush().unwrap();
                }
            }
        });
        for round in 0..4 {
            let rows: Vec<_> = (0..500).map(|i| (format!("i{round}-{i:03}"), a, format!("imported {i}"))).collect();
            assert_eq!(store.import("tax", rows).unwrap().rows, 500);
        }
        writer.join().unwrap();
    });
    let tax = store.scan("tax").unwrap().filter(|r| r.as_ref().unwrap().pk.starts_with(b"i")).count();
    assert_eq!(tax, 2000);
    assert_eq!(store.scan("vehicle").unwrap().count(), 300);
    assert!(store.verify_index().unwrap().is_clean());
}

/// An encrypted database: imported tables are sealed like any other (no plaintext in any
/// file, mode 0600), reopen with the key, and several tables are cut at `target_file_size`.
#[test]
fn imported_tables_are_encrypted_and_cut_at_the_target_size() {
    use kho::crypt::{Encryption, KeyFileProvider, SecretKey};
    let dir = tempfile::tempdir().unwrap();
    let opts = || Options {
        target_file_size: 4 << 10,
        compression_level: 0,
        encryption: Some(Encryption::new(std::sync::Arc::new(KeyFileProvider::from_key(
            "test-key",
            SecretKey::from_bytes([7; 32]),
        )))),
        ..Options::default()
    };
    let store = Store::open(Db::open(dir.path(), opts()).unwrap(), StoreOptions::default()).unwrap();
    let rows: Vec<_> =
        (0..400).map(|i| (format!("p{i:04}"), id("079190001234"), format!("MARKER-PLAINTEXT {i}"))).collect();
    let report = store.import("tax", rows).unwrap();
    assert!(report.tables > 2, "{report:?}: tables cut at the target size");
    let expected = store_records(&store);
    store.close().unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.windows(16).any(|w| w == b"MARKER-PLAINTEXT"), "plaintext on disk");
        #[cfg(unix)]
        if path.extension().is_some_and(|e| e == "sst") {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "{}", path.display());
        }
    }
    let store = Store::open(Db::open(dir.path(), opts()).unwrap(), StoreOptions::default()).unwrap();
    assert_eq!(store_records(&store), expected);
    assert!(store.verify_index().unwrap().is_clean());
}
