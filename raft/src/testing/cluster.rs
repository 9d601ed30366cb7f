//! [`Cluster`]: 3 or 5 [`RaftStore`] nodes in one process, connected by a [`Router`], each on
//! its own kho `FaultFs`. Killing a node replaces its file system by its crash image
//! (`CrashMode`: unsynced data dropped or torn) and stops its Raft node; restarting opens the
//! node again on that image, so a restart sees exactly what survived the crash.
//!
//! Every node's state machine reports each entry it applies; [`Cluster::apply_conflicts`]
//! lists any log index at which two applies (any nodes, before or after restarts) saw
//! different entries.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kho::record::StoreOptions;
use kho::vfs::{CrashMode, FaultFs, SharedFs};
use openraft::{BasicNode, Config, SnapshotPolicy};
use parking_lot::Mutex;

use super::router::Router;
use crate::error::{Error, Result};
use crate::log_store::LogStore;
use crate::node::{Applied, RaftStore};
use crate::node_dir::NodeDir;
use crate::state_machine::{ApplyObserver, StateMachine};
use crate::types::{LogId, NodeId, RecordOp};

/// How long one write attempt may wait for its commit before the next attempt.
const ATTEMPT: Duration = Duration::from_secs(1);

/// openraft settings for in-process tests: short timeouts, frequent snapshots and an
/// aggressive purge, so lagging nodes catch up from snapshots.
pub fn test_config() -> Result<Arc<Config>> {
    let c = Config {
        cluster_name: "kho-test".into(),
        heartbeat_interval: 50,
        election_timeout_min: 300,
        election_timeout_max: 600,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(40),
        max_in_snapshot_log_to_keep: 5,
        purge_batch_size: 1,
        ..Config::default()
    };
    Ok(Arc::new(c.validate().map_err(|e| Error::Invalid(e.to_string()))?))
}

struct Member {
    fs: Arc<FaultFs>,
    store: Option<RaftStore>,
}

/// One node's durable state, read from a crash image of its file system.
#[derive(Debug, Clone)]
pub struct DurableView {
    /// The node.
    pub id: NodeId,
    /// Log ids of the entries in its durable Raft log.
    pub log: BTreeMap<u64, LogId>,
    /// Its durable state machine's last applied log id.
    pub applied: Option<LogId>,
}

/// An in-process cluster.
pub struct Cluster {
    router: Router,
    config: Arc<Config>,
    members: BTreeMap<NodeId, Member>,
    applied: Arc<Mutex<BTreeMap<u64, (LogId, u64)>>>,
    conflicts: Arc<Mutex<Vec<String>>>,
    /// Snapshots built and installed by nodes since killed.
    snapshots: (u64, u64),
}

fn node_path(id: NodeId) -> PathBuf {
    PathBuf::from(format!("/node-{id}"))
}

impl Cluster {
    /// Starts nodes `1..=n` (each on a fresh `FaultFs`) and initializes the cluster on node 1.
    pub async fn start(n: u64, seed: u64, config: Arc<Config>) -> Result<Cluster> {
        let mut c = Cluster {
            router: Router::new(seed),
            config,
            members: BTreeMap::new(),
            applied: Arc::default(),
            conflicts: Arc::default(),
            snapshots: (0, 0),
        };
        for id in 1..=n {
            c.members.insert(id, Member { fs: Arc::new(FaultFs::new()), store: None });
            c.restart(id).await?;
        }
        let nodes: BTreeMap<NodeId, BasicNode> = (1..=n).map(|id| (id, BasicNode::default())).collect();
        c.node(1)?.raft().initialize(nodes).await.map_err(|e| Error::Raft(e.to_string()))?;
        Ok(c)
    }

    /// The network.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Node ids, live or not.
    pub fn ids(&self) -> Vec<NodeId> {
        self.members.keys().copied().collect()
    }

    /// The live node `id`.
    pub fn node(&self, id: NodeId) -> Result<&RaftStore> {
        self.members.get(&id).and_then(|m| m.store.as_ref()).ok_or(Error::Invalid(format!("node {id} is not running")))
    }

    /// Whether node `id` runs.
    pub fn is_live(&self, id: NodeId) -> bool {
        self.members.get(&id).is_some_and(|m| m.store.is_some())
    }

    fn observer(&self, id: NodeId) -> ApplyObserver {
        let (applied, conflicts) = (self.applied.clone(), self.conflicts.clone());
        Arc::new(move |log_id: &LogId, digest: u64| {
            let mut a = applied.lock();
            match a.get(&log_id.index) {
                Some((l, d)) if (l, d) != (log_id, &digest) => conflicts
                    .lock()
                    .push(format!("node {id} applied {log_id} (digest {digest:x}) where another applied {l} ({d:x})")),
                Some(_) => {}
                None => {
                    a.insert(log_id.index, (*log_id, digest));
                }
            }
        })
    }

