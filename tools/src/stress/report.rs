//! What a run tells its user: the counters (kept in the oracle's header so a crash-mode
//! parent sees its children's work), the periodic progress line on stderr, the violation
//! report and the final summary.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::codec;
use super::config::Settings;
use super::oracle::{HistoryEntry, Oracle};

/// A counter in the oracle header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Puts,
    Deletes,
    Batches,
    BatchOps,
    SyncedWrites,
    Gets,
    Iters,
    IterKeys,
    Snapshots,
    Flushes,
    Compactions,
    /// Operations that returned `Err` (expected only in faults mode).
    Errors,
    /// Checked reads (point reads and keys covered by iterators and snapshots).
    Checks,
    InjectedLost,
    InjectedPhantom,
    /// Snapshots (with a half-read iterator) held across many operations, then re-read.
    HeldSnapshots,
    /// Record inserts, upserts and deletes.
    RecordWrites,
    RecordReads,
    PersonQueries,
    Erasures,
}

impl Counter {
    pub fn get(self, o: &Oracle) -> u64 {
        o.counter(self as usize).load(SeqCst)
    }

    pub fn add(self, o: &Oracle, n: u64) {
        o.counter(self as usize).fetch_add(n, SeqCst);
    }
}

/// Operations completed so far (every kind).
pub fn total_ops(o: &Oracle) -> u64 {
    use Counter::*;
    [
        Puts,
        Deletes,
        Batches,
        Gets,
        Iters,
        Snapshots,
        Flushes,
        Compactions,
        RecordWrites,
        RecordReads,
        PersonQueries,
        Erasures,
    ]
    .iter()
    .map(|c| c.get(o))
    .sum()
}

/// A check that failed: everything needed to understand and reproduce it.
#[derive(Debug, Clone)]
pub struct Violation {
    /// One line: what went wrong.
    pub what: String,
    /// The key (oracle slot) concerned, if one is.
    pub key: Option<u32>,
    /// How to name that slot, if not as a key-value key (a record).
    pub key_label: String,
    pub expected: String,
    pub found: String,
    /// The operation, thread and cycle that saw it.
    pub during: String,
    /// The key's recent events (filled in by [`Violation::with_history`]).
    pub history: Vec<HistoryEntry>,
}

impl Violation {
    /// A violation not about one key's value (a panic, a hang, an unexpected error).
    pub fn general(what: impl Into<String>, during: impl Into<String>) -> Violation {
        Violation {
            what: what.into(),
            key: None,
            key_label: String::new(),
            expected: String::new(),
            found: String::new(),
            during: during.into(),
            history: Vec::new(),
        }
    }

    /// Attaches the key's history from the oracle.
    pub fn with_history(mut self, o: &Oracle) -> Violation {
        if let Some(k) = self.key {
            self.history = o.history(k);
        }
        self
    }

    /// The full multi-line report.
    pub fn report(&self, s: &Settings) -> String {
        let mut r = format!("\nVIOLATION: {}\n", self.what);
        match self.key {
            Some(_) if !self.key_label.is_empty() => {
                let _ = writeln!(r, "  key:       {}", self.key_label);
            }
            Some(k) => {
                let _ = writeln!(r, "  key:       {} (index {k})", String::from_utf8_lossy(&codec::key(k)));
            }
            None => {}
        }
        if !self.expected.is_empty() {
            let _ = writeln!(r, "  expected:  {}", self.expected);
        }
        if !self.found.is_empty() {
            let _ = writeln!(r, "  found:     {}", self.found);
        }
        let _ = writeln!(r, "  during:    {}", self.during);
        let _ = writeln!(r, "  seed:      {}", s.seed);
        let _ = writeln!(r, "  rerun:     {}", rerun_command(s));
        if self.key.is_some() {
            let _ = writeln!(r, "  history of the key (oldest first, last {} events):", super::oracle::RING);
            if self.history.is_empty() {
                let _ = writeln!(r, "    (no write recorded)");
            }
            for e in &self.history {
                let _ = writeln!(r, "    {e}");
            }
        }
        r
    }
}

/// The command line that repeats a run.
pub fn rerun_command(s: &Settings) -> String {
    let a = &s.args;
    let mode = match s.mode {
        super::config::Mode::Crash | super::config::Mode::Child(_) => " --crash",
        super::config::Mode::Faults => " --faults",
        super::config::Mode::Plain => "",
    };
    let mut cmd = format!(
        "kho stress --dir {} --threads {} --duration {:?} --seed {} --keys {}{mode} --ops-mix {} --sync-percent {} --value-size {}",
        a.dir.display(),
        a.threads,
        a.duration,
        s.seed,
        a.keys,
        s.mix.canonical(),
        a.sync_percent,
        a.value_size
    );
    if a.inject_lost_write {
        cmd.push_str(" --inject-lost-write");
    }
    if a.inject_phantom_write {
        cmd.push_str(" --inject-phantom-write");
    }
    cmd
}

