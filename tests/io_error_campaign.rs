//! Every-Nth-I/O campaign (after SQLite's I/O-error tests): a fixed workload on `FaultFs`
//! — open, puts, deletes, multi-op batches, some synced, a flush, a `compact_range`, a close
//! and a reopen, reads checked as it goes — is run once without faults to count its file
//! operations `N` (every kind: creates, appends, fsyncs, renames, removes, directory syncs,
//! opens, reads, listings, `exists`). Then for n = 0, 1, ..., N the nth operation fails, the
//! workload runs until its first error, and:
//!
//! - without a power loss: faults are cleared and the database reopened on the same file
//!   system; it must hold every acknowledged write;
//! - with a power loss (`crash_clone`, unsynced data dropped or torn): it must hold every write
//!   acknowledged with sync (or made durable by a successful `close`).
//!
//! In both cases the reopen must succeed (an I/O error must never make a database
//! unopenable), and what it holds must be the state after some prefix of the issued writes
//! (no batch half-applied, no value that was never written, nothing reordered); it must take
//! a new write. During the workload every read that succeeds must return exactly the model's
//! value (an error is the first error; a wrong value is a failure).
//!
//! Every n runs with `EIO` both ways; when the operation that failed was an append, it runs
//! again with a short write, and when it was an fsync, with an fsync that drops the unsynced
//! pages (then the floor is the synced writes even without a power loss: the kernel lost the
//! acknowledged bytes).
//!
//! The default run uses a workload of ~500 file operations; the long one
//! (`cargo test --release --test io_error_campaign -- --ignored`) a larger workload, every
//! fault kind and crash mode at every n.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use kho::vfs::{CrashMode, FaultFs, FaultKind, FaultOp, FiredFault, SharedFs};
use kho::{Db, Options, WriteBatch, WriteOptions};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn dir() -> &'static Path {
    Path::new("/db")
}

/// Small memtables, blocks and files, so flushes and compactions really happen (in the
/// background too) within a short workload.
fn options(fs: &Arc<FaultFs>) -> Options {
    let shared: SharedFs = fs.clone();
    Options {
        fs: shared,
        write_buffer_size: 4096,
        block_size: 256,
        block_cache_capacity: 64 << 10,
        level0_compaction_trigger: 2,
        level_base_bytes: 8 << 10,
        level_multiplier: 2,
        target_file_size: 2 << 10,
        num_levels: 4,
        ..Options::default()
    }
}

/// The size of a workload.
#[derive(Clone, Copy)]
struct Size {
    /// Write steps before and after the reopen.
    writes: u32,
    /// Distinct keys.
    keys: u32,
}

const DEFAULT: Size = Size { writes: 36, keys: 17 };
const LONG: Size = Size { writes: 200, keys: 61 };

/// One step of the workload.
enum Step {
    Write {
        ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        sync: bool,
    },
    /// Point reads of a few keys and a full scan, checked against the model.
    Read,
    Flush,
    CompactAll,
    CloseAndReopen,
}

fn steps(size: Size) -> Vec<Step> {
    let key = |j: u32| format!("key{:03}", j % size.keys).into_bytes();
    let mut steps = Vec::new();
    for i in 0..size.writes * 2 {
        let value = |j: u32| format!("v{i}.{j}-{}", "x".repeat((j as usize * 53 + i as usize * 31) % 400)).into_bytes();
        let ops = match i % 5 {
            0 | 1 => vec![(key(i * 7), Some(value(0)))],
            2 => vec![(key(i * 3), None)],
            // Multi-op batches, one with the same key twice (the later op wins).
            3 => vec![(key(i), Some(value(1))), (key(i + 1), Some(value(2))), (key(i * 5), None)],
            _ => vec![(key(i + 2), None), (key(i + 3), Some(value(3))), (key(i + 2), Some(value(4)))],
        };
        steps.push(Step::Write { ops, sync: i % 4 == 0 });
        if i % 8 == 7 {
            steps.push(Step::Read);
        }
        if i == size.writes / 2 {
            steps.push(Step::Flush);
        }
        if i == size.writes - 1 {
            steps.push(Step::CompactAll);
            steps.push(Step::Read);
            steps.push(Step::CloseAndReopen);
            steps.push(Step::Read);
        }
    }
    steps.push(Step::Read);
    steps
}

