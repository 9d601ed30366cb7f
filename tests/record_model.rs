//! Model-based test of the record layer: random inserts, upserts that change national IDs,
//! deletes, erasures and batches, with clean reopens and simulated crashes (`FaultFs`, at
//! random crash points, dropping or tearing unsynced data), against a `BTreeMap` model.
//!
//! After every step that leaves the store usable: `verify_index()` is clean, `person(id)`
//! equals the model's records of `id` for every ID, and every collection scans to exactly
//! the model. After a crash the recovered records must equal the model after some prefix
//! of the issued writes, no shorter than the last write acknowledged as synced.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{db_dir, fault_fs, small_options};
use kho::record::Error;
use kho::record::{NationalId, Store, StoreOptions};
use kho::vfs::{CrashMode, FaultFs, SharedFs};
use kho::Db;
use proptest::prelude::*;

const COLLECTIONS: [&str; 3] = ["tax", "taxes", "residence"];
const PKS: [&str; 4] = ["1", "10", "a", "b"];
const IDS: [&str; 4] = ["079090000001", "079090000002", "001185000003", "096203000004"];

/// (collection, pk) -> (person index, payload)
type Model = BTreeMap<(usize, usize), (usize, u32)>;

#[derive(Debug, Clone)]
enum W {
    Insert(usize, usize, usize, u32),
    Upsert(usize, usize, usize, u32),
    Delete(usize, usize),
}

#[derive(Debug, Clone)]
enum Op {
    Write(W),
    Erase(usize),
    Batch(Vec<W>, bool),
    Reopen,
    ArmCrash(u8),
    Crash(bool),
}

