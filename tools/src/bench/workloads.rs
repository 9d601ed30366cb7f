//! The db_bench workloads, run against one database directory in the order given.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use kho::crypt::Encryption;
use kho::record::population::{Event, Population};
use kho::record::{
    AccessContext, AckMode, ActorStore, AuditKey, AuditOptions, FeedOptions, PersonKeys, Store, StoreOptions,
    SubscriptionFilter,
};
use kho::{Db, Options, WriteBatch, WriteOptions};

use super::gen::{key_into, new_rng, ValueGen};
use super::report::{self, Outcome};
use super::BenchArgs;

/// One latency sample every this many operations (timing every op would cost more than
/// the fastest operations themselves); `--histogram=1` times every op.
const SAMPLE_EVERY: u64 = 8;

/// The benchmarks `kho bench` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    FillSeq,
    FillRandom,
    Overwrite,
    FillSync,
    ReadRandom,
    SeekRandom,
    ReadSeq,
    ReadReverse,
    ReadWhileWriting,
    DeleteRandom,
    Compact,
    Stats,
    /// Record layer: `--num` records of the synthetic population through `Store` batches
    /// (each record written with its national-ID index entry, after reading the key's owner).
    Ingest,
    /// Record layer: the first `--num` records of the synthetic population (the records
    /// `ingest` files, without its corrections and deletions) bulk-loaded with
    /// `Store::import`, one import per collection.
    Import,
    /// Record layer: `Store::person` for random persons of what `ingest` wrote.
    PersonLookup,
    /// Change feed (`--feed=1`): a consumer drains the `bench` subscription (every change
    /// `ingest` wrote), acknowledging each chunk of 1,024 (group-committed).
    FeedRead,
}

impl FromStr for Workload {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "fillseq" => Workload::FillSeq,
            "fillrandom" => Workload::FillRandom,
            "overwrite" => Workload::Overwrite,
            "fillsync" => Workload::FillSync,
            "readrandom" => Workload::ReadRandom,
            "seekrandom" => Workload::SeekRandom,
            "readseq" => Workload::ReadSeq,
            "readreverse" => Workload::ReadReverse,
            "readwhilewriting" => Workload::ReadWhileWriting,
            "deleterandom" => Workload::DeleteRandom,
            "compact" => Workload::Compact,
            "stats" => Workload::Stats,
            "ingest" => Workload::Ingest,
            "import" => Workload::Import,
            "personlookup" => Workload::PersonLookup,
            "feedread" => Workload::FeedRead,
            other => return Err(anyhow!("unknown benchmark {other:?}")),
        })
    }
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::FillSeq => "fillseq",
            Workload::FillRandom => "fillrandom",
            Workload::Overwrite => "overwrite",
            Workload::FillSync => "fillsync",
            Workload::ReadRandom => "readrandom",
            Workload::SeekRandom => "seekrandom",
            Workload::ReadSeq => "readseq",
            Workload::ReadReverse => "readreverse",
            Workload::ReadWhileWriting => "readwhilewriting",
            Workload::DeleteRandom => "deleterandom",
            Workload::Compact => "compact",
            Workload::Stats => "stats",
            Workload::Ingest => "ingest",
            Workload::Import => "import",
            Workload::PersonLookup => "personlookup",
            Workload::FeedRead => "feedread",
        }
    }

    /// db_bench starts these on an empty database.
    fn fresh_db(self) -> bool {
        matches!(
            self,
            Workload::FillSeq | Workload::FillRandom | Workload::FillSync | Workload::Ingest | Workload::Import
        )
    }

    /// Runs through the record layer.
    fn is_record(self) -> bool {
        matches!(self, Workload::Ingest | Workload::Import | Workload::PersonLookup | Workload::FeedRead)
    }
}

/// What one thread did.
struct ThreadResult {
    ops: u64,
    bytes: u64,
    found: u64,
    hist: Histogram<u64>,
}

