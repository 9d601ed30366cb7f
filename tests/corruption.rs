//! Bad bytes: a flipped byte in each file kind (WAL middle, WAL tail, SST data block, SST
//! footer, manifest, CURRENT) makes open or read return `Error::Corruption` naming the file
//! and an offset; flipping or truncating any byte of any file never panics.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{db_dir, fault_fs, small_options};
use kho::vfs::FaultFs;
use kho::{Db, Error, Options, RecoveryMode, WriteOptions};

/// A database with flushed tables and unflushed log records, closed.
fn build() -> (Arc<FaultFs>, Options) {
    let (fs, shared) = fault_fs();
    let opts = Options { write_buffer_size: 1 << 20, ..small_options(shared) };
    let db = Db::open(db_dir(), opts.clone()).unwrap();
    for i in 0..300u32 {
        db.put(format!("table-key-{i:04}"), format!("value {i} {}", "y".repeat(40))).unwrap();
    }
    db.flush().unwrap();
    for i in 0..20u32 {
        let mut b = kho::WriteBatch::new();
        b.put(format!("log-key-{i:04}"), format!("log value {i}"));
        db.write(b, &WriteOptions::synced()).unwrap();
    }
    db.close().unwrap();
    (fs, opts)
}

fn file_ending(fs: &FaultFs, suffix: &str) -> PathBuf {
    fs.list_all().into_iter().find(|p| p.to_string_lossy().ends_with(suffix)).unwrap()
}

fn manifest(fs: &FaultFs) -> PathBuf {
    fs.list_all().into_iter().find(|p| p.file_name().unwrap().to_string_lossy().starts_with("MANIFEST")).unwrap()
}

/// Opens and reads every key; returns the first error.
fn open_and_read_all(opts: &Options) -> kho::Result<usize> {
    let db = Db::open(db_dir(), opts.clone())?;
    let mut n = 0;
    for kv in db.iter()? {
        kv?;
        n += 1;
    }
    for i in 0..300u32 {
        db.get(format!("table-key-{i:04}"))?;
    }
    Ok(n)
}

/// Asserts `r` is corruption in `file` at a known offset, and returns the offset.
fn assert_corruption_in(r: kho::Result<usize>, file: &Path) -> u64 {
    match r {
        Err(Error::Corruption { file: f, offset: Some(offset), what }) => {
            assert_eq!(f, file, "corruption reported in the wrong file ({what})");
            offset
        }
        other => panic!("expected corruption in {}, got {other:?}", file.display()),
    }
}

#[test]
fn wal_damage_in_the_middle_is_corruption() {
    let (fs, opts) = build();
    let log = file_ending(&fs, ".log");
    fs.corrupt_byte(&log, 20, 0x55).unwrap(); // inside the first record
    let offset = assert_corruption_in(open_and_read_all(&opts), &log);
    assert_eq!(offset, 0, "the damaged record starts at 0");
}

#[test]
fn wal_damage_in_the_last_record_is_a_torn_tail() {
    let (fs, opts) = build();
    let log = file_ending(&fs, ".log");
    let len = fs.file_len(&log).unwrap();
    fs.corrupt_byte(&log, len - 2, 0x01).unwrap();
    // Tolerated by default: the last (torn) write is dropped, everything else is there.
    let strict = Options { recovery_mode: RecoveryMode::AbsoluteConsistency, ..opts.clone() };
    assert_corruption_in(open_and_read_all(&strict), &log);
    assert_eq!(open_and_read_all(&opts).unwrap(), 300 + 19);
}

#[test]
fn sst_data_block_damage_is_corruption_on_read() {
    let (fs, opts) = build();
    // Recover the log into a table first so exactly one table holds "table-key-*".
    let table = file_ending(&fs, ".sst");
    fs.corrupt_byte(&table, 10, 0x80).unwrap();
    let offset = assert_corruption_in(open_and_read_all(&opts), &table);
    assert!(offset < fs.file_len(&table).unwrap());
}

#[test]
fn sst_footer_damage_is_corruption() {
    let (fs, opts) = build();
    let table = file_ending(&fs, ".sst");
    let len = fs.file_len(&table).unwrap();
    fs.corrupt_byte(&table, len - 12, 0x01).unwrap();
    let offset = assert_corruption_in(open_and_read_all(&opts), &table);
    assert!(offset >= len - 64, "footer offset expected, got {offset}");
}

#[test]
fn manifest_damage_is_corruption() {
    let (fs, opts) = build();
    let m = manifest(&fs);
    fs.corrupt_byte(&m, 15, 0x10).unwrap();
    assert_corruption_in(open_and_read_all(&opts), &m);
}

#[test]
fn current_damage_is_corruption() {
    let (fs, opts) = build();
    let current = db_dir().join("CURRENT");
    fs.corrupt_byte(&current, 9, 0x01).unwrap();
    assert_corruption_in(open_and_read_all(&opts), &current);
}

#[test]
fn no_flip_or_truncation_of_any_file_panics() {
    let (fs, opts) = build();
    let files = fs.list_all();
    for path in files.iter().filter(|p| !p.ends_with("LOCK")) {
        let len = fs.file_len(path).unwrap();
        let step = (len / 97).max(1);
        for offset in (0..len).step_by(step as usize) {
            let copy = fs.crash_clone(kho::vfs::CrashMode::DropUnsynced);
            copy.corrupt_byte(path, offset, 0xA5).unwrap();
            let opts = Options { fs: copy.clone(), ..opts.clone() };
            let _ = open_and_read_all(&opts); // Ok or Err, never a panic
            let copy = fs.crash_clone(kho::vfs::CrashMode::DropUnsynced);
            copy.truncate(path, offset).unwrap();
            let _ = open_and_read_all(&Options { fs: copy.clone(), ..opts.clone() });
        }
    }
}