    /// (Re)starts node `id` on its file system as it is.
    pub async fn restart(&mut self, id: NodeId) -> Result<()> {
        let fs: SharedFs = self.members.get(&id).ok_or(Error::Invalid(format!("no node {id}")))?.fs.clone();
        let dir = NodeDir::new(node_path(id), fs)?;
        let store = RaftStore::start_observed(
            id,
            dir,
            StoreOptions::default(),
            self.config.clone(),
            self.router.network(id),
            Some(self.observer(id)),
        )
        .await?;
        self.router.add(id, store.raft().clone());
        if let Some(m) = self.members.get_mut(&id) {
            m.store = Some(store);
        }
        Ok(())
    }

    /// Kills node `id`: its file system becomes its crash image under `mode`, then its Raft
    /// node is stopped (what it does after the image is lost with the old file system).
    pub async fn kill(&mut self, id: NodeId, mode: CrashMode) -> Result<()> {
        let m = self.members.get_mut(&id).ok_or(Error::Invalid(format!("no node {id}")))?;
        let image = m.fs.crash_clone(mode);
        let old = m.store.take();
        m.fs = image;
        self.router.remove(id);
        if let Some(s) = &old {
            let (b, i) = s.state_machine().snapshot_counts();
            self.snapshots.0 += b;
            self.snapshots.1 += i;
        }
        if let Some(s) = old {
            // The process "died": errors of the stopped node do not matter.
            let _ = tokio::time::timeout(ATTEMPT, s.shutdown()).await;
        }
        Ok(())
    }

    fn rafts(&self) -> Vec<&crate::types::Raft> {
        self.members.values().filter_map(|m| m.store.as_ref()).map(|s| s.raft()).collect()
    }

    /// The leader, as a live node that believes it leads (the highest term wins).
    pub async fn leader(&self) -> Option<NodeId> {
        crate::wait::leader(&self.rafts()).map(|(id, _)| id)
    }

    /// Writes `ops` through the leader, retrying (with a new attempt: a write whose outcome
    /// was unknown may apply twice) until one is acknowledged or `timeout` passes.
    pub async fn write(&self, ops: Vec<RecordOp>, timeout: Duration) -> Result<Applied> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.leader().await {
                // A leader cut off from the others never commits: give up on it after a while.
                Some(id) => match tokio::time::timeout(ATTEMPT, self.node(id)?.write(ops.clone())).await {
                    Ok(Ok(a)) => return Ok(a),
                    Ok(Err(e)) => e,
                    Err(_) => Error::Raft(format!("write through node {id} timed out")),
                },
                None => Error::NotLeader { leader: None },
            };
            if Instant::now() > deadline {
                return Err(last);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every live node applied everything the leader has, or `timeout`.
    pub async fn wait_converged(&self, timeout: Duration) -> Result<()> {
        crate::wait::wait_converged(&self.rafts(), timeout).await
    }

    /// Every node's durable state (a `DropUnsynced` crash image of each file system).
    pub fn durable_views(&self) -> Result<Vec<DurableView>> {
        let mut out = Vec::new();
        for (id, m) in &self.members {
            let image: SharedFs = m.fs.crash_clone(CrashMode::DropUnsynced);
            let dir = NodeDir::new(node_path(*id), image)?;
            let log = LogStore::open(dir.log_dir(), dir.db_options())?;
            let entries = log.entries(..)?.into_iter().map(|e| (e.log_id.index, e.log_id)).collect();
            log.close()?;
            let sm = StateMachine::open(dir, StoreOptions::default())?;
            let applied = sm.applied();
            sm.close()?;
            out.push(DurableView { id: *id, log: entries, applied });
        }
        Ok(out)
    }

    /// Snapshots built and installed by every node so far (killed ones included).
    pub fn snapshot_counts(&self) -> (u64, u64) {
        self.members
            .values()
            .filter_map(|m| m.store.as_ref())
            .map(|s| s.state_machine().snapshot_counts())
            .fold(self.snapshots, |a, b| (a.0 + b.0, a.1 + b.1))
    }

    /// Applies at one index that saw different entries (should be empty).
    pub fn apply_conflicts(&self) -> Vec<String> {
        self.conflicts.lock().clone()
    }

    /// Log indexes applied somewhere so far.
    pub fn applied_indexes(&self) -> usize {
        self.applied.lock().len()
    }

    /// Stops every node.
    pub async fn shutdown(&mut self) -> Result<()> {
        for m in self.members.values_mut() {
            if let Some(s) = m.store.take() {
                s.shutdown().await?;
            }
        }
        Ok(())
    }
}