/// Operations done by every thread of the running benchmark, for the progress bar (updated
/// every [`PROGRESS_STEP`] operations of a thread, so threads rarely touch the shared line).
static PROGRESS: AtomicU64 = AtomicU64::new(0);

const PROGRESS_STEP: u64 = 256;

impl ThreadResult {
    fn new() -> Self {
        ThreadResult { ops: 0, bytes: 0, found: 0, hist: new_hist() }
    }

    fn count_op(&mut self) {
        self.ops += 1;
        if self.ops.is_multiple_of(PROGRESS_STEP) {
            PROGRESS.fetch_add(PROGRESS_STEP, Ordering::Relaxed);
        }
    }
}

/// Operations all threads of workload `w` will do (the progress bar's length).
fn planned_ops(w: Workload, args: &BenchArgs) -> u64 {
    let threads = args.threads.max(1) as u64;
    let reads = args.reads.unwrap_or(args.num);
    match w {
        Workload::FillSync => (args.num / 1000).max(1) * threads,
        Workload::FillSeq | Workload::FillRandom | Workload::Overwrite | Workload::DeleteRandom => args.num * threads,
        Workload::Ingest | Workload::Import => args.num,
        Workload::ReadSeq | Workload::ReadReverse => reads.min(args.num) * threads,
        _ => reads * threads,
    }
}

/// A progress bar on stderr while a benchmark runs, if stderr is a terminal; dropped (and
/// cleared) when the benchmark ends.
struct Progress {
    done: Arc<AtomicBool>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(name: &'static str, planned: u64) -> Progress {
        PROGRESS.store(0, Ordering::Relaxed);
        let done = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return Progress { done, ticker: None };
        }
        let bar = ProgressBar::new(planned);
        if let Ok(style) = ProgressStyle::with_template("{prefix:<12} {bar:40} {pos}/{len} ops  {per_sec}  eta {eta}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(name);
        let stop = done.clone();
        let ticker = std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                bar.set_position(PROGRESS.load(Ordering::Relaxed));
                std::thread::sleep(Duration::from_millis(200));
            }
            bar.finish_and_clear();
        });
        Progress { done, ticker: Some(ticker) }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

fn new_hist() -> Histogram<u64> {
    // 1 ns .. 100 s at 3 significant digits; construction cannot fail for these bounds.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).unwrap_or_else(|_| Histogram::new(3).expect("histogram"))
}

/// A database under benchmark.
pub struct Bench {
    args: BenchArgs,
    dir: PathBuf,
    db: Option<Db>,
    anon: report::AnonPeak,
    /// Encryption at rest, or none.
    encryption: Option<Encryption>,
    /// Appended to each result line's name (`+enc` for the encrypted half of
    /// `--encrypt=both`).
    suffix: &'static str,
    /// With `--person-keys=1`: the person-key vault (a database beside `dir`).
    vault: Option<PersonKeys>,
}

impl Bench {
    pub fn new(args: BenchArgs, dir: PathBuf, encryption: Option<Encryption>, suffix: &'static str) -> Self {
        Bench { args, dir, db: None, anon: report::AnonPeak::start(), encryption, suffix, vault: None }
    }

    fn options(&self) -> Options {
        let defaults = Options::default();
        Options {
            compression_per_level: self
                .args
                .compression_per_level
                .clone()
                .unwrap_or(defaults.compression_per_level.clone()),
            write_buffer_size: self.args.write_buffer_size,
            max_immutable_memtables: self
                .args
                .max_write_buffer_number
                .map_or(defaults.max_immutable_memtables, |n| usize::try_from(n - 1).unwrap_or(usize::MAX)),
            compaction_thread_nice: self.args.compaction_thread_nice.unwrap_or(defaults.compaction_thread_nice),
            block_cache_capacity: self.args.cache_size,
            bloom_bits_per_key: self.args.bloom_bits,
            compression_level: self.args.compression_level,
            block_size: self.args.block_size,
            encryption: self.encryption.clone(),
            ..defaults
        }
    }

