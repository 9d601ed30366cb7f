//! The crash mode: the parent re-executes itself as a child that runs the workload, kills it
//! with `SIGKILL` at a random moment (sometimes within its first 50 ms, while it is still
//! recovering), reopens the database, checks every key and repeats until the duration is
//! spent.
//!
//! The child records every write in the shared expected-state file before issuing it and
//! after its acknowledgement, so after the kill the parent knows, per key, the last
//! acknowledged state (the floor) and the highest version issued. A process crash keeps what
//! was handed to the kernel, and kho hands every acknowledged write to the kernel before it
//! returns, so the floor is every acknowledged write (synced or not), which includes the
//! issue's "every write acknowledged with sync is present". Writes in flight may or may not
//! have landed; after the check [`reconcile`] makes them dead versions.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kho::Db;

use super::checker::{reconcile, verify_recovered, Floor};
use super::config::Settings;
use super::locks::KeyLocks;
use super::oracle::Oracle;
use super::records;
use super::report::{Outcome, Progress, Violation};
use super::rng::{derive, Rng};
use super::workload::{spawn_workers, stop_workers, Ctx};

pub fn run_parent(s: &Arc<Settings>) -> anyhow::Result<(Arc<Oracle>, Outcome)> {
    let oracle = super::new_oracle(s)?;
    let exe = std::env::current_exe().context("finding the kho executable to run as the child")?;
    let db_path = super::db_path(s);
    Db::open(&db_path, s.db_options(0, None).0)?.close()?;
    let start = Instant::now();
    let cycles = Arc::new(AtomicU64::new(0));
    let last_recovery_us = Arc::new(AtomicU64::new(0));
    let progress = {
        let (cycles, last) = (cycles.clone(), last_recovery_us.clone());
        Progress::start(s.args.progress, oracle.clone(), move |_| {
            format!("crash cycles {} last recovery {:.1} ms", cycles.load(SeqCst), last.load(SeqCst) as f64 / 1000.0)
        })
    };
    let mut rng = Rng::new(derive(s.seed, &[u64::MAX]));
    let mut out = Outcome::default();
    let (mut killed, mut early, mut resolved, mut verified) = (0u64, 0u64, 0u64, 0u64);
    let mut cycle: u16 = 0;
    while start.elapsed() < s.args.duration && out.violation.is_none() {
        cycle = cycle.wrapping_add(1).max(1);
        let remaining = s.args.duration.saturating_sub(start.elapsed());
        let mut child = Command::new(&exe)
            .arg("stress")
            .args(child_args(s, cycle, remaining + Duration::from_secs(30)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting the child {}", exe.display()))?;
        let (lo, hi) = s.args.kill_interval;
        let life = if rng.percent(10) {
            early += 1;
            Duration::from_millis(rng.below(50))
        } else {
            lo + Duration::from_micros(rng.below((hi - lo).as_micros() as u64 + 1))
        };
        let deadline = Instant::now() + life.min(remaining);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        match status {
            Some(status) if !status.success() => {
                out.violation = Some(Violation::general(
                    format!("the crash-mode child of cycle {cycle} exited with {status}; its report is above"),
                    format!("cycle {cycle}"),
                ));
                break;
            }
            Some(_) => {}
            None => {
                child.kill().context("killing the child")?; // SIGKILL on Unix
                child.wait()?;
                killed += 1;
            }
        }
        match recover_and_check(s, &oracle, cycle) {
            Ok((took, fixed)) => {
                out.recoveries.push(took);
                last_recovery_us.store(took.as_micros() as u64, SeqCst);
                resolved += fixed;
                verified += u64::from(s.args.keys + oracle.record_slots());
            }
            Err(v) => out.violation = Some(v),
        }
        cycles.fetch_add(1, SeqCst);
    }
    drop(progress);
    out.cycles = cycles.load(SeqCst);
    out.elapsed = start.elapsed();
    out.lines.push((
        "crash cycles".into(),
        format!("{} (child killed {killed} times, {early} of them within 50 ms of its start)", out.cycles),
    ));
    out.lines.push(("checked".into(), format!("{verified} key and record states after recoveries")));
    out.lines
        .push(("in flight".into(), format!("{resolved} writes in flight at a kill made dead versions (reconciled)")));
    Ok((oracle, out))
}

/// Reopens after a kill, checks every key (floor: every acknowledged write) and reconciles.
/// Returns the time `Db::open` took and the number of keys reconciled.
fn recover_and_check(s: &Settings, oracle: &Oracle, cycle: u16) -> Result<(Duration, u64), Violation> {
    let during = format!("recovery after crash cycle {cycle}");
    let fail = |what: &str, e: kho::Error| Violation::general(format!("{what}: {e}"), during.clone());
    let t = Instant::now();
    let db = Db::open(super::db_path(s), s.db_options(u64::from(cycle) + 1000, None).0)
        .map_err(|e| fail("reopening after the kill failed", e))?;
    let took = t.elapsed();
    let rec = verify_recovered(&db, oracle, Floor::Committed, &during)?;
    let store = records::open_store(&db).map_err(|e| fail("opening the record layer failed", e))?;
    let record_states = records::verify_records(&store, oracle, Floor::Committed, &during)?;
    let mut fixed = records::reconcile_records(&store, oracle, &record_states, cycle)
        .map_err(|e| fail("writing the record reconcile batch failed", e))?;
    fixed += reconcile(&db, oracle, &rec, cycle).map_err(|e| fail("writing the reconcile batch failed", e))?;
    drop(store);
    db.close().map_err(|e| fail("closing failed", e))?;
    Ok((took, fixed))
}

fn child_args(s: &Settings, cycle: u16, lifetime: Duration) -> Vec<String> {
    let a = &s.args;
    let mut v: Vec<String> = vec![
        "--dir".into(),
        a.dir.display().to_string(),
        "--child".into(),
        cycle.to_string(),
        "--threads".into(),
        a.threads.to_string(),
        "--seed".into(),
        s.seed.to_string(),
        "--keys".into(),
        a.keys.to_string(),
        "--ops-mix".into(),
        s.mix.canonical(),
        "--sync-percent".into(),
        a.sync_percent.to_string(),
        "--value-size".into(),
        a.value_size.to_string(),
        "--duration".into(),
        format!("{}ms", lifetime.as_millis()),
    ];
    if a.inject_lost_write {
        v.push("--inject-lost-write".into());
    }
    if a.inject_phantom_write {
        v.push("--inject-phantom-write".into());
    }
    if let Some(key) = &s.key_file {
        // The parent created the key file; the child opens the database under it.
        v.extend(["--encrypt".into(), "--key-file".into(), key.display().to_string()]);
    }
    v
}

/// The child: runs the workload against the run directory's database and expected state
/// until killed (or until its duration, a safety net should the parent die). On a violation
/// it prints the report and exits with status 1 at once.
pub fn run_child(s: &Arc<Settings>, cycle: u16) -> anyhow::Result<()> {
    let oracle = Arc::new(Oracle::open(&super::state_path(s))?);
    if oracle.keys() != s.args.keys || oracle.value_size() != s.args.value_size {
        bail!("the expected-state file was made for other --keys/--value-size");
    }
    let start = Instant::now();
    let db = Db::open(super::db_path(s), s.db_options(u64::from(cycle), None).0)
        .with_context(|| format!("crash child of cycle {cycle}: opening the database"))?;
    let store = records::open_store(&db).context("opening the record layer")?;
    let locks = Arc::new(KeyLocks::new(s.args.keys + oracle.record_slots()));
    let ctx = Ctx::new(db.clone(), store, oracle.clone(), locks, s.clone(), cycle);
    let handles = spawn_workers(&ctx);
    super::wait_for(&ctx, start + s.args.duration);
    if let Some(v) = ctx.failure().or_else(super::panic_violation) {
        eprint!("{}", v.with_history(&oracle).report(s));
        std::process::exit(1);
    }
    if let Some(v) = stop_workers(&ctx, handles, Duration::from_secs(60)) {
        eprint!("{}", v.report(s));
        std::process::exit(1);
    }
    db.close()?;
    Ok(())
}
