//! Memtable micro-benchmarks: inserting sequential and random keys, and point lookups.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kho::internals::Memtable;
use kho::ValueKind;

const N: u64 = 50_000;

fn key(i: u64) -> Vec<u8> {
    format!("{:016}", i).into_bytes()
}

fn scrambled(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % (N * 16)
}

fn bench_memtable(c: &mut Criterion) {
    let value = Bytes::from(vec![b'v'; 100]);
    let mut g = c.benchmark_group("memtable");
    g.throughput(Throughput::Elements(N));
    for (name, f) in [("insert_sequential", (|i| i) as fn(u64) -> u64), ("insert_random", scrambled)] {
        let keys: Vec<Vec<u8>> = (0..N).map(|i| key(f(i))).collect();
        g.bench_function(name, |b| {
            b.iter_batched(
                || Memtable::unfiltered(1),
                |m| {
                    for (seq, k) in keys.iter().enumerate() {
                        m.insert(k, seq as u64 + 1, ValueKind::Put, &value);
                    }
                    m
                },
                BatchSize::LargeInput,
            )
        });
    }
    let m = Memtable::unfiltered(1);
    let keys: Vec<Vec<u8>> = (0..N).map(|i| key(scrambled(i))).collect();
    for (seq, k) in keys.iter().enumerate() {
        m.insert(k, seq as u64 + 1, ValueKind::Put, &value);
    }
    g.bench_function("get_hit", |b| {
        b.iter(|| keys.iter().filter(|k| m.get(black_box(k), u64::MAX >> 8).is_some()).count())
    });
    g.finish();
}

criterion_group!(benches, bench_memtable);
criterion_main!(benches);
