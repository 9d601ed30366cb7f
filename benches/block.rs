//! Block codec micro-benchmarks: encoding a 4 KiB data block, decoding (checking) it, and
//! scanning or seeking within it.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kho::internals::{Block, BlockBuilder, BlockIter};

/// Internal keys `user{i:08}` with trailer `(seq << 8 | Put)` and 100-byte values, about one
/// 4 KiB block's worth.
fn entries() -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..32u64)
        .map(|i| {
            let mut k = format!("user{:08}", i * 7).into_bytes();
            k.extend_from_slice(&((1000 - i) << 8 | 1).to_le_bytes());
            (k, vec![b'v'; 100])
        })
        .collect()
}

fn build(items: &[(Vec<u8>, Vec<u8>)]) -> Bytes {
    let mut b = BlockBuilder::new(16);
    for (k, v) in items {
        b.add(k, v);
    }
    Bytes::copy_from_slice(b.finish())
}

fn bench_block(c: &mut Criterion) {
    let items = entries();
    let raw = build(&items);
    let path: Arc<Path> = Arc::from(Path::new("bench.sst"));
    let mut g = c.benchmark_group("block");
    g.throughput(Throughput::Bytes(raw.len() as u64));

    let mut builder = BlockBuilder::new(16);
    g.bench_function("encode", |b| {
        b.iter(|| {
            builder.reset();
            for (k, v) in &items {
                builder.add(k, v);
            }
            black_box(builder.finish().len())
        })
    });

    g.bench_function("decode", |b| b.iter(|| black_box(Block::new(raw.clone(), Arc::clone(&path), 0).is_ok())));

    let Ok(block) = Block::new(raw.clone(), Arc::clone(&path), 0) else {
        return;
    };
    let block = Arc::new(block);
    g.bench_function("scan", |b| {
        let mut it = BlockIter::new(Arc::clone(&block));
        b.iter(|| {
            let mut n = 0usize;
            let _ = it.seek_to_first();
            while it.valid() {
                n += it.key().len() + it.value_slice().len();
                let _ = it.next();
            }
            black_box(n)
        })
    });

    g.throughput(Throughput::Elements(items.len() as u64));
    g.bench_function("seek_each_key", |b| {
        let mut it = BlockIter::new(Arc::clone(&block));
        b.iter(|| {
            for (k, _) in &items {
                let _ = it.seek(k);
                black_box(it.valid());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench_block);
criterion_main!(benches);
