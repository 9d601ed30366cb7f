//! `Store` behaviour: insert/upsert/get/delete, person queries across collections, scans,
//! ID-prefix queries, atomic batches and the catalog surviving a reopen.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{db_dir, fault_fs, small_options};
use kho::record::{IdQuery, NationalId, Record, Store, StoreOptions};
use kho::{Db, Error};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Tax {
    name: String,
    bracket: u8,
}

fn id(s: &str) -> NationalId {
    NationalId::parse(s).unwrap()
}

fn open(shared: &kho::vfs::SharedFs) -> Store {
    let db = Db::open(db_dir(), small_options(shared.clone())).unwrap();
    Store::open(db, StoreOptions::default()).unwrap()
}

fn pks(records: &[Record]) -> Vec<(String, String)> {
    records.iter().map(|r| (r.collection.to_string(), String::from_utf8(r.pk.to_vec()).unwrap())).collect()
}

#[test]
fn insert_get_upsert_delete() {
    let (_fs, shared) = fault_fs();
    let store = open(&shared);
    let an = id("079190001234");
    let binh = id("001185000042");
    let t = Tax { name: "Nguyễn Văn An".into(), bracket: 2 };
    store.insert("tax", "8000000001", &an, &t).unwrap();
    let got: Record<Tax> = store.get("tax", "8000000001").unwrap().unwrap();
    assert_eq!((got.id, &got.payload, &*got.collection), (an, &t, "tax"));
    assert!(store.get::<Tax>("tax", "nope").unwrap().is_none());
    assert!(store.get::<Tax>("no_such_collection", "x").unwrap().is_none());

    match store.insert("tax", "8000000001", &binh, &t) {
        Err(kho::record::Error::RecordExists { collection, pk }) => {
            assert_eq!((collection.as_str(), pk.as_str()), ("tax", "\"8000****01\""), "the key is redacted")
        }
        other => panic!("{other:?}"),
    }
    // Moving the record to another person moves its index entry.
    assert_eq!(store.upsert("tax", "8000000001", &binh, &t).unwrap(), Some(an));
    assert!(store.person(&an).unwrap().is_empty());
    assert_eq!(store.person(&binh).unwrap().len(), 1);
    assert_eq!(store.upsert("tax", "8000000002", &an, &t).unwrap(), None);
    assert_eq!(store.delete("tax", "8000000001").unwrap(), Some(binh));
    assert_eq!(store.delete("tax", "8000000001").unwrap(), None);
    assert_eq!(store.delete("unknown", "x").unwrap(), None);
    assert!(store.person(&binh).unwrap().is_empty());
    assert!(store.verify_index().unwrap().is_clean());

    // Wrong payload type: a typed error, not a panic.
    assert!(matches!(store.get::<u64>("tax", "8000000002"), Err(kho::record::Error::Payload(_))));
    // Bounds on primary keys and collection names.
    assert!(matches!(store.insert("tax", "", &an, &t), Err(kho::record::Error::Engine(Error::InvalidArgument(_)))));
    assert!(matches!(
        store.insert("tax", vec![b'x'; 1025], &an, &t),
        Err(kho::record::Error::Engine(Error::InvalidArgument(_)))
    ));
    assert!(matches!(store.insert("", "k", &an, &t), Err(kho::record::Error::Engine(Error::InvalidArgument(_)))));
    assert!(matches!(store.insert("a\nb", "k", &an, &t), Err(kho::record::Error::Engine(Error::InvalidArgument(_)))));
}

#[test]
fn person_spans_collections_and_payloads_print_without_their_type() {
    let (_fs, shared) = fault_fs();
    let store = open(&shared);
    let an = id("079190001234");
    let other = id("079190001235");
    store.insert("vehicle", "59B1-123.45", &an, &("Honda Wave", 2019)).unwrap();
    store.insert("residence", "079-1", &an, &Tax { name: "An".into(), bracket: 0 }).unwrap();
    store.insert("tax", "8000000001", &an, &Tax { name: "An".into(), bracket: 3 }).unwrap();
    store.insert("tax", "8000000002", &other, &Tax { name: "B".into(), bracket: 1 }).unwrap();
    store.insert("vehicle", "59B1-000.01", &an, &("Yamaha", 2001)).unwrap();

    let recs = store.person(&an).unwrap();
    // Ordered by collection id (creation order), then primary key.
    assert_eq!(
        pks(&recs),
        [("vehicle", "59B1-000.01"), ("vehicle", "59B1-123.45"), ("residence", "079-1"), ("tax", "8000000001"),]
            .map(|(c, p)| (c.to_string(), p.to_string()))
    );
    assert!(recs.iter().all(|r| r.id == an));
    // Any record decodes to a generic, self-describing value (named fields).
    let tax: Tax = recs[3].decode().unwrap();
    assert_eq!(tax.bracket, 3);
    assert!(recs[3].payload.windows(7).any(|w| w == b"bracket"));
    assert_eq!(store.collections(), ["vehicle", "residence", "tax"]);
}