    fn open(&mut self, fresh: bool) -> anyhow::Result<Db> {
        let vault_dir = self.dir.with_file_name(format!(
            "{}-vault",
            self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        ));
        if fresh {
            if let Some(db) = self.db.take() {
                db.close()?;
            }
            if let Some(v) = self.vault.take() {
                v.db().close()?;
            }
            for d in [&self.dir, &vault_dir] {
                if d.exists() {
                    std::fs::remove_dir_all(d).with_context(|| format!("removing {}", d.display()))?;
                }
            }
        }
        if self.db.is_none() {
            self.db = Some(Db::open(&self.dir, self.options())?);
        }
        if self.args.person_keys && self.vault.is_none() {
            self.vault = Some(PersonKeys::open(Db::open(&vault_dir, self.options())?)?);
        }
        self.db.clone().ok_or_else(|| anyhow!("database not open"))
    }

    /// Runs one benchmark and prints its db_bench line and the extra figures; returns its
    /// rate in operations per second (`None` for `stats` and `compact`).
    pub fn run(&mut self, w: Workload) -> anyhow::Result<Option<f64>> {
        let db = self.open(w.fresh_db())?;
        if w == Workload::Stats {
            println!("{}", db.stats());
            return Ok(None);
        }
        if w == Workload::Compact {
            let start = Instant::now();
            db.compact_range::<&[u8], _>(..)?;
            let name = format!("compact{}", self.suffix);
            println!("{name:<12}: {:>11.3} seconds", start.elapsed().as_secs_f64());
            return Ok(None);
        }
        let args = self.args.clone();
        let threads = args.threads.max(1);
        let progress = Progress::start(w.name(), planned_ops(w, &args));
        let start = Instant::now();
        let writer_done = AtomicBool::new(false);
        let store = match w.is_record() {
            true => Some(open_store(&db, &args, self.vault.clone())?),
            false => None,
        };
        let results: Vec<anyhow::Result<ThreadResult>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let db = db.clone();
                    let args = &args;
                    let store = store.as_ref();
                    s.spawn(move || match store {
                        Some(store) => record_body(w, store, args, t as u64),
                        None => thread_body(w, &db, args, t as u64),
                    })
                })
                .collect();
            let writer = (w == Workload::ReadWhileWriting).then(|| {
                let db = db.clone();
                let args = &args;
                let done = &writer_done;
                s.spawn(move || background_writer(&db, args, done))
            });
            let results = handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("bench thread panicked"))))
                .collect();
            writer_done.store(true, Ordering::Relaxed);
            if let Some(h) = writer {
                let _ = h.join();
            }
            results
        });
        let elapsed = start.elapsed();
        drop(progress);
        let mut total = ThreadResult::new();
        for r in results {
            let r = r?;
            total.ops += r.ops;
            total.bytes += r.bytes;
            total.found += r.found;
            total.hist.add(&r.hist).map_err(|e| anyhow!("merging histograms: {e}"))?;
        }
        let found = matches!(
            w,
            Workload::ReadRandom | Workload::ReadWhileWriting | Workload::PersonLookup | Workload::SeekRandom
        )
        .then_some(total.found);
        let name = format!("{}{}", w.name(), self.suffix);
        report::print_outcome(&Outcome {
            name: &name,
            ops: total.ops,
            bytes: total.bytes,
            threads,
            elapsed,
            found,
            hist: &total.hist,
            stats: db.stats(),
            dir: &self.dir,
            verbose_histogram: args.histogram,
            anon_peak: self.anon.bytes(),
        });
        Ok(Some(total.ops as f64 / elapsed.as_secs_f64().max(1e-9)))
    }

    pub fn close(mut self) -> anyhow::Result<()> {
        if let Some(db) = self.db.take() {
            db.close()?;
        }
        if let Some(v) = self.vault.take() {
            v.db().close()?;
        }
        Ok(())
    }
}

