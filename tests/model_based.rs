//! Model-based test: random sequences of puts, deletes, batches, reads, range scans in both
//! directions, snapshots, flushes and reopens against `Db` on the in-memory file system,
//! compared at every read with a `BTreeMap` model — once with the default shape and once
//! with options that keep background compactions running, with manual `compact_range`
//! calls and iterators and snapshots held across compactions — and once more encrypted, with
//! key rotations and re-encryptions among the operations.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use common::{db_dir, fault_fs, small_options};
use kho::{Db, WriteBatch, WriteOptions};
use proptest::prelude::*;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Clone)]
enum Op {
    Put(u8, Vec<u8>),
    Delete(u8),
    Batch(Vec<(u8, Option<Vec<u8>>)>),
    Get(u8),
    Range {
        lo: Option<u8>,
        hi: Option<u8>,
        hi_inclusive: bool,
        reverse: bool,
    },
    Mixed(Vec<bool>),
    /// One iterator over a range (lower bound included or excluded, optional excluded upper
    /// bound), re-positioned by each seek (forwards or backwards), then reading a few entries
    /// from the front or from the back.
    Seeks {
        lo: Option<(u8, bool)>,
        hi: Option<u8>,
        targets: Vec<(u8, u8, bool)>,
    },
    TakeSnapshot,
    ReadSnapshot(usize, u8),
    IterSnapshot(usize),
    DropSnapshot(usize),
    Flush,
    Reopen,
    CompactRange(Option<u8>, Option<u8>),
    HoldIterator,
    CheckHeldIterator(usize),
    /// A new data key (encrypted runs), then optionally everything rewritten under it.
    RotateKey {
        reencrypt: bool,
    },
}

fn key(k: u8) -> Vec<u8> {
    format!("key{k:03}").into_bytes()
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..24),
        1 => prop::collection::vec(any::<u8>(), 200..600),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0u8..40;
    prop_oneof![
        30 => (k.clone(), value()).prop_map(|(k, v)| Op::Put(k, v)),
        10 => k.clone().prop_map(Op::Delete),
        8 => prop::collection::vec((k.clone(), prop::option::of(value())), 1..8).prop_map(Op::Batch),
        15 => k.clone().prop_map(Op::Get),
        6 => (prop::option::of(0u8..42), prop::option::of(0u8..42), any::<bool>(), any::<bool>())
            .prop_map(|(lo, hi, hi_inclusive, reverse)| Op::Range { lo, hi, hi_inclusive, reverse }),
        3 => prop::collection::vec(any::<bool>(), 0..50).prop_map(Op::Mixed),
        3 => (
            prop::option::of((0u8..42, any::<bool>())),
            prop::option::of(0u8..42),
            prop::collection::vec((0u8..42, 0u8..4, any::<bool>()), 1..6)
        )
            .prop_map(|(lo, hi, targets)| Op::Seeks { lo, hi, targets }),
        3 => Just(Op::TakeSnapshot),
        4 => (any::<usize>(), k.clone()).prop_map(|(i, k)| Op::ReadSnapshot(i, k)),
        2 => any::<usize>().prop_map(Op::IterSnapshot),
        1 => any::<usize>().prop_map(Op::DropSnapshot),
        2 => Just(Op::Flush),
        2 => Just(Op::Reopen),
        2 => (prop::option::of(0u8..42), prop::option::of(0u8..42)).prop_map(|(a, b)| Op::CompactRange(a, b)),
        2 => Just(Op::HoldIterator),
        2 => any::<usize>().prop_map(Op::CheckHeldIterator),
        1 => any::<bool>().prop_map(|reencrypt| Op::RotateKey { reencrypt }),
    ]
}

fn collect(it: kho::DbIterator, reverse: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let items: kho::Result<Vec<_>> = if reverse {
        it.rev().map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec()))).collect()
    } else {
        it.map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec()))).collect()
    };
    items.unwrap()
}

