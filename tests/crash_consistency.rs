//! Crash consistency through `FaultFs`: for every crash point of a workload (each write,
//! fsync, rename, directory sync and file creation, including those of background flushes
//! and of `open` itself), crash with unsynced data dropped or torn, reopen, and check that
//!
//! - the database equals the state after some prefix of the issued writes (nothing that was
//!   never written appears, nothing is reordered, batches are all-or-nothing);
//! - that prefix includes every write acknowledged with `sync = true`;
//! - the store accepts and reads back new writes.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::{contents, db_dir, fault_fs, small_options};
use kho::vfs::CrashMode;
use kho::vfs::SharedFs;
use kho::{Db, WriteBatch, WriteOptions};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// One step of the workload.
enum Step {
    Write { batch: Vec<(Vec<u8>, Option<Vec<u8>>)>, sync: bool },
    Flush,
    CompactAll,
}

fn workload() -> Vec<Step> {
    let mut steps = Vec::new();
    for i in 0u32..48 {
        let k = |j: u32| format!("k{:02}", j % 17).into_bytes();
        let v = |j: u32| format!("v{i}-{}", "x".repeat((j as usize * 37) % 300)).into_bytes();
        let batch = match i % 4 {
            0 | 1 => vec![(k(i * 7), Some(v(i)))],
            2 => vec![(k(i * 3), None)],
            _ => vec![(k(i), Some(v(i))), (k(i + 1), Some(v(i + 1))), (k(i * 5), None)],
        };
        steps.push(Step::Write { batch, sync: i % 3 == 0 });
        if i % 16 == 15 {
            steps.push(Step::Flush);
        }
        if i % 24 == 23 {
            steps.push(Step::CompactAll);
        }
    }
    steps
}

/// Runs the workload until the first error; returns the states after each issued write and
/// the number of writes acknowledged with sync.
fn run_until_crash(db: &Db, steps: &[Step]) -> (Vec<Model>, usize) {
    let mut states = vec![Model::new()];
    let mut synced_prefix = 0;
    for step in steps {
        match step {
            Step::Write { batch, sync } => {
                let mut b = WriteBatch::new();
                let mut next = states.last().unwrap().clone();
                for (k, v) in batch {
                    match v {
                        Some(v) => {
                            b.put(k, v);
                            next.insert(k.clone(), v.clone());
                        }
                        None => {
                            b.delete(k);
                            next.remove(k);
                        }
                    }
                }
                states.push(next);
                match db.write(b, &WriteOptions { sync: *sync }) {
                    Ok(()) if *sync => synced_prefix = states.len() - 1,
                    Ok(()) => {}
                    Err(_) => return (states, synced_prefix),
                }
            }
            Step::Flush => {
                if db.flush().is_err() {
                    return (states, synced_prefix);
                }
            }
            Step::CompactAll => {
                if db.compact_range::<&[u8], _>(..).is_err() {
                    return (states, synced_prefix);
                }
            }
        }
    }
    (states, synced_prefix)
}

/// Small tables and a tiny level 1, so background compactions (and their renames, syncs and
/// deletions) are among the crash points too.
fn options(fs: SharedFs) -> kho::Options {
    plain_options(fs)
}

fn plain_options(fs: SharedFs) -> kho::Options {
    kho::Options {
        level0_compaction_trigger: 2,
        level_base_bytes: 8 << 10,
        level_multiplier: 2,
        target_file_size: 2 << 10,
        num_levels: 4,
        ..small_options(fs)
    }
}

/// The same, encrypted: every table block and log and manifest record sealed.
fn encrypted_options(fs: SharedFs) -> kho::Options {
    let key = kho::crypt::SecretKey::from_bytes([0x33; 32]);
    let provider = std::sync::Arc::new(kho::crypt::KeyFileProvider::from_key("crash", key));
    kho::Options { encryption: Some(kho::crypt::Encryption::new(provider)), ..plain_options(fs) }
}

fn check_crash_points(mode: impl Fn(u64) -> CrashMode) {
    check_crash_points_with(mode, options)
}

fn check_crash_points_with(mode: impl Fn(u64) -> CrashMode, options: fn(SharedFs) -> kho::Options) {
    let steps = workload();
    let mut point = 0u64;
    loop {
        let (fs, shared) = fault_fs();
        // A first, clean open creates the database; crash points start after it.
        drop(Db::open(db_dir(), options(shared.clone())).unwrap());
        fs.arm_crash_after(point);
        let (states, synced_prefix) = match Db::open(db_dir(), options(shared.clone())) {
            Ok(db) => {
                let r = run_until_crash(&db, &steps);
                drop(db);
                r
            }
            Err(_) => (vec![Model::new()], 0),
        };
        let finished = !fs.crash_point_hit();
        fs.crash(mode(point));

        // Reopen with background compaction effectively off, so the directory can be
        // compared with the recovered version without racing a new compaction.
        let quiet = kho::Options {
            level0_compaction_trigger: 1000,
            level0_slowdown_trigger: 1000,
            level0_stop_trigger: 1000,
            level_base_bytes: 1 << 40,
            ..options(shared.clone())
        };
        let db = Db::open(db_dir(), quiet).unwrap_or_else(|e| panic!("crash point {point}: reopen failed: {e}"));
        // A log whose torn tail recovery dropped goes to lost/ (reported), not away.
        let (lost, files): (Vec<_>, Vec<_>) =
            fs.list_all().into_iter().partition(|p| p.starts_with(db_dir().join("lost")));
        let quarantined = &db.recovery_report().quarantined_files;
        assert!(quarantined.iter().all(|p| lost.contains(p)), "crash point {point}: {quarantined:?} not in {lost:?}");
        let count = |suffix: &str| files.iter().filter(|p| p.to_string_lossy().ends_with(suffix)).count();
        let live_tables: usize = db.stats().levels.iter().map(|l| l.files).sum();
        assert_eq!(count(".sst"), live_tables, "crash point {point}: orphan tables left after open: {files:?}");
        assert_eq!(count(".log"), 1, "crash point {point}: old logs left after open: {files:?}");
        assert!(!files.iter().any(|p| p.to_string_lossy().ends_with(".tmp")), "crash point {point}: {files:?}");
        let got = contents(&db);
        // States can repeat (a delete of an absent key), so look for any match at or after
        // the synced prefix.
        if !states[synced_prefix..].contains(&got) {
            match states.iter().position(|s| *s == got) {
                Some(i) => panic!(
                    "crash point {point}: recovered state is write {i} but write {synced_prefix} was acknowledged as synced"
                ),
                None => panic!("crash point {point}: recovered state matches no prefix of the issued writes: {got:?}"),
            }
        }
        db.put("after-crash", "ok").unwrap();
        db.flush().unwrap();
        assert_eq!(db.get("after-crash").unwrap().unwrap(), "ok", "crash point {point}");
        drop(db);
        if finished {
            assert!(point > 50, "the workload should have many crash points, saw {point}");
            return;
        }
        point += 1;
    }
}

#[test]
fn every_crash_point_dropping_unsynced_data() {
    check_crash_points(|_| CrashMode::DropUnsynced);
}

#[test]
fn every_crash_point_of_an_encrypted_database() {
    check_crash_points_with(|point| CrashMode::TearUnsynced { seed: point * 104_729 + 3 }, encrypted_options);
}

#[test]
fn every_crash_point_tearing_unsynced_data() {
    check_crash_points(|point| CrashMode::TearUnsynced { seed: point * 7919 + 1 });
}
