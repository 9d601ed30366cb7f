//! `kho demo [DIR] [--persons N]`: generate a seeded synthetic population, ingest it through
//! `kho::record::Store` in atomic batches (with a progress bar on a terminal), then print
//! what was stored, one person's records across all collections, a province query and the
//! commands to explore the result. With `--key-file FILE` the database is encrypted at rest
//! under the master key in FILE, which is created (a fresh random key, mode 0600) if absent.
//! With `--audit-key-file FILE` the store keeps an audit log (docs/privacy.md) under the
//! audit key in FILE (created likewise): every access, the demo's own included, goes through
//! an actor (`demo`, purpose `demonstration`) and is recorded.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kho::crypt::{Encryption, KeyFileProvider};
use kho::record::population::{Event, Population};
use kho::record::{
    AccessContext, ActorStore, AuditOptions, FeedOptions, IdQuery, PersonKeys, Store, StoreOptions, SubscriptionFilter,
};
use kho::{Db, Options};

use crate::fmt::Bytes;
use crate::json::record_json;
use crate::keys::Keys;

/// Arguments of `kho demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the new database (must be empty or absent). Default: a fresh
    /// directory under the system temporary directory.
    pub dir: Option<PathBuf>,
    /// Number of persons to generate (about 3.4 records each). The default takes a few
    /// tens of seconds in a release build on a 2-core machine.
    #[arg(long, default_value_t = 500_000)]
    pub persons: u64,
    /// Seed of the population.
    #[arg(long, default_value_t = 2016)]
    pub seed: u64,
    /// Records per atomic batch.
    #[arg(long, default_value_t = 2000)]
    pub batch: usize,
    /// Record the change feed, with a subscription `demo` holding every change (read it
    /// with `kho feed DIR --subscriber demo`).
    #[arg(long)]
    pub feed: bool,
    /// Seal every payload under a per-person key kept in a vault database in VAULT (created;
    /// crypto-shredding: `kho erase ... --vault VAULT` destroys a person's key).
    #[arg(long)]
    pub vault: Option<PathBuf>,
    /// Keep an audit log under the audit key in FILE (created, mode 0600, if absent).
    #[arg(long)]
    pub audit_key_file: Option<PathBuf>,
}

/// The actor every demo access goes through.
const DEMO_ACTOR: &str = "demo";
const DEMO_PURPOSE: &str = "demonstration";

