//! The change feed's behaviour: every record write's change, in commit order, with kinds and
//! payloads; filters; acknowledgement and at-least-once redelivery; exclusive cursors;
//! positions surviving compaction and reopen; retention (acknowledged changes dropped,
//! expiry past the size bound as a hard error); erasure purging the person's changes.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{db_dir, fault_fs, small_options};
use kho::record::{
    AckMode, Change, ChangeKind, Error, FeedOptions, NationalId, Store, StoreOptions, SubscriptionFilter,
};
use kho::vfs::SharedFs;
use kho::Db;

fn id(s: &str) -> NationalId {
    NationalId::parse(s).unwrap()
}

fn feed_options() -> StoreOptions {
    StoreOptions { feed: FeedOptions { enable: true, ..FeedOptions::default() }, ..StoreOptions::default() }
}

fn open_with(shared: &SharedFs, opts: StoreOptions) -> Store {
    Store::open(Db::open(db_dir(), small_options(shared.clone())).unwrap(), opts).unwrap()
}

fn drain(store: &Store, name: &str) -> Vec<Change> {
    store.changes(name).unwrap().collect::<kho::record::Result<_>>().unwrap()
}

fn summary(changes: &[Change]) -> Vec<(ChangeKind, String, String, Option<String>)> {
    changes
        .iter()
        .map(|c| {
            (c.kind, c.collection.to_string(), String::from_utf8(c.pk.to_vec()).unwrap(), c.decode::<String>().unwrap())
        })
        .collect()
}

#[test]
fn every_write_is_one_change_in_commit_order() {
    let (_fs, shared) = fault_fs();
    let store = open_with(&shared, feed_options());
    let (an, binh) = (id("079190001234"), id("001185000042"));
    store.insert("tax", "1", &an, "a1").unwrap(); // before the subscription: not delivered
    let start = store.subscribe("all", SubscriptionFilter::all()).unwrap();
    store.insert("tax", "2", &an, "a2").unwrap();
    store.upsert("tax", "2", &an, "a2'").unwrap();
    store.upsert("tax", "2", &binh, "b2").unwrap(); // moves to another person
    store.delete("tax", "1").unwrap();
    store.delete("tax", "absent").unwrap(); // changes nothing: no change
    let mut b = store.batch();
    b.insert("vehicle", "59-X1", &binh, "honda").unwrap();
    b.upsert("vehicle", "59-X1", &binh, "honda wave").unwrap(); // net effect of a batch
    b.commit().unwrap();
    store.erase_person(&binh).unwrap();

    let got = drain(&store, "all");
    let s = |x: &str| x.to_string();
    // binh's inserts of tax/2 and of vehicle/59-X1 were purged by the erasure.
    assert_eq!(
        summary(&got),
        vec![
            (ChangeKind::Insert, s("tax"), s("2"), Some(s("a2"))),
            (ChangeKind::Update, s("tax"), s("2"), Some(s("a2'"))),
            (ChangeKind::Delete, s("tax"), s("2"), None),
            (ChangeKind::Delete, s("tax"), s("1"), None),
            (ChangeKind::Erase, s("tax"), s("2"), None),
            (ChangeKind::Erase, s("vehicle"), s("59-X1"), None),
        ]
    );
    assert!(got.windows(2).all(|w| w[0].position < w[1].position));
    assert!(got[0].position > start);
    let ids: Vec<_> = got.iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![an, an, an, an, binh, binh]);
}

#[test]
fn filters_select_collections_and_id_prefixes() {
    let (_fs, shared) = fault_fs();
    let store = open_with(&shared, feed_options());
    store.subscribe("tax-hcm", SubscriptionFilter::collections(["tax"]).id_prefix("079").unwrap()).unwrap();
    store.subscribe("vehicles", SubscriptionFilter::collections(["vehicle"])).unwrap();
    let (hcm, hn) = (id("079190001234"), id("001185000042"));
    for i in 0..3000 {
        let who = if i % 2 == 0 { &hcm } else { &hn };
        store.insert(if i % 3 == 0 { "vehicle" } else { "tax" }, format!("{i}"), who, &i).unwrap();
    }
    let tax = drain(&store, "tax-hcm");
    assert_eq!(tax.len(), (0..3000).filter(|i| i % 2 == 0 && i % 3 != 0).count());
    assert!(tax.iter().all(|c| &*c.collection == "tax" && c.id == hcm));
    assert_eq!(drain(&store, "vehicles").len(), 1000);
    assert!(SubscriptionFilter::all().id_prefix("07x").is_err());
    let debug = format!("{:?}", SubscriptionFilter::all().id_prefix("079190001234").unwrap());
    assert!(!debug.contains("079190001234"), "{debug}");
}

