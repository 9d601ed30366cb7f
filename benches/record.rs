//! Record-layer benchmarks:
//! - `ingest/indexed`: `Store` batches of generated records (record + index entry, with the
//!   read of each key's current owner) vs `ingest/raw_put`: `Db` batches of the same record
//!   bytes with plain puts — the ratio is the index overhead;
//! - `person/lookup`: `Store::person` on a warm store (flushed and compacted, block cache
//!   warm) for random persons of the population; p50/p99 of single calls go to stderr.
//!
//! Sizes are small so a run fits this 2-core machine; quote ratios, not absolute figures.
#![allow(clippy::panic, reason = "a benchmark whose setup fails must stop loudly")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kho::record::population::{Event, GenRecord, Population};
use kho::record::{NationalId, Store, StoreOptions};
use kho::util::SplitMix64;
use kho::{Db, Options, WriteBatch, WriteOptions};

const INGEST_PERSONS: u64 = 5_000;
const LOOKUP_PERSONS: u64 = 50_000;
const BATCH: usize = 2_000;

fn records(pop: &Population) -> Vec<GenRecord> {
    pop.events()
        .filter_map(|e| match e {
            Event::Upsert(r) | Event::Correct(r) => Some(r),
            Event::Delete { .. } => None,
        })
        .collect()
}

fn open_store(dir: &std::path::Path) -> Store {
    let Ok(db) = Db::open(dir, Options::default()) else { panic!("open {}", dir.display()) };
    let Ok(store) = Store::open(db, StoreOptions::default()) else { panic!("store") };
    store
}

/// A fresh store whose collections exist (creating one is a synced catalog write, which
/// would otherwise be timed with the first batch).
fn fresh_store() -> (Store, tempfile::TempDir) {
    let Ok(dir) = tempfile::tempdir() else { panic!("tempdir") };
    let store = open_store(dir.path());
    let Ok(id) = NationalId::parse("001190000001") else { panic!("id") };
    for c in kho::record::population::COLLECTIONS {
        if store.insert(c, "setup", &id, &0).is_err() || store.delete(c, "setup").is_err() {
            panic!("setup");
        }
    }
    (store, dir)
}

fn ingest(store: &Store, recs: &[GenRecord]) {
    for chunk in recs.chunks(BATCH) {
        let mut b = store.batch();
        for r in chunk {
            if b.upsert(r.collection, &r.pk, &r.id, &r.payload).is_err() {
                panic!("upsert");
            }
        }
        if b.commit().is_err() {
            panic!("commit");
        }
    }
}

fn bench_ingest(c: &mut Criterion) {
    let recs = records(&Population::new(1, INGEST_PERSONS));
    // The same bytes as the store's records: `R | 4-byte id | pk` -> `1 | id | msgpack`.
    let raw: Vec<(Vec<u8>, Vec<u8>)> = recs
        .iter()
        .map(|r| {
            let mut k = b"R\0\0\0\x01".to_vec();
            k.extend_from_slice(r.pk.as_bytes());
            let mut v = vec![1u8];
            v.extend_from_slice(r.id.as_bytes());
            v.extend(rmp_serde::to_vec_named(&r.payload).unwrap_or_default());
            (k, v)
        })
        .collect();
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(recs.len() as u64));
    g.sample_size(10);
    // Both routines return their database so that closing it (and deleting the directory)
    // happens after the timing.
    g.bench_function("indexed", |b| {
        b.iter_batched(
            fresh_store,
            |(store, dir)| {
                ingest(&store, &recs);
                (store, dir)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("raw_put", |b| {
        b.iter_batched(
            || {
                let Ok(dir) = tempfile::tempdir() else { panic!("tempdir") };
                let Ok(db) = Db::open(dir.path(), Options::default()) else { panic!("open") };
                (db, dir)
            },
            |(db, dir)| {
                for chunk in raw.chunks(BATCH) {
                    let mut wb = WriteBatch::new();
                    for (k, v) in chunk {
                        wb.put(k, v);
                    }
                    if db.write(wb, &WriteOptions::default()).is_err() {
                        panic!("write");
                    }
                }
                (db, dir)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// A warm store of `LOOKUP_PERSONS` persons: flushed, compacted, every person read once.
struct Warm {
    store: Store,
    ids: Vec<NationalId>,
    _dir: tempfile::TempDir,
}

fn warm_store() -> Warm {
    let Ok(dir) = tempfile::tempdir() else { panic!("tempdir") };
    let pop = Population::new(2, LOOKUP_PERSONS);
    let store = open_store(dir.path());
    ingest(&store, &records(&pop));
    if store.db().flush().is_err() || store.db().compact_range::<&[u8], _>(..).is_err() {
        panic!("flush/compact");
    }
    let ids: Vec<NationalId> = (0..LOOKUP_PERSONS).map(|i| pop.person(i).id).collect();
    for id in &ids {
        let _ = store.person(id);
    }
    Warm { store, ids, _dir: dir }
}

fn bench_person(c: &mut Criterion) {
    let mut warm: Option<Warm> = None; // built only if this benchmark is selected
    let mut rng = SplitMix64::new(3);
    let mut latencies: Vec<Duration> = Vec::new();
    let mut g = c.benchmark_group("person");
    g.throughput(Throughput::Elements(1));
    g.bench_function("lookup", |b| {
        let w = warm.get_or_insert_with(warm_store);
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let id = &w.ids[rng.below(w.ids.len() as u64) as usize];
                let t = Instant::now();
                black_box(w.store.person(id).map(|r| r.len()).unwrap_or(0));
                let d = t.elapsed();
                total += d;
                if latencies.len() < 1_000_000 {
                    latencies.push(d);
                }
            }
            total
        })
    });
    g.finish();
    latencies.sort_unstable();
    if !latencies.is_empty() {
        let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6;
        eprintln!(
            "person/lookup single calls: n={} p50={:.1}us p99={:.1}us p99.9={:.1}us",
            latencies.len(),
            pct(0.50),
            pct(0.99),
            pct(0.999)
        );
    }
}

criterion_group!(benches, bench_ingest, bench_person);
criterion_main!(benches);
