//! Found by `kho stress --faults` (seed 103): a log with a torn tail (a crash cut its last,
//! unsynced record) is recovered by an open that fails after creating its new, empty log but
//! before switching `CURRENT` (here: the rename of `CURRENT.tmp` fails). The next open must
//! still succeed — the torn tail is no less a torn tail because an empty log now follows it —
//! and keep every synced write.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{contents, db_dir, fault_fs, small_options};
use kho::vfs::{FaultKind, FaultOp};
use kho::{Db, WriteBatch, WriteOptions};

/// A closed database holding `a` = `1` and `b` = `2`, both synced, in its one log: that log.
fn closed_db_with_two_synced_writes(fs: &kho::vfs::FaultFs, shared: &kho::vfs::SharedFs) -> std::path::PathBuf {
    let db = Db::open(db_dir(), small_options(shared.clone())).unwrap();
    for (k, v) in [("a", "1"), ("b", "2")] {
        let mut b = WriteBatch::new();
        b.put(k, v);
        db.write(b, &WriteOptions::synced()).unwrap();
    }
    db.close().unwrap();
    drop(db);
    fs.list_all().into_iter().find(|p| p.to_string_lossy().ends_with(".log")).unwrap()
}

#[test]
fn reopen_after_a_failed_open_of_a_torn_log() {
    let (fs, shared) = fault_fs();
    let log = closed_db_with_two_synced_writes(&fs, &shared);
    // Tear the last record of the log, as a crash in the middle of its write would.
    let len = fs.file_len(&log).unwrap();
    fs.truncate(&log, len - 3).unwrap();

    for op in [FaultOp::Rename, FaultOp::SyncDir, FaultOp::Sync] {
        fs.inject(op, 0, FaultKind::Eio);
        let failed = Db::open(db_dir(), small_options(shared.clone()));
        fs.clear_faults();
        if let Ok(db) = failed {
            drop(db);
            continue;
        }
        let db = Db::open(db_dir(), small_options(shared.clone()))
            .unwrap_or_else(|e| panic!("open after an open failed by {op:?}: {e}"));
        let got = contents(&db);
        assert_eq!(got.get(b"a".as_slice()).map(Vec::as_slice), Some(b"1".as_slice()), "{op:?}: {got:?}");
        drop(db);
    }
}

/// The rule stays strict where it should: a torn log followed by a log holding records is
/// corruption (that older log should have been fsynced before the newer one was started).
#[test]
fn a_torn_log_followed_by_records_is_still_corruption() {
    let (fs, shared) = fault_fs();
    let log = closed_db_with_two_synced_writes(&fs, &shared);
    let intact = shared.read_all(&log).unwrap();
    fs.truncate(&log, intact.len() as u64 - 3).unwrap();
    let mut later = shared.create(&db_dir().join("000099.log")).unwrap();
    later.append(&intact).unwrap();
    later.sync().unwrap();
    drop(later);
    shared.sync_dir(db_dir()).unwrap();
    let err = Db::open(db_dir(), small_options(shared)).unwrap_err();
    assert!(err.is_corruption() && err.to_string().contains("not the newest"), "{err}");
}