#[test]
fn scans_and_id_prefix_queries() {
    let (_fs, shared) = fault_fs();
    let store = open(&shared);
    let people = [
        "079090000001", // TP.HCM, G=0: male, 1990
        "079090000002", // TP.HCM, male, 1990
        "079190000003", // TP.HCM, G=1: female, 1990
        "079115000004", // TP.HCM, female, 1915
        "079203000005", // TP.HCM, G=2: male, 2003
        "001090000006", // Ha Noi
        "080090000007", // Long An
    ];
    for (i, p) in people.iter().enumerate() {
        store.insert("residence", format!("r{i}"), &id(p), &i).unwrap();
        if i % 2 == 0 {
            store.insert("tax", format!("t{i}"), &id(p), &i).unwrap();
        }
    }
    let scan: Vec<String> =
        store.scan("tax").unwrap().map(|r| String::from_utf8(r.unwrap().pk.to_vec()).unwrap()).collect();
    assert_eq!(scan, ["t0", "t2", "t4", "t6"]);
    assert_eq!(store.scan("nothing").unwrap().count(), 0);

    let persons = |q: IdQuery| -> Vec<String> { store.persons(&q).unwrap().map(|p| p.unwrap().to_string()).collect() };
    assert_eq!(
        persons(IdQuery::Province(79)),
        ["079090000001", "079090000002", "079115000004", "079190000003", "079203000005"]
    );
    assert_eq!(persons(IdQuery::ProvinceCenturyGender { province: 79, digit: 1 }), ["079115000004", "079190000003"]);
    assert_eq!(
        persons(IdQuery::BirthYear { province: 79, year: 1990 }),
        ["079090000001", "079090000002", "079190000003"]
    );
    assert_eq!(persons(IdQuery::BirthYear { province: 79, year: 2003 }), ["079203000005"]);
    assert!(persons(IdQuery::Province(2)).is_empty());
    let entries = store.query(&IdQuery::Province(79)).unwrap().count();
    assert_eq!(entries, 5 + 3);
    assert!(store.query(&IdQuery::Province(1000)).is_err());
    assert!(store.query(&IdQuery::BirthYear { province: 79, year: 1899 }).is_err());
}

#[test]
fn batches_are_atomic() {
    let (_fs, shared) = fault_fs();
    let store = open(&shared);
    let (a, b) = (id("001190000001"), id("001190000002"));
    store.insert("tax", "existing", &a, &1).unwrap();

    // A batch that fails (an insert of an existing key) writes nothing.
    let mut batch = store.batch();
    batch.insert("tax", "new1", &a, &1).unwrap();
    batch.upsert("tax", "existing", &b, &2).unwrap();
    batch.insert("tax", "existing", &a, &3).unwrap();
    assert!(matches!(batch.commit(), Err(kho::record::Error::RecordExists { .. })));
    assert!(store.get_raw("tax", "new1").unwrap().is_none());
    assert_eq!(store.get_raw("tax", "existing").unwrap().unwrap().id, a);

    // Later ops in a batch see earlier ones.
    let mut batch = store.batch();
    batch.sync(true);
    batch.insert("tax", "k", &a, &1).unwrap();
    batch.upsert("tax", "k", &b, &2).unwrap();
    batch.insert("vehicle", "v", &a, &3).unwrap();
    batch.delete("vehicle", "v");
    batch.upsert("tax", "existing", &b, &4).unwrap();
    assert_eq!(batch.len(), 5);
    batch.commit().unwrap();
    assert_eq!(pks(&store.person(&a).unwrap()), Vec::<(String, String)>::new());
    assert_eq!(pks(&store.person(&b).unwrap()).len(), 2);
    assert!(store.get_raw("vehicle", "v").unwrap().is_none());
    let report = store.verify_index().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.records, report.index_entries), (2, 2));
}

#[test]
fn catalog_and_records_survive_reopen() {
    let (_fs, shared) = fault_fs();
    let a = id("001190000001");
    {
        let store = open(&shared);
        for c in ["residence", "tax", "vehicle"] {
            store.insert(c, "k", &a, &c).unwrap();
        }
        store.db().flush().unwrap();
        store.insert("health_insurance", "k", &a, &"late").unwrap();
        store.close().unwrap();
    }
    let store = open(&shared);
    assert_eq!(store.collections(), ["residence", "tax", "vehicle", "health_insurance"]);
    assert_eq!(store.person(&a).unwrap().len(), 4);
    store.insert("social_insurance", "k", &a, &"new").unwrap();
    assert_eq!(store.collections().len(), 5);
    assert!(store.verify_index().unwrap().is_clean());
}
