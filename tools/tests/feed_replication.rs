//! The proving test of the change feed: a consumer replicates a store into a second store
//! through the feed while producer and consumer processes are killed with SIGKILL at random
//! moments; at the end the two stores hold the same records (payload bytes included), both
//! indexes verify, and `kho verify` is clean on both directories.
//!
//! Crash cycles, `kho stress --crash`-style: this test binary re-executes itself as the child
//! (`feed_replication_child`, which does nothing unless `KHO_FEED_ROLE` is set) in one of
//! three roles — `producer` (writes records: upserts, ID corrections, deletes, erasures, in
//! batches, some synced), `consumer` (reads the subscription, applies each chunk to the
//! replica in one synced batch, then acknowledges — synced or group-committed at random —
//! and exits once caught up), or `both` (a producer thread and the consumer in one process,
//! sharing the source store). The parent kills the child after a random life, then starts
//! the next cycle; a final consumer runs to completion.
//!
//! `feed_replication_smoke` (seconds) runs in the default suite;
//! `feed_replication_long` (`--ignored`) runs 150 cycles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin_cmd;
use kho::record::population::{Event, Population};
use kho::record::{AckMode, FeedOptions, NationalId, Store, StoreOptions, SubscriptionFilter};
use kho::util::SplitMix64;
use kho::{Db, Options};

const SUBSCRIBER: &str = "replica";
const PERSONS: u64 = 3000;

fn src_options() -> StoreOptions {
    StoreOptions { feed: FeedOptions { enable: true, ..FeedOptions::default() }, ..StoreOptions::default() }
}

fn db_options() -> Options {
    // Small memtables and levels: flushes and compactions run during the cycles too.
    Options {
        write_buffer_size: 256 << 10,
        level_base_bytes: 1 << 20,
        target_file_size: 256 << 10,
        ..Options::default()
    }
}

fn open(dir: &Path, opts: StoreOptions) -> Store {
    Store::open(Db::open(dir, db_options()).unwrap(), opts).unwrap()
}

/// Writes until killed (or `max_ops`): batches of 1-16 population events, an erasure every
/// ~40 batches, one batch in 8 synced.
fn produce(src: &Store, seed: u64, max_ops: u64) {
    let pop = Population::new(seed, PERSONS);
    let mut rng = SplitMix64::new(seed ^ 0x5eed);
    let mut events = pop.events();
    let mut ops = 0;
    while ops < max_ops {
        if rng.below(40) == 0 {
            src.erase_person(&pop.person(rng.below(PERSONS)).id).unwrap();
            continue;
        }
        let mut b = src.batch();
        for _ in 0..=rng.below(16) {
            match events.next() {
                Some(Event::Upsert(r) | Event::Correct(r)) => {
                    b.upsert(r.collection, &r.pk, &r.id, &r.payload).unwrap();
                }
                Some(Event::Delete { collection, pk }) => {
                    b.delete(collection, &pk);
                }
                None => events = pop.events(),
            }
            ops += 1;
        }
        b.sync(rng.below(8) == 0);
        b.commit().unwrap();
    }
}

