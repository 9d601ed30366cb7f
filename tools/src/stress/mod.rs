//! `kho stress`: concurrent stress, process-crash and fault-injection testing of the engine,
//! after RocksDB's `db_stress` and its crash test.
//!
//! - `oracle.rs`: the expected state of every key (what a read may return), in a memory map
//!   that survives a killed child;
//! - `workload.rs`: the worker threads and their operations, every read checked;
//! - `checker.rs`: the check of one read and of a whole recovered database;
//! - `plain.rs`, `crash.rs`, `faults.rs`: the three drivers (in-process; a child killed with
//!   SIGKILL; FaultFs with injected errors and power losses);
//! - `report.rs`: counters, the progress line, the violation report and the summary;
//! - `config.rs`, `codec.rs`, `locks.rs`, `rng.rs`: the command line, keys and values,
//!   per-key locks, the seeded random generator.
//!
//! See `docs/testing.md` for what each mode proves and the long-run commands.
#![expect(
    clippy::result_large_err,
    reason = "`Violation` travels only on the failure path of a test tool; boxing it would buy nothing"
)]

mod checker;
mod codec;
mod config;
mod crash;
mod faults;
mod locks;
mod oracle;
mod plain;
mod records;
mod report;
mod rng;
mod workload;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};

pub use config::StressArgs;
use config::{Mode, Settings};

/// Runs `kho stress`: `Ok(true)` if every check passed; `Ok(false)` on a violation, after
/// printing its report and the summary (the tool then exits with status 1).
pub fn run(args: StressArgs, keys: &crate::keys::Keys) -> anyhow::Result<bool> {
    let s = Settings::from_args(args, keys.file())?;
    install_panic_hook();
    if let Mode::Child(cycle) = s.mode {
        s.load_key()?;
        return crash::run_child(&s, cycle).map(|()| true);
    }
    prepare_dir(&s.args.dir)?;
    s.load_key()?;
    let a = &s.args;
    eprintln!(
        "kho stress: {}; seed {}, {} threads, {} keys, {:?}, ops {}",
        s.mode.describe(),
        s.seed,
        a.threads,
        a.keys,
        a.duration,
        s.mix.canonical()
    );
    let (oracle, outcome) = match s.mode {
        Mode::Plain => plain::run(&s)?,
        Mode::Crash => crash::run_parent(&s)?,
        Mode::Faults => faults::run(&s)?,
        Mode::Child(_) => unreachable!("handled above"),
    };
    if let Some(v) = &outcome.violation {
        eprint!("{}", v.report(&s));
    }
    print!("{}", report::summary(&s, &oracle, &outcome));
    Ok(outcome.violation.is_none())
}

/// The database directory of a run.
fn db_path(s: &Settings) -> PathBuf {
    s.args.dir.join("db")
}

/// The expected-state file of a run.
fn state_path(s: &Settings) -> PathBuf {
    s.args.dir.join("expected.state")
}

/// Makes `dir` an empty run directory: removes what an earlier stress run left (recognized by
/// its `expected.state`), refuses anything else that is not empty.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        if !entries.is_empty() {
            if !dir.join("expected.state").exists() {
                bail!("{} is not empty and holds no earlier stress run; refusing to use it", dir.display());
            }
            for e in entries {
                let p = e.path();
                let r = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
                r.with_context(|| format!("removing {} of an earlier run", p.display()))?;
            }
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records every panic (of a worker or of a database background thread) so the drivers can
/// fail the run, then prints it as usual.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current().name().unwrap_or("unnamed").to_owned();
        PANICS.lock().unwrap_or_else(|e| e.into_inner()).push(format!("thread {thread}: {info}"));
        default(info);
    }));
}

/// The first panic recorded, as a violation.
fn panic_violation() -> Option<report::Violation> {
    let panics = PANICS.lock().unwrap_or_else(|e| e.into_inner());
    panics.first().map(|p| report::Violation::general(format!("panic: {p}"), "a running operation or background job"))
}

/// Stops early on a violation, a panic or the end of the duration; polls every 20 ms.
fn wait_for(ctx: &workload::Ctx, until: std::time::Instant) {
    while std::time::Instant::now() < until && !ctx.stopped() && PANICS.lock().map_or(true, |p| p.is_empty()) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Shared by the drivers: the oracle for a fresh run.
fn new_oracle(s: &Settings) -> anyhow::Result<Arc<oracle::Oracle>> {
    Ok(Arc::new(oracle::Oracle::create(
        Some(&state_path(s)),
        s.args.keys,
        records::slots(s.args.keys),
        s.args.value_size,
    )?))
}
