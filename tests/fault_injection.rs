//! I/O failures surface as errors, never as panics or silent loss: a failed log write or
//! fsync poisons the database (later writes fail fast), a failed flush is reported, a full
//! disk is reported — and after reopening, every write acknowledged with `sync` is there.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{contents, db_dir, fault_fs, small_options};
use kho::vfs::{CrashMode, FaultKind, FaultOp};
use kho::{Db, Error, WriteBatch, WriteOptions};

fn synced_put(db: &Db, k: &str, v: &str) -> kho::Result<()> {
    let mut b = WriteBatch::new();
    b.put(k, v);
    db.write(b, &WriteOptions::synced())
}

fn raw_os_error(e: &Error) -> Option<i32> {
    match e {
        Error::Io { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

#[test]
fn failed_fsync_poisons_and_loses_nothing_acknowledged() {
    let (fs, shared) = fault_fs();
    let db = Db::open(db_dir(), small_options(shared.clone())).unwrap();
    synced_put(&db, "a", "1").unwrap();
    fs.inject(FaultOp::Sync, 0, FaultKind::Eio);
    let err = synced_put(&db, "b", "2").unwrap_err();
    assert_eq!(raw_os_error(&err), Some(5), "{err}");
    assert!(matches!(synced_put(&db, "c", "3"), Err(Error::Poisoned)));
    assert!(matches!(db.put("c", "3"), Err(Error::Poisoned)));
    assert_eq!(db.get("a").unwrap().unwrap(), "1", "reads still work");
    drop(db);
    fs.crash(CrashMode::DropUnsynced);
    let db = Db::open(db_dir(), small_options(shared)).unwrap();
    assert_eq!(db.get("a").unwrap().unwrap(), "1");
    assert_eq!(db.get("c").unwrap(), None, "a refused write never appears");
    synced_put(&db, "d", "4").unwrap();
}

#[test]
fn full_disk_on_log_append_is_reported() {
    let (fs, shared) = fault_fs();
    let db = Db::open(db_dir(), small_options(shared.clone())).unwrap();
    synced_put(&db, "a", "1").unwrap();
    fs.inject(FaultOp::Append, 0, FaultKind::Enospc);
    let err = synced_put(&db, "b", "2").unwrap_err();
    assert_eq!(raw_os_error(&err), Some(28), "{err}");
    drop(db);
    fs.clear_faults();
    let db = Db::open(db_dir(), small_options(shared)).unwrap();
    assert_eq!(db.get("a").unwrap().unwrap(), "1");
    assert_eq!(db.get("b").unwrap(), None);
}

#[test]
fn failed_background_flush_is_reported_and_recoverable() {
    let (fs, shared) = fault_fs();
    let db = Db::open(db_dir(), small_options(shared.clone())).unwrap();
    for i in 0..20 {
        synced_put(&db, &format!("k{i:02}"), "v").unwrap();
    }
    fs.inject_always(FaultOp::Rename, FaultKind::Eio); // harmless for flush
    fs.inject(FaultOp::SyncDir, 0, FaultKind::Eio); // the flush's directory sync fails
    let err = db.flush().unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(db.put("x", "y").is_err(), "writes refused after a background failure");
    drop(db);
    fs.clear_faults();
    fs.crash(CrashMode::DropUnsynced);
    let db = Db::open(db_dir(), small_options(shared)).unwrap();
    assert_eq!(contents(&db).len(), 20);
}

#[test]
fn failed_open_leaves_the_database_openable() {
    let (fs, shared) = fault_fs();
    let db = Db::open(db_dir(), small_options(shared.clone())).unwrap();
    for i in 0..50 {
        synced_put(&db, &format!("k{i:02}"), &"v".repeat(100)).unwrap();
    }
    drop(db);
    for op in [FaultOp::Create, FaultOp::Append, FaultOp::Sync, FaultOp::Rename, FaultOp::SyncDir, FaultOp::Remove] {
        fs.inject(op, 0, FaultKind::Eio);
        assert!(Db::open(db_dir(), small_options(shared.clone())).is_err(), "{op:?}");
        fs.clear_faults();
        fs.crash(CrashMode::DropUnsynced);
        let db = Db::open(db_dir(), small_options(shared.clone())).unwrap();
        assert_eq!(contents(&db).len(), 50, "after a failed {op:?} during open");
    }
}
