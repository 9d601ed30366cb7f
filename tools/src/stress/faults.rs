//! The faults mode: the workload on the in-memory [`FaultFs`], in epochs of 0.1-1 s. Each
//! epoch draws a scenario and, at a random moment while the workers run, applies it:
//!
//! - `clean`: nothing; any error is a violation;
//! - `io-error`: one EIO or ENOSPC on the next few writes, fsyncs, creates, renames,
//!   directory syncs or removes (the log, a flush, a compaction, whichever comes);
//! - `disk-full`: every write fails with ENOSPC for the rest of the epoch;
//! - `power-loss`: a simulated power loss under the running database (unsynced data dropped
//!   or torn at a random byte), which from then on runs as a zombie whose I/O fails;
//! - `crash-point`: every mutation after the next 0-50 fails, then a power loss.
//!
//! Errors must come back as `Err` (a panic fails the run). Then the database is dropped,
//! sometimes reopened once with a fault that makes the open fail, and reopened for real: it
//! must open, and every key must be within `floor ..= issued`, where the floor is every
//! acknowledged write if no power was lost (the bytes are still in the file system, as after a
//! process crash) and every write acknowledged with sync otherwise.

use std::path::Path;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kho::vfs::{CrashMode, FaultFs, FaultKind, FaultOp, SharedFs};
use kho::Db;

use super::checker::{reconcile, verify_recovered, Floor};
use super::config::Settings;
use super::locks::KeyLocks;
use super::oracle::Oracle;
use super::records;
use super::report::{Counter, Outcome, Progress, Violation};
use super::rng::{derive, Rng};
use super::workload::{spawn_workers, stop_workers, Ctx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Clean,
    IoError,
    DiskFull,
    PowerLoss,
    CrashPoint,
}

const FAULTY_OPS: [FaultOp; 6] =
    [FaultOp::Append, FaultOp::Sync, FaultOp::Create, FaultOp::Rename, FaultOp::SyncDir, FaultOp::Remove];

#[derive(Debug, Default)]
struct Tally {
    per_scenario: [u64; 5],
    injected: u64,
    power_losses: u64,
    failed_opens: u64,
    resolved: u64,
    checked: u64,
}

pub fn run(s: &Arc<Settings>) -> anyhow::Result<(Arc<Oracle>, Outcome)> {
    let oracle = super::new_oracle(s)?;
    let fs = Arc::new(FaultFs::new());
    let shared: SharedFs = fs.clone();
    let path = Path::new("/stress/db");
    let locks = Arc::new(KeyLocks::new(s.args.keys + oracle.record_slots()));
    let mut rng = Rng::new(derive(s.seed, &[u64::MAX - 1]));
    let mut t = Tally::default();
    let mut out = Outcome::default();
    let start = Instant::now();
    let mut db = Some(Db::open(path, s.db_options(0, Some(shared.clone())).0)?);
    let epochs = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let progress = {
        let epochs = epochs.clone();
        Progress::start(s.args.progress, oracle.clone(), move |_| format!("fault epochs {}", epochs.load(SeqCst)))
    };
    let mut epoch: u16 = 0;
    while start.elapsed() < s.args.duration {
        epoch = epoch.wrapping_add(1).max(1);
        let scenario = match rng.below(100) {
            0..=19 => Scenario::Clean,
            20..=49 => Scenario::IoError,
            50..=59 => Scenario::DiskFull,
            60..=84 => Scenario::PowerLoss,
            _ => Scenario::CrashPoint,
        };
        t.per_scenario[scenario as usize] += 1;
        let Some(current) = db.take() else { break };
        let store = match records::open_store(&current) {
            Ok(store) => store,
            Err(e) => {
                out.violation =
                    Some(Violation::general(format!("opening the record layer failed: {e}"), "fault epoch start"));
                break;
            }
        };
        let ctx = Ctx::new(current.clone(), store, oracle.clone(), locks.clone(), s.clone(), epoch);
        ctx.errors_expected.store(scenario != Scenario::Clean, SeqCst);
        let handles = spawn_workers(&ctx);
        let length = Duration::from_millis(rng.between(100, 1000));
        let epoch_start = Instant::now();
        super::wait_for(&ctx, epoch_start + length.mul_f64(rng.between(10, 90) as f64 / 100.0));
        let mut lost_power = false;
        let mode = if rng.percent(50) {
            CrashMode::DropUnsynced
        } else {
            CrashMode::TearUnsynced { seed: derive(s.seed, &[u64::from(epoch)]) }
        };
        match scenario {
            Scenario::Clean => {}
            Scenario::IoError => {
                let kind = if rng.percent(50) { FaultKind::Eio } else { FaultKind::Enospc };
                fs.inject(*rng.pick(&FAULTY_OPS), rng.below(4), kind);
                t.injected += 1;
            }
            Scenario::DiskFull => {
                fs.inject_always(FaultOp::Append, FaultKind::Enospc);
                t.injected += 1;
            }
            Scenario::PowerLoss => {
                ctx.crashed.store(true, SeqCst);
                fs.crash(mode);
                lost_power = true;
            }
            Scenario::CrashPoint => {
                fs.arm_crash_after(rng.below(50));
                t.injected += 1;
            }
        }
        wait_for_errors(&ctx, &oracle, epoch_start + length);
        out.violation = stop_workers(&ctx, handles, Duration::from_secs(60)).or_else(super::panic_violation);
        if out.violation.is_some() {
            break;
        }
        if scenario == Scenario::CrashPoint || (scenario == Scenario::IoError && rng.percent(50)) {
            fs.crash(mode);
            lost_power = true;
        }
        drop(ctx);
        drop(current);
        fs.clear_faults();
        fs.disarm();
        t.power_losses += u64::from(lost_power);
        let during = format!("recovery after fault epoch {epoch} ({scenario:?}, power lost: {lost_power})");
        let mut floor = if lost_power { Floor::Durable } else { Floor::Committed };
        let opts = || s.db_options(u64::from(epoch), Some(shared.clone())).0;

        // Now and then the first reopen meets a fault of its own; it must fail cleanly.
        if rng.percent(25) {
            fs.inject(*rng.pick(&FAULTY_OPS), rng.below(4), FaultKind::Eio);
            let first = Db::open(path, opts());
            fs.clear_faults();
            match first {
                // The fault may have fired in its background work before it was cleared (the
                // database is then poisoned, rightly): start over with a clean open.
                Ok(db) => drop(db),
                Err(_) => {
                    t.failed_opens += 1;
                    if rng.percent(50) {
                        fs.crash(CrashMode::DropUnsynced);
                        floor = Floor::Durable;
                    }
                }
            }
        }
        let started = Instant::now();
        let reopened = match Db::open(path, opts()) {
            Ok(db) => db,
            Err(e) => {
                out.violation = Some(Violation::general(format!("the store did not reopen: {e}"), during));
                break;
            }
        };
        out.recoveries.push(started.elapsed());
        match check_and_reconcile(&reopened, &oracle, floor, &during, epoch) {
            Ok(n) => t.resolved += n,
            Err(v) => {
                out.violation = Some(v);
                break;
            }
        }
        t.checked += u64::from(s.args.keys + oracle.record_slots());
        epochs.fetch_add(1, SeqCst);
        db = Some(reopened);
    }
    if let (None, Some(db)) = (&out.violation, db) {
        out.violation = final_check(s, &oracle, db, &shared, path).err();
    }
    drop(progress);
    out.cycles = epochs.load(SeqCst);
    out.elapsed = start.elapsed();
    let p = &t.per_scenario;
    out.lines.push((
        "fault epochs".into(),
        format!(
            "{} (clean {}, io-error {}, disk-full {}, power-loss {}, crash-point {})",
            out.cycles, p[0], p[1], p[2], p[3], p[4]
        ),
    ));
    out.lines.push((
        "faults".into(),
        format!(
            "{} injected, {} power losses, {} reopens failed by an injected fault",
            t.injected, t.power_losses, t.failed_opens
        ),
    ));
    out.lines.push(("checked".into(), format!("{} key and record states after recoveries", t.checked)));
    out.lines.push((
        "in flight".into(),
        format!("{} keys whose newest writes were lost (in flight or unsynced) made dead versions", t.resolved),
    ));
    Ok((oracle, out))
}