/// What a run of the workload did before its first error.
struct Run {
    /// `states[i]`: the database after the first `i` issued writes.
    states: Vec<Model>,
    /// Writes acknowledged (the rest of `states` was in flight when the error came).
    acked: usize,
    /// Writes made durable: acknowledged with sync, or before a successful `close`.
    durable: usize,
    /// The first error, if any.
    error: Option<String>,
}

/// Reads a few keys and the whole database; every successful read must match `model`.
fn check_reads(db: &Db, model: &Model, keys: u32, at: &str) -> kho::Result<()> {
    for j in (0..keys).step_by(3) {
        let k = format!("key{j:03}").into_bytes();
        let got = db.get(&k)?;
        assert_eq!(got.as_deref(), model.get(&k).map(Vec::as_slice), "{at}: get of {:?}", String::from_utf8_lossy(&k));
    }
    let mut seen = Model::new();
    for kv in db.iter()? {
        let (k, v) = kv?;
        seen.insert(k.to_vec(), v.to_vec());
    }
    assert!(seen == *model, "{at}: a scan found {} keys, the model has {}", seen.len(), model.len());
    Ok(())
}

/// Runs the workload on `fs` until the first error.
fn run_workload(fs: &Arc<FaultFs>, size: Size, at: &str) -> Run {
    let mut run = Run { states: vec![Model::new()], acked: 0, durable: 0, error: None };
    let mut db = match Db::open(dir(), options(fs)) {
        Ok(db) => db,
        Err(e) => {
            run.error = Some(format!("open: {e}"));
            return run;
        }
    };
    for (s, step) in steps(size).iter().enumerate() {
        let at = format!("{at}, step {s}");
        let result = match step {
            Step::Write { ops, sync } => {
                let mut batch = WriteBatch::new();
                let mut next = run.states[run.acked].clone();
                for (k, v) in ops {
                    match v {
                        Some(v) => {
                            batch.put(k, v);
                            next.insert(k.clone(), v.clone());
                        }
                        None => {
                            batch.delete(k);
                            next.remove(k);
                        }
                    }
                }
                run.states.push(next);
                let r = db.write(batch, &WriteOptions { sync: *sync });
                if r.is_ok() {
                    run.acked += 1;
                    if *sync {
                        run.durable = run.acked;
                    }
                }
                r
            }
            Step::Read => check_reads(&db, &run.states[run.acked], size.keys, &at),
            Step::Flush => db.flush(),
            Step::CompactAll => db.compact_range::<&[u8], _>(..),
            Step::CloseAndReopen => db.close().and_then(|()| {
                run.durable = run.acked;
                drop(std::mem::replace(&mut db, Db::open(dir(), options(fs))?));
                Ok(())
            }),
        };
        if let Err(e) = result {
            run.error = Some(format!("step {s}: {e}"));
            return run;
        }
    }
    run
}

/// How a variant ends: the power stays on, or a crash image is taken.
#[derive(Clone, Copy, Debug)]
enum End {
    PowerStays,
    PowerLoss(CrashMode),
}

