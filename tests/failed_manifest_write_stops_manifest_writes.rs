//! Found by `kho stress --faults` (seed 20261128, epoch 59): a version edit whose manifest
//! fsync failed is still in the manifest's bytes, though it was never applied in memory. If
//! later edits are appended after it (a flush, the next `compact_range`), the next open
//! applies the failed edit too — its compaction outputs join a level beside the outputs of
//! the same inputs compacted again, the level overlaps itself, scans come out of order and
//! older values come back. After a failed manifest write the manifest must take no more
//! edits (what reached it is unknown, as after a failed log fsync).
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{db_dir, fault_fs, small_options};
use kho::vfs::{FaultKind, FaultOp, SharedFs};
use kho::{Db, Options};

/// Background compaction off, so `compact_range` is the only compaction.
fn quiet(fs: SharedFs) -> Options {
    Options {
        level0_compaction_trigger: 1000,
        level0_slowdown_trigger: 1000,
        level0_stop_trigger: 1000,
        level_base_bytes: 1 << 40,
        ..small_options(fs)
    }
}

fn round(db: &Db, model: &mut Vec<(Vec<u8>, Vec<u8>)>, tag: &str) {
    for i in 0..60 {
        let (k, v) = (format!("k{i:02}").into_bytes(), format!("{tag}-{i}-{}", "x".repeat(40)).into_bytes());
        if db.put(&k, &v).is_ok() {
            match model.binary_search_by(|(mk, _)| mk.as_slice().cmp(&k)) {
                Ok(at) => model[at].1 = v,
                Err(at) => model.insert(at, (k, v)),
            }
        }
    }
    let _ = db.flush();
}

#[test]
fn no_edit_follows_a_failed_manifest_write() {
    for nth in 0..8 {
        for op in [FaultOp::Sync, FaultOp::Append] {
            let (fs, shared) = fault_fs();
            let db = Db::open(db_dir(), quiet(shared.clone())).unwrap();
            let mut model = Vec::new();
            round(&db, &mut model, "a");
            round(&db, &mut model, "b");
            fs.inject(op, nth, FaultKind::Eio);
            let _ = db.compact_range::<&[u8], _>(..);
            round(&db, &mut model, "c");
            let _ = db.compact_range::<&[u8], _>(..);
            fs.clear_faults();
            drop(db);
            let db =
                Db::open(db_dir(), quiet(shared)).unwrap_or_else(|e| panic!("{op:?} fault #{nth}: reopen failed: {e}"));
            let got: Vec<(Vec<u8>, Vec<u8>)> = db
                .iter()
                .unwrap()
                .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect::<kho::Result<_>>()
                .unwrap();
            let keys: Vec<String> = got.iter().map(|(k, _)| String::from_utf8_lossy(k).into_owned()).collect();
            assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "{op:?} fault #{nth}: scan out of order: {keys:?}");
            assert!(got == model, "{op:?} fault #{nth}: recovered state differs from the acknowledged writes");
        }
    }
}
