//! The change feed at every crash point (`FaultFs`): a workload of record writes (some
//! synced), erasures, flushes and trims, with a consumer that applies the feed to an
//! in-memory replica and acknowledges (synced or group-committed) as it goes. After a crash
//! at any file-system step — unsynced data dropped or torn — and a reopen, the consumer
//! resumes from the acknowledged position and the replica must equal the store's records:
//!
//! - nothing the consumer saw is taken back by the crash (a cursor delivers durable changes
//!   only), else the replica holds a record the store lost;
//! - nothing is skipped (the resumed cursor starts at the durable acknowledgement, which
//!   never passes a change that survived), else the replica misses a record;
//! - the feed agrees with the data (one batch), and the index is clean;
//! - a synced acknowledgement survives.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{db_dir, fault_fs, small_options, store_records};
use kho::record::{AckMode, ChangeKind, FeedOptions, NationalId, Store, StoreOptions, SubscriptionFilter};
use kho::vfs::{CrashMode, SharedFs};
use kho::Db;

type Replica = common::StoreRecords;

fn opts() -> StoreOptions {
    StoreOptions { feed: FeedOptions { enable: true, ..FeedOptions::default() }, ..StoreOptions::default() }
}

fn open(shared: &SharedFs) -> kho::record::Result<Store> {
    Store::open(Db::open(db_dir(), small_options(shared.clone()))?, opts())
}

fn ids() -> [NationalId; 3] {
    ["079190001234", "001185000042", "048203000777"].map(|s| NationalId::parse(s).unwrap())
}

/// Reads everything after the acknowledged position into `replica`; acknowledges with
/// `mode`. Returns the position acknowledged.
fn consume(store: &Store, replica: &mut Replica, mode: AckMode) -> kho::record::Result<u64> {
    let mut cursor = store.changes("replica")?;
    for c in cursor.by_ref() {
        let c = c?;
        let key = (c.collection.to_string(), c.pk.to_vec());
        match c.kind {
            ChangeKind::Insert | ChangeKind::Update => {
                replica.insert(key, (c.id, c.payload.clone().unwrap().to_vec()));
            }
            _ => {
                replica.remove(&key);
            }
        }
    }
    cursor.ack_all(mode)?;
    Ok(cursor.acked())
}

/// The workload; stops at the first error. Returns the last acknowledgement made with
/// `AckMode::Sync`.
fn run(store: &Store, replica: &mut Replica) -> u64 {
    let ids = ids();
    let mut synced_ack = 0;
    for i in 0u32..40 {
        let who = &ids[(i % 3) as usize];
        let pk = format!("{}", i % 7);
        let payload = format!("payload {i} {}", "x".repeat((i as usize * 31) % 200));
        let r = match i % 10 {
            0..=5 => store.upsert("tax", &pk, who, &payload).map(|_| ()),
            6 => store.delete("tax", &pk).map(|_| ()),
            7 => store.insert("vehicle", format!("v{i}"), who, &payload).map(|_| ()),
            8 => store.erase_person(who).map(|_| ()),
            _ => (|| {
                let mut b = store.batch();
                b.upsert("tax", "batch-a", who, &payload)?;
                b.upsert("health", "batch-b", &ids[0], &payload)?;
                b.sync(true);
                b.commit()
            })(),
        };
        if r.is_err() {
            return synced_ack;
        }
        if i % 4 == 3 {
            let mode = if i % 8 == 3 { AckMode::Sync } else { AckMode::GroupCommit };
            match consume(store, replica, mode) {
                Ok(acked) if mode == AckMode::Sync => synced_ack = acked,
                Ok(_) => {}
                Err(_) => return synced_ack,
            }
        }
        if i % 11 == 10 && store.trim_feed().is_err() {
            return synced_ack;
        }
        if i % 13 == 12 && store.db().flush().is_err() {
            return synced_ack;
        }
    }
    synced_ack
}

fn check_crash_points(mode: impl Fn(u64) -> CrashMode) {
    let mut point = 0u64;
    loop {
        let (fs, shared) = fault_fs();
        {
            let store = open(&shared).unwrap();
            store.subscribe("replica", SubscriptionFilter::all()).unwrap();
            store.close().unwrap();
        }
        fs.arm_crash_after(point);
        let mut replica = Replica::new();
        let synced_ack = match open(&shared) {
            Ok(store) => {
                let a = run(&store, &mut replica);
                drop(store);
                a
            }
            Err(_) => 0,
        };
        let finished = !fs.crash_point_hit();
        fs.crash(mode(point));

        let store = open(&shared).unwrap_or_else(|e| panic!("crash point {point}: reopen failed: {e}"));
        let acked = store.subscriptions().unwrap()[0].acked;
        assert!(acked >= synced_ack, "crash point {point}: synced ack {synced_ack} lost (now {acked})");
        consume(&store, &mut replica, AckMode::Sync).unwrap_or_else(|e| panic!("crash point {point}: {e}"));
        assert_eq!(replica, store_records(&store), "crash point {point}: the replica differs from the store");
        assert!(store.verify_index().unwrap().is_clean(), "crash point {point}");
        // The feed keeps working after the crash.
        store.insert("after", "crash", &ids()[0], "ok").unwrap();
        consume(&store, &mut replica, AckMode::Sync).unwrap();
        assert_eq!(replica, store_records(&store), "crash point {point}: after a new write");
        drop(store);
        if finished {
            assert!(point > 50, "the workload should have many crash points, saw {point}");
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