/// Fails the nth file operation with `kind`, runs the workload to its first error, ends as
/// `end` says, reopens and checks. Returns the fault that fired, if any.
fn variant(n: u64, kind: FaultKind, end: End, size: Size) -> Option<FiredFault> {
    let fs = Arc::new(FaultFs::new());
    fs.set_fault_seed(n);
    fs.inject_any(n, kind);
    let at = format!("n = {n}, {kind:?}, {end:?}");
    let run = run_workload(&fs, size, &at);
    let fired = fs.last_fault();
    let at = format!("{at} (fault: {fired:?}; first error: {:?})", run.error);
    // The database handle is dropped inside `run_workload`; background work has stopped.
    fs.clear_faults();
    let (fs, mut floor) = match end {
        End::PowerStays => (fs, run.acked),
        End::PowerLoss(mode) => (fs.crash_clone(mode), run.durable),
    };
    if kind == FaultKind::SyncDropsUnsynced && fired.is_some() {
        // The kernel dropped acknowledged bytes: only what was synced before is promised.
        floor = floor.min(run.durable);
    }
    let db = Db::open(dir(), options(&fs)).unwrap_or_else(|e| panic!("{at}: the database did not reopen: {e}"));
    let got: Model = db
        .iter()
        .and_then(|it| it.map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec()))).collect())
        .unwrap_or_else(|e| panic!("{at}: reading the reopened database failed: {e}"));
    // States can repeat (a delete of an absent key), so any match at or after the floor does.
    if !run.states[floor..].contains(&got) {
        match run.states.iter().position(|s| *s == got) {
            Some(i) => panic!(
                "{at}: the reopened database is the state after write {i}, but write {floor} was acknowledged{}",
                if floor == run.durable { " and durable" } else { "" }
            ),
            None => panic!(
                "{at}: the reopened database matches no prefix of the issued writes ({} keys; {} writes issued, {} acked)",
                got.len(),
                run.states.len() - 1,
                run.acked
            ),
        }
    }
    db.put("after", "ok").unwrap_or_else(|e| panic!("{at}: a write after reopening failed: {e}"));
    assert_eq!(db.get("after").unwrap().as_deref(), Some(&b"ok"[..]), "{at}");
    drop(db);
    fired
}

/// The campaign: for every n up to the workload's operation count (and past it until a fault
/// no longer fires, since background work makes the count vary between runs), every variant.
/// Returns the clean run's operation count, the variants run and how many times each kind of
/// operation was the one that failed.
fn campaign(size: Size, long: bool) -> (u64, u64, BTreeMap<String, u64>) {
    let clean = Arc::new(FaultFs::new());
    let run = run_workload(&clean, size, "clean run");
    assert!(run.error.is_none(), "the workload must pass without faults: {:?}", run.error);
    let total = clean.attempt_count();
    for op in [FaultOp::Append, FaultOp::Sync, FaultOp::Rename, FaultOp::Remove, FaultOp::Read, FaultOp::List] {
        assert!(clean.op_count(op) > 0, "the workload never does {op:?}: a flush and a compaction should");
    }
    let mut variants = 0;
    let mut by_op: BTreeMap<String, u64> = BTreeMap::new();
    let mut n = 0;
    loop {
        let fired = variant(n, FaultKind::Eio, End::PowerStays, size);
        variants += 1;
        let Some(fired) = fired else {
            // Nothing failed: this run did fewer than n + 1 operations (background flushes and
            // compactions make the count vary from run to run). Past the clean run's count,
            // the campaign is done.
            if n >= total {
                return (total, variants, by_op);
            }
            *by_op.entry("(not reached)".into()).or_default() += 1;
            n += 1;
            continue;
        };
        *by_op.entry(format!("{:?}", fired.op)).or_default() += 1;
        let crash = if n % 2 == 0 { CrashMode::DropUnsynced } else { CrashMode::TearUnsynced { seed: n } };
        let mut todo = vec![(FaultKind::Eio, End::PowerLoss(crash))];
        let special = match fired.op {
            FaultOp::Append => Some(FaultKind::ShortWrite),
            FaultOp::Sync => Some(FaultKind::SyncDropsUnsynced),
            _ => None,
        };
        if let Some(kind) = special {
            todo.push((kind, End::PowerStays));
            todo.push((kind, End::PowerLoss(crash)));
        }
        if long {
            todo.push((FaultKind::Enospc, End::PowerStays));
            todo.push((FaultKind::Eio, End::PowerLoss(CrashMode::TearUnsynced { seed: n ^ 0xabcd })));
            if let Some(kind) = special {
                todo.push((kind, End::PowerLoss(CrashMode::TearUnsynced { seed: n ^ 0x1234 })));
            }
        }
        for (kind, end) in todo {
            variant(n, kind, end, size);
            variants += 1;
        }
        n += 1;
    }
}

