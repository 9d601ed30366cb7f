//! The key layout has no prefix collisions: collections whose names are prefixes of each
//! other (`tax`/`taxes`), and (collection, pk) pairs whose concatenations are equal
//! (`ab|c` vs `a|bc`), stay separate in every read path.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{db_dir, fault_fs, small_options};
use kho::record::{NationalId, Store, StoreOptions};
use kho::Db;

fn store() -> Store {
    let (_fs, shared) = fault_fs();
    let db = Db::open(db_dir(), small_options(shared)).unwrap();
    Store::open(db, StoreOptions::default()).unwrap()
}

fn pks(store: &Store, collection: &str) -> Vec<Vec<u8>> {
    store.scan(collection).unwrap().map(|r| r.unwrap().pk.to_vec()).collect()
}

#[test]
fn tax_and_taxes_do_not_mix() {
    let s = store();
    let p = NationalId::parse("001190000001").unwrap();
    s.insert("tax", "1", &p, &"tax-1").unwrap();
    s.insert("taxes", "1", &p, &"taxes-1").unwrap();
    s.insert("tax", "10", &p, &"tax-10").unwrap();
    s.insert("taxes", "", &p, &"empty").unwrap_err(); // empty pks are refused
    assert_eq!(pks(&s, "tax"), [b"1".to_vec(), b"10".to_vec()]);
    assert_eq!(pks(&s, "taxes"), [b"1".to_vec()]);
    assert_eq!(s.get::<String>("tax", "1").unwrap().unwrap().payload, "tax-1");
    assert_eq!(s.get::<String>("taxes", "1").unwrap().unwrap().payload, "taxes-1");
    s.delete("tax", "1").unwrap();
    assert_eq!(s.get::<String>("taxes", "1").unwrap().unwrap().payload, "taxes-1");
    assert_eq!(s.person(&p).unwrap().len(), 2);
}

#[test]
fn ab_c_and_a_bc_are_different_records() {
    let s = store();
    let p = NationalId::parse("001190000001").unwrap();
    let q = NationalId::parse("001190000002").unwrap();
    s.insert("ab", "c", &p, &"ab|c").unwrap();
    s.insert("a", "bc", &q, &"a|bc").unwrap();
    // Separators inside names and keys are just bytes.
    s.insert("a|b", "c", &p, &"a|b / c").unwrap();
    s.insert("a", "b|c", &q, &"a / b|c").unwrap();
    assert_eq!(s.get::<String>("ab", "c").unwrap().unwrap().payload, "ab|c");
    assert_eq!(s.get::<String>("a", "bc").unwrap().unwrap().payload, "a|bc");
    assert_eq!(s.get::<String>("a|b", "c").unwrap().unwrap().payload, "a|b / c");
    assert!(s.get::<String>("ab", "bc").unwrap().is_none());
    assert_eq!(pks(&s, "a"), [b"bc".to_vec(), b"b|c".to_vec()]); // byte order: `c` < `|`
    let person = |id| -> Vec<String> { s.person(id).unwrap().iter().map(|r| r.decode::<String>().unwrap()).collect() };
    assert_eq!(person(&p), ["ab|c", "a|b / c"]);
    assert_eq!(person(&q), ["a|bc", "a / b|c"]);
}

#[test]
fn binary_primary_keys_with_every_byte_value() {
    let s = store();
    let p = NationalId::parse("079190000001").unwrap();
    let q = NationalId::parse("079190000002").unwrap();
    let keys: Vec<Vec<u8>> = vec![vec![0], vec![0, 0], vec![0xff], vec![0xff, 0], b"I".to_vec()];
    for (i, k) in keys.iter().enumerate() {
        s.insert("bin", k, if i % 2 == 0 { &p } else { &q }, &i).unwrap();
    }
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(pks(&s, "bin"), sorted);
    assert_eq!(s.person(&p).unwrap().len(), 3);
    assert_eq!(s.person(&q).unwrap().len(), 2);
    assert!(s.verify_index().unwrap().is_clean());
}
