//! `Store::open_read_only`: the record layer over a read-only `Db` (what the `kho` tool
//! uses) reads everything `Store::open` does, writes nothing, and refuses every mutation.
#![allow(clippy::unwrap_used, clippy::panic)]

use kho::record::{NationalId, Store, StoreOptions};
use kho::{Db, Error, Options};

fn options() -> Options {
    Options { write_buffer_size: 32 << 10, ..Options::default() }
}

fn id(s: &str) -> NationalId {
    NationalId::parse(s).unwrap()
}

/// Every file of `dir` with its length.
fn listing(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len())
        })
        .collect();
    v.sort();
    v
}

fn all_keys(db: &Db) -> Vec<(bytes::Bytes, bytes::Bytes)> {
    db.range::<&[u8], _>(..).unwrap().map(|kv| kv.unwrap()).collect()
}

/// A store with records in two collections, some flushed to tables, some only in the log.
fn build(dir: &std::path::Path) {
    let s = Store::open(Db::open(dir, options()).unwrap(), StoreOptions::default()).unwrap();
    let (a, b) = (id("079190001234"), id("001200000042"));
    for i in 0..200u32 {
        s.insert("tax", format!("t{i:04}"), &if i % 2 == 0 { a } else { b }, &("bracket", i)).unwrap();
    }
    s.db().flush().unwrap();
    s.insert("vehicle", "59-X1 123.45", &a, &"Honda Wave").unwrap(); // in the log only
    s.close().unwrap();
}

/// Every mutation of `s` fails with `ReadOnly`.
fn assert_refuses_writes(s: &Store) {
    let a = id("079190001234");
    let ro = |r: kho::record::Result<()>, what: &str| {
        assert!(matches!(r, Err(kho::record::Error::Engine(Error::ReadOnly))), "{what}: {r:?}")
    };
    ro(s.insert("tax", "new", &a, &1).map(drop), "insert");
    ro(s.insert("brand-new-collection", "k", &a, &1).map(drop), "insert creating a collection");
    ro(s.upsert("tax", "t0000", &a, &2).map(drop), "upsert");
    ro(s.delete("tax", "t0000").map(drop), "delete");
    ro(s.delete("no-such-collection", "k").map(drop), "delete in an unknown collection");
    ro(s.batch().commit(), "empty batch");
    let mut batch = s.batch();
    batch.delete("tax", "t0001");
    ro(batch.commit(), "batch");
    ro(s.erase_person(&a).map(drop), "erase_person");
    ro(s.purge_erased(&Default::default()), "purge_erased");
    ro(s.rebuild_index().map(drop), "rebuild_index");
    assert!(s.is_read_only());
}

#[test]
fn reads_a_store_through_a_read_only_db_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let before = listing(dir.path());

    let db = Db::open_read_only(dir.path(), options()).unwrap();
    let s = Store::open_read_only(db, StoreOptions::default()).unwrap();
    assert_eq!(s.collections(), ["tax", "vehicle"]);
    let a = s.person(&id("079190001234")).unwrap();
    assert_eq!(a.len(), 101, "100 tax records and the unflushed vehicle");
    assert_eq!(&*a[100].collection, "vehicle");
    assert_eq!(a[100].decode::<String>().unwrap(), "Honda Wave");
    let r = s.get::<(String, u32)>("tax", "t0007").unwrap().unwrap();
    assert_eq!((r.id, r.payload.1), (id("001200000042"), 7));
    assert!(s.get_raw("tax", "nope").unwrap().is_none());
    assert!(s.get_raw("no-such-collection", "t0007").unwrap().is_none());
    assert_eq!(s.scan("tax").unwrap().count(), 200);
    let report = s.verify_index().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.records, report.index_entries), (201, 201));

    assert_refuses_writes(&s);
    drop(s);
    assert_eq!(listing(dir.path()), before, "nothing was created, deleted or appended to");

    // The ordinary open still works afterwards and sees the same data.
    let s = Store::open(Db::open(dir.path(), options()).unwrap(), StoreOptions::default()).unwrap();
    assert_eq!(s.person(&id("079190001234")).unwrap().len(), 101);
}

#[test]
fn a_read_only_store_over_a_writable_db_never_writes() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let db = Db::open(dir.path(), options()).unwrap();
    let before = all_keys(&db);
    let s = Store::open_read_only(db.clone(), StoreOptions::default()).unwrap();
    assert_refuses_writes(&s);
    assert_eq!(all_keys(&db), before);
    // Writes made through another handle are seen (the catalog is the one loaded at open).
    Store::open(db.clone(), StoreOptions::default()).unwrap().insert("tax", "late", &id("079190001234"), &0).unwrap();
    assert!(s.get_raw("tax", "late").unwrap().is_some());
}

#[test]
fn a_database_without_a_store_is_not_found_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    db.put("citizen:1", "plain key-value data").unwrap();
    db.close().unwrap();
    let before = listing(dir.path());

    let ro = Db::open_read_only(dir.path(), options()).unwrap();
    let e = Store::open_read_only(ro.clone(), StoreOptions::default()).unwrap_err();
    assert!(matches!(&e, kho::record::Error::Engine(Error::NotFound(m)) if m.contains("no record store")), "{e:?}");
    // `Store::open` would have to write the format version.
    assert!(matches!(Store::open(ro, StoreOptions::default()), Err(kho::record::Error::Engine(Error::ReadOnly))));
    assert_eq!(listing(dir.path()), before);

    // A format this build does not know is refused, as by `Store::open`.
    let db = Db::open(dir.path(), options()).unwrap();
    db.put("Mformat", [9u8]).unwrap();
    db.close().unwrap();
    let ro = Db::open_read_only(dir.path(), options()).unwrap();
    let e = Store::open_read_only(ro, StoreOptions::default()).unwrap_err();
    assert!(
        matches!(&e, kho::record::Error::Engine(Error::InvalidArgument(m)) if m.contains("not supported")),
        "{e:?}"
    );
}
