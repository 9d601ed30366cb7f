//! Recovery never loses data silently: a dropped damaged tail is reported (recovery report,
//! stats, event listener) or refused; a missing log in the middle of the sequence, a missing
//! or cut table, are corruption; and no file is ever created over an existing one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::{db_dir, fault_fs, small_options};
use kho::inspect::filename::{parse_file_name, FileKind};
use kho::inspect::wal::DroppedTail;
use kho::vfs::{FaultFs, FileSystem, StdFs};
use kho::{Db, Error, EventListener, Options, RecoveryMode, WriteBatch, WriteOptions};

fn synced_put(db: &Db, k: &str, v: &str) {
    let mut b = WriteBatch::new();
    b.put(k, v);
    db.write(b, &WriteOptions::synced()).unwrap();
}

fn files_of(fs: &FaultFs, kind: fn(FileKind) -> bool) -> Vec<PathBuf> {
    fs.list(db_dir())
        .unwrap()
        .into_iter()
        .filter(|n| parse_file_name(n).is_some_and(kind))
        .map(|n| db_dir().join(n))
        .collect()
}

#[derive(Default)]
struct Recorder {
    dropped: Mutex<Vec<DroppedTail>>,
}

impl EventListener for Recorder {
    fn on_recovery_dropped(&self, dropped: &DroppedTail) {
        self.dropped.lock().unwrap().push(dropped.clone());
    }
}

/// The reproduction: three synced puts, one byte of the last record's value flipped.
/// The third write was acknowledged as synced; dropping it must at least be said aloud, and
/// `AbsoluteConsistency` must refuse it.
#[test]
fn a_damaged_last_synced_record_is_reported_not_dropped_silently() {
    let (fs, shared) = fault_fs();
    let db = Db::open(db_dir(), small_options(shared.clone())).unwrap();
    synced_put(&db, "a", "1");
    synced_put(&db, "b", "2");
    synced_put(&db, "c", "3");
    drop(db);
    let log = files_of(&fs, |k| matches!(k, FileKind::Log(_)))
        .into_iter()
        .find(|p| fs.file_len(p).unwrap() > 0)
        .expect("the log holding the puts");
    let len = fs.file_len(&log).unwrap();
    fs.corrupt_byte(&log, len - 1, 0x01).unwrap(); // the value "3"

    let strict = Options { recovery_mode: RecoveryMode::AbsoluteConsistency, ..small_options(shared.clone()) };
    let err = Db::open(db_dir(), strict).unwrap_err();
    assert!(matches!(&err, Error::Corruption { file, .. } if *file == log), "{err}");

    let recorder = Arc::new(Recorder::default());
    let opts = Options { event_listener: Some(recorder.clone()), ..small_options(shared.clone()) };
    let db = Db::open(db_dir(), opts).unwrap();
    assert_eq!(db.get("b").unwrap().unwrap(), "2");
    assert_eq!(db.get("c").unwrap(), None, "the damaged record is dropped (tolerant mode)");
    let report = db.recovery_report();
    assert_eq!(report.dropped.len(), 1, "{report:?}");
    let d = &report.dropped[0];
    assert_eq!((d.file.clone(), d.records), (log.clone(), 1));
    assert!(d.bytes > 0 && d.offset < len);
    assert!(d.reason.contains("checksum"), "{}", d.reason);
    let stats = db.stats();
    assert_eq!((stats.recovery_dropped_records, stats.recovery_dropped_bytes), (1, d.bytes));
    assert!(stats.to_string().contains("Recovery: dropped 1 records"), "{stats}");
    assert_eq!(*recorder.dropped.lock().unwrap(), report.dropped);
    db.close().unwrap();

    // A clean reopen reports nothing.
    let db = Db::open(db_dir(), small_options(shared)).unwrap();
    assert!(db.recovery_report().is_clean());
}

