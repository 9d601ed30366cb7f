//! End-to-end `Db` benchmarks through the public API: `put` (group commit path, no fsync),
//! batched puts, and `get` served from the memtable and from flushed SSTables.
#![allow(clippy::expect_used)] // a benchmark can only stop on an error

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kho::{Db, Options, WriteBatch, WriteOptions};

const N: u64 = 20_000;

fn key(i: u64) -> Vec<u8> {
    format!("{:016}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 1_000_000_007).into_bytes()
}

fn value(i: u64) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(100, b'x');
    v
}

fn bench_db(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::open(dir.path(), Options::default()).expect("open");
    let keys: Vec<Vec<u8>> = (0..N).map(key).collect();
    let values: Vec<Vec<u8>> = (0..N).map(value).collect();

    let mut g = c.benchmark_group("db");
    g.throughput(Throughput::Elements(N));
    g.bench_function("put", |b| {
        b.iter(|| {
            for (k, v) in keys.iter().zip(&values) {
                db.put(k, v).expect("put");
            }
        })
    });
    g.bench_function("put_batch_100", |b| {
        b.iter(|| {
            for chunk in keys.chunks(100).zip(values.chunks(100)) {
                let mut batch = WriteBatch::new();
                for (k, v) in chunk.0.iter().zip(chunk.1) {
                    batch.put(k, v);
                }
                db.write(batch, &WriteOptions::default()).expect("write");
            }
        })
    });
    g.bench_function("get_memtable", |b| {
        b.iter(|| keys.iter().filter(|k| db.get(black_box(k)).expect("get").is_some()).count())
    });
    db.flush().expect("flush");
    g.bench_function("get_sst", |b| {
        b.iter(|| keys.iter().filter(|k| db.get(black_box(k)).expect("get").is_some()).count())
    });
    let missing: Vec<Vec<u8>> = (N..2 * N).map(|i| format!("missing{i:09}").into_bytes()).collect();
    g.bench_function("get_sst_miss", |b| {
        b.iter(|| missing.iter().filter(|k| db.get(black_box(k)).expect("get").is_some()).count())
    });
    g.finish();
}

criterion_group!(benches, bench_db);
criterion_main!(benches);
