//! The plain mode: the workload on the real file system for the whole duration, then a clean
//! close, a reopen (with other options) and a check of every key — after a clean close
//! nothing acknowledged, synced or not, may be missing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kho::Db;

use super::checker::{verify_recovered, Floor};
use super::config::Settings;
use super::locks::KeyLocks;
use super::oracle::Oracle;
use super::records;
use super::report::{Outcome, Progress, Violation};
use super::workload::{spawn_workers, stop_workers, Ctx};

pub fn run(s: &Arc<Settings>) -> anyhow::Result<(Arc<Oracle>, Outcome)> {
    let oracle = super::new_oracle(s)?;
    let (opts, desc) = s.db_options(0, None);
    eprintln!("options: {desc}");
    let start = Instant::now();
    let db = Db::open(super::db_path(s), opts)?;
    let store = records::open_store(&db)?;
    let locks = Arc::new(KeyLocks::new(s.args.keys + oracle.record_slots()));
    let ctx = Ctx::new(db.clone(), store, oracle.clone(), locks, s.clone(), 0);
    let progress = Progress::start(s.args.progress, oracle.clone(), |_| String::new());
    let handles = spawn_workers(&ctx);
    super::wait_for(&ctx, start + s.args.duration);
    let mut violation = stop_workers(&ctx, handles, Duration::from_secs(60)).or_else(super::panic_violation);
    drop(progress);
    drop(ctx);
    let mut lines = Vec::new();
    if violation.is_none() {
        violation = reopen_and_verify(s, &oracle, db, &mut lines).err();
    }
    let elapsed = start.elapsed();
    Ok((oracle, Outcome { violation, cycles: 0, lines, recoveries: Vec::new(), elapsed }))
}

fn reopen_and_verify(
    s: &Settings,
    oracle: &Oracle,
    db: Db,
    lines: &mut Vec<(String, String)>,
) -> Result<(), Violation> {
    let during = "verification after a clean close and reopen";
    db.close().map_err(|e| Violation::general(format!("close failed: {e}"), during))?;
    drop(db);
    let (opts, _) = s.db_options(1, None);
    let t = Instant::now();
    let db =
        Db::open(super::db_path(s), opts).map_err(|e| Violation::general(format!("reopen failed: {e}"), during))?;
    let reopen = t.elapsed();
    let rec = verify_recovered(&db, oracle, Floor::Committed, during)?;
    let store = records::open_store(&db).map_err(|e| Violation::general(format!("record layer: {e}"), during))?;
    records::verify_records(&store, oracle, Floor::Committed, during)?;
    drop(store);
    db.close().map_err(|e| Violation::general(format!("close failed: {e}"), during))?;
    lines.push((
        "final check".into(),
        format!(
            "{} keys and {} records checked after reopen ({} keys present), index verified, reopen took {reopen:.1?}",
            oracle.keys(),
            oracle.record_slots(),
            rec.present
        ),
    ));
    Ok(())
}
