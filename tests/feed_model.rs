//! Model-based test of the feed against the data: proptest drives random sequences of
//! record writes (upserts that keep or change the owner, deletes, batches, erasures),
//! partial reads with synced or group-committed acknowledgements, trims, flushes and
//! reopens against a `BTreeMap` model of the records. A replica built only from the feed
//! must equal the model whenever the consumer has caught up, positions must strictly
//! increase along every cursor and never fall at or below the last acknowledgement, deletes
//! and erasures carry no payload, and once everything is acknowledged a trim leaves no change.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{db_dir, fault_fs, small_options, store_records};
use kho::record::{AckMode, ChangeKind, FeedOptions, NationalId, Store, StoreOptions, SubscriptionFilter};
use kho::vfs::SharedFs;
use kho::Db;
use proptest::prelude::*;

type Records = common::StoreRecords;

/// One op of a batch: collection, pk, and `Some((person, value))` for an upsert or `None`
/// for a delete.
type BatchItem = (u8, u8, Option<(u8, u16)>);

#[derive(Debug, Clone)]
enum Op {
    Upsert { coll: u8, pk: u8, who: u8, val: u16 },
    Delete { coll: u8, pk: u8 },
    Batch(Vec<BatchItem>),
    Erase { who: u8 },
    Consume { take: u8, sync: bool },
    Trim,
    Flush,
    Reopen,
}

fn batch_item() -> impl Strategy<Value = BatchItem> {
    (0u8..2, 0u8..6, proptest::option::of((0u8..3, any::<u16>())))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..2, 0u8..6, 0u8..3, any::<u16>()).prop_map(|(coll, pk, who, val)| Op::Upsert { coll, pk, who, val }),
        2 => (0u8..2, 0u8..6).prop_map(|(coll, pk)| Op::Delete { coll, pk }),
        2 => proptest::collection::vec(batch_item(), 1..5).prop_map(Op::Batch),
        1 => (0u8..3).prop_map(|who| Op::Erase { who }),
        3 => (1u8..20, any::<bool>()).prop_map(|(take, sync)| Op::Consume { take, sync }),
        1 => Just(Op::Trim),
        1 => Just(Op::Flush),
        1 => Just(Op::Reopen),
    ]
}

fn ids() -> [NationalId; 3] {
    ["079190001234", "001185000042", "048203000777"].map(|s| NationalId::parse(s).unwrap())
}

const COLLS: [&str; 2] = ["tax", "vehicle"];

fn open(shared: &SharedFs) -> Store {
    let opts = StoreOptions { feed: FeedOptions { enable: true, ..FeedOptions::default() }, ..StoreOptions::default() };
    Store::open(Db::open(db_dir(), small_options(shared.clone())).unwrap(), opts).unwrap()
}

/// The consumer: its replica and the last position it acknowledged.
struct Consumer {
    replica: Records,
    acked: u64,
}

impl Consumer {
    /// Reads up to `take` changes (all if `None`), applies them, acknowledges what it read.
    fn consume(&mut self, store: &Store, take: Option<usize>, mode: AckMode) {
        let mut cursor = store.changes("model").unwrap();
        let mut last = self.acked;
        for c in cursor.by_ref().take(take.unwrap_or(usize::MAX)) {
            let c = c.unwrap();
            assert!(c.position > last, "position {} after {last} (acked {})", c.position, self.acked);
            last = c.position;
            let key = (c.collection.to_string(), c.pk.to_vec());
            match c.kind {
                ChangeKind::Insert | ChangeKind::Update => {
                    self.replica.insert(key, (c.id, c.payload.unwrap().to_vec()));
                }
                ChangeKind::Delete | ChangeKind::Erase => {
                    assert!(c.payload.is_none());
                    self.replica.remove(&key);
                }
                other => panic!("unexpected kind {other:?}"),
            }
        }
        cursor.ack(cursor.delivered_through(), mode).unwrap();
        if mode == AckMode::Sync {
            self.acked = cursor.acked();
        }
    }
}

fn run(ops: Vec<Op>) {
    let (_fs, shared) = fault_fs();
    let mut store = open(&shared);
    store.subscribe("model", SubscriptionFilter::all()).unwrap();
    let mut model = Records::new();
    let mut consumer = Consumer { replica: Records::new(), acked: 0 };
    let ids = ids();
    let payload = |v: u16| rmp_serde::to_vec_named(&v).unwrap();
    for op in ops {
        match op {
            Op::Upsert { coll, pk, who, val } => {
                let (c, id) = (COLLS[coll as usize], ids[who as usize]);
                store.upsert(c, [pk], &id, &val).unwrap();
                model.insert((c.to_string(), vec![pk]), (id, payload(val)));
            }
            Op::Delete { coll, pk } => {
                let c = COLLS[coll as usize];
                store.delete(c, [pk]).unwrap();
                model.remove(&(c.to_string(), vec![pk]));
            }
            Op::Batch(items) => {
                let mut b = store.batch();
                for (coll, pk, what) in items {
                    let c = COLLS[coll as usize];
                    match what {
                        Some((who, val)) => {
                            b.upsert(c, [pk], &ids[who as usize], &val).unwrap();
                            model.insert((c.to_string(), vec![pk]), (ids[who as usize], payload(val)));
                        }
                        None => {
                            b.delete(c, [pk]);
                            model.remove(&(c.to_string(), vec![pk]));
                        }
                    }
                }
                b.commit().unwrap();
            }
            Op::Erase { who } => {
                store.erase_person(&ids[who as usize]).unwrap();
                model.retain(|_, (id, _)| *id != ids[who as usize]);
            }
            Op::Consume { take, sync } => {
                let mode = if sync { AckMode::Sync } else { AckMode::GroupCommit };
                consumer.consume(&store, Some(take as usize), mode);
            }
            Op::Trim => {
                store.trim_feed().unwrap();
            }
            Op::Flush => store.db().flush().unwrap(),
            Op::Reopen => {
                store.close().unwrap();
                drop(store);
                store = open(&shared);
                // A clean close keeps group-committed acknowledgements too.
                consumer.acked = store.subscriptions().unwrap()[0].acked;
            }
        }
        assert_eq!(store_records(&store), model, "the store differs from the model");
    }
    consumer.consume(&store, None, AckMode::Sync);
    assert_eq!(consumer.replica, model, "the replica built from the feed differs from the records");
    assert!(store.verify_index().unwrap().is_clean());
    // Everything is acknowledged: a trim leaves no change behind.
    store.trim_feed().unwrap();
    assert_eq!(store.db().prefix("F").unwrap().count(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_feed_replays_to_the_records(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }
}

/// Found by the model: a consumer applied an insert, the record was deleted, then its owner
/// erased; the purge dropped the delete too, so the replica kept the record.
#[test]
fn regression_erasure_keeps_the_delete_of_a_record_a_consumer_saw() {
    run(vec![
        Op::Upsert { coll: 1, pk: 5, who: 0, val: 0 },
        Op::Consume { take: 1, sync: false },
        Op::Batch(vec![(1, 5, None)]),
        Op::Erase { who: 0 },
    ]);
}
