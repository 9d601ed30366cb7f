//! `kho cluster demo [DIR] [--persons N]`: three kho-raft replicas in this process, talking
//! TCP on 127.0.0.1 (`kho_raft::tcp`). It ingests a seeded synthetic population through the
//! leader in atomic batches, kills the leader halfway (listener, connections and Raft node
//! gone), shows the new leader taking over, restarts the old leader at three quarters (it
//! catches up as a follower, from a snapshot if the log it missed was purged), then checks
//! that every replica holds the same records (count and digest) and that each index
//! verifies clean. Bounded: it stops by itself; exit 1 if the replicas disagree.
//! Nothing personal is printed: counts, digests, node ids and timings only.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use kho::record::population::{Event, Population};
use kho_raft::{digest, Error as RaftError, RecordOp};

use super::nodes::{config, members, wait_converged, wait_leader, Node};
use crate::out::Outcome;

/// Arguments of `kho cluster demo`.
#[derive(Debug, Parser)]
pub struct Args {
    /// Directory for the three nodes' data (must be empty or absent). Default: a fresh
    /// temporary directory, removed at the end.
    pub dir: Option<PathBuf>,
    /// Persons to generate (about 3.4 records each).
    #[arg(long, default_value_t = 20_000)]
    pub persons: u64,
    /// Seed of the population.
    #[arg(long, default_value_t = 2016)]
    pub seed: u64,
    /// Records per replicated batch (one Raft log entry).
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// First port of the three nodes (0: any free ports).
    #[arg(long, default_value_t = 0)]
    pub base_port: u16,
}

const TIMEOUT: Duration = Duration::from_secs(60);

/// Writes `ops` through whichever node leads, retrying across a failover.
async fn write(nodes: &[Node], ops: &[RecordOp]) -> anyhow::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (leader, _) = wait_leader(nodes, TIMEOUT).await?;
        let node = nodes.iter().find(|n| n.id == leader).context("leader vanished")?;
        match node.store()?.write(ops.to_vec()).await {
            Ok(_) => return Ok(()),
            Err(RaftError::NotLeader { .. } | RaftError::Raft(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn op_of(e: Event) -> anyhow::Result<RecordOp> {
    Ok(match e {
        Event::Upsert(r) | Event::Correct(r) => RecordOp::upsert(r.collection, &r.pk, &r.id, &r.payload)?,
        Event::Delete { collection, pk } => RecordOp::delete(collection, &pk),
    })
}

/// Runs the demo.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(demo(args))
}

async fn demo(args: Args) -> anyhow::Result<Outcome> {
    let (root, _tmp) = match &args.dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    if root.exists() && std::fs::read_dir(&root)?.next().is_some() {
        bail!("{} is not empty", root.display());
    }
    let cfg = config()?;
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        let port = if args.base_port == 0 { 0 } else { args.base_port + id as u16 - 1 };
        nodes.push(Node::start(id, &root.join(format!("node-{id}")), &format!("127.0.0.1:{port}"), cfg.clone()).await?);
    }
    for n in &nodes {
        println!("node {} listening on {} ({})", n.id, n.addr, n.dir.display());
    }
    nodes[0].store()?.raft().initialize(members(&nodes)).await?;
    let (leader, term) = wait_leader(&nodes, TIMEOUT).await?;
    println!("node {leader} leads (term {term})");

    let pop = Population::new(args.seed, args.persons);
    let mut events = pop.events();
    let (mut records, mut batches) = (0u64, 0u64);
    let mut killed: Option<usize> = None;
    let mut restarted_at: Option<Instant> = None;
    let start = Instant::now();
    loop {
        let mut ops = Vec::with_capacity(args.batch);
        for e in events.by_ref().take(args.batch) {
            ops.push(op_of(e)?);
        }
        if ops.is_empty() {
            break;
        }
        records += ops.len() as u64;
        batches += 1;
        write(&nodes, &ops).await?;
        let done = events.persons_done();
        if killed.is_none() && done >= args.persons / 2 {
            let (old, _) = wait_leader(&nodes, TIMEOUT).await?;
            let i = nodes.iter().position(|n| n.id == old).context("no leader node")?;
            let t = Instant::now();
            nodes[i].kill().await?;
            println!("killed leader node {old} after {records} records ({done} persons)");
            let (new, term) = wait_leader(&nodes, TIMEOUT).await?;
            println!("node {new} took over (term {term}) {} ms after the kill", t.elapsed().as_millis());
            killed = Some(i);
        } else if let (Some(i), None) = (killed, restarted_at) {
            if done >= args.persons * 3 / 4 {
                nodes[i].restart(cfg.clone()).await?;
                println!("restarted node {} as a follower after {records} records", nodes[i].id);
                restarted_at = Some(Instant::now());
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "ingested {records} records of {} persons in {batches} replicated batches: {secs:.1} s, {:.0} records/s",
        args.persons,
        records as f64 / secs.max(1e-9)
    );
    if let (Some(i), None) = (killed, restarted_at) {
        nodes[i].restart(cfg.clone()).await?;
        restarted_at = Some(Instant::now());
    }
    wait_converged(&nodes, Duration::from_secs(300)).await?;
    if let Some(t) = restarted_at {
        println!("every replica caught up {} ms after the restart", t.elapsed().as_millis());
    }

    let mut digests = Vec::new();
    for n in &nodes {
        let sm = n.store()?.state_machine();
        let store = sm.store();
        let d = digest(&store)?;
        let clean = store.verify_index()?.is_clean();
        let (built, installed) = sm.snapshot_counts();
        let (sm_bytes, log_bytes) = (
            std::fs::read_dir(&n.dir)?
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("sm-"))
                .map(|e| dir_bytes(&e.path()))
                .sum::<u64>(),
            dir_bytes(&n.dir.join("raft-log")),
        );
        println!(
            "node {}: {} records, {} index entries, digest {:016x}, index {}, store {} bytes ({:.0} bytes/person), raft log {} bytes, snapshots built {built} installed {installed}",
            n.id,
            d.records,
            d.index_entries,
            d.digest,
            if clean { "clean" } else { "NOT CLEAN" },
            sm_bytes,
            sm_bytes as f64 / args.persons.max(1) as f64,
            log_bytes
        );
        digests.push((d, clean));
    }
    for n in &mut nodes {
        n.kill().await?;
    }
    let agree = digests.windows(2).all(|w| w[0].0 == w[1].0) && digests.iter().all(|(_, c)| *c);
    if agree {
        println!("all 3 replicas agree");
        Ok(Outcome::Ok)
    } else {
        println!("replicas DISAGREE");
        Ok(Outcome::Problems)
    }
}