/// A log that vanished (its writes acknowledged, never flushed) while a later log survived
/// must not open as if nothing happened: the later log's sequence numbers do not continue
/// the manifest's.
#[test]
fn a_missing_log_before_a_surviving_one_is_corruption() {
    let (fs, shared) = fault_fs();
    let db = Db::open(db_dir(), small_options(shared.clone())).unwrap();
    synced_put(&db, "a", "1");
    synced_put(&db, "b", "2");
    db.close().unwrap();
    let before = fs.crash_clone(kho::vfs::CrashMode::DropUnsynced); // manifest + the log of a, b
    let db = Db::open(db_dir(), small_options(shared)).unwrap(); // a, b go to a table
    synced_put(&db, "c", "3");
    db.close().unwrap();
    let later = files_of(&fs, |k| matches!(k, FileKind::Log(_)))
        .into_iter()
        .rfind(|p| fs.file_len(p).unwrap() > 0)
        .expect("the log holding c");
    let bytes = fs.read_all(&later).unwrap();

    // The earlier directory, with the log of a, b gone and the log of c in its place.
    let first = files_of(&before, |k| matches!(k, FileKind::Log(_)))
        .into_iter()
        .find(|p| before.file_len(p).unwrap() > 0)
        .expect("the log holding a, b");
    before.remove(&first).unwrap();
    before.create(&first).unwrap().sync().unwrap(); // the named log is there, but empty
    let mut w = before.create(&later).unwrap();
    w.append(&bytes).unwrap();
    w.sync().unwrap();
    drop(w);
    before.sync_dir(db_dir()).unwrap();
    let err = Db::open(db_dir(), small_options(before.clone())).unwrap_err();
    match &err {
        Error::Corruption { file, what, .. } => {
            assert_eq!(*file, later);
            assert!(what.contains("missing"), "{what}");
        }
        other => panic!("expected corruption, got {other}"),
    }
    // The read-only view refuses it the same way.
    assert!(Db::open_read_only(db_dir(), small_options(before.clone())).unwrap_err().is_corruption());

    // Without the log the manifest names at all, the open refuses at once, naming it.
    before.remove(&first).unwrap();
    before.sync_dir(db_dir()).unwrap();
    match Db::open(db_dir(), small_options(before.clone())).unwrap_err() {
        Error::Corruption { file, what, .. } => assert!(file == first && what.contains("missing"), "{what}"),
        other => panic!("expected corruption, got {other}"),
    }
}

fn table_of(fs: &FaultFs) -> PathBuf {
    files_of(fs, |k| matches!(k, FileKind::Table(_))).pop().expect("a table")
}

fn database_with_one_table() -> (Arc<FaultFs>, kho::vfs::SharedFs) {
    let (fs, shared) = fault_fs();
    let db = Db::open(db_dir(), small_options(shared.clone())).unwrap();
    synced_put(&db, "a", "1");
    db.flush().unwrap();
    db.close().unwrap();
    (fs, shared)
}

#[test]
fn a_missing_live_table_is_corruption_not_an_empty_level() {
    let (fs, shared) = database_with_one_table();
    let table = table_of(&fs);
    fs.remove(&table).unwrap();
    let err = Db::open(db_dir(), small_options(shared)).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { file, what, .. } if *file == table && what.contains("missing")),
        "{err}"
    );
}

#[test]
fn a_cut_live_table_is_corruption() {
    let (fs, shared) = database_with_one_table();
    let table = table_of(&fs);
    let len = fs.file_len(&table).unwrap();
    fs.truncate(&table, len - 1).unwrap();
    let err = Db::open(db_dir(), small_options(shared)).unwrap_err();
    assert!(matches!(&err, Error::Corruption { file, what, .. } if *file == table && what.contains("bytes")), "{err}");
}

/// A table left by an interrupted flush has a number the manifest never handed out as used.
/// Another process (a `kho dump`) may have it mapped: the next open must not create a file
/// over it (which would truncate the mapped bytes), nor reuse its number.
#[test]
fn open_never_creates_a_file_over_an_existing_one() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || Options { write_buffer_size: 4096, ..Options::default() };
    let db = Db::open(dir.path(), opts()).unwrap();
    for i in 0..10 {
        synced_put(&db, &format!("k{i}"), "v"); // stays in the log: replayed into a table at open
    }
    db.close().unwrap();
    let next = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| match parse_file_name(&e.unwrap().file_name().to_string_lossy()) {
            Some(FileKind::Log(n) | FileKind::Table(n) | FileKind::Manifest(n)) => Some(n),
            _ => None,
        })
        .max()
        .unwrap()
        + 1;
    let precious = b"bytes another process has mapped".repeat(100);
    for n in next..next + 4 {
        std::fs::write(kho::inspect::filename::table_path(dir.path(), n), &precious).unwrap();
    }
    let mapped = StdFs.read_all(&kho::inspect::filename::table_path(dir.path(), next)).unwrap();

    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(&mapped[..], &precious[..], "a mapped file was overwritten");
    let numbers: Vec<u64> = db.live_files().iter().map(|(_, f)| f.number).collect();
    assert!(!numbers.is_empty() && numbers.iter().all(|&n| n >= next + 4), "{numbers:?} reuse {next}..");
    for i in 0..10 {
        assert_eq!(db.get(format!("k{i}")).unwrap().unwrap(), "v");
    }
}

