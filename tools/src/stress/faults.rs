//! The faults mode: the workload on the in-memory [`FaultFs`], in epochs of 0.1-1 s. Each
//! epoch draws a scenario and, at a random moment while the workers run, applies it:
//!
//! - `clean`: nothing; any error is a violation;
//! - `io-error`: one EIO or ENOSPC on one of the next few writes, fsyncs, creates, renames,
//!   directory syncs or removes (the log, a flush, a compaction, whichever comes), or on the
//!   nth file operation of any kind (`FaultFs::inject_any`);
//! - `disk-full`: every write fails with ENOSPC for the rest of the epoch;
//! - `power-loss`: a simulated power loss under the running database (unsynced data dropped
//!   or torn at a random byte), which from then on runs as a zombie whose I/O fails;
//! - `crash-point`: every mutation after the next 0-50 fails, then a power loss;
//! - `read-error`: EIO on one of the next opens, reads, listings or `exists`, or on every
//!   read for the rest of the epoch;
//! - `short-write`: one of the next appends writes a prefix of its data and fails;
//! - `sync-drop`: one of the next fsyncs fails and drops the file's unsynced pages
//!   ("fsyncgate");
//! - `read-flip`: one to four of the next reads come back with one bit flipped;
//! - `write-flip`: one of the next appends stores its data with one bit flipped.
//!
//! `io-error`, `short-write` and `sync-drop` end in a power loss half the time.
//!
//! Errors must come back as `Err` (a panic fails the run); `Error::Corruption` is allowed
//! only in the epochs that lose power, damage bytes (`read-flip`, `write-flip`) or fail reads
//! (`read-error`). A read that returns a value must return an allowed one in every epoch:
//! a flipped bit must be caught by a checksum, never handed out.
//!
//! Then the database is dropped, sometimes reopened once with a fault that makes the open
//! fail (any of the above ops, reads included, with EIO, or a bit flipped in one of the
//! recovery's reads, which may fail the open but must not lose anything), and reopened for
//! real: it must
//! open, and every key must be within `floor ..= issued`, where the floor is
//!
//! - every acknowledged write if no power was lost (the bytes are still in the file system,
//!   as after a process crash);
//! - every write acknowledged with sync if power was lost, or if a `sync-drop` fault fired
//!   (the kernel dropped acknowledged, unsynced bytes);
//! - **nothing** after `write-flip` (the oracle rule for damaged writes): a flipped bit in
//!   the last record of a log or of the manifest looks exactly like a torn write, and
//!   recovery drops it, losing acknowledged writes (and bringing older values back) without
//!   an error. What stays a violation: any value that was never written, a scan out of order,
//!   a dirty national-ID index, a panic, or an open that fails other than with
//!   `Error::Corruption`. The database may refuse to open with `Error::Corruption`, or open
//!   and fail a full scan with it (the checksums caught the damage): then the run restores
//!   the crash image taken at the start of the epoch (`crash_clone`) and goes on from it,
//!   again with no floor. The summary counts the acknowledged writes lost this way.

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
    ReadError,
    ShortWrite,
    SyncDrop,
    ReadFlip,
    WriteFlip,
}

impl Scenario {
    const NAMES: [&'static str; 10] = [
        "clean",
        "io-error",
        "disk-full",
        "power-loss",
        "crash-point",
        "read-error",
        "short-write",
        "sync-drop",
        "read-flip",
        "write-flip",
    ];

    fn draw(rng: &mut Rng) -> Scenario {
        match rng.below(100) {
            0..=11 => Scenario::Clean,
            12..=29 => Scenario::IoError,
            30..=35 => Scenario::DiskFull,
            36..=49 => Scenario::PowerLoss,
            50..=59 => Scenario::CrashPoint,
            60..=69 => Scenario::ReadError,
            70..=76 => Scenario::ShortWrite,
            77..=83 => Scenario::SyncDrop,
            84..=91 => Scenario::ReadFlip,
            _ => Scenario::WriteFlip,
        }
    }

    /// `Error::Corruption` is an allowed outcome of an operation in this epoch.
    fn corruption_expected(self) -> bool {
        matches!(self, Scenario::ReadError | Scenario::ReadFlip | Scenario::WriteFlip)
    }
}

const FAULTY_OPS: [FaultOp; 6] =
    [FaultOp::Append, FaultOp::Sync, FaultOp::Create, FaultOp::Rename, FaultOp::SyncDir, FaultOp::Remove];

/// What a reopen may meet: every mutating op and every read-side op.
const OPEN_FAULTY_OPS: [FaultOp; 10] = [
    FaultOp::Append,
    FaultOp::Sync,
    FaultOp::Create,
    FaultOp::Rename,
    FaultOp::SyncDir,
    FaultOp::Remove,
    FaultOp::Open,
    FaultOp::Read,
    FaultOp::List,
    FaultOp::Exists,
];

