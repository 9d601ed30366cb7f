//! `verify_index` reports every discrepancy (missing, dangling, malformed) and
//! `rebuild_index` restores "index == f(records)", including from a wiped index.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{db_dir, fault_fs, small_options};
use kho::record::population::{Event, Population};
use kho::record::{IndexProblem, NationalId, Store, StoreOptions};
use kho::{Db, WriteBatch, WriteOptions};

fn id(s: &str) -> NationalId {
    NationalId::parse(s).unwrap()
}

fn store() -> Store {
    let (_fs, shared) = fault_fs();
    let db = Db::open(db_dir(), small_options(shared)).unwrap();
    Store::open(db, StoreOptions::default()).unwrap()
}

/// `I | id | cid (u32 BE) | pk`, as `docs/record-model.md` specifies.
fn raw_index_key(id: &NationalId, cid: u32, pk: &str) -> Vec<u8> {
    let mut k = vec![b'I'];
    k.extend_from_slice(id.as_bytes());
    k.extend_from_slice(&cid.to_be_bytes());
    k.extend_from_slice(pk.as_bytes());
    k
}

fn raw_record_key(cid: u32, pk: &str) -> Vec<u8> {
    let mut k = vec![b'R'];
    k.extend_from_slice(&cid.to_be_bytes());
    k.extend_from_slice(pk.as_bytes());
    k
}

#[test]
fn every_kind_of_discrepancy_is_reported_and_repaired() {
    let s = store();
    let (a, b, c) = (id("001190000001"), id("001190000002"), id("001190000003"));
    s.insert("tax", "t1", &a, &1).unwrap(); // cid 1
    s.insert("tax", "t2", &a, &2).unwrap();
    s.insert("vehicle", "v1", &b, &3).unwrap(); // cid 2
    assert!(s.verify_index().unwrap().is_clean());

    let db = s.db();
    db.delete(raw_index_key(&a, 1, "t2")).unwrap(); // missing
    db.put(raw_index_key(&c, 1, "t9"), "").unwrap(); // dangling: no record
    db.put(raw_index_key(&c, 2, "v1"), "").unwrap(); // dangling: record belongs to b
    db.put(raw_record_key(1, "bad"), "\x07junk").unwrap(); // malformed record value
    db.put(b"Ishort", "").unwrap(); // malformed index key

    let report = s.verify_index().unwrap();
    assert_eq!((report.missing, report.dangling, report.malformed), (1, 2, 2), "{report:?}");
    assert_eq!((report.records, report.index_entries), (4, 5));
    assert!(report.problems.contains(&IndexProblem::Missing { collection: "tax".into(), pk: "t2".into(), id: a }));
    assert!(report.problems.contains(&IndexProblem::Dangling {
        id: c,
        collection: "tax".into(),
        pk: "t9".into(),
        record_id: None,
    }));
    assert!(report.problems.contains(&IndexProblem::Dangling {
        id: c,
        collection: "vehicle".into(),
        pk: "v1".into(),
        record_id: Some(b),
    }));
    let mut visited = 0;
    s.verify_index_with(|_| visited += 1).unwrap();
    assert_eq!(visited, 5);
    // person() trusts the records: dangling entries are not returned.
    assert!(s.person(&c).unwrap().is_empty());
    assert_eq!(s.person(&a).unwrap().len(), 1); // t2 is unreachable until repaired

    let fixed = s.rebuild_index().unwrap();
    assert_eq!((fixed.missing, fixed.dangling, fixed.malformed), (1, 2, 2));
    let after = s.verify_index().unwrap();
    // Only the undecodable record is left: it cannot be indexed, only reported.
    assert_eq!((after.missing, after.dangling, after.malformed), (0, 0, 1), "{after:?}");
    assert_eq!(s.person(&a).unwrap().len(), 2);
    db.delete(raw_record_key(1, "bad")).unwrap();
    assert!(s.verify_index().unwrap().is_clean());
}

#[test]
fn a_wiped_index_is_rebuilt_from_a_generated_population() {
    let s = store();
    let pop = Population::new(11, 1500);
    let mut model: BTreeMap<(&str, String), NationalId> = BTreeMap::new();
    let mut batch = s.batch();
    for e in pop.events() {
        match e {
            Event::Upsert(r) | Event::Correct(r) => {
                batch.upsert(r.collection, &r.pk, &r.id, &r.payload).unwrap();
                model.insert((r.collection, r.pk), r.id);
            }
            Event::Delete { collection, pk } => {
                batch.delete(collection, &pk);
                model.remove(&(collection, pk));
            }
        }
        if batch.len() >= 500 {
            std::mem::replace(&mut batch, s.batch()).commit().unwrap();
        }
    }
    batch.commit().unwrap();
    let clean = s.verify_index().unwrap();
    assert!(clean.is_clean());
    assert_eq!(clean.records as usize, model.len());

    // Wipe every index entry.
    let mut wipe = WriteBatch::new();
    for kv in s.db().prefix("I").unwrap() {
        wipe.delete(kv.unwrap().0);
    }
    s.db().write(wipe, &WriteOptions::default()).unwrap();
    let broken = s.verify_index().unwrap();
    assert_eq!(broken.missing as usize, model.len());
    assert_eq!(broken.index_entries, 0);

    let fixed = s.rebuild_index().unwrap();
    assert_eq!(fixed.missing as usize, model.len());
    let after = s.verify_index().unwrap();
    assert!(after.is_clean(), "{after:?}");
    assert_eq!(after.index_entries as usize, model.len());

    // person() equals the model for every person (and the ID-corrected records moved).
    let mut by_person: BTreeMap<NationalId, BTreeSet<(String, String)>> = BTreeMap::new();
    for ((c, pk), id) in &model {
        by_person.entry(*id).or_default().insert((c.to_string(), pk.clone()));
    }
    for (id, want) in &by_person {
        let got: BTreeSet<(String, String)> = s
            .person(id)
            .unwrap()
            .into_iter()
            .map(|r| (r.collection.to_string(), String::from_utf8(r.pk.to_vec()).unwrap()))
            .collect();
        assert_eq!(&got, want, "person {id}");
    }
}