/// Applies the subscription's changes to `dst` chunk by chunk; returns when caught up
/// (`follow`: keeps polling until `stop`).
fn consume(src: &Store, dst: &Store, seed: u64, follow: impl Fn() -> bool) {
    let mut rng = SplitMix64::new(seed ^ 0xc0de);
    let mut cursor = src.changes(SUBSCRIBER).unwrap();
    loop {
        let mut batch = dst.batch();
        let mut n = 0;
        for c in cursor.by_ref().take(1 + rng.below(500) as usize) {
            batch.apply_change(&c.unwrap()).unwrap();
            n += 1;
        }
        batch.sync(true);
        batch.commit().unwrap();
        let mode = if rng.below(2) == 0 { AckMode::Sync } else { AckMode::GroupCommit };
        cursor.ack_all(mode).unwrap();
        if n == 0 {
            if !follow() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The child: runs the role named by the environment (nothing without it).
#[test]
fn feed_replication_child() {
    let Ok(role) = std::env::var("KHO_FEED_ROLE") else { return };
    let src_dir = std::env::var("KHO_FEED_SRC").unwrap();
    let dst_dir = std::env::var("KHO_FEED_DST").unwrap();
    let seed: u64 = std::env::var("KHO_FEED_SEED").unwrap().parse().unwrap();
    let src = open(Path::new(&src_dir), src_options());
    match role.as_str() {
        "producer" => produce(&src, seed, u64::MAX),
        "consumer" => consume(&src, &open(Path::new(&dst_dir), StoreOptions::default()), seed, || false),
        "both" => {
            let dst = open(Path::new(&dst_dir), StoreOptions::default());
            let producer = {
                let src = src.clone();
                std::thread::spawn(move || produce(&src, seed, u64::MAX))
            };
            consume(&src, &dst, seed, || !producer.is_finished());
        }
        other => panic!("unknown role {other}"),
    }
    src.close().unwrap();
}

/// Starts the child in `role`; kills it after `life` (None: waits for it to finish, which
/// it must do successfully).
fn cycle(src: &Path, dst: &Path, role: &str, seed: u64, life: Option<Duration>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "feed_replication_child", "--nocapture", "--test-threads", "1"])
        .env("KHO_FEED_ROLE", role)
        .env("KHO_FEED_SRC", src)
        .env("KHO_FEED_DST", dst)
        .env("KHO_FEED_SEED", seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = life.map(|l| Instant::now() + l);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the {role} child (seed {seed}) failed: {status}");
            return;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

type Records = BTreeMap<(String, Vec<u8>), (NationalId, Vec<u8>)>;

fn records(dir: &Path) -> Records {
    let store = Store::open_read_only(Db::open_read_only(dir, db_options()).unwrap(), StoreOptions::default()).unwrap();
    assert!(store.verify_index().unwrap().is_clean(), "{}: index", dir.display());
    let mut out = Records::new();
    for c in store.collections() {
        for r in store.scan(&c).unwrap() {
            let r = r.unwrap();
            out.insert((c.clone(), r.pk.to_vec()), (r.id, r.payload.to_vec()));
        }
    }
    out
}

fn run(cycles: u64, seed: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    {
        let s = open(&src, src_options());
        s.subscribe(SUBSCRIBER, SubscriptionFilter::all()).unwrap();
        s.close().unwrap();
        open(&dst, StoreOptions::default()).close().unwrap();
    }
    let mut rng = SplitMix64::new(seed);
    for i in 0..cycles {
        let role = ["producer", "both", "consumer", "producer", "both"][(i % 5) as usize];
        // Sometimes within the first 30 ms, while the child is still opening.
        let life = if rng.below(10) == 0 { rng.below(30) } else { 100 + rng.below(500) };
        cycle(&src, &dst, role, seed.wrapping_add(i), Some(Duration::from_millis(life)));
    }
    cycle(&src, &dst, "consumer", seed ^ 0xf1, None);

    let (a, b) = (records(&src), records(&dst));
    assert!(!a.is_empty(), "the producer wrote nothing");
    if a != b {
        let only_src = a.iter().filter(|(k, v)| b.get(*k) != Some(v)).count();
        let only_dst = b.iter().filter(|(k, v)| a.get(*k) != Some(v)).count();
        panic!("replica differs: {only_src} records of the source missing or different, {only_dst} extra");
    }
    for dir in [&src, &dst] {
        let out = cargo_bin_cmd!("kho").arg("verify").arg(dir).output().unwrap();
        assert!(out.status.success(), "kho verify {}: {}", dir.display(), String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn feed_replication_smoke() {
    run(6, 1501);
}

#[test]
#[ignore = "long: 150 crash cycles (minutes)"]
fn feed_replication_long() {
    run(150, 1502);
}