/// Prints `line(elapsed, ops per second)` to stderr every `interval` until dropped.
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    pub fn start(
        interval: Duration,
        oracle: Arc<Oracle>,
        line: impl Fn(Duration) -> String + Send + 'static,
    ) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let (mut last_ops, mut last_at) = (total_ops(&oracle), Instant::now());
            while !flag.load(SeqCst) {
                let next = last_at + interval.max(Duration::from_millis(100));
                while Instant::now() < next && !flag.load(SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if flag.load(SeqCst) {
                    break;
                }
                let ops = total_ops(&oracle);
                let rate = (ops - last_ops) as f64 / last_at.elapsed().as_secs_f64().max(1e-3);
                (last_ops, last_at) = (ops, Instant::now());
                let extra = line(start.elapsed());
                eprintln!(
                    "[{:>7.1}s] ops {ops} ({rate:.0}/s) errors {}{}{extra}",
                    start.elapsed().as_secs_f64(),
                    Counter::Errors.get(&oracle),
                    if extra.is_empty() { "" } else { " " },
                );
            }
        });
        Progress { stop, thread: Some(thread) }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Recovery times and other figures a driver adds to the summary.
#[derive(Debug, Default)]
pub struct Outcome {
    pub violation: Option<Violation>,
    /// Crash/recover cycles (crash mode) or fault epochs (faults mode).
    pub cycles: u64,
    /// Lines specific to the mode (`name: value`).
    pub lines: Vec<(String, String)>,
    pub recoveries: Vec<Duration>,
    pub elapsed: Duration,
}

/// `min / avg / p99 / max` of durations in milliseconds.
pub fn latency_summary(times: &[Duration]) -> String {
    if times.is_empty() {
        return "none".into();
    }
    let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    let avg = ms.iter().sum::<f64>() / ms.len() as f64;
    format!(
        "{} recoveries: min {:.1} ms, avg {avg:.1} ms, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms.len(),
        ms[0],
        pct(0.5),
        pct(0.99),
        ms[ms.len() - 1]
    )
}

/// The final summary (stdout).
pub fn summary(s: &Settings, o: &Oracle, out: &Outcome) -> String {
    use Counter::*;
    let a = &s.args;
    let ops = total_ops(o);
    let secs = out.elapsed.as_secs_f64().max(1e-3);
    let verdict = if out.violation.is_some() { "FAILED (1 violation)" } else { "PASSED (0 violations)" };
    let mut r = format!("kho stress: {verdict}\n");
    let mut line = |k: &str, v: String| {
        let _ = writeln!(r, "  {:<16}{v}", format!("{k}:"));
    };
    line("mode", s.mode.describe().into());
    if let Some(key) = &s.key_file {
        line("encryption", format!("AES-256-GCM at rest, master key in {}", key.display()));
    }
    line("seed", s.seed.to_string());
    line("run", format!("{:.1} s, {} threads, {} keys, sync {}%", secs, a.threads, a.keys, a.sync_percent));
    line("operations", format!("{ops} ({:.0}/s)", ops as f64 / secs));
    line(
        "writes",
        format!(
            "put {}, delete {}, batch {} ({} ops), synced {}",
            Puts.get(o),
            Deletes.get(o),
            Batches.get(o),
            BatchOps.get(o),
            SyncedWrites.get(o)
        ),
    );
    line(
        "reads",
        format!(
            "get {}, iter {} ({} keys), snapshot {} ({} held across operations); {} checked reads",
            Gets.get(o),
            Iters.get(o),
            IterKeys.get(o),
            Snapshots.get(o),
            HeldSnapshots.get(o),
            Checks.get(o)
        ),
    );
    line(
        "records",
        format!(
            "insert/upsert/delete {}, get {}, person queries {}, erase_person {}",
            RecordWrites.get(o),
            RecordReads.get(o),
            PersonQueries.get(o),
            Erasures.get(o)
        ),
    );
    line("maintenance", format!("flush {}, compact_range {}", Flushes.get(o), Compactions.get(o)));
    line("errors (Err)", Errors.get(o).to_string());
    for (k, v) in &out.lines {
        line(k, v.clone());
    }
    if !out.recoveries.is_empty() {
        line("recovery", latency_summary(&out.recoveries));
    }
    line("violations", if out.violation.is_some() { "1 (report above)".into() } else { "0".into() });
    r
}