#[test]
fn acknowledged_changes_are_not_redelivered_and_unacknowledged_ones_are() {
    let (_fs, shared) = fault_fs();
    let store = open_with(&shared, feed_options());
    store.subscribe("s", SubscriptionFilter::all()).unwrap();
    let an = id("079190001234");
    for i in 0..10 {
        store.insert("tax", format!("{i}"), &an, &i).unwrap();
    }
    let mut cursor = store.changes("s").unwrap();
    assert!(matches!(store.changes("s"), Err(Error::CursorInUse { .. })), "cursors are exclusive");
    let first: Vec<Change> = cursor.by_ref().take(4).collect::<Result<_, _>>().unwrap();
    assert!(cursor.ack(first[3].position + 1_000_000, AckMode::Sync).is_err(), "ack beyond what was read");
    cursor.ack(first[3].position, AckMode::Sync).unwrap();
    let _unacked: Vec<Change> = cursor.by_ref().take(3).collect::<Result<_, _>>().unwrap();
    drop(cursor);
    let again = drain(&store, "s");
    assert_eq!(again.len(), 6, "everything after the acknowledged position, nothing before");
    assert!(again[0].position > first[3].position);

    // The acknowledgement survives a reopen.
    drop(store);
    let store = open_with(&shared, StoreOptions::default()); // the feed stays on
    assert!(store.feed_enabled());
    assert_eq!(drain(&store, "s").len(), 6);
    let info = store.subscriptions().unwrap();
    assert_eq!((info.len(), info[0].lag, info[0].expired), (1, 6, false));
    assert!(store.unsubscribe("s").unwrap());
    assert!(matches!(store.changes("s"), Err(Error::UnknownSubscription { .. })));
}

#[test]
fn positions_survive_compaction_and_reopen() {
    let (_fs, shared) = fault_fs();
    let store = open_with(&shared, feed_options());
    store.subscribe("s", SubscriptionFilter::all()).unwrap();
    let an = id("079190001234");
    for i in 0..500 {
        store.upsert("tax", format!("{}", i % 50), &an, &format!("value {i}")).unwrap();
    }
    let before = drain(&store, "s");
    store.db().compact_range::<&[u8], _>(..).unwrap();
    drop(store);
    let store = open_with(&shared, feed_options());
    let after = drain(&store, "s");
    assert_eq!(before, after);
    assert_eq!(after.len(), 500);
    // New changes continue after every old position.
    store.insert("tax", "new", &an, "x").unwrap();
    let last = drain(&store, "s").pop().unwrap();
    assert!(last.position > after.last().unwrap().position);
}