#[test]
fn every_nth_file_operation_fails_in_turn() {
    let (total, variants, by_op) = campaign(DEFAULT, false);
    assert!(total > 250, "the workload should do many file operations, did {total}");
    eprintln!("io_error_campaign: {total} operations, {variants} variants; operations failed: {by_op:?}");
}

#[test]
#[ignore = "long: ~thousands of file operations, every fault kind and crash mode; run with --release"]
fn every_nth_file_operation_fails_in_turn_long() {
    let (total, variants, by_op) = campaign(LONG, true);
    eprintln!("io_error_campaign (long): {total} operations, {variants} variants; operations failed: {by_op:?}");
}

// ---- engine bugs found with the new faults (minimal reproductions) ----

/// Reopens the database at `dir()` with one bit flipped in the `nth` `read_at` of the open,
/// for each fault seed in turn, until an open succeeds; returns that database (or `None` if
/// every flip was reported).
fn reopen_with_a_read_flip(fs: &Arc<FaultFs>, nth: u64) -> Option<(String, Db)> {
    let before = fs.list_all();
    for seed in 0..64 {
        fs.clear_faults();
        fs.set_fault_seed(seed);
        fs.inject(FaultOp::Read, nth, FaultKind::BitFlip);
        if let Ok(db) = Db::open(dir(), options(fs)) {
            if let Some(fired) = fs.last_fault() {
                fs.clear_faults();
                let what = format!(
                    "seed {seed}, flip in {}; files before that open {before:?}, after it {:?}; its recovery report: {:?}",
                    fired.path.display(),
                    fs.list_all(),
                    db.recovery_report()
                );
                return Some((what, db));
            }
        }
        fs.clear_faults();
    }
    None
}

/// Was an engine bug: the flip made recovery take the record for a torn tail and drop it for
/// good. Recovery now reads a log that seems to end damaged again before believing it.
#[test]
fn a_read_flip_in_the_logs_last_record_at_recovery_loses_a_synced_write() {
    let fs = Arc::new(FaultFs::new());
    let db = Db::open(dir(), options(&fs)).unwrap();
    db.write(
        {
            let mut b = WriteBatch::new();
            b.put("a", "1");
            b
        },
        &WriteOptions::synced(),
    )
    .unwrap();
    let mut b = WriteBatch::new();
    b.put("b", "2");
    db.write(b, &WriteOptions::synced()).unwrap();
    drop(db); // no close: the log holds both records, synced
              // Open reads CURRENT (read 0), the manifest (read 1), then the log (read 2). Seeds whose
              // flip lands in the first record are reported as corruption (correct); a flip in the
              // last record is not.
    let (seed, db) = reopen_with_a_read_flip(&fs, 2).expect("some flip lands in the last record");
    drop(db);
    let db = Db::open(dir(), options(&fs)).unwrap();
    assert_eq!(db.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(
        db.get("b").unwrap().as_deref(),
        Some(&b"2"[..]),
        "{seed}: the write acknowledged with sync is gone, although the file on disk was never damaged (files now: {:?})",
        fs.list_all()
    );
}

/// Was an engine bug: the flip made recovery drop the edit and delete the table it added.
/// The manifest, too, is read again when it seems to end damaged.
#[test]
fn a_read_flip_in_the_manifests_last_edit_at_recovery_loses_a_flushed_table() {
    let fs = Arc::new(FaultFs::new());
    let db = Db::open(dir(), options(&fs)).unwrap();
    let mut b = WriteBatch::new();
    b.put("a", "1");
    db.write(b, &WriteOptions::synced()).unwrap();
    db.flush().unwrap(); // the manifest's last edit adds the table; the log is deleted
    db.close().unwrap();
    drop(db);
    // Read 0 is CURRENT, read 1 the manifest.
    let (seed, db) = reopen_with_a_read_flip(&fs, 1).expect("some flip lands in the last edit");
    drop(db);
    let db = Db::open(dir(), options(&fs)).unwrap();
    assert_eq!(
        db.get("a").unwrap().as_deref(),
        Some(&b"1"[..]),
        "{seed}: the flushed, synced write is gone, although the file on disk was never damaged (files now: {:?})",
        fs.list_all()
    );
}
