//! [`run`]: one seeded randomized run of a [`Cluster`] and the checks of issue 17:
//! - **durability**: right after each single failure (a kill: crash image of the node), every
//!   write acknowledged so far is in the durable state (Raft log, or applied into the store)
//!   of a majority of nodes;
//! - **state-machine safety**: no two applies at one log index, on any nodes, saw different
//!   entries;
//! - **convergence**: after healing and restarting, every replica's store is equal (record
//!   count, index entries, content digest) and its index verifies clean.
//!
//! The schedule is a pure function of the seed: message loss and delay (so reordering),
//! partitions isolating one node (sometimes the leader), kills (unsynced data dropped or
//! torn, sometimes the leader) with restarts later. At most one node is down or cut off at a
//! time. Writes are 1-4 record ops on a small key space (upserts, inserts that may be
//! refused, deletes) so they overwrite one another.

use std::collections::BTreeSet;
use std::time::Duration;

use kho::record::population::Population;
use kho::util::SplitMix64;
use kho::vfs::CrashMode;

use super::cluster::{test_config, Cluster};
use crate::digest::{digest, StoreDigest};
use crate::error::{Error, Result};
use crate::types::{LogId, NodeId, RecordOp};

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct RunSpec {
    /// Seed of everything random.
    pub seed: u64,
    /// Nodes (3 or 5).
    pub nodes: u64,
    /// Acknowledged writes to make.
    pub writes: u64,
}

/// What a run did (every check passed if it returns one).
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Writes acknowledged.
    pub acknowledged: u64,
    /// Nodes killed (and restarted).
    pub kills: u64,
    /// Partitions (one node cut off, then healed).
    pub partitions: u64,
    /// Messages delivered and lost.
    pub messages: (u64, u64),
    /// Snapshots built and installed.
    pub snapshots: (u64, u64),
    /// The replicas' common digest.
    pub digest: StoreDigest,
}

/// A failure in force.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Killed(NodeId),
    CutOff,
}

fn ops(rng: &mut SplitMix64, pop: &Population, n: u64) -> Result<Vec<RecordOp>> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(4) {
        let k = rng.below(n);
        let pk = format!("k{k:04}");
        let person = pop.person(rng.below(pop.persons));
        let collection = if k.is_multiple_of(2) { "tax" } else { "vehicle" };
        let payload = (k, rng.next_u64());
        out.push(match rng.below(10) {
            0..=5 => RecordOp::upsert(collection, &pk, &person.id, &payload)?,
            6 | 7 => RecordOp::insert(collection, &pk, &person.id, &payload)?,
            _ => RecordOp::delete(collection, &pk),
        });
    }
    Ok(out)
}

/// Checks that every acknowledged write is durable on a majority.
fn check_majority(cluster: &Cluster, acked: &[LogId]) -> Result<()> {
    let views = cluster.durable_views()?;
    let majority = views.len() / 2 + 1;
    for l in acked {
        let holders = views
            .iter()
            .filter(|v| v.log.get(&l.index) == Some(l) || v.applied.is_some_and(|a| a.index >= l.index))
            .count();
        if holders < majority {
            return Err(Error::Invalid(format!(
                "acknowledged write {l} is durable on {holders} of {} nodes",
                views.len()
            )));
        }
    }
    Ok(())
}

/// Prints a run's events when `KHO_RAFT_TRACE` is set (for debugging a seed).
fn trace(what: impl FnOnce() -> String) {
    if std::env::var_os("KHO_RAFT_TRACE").is_some() {
        eprintln!("[kho-raft run] {}", what());
    }
}

/// Runs `spec`; an error is a failed check (or a cluster that stopped making progress).
pub async fn run(spec: RunSpec) -> Result<RunReport> {
    let mut rng = SplitMix64::new(spec.seed);
    let pop = Population::new(spec.seed, 50);
    let mut cluster = Cluster::start(spec.nodes, spec.seed, test_config()?).await?;
    let timeout = Duration::from_secs(60);
    cluster.router().set_lossy(rng.below(60), rng.below(8));
    let mut acked: Vec<LogId> = Vec::new();
    let (mut kills, mut partitions) = (0, 0);
    let mut fault: Option<(Fault, u64)> = None;
    for i in 0..spec.writes {
        // End the failure in force after its time, or start one.
        match fault {
            Some((f, until)) if i >= until => {
                trace(|| format!("write {i}: end {f:?}"));
                match f {
                    Fault::Killed(id) => cluster.restart(id).await?,
                    Fault::CutOff => cluster.router().heal(),
                }
                fault = None;
            }
            None if rng.below(100) < 8 => {
                let ids = cluster.ids();
                let leader = cluster.leader().await;
                let victim = match leader {
                    Some(l) if rng.below(2) == 0 => l,
                    _ => *rng.pick(&ids),
                };
                let until = i + 5 + rng.below(40);
                if rng.below(2) == 0 {
                    let mode = if rng.below(2) == 0 {
                        CrashMode::DropUnsynced
                    } else {
                        CrashMode::TearUnsynced { seed: rng.next_u64() }
                    };
                    trace(|| format!("write {i}: kill node {victim} (leader {leader:?}) {mode:?}"));
                    cluster.kill(victim, mode).await?;
                    kills += 1;
                    check_majority(&cluster, &acked)?;
                    fault = Some((Fault::Killed(victim), until));
                } else {
                    let rest: BTreeSet<NodeId> = ids.iter().copied().filter(|x| *x != victim).collect();
                    trace(|| format!("write {i}: cut off node {victim} (leader {leader:?})"));
                    cluster.router().partition(vec![rest, BTreeSet::from([victim])]);
                    partitions += 1;
                    fault = Some((Fault::CutOff, until));
                }
            }
            _ => {}
        }
        let a = cluster.write(ops(&mut rng, &pop, 64)?, timeout).await?;
        acked.push(a.log_id);
    }
    if let Some((Fault::Killed(id), _)) = fault {
        cluster.restart(id).await?;
    }
    cluster.router().heal();
    cluster.router().set_lossy(0, 0);
    // One more write: every node's log ends with an entry of the final term.
    let a = cluster.write(Vec::new(), timeout).await?;
    acked.push(a.log_id);
    trace(|| "healed; waiting for convergence".into());
    cluster.wait_converged(timeout).await?;
    check_majority(&cluster, &acked)?;

    let conflicts = cluster.apply_conflicts();
    if !conflicts.is_empty() {
        return Err(Error::Invalid(format!("different entries applied at one index: {conflicts:?}")));
    }
    let mut digests = Vec::new();
    for id in cluster.ids() {
        let store = cluster.node(id)?.state_machine().store();
        let report = store.verify_index()?;
        if !report.is_clean() {
            return Err(Error::Invalid(format!("node {id}: index does not verify: {report:?}")));
        }
        digests.push((id, digest(&store)?));
    }
    if digests.windows(2).any(|w| w[0].1 != w[1].1) {
        return Err(Error::Invalid(format!("replicas differ: {digests:?}")));
    }
    let messages = cluster.router().counts();
    let snapshots = cluster.snapshot_counts();
    cluster.shutdown().await?;
    let digest = digests.first().map(|d| d.1).ok_or(Error::Invalid("no nodes".into()))?;
    Ok(RunReport { acknowledged: acked.len() as u64, kills, partitions, messages, snapshots, digest })
}