#[derive(Debug, Default)]
struct Tally {
    per_scenario: [u64; 10],
    injected: u64,
    fired: u64,
    power_losses: u64,
    failed_opens: u64,
    /// First reopens given a bit flip in one of their reads.
    recovery_read_flips: u64,
    resolved: u64,
    checked: u64,
    /// Write-flip epochs after which the database refused to open or to scan with
    /// `Error::Corruption` (the epoch's start image was restored).
    flip_refused: u64,
    /// Write-flip epochs after which the database opened and read back cleanly.
    flip_opened: u64,
    /// Keys and records whose acknowledged state was lost after a write flip (dropped as a
    /// torn tail) in those epochs.
    flip_lost: u64,
}

pub fn run(s: &Arc<Settings>) -> anyhow::Result<(Arc<Oracle>, Outcome)> {
    let oracle = super::new_oracle(s)?;
    let mut fs = Arc::new(FaultFs::new());
    let mut shared: SharedFs = fs.clone();
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
        let scenario = Scenario::draw(&mut rng);
        t.per_scenario[scenario as usize] += 1;
        fs.set_fault_seed(derive(s.seed, &[u64::from(epoch), 0xF11F]));
        let Some(current) = db.take() else { break };
        // A write flip may leave the database refusing to open: keep the image to go on from.
        let backup = (scenario == Scenario::WriteFlip).then(|| fs.crash_clone(CrashMode::DropUnsynced));
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
        ctx.corruption_expected.store(scenario.corruption_expected(), SeqCst);
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
        let fired_before = fs.faults_fired();
        match scenario {
            Scenario::Clean => {}
            Scenario::IoError => {
                let kind = if rng.percent(50) { FaultKind::Eio } else { FaultKind::Enospc };
                if rng.percent(25) {
                    fs.inject_any(rng.below(50), kind);
                } else {
                    fs.inject(*rng.pick(&FAULTY_OPS), rng.below(4), kind);
                }
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
            Scenario::ReadError => {
                if rng.percent(30) {
                    fs.inject_always(FaultOp::Read, FaultKind::Eio);
                } else {
                    fs.inject(*rng.pick(&FaultOp::READS), rng.below(8), FaultKind::Eio);
                }
                t.injected += 1;
            }
            Scenario::ShortWrite => {
                fs.inject(FaultOp::Append, rng.below(4), FaultKind::ShortWrite);
                t.injected += 1;
            }
            Scenario::SyncDrop => {
                fs.inject(FaultOp::Sync, rng.below(3), FaultKind::SyncDropsUnsynced);
                t.injected += 1;
            }
            Scenario::ReadFlip => {
                for _ in 0..rng.between(1, 4) {
                    fs.inject(FaultOp::Read, rng.below(40), FaultKind::BitFlip);
                    t.injected += 1;
                }
            }
            Scenario::WriteFlip => {
                fs.inject(FaultOp::Append, rng.below(20), FaultKind::BitFlip);
                t.injected += 1;
            }
        }
        wait_for_errors(&ctx, &oracle, epoch_start + length);
        out.violation = stop_workers(&ctx, handles, Duration::from_secs(60))
            .or_else(super::panic_violation)
            .map(|v| Violation { during: format!("{} (a {scenario:?} epoch)", v.during), ..v });
        if out.violation.is_some() {
            break;
        }
        let fired = fs.faults_fired() - fired_before;
        t.fired += fired;
        let may_lose_power = matches!(scenario, Scenario::IoError | Scenario::ShortWrite | Scenario::SyncDrop);
        if scenario == Scenario::CrashPoint || (may_lose_power && rng.percent(50)) {
            fs.crash(mode);
            lost_power = true;
        }
        drop(ctx);
        drop(current);
        fs.clear_faults();
        fs.disarm();
        t.power_losses += u64::from(lost_power);
        let during = format!("recovery after fault epoch {epoch} ({scenario:?}, power lost: {lost_power})");
        let mut floor =
            if lost_power || (scenario == Scenario::SyncDrop && fired > 0) { Floor::Durable } else { Floor::Committed };
        if scenario == Scenario::WriteFlip {
            floor = Floor::Written;
        }
        let opts = |shared: &SharedFs| s.db_options(u64::from(epoch), Some(shared.clone())).0;

        // Now and then the first reopen meets a fault of its own; it must fail cleanly.
        if scenario != Scenario::WriteFlip && rng.percent(25) {
            if rng.percent(20) {
                fs.inject_any(rng.below(30), FaultKind::Eio);
            } else if rng.percent(35) {
                // A bit flipped while recovery reads (CURRENT, the manifest, a log, a table):
                // the open may fail, but must not drop or damage anything for good — the
                // clean reopen below checks the full floor.
                t.recovery_read_flips += 1;
                fs.inject(FaultOp::Read, rng.below(8), FaultKind::BitFlip);
            } else {
                fs.inject(*rng.pick(&OPEN_FAULTY_OPS), rng.below(4), FaultKind::Eio);
            }
            let first = Db::open(path, opts(&shared));
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
        let mut reopened = match Db::open(path, opts(&shared)) {
            Ok(db) => Some(db),
            Err(e) if scenario == Scenario::WriteFlip && e.is_corruption() => None,
            Err(e) => {
                out.violation = Some(Violation::general(format!("the store did not reopen: {e}"), during));
                break;
            }
        };
        if scenario == Scenario::WriteFlip {
            if let Some(db) = &reopened {
                match scans_cleanly(db) {
                    Ok(()) => t.flip_opened += 1,
                    Err(e) if e.is_corruption() => reopened = None,
                    Err(e) => {
                        out.violation = Some(Violation::general(format!("a scan after reopening failed: {e}"), during));
                        break;
                    }
                }
            }
        }
        let restored = reopened.is_none();
        let reopened = match (reopened, backup) {
            (Some(db), _) => db,
            (None, Some(image)) => {
                // The checksums caught the flipped bit: go on from the epoch's start image.
                t.flip_refused += 1;
                fs = image;
                shared = fs.clone();
                match Db::open(path, opts(&shared)) {
                    Ok(db) => db,
                    Err(e) => {
                        let what = format!("the epoch's start image did not open: {e}");
                        out.violation = Some(Violation::general(what, during));
                        break;
                    }
                }
            }
            (None, None) => unreachable!("only write-flip epochs accept a refused open, and they keep a backup"),
        };
        out.recoveries.push(started.elapsed());
        match check_and_reconcile(&reopened, &oracle, floor, !restored, &during, epoch) {
            Ok((fixed, lost)) => {
                t.resolved += fixed;
                t.flip_lost += lost;
            }
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
    let per: Vec<String> = Scenario::NAMES.iter().zip(&t.per_scenario).map(|(name, n)| format!("{name} {n}")).collect();
    out.lines.push(("fault epochs".into(), format!("{} ({})", out.cycles, per.join(", "))));
    out.lines.push((
        "faults".into(),
        format!(
            "{} injected, {} fired, {} power losses, {} reopens failed by an injected fault, \
             {} reopens given a read bit flip",
            t.injected, t.fired, t.power_losses, t.failed_opens, t.recovery_read_flips
        ),
    ));
    out.lines.push((
        "write flips".into(),
        format!(
            "{} epochs refused (Corruption at open or scan; start image restored), {} opened clean; \
             {} acknowledged key or record states lost to a flip dropped as a torn tail",
            t.flip_refused, t.flip_opened, t.flip_lost
        ),
    ));
    out.lines.push(("checked".into(), format!("{} key and record states after recoveries", t.checked)));
    out.lines.push((
        "in flight".into(),
        format!("{} keys whose newest writes were lost (in flight or unsynced) made dead versions", t.resolved),
    ));
    Ok((oracle, out))
}

/// A forward and a reverse scan of the whole database (every data block of every table).
fn scans_cleanly(db: &Db) -> kho::Result<()> {
    for item in db.iter()? {
        item?;
    }
    for item in db.iter()?.rev() {
        item?;
    }
    Ok(())
}

/// Checks every key and record after a recovery (and the index), then reconciles. Returns
/// the keys and records reconciled and, with `count_lost`, how many of them recovered to a
/// state older than their last acknowledged one.
fn check_and_reconcile(
    db: &Db,
    oracle: &Oracle,
    floor: Floor,
    count_lost: bool,
    during: &str,
    epoch: u16,
) -> Result<(u64, u64), Violation> {
    let rec = verify_recovered(db, oracle, floor, during)?;
    let fail = |e: kho::Error| Violation::general(format!("write after recovery failed: {e}"), during);
    let store = records::open_store(db).map_err(fail)?;
    let record_states = records::verify_records(&store, oracle, floor, during)?;
    let lost = if count_lost && floor == Floor::Written {
        let slots = (0..oracle.record_slots()).map(|r| oracle.record_slot(r));
        let found = rec.states.iter().zip(0..oracle.keys()).chain(record_states.iter().zip(slots));
        found.filter(|(state, k)| state.version < oracle.committed(*k).version).count() as u64
    } else {
        0
    };
    let fixed = records::reconcile_records(&store, oracle, &record_states, epoch).map_err(fail)?;
    Ok((fixed + reconcile(db, oracle, &rec, epoch).map_err(fail)?, lost))
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
