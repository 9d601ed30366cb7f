//! `Store::import` at every crash point (`FaultFs`): a store with records, the change feed
//! and a subscriber imports two collections (one existing, one new). After a crash at any
//! file-system step — unsynced data dropped or torn — and a reopen:
//!
//! - each import is there whole or not at all (records, index entries, changes);
//! - the index verifies clean and the subscriber reads exactly the changes of the imports
//!   that survived;
//! - no table file outlives the crash unless the manifest lists it (orphans of an
//!   interrupted import are collected at open);
//! - the store takes new writes.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{db_dir, fault_fs, orphan_tables, small_options, store_records, StoreRecords};
use kho::record::{FeedOptions, NationalId, Store, StoreOptions, SubscriptionFilter};
use kho::vfs::{CrashMode, SharedFs};
use kho::Db;

fn open(shared: &SharedFs) -> kho::record::Result<Store> {
    let opts = StoreOptions { feed: FeedOptions { enable: true, ..FeedOptions::default() }, ..StoreOptions::default() };
    Store::open(Db::open(db_dir(), small_options(shared.clone()))?, opts)
}

fn ids() -> [NationalId; 3] {
    ["079190001234", "001185000042", "048203000777"].map(|s| NationalId::parse(s).unwrap())
}

fn rows(prefix: &str, n: u32) -> Vec<(String, NationalId, String)> {
    (0..n)
        .map(|i| {
            (
                format!("{prefix}{i:03}"),
                ids()[(i % 3) as usize],
                format!("{prefix} payload {i} {}", "y".repeat((i as usize * 13) % 90)),
            )
        })
        .collect()
}

/// The records `base` plus those of `rows` in `collection`.
fn with(base: &StoreRecords, collection: &str, rows: &[(String, NationalId, String)]) -> StoreRecords {
    let mut out = base.clone();
    for (pk, id, payload) in rows {
        out.insert((collection.to_string(), pk.as_bytes().to_vec()), (*id, rmp_serde::to_vec_named(payload).unwrap()));
    }
    out
}

fn check_crash_points(mode: impl Fn(u64) -> CrashMode) {
    let (tax, fresh) = (rows("t", 120), rows("f", 40));
    let mut point = 0u64;
    loop {
        let (fs, shared) = fault_fs();
        let base = {
            let store = open(&shared).unwrap();
            for (i, id) in ids().iter().enumerate() {
                store.insert("tax", format!("old{i}"), id, "before").unwrap();
            }
            store.subscribe("s", SubscriptionFilter::all()).unwrap();
            let base = store_records(&store);
            store.close().unwrap();
            base
        };
        fs.arm_crash_after(point);
        if let Ok(store) = open(&shared) {
            let _ = store.import("tax", tax.clone()).and_then(|_| store.import("fresh", fresh.clone()));
            drop(store);
        }
        let finished = !fs.crash_point_hit();
        fs.crash(mode(point));

        let store = open(&shared).unwrap_or_else(|e| panic!("crash point {point}: reopen failed: {e}"));
        let got = store_records(&store);
        let one = with(&base, "tax", &tax);
        let both = with(&one, "fresh", &fresh);
        let changes = store.changes("s").unwrap().count();
        let expected_changes = if got == base {
            0
        } else if got == one {
            tax.len()
        } else if got == both {
            tax.len() + fresh.len()
        } else {
            panic!("crash point {point}: a partial import ({} records)", got.len());
        };
        assert_eq!(changes, expected_changes, "crash point {point}: the feed disagrees with the records");
        assert!(store.verify_index().unwrap().is_clean(), "crash point {point}");
        store.insert("after", "crash", &ids()[0], "ok").unwrap();
        assert_eq!(store.changes("s").unwrap().count(), expected_changes + 1, "crash point {point}");
        store.close().unwrap();
        drop(store);
        // Orphans were collected at open: with every handle closed (no compaction running,
        // no deleted table still open), the directory holds exactly the live tables.
        assert_eq!(orphan_tables(&shared), Vec::<String>::new(), "crash point {point}: orphan tables");
        if finished {
            assert!(point > 20, "the imports should have many crash points, saw {point}");
            return;
        }
        point += 1;
    }
}

#[test]
fn every_crash_point_dropping_unsynced_data() {
    check_crash_points(|_| CrashMode::DropUnsynced);
}

#[test]
fn every_crash_point_tearing_unsynced_data() {
    check_crash_points(|point| CrashMode::TearUnsynced { seed: point * 7919 + 1 });
}