/// Checks every key and record after a recovery (and the index), then reconciles.
fn check_and_reconcile(db: &Db, oracle: &Oracle, floor: Floor, during: &str, epoch: u16) -> Result<u64, Violation> {
    let rec = verify_recovered(db, oracle, floor, during)?;
    let fail = |e: kho::Error| Violation::general(format!("write after recovery failed: {e}"), during);
    let store = records::open_store(db).map_err(fail)?;
    let record_states = records::verify_records(&store, oracle, floor, during)?;
    let fixed = records::reconcile_records(&store, oracle, &record_states, epoch).map_err(fail)?;
    Ok(fixed + reconcile(db, oracle, &rec, epoch).map_err(fail)?)
}

/// Waits until `until`, or until 50 ms after the injected fault first surfaced as an error
/// (the database is usually poisoned then, and the rest of the epoch would only count
/// refusals).
fn wait_for_errors(ctx: &Ctx, oracle: &Oracle, until: Instant) {
    let before = Counter::Errors.get(oracle);
    let mut first_error = None;
    while Instant::now() < until && !ctx.stopped() {
        if first_error.is_none() && Counter::Errors.get(oracle) > before {
            first_error = Some(Instant::now());
        }
        if first_error.is_some_and(|t| t.elapsed() > Duration::from_millis(50)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A clean close and reopen at the end: everything acknowledged must be there.
fn final_check(s: &Settings, oracle: &Oracle, db: Db, fs: &SharedFs, path: &Path) -> Result<(), Violation> {
    let during = "final clean close and reopen";
    db.close().map_err(|e| Violation::general(format!("close failed: {e}"), during))?;
    drop(db);
    let db = Db::open(path, s.db_options(u64::MAX, Some(fs.clone())).0)
        .map_err(|e| Violation::general(format!("reopen failed: {e}"), during))?;
    verify_recovered(&db, oracle, Floor::Committed, during)?;
    let store = records::open_store(&db).map_err(|e| Violation::general(format!("record layer: {e}"), during))?;
    records::verify_records(&store, oracle, Floor::Committed, during)?;
    drop(store);
    db.close().map_err(|e| Violation::general(format!("close failed: {e}"), during))
}