/// Options under which background compactions run constantly and reach every level: two
/// level-0 files trigger one, level 1 holds 4 KiB, outputs are cut at 2 KiB.
fn compacting_options(fs: kho::vfs::SharedFs) -> kho::Options {
    kho::Options {
        level0_compaction_trigger: 2,
        level0_slowdown_trigger: 4,
        level0_stop_trigger: 6,
        level_base_bytes: 4 << 10,
        level_multiplier: 2,
        target_file_size: 2 << 10,
        num_levels: 4,
        ..small_options(fs)
    }
}

fn run(ops: Vec<Op>, compacting: bool, encrypted: bool) -> Result<(), TestCaseError> {
    let (_fs, shared) = fault_fs();
    let encryption = encrypted.then(|| {
        let key = kho::crypt::SecretKey::from_bytes([0x5a; 32]);
        kho::crypt::Encryption::new(std::sync::Arc::new(kho::crypt::KeyFileProvider::from_key("model", key)))
    });
    let open = || {
        let opts = if compacting { compacting_options(shared.clone()) } else { small_options(shared.clone()) };
        Db::open(db_dir(), kho::Options { encryption: encryption.clone(), ..opts }).unwrap()
    };
    let mut db = open();
    let mut model = Model::new();
    let mut snapshots: Vec<(kho::Snapshot, Model)> = Vec::new();
    let mut held: Vec<(kho::DbIterator, Model)> = Vec::new();
    for op in ops {
        match op {
            Op::Put(k, v) => {
                db.put(key(k), &v).unwrap();
                model.insert(key(k), v);
            }
            Op::Delete(k) => {
                db.delete(key(k)).unwrap();
                model.remove(&key(k));
            }
            Op::Batch(ops) => {
                let mut b = WriteBatch::new();
                for (k, v) in ops {
                    match v {
                        Some(v) => {
                            b.put(key(k), &v);
                            model.insert(key(k), v);
                        }
                        None => {
                            b.delete(key(k));
                            model.remove(&key(k));
                        }
                    }
                }
                db.write(b, &WriteOptions { sync: true }).unwrap();
            }
            Op::Get(k) => {
                prop_assert_eq!(db.get(key(k)).unwrap().map(|v| v.to_vec()), model.get(&key(k)).cloned());
            }
            Op::Range { lo, hi, hi_inclusive, reverse } => {
                let lo_b = lo.map_or(Bound::Unbounded, |k| Bound::Included(key(k)));
                let hi_b = match hi {
                    None => Bound::Unbounded,
                    Some(k) if hi_inclusive => Bound::Included(key(k)),
                    Some(k) => Bound::Excluded(key(k)),
                };
                if let (Bound::Included(l), Bound::Included(h) | Bound::Excluded(h)) = (&lo_b, &hi_b) {
                    if l > h {
                        continue; // BTreeMap::range panics on inverted ranges
                    }
                }
                let got = collect(db.range((lo_b.clone(), hi_b.clone())).unwrap(), reverse);
                let mut want: Vec<_> = model.range((lo_b, hi_b)).map(|(k, v)| (k.clone(), v.clone())).collect();
                if reverse {
                    want.reverse();
                }
                prop_assert_eq!(got, want);
            }
            Op::Mixed(dirs) => {
                let mut it = db.iter().unwrap();
                let mut front = model.iter();
                for back in dirs {
                    let (got, want) =
                        if back { (it.next_back(), front.next_back()) } else { (it.next(), front.next()) };
                    prop_assert_eq!(got.map(|kv| kv.unwrap().0.to_vec()), want.map(|(k, _)| k.clone()));
                }
            }
            Op::TakeSnapshot => snapshots.push((db.snapshot(), model.clone())),
            Op::ReadSnapshot(i, k) => {
                if !snapshots.is_empty() {
                    let (snap, m) = &snapshots[i % snapshots.len()];
                    prop_assert_eq!(snap.get(key(k)).unwrap().map(|v| v.to_vec()), m.get(&key(k)).cloned());
                }
            }
            Op::Seeks { lo, hi, targets } => {
                let lo_b = match lo {
                    None => Bound::Unbounded,
                    Some((k, false)) => Bound::Included(key(k)),
                    Some((k, true)) => Bound::Excluded(key(k)),
                };
                let hi_b = hi.map_or(Bound::Unbounded, |k| Bound::Excluded(key(k)));
                if let (Some((l, _)), Some(h)) = (lo, hi) {
                    if l > h {
                        continue; // an inverted range; BTreeMap::range would panic
                    }
                }
                let mut it = db.range((lo_b.clone(), hi_b.clone())).unwrap();
                for (t, n, from_back) in targets {
                    // A seek below the range starts at the range's own lower bound.
                    let below = match &lo_b {
                        Bound::Unbounded => false,
                        Bound::Included(l) => key(t) < *l,
                        Bound::Excluded(l) => key(t) <= *l,
                    };
                    let start = if below { lo_b.clone() } else { Bound::Included(key(t)) };
                    let window = match (&start, &hi_b) {
                        (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(h)) => s < h,
                        _ => true,
                    };
                    it.seek(key(t));
                    let n = usize::from(n);
                    let unwrap = |kv: kho::Result<(bytes::Bytes, bytes::Bytes)>| kv.map(|(k, _)| k.to_vec()).unwrap();
                    let (got, want): (Vec<_>, Vec<_>) = if !window {
                        (it.by_ref().take(n).map(unwrap).collect(), Vec::new())
                    } else if from_back {
                        let want = model.range((start, hi_b.clone())).rev().take(n).map(|(k, _)| k.clone()).collect();
                        (it.by_ref().rev().take(n).map(unwrap).collect(), want)
                    } else {
                        let want = model.range((start, hi_b.clone())).take(n).map(|(k, _)| k.clone()).collect();
                        (it.by_ref().take(n).map(unwrap).collect(), want)
                    };
                    prop_assert_eq!(
                        got,
                        want,
                        "seek to {:?} in {:?}..{:?}, from back: {}",
                        key(t),
                        lo_b,
                        hi_b,
                        from_back
                    );
                }
            }
            Op::IterSnapshot(i) => {
                if !snapshots.is_empty() {
                    let (snap, m) = &snapshots[i % snapshots.len()];
                    let want: Vec<_> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    prop_assert_eq!(collect(snap.iter().unwrap(), false), want);
                }
            }
            Op::DropSnapshot(i) => {
                if !snapshots.is_empty() {
                    let i = i % snapshots.len();
                    snapshots.swap_remove(i);
                }
            }
            Op::Flush => db.flush().unwrap(),
            Op::RotateKey { reencrypt } => {
                if encrypted {
                    db.rotate_key().unwrap();
                    if reencrypt {
                        let report = db.reencrypt().unwrap();
                        prop_assert_eq!(db.keyring().unwrap().key_ids(), vec![report.key_id]);
                    }
                }
            }
            Op::CompactRange(a, b) => {
                let lo = a.map_or(Bound::Unbounded, |k| Bound::Included(key(k)));
                let hi = b.map_or(Bound::Unbounded, |k| Bound::Included(key(k)));
                db.compact_range((lo, hi)).unwrap();
            }
            Op::HoldIterator => held.push((db.iter().unwrap(), model.clone())),
            Op::CheckHeldIterator(i) => {
                if !held.is_empty() {
                    let (it, m) = held.swap_remove(i % held.len());
                    let want: Vec<_> = m.into_iter().collect();
                    prop_assert_eq!(collect(it, false), want);
                }
            }
            Op::Reopen => {
                held.clear();
                snapshots.clear();
                db.close().unwrap();
                db = open();
            }
        }
    }
    let all = collect(db.iter().unwrap(), false);
    prop_assert_eq!(all, model.into_iter().collect::<Vec<_>>());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn db_matches_btreemap_model(ops in prop::collection::vec(op(), 1..120)) {
        run(ops, false, false)?;
    }

    #[test]
    fn db_matches_model_under_constant_compaction(ops in prop::collection::vec(op(), 1..160)) {
        run(ops, true, false)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn encrypted_db_matches_model_under_compaction_and_rekeying(ops in prop::collection::vec(op(), 1..160)) {
        run(ops, true, true)?;
    }
}