pub fn run(args: DemoArgs, keys: &Keys) -> anyhow::Result<()> {
    let dir = match args.dir {
        Some(d) => d,
        None => {
            let stamp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
            let d = std::env::temp_dir().join(format!("kho-demo-{}-{stamp}", std::process::id()));
            println!("database directory: {}", d.display());
            d
        }
    };
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} is not empty; give kho demo a new directory", dir.display());
    }
    let mut opts = Options::default();
    if let Some(path) = keys.file() {
        let existed = path.exists();
        let provider =
            KeyFileProvider::open_or_create(path).with_context(|| format!("--key-file {}", path.display()))?;
        match existed {
            true => println!("encrypted at rest under the master key in {} ({})", path.display(), provider.id()),
            false => println!(
                "encrypted at rest under a new master key: {} (mode 0600, {}); keep it, nothing opens the \
                 database without it",
                path.display(),
                provider.id()
            ),
        }
        opts.encryption = Some(Encryption::new(std::sync::Arc::new(provider)));
    }
    let person_keys = match &args.vault {
        Some(v) => {
            let vdb = Db::open(v, opts.clone()).with_context(|| format!("opening the vault {}", v.display()))?;
            println!("person keys: every payload sealed under its person's key, kept in the vault {}", v.display());
            Some(PersonKeys::open(vdb)?)
        }
        None => None,
    };
    let db = Db::open(&dir, opts).with_context(|| format!("opening {}", dir.display()))?;
    let audit = match &args.audit_key_file {
        Some(path) => {
            KeyFileProvider::open_or_create(path).with_context(|| format!("--audit-key-file {}", path.display()))?;
            let key = crate::audit::audit_key(path)?;
            println!(
                "audited: every access is recorded under the audit key in {} (public key {})",
                path.display(),
                key.public_key_hex()
            );
            Some(AuditOptions::new(key))
        }
        None => None,
    };
    let public_key = audit.as_ref().map(|a| a.key.public_key_hex());
    let feed = FeedOptions { enable: args.feed, ..FeedOptions::default() };
    let store = Store::open(db, StoreOptions { audit, feed, person_keys, ..StoreOptions::default() })?;
    if args.feed {
        store.subscribe(DEMO_ACTOR, SubscriptionFilter::all())?;
        println!("change feed on: subscription {DEMO_ACTOR} holds every change");
    }
    let store = store.as_actor(AccessContext::new(DEMO_ACTOR, DEMO_PURPOSE)?);
    let pop = Population::new(args.seed, args.persons);

    println!("generating {} persons (seed {}) and ingesting their records...", args.persons, args.seed);
    let ingest = ingest(&store, &pop, args.batch.max(1))?;
    let secs = ingest.elapsed.as_secs_f64().max(1e-9);
    let disk = dir_size(&dir)?;

    let census = census(&store)?;
    println!();
    println!("stored");
    println!("  records        {:>12}", census.records);
    for (c, n) in &census.per_collection {
        println!("    {c:<18}{n:>10}");
    }
    println!("  persons        {:>12}  (with at least one record; {} generated)", census.persons, args.persons);
    println!(
        "  writes         {:>12}  ({} upserts incl. {} ID corrections, {} deletes)",
        ingest.upserts + ingest.deletes,
        ingest.upserts,
        ingest.corrections,
        ingest.deletes
    );
    println!(
        "  ingest         {:>12.0} records/s  ({:.1} s, batches of {})",
        ingest.upserts as f64 / secs,
        secs,
        args.batch.max(1)
    );
    println!("  on disk        {:>12.1} MB in {}", disk as f64 / 1e6, dir.display());
    let stats = store.store().db().stats();
    let files: Vec<String> = stats.levels.iter().map(|l| l.files.to_string()).collect();
    println!(
        "  engine         files per level [{}], write amplification {:.1}, {} slowdowns, {} stops",
        files.join(" "),
        stats.write_amplification(),
        stats.write_slowdowns,
        stats.write_stops
    );

    let shown = show_person(&store, &pop)?;
    show_province_query(&store)?;

    store.store().close()?;
    println!();
    println!("explore it:");
    let d = dir.display();
    let kho = match keys.file() {
        Some(k) => format!("{} --key-file {}", invocation(), shell_word(&k.display().to_string())),
        None => invocation().to_owned(),
    };
    println!("  {kho} dump summary {d}   # levels, tables, logs, manifest");
    println!("  {kho} verify {d}   # every file end to end, and the national-ID index");
    if let Some(shown) = &shown {
        let id = &shown.id;
        let mut as_actor = match &args.audit_key_file {
            Some(f) => format!(
                " --actor {DEMO_ACTOR} --purpose {DEMO_PURPOSE} --audit-key-file {}",
                shell_word(&f.display().to_string())
            ),
            None => String::new(),
        };
        if let Some(v) = &args.vault {
            as_actor.push_str(&format!(" --vault {}", shell_word(&v.display().to_string())));
        }
        println!("  {kho} person {d} {id}{as_actor}   # that person's records");
        println!(
            "  {kho} record {d} {} {}{as_actor}   # one of them",
            shell_word(&shown.collection),
            shell_word(&crate::fmt::escape(&shown.pk))
        );
        println!("  {kho} scan {d} --from I{id} --to I{id}~ --keys-only   # that person's index entries");
    }
    println!("  {kho} scan {d} --from C --to D   # the collection catalog");
    if args.feed {
        println!("  {kho} feed {d} --subscriber {DEMO_ACTOR} --max 5   # the first changes, acknowledged");
        println!("  {kho} feed {d} --list   # subscriptions, positions, lag");
    }
    if let (Some(f), Some(pk)) = (&args.audit_key_file, &public_key) {
        let f = shell_word(&f.display().to_string());
        println!("  {kho} audit {d}   # who accessed what, and why");
        if let Some(shown) = &shown {
            println!("  {kho} audit {d} --person {} --audit-key-file {f}   # every access to that person", shown.id);
        }
        println!("  {kho} audit verify {d} --public-key {pk}   # the chain and its signatures");
    }
    if let (Some(v), Some(shown)) = (&args.vault, &shown) {
        let v = shell_word(&v.display().to_string());
        let who = match &args.audit_key_file {
            Some(f) => format!(
                " --actor {DEMO_ACTOR} --purpose erasure-request --audit-key-file {}",
                shell_word(&f.display().to_string())
            ),
            None => String::new(),
        };
        println!(
            "  {kho} erase {d} {} --vault {v}{who} --receipt erasure.json   # destroy their key, erase, purge, receipt",
            shown.id
        );
        println!("  {kho} erase --check-receipt erasure.json {d} --vault {v} --id {}   # prove it", shown.id);
    }
    println!("  {kho} demo --persons 10000   # a smaller run in a fresh directory");
    Ok(())
}

struct Ingest {
    upserts: u64,
    deletes: u64,
    corrections: u64,
    elapsed: Duration,
}

