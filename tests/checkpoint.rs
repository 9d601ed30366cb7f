//! `Db::checkpoint`: a consistent, openable copy at one sequence number, taken while writes
//! and compactions run; tables hard-linked; a crash at any point of a checkpoint leaves the
//! source intact and the copy either complete or without `CURRENT`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{contents, db_dir, fault_fs, small_options};
use kho::vfs::{CrashMode, FaultFs, FileSystem};
use kho::{Db, Error, Options, WriteOptions};

fn key(i: u64) -> String {
    format!("key{i:08}")
}

/// A checkpoint of a database whose only writer puts `key(i)` for i = 0, 1, 2, ... holds
/// exactly the keys written up to its sequence number.
fn assert_holds_prefix(db: &Db, base: u64, seq: u64) {
    let n = seq - base;
    let got = contents(db);
    assert_eq!(got.len() as u64, n, "checkpoint at sequence {seq} holds {} keys", got.len());
    if n > 0 {
        assert!(db.get(key(n - 1)).unwrap().is_some());
    }
    assert!(db.get(key(n)).unwrap().is_none());
}

#[test]
fn checkpoints_under_writes_and_compactions_hold_exactly_their_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let opts = Options { write_buffer_size: 16 << 10, ..Options::default() };
    let db = Db::open(&src, opts.clone()).unwrap();
    let base = db.last_sequence();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                db.put(key(i), [b'v'; 100]).unwrap();
                i += 1;
            }
        })
    };
    let mut taken = Vec::new();
    for c in 0..4 {
        std::thread::sleep(std::time::Duration::from_millis(30));
        let out = dir.path().join(format!("cp{c}"));
        let seq = db.checkpoint(&out).unwrap();
        taken.push((out, seq));
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(db.stats().levels.iter().skip(1).any(|l| l.files > 0), "compactions ran meanwhile");
    let source_tables: Vec<u64> = std::fs::read_dir(&src)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            e.file_name().to_string_lossy().ends_with(".sst").then(|| e.metadata().unwrap().ino())
        })
        .collect();
    db.close().unwrap();

    let mut linked = 0;
    for (out, seq) in &taken {
        let cp = Db::open(out, Options { create_if_missing: false, ..opts.clone() }).unwrap();
        assert_holds_prefix(&cp, base, *seq);
        assert!(cp.recovery_report().is_clean());
        cp.close().unwrap();
        for e in std::fs::read_dir(out).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().ends_with(".sst") && source_tables.contains(&e.metadata().unwrap().ino())
            {
                linked += 1;
            }
        }
    }
    assert!(linked > 0, "tables are hard-linked, not copied, on one file system");
}

#[test]
fn a_checkpoint_into_a_non_empty_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("src"), Options::default()).unwrap();
    db.put("a", "1").unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("something"), "x").unwrap();
    assert!(matches!(db.checkpoint(&out), Err(Error::InvalidArgument(_))));
    // An empty or absent directory is fine, and an idle database checkpoints too.
    std::fs::remove_file(out.join("something")).unwrap();
    assert_eq!(db.checkpoint(&out).unwrap(), 1);
    let cp = Db::open(&out, Options::default()).unwrap();
    assert_eq!(cp.get("a").unwrap().unwrap(), "1");
}

/// Crash at every file-system mutation of a checkpoint: the source reopens with every synced
/// write, and the copy either opens holding a prefix of the writes, or has no `CURRENT`.
#[test]
fn a_crash_at_any_point_of_a_checkpoint_leaves_source_and_copy_sound() {
    let out = std::path::Path::new("/cp");
    let setup = || {
        let (fs, shared) = fault_fs();
        let db = Db::open(db_dir(), small_options(shared.clone())).unwrap();
        for i in 0..300 {
            db.write(
                {
                    let mut b = kho::WriteBatch::new();
                    b.put(key(i), [b'v'; 40]);
                    b
                },
                &WriteOptions::synced(),
            )
            .unwrap();
        }
        (fs, shared, db)
    };
    let mut n = 0u64;
    let mutations = loop {
        let (fs, _, db) = setup();
        let before = fs.mutation_count();
        fs.arm_crash_after(n);
        let result = db.checkpoint(out);
        let finished = !fs.crash_point_hit();
        let image: Arc<FaultFs> = fs.crash_clone(CrashMode::DropUnsynced);
        drop(db);
        let shared: kho::vfs::SharedFs = image.clone();
        let src = Db::open(db_dir(), small_options(shared.clone())).unwrap();
        assert_eq!(contents(&src).len(), 300, "crash point {n}: the source lost synced writes");
        drop(src);
        let has_current = image.exists(&out.join("CURRENT")).unwrap();
        if has_current {
            let cp = Db::open(out, Options { create_if_missing: false, ..small_options(shared) })
                .unwrap_or_else(|e| panic!("crash point {n}: a checkpoint with CURRENT does not open: {e}"));
            assert_holds_prefix(&cp, 0, contents(&cp).len() as u64);
        } else {
            let e = Db::open(out, Options { create_if_missing: false, ..small_options(shared) }).unwrap_err();
            assert!(matches!(e, Error::NotFound(_)), "crash point {n}: {e}");
        }
        if finished {
            assert_eq!(result.unwrap(), 300);
            break fs.mutation_count() - before;
        }
        n += 1;
    };
    assert!(mutations > 5 && n >= mutations, "the checkpoint was crashed at each of its {mutations} mutations");
}