fn manifest_of(fs: &FaultFs) -> PathBuf {
    files_of(fs, |k| matches!(k, FileKind::Manifest(_))).pop().expect("a manifest")
}

/// A damaged last manifest edit that was acted on (a flush's: its log is deleted since) does
/// not open as if the flush never happened: the log the remaining manifest names is gone, so
/// the open refuses, naming it. Under `AbsoluteConsistency` the damaged edit itself is refused.
#[test]
fn a_damaged_last_manifest_edit_that_was_acted_on_is_refused_not_dropped_silently() {
    let (fs, shared) = database_with_one_table(); // the flush's edit is the manifest's last
    let manifest = manifest_of(&fs);
    let len = fs.file_len(&manifest).unwrap();
    fs.corrupt_byte(&manifest, len - 1, 0x01).unwrap();
    let strict = Options { recovery_mode: RecoveryMode::AbsoluteConsistency, ..small_options(shared.clone()) };
    let err = Db::open(db_dir(), strict).unwrap_err();
    assert!(matches!(&err, Error::Corruption { file, .. } if *file == manifest), "{err}");
    let err = Db::open(db_dir(), small_options(shared.clone())).unwrap_err();
    assert!(matches!(&err, Error::Corruption { what, .. } if what.contains("missing")), "{err}");
    assert!(fs.exists(&table_of(&fs)).unwrap(), "the table the dropped edit named is still there");
}

/// After a dropped manifest tail, a table no remaining edit names but numbered at or above
/// the recovered next file number may hold the only copy of what the dropped edit described:
/// it goes to `lost/` (reported), never away.
#[test]
fn tables_a_dropped_manifest_edit_may_name_are_quarantined_not_deleted() {
    #[derive(Default)]
    struct Moved(Mutex<Vec<PathBuf>>);
    impl EventListener for Moved {
        fn on_file_quarantined(&self, path: &std::path::Path) {
            self.0.lock().unwrap().push(path.to_owned());
        }
    }
    let (fs, shared) = database_with_one_table();
    let manifest = manifest_of(&fs);
    // A torn edit at the manifest's end, and a table numbered past everything the manifest
    // handed out (as a compaction output whose edit was torn would be).
    let mut w_bytes = fs.read_all(&manifest).unwrap().to_vec();
    w_bytes.extend_from_slice(&[0x30, 0, 0, 0, 0, 1, 2]);
    fs.remove(&manifest).unwrap();
    let mut w = fs.create(&manifest).unwrap();
    w.append(&w_bytes).unwrap();
    w.sync().unwrap();
    drop(w);
    let orphan = kho::inspect::filename::table_path(db_dir(), 900);
    let mut t = fs.create(&orphan).unwrap();
    t.append(b"an output of the torn edit").unwrap();
    t.sync().unwrap();
    drop(t);
    fs.sync_dir(db_dir()).unwrap();

    let moved = Arc::new(Moved::default());
    let opts = Options { event_listener: Some(moved.clone()), ..small_options(shared) };
    let db = Db::open(db_dir(), opts).unwrap();
    assert_eq!(db.get("a").unwrap().unwrap(), "1");
    let report = db.recovery_report();
    assert_eq!(report.dropped.len(), 1, "{report:?}");
    assert_eq!(report.dropped[0].file, manifest);
    let lost = db_dir().join("lost").join(orphan.file_name().unwrap());
    assert_eq!(report.quarantined_files, vec![lost.clone()]);
    assert_eq!(*moved.0.lock().unwrap(), vec![lost.clone()]);
    assert!(fs.exists(&lost).unwrap() && !fs.exists(&orphan).unwrap());
    assert_eq!(db.stats().recovery_quarantined_files, 1);
}