/// Runs thread `t`'s share of workload `w`.
fn thread_body(w: Workload, db: &Db, args: &BenchArgs, t: u64) -> anyhow::Result<ThreadResult> {
    let mut r = ThreadResult::new();
    // Each benchmark draws its own key sequence (as db_bench does), so reads do not simply
    // replay the keys the previous fill wrote.
    let mut rng = new_rng(args.seed.wrapping_add(t.wrapping_mul(1_000_003)).wrapping_add((w as u64) << 40));
    let mut values = ValueGen::new(args.seed ^ t, args.compression_ratio);
    let mut key = vec![0u8; args.key_size];
    let reads = args.reads.unwrap_or(args.num);
    let sample = if args.histogram { 1 } else { SAMPLE_EVERY };
    let timed = |i: u64, r: &mut ThreadResult, op: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<()> {
        if i.is_multiple_of(sample) {
            let t0 = Instant::now();
            op()?;
            let _ = r.hist.record((t0.elapsed().as_nanos() as u64).max(1));
        } else {
            op()?;
        }
        r.count_op();
        Ok(())
    };
    match w {
        Workload::FillSeq | Workload::FillRandom | Workload::Overwrite | Workload::FillSync => {
            let n = if w == Workload::FillSync { (args.num / 1000).max(1) } else { args.num };
            let opts = WriteOptions { sync: args.sync || w == Workload::FillSync };
            for i in 0..n {
                let k = if w == Workload::FillSeq { i } else { rng.below(args.num) };
                key_into(&mut key, k);
                let v = values.next(args.value_size);
                r.bytes += (key.len() + v.len()) as u64;
                let mut batch = WriteBatch::with_capacity(key.len() + v.len() + 11);
                batch.put(&key, v);
                timed(i, &mut r, &mut || Ok(db.write(std::mem::take(&mut batch), &opts)?))?;
            }
        }
        Workload::DeleteRandom => {
            for i in 0..args.num {
                key_into(&mut key, rng.below(args.num));
                timed(i, &mut r, &mut || Ok(db.delete(&key)?))?;
            }
        }
        Workload::ReadRandom | Workload::ReadWhileWriting => {
            for i in 0..reads {
                key_into(&mut key, rng.below(args.num));
                let mut found = false;
                timed(i, &mut r, &mut || {
                    found = db.get(&key)?.is_some();
                    Ok(())
                })?;
                if found {
                    r.found += 1;
                    r.bytes += (key.len() + args.value_size) as u64;
                }
            }
        }
        Workload::SeekRandom => {
            // As db_bench: a new iterator for every seek (so each sees the current tables),
            // found when the first key at or after the target is the target.
            for i in 0..reads {
                key_into(&mut key, rng.below(args.num));
                let mut found = false;
                timed(i, &mut r, &mut || {
                    let mut it = db.iter()?;
                    it.seek(&key);
                    for n in 0..=args.seek_nexts {
                        match it.next() {
                            Some(kv) => {
                                let (k, _) = kv?;
                                found |= n == 0 && k == key[..];
                            }
                            None => break,
                        }
                    }
                    Ok(())
                })?;
                r.found += u64::from(found);
            }
        }
        Workload::ReadSeq | Workload::ReadReverse => {
            let it = db.iter()?;
            let mut scan = |item: Option<kho::Result<(bytes::Bytes, bytes::Bytes)>>| -> anyhow::Result<bool> {
                match item {
                    Some(kv) => {
                        let (k, v) = kv?;
                        r.bytes += (k.len() + v.len()) as u64;
                        r.count_op();
                        Ok(r.ops < reads)
                    }
                    None => Ok(false),
                }
            };
            if w == Workload::ReadSeq {
                let mut it = it;
                while scan(it.next())? {}
            } else {
                let mut it = it.rev();
                while scan(it.next())? {}
            }
        }
        Workload::Compact
        | Workload::Stats
        | Workload::Ingest
        | Workload::Import
        | Workload::PersonLookup
        | Workload::FeedRead => {}
    }
    Ok(r)
}

