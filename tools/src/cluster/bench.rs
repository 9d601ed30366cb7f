//! `kho cluster bench`: the figures of docs/scale-out.md, measured in one process.
//! 1. Ingest: the same batches of the synthetic population into (a) one local `Store`
//!    (`StoreBatch::commit`, synced like a replicated write's log append, and not synced) and
//!    (b) a 3-node kho-raft cluster in this process (in-memory network, real files): records/s
//!    and the ratio.
//! 2. Catch-up: a 3-node cluster ingests `--catchup-records` records with node 3 down (its
//!    log purged meanwhile), then node 3 starts and the time until it has applied everything
//!    is measured: a snapshot built from a checkpoint, streamed, unpacked and opened.
//! 3. Lookups: `person` (stale, local) on the leader's store after the ingest: lookups/s.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use kho::record::population::{Event, Population};
use kho::record::{Store, StoreOptions};
use kho_raft::testing::Router;
use kho_raft::{Consistency, NodeDir, RaftStore, RecordOp};
use openraft::{BasicNode, Config, SnapshotPolicy};

use crate::out::Outcome;

/// Arguments of `kho cluster bench`.
#[derive(Debug, Parser)]
pub struct Args {
    /// Persons of the ingest comparison (about 3.4 records each).
    #[arg(long, default_value_t = 100_000)]
    pub persons: u64,
    /// Records per batch.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Records of the store a lagging follower catches up with (0: skip).
    #[arg(long, default_value_t = 2_000_000)]
    pub catchup_records: u64,
    /// Person lookups after the ingest.
    #[arg(long, default_value_t = 100_000)]
    pub lookups: u64,
    /// Concurrent writers (batches dealt round-robin) in both the single-node and the
    /// replicated ingest.
    #[arg(long, default_value_t = 1)]
    pub writers: usize,
    /// Where to put the databases (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
}

