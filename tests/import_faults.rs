//! `Store::import` when a file operation fails (`FaultFs` errors, no crash): for every
//! operation of an import failing in turn, the import either succeeds whole or returns the
//! error; after closing and reopening, the store holds exactly the records before it or
//! all of them, the index verifies clean, and no table file outlives the failure unless
//! the manifest lists it (a failed import removes what it wrote, or the next open does).
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{db_dir, fault_fs, orphan_tables, small_options, store_records, StoreRecords};
use kho::record::{FeedOptions, NationalId, Store, StoreOptions};
use kho::vfs::{FaultKind, SharedFs};
use kho::Db;

fn open(shared: &SharedFs) -> kho::record::Result<Store> {
    let opts = StoreOptions { feed: FeedOptions { enable: true, ..FeedOptions::default() }, ..StoreOptions::default() };
    Store::open(Db::open(db_dir(), small_options(shared.clone()))?, opts)
}

fn rows() -> Vec<(String, NationalId, String)> {
    let ids = ["079190001234", "001185000042"].map(|s| NationalId::parse(s).unwrap());
    (0..200u32)
        .map(|i| (format!("r{i:03}"), ids[(i % 2) as usize], format!("payload {i} {}", "z".repeat(i as usize % 70))))
        .collect()
}

#[test]
fn every_failed_operation_leaves_the_store_as_it_was_or_whole() {
    let rows = rows();
    let mut nth = 0u64;
    loop {
        let (fs, shared) = fault_fs();
        let (base, all): (StoreRecords, StoreRecords) = {
            let store = open(&shared).unwrap();
            store.insert("tax", "old", &rows[0].1, "before").unwrap();
            let base = store_records(&store);
            let mut all = base.clone();
            for (pk, id, p) in &rows {
                all.insert(("tax".into(), pk.as_bytes().to_vec()), (*id, rmp_serde::to_vec_named(p).unwrap()));
            }
            (base, all)
        };
        let store = open(&shared).unwrap();
        let fired_before = fs.faults_fired();
        fs.inject_any(nth, FaultKind::Eio);
        let result = store.import("tax", rows.clone());
        let fired = fs.faults_fired() > fired_before;
        fs.clear_faults();
        let _ = store.close();
        drop(store);
        assert!(orphan_tables(&shared).is_empty() || result.is_err(), "op {nth}: a successful import left orphans");

        let store = open(&shared).unwrap_or_else(|e| panic!("op {nth}: reopen failed: {e}"));
        let got = store_records(&store);
        match &result {
            Ok(_) => assert_eq!(got, all, "op {nth}: the import succeeded but is not whole"),
            Err(_) => assert!(got == base || got == all, "op {nth}: a partial import ({} records)", got.len()),
        }
        assert!(store.verify_index().unwrap().is_clean(), "op {nth}");
        store.close().unwrap();
        drop(store);
        assert_eq!(orphan_tables(&shared), Vec::<String>::new(), "op {nth}: orphan tables after reopen");
        if !fired {
            assert!(result.is_ok(), "op {nth}: no fault fired, yet {result:?}");
            assert!(nth > 10, "the import should have many file operations, saw {nth}");
            return;
        }
        nth += 1;
    }
}
