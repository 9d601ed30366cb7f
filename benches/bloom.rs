//! Bloom filter micro-benchmarks: building a filter and probing keys that are present (hit)
//! and absent (miss; mostly rejected after one or two probes).

use std::hint::black_box;
use std::path::Path;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kho::internals::{xxh64, BloomBuilder, BloomFilter};

const KEYS: usize = 10_000;

fn key(i: usize) -> Vec<u8> {
    format!("user{i:012}").into_bytes()
}

fn bench_bloom(c: &mut Criterion) {
    let present: Vec<Vec<u8>> = (0..KEYS).map(key).collect();
    let absent: Vec<Vec<u8>> = (KEYS..2 * KEYS).map(key).collect();
    let mut builder = BloomBuilder::new(10);
    for k in &present {
        builder.add_key(k);
    }
    let Ok(filter) = BloomFilter::decode(Bytes::from(builder.finish()), Path::new("bench.sst"), 0) else {
        return;
    };

    let mut g = c.benchmark_group("bloom");
    g.throughput(Throughput::Elements(KEYS as u64));
    g.bench_function("hash", |b| b.iter(|| present.iter().fold(0u64, |a, k| a ^ xxh64(black_box(k)))));
    g.bench_function("build", |b| {
        b.iter(|| {
            let mut bb = BloomBuilder::new(10);
            for k in &present {
                bb.add_key(k);
            }
            black_box(bb.finish().len())
        })
    });
    g.bench_function("probe_hit", |b| b.iter(|| present.iter().filter(|k| filter.may_contain(black_box(k))).count()));
    g.bench_function("probe_miss", |b| b.iter(|| absent.iter().filter(|k| filter.may_contain(black_box(k))).count()));
    g.finish();
}

criterion_group!(benches, bench_bloom);
criterion_main!(benches);