fn batches(persons: u64, batch: usize) -> anyhow::Result<Vec<Vec<RecordOp>>> {
    let mut out = Vec::new();
    let mut cur = Vec::with_capacity(batch);
    for e in Population::new(2016, persons).events() {
        cur.push(match e {
            Event::Upsert(r) | Event::Correct(r) => RecordOp::upsert(r.collection, &r.pk, &r.id, &r.payload)?,
            Event::Delete { collection, pk } => RecordOp::delete(collection, &pk),
        });
        if cur.len() == batch {
            out.push(std::mem::replace(&mut cur, Vec::with_capacity(batch)));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// One batch through a local `StoreBatch` (payloads decoded from their MessagePack).
fn local_batch(store: &Store, ops: &[RecordOp], sync: bool) -> anyhow::Result<()> {
    let mut b = store.batch();
    b.sync(sync);
    for op in ops {
        match op {
            RecordOp::Upsert { collection, pk, id, payload } | RecordOp::Insert { collection, pk, id, payload } => {
                let v: kho::record::population::Payload = rmp_serde::from_slice(payload)?;
                b.upsert(collection, pk, &store.parse_id(id)?, &v)?;
            }
            RecordOp::Delete { collection, pk } => {
                b.delete(collection, pk);
            }
        }
    }
    Ok(b.commit()?)
}

/// The same batches through a local `Store`, by `writers` threads.
fn local_ingest(dir: &Path, batches: &[Vec<RecordOp>], sync: bool, writers: usize) -> anyhow::Result<Duration> {
    let store = Store::open(kho::Db::open(dir, kho::Options::default())?, StoreOptions::default())?;
    let t = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let store = &store;
                s.spawn(move || -> anyhow::Result<()> {
                    for ops in batches.iter().skip(w).step_by(writers) {
                        local_batch(store, ops, sync)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().map_err(|_| anyhow::anyhow!("writer panicked"))?)
    })?;
    let d = t.elapsed();
    store.close()?;
    Ok(d)
}

/// The same batches through the leader, by `writers` tasks.
async fn replicated_ingest(leader: &RaftStore, batches: &[Vec<RecordOp>], writers: usize) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let leader = leader.clone();
        let mine: Vec<_> = batches.iter().skip(w).step_by(writers).cloned().collect();
        tasks.push(tokio::spawn(async move {
            for ops in mine {
                leader.write(ops).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(t.elapsed())
}

fn config() -> anyhow::Result<Arc<Config>> {
    let c = Config {
        cluster_name: "kho-bench".into(),
        heartbeat_interval: 100,
        election_timeout_min: 1000,
        election_timeout_max: 2000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(500),
        max_in_snapshot_log_to_keep: 10,
        ..Config::default()
    };
    Ok(Arc::new(c.validate()?))
}

async fn start(router: &Router, root: &Path, id: u64) -> anyhow::Result<RaftStore> {
    let dir = NodeDir::std(root.join(format!("node-{id}")))?;
    let s = RaftStore::start(id, dir, StoreOptions::default(), config()?, router.network(id)).await?;
    router.add(id, s.raft().clone());
    Ok(s)
}

async fn cluster(root: &Path) -> anyhow::Result<(Router, Vec<RaftStore>)> {
    let router = Router::new(1);
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start(&router, root, id).await?);
    }
    let members = (1..=3).map(|id| (id, BasicNode::default())).collect::<std::collections::BTreeMap<_, _>>();
    nodes[0].raft().initialize(members).await?;
    nodes[0].raft().wait(Some(Duration::from_secs(30))).current_leader(1, "leader").await?;
    Ok((router, nodes))
}

async fn converged(nodes: &[&RaftStore], timeout: Duration) -> anyhow::Result<()> {
    let rafts: Vec<_> = nodes.iter().map(|n| n.raft()).collect();
    Ok(kho_raft::wait::wait_converged(&rafts, timeout).await?)
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// Runs the benchmark.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(bench(args))
}

async fn bench(args: Args) -> anyhow::Result<Outcome> {
    let tmp = tempfile::tempdir_in(args.dir.clone().unwrap_or_else(std::env::temp_dir))?;
    let root = tmp.path();
    let b = batches(args.persons, args.batch)?;
    let records: u64 = b.iter().map(|x| x.len() as u64).sum();
    println!("workload: {} persons, {records} records in {} batches of {}", args.persons, b.len(), args.batch);

    let w = args.writers.max(1);
    println!("writers: {w}");
    let synced = local_ingest(&root.join("local-sync"), &b, true, w)?;
    let unsynced = local_ingest(&root.join("local-nosync"), &b, false, w)?;
    println!(
        "single-node Store, synced batches: {:.0} records/s ({:.2} s)",
        rate(records, synced),
        synced.as_secs_f64()
    );
    println!(
        "single-node Store, unsynced:       {:.0} records/s ({:.2} s)",
        rate(records, unsynced),
        unsynced.as_secs_f64()
    );

    let (_router, nodes) = cluster(&root.join("raft")).await?;
    let replicated = replicated_ingest(&nodes[0], &b, w).await?;
    converged(&nodes.iter().collect::<Vec<_>>(), Duration::from_secs(600)).await?;
    println!(
        "3-node kho-raft (in-process): {:.0} records/s ({:.2} s); ratio to synced single node {:.2}, to unsynced {:.2}",
        rate(records, replicated),
        replicated.as_secs_f64(),
        synced.as_secs_f64() / replicated.as_secs_f64(),
        unsynced.as_secs_f64() / replicated.as_secs_f64()
    );

    // Lookups on the leader's store (stale reads: local).
    let pop = Population::new(2016, args.persons);
    let t = Instant::now();
    let mut found = 0u64;
    for i in 0..args.lookups {
        let p = pop.person(kho::util::SplitMix64::mix(i) % args.persons);
        found += nodes[0].person(&p.id, Consistency::Stale).await?.len() as u64;
    }
    let d = t.elapsed();
    println!("person lookups (stale, leader): {:.0}/s ({found} records found)", rate(args.lookups, d));
    let t = Instant::now();
    for i in 0..args.lookups / 10 {
        let p = pop.person(kho::util::SplitMix64::mix(i) % args.persons);
        nodes[0].person(&p.id, Consistency::Linearizable).await?;
    }
    println!("person lookups (linearizable, read index each): {:.0}/s", rate(args.lookups / 10, t.elapsed()));
    for n in &nodes {
        n.shutdown().await?;
    }

    if args.catchup_records > 0 {
        let persons = (args.catchup_records as f64 / 3.4) as u64;
        let root = root.join("catchup");
        let (router, mut nodes) = cluster(&root).await?;
        let n3 = nodes.pop().context("three nodes")?;
        n3.shutdown().await?;
        router.remove(3);
        let mut recs = 0u64;
        let t = Instant::now();
        for ops in batches(persons, args.batch)? {
            recs += ops.len() as u64;
            nodes[0].write(ops).await?;
        }
        println!(
            "catch-up store: {recs} records ingested on 2 of 3 nodes in {:.1} s ({:.0} records/s)",
            t.elapsed().as_secs_f64(),
            rate(recs, t.elapsed())
        );
        let t = Instant::now();
        let n3 = start(&router, &root, 3).await?;
        converged(&[&nodes[0], &nodes[1], &n3], Duration::from_secs(1200)).await?;
        let d = t.elapsed();
        let (_, installed) = n3.state_machine().snapshot_counts();
        let snap = nodes[0].raft().get_snapshot().await?.map(|s| s.snapshot.get_ref().len()).unwrap_or(0);
        println!(
            "follower catch-up of {recs} records: {:.2} s (snapshots installed: {installed}, snapshot {snap} bytes)",
            d.as_secs_f64()
        );
        for n in nodes.iter().chain([&n3]) {
            n.shutdown().await?;
        }
    }
    Ok(Outcome::Ok)
}