fn w() -> impl Strategy<Value = W> {
    let (c, k, p) = (0..COLLECTIONS.len(), 0..PKS.len(), 0..IDS.len());
    prop_oneof![
        3 => (c.clone(), k.clone(), p.clone(), any::<u32>()).prop_map(|(c, k, p, v)| W::Insert(c, k, p, v)),
        5 => (c.clone(), k.clone(), p, any::<u32>()).prop_map(|(c, k, p, v)| W::Upsert(c, k, p, v)),
        2 => (c, k).prop_map(|(c, k)| W::Delete(c, k)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => w().prop_map(Op::Write),
        1 => (0..IDS.len()).prop_map(Op::Erase),
        3 => (prop::collection::vec(w(), 1..8), any::<bool>()).prop_map(|(b, s)| Op::Batch(b, s)),
        1 => Just(Op::Reopen),
        1 => (0u8..30).prop_map(Op::ArmCrash),
        1 => any::<bool>().prop_map(Op::Crash),
    ]
}

fn ids() -> Vec<NationalId> {
    IDS.iter().map(|s| NationalId::parse(s).unwrap()).collect()
}

/// Applies `w` to `m`; `Err(())` for an insert of an existing key (nothing changes).
fn apply_model(m: &mut Model, w: &W) -> Result<(), ()> {
    match *w {
        W::Insert(c, k, p, v) => {
            if m.contains_key(&(c, k)) {
                return Err(());
            }
            m.insert((c, k), (p, v));
        }
        W::Upsert(c, k, p, v) => {
            m.insert((c, k), (p, v));
        }
        W::Delete(c, k) => {
            m.remove(&(c, k));
        }
    }
    Ok(())
}

struct Harness {
    fs: Arc<FaultFs>,
    shared: SharedFs,
    store: Store,
    ids: Vec<NationalId>,
    model: Model,
    /// Model after each write issued since the last crash or reopen; `states[0]` is the
    /// state then.
    states: Vec<Model>,
    /// Index into `states` of the last write acknowledged as synced.
    synced: usize,
    armed: bool,
    /// A write failed (crash point reached): the store is unusable until a crash.
    dead: bool,
}

impl Harness {
    fn new() -> Harness {
        let (fs, shared) = fault_fs();
        let store = open(&shared);
        Harness {
            fs,
            shared,
            store,
            ids: ids(),
            model: Model::new(),
            states: vec![Model::new()],
            synced: 0,
            armed: false,
            dead: false,
        }
    }

    /// Issues one write unit whose success turns the model into `next`.
    fn issued(&mut self, result: kho::record::Result<()>, next: Model, sync: bool) {
        self.states.push(next.clone());
        match result {
            Ok(()) => {
                self.model = next;
                if sync {
                    self.synced = self.states.len() - 1;
                }
            }
            Err(e) if self.armed => {
                let _ = e;
                self.dead = true;
            }
            Err(e) => panic!("unexpected write failure: {e}"),
        }
    }

    fn write(&mut self, w: &W) {
        let mut next = self.model.clone();
        let expect_exists = apply_model(&mut next, w).is_err();
        let s = &self.store;
        let result = match *w {
            W::Insert(c, k, p, v) => s.insert(COLLECTIONS[c], PKS[k], &self.ids[p], &v),
            W::Upsert(c, k, p, v) => s.upsert(COLLECTIONS[c], PKS[k], &self.ids[p], &v).map(|_| ()),
            W::Delete(c, k) => s.delete(COLLECTIONS[c], PKS[k]).map(|_| ()),
        };
        if expect_exists {
            match result {
                Err(Error::RecordExists { .. }) => return,
                Err(_) if self.armed => {
                    self.dead = true;
                    return;
                }
                other => panic!("insert of an existing key: {other:?}"),
            }
        }
        self.issued(result, next, false);
    }

    fn batch(&mut self, ws: &[W], sync: bool) {
        let mut next = self.model.clone();
        let conflict = ws.iter().any(|w| apply_model(&mut next, w).is_err());
        let built = (|| {
            let mut b = self.store.batch();
            b.sync(sync);
            for w in ws {
                match *w {
                    W::Insert(c, k, p, v) => {
                        b.insert(COLLECTIONS[c], PKS[k], &self.ids[p], &v)?;
                    }
                    W::Upsert(c, k, p, v) => {
                        b.upsert(COLLECTIONS[c], PKS[k], &self.ids[p], &v)?;
                    }
                    W::Delete(c, k) => {
                        b.delete(COLLECTIONS[c], PKS[k]);
                    }
                }
            }
            b.commit()
        })();
        if conflict {
            match built {
                Err(Error::RecordExists { .. }) => {}
                Err(_) if self.armed => self.dead = true,
                other => panic!("batch with a conflicting insert: {other:?}"),
            }
            return;
        }
        // A batch that changes nothing writes (and syncs) nothing.
        let key = |w: &W| match *w {
            W::Insert(c, k, ..) | W::Upsert(c, k, ..) | W::Delete(c, k) => (c, k),
        };
        let writes = ws.iter().any(|w| self.model.contains_key(&key(w)) || next.contains_key(&key(w)));
        self.issued(built, next, sync && writes);
    }

    fn erase(&mut self, p: usize) {
        let mut next = self.model.clone();
        next.retain(|_, (owner, _)| *owner != p);
        let expected = self.model.len() - next.len();
        let result = self.store.erase_person(&self.ids[p]);
        if let Ok(e) = &result {
            assert_eq!(e.records, expected, "records erased");
            assert_eq!(e.keys.len(), 2 * expected, "a record and an index key each");
        }
        // Erasing nobody writes (and syncs) nothing.
        self.issued(result.map(|_| ()), next, expected > 0);
    }

    fn crash(&mut self, tear: bool, seed: u64) {
        let mode = if tear { CrashMode::TearUnsynced { seed } } else { CrashMode::DropUnsynced };
        // The "process" dies: the next one sees the crash image on a fresh file system,
        // while the old store's background threads (flush, compaction) wind down on the
        // old one and cannot touch the image.
        let image = self.fs.crash_clone(mode);
        self.shared = image.clone();
        self.fs = image;
        let old = std::mem::replace(&mut self.store, open(&self.shared));
        drop(old);
        let got = self.read_all();
        assert!(
            self.states[self.synced..].contains(&got),
            "recovered {got:?} is not the state after any write from the last synced one ({} of {})",
            self.synced,
            self.states.len() - 1
        );
        self.model = got;
        self.reset_history();
    }

    fn reopen(&mut self) {
        self.store.close().unwrap();
        self.store = open(&self.shared);
        assert_eq!(self.read_all(), self.model, "after a clean reopen");
        self.reset_history();
    }

    fn reset_history(&mut self) {
        self.states = vec![self.model.clone()];
        self.synced = 0;
        self.armed = false;
        self.dead = false;
    }

    /// Every record, through collection scans.
    fn read_all(&self) -> Model {
        let mut m = Model::new();
        for name in self.store.collections() {
            let c = COLLECTIONS.iter().position(|n| *n == name).unwrap();
            for r in self.store.scan(&name).unwrap() {
                let r = r.unwrap();
                let k = PKS.iter().position(|k| k.as_bytes() == r.pk).unwrap();
                let p = self.ids.iter().position(|i| *i == r.id).unwrap();
                m.insert((c, k), (p, r.decode::<u32>().unwrap()));
            }
        }
        m
    }

    /// The invariants checked after every step.
    fn check(&self) {
        let report = self.store.verify_index().unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.records as usize, self.model.len());
        assert_eq!(report.index_entries as usize, self.model.len());
        assert_eq!(self.read_all(), self.model);
        for (p, id) in self.ids.iter().enumerate() {
            let got: Vec<(String, String, u32)> = self
                .store
                .person(id)
                .unwrap()
                .iter()
                .map(|r| {
                    assert_eq!(r.id, *id);
                    (r.collection.to_string(), String::from_utf8(r.pk.to_vec()).unwrap(), r.decode::<u32>().unwrap())
                })
                .collect();
            let mut want: Vec<(String, String, u32)> = self
                .model
                .iter()
                .filter(|(_, (owner, _))| *owner == p)
                .map(|((c, k), (_, v))| (COLLECTIONS[*c].to_string(), PKS[*k].to_string(), *v))
                .collect();
            let mut got_sorted = got.clone();
            got_sorted.sort();
            want.sort();
            assert_eq!(got_sorted, want, "person {id}");
        }
    }
}