/// Runs thread `t`'s share of record workload `w` over the population of `--num` persons
/// from `--seed`: `ingest` files its first `--num` records (~3.4 a person), one thread only
/// (the generator's primary keys depend on the person index, so two threads would overwrite
/// each other's records); `personlookup` calls `Store::person` for random persons of it.
/// An `ingest` op is one record, but its latency figures are per batch commit; a
/// `personlookup` op is one call, counted as found when the person has records.
fn record_body(w: Workload, store: &Store, args: &BenchArgs, t: u64) -> anyhow::Result<ThreadResult> {
    let mut r = ThreadResult::new();
    let pop = Population::new(args.seed, args.num.max(1));
    match w {
        Workload::Ingest => {
            if args.threads > 1 {
                return Err(anyhow!("ingest runs on one thread (--threads=1); personlookup may use several"));
            }
            let actor = bench_actor(store, args)?;
            let new_batch = || actor.as_ref().map_or_else(|| store.batch(), |a| a.batch());
            let mut events = pop.events();
            let mut batch = new_batch();
            let per_batch = args.records_per_batch.max(1);
            let mut commits = 0u64;
            while r.ops < args.num {
                let Some(e) = events.next() else { break };
                match e {
                    Event::Upsert(rec) | Event::Correct(rec) => {
                        batch.upsert(rec.collection, &rec.pk, &rec.id, &rec.payload)?;
                    }
                    Event::Delete { collection, pk } => {
                        batch.delete(collection, &pk);
                    }
                }
                r.count_op();
                if batch.len() >= per_batch || r.ops == args.num {
                    let full = std::mem::replace(&mut batch, new_batch());
                    let t0 = Instant::now();
                    full.commit()?;
                    let _ = r.hist.record((t0.elapsed().as_nanos() as u64).max(1));
                    commits += 1;
                }
            }
            if !batch.is_empty() || commits == 0 {
                batch.commit()?;
            }
        }
        Workload::Import => {
            if args.threads > 1 {
                return Err(anyhow!("import runs on one thread (--threads=1)"));
            }
            import_population(store, &pop, args, &mut r)?;
        }
        Workload::PersonLookup => {
            let mut rng = new_rng(args.seed ^ t.wrapping_mul(0x9E37_79B9) ^ 0x7065_7273);
            // `ingest` of `--num` records reaches about `num / 3.4` persons; look up among
            // the first quarter so nearly every lookup has records to return.
            let persons = (args.num / 4).max(1);
            let reads = args.reads.unwrap_or(args.num);
            let sample = if args.histogram { 1 } else { SAMPLE_EVERY };
            let actor = bench_actor(store, args)?;
            for i in 0..reads {
                let id = pop.person(rng.below(persons)).id;
                let t0 = (i % sample == 0).then(Instant::now);
                let records = match &actor {
                    Some(a) => a.person(&id)?,
                    None => store.person(&id)?,
                };
                if let Some(t0) = t0 {
                    let _ = r.hist.record((t0.elapsed().as_nanos() as u64).max(1));
                }
                r.count_op();
                if !records.is_empty() {
                    r.found += 1;
                    r.bytes += records.iter().map(|rec| (rec.pk.len() + rec.payload.len()) as u64).sum::<u64>();
                }
            }
        }
        Workload::FeedRead => {
            if args.threads > 1 {
                return Err(anyhow!("feedread runs on one thread (a subscription has one cursor)"));
            }
            let mut cursor = store.changes(FEED_SUBSCRIBER)?;
            let sample = if args.histogram { 1 } else { SAMPLE_EVERY };
            loop {
                let t0 = r.ops.is_multiple_of(sample).then(Instant::now);
                let Some(c) = cursor.next().transpose()? else { break };
                if let Some(t0) = t0 {
                    let _ = r.hist.record((t0.elapsed().as_nanos() as u64).max(1));
                }
                r.bytes += (c.pk.len() + c.payload.as_ref().map_or(0, |p| p.len())) as u64;
                r.count_op();
                if r.ops.is_multiple_of(1024) {
                    cursor.ack(c.position, AckMode::GroupCommit)?;
                }
            }
            cursor.ack_all(AckMode::GroupCommit)?;
        }
        _ => return Err(anyhow!("{} is not a record workload", w.name())),
    }
    Ok(r)
}