fn ingest(store: &ActorStore, pop: &Population, batch_size: usize) -> anyhow::Result<Ingest> {
    let bar = ProgressBar::new(pop.persons);
    if std::io::stderr().is_terminal() {
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} persons  {per_sec}  eta {eta}")?.progress_chars("=> "),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let mut out = Ingest { upserts: 0, deletes: 0, corrections: 0, elapsed: Duration::ZERO };
    let start = Instant::now();
    let mut events = pop.events();
    let mut batch = store.batch();
    while let Some(e) = events.next() {
        out.corrections += u64::from(matches!(e, Event::Correct(_)));
        match e {
            Event::Upsert(r) | Event::Correct(r) => {
                batch.upsert(r.collection, &r.pk, &r.id, &r.payload)?;
                out.upserts += 1;
            }
            Event::Delete { collection, pk } => {
                batch.delete(collection, &pk);
                out.deletes += 1;
            }
        }
        if batch.len() >= batch_size {
            std::mem::replace(&mut batch, store.batch()).commit()?;
            bar.set_position(events.persons_done());
        }
    }
    batch.sync(true);
    batch.commit()?;
    store.store().db().flush()?;
    out.elapsed = start.elapsed();
    bar.finish_and_clear();
    Ok(out)
}

struct Census {
    records: u64,
    persons: u64,
    per_collection: BTreeMap<String, u64>,
}

/// Counts records per collection and distinct persons with one scan of the index.
fn census(store: &ActorStore) -> anyhow::Result<Census> {
    let mut c = Census { records: 0, persons: 0, per_collection: BTreeMap::new() };
    let mut last = None;
    for e in store.query(&IdQuery::All)? {
        let e = e?;
        c.records += 1;
        if last != Some(e.id) {
            c.persons += 1;
            last = Some(e.id);
        }
        *c.per_collection.entry(e.collection.to_string()).or_default() += 1;
    }
    Ok(c)
}

/// The person `show_person` printed, and one of their records.
struct Shown {
    id: String,
    collection: String,
    pk: Vec<u8>,
}

/// `s` as one shell word: as is when it holds only safe characters, else single-quoted.
fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.,:/+=@%".contains(&c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Prints the records of the first person who has records in at least four collections;
/// returns that person's ID and their first record's location.
fn show_person(store: &ActorStore, pop: &Population) -> anyhow::Result<Option<Shown>> {
    for i in 0..pop.persons.min(10_000) {
        let p = pop.person(i);
        let records = store.person(&p.id)?;
        let collections: std::collections::BTreeSet<_> = records.iter().map(|r| r.collection.clone()).collect();
        if collections.len() < 4 {
            continue;
        }
        println!();
        println!(
            "person {} — {} ({:?}, born {}, registered in province {:03}): {} records",
            p.id,
            p.name,
            p.gender,
            p.birth_year,
            p.province,
            records.len()
        );
        let start = Instant::now();
        let again = store.person(&p.id)?;
        let took = start.elapsed();
        for r in &again {
            println!("  {}", serde_json::to_string(&record_json(Bytes::Escaped, r))?);
        }
        println!("  (store.person() took {} µs)", took.as_micros());
        let Some(first) = again.first() else { continue };
        return Ok(Some(Shown {
            id: p.id.to_string(),
            collection: first.collection.to_string(),
            pk: first.pk.to_vec(),
        }));
    }
    Ok(None)
}

/// Prints who was born in 1990 and registered in TP.HCM (079), and the size of the province.
fn show_province_query(store: &ActorStore) -> anyhow::Result<()> {
    let q = IdQuery::BirthYear { province: 79, year: 1990 };
    let start = Instant::now();
    let mut persons = 0u64;
    let mut first = Vec::new();
    for id in store.persons(&q)? {
        let id = id?;
        persons += 1;
        if first.len() < 5 {
            first.push(id.to_string());
        }
    }
    let took = start.elapsed();
    let province_records = store.query(&IdQuery::Province(79))?.count();
    println!();
    println!("province query: born 1990, birth registered in TP.HCM (079, IDs 079090…/079190…)");
    println!("  {persons} persons in {:.1} ms; first: {}", took.as_secs_f64() * 1e3, first.join(", "));
    println!("  all of province 079: {province_records} records");
    Ok(())
}

/// Total size of the files in `dir`.
fn dir_size(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let m = e?.metadata()?;
        if m.is_file() {
            total += m.len();
        }
    }
    Ok(total)
}

/// How to run the `kho` tool from here, as a command that works when pasted: `kho` when
/// one is on the `PATH` (after `cargo install --path tools`), otherwise the `cargo run` form
/// the README's quick start uses.
fn invocation() -> &'static str {
    let on_path =
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("kho").is_file()));
    if on_path {
        "kho"
    } else {
        "cargo run --release -q -p kho-tools --"
    }
}