#[test]
fn acknowledged_changes_are_trimmed_and_a_cursor_behind_the_bound_expires() {
    let (_fs, shared) = fault_fs();
    let opts = StoreOptions {
        feed: FeedOptions {
            enable: true,
            max_bytes: Some(16 << 10),
            trim_every_bytes: u64::MAX,
            ..FeedOptions::default()
        },
        ..StoreOptions::default()
    };
    let store = open_with(&shared, opts);
    store.subscribe("fast", SubscriptionFilter::all()).unwrap();
    store.subscribe("slow", SubscriptionFilter::all()).unwrap();
    let an = id("079190001234");
    for i in 0..100 {
        store.insert("tax", format!("{i}"), &an, &i).unwrap();
    }
    let mut fast = store.changes("fast").unwrap();
    while fast.next().transpose().unwrap().is_some() {}
    fast.ack_all(AckMode::GroupCommit).unwrap();
    drop(fast);
    // "slow" holds every change: nothing goes.
    assert_eq!(store.trim_feed().unwrap().deleted, 0);
    let mut slow = store.changes("slow").unwrap();
    let half: Vec<Change> = slow.by_ref().take(50).collect::<Result<_, _>>().unwrap();
    slow.ack(half[49].position, AckMode::Sync).unwrap();
    drop(slow);
    let report = store.trim_feed().unwrap();
    assert_eq!((report.deleted, report.expired_changes), (50, 0));

    // Past the size bound, unacknowledged changes go and "slow" expires: a hard error.
    for i in 100..2000 {
        store.insert("tax", format!("{i}"), &an, &i).unwrap();
    }
    let report = store.trim_feed().unwrap();
    assert!(report.expired_changes > 0 && report.expired_subscriptions == 2, "{report:?}");
    assert!(matches!(store.changes("slow"), Err(Error::CursorExpired { .. })));
    let info = store.subscriptions().unwrap();
    assert!(info.iter().all(|s| s.expired));
    // Resync: subscribe again from now.
    store.unsubscribe("slow").unwrap();
    store.subscribe("slow", SubscriptionFilter::all()).unwrap();
    store.insert("tax", "after", &an, "x").unwrap();
    assert_eq!(drain(&store, "slow").len(), 1);
}

#[test]
fn with_no_subscription_the_changelog_is_dropped() {
    let (_fs, shared) = fault_fs();
    let store = open_with(&shared, feed_options());
    let an = id("079190001234");
    for i in 0..100 {
        store.insert("tax", format!("{i}"), &an, &i).unwrap();
    }
    assert_eq!(store.trim_feed().unwrap().deleted, 100);
    assert_eq!(store.db().prefix("F").unwrap().count(), 0);
}

#[test]
fn erasure_purges_the_persons_earlier_changes_and_their_payloads() {
    let (_fs, shared) = fault_fs();
    let store = open_with(&shared, feed_options());
    store.subscribe("s", SubscriptionFilter::all()).unwrap();
    let (an, binh) = (id("079190001234"), id("001185000042"));
    store.insert("tax", "a", &an, "an-secret-1").unwrap();
    store.upsert("tax", "a", &an, "an-secret-2").unwrap();
    store.insert("tax", "b", &binh, "binh-data").unwrap();
    store.insert("health", "a2", &an, "an-secret-3").unwrap();
    store.delete("health", "a2").unwrap();
    store.erase_person(&an).unwrap();
    let got = drain(&store, "s");
    assert_eq!(
        got.iter().map(|c| (c.kind, c.id)).collect::<Vec<_>>(),
        // an's delete of health/a2 stays (no payload; a replica that applied the insert must
        // learn of it), its inserts and updates are gone.
        vec![(ChangeKind::Insert, binh), (ChangeKind::Delete, an), (ChangeKind::Erase, an)]
    );
    assert!(got[1].payload.is_none() && got[2].payload.is_none());
    let raw: Vec<u8> = store.db().prefix("F").unwrap().flat_map(|kv| kv.unwrap().1.to_vec()).collect();
    assert!(!raw.windows(9).any(|w| w == b"an-secret"), "an erased payload is still in the changelog");
    // An erasure of a person with no record left still purges their changes.
    store.insert("tax", "c", &binh, "binh-2").unwrap();
    store.delete("tax", "c").unwrap();
    store.delete("tax", "b").unwrap();
    store.erase_person(&binh).unwrap();
    let left: Vec<Change> = drain(&store, "s").into_iter().filter(|c| c.id == binh).collect();
    assert!(left.iter().all(|c| c.payload.is_none()), "{left:?}");
}

#[test]
fn a_store_without_the_feed_refuses_subscriptions() {
    let (_fs, shared) = fault_fs();
    let store = open_with(&shared, StoreOptions::default());
    assert!(!store.feed_enabled());
    assert!(matches!(store.subscribe("s", SubscriptionFilter::all()), Err(Error::FeedOff)));
    store.insert("tax", "1", &id("079190001234"), "x").unwrap();
    assert_eq!(store.db().prefix("F").unwrap().count(), 0);
}