/// `import`: generates the first `--num` records person by person, grouped by collection,
/// then imports each collection with one `Store::import` (the timed part; each import's
/// latency goes to the histogram). Prints how long generating took, so the import-only
/// rate can be read beside the line (`ingest` generates inside its timed loop).
fn import_population(store: &Store, pop: &Population, args: &BenchArgs, r: &mut ThreadResult) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let mut by_collection: std::collections::BTreeMap<&'static str, Vec<_>> = Default::default();
    let mut n = 0u64;
    'persons: for i in 0..pop.persons {
        for rec in pop.records_of(&pop.person(i)) {
            if n == args.num {
                break 'persons;
            }
            by_collection.entry(rec.collection).or_default().push((rec.pk, rec.id, rec.payload));
            n += 1;
        }
    }
    let generated = t0.elapsed();
    let t1 = Instant::now();
    let (mut tables, mut bytes) = (0, 0);
    for (collection, rows) in by_collection {
        let t = Instant::now();
        let report = store.import(collection, rows)?;
        let _ = r.hist.record((t.elapsed().as_nanos() as u64).max(1));
        tables += report.tables;
        bytes += report.bytes;
        for _ in 0..report.rows {
            r.count_op();
        }
    }
    let imported = t1.elapsed();
    println!(
        "{:<12}  generated {n} records in {:.3} s, imported them in {:.3} s ({:.0} records/s; {tables} tables, {bytes} bytes)",
        "",
        generated.as_secs_f64(),
        imported.as_secs_f64(),
        n as f64 / imported.as_secs_f64().max(1e-9)
    );
    Ok(())
}

/// With `--audit=1`: the actor record workloads go through.
fn bench_actor(store: &Store, args: &BenchArgs) -> anyhow::Result<Option<ActorStore>> {
    Ok(match args.audit {
        true => Some(store.as_actor(AccessContext::new("bench", "benchmark")?)),
        false => None,
    })
}

/// The audit key of `--audit=1` (fixed: the benchmark measures the cost, not the secrecy).
fn bench_audit_key() -> anyhow::Result<AuditKey> {
    Ok(AuditKey::from_secret(&kho::crypt::SecretKey::from_bytes([0xA5; kho::crypt::KEY_LEN]))?)
}

/// The subscription `--feed=1` creates on a fresh store and `feedread` drains.
const FEED_SUBSCRIBER: &str = "bench";

/// The record store of a record workload: with `--feed=1`, the change feed on and (on a
/// fresh store) a subscription `bench` that holds every change until `feedread` reads it.
fn open_store(db: &Db, args: &BenchArgs, person_keys: Option<PersonKeys>) -> anyhow::Result<Store> {
    let audit = match args.audit {
        true => Some(AuditOptions::new(bench_audit_key()?)),
        false => None,
    };
    let opts = StoreOptions {
        feed: FeedOptions { enable: args.feed, ..FeedOptions::default() },
        audit,
        person_keys,
        ..StoreOptions::default()
    };
    let store = Store::open(db.clone(), opts)?;
    if args.feed && !store.subscriptions()?.iter().any(|s| s.name == FEED_SUBSCRIBER) {
        store.subscribe(FEED_SUBSCRIBER, SubscriptionFilter::all())?;
    }
    Ok(store)
}

/// The writer of readwhilewriting: random overwrites until the readers finish.
fn background_writer(db: &Db, args: &BenchArgs, done: &AtomicBool) -> anyhow::Result<()> {
    let mut rng = new_rng(args.seed ^ 0xdead_beef);
    let mut values = ValueGen::new(args.seed ^ 7, args.compression_ratio);
    let mut key = vec![0u8; args.key_size];
    while !done.load(Ordering::Relaxed) {
        key_into(&mut key, rng.below(args.num));
        db.put(&key, values.next(args.value_size))?;
    }
    Ok(())
}