fn open(shared: &SharedFs) -> Store {
    let db = Db::open(db_dir(), small_options(shared.clone())).unwrap();
    Store::open(db, StoreOptions::default()).unwrap()
}

fn run(ops: Vec<Op>) {
    let mut h = Harness::new();
    for (step, op) in ops.iter().enumerate() {
        if h.dead && !matches!(op, Op::Crash(_)) {
            continue;
        }
        match op {
            Op::Write(w) => h.write(w),
            Op::Erase(p) => h.erase(*p),
            Op::Batch(ws, sync) => h.batch(ws, *sync),
            Op::Reopen if h.armed => h.crash(false, 0),
            Op::Reopen => h.reopen(),
            Op::ArmCrash(n) => {
                h.fs.arm_crash_after(u64::from(*n));
                h.armed = true;
            }
            Op::Crash(tear) => h.crash(*tear, step as u64 + 1),
        }
        if !h.armed && !h.dead {
            h.check();
        }
    }
    h.crash(true, 99);
    h.check();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]
    #[test]
    fn record_layer_matches_model(ops in prop::collection::vec(op(), 1..64)) {
        run(ops);
    }
}

/// A fixed sequence covering every op kind, so the interesting paths run even if the
/// random cases happen to miss one.
#[test]
fn scripted_sequence() {
    use Op::*;
    use W::*;
    run(vec![
        Write(Insert(0, 0, 0, 1)),
        Write(Insert(1, 0, 1, 2)),
        Write(Upsert(0, 0, 2, 3)),
        Batch(vec![Insert(2, 1, 0, 4), Upsert(2, 1, 3, 5), Delete(1, 0)], true),
        Write(Upsert(0, 2, 0, 6)),
        Crash(false),
        Write(Insert(0, 3, 0, 7)),
        Erase(0),
        Reopen,
        ArmCrash(3),
        Write(Upsert(0, 1, 1, 8)),
        Write(Upsert(0, 1, 2, 9)),
        Batch(vec![Upsert(1, 2, 3, 10), Upsert(1, 3, 3, 11)], false),
        Crash(true),
        Erase(3),
    ]);
}
